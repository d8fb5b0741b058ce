//! The HTTP API's OpenAPI 3.1 document, served at `GET /api/v1/openapi.json` without
//! authentication (a description of the API is public).
//!
//! Generated from the code: each handler in `http` carries its `#[utoipa::path]`, the body
//! types derive `utoipa::ToSchema` (chat-core's behind its `openapi` feature), and the
//! error responses come from the one code → status table ([`status_of`]). A test checks
//! the document against `docs/http-api.md`.

use std::collections::BTreeMap;

use chat_core::error::ErrorBody;
use chat_core::ErrorCode;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};

use crate::auth::API_KEY_HEADER;
use crate::config::Config;
use crate::error::status_of;
use crate::http;

/// The security scheme of a token in `Authorization: Bearer <token>`.
pub(crate) const BEARER: &str = "bearer";
/// The security scheme of a token in the `token` query parameter.
pub(crate) const TOKEN_QUERY: &str = "token_query";
/// The security scheme of a token in the token cookie.
pub(crate) const TOKEN_COOKIE: &str = "token_cookie";
/// The security scheme of the admin routes' internal API key.
pub(crate) const ADMIN_KEY: &str = "admin_key";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "chat-engine HTTP API",
        description = "HTTP API v1 of the chat engine: the commands of protocol v1 (docs/protocol.md) \
                       for clients that are not connected and for servers, readiness, and the admin \
                       routes. The reference is docs/http-api.md.",
    ),
    servers((url = "/api/v1")),
    paths(
        http::health,
        http::ready,
        http::openapi_json,
        http::list_conversations,
        http::open_direct,
        http::history,
        http::send_message,
        http::edit_message,
        http::delete_message,
        http::mark_read,
        http::mark_delivered,
        http::conversation_members,
        http::unread,
        http::create_room,
        http::join_room,
        http::leave_room,
        http::invite,
        http::room_members,
        http::list_friends,
        http::online_friends,
        http::friend_request,
        http::friend_accept,
        http::friend_decline,
        http::friend_cancel,
        http::friend_block,
        http::friend_unblock,
        http::friend_remove,
        http::admin_message,
        http::admin_stats,
        http::admin_disconnect,
    ),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Liveness, readiness and this document; no token."),
        (name = "conversations", description = "Conversations and their messages."),
        (name = "rooms", description = "Rooms."),
        (name = "friends", description = "Friendships and blocks."),
        (name = "admin", description = "For servers: the internal API key, never a user token."),
    ),
)]
struct ApiDoc;

/// The document for a transport with `config` (the token cookie's name is the config's).
pub(crate) fn document(config: &Config) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    if let Some(components) = doc.components.as_mut() {
        components.add_security_scheme(TOKEN_COOKIE, cookie_scheme(&config.token_cookie));
    }
    doc
}

fn cookie_scheme(name: &str) -> SecurityScheme {
    SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
        name,
        "The token cookie. It counts only for a request without an `Origin` header, or from \
         the server's own origin, or from one of the transport's `allowed_origins`; any other \
         origin answers 403 `forbidden`.",
    )))
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A user token in `Authorization: Bearer <token>`, checked by the \
                         server's authenticator.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            TOKEN_QUERY,
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "A user token in the `token` query parameter, used when there is no \
                 `Authorization` header.",
            ))),
        );
        components.add_security_scheme(TOKEN_COOKIE, cookie_scheme("chat_token"));
        components.add_security_scheme(
            ADMIN_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                API_KEY_HEADER,
                "The internal API key, compared in constant time: missing answers 401, wrong \
                 403; when the server has none configured, the admin routes answer 404.",
            ))),
        );
    }
}

/// Error responses for `codes`, one per status (codes sharing a status share it), each
/// with the JSON error body; 429 and 503 also name the `Retry-After` header.
fn error_responses(codes: &[ErrorCode], note: &str) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    for code in codes {
        by_status
            .entry(status_of(*code).as_u16())
            .or_default()
            .push(code.as_str());
    }
    by_status
        .into_iter()
        .map(|(status, codes)| {
            let names: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
            let text = format!("{}{note}", names.join(", "));
            (status.to_string(), error_response(status, &text))
        })
        .collect()
}

/// One error response: the JSON error body, and `Retry-After` where the docs promise it.
fn error_response(status: u16, description: &str) -> RefOr<Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ErrorBody::name())))
            .build(),
    );
    if status == 429 || status == 503 {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(<u64 as PartialSchema>::schema()))
                .description(Some(
                    "Whole seconds to wait, rounded up: on 429, and on an error with the \
                     engine's retry hint (then the body has `retry_after_ms`).",
                ))
                .build(),
        );
    }
    RefOr::T(response.build())
}

/// A route that runs a command as a user: any code of the table (the token, its origin,
/// the rate limit and the command's own errors: docs/protocol.md §3).
pub(crate) struct CommandErrors;

impl IntoResponses for CommandErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(&ErrorCode::ALL, "")
    }
}

/// A route with a JSON body: 413 over the body limit, 422 for a body that does not parse
/// into the expected shape.
pub(crate) struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut out = error_responses(&[ErrorCode::TooLarge], "");
        out.insert(
            "422".into(),
            error_response(
                422,
                "`invalid`: a body that is not JSON, lacks a field, has an unknown field or a \
                 value of the wrong type",
            ),
        );
        out
    }
}

/// An admin route: the internal API key missing (401), wrong (403), or not configured
/// (404: the admin routes are off).
pub(crate) struct AdminErrors;

impl IntoResponses for AdminErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(
            &[
                ErrorCode::Unauthenticated,
                ErrorCode::Forbidden,
                ErrorCode::NotFound,
            ],
            " (the internal API key missing, wrong, or none configured)",
        )
    }
}

/// A route that reads or writes the store outside a command: 500 `internal`, 503
/// `unavailable`.
pub(crate) struct StoreErrors;

impl IntoResponses for StoreErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(&[ErrorCode::Internal, ErrorCode::Unavailable], "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_names_the_configured_cookie() {
        let doc = document(&Config::default().token_cookie("sid"));
        let json = serde_json::to_value(&doc).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json["openapi"], "3.1.0");
        let cookie = &json["components"]["securitySchemes"][TOKEN_COOKIE];
        assert_eq!(cookie["in"], "cookie", "{cookie}");
        assert_eq!(cookie["name"], "sid", "{cookie}");
    }
}
