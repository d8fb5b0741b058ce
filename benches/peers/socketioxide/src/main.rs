//! socketioxide peer: join a room, broadcast each message to the room's other members.
//! No persistence. Run: `peer-socketioxide [port]` (or `PORT=…`; default 4003). Listens
//! on 127.0.0.1 only. One tokio thread: the benchmark pins each server to one core.

use serde_json::Value;
use socketioxide::extract::{Data, SocketRef};
use socketioxide::SocketIo;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .unwrap_or_else(|| "4003".into())
        .parse()?;
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", async |s: SocketRef| {
        // join: the room's name (a string); acknowledged when asked.
        s.on(
            "join",
            async |s: SocketRef, Data(room): Data<String>, ack: socketioxide::extract::AckSender| {
                s.join(room);
                let _ = ack.send(&"ok");
            },
        );
        // message: {room, body}; delivered to every other member of the room.
        s.on("message", async |s: SocketRef, Data(msg): Data<Value>| {
            let Some(room) = msg.get("room").and_then(Value::as_str).map(str::to_owned) else {
                return;
            };
            let _ = s.to(room).emit("message", &msg).await;
        });
    });
    let app = axum::Router::new().layer(layer);
    // The same accept queue as ours (chat_transport_ws::bind), so a connect storm meets
    // the same kernel limits on both.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))?;
    let listener = socket.listen(65_535)?;
    println!("socketioxide peer listening on 127.0.0.1:{port}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
