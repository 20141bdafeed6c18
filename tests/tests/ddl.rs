//! Deploys racing statements: a transaction that used a module's old
//! version never commits objects of the old shape into the new one, and a
//! module variable whose type changes is converted or the deploy refused.

use super::{code, connect, deploy};
use amber_tests::Server;

const V1: &str = r#"
from amber import Persistent

class Item(Persistent):
    size: int = 0
"#;

/// `size` changes type: allowed while the class has no objects.
const V2: &str = r#"
from amber import Persistent

class Item(Persistent):
    size: str = ""
"#;

async fn readable(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM shop.item", &[])
        .await
        .expect("the class stays readable")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_and_statements_serialize() {
    let server = Server::start();
    let a = connect(&server).await;
    let b = connect(&server).await;
    deploy(&a, "shop", V1).await;

    // A inserts under version 1; B replaces the shape and commits first;
    // A's commit must fail rather than store an int where text now lives.
    a.batch_execute("BEGIN; INSERT INTO shop.item (size) VALUES (7)")
        .await
        .unwrap();
    b.batch_execute(&format!("CREATE OR REPLACE MODULE shop AS $${V2}$$"))
        .await
        .expect("the class has no committed objects");
    let e = a.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(code(&e), "40001", "{e:?}");
    assert_eq!(readable(&b).await, 0);

    // A transaction whose snapshot predates a deploy does not use the new
    // version it cannot see.
    a.batch_execute("BEGIN; SELECT count(*) FROM shop.item")
        .await
        .unwrap();
    b.batch_execute(&format!("CREATE OR REPLACE MODULE shop AS $${V1}$$"))
        .await
        .unwrap();
    let e = a
        .batch_execute("INSERT INTO shop.item (size) VALUES (8)")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "40001", "{e:?}");
    a.batch_execute("ROLLBACK").await.unwrap();
    a.batch_execute("INSERT INTO shop.item (size) VALUES (9)")
        .await
        .expect("a new transaction sees the new version");
    assert_eq!(readable(&b).await, 1);

    // DROP ... CASCADE racing an insert leaves no orphan objects.
    a.batch_execute("BEGIN; INSERT INTO shop.item (size) VALUES (10)")
        .await
        .unwrap();
    b.batch_execute("DROP MODULE shop CASCADE").await.unwrap();
    let e = a.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(code(&e), "40001", "{e:?}");
    deploy(&b, "shop", V1).await;
    assert_eq!(readable(&b).await, 0, "no orphans from the dropped version");
}

const COUNTER_INT: &str =
    "n: int = 5\ndef bump() -> int:\n    global n\n    n += 1\n    return n\n";
const COUNTER_STR: &str = "n: str = ''\ndef show() -> str:\n    return n\n";
const COUNTER_DATE: &str =
    "n: datetime.date | None = None\ndef show() -> str:\n    return str(n)\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_variables_convert_or_refuse() {
    let server = Server::start();
    let c = connect(&server).await;
    deploy(&c, "counter", COUNTER_INT).await;
    let n: i64 = c
        .query_one("SELECT counter.bump()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 6);
    c.batch_execute(&format!(
        "CREATE OR REPLACE MODULE counter AS $${COUNTER_STR}$$"
    ))
    .await
    .expect("int converts to str");
    let s: String = c
        .query_one("SELECT counter.show()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(s, "6");
    let e = c
        .batch_execute(&format!(
            "CREATE OR REPLACE MODULE counter AS $${COUNTER_DATE}$$"
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "42804", "{e:?}");
    let s: String = c
        .query_one("SELECT counter.show()", &[])
        .await
        .expect("the old version stays")
        .get(0);
    assert_eq!(s, "6");
}
