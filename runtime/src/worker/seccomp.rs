//! The worker's system-call filters. Once the interpreter is built, a
//! call's process can compute, allocate, talk on its socket and exit, and
//! nothing else: opening any file, creating a socket, starting a process
//! or thread, or signalling another process fails with EPERM (Python sees
//! PermissionError), whatever Python object was found to ask for it. The
//! parent (which forks a child per call) may also fork, wait for and
//! signal its children; filters only ever narrow, so a child installs the
//! call filter on top.

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule};
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn allowed() -> Vec<libc::c_long> {
    let mut calls = vec![
        // The socket to the server, and /dev/null stdio.
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_recvfrom,
        libc::SYS_sendto,
        libc::SYS_recvmsg,
        libc::SYS_sendmsg,
        libc::SYS_ppoll,
        libc::SYS_close,
        // Memory.
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_mprotect,
        libc::SYS_brk,
        libc::SYS_madvise,
        // Threads already running (the interrupt watcher), time, randomness.
        libc::SYS_futex,
        libc::SYS_sched_yield,
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_clock_nanosleep,
        libc::SYS_nanosleep,
        libc::SYS_gettimeofday,
        libc::SYS_getrandom,
        // Signals to itself (interrupts, abort) and exiting.
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigaction,
        libc::SYS_sigaltstack,
        libc::SYS_restart_syscall,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_tgkill,
        libc::SYS_exit,
        libc::SYS_exit_group,
        // A thread's own start-up (glibc aborts if rseq is refused).
        libc::SYS_rseq,
        libc::SYS_set_robust_list,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([libc::SYS_poll, libc::SYS_time]);
    calls
}

/// What the parent needs beyond a call: forking a call's child (which
/// then starts its watcher thread), waiting for it, forwarding signals.
fn parent_extra() -> Vec<libc::c_long> {
    vec![
        libc::SYS_clone,
        libc::SYS_clone3,
        libc::SYS_prctl,
        libc::SYS_wait4,
        libc::SYS_kill,
        libc::SYS_rt_sigqueueinfo,
        // The child narrows its own filter.
        libc::SYS_seccomp,
    ]
}

/// The call filter, compiled once in the parent (a child only applies it).
static CALL_FILTER: OnceLock<BpfProgram> = OnceLock::new();

/// The parent's filter, on every thread of the process.
pub fn install_parent() -> Result<(), String> {
    let _ = CALL_FILTER.set(compile(allowed())?);
    let mut calls = allowed();
    calls.extend(parent_extra());
    let program = compile(calls)?;
    seccompiler::apply_filter_all_threads(&program).map_err(|e| format!("seccomp: {e}"))
}

/// A call's filter, in its child, on top of the parent's.
pub fn install_call() -> Result<(), String> {
    let program = CALL_FILTER.get().ok_or("seccomp: no call filter")?;
    seccompiler::apply_filter_all_threads(program).map_err(|e| format!("seccomp: {e}"))
}

fn compile(calls: Vec<libc::c_long>) -> Result<BpfProgram, String> {
    let rules: BTreeMap<i64, Vec<SeccompRule>> =
        calls.into_iter().map(|c| (c, Vec::new())).collect();
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("seccomp: {e}"))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| format!("seccomp: {e}"))?;
    filter.try_into().map_err(|e| format!("seccomp: {e}"))
}
