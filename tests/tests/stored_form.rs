//! Objects are stored as binary rows keyed by column id (format 1); the
//! objects and catalog records an older Amber wrote (JSON keyed by
//! attribute name, columns without ids) stay readable, from SQL and from
//! Python, and are rewritten in format 1 when next written.

use super::{connect, deploy};
use amber_catalog::{module_key, object_key, row};
use amber_tests::{free_port, Server};
use std::path::Path;

const ITEMS: &str = r#"
from amber import Persistent

class Item(Persistent):
    name: str
    qty: int = 0
    price: float | None = None
    tags: list[str] = []

    def bump(self, n: int) -> int:
        self.qty += n
        return self.qty
"#;

/// The stored bytes of object `oid` of the module's first class, read from
/// the data directory of a stopped server.
fn stored(data: &Path, oid: u64) -> Vec<u8> {
    let store = amber_storage::Store::open(data).unwrap();
    let txn = store.begin().unwrap();
    let module: serde_json::Value =
        serde_json::from_slice(&txn.get(&module_key("inv")).unwrap().unwrap()).unwrap();
    let cid = module["classes"][0]["id"].as_u64().unwrap();
    txn.get(&object_key(cid, oid)).unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_stored_as_json_by_an_older_amber_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Server::start_on(dir.path(), port);
    let c = connect(&server).await;
    deploy(&c, "inv", ITEMS).await;
    let new_id: i64 = c
        .query_one(
            "INSERT INTO inv.item (name, qty, price, tags) VALUES ('new', 1, 2.5, ARRAY['a']) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    drop(c);
    server.stop();

    // Format 1: the version byte, then a few bytes per value (no names).
    let bytes = stored(dir.path(), new_id as u64);
    assert_eq!(bytes[0], row::FORMAT_V1, "{bytes:?}");
    assert!(bytes.len() < 30, "{} bytes: {bytes:?}", bytes.len());

    // What an older Amber wrote: a module record whose columns have no
    // ids, and an object as JSON keyed by attribute name.
    let old_id = {
        let store = amber_storage::Store::open(dir.path()).unwrap();
        let mut txn = store.begin().unwrap();
        let mut module: serde_json::Value =
            serde_json::from_slice(&txn.get(&module_key("inv")).unwrap().unwrap()).unwrap();
        for col in module["classes"][0]["columns"].as_array_mut().unwrap() {
            col.as_object_mut().unwrap().remove("id");
        }
        txn.put(&module_key("inv"), module.to_string().as_bytes())
            .unwrap();
        let cid = module["classes"][0]["id"].as_u64().unwrap();
        let oid = store.allocate_oid().unwrap();
        txn.put(
            &object_key(cid, oid),
            br#"{"name":"legacy","price":null,"qty":3,"tags":["x","y"]}"#,
        )
        .unwrap();
        txn.commit().unwrap();
        oid as i64
    };

    let mut server = Server::start_on(dir.path(), port);
    let c = connect(&server).await;
    let rows = c
        .query(
            "SELECT id, name, qty, price, tags FROM inv.item ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    type Item = (i64, String, i64, Option<f64>, Vec<String>);
    let got: Vec<Item> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        got,
        vec![
            (new_id, "new".into(), 1, Some(2.5), vec!["a".into()]),
            (
                old_id,
                "legacy".into(),
                3,
                None,
                vec!["x".into(), "y".into()]
            ),
        ]
    );
    // The direct point read, a filter and an aggregate over both formats.
    let r = c
        .query_one("SELECT name, qty FROM inv.item WHERE id = $1", &[&old_id])
        .await
        .unwrap();
    assert_eq!(
        (r.get::<_, String>(0), r.get::<_, i64>(1)),
        ("legacy".into(), 3)
    );
    let r = c
        .query_one(
            "SELECT count(*), sum(qty) FROM inv.item WHERE name <> 'nobody'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (2, 4));
    // Python reads the JSON object and writes it back in format 1.
    let n: i64 = c
        .query_one("SELECT inv.item_bump($1, 2)", &[&old_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 5);
    // A redeploy of the same source keeps the columns (and their ids).
    c.batch_execute(&format!("CREATE OR REPLACE MODULE inv AS $${ITEMS}$$"))
        .await
        .unwrap();
    c.execute(
        "UPDATE inv.item SET qty = qty + 10 WHERE id = $1",
        &[&new_id],
    )
    .await
    .unwrap();
    let rows = c
        .query("SELECT name, qty, tags FROM inv.item ORDER BY id", &[])
        .await
        .unwrap();
    let got: Vec<(String, i64, Vec<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("new".into(), 11, vec!["a".into()]),
            ("legacy".into(), 5, vec!["x".into(), "y".into()]),
        ]
    );
    drop(c);
    server.stop();
    let bytes = stored(dir.path(), old_id as u64);
    assert_eq!(bytes[0], row::FORMAT_V1, "rewritten in format 1: {bytes:?}");
}
