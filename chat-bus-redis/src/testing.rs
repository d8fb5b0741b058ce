//! A private `redis-server` for tests (feature `test-util`): its own free loopback port
//! and temporary directory, no persistence, killed when dropped. Never the shared Redis
//! on 6379.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use chat_bus_redis::testing::RedisServer;
//!
//! let server = RedisServer::start().await?;
//! let url = server.url(); // redis://127.0.0.1:<port>
//! server.restart(std::time::Duration::from_secs(1)).await?; // killed, down 1 s, back
//! # let _ = url;
//! # Ok(())
//! # }
//! ```
//!
//! The program is `redis-server` on `PATH`, or the path in `REDIS_SERVER`. When it is
//! missing, [`RedisServer::start`] fails saying so: tests that need Redis should fail,
//! not skip.

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a started server may take to answer `PING`.
const START_WITHIN: Duration = Duration::from_secs(10);

/// What `redis-server` logs once it listens.
const READY: &str = "Ready to accept connections";

/// A running `redis-server` owned by a test.
#[derive(Debug)]
pub struct RedisServer {
    program: PathBuf,
    args: Vec<String>,
    port: u16,
    dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
    /// The log's length when the newest process started.
    log_from: AtomicU64,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers.
    ///
    /// # Errors
    /// When `redis-server` is missing or does not start (the message says which, with
    /// the end of its log).
    pub async fn start() -> io::Result<RedisServer> {
        Self::start_with(&[]).await
    }

    /// As [`start`](Self::start), with more `redis-server` arguments (e.g.
    /// `["--requirepass", "secret"]`).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_with(args: &[&str]) -> io::Result<RedisServer> {
        let program = std::env::var_os("REDIS_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("redis-server"));
        let mut last = None;
        // A free port can be taken between finding it and the server binding it.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let server = RedisServer {
                program: program.clone(),
                args: args.iter().map(|a| (*a).to_owned()).collect(),
                port,
                dir: tempfile::Builder::new().prefix("chat-redis-").tempdir()?,
                child: Mutex::new(None),
                log_from: AtomicU64::new(0),
            };
            match server.spawn_and_wait().await {
                Ok(()) => return Ok(server),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients, as a crash) and waits for
    /// it to be gone. Nothing happens if it is not running.
    pub fn kill(&self) {
        let child = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`kill`](Self::kill)).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_again(&self) -> io::Result<()> {
        self.spawn_and_wait().await
    }

    /// Kills the server, keeps it down for `down`, and starts it again on the same port.
    /// Everything it held is lost (it keeps nothing on disk).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn restart(&self, down: Duration) -> io::Result<()> {
        self.kill();
        tokio::time::sleep(down).await;
        self.start_again().await
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn spawn(&self) -> io::Result<()> {
        let log_len = std::fs::metadata(self.log()).map(|m| m.len()).unwrap_or(0);
        self.log_from.store(log_len, Ordering::SeqCst);
        let child = Command::new(&self.program)
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                let hint = format!(
                    "could not run {:?} ({e}): these tests start their own Redis; install \
                     redis-server (Debian: apt-get install redis-server) or set REDIS_SERVER \
                     to its path",
                    self.program
                );
                io::Error::new(e.kind(), hint)
            })?;
        *self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(child);
        Ok(())
    }

    async fn spawn_and_wait(&self) -> io::Result<()> {
        self.spawn()?;
        let deadline = tokio::time::Instant::now() + START_WITHIN;
        loop {
            if let Some(status) = self.exited() {
                return Err(io::Error::other(format!(
                    "redis-server on port {} exited ({status}): {}",
                    self.port,
                    self.log_tail()
                )));
            }
            // An answer on the port is not enough: when another test's server took the
            // port first, ours logs the failed bind and exits, and the other one answers.
            // Ours is up when its own log says so.
            if self.says_ready() && pong(self.port).await {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                self.kill();
                return Err(io::Error::other(format!(
                    "redis-server on port {} did not answer within {START_WITHIN:?}: {}",
                    self.port,
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the newest process logged that it accepts connections.
    fn says_ready(&self) -> bool {
        let from = self.log_from.load(Ordering::SeqCst) as usize;
        std::fs::read(self.log())
            .map(|log| {
                log.get(from..)
                    .is_some_and(|new| new.windows(READY.len()).any(|w| w == READY.as_bytes()))
            })
            .unwrap_or(false)
    }

    fn exited(&self) -> Option<std::process::ExitStatus> {
        let mut guard = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let status = guard.as_mut()?.try_wait().ok()??;
        *guard = None;
        Some(status)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// True when a server on `port` answers `PING` (`+PONG`, or `-NOAUTH` when it wants a
/// password).
async fn pong(port: u16) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"PING\r\n").await?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).await?;
        io::Result::Ok(&buf == b"+PONG\r\n" || &buf == b"-NOAUTH")
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Ok(true))
    )
}
