//! Interrupts Python calls that run past their deadline (statement_timeout)
//! or whose session received a cancel request.
//!
//! RustPython checks for user signals between bytecodes; the flag that says
//! "a signal is pending" is process-wide, so another interpreter may consume
//! it. The watchdog therefore keeps re-sending the interrupt every tick until
//! the call ends and drops its registration.

use rustpython_vm::signal::UserSignalSender;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often overdue calls are (re-)interrupted.
const TICK_MS: u64 = 25;
/// Upper bound on calls watched at once (one per worker in practice).
const WATCHED_MAX: usize = 4096;

struct Watched {
    id: u64,
    deadline: Option<Instant>,
    cancel: Option<Arc<AtomicBool>>,
    interrupt: UserSignalSender,
}

static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static THREAD: OnceLock<()> = OnceLock::new();

/// Unregisters the call when dropped.
pub struct Watch {
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Ok(mut w) = WATCHED.lock() {
            w.retain(|x| x.id != self.id);
        }
    }
}

pub fn watch(
    interrupt: UserSignalSender,
    deadline: Option<Instant>,
    cancel: Option<Arc<AtomicBool>>,
) -> Watch {
    THREAD.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("amber-python-watchdog".into())
            .spawn(run);
    });
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut w) = WATCHED.lock() {
        if w.len() < WATCHED_MAX {
            w.push(Watched {
                id,
                deadline,
                cancel,
                interrupt,
            });
        }
    }
    Watch { id }
}

fn run() {
    loop {
        std::thread::sleep(Duration::from_millis(TICK_MS));
        let now = Instant::now();
        let Ok(w) = WATCHED.lock() else { return };
        for call in w.iter() {
            let reason = if call
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                "user request"
            } else if call.deadline.is_some_and(|d| d <= now) {
                "statement timeout"
            } else {
                continue;
            };
            let _ = call.interrupt.send(Box::new(move |vm| {
                Err(vm.new_exception_msg(
                    vm.ctx.exceptions.keyboard_interrupt.to_owned(),
                    reason.into(),
                ))
            }));
        }
    }
}
