//! One-object UPDATEs whose SET is computed from the object itself
//! (`SET n = n + $2 WHERE id = $1`) run without planning: the same results,
//! errors and conflicts as the planned path and as PostgreSQL.

use super::{code, connect, deploy};
use amber_tests::Server;

const COUNTERS: &str = r#"
from amber import Persistent

class Counter(Persistent):
    n: int | None = 0
    f: float = 0.0
    label: str = ''
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn computed_updates_of_one_object() {
    let server = Server::start();
    let c = connect(&server).await;
    deploy(&c, "ctr", COUNTERS).await;
    let id: i64 = c
        .query_one(
            "INSERT INTO ctr.counter (n, f, label) VALUES (10, 1.5, 'a') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let row = |sql: &'static str| {
        let c = &c;
        async move {
            let r = c.query_one(sql, &[]).await.unwrap();
            (
                r.get::<_, Option<i64>>(0),
                r.get::<_, f64>(1),
                r.get::<_, String>(2),
            )
        }
    };
    let get = "SELECT n, f, label FROM ctr.counter";
    for (sql, n, f) in [
        ("UPDATE ctr.counter SET n = n + $2 WHERE id = $1", 17, 1.5),
        (
            "UPDATE ctr.counter SET n = -(n - 3) * 2, f = f * n WHERE id = $1",
            -28,
            25.5,
        ),
        (
            "UPDATE ctr.counter SET f = f - 0.25 WHERE id = $1",
            -28,
            25.25,
        ),
        (
            "UPDATE ctr.counter SET n = 2 * n, f = f + n WHERE id = $1",
            -56,
            -2.75,
        ),
    ] {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = if sql.contains("$2") {
            vec![&id, &7i64]
        } else {
            vec![&id]
        };
        let done = c.execute(sql, &params).await.unwrap();
        assert_eq!(done, 1, "{sql}");
        assert_eq!(row(get).await, (Some(n), f, "a".to_string()), "{sql}");
    }
    // Overflow is an error (22003) and changes nothing.
    c.execute(
        "UPDATE ctr.counter SET n = 9223372036854775807 WHERE id = $1",
        &[&id],
    )
    .await
    .unwrap();
    let e = c
        .execute("UPDATE ctr.counter SET n = n + 1 WHERE id = $1", &[&id])
        .await
        .unwrap_err();
    assert_eq!(code(&e), "22003", "{e:?}");
    assert_eq!(row(get).await.0, Some(i64::MAX));
    // NULL propagates.
    c.execute("UPDATE ctr.counter SET n = NULL WHERE id = $1", &[&id])
        .await
        .unwrap();
    c.execute("UPDATE ctr.counter SET n = n + 1 WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(row(get).await.0, None);
    // No such object: nothing updated.
    let none = c
        .execute(
            "UPDATE ctr.counter SET n = n + 1 WHERE id = $1",
            &[&(id + 999)],
        )
        .await
        .unwrap();
    assert_eq!(none, 0);
    // Expressions the evaluator does not know take the planned path.
    c.execute(
        "UPDATE ctr.counter SET n = 5, label = label || 'b' WHERE id = $1",
        &[&id],
    )
    .await
    .unwrap();
    assert_eq!(row(get).await, (Some(5), -2.75, "ab".to_string()));

    // Two transactions incrementing the same object: the second to commit
    // fails (no lost update).
    let d = connect(&server).await;
    c.batch_execute("BEGIN").await.unwrap();
    d.batch_execute("BEGIN").await.unwrap();
    c.execute("UPDATE ctr.counter SET n = n + 1 WHERE id = $1", &[&id])
        .await
        .unwrap();
    d.execute("UPDATE ctr.counter SET n = n + 1 WHERE id = $1", &[&id])
        .await
        .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    let e = d.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(code(&e), "40001", "{e:?}");
    assert_eq!(row(get).await.0, Some(6));
}
