//! The Python worker process: `amber __amber-python-worker` (started by
//! the server, never by a user). One RustPython interpreter serves calls
//! sent over the socket on fd 3; storage is reached only by asking the
//! server (see `protocol`), which checks every key and value.
//!
//! A fault here ends this process only: an allocation past the memory
//! limit exits with [`EXIT_OUT_OF_MEMORY`], a panic or a stack overflow
//! exits or aborts, and the server fails the call and starts a new worker.

mod dumps;
mod interp;
mod interrupt;
mod native;
mod sandbox;
mod seccomp;
mod traceback;

pub(crate) use interrupt::encode as interrupt_value;

use crate::protocol::{self, FromWorker, ToWorker};
use crate::RuntimeError;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

/// The argument that makes the `amber` binary a worker.
pub const WORKER_ARG: &str = "__amber-python-worker";
/// The fd the server hands the worker its end of the socketpair on.
pub(crate) const SOCKET_FD: i32 = 3;
/// Exit status of a worker whose allocation failed (memory limit).
pub const EXIT_OUT_OF_MEMORY: i32 = 86;
/// Exit status of a worker that met a protocol error or panicked.
pub const EXIT_FAILED: i32 = 87;
/// Native stack of the interpreter thread: deep Python recursion must hit
/// RecursionError long before it overflows this.
/// The largest result one call may return (its JSON encoding): PostgreSQL
/// caps one value at 1 GB; a quarter of that keeps a few concurrent large
/// results within the server's memory. Beyond it the call fails with 54000
/// (program_limit_exceeded).
pub const RESULT_BYTES_MAX: usize = 256 << 20;

const INTERPRETER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Runs the worker; returns the process exit status. `args` are the
/// arguments after [`WORKER_ARG`]: the memory limit in bytes, then
/// optionally `debug` (panics are printed on the inherited stderr).
pub fn worker_main(args: &[String]) -> i32 {
    if !crate::alloc::enter_worker_mode() {
        // Started by hand, not by the server: the allocator is the
        // server's, and an allocation failure would abort.
        eprintln!(
            "amber python worker: {} is not set; workers are started by the server",
            crate::alloc::WORKER_ENV
        );
        return EXIT_FAILED;
    }
    let memory_bytes: u64 = match args.first().and_then(|a| a.parse().ok()) {
        Some(m) => m,
        None => return EXIT_FAILED,
    };
    // Safety: the server passes the socket on fd 3 (dup2 before exec) and
    // nothing else in this process owns it.
    let sock = unsafe { UnixStream::from_raw_fd(SOCKET_FD) };
    if let Err(e) = set_memory_limit(memory_bytes) {
        eprintln!("amber python worker: {e}");
        return EXIT_FAILED;
    }
    // Panics are reported to the server as the call's error; stderr is
    // /dev/null.
    if args.get(1).map(String::as_str) != Some("debug") {
        std::panic::set_hook(Box::new(|_| {}));
    }
    interrupt::install();
    let thread = std::thread::Builder::new()
        .name("amber-python".into())
        .stack_size(INTERPRETER_STACK_BYTES)
        .spawn(move || serve(sock));
    match thread.map(|t| t.join()) {
        Ok(Ok(code)) => code,
        _ => EXIT_FAILED,
    }
}

const PANIC_PREFIX: &str = "Python worker failed: ";

/// Runs `f`, turning a panic of the interpreter into an error of the call.
fn guarded(f: impl FnOnce() -> Result<String, RuntimeError>) -> Result<String, RuntimeError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        Err(RuntimeError::Internal(format!("{PANIC_PREFIX}{text}")))
    })
}

/// Runs one call in a child process forked from this one, so that nothing
/// the call changes in the interpreter (module globals, classes, imported
/// modules, builtins) outlives it: every call starts from the same state,
/// whichever worker runs it and whatever calls ran or rolled back before.
/// Returns the message for the server if the child died without answering.
fn fork_call(worker: &mut interp::Worker, mut call: protocol::CallMsg) -> Option<FromWorker> {
    // Safety: the child runs only this thread's code (the interpreter is
    // owned by this thread; no other thread of this process holds a lock
    // the child takes) and ends with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Some(FromWorker::Done {
            writes: Vec::new(),
            outcome: Err(RuntimeError::Internal(
                "fork of the Python worker failed".into(),
            )),
        });
    }
    if pid == 0 {
        // Safety: plain syscalls in the child.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        interrupt::begin_call(call.call_id);
        interrupt::start_watcher();
        if seccomp::install_call().is_err() {
            unsafe { libc::_exit(EXIT_FAILED) };
        }
        native::begin_call(std::mem::take(&mut call.prefetched));
        let outcome = guarded(|| {
            worker.call(
                &call.module,
                call.generation,
                &call.desc_json,
                &call.args_json,
            )
        });
        interrupt::end_call();
        let outcome = outcome.and_then(|json| {
            if json.len() > RESULT_BYTES_MAX {
                Err(RuntimeError::python(
                    "54000",
                    format!(
                        "result of {} is {} bytes, more than the {} a call may return",
                        call.module,
                        json.len(),
                        RESULT_BYTES_MAX
                    ),
                ))
            } else {
                Ok(json)
            }
        });
        let done = FromWorker::Done {
            writes: native::end_call(),
            outcome,
        };
        let code = if native::send(&done).is_ok() {
            0
        } else {
            EXIT_FAILED
        };
        // Safety: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let status = interrupt::wait_child(pid);
    match status {
        ChildEnd::Exited(0) => None,
        end => Some(FromWorker::Died(end)),
    }
}

pub use protocol::ChildEnd;

fn serve(sock: UnixStream) -> i32 {
    let mut reader = match sock.try_clone() {
        Ok(r) => r,
        Err(_) => return EXIT_FAILED,
    };
    native::connect(sock);
    let mut worker = interp::Worker::new();
    // Everything that needed the host (the binary, the frozen stdlib) is
    // in place: from here on, no host access at all.
    if let Err(e) = seccomp::install_parent() {
        eprintln!("amber python worker: {e}");
        return EXIT_FAILED;
    }
    if native::send(&FromWorker::Ready).is_err() {
        return EXIT_FAILED;
    }
    loop {
        let msg: ToWorker = match protocol::recv(&mut reader) {
            Ok(m) => m,
            // The server closed the socket: it is stopping or replaced us.
            Err(_) => return 0,
        };
        let reply = match msg {
            ToWorker::Analyze { name, source } => {
                let outcome = guarded(|| worker.analyze(&name, &source));
                FromWorker::Analyzed(outcome)
            }
            ToWorker::Call(call) => {
                let mut call = *call;
                // The module is loaded here, in the parent, so that every
                // call's child starts from it; loading it runs only the
                // module's own top-level code, the same for every call.
                match guarded(|| worker.prepare(&call.module, call.generation, call.load.take())) {
                    Err(e) => FromWorker::Done {
                        writes: Vec::new(),
                        outcome: Err(e),
                    },
                    Ok(_) => match fork_call(&mut worker, call) {
                        Some(died) => died,
                        // The child answered the server itself.
                        None => continue,
                    },
                }
            }
            ToWorker::Reply(_) => return EXIT_FAILED,
        };
        let panicked = matches!(
            &reply,
            FromWorker::Done { outcome: Err(RuntimeError::Internal(m)), .. }
                | FromWorker::Analyzed(Err(RuntimeError::Internal(m)))
                if m.starts_with(PANIC_PREFIX)
        );
        if native::send(&reply).is_err() || panicked {
            // After a panic the interpreter may be in any state: this
            // worker ends and the server starts a fresh one.
            return EXIT_FAILED;
        }
    }
}

/// Caps the worker's data segment and anonymous mappings (the heap),
/// so a memory bomb fails an allocation here instead of exhausting the
/// machine.
fn set_memory_limit(bytes: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // Safety: plain syscall on a stack value.
    if unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
