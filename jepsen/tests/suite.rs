//! The Jepsen-style suite as CI runs it: a bounded run of every workload
//! with kill -9, SIGSTOP and cut connections; a short stability run; and
//! the durability evidence with the fsync fault layer (commits are
//! acknowledged only after fsync; a failed fsync fails the commit and stops
//! the server). Histories and verdicts go to `target/jepsen-ci/`.
//!
//! The long runs and the full fault matrix: see the README
//! (`amber-jepsen run`, `amber-jepsen stability`).

use amber_jepsen::checker;
use amber_jepsen::history::{read_history, Outcome};
use amber_jepsen::run::{self, Fault, RunConfig, StabilityConfig};
use amber_jepsen::server::{AmberProcess, ServerConfig};
use amber_jepsen::workload::Workload;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_postgres::NoTls;

/// Seconds each workload runs in CI.
const CI_RUN_S: u64 = 30;
/// Transactions each workload runs at most in CI, spread over the run: the
/// history (and so the checker's work and memory) does not grow with the
/// machine's speed. About what this 2-core machine does in 30 s.
const CI_TXNS_MAX: u64 = 20_000;

/// The build's profile directory (`target/debug`), where `cargo build
/// --workspace` put `amber` and the fsync layer.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("profile directory")
        .to_path_buf()
}

fn built(name: &str) -> PathBuf {
    let p = profile_dir().join(name);
    assert!(
        p.exists(),
        "{} not found: run `cargo build --workspace` before the tests",
        p.display()
    );
    p
}

fn out_dir(name: &str) -> PathBuf {
    let dir = profile_dir()
        .parent()
        .expect("target directory")
        .join("jepsen-ci")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The two long runs take turns: a stability run measured beside a fault
/// run would measure the fault run.
static LONG_RUNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_workload_under_faults_has_no_anomaly() {
    let _turn = LONG_RUNS.lock().await;
    let mut failures = Vec::new();
    for (i, workload) in Workload::ALL.into_iter().enumerate() {
        let mut config = RunConfig::new(workload, built("amber"), out_dir(workload.name()));
        config.duration = Duration::from_secs(CI_RUN_S);
        config.txns_max = Some(CI_TXNS_MAX);
        config.faults = vec![Fault::Kill, Fault::Pause, Fault::Cut, Fault::Deploy];
        config.fault_interval_ms = (500, 2_500);
        config.seed = 17 + i as u64;
        let outcome = run::run(config).await.expect("run");
        println!("{}", outcome.summary());
        let kinds: Vec<&str> = outcome.nemesis.iter().map(|e| e.fault.as_str()).collect();
        assert!(
            kinds.len() >= 5,
            "{}: too few faults injected: {kinds:?}",
            workload.name()
        );
        assert!(
            outcome.committed_writes >= 100,
            "{}: only {} transactions with writes committed",
            workload.name(),
            outcome.committed_writes
        );
        if !outcome.passed() {
            failures.push(outcome.summary());
        }
        checker_sees_what_aborts_prevented(workload, &outcome.out_dir);
    }
    assert!(
        failures.is_empty(),
        "anomalies found:\n{}",
        failures.join("\n")
    );
}

/// The run's history is rich enough for the checker to matter: had the
/// transactions Amber aborted with 40001 committed instead, the checker
/// would report anomalies.
fn checker_sees_what_aborts_prevented(workload: Workload, dir: &Path) {
    let mut history = read_history(&dir.join("history.jsonl")).expect("history");
    let mut flipped = 0;
    for t in &mut history {
        let conflict = t.error.as_deref().is_some_and(|e| e.starts_with("40001"));
        if t.outcome == Outcome::Fail && conflict {
            t.outcome = Outcome::Ok;
            flipped += 1;
        }
    }
    if workload == Workload::Set {
        // Creations rarely conflict; nothing to flip.
        return;
    }
    assert!(
        flipped > 0,
        "{}: no transaction was aborted by a conflict",
        workload.name()
    );
    let report = checker::check(workload.model(), &history);
    println!(
        "{} with its {flipped} conflict aborts taken as commits: {}",
        workload.name(),
        report.summary()
    );
    assert!(
        !report.valid(),
        "{}: the checker found nothing even with the aborted transactions committed",
        workload.name()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throughput_holds_steady_without_faults() {
    let _turn = LONG_RUNS.lock().await;
    let mut config = RunConfig::new(Workload::ListAppend, built("amber"), out_dir("stability"));
    config.duration = Duration::from_secs(25);
    config.faults = vec![];
    config.heal = Duration::ZERO;
    // CI machines are shared and noisy: a generous limit here; the
    // documented long run uses 0.5.
    config.stability = Some(StabilityConfig {
        baseline_s: 10,
        window_s: 5,
        min_ratio: 0.25,
        rss_max_mib: Some(2_048),
    });
    let outcome = run::run(config).await.expect("run");
    println!("{}", outcome.summary());
    assert!(outcome.passed(), "{}", outcome.summary());
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

/// One fsync the fault layer saw: (start ns, end ns, result).
fn fsyncs(dir: &Path) -> Vec<(u64, u64, i64)> {
    std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
                f.get(4)?.parse().ok()?,
            ))
        })
        .collect()
}

/// A server running under the fsync fault layer.
struct Faulty {
    server: AmberProcess,
    shim: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Faulty {
    fn start() -> Faulty {
        let shim = tempfile::tempdir().expect("tempdir");
        let data = tempfile::tempdir().expect("tempdir");
        let mut server = AmberProcess::new(ServerConfig {
            binary: built("amber"),
            data: data.path().join("data"),
            port: free_port(),
            log: data.path().join("amber.log"),
            env: vec![
                (
                    "LD_PRELOAD".into(),
                    built("libamber_fsync_shim.so").display().to_string(),
                ),
                (
                    "AMBER_FSYNC_SHIM_DIR".into(),
                    shim.path().display().to_string(),
                ),
            ],
        });
        server.start().expect("start amber");
        Faulty {
            server,
            shim,
            _data: data,
        }
    }

    async fn connect(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=amber dbname=amber",
                self.server.config.port
            ),
            NoTls,
        )
        .await
        .expect("connect");
        tokio::spawn(conn);
        client
    }
}

const MODULE: &str = "CREATE MODULE dur AS $$
from amber import Persistent

class Row(Persistent):
    x: int = 0
$$";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_acknowledged_only_after_fsync() {
    let f = Faulty::start();
    let client = f.connect().await;
    client.batch_execute(MODULE).await.expect("module");
    // The first insert also reserves a block of object ids (its own fsync).
    client
        .execute("INSERT INTO dur.row (x) VALUES (0)", &[])
        .await
        .expect("warm-up insert");
    assert!(
        !fsyncs(f.shim.path()).is_empty(),
        "the fault layer saw no fsync: is LD_PRELOAD working?"
    );

    let delay_ms = 300;
    std::fs::write(f.shim.path().join("delay_ms"), delay_ms.to_string()).expect("delay");
    for i in 1..=5i64 {
        let sent = monotonic_ns();
        client
            .execute("INSERT INTO dur.row (x) VALUES ($1)", &[&i])
            .await
            .expect("insert");
        let acked = monotonic_ns();
        let covering = fsyncs(f.shim.path())
            .into_iter()
            .filter(|(start, end, r)| *start >= sent && *end <= acked && *r == 0)
            .count();
        assert!(
            covering >= 1,
            "commit {i} was acknowledged with no fsync between sending it and the acknowledgement"
        );
        assert!(
            acked - sent >= delay_ms * 1_000_000,
            "commit {i} was acknowledged in {} ms, before the {delay_ms} ms fsync could finish",
            (acked - sent) / 1_000_000
        );
    }

    // A reader that sees a commit still being fsynced is not acknowledged
    // before that fsync ends: no acknowledged transaction observes state a
    // crash could take back.
    std::fs::write(f.shim.path().join("delay_ms"), "2000").expect("delay");
    let writer = f.connect().await;
    let reader = f.connect().await;
    let write = tokio::spawn(async move {
        writer
            .execute("INSERT INTO dur.row (x) VALUES (42)", &[])
            .await
            .expect("slow insert");
        monotonic_ns()
    });
    // Poll until the write is visible (it is, before its 2 s fsync ends).
    let reader_acked = loop {
        reader.batch_execute("BEGIN").await.expect("begin");
        let seen: i64 = reader
            .query_one("SELECT count(*) FROM dur.row WHERE x = 42", &[])
            .await
            .expect("read")
            .get(0);
        if seen == 1 {
            reader.batch_execute("COMMIT").await.expect("commit");
            break monotonic_ns();
        }
        reader.batch_execute("ROLLBACK").await.expect("rollback");
        assert!(
            !write.is_finished(),
            "the write was acknowledged before the reader could see it; the case is not exercised"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let writer_acked = write.await.expect("writer");
    let write_fsync_end = fsyncs(f.shim.path())
        .into_iter()
        .filter(|(_, end, r)| *end <= writer_acked && *r == 0)
        .map(|(_, end, _)| end)
        .max()
        .expect("the write's fsync");
    assert!(
        reader_acked >= write_fsync_end,
        "the reader's commit was acknowledged {} ms before the write it saw was durable",
        (write_fsync_end - reader_acked) / 1_000_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsync_fails_the_commit_and_stops_the_server() {
    let mut f = Faulty::start();
    let client = f.connect().await;
    client.batch_execute(MODULE).await.expect("module");
    let mut acked = Vec::new();
    for i in 0..20i64 {
        client
            .execute("INSERT INTO dur.row (x) VALUES ($1)", &[&i])
            .await
            .expect("insert");
        acked.push(i);
    }
    let other = f.connect().await;

    std::fs::write(f.shim.path().join("fail"), "").expect("fail switch");
    let err = client
        .execute("INSERT INTO dur.row (x) VALUES (1000)", &[])
        .await
        .expect_err("a commit whose fsync failed must not be acknowledged");
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("58030"),
        "{err}"
    );
    // Nothing more is served from memory that may differ from the disk:
    // reads fail too, then the server stops (like PostgreSQL's PANIC).
    let read = other.query("SELECT count(*) FROM dur.row", &[]).await;
    assert!(read.is_err(), "a read was served after the failed fsync");
    let status = tokio::task::block_in_place(|| f.server.wait_exit(Duration::from_secs(10)))
        .expect("the server must stop after a failed fsync");
    assert_eq!(status.code(), Some(3), "exit status {status}");

    // Restarted on a healthy disk, every acknowledged commit is there.
    std::fs::remove_file(f.shim.path().join("fail")).expect("heal");
    tokio::task::block_in_place(|| f.server.start()).expect("restart");
    let client = f.connect().await;
    let rows = client
        .query("SELECT x FROM dur.row WHERE x < 1000 ORDER BY x", &[])
        .await
        .expect("read after restart");
    let xs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(xs, acked);
    // The failed commit's outcome is unknown (as for PostgreSQL): it may
    // be there or not, but at most once.
    let n: i64 = client
        .query_one("SELECT count(*) FROM dur.row WHERE x = 1000", &[])
        .await
        .expect("count")
        .get(0);
    assert!(n <= 1);
}
