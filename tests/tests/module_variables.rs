//! Module variables are read only by the calls that may use them: a call
//! loads (and adds to its transaction's read set) just the variables its
//! function, and everything the function can reach, names; so it does not
//! conflict with a concurrent writer of another variable.

use super::{code, connect, deploy};
use amber_tests::Server;
use tokio_postgres::Client;

const CTR: &str = r#"
from amber import Persistent

class Item(Persistent):
    n: int = 0

    def bump(self) -> int:
        self.n += 1
        return self.n

    def over(self) -> bool:
        return self.n > limit

hits: int = 0
limit: int = 1
names: list[str] = []

def hit() -> int:
    global hits
    hits += 1
    return hits

def _read() -> int:
    return hits

def hits_now() -> int:
    return _read()

def bump_item(item: Item) -> int:
    return item.bump()

def over_limit(item: Item) -> bool:
    return item.over()

def over_by_name(item: Item) -> bool:
    return getattr(item, "over")()

def by_name(name: str) -> int:
    return globals()[name]

def rename(name: str) -> int:
    global names
    names = names + [name]
    return len(names)
"#;

/// The one value of a one-row, one-column query.
async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(client: &Client, sql: &str) -> T {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_reads_only_the_module_variables_it_may_use() {
    let server = Server::start();
    let setup = connect(&server).await;
    deploy(&setup, "ctr", CTR).await;
    let item = one::<i64>(&setup, "INSERT INTO ctr.item (n) VALUES (0) RETURNING id").await;
    let t1 = connect(&server).await;
    let t2 = connect(&server).await;

    // A method that names no module variable, and a function that reaches
    // only a method of that kind: neither reads `hits`, so a concurrent
    // increment of it is no conflict.
    for call in [
        format!("SELECT ctr.item_bump({item})"),
        format!("SELECT ctr.bump_item({item})"),
    ] {
        t1.batch_execute("BEGIN").await.unwrap();
        t1.batch_execute(&call).await.unwrap();
        assert!(one::<i64>(&t2, "SELECT ctr.hit()").await > 0);
        t1.batch_execute("COMMIT")
            .await
            .unwrap_or_else(|e| panic!("{call} read `hits`: {e:?}"));
    }
    assert_eq!(
        one::<i64>(&setup, &format!("SELECT n FROM ctr.item WHERE id = {item}")).await,
        2
    );

    // A function that reads `hits` through a helper does conflict.
    t1.batch_execute("BEGIN").await.unwrap();
    let seen = one::<i64>(&t1, "SELECT ctr.hits_now()").await;
    assert_eq!(seen, 2, "the helper sees the stored value");
    t1.batch_execute(&format!("SELECT ctr.item_bump({item})"))
        .await
        .unwrap();
    one::<i64>(&t2, "SELECT ctr.hit()").await;
    let e = t1.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(code(&e), "40001", "{e:?}");

    // Values are the stored ones on every path: through a method reached
    // by attribute name (`limit`), through `globals()` (unbounded: every
    // variable is loaded), and a variable assigned without being read
    // first is written.
    assert_eq!(one::<i64>(&setup, "SELECT ctr.hits_now()").await, 3);
    assert_eq!(one::<i64>(&setup, "SELECT ctr.by_name('hits')").await, 3);
    assert_eq!(one::<i64>(&setup, "SELECT ctr.by_name('limit')").await, 1);
    let over: bool = one(&setup, &format!("SELECT ctr.over_limit({item})")).await;
    assert!(over, "n = 3 > limit = 1");
    // A method reached through a name in a string still gets `limit`.
    let over: bool = one(&setup, &format!("SELECT ctr.over_by_name({item})")).await;
    assert!(over, "n = 3 > limit = 1, through getattr");
    assert_eq!(one::<i64>(&setup, "SELECT ctr.rename('a')").await, 1);
    assert_eq!(one::<i64>(&setup, "SELECT ctr.rename('b')").await, 2);
    assert_eq!(one::<i64>(&setup, "SELECT ctr.hit()").await, 4);
}

const ROWS: &str = r#"
from amber import Persistent

class Item(Persistent):
    n: int = 0

    def bump(self, by: int) -> int:
        self.n += by
        return self.n

hits: int = 0
_seen = []

def hit() -> int:
    global hits
    hits += 1
    return hits

def seen(x: int) -> int:
    _seen.append(x)
    return len(_seen)

def bump_until(item: Item, bad: int) -> int:
    item.n += 1
    if item.id == bad:
        raise ValueError("bad row")
    return item.n
"#;

/// A query calling a function over many rows calls the worker once per
/// batch of rows: the function runs once per row, in order, with the
/// effects of consecutive calls; what else it changes in the interpreter
/// lasts until the end of the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_calls_python_once_per_batch_of_rows() {
    let server = Server::start();
    let c = connect(&server).await;
    deploy(&c, "rows", ROWS).await;
    c.batch_execute("INSERT INTO rows.item (n) SELECT 0 FROM generate_series(1, 3000)")
        .await
        .unwrap();
    assert_eq!(
        one::<i64>(&c, "SELECT sum(rows.item_bump(id, 2)) FROM rows.item").await,
        6000
    );
    assert_eq!(
        one::<i64>(&c, "SELECT count(*) FROM rows.item WHERE n = 2").await,
        3000
    );

    // Consecutive calls: each row sees the increments of the rows before.
    assert_eq!(
        one::<i64>(&c, "SELECT max(rows.hit()) FROM generate_series(1, 500)").await,
        500
    );
    assert_eq!(one::<i64>(&c, "SELECT rows.hit()").await, 501);

    // Plain Python state lasts for the batch and is gone after it.
    for _ in 0..2 {
        let seen: Vec<i64> = c
            .query(
                "SELECT rows.seen(g) FROM generate_series(1, 5) AS t(g)",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    }

    // An exception in one row fails the statement; no row's change stays.
    let mid = one::<i64>(&c, "SELECT min(id) + 1500 FROM rows.item").await;
    let e = c
        .query(
            &format!("SELECT rows.bump_until(id, {mid}) FROM rows.item"),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), "P0001", "{e:?}");
    assert_eq!(one::<i64>(&c, "SELECT sum(n) FROM rows.item").await, 6000);
}
