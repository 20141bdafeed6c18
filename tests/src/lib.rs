//! Harness for end-to-end tests: starts the real `amber` binary on a free
//! port with a fresh data directory, and connects real clients to it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a server gets to start accepting connections.
const STARTUP_TIMEOUT_MS: u64 = 60_000;
/// A test server is killed after this long, so that a hung test fails (its
/// client sees the connection close) instead of holding CI until its limit.
const SERVER_LIFETIME_MAX_MS: u64 = 600_000;

/// Path of the `amber` binary of this build (`cargo build` puts it next to
/// the test executables' `deps` directory). Cargo holds the build lock while
/// tests run, so the tests cannot build it themselves: the README's test
/// command builds it first.
pub fn amber_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target profile directory");
        let bin = profile_dir.join("amber");
        assert!(
            bin.exists(),
            "{} not found: run `cargo build --workspace` before the tests",
            bin.display()
        );
        bin
    })
    .clone()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running server; killed when dropped.
pub struct Server {
    pub port: u16,
    pub data: PathBuf,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
    /// With [`Server::start_captured`]: the server's stdin, held open, and
    /// the file its stdout and stderr go to.
    _stdin: Option<std::process::ChildStdin>,
    log: Option<PathBuf>,
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut s = Server::start_on(&data, free_port());
        s._dir = Some(dir);
        s
    }

    /// A server whose stdin is an open pipe nobody writes to and whose
    /// output goes to a file ([`Server::log_text`]).
    pub fn start_captured() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let log = dir.path().join("server.log");
        let mut s = Server::spawn(&data, free_port(), Some(&log), &[]);
        s._dir = Some(dir);
        s
    }

    /// What the server wrote to stdout and stderr (captured servers only).
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    pub fn start_on(data: &Path, port: u16) -> Server {
        Server::spawn(data, port, None, &[])
    }

    /// A server with these environment variables set (its options).
    pub fn start_with_env(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut s = Server::spawn(&data, free_port(), None, env);
        s._dir = Some(dir);
        s
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    fn spawn(data: &Path, port: u16, log: Option<&Path>, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(amber_binary());
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        match log {
            Some(path) => {
                let out = std::fs::File::create(path).expect("log file");
                let err = out.try_clone().expect("log file");
                cmd.stdin(Stdio::piped()).stdout(out).stderr(err);
            }
            None => {
                cmd.stdin(Stdio::null());
            }
        }
        let mut child = cmd.spawn().expect("start amber");
        let stdin = child.stdin.take();
        // The timer dies with the test process, which ends long before a
        // pid could be reused in a normal run.
        let pid = child.id();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(SERVER_LIFETIME_MAX_MS));
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        });
        let server = Server {
            port,
            data: data.to_path_buf(),
            child: Some(child),
            _dir: None,
            _stdin: stdin,
            log: log.map(Path::to_path_buf),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_millis(STARTUP_TIMEOUT_MS);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("amber did not start on port {}", self.port);
    }

    pub fn conn_string(&self) -> String {
        format!("host=127.0.0.1 port={} user=amber dbname=amber", self.port)
    }

    /// SIGTERM and wait: the graceful stop.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().expect("wait for amber")
    }

    /// SIGKILL: a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts on the same data directory and port, after a stop or crash.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        let next = Server::start_on(&self.data, self.port);
        let mut next = next;
        self.child = next.child.take();
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}
