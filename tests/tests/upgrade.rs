//! Live upgrade (SPEC §6): `CREATE OR REPLACE MODULE` converts the objects
//! of a class whose attributes change, in the deploy's transaction, or
//! refuses naming the class, attribute and first failing object, leaving
//! the old version in place.

use super::{code, connect, deploy, rows, simple_rows};
use amber_tests::Server;
use std::sync::Arc;
use std::time::{Duration, Instant};

const V1: &str = r#"
from amber import Persistent

class Item(Persistent):
    name: str
    qty: int = 0
    note: str | None = None
    __indexes__ = ("qty",)

def add(n: str, q: int) -> int:
    return Item(name=n, qty=q).id
"#;

async fn replace(c: &tokio_postgres::Client, src: &str) -> Result<(), tokio_postgres::Error> {
    c.batch_execute(&format!("CREATE OR REPLACE MODULE inv AS $src${src}$src$"))
        .await
}

#[tokio::test]
async fn attributes_are_added_dropped_and_retyped_over_existing_objects() {
    let server = Server::start();
    let c = connect(&server).await;
    deploy(&c, "inv", V1).await;
    c.batch_execute(
        "SELECT inv.add('a', 1), inv.add('b', 2), inv.add('c', 30); \
         UPDATE inv.item SET note = 'x' WHERE name = 'a'",
    )
    .await
    .unwrap();

    // A new attribute that is neither nullable nor defaulted.
    let e = replace(
        &c,
        &V1.replace("    __indexes__", "    price: float\n    __indexes__"),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), "23502");
    let db = e.as_db_error().unwrap();
    assert!(
        db.message()
            .starts_with("cannot add attribute inv.Item.price"),
        "{}",
        db.message()
    );
    assert_eq!(
        db.hint(),
        Some("Give it a default, or annotate it `T | None`.")
    );

    // Added with a default, qty retyped to float, note dropped: one
    // transaction; the index on qty is rebuilt for the new type.
    let v2 = r#"
from amber import Persistent

class Item(Persistent):
    name: str
    qty: float = 0
    price: float = 9.5
    __indexes__ = ("qty",)

def heavy() -> list[str]:
    return [i.name for i in Item.where(qty=30.0)]
"#;
    replace(&c, v2).await.unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT name, qty, price FROM inv.item ORDER BY id").await,
        rows(&[&["a", "1", "9.5"], &["b", "2", "9.5"], &["c", "30", "9.5"]])
    );
    assert_eq!(
        simple_rows(&c, "SELECT inv.heavy()").await,
        rows(&[&["{c}"]])
    );
    assert_eq!(
        simple_rows(&c, "SELECT name FROM inv.item WHERE qty > 1.5 ORDER BY 1").await,
        rows(&[&["b"], &["c"]])
    );

    // A value that does not convert: refused, naming the object.
    let e = replace(&c, &v2.replace("name: str", "name: int"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "42804");
    let id_a = simple_rows(&c, "SELECT id FROM inv.item WHERE name = 'a'").await[0][0]
        .clone()
        .unwrap();
    assert_eq!(
        e.as_db_error().unwrap().message(),
        format!(
            "attribute inv.Item.name changes type from text to bigint and object {id_a}'s value \"a\" cannot be converted; the old version stays"
        )
    );
    assert_eq!(
        simple_rows(&c, "SELECT version FROM amber.modules WHERE name = 'inv'").await,
        rows(&[&["2"]])
    );

    // A None left where the new version requires a value.
    let v3 = v2.replace(
        "    price: float = 9.5",
        "    price: float = 9.5\n    tag: str | None = None",
    );
    replace(&c, &v3).await.unwrap();
    let e = replace(&c, &v3.replace("tag: str | None = None", "tag: str"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "23502");

    // Every deploy that committed is in the history, refused ones not.
    assert_eq!(
        simple_rows(
            &c,
            "SELECT version, deployed_by, source LIKE '%tag: str | None%' \
             FROM amber.module_history WHERE name = 'inv' ORDER BY version"
        )
        .await,
        rows(&[
            &["1", "amber", "f"],
            &["2", "amber", "f"],
            &["3", "amber", "t"]
        ])
    );

    // The dropped attribute's data never comes back under its name.
    let v4 = v3.replace(
        "    tag: str | None = None",
        "    tag: str | None = None\n    note: str | None = None",
    );
    replace(&c, &v4).await.unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT count(*) FROM inv.item WHERE note IS NOT NULL").await,
        rows(&[&["0"]])
    );
}

/// Clients keep calling procedures and running SQL while versions are
/// deployed over their objects: no error but 40001, no object lost or
/// left unconverted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upgrades_under_load_lose_nothing() {
    let server = Arc::new(Server::start());
    let c = connect(&server).await;
    deploy(&c, "inv", V1).await;
    let stop = Instant::now() + Duration::from_secs(4);
    let mut tasks = Vec::new();
    for w in 0..3i64 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let c = connect(&server).await;
            let (mut added, mut conflicts) = (0u64, 0u64);
            let mut i = 0i64;
            while Instant::now() < stop {
                i += 1;
                let r = if i % 2 == 0 {
                    c.query_one("SELECT inv.add($1, $2)", &[&format!("w{w}"), &i])
                        .await
                        .map(|_| 1)
                } else {
                    c.query_one("SELECT count(*) FROM inv.item WHERE qty >= 0", &[])
                        .await
                        .map(|_| 0)
                };
                match r {
                    Ok(n) => added += n,
                    Err(e) if code(&e) == "40001" => conflicts += 1,
                    Err(e) => panic!("client {w}: {e:?}"),
                }
            }
            (added, conflicts)
        }));
    }
    let versions = [
        V1.replace("    __indexes__", "    price: float = 1.5\n    __indexes__"),
        V1.replace(
            "    __indexes__",
            "    price: float = 1.5\n    tag: str = 'new'\n    __indexes__",
        ),
        V1.replace(
            "    __indexes__",
            "    price: float = 1.5\n    tag: str = 'new'\n    __indexes__",
        )
        .replace("qty: int = 0", "qty: float = 0"),
    ];
    let mut deployed = 0;
    for v in &versions {
        tokio::time::sleep(Duration::from_millis(600)).await;
        // A deploy may itself conflict with a concurrent writer: retried.
        for _ in 0..50 {
            match replace(&c, v).await {
                Ok(()) => {
                    deployed += 1;
                    break;
                }
                Err(e) if code(&e) == "40001" => continue,
                Err(e) => panic!("deploy: {e:?}"),
            }
        }
    }
    assert_eq!(deployed, versions.len());
    let mut added = 0;
    for t in tasks {
        added += t.await.unwrap().0;
    }
    assert!(added > 0);
    // Every object committed is there, converted.
    let rows = simple_rows(
        &c,
        "SELECT count(*), count(*) FILTER (WHERE price = 1.5 AND tag IS NOT NULL) FROM inv.item",
    )
    .await;
    assert_eq!(rows[0][0], Some(added.to_string()));
    assert_eq!(rows[0][1], Some(added.to_string()));
}

/// `amber deploy` is a client like psql: PG* variables, a dry run that
/// changes nothing and says what would, a deploy that does it, and a
/// refusal printed as psql prints errors (exit status 1).
#[tokio::test]
async fn amber_deploy_dry_runs_and_deploys() {
    let server = Server::start();
    let c = connect(&server).await;
    deploy(&c, "inv", V1).await;
    c.batch_execute("SELECT inv.add('a', 1), inv.add('b', 2)")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inv.py");
    let v2 = V1.replace(
        "    __indexes__ = (\"qty\",)",
        "    color: str = 'red'\n    __indexes__ = (\"name\",)",
    );
    std::fs::write(&file, &v2).unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(amber_tests::amber_binary());
        cmd.arg("deploy")
            .arg(&file)
            .args(extra)
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", server.port.to_string())
            .env("PGUSER", "amber")
            .env_remove("RUST_BACKTRACE");
        let out = cmd.output().expect("run amber deploy");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let expected_change =
        "  ~ class item\n      + attribute color text\n      2 objects to convert\n  \
         + index CREATE INDEX item_name_idx ON inv.item USING btree (name)\n  \
         - index CREATE INDEX item_qty_idx ON inv.item USING btree (qty)\n";
    let (status, out, err) = run(&["--dry-run"]);
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(
        out,
        format!("module inv: version 1 -> 2 (dry run: nothing changed)\n{expected_change}")
    );
    assert_eq!(
        simple_rows(&c, "SELECT version FROM amber.modules WHERE name = 'inv'").await,
        rows(&[&["1"]])
    );
    let (status, out, err) = run(&[]);
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(
        out,
        format!("module inv: version 1 -> 2 deployed\n{expected_change}")
    );
    assert_eq!(
        simple_rows(&c, "SELECT name, color FROM inv.item ORDER BY id").await,
        rows(&[&["a", "red"], &["b", "red"]])
    );
    // A refusal: the server's error, and nothing changes.
    std::fs::write(
        &file,
        v2.replace(
            "    color: str = 'red'",
            "    color: str = 'red'\n    size: int",
        ),
    )
    .unwrap();
    let (status, out, err) = run(&["--module", "inv"]);
    assert_eq!(status, Some(1));
    assert_eq!(out, "");
    assert!(
        err.starts_with("amber deploy: module inv was not deployed:\nERROR:  cannot add attribute inv.Item.size"),
        "{err}"
    );
    assert_eq!(
        simple_rows(&c, "SELECT version FROM amber.modules WHERE name = 'inv'").await,
        rows(&[&["2"]])
    );
}

/// `__migrate__(self, old)` renames and retypes: it sees the old
/// attributes, sets the new ones, runs in the deploy's transaction; an
/// exception on any object refuses the deploy naming that object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_converts_each_object_or_refuses_the_deploy() {
    let server = Server::start();
    let c = connect(&server).await;
    deploy(
        &c,
        "crm",
        r#"
from amber import Persistent
class Person(Persistent):
    name: str
    born: int
    __indexes__ = ("name",)
def add(n: str, b: int) -> int:
    return Person(name=n, born=b).id
"#,
    )
    .await;
    let ids = simple_rows(
        &c,
        "SELECT crm.add('Ada Lovelace', 1815), crm.add('Alan Turing', 1912), crm.add('Plato', -428)",
    )
    .await;
    let plato = ids[0][2].clone().unwrap();
    let v2 = r#"
from amber import Persistent
class Person(Persistent):
    first: str
    last: str | None = None
    born: str
    __indexes__ = ("last",)
    def __migrate__(self, old):
        parts = old["name"].split(" ", 1)
        self.first = parts[0]
        self.last = parts[1] if len(parts) > 1 else None
        self.born = str(old["born"]) if old["born"] > 0 else str(-old["born"]) + " BC"
def by_last(l: str) -> list[str]:
    return [p.first for p in Person.where(last=l)]
"#;
    c.batch_execute(&format!("CREATE OR REPLACE MODULE crm AS $src${v2}$src$"))
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT first, last, born FROM crm.person ORDER BY id").await,
        rows(&[
            &["Ada", "Lovelace", "1815"],
            &["Alan", "Turing", "1912"],
            &["Plato", "NULL", "428 BC"]
        ])
    );
    // The new index was built over the converted objects.
    assert_eq!(
        simple_rows(&c, "SELECT crm.by_last('Turing')").await,
        rows(&[&["{Alan}"]])
    );
    let e = c
        .batch_execute(
            "CREATE OR REPLACE MODULE crm AS $src$
from amber import Persistent
class Person(Persistent):
    first: str
    last: str
    born: str
    def __migrate__(self, old):
        if old['last'] is None:
            raise ValueError('no last name for ' + old['first'])
        self.last = old['last']
$src$",
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), "P0001");
    assert_eq!(
        e.as_db_error().unwrap().message(),
        format!("__migrate__ of class crm.Person failed on object {plato}: ValueError: no last name for Plato; the old version stays")
    );
    assert_eq!(
        simple_rows(&c, "SELECT version FROM amber.modules WHERE name = 'crm'").await,
        rows(&[&["2"]])
    );
    assert_eq!(
        simple_rows(&c, "SELECT first FROM crm.person WHERE last = 'Lovelace'").await,
        rows(&[&["Ada"]])
    );
}

const LAZY_V1: &str = r#"
from amber import Persistent

class Item(Persistent):
    name: str
    qty: int = 0
    gone: str = "secret"

class Special(Item):
    level: int = 1

def seen() -> list[str]:
    return sorted(f"{i.name}:{i.qty}" for i in Item.all())
"#;

const LAZY_V2: &str = r#"
from amber import Persistent

class Item(Persistent):
    name: str
    qty: int = 0
    color: str = "red"
    size: int | None = 7
    __indexes__ = ("color", "qty")

class Special(Item):
    level: int = 1

def seen() -> list[str]:
    return sorted(f"{i.name}:{i.color}:{i.size}" for i in Item.all())
"#;

const LAZY_V3: &str = r#"
from amber import Persistent

class Item(Persistent):
    name: str
    qty: float = 0.0
    color: str = "blue"
    size: int | None = 7
    gone: str | None = None
    __indexes__ = ("color", "qty")

class Special(Item):
    level: int = 1

def seen() -> list[str]:
    return sorted(f"{i.name}:{i.qty}:{i.color}:{i.size}:{i.gone}" for i in Item.all())
"#;

const LAZY_V4: &str = r#"
from amber import Persistent

class Item(Persistent):
    name: str
    qty: str = "none"
    color: str = "blue"
    size: int | None = 7
    gone: str | None = None

class Special(Item):
    level: int = 1

def seen() -> list[str]:
    return sorted(f"{i.name}:{i.qty!r}" for i in Item.all())
"#;

/// The stored bytes of every object of class `class` of module `inv`,
/// read from the data directory of a stopped server.
fn stored_objects(data: &std::path::Path, class: &str) -> Vec<(u64, Vec<u8>)> {
    let store = amber_storage::Store::open(data).unwrap();
    let txn = store.begin().unwrap();
    let module: serde_json::Value =
        serde_json::from_slice(&txn.get(&amber_catalog::module_key("inv")).unwrap().unwrap())
            .unwrap();
    let cid = module["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == class)
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    txn.scan_range(
        &amber_catalog::class_prefix(cid),
        &amber_catalog::class_range_end(cid),
        1000,
    )
    .unwrap()
    .into_iter()
    .map(|(k, v)| (amber_catalog::object_of_key(&k).unwrap().1, v))
    .collect()
}

/// Attributes added with a default are read lazily: the deploy writes no
/// object (their stored bytes stay as they were), objects written before
/// read the default from SQL, from Python and through a new index, and
/// objects written after hold their own values (NULL included). A dropped
/// attribute's data never comes back under a new attribute of its name.
/// A type change that cannot fail is lazy too, through several versions,
/// and the indexes on the column are built again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_attributes_are_read_lazily_and_dropped_ones_never_return() {
    let dir = tempfile::tempdir().unwrap();
    let port = amber_tests::free_port();
    let mut server = Server::start_on(dir.path(), port);
    let c = connect(&server).await;
    deploy(&c, "inv", LAZY_V1).await;
    c.batch_execute(
        "INSERT INTO inv.item (name, qty) VALUES ('a', 1), ('b', 2);
         INSERT INTO inv.special (name, qty, level) VALUES ('s', 3, 9);",
    )
    .await
    .unwrap();
    drop(c);
    server.stop();
    let before = stored_objects(dir.path(), "Item");
    let before_special = stored_objects(dir.path(), "Special");
    assert_eq!((before.len(), before_special.len()), (2, 1));

    let mut server = Server::start_on(dir.path(), port);
    let c = connect(&server).await;
    replace(&c, LAZY_V2).await.unwrap();
    let all = "SELECT name, color, size FROM inv.item ORDER BY name";
    assert_eq!(
        simple_rows(&c, all).await,
        rows(&[&["a", "red", "7"], &["b", "red", "7"], &["s", "red", "7"]])
    );
    assert_eq!(
        simple_rows(&c, "SELECT inv.seen()").await,
        rows(&[&["{a:red:7,b:red:7,s:red:7}"]])
    );
    let indexed = "SELECT count(*) FROM inv.item WHERE color = 'red'";
    let plan = simple_rows(&c, &format!("EXPLAIN {indexed}")).await;
    assert!(format!("{plan:?}").contains("item_color_idx"), "{plan:?}");
    assert_eq!(simple_rows(&c, indexed).await, rows(&[&["3"]]));
    // Written after the deploy: its own values, NULL too.
    c.batch_execute(
        "INSERT INTO inv.item (name, size) VALUES ('n', NULL);
         UPDATE inv.item SET size = NULL WHERE name = 'b';
         UPDATE inv.item SET qty = 5 WHERE name = 'a';",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(&c, all).await,
        rows(&[
            &["a", "red", "7"],
            &["b", "red", "NULL"],
            &["n", "red", "NULL"],
            &["s", "red", "7"]
        ])
    );
    drop(c);
    server.stop();
    // The deploy rewrote nothing: the object no statement wrote since is
    // byte for byte what it was.
    assert_eq!(stored_objects(dir.path(), "Special"), before_special);

    let mut server = Server::start_on(dir.path(), port);
    let c = connect(&server).await;
    // `gone` again: a new attribute, NULL in every object (never
    // "secret"); `qty` from int to float, lazily (it cannot fail).
    replace(&c, LAZY_V3).await.unwrap();
    assert_eq!(
        simple_rows(
            &c,
            "SELECT name, qty, pg_typeof(qty)::text, color, size, gone FROM inv.item ORDER BY name"
        )
        .await,
        rows(&[
            &["a", "5", "double precision", "red", "7", "NULL"],
            &["b", "2", "double precision", "red", "NULL", "NULL"],
            &["n", "0", "double precision", "red", "NULL", "NULL"],
            &["s", "3", "double precision", "red", "7", "NULL"]
        ])
    );
    assert_eq!(
        simple_rows(&c, "SELECT inv.seen()").await,
        rows(&[&["{a:5.0:red:7:None,b:2.0:red:None:None,n:0.0:red:None:None,s:3.0:red:7:None}"]])
    );
    // The index on qty was built again over the converted values.
    let by_qty = "SELECT name FROM inv.item WHERE qty = 3::float8";
    let plan = simple_rows(&c, &format!("EXPLAIN {by_qty}")).await;
    assert!(format!("{plan:?}").contains("item_qty_idx"), "{plan:?}");
    assert_eq!(simple_rows(&c, by_qty).await, rows(&[&["s"]]));
    c.batch_execute("UPDATE inv.item SET qty = qty + 0.5 WHERE name = 'b'")
        .await
        .unwrap();
    drop(c);
    server.stop();
    assert_eq!(stored_objects(dir.path(), "Special"), before_special);

    // Then to str: each older value converted through every type since.
    let server = Server::start_on(dir.path(), port);
    let c = connect(&server).await;
    replace(&c, LAZY_V4).await.unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT name, qty FROM inv.item ORDER BY name").await,
        rows(&[&["a", "5.0"], &["b", "2.5"], &["n", "0.0"], &["s", "3.0"]])
    );
    assert_eq!(
        simple_rows(&c, "SELECT inv.seen()").await,
        rows(&[&["{a:'5.0',b:'2.5',n:'0.0',s:'3.0'}"]])
    );
}
