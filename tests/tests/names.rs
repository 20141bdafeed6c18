//! Output column names as PostgreSQL 15 gives them (checked against it
//! with `pg-scratch`), where DataFusion alone would refuse the query or name
//! a column otherwise: repeated names, scalar subqueries.

use super::{connect, deploy};
use amber_tests::Server;
use tokio_postgres::{Client, SimpleQueryMessage};

const PLACES: &str = r#"
from amber import Persistent

class Place(Persistent):
    name: str
    region: int
"#;

/// Column names through Describe (extended protocol) and through the
/// simple protocol's RowDescription, which must agree; and the rows.
async fn names_and_rows(c: &Client, sql: &str) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let stmt = c
        .prepare(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let described: Vec<String> = stmt
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let mut simple = Vec::new();
    let mut rows = Vec::new();
    for m in c
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                simple = cols.iter().map(|c| c.name().to_string()).collect();
            }
            SimpleQueryMessage::Row(r) => {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
            }
            _ => {}
        }
    }
    assert_eq!(
        described, simple,
        "{sql}: Describe and RowDescription differ"
    );
    (described, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_and_subquery_column_names_are_postgres_names() {
    let server = Server::start();
    let c = connect(&server).await;
    deploy(&c, "geo", PLACES).await;
    c.batch_execute("INSERT INTO geo.place (name, region) VALUES ('a', 1), ('b', 2)")
        .await
        .unwrap();
    let s = |v: &str| Some(v.to_string());

    let (names, rows) = names_and_rows(
        &c,
        "SELECT (SELECT name FROM geo.place WHERE region = 1), (SELECT name FROM geo.place WHERE region = 2)",
    )
    .await;
    assert_eq!(names, ["name", "name"]);
    assert_eq!(rows, [[s("a"), s("b")]]);

    let (names, rows) = names_and_rows(&c, "SELECT name, name FROM geo.place ORDER BY name").await;
    assert_eq!(names, ["name", "name"]);
    assert_eq!(rows, [[s("a"), s("a")], [s("b"), s("b")]]);

    let (names, rows) = names_and_rows(
        &c,
        "SELECT region + 1, region + 1 AS x, region AS x, (SELECT 1) FROM geo.place ORDER BY region",
    )
    .await;
    assert_eq!(names, ["?column?", "x", "x", "?column?"]);
    assert_eq!(
        rows,
        [
            [s("2"), s("2"), s("1"), s("1")],
            [s("3"), s("3"), s("2"), s("1")]
        ]
    );

    // A unary plus is the column itself to DataFusion, not to PostgreSQL.
    let (names, rows) =
        names_and_rows(&c, "SELECT + region, region FROM geo.place ORDER BY 2").await;
    assert_eq!(names, ["?column?", "region"]);
    assert_eq!(rows, [[s("1"), s("1")], [s("2"), s("2")]]);

    // The type is the one computed after coercion (real, not bigint).
    let (names, rows) = names_and_rows(
        &c,
        "SELECT CASE 32 WHEN 9 THEN 53 ELSE 1.5::real END AS r, \
         CASE 32 WHEN 9 THEN 53 ELSE NULL::real END * -95 AS n",
    )
    .await;
    assert_eq!(names, ["r", "n"]);
    assert_eq!(rows, [[s("1.5"), None]]);

    let (names, rows) = names_and_rows(&c, "SELECT count(*), count(*) FROM geo.place").await;
    assert_eq!(names, ["count", "count"]);
    assert_eq!(rows, [[s("2"), s("2")]]);

    let (names, rows) = names_and_rows(
        &c,
        "SELECT p.name, q.name FROM geo.place p JOIN geo.place q ON p.region = q.region ORDER BY 1",
    )
    .await;
    assert_eq!(names, ["name", "name"]);
    assert_eq!(rows, [[s("a"), s("a")], [s("b"), s("b")]]);
}

/// Table functions, wildcards beside other items and array casts are
/// named as PostgreSQL 15 names them (each checked against it): `FROM
/// unnest(a)` is a table and a column `unnest`; `SELECT c.oid, c.*`
/// (DBeaver) keeps both `oid`s; `'{1}'::int4[]` is `int4`; `'pg_class'::regclass`
/// prints `pg_class`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_functions_wildcards_and_array_casts_are_named_as_postgresql_names_them() {
    let server = Server::start();
    let c = connect(&server).await;
    for (sql, want_names, want_rows) in [
        (
            "SELECT * FROM unnest(ARRAY['a', 'b'])",
            vec!["unnest"],
            vec![vec![Some("a".to_string())], vec![Some("b".to_string())]],
        ),
        (
            "SELECT x FROM unnest(ARRAY[1]) x",
            vec!["x"],
            vec![vec![Some("1".to_string())]],
        ),
        (
            "SELECT n.oid, n.* FROM pg_catalog.pg_namespace n WHERE nspname = 'pg_catalog'",
            vec!["oid", "oid", "nspname", "nspowner", "nspacl"],
            vec![vec![
                Some("11".to_string()),
                Some("11".to_string()),
                Some("pg_catalog".to_string()),
                Some("10".to_string()),
                Some("{amber=UC/amber,=U/amber}".to_string()),
            ]],
        ),
        (
            // A reg* literal prints as its name; casts of constants are
            // named after the outermost type.
            "SELECT 'pg_class'::regclass, 'pg_class'::regclass::text, 'pg_class'::regclass::oid",
            vec!["regclass", "text", "oid"],
            vec![vec![
                Some("pg_class".to_string()),
                Some("pg_class".to_string()),
                Some("1259".to_string()),
            ]],
        ),
        (
            "SELECT '{1,2}'::int4[], '{1,2}'::oid[], '{}'::text[]",
            vec!["int4", "oid", "text"],
            vec![vec![
                Some("{1,2}".to_string()),
                Some("{1,2}".to_string()),
                Some("{}".to_string()),
            ]],
        ),
    ] {
        let (names, rows) = names_and_rows(&c, sql).await;
        assert_eq!(names, want_names, "{sql}");
        assert_eq!(rows, want_rows, "{sql}");
    }
}
