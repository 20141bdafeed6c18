//! The process allocator. In the server it is the system allocator. In a
//! Python worker an allocation that fails (the memory limit) ends the
//! process with a status the server reads as "out of memory" (53200),
//! instead of Rust's abort, which would look like a crash.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

static WORKER: AtomicBool = AtomicBool::new(false);

pub(crate) fn enter_worker_mode() {
    WORKER.store(true, Ordering::SeqCst);
}

/// Install with `#[global_allocator] static A: amber_runtime::Allocator =
/// amber_runtime::Allocator;` in the binary.
pub struct Allocator;

#[cold]
fn failed() {
    if WORKER.load(Ordering::Relaxed) {
        // Safety: _exit is async-signal-safe and never returns; nothing
        // in this process must outlive an out-of-memory state.
        unsafe { libc::_exit(crate::worker::EXIT_OUT_OF_MEMORY) }
    }
}

// Safety: every method forwards to the system allocator unchanged.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if p.is_null() {
            failed();
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if p.is_null() {
            failed();
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if p.is_null() {
            failed();
        }
        p
    }
}
