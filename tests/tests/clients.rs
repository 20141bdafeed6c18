//! Standard clients against a running Amber, each checking values
//! (`tests/clients/`): psycopg 3 (server-side binding, COPY in and out),
//! SQLAlchemy's inspector and `MetaData.reflect` (Superset's path),
//! asyncpg (binary protocol, prepared statements), pandas `read_sql` and
//! psqlODBC through pyodbc (catalog functions);
//! with a PostgreSQL 15 (`AMBER_PG`), every value read from Amber must be
//! the one read from PostgreSQL for the same schema.
//!
//! Needs Python with those packages (`AMBER_CLIENTS_PYTHON`); `.ci/run`
//! installs them and sets `AMBER_REQUIRE_CLIENTS=1`, without which a
//! machine lacking them skips the test.

use amber_tests::Server;
use std::path::PathBuf;
use std::process::Command;

const MODULES: &str = "import psycopg, sqlalchemy, asyncpg, pandas, pyodbc";

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

/// The catalog queries Grafana, Metabase, DBeaver, Npgsql and pgcli send
/// on connect and sync (`clients/recorded/*.sql`, each file naming the
/// commit it was taken from) answer on Amber as on PostgreSQL 15 with the
/// same schema (`clients/recorded_queries.py`); known gaps are listed
/// there and must still differ. Needs a PostgreSQL (`AMBER_PG`).
#[test]
fn recorded_tool_queries_answer_as_postgresql() {
    let required = std::env::var("AMBER_REQUIRE_CLIENTS").is_ok();
    let python = std::env::var("AMBER_CLIENTS_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_psycopg = Command::new(&python)
        .args(["-c", "import psycopg"])
        .output()
        .is_ok_and(|o| o.status.success());
    let pg = std::env::var("AMBER_PG").ok();
    let (Some(pg), true) = (pg, has_psycopg) else {
        assert!(
            !(required && std::env::var("AMBER_REQUIRE_PG").is_ok()),
            "AMBER_REQUIRE_CLIENTS and AMBER_REQUIRE_PG are set but {python} lacks psycopg or AMBER_PG is unset"
        );
        eprintln!("skipped: no PostgreSQL or no psycopg");
        return;
    };
    let server = Server::start();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/recorded_queries.py");
    let amber = format!(
        "host=127.0.0.1 port={} user=amber dbname=amber",
        server.port
    );
    let out = Command::new(&python)
        .arg(&script)
        .arg(&amber)
        .arg(&pg)
        .output()
        .expect("the recorded-queries script runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("all recorded queries passed"), "{text}");
    // The suite is not vacuous: most queries answer as PostgreSQL does.
    let passed = text.lines().filter(|l| l.starts_with("ok  ")).count();
    assert!(
        passed >= 30,
        "only {passed} recorded queries passed:\n{text}"
    );
}

/// node-postgres (`clients/node_client.js`: parameters, named prepared
/// statements, pg's type parsers, errors, a transaction) reads from Amber
/// what it reads from PostgreSQL 15. `AMBER_NODE_MODULES` is a
/// node_modules directory holding `pg` (`.ci/run` installs it).
#[test]
fn node_postgres_reads_what_postgresql_gives_it() {
    let required = std::env::var("AMBER_REQUIRE_CLIENTS").is_ok();
    let modules = std::env::var("AMBER_NODE_MODULES").ok();
    let has_node = Command::new("node").arg("--version").output().is_ok();
    let (Some(modules), true) = (modules, has_node) else {
        assert!(
            !required,
            "AMBER_REQUIRE_CLIENTS is set but node or AMBER_NODE_MODULES is missing"
        );
        eprintln!("skipped: no node or node-postgres");
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/node_client.js");
    let run = |url: &str| {
        let out = Command::new("node")
            .env("NODE_PATH", &modules)
            .arg(&script)
            .arg(url)
            .arg("node_diff")
            .output()
            .expect("node runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        text
    };
    let server = Server::start();
    let amber = run(&format!(
        "postgresql://amber@127.0.0.1:{}/amber",
        server.port
    ));
    // Known answers (PostgreSQL 15's), then PostgreSQL's own where it runs.
    for line in [
        r#"fields: [["id",20],["name",25],["balance",1700],["opened",1082],["seen",1184],["tags",1009],["extra",3802],["ok",16]]"#,
        r#"any: [{"id":"1"},{"id":"3"}]"#,
        r#"duplicate: ["23505","account_pkey"]"#,
        r#"bad int: "22P02""#,
        r#"update: ["UPDATE",2]"#,
    ] {
        assert!(
            amber.lines().any(|l| l == line),
            "missing {line:?} in:\n{amber}"
        );
    }
    // Where Amber still differs (README, "Catalog gaps" and SQL): numeric
    // results of sum() and + lose trailing zeros. Each must still differ,
    // so this list stays true.
    let gaps = [
        ("simple", r#"simple: [{"count":"3","sum":"1150.5"}]"#),
        ("transaction", r#"transaction: ["151.5","150.50"]"#),
    ];
    for (_, line) in gaps {
        assert!(
            amber.lines().any(|l| l == line),
            "missing {line:?} in:\n{amber}"
        );
    }
    if let Ok(pg) = std::env::var("AMBER_PG") {
        let get = |k: &str| {
            pg.split_whitespace()
                .find_map(|p| p.strip_prefix(&format!("{k}=")))
                .unwrap_or("")
                .to_string()
        };
        let postgres = run(&format!(
            "postgresql://{}@{}:{}/{}",
            get("user"),
            get("host"),
            get("port"),
            get("dbname")
        ));
        let keep = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| {
                    !gaps
                        .iter()
                        .any(|(key, _)| l.starts_with(&format!("{key}: ")))
                })
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            keep(&amber),
            keep(&postgres),
            "Amber (left) and PostgreSQL 15 (right)"
        );
        for (key, line) in gaps {
            assert!(
                !postgres.lines().any(|l| l == line),
                "{key}: PostgreSQL answers as Amber now; remove the gap"
            );
        }
    }
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

/// What pgjdbc's DatabaseMetaData and a prepared statement run past its
/// prepareThreshold (server-side, binary) read (`clients/JdbcClient.java`).
fn jdbc(jar: &str, port_or_url: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients");
    let out = Command::new("java")
        .current_dir(&dir)
        .args(["-cp", jar, "JdbcClient.java", port_or_url, "jdbc_diff"])
        .output()
        .expect("java runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const JDBC_SCHEMA: &str = "DROP SCHEMA IF EXISTS jdbc_diff CASCADE;
CREATE SCHEMA jdbc_diff;
CREATE TABLE jdbc_diff.customer (id bigint PRIMARY KEY, name text NOT NULL, email text UNIQUE);
CREATE TABLE jdbc_diff.account (id bigint PRIMARY KEY, owner bigint, balance numeric DEFAULT 0, opened date);
CREATE INDEX account_owner_idx ON jdbc_diff.account (owner);
INSERT INTO jdbc_diff.account VALUES (1, 10, 150.50, '2024-01-02'), (2, NULL, 99, NULL);";

/// A JDBC URL from a libpq key=value string.
fn jdbc_url(dsn: &str) -> String {
    let get = |k: &str| {
        dsn.split_whitespace()
            .find_map(|p| p.strip_prefix(&format!("{k}=")))
            .unwrap_or("")
            .to_string()
    };
    format!(
        "jdbc:postgresql://{}:{}/{}?user={}",
        get("host"),
        get("port"),
        get("dbname"),
        get("user")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgjdbc_metadata_reads_what_postgresql_gives_it() {
    let required = std::env::var("AMBER_REQUIRE_CLIENTS").is_ok();
    let jar =
        std::env::var("AMBER_JDBC_JAR").unwrap_or_else(|_| "/usr/share/java/postgresql.jar".into());
    let has_java = Command::new("java").arg("-version").output().is_ok();
    if !(has_java && std::path::Path::new(&jar).exists()) {
        assert!(
            !required,
            "AMBER_REQUIRE_CLIENTS is set but java or {jar} is missing"
        );
        eprintln!("skipped: no java or pgjdbc");
        return;
    }
    let server = Server::start();
    let c = super::connect(&server).await;
    c.batch_execute(JDBC_SCHEMA).await.unwrap();
    let amber = jdbc(
        &jar,
        &format!(
            "jdbc:postgresql://127.0.0.1:{}/amber?user=amber",
            server.port
        ),
    );
    // Known answers (PostgreSQL 15's), then PostgreSQL's own where it runs.
    for line in [
        "schema: jdbc_diff",
        "table: TABLE_SCHEM=jdbc_diff TABLE_NAME=account TABLE_TYPE=TABLE",
        "table: TABLE_SCHEM=jdbc_diff TABLE_NAME=account_pkey TABLE_TYPE=INDEX",
        "column: TABLE_NAME=account COLUMN_NAME=balance DATA_TYPE=2 TYPE_NAME=numeric NULLABLE=1 COLUMN_DEF=0 ORDINAL_POSITION=3 IS_NULLABLE=YES IS_AUTOINCREMENT=NO",
        "pk account: COLUMN_NAME=id KEY_SEQ=1 PK_NAME=account_pkey",
        "index account: NON_UNIQUE=t INDEX_NAME=account_owner_idx ORDINAL_POSITION=1 COLUMN_NAME=owner",
        "prepared 7: id=2 balance=99 opened=null",
    ] {
        assert!(amber.lines().any(|l| l == line), "missing {line:?} in:\n{amber}");
    }
    if let Ok(pg) = std::env::var("AMBER_PG") {
        let (pgc, conn) = tokio_postgres::connect(&pg, tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL");
        tokio::spawn(conn);
        pgc.batch_execute(JDBC_SCHEMA).await.unwrap();
        let postgres = jdbc(&jar, &jdbc_url(&pg));
        assert_eq!(amber, postgres, "Amber (left) and PostgreSQL 15 (right)");
    }
}
