//! CHECK constraints of tables made by SQL. Every expected row, SQLSTATE,
//! message and detail is PostgreSQL 15's for the same statements.

use super::{code, connect, rows, simple_rows};
use amber_tests::Server;
use bytes::Bytes;
use futures::SinkExt;

#[tokio::test]
async fn check_constraints_are_enforced_and_listed_as_in_postgresql() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE ck (id int PRIMARY KEY, qty int CHECK (qty > 0), lo int, hi int, \
         name text CHECK (length(name) > 2), CONSTRAINT lohi CHECK (lo < hi AND lo >= 0), \
         CHECK (hi < 100 OR hi IS NULL))",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(
            &c,
            "SELECT conname, pg_get_constraintdef(oid), pg_get_constraintdef(oid, true), conkey::text \
             FROM pg_constraint WHERE conrelid = 'ck'::regclass AND contype = 'c' ORDER BY conname"
        )
        .await,
        rows(&[
            &[
                "ck_hi_check",
                "CHECK (((hi < 100) OR (hi IS NULL)))",
                "CHECK (hi < 100 OR hi IS NULL)",
                "{4}"
            ],
            &[
                "ck_name_check",
                "CHECK ((length(name) > 2))",
                "CHECK (length(name) > 2)",
                "{5}"
            ],
            &[
                "ck_qty_check",
                "CHECK ((qty > 0))",
                "CHECK (qty > 0)",
                "{2}"
            ],
            &[
                "lohi",
                "CHECK (((lo < hi) AND (lo >= 0)))",
                "CHECK (lo < hi AND lo >= 0)",
                "{3,4}"
            ],
        ])
    );
    let violation = |sql: &'static str, constraint: &'static str, row: &'static str| {
        let c = &c;
        async move {
            let e = c.batch_execute(sql).await.expect_err(sql);
            let db = e.as_db_error().expect(sql);
            assert_eq!(
                (
                    code(&e).as_str(),
                    db.message(),
                    db.detail(),
                    db.constraint()
                ),
                (
                    "23514",
                    format!(
                        "new row for relation \"ck\" violates check constraint \"{constraint}\""
                    )
                    .as_str(),
                    Some(format!("Failing row contains ({row}).").as_str()),
                    Some(constraint)
                ),
                "{sql}"
            );
        }
    };
    violation(
        "INSERT INTO ck VALUES (1, 0, 1, 2, 'abc')",
        "ck_qty_check",
        "1, 0, 1, 2, abc",
    )
    .await;
    violation(
        "INSERT INTO ck VALUES (1, 5, 3, 2, 'abc')",
        "lohi",
        "1, 5, 3, 2, abc",
    )
    .await;
    // NULL passes a check, as in PostgreSQL.
    c.batch_execute(
        "INSERT INTO ck VALUES (1, 5, 1, 2, 'abc'); INSERT INTO ck VALUES (2, NULL, NULL, NULL, NULL)",
    )
    .await
    .unwrap();
    violation(
        "UPDATE ck SET hi = 200 WHERE id = 1",
        "ck_hi_check",
        "1, 5, 1, 200, abc",
    )
    .await;
    // COPY checks every row; nothing of a failed COPY is kept.
    let sink = c.copy_in("COPY ck FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from_static(b"3\t7\t1\t2\tabcd\n4\t-7\t1\t2\tabcd\n"))
        .await
        .unwrap();
    let e = sink.finish().await.unwrap_err();
    assert_eq!(code(&e), "23514");
    assert_eq!(
        simple_rows(&c, "SELECT count(*) FROM ck").await,
        rows(&[&["2"]])
    );
    // Psycopg-style bad expressions are refused at CREATE TABLE.
    for (sql, want) in [
        (
            "CREATE TABLE bad1 (a int CHECK (nope > 0))",
            ("42703", "column \"nope\" does not exist"),
        ),
        (
            "CREATE TABLE bad2 (a text CHECK (a || 'x'))",
            (
                "42804",
                "argument of CHECK must be type boolean, not type text",
            ),
        ),
    ] {
        let e = c.batch_execute(sql).await.expect_err(sql);
        assert_eq!(
            (code(&e).as_str(), e.as_db_error().unwrap().message()),
            want,
            "{sql}"
        );
    }
}

#[tokio::test]
async fn check_constraints_follow_alter_table() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE cc (id int PRIMARY KEY, qty int CHECK (qty >= 0), lo int, hi int);
         INSERT INTO cc VALUES (1, 5, 1, 10), (2, 0, 5, 3)",
    )
    .await
    .unwrap();
    let e = c
        .batch_execute("ALTER TABLE cc ADD CONSTRAINT lohi CHECK (lo < hi)")
        .await
        .unwrap_err();
    assert_eq!(
        (code(&e).as_str(), e.as_db_error().unwrap().message()),
        (
            "23514",
            "check constraint \"lohi\" of relation \"cc\" is violated by some row"
        )
    );
    c.batch_execute(
        "UPDATE cc SET hi = 6 WHERE id = 2;
         ALTER TABLE cc ADD CONSTRAINT lohi CHECK (lo < hi);
         ALTER TABLE cc RENAME COLUMN qty TO quantity",
    )
    .await
    .unwrap();
    let e = c
        .batch_execute("INSERT INTO cc VALUES (4, -1, 1, 2)")
        .await
        .unwrap_err();
    assert_eq!(e.as_db_error().unwrap().constraint(), Some("cc_qty_check"));
    assert_eq!(
        simple_rows(
            &c,
            "SELECT conname, pg_get_constraintdef(oid, true) FROM pg_constraint \
             WHERE conrelid = 'cc'::regclass AND contype = 'c' ORDER BY 1"
        )
        .await,
        rows(&[
            &["cc_qty_check", "CHECK (quantity >= 0)"],
            &["lohi", "CHECK (lo < hi)"]
        ])
    );
    c.batch_execute(
        "ALTER TABLE cc DROP CONSTRAINT lohi;
         INSERT INTO cc VALUES (5, 1, 9, 8);
         ALTER TABLE cc DROP CONSTRAINT IF EXISTS nope;
         ALTER TABLE cc DROP COLUMN quantity",
    )
    .await
    .unwrap();
    let e = c
        .batch_execute("ALTER TABLE cc DROP CONSTRAINT nope")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "42704");
    // Dropping the column dropped its check.
    assert_eq!(
        simple_rows(
            &c,
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'cc'::regclass AND contype = 'c'"
        )
        .await,
        rows(&[&["0"]])
    );
}
