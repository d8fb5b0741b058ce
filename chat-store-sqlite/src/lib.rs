//! chat-store-sqlite
