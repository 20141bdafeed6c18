//! Tables made by SQL DDL (SPEC §3: "Plain CREATE TABLE also works"):
//! exactly the declared columns, keys enforced, DROP, CREATE INDEX and
//! CREATE SCHEMA, in blocks and across a restart. Errors and messages as
//! PostgreSQL 15 gives them (checked with `pg-scratch`).

use super::{code, connect, rows, simple_rows};
use amber_tests::Server;
use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::Client;

async fn copy_in(c: &Client, sql: &str, data: &str) -> Result<u64, tokio_postgres::Error> {
    let sink = c.copy_in(sql).await?;
    futures::pin_mut!(sink);
    sink.send(Bytes::from(data.to_string())).await?;
    sink.finish().await
}

#[tokio::test]
async fn created_tables_have_their_declared_columns_and_keys() {
    let mut server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE t1(a INTEGER, b INTEGER, c INTEGER);
         INSERT INTO t1(c,b,a) VALUES (3,2,1);
         INSERT INTO t1 VALUES (4,5,6), (7,8,9);",
    )
    .await
    .unwrap();
    // `*` is the declared columns only: the object id stays hidden.
    assert_eq!(
        simple_rows(&c, "SELECT * FROM t1 ORDER BY a").await,
        rows(&[&["1", "2", "3"], &["4", "5", "6"], &["7", "8", "9"]])
    );
    let stmt = c.prepare("SELECT * FROM public.t1").await.unwrap();
    let names: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["a", "b", "c"]);

    // UPDATE and DELETE find their rows without an id column.
    c.batch_execute("UPDATE t1 SET b = b * 10 WHERE a >= 4; DELETE FROM t1 WHERE c = 3")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT a, b FROM t1 ORDER BY a").await,
        rows(&[&["4", "50"], &["7", "80"]])
    );

    // A declared `id` is an ordinary column: not the object id.
    c.batch_execute(
        "CREATE TABLE item (id integer PRIMARY KEY, name varchar(20) NOT NULL DEFAULT 'none', price numeric DEFAULT 1.50, UNIQUE (name))",
    )
    .await
    .unwrap();
    c.batch_execute(
        "INSERT INTO item (id) VALUES (1); INSERT INTO item (id, name) VALUES (2, 'pen')",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT * FROM item WHERE id = 2").await,
        rows(&[&["2", "pen", "1.50"]])
    );
    let dup = c
        .execute("INSERT INTO item (id, name) VALUES (1, 'cup')", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&dup), "23505");
    let db = dup.as_db_error().unwrap();
    assert_eq!(
        db.message(),
        "duplicate key value violates unique constraint \"item_pkey\""
    );
    assert_eq!(db.detail(), Some("Key (id)=(1) already exists."));
    let dup = c
        .execute("UPDATE item SET name = 'pen' WHERE id = 1", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&dup), "23505");
    assert_eq!(
        dup.as_db_error().unwrap().message(),
        "duplicate key value violates unique constraint \"item_name_key\""
    );
    let null_key = c
        .execute("INSERT INTO item (id, name) VALUES (NULL, 'cup')", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&null_key), "23502");
    // Moving a key frees the old one; a deleted row's key is free again.
    c.batch_execute(
        "UPDATE item SET id = 3 WHERE id = 1; INSERT INTO item (id, name) VALUES (1, 'cup');
         DELETE FROM item WHERE id = 2; INSERT INTO item (id, name) VALUES (2, 'pen')",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT id, name FROM item ORDER BY id").await,
        rows(&[&["1", "cup"], &["2", "pen"], &["3", "none"]])
    );
    // COPY keeps the keys; a failed COPY keeps none of its rows.
    let e = copy_in(&c, "COPY item (id, name) FROM STDIN", "4\tmug\n1\tdup\n")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "23505");
    assert_eq!(e.as_db_error().unwrap().where_(), Some("COPY item, line 2"));
    assert_eq!(
        copy_in(&c, "COPY item (id, name) FROM STDIN", "4\tmug\n")
            .await
            .unwrap(),
        1
    );

    // Keys survive a restart.
    drop(c);
    server.stop();
    server.restart();
    let c2 = connect(&server).await;
    let dup = c2
        .execute("INSERT INTO item (id, name) VALUES (3, 'new')", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&dup), "23505");
    assert_eq!(
        simple_rows(&c2, "SELECT id, name FROM item ORDER BY id").await,
        rows(&[&["1", "cup"], &["2", "pen"], &["3", "none"], &["4", "mug"]])
    );
}

#[tokio::test]
async fn ddl_errors_are_postgresql_errors() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute("CREATE TABLE t (a int)").await.unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "CREATE TABLE t (b int)",
            "42P07",
            "relation \"t\" already exists",
        ),
        (
            "CREATE TABLE u (a int, a int)",
            "42701",
            "column \"a\" specified more than once",
        ),
        (
            "CREATE TABLE u (a int PRIMARY KEY, b int PRIMARY KEY)",
            "42P16",
            "multiple primary keys for table \"u\" are not allowed",
        ),
        (
            "CREATE TABLE nosuch.u (a int)",
            "3F000",
            "schema \"nosuch\" does not exist",
        ),
        (
            "DROP TABLE nosuch",
            "42P01",
            "table \"nosuch\" does not exist",
        ),
        (
            "SELECT * FROM nosuch",
            "42P01",
            "relation \"nosuch\" does not exist",
        ),
        (
            "DROP INDEX nosuch",
            "42704",
            "index \"nosuch\" does not exist",
        ),
        (
            "CREATE INDEX ON t (nosuch)",
            "42703",
            "column \"nosuch\" does not exist",
        ),
        (
            "CREATE SCHEMA pg_x",
            "42939",
            "unacceptable schema name \"pg_x\"",
        ),
    ];
    for (sql, sqlstate, message) in cases {
        let e = c.batch_execute(sql).await.unwrap_err();
        assert_eq!(code(&e), *sqlstate, "{sql}");
        assert_eq!(e.as_db_error().unwrap().message(), *message, "{sql}");
    }
    // IF [NOT] EXISTS make them no-ops.
    c.batch_execute(
        "CREATE TABLE IF NOT EXISTS t (b int); DROP TABLE IF EXISTS nosuch; DROP INDEX IF EXISTS nosuch",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT * FROM t").await,
        Vec::<Vec<Option<String>>>::new()
    );
    // A Python module's schema takes no SQL tables.
    c.batch_execute("CREATE MODULE py AS $$\nx: int = 1\n$$")
        .await
        .unwrap();
    let e = c
        .batch_execute("CREATE TABLE py.t (a int)")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "0A000");
    // What is not built yet is refused, not ignored.
    for sql in [
        "CREATE TABLE u (a int, b int GENERATED ALWAYS AS (a * 2) STORED)",
        "CREATE TEMPORARY TABLE u (a int)",
        "CREATE TABLE u (a interval)",
    ] {
        let e = c.batch_execute(sql).await.unwrap_err();
        assert_eq!(code(&e), "0A000", "{sql}");
    }
}

#[tokio::test]
async fn ddl_in_a_block_is_the_blocks_and_indexes_and_schemas_work() {
    let server = Server::start();
    let c = connect(&server).await;
    let other = connect(&server).await;
    c.batch_execute("BEGIN; CREATE TABLE b (x text); INSERT INTO b VALUES ('one')")
        .await
        .unwrap();
    // Not visible to another session before COMMIT ...
    let e = other.batch_execute("SELECT * FROM b").await.unwrap_err();
    assert_eq!(code(&e), "42P01");
    c.batch_execute("ROLLBACK").await.unwrap();
    // ... and gone with ROLLBACK.
    let e = c.batch_execute("SELECT * FROM b").await.unwrap_err();
    assert_eq!(code(&e), "42P01");
    c.batch_execute("BEGIN; CREATE TABLE b (x text); INSERT INTO b VALUES ('one'); COMMIT")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&other, "SELECT x FROM b").await,
        rows(&[&["one"]])
    );

    // CREATE UNIQUE INDEX checks the rows already there, then every write.
    c.batch_execute("INSERT INTO b VALUES ('one')")
        .await
        .unwrap();
    let e = c
        .batch_execute("CREATE UNIQUE INDEX b_x ON b (x)")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "23505");
    c.batch_execute("DELETE FROM b WHERE x = 'one'; INSERT INTO b VALUES ('one'), ('two'); CREATE UNIQUE INDEX b_x ON b (x); CREATE INDEX ON b (x)")
        .await
        .unwrap();
    let e = c
        .batch_execute("INSERT INTO b VALUES ('two')")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "23505");
    c.batch_execute("DROP INDEX b_x; INSERT INTO b VALUES ('two')")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT x, count(*) FROM b GROUP BY x ORDER BY x").await,
        rows(&[&["one", "1"], &["two", "2"]])
    );

    // Schemas: tables in them, DROP SCHEMA needs CASCADE when not empty.
    c.batch_execute(
        "CREATE SCHEMA s; CREATE TABLE s.t (v int UNIQUE); INSERT INTO s.t VALUES (1), (2)",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT sum(v) FROM s.t").await,
        rows(&[&["3"]])
    );
    let e = c.batch_execute("DROP SCHEMA s").await.unwrap_err();
    assert_eq!(code(&e), "2BP01");
    c.batch_execute("DROP SCHEMA s CASCADE").await.unwrap();
    let e = c.batch_execute("SELECT * FROM s.t").await.unwrap_err();
    assert_eq!(code(&e), "42P01");
    // A table dropped and made again starts empty, its keys free.
    c.batch_execute("CREATE SCHEMA s; CREATE TABLE s.t (v int UNIQUE); INSERT INTO s.t VALUES (1)")
        .await
        .unwrap();
    assert_eq!(simple_rows(&c, "SELECT v FROM s.t").await, rows(&[&["1"]]));
    c.batch_execute("DROP TABLE b").await.unwrap();
    let e = c.batch_execute("SELECT * FROM b").await.unwrap_err();
    assert_eq!(code(&e), "42P01");
}

#[tokio::test]
async fn views_are_queries_planned_in_the_statements_transaction() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE t1 (x integer, y varchar(8));
         INSERT INTO t1 VALUES (1, 'a'), (0, 'b'), (-1, 'c');
         CREATE VIEW view1 AS SELECT x FROM t1 WHERE x > 0;
         CREATE VIEW v2 (a, b) AS SELECT x, y || '!' FROM t1;
         CREATE VIEW v3 AS SELECT a + 1, b FROM v2 WHERE a >= 0",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT * FROM view1").await,
        rows(&[&["1"]])
    );
    assert_eq!(
        simple_rows(&c, "SELECT * FROM v2 ORDER BY a").await,
        rows(&[&["-1", "c!"], &["0", "b!"], &["1", "a!"]])
    );
    // Column names as CREATE VIEW fixed them (PostgreSQL's `?column?`).
    let stmt = c.prepare("SELECT * FROM v3 ORDER BY 1").await.unwrap();
    let names: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["?column?", "b"]);
    // A prepared statement over a view sees each execution's rows.
    let count = c.prepare("SELECT count(*) FROM v3").await.unwrap();
    let n: i64 = c.query_one(&count, &[]).await.unwrap().get(0);
    assert_eq!(n, 2);
    c.batch_execute("INSERT INTO t1 VALUES (5, 'e')")
        .await
        .unwrap();
    let n: i64 = c.query_one(&count, &[]).await.unwrap().get(0);
    assert_eq!(n, 3);
    // In a block, the view reads the block's own writes.
    c.batch_execute("BEGIN; DELETE FROM t1 WHERE x = 5")
        .await
        .unwrap();
    let n: i64 = c.query_one(&count, &[]).await.unwrap().get(0);
    assert_eq!(n, 2);
    c.batch_execute("ROLLBACK").await.unwrap();

    let cases: &[(&str, &str, &str)] = &[
        (
            "CREATE VIEW view1 AS SELECT 1",
            "42P07",
            "relation \"view1\" already exists",
        ),
        (
            "CREATE VIEW bad AS SELECT * FROM nosuch",
            "42P01",
            "relation \"nosuch\" does not exist",
        ),
        (
            "DROP VIEW nosuch",
            "42P01",
            "view \"nosuch\" does not exist",
        ),
        (
            "DROP TABLE t1",
            "2BP01",
            "cannot drop table t1 because other objects depend on it",
        ),
        (
            "DROP VIEW v2",
            "2BP01",
            "cannot drop view v2 because other objects depend on it",
        ),
        (
            "INSERT INTO view1 VALUES (2, 'x')",
            "42P01",
            "relation \"view1\" does not exist",
        ),
    ];
    for (sql, sqlstate, message) in cases {
        let e = c.batch_execute(sql).await.unwrap_err();
        assert_eq!(code(&e), *sqlstate, "{sql}");
        assert_eq!(e.as_db_error().unwrap().message(), *message, "{sql}");
    }
    c.batch_execute("CREATE OR REPLACE VIEW view1 AS SELECT x FROM t1 WHERE x < 0")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT * FROM view1").await,
        rows(&[&["-1"]])
    );
    // CASCADE takes the dependent views along.
    c.batch_execute("DROP VIEW v2 CASCADE").await.unwrap();
    let e = c.batch_execute("SELECT * FROM v3").await.unwrap_err();
    assert_eq!(code(&e), "42P01");
    c.batch_execute("DROP TABLE t1 CASCADE").await.unwrap();
    let e = c.batch_execute("SELECT * FROM view1").await.unwrap_err();
    assert_eq!(code(&e), "42P01");
    // A view of another schema's table goes with DROP SCHEMA ... CASCADE.
    c.batch_execute(
        "CREATE SCHEMA s2; CREATE TABLE s2.x (a int); INSERT INTO s2.x VALUES (7);
         CREATE VIEW vx AS SELECT a FROM s2.x",
    )
    .await
    .unwrap();
    assert_eq!(simple_rows(&c, "SELECT a FROM vx").await, rows(&[&["7"]]));
    let e = c.batch_execute("DROP SCHEMA s2").await.unwrap_err();
    assert_eq!(code(&e), "2BP01");
    c.batch_execute("DROP SCHEMA s2 CASCADE").await.unwrap();
    let e = c.batch_execute("SELECT * FROM vx").await.unwrap_err();
    assert_eq!(code(&e), "42P01");
}

#[tokio::test]
async fn serial_and_identity_columns_count_from_one_and_never_repeat() {
    let mut server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
         INSERT INTO users (name) VALUES ('ann'), ('bob');
         CREATE TABLE ev (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, what text);
         CREATE TABLE ev2 (id int GENERATED BY DEFAULT AS IDENTITY, what text);
         INSERT INTO ev2 (id, what) VALUES (10, 'x'); INSERT INTO ev2 (what) VALUES ('y')",
    )
    .await
    .unwrap();
    let row = c
        .query_one("INSERT INTO users (name) VALUES ('cy') RETURNING id", &[])
        .await
        .unwrap();
    // serial is integer, as in PostgreSQL.
    assert_eq!(row.get::<_, i32>(0), 3);
    assert_eq!(
        simple_rows(&c, "SELECT id, what FROM ev2 ORDER BY id").await,
        rows(&[&["1", "y"], &["10", "x"]])
    );
    // GENERATED ALWAYS refuses values, as PostgreSQL does.
    for sql in [
        "INSERT INTO ev (id, what) VALUES (5, 'b')",
        "INSERT INTO ev VALUES (5, 'b')",
        "UPDATE ev SET id = 7",
    ] {
        let e = c.batch_execute(sql).await.unwrap_err();
        assert_eq!(code(&e), "428C9", "{sql}");
    }
    // A rolled-back insert leaves a gap; values are never handed out
    // twice, also after kill -9.
    c.batch_execute("BEGIN; INSERT INTO users (name) VALUES ('gone'); ROLLBACK")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO users (name) VALUES ('dee')")
        .await
        .unwrap();
    drop(c);
    server.kill9();
    server.restart();
    let c = connect(&server).await;
    c.batch_execute("INSERT INTO users (name) VALUES ('eve')")
        .await
        .unwrap();
    let ids: Vec<i32> = c
        .query("SELECT id FROM users ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(&ids[..3], &[1, 2, 3]);
    assert_eq!(ids.len(), 5);
    assert!(ids[3] > 4, "the rolled-back value is not reused: {ids:?}");
    assert!(ids[4] > ids[3], "{ids:?}");
    // Dropped with its table, the sequence starts over in a new one.
    c.batch_execute("DROP TABLE users; CREATE TABLE users (id serial, name text); INSERT INTO users (name) VALUES ('new')")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT id FROM users").await,
        rows(&[&["1"]])
    );
}

#[tokio::test]
async fn search_path_decides_where_unqualified_names_go() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE SCHEMA app;
         CREATE TABLE t (v int); INSERT INTO t VALUES (1);
         SET search_path = app, public;
         CREATE TABLE t (v int); INSERT INTO t VALUES (2);
         CREATE TABLE only_public_missing (v int)",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT current_schema()").await,
        rows(&[&["app"]])
    );
    assert_eq!(simple_rows(&c, "SELECT v FROM t").await, rows(&[&["2"]]));
    assert_eq!(
        simple_rows(&c, "SELECT v FROM public.t").await,
        rows(&[&["1"]])
    );
    assert_eq!(
        simple_rows(&c, "SELECT count(*) FROM app.only_public_missing").await,
        rows(&[&["0"]])
    );
    // A prepared statement plans again when search_path changes.
    let stmt = c.prepare("SELECT v FROM t").await.unwrap();
    let v: i32 = c.query_one(&stmt, &[]).await.unwrap().get(0);
    assert_eq!(v, 2);
    c.batch_execute("SET search_path = public").await.unwrap();
    let v: i32 = c.query_one(&stmt, &[]).await.unwrap().get(0);
    assert_eq!(v, 1);
    // DML and DDL follow it too.
    c.batch_execute("SET search_path = app; UPDATE t SET v = 20; DROP TABLE only_public_missing")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT v FROM app.t").await,
        rows(&[&["20"]])
    );
    assert_eq!(
        simple_rows(&c, "SELECT v FROM public.t").await,
        rows(&[&["1"]])
    );
    // With no schema of the path existing: nothing to create in, as in
    // PostgreSQL; current_schema() is NULL.
    c.batch_execute("SET search_path = nosuch").await.unwrap();
    let e = c.batch_execute("CREATE TABLE x (a int)").await.unwrap_err();
    assert_eq!(code(&e), "3F000");
    assert_eq!(
        e.as_db_error().unwrap().message(),
        "no schema has been selected to create in"
    );
    assert_eq!(
        simple_rows(&c, "SELECT current_schema() IS NULL").await,
        rows(&[&["t"]])
    );
    let e = c.batch_execute("SELECT * FROM t").await.unwrap_err();
    assert_eq!(code(&e), "42P01");
}

#[tokio::test]
async fn truncate_empties_tables_and_frees_their_keys() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE a (k int PRIMARY KEY); CREATE TABLE b (k text UNIQUE);
         INSERT INTO a VALUES (1), (2); INSERT INTO b VALUES ('x')",
    )
    .await
    .unwrap();
    // In a block that rolls back, nothing is lost.
    c.batch_execute("BEGIN; TRUNCATE a, b; ROLLBACK")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT count(*) FROM a").await,
        rows(&[&["2"]])
    );
    let msgs = c.simple_query("TRUNCATE TABLE a, b").await.unwrap();
    let tag = msgs.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
        _ => None,
    });
    assert_eq!(tag, Some(0));
    assert_eq!(
        simple_rows(&c, "SELECT count(*) FROM a").await,
        rows(&[&["0"]])
    );
    // The keys are free again.
    c.batch_execute("INSERT INTO a VALUES (1); INSERT INTO b VALUES ('x')")
        .await
        .unwrap();
    let e = c.batch_execute("TRUNCATE nosuch").await.unwrap_err();
    assert_eq!(code(&e), "42P01");
}

/// `INSERT ... VALUES` with fewer values than columns (no column list) and
/// with `DEFAULT` cells: the other columns take their defaults, as in
/// PostgreSQL 15 (answers taken from it); a column list longer than the
/// values is still 42601. Both used to fail.
#[tokio::test]
async fn inserts_fill_defaults_as_postgresql_does() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE dflt (a bigint PRIMARY KEY, b text DEFAULT 'bee', c bigserial, d date);
         INSERT INTO dflt VALUES (1);
         INSERT INTO dflt VALUES (2, DEFAULT, DEFAULT, '2024-01-01'), (3, 'x', default, NULL);
         INSERT INTO dflt (a, b) VALUES (4, DEFAULT);",
    )
    .await
    .unwrap();
    let got = simple_rows(
        &c,
        "SELECT a, b, c, coalesce(d::text, '-') FROM dflt ORDER BY a",
    )
    .await;
    assert_eq!(
        got,
        rows(&[
            &["1", "bee", "1", "-"],
            &["2", "bee", "2", "2024-01-01"],
            &["3", "x", "3", "-"],
            &["4", "bee", "4", "-"],
        ])
    );
    let err = c
        .batch_execute("INSERT INTO dflt (a, b) VALUES (5)")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42601");
    // DEFAULT VALUES: every column its default.
    c.batch_execute("CREATE TABLE dv (id serial PRIMARY KEY, a int DEFAULT 5, b text)")
        .await
        .unwrap();
    let returned = simple_rows(&c, "INSERT INTO dv DEFAULT VALUES RETURNING id, a, b").await;
    assert_eq!(
        returned,
        vec![vec![Some("1".to_string()), Some("5".to_string()), None]]
    );
}

/// `REFERENCES` (column and table constraint, to a primary key or a
/// unique column, in the same table too) as PostgreSQL 15 keeps it, with
/// its messages (each checked against it): a reference to a missing key
/// is 23503, and so is deleting or changing a key still referenced;
/// a bad clause is refused at CREATE TABLE; DROP TABLE of a referenced
/// table needs CASCADE, which drops the constraint. psql's `\d` shows the
/// keys both ways (`tests/tests/psql.rs` diffs it).
#[tokio::test]
async fn foreign_keys_are_kept_as_postgresql_keeps_them() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE SCHEMA fk;
         CREATE TABLE fk.parent (id bigint PRIMARY KEY, code text UNIQUE, name text);
         CREATE TABLE fk.child (id bigserial PRIMARY KEY, parent_id bigint REFERENCES fk.parent,
             code text, FOREIGN KEY (code) REFERENCES fk.parent (code));
         CREATE TABLE fk.tree (id bigint PRIMARY KEY, up bigint REFERENCES fk.tree (id));
         INSERT INTO fk.parent VALUES (1, 'a', 'one'), (2, 'b', 'two');
         INSERT INTO fk.child (parent_id, code) VALUES (1, 'a'), (NULL, NULL), (2, 'b');
         INSERT INTO fk.tree VALUES (1, NULL), (2, 1), (3, 3);",
    )
    .await
    .unwrap();
    let fails = [
        ("CREATE TABLE fk.bad (x bigint REFERENCES fk.nope)", "42P01", "relation \"fk.nope\" does not exist"),
        ("CREATE TABLE fk.bad (x bigint REFERENCES fk.parent (name))", "42830",
         "there is no unique constraint matching given keys for referenced table \"parent\""),
        ("CREATE TABLE fk.bad (x text REFERENCES fk.parent (id))", "42804",
         "foreign key constraint \"bad_x_fkey\" cannot be implemented"),
        ("INSERT INTO fk.child (parent_id) VALUES (3)", "23503",
         "insert or update on table \"child\" violates foreign key constraint \"child_parent_id_fkey\""),
        ("INSERT INTO fk.child (code) VALUES ('zz')", "23503",
         "insert or update on table \"child\" violates foreign key constraint \"child_code_fkey\""),
        ("UPDATE fk.child SET parent_id = 5 WHERE parent_id = 1", "23503",
         "insert or update on table \"child\" violates foreign key constraint \"child_parent_id_fkey\""),
        ("DELETE FROM fk.parent WHERE id = 1", "23503",
         "update or delete on table \"parent\" violates foreign key constraint \"child_parent_id_fkey\" on table \"child\""),
        ("UPDATE fk.parent SET code = 'c' WHERE id = 2", "23503",
         "update or delete on table \"parent\" violates foreign key constraint \"child_code_fkey\" on table \"child\""),
        ("INSERT INTO fk.tree VALUES (4, 9)", "23503",
         "insert or update on table \"tree\" violates foreign key constraint \"tree_up_fkey\""),
        ("DELETE FROM fk.tree WHERE id = 1", "23503",
         "update or delete on table \"tree\" violates foreign key constraint \"tree_up_fkey\" on table \"tree\""),
        ("DROP TABLE fk.parent", "2BP01", "cannot drop table fk.parent because other objects depend on it"),
    ];
    for (sql, want_code, want_message) in fails {
        let err = c.batch_execute(sql).await.unwrap_err();
        assert_eq!(code(&err), want_code, "{sql}: {err}");
        let db = err.as_db_error().expect("a server error");
        assert_eq!(db.message(), want_message, "{sql}");
        if want_code == "23503" {
            assert!(db.constraint().is_some(), "{sql}: the constraint is named");
        }
    }
    // What may change: a key nobody references, a row referencing itself.
    c.batch_execute(
        "UPDATE fk.parent SET name = 'deux' WHERE id = 2;
         DELETE FROM fk.child WHERE parent_id = 1;
         DELETE FROM fk.parent WHERE id = 1;
         DELETE FROM fk.tree WHERE id = 3;",
    )
    .await
    .unwrap();
    let keys = simple_rows(
        &c,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE connamespace = 'fk'::regnamespace AND contype = 'f' ORDER BY conname",
    )
    .await;
    assert_eq!(
        keys,
        rows(&[
            &[
                "child_code_fkey",
                "FOREIGN KEY (code) REFERENCES fk.parent(code)"
            ],
            &[
                "child_parent_id_fkey",
                "FOREIGN KEY (parent_id) REFERENCES fk.parent(id)"
            ],
            &["tree_up_fkey", "FOREIGN KEY (up) REFERENCES fk.tree(id)"],
        ])
    );
    // TRUNCATE of a referenced table takes the referencing one along
    // (listed or CASCADE), as in PostgreSQL; a self-reference is no
    // obstacle.
    let err = c.batch_execute("TRUNCATE fk.parent").await.unwrap_err();
    assert_eq!(code(&err), "0A000");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(
        db.message(),
        "cannot truncate a table referenced in a foreign key constraint"
    );
    assert_eq!(
        db.hint(),
        Some("Truncate table \"child\" at the same time, or use TRUNCATE ... CASCADE.")
    );
    c.batch_execute("TRUNCATE fk.tree; INSERT INTO fk.parent VALUES (7, 'g', 'seven')")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO fk.child (parent_id) VALUES (7); TRUNCATE fk.parent CASCADE")
        .await
        .unwrap();
    let emptied = simple_rows(
        &c,
        "SELECT (SELECT count(*) FROM fk.parent), (SELECT count(*) FROM fk.child)",
    )
    .await;
    assert_eq!(emptied, rows(&[&["0", "0"]]));
    c.batch_execute("INSERT INTO fk.parent VALUES (2, 'b', 'two')")
        .await
        .unwrap();
    // CASCADE drops the constraints, not the referencing table.
    c.batch_execute("DROP TABLE fk.parent CASCADE; INSERT INTO fk.child (parent_id) VALUES (99)")
        .await
        .unwrap();
    let left = simple_rows(
        &c,
        "SELECT count(*) FROM pg_constraint WHERE connamespace = 'fk'::regnamespace AND contype = 'f'",
    )
    .await;
    assert_eq!(left, rows(&[&["1"]]));
}

/// `timestamp` (without time zone) columns, which ORMs declare (SQLAlchemy's
/// `DateTime`): stored and shown as wall-clock times, a timestamptz put in
/// one converted in the session's TimeZone, arrays, arithmetic, the
/// catalog's type name and the binary format, as PostgreSQL 15 gives them
/// (its answers). Such a table used to be refused.
#[tokio::test]
async fn timestamp_columns_are_wall_clock_times() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE tsx (id bigint PRIMARY KEY, at timestamp, ats timestamp[]);
         INSERT INTO tsx VALUES (1, '2024-01-02 03:04:05.678', '{\"2024-01-01 00:00:00\"}');
         SET TimeZone = 'Europe/Berlin';
         INSERT INTO tsx (id, at) VALUES (2, '2024-07-01 10:00:00+00'::timestamptz);",
    )
    .await
    .unwrap();
    let got = simple_rows(
        &c,
        "SELECT id, at, ats, at + interval '1 day', pg_typeof(at), \
         format_type('tsx'::regclass::oid, NULL) IS NOT NULL FROM tsx ORDER BY id",
    )
    .await;
    let row = |v: &[Option<&str>]| v.iter().map(|s| s.map(str::to_string)).collect::<Vec<_>>();
    assert_eq!(
        got,
        vec![
            row(&[
                Some("1"),
                Some("2024-01-02 03:04:05.678"),
                Some("{\"2024-01-01 00:00:00\"}"),
                Some("2024-01-03 03:04:05.678"),
                Some("timestamp without time zone"),
                Some("t"),
            ]),
            row(&[
                Some("2"),
                Some("2024-07-01 12:00:00"),
                None,
                Some("2024-07-02 12:00:00"),
                Some("timestamp without time zone"),
                Some("t"),
            ]),
        ]
    );
    let declared = simple_rows(
        &c,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = 'tsx'::regclass AND attname = 'at'",
    )
    .await;
    assert_eq!(declared, rows(&[&["timestamp without time zone"]]));
    // Binary: microseconds since 2000-01-01, no zone.
    let r = c
        .query_one("SELECT at FROM tsx WHERE id = 1", &[])
        .await
        .unwrap();
    let at: std::time::SystemTime = r.get(0);
    let since_epoch = at.duration_since(std::time::UNIX_EPOCH).unwrap();
    assert_eq!(since_epoch.as_millis(), 1_704_164_645_678);
}

/// `ON DELETE CASCADE` and `ON DELETE SET NULL` as PostgreSQL 15 runs them
/// (its answers): a delete cascades through a chain of tables and down a
/// self-referencing tree; SET NULL clears the referencing column, and a
/// NOT NULL one fails the delete (23502, nothing of it kept); the
/// catalog shows the actions.
#[tokio::test]
async fn on_delete_cascade_and_set_null_act_as_in_postgresql() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE SCHEMA cas;
         CREATE TABLE cas.p (id bigint PRIMARY KEY, name text);
         CREATE TABLE cas.c (id bigint PRIMARY KEY, p bigint REFERENCES cas.p ON DELETE CASCADE);
         CREATE TABLE cas.g (id bigint PRIMARY KEY, c bigint REFERENCES cas.c ON DELETE CASCADE);
         CREATE TABLE cas.n (id bigint PRIMARY KEY, p bigint REFERENCES cas.p ON DELETE SET NULL);
         CREATE TABLE cas.nn (id bigint PRIMARY KEY, p bigint NOT NULL REFERENCES cas.p ON DELETE SET NULL);
         CREATE TABLE cas.t (id bigint PRIMARY KEY, up bigint REFERENCES cas.t ON DELETE CASCADE);
         INSERT INTO cas.p VALUES (1, 'a'), (2, 'b'), (3, 'c');
         INSERT INTO cas.c VALUES (10, 1), (11, 1), (12, 2);
         INSERT INTO cas.g VALUES (100, 10), (101, 12);
         INSERT INTO cas.n VALUES (1, 1), (2, 2);
         INSERT INTO cas.nn VALUES (1, 3);
         INSERT INTO cas.t VALUES (1, NULL), (2, 1), (3, 2), (4, NULL);
         DELETE FROM cas.p WHERE id = 1;
         DELETE FROM cas.t WHERE id = 1;",
    )
    .await
    .unwrap();
    let left = simple_rows(
        &c,
        "SELECT 'c', id FROM cas.c UNION ALL SELECT 'g', id FROM cas.g \
         UNION ALL SELECT 'n', coalesce(p, -1) FROM cas.n UNION ALL SELECT 't', id FROM cas.t \
         ORDER BY 1, 2",
    )
    .await;
    assert_eq!(
        left,
        rows(&[
            &["c", "12"],
            &["g", "101"],
            &["n", "-1"],
            &["n", "2"],
            &["t", "4"],
        ])
    );
    let err = c
        .batch_execute("DELETE FROM cas.p WHERE id = 3")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "23502");
    assert_eq!(
        simple_rows(&c, "SELECT count(*) FROM cas.p WHERE id = 3").await,
        rows(&[&["1"]])
    );
    let rules = simple_rows(
        &c,
        "SELECT constraint_name, delete_rule FROM information_schema.referential_constraints \
         WHERE constraint_schema = 'cas' ORDER BY 1",
    )
    .await;
    assert_eq!(
        rules,
        rows(&[
            &["c_p_fkey", "CASCADE"],
            &["g_c_fkey", "CASCADE"],
            &["n_p_fkey", "SET NULL"],
            &["nn_p_fkey", "SET NULL"],
            &["t_up_fkey", "CASCADE"],
        ])
    );
    let def = simple_rows(
        &c,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'n_p_fkey'",
    )
    .await;
    assert_eq!(
        def,
        rows(&[&["FOREIGN KEY (p) REFERENCES cas.p(id) ON DELETE SET NULL"]])
    );
}
