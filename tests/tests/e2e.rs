//! End-to-end tests: the real `amber` binary, spoken to with tokio-postgres.

use amber_tests::Server;

mod alter_table;
mod catalog;
mod checks;
mod clients;
mod copy;
mod ddl;
mod indexes;
mod inheritance;
mod module_variables;
mod names;
mod plans;
mod psql;
mod sandbox;
mod scan;
mod settings;
mod sql_tables;
mod sql_types;
mod sqllogic;
mod stored_form;
mod subqueries;
mod update;
mod upgrade;
mod values;
mod workers;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const BANK: &str = r#"
from amber import Persistent, index, unique

class Customer(Persistent):
    name: str
    email: str
    __unique__ = ("email",)

class Account(Persistent):
    owner: Customer                  # a reference to another object
    balance: int = 0
    tags: list[str] = []
    opened: datetime.date | None = None
    __indexes__ = ("owner",)

    def deposit(self, amount: int) -> int:
        if amount <= 0:
            raise ValueError("amount must be positive")
        self.balance += amount
        return self.balance

    def tag(self, label: str) -> int:
        self.tags.append(label)
        return len(self.tags)

transfers_done: int = 0             # module-level data is persistent too

def transfer(src: Account, dst: Account, amount: int) -> None:
    global transfers_done
    if src.balance < amount:
        raise ValueError("insufficient funds")
    src.balance -= amount
    dst.balance += amount
    transfers_done += 1

def richest(n: int) -> list[Account]:
    return sorted(Account.all(), key=lambda a: -a.balance)[:n]

def total() -> int:
    return sum(a.balance for a in Account.all())

def transfers() -> int:
    return transfers_done

def open_account(owner: Customer, balance: int) -> int:
    return Account(owner=owner, balance=balance).id
"#;

async fn connect(server: &Server) -> Client {
    let (client, conn) = tokio_postgres::connect(&server.conn_string(), NoTls)
        .await
        .expect("connect to amber");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

async fn deploy(client: &Client, name: &str, source: &str) {
    client
        .batch_execute(&format!("CREATE MODULE {name} AS $${source}$$"))
        .await
        .unwrap_or_else(|e| panic!("deploy {name}: {e}"));
}

async fn deploy_bank(client: &Client) {
    deploy(client, "bank", BANK).await;
}

fn code(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no code: {e}"))
}

/// Expected rows as `simple_rows` gives them; `"NULL"` is a NULL.
fn rows(v: &[&[&str]]) -> Vec<Vec<Option<String>>> {
    v.iter()
        .map(|r| {
            r.iter()
                .map(|c| (*c != "NULL").then(|| c.to_string()))
                .collect()
        })
        .collect()
}

/// Values of the simple-protocol rows, as text.
async fn simple_rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .expect(sql)
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tour_of_the_bank_survives_restart() {
    let mut server = Server::start();
    let client = connect(&server).await;
    deploy_bank(&client).await;

    let row = client
        .query_one(
            "INSERT INTO bank.customer (name, email) VALUES ('Ada', 'ada@example.com') RETURNING id",
            &[],
        )
        .await
        .expect("insert customer");
    let ada: i64 = row.get("id");
    let ids: Vec<i64> = client
        .query(
            &format!("INSERT INTO bank.account (owner, balance) VALUES ({ada}, 100), ({ada}, 5) RETURNING id"),
            &[],
        )
        .await
        .expect("insert accounts")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1] && ids[0] != ada, "fresh, increasing ids");
    let (a1, a2) = (ids[0], ids[1]);

    // A method in the select list changes the objects it is called on.
    let rows = client
        .query(
            "SELECT bank.account_deposit(id, 10) FROM bank.account WHERE balance < 50",
            &[],
        )
        .await
        .expect("deposit");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].columns()[0].name(), "account_deposit");
    assert_eq!(rows[0].get::<_, i64>(0), 15);

    // CALL with bind parameters.
    client
        .execute("CALL bank.transfer($1, $2, $3)", &[&a1, &a2, &50i64])
        .await
        .expect("transfer");
    let rows = client
        .query(
            "SELECT id, balance, tags, opened IS NULL FROM bank.account ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let balances: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(balances, vec![(a1, 50), (a2, 65)]);
    assert_eq!(rows[0].get::<_, Vec<String>>(2), Vec::<String>::new());
    assert!(rows[0].get::<_, bool>(3), "opened defaults to NULL");

    // Join, aggregate, GROUP BY, ORDER BY, PostgreSQL's column names.
    let rows = client
        .query(
            "SELECT c.name, count(*), sum(a.balance) FROM bank.account a JOIN bank.customer c ON a.owner = c.id GROUP BY c.name ORDER BY 3 DESC",
            &[],
        )
        .await
        .expect("join");
    assert_eq!(rows.len(), 1);
    let names: Vec<&str> = rows[0].columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, vec!["name", "count", "sum"]);
    assert_eq!(rows[0].get::<_, String>(0), "Ada");
    assert_eq!(rows[0].get::<_, i64>(1), 2);
    assert_eq!(rows[0].get::<_, i64>(2), 115);

    // A set-returning function in FROM has the class's columns.
    let rows = client
        .query("SELECT * FROM bank.richest(1)", &[])
        .await
        .expect("richest");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>("id"), a2);
    assert_eq!(rows[0].get::<_, i64>("balance"), 65);
    assert_eq!(rows[0].get::<_, i64>("owner"), ada);

    // In-place mutation of a list attribute is persisted.
    let n: i64 = client
        .query_one("SELECT bank.account_tag($1, 'vip')", &[&a1])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let tags: Vec<String> = client
        .query_one("SELECT tags FROM bank.account WHERE id = $1", &[&a1])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tags, vec!["vip".to_string()]);

    // Objects created in Python are rows at once.
    let a3: i64 = client
        .query_one("SELECT bank.open_account($1, 7)", &[&ada])
        .await
        .unwrap()
        .get(0);
    let b: i64 = client
        .query_one("SELECT balance FROM bank.account WHERE id = $1", &[&a3])
        .await
        .unwrap()
        .get(0);
    assert_eq!(b, 7);

    // UPDATE and DELETE with RETURNING.
    let r = client
        .query_one(
            "UPDATE bank.account SET balance = balance + 1 WHERE id = $1 RETURNING balance",
            &[&a3],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 8);
    let n = client
        .execute("DELETE FROM bank.account WHERE id = $1", &[&a3])
        .await
        .unwrap();
    assert_eq!(n, 1);

    // The direct path for a point read: aliases, and no row for a missing id.
    let rows = client
        .query(
            "SELECT balance AS b FROM bank.account WHERE id = $1",
            &[&a3],
        )
        .await
        .unwrap();
    assert!(rows.is_empty());
    let row = client
        .query_one(
            "SELECT balance AS b, id FROM bank.account WHERE id = $1",
            &[&a2],
        )
        .await
        .unwrap();
    assert_eq!(row.columns()[0].name(), "b");
    assert_eq!(row.get::<_, i64>("id"), a2);

    // amber.modules lists the module.
    let row = client
        .query_one("SELECT name, version FROM amber.modules", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "bank");
    assert_eq!(row.get::<_, i64>(1), 1);

    // Graceful stop, restart: everything is still there.
    drop(client);
    let status = server.stop();
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");
    server.restart();
    let client = connect(&server).await;
    let rows = client
        .query(
            "SELECT id, balance, tags FROM bank.account ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let balances: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(balances, vec![(a1, 50), (a2, 65)]);
    assert_eq!(rows[0].get::<_, Vec<String>>(2), vec!["vip".to_string()]);
    let done: i64 = client
        .query_one("SELECT bank.transfers()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(done, 1, "module-level data survives restart");
    // New ids never reuse old ones.
    let fresh: i64 = client
        .query_one(
            &format!("INSERT INTO bank.account (owner) VALUES ({ada}) RETURNING id"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(fresh > a3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_exception_is_p0001_and_changes_nothing() {
    let server = Server::start();
    let client = connect(&server).await;
    deploy_bank(&client).await;
    let c: i64 = client
        .query_one(
            "INSERT INTO bank.customer (name, email) VALUES ('B', 'b@x') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let ids: Vec<i64> = client
        .query(
            &format!(
                "INSERT INTO bank.account (owner, balance) VALUES ({c}, 10), ({c}, 0) RETURNING id"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let err = client
        .execute("CALL bank.transfer($1, $2, 500)", &[&ids[0], &ids[1]])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "P0001");
    let db = err.as_db_error().expect("db error");
    assert_eq!(db.message(), "ValueError: insufficient funds");
    assert!(
        db.detail().unwrap_or("").contains("Traceback"),
        "traceback in DETAIL: {:?}",
        db.detail()
    );
    let err = client
        .query("SELECT bank.account_deposit($1, -5)", &[&ids[0]])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "P0001");
    let total: i64 = client
        .query_one("SELECT bank.total()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 10);
    let done: i64 = client
        .query_one("SELECT bank.transfers()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(done, 0);

    // Inside a block, an error aborts the block: 25P02 until ROLLBACK.
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute(
            "UPDATE bank.account SET balance = 99 WHERE id = $1",
            &[&ids[0]],
        )
        .await
        .unwrap();
    let err = client
        .execute("CALL bank.transfer($1, $2, 500)", &[&ids[1], &ids[0]])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "P0001");
    let err = client.query("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(code(&err), "25P02");
    client.batch_execute("ROLLBACK").await.unwrap();
    let b: i64 = client
        .query_one("SELECT balance FROM bank.account WHERE id = $1", &[&ids[0]])
        .await
        .unwrap()
        .get(0);
    assert_eq!(b, 10, "the aborted block's update is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_one_commits_one_conflicts() {
    let server = Server::start();
    let setup = connect(&server).await;
    deploy_bank(&setup).await;
    let c: i64 = setup
        .query_one(
            "INSERT INTO bank.customer (name, email) VALUES ('C', 'c@x') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let ids: Vec<i64> = setup
        .query(&format!("INSERT INTO bank.account (owner, balance) VALUES ({c}, 100), ({c}, 0), ({c}, 0) RETURNING id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let t1 = connect(&server).await;
    let t2 = connect(&server).await;
    t1.batch_execute("BEGIN").await.unwrap();
    t2.batch_execute("BEGIN").await.unwrap();
    t1.execute("CALL bank.transfer($1, $2, 80)", &[&ids[0], &ids[1]])
        .await
        .unwrap();
    t2.execute("CALL bank.transfer($1, $2, 80)", &[&ids[0], &ids[2]])
        .await
        .unwrap();
    let r1 = t1.batch_execute("COMMIT").await;
    let r2 = t2.batch_execute("COMMIT").await;
    assert!(r1.is_ok(), "first commit wins: {r1:?}");
    let e = r2.expect_err("second commit must fail");
    assert_eq!(code(&e), "40001");
    let rows = setup
        .query("SELECT balance FROM bank.account ORDER BY id", &[])
        .await
        .unwrap();
    let balances: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(balances, vec![20, 80, 0], "no lost update");

    // Plain SQL: read-modify-write on one row from two blocks.
    t1.batch_execute("BEGIN").await.unwrap();
    t2.batch_execute("BEGIN").await.unwrap();
    let v1: i64 = t1
        .query_one("SELECT balance FROM bank.account WHERE id = $1", &[&ids[1]])
        .await
        .unwrap()
        .get(0);
    let v2: i64 = t2
        .query_one("SELECT balance FROM bank.account WHERE id = $1", &[&ids[1]])
        .await
        .unwrap()
        .get(0);
    t1.execute(
        "UPDATE bank.account SET balance = $1 WHERE id = $2",
        &[&(v1 + 1), &ids[1]],
    )
    .await
    .unwrap();
    t2.execute(
        "UPDATE bank.account SET balance = $1 WHERE id = $2",
        &[&(v2 + 1), &ids[1]],
    )
    .await
    .unwrap();
    assert!(t1.batch_execute("COMMIT").await.is_ok());
    assert_eq!(
        code(&t2.batch_execute("COMMIT").await.unwrap_err()),
        "40001"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_after_commit_loses_nothing() {
    let mut server = Server::start();
    let client = connect(&server).await;
    deploy_bank(&client).await;
    let c: i64 = client
        .query_one(
            "INSERT INTO bank.customer (name, email) VALUES ('D', 'd@x') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let mut ids = Vec::new();
    for i in 0..20i64 {
        let id: i64 = client
            .query_one(
                "INSERT INTO bank.account (owner, balance) VALUES ($1, $2) RETURNING id",
                &[&c, &i],
            )
            .await
            .unwrap()
            .get(0);
        ids.push(id);
    }
    client
        .execute("CALL bank.transfer($1, $2, 5)", &[&ids[19], &ids[0]])
        .await
        .unwrap();
    server.kill9();
    drop(client);
    server.restart();
    let client = connect(&server).await;
    let rows = client
        .query("SELECT id, balance FROM bank.account ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[0].get::<_, i64>(1), 5);
    assert_eq!(rows[19].get::<_, i64>(1), 14);
    let done: i64 = client
        .query_one("SELECT bank.transfers()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(done, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_sqlstates_and_garbage_harms_no_one() {
    let mut server = Server::start();
    let client = connect(&server).await;
    deploy_bank(&client).await;

    assert_eq!(
        code(
            &client
                .query("SELECT * FROM bank.nope", &[])
                .await
                .unwrap_err()
        ),
        "42P01"
    );
    assert_eq!(
        code(
            &client
                .query("SELECT nope FROM bank.account", &[])
                .await
                .unwrap_err()
        ),
        "42703"
    );
    assert_eq!(
        code(&client.query("SELEC 1", &[]).await.unwrap_err()),
        "42601"
    );
    assert_eq!(
        code(&client.query("SELECT bank.nope(1)", &[]).await.unwrap_err()),
        "42883"
    );

    // A bad module is refused with its line number and changes nothing.
    let err = client
        .batch_execute("CREATE MODULE broken AS $$\nx = 1\ndef f(:\n    pass\n$$")
        .await
        .unwrap_err();
    assert!(["42601", "42P13"].contains(&code(&err).as_str()));
    assert!(
        err.as_db_error().unwrap().message().contains("line 3"),
        "{err:?}"
    );
    let n = client
        .query("SELECT name FROM amber.modules WHERE name = 'broken'", &[])
        .await
        .unwrap();
    assert!(n.is_empty());

    // Multi-statement simple query stops at the first error.
    let before = simple_rows(&client, "SELECT count(*) FROM bank.customer").await;
    let r = client
        .simple_query("INSERT INTO bank.customer (name, email) VALUES ('E', 'e'); SELECT * FROM nope; INSERT INTO bank.customer (name, email) VALUES ('F', 'f')")
        .await;
    assert!(r.is_err());
    let after = simple_rows(&client, "SELECT count(*) FROM bank.customer").await;
    let n0: i64 = before[0][0].as_deref().unwrap().parse().unwrap();
    let n1: i64 = after[0][0].as_deref().unwrap().parse().unwrap();
    assert_eq!(
        n1, n0,
        "a multi-statement query is one transaction: the error undoes the first insert"
    );
    // Without an error, all of it commits.
    client
        .simple_query("INSERT INTO bank.customer (name, email) VALUES ('G', 'g'); INSERT INTO bank.customer (name, email) VALUES ('H', 'h')")
        .await
        .unwrap();
    let after = simple_rows(&client, "SELECT count(*) FROM bank.customer").await;
    let n2: i64 = after[0][0].as_deref().unwrap().parse().unwrap();
    assert_eq!(n2, n0 + 2);

    // Garbage on the wire: that connection ends, the server goes on.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let _ = s.write_all(&[
            0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5,
        ]);
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);
    }
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        let _ = s.write_all(&[0, 0, 0, 8, 0, 3, 0, 0, b'Q', 0x7f, 0xff, 0xff, 0xff]);
    }
    assert!(server.is_running());
    let v: i64 = client
        .query_one("SELECT count(*) FROM bank.account", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 0);
    let other = connect(&server).await;
    let one: i64 = other
        .query_one("SELECT 1::bigint", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
    let cols = simple_rows(&other, "SELECT 1 + 1").await;
    assert_eq!(cols, vec![vec![Some("2".to_string())]]);
}

const TOOLS: &str = r#"
import random, statistics, dataclasses, json, math, decimal
from amber import Persistent, Error, sql

@dataclasses.dataclass
class Point:
    x: int
    y: int

class Item(Persistent):
    name: str
    price: decimal.Decimal
    meta: dict = {}
    seen: datetime.datetime | None = None

def stats() -> str:
    r = random.Random(7)
    values = [r.randint(1, 6) for _ in range(5)]
    return json.dumps({"mean": statistics.mean([1, 2, 3, 4]), "p": dataclasses.asdict(Point(1, 2)),
                       "ok": all(1 <= v <= 6 for v in values), "sqrt": math.sqrt(16)})

def try_import(name: str) -> str:
    try:
        __import__(name)
        return "imported"
    except ImportError as e:
        return "ImportError"

def try_open() -> str:
    try:
        open("/etc/passwd")
        return "opened"
    except PermissionError:
        return "PermissionError"

def refuse() -> int:
    raise Error("22023", "bad parameter, as chosen")

def cheapest() -> str:
    rows = sql("SELECT name, price FROM tools.item WHERE price < $1 ORDER BY price", 5)
    return ",".join(r[0] for r in rows)

def add(name: str, price: decimal.Decimal) -> int:
    return Item(name=name, price=price, meta={"k": [1, 2]}).id

def version() -> int:
    return 1

def fresh_defaults() -> str:
    a = Item(name="a", price=decimal.Decimal(1))
    a.meta["mutated"] = True         # must not change the class default
    b = Item(name="b", price=decimal.Decimal(2))
    result = json.dumps(b.meta)
    a.delete()
    b.delete()
    return result
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_stdlib_amber_sql_and_replace() {
    let server = Server::start();
    let client = connect(&server).await;
    deploy(&client, "tools", TOOLS).await;

    let s: String = client
        .query_one("SELECT tools.stats()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        s,
        r#"{"mean": 2.5, "p": {"x": 1, "y": 2}, "ok": true, "sqrt": 4.0}"#
    );
    for (name, expected) in [
        ("os", "ImportError"),
        ("socket", "ImportError"),
        ("subprocess", "ImportError"),
        ("_thread", "ImportError"),
        ("itertools", "imported"),
        ("collections", "imported"),
    ] {
        let r: String = client
            .query_one("SELECT tools.try_import($1)", &[&name])
            .await
            .unwrap()
            .get(0);
        assert_eq!(r, expected, "import {name}");
    }
    // A dict default is copied for each object, never shared.
    let r: String = client
        .query_one("SELECT tools.fresh_defaults()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        r, "{}",
        "a mutated dict default leaked into the next object"
    );
    let r: String = client
        .query_one("SELECT tools.try_open()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(r, "PermissionError");

    // amber.Error picks the SQLSTATE.
    let e = client
        .query("SELECT tools.refuse()", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&e), "22023");
    assert_eq!(
        e.as_db_error().unwrap().message(),
        "bad parameter, as chosen"
    );

    // Decimal and dict columns; amber.sql() in the same transaction.
    client.batch_execute("BEGIN").await.unwrap();
    client
        .query_one("SELECT tools.add('pen', 1.50)", &[])
        .await
        .unwrap();
    client
        .query_one("SELECT tools.add('book', 12.25)", &[])
        .await
        .unwrap();
    client
        .query_one("SELECT tools.add('clip', 0.10)", &[])
        .await
        .unwrap();
    let r: String = client
        .query_one("SELECT tools.cheapest()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(r, "clip,pen", "amber.sql sees the transaction's own writes");
    client.batch_execute("COMMIT").await.unwrap();
    // Stored numerics keep their scale and jsonb prints as PostgreSQL's.
    let rows = simple_rows(
        &client,
        "SELECT name, price, meta FROM tools.item ORDER BY name",
    )
    .await;
    assert_eq!(
        rows[1],
        vec![
            Some("clip".into()),
            Some("0.10".into()),
            Some(r#"{"k": [1, 2]}"#.into())
        ]
    );
    // Filtered and ordered by the numeric, it still prints as stored
    // (the comparisons compute on its value).
    let rows = simple_rows(
        &client,
        "SELECT name, price FROM tools.item WHERE price < 5 ORDER BY price DESC",
    )
    .await;
    assert_eq!(
        rows,
        vec![
            vec![Some("pen".into()), Some("1.50".into())],
            vec![Some("clip".into()), Some("0.10".into())],
        ]
    );
    let rows = simple_rows(
        &client,
        "SELECT price::text FROM tools.item WHERE price > 1 AND price < 2",
    )
    .await;
    assert_eq!(rows, vec![vec![Some("1.50".into())]]);

    // CREATE OR REPLACE MODULE changes code; objects stay.
    let v2 = TOOLS.replace(
        "def version() -> int:\n    return 1",
        "def version() -> int:\n    return 2",
    );
    client
        .batch_execute(&format!("CREATE OR REPLACE MODULE tools AS $${v2}$$"))
        .await
        .expect("replace tools");
    let v: i64 = client
        .query_one("SELECT tools.version()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 2);
    let n: i64 = client
        .query_one("SELECT count(*) FROM tools.item", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    let row = client
        .query_one(
            "SELECT version FROM amber.modules WHERE name = 'tools'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);

    // A module that does not compile leaves the old version in place.
    let e = client
        .batch_execute("CREATE OR REPLACE MODULE tools AS $$def version( -> int:\n    return 3\n$$")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "42601");
    let v: i64 = client
        .query_one("SELECT tools.version()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 2);

    // DROP MODULE refuses while objects exist, CASCADE drops them.
    assert_eq!(
        code(&client.batch_execute("DROP MODULE tools").await.unwrap_err()),
        "2BP01"
    );
    client
        .batch_execute("DROP MODULE tools CASCADE")
        .await
        .unwrap();
    assert_eq!(
        code(
            &client
                .query("SELECT * FROM tools.item", &[])
                .await
                .unwrap_err()
        ),
        "42P01"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_interrupts_a_looping_procedure() {
    let server = Server::start();
    let client = connect(&server).await;
    client
        .batch_execute("CREATE MODULE spin AS $$\ndef forever() -> int:\n    n = 0\n    while True:\n        try:\n            n += 1\n        except Exception:\n            pass\n$$")
        .await
        .expect("deploy spin");
    client
        .batch_execute("SET statement_timeout = 300")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let e = client
        .query("SELECT spin.forever()", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&e), "57014");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "interrupted promptly"
    );
    let e = client
        .execute("CALL spin.forever()", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&e), "57014");
    // An unreadable limit is refused (it used to mean "no limit"), and the
    // limit in force stays.
    for bad in ["'abc'", "'10 parsecs'", "'-5'"] {
        let e = client
            .batch_execute(&format!("SET statement_timeout = {bad}"))
            .await
            .expect_err(bad);
        assert_eq!(code(&e), "22023", "{bad}: {e:?}");
    }
    // Shown as PostgreSQL 15 shows it: with its unit.
    let rows = simple_rows(&client, "SHOW statement_timeout").await;
    assert_eq!(rows, vec![vec![Some("300ms".to_string())]]);
    // A cancel request interrupts it too.
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        token.cancel_query(NoTls).await
    });
    let started = std::time::Instant::now();
    let e = client
        .query("SELECT spin.forever()", &[])
        .await
        .unwrap_err();
    canceller.await.unwrap().expect("cancel request sent");
    assert_eq!(code(&e), "57014");
    assert_eq!(
        e.as_db_error().unwrap().message(),
        "canceling statement due to user request"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let one: i64 = client
        .query_one("SELECT 1::bigint", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
    let other = connect(&server).await;
    let one: i64 = other
        .query_one("SELECT 1::bigint", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
}

const NOTES: &str = r#"
import amber
from amber import Persistent

class Note(Persistent):
    text: str = ""
    tags: list[int] = []
    edits: int = 0

def mixed(id: int) -> str:
    n = Note.get(id)
    n.edits += 1                       # Python change, flushed before the SQL
    amber.sql("UPDATE notes.note SET tags = array_append(tags, $2::bigint) WHERE id = $1", id, 7)
    seen_by_python = list(n.tags)      # the SQL's change, seen through the object
    rows = amber.sql("SELECT tags, edits FROM notes.note WHERE id = $1", id)
    n.text = "after"                   # a later Python change must not undo the SQL's
    return f"{seen_by_python}|{rows[0][0]}|{rows[0][1]}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amber_sql_and_loaded_objects_see_each_other() {
    let server = Server::start();
    let client = connect(&server).await;
    deploy(&client, "notes", NOTES).await;
    let id: i64 = client
        .query_one(
            "INSERT INTO notes.note (text) VALUES ('before') RETURNING id",
            &[],
        )
        .await
        .expect("insert")
        .get(0);
    let out: String = client
        .query_one("SELECT notes.mixed($1)", &[&id])
        .await
        .expect("mixed")
        .get(0);
    // Python sees the SQL's append; the SQL sees Python's edit; lists come
    // back from amber.sql() as lists.
    assert_eq!(out, "[7]|[7]|1");
    let row = client
        .query_one(
            "SELECT text, tags, edits FROM notes.note WHERE id = $1",
            &[&id],
        )
        .await
        .expect("read back");
    assert_eq!(row.get::<_, String>(0), "after");
    assert_eq!(row.get::<_, Vec<i64>>(1), vec![7]);
    assert_eq!(row.get::<_, i64>(2), 1);
}

/// One message cannot take the server down: a `$n` naming billions of
/// parameters is refused before anything is sized by it (it used to make
/// the server allocate 96 GB and abort), and a multi-byte character where
/// a DDL keyword would end is a syntax error, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_cannot_take_the_server_down() {
    let server = Server::start();
    let client = connect(&server).await;
    let e = client
        .prepare("SELECT $4000000000::int")
        .await
        .expect_err("a parameter number beyond 65535");
    assert_eq!(code(&e), "42P02", "{e:?}");
    let e = client
        .simple_query("CREAT€ MODULE m AS $$x = 1$$")
        .await
        .expect_err("not a statement");
    assert_eq!(code(&e), "42601", "{e:?}");
    let rows = simple_rows(&client, "SELECT 1").await;
    assert_eq!(rows, vec![vec![Some("1".to_string())]]);
}

const LEAKY: &str = r#"
def traceback_from(path: str) -> int:
    # A code object that names a host file as its source.
    code = compile("x = 1\ny = 2\nraise ValueError('boom')\n", path, "exec")
    exec(code, {})
    return 0
"#;

/// A procedure cannot read host files through an error's traceback (the
/// traceback printer read the source line of every frame from the file its
/// code object names).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracebacks_reveal_no_host_file() {
    let server = Server::start();
    let client = connect(&server).await;
    deploy(&client, "leaky", LEAKY).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "SECRET-1\nSECRET-2\nSECRET-3\n").expect("write secret");
    let path = secret.to_str().expect("utf-8 path");
    let e = client
        .query_one("SELECT leaky.traceback_from($1)", &[&path])
        .await
        .expect_err("raises");
    let db = e.as_db_error().expect("db error");
    assert_eq!(db.message(), "ValueError: boom");
    let detail = db.detail().unwrap_or("");
    assert!(
        detail.contains(&format!("File \"{path}\", line 3")),
        "the frame is still named: {detail}"
    );
    assert!(!detail.contains("SECRET"), "host file leaked: {detail}");
    // Deployed modules' own lines still show.
    assert!(detail.contains("exec(code, {})"), "{detail}");
}
