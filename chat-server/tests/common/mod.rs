//! The real `chat-server` binary as a test drives it: started on a free port, read through
//! its JSON logs, and spoken to over WebSocket.

#![allow(dead_code)]

pub(crate) mod cluster;
pub(crate) mod pg;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_chat-server");
pub(crate) const SECRET: &str = "test-secret-0123456789abcdef-0123456789";

/// Runs the binary to completion: (success, stdout, stderr).
pub(crate) fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run chat-server");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running server. Dropping it kills it.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: String,
    pub(crate) lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts the binary on a free port with `args` and `env` (and the test secret), and
    /// waits until it logs its address.
    pub(crate) fn spawn(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--shutdown-timeout",
                "5s",
            ])
            .args(args)
            .env_clear()
            .env("CHAT_JWT_SECRET", SECRET)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chat-server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut said = Vec::new();
        let addr = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("the server logs its address ({e}); it said {said:#?}"));
            if let Some(a) = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|v| v["fields"]["address"].as_str().map(str::to_owned))
            {
                break a;
            }
            said.push(line);
        };
        Server { child, addr, lines }
    }

    /// A token for `user`, minted by the binary's own `token` command.
    pub(crate) fn token(user: &str) -> String {
        let (ok, out, err) = run(&["token", "--user", user], &[("CHAT_JWT_SECRET", SECRET)]);
        assert!(ok, "{err}");
        out.trim().to_owned()
    }

    /// Opens a WebSocket as `user` and reads the `hello`.
    pub(crate) async fn connect(&self, user: &str) -> Ws {
        let url = format!("ws://{}/ws?token={}", self.addr, Server::token(user));
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        assert_eq!(next_json(&mut ws).await["type"], "hello");
        ws
    }

    /// Starts it on a SQLite file.
    pub(crate) fn start(db: &std::path::Path) -> Server {
        let store = format!("sqlite:{}", db.display());
        Server::spawn(&["--store", &store], &[])
    }

    /// `GET path` over plain HTTP/1.1: the raw response.
    pub(crate) fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut body = String::new();
        s.read_to_string(&mut body).expect("read");
        body
    }

    /// One HTTP request with extra header lines: the status and the body.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n",
            self.addr
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("write");
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("read");
        let status = raw
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
        (status, body)
    }

    /// SIGTERM, then waits (a graceful shutdown exits 0); returns what it logged.
    pub(crate) fn terminate(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "a graceful shutdown exits 0, got {exit}");
        self.lines.try_iter().collect()
    }

    /// `kill -9`: no shutdown, no flush.
    pub(crate) fn kill(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
    }
}

impl Drop for Server {
    /// A failed assertion must not leave the server running (and holding the test's pipes).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON text frame (5 s at most).
pub(crate) async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).expect("json");
        }
    }
}

/// Sends one command with request id `id` and returns its reply (panics on an error).
pub(crate) async fn call(ws: &mut Ws, id: &str, cmd: Value) -> Value {
    let mut frame = cmd;
    frame["id"] = json!(id);
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("send");
    loop {
        let v = next_json(ws).await;
        if v["id"] == id {
            assert_eq!(v["type"], "reply", "{v}");
            return v["reply"].clone();
        }
    }
}
