//! A fault layer for durability tests, loaded into `amber` with
//! `LD_PRELOAD`. It replaces `fsync` and `fdatasync` (which Rust's
//! `File::sync_all`/`sync_data`, and so fjall, call) and, when
//! `AMBER_FSYNC_SHIM_DIR` names a directory:
//!
//! - appends `<fsync|fdatasync> <fd> <start_ns> <end_ns> <result>` to
//!   `<dir>/log` for every call, with CLOCK_MONOTONIC times a test can
//!   compare with its own;
//! - sleeps `<dir>/delay_ms` milliseconds before syncing, if that file
//!   exists, so a test can see what waits for the sync;
//! - fails with EIO without syncing while `<dir>/fail` exists.
//!
//! Without the variable it only forwards to the C library.

use std::ffi::{c_char, c_int};
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

type SyncFn = unsafe extern "C" fn(c_int) -> c_int;

fn real(name: &'static [u8]) -> Option<SyncFn> {
    // SAFETY: `name` is NUL-terminated; RTLD_NEXT finds the C library's
    // definition behind this one; the symbol has the C signature of SyncFn.
    let sym = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr() as *const c_char) };
    if sym.is_null() {
        None
    } else {
        Some(unsafe { std::mem::transmute::<*mut libc::c_void, SyncFn>(sym) })
    }
}

fn dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| std::env::var_os("AMBER_FSYNC_SHIM_DIR").map(PathBuf::from))
        .as_ref()
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn intercept(fd: c_int, name: &'static str, real_fn: Option<SyncFn>) -> c_int {
    let Some(dir) = dir() else {
        return real_fn.map_or(0, |f| unsafe { f(fd) });
    };
    let start = monotonic_ns();
    let result = if dir.join("fail").exists() {
        // SAFETY: errno is thread-local and writable.
        unsafe { *libc::__errno_location() = libc::EIO };
        -1
    } else {
        if let Some(ms) = std::fs::read_to_string(dir.join("delay_ms"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        real_fn.map_or(0, |f| unsafe { f(fd) })
    };
    let end = monotonic_ns();
    if let Ok(mut log) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))
    {
        // One write per line: O_APPEND keeps concurrent lines whole.
        let line = format!("{name} {fd} {start} {end} {result}\n");
        let _ = log.write_all(line.as_bytes());
    }
    result
}

/// # Safety
/// Called by C code as the C library's `fsync`.
#[no_mangle]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    static REAL: OnceLock<Option<SyncFn>> = OnceLock::new();
    intercept(fd, "fsync", *REAL.get_or_init(|| real(b"fsync\0")))
}

/// # Safety
/// Called by C code as the C library's `fdatasync`.
#[no_mangle]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    static REAL: OnceLock<Option<SyncFn>> = OnceLock::new();
    intercept(fd, "fdatasync", *REAL.get_or_init(|| real(b"fdatasync\0")))
}
