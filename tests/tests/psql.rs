//! psql's meta-commands against Amber print what they print against
//! PostgreSQL 15 for the same schema: each command runs through the real
//! psql on both servers and the outputs are compared byte for byte.
//! Needs psql and a PostgreSQL 15 (`AMBER_PG`; `.ci/run` installs the
//! client, starts `pg-scratch` and sets `AMBER_REQUIRE_PG=1`).

use super::connect;
use amber_tests::Server;
use std::process::Command;

/// Tables, keys (a foreign key too), an index, a serial's sequence and a
/// view, in a schema of its own (the comparison server is shared with
/// other tests).
const SCHEMA: &str = "DROP SCHEMA IF EXISTS psql_diff CASCADE;
CREATE SCHEMA psql_diff;
CREATE TABLE psql_diff.customer (id bigint PRIMARY KEY, name text NOT NULL, email text UNIQUE);
CREATE TABLE psql_diff.account (id bigint PRIMARY KEY, owner bigint REFERENCES psql_diff.customer, balance numeric DEFAULT 0, opened date, note text DEFAULT 'new');
CREATE INDEX account_owner_idx ON psql_diff.account (owner);
CREATE TABLE psql_diff.log (id bigserial PRIMARY KEY, msg text);
CREATE TABLE psql_diff.item (id serial PRIMARY KEY, qty smallint NOT NULL DEFAULT 1 CHECK (qty > 0), weight real, code char(3) UNIQUE, label varchar(20) DEFAULT 'none', price numeric(10,2) DEFAULT 0, n integer CHECK (n <> 13 OR n IS NULL));
COMMENT ON TABLE psql_diff.customer IS 'people who buy';
COMMENT ON COLUMN psql_diff.account.balance IS 'in euros';
CREATE VIEW psql_diff.rich AS SELECT id, balance FROM psql_diff.account WHERE balance > 100;";

/// The commands whose output must be PostgreSQL's exactly.
const COMMANDS: &[&str] = &[
    r"\dt psql_diff.*",
    r"\di psql_diff.*",
    r"\dv psql_diff.*",
    r"\d psql_diff.account",
    r"\d psql_diff.customer",
    r"\d psql_diff.rich",
    r"\d psql_diff.account_pkey",
    r"\d+ psql_diff.account",
    r"\df psql_diff.*",
    r"\dd psql_diff.*",
    r"\du",
    r"\db",
    r"\dD",
    r"\do",
    r"\da",
    r"\ds psql_diff.*",
    r"\d psql_diff.log_id_seq",
    r"\d psql_diff.log",
    r"\d+ psql_diff.item",
    // PostgreSQL's own catalog relations, as psql describes them.
    r"\d pg_catalog.pg_roles",
    r"\d information_schema.tables",
    r"\dS pg_settings",
    r"\dT psql_diff.*",
];

fn psql(conninfo: &str, command: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", conninfo, "-c", command])
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("psql runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_meta_commands_print_what_postgresql_prints() {
    let required = std::env::var("AMBER_REQUIRE_PG").is_ok();
    let pg = std::env::var("AMBER_PG")
        .unwrap_or_else(|_| "host=127.0.0.1 port=55432 user=amber dbname=amber".into());
    let has_psql = Command::new("psql").arg("--version").output().is_ok();
    let pg_up = has_psql && psql(&pg, "SELECT 1").contains("(1 row)");
    if !pg_up {
        assert!(
            !required,
            "AMBER_REQUIRE_PG is set but psql or PostgreSQL at {pg} is missing"
        );
        println!("no psql or PostgreSQL 15 at {pg}: psql comparison skipped");
        return;
    }
    let out = psql(&pg, SCHEMA);
    assert!(!out.contains("ERROR"), "PostgreSQL: {out}");
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(SCHEMA).await.unwrap();
    let amber = format!(
        "host=127.0.0.1 port={} user=amber dbname=amber",
        server.port
    );
    let mut differing = Vec::new();
    for command in COMMANDS {
        let (a, p) = (psql(&amber, command), psql(&pg, command));
        assert!(
            p.contains("psql_diff")
                || !command.contains("psql_diff.")
                || p.contains("Did not find")
                || p.contains("(0 rows)"),
            "PostgreSQL's {command}: {p}"
        );
        if a != p {
            differing.push(format!("{command}\n--- Amber\n{a}--- PostgreSQL 15\n{p}"));
        }
    }
    assert!(differing.is_empty(), "{}", differing.join("\n"));
}

/// pg_dump is refused up front with a message that says what to use
/// instead, rather than failing on one of its catalog queries.
#[test]
fn pg_dump_is_refused_with_a_clear_message() {
    let Ok(version) = Command::new("pg_dump").arg("--version").output() else {
        assert!(
            std::env::var("AMBER_REQUIRE_PG").is_err(),
            "AMBER_REQUIRE_PG is set but pg_dump is missing"
        );
        println!("no pg_dump: skipped");
        return;
    };
    assert!(version.status.success());
    let server = Server::start();
    let out = Command::new("pg_dump")
        .args([
            "--schema-only",
            &format!(
                "host=127.0.0.1 port={} user=amber dbname=amber",
                server.port
            ),
        ])
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("pg_dump runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "pg_dump succeeded: {stderr}");
    assert!(
        stderr.contains("FATAL:  pg_dump cannot dump an Amber database yet")
            && stderr.contains("HINT:  Dump each table's rows with COPY ... TO STDOUT"),
        "{stderr}"
    );
}
