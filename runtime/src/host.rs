//! The server's side of one Python worker process: starting it, sending a
//! call, serving its requests against the call's transaction, enforcing the
//! deadline, and reading how it ended when it dies.
//!
//! Architecture invariant: everything a worker sends is untrusted. A key
//! is served or written only if it belongs to the called module (its
//! classes' objects, its declared variables); an object is written only if
//! this call read or created it; every value is canonicalized against its
//! column's type by [`CallServices`] before it is stored.

use crate::protocol::{
    self, CallMsg, FromWorker, KeyValue, ModuleLoad, Op, Reply, ToWorker, Write,
    OIDS_PER_REQUEST_MAX,
};
use crate::{CallServices, CallSpec, RuntimeError, TxnHandle, WorkerConfig};
use amber_catalog::{
    class_prefix, global_key, object_key, object_of_key, row, Catalog, ClassDef, GlobalDef,
    ModuleDef,
};
use amber_storage::Store;
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often a waiting server looks at the deadline and the cancel flag.
const TICK_MS: u64 = 25;
/// How long a worker may take to start (interpreter, prelude).
const START_TIMEOUT_MS: u64 = 60_000;
/// How long past its deadline (or cancel) a call may run before its worker
/// is killed: the interrupt is polite, the kill is the guarantee.
pub const KILL_GRACE_MS: u64 = 1_000;
/// Object ids a worker may hold unused (ids are never reused, so a loop
/// asking for ids must not exhaust them or the server's memory).
const SPARE_OIDS_MAX: usize = 1 << 20;
/// Objects one `where()` lookup may return (each travels to the worker
/// as JSON; the whole reply is bounded by the protocol's message limit).
const INDEX_SCAN_ROWS_MAX: usize = 1_000_000;
/// How long a worker whose socket closed gets to finish exiting.
const EXIT_WAIT_MS: u64 = 200;

pub(crate) struct Host {
    child: Child,
    sock: UnixStream,
    /// Module name -> generation this worker has executed.
    loaded: HashMap<String, u64>,
    /// Why the running call was interrupted, if it was.
    interrupted: Option<&'static str>,
}

/// Why waiting for the worker stopped.
enum Stopped {
    Interrupted(&'static str),
    Died(RuntimeError),
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    pub fn spawn(config: &WorkerConfig) -> Result<Host, RuntimeError> {
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| RuntimeError::Internal(format!("socketpair: {e}")))?;
        let fd = theirs.into_raw_fd();
        let mut cmd = Command::new(&config.exe);
        cmd.arg(crate::worker::WORKER_ARG)
            .arg(config.memory_bytes.to_string())
            .args(config.stderr_inherit.then_some("debug"))
            .env_clear()
            .env(crate::alloc::WORKER_ENV, "1")
            .env("GLIBC_TUNABLES", crate::alloc::WORKER_GLIBC_TUNABLES)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if config.stderr_inherit {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        let target = crate::worker::SOCKET_FD;
        // Safety: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if fd == target {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The worker dies with the server thread that owns it.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let spawned = cmd.spawn();
        // Safety: `fd` came from into_raw_fd above and is closed once.
        unsafe { libc::close(fd) };
        let child = spawned
            .map_err(|e| RuntimeError::Internal(format!("starting a Python worker: {e}")))?;
        let mut host = Host {
            child,
            sock: ours,
            loaded: HashMap::new(),
            interrupted: None,
        };
        let ready = Instant::now() + Duration::from_millis(START_TIMEOUT_MS);
        match host.receive(Some(ready), None, 0, false) {
            Ok(FromWorker::Ready) => Ok(host),
            Ok(_) => Err(RuntimeError::Internal("Python worker did not start".into())),
            Err(Stopped::Died(e)) => Err(e),
            Err(Stopped::Interrupted(_)) => Err(RuntimeError::Internal(
                "Python worker did not start in time".into(),
            )),
        }
    }

    fn send(&mut self, msg: &ToWorker) -> Result<(), RuntimeError> {
        protocol::send(&mut self.sock, msg).map_err(|_| self.death())
    }

    /// Waits for the next message. At the deadline or on cancel the call is
    /// interrupted (repeated every tick, so none is lost to a race); after
    /// [`KILL_GRACE_MS`] the worker kills the call's child; if even that
    /// goes unanswered (or `child` is false: analysis runs in the worker
    /// itself), the worker is killed.
    fn receive(
        &mut self,
        deadline: Option<Instant>,
        cancel: Option<&std::sync::atomic::AtomicBool>,
        call_id: u64,
        child: bool,
    ) -> Result<FromWorker, Stopped> {
        let mut since: Option<Instant> = None;
        loop {
            let mut pfd = libc::pollfd {
                fd: self.sock.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // Safety: one valid pollfd on the stack.
            let ready = unsafe { libc::poll(&mut pfd, 1, TICK_MS as i32) };
            if ready > 0 {
                return protocol::recv(&mut self.sock).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        let _ = self.child.kill();
                        let _ = self.child.wait();
                        Stopped::Died(RuntimeError::python(
                            "54000",
                            format!("Python worker message refused: {e}"),
                        ))
                    } else {
                        Stopped::Died(self.death())
                    }
                });
            }
            let now = Instant::now();
            if since.is_none() {
                let user = cancel.is_some_and(|c| c.load(Ordering::Relaxed));
                let late = deadline.is_some_and(|d| now >= d);
                if user || late {
                    self.interrupted = Some(if user {
                        "user request"
                    } else {
                        "statement timeout"
                    });
                    since = Some(now);
                }
            }
            let Some(start) = since else { continue };
            let grace = Duration::from_millis(KILL_GRACE_MS);
            let elapsed = now.duration_since(start);
            if elapsed < grace {
                self.signal_interrupt(call_id, self.interrupted == Some("user request"));
            } else if child && elapsed < grace * 2 {
                self.signal(libc::SIGUSR2);
            } else {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(Stopped::Interrupted(
                    self.interrupted.unwrap_or("statement timeout"),
                ));
            }
        }
    }

    fn signal(&self, sig: libc::c_int) {
        // Safety: plain syscall; the pid is our child's (reaped only by us).
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
    }

    fn signal_interrupt(&self, call_id: u64, user: bool) {
        let value = crate::worker::interrupt_value(call_id, user);
        let sigval = libc::sigval {
            sival_ptr: value as usize as *mut libc::c_void,
        };
        // Safety: plain syscall; the pid is our child's (reaped only by us).
        unsafe { libc::sigqueue(self.child.id() as libc::pid_t, libc::SIGUSR1, sigval) };
    }

    /// How the worker ended, once its socket failed.
    fn death(&mut self) -> RuntimeError {
        // The socket failed: the worker is exiting or has exited. Give it a
        // moment so that its own status (out of memory, a signal) is what
        // is reported, then make sure it is gone.
        let until = Instant::now() + Duration::from_millis(EXIT_WAIT_MS);
        while Instant::now() < until && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(s) => child_error(match (s.code(), s.signal()) {
                (Some(code), _) => protocol::ChildEnd::Exited(code),
                (None, Some(sig)) => protocol::ChildEnd::Signaled(sig),
                (None, None) => protocol::ChildEnd::Lost,
            }),
            Err(e) => RuntimeError::Internal(format!("Python worker lost: {e}")),
        }
    }

    pub fn analyze(
        &mut self,
        name: &str,
        source: &str,
        deadline: Option<Instant>,
        cancel: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<String, RuntimeError> {
        self.send(&ToWorker::Analyze {
            name: name.to_string(),
            source: source.to_string(),
        })?;
        match self.receive(deadline, cancel, 0, false) {
            Ok(FromWorker::Analyzed(r)) => r,
            Ok(_) => Err(RuntimeError::Internal(
                "unexpected message from a Python worker".into(),
            )),
            Err(Stopped::Died(e)) => Err(e),
            Err(Stopped::Interrupted(reason)) => Err(canceled(reason)),
        }
    }

    /// Runs one call in `txn`. After an error the host may be dead
    /// (`is_alive`), and is then replaced.
    pub fn call(&mut self, call: &CallRun<'_>) -> Result<String, RuntimeError> {
        let module = &call.spec.module;
        let mut state = CallState::new(module);
        self.interrupted = None;
        self.run_call(call, &mut state)
    }

    fn run_call(
        &mut self,
        call: &CallRun<'_>,
        state: &mut CallState<'_>,
    ) -> Result<String, RuntimeError> {
        let module = &call.spec.module;
        let load = (self.loaded.get(&module.name) != Some(&module.generation))
            .then(|| -> Result<ModuleLoad, RuntimeError> {
                Ok(ModuleLoad {
                    source: module.source.clone(),
                    shape_json: serde_json::to_string(&module.shape)
                        .map_err(|e| RuntimeError::Internal(e.to_string()))?,
                })
            })
            .transpose()?;
        let prefetched = state.prefetch(call)?;
        self.send(&ToWorker::Call(Box::new(CallMsg {
            call_id: call.call_id,
            module: module.name.clone(),
            generation: module.generation,
            load,
            desc_json: call.desc_json.clone(),
            args_json: call.args_json.clone(),
            prefetched,
        })))?;
        // From here the worker has the module (or will fail loading it,
        // in which case it is not marked loaded below).
        loop {
            let msg = match self.receive(
                call.spec.deadline,
                call.spec.cancel.as_deref(),
                call.call_id,
                true,
            ) {
                Ok(m) => m,
                Err(Stopped::Died(e)) => return Err(e),
                Err(Stopped::Interrupted(reason)) => return Err(canceled(reason)),
            };
            match msg {
                FromWorker::Request { writes, op } => {
                    let reply = match state
                        .apply(call, writes)
                        .and_then(|()| state.serve(call, op))
                    {
                        Ok(r) => r,
                        Err(e) => {
                            let reply = Reply::Error {
                                sqlstate: e.sqlstate().to_string(),
                                message: e.to_string(),
                            };
                            // Refused writes fail the call whatever Python
                            // does with the exception.
                            state.failed.get_or_insert(e);
                            reply
                        }
                    };
                    self.send(&ToWorker::Reply(reply))?;
                }
                FromWorker::Died(end) => {
                    return Err(match self.interrupted {
                        Some(reason) => canceled(reason),
                        None => child_error(end),
                    })
                }
                FromWorker::Done { writes, outcome } => {
                    if !matches!(outcome, Err(RuntimeError::Syntax { .. })) {
                        self.loaded.insert(module.name.clone(), module.generation);
                    }
                    let applied = state.apply(call, writes);
                    if let Some(e) = state.failed.take() {
                        return Err(e);
                    }
                    applied?;
                    return outcome;
                }
                _ => {
                    return Err(RuntimeError::Internal(
                        "unexpected message from a Python worker".into(),
                    ))
                }
            }
        }
    }

    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// The error of a call whose process (the call's child, or the worker
/// itself) ended without answering.
fn child_error(end: protocol::ChildEnd) -> RuntimeError {
    use protocol::ChildEnd;
    let message = match end {
        ChildEnd::Exited(crate::worker::EXIT_OUT_OF_MEMORY) => return out_of_memory(),
        ChildEnd::Exited(code) => format!("Python process exited with status {code}"),
        ChildEnd::Signaled(sig) => format!("Python process terminated by signal {sig}"),
        ChildEnd::Lost => "Python process lost".to_string(),
    };
    RuntimeError::python("XX000", message)
}

fn out_of_memory() -> RuntimeError {
    RuntimeError::Python {
        sqlstate: "53200".into(),
        message: "out of memory".into(),
        detail: Some("A Python procedure exceeded the worker memory limit.".into()),
    }
}

fn canceled(reason: &str) -> RuntimeError {
    RuntimeError::python("57014", format!("canceling statement due to {reason}"))
}

fn refused(message: String) -> RuntimeError {
    RuntimeError::python("42501", message)
}

/// One call as the host runs it.
pub(crate) struct CallRun<'a> {
    pub call_id: u64,
    pub spec: &'a CallSpec,
    pub desc_json: String,
    pub args_json: String,
    /// Object ids of the arguments: (class name, oid).
    pub object_args: Vec<(String, u64)>,
    /// The module variables the called function may use (all if `None`).
    pub globals: Option<&'a [String]>,
    pub txn: &'a TxnHandle,
    pub store: &'a Store,
    pub services: &'a dyn CallServices,
}

/// What the worker may touch in this call.
struct CallState<'m> {
    module: &'m ModuleDef,
    classes: HashMap<u64, &'m ClassDef>,
    globals: HashMap<Vec<u8>, &'m GlobalDef>,
    /// Objects this call read (existing) or created: the only ones it may
    /// write or delete. Created ones keep their class.
    known: HashSet<(u64, u64)>,
    spare_oids: HashSet<u64>,
    failed: Option<RuntimeError>,
}

fn lock(txn: &TxnHandle) -> Result<std::sync::MutexGuard<'_, amber_storage::Txn>, RuntimeError> {
    txn.lock()
        .map_err(|_| RuntimeError::Internal("transaction lock poisoned".into()))
}

fn storage(e: amber_storage::StorageError) -> RuntimeError {
    RuntimeError::python(e.sqlstate(), e.to_string())
}

impl<'m> CallState<'m> {
    fn new(module: &'m ModuleDef) -> CallState<'m> {
        CallState {
            module,
            classes: module.shape.classes.iter().map(|c| (c.id, c)).collect(),
            globals: module
                .shape
                .globals
                .iter()
                .map(|g| (global_key(&module.name, &g.name), g))
                .collect(),
            known: HashSet::new(),
            spare_oids: HashSet::new(),
            failed: None,
        }
    }

    /// An object of class `cid` as Python reads it: JSON keyed by
    /// attribute name (objects are stored as binary rows).
    fn object_json(&self, cid: u64, stored: Vec<u8>) -> Result<String, RuntimeError> {
        if row::is_json(&stored) {
            return utf8(stored);
        }
        let class = self
            .classes
            .get(&cid)
            .ok_or_else(|| RuntimeError::Internal(format!("object of unknown class {cid}")))?;
        let obj = row::decode(class, &stored)
            .map_err(|e| RuntimeError::python("XX001", e.to_string()))?;
        serde_json::to_string(&obj).map_err(|e| RuntimeError::Internal(e.to_string()))
    }

    fn read_object(
        &self,
        txn: &amber_storage::Txn,
        cid: u64,
        key: &[u8],
    ) -> Result<Option<String>, RuntimeError> {
        match txn.get(key).map_err(storage)? {
            Some(v) => Ok(Some(self.object_json(cid, v)?)),
            None => Ok(None),
        }
    }

    fn outside(&self, key: &[u8]) -> RuntimeError {
        refused(format!(
            "permission denied: a procedure of module {} reaches only its own objects and module variables (key {})",
            self.module.name,
            key.escape_ascii()
        ))
    }

    /// The call's self object and object arguments, and the module
    /// variables it may use, read before the call so that it needs no
    /// round trip.
    fn prefetch(&mut self, call: &CallRun<'_>) -> Result<Vec<KeyValue>, RuntimeError> {
        let txn = lock(call.txn)?;
        // The version called is the one this transaction sees (and a
        // deploy committed later conflicts with it).
        Catalog::check_current(&txn, self.module)
            .map_err(|e| RuntimeError::python(e.sqlstate(), e.to_string()))?;
        let mut out = Vec::new();
        for (class, oid) in &call.object_args {
            for cid in self.module.class_ids_with_subclasses(class) {
                let key = object_key(cid, *oid);
                let value = self.read_object(&txn, cid, &key)?;
                let found = value.is_some();
                out.push((key, value));
                if found {
                    self.known.insert((cid, *oid));
                    break;
                }
            }
        }
        // Only the variables the function may use join the read set: a
        // call that never names `counter` does not conflict with one that
        // increments it.
        for (key, global) in &self.globals {
            if call
                .globals
                .is_some_and(|names| !names.contains(&global.name))
            {
                continue;
            }
            let value = read(&txn, key)?;
            out.push((key.clone(), value));
        }
        Ok(out)
    }

    fn apply(&mut self, call: &CallRun<'_>, writes: Vec<Write>) -> Result<(), RuntimeError> {
        if writes.is_empty() {
            return Ok(());
        }
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut txn = lock(call.txn)?;
        for w in writes {
            match w {
                Write::Put(key, value) => {
                    if let Some((cid, oid)) = object_of_key(&key) {
                        let class = *self.classes.get(&cid).ok_or_else(|| self.outside(&key))?;
                        self.writable(cid, oid, &key)?;
                        call.services.put_object(
                            &mut txn,
                            &self.module.name,
                            class,
                            oid,
                            &value,
                        )?;
                    } else if let Some(g) = self.globals.get(&key) {
                        let stored = call
                            .services
                            .global(g, &value)
                            .map_err(|(s, m)| RuntimeError::python(&s, m))?;
                        txn.put(&key, &stored).map_err(storage)?;
                    } else {
                        return Err(self.outside(&key));
                    }
                }
                Write::Delete(key) => {
                    let (cid, oid) = object_of_key(&key).ok_or_else(|| self.outside(&key))?;
                    let class = *self.classes.get(&cid).ok_or_else(|| self.outside(&key))?;
                    self.writable(cid, oid, &key)?;
                    call.services.delete_object(&mut txn, class, oid)?;
                }
            }
        }
        Ok(())
    }

    /// An object may be written if this call read it, or created it under
    /// an id the server handed this worker (which then belongs to the
    /// class it is first written with).
    fn writable(&mut self, cid: u64, oid: u64, key: &[u8]) -> Result<(), RuntimeError> {
        if self.known.contains(&(cid, oid)) || self.spare_oids.remove(&oid) {
            self.known.insert((cid, oid));
            return Ok(());
        }
        Err(refused(format!(
            "permission denied: object {oid} was neither read nor created by this call (key {})",
            key.escape_ascii()
        )))
    }

    fn serve(&mut self, call: &CallRun<'_>, op: Op) -> Result<Reply, RuntimeError> {
        match op {
            Op::Flush => Ok(Reply::Value(None)),
            Op::Get(key) => {
                if let Some((cid, oid)) = object_of_key(&key) {
                    if !self.classes.contains_key(&cid) {
                        return Err(self.outside(&key));
                    }
                    let v = self.read_object(&*lock(call.txn)?, cid, &key)?;
                    if v.is_some() {
                        self.known.insert((cid, oid));
                    }
                    Ok(Reply::Value(v))
                } else if self.globals.contains_key(&key) {
                    Ok(Reply::Value(read(&*lock(call.txn)?, &key)?))
                } else {
                    Err(self.outside(&key))
                }
            }
            Op::Scan(prefix) => {
                // Only the whole of one of the module's classes.
                if !self.classes.keys().any(|cid| class_prefix(*cid) == prefix) {
                    return Err(self.outside(&prefix));
                }
                let rows = lock(call.txn)?.scan_prefix(&prefix).map_err(storage)?;
                let mut out = Vec::with_capacity(rows.len());
                for (k, v) in rows {
                    let (c, oid) = object_of_key(&k)
                        .ok_or_else(|| RuntimeError::Internal("corrupt object key".into()))?;
                    self.known.insert((c, oid));
                    out.push((k, self.object_json(c, v)?));
                }
                Ok(Reply::Rows(out))
            }
            Op::IndexScan {
                class_id,
                index_id,
                values_json,
            } => {
                let prefix = class_prefix(class_id);
                let class = *self
                    .classes
                    .get(&class_id)
                    .ok_or_else(|| self.outside(&prefix))?;
                let Some(index) = class.indexes.iter().find(|i| i.id == index_id) else {
                    return Err(self.outside(&prefix));
                };
                let txn = lock(call.txn)?;
                let oids = match call.services.index_lookup(
                    &txn,
                    class,
                    index,
                    &values_json,
                    INDEX_SCAN_ROWS_MAX + 1,
                ) {
                    Ok(oids) => oids,
                    // A value of the wrong type is Python's to catch.
                    Err(e) => {
                        return Ok(Reply::Error {
                            sqlstate: e.sqlstate().to_string(),
                            message: e.to_string(),
                        })
                    }
                };
                if oids.len() > INDEX_SCAN_ROWS_MAX {
                    return Err(RuntimeError::python(
                        "54000",
                        format!("a where() may read at most {INDEX_SCAN_ROWS_MAX} objects"),
                    ));
                }
                let mut out = Vec::with_capacity(oids.len());
                for oid in oids {
                    let key = object_key(class_id, oid);
                    if let Some(v) = self.read_object(&txn, class_id, &key)? {
                        self.known.insert((class_id, oid));
                        out.push((key, v));
                    }
                }
                Ok(Reply::Rows(out))
            }
            Op::NewOids(n) => {
                let n = n.clamp(1, OIDS_PER_REQUEST_MAX);
                if self.spare_oids.len() + n as usize > SPARE_OIDS_MAX {
                    return Err(RuntimeError::python(
                        "54000",
                        format!(
                            "a call may hold at most {SPARE_OIDS_MAX} object ids it has not stored"
                        ),
                    ));
                }
                let mut oids = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let oid = call.store.allocate_oid().map_err(storage)?;
                    self.spare_oids.insert(oid);
                    oids.push(oid);
                }
                Ok(Reply::Oids(oids))
            }
            Op::Sql { query, params_json } => {
                // Atomic, as each plpy.execute: a statement that fails
                // leaves nothing, and the procedure may catch its error.
                let sp = lock(call.txn)?.savepoint().map_err(storage)?;
                let result = call.services.sql(
                    &query,
                    &params_json,
                    call.txn,
                    call.spec.deadline,
                    call.spec.cancel.as_ref(),
                );
                let mut txn = lock(call.txn)?;
                match result {
                    Ok(rows) => {
                        txn.release(sp);
                        Ok(Reply::Sql(rows))
                    }
                    Err((sqlstate, message)) => {
                        txn.rollback_to(sp).map_err(storage)?;
                        Ok(Reply::Error { sqlstate, message })
                    }
                }
            }
        }
    }
}

fn utf8(v: Vec<u8>) -> Result<String, RuntimeError> {
    String::from_utf8(v).map_err(|_| RuntimeError::Internal("stored value is not UTF-8".into()))
}

fn read(txn: &amber_storage::Txn, key: &[u8]) -> Result<Option<String>, RuntimeError> {
    txn.get(key).map_err(storage)?.map(utf8).transpose()
}
