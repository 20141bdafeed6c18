//! SQLite's sqllogictest corpus as PostgreSQL 15 answers it
//! (`../shared/sqllogic`, 16,512 checks, run by its own runner against a
//! fresh Amber). The tables are made by plain SQL DDL. The test fails if
//! fewer checks match than [`MATCH_MIN`], so a change that breaks SQL
//! Amber answered is seen; raise the floor when more pass. What still
//! fails: none (all 16,512 matched when the floor was raised).
//!
//! Needs Python 3 with psycopg 3 (`AMBER_SQLLOGIC_PYTHON`, else
//! `python3`); `.ci/run` installs one and sets `AMBER_REQUIRE_SQLLOGIC=1`,
//! without which a machine lacking them skips the test.

use amber_tests::Server;
use std::path::PathBuf;
use std::process::Command;

/// Checks that matched when the floor was last raised (of 16,512).
const MATCH_MIN: u64 = 16_512;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/sqllogic")
}

/// The Python to run the runner with, if it has psycopg.
fn python() -> Option<String> {
    let python = std::env::var("AMBER_SQLLOGIC_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import psycopg"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

#[test]
fn sqllogic_corpus_matches_postgresql() {
    let required = std::env::var("AMBER_REQUIRE_SQLLOGIC").is_ok();
    let runner = corpus_dir().join("run.py");
    let (Some(python), true) = (python(), runner.exists()) else {
        assert!(
            !required,
            "AMBER_REQUIRE_SQLLOGIC is set but {} or Python with psycopg is missing",
            runner.display()
        );
        eprintln!("skipped: no sqllogic corpus or no Python with psycopg");
        return;
    };
    let server = Server::start();
    let out = tempfile::tempdir().expect("temp dir");
    let dsn = format!(
        "host=127.0.0.1 port={} user=amber dbname=amber",
        server.port
    );
    let run = Command::new(python)
        .arg(&runner)
        .args(["--target-dsn", &dsn, "--corpus", "B", "--quiet", "--out"])
        .arg(out.path())
        .output()
        .expect("run the sqllogic runner");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    // Last line: `sqlconf: M/N match (W wrong, E error, S setupfail, T timeout)`.
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("sqlconf: "))
        .unwrap_or_else(|| panic!("no summary from the runner:\n{stdout}\n{stderr}"));
    let matched: u64 = summary
        .trim_start_matches("sqlconf: ")
        .split('/')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("unreadable summary {summary}"));
    eprintln!("{summary}");
    assert!(
        matched >= MATCH_MIN,
        "sqllogic: {matched} checks match, fewer than the {MATCH_MIN} that did ({summary}); \
         the runner's report:\n{stdout}"
    );
}
