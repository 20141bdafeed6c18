//! ALTER TABLE of tables made by SQL, as ORMs' migrations send it. Every
//! expected row, SQLSTATE and message is PostgreSQL 15's for the same
//! statements (`pg-scratch`).

use super::{code, connect, rows, simple_rows};
use amber_tests::Server;

#[tokio::test]
async fn columns_are_added_dropped_renamed_and_altered() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE al (id int PRIMARY KEY, name text NOT NULL, qty int);
         INSERT INTO al VALUES (1, 'a', 10), (2, 'b', NULL);
         ALTER TABLE al ADD COLUMN price numeric(10,2) DEFAULT 1.5;
         ALTER TABLE al ADD COLUMN note varchar(5)",
    )
    .await
    .unwrap();
    // Existing rows take the added column's default.
    assert_eq!(
        simple_rows(&c, "SELECT * FROM al ORDER BY id").await,
        rows(&[
            &["1", "a", "10", "1.50", "NULL"],
            &["2", "b", "NULL", "1.50", "NULL"]
        ])
    );
    let fails = |sql: &'static str, want: (&'static str, &'static str)| {
        let c = &c;
        async move {
            let e = c.batch_execute(sql).await.expect_err(sql);
            let db = e.as_db_error().expect(sql);
            assert_eq!((code(&e).as_str(), db.message()), want, "{sql}");
        }
    };
    fails(
        "ALTER TABLE al ADD COLUMN must int NOT NULL",
        (
            "23502",
            "column \"must\" of relation \"al\" contains null values",
        ),
    )
    .await;
    fails(
        "ALTER TABLE al ADD COLUMN name text",
        ("42701", "column \"name\" of relation \"al\" already exists"),
    )
    .await;
    c.batch_execute(
        "ALTER TABLE al ADD COLUMN IF NOT EXISTS name text;
         ALTER TABLE al RENAME COLUMN qty TO quantity;
         ALTER TABLE al ALTER COLUMN quantity SET DEFAULT 7;
         INSERT INTO al (id, name) VALUES (3, 'c')",
    )
    .await
    .unwrap();
    fails(
        "ALTER TABLE al ALTER COLUMN quantity SET NOT NULL",
        (
            "23502",
            "column \"quantity\" of relation \"al\" contains null values",
        ),
    )
    .await;
    c.batch_execute(
        "UPDATE al SET quantity = 0 WHERE quantity IS NULL;
         ALTER TABLE al ALTER COLUMN quantity SET NOT NULL",
    )
    .await
    .unwrap();
    fails(
        "ALTER TABLE al ALTER COLUMN id DROP NOT NULL",
        ("42P16", "column \"id\" is in a primary key"),
    )
    .await;
    fails(
        "ALTER TABLE al DROP COLUMN nothere",
        (
            "42703",
            "column \"nothere\" of relation \"al\" does not exist",
        ),
    )
    .await;
    fails(
        "INSERT INTO al (id, name, quantity) VALUES (4, 'd', NULL)",
        (
            "23502",
            "null value in column \"quantity\" of relation \"al\" violates not-null constraint",
        ),
    )
    .await;
    c.batch_execute(
        "ALTER TABLE al DROP COLUMN note;
         ALTER TABLE al DROP COLUMN IF EXISTS nothere;
         ALTER TABLE al RENAME TO al2",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT * FROM al2 ORDER BY id").await,
        rows(&[
            &["1", "a", "10", "1.50"],
            &["2", "b", "0", "1.50"],
            &["3", "c", "7", "1.50"]
        ])
    );
    assert_eq!(
        simple_rows(
            &c,
            "SELECT column_name, data_type, column_default, is_nullable \
             FROM information_schema.columns WHERE table_name = 'al2' ORDER BY ordinal_position"
        )
        .await,
        rows(&[
            &["id", "integer", "NULL", "NO"],
            &["name", "text", "NULL", "NO"],
            &["quantity", "integer", "7", "NO"],
            &["price", "numeric", "1.5", "YES"],
        ])
    );
    // A column added after one was dropped never sees the dropped values.
    c.batch_execute("ALTER TABLE al2 ADD COLUMN extra text")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT count(*) FROM al2 WHERE extra IS NULL").await,
        rows(&[&["3"]])
    );
}

#[tokio::test]
async fn altering_a_referenced_column_keeps_its_foreign_keys_right() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE par (k int PRIMARY KEY, label text);
         CREATE TABLE chi (id int PRIMARY KEY, k int REFERENCES par(k));
         INSERT INTO par VALUES (1, 'one');
         INSERT INTO chi VALUES (1, 1);
         ALTER TABLE par RENAME COLUMN k TO kk",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(
            &c,
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = 'chi'::regclass AND contype = 'f'"
        )
        .await,
        rows(&[&["chi_k_fkey", "FOREIGN KEY (k) REFERENCES par(kk)"]])
    );
    let e = c
        .batch_execute("INSERT INTO chi VALUES (2, 2)")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "23503");
    let e = c
        .batch_execute("ALTER TABLE par DROP COLUMN kk")
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(
        (code(&e).as_str(), db.message(), db.detail()),
        (
            "2BP01",
            "cannot drop column kk of table par because other objects depend on it",
            Some("constraint chi_k_fkey on table chi depends on column kk of table par")
        )
    );
    c.batch_execute(
        "ALTER TABLE par DROP COLUMN kk CASCADE;
         INSERT INTO chi VALUES (3, 99);
         ALTER TABLE chi RENAME TO kid",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT * FROM kid ORDER BY id").await,
        rows(&[&["1", "1"], &["3", "99"]])
    );
    assert_eq!(
        simple_rows(&c, "SELECT * FROM par").await,
        rows(&[&["one"]])
    );
    // A view reading a table keeps that table's columns as they are.
    c.batch_execute("CREATE VIEW kids AS SELECT id FROM kid")
        .await
        .unwrap();
    let e = c
        .batch_execute("ALTER TABLE kid RENAME COLUMN id TO ident")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "0A000");
}

#[tokio::test]
async fn keys_are_added_to_tables_with_rows() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE p1 (id int, code text);
         INSERT INTO p1 VALUES (1, 'a'), (2, 'a'), (NULL, 'b')",
    )
    .await
    .unwrap();
    let failure = |sql: &'static str| {
        let c = &c;
        async move {
            let e = c.batch_execute(sql).await.expect_err(sql);
            let db = e.as_db_error().expect(sql);
            (
                code(&e),
                db.message().to_string(),
                db.detail().map(str::to_string),
            )
        }
    };
    assert_eq!(
        failure("ALTER TABLE p1 ADD PRIMARY KEY (id)").await,
        (
            "23502".into(),
            "column \"id\" of relation \"p1\" contains null values".into(),
            None
        )
    );
    c.batch_execute("DELETE FROM p1 WHERE id IS NULL; ALTER TABLE p1 ADD PRIMARY KEY (id)")
        .await
        .unwrap();
    assert_eq!(
        failure("ALTER TABLE p1 ADD CONSTRAINT p1_code_key UNIQUE (code)").await,
        (
            "23505".into(),
            "could not create unique index \"p1_code_key\"".into(),
            Some("Key (code)=(a) is duplicated.".into())
        )
    );
    c.batch_execute(
        "UPDATE p1 SET code = 'c' WHERE id = 2;
         ALTER TABLE p1 ADD CONSTRAINT p1_code_key UNIQUE (code)",
    )
    .await
    .unwrap();
    assert_eq!(
        failure("ALTER TABLE p1 ADD PRIMARY KEY (code)").await.1,
        "multiple primary keys for table \"p1\" are not allowed"
    );
    assert_eq!(failure("INSERT INTO p1 VALUES (3, 'c')").await.0, "23505");
    c.batch_execute(
        "CREATE TABLE c1 (id int PRIMARY KEY, p int);
         INSERT INTO c1 VALUES (1, 1), (2, 9)",
    )
    .await
    .unwrap();
    assert_eq!(
        failure("ALTER TABLE c1 ADD CONSTRAINT c1_p_fkey FOREIGN KEY (p) REFERENCES p1(id)").await,
        (
            "23503".into(),
            "insert or update on table \"c1\" violates foreign key constraint \"c1_p_fkey\"".into(),
            Some("Key (p)=(9) is not present in table \"p1\".".into())
        )
    );
    c.batch_execute(
        "UPDATE c1 SET p = 2 WHERE id = 2;
         ALTER TABLE c1 ADD CONSTRAINT c1_p_fkey FOREIGN KEY (p) REFERENCES p1(id) ON DELETE CASCADE;
         DELETE FROM p1 WHERE id = 2;
         ALTER TABLE c1 ADD COLUMN q int REFERENCES p1(id);
         ALTER TABLE c1 ADD COLUMN email text UNIQUE",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT * FROM c1").await,
        rows(&[&["1", "1", "NULL", "NULL"]])
    );
    assert_eq!(
        failure("INSERT INTO c1 VALUES (5, 1, 7, NULL)").await.0,
        "23503"
    );
    assert_eq!(
        simple_rows(
            &c,
            "SELECT conname, contype FROM pg_constraint WHERE conrelid = 'c1'::regclass ORDER BY 1"
        )
        .await,
        rows(&[
            &["c1_email_key", "u"],
            &["c1_p_fkey", "f"],
            &["c1_pkey", "p"],
            &["c1_q_fkey", "f"]
        ])
    );
}
