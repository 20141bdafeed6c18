//! The `amber` server under test, as a child process the nemesis can kill,
//! pause and restart on the same data directory and port.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a (re)started server gets to accept connections; recovery
/// replays the journal, which is short in these runs.
const STARTUP_TIMEOUT_MS: u64 = 60_000;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub binary: PathBuf,
    pub data: PathBuf,
    pub port: u16,
    /// Server output (all restarts, appended).
    pub log: PathBuf,
    /// Extra environment, e.g. `LD_PRELOAD` for the fsync fault layer.
    pub env: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("starting amber: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("amber did not accept connections on port {port} within {timeout_ms} ms")]
    NotReady { port: u16, timeout_ms: u64 },
    #[error("amber exited during startup: {0}")]
    Exited(ExitStatus),
}

pub struct AmberProcess {
    pub config: ServerConfig,
    child: Option<Child>,
    paused: bool,
}

impl AmberProcess {
    pub fn new(config: ServerConfig) -> AmberProcess {
        AmberProcess {
            config,
            child: None,
            paused: false,
        }
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&mut self) -> Result<(), ServerError> {
        assert!(self.child.is_none(), "server already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.config.log)?;
        let mut cmd = Command::new(&self.config.binary);
        cmd.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", self.config.port),
            "--data",
        ])
        .arg(&self.config.data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
        for (k, v) in &self.config.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn()?;
        self.child = Some(child);
        self.paused = false;
        let deadline = Instant::now() + Duration::from_millis(STARTUP_TIMEOUT_MS);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.config.port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.try_wait() {
                return Err(ServerError::Exited(status));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(ServerError::NotReady {
            port: self.config.port,
            timeout_ms: STARTUP_TIMEOUT_MS,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: a crash at whatever point the server is.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// SIGTERM and wait: the graceful stop.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.resume();
        let mut child = self.child.take()?;
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        child.wait().ok()
    }

    /// SIGSTOP: the process stops answering, sockets stay open.
    pub fn pause(&mut self) {
        if let Some(pid) = self.pid() {
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGSTOP);
            }
            self.paused = true;
        }
    }

    pub fn resume(&mut self) {
        if let (Some(pid), true) = (self.pid(), self.paused) {
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGCONT);
            }
        }
        self.paused = false;
    }

    /// The exit status, if the server has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }

    /// Waits up to `timeout` for the server to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Resident memory of the server, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

impl Drop for AmberProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
