//! Amber's Python runtime: RustPython interpreters in worker processes of
//! the same binary, loading modules, analysing their shape, calling
//! procedures.
//!
//! Architecture invariants:
//! - Python runs only in worker processes (`worker/`), never in the server.
//!   A worker holds no storage handle: it asks the server over its socket
//!   (`protocol`), and the server (`host`) serves only the called module's
//!   objects and variables, and canonicalizes every value before storing it.
//! - A fault in a worker (memory limit, crash, stack overflow, a call that
//!   ignores its interrupt) kills that worker only; the call fails with an
//!   error and a new worker takes its place.
//! - Callers submit jobs through a bounded queue; tokio threads never block
//!   on a worker.

mod alloc;
mod host;
mod protocol;
mod worker;

pub use alloc::{tune as tune_allocator, Allocator};
pub use worker::{worker_main, WORKER_ARG};

use amber_catalog::{ClassDef, GlobalDef, ModuleDef, ModuleShape};
use amber_storage::{Store, Txn};
use host::{CallRun, Host};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The transaction a call runs in, shared between the session (which
/// commits it) and the server thread serving the call's worker.
pub type TxnHandle = Arc<Mutex<Txn>>;

/// Jobs waiting for a worker; submitters wait when it is full.
const JOB_QUEUE_MAX: usize = 1024;
/// Default memory limit of one worker process (heap and anonymous
/// mappings): generous for procedures, far from the machine's size.
pub const WORKER_MEMORY_BYTES_DEFAULT: u64 = 1 << 30;

#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum RuntimeError {
    /// An exception escaped Python code, or a limit ended the call.
    #[error("{message}")]
    Python {
        sqlstate: String,
        message: String,
        detail: Option<String>,
    },
    /// The module does not compile.
    #[error("{message}")]
    Syntax { message: String, line: usize },
    #[error("internal runtime error: {0}")]
    Internal(String),
}

impl RuntimeError {
    /// An error with this SQLSTATE and message, no detail.
    pub fn python(sqlstate: &str, message: impl Into<String>) -> RuntimeError {
        RuntimeError::Python {
            sqlstate: sqlstate.to_string(),
            message: message.into(),
            detail: None,
        }
    }

    pub fn sqlstate(&self) -> &str {
        match self {
            RuntimeError::Python { sqlstate, .. } => sqlstate,
            RuntimeError::Syntax { .. } => "42601",
            RuntimeError::Internal(_) => "XX000",
        }
    }
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

/// What a call needs from the layers above, passed down once: SQL for
/// `amber.sql()` and the canonical stored form of a value written by
/// Python. Errors are (SQLSTATE, message).
pub trait CallServices: Send + Sync {
    /// Runs `amber.sql()` in the calling transaction, under the call's
    /// deadline and cancel flag; a JSON result. The caller undoes the
    /// statement's writes if it fails.
    fn sql(
        &self,
        query: &str,
        params_json: &str,
        txn: &TxnHandle,
        deadline: Option<std::time::Instant>,
        cancel: Option<&Arc<std::sync::atomic::AtomicBool>>,
    ) -> std::result::Result<String, (String, String)>;
    /// Stores object `oid` of `class` (of module `module`) that Python
    /// encoded as `json`, in the stored form SQL writes, and keeps the
    /// class's indexes; or says why it cannot be stored (a unique key
    /// another object holds: 23505 with its detail).
    fn put_object(
        &self,
        txn: &mut amber_storage::Txn,
        module: &str,
        class: &ClassDef,
        oid: u64,
        json: &str,
    ) -> std::result::Result<(), RuntimeError>;
    /// The ids of the objects of `class` whose key in `index` starts with
    /// `values_json` (a JSON array of Python-encoded values of the leading
    /// key columns), in key order, at most `rows_max`; the range read joins
    /// the transaction's read set.
    fn index_lookup(
        &self,
        txn: &amber_storage::Txn,
        class: &ClassDef,
        index: &amber_catalog::IndexDef,
        values_json: &str,
        rows_max: usize,
    ) -> std::result::Result<Vec<u64>, RuntimeError>;
    /// Deletes object `oid` of `class` and its index entries.
    fn delete_object(
        &self,
        txn: &mut amber_storage::Txn,
        class: &ClassDef,
        oid: u64,
    ) -> std::result::Result<(), RuntimeError>;
    /// The same for a module variable.
    fn global(
        &self,
        global: &GlobalDef,
        json: &str,
    ) -> std::result::Result<Vec<u8>, (String, String)>;
}

/// How worker processes are started.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The `amber` binary (started with [`WORKER_ARG`]).
    pub exe: PathBuf,
    /// Worker processes serving calls.
    pub workers: usize,
    /// RLIMIT_DATA of each worker.
    pub memory_bytes: u64,
    /// Debugging only: workers write to the server's stderr (so do
    /// procedures, through `sys.__stderr__`).
    pub stderr_inherit: bool,
    /// A worker that served no call for this long is stopped (its ~30 MiB
    /// returned to the system) and started again by the next call; None:
    /// workers run until the server stops.
    pub idle_stop: Option<std::time::Duration>,
}

type Job = Box<dyn FnOnce(&mut Slot) + Send>;

/// One pool thread and the worker process it serves.
struct Slot {
    host: Option<Host>,
    shared: Arc<Shared>,
}

struct Shared {
    config: WorkerConfig,
    store: Store,
    services: OnceLock<Arc<dyn CallServices>>,
    next_call_id: AtomicU64,
}

/// The pool of Python workers.
pub struct Runtime {
    jobs: flume::Sender<Job>,
    shared: Arc<Shared>,
}

/// One call of a module function or method.
#[derive(Debug, Clone)]
pub struct CallSpec {
    pub module: Arc<ModuleDef>,
    /// Python class name for a method call (first argument is the object id).
    pub class: Option<String>,
    pub function: String,
    /// statement_timeout: past it the call is interrupted with 57014.
    pub deadline: Option<std::time::Instant>,
    /// Set by a cancel request: the call is interrupted with 57014.
    pub cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runtime")
    }
}

impl Runtime {
    pub fn new(store: Store, config: WorkerConfig) -> Runtime {
        assert!(config.workers > 0, "at least one Python worker");
        // Every pool thread receives from the one queue (flume is
        // multi-consumer), each waiting with its own idle deadline.
        let (tx, rx) = flume::bounded::<Job>(JOB_QUEUE_MAX);
        let shared = Arc::new(Shared {
            config,
            store,
            services: OnceLock::new(),
            next_call_id: AtomicU64::new(1),
        });
        for i in 0..shared.config.workers {
            let rx = rx.clone();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("amber-python-{i}"))
                .spawn(move || pool_thread(rx, shared))
                .expect("spawn Python pool thread");
        }
        Runtime { jobs: tx, shared }
    }

    /// Installs what calls need from the layers above (once).
    pub fn set_services(&self, services: Arc<dyn CallServices>) {
        let _ = self.shared.services.set(services);
    }

    fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Slot) -> Result<R> + Send + 'static,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<R>>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |s: &mut Slot| {
            let _ = tx.send(f(s));
        });
        self.jobs
            .send(job)
            .map_err(|_| RuntimeError::Internal("Python workers are gone".into()))?;
        Ok(rx)
    }

    /// Executes a module's source in a fresh worker of its own (killed
    /// afterwards: the module's top-level code may have changed anything in
    /// it) and describes its classes, functions and persistent variables.
    /// Runs under the caller's deadline and cancel flag; holds no lock.
    pub async fn analyze(
        &self,
        name: String,
        source: String,
        deadline: Option<std::time::Instant>,
        cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    ) -> Result<ModuleShape> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let config = self.shared.config.clone();
        std::thread::Builder::new()
            .name("amber-python-analyze".into())
            .spawn(move || {
                let result = Host::spawn(&config)
                    .and_then(|mut host| host.analyze(&name, &source, deadline, cancel.as_deref()));
                let _ = tx.send(result);
            })
            .map_err(|e| RuntimeError::Internal(format!("spawning analysis: {e}")))?;
        let text = rx
            .await
            .map_err(|_| RuntimeError::Internal("module analysis was lost".into()))??;
        serde_json::from_str(&text).map_err(|e| RuntimeError::Internal(e.to_string()))
    }

    /// Calls a function in `txn`; arguments and result are JSON values in
    /// the catalog's encoding.
    pub async fn call(
        &self,
        spec: CallSpec,
        args: Vec<serde_json::Value>,
        txn: TxnHandle,
    ) -> Result<serde_json::Value> {
        let rx = self.submit(move |s| s.call(&spec, Args::One(&args), &txn))?;
        rx.await
            .map_err(|_| RuntimeError::Internal("Python worker dropped the job".into()))?
    }

    /// As [`Runtime::call`], for callers on a thread that may block (never a
    /// tokio worker without `block_in_place`).
    pub fn call_blocking(
        &self,
        spec: CallSpec,
        args: Vec<serde_json::Value>,
        txn: TxnHandle,
    ) -> Result<serde_json::Value> {
        let rx = self.submit(move |s| s.call(&spec, Args::One(&args), &txn))?;
        rx.blocking_recv()
            .map_err(|_| RuntimeError::Internal("Python worker dropped the job".into()))?
    }

    /// Converts `batch` (object ids and their attributes as an older
    /// version of class `spec.class` stored them, typed by `old_types`)
    /// through the class's `__migrate__`, in `txn`: the JSON list of
    /// `[id, new state]`, or `{"failed": id, "error": ...}`. May block.
    pub fn migrate_blocking(
        &self,
        spec: CallSpec,
        old_types: Vec<(String, String)>,
        batch: Vec<(u64, serde_json::Value)>,
        txn: TxnHandle,
    ) -> Result<serde_json::Value> {
        let rx = self.submit(move |s| s.migrate(&spec, &old_types, &batch, &txn))?;
        rx.blocking_recv()
            .map_err(|_| RuntimeError::Internal("Python worker dropped the job".into()))?
    }

    /// Calls the function once per row of `rows` (a query calling it over
    /// a batch of rows), in order, as consecutive calls in `txn` would run,
    /// but as one call of the worker: one process, one load of the module
    /// variables, one write of what changed. At most [`ROWS_PER_CALL_MAX`]
    /// rows go to one call. May block (see [`Runtime::call_blocking`]).
    pub fn call_rows_blocking(
        &self,
        spec: CallSpec,
        rows: Vec<Vec<serde_json::Value>>,
        txn: TxnHandle,
    ) -> Result<Vec<serde_json::Value>> {
        let total = rows.len();
        let mut results = Vec::with_capacity(total);
        let mut rest = rows;
        while !rest.is_empty() {
            // The rows move to the job, a chunk at a time (not copied).
            let tail = rest.split_off(rest.len().min(ROWS_PER_CALL_MAX));
            let chunk = std::mem::replace(&mut rest, tail);
            let expected = chunk.len();
            let (spec, txn) = (spec.clone(), txn.clone());
            let rx = self.submit(move |s| s.call(&spec, Args::Rows(&chunk), &txn))?;
            let out = rx
                .blocking_recv()
                .map_err(|_| RuntimeError::Internal("Python worker dropped the job".into()))??;
            match out {
                serde_json::Value::Array(values) if values.len() == expected => {
                    results.extend(values)
                }
                _ => {
                    return Err(RuntimeError::Internal(
                        "a call over rows returned no result per row".into(),
                    ))
                }
            }
        }
        debug_assert_eq!(results.len(), total);
        Ok(results)
    }
}

/// Rows one call over rows takes at most (a DataFusion batch).
pub const ROWS_PER_CALL_MAX: usize = 8192;

/// The arguments of one call, or of one call per row.
enum Args<'a> {
    One(&'a [serde_json::Value]),
    Rows(&'a [Vec<serde_json::Value>]),
}

fn pool_thread(rx: flume::Receiver<Job>, shared: Arc<Shared>) {
    let idle_stop = shared.config.idle_stop;
    let mut slot = Slot { host: None, shared };
    // The first worker starts at once, so the first call does not wait
    // for it; one stopped for idleness starts again with the next call.
    slot.ensure_host();
    let mut last_job = std::time::Instant::now();
    loop {
        let job = match (idle_stop, slot.host.is_some()) {
            (Some(idle), true) => {
                let left = idle.saturating_sub(last_job.elapsed());
                match rx.recv_timeout(left) {
                    Ok(job) => job,
                    Err(flume::RecvTimeoutError::Timeout) => {
                        tracing::debug!("stopping an idle Python worker");
                        slot.host = None;
                        continue;
                    }
                    Err(flume::RecvTimeoutError::Disconnected) => return,
                }
            }
            _ => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        job(&mut slot);
        last_job = std::time::Instant::now();
        // A worker that died is replaced before the next call rather than
        // during it.
        slot.ensure_host();
    }
}

impl Slot {
    /// Starts this slot's worker if it has none (first use, or the last
    /// one died); a failure is logged and retried at the next job.
    fn ensure_host(&mut self) {
        if let Some(h) = &mut self.host {
            if h.is_alive() {
                return;
            }
            self.host = None;
        }
        match Host::spawn(&self.shared.config) {
            Ok(h) => self.host = Some(h),
            Err(e) => tracing::error!("starting a Python worker: {e}"),
        }
    }

    fn call(
        &mut self,
        spec: &CallSpec,
        args: Args<'_>,
        txn: &TxnHandle,
    ) -> Result<serde_json::Value> {
        let services = self.services()?;
        let table_name;
        let sql_name = match &spec.class {
            Some(c) => {
                table_name = spec.module.class(c).map(|c| c.table.as_str()).unwrap_or("");
                format!("{table_name}_{}", spec.function)
            }
            None => spec.function.clone(),
        };
        let callable = spec
            .module
            .sql_function(&sql_name)
            .ok_or_else(|| RuntimeError::Internal(format!("no function {}", spec.function)))?;
        let desc = serde_json::json!({
            "class": spec.class,
            "func": spec.function,
            "params": callable.function.params.iter().map(|p| (p.name.clone(), p.ty.describe())).collect::<Vec<_>>(),
            "returns": callable.function.returns.describe(),
            "globals": callable.function.globals,
            "batch": matches!(args, Args::Rows(_)),
        });
        // The objects the call will load first: self, then object arguments.
        let mut object_args = Vec::new();
        let args_json = match args {
            Args::One(args) => {
                object_args_of(spec, callable.function, args, &mut object_args);
                serde_json::to_string(args)
            }
            Args::Rows(rows) => {
                for args in rows {
                    object_args_of(spec, callable.function, args, &mut object_args);
                }
                serde_json::to_string(rows)
            }
        }
        .map_err(|e| RuntimeError::Internal(e.to_string()))?;
        self.run(
            spec,
            desc.to_string(),
            args_json,
            object_args,
            callable.function.globals.as_deref(),
            txn,
            services.as_ref(),
        )
    }

    /// Converts a batch of objects of an older version of `spec.class`
    /// through the class's `__migrate__` (see the prelude's `_migrate`).
    /// Starts the worker if needed; the services calls use.
    fn services(&mut self) -> Result<Arc<dyn CallServices>> {
        self.ensure_host();
        self.shared
            .services
            .get()
            .cloned()
            .ok_or_else(|| RuntimeError::Internal("runtime services are not installed".into()))
    }

    fn migrate(
        &mut self,
        spec: &CallSpec,
        old_types: &[(String, String)],
        batch: &[(u64, serde_json::Value)],
        txn: &TxnHandle,
    ) -> Result<serde_json::Value> {
        let services = self.services()?;
        let desc = serde_json::json!({
            "class": spec.class,
            "func": "__migrate__",
            "params": [],
            "returns": "void",
            "globals": [],
            "migrate": true,
            "old": old_types,
        });
        let args_json =
            serde_json::to_string(batch).map_err(|e| RuntimeError::Internal(e.to_string()))?;
        self.run(
            spec,
            desc.to_string(),
            args_json,
            Vec::new(),
            Some(&[]),
            txn,
            services.as_ref(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        spec: &CallSpec,
        desc_json: String,
        args_json: String,
        object_args: Vec<(String, u64)>,
        globals: Option<&[String]>,
        txn: &TxnHandle,
        services: &dyn CallServices,
    ) -> Result<serde_json::Value> {
        let run = CallRun {
            call_id: self.shared.next_call_id.fetch_add(1, Ordering::Relaxed),
            spec,
            desc_json,
            args_json,
            object_args,
            globals,
            txn,
            store: &self.shared.store,
            services,
        };
        let host = self
            .host
            .as_mut()
            .ok_or_else(|| RuntimeError::Internal("no Python worker could be started".into()))?;
        let result = host.call(&run);
        if result.is_err() && !host.is_alive() {
            self.host = None;
        }
        let text = result?;
        serde_json::from_str(&text).map_err(|e| RuntimeError::Internal(e.to_string()))
    }
}

/// Appends the objects a call with `args` loads first: self, then object
/// arguments.
fn object_args_of(
    spec: &CallSpec,
    function: &amber_catalog::FunctionDef,
    args: &[serde_json::Value],
    out: &mut Vec<(String, u64)>,
) {
    let mut rest = args;
    if let Some(c) = &spec.class {
        if let Some(oid) = args.first().and_then(|a| a.as_u64()) {
            out.push((c.clone(), oid));
        }
        rest = args.get(1..).unwrap_or(&[]);
    }
    for (p, a) in function.params.iter().zip(rest) {
        if let (amber_catalog::SqlType::Ref(c), Some(oid)) = (&p.ty, a.as_u64()) {
            out.push((c.clone(), oid));
        }
    }
}
