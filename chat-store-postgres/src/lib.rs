//! chat-store-postgres
