//! One run: start `amber`, deploy the workload's module, run concurrent
//! clients through the cutting proxy while the nemesis injects faults, heal,
//! read everything back, stop the server, check the history, and write what
//! happened to files a person can read.

use crate::checker::{self, Report};
use crate::history::{self, Mop, NemesisEvent, Outcome, Txn};
use crate::proxy::Proxy;
use crate::server::{AmberProcess, ServerConfig, ServerError};
use crate::workload::{Conn, GenConfig, Generator, Phase, Variant, Workload};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The faults the nemesis can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// `kill -9` of the server, then a restart on the same data.
    Kill,
    /// SIGSTOP, then SIGCONT a moment later.
    Pause,
    /// Every client connection cut at once, mid-transaction or mid-COMMIT.
    Cut,
    /// `CREATE OR REPLACE MODULE` of the workload's module while clients
    /// run: transactions that used the old version must fail (40001) or
    /// serialize, never see a half-deployed module.
    Deploy,
}

/// Throughput limits of a long run.
#[derive(Clone, Debug, Serialize)]
pub struct StabilityConfig {
    /// Seconds whose mean rate is the baseline.
    pub baseline_s: usize,
    /// Seconds averaged for each later comparison.
    pub window_s: usize,
    /// The run fails if a window's rate falls below this share of the
    /// baseline.
    pub min_ratio: f64,
    /// The run fails if the server's resident memory exceeds this.
    pub rss_max_mib: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub workload: Workload,
    pub amber: PathBuf,
    /// Where the history, verdict and server log go (created).
    pub out_dir: PathBuf,
    pub clients: usize,
    pub duration: Duration,
    /// At most this many transactions, started evenly over the duration:
    /// the transaction numbered n starts no earlier than n x duration /
    /// txns_max. So a fast machine builds no larger history than the
    /// checker and CI were sized for (and its faults still fall among
    /// transactions), while a slow one just runs as fast as it can.
    pub txns_max: Option<u64>,
    pub faults: Vec<Fault>,
    /// Pause between faults, drawn uniformly from this range.
    pub fault_interval_ms: (u64, u64),
    /// Fault-free time at the end, so the system recovers before the
    /// final reads.
    pub heal: Duration,
    /// A statement with no answer in this time ends its transaction.
    pub op_timeout_ms: u64,
    pub seed: u64,
    pub generator: GenConfig,
    pub stability: Option<StabilityConfig>,
    /// Print the throughput every second.
    pub verbose: bool,
}

impl RunConfig {
    pub fn new(workload: Workload, amber: PathBuf, out_dir: PathBuf) -> RunConfig {
        RunConfig {
            workload,
            amber,
            out_dir,
            clients: 8,
            duration: Duration::from_secs(30),
            txns_max: None,
            faults: vec![Fault::Kill, Fault::Pause, Fault::Cut],
            fault_interval_ms: (1_000, 4_000),
            heal: Duration::from_secs(3),
            op_timeout_ms: 5_000,
            seed: 1,
            generator: GenConfig::default(),
            stability: None,
            verbose: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("setup: {0}")]
    Setup(String),
}

/// What a run found.
#[derive(Serialize)]
pub struct RunOutcome {
    pub workload: Workload,
    pub report: Report,
    pub nemesis: Vec<NemesisEvent>,
    /// Unprovoked server exits, and a graceful stop that did not exit 0.
    pub server_crashes: Vec<String>,
    /// Committed transactions in each second of the run.
    pub throughput_per_s: Vec<u64>,
    pub rss_kib: Vec<u64>,
    pub stability_failure: Option<String>,
    /// Committed transactions that wrote something: a run whose writes all
    /// fail proves nothing.
    pub committed_writes: usize,
    /// The errors that ended transactions, most frequent first.
    pub errors: Vec<(String, usize)>,
    pub out_dir: PathBuf,
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.report.valid()
            && self.server_crashes.is_empty()
            && self.stability_failure.is_none()
            && self.committed_writes > 0
    }

    /// The one line a run prints.
    pub fn summary(&self) -> String {
        let mut faults: std::collections::BTreeMap<&str, usize> = Default::default();
        for e in &self.nemesis {
            *faults.entry(e.fault.as_str()).or_default() += 1;
        }
        let faults = if faults.is_empty() {
            "none".to_string()
        } else {
            faults
                .iter()
                .map(|(f, n)| format!("{f} x{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "{} {}: {} ({} committed with writes); faults: {faults}; server crashes: {}{}; {}",
            self.workload.name(),
            if self.passed() { "PASS" } else { "FAIL" },
            self.report.summary(),
            self.committed_writes,
            self.server_crashes.len(),
            self.stability_failure
                .as_ref()
                .map(|s| format!("; stability: {s}"))
                .unwrap_or_default(),
            self.out_dir.display()
        )
    }
}

#[derive(Default)]
struct Samples {
    throughput: Vec<u64>,
    rss_kib: Vec<u64>,
}

/// State shared by the clients, the key keeper and the sampler.
struct Shared {
    config: RunConfig,
    t0: Instant,
    stop: AtomicBool,
    generator: Mutex<Generator>,
    history: Mutex<Vec<Txn>>,
    committed: AtomicU64,
    /// Transactions the clients have started (for `txns_max`).
    started: AtomicU64,
    samples: Mutex<Samples>,
    proxy_port: u16,
    server_port: u16,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }

    /// Waits for the next transaction's turn under `txns_max`; false when
    /// the run has had all its transactions (or is stopping).
    async fn take_turn(&self) -> bool {
        let Some(max) = self.config.txns_max else {
            return true;
        };
        let n = self.started.fetch_add(1, Ordering::SeqCst);
        if n >= max {
            return false;
        }
        let due = self.config.duration.mul_f64(n as f64 / max.max(1) as f64);
        while self.t0.elapsed() < due {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            let wait = due.saturating_sub(self.t0.elapsed());
            tokio::time::sleep(wait.min(Duration::from_millis(TURN_POLL_MS))).await;
        }
        true
    }

    fn record(
        &self,
        process: u64,
        start_us: u64,
        outcome: Outcome,
        mops: Vec<Mop>,
        error: Option<String>,
    ) {
        let end_us = self.now_us();
        if outcome == Outcome::Ok {
            self.committed.fetch_add(1, Ordering::Relaxed);
        }
        // Never drop a transaction, even after a panic elsewhere: a missing
        // one could hide an anomaly.
        let mut h = lock(&self.history);
        let index = h.len();
        h.push(Txn {
            index,
            process,
            start_us,
            end_us,
            outcome,
            mops,
            error,
        });
    }
}

/// Runs one workload from start to verdict.
pub async fn run(config: RunConfig) -> Result<RunOutcome, RunError> {
    std::fs::create_dir_all(&config.out_dir)?;
    let data = config.out_dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let server_port = free_port()?;
    let server = Arc::new(Mutex::new(AmberProcess::new(ServerConfig {
        binary: config.amber.clone(),
        data,
        port: server_port,
        log: config.out_dir.join("amber.log"),
        env: vec![],
    })));
    tokio::task::block_in_place(|| lock(&server).start())?;

    // Setup through a direct connection: the module and the first keys.
    let mut setup = Conn::connect(server_port, 30_000)
        .await
        .map_err(RunError::Setup)?;
    setup
        .batch(Phase::Body, config.workload.module_sql())
        .await
        .map_err(|e| RunError::Setup(e.message))?;
    let mut generator = Generator::new(config.workload, config.generator.clone());
    if let Some(table) = config.workload.key_table() {
        let keys = setup
            .create_keys(table, config.generator.keys_active + KEYS_SPARE_TARGET)
            .await
            .map_err(|e| RunError::Setup(e.message))?;
        generator.add_keys(keys);
    }
    drop(setup);

    let proxy = Arc::new(Proxy::start(server_port).await?);
    let shared = Arc::new(Shared {
        config: config.clone(),
        t0: Instant::now(),
        stop: AtomicBool::new(false),
        generator: Mutex::new(generator),
        history: Mutex::new(Vec::new()),
        committed: AtomicU64::new(0),
        started: AtomicU64::new(0),
        samples: Mutex::default(),
        proxy_port: proxy.port,
        server_port,
    });

    let mut tasks = Vec::new();
    for slot in 0..config.clients {
        tasks.push(tokio::spawn(client_loop(shared.clone(), slot)));
    }
    if config.workload.key_table().is_some() {
        tasks.push(tokio::spawn(key_keeper(shared.clone())));
    }
    let sampler = tokio::spawn(sampler(shared.clone(), server.clone()));

    let events: Arc<Mutex<Vec<NemesisEvent>>> = Arc::default();
    let crashes: Arc<Mutex<Vec<String>>> = Arc::default();
    let nemesis_end = Instant::now() + config.duration.saturating_sub(config.heal);
    let nemesis = {
        let (server, proxy, events, crashes, shared) = (
            server.clone(),
            proxy.clone(),
            events.clone(),
            crashes.clone(),
            shared.clone(),
        );
        let runtime = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            nemesis_loop(
                &shared,
                &server,
                &proxy,
                nemesis_end,
                &events,
                &crashes,
                &runtime,
            )
        })
    };

    tokio::time::sleep(config.duration).await;
    shared.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    let _ = tokio::task::block_in_place(|| nemesis.join());
    sampler.abort();
    let _ = sampler.await;
    let Samples {
        throughput: throughput_per_s,
        rss_kib,
    } = std::mem::take(&mut *lock(&shared.samples));

    final_reads(&shared, &crashes).await;

    // A graceful stop must end with status 0.
    let status = tokio::task::block_in_place(|| lock(&server).stop());
    match status {
        Some(s) if s.success() => {}
        other => lock(&crashes).push(format!("graceful stop ended with {other:?}")),
    }

    let history: Vec<Txn> = std::mem::take(&mut *lock(&shared.history));
    let report = checker::check(config.workload.model(), &history);
    let stability_failure = config
        .stability
        .as_ref()
        .and_then(|s| stability_verdict(s, &throughput_per_s, &rss_kib));
    let nemesis = std::mem::take(&mut *lock(&events));
    let server_crashes = std::mem::take(&mut *lock(&crashes));
    let committed_writes = history
        .iter()
        .filter(|t| t.outcome == Outcome::Ok)
        .filter(|t| {
            t.mops.iter().any(|m| {
                matches!(
                    m,
                    Mop::Append { .. } | Mop::Write { .. } | Mop::Add { .. } | Mop::Claim { .. }
                )
            })
        })
        .count();
    let mut errors: std::collections::HashMap<String, usize> = Default::default();
    for t in &history {
        if let Some(e) = &t.error {
            *errors.entry(e.clone()).or_default() += 1;
        }
    }
    let mut errors: Vec<(String, usize)> = errors.into_iter().collect();
    errors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    errors.truncate(ERROR_KINDS_REPORTED_MAX);
    let outcome = RunOutcome {
        committed_writes,
        errors,
        workload: config.workload,
        report,
        nemesis,
        server_crashes,
        throughput_per_s,
        rss_kib,
        stability_failure,
        out_dir: config.out_dir.clone(),
    };
    write_outputs(&config, &history, &outcome)?;
    Ok(outcome)
}

/// Distinct error messages listed in a verdict.
const ERROR_KINDS_REPORTED_MAX: usize = 20;
/// Spare keys the keeper keeps created ahead of use.
const KEYS_SPARE_TARGET: usize = 48;
/// Transactions' reads per final-read transaction.
const FINAL_READ_KEYS_PER_TXN: usize = 16;
/// How long the final reads keep retrying after faults.
const FINAL_READ_TIMEOUT_MS: u64 = 60_000;
/// Process number of the final reads (clients use small numbers).
const FINAL_READ_PROCESS: u64 = 1 << 40;
/// Process number of the reads of everything right after each restart.
const AUDIT_PROCESS: u64 = (1 << 40) + 1;
/// How long the post-restart audit may take.
const AUDIT_TIMEOUT_MS: u64 = 30_000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn client_loop(shared: Arc<Shared>, slot: usize) {
    let cfg = &shared.config;
    let mut rng = StdRng::seed_from_u64(cfg.seed.wrapping_mul(1_000_003).wrapping_add(slot as u64));
    let mut process = slot as u64;
    let mut conn: Option<Conn> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        if !shared.take_turn().await {
            break;
        }
        let c = match &mut conn {
            Some(c) => c,
            None => match Conn::connect(shared.proxy_port, cfg.op_timeout_ms).await {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(RECONNECT_PAUSE_MS)).await;
                    continue;
                }
            },
        };
        let mut mops = lock(&shared.generator).next_txn(&mut rng);
        if mops.is_empty() {
            tokio::time::sleep(Duration::from_millis(RECONNECT_PAUSE_MS)).await;
            continue;
        }
        let variant = Variant::pick(&mut rng);
        let start_us = shared.now_us();
        let result = c.run_txn(cfg.workload, &mut mops, variant).await;
        let (outcome, error) = match result {
            Ok(()) => (Outcome::Ok, None),
            Err(e) => {
                let outcome = match (e.phase, e.code.as_deref()) {
                    (Phase::Body, _) => Outcome::Fail,
                    (Phase::Commit, Some("40001")) => Outcome::Fail,
                    (Phase::Commit, _) => Outcome::Info,
                };
                let keep =
                    e.phase == Phase::Body && e.connection_usable && c.rollback().await.is_ok();
                if !keep {
                    conn = None;
                }
                (outcome, Some(e.message))
            }
        };
        shared.record(process, start_us, outcome, mops, error);
        if outcome == Outcome::Info {
            // The transaction may still be running: this process is done.
            process += cfg.clients as u64;
        }
    }
}

/// Longest sleep of a client waiting for its turn (so it sees `stop`).
const TURN_POLL_MS: u64 = 100;

/// Pause before reconnecting or retrying.
const RECONNECT_PAUSE_MS: u64 = 50;

/// Keeps fresh keys created ahead of use (through a direct connection:
/// the key creation is setup, not part of the history).
async fn key_keeper(shared: Arc<Shared>) {
    let Some(table) = shared.config.workload.key_table() else {
        return;
    };
    let mut conn: Option<Conn> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if lock(&shared.generator).spare_keys() >= KEYS_SPARE_TARGET / 2 {
            continue;
        }
        let c = match &mut conn {
            Some(c) => c,
            None => match Conn::connect(shared.server_port, shared.config.op_timeout_ms).await {
                Ok(c) => conn.insert(c),
                Err(_) => continue,
            },
        };
        match c.create_keys(table, KEYS_SPARE_TARGET / 2).await {
            Ok(keys) => lock(&shared.generator).add_keys(keys),
            Err(_) => conn = None,
        }
    }
}

/// Samples, every second, the transactions committed in it and the
/// server's memory.
async fn sampler(shared: Arc<Shared>, server: Arc<Mutex<AmberProcess>>) {
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = shared.committed.load(Ordering::Relaxed);
        let rss = lock(&server).rss_kib().unwrap_or(0);
        let second = {
            let mut samples = lock(&shared.samples);
            samples.throughput.push(now - last);
            samples.rss_kib.push(rss);
            samples.throughput.len()
        };
        if shared.config.verbose {
            println!(
                "[{}] t={second}s committed/s={} rss={} MiB",
                shared.config.workload.name(),
                now - last,
                rss / 1024
            );
        }
        last = now;
    }
}

fn nemesis_loop(
    shared: &Shared,
    server: &Mutex<AmberProcess>,
    proxy: &Proxy,
    end: Instant,
    events: &Mutex<Vec<NemesisEvent>>,
    crashes: &Mutex<Vec<String>>,
    runtime: &tokio::runtime::Handle,
) {
    let cfg = &shared.config;
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ 0x6e656d65);
    let event = |fault: &str, detail: String| {
        lock(events).push(NemesisEvent {
            at_us: shared.now_us(),
            fault: fault.to_string(),
            detail,
        })
    };
    let check_alive = || {
        let mut s = lock(server);
        if let Some(status) = s.try_wait() {
            lock(crashes).push(format!(
                "at {} us the server exited on its own with {status}",
                shared.now_us()
            ));
            if let Err(e) = s.start() {
                lock(crashes).push(format!("restart failed: {e}"));
            }
        }
    };
    loop {
        let (lo, hi) = cfg.fault_interval_ms;
        let wait = Instant::now() + Duration::from_millis(rng.random_range(lo..=hi.max(lo)));
        while Instant::now() < wait.min(end) {
            std::thread::sleep(Duration::from_millis(20));
            check_alive();
        }
        if Instant::now() >= end || cfg.faults.is_empty() {
            break;
        }
        let fault = cfg.faults[rng.random_range(0..cfg.faults.len())];
        match fault {
            Fault::Kill => {
                lock(server).kill9();
                event("kill", "SIGKILL".into());
                std::thread::sleep(Duration::from_millis(rng.random_range(50..500)));
                let started = lock(server).start();
                match started {
                    Ok(()) => {
                        event("restart", "server accepts connections again".into());
                        // Durability after this very crash: read everything
                        // now; every write acknowledged before must be there.
                        if let Err(e) = runtime.block_on(read_everything(
                            shared,
                            AUDIT_PROCESS,
                            AUDIT_TIMEOUT_MS,
                        )) {
                            lock(crashes).push(format!("reads right after a restart: {e}"));
                        }
                    }
                    Err(e) => lock(crashes).push(format!("restart after kill failed: {e}")),
                }
            }
            Fault::Pause => {
                let ms = rng.random_range(200..2_500);
                lock(server).pause();
                event("pause", format!("SIGSTOP for {ms} ms"));
                std::thread::sleep(Duration::from_millis(ms));
                lock(server).resume();
            }
            Fault::Cut => {
                let n = proxy.cut_all();
                event("cut", format!("{n} client connections cut"));
            }
            Fault::Deploy => {
                let port = lock(server).config.port;
                let detail = match runtime.block_on(redeploy(cfg.workload, port)) {
                    Ok(()) => "new version of the module deployed".to_string(),
                    Err(e) => format!("deploy failed: {e}"),
                };
                event("deploy", detail);
            }
        }
    }
    // Heal: the server runs and answers for the rest of the run.
    lock(server).resume();
    while !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        check_alive();
    }
}

/// How many redeploys ran: each picks the next version of the cycle.
static REDEPLOYS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The workload's module in version `n` of a cycle of three that upgrades
/// every class while clients run: an attribute `upgraded: int = 1` added
/// (older objects read the default lazily), then retyped to `float` (no
/// value can fail: converted as read), then dropped again (the source as
/// set up). The workload never reads it; what it reads must not change.
fn module_version(source: &str, n: u64) -> String {
    let extra = match n % 3 {
        0 => "    upgraded: int = 1\n",
        1 => "    upgraded: float = 1.0\n",
        _ => return source.to_string(),
    };
    let mut out = String::with_capacity(source.len() + 4 * extra.len());
    for line in source.split_inclusive('\n') {
        out.push_str(line);
        if line.starts_with("class ") && line.trim_end().ends_with("(Persistent):") {
            out.push_str(extra);
        }
    }
    out
}

/// Deploys the workload's module again (a new version of the cycle in
/// [`module_version`]), on a connection of its own that bypasses the
/// cutting proxy.
async fn redeploy(workload: Workload, port: u16) -> Result<(), String> {
    let conn = format!("host=127.0.0.1 port={port} user=amber dbname=amber connect_timeout=5");
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let n = REDEPLOYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let sql = module_version(workload.module_sql(), n).replacen(
        "CREATE MODULE",
        "CREATE OR REPLACE MODULE",
        1,
    );
    tokio::time::timeout(Duration::from_secs(30), client.batch_execute(&sql))
        .await
        .map_err(|_| "deploy timed out".to_string())?
        .map_err(|e| match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        })
}

/// After the clients stop: read every key (or the whole set) until it
/// works, so that every acknowledged write must show up.
async fn final_reads(shared: &Shared, crashes: &Mutex<Vec<String>>) {
    if let Err(e) = read_everything(shared, FINAL_READ_PROCESS, FINAL_READ_TIMEOUT_MS).await {
        lock(crashes).push(format!("final reads: {e}"));
    }
}

/// Reads every key in use (or the whole set) as ordinary transactions of
/// `process`, retrying until each succeeds or `timeout_ms` passes. Recorded
/// in the history, so the checker's lost-write check applies to them.
async fn read_everything(shared: &Shared, process: u64, timeout_ms: u64) -> Result<(), String> {
    let workload = shared.config.workload;
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let batches: Vec<Vec<Mop>> = match workload {
        Workload::Set => vec![vec![Mop::ReadSet { v: None }]],
        Workload::Register => lock(&shared.generator)
            .used
            .chunks(FINAL_READ_KEYS_PER_TXN)
            .map(|c| c.iter().map(|&k| Mop::ReadReg { k, v: None }).collect())
            .collect(),
        _ => lock(&shared.generator)
            .used
            .chunks(FINAL_READ_KEYS_PER_TXN)
            .map(|c| c.iter().map(|&k| Mop::Read { k, v: None }).collect())
            .collect(),
    };
    let read_workload = match workload {
        Workload::ListAppendProc => Workload::ListAppend,
        w => w,
    };
    let mut conn: Option<Conn> = None;
    for batch in batches {
        loop {
            if Instant::now() > deadline {
                return Err(format!("reads did not succeed within {timeout_ms} ms"));
            }
            let c = match &mut conn {
                Some(c) => c,
                None => {
                    match Conn::connect(shared.server_port, shared.config.op_timeout_ms).await {
                        Ok(c) => conn.insert(c),
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(RECONNECT_PAUSE_MS)).await;
                            continue;
                        }
                    }
                }
            };
            let mut mops = batch.clone();
            let start_us = shared.now_us();
            match c.run_txn(read_workload, &mut mops, Variant::First).await {
                Ok(()) => {
                    shared.record(process, start_us, Outcome::Ok, mops, None);
                    break;
                }
                Err(e) => {
                    if !(e.connection_usable && c.rollback().await.is_ok()) {
                        conn = None;
                    }
                    tokio::time::sleep(Duration::from_millis(RECONNECT_PAUSE_MS)).await;
                }
            }
        }
    }
    Ok(())
}

fn stability_verdict(cfg: &StabilityConfig, throughput: &[u64], rss_kib: &[u64]) -> Option<String> {
    if throughput.len() < cfg.baseline_s + cfg.window_s {
        return Some(format!(
            "only {} seconds sampled; need {} for a baseline and one window",
            throughput.len(),
            cfg.baseline_s + cfg.window_s
        ));
    }
    let mean = |s: &[u64]| s.iter().sum::<u64>() as f64 / s.len().max(1) as f64;
    let baseline = mean(&throughput[..cfg.baseline_s]);
    if baseline <= 0.0 {
        return Some("no transaction committed during the baseline".into());
    }
    // The last second is cut short by the stop; leave it out.
    let body = &throughput[cfg.baseline_s..throughput.len() - 1];
    for (i, w) in body.windows(cfg.window_s.max(1)).enumerate() {
        let rate = mean(w);
        if rate < cfg.min_ratio * baseline {
            let from = cfg.baseline_s + i;
            return Some(format!(
                "throughput fell to {rate:.1}/s in seconds {from}..{} (baseline {baseline:.1}/s, limit {:.0}%)",
                from + w.len(),
                cfg.min_ratio * 100.0
            ));
        }
    }
    if let (Some(max), Some(limit)) = (rss_kib.iter().max(), cfg.rss_max_mib) {
        if *max > limit * 1024 {
            return Some(format!(
                "server memory reached {} MiB (limit {limit} MiB)",
                max / 1024
            ));
        }
    }
    None
}

fn write_outputs(config: &RunConfig, history: &[Txn], outcome: &RunOutcome) -> std::io::Result<()> {
    let dir = &config.out_dir;
    history::write_history(&dir.join("history.jsonl"), history)?;
    let mut nemesis = String::new();
    for e in &outcome.nemesis {
        nemesis.push_str(&serde_json::to_string(e)?);
        nemesis.push('\n');
    }
    std::fs::write(dir.join("nemesis.jsonl"), nemesis)?;
    let mut text = format!("{}\n\n{}", outcome.summary(), outcome.report.render());
    if !outcome.server_crashes.is_empty() {
        text.push_str("\nserver crashes:\n");
        for c in &outcome.server_crashes {
            text.push_str(&format!("  {c}\n"));
        }
    }
    text.push_str("\nerrors that ended transactions (count, message):\n");
    for (e, n) in &outcome.errors {
        text.push_str(&format!("  {n:>7}  {e}\n"));
    }
    text.push_str(&format!(
        "\ncommitted transactions per second: {:?}\n",
        outcome.throughput_per_s
    ));
    std::fs::write(dir.join("verdict.txt"), text)?;
    std::fs::write(
        dir.join("verdict.json"),
        serde_json::to_string_pretty(outcome)?,
    )?;
    std::fs::write(dir.join("summary.txt"), outcome.summary() + "\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::module_version;

    #[test]
    fn redeploys_cycle_through_an_added_a_retyped_and_a_dropped_attribute() {
        let src = "CREATE MODULE m AS $$\nclass A(Persistent):\n    x: int\n\nclass B(Persistent):\n    y: str\n$$";
        let v0 = module_version(src, 0);
        assert_eq!(v0.matches("    upgraded: int = 1\n").count(), 2);
        assert!(v0.contains("class A(Persistent):\n    upgraded: int = 1\n    x: int\n"));
        let v1 = module_version(src, 1);
        assert_eq!(v1.matches("    upgraded: float = 1.0\n").count(), 2);
        assert_eq!(module_version(src, 2), src);
        assert_eq!(module_version(src, 3), v0);
    }
}
