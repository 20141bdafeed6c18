//! Interrupts of the running call. The server sends the worker (the parent
//! process) SIGUSR1 with the call id and the reason in the signal's value
//! (`sigqueue`), repeated every tick; the parent, waiting for the call's
//! child, forwards it; in the child a watcher thread raises
//! KeyboardInterrupt in the interpreter while that call runs.
//!
//! An interrupt names its call, so one that arrives after its call ended
//! never fires in another call. Whatever the call does with the exception
//! (`except BaseException:` in a loop, or native code that never checks),
//! the server sends SIGUSR2 a moment past the deadline, on which the parent
//! kills the child: the interrupt is the polite path, the kill the
//! guarantee.

use rustpython_vm::signal::{UserSignalReceiver, UserSignalSender};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How often a pending interrupt is raised again (user code may catch it).
const TICK_MS: u64 = 10;

/// The call running now (0: none).
static CURRENT: AtomicU64 = AtomicU64::new(0);
/// The last interrupt received: `call_id << 1 | reason`.
static RECEIVED: AtomicU64 = AtomicU64::new(0);
static SENDER: Mutex<Option<UserSignalSender>> = Mutex::new(None);
/// Set by SIGUSR2: kill the running child.
static KILL: AtomicBool = AtomicBool::new(false);

/// The signal value for an interrupt of `call_id` (`user`: a cancel
/// request, else statement_timeout).
pub fn encode(call_id: u64, user: bool) -> u64 {
    call_id << 1 | user as u64
}

extern "C" fn on_kill(_sig: libc::c_int) {
    KILL.store(true, Ordering::SeqCst);
}

extern "C" fn on_signal(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // Async-signal-safe: one atomic store.
    if !info.is_null() {
        // Safety: the kernel passes a valid siginfo with SA_SIGINFO.
        let value = unsafe { (*info).si_value().sival_ptr } as u64;
        RECEIVED.store(value, Ordering::SeqCst);
    }
}

/// Installs the handlers. Without SA_RESTART, so that a signal ends the
/// parent's waitpid (std's reads and writes retry on EINTR by themselves).
pub fn install() {
    // Safety: installs handlers that only store to atomics.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
        let mut kill: libc::sigaction = std::mem::zeroed();
        kill.sa_sigaction = on_kill as *const () as usize;
        libc::sigemptyset(&mut kill.sa_mask);
        libc::sigaction(libc::SIGUSR2, &kill, std::ptr::null_mut());
    }
}

/// Starts the watcher (in a call's child: the parent has no threads but
/// its interpreter's, so that a fork never copies a held lock).
/// Returns once the thread runs, so that the call's filter (installed
/// next) never lands in the middle of its start-up.
pub fn start_watcher() {
    let (started, wait) = std::sync::mpsc::sync_channel::<()>(1);
    let spawned = std::thread::Builder::new()
        .name("amber-python-interrupt".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let _ = started.send(());
            watch()
        });
    if spawned.is_ok() {
        let _ = wait.recv();
    }
}

/// Waits for a call's child to end, forwarding interrupts to it and
/// killing it on SIGUSR2.
pub fn wait_child(pid: libc::pid_t) -> super::ChildEnd {
    KILL.store(false, Ordering::SeqCst);
    let mut forwarded = 0u64;
    loop {
        let received = RECEIVED.load(Ordering::SeqCst);
        if received != 0 && received != forwarded {
            let value = libc::sigval {
                sival_ptr: received as usize as *mut libc::c_void,
            };
            // Safety: plain syscall to our own child.
            unsafe { libc::sigqueue(pid, libc::SIGUSR1, value) };
            forwarded = received;
        }
        if KILL.swap(false, Ordering::SeqCst) {
            // Safety: plain syscall to our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let mut status = 0;
        // Safety: plain syscall on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return if libc::WIFEXITED(status) {
                super::ChildEnd::Exited(libc::WEXITSTATUS(status))
            } else if libc::WIFSIGNALED(status) {
                super::ChildEnd::Signaled(libc::WTERMSIG(status))
            } else {
                continue;
            };
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return super::ChildEnd::Lost;
        }
    }
}

/// The receiving end for the interpreter (`set_user_signal_channel`).
pub fn channel() -> UserSignalReceiver {
    let (tx, rx) = rustpython_vm::signal::user_signal_channel();
    if let Ok(mut s) = SENDER.lock() {
        *s = Some(tx);
    }
    rx
}

pub fn begin_call(call_id: u64) {
    CURRENT.store(call_id, Ordering::SeqCst);
}

pub fn end_call() {
    CURRENT.store(0, Ordering::SeqCst);
}

fn watch() {
    loop {
        std::thread::sleep(Duration::from_millis(TICK_MS));
        let current = CURRENT.load(Ordering::SeqCst);
        let received = RECEIVED.load(Ordering::SeqCst);
        if current == 0 || received >> 1 != current {
            continue;
        }
        let reason = if received & 1 == 1 {
            "canceling statement due to user request"
        } else {
            "canceling statement due to statement timeout"
        };
        let Ok(sender) = SENDER.lock() else { return };
        if let Some(s) = sender.as_ref() {
            let _ = s.send(Box::new(move |vm| {
                // Raised only in the call it was sent for.
                if CURRENT.load(Ordering::SeqCst) != current {
                    return Ok(());
                }
                Err(vm.new_exception_msg(
                    vm.ctx.exceptions.keyboard_interrupt.to_owned(),
                    reason.into(),
                ))
            }));
        }
    }
}
