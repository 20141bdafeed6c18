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

    // A transaction whose snapshot predates a deploy keeps using the version
    // of its snapshot (size is text there), and cannot commit a write made
    // under it once the deploy committed.
    a.batch_execute("BEGIN; SELECT count(*) FROM shop.item")
        .await
        .unwrap();
    b.batch_execute(&format!("CREATE OR REPLACE MODULE shop AS $${V1}$$"))
        .await
        .unwrap();
    let size: String = a
        .query_one(
            "INSERT INTO shop.item (size) VALUES ('eight') RETURNING size",
            &[],
        )
        .await
        .expect("the snapshot's version (size: str) serves the statement")
        .get(0);
    assert_eq!(size, "eight");
    let e = a.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(code(&e), "40001", "{e:?}");
    a.batch_execute("INSERT INTO shop.item (size) VALUES (9)")
        .await
        .expect("a new transaction sees the new version");
    assert_eq!(readable(&b).await, 1);

    // A read-only transaction reads the old version to its end.
    a.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT 1")
        .await
        .unwrap();
    b.batch_execute(&format!(
        "CREATE OR REPLACE MODULE shop AS $${V1}\ndef v() -> int:\n    return 2\n$$"
    ))
    .await
    .unwrap();
    let e = a.query_one("SELECT shop.v()", &[]).await.unwrap_err();
    assert_eq!(
        code(&e),
        "42883",
        "a function deployed after the snapshot: {e:?}"
    );
    a.batch_execute("ROLLBACK").await.unwrap();
    let v: i64 = a.query_one("SELECT shop.v()", &[]).await.unwrap().get(0);
    assert_eq!(v, 2);

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

const T1: &str = "from amber import Persistent\n\nclass Note(Persistent):\n    text: str\n\ndef version() -> int:\n    return 1\n";
const T2: &str = "from amber import Persistent\n\nclass Note(Persistent):\n    text: str\n\ndef version() -> int:\n    return 2\n";

async fn notes(client: &tokio_postgres::Client) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT count(*) FROM notes.note", &[])
        .await?
        .get(0))
}

async fn version(client: &tokio_postgres::Client) -> Result<i32, tokio_postgres::Error> {
    let v: i64 = client
        .query_one("SELECT notes.version()", &[])
        .await?
        .get(0);
    Ok(v as i32)
}

/// CREATE/DROP MODULE inside BEGIN ... COMMIT: part of the block, seen by
/// its later statements (Python calls included), by no other session until
/// COMMIT, and gone with ROLLBACK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_ddl_commits_and_rolls_back_with_its_block() {
    let server = Server::start();
    let a = connect(&server).await;
    let b = connect(&server).await;

    // Created, used and rolled back: nothing remains.
    a.batch_execute(&format!("BEGIN; CREATE MODULE notes AS $${T1}$$"))
        .await
        .expect("module DDL inside a block");
    a.batch_execute("INSERT INTO notes.note (text) VALUES ('draft')")
        .await
        .unwrap();
    assert_eq!(notes(&a).await.unwrap(), 1);
    assert_eq!(
        version(&a).await.unwrap(),
        1,
        "Python sees the block's module"
    );
    let e = notes(&b).await.unwrap_err();
    assert_eq!(code(&e), "42P01", "other sessions do not see it: {e:?}");
    a.batch_execute("ROLLBACK").await.unwrap();
    let e = notes(&a).await.unwrap_err();
    assert_eq!(code(&e), "42P01", "rolled back: {e:?}");
    let e = a.batch_execute("DROP MODULE notes").await.unwrap_err();
    assert_eq!(code(&e), "3F000", "{e:?}");

    // Created and committed with an object.
    a.batch_execute(&format!(
        "BEGIN; CREATE MODULE notes AS $${T1}$$; INSERT INTO notes.note (text) VALUES ('kept'); COMMIT"
    ))
    .await
    .unwrap();
    assert_eq!(notes(&b).await.unwrap(), 1);
    assert_eq!(version(&b).await.unwrap(), 1);

    // A replace rolled back after a call ran the new code: the old code
    // serves the next call, on any worker.
    a.batch_execute(&format!(
        "BEGIN; CREATE OR REPLACE MODULE notes AS $${T2}$$"
    ))
    .await
    .unwrap();
    assert_eq!(version(&a).await.unwrap(), 2);
    assert_eq!(
        version(&b).await.unwrap(),
        1,
        "b sees the committed version"
    );
    a.batch_execute("ROLLBACK").await.unwrap();
    for _ in 0..4 {
        assert_eq!(version(&a).await.unwrap(), 1);
    }

    // A drop rolled back keeps the module and its objects.
    a.batch_execute("BEGIN; DROP MODULE notes CASCADE")
        .await
        .unwrap();
    assert_eq!(code(&notes(&a).await.unwrap_err()), "42P01");
    assert_eq!(notes(&b).await.unwrap(), 1, "b still sees it");
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(notes(&a).await.unwrap(), 1);

    // A failed deploy aborts the block like any failed statement.
    a.batch_execute("BEGIN").await.unwrap();
    let e = a
        .batch_execute("CREATE MODULE notes AS $$x = 1$$")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "42P06", "{e:?}");
    let e = a.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(code(&e), "25P02", "{e:?}");
    a.batch_execute("ROLLBACK").await.unwrap();

    // Two blocks replacing the same module: the second to commit fails.
    a.batch_execute(&format!(
        "BEGIN; CREATE OR REPLACE MODULE notes AS $${T2}$$"
    ))
    .await
    .unwrap();
    b.batch_execute(&format!(
        "BEGIN; CREATE OR REPLACE MODULE notes AS $${T1}$$"
    ))
    .await
    .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    let e = b.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(code(&e), "40001", "{e:?}");
    assert_eq!(version(&b).await.unwrap(), 2);

    // Dropped and committed.
    a.batch_execute("BEGIN; DROP MODULE notes CASCADE; COMMIT")
        .await
        .unwrap();
    assert_eq!(code(&notes(&b).await.unwrap_err()), "42P01");
}
