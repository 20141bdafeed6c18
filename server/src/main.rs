//! The `amber` binary: `amber serve` runs the server; `amber deploy`
//! deploys a module to a running one.

mod cancel;
mod deploy;
mod encode;
mod handler;
mod unflushed;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long running statements get to finish after SIGTERM.
const SHUTDOWN_GRACE_MS: u64 = 5_000;
/// How often the server checks whether a failed fsync poisoned the store.
const POISON_POLL_MS: u64 = 100;
/// Exit status after a failed fsync (distinct from a crash or a clean stop).
const EXIT_CODE_POISONED: i32 = 3;

#[derive(Parser)]
#[command(
    name = "amber",
    version,
    about = "Amber: persistent Python objects over the PostgreSQL protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Deploy a Python module to a running server (a client, like psql).
    Deploy(deploy::DeployArgs),
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "AMBER_LISTEN", default_value = "127.0.0.1:5432")]
    listen: String,
    /// Data directory (created on first start).
    #[arg(long, env = "AMBER_DATA", default_value = "./amber-data")]
    data: PathBuf,
    /// Log level (overridden by RUST_LOG).
    #[arg(long, env = "AMBER_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Python worker processes (default: the number of cores).
    #[arg(long, env = "AMBER_PYTHON_WORKERS")]
    python_workers: Option<usize>,
    /// Memory limit of each Python worker process, in MiB: a procedure that
    /// allocates past it fails with 53200 (out of memory).
    #[arg(long, env = "AMBER_PYTHON_MEMORY_MB", default_value_t = amber_runtime::WORKER_MEMORY_BYTES_DEFAULT >> 20)]
    python_memory_mb: u64,
    /// Seconds a Python worker may stay idle before it is stopped (the
    /// next call it serves starts it again, ~0.25 s); 0 keeps workers running.
    #[arg(long, env = "AMBER_PYTHON_IDLE_SECS", default_value_t = 60)]
    python_idle_secs: u64,
}

/// A Python worker's allocation failure ends the worker with a status the
/// server reports as 53200 (see `amber_runtime::Allocator`).
#[global_allocator]
static ALLOCATOR: amber_runtime::Allocator = amber_runtime::Allocator;

fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(amber_runtime::WORKER_ARG) {
        // A Python worker process of a running server, not a user command.
        std::process::exit(amber_runtime::worker_main(&argv[2..]));
    }
    amber_runtime::tune_allocator();
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a,
        Some(Command::Deploy(a)) => return deploy::run(a),
        None => ServeArgs::parse_defaults(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log_level));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

impl ServeArgs {
    /// `amber` with no subcommand is `amber serve` with defaults/env.
    fn parse_defaults() -> ServeArgs {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Only::parse_from(["amber"]).serve
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let addr: SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("invalid listen address {}", args.listen))?;
    if !addr.ip().is_loopback() {
        bail!(
            "refusing to listen on {addr}: only trust authentication is available, which is safe on loopback only"
        );
    }
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating data directory {}", args.data.display()))?;
    let store = amber_storage::Store::open(&args.data)
        .with_context(|| format!("opening data directory {}", args.data.display()))?;
    let workers = args
        .python_workers
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
        .max(1);
    let exe = std::env::current_exe().context("locating the amber binary for Python workers")?;
    let config = amber_runtime::WorkerConfig {
        exe,
        workers,
        memory_bytes: args.python_memory_mb.saturating_mul(1 << 20),
        stderr_inherit: std::env::var_os("AMBER_DEBUG_WORKER_STDERR").is_some(),
        idle_stop: (args.python_idle_secs > 0)
            .then(|| std::time::Duration::from_secs(args.python_idle_secs)),
    };
    let engine =
        amber_query::Engine::open(store.clone(), config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, data = %args.data.display(), "amber listening");

    tokio::spawn(exit_when_poisoned(store.clone()));
    let tracker = tokio_util_tracker::Tracker::default();
    let cancels = Arc::new(cancel::CancelRegistry::default());
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let _ = socket.set_nodelay(true);
                let engine = engine.clone();
                let cancels = cancels.clone();
                let guard = tracker.enter();
                let span = tracing::info_span!("connection", %peer);
                tokio::spawn(tracing::Instrument::instrument(async move {
                    let conn = Arc::new(handler::Connection::new(engine, cancels));
                    if let Err(e) = pgwire::tokio::process_socket(socket, None, handler::Handlers(conn)).await {
                        tracing::debug!(error = %e, "connection ended with error");
                    }
                    drop(guard);
                }, span));
            }
            _ = &mut shutdown => {
                tracing::info!("shutting down: no new connections");
                break;
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_millis(SHUTDOWN_GRACE_MS), tracker.idle()).await;
    store.sync().map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!("stopped");
    Ok(())
}

/// After a failed fsync the data in memory may not be what is on disk, so
/// (like PostgreSQL's PANIC since fsyncgate) the server stops instead of
/// serving it; a restart replays the journal. The store already refuses all
/// work; the short grace lets the failing commit's error reach its client.
async fn exit_when_poisoned(store: amber_storage::Store) {
    loop {
        tokio::time::sleep(Duration::from_millis(POISON_POLL_MS)).await;
        if store.is_poisoned() {
            tracing::error!("PANIC: could not fsync the journal; stopping so that a restart recovers from what is on disk");
            tokio::time::sleep(Duration::from_millis(POISON_POLL_MS)).await;
            std::process::exit(EXIT_CODE_POISONED);
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Counts live connections so shutdown can wait for them.
mod tokio_util_tracker {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::sync::Notify;

    #[derive(Default, Clone)]
    pub struct Tracker {
        inner: Arc<(AtomicUsize, Notify)>,
    }

    pub struct Guard(Tracker);

    impl Tracker {
        pub fn enter(&self) -> Guard {
            self.inner.0.fetch_add(1, Ordering::SeqCst);
            Guard(self.clone())
        }

        pub async fn idle(&self) {
            while self.inner.0.load(Ordering::SeqCst) > 0 {
                self.inner.1.notified().await;
            }
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.inner.0.fetch_sub(1, Ordering::SeqCst);
            self.0.inner.1.notify_waiters();
        }
    }
}
