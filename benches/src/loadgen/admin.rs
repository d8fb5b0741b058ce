//! Our server's stats, from `GET /api/v1/admin/stats` (the bench server serves it when
//! started with `--admin-key`), over a plain HTTP/1.1 request on loopback.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The longest a stats request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes of an answer read.
const MAX_ANSWER: u64 = 1 << 20;

/// The engine's `Stats` as JSON (`connections`, `online_users`, `live_conversations`,
/// `messages_sent`, `appends_refused`, …).
///
/// # Errors
/// When the server does not answer 200 with a JSON body in time.
pub async fn admin_stats(addr: &str, key: &str) -> Result<serde_json::Value, String> {
    let fetch = async {
        let mut tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("stats: connect {addr}: {e}"))?;
        let request = format!(
            "GET /api/v1/admin/stats HTTP/1.1\r\nHost: {addr}\r\nx-internal-api-key: {key}\r\nConnection: close\r\n\r\n"
        );
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("stats: write: {e}"))?;
        let mut answer = Vec::new();
        tcp.take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("stats: read: {e}"))?;
        Ok::<Vec<u8>, String>(answer)
    };
    let answer = tokio::time::timeout(TIMEOUT, fetch)
        .await
        .map_err(|_| "stats: no answer in time".to_owned())??;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("stats: not an HTTP answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "stats: {}",
            head.lines().next().unwrap_or_default()
        ));
    }
    serde_json::from_str(body).map_err(|e| format!("stats: {e}"))
}
