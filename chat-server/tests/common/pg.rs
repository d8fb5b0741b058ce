//! A PostgreSQL server of the test's own (initdb in a temp dir, a free port), which the
//! test may stop and start at will without touching the machine's shared one.
//!
//! PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user
//! (`runuser`), which the Debian packages create.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where the PostgreSQL programs are (Debian keeps them out of `PATH`).
fn bin(name: &str) -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let p = PathBuf::from(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("bin").join(name))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("{name} not found: install PostgreSQL's server package"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL program, as `postgres` when we are root.
fn pg_command(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin(program));
        c
    } else {
        Command::new(bin(program))
    }
}

/// A private PostgreSQL, stopped (immediately) when dropped.
pub(crate) struct PrivatePg {
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

impl PrivatePg {
    pub(crate) fn start() -> PrivatePg {
        let dir = tempfile::Builder::new()
            .prefix("chat-pg-")
            .tempdir()
            .expect("a temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres", &dir.path().display().to_string()])
                .status()
                .expect("chown")
                .success();
            assert!(ok, "chown the data dir to postgres");
        }
        let data = dir.path().join("data");
        let out = pg_command("initdb")
            .args([
                "-D",
                &data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ])
            .args(["--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut pg = PrivatePg {
            dir,
            port,
            running: false,
        };
        pg.start_again();
        pg
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Starts the server and waits until it accepts connections.
    pub(crate) fn start_again(&mut self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let ok = pg_command("pg_ctl")
            .args(["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("pg_ctl start")
            .success();
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(ok, "pg_ctl start: {log_text}");
        self.running = true;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the private PostgreSQL did not listen on {}", self.port);
    }

    /// Stops the server at once (connections are cut, as in a crash of the database).
    pub(crate) fn stop(&mut self) {
        let _ = pg_command("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.running = false;
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        if self.running {
            self.stop();
        }
    }
}
