//! Standard clients against a running Amber, each checking values
//! (`tests/clients/`): psycopg 3 (server-side binding, COPY in and out),
//! SQLAlchemy's inspector and `MetaData.reflect` (Superset's path),
//! asyncpg (binary protocol, prepared statements) and pandas `read_sql`;
//! with a PostgreSQL 15 (`AMBER_PG`), every value read from Amber must be
//! the one read from PostgreSQL for the same schema.
//!
//! Needs Python with those packages (`AMBER_CLIENTS_PYTHON`); `.ci/run`
//! installs them and sets `AMBER_REQUIRE_CLIENTS=1`, without which a
//! machine lacking them skips the test.

use amber_tests::Server;
use std::path::PathBuf;
use std::process::Command;

const MODULES: &str = "import psycopg, sqlalchemy, asyncpg, pandas";

#[test]
fn python_clients_read_what_postgresql_gives_them() {
    let required = std::env::var("AMBER_REQUIRE_CLIENTS").is_ok();
    let python = std::env::var("AMBER_CLIENTS_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_clients = Command::new(&python)
        .args(["-c", MODULES])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_clients {
        assert!(
            !required,
            "AMBER_REQUIRE_CLIENTS is set but {python} lacks: {MODULES}"
        );
        eprintln!("skipped: no Python with the client packages");
        return;
    }
    let server = Server::start();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/python_clients.py");
    let amber = format!(
        "host=127.0.0.1 port={} user=amber dbname=amber",
        server.port
    );
    let mut command = Command::new(&python);
    command.arg(&script).arg(&amber);
    if let Ok(pg) = std::env::var("AMBER_PG") {
        command.arg(pg);
    }
    let out = command.output().expect("the client script runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("all client checks passed"), "{text}");
}

/// The unnamed statement (Parse "" then Bind "", as psycopg, libpq's
/// PQexecParams and tokio-postgres's `query_typed` send it) binds and
/// runs, in one pipeline and across Syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unnamed_statements_bind_and_run() {
    let server = Server::start();
    let c = super::connect(&server).await;
    let rows = c
        .query_typed(
            "SELECT $1::text || '!', $2::bigint + 1",
            &[
                (&"it's", tokio_postgres::types::Type::TEXT),
                (&41i64, tokio_postgres::types::Type::INT8),
            ],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "it's!");
    assert_eq!(rows[0].get::<_, i64>(1), 42);
    // Again: the next unnamed statement replaces the first.
    let rows = c
        .query_typed(
            "SELECT $1::bigint * 2",
            &[(&21i64, tokio_postgres::types::Type::INT8)],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 42);
}
