//! Subqueries DataFusion cannot turn into joins run as PostgreSQL's
//! SubPlans (one run per outer row): a correlated scalar subquery whose
//! correlation is not an equality, `IN (SELECT ...)` and `EXISTS` in a
//! select list. Answers checked against PostgreSQL 15 (`pg-scratch`).

use super::{connect, simple_rows};
use amber_tests::Server;

fn row(v: &[Option<&str>]) -> Vec<Option<String>> {
    v.iter().map(|s| s.map(str::to_string)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subqueries_run_per_outer_row_as_postgresql_runs_them() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE t1(a INTEGER, b INTEGER, c INTEGER);
         INSERT INTO t1 VALUES (1,2,3),(4,5,6),(7,8,NULL)",
    )
    .await
    .unwrap();
    let cases: &[(&str, Vec<Vec<Option<String>>>)] = &[
        (
            "SELECT a, (SELECT count(*) FROM t1 AS x WHERE x.b < t1.b) FROM t1 ORDER BY a",
            vec![
                row(&[Some("1"), Some("0")]),
                row(&[Some("4"), Some("1")]),
                row(&[Some("7"), Some("2")]),
            ],
        ),
        (
            "SELECT a, CASE WHEN c > (SELECT avg(c) FROM t1) THEN 1 ELSE 0 END FROM t1 ORDER BY a",
            vec![
                row(&[Some("1"), Some("0")]),
                row(&[Some("4"), Some("1")]),
                row(&[Some("7"), Some("0")]),
            ],
        ),
        (
            "SELECT 1 IN (SELECT a FROM t1), 2 IN (SELECT a FROM t1), 2 IN (SELECT c FROM t1), \
             2 NOT IN (SELECT a FROM t1 WHERE a > 100)",
            vec![row(&[Some("t"), Some("f"), None, Some("t")])],
        ),
        (
            "SELECT NULL IN (SELECT a FROM t1), NULL IN (SELECT a FROM t1 WHERE false)",
            vec![row(&[None, Some("f")])],
        ),
        (
            "SELECT a, EXISTS (SELECT 1 FROM t1 x WHERE x.a > t1.a) FROM t1 ORDER BY a",
            vec![
                row(&[Some("1"), Some("t")]),
                row(&[Some("4"), Some("t")]),
                row(&[Some("7"), Some("f")]),
            ],
        ),
        (
            // In ORDER BY, uncorrelated and correlated (Grafana sorts its
            // table list so); both used to be refused as non-executable.
            "SELECT a FROM t1 ORDER BY CASE WHEN a IN (SELECT 4) THEN 0 ELSE 1 END, a DESC",
            vec![row(&[Some("4")]), row(&[Some("7")]), row(&[Some("1")])],
        ),
        (
            "SELECT a FROM t1 ORDER BY (SELECT count(*) FROM t1 x WHERE x.a > t1.a), a LIMIT 2",
            vec![row(&[Some("7")]), row(&[Some("4")])],
        ),
        (
            // Correlated and in WHERE.
            "SELECT a FROM t1 WHERE (SELECT count(*) FROM t1 x WHERE x.a < t1.a) >= 1 ORDER BY a",
            vec![row(&[Some("4")]), row(&[Some("7")])],
        ),
        (
            // A SubPlan inside a SubPlan's select list.
            "SELECT a, (SELECT count(*) FROM t1 x WHERE x.a < t1.a \
             AND x.b IN (SELECT b FROM t1 y WHERE y.b > 2)) FROM t1 ORDER BY a",
            vec![
                row(&[Some("1"), Some("0")]),
                row(&[Some("4"), Some("0")]),
                row(&[Some("7"), Some("1")]),
            ],
        ),
    ];
    for (sql, want) in cases {
        assert_eq!(&simple_rows(&c, sql).await, want, "{sql}");
    }
    // The same through a prepared statement (a cached generic plan),
    // executed again after the rows changed.
    let stmt = c
        .prepare(
            "SELECT a, (SELECT count(*) FROM t1 AS x WHERE x.b < t1.b + $1) FROM t1 ORDER BY a",
        )
        .await
        .unwrap();
    for _ in 0..2 {
        // $1 is integer (t1.b's type) and a is integer, as in PostgreSQL.
        let rows = c.query(&stmt, &[&0i32]).await.unwrap();
        let got: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(got, [(1, 0), (4, 1), (7, 2)]);
    }
    c.batch_execute("INSERT INTO t1 VALUES (0, 0, 0)")
        .await
        .unwrap();
    let rows = c.query(&stmt, &[&0i32]).await.unwrap();
    let got: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, [(0, 0), (1, 1), (4, 2), (7, 3)]);
}
