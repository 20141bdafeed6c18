//! Column types as declared and integer arithmetic as PostgreSQL types and
//! checks it. Every expected type, value, SQLSTATE and message is
//! PostgreSQL 15's for the same statements (`pg-scratch`).

use super::{connect, simple_rows};
use amber_tests::Server;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

/// The SQLSTATE, message and detail of a statement that must fail.
async fn failure(c: &Client, sql: &str) -> (String, String, Option<String>) {
    let e = c.batch_execute(sql).await.expect_err(sql);
    let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
    (
        db.code().code().to_string(),
        db.message().to_string(),
        db.detail().map(str::to_string),
    )
}

async fn column_types(c: &Client, sql: &str) -> Vec<Type> {
    let stmt = c.prepare(sql).await.expect(sql);
    stmt.columns().iter().map(|c| c.type_().clone()).collect()
}

fn fail(code: &str, message: &str) -> (String, String, Option<String>) {
    (code.into(), message.into(), None)
}

#[tokio::test]
async fn declared_types_are_kept_and_enforced() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE dt (a int PRIMARY KEY, b smallint, c real, d varchar(10), e char(3), \
         f numeric(10,2) DEFAULT 0, g varchar, h serial);
         INSERT INTO dt (a, b, c, d, e, f) VALUES (1, 2, 0.1, 'abc', 'x', 1.005), \
         (2, -3, 1e10, 'abcdefghij  ', 'ab ', 12345678.994)",
    )
    .await
    .unwrap();
    assert_eq!(
        column_types(&c, "SELECT * FROM dt").await,
        [
            Type::INT4,
            Type::INT2,
            Type::FLOAT4,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::NUMERIC,
            Type::VARCHAR,
            Type::INT4
        ]
    );
    let row = c
        .query_one("SELECT a, b, c, d, e FROM dt WHERE a = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(row.get::<_, i16>(1), 2);
    assert_eq!(row.get::<_, f32>(2), 0.1);
    assert_eq!(row.get::<_, String>(3), "abc");
    // char(n) is padded as sent, and compares without its padding.
    assert_eq!(row.get::<_, String>(4), "x  ");
    assert_eq!(
        simple_rows(
            &c,
            "SELECT a, c, d, e, f, e = 'ab', length(e), e || '|', h FROM dt ORDER BY a"
        )
        .await,
        [
            ["1", "0.1", "abc", "x  ", "1.01", "f", "1", "x|", "1"],
            [
                "2",
                "1e+10",
                "abcdefghij",
                "ab ",
                "12345678.99",
                "t",
                "2",
                "ab|",
                "2"
            ],
        ]
        .map(|r| r.map(|v| Some(v.to_string())).to_vec())
    );
    // A default takes the column's scale when inserted.
    c.batch_execute("INSERT INTO dt (a) VALUES (3)")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT f FROM dt WHERE a = 3").await,
        [[Some("0.00".to_string())]]
    );
    // numeric(p,s) computes at its scale: sums, sums of products and
    // differences print as PostgreSQL prints them.
    assert_eq!(
        simple_rows(
            &c,
            "SELECT sum(f), min(f), sum(f * 2), max(f - 0.5) FROM dt"
        )
        .await,
        [[
            Some("12345680.00"),
            Some("0.00"),
            Some("24691360.00"),
            Some("12345678.49")
        ]
        .map(|v| v.map(str::to_string))]
    );
    for (sql, want) in [
        (
            "INSERT INTO dt (a) VALUES (3000000000)",
            fail("22003", "integer out of range"),
        ),
        (
            "INSERT INTO dt (a, b) VALUES (4, 40000)",
            fail("22003", "smallint out of range"),
        ),
        (
            "INSERT INTO dt (a, d) VALUES (5, 'abcdefghijk')",
            fail("22001", "value too long for type character varying(10)"),
        ),
        (
            "INSERT INTO dt (a, e) VALUES (6, 'abcd')",
            fail("22001", "value too long for type character(3)"),
        ),
        (
            "INSERT INTO dt (a, f) VALUES (7, 123456789.1)",
            (
                "22003".into(),
                "numeric field overflow".into(),
                Some(
                    "A field with precision 10, scale 2 must round to an absolute value less than 10^8."
                        .into(),
                ),
            ),
        ),
        (
            "INSERT INTO dt (a, c) VALUES (8, 1e39)",
            fail(
                "22003",
                "\"1000000000000000000000000000000000000000\" is out of range for type real",
            ),
        ),
        (
            "UPDATE dt SET a = a + 2147483647 WHERE a = 1",
            fail("22003", "integer out of range"),
        ),
    ] {
        assert_eq!(failure(&c, sql).await, want, "{sql}");
    }
    // The catalog shows what was declared.
    assert_eq!(
        simple_rows(
            &c,
            "SELECT attname, atttypid, atttypmod, format_type(atttypid, atttypmod) \
             FROM pg_attribute WHERE attrelid = 'dt'::regclass AND attnum > 0 ORDER BY attnum"
        )
        .await,
        [
            ["a", "23", "-1", "integer"],
            ["b", "21", "-1", "smallint"],
            ["c", "700", "-1", "real"],
            ["d", "1043", "14", "character varying(10)"],
            ["e", "1042", "7", "character(3)"],
            ["f", "1700", "655366", "numeric(10,2)"],
            ["g", "1043", "-1", "character varying"],
            ["h", "23", "-1", "integer"],
        ]
        .map(|r| r.map(|v| Some(v.to_string())).to_vec())
    );
    assert_eq!(
        simple_rows(
            &c,
            "SELECT column_name, data_type, character_maximum_length, numeric_precision, \
             numeric_scale, column_default FROM information_schema.columns \
             WHERE table_name = 'dt' AND column_name IN ('b', 'd', 'f', 'h') ORDER BY 1"
        )
        .await,
        vec![
            vec![
                Some("b".into()),
                Some("smallint".into()),
                None,
                Some("16".into()),
                Some("0".into()),
                None
            ],
            vec![
                Some("d".into()),
                Some("character varying".into()),
                Some("10".into()),
                None,
                None,
                None
            ],
            vec![
                Some("f".into()),
                Some("numeric".into()),
                None,
                Some("10".into()),
                Some("2".into()),
                Some("0".into())
            ],
            vec![
                Some("h".into()),
                Some("integer".into()),
                None,
                Some("32".into()),
                Some("0".into()),
                Some("nextval('dt_h_seq'::regclass)".into())
            ],
        ]
    );
}

#[tokio::test]
async fn integer_literals_and_overflow_are_postgresqls() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE ov (a int, b bigint, c smallint);
         INSERT INTO ov VALUES (2147483647, 9223372036854775807, 32767), (1, 2, 3)",
    )
    .await
    .unwrap();
    assert_eq!(
        column_types(
            &c,
            "SELECT 1, 2147483648, 1 + 1, a + 1, b + 1, c + 1, c + c, a * 2.5, c * 1.5::real FROM ov"
        )
        .await,
        [
            Type::INT4,
            Type::INT8,
            Type::INT4,
            Type::INT4,
            Type::INT8,
            Type::INT4,
            Type::INT2,
            Type::NUMERIC,
            Type::FLOAT8
        ]
    );
    assert_eq!(
        simple_rows(&c, "SELECT pg_typeof(1), 7 / 2, -7 % 3, 1 + 2 * 3").await,
        [[Some("integer"), Some("3"), Some("-1"), Some("7")].map(|v| v.map(str::to_string))]
    );
    let range = |t: &str| fail("22003", &format!("{t} out of range"));
    for (sql, want) in [
        ("SELECT 2147483647 + 1", range("integer")),
        ("SELECT 9223372036854775807 + 1", range("bigint")),
        ("SELECT (-2147483647 - 1) / -1", range("integer")),
        ("SELECT a + 1 FROM ov", range("integer")),
        ("SELECT c + c FROM ov", range("smallint")),
        ("SELECT b - (-1) FROM ov", range("bigint")),
        ("SELECT * FROM ov WHERE b + 1 > 0", range("bigint")),
        (
            "SELECT a + 1, count(*) FROM ov GROUP BY a + 1",
            range("integer"),
        ),
        ("SELECT sum(a * 2) FROM ov", range("integer")),
        ("UPDATE ov SET b = b * 2", range("bigint")),
    ] {
        assert_eq!(failure(&c, sql).await, want, "{sql}");
    }
    // Nothing of the failed UPDATE was kept; in range, all computes.
    assert_eq!(
        simple_rows(&c, "SELECT b, a + 1, sum(c) OVER () FROM ov WHERE a < 5").await,
        [[Some("2"), Some("2"), Some("3")].map(|v| v.map(str::to_string))]
    );
    assert_eq!(
        simple_rows(&c, "SELECT b FROM ov ORDER BY a").await,
        [
            [Some("2".to_string())],
            [Some("9223372036854775807".to_string())]
        ]
    );
}
