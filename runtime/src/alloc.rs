//! The process allocator, chosen once per process at its first allocation.
//!
//! - The server uses mimalloc: malloc and free were 13 % of the server's
//!   CPU under point reads with glibc's allocator (`perf`, bench P1), and
//!   glibc keeps freed memory in per-thread arenas long after a large
//!   query (20 MB of 108 MB after P5's queries, bench P7).
//! - A Python worker (started with [`WORKER_ENV`] set, by `Host::spawn`)
//!   keeps the system allocator, whose behaviour under its memory limit
//!   (RLIMIT_DATA) and its fork per call the sandbox was built and tested
//!   on; there a failed allocation ends the process with a status the
//!   server reads as "out of memory" (53200), instead of Rust's abort,
//!   which would look like a crash.
//!
//! The choice is made before anything is allocated (the environment is
//! read with `getenv`, which does not allocate), so no block is ever freed
//! by the other allocator.

use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

/// Set in a Python worker's (otherwise empty) environment.
pub const WORKER_ENV: &str = "AMBER_PYTHON_WORKER";
/// glibc's allocator settings for a worker (`GLIBC_TUNABLES`): one arena
/// (the `brk` heap, so the interpreter thread's objects are there too) and
/// transparent huge pages for it (`madvise`). A fork per call then copies
/// one page-table entry per 2 MiB of the interpreter's heap instead of 512,
/// and the child's exit unmaps as few (a write still copies only its 4 KiB
/// page: the kernel splits the huge page's mapping first). `fork`,
/// `exit_mmap` and page faults were 70 % of the CPU of a no-op call; with
/// this, 4.3-4.8 ms of CPU per call instead of 6.1-6.3 (bench P2', 8
/// clients, `/proc/stat` over three runs each). Where THP is off, this
/// changes nothing.
pub const WORKER_GLIBC_TUNABLES: &str = "glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1";
const WORKER_ENV_C: &std::ffi::CStr = c"AMBER_PYTHON_WORKER";

const UNDECIDED: u8 = 0;
const SERVER: u8 = 1;
const WORKER: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(UNDECIDED);

#[inline]
fn is_worker() -> bool {
    match MODE.load(Ordering::Relaxed) {
        SERVER => false,
        WORKER => true,
        _ => decide(),
    }
}

#[cold]
fn decide() -> bool {
    // Safety: getenv reads the environment block without allocating; the
    // first allocation happens before any thread could change it.
    let worker = unsafe { !libc::getenv(WORKER_ENV_C.as_ptr()).is_null() };
    MODE.store(if worker { WORKER } else { SERVER }, Ordering::Relaxed);
    worker
}

/// Checks, in the worker's main, that the worker uses the system allocator
/// (the server set [`WORKER_ENV`]).
pub(crate) fn enter_worker_mode() -> bool {
    is_worker()
}

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`;
/// the crate names no constant for it; `purge_delay_is_the_option_we_mean`
/// checks it against the option's documented default).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays committed before mimalloc returns it to the
/// OS. Its default (1 s) kept a server at 129 MB after P5's queries and a
/// COPY of 1M rows, where 0 ms gave 84 MB but made P5's GROUP BY 20 %
/// slower (pages purged mid-query and faulted in again); 50 ms gave 95 MB
/// and no slowdown (bench/run.sh's P5 and P7 shapes, by hand).
const PURGE_DELAY_MS: std::ffi::c_long = 50;

/// Tunes the server's allocator; call once, early in `main`. Nothing in a
/// worker.
pub fn tune() {
    if !is_worker() {
        // Safety: setting an option is thread-safe and takes effect for
        // later purges.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

/// Install with `#[global_allocator] static A: amber_runtime::Allocator =
/// amber_runtime::Allocator;` in the binary.
pub struct Allocator;

#[cold]
fn failed() {
    if is_worker() {
        // Safety: _exit is async-signal-safe and never returns; nothing
        // in this process must outlive an out-of-memory state.
        unsafe { libc::_exit(crate::worker::EXIT_OUT_OF_MEMORY) }
    }
}

// Safety: every method forwards to one allocator, the same for the
// process's whole life (`MODE` is decided before the first allocation and
// never changes).
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = if is_worker() {
            System.alloc(layout)
        } else {
            MiMalloc.alloc(layout)
        };
        if p.is_null() {
            failed();
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = if is_worker() {
            System.alloc_zeroed(layout)
        } else {
            MiMalloc.alloc_zeroed(layout)
        };
        if p.is_null() {
            failed();
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_worker() {
            System.dealloc(ptr, layout)
        } else {
            MiMalloc.dealloc(ptr, layout)
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = if is_worker() {
            System.realloc(ptr, layout, new_size)
        } else {
            MiMalloc.realloc(ptr, layout, new_size)
        };
        if p.is_null() {
            failed();
        }
        p
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn purge_delay_is_the_option_we_mean() {
        // Safety: reading an option.
        let v = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert!(
            v == 1000 || v == super::PURGE_DELAY_MS,
            "option {} is {v}, not mimalloc's purge delay",
            super::MI_OPTION_PURGE_DELAY
        );
    }
}
