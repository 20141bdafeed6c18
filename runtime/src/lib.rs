//! Amber's Python runtime: RustPython interpreters on long-lived worker
//! threads, loading modules, analysing their shape, calling procedures.
//!
//! Architecture invariants:
//! - An interpreter lives on one OS thread for its whole life (RustPython
//!   objects are !Send); tokio threads never run Python. Callers submit jobs
//!   through a bounded queue and await the answer.
//! - Python code reaches storage only through the transaction of the call
//!   that is running (`_amber` native functions read a thread-local handle set
//!   for the duration of the call). Outside a call there is no transaction.
//! - A panic inside the interpreter is caught; the worker builds a fresh
//!   interpreter and the call fails with an error, never the process.

mod native;
mod sandbox;
mod watchdog;

use amber_catalog::{ModuleDef, ModuleShape};
use amber_storage::{Store, Txn};
use rustpython_vm::{
    builtins::{PyBaseExceptionRef, PyDictRef},
    compiler::Mode,
    scope::Scope,
    AsObject, Interpreter, PyObjectRef, PyResult, VirtualMachine,
};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex};

pub use native::SqlCallback;

/// The transaction a call runs in, shared between the session (which
/// commits it) and the worker running the call.
pub type TxnHandle = Arc<Mutex<Txn>>;

const PRELUDE_SOURCE: &str = include_str!("prelude.py");
/// Native stack of a worker thread: deep Python recursion must hit
/// RecursionError long before it overflows this.
const WORKER_STACK_BYTES: usize = 64 * 1024 * 1024;
/// Jobs waiting for a worker; submitters wait when it is full.
const JOB_QUEUE_MAX: usize = 1024;
/// Python recursion limit inside procedures.
const RECURSION_LIMIT: usize = 400;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    /// An exception escaped Python code.
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
    pub fn sqlstate(&self) -> &str {
        match self {
            RuntimeError::Python { sqlstate, .. } => sqlstate,
            RuntimeError::Syntax { .. } => "42601",
            RuntimeError::Internal(_) => "XX000",
        }
    }
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// The pool of Python workers.
pub struct Runtime {
    jobs: mpsc::SyncSender<Job>,
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
    pub fn new(store: Store, workers: usize) -> Runtime {
        assert!(workers > 0, "at least one Python worker");
        let (tx, rx) = mpsc::sync_channel::<Job>(JOB_QUEUE_MAX);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            let store = store.clone();
            std::thread::Builder::new()
                .name(format!("amber-python-{i}"))
                .stack_size(WORKER_STACK_BYTES)
                .spawn(move || worker_loop(rx, store))
                .expect("spawn Python worker thread");
        }
        Runtime { jobs: tx }
    }

    /// Installs the hook that `amber.sql()` uses to run SQL.
    pub fn set_sql_callback(&self, cb: Arc<dyn SqlCallback>) {
        native::set_sql_callback(cb);
    }

    fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Worker) -> Result<R> + Send + 'static,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<R>>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |w: &mut Worker| {
            let _ = tx.send(f(w));
        });
        self.jobs
            .send(job)
            .map_err(|_| RuntimeError::Internal("Python workers are gone".into()))?;
        Ok(rx)
    }

    /// Executes a module's source in a scratch namespace and describes its
    /// classes, functions and persistent variables.
    pub async fn analyze(&self, name: String, source: String) -> Result<ModuleShape> {
        let rx = self.submit(move |w| w.analyze(&name, &source))?;
        rx.await
            .map_err(|_| RuntimeError::Internal("Python worker dropped the job".into()))?
    }

    /// Calls a function in `txn`; arguments and result are JSON values in
    /// the catalog's encoding.
    pub async fn call(
        &self,
        spec: CallSpec,
        args: Vec<serde_json::Value>,
        txn: TxnHandle,
    ) -> Result<serde_json::Value> {
        let rx = self.submit(move |w| w.call(&spec, &args, txn))?;
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
        let rx = self.submit(move |w| w.call(&spec, &args, txn))?;
        rx.blocking_recv()
            .map_err(|_| RuntimeError::Internal("Python worker dropped the job".into()))?
    }
}

fn worker_loop(rx: Arc<Mutex<mpsc::Receiver<Job>>>, store: Store) {
    let mut worker = Worker::new(store.clone());
    loop {
        let job = {
            let Ok(guard) = rx.lock() else { return };
            match guard.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut worker)));
        if outcome.is_err() {
            // The interpreter may be in any state after a panic: replace it.
            // The job's reply channel was dropped, so the caller sees an error.
            tracing::error!("Python worker panicked; replacing its interpreter");
            native::clear_context();
            worker = Worker::new(store.clone());
        }
    }
}

struct LoadedModule {
    version: u64,
    module: PyObjectRef,
}

struct Worker {
    interp: Interpreter,
    store: Store,
    loaded: HashMap<String, LoadedModule>,
    interrupt: rustpython_vm::signal::UserSignalSender,
}

impl Worker {
    fn new(store: Store) -> Worker {
        let builder = Interpreter::builder(Default::default());
        let defs = rustpython_stdlib::stdlib_module_defs(&builder.ctx);
        let (interrupt, interrupt_rx) = rustpython_vm::signal::user_signal_channel();
        let interp = builder
            .add_native_modules(&defs)
            .add_frozen_modules(rustpython_pylib::FROZEN_STDLIB)
            .init_hook(move |vm| vm.set_user_signal_channel(interrupt_rx))
            .build();
        let worker = Worker {
            interp,
            store,
            loaded: HashMap::new(),
            interrupt,
        };
        let setup = worker.interp.enter(|vm| -> PyResult<()> {
            native::install(vm)?;
            sandbox::install(vm, RECURSION_LIMIT)?;
            exec_module(vm, "amber", PRELUDE_SOURCE, None).map_err(|e| match e {
                ExecError::Python(exc) => exc,
                ExecError::Syntax(msg, _) => vm.new_runtime_error(msg),
            })?;
            Ok(())
        });
        if let Err(e) = setup {
            let text = worker
                .interp
                .enter(|vm| format_exception(vm, &e).1.unwrap_or_default());
            panic!("Amber prelude failed to load: {text}");
        }
        worker
    }

    fn analyze(&mut self, name: &str, source: &str) -> Result<ModuleShape> {
        self.interp.enter(|vm| {
            let module = match exec_module(vm, name, source, None) {
                Ok(m) => m,
                Err(ExecError::Syntax(message, line)) => {
                    return Err(RuntimeError::Syntax { message, line })
                }
                Err(ExecError::Python(exc)) => return Err(python_error(vm, &exc, "42P13")),
            };
            let json = call_prelude(vm, "_analyze", vec![module])
                .map_err(|exc| python_error(vm, &exc, "42P13"))?;
            let text: String = json
                .try_into_value(vm)
                .map_err(|_| RuntimeError::Internal("_analyze returned a non-string".into()))?;
            serde_json::from_str(&text).map_err(|e| RuntimeError::Internal(e.to_string()))
        })
    }

    fn module_for(&mut self, def: &ModuleDef) -> Result<PyObjectRef> {
        if let Some(m) = self.loaded.get(&def.name) {
            if m.version == def.generation {
                return Ok(m.module.clone());
            }
        }
        let shape_json =
            serde_json::to_string(&def.shape).map_err(|e| RuntimeError::Internal(e.to_string()))?;
        let module = self.interp.enter(|vm| {
            let module = match exec_module(vm, &def.name, &def.source, Some(&def.name)) {
                Ok(m) => m,
                Err(ExecError::Syntax(message, line)) => {
                    return Err(RuntimeError::Syntax { message, line })
                }
                Err(ExecError::Python(exc)) => return Err(python_error(vm, &exc, "P0001")),
            };
            call_prelude(
                vm,
                "_bind",
                vec![module.clone(), vm.ctx.new_str(shape_json).into()],
            )
            .map_err(|exc| python_error(vm, &exc, "XX000"))?;
            Ok(module)
        })?;
        self.loaded.insert(
            def.name.clone(),
            LoadedModule {
                version: def.generation,
                module: module.clone(),
            },
        );
        Ok(module)
    }

    fn call(
        &mut self,
        spec: &CallSpec,
        args: &[serde_json::Value],
        txn: TxnHandle,
    ) -> Result<serde_json::Value> {
        let module = self.module_for(&spec.module)?;
        let callable = spec
            .module
            .sql_function(&match &spec.class {
                Some(c) => format!(
                    "{}_{}",
                    spec.module.class(c).map(|c| c.table.as_str()).unwrap_or(""),
                    spec.function
                ),
                None => spec.function.clone(),
            })
            .ok_or_else(|| RuntimeError::Internal(format!("no function {}", spec.function)))?;
        let call_desc = serde_json::json!({
            "class": spec.class,
            "func": spec.function,
            "params": callable.function.params.iter().map(|p| (p.name.clone(), p.ty.describe())).collect::<Vec<_>>(),
            "returns": callable.function.returns.describe(),
        });
        let args_json = serde_json::Value::Array(args.to_vec()).to_string();
        native::set_context(native::CallContext {
            txn,
            store: self.store.clone(),
        });
        let _watch = (spec.deadline.is_some() || spec.cancel.is_some())
            .then(|| watchdog::watch(self.interrupt.clone(), spec.deadline, spec.cancel.clone()));
        let result = self.interp.enter(|vm| {
            let out = call_prelude(
                vm,
                "_call",
                vec![
                    module,
                    vm.ctx.new_str(call_desc.to_string()).into(),
                    vm.ctx.new_str(args_json).into(),
                ],
            )
            .map_err(|exc| python_error(vm, &exc, "P0001"))?;
            let text: String = out
                .try_into_value(vm)
                .map_err(|_| RuntimeError::Internal("_call returned a non-string".into()))?;
            serde_json::from_str(&text).map_err(|e| RuntimeError::Internal(e.to_string()))
        });
        native::clear_context();
        result
    }
}

enum ExecError {
    Syntax(String, usize),
    Python(PyBaseExceptionRef),
}

/// Compiles and runs `source` as module `name`. With `register`, the module
/// is placed in `sys.modules` (a deployed module); without, it is a scratch
/// module for analysis.
fn exec_module(
    vm: &VirtualMachine,
    name: &str,
    source: &str,
    register: Option<&str>,
) -> std::result::Result<PyObjectRef, ExecError> {
    let code = vm
        .compile(source, Mode::Exec, format!("<module {name}>"))
        .map_err(|e| {
            let (line, _col) = e.python_location();
            ExecError::Syntax(
                format!("syntax error in module {name}, line {line}: {e}"),
                line,
            )
        })?;
    let dict: PyDictRef = vm.ctx.new_dict();
    let module = vm.new_module(name, dict.clone(), None);
    // Source lines for tracebacks (never read from files: see
    // `format_traceback`).
    dict.set_item("__amber_source__", vm.ctx.new_str(source).into(), vm)
        .map_err(ExecError::Python)?;
    if name != "amber" {
        // Modules may name these in annotations without importing them.
        for pre in ["datetime", "decimal"] {
            let m = vm.import(pre, 0).map_err(ExecError::Python)?;
            dict.set_item(pre, m, vm).map_err(ExecError::Python)?;
        }
    }
    let modules = vm
        .sys_module
        .get_attr("modules", vm)
        .map_err(ExecError::Python)?;
    if name != "amber" {
        // Imports made by this module's code are checked by the sandbox.
        vm.builtins
            .get_attr("__amber_deployed__", vm)
            .and_then(|set| set.get_attr("add", vm))
            .and_then(|add| add.call((vm.ctx.new_str(name),), vm))
            .map_err(ExecError::Python)?;
    }
    if name == "amber" || register.is_some() {
        modules
            .set_item(name, module.clone().into(), vm)
            .map_err(ExecError::Python)?;
    }
    let scope = Scope::with_builtins(None, dict, vm);
    vm.run_code_obj(code, scope).map_err(ExecError::Python)?;
    Ok(module.into())
}

fn call_prelude(
    vm: &VirtualMachine,
    func: &'static str,
    args: Vec<PyObjectRef>,
) -> PyResult<PyObjectRef> {
    let amber = vm.import("amber", 0)?;
    let f = amber.get_attr(func, vm)?;
    f.call(args, vm)
}

/// (message as `Type: text`, traceback)
fn format_exception(vm: &VirtualMachine, exc: &PyBaseExceptionRef) -> (String, Option<String>) {
    let class = exc.class().name().to_string();
    let text = exc
        .as_object()
        .str(vm)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        class
    } else {
        format!("{class}: {text}")
    };
    let detail = Some(shorten_traceback(&format_traceback(vm, exc, &message)));
    (message, detail)
}

/// Frames a traceback shows at most (the innermost are cut).
const TRACEBACK_FRAMES_MAX: usize = 200;

/// The traceback as Python prints it, but never reading a file: RustPython's
/// own printer reads the source line of each frame from the file its code
/// object names, so a code object naming `/etc/passwd` put that file's lines
/// into the error. Source lines come only from deployed modules' own
/// source (`__amber_source__` in the module's globals).
fn format_traceback(vm: &VirtualMachine, exc: &PyBaseExceptionRef, message: &str) -> String {
    use std::fmt::Write;
    let mut out = String::from("Traceback (most recent call last):\n");
    let text = |o: PyObjectRef| -> String {
        o.str(vm)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut tb = exc.as_object().get_attr("__traceback__", vm).ok();
    let mut frames = 0;
    while let Some(t) = tb.take().filter(|t| !vm.is_none(t)) {
        if frames == TRACEBACK_FRAMES_MAX {
            out.push_str("  ...\n");
            break;
        }
        frames += 1;
        let frame = t.get_attr("tb_frame", vm).ok();
        let code = frame.as_ref().and_then(|f| f.get_attr("f_code", vm).ok());
        let file = code
            .as_ref()
            .and_then(|c| c.get_attr("co_filename", vm).ok())
            .map(text)
            .unwrap_or_default();
        let name = code
            .as_ref()
            .and_then(|c| c.get_attr("co_name", vm).ok())
            .map(text)
            .unwrap_or_default();
        let line: usize = t
            .get_attr("tb_lineno", vm)
            .ok()
            .and_then(|l| l.try_into_value(vm).ok())
            .unwrap_or(0);
        let _ = writeln!(out, "  File \"{file}\", line {line}, in {name}");
        if file.starts_with("<module ") {
            let source = frame
                .and_then(|f| f.get_attr("f_globals", vm).ok())
                .and_then(|g| g.get_item("__amber_source__", vm).ok())
                .map(text);
            if let Some(src) = source.and_then(|s| {
                s.lines()
                    .nth(line.saturating_sub(1))
                    .map(|l| l.trim().to_string())
            }) {
                if !src.is_empty() {
                    let _ = writeln!(out, "    {src}");
                }
            }
        }
        tb = t.get_attr("tb_next", vm).ok();
    }
    out.push_str(message);
    out
}

/// Keeps the head and the innermost frames of a long traceback (deep
/// recursion would otherwise send thousands of lines).
fn shorten_traceback(tb: &str) -> String {
    const HEAD_LINES: usize = 3;
    const TAIL_LINES: usize = 30;
    let lines: Vec<&str> = tb.lines().collect();
    if lines.len() <= HEAD_LINES + TAIL_LINES {
        return tb.trim_end().to_string();
    }
    let mut out: Vec<String> = lines[..HEAD_LINES].iter().map(|l| l.to_string()).collect();
    out.push(format!(
        "  ... {} lines omitted ...",
        lines.len() - HEAD_LINES - TAIL_LINES
    ));
    out.extend(
        lines[lines.len() - TAIL_LINES..]
            .iter()
            .map(|l| l.to_string()),
    );
    out.join("\n")
}

fn python_error(
    vm: &VirtualMachine,
    exc: &PyBaseExceptionRef,
    default_state: &str,
) -> RuntimeError {
    let (mut message, detail) = format_exception(vm, exc);
    let mut sqlstate = default_state.to_string();
    if exc.class().name().to_string() == "KeyboardInterrupt" {
        // Raised by the watchdog, never by user code (BaseException, so a
        // bare `except Exception` does not swallow it).
        let text = exc
            .as_object()
            .str(vm)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let reason = if text.contains("user request") {
            "user request"
        } else {
            "statement timeout"
        };
        return RuntimeError::Python {
            sqlstate: "57014".into(),
            message: format!("canceling statement due to {reason}"),
            detail: None,
        };
    }
    // amber.Error(sqlstate, message) picks the SQLSTATE and a bare message.
    if let Ok(state) = exc.as_object().get_attr("sqlstate", vm) {
        if let Ok(s) = state.str(vm) {
            let s = s.to_string_lossy().into_owned();
            if s.len() == 5 && s.chars().all(|c| c.is_ascii_alphanumeric()) {
                sqlstate = s;
                if let Ok(m) = exc
                    .as_object()
                    .get_attr("message", vm)
                    .and_then(|m| m.str(vm))
                {
                    message = m.to_string_lossy().into_owned();
                }
            }
        }
    }
    RuntimeError::Python {
        sqlstate,
        message,
        detail,
    }
}
