//! Class scans stream batches from storage in parallel partitions (a large
//! class is split by object id) and stop at a LIMIT; the partitions
//! together still cover the whole class, so a concurrent insert or delete
//! anywhere in it conflicts with a transaction that scanned it.

use super::{code, connect, deploy};
use amber_tests::Server;

const NUMS: &str = r#"
from amber import Persistent

class Num(Persistent):
    n: int
"#;

/// More objects than one partition takes (the split needs a range of at
/// least 64Ki object ids) and than one batch holds (8192).
const OBJECTS: i64 = 70_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_class_scans_in_partitions_and_stays_serializable() {
    let server = Server::start();
    let c = connect(&server).await;
    deploy(&c, "big", NUMS).await;
    c.execute(
        &format!("INSERT INTO big.num (n) SELECT g FROM generate_series(1, {OBJECTS}) AS t(g)"),
        &[],
    )
    .await
    .unwrap();
    let plan: Vec<String> = c
        .simple_query("EXPLAIN SELECT count(*) FROM big.num")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(1).map(str::to_string),
            _ => None,
        })
        .collect();
    // One partition per core (the server runs on this machine).
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    assert!(
        plan.iter()
            .any(|p| p.contains(&format!("StreamingTableExec: partition_sizes={cores}"))),
        "{cores} cores: {plan:?}"
    );
    let r = c
        .query_one(
            "SELECT count(*), sum(n), min(n), max(n), count(DISTINCT id) FROM big.num",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            r.get::<_, i64>(0),
            r.get::<_, i64>(1),
            r.get::<_, i64>(2),
            r.get::<_, i64>(3),
            r.get::<_, i64>(4)
        ),
        (OBJECTS, OBJECTS * (OBJECTS + 1) / 2, 1, OBJECTS, OBJECTS)
    );
    // Each side of a self-join is its own scan.
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM big.num a JOIN big.num b ON a.id = b.id WHERE a.n % 7 = 0",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, OBJECTS / 7);
    // A LIMIT stops the scan: exactly that many rows, from both sides of a
    // batch boundary.
    for limit in [3i64, 8192, 10_000] {
        let n: i64 = c
            .query_one(
                &format!("SELECT count(*) FROM (SELECT id, n FROM big.num LIMIT {limit}) s"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, limit);
    }
    let top: Vec<i64> = c
        .query("SELECT n FROM big.num ORDER BY n DESC LIMIT 3", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(top, vec![OBJECTS, OBJECTS - 1, OBJECTS - 2]);

    // A transaction that scanned the class conflicts with a concurrent
    // insert (a new id, past every partition's split point) and with a
    // concurrent delete in the middle (at the split point's side).
    let mid_id: i64 = c
        .query_one("SELECT id FROM big.num WHERE n = $1", &[&(OBJECTS / 2)])
        .await
        .unwrap()
        .get(0);
    let other = connect(&server).await;
    for concurrent in [
        "INSERT INTO big.num (n) VALUES (0)".to_string(),
        format!("DELETE FROM big.num WHERE id = {mid_id}"),
    ] {
        c.batch_execute("BEGIN").await.unwrap();
        let _: i64 = c
            .query_one("SELECT sum(n) FROM big.num", &[])
            .await
            .unwrap()
            .get(0);
        other.batch_execute(&concurrent).await.unwrap();
        c.batch_execute("INSERT INTO big.num (n) VALUES (-1)")
            .await
            .unwrap();
        let e = c.batch_execute("COMMIT").await.unwrap_err();
        assert_eq!(code(&e), "40001", "{concurrent}: {e:?}");
    }
    let n: i64 = c
        .query_one("SELECT count(*) FROM big.num WHERE n = -1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the conflicting transactions left nothing");
}
