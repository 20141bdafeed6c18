//! Settings as PostgreSQL 15 has them (its own `pg_settings` is Amber's
//! table): unknown names refused, values checked and shown in PostgreSQL's
//! form, and the statements connection pools send to clean a connection.

use super::{code, connect, simple_rows};
use amber_tests::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_pool_resets_behave_as_in_postgres() {
    let server = Server::start();
    let c = connect(&server).await;
    let one = |rows: Vec<Vec<Option<String>>>| rows[0][0].clone().unwrap();

    // Unknown settings are errors; custom `prefix.name` ones are kept.
    let e = c
        .batch_execute("SET no_such_setting = 1")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "42704", "{e:?}");
    let e = c.simple_query("SHOW no_such_setting").await.unwrap_err();
    assert_eq!(code(&e), "42704", "{e:?}");
    c.batch_execute("SET myapp.tenant = 'acme'").await.unwrap();
    assert_eq!(one(simple_rows(&c, "SHOW myapp.tenant").await), "acme");

    // Defaults of settings never SET, as PostgreSQL prints them.
    for (name, want) in [
        ("lock_timeout", "0"),
        ("bytea_output", "hex"),
        ("application_name", ""),
        ("standard_conforming_strings", "on"),
        ("transaction_isolation", "serializable"),
        ("work_mem", "4MB"),
    ] {
        assert_eq!(
            one(simple_rows(&c, &format!("SHOW {name}")).await),
            want,
            "{name}"
        );
    }

    // Values in any of PostgreSQL's forms, shown in its form.
    c.batch_execute("SET statement_timeout = 10000")
        .await
        .unwrap();
    assert_eq!(one(simple_rows(&c, "SHOW statement_timeout").await), "10s");
    c.batch_execute("SET statement_timeout = '2min'")
        .await
        .unwrap();
    assert_eq!(one(simple_rows(&c, "SHOW statement_timeout").await), "2min");
    c.batch_execute("SET work_mem = '64MB'").await.unwrap();
    assert_eq!(one(simple_rows(&c, "SHOW work_mem").await), "64MB");
    c.batch_execute("SET enable_seqscan = OFF").await.unwrap();
    assert_eq!(one(simple_rows(&c, "SHOW enable_seqscan").await), "off");

    // Bad values: 22023, and the setting keeps its value.
    for bad in [
        "SET statement_timeout = 'soon'",
        "SET statement_timeout = -1",
        "SET enable_seqscan = 'maybe'",
        "SET bytea_output = 'base64'",
    ] {
        let e = c.batch_execute(bad).await.unwrap_err();
        assert_eq!(code(&e), "22023", "{bad}: {e:?}");
    }
    assert_eq!(one(simple_rows(&c, "SHOW statement_timeout").await), "2min");
    let e = c.batch_execute("SET port = 1").await.unwrap_err();
    assert_eq!(code(&e), "55P02", "{e:?}");

    // current_setting() reads the same values, as of its statement (a
    // prepared one too: its plan is not cached with a value in it).
    let q = c
        .prepare("SELECT current_setting('statement_timeout')")
        .await
        .unwrap();
    let get = |row: tokio_postgres::Row| row.get::<_, Option<String>>(0);
    assert_eq!(
        get(c.query_one(&q, &[]).await.unwrap()).as_deref(),
        Some("2min")
    );
    c.batch_execute("SET statement_timeout = '3s'")
        .await
        .unwrap();
    assert_eq!(
        get(c.query_one(&q, &[]).await.unwrap()).as_deref(),
        Some("3s")
    );
    c.batch_execute("SET statement_timeout = '2min'")
        .await
        .unwrap();
    let row = c
        .query_one(
            "SELECT current_setting('no.such', true), current_setting('TimeZone')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), None);
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("UTC"));
    let e = c
        .query("SELECT current_setting('no_such_setting')", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&e), "42704", "{e:?}");

    // SHOW names its column as PostgreSQL spells the setting.
    let rows = c.simple_query("SHOW timezone").await.unwrap();
    let tokio_postgres::SimpleQueryMessage::RowDescription(cols) = &rows[0] else {
        panic!("no RowDescription: {rows:?}");
    };
    assert_eq!(cols[0].name(), "TimeZone");

    // What pools send between clients: everything back to its default.
    c.batch_execute("SET TimeZone = 'Europe/Paris'; SET application_name = 'job'")
        .await
        .unwrap();
    for reset in ["DEALLOCATE ALL", "CLOSE ALL", "UNLISTEN *", "DISCARD ALL"] {
        c.batch_execute(reset)
            .await
            .unwrap_or_else(|e| panic!("{reset}: {e}"));
    }
    assert_eq!(one(simple_rows(&c, "SHOW TimeZone").await), "UTC");
    assert_eq!(one(simple_rows(&c, "SHOW application_name").await), "");
    assert_eq!(one(simple_rows(&c, "SHOW statement_timeout").await), "0");
    c.batch_execute("BEGIN").await.unwrap();
    let e = c.batch_execute("DISCARD ALL").await.unwrap_err();
    assert_eq!(code(&e), "25001", "{e:?}");
    c.batch_execute("ROLLBACK").await.unwrap();
}

/// Settings in the startup packet (`options=-c ...`, application_name) are
/// the session's from the start, reported in the startup's ParameterStatus;
/// a bad one refuses the connection, as in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_parameters_are_session_settings() {
    let server = Server::start();
    let mut config: tokio_postgres::Config = server.conn_string().parse().unwrap();
    config
        .application_name("ledger")
        .options("-c statement_timeout=5s -c TimeZone=Europe/Paris --extra-float-digits=2");
    let (c, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    assert_eq!(conn.parameter("TimeZone"), Some("Europe/Paris"));
    assert_eq!(conn.parameter("application_name"), Some("ledger"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let one = |rows: Vec<Vec<Option<String>>>| rows[0][0].clone().unwrap();
    assert_eq!(one(simple_rows(&c, "SHOW statement_timeout").await), "5s");
    assert_eq!(one(simple_rows(&c, "SHOW TimeZone").await), "Europe/Paris");
    assert_eq!(one(simple_rows(&c, "SHOW extra_float_digits").await), "2");
    assert_eq!(
        one(simple_rows(&c, "SHOW application_name").await),
        "ledger"
    );

    for options in ["-c no_such_setting=1", "-c statement_timeout=soon"] {
        let mut config: tokio_postgres::Config = server.conn_string().parse().unwrap();
        config.options(options);
        let e = config
            .connect(tokio_postgres::NoTls)
            .await
            .err()
            .expect(options);
        let want = if options.contains("soon") {
            "22023"
        } else {
            "42704"
        };
        assert_eq!(code(&e), want, "{options}: {e:?}");
    }
}

const NOTES: &str = r#"
from amber import Persistent

class Note(Persistent):
    text: str

def jot(text: str) -> int:
    return Note(text=text).id
"#;

/// READ ONLY transactions refuse every write, from SQL and from Python,
/// with PostgreSQL's 25006; the mode comes from BEGIN, SET TRANSACTION or
/// the session's default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_transactions_refuse_writes() {
    let server = Server::start();
    let c = connect(&server).await;
    super::deploy(&c, "notes", NOTES).await;
    let n = |rows: Vec<Vec<Option<String>>>| rows[0][0].clone().unwrap();

    c.batch_execute("START TRANSACTION READ ONLY")
        .await
        .unwrap();
    assert_eq!(n(simple_rows(&c, "SHOW transaction_read_only").await), "on");
    let e = c
        .batch_execute("INSERT INTO notes.note (text) VALUES ('a')")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "25006", "{e:?}");
    assert_eq!(
        e.as_db_error().map(|d| d.message()),
        Some("cannot execute INSERT in a read-only transaction")
    );
    c.batch_execute("ROLLBACK").await.unwrap();

    // Python's writes too, and reads are fine.
    c.batch_execute("BEGIN READ ONLY").await.unwrap();
    assert_eq!(
        n(simple_rows(&c, "SELECT count(*) FROM notes.note").await),
        "0"
    );
    let e = c.batch_execute("SELECT notes.jot('b')").await.unwrap_err();
    assert_eq!(code(&e), "25006", "{e:?}");
    c.batch_execute("ROLLBACK").await.unwrap();

    c.batch_execute("BEGIN; SET TRANSACTION READ ONLY")
        .await
        .unwrap();
    let e = c
        .batch_execute("UPDATE notes.note SET text = 'x'")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "25006", "{e:?}");
    c.batch_execute("ROLLBACK").await.unwrap();

    c.batch_execute("BEGIN READ ONLY; SELECT 1").await.unwrap();
    let e = c
        .batch_execute("SET TRANSACTION READ WRITE")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "25001", "{e:?}");
    c.batch_execute("ROLLBACK").await.unwrap();

    // The session's default, and a block that overrides it.
    c.batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .await
        .unwrap();
    assert_eq!(n(simple_rows(&c, "SHOW transaction_read_only").await), "on");
    let e = c
        .batch_execute("INSERT INTO notes.note (text) VALUES ('c')")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "25006", "{e:?}");
    let e = c.batch_execute("CALL notes.jot('d')").await.unwrap_err();
    assert_eq!(code(&e), "25006", "{e:?}");
    c.batch_execute("BEGIN READ WRITE; INSERT INTO notes.note (text) VALUES ('e'); COMMIT")
        .await
        .unwrap();
    c.batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO notes.note (text) VALUES ('f')")
        .await
        .unwrap();

    // AND CHAIN: the next block begins at once, with the same mode.
    c.batch_execute("BEGIN READ ONLY; COMMIT AND CHAIN")
        .await
        .unwrap();
    let e = c
        .batch_execute("INSERT INTO notes.note (text) VALUES ('x')")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "25006", "{e:?}");
    c.batch_execute("ROLLBACK").await.unwrap();
    c.batch_execute("BEGIN; INSERT INTO notes.note (text) VALUES ('g'); COMMIT AND CHAIN")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO notes.note (text) VALUES ('h'); ROLLBACK AND CHAIN")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO notes.note (text) VALUES ('i'); COMMIT")
        .await
        .unwrap();
    let e = c.batch_execute("COMMIT AND CHAIN").await.unwrap_err();
    assert_eq!(code(&e), "25P01", "{e:?}");
    assert_eq!(
        simple_rows(&c, "SELECT text FROM notes.note ORDER BY text").await,
        ["e", "f", "g", "i"].map(|t| vec![Some(t.to_string())])
    );
}

/// SAVEPOINT, RELEASE and ROLLBACK TO as PostgreSQL 15 answers them
/// (checked with `pg-scratch`): writes since the savepoint undone, SQL and
/// Python alike; a failed block goes on after ROLLBACK TO; a savepoint
/// command that fails fails the block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoints_undo_what_came_after_them() {
    let server = Server::start();
    let c = connect(&server).await;
    for (sql, sqlstate) in [
        ("SAVEPOINT a", "25P01"),
        ("RELEASE a", "25P01"),
        ("ROLLBACK TO a", "25P01"),
    ] {
        let e = c.batch_execute(sql).await.unwrap_err();
        assert_eq!(code(&e), sqlstate, "{sql}");
    }
    c.batch_execute(
        "CREATE MODULE sp AS $$
from amber import Persistent
class Item(Persistent):
    v: int
def add(v: int) -> None:
    Item(v=v)
$$;
         CREATE TABLE t (v int)",
    )
    .await
    .unwrap();
    let all = "SELECT (SELECT string_agg(v::text, ',' ORDER BY v) FROM t), \
               (SELECT string_agg(v::text, ',' ORDER BY v) FROM sp.item)";
    c.batch_execute(
        "BEGIN; INSERT INTO t VALUES (1); SAVEPOINT a; INSERT INTO t VALUES (2); CALL sp.add(2);
         SAVEPOINT b; INSERT INTO t VALUES (3); ROLLBACK TO a",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(&c, all).await,
        vec![vec![Some("1".to_string()), None]]
    );
    // A failed statement: the block refuses everything but ROLLBACK (TO).
    c.batch_execute("INSERT INTO t VALUES (4); CALL sp.add(4); SAVEPOINT c")
        .await
        .unwrap();
    let e = c.batch_execute("SELECT 1/0").await.unwrap_err();
    assert_eq!(code(&e), "22012");
    for sql in ["SELECT 1", "RELEASE c"] {
        let e = c.batch_execute(sql).await.unwrap_err();
        assert_eq!(code(&e), "25P02", "{sql}");
    }
    c.batch_execute("ROLLBACK TO c").await.unwrap();
    assert_eq!(
        simple_rows(&c, all).await,
        vec![vec![Some("1,4".to_string()), Some("4".to_string())]]
    );
    // `b` went with ROLLBACK TO a: releasing it fails, and fails the block.
    let e = c.batch_execute("RELEASE b").await.unwrap_err();
    assert_eq!(code(&e), "3B001");
    assert_eq!(
        e.as_db_error().unwrap().message(),
        "savepoint \"b\" does not exist"
    );
    let e = c.batch_execute("RELEASE a").await.unwrap_err();
    assert_eq!(code(&e), "25P02");
    // ROLLBACK TO a savepoint (set again after each ROLLBACK TO) revives it.
    c.batch_execute("ROLLBACK TO a; INSERT INTO t VALUES (5); RELEASE a; COMMIT")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, all).await,
        vec![vec![Some("1,5".to_string()), None]]
    );
    // A table created after a savepoint is gone after ROLLBACK TO it.
    c.batch_execute(
        "BEGIN; SAVEPOINT s; CREATE TABLE gone (x int); ROLLBACK TO SAVEPOINT s; COMMIT",
    )
    .await
    .unwrap();
    let e = c.batch_execute("SELECT * FROM gone").await.unwrap_err();
    assert_eq!(code(&e), "42P01");
}
