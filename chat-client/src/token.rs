//! Where the client gets its token, on every (re)connect.

use std::future::Future;
use std::pin::Pin;

/// A boxed future returning a token.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// Hands out the token for each connection attempt. The client asks again before every
/// reconnect, so a provider that refreshes tokens has the fresh one used; an `Err` (a
/// message) counts as a failed attempt and is retried with backoff.
///
/// A `String` is a fixed token; a closure returning a future of `Result<String, String>`
/// is a provider:
///
/// ```
/// # use chat_client::TokenProvider;
/// fn fixed() -> impl TokenProvider { String::from("eyJ...") }
/// fn fetched() -> impl TokenProvider {
///     || async { Ok::<_, String>(String::from("eyJ...")) }
/// }
/// ```
pub trait TokenProvider: Send + Sync + 'static {
    /// The token for the next connection attempt.
    fn token(&self) -> TokenFuture;
}

impl TokenProvider for String {
    fn token(&self) -> TokenFuture {
        let token = self.clone();
        Box::pin(async move { Ok(token) })
    }
}

impl<F, Fut> TokenProvider for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, String>> + Send + 'static,
{
    fn token(&self) -> TokenFuture {
        Box::pin(self())
    }
}
