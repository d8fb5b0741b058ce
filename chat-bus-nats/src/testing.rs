//! Test helpers (feature `test-util`): a `nats-server` of the test's own, on a free port
//! of 127.0.0.1 with JetStream in a temporary directory, killed when dropped.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use chat_bus_nats::testing::NatsServer;
//!
//! let server = NatsServer::start().await?;
//! let url = server.url(); // nats://127.0.0.1:<port>
//! server.restart(std::time::Duration::from_secs(1)).await?; // same port, same store
//! # let _ = url;
//! # Ok(())
//! # }
//! ```
//!
//! The binary is `$NATS_SERVER` when set, else `nats-server` on the `PATH` or in
//! `/usr/sbin` (Debian: `apt-get install nats-server`). A missing binary is an error that says so:
//! tests that need a server fail, they never skip.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tempfile::TempDir;

/// How long a starting server may take to accept connections.
const STARTS_WITHIN: Duration = Duration::from_secs(10);

/// A `nats-server -js` child process; see the [module docs](self).
#[derive(Debug)]
pub struct NatsServer {
    bin: PathBuf,
    port: u16,
    dir: TempDir,
    child: Mutex<Option<Child>>,
    /// The log's length when the newest process started: it is up once the log says so
    /// after that point.
    log_from: AtomicUsize,
}

/// The server binary: `$NATS_SERVER`, else `nats-server` on the `PATH` or in `/usr/sbin`.
fn binary() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    // Debian installs it in /usr/sbin, which a user's PATH may lack.
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "nats-server is not on the PATH: install it (Debian: apt-get install \
                 nats-server) or set NATS_SERVER to its path",
            )
        })
}

fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

impl NatsServer {
    /// Starts a server on a free port with an empty JetStream store.
    ///
    /// # Errors
    /// The binary is missing, or the server did not start (its log is in the error).
    pub async fn start() -> io::Result<NatsServer> {
        let mut server = NatsServer {
            bin: binary()?,
            port: free_port()?,
            dir: tempfile::Builder::new().prefix("chat-nats-").tempdir()?,
            child: Mutex::new(None),
            log_from: AtomicUsize::new(0),
        };
        // Another process may take the free port before the server binds it: try again.
        let mut tries = 3;
        loop {
            match server.resume().await {
                Ok(()) => return Ok(server),
                Err(e) if tries == 1 => return Err(e),
                Err(_) => {
                    tries -= 1;
                    server.port = free_port()?;
                }
            }
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log (stdout and stderr), for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn store_dir(&self) -> PathBuf {
        self.dir.path().join("jetstream")
    }

    fn kill(&self) {
        if let Some(mut child) = self.child.lock().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server (SIGKILL: a crash, not a shutdown) and waits for it to exit.
    pub async fn stop(&self) {
        self.kill();
    }

    /// Starts the server again on the same port with the same store (after [`stop`]);
    /// returns once it accepts connections.
    ///
    /// # Errors
    /// The server exited or did not listen within 10 s (its log is in the error).
    ///
    /// [`stop`]: NatsServer::stop
    pub async fn resume(&self) -> io::Result<()> {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        self.log_from
            .store(log.metadata()?.len() as usize, Ordering::SeqCst);
        let child = Command::new(&self.bin)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store_dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                io::Error::new(e.kind(), format!("starting {}: {e}", self.bin.display()))
            })?;
        *self.child.lock() = Some(child);
        self.wait_listening().await
    }

    async fn wait_listening(&self) -> io::Result<()> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = tokio::time::Instant::now() + STARTS_WITHIN;
        loop {
            let exited = match self.child.lock().as_mut() {
                Some(child) => child.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                self.child.lock().take();
                return Err(self.failed(&format!("exited with {status}")));
            }
            // Something answering on the port is not enough: when another test's server
            // took the port first, ours logs "address already in use" and exits, and the
            // other one answers. Ours is up when its own log says so.
            if self.says_ready() && tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                self.kill();
                return Err(self.failed(&format!("did not listen within {STARTS_WITHIN:?}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the newest process logged that it is ready.
    fn says_ready(&self) -> bool {
        let from = self.log_from.load(Ordering::SeqCst);
        std::fs::read(self.log_path())
            .map(|log| {
                log.get(from..)
                    .is_some_and(|new| new.windows(15).any(|w| w == b"Server is ready"))
            })
            .unwrap_or(false)
    }

    fn failed(&self, what: &str) -> io::Error {
        io::Error::other(format!(
            "nats-server on port {} {what}; its log:\n{}",
            self.port,
            self.log()
        ))
    }

    /// Kills the server, keeps it down for `down`, and starts it again on the same port
    /// with the same store.
    ///
    /// # Errors
    /// As [`NatsServer::resume`].
    pub async fn restart(&self, down: Duration) -> io::Result<()> {
        self.stop().await;
        tokio::time::sleep(down).await;
        self.resume().await
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
