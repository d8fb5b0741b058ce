//! One error-code → HTTP status table for the whole crate, and the JSON error body.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chat_core::error::ErrorBody;
use chat_core::{Error, ErrorCode};
use serde::de::DeserializeOwned;

/// The HTTP status of each stable error code. Used by the HTTP API and by the WebSocket
/// handshake; `docs/http-api.md` prints the same table.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Invalid => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden | ErrorCode::NotFriends => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error as the HTTP API answers it: a status and a JSON `{code, message}` body.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    /// Seconds for the `Retry-After` header: on a 429, and on an error that carries the
    /// engine's retry hint (an overloaded store: 503).
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with the status of its code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status: status_of(code),
            body: ErrorBody::new(code, message),
            retry_after: None,
        }
    }

    /// 429 `rate_limited`, with `Retry-After` set to `after` rounded up to whole seconds
    /// (at least 1).
    pub fn rate_limited(message: impl Into<String>, after: std::time::Duration) -> Self {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        ApiError {
            retry_after: Some(secs.max(1)),
            ..ApiError::new(ErrorCode::RateLimited, message)
        }
    }

    /// A route that exists but not with this method: 405 `invalid`, with the same JSON
    /// body as every other error.
    pub fn method_not_allowed() -> Self {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            body: ErrorBody::new(ErrorCode::Invalid, "this route does not take that method"),
            retry_after: None,
        }
    }

    /// A request body that is not valid JSON or not the expected shape: 422 `invalid`.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody::new(ErrorCode::Invalid, message),
            retry_after: None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON body.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::from(&e)
    }
}

impl From<&Error> for ApiError {
    fn from(e: &Error) -> Self {
        let body = ErrorBody::from(e);
        // The engine's retry hint becomes `Retry-After`, in whole seconds rounded up.
        let retry_after = e.retry_after().map(|d| {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            secs.max(1)
        });
        ApiError {
            status: status_of(body.code),
            body,
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// A JSON request body whose failures answer with our JSON error body: 422 `invalid`
/// for bad JSON or a wrong shape, 413 `too_large` over the body limit. The content type
/// is not checked.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::TooLarge, "request body too large")
            } else {
                ApiError::new(ErrorCode::Invalid, r.body_text())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|e| ApiError::unprocessable(format!("request body: {e}")))
    }
}

/// Query parameters whose failures answer 400 `invalid` with our JSON body.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|r: QueryRejection| ApiError::new(ErrorCode::Invalid, r.body_text()))
    }
}

/// Path parameters whose failures answer 400 `invalid` with our JSON body.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|r: PathRejection| ApiError::new(ErrorCode::Invalid, r.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_engine_retry_hint_becomes_retry_after_and_stays_in_the_body() {
        let e = Error::unavailable("too many appends waiting; retry")
            .with_retry_after(Duration::from_millis(1500));
        let response = ApiError::from(&e).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[axum::http::header::RETRY_AFTER],
            "2",
            "rounded up to whole seconds"
        );
        assert_eq!(ErrorBody::from(&e).retry_after_ms, Some(1500));
        // No hint, no header.
        let plain = ApiError::from(&Error::unavailable("down")).into_response();
        assert!(plain
            .headers()
            .get(axum::http::header::RETRY_AFTER)
            .is_none());
    }
}
