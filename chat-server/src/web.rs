//! The demo page (and the TypeScript client it imports), its configuration, the `--dev`
//! sign-in, and `/metrics`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chat_transport_ws::ChatState;
use serde::Deserialize;
use serde_json::json;

use chat_transport_ws::TokenSigner;

const INDEX: &str = include_str!("../static/index.html");
const APP_JS: &str = include_str!("../static/app.js");
/// The TypeScript client (`clients/typescript`), copied here by `scripts/build-web.sh`.
const CLIENT_JS: &str = include_str!("../static/chat-client.js");
const STYLE: &str = include_str!("../static/style.css");

#[derive(Clone)]
struct Web {
    state: ChatState,
    dev: Option<TokenSigner>,
}

/// Every route of the server: the transport's, the page's and `/metrics`.
pub(crate) fn routes(state: ChatState, dev: Option<TokenSigner>) -> Router {
    let web = Web {
        state: state.clone(),
        dev,
    };
    Router::new()
        .route(
            "/",
            get(|| async { static_file("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/app.js",
            get(|| async { static_file("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/chat-client.js",
            get(|| async { static_file("text/javascript; charset=utf-8", CLIENT_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { static_file("text/css; charset=utf-8", STYLE) }),
        )
        .route("/config.json", get(config))
        .route("/dev/token", post(dev_token))
        .route("/metrics", get(metrics))
        .with_state(web)
        .merge(chat_transport_ws::router(state))
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn config(State(web): State<Web>) -> Json<serde_json::Value> {
    Json(json!({ "dev": web.dev.is_some() }))
}

#[derive(Deserialize)]
struct DevSignIn {
    user: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /dev/token`: a token for any user name. Only in `--dev` mode.
async fn dev_token(State(web): State<Web>, body: Option<Json<DevSignIn>>) -> Response {
    let Some(signer) = &web.dev else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"code": "not_found", "message": "only in --dev mode"})),
        )
            .into_response();
    };
    let Some(Json(req)) = body else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"code": "invalid", "message": "send {\"user\": \"name\"}"})),
        )
            .into_response();
    };
    match signer.mint(
        req.user.trim(),
        req.name.as_deref(),
        Duration::from_secs(12 * 3600),
    ) {
        Ok(token) => {
            tracing::warn!(user = %req.user, "dev sign-in without a credential");
            Json(json!({ "token": token })).into_response()
        }
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(chat_core::error::ErrorBody::from(&e)),
        )
            .into_response(),
    }
}

async fn metrics(State(web): State<Web>) -> Response {
    let body = crate::metrics::render(&web.state.engine().stats(), web.state.live_connections());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
