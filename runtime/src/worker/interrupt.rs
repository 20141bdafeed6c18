//! Interrupts of the running call: the server sends SIGUSR1 with the call
//! id and the reason in the signal's value (`sigqueue`); a watcher thread
//! raises KeyboardInterrupt in the interpreter while that call runs.
//!
//! An interrupt names its call, so one that arrives after its call ended
//! never fires in the next call. Whatever the call does with the exception
//! (`except BaseException:` in a loop), the server kills this process a
//! moment past the deadline: this is the polite path, not the guarantee.

use rustpython_vm::signal::{UserSignalReceiver, UserSignalSender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How often a pending interrupt is raised again (user code may catch it).
const TICK_MS: u64 = 10;

/// The call running now (0: none).
static CURRENT: AtomicU64 = AtomicU64::new(0);
/// The last interrupt received: `call_id << 1 | reason`.
static RECEIVED: AtomicU64 = AtomicU64::new(0);
static SENDER: Mutex<Option<UserSignalSender>> = Mutex::new(None);

/// The signal value for an interrupt of `call_id` (`user`: a cancel
/// request, else statement_timeout).
pub fn encode(call_id: u64, user: bool) -> u64 {
    call_id << 1 | user as u64
}

extern "C" fn on_signal(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // Async-signal-safe: one atomic store.
    if !info.is_null() {
        // Safety: the kernel passes a valid siginfo with SA_SIGINFO.
        let value = unsafe { (*info).si_value().sival_ptr } as u64;
        RECEIVED.store(value, Ordering::SeqCst);
    }
}

pub fn install() {
    // Safety: installs a handler that only stores to an atomic.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
    }
    let _ = std::thread::Builder::new()
        .name("amber-python-interrupt".into())
        .stack_size(64 * 1024)
        .spawn(watch);
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
