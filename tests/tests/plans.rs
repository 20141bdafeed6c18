//! A prepared query keeps its plan (`query/src/plan_cache.rs`), and each
//! execution still reads through its own transaction, with its own
//! parameters, the module version its snapshot sees and its own `now()`.

use super::{code, connect, deploy};
use amber_tests::Server;
use tokio_postgres::{Client, Statement};

const SHOP: &str = r#"
from amber import Persistent

class Item(Persistent):
    name: str
    qty: int = 0

def double(n: int) -> int:
    return 2 * n
"#;

async fn names(client: &Client, q: &Statement, qty: i64) -> Vec<String> {
    client
        .query(q, &[&qty])
        .await
        .expect("prepared query")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_query_runs_its_plan_in_each_executions_transaction() {
    let server = Server::start();
    let c = connect(&server).await;
    let other = connect(&server).await;
    deploy(&c, "shop", SHOP).await;
    c.batch_execute("INSERT INTO shop.item (name, qty) VALUES ('a', 1), ('b', 2), ('c', 3)")
        .await
        .unwrap();
    let q = c
        .prepare("SELECT name FROM shop.item WHERE qty >= $1 ORDER BY name")
        .await
        .unwrap();

    // Each execution its own parameter.
    assert_eq!(names(&c, &q, 2).await, ["b", "c"]);
    assert_eq!(names(&c, &q, 3).await, ["c"]);
    assert_eq!(names(&c, &q, 1).await, ["a", "b", "c"]);

    // An id parameter still chooses point reads, and the right object.
    let by_id = c
        .prepare("SELECT name, qty FROM shop.item WHERE id = $1 AND qty > 0")
        .await
        .unwrap();
    for row in c
        .query("SELECT id, name FROM shop.item", &[])
        .await
        .unwrap()
    {
        let (id, name): (i64, String) = (row.get(0), row.get(1));
        let got = c.query(&by_id, &[&id]).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].get::<_, String>(0), name);
    }
    assert!(c.query(&by_id, &[&-5i64]).await.unwrap().is_empty());

    // The block's own writes, gone after ROLLBACK; COMMIT succeeds (the
    // cached plan holds no transaction).
    c.batch_execute("BEGIN; INSERT INTO shop.item (name, qty) VALUES ('d', 9)")
        .await
        .unwrap();
    assert_eq!(names(&c, &q, 9).await, ["d"]);
    c.batch_execute("ROLLBACK").await.unwrap();
    assert!(names(&c, &q, 9).await.is_empty());
    c.batch_execute("BEGIN; INSERT INTO shop.item (name, qty) VALUES ('e', 9)")
        .await
        .unwrap();
    assert_eq!(names(&c, &q, 9).await, ["e"]);
    c.batch_execute("COMMIT").await.unwrap();

    // Another session's commit, seen by the next execution.
    other
        .batch_execute("INSERT INTO shop.item (name, qty) VALUES ('f', 10)")
        .await
        .unwrap();
    assert_eq!(names(&c, &q, 10).await, ["f"]);

    // Python calls and now() are planned per execution: each call runs in
    // its own transaction, each now() is its statement's.
    let doubled = c
        .prepare("SELECT shop.double(qty) FROM shop.item WHERE qty = $1")
        .await
        .unwrap();
    for _ in 0..2 {
        c.batch_execute("BEGIN").await.unwrap();
        let v: i64 = c.query_one(&doubled, &[&3i64]).await.unwrap().get(0);
        assert_eq!(v, 6);
        c.batch_execute("COMMIT").await.unwrap();
    }
    let at = c
        .prepare("SELECT now()::text FROM shop.item WHERE qty = $1")
        .await
        .unwrap();
    let t1: String = c.query_one(&at, &[&3i64]).await.unwrap().get(0);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let t2: String = c.query_one(&at, &[&3i64]).await.unwrap().get(0);
    assert_ne!(t1, t2, "now() is each execution's");

    // The module dropped: the plan is not reused (no stale rows); deployed
    // again: the new, empty class.
    c.batch_execute("DROP MODULE shop CASCADE").await.unwrap();
    let e = c.query(&q, &[&1i64]).await.unwrap_err();
    assert_eq!(code(&e), "42P01", "{e:?}");
    deploy(&c, "shop", SHOP).await;
    assert!(names(&c, &q, 1).await.is_empty());
    c.batch_execute("INSERT INTO shop.item (name, qty) VALUES ('g', 4)")
        .await
        .unwrap();
    assert_eq!(names(&c, &q, 1).await, ["g"]);
}
