//! Secondary and unique indexes: declared by a module (`__indexes__`,
//! `__unique__`, one per reference) or by `CREATE INDEX`, kept by every
//! write (Python and SQL), read by `where()`/`get_by()` and by SQL filters
//! (EXPLAIN names the index), and taking part in conflict detection with
//! the key range they read.

use super::{code, connect, deploy, simple_rows};
use amber_tests::Server;
use tokio_postgres::Client;

const SHOP: &str = r#"
from amber import Persistent, index, unique

class Customer(Persistent):
    name: str
    email: str
    __unique__ = ("email",)

class Account(Persistent):
    owner: Customer
    balance: int = 0
    __indexes__ = (index("owner", "balance"),)

def add(name: str, email: str) -> int:
    return Customer(name=name, email=email).id

def open_account(c: Customer, balance: int) -> int:
    return Account(owner=c, balance=balance).id

def name_of(email: str) -> str | None:
    c = Customer.get_by(email=email)
    return None if c is None else c.name

def accounts_of(c: Customer) -> list[int]:
    return [a.id for a in Account.where(owner=c)]

def rich_accounts_of(c: Customer, balance: int) -> list[int]:
    return [a.id for a in Account.where(owner=c, balance=balance)]

def set_email(c: Customer, email: str) -> None:
    c.email = email

def swap_then_fix(a: Customer, b: Customer) -> str:
    # A duplicate inside one call is refused at the write, whatever the
    # procedure does afterwards.
    a.email = b.email
    return "written"
"#;

async fn one(c: &Client, sql: &str) -> Option<String> {
    simple_rows(c, sql).await.remove(0).remove(0)
}

async fn explain(c: &Client, sql: &str) -> String {
    simple_rows(c, &format!("EXPLAIN {sql}"))
        .await
        .into_iter()
        .filter_map(|r| r.into_iter().nth(1).flatten())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn module_indexes_are_kept_by_python_and_sql_and_used_by_both() {
    let server = Server::start();
    let c = connect(&server).await;
    deploy(&c, "shop", SHOP).await;
    assert_eq!(
        simple_rows(
            &c,
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'shop' ORDER BY 1"
        )
        .await,
        [
            ["account_owner_balance_idx", "CREATE INDEX account_owner_balance_idx ON shop.account USING btree (owner, balance)"],
            ["account_pkey", "CREATE UNIQUE INDEX account_pkey ON shop.account USING btree (id)"],
            ["customer_email_key", "CREATE UNIQUE INDEX customer_email_key ON shop.customer USING btree (email)"],
            ["customer_pkey", "CREATE UNIQUE INDEX customer_pkey ON shop.customer USING btree (id)"],
        ]
        .iter()
        .map(|r| r.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    );
    let ada: i64 = c
        .query_one("SELECT shop.add('ada', 'ada@x.org')", &[])
        .await
        .unwrap()
        .get(0);
    let bob: i64 = c
        .query_one("SELECT shop.add('bob', 'bob@x.org')", &[])
        .await
        .unwrap()
        .get(0);

    // A duplicate from Python: PostgreSQL's message and detail.
    let e = c
        .query_one("SELECT shop.add('ada2', 'ada@x.org')", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&e), "23505");
    let db = e.as_db_error().unwrap();
    assert_eq!(
        db.message(),
        "duplicate key value violates unique constraint \"customer_email_key\""
    );
    assert_eq!(db.detail(), Some("Key (email)=(ada@x.org) already exists."));
    let e = c
        .query_one("SELECT shop.swap_then_fix($1, $2)", &[&bob, &ada])
        .await
        .unwrap_err();
    assert_eq!(code(&e), "23505");
    // ... and from SQL, on the same index.
    let e = c
        .execute(
            "INSERT INTO shop.customer (name, email) VALUES ('x', 'bob@x.org')",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), "23505");
    assert_eq!(
        one(&c, "SELECT count(*) FROM shop.customer")
            .await
            .as_deref(),
        Some("2")
    );

    // where() / get_by() through the indexes, after writes of both kinds.
    let mut accounts = Vec::new();
    for balance in [5i64, 7, 7, -3] {
        let id: i64 = c
            .query_one("SELECT shop.open_account($1, $2)", &[&ada, &balance])
            .await
            .unwrap()
            .get(0);
        accounts.push(id);
    }
    c.execute(
        "INSERT INTO shop.account (owner, balance) VALUES ($1, 100)",
        &[&bob],
    )
    .await
    .unwrap();
    let of = |sql: &'static str, id: i64| {
        let c = &c;
        async move {
            c.query_one(sql, &[&id])
                .await
                .unwrap()
                .get::<_, Vec<i64>>(0)
        }
    };
    assert_eq!(
        of("SELECT shop.accounts_of($1)", ada).await,
        accounts.clone()
    );
    assert_eq!(of("SELECT shop.accounts_of($1)", bob).await.len(), 1);
    let sevens: Vec<i64> = c
        .query_one("SELECT shop.rich_accounts_of($1, 7)", &[&ada])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sevens, accounts[1..3].to_vec());
    // An UPDATE moves the entry; a DELETE removes it.
    c.execute(
        "UPDATE shop.account SET owner = $1 WHERE id = $2",
        &[&bob, &accounts[0]],
    )
    .await
    .unwrap();
    c.execute("DELETE FROM shop.account WHERE id = $1", &[&accounts[3]])
        .await
        .unwrap();
    assert_eq!(
        of("SELECT shop.accounts_of($1)", ada).await,
        accounts[1..3].to_vec()
    );
    assert_eq!(of("SELECT shop.accounts_of($1)", bob).await.len(), 2);
    c.execute(
        "UPDATE shop.customer SET email = 'ada@y.org' WHERE id = $1",
        &[&ada],
    )
    .await
    .unwrap();
    assert_eq!(
        one(&c, "SELECT shop.name_of('ada@y.org')").await.as_deref(),
        Some("ada")
    );
    assert_eq!(one(&c, "SELECT shop.name_of('ada@x.org')").await, None);
    // The freed key can be taken again, from Python.
    c.execute("SELECT shop.set_email($1, 'ada@x.org')", &[&bob])
        .await
        .unwrap();
    assert_eq!(
        one(&c, "SELECT shop.name_of('ada@x.org')").await.as_deref(),
        Some("bob")
    );

    // SQL reads through the indexes; EXPLAIN names them.
    let plan = explain(&c, "SELECT * FROM shop.customer WHERE email = 'ada@y.org'").await;
    assert!(plan.contains("IndexScan: customer_email_key"), "{plan}");
    let plan = explain(
        &c,
        &format!("SELECT id FROM shop.account WHERE owner = {ada} AND balance > 6"),
    )
    .await;
    assert!(
        plan.contains("IndexScan: account_owner_balance_idx"),
        "{plan}"
    );
    let rows = c
        .query(
            "SELECT id FROM shop.account WHERE owner = $1 AND balance > 6 ORDER BY id",
            &[&ada],
        )
        .await
        .unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, accounts[1..3].to_vec());

    // A new version that declares a unique key the objects break is
    // refused, and the old version stays.
    let dup = SHOP.replace(
        "__indexes__ = (index(\"owner\", \"balance\"),)",
        "__indexes__ = (index(\"owner\", \"balance\"),)\n    __unique__ = (\"balance\",)",
    );
    let e = c
        .batch_execute(&format!("CREATE OR REPLACE MODULE shop AS $src${dup}$src$"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "23505");
    assert!(
        e.as_db_error()
            .unwrap()
            .message()
            .contains("could not create unique index \"account_balance_key\""),
        "{e:?}"
    );
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'shop'"
        )
        .await
        .as_deref(),
        Some("4")
    );

    // Indexes survive a restart with their entries.
    drop(c);
    let mut server = server;
    assert!(server.stop().success());
    server.restart();
    let c = connect(&server).await;
    assert_eq!(
        one(&c, "SELECT shop.name_of('ada@y.org')").await.as_deref(),
        Some("ada")
    );
    let e = c
        .query_one("SELECT shop.add('z', 'ada@y.org')", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&e), "23505");
}

/// Every comparison an index answers gives the rows a scan gives: the
/// same predicate is asked once on the indexed column and once through
/// an expression no index answers.
#[tokio::test]
async fn index_ranges_answer_as_scans_do() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE r (n bigint, f double precision, s text, d date, b boolean);
         CREATE INDEX r_n ON r (n); CREATE INDEX r_f ON r (f); CREATE INDEX r_s ON r (s);
         CREATE INDEX r_d ON r (d); CREATE INDEX r_b_n ON r (b, n);
         INSERT INTO r VALUES
           (-9223372036854775808, '-Infinity', '', '0001-01-01', true),
           (-5, -2.5, 'A', '1999-12-31', false),
           (-1, -0.0, 'B', '2000-01-01', true),
           (0, 0.0, 'a', '2000-01-02', NULL),
           (1, 1e-300, 'ab', '2024-02-29', false),
           (2, 2.5, 'abc', '2024-03-01', true),
           (300, 'Infinity', 'b', 'infinity', true),
           (9223372036854775807, 'NaN', 'é', '-infinity', false),
           (NULL, NULL, NULL, NULL, NULL);",
    )
    .await
    .unwrap();
    let cases = [
        ("n", "n + 0", "= -1"),
        ("n", "n + 0", "< 0"),
        ("n", "n + 0", "<= 1"),
        ("n", "n + 0", "> -5"),
        ("n", "n + 0", ">= 300"),
        ("n", "n + 0", "IN (-5, 2, 7, 300)"),
        ("n", "n + 0", "BETWEEN -1 AND 2"),
        ("f", "f + 0", "= 0"),
        ("f", "f + 0", "< 0"),
        ("f", "f + 0", "> 1"),
        ("f", "f + 0", ">= 'Infinity'"),
        ("s", "s || ''", "= 'ab'"),
        ("s", "s || ''", "< 'a'"),
        ("s", "s || ''", ">= 'ab'"),
        ("s", "s || ''", "> 'b'"),
        ("s", "s || ''", "IN ('', 'B', 'zz')"),
        ("d", "coalesce(d, d)", "< '2000-01-02'"),
        ("d", "coalesce(d, d)", ">= '2024-02-29'"),
        ("b", "NOT NOT b", "= true"),
        ("n", "n + 0", "IS NULL"),
    ];
    for (col, expr, pred) in cases {
        let indexed = format!("SELECT n, s FROM r WHERE {col} {pred} ORDER BY n, s");
        let scanned = format!("SELECT n, s FROM r WHERE {expr} {pred} ORDER BY n, s");
        assert_eq!(
            simple_rows(&c, &indexed).await,
            simple_rows(&c, &scanned).await,
            "{col} {pred}"
        );
        let plan = explain(&c, &indexed).await;
        assert!(plan.contains("IndexScan: r_"), "{col} {pred}: {plan}");
    }
    // ORDER BY ... LIMIT reads the index in its order (NULLs last), or
    // backwards for DESC (NULLS FIRST, PostgreSQL's default for DESC), as
    // a sort of the scan orders the rows.
    let orders = [
        ("n", "n + 0", "", "", [1, 3, 20]),
        ("s", "s || ''", "", "", [1, 3, 20]),
        ("d", "coalesce(d, d)", "", "", [1, 3, 20]),
        ("s", "s || ''", " DESC", "reverse ", [1, 4, 20]),
    ];
    for (col, expr, dir, reverse, limits) in orders {
        for limit in limits {
            let indexed = format!("SELECT {col} FROM r ORDER BY {col}{dir} LIMIT {limit}");
            let sorted = format!("SELECT {col} FROM r ORDER BY {expr}{dir} LIMIT {limit}");
            assert_eq!(
                simple_rows(&c, &indexed).await,
                simple_rows(&c, &sorted).await,
                "{indexed}"
            );
            let plan = explain(&c, &indexed).await;
            assert!(
                plan.contains(&format!(
                    "IndexScan: r_{col} on public.r, in {reverse}index order, fetch={limit}"
                )),
                "{plan}"
            );
        }
    }
    // Not in the index's order: sorted as before.
    let plan = explain(&c, "SELECT n FROM r ORDER BY n DESC NULLS LAST LIMIT 2").await;
    assert!(plan.contains("SortExec: TopK"), "{plan}");

    // Two columns of one index: an equality, then a range.
    let plan = explain(&c, "SELECT n FROM r WHERE b = true AND n > 0").await;
    assert!(
        plan.contains("IndexScan: r_b_n on public.r, b, n > Int64(0)"),
        "{plan}"
    );
    assert_eq!(
        simple_rows(&c, "SELECT n FROM r WHERE b = true AND n > 0 ORDER BY n").await,
        vec![vec![Some("2".to_string())], vec![Some("300".to_string())]]
    );
}

/// A lookup conflicts with a concurrent insert of the key it read (no
/// phantom), and with no write of another key.
#[tokio::test]
async fn index_reads_conflict_with_their_key_only() {
    let server = Server::start();
    let a = connect(&server).await;
    let b = connect(&server).await;
    a.batch_execute(
        "CREATE TABLE u (k text, v int); CREATE INDEX u_k ON u (k);
         CREATE TABLE log (msg text);",
    )
    .await
    .unwrap();
    // Another key: both commit.
    a.batch_execute("BEGIN").await.unwrap();
    assert_eq!(
        one(&a, "SELECT count(*) FROM u WHERE k = 'x'")
            .await
            .as_deref(),
        Some("0")
    );
    a.batch_execute("INSERT INTO log VALUES ('a saw no x')")
        .await
        .unwrap();
    b.batch_execute("INSERT INTO u VALUES ('y', 1)")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    // The key read: the reader that wrote fails at commit.
    a.batch_execute("BEGIN").await.unwrap();
    assert_eq!(
        one(&a, "SELECT count(*) FROM u WHERE k = 'x'")
            .await
            .as_deref(),
        Some("0")
    );
    a.batch_execute("INSERT INTO log VALUES ('a saw no x again')")
        .await
        .unwrap();
    b.batch_execute("INSERT INTO u VALUES ('x', 2)")
        .await
        .unwrap();
    let e = a.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(code(&e), "40001");
    assert_eq!(
        one(&a, "SELECT count(*) FROM log").await.as_deref(),
        Some("1")
    );
}

/// A delete of a referenced key finds the referencing rows through an
/// index on the referencing column: the same outcomes as the scan
/// (23503, CASCADE, SET NULL), every index kept.
#[tokio::test]
async fn referenced_deletes_find_referencing_rows_through_an_index() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE kid (n int, pid int REFERENCES p ON DELETE CASCADE);
         CREATE TABLE pet (n int, pid int REFERENCES p ON DELETE SET NULL);
         CREATE TABLE fan (n int, pid int REFERENCES p);
         CREATE INDEX kid_pid ON kid (pid); CREATE INDEX pet_pid ON pet (pid);
         CREATE INDEX fan_pid ON fan (pid);
         INSERT INTO p VALUES (1), (2), (3);
         INSERT INTO kid VALUES (1, 1), (2, 1), (3, 2);
         INSERT INTO pet VALUES (1, 1), (2, 2);
         INSERT INTO fan VALUES (1, 3);",
    )
    .await
    .unwrap();
    c.batch_execute("DELETE FROM p WHERE id = 1").await.unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT n, pid FROM kid ORDER BY n").await,
        vec![vec![Some("3".to_string()), Some("2".to_string())]]
    );
    assert_eq!(
        simple_rows(&c, "SELECT n, pid FROM pet ORDER BY n").await,
        vec![
            vec![Some("1".to_string()), None],
            vec![Some("2".to_string()), Some("2".to_string())]
        ]
    );
    // The index moved with SET NULL: the nulled row is found by IS NULL.
    assert_eq!(
        simple_rows(&c, "SELECT n FROM pet WHERE pid IS NULL").await,
        vec![vec![Some("1".to_string())]]
    );
    // Only the deleted key's range is read: a concurrent insert of a row
    // referencing another key does not conflict (a scan of kid would).
    let other = connect(&server).await;
    c.batch_execute("BEGIN; DELETE FROM p WHERE id = 2")
        .await
        .unwrap();
    other
        .batch_execute("INSERT INTO kid VALUES (9, 3)")
        .await
        .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT n, pid FROM kid ORDER BY n").await,
        vec![vec![Some("9".to_string()), Some("3".to_string())]]
    );
    let e = c
        .batch_execute("DELETE FROM p WHERE id = 3")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "23503");
    assert_eq!(
        e.as_db_error().unwrap().detail(),
        Some("Key (id)=(3) is still referenced from table \"fan\".")
    );
}

const LEDGER: &str = r#"
from amber import Persistent

class Customer(Persistent):
    name: str

class Vip(Customer):
    level: int = 1

class Account(Persistent):
    owner: Customer
    balance: int = 0
"#;

/// A join on a reference reads its inner side by the outer side's keys:
/// customers by id, accounts through the reference's index (EXPLAIN says
/// so), with the rows of the same join on an expression no key answers;
/// and it conflicts only with writes of the keys it read.
#[tokio::test]
async fn joins_on_references_read_the_inner_side_by_key() {
    let server = Server::start();
    let c = connect(&server).await;
    let b = connect(&server).await;
    deploy(&c, "ledger", LEDGER).await;
    c.batch_execute(
        "INSERT INTO ledger.customer (name) SELECT 'c' || g FROM generate_series(1, 300) AS t(g);
         INSERT INTO ledger.vip (name, level) VALUES ('v1', 3);
         INSERT INTO ledger.account (owner, balance)
           SELECT (SELECT min(id) FROM ledger.customer) + g % 300, g FROM generate_series(1, 3000) AS t(g);
         INSERT INTO ledger.account (owner, balance) SELECT id, -1 FROM ledger.vip;
         CREATE TABLE log (msg text);",
    )
    .await
    .unwrap();
    let join = "a.owner = c.id";
    let cases = [
        (
            "SELECT a.id, c.name FROM ledger.account a JOIN ledger.customer c ON a.owner = c.id WHERE a.balance = 77",
            "IndexScan: customer_pkey on ledger.customer, id = join keys",
        ),
        // A subclass's object, found by id through its parent's table.
        (
            "SELECT a.id, c.name FROM ledger.account a JOIN ledger.customer c ON a.owner = c.id WHERE a.balance = -1",
            "customer_pkey",
        ),
        (
            "SELECT a.balance, c.name FROM ledger.account a JOIN ledger.customer c ON a.owner = c.id WHERE c.name = 'c7'",
            "IndexScan: account_owner_idx on ledger.account, owner = join keys",
        ),
        (
            "SELECT c.name, a.balance FROM ledger.customer c LEFT JOIN ledger.account a ON a.owner = c.id WHERE c.name IN ('c3', 'c4', 'v1')",
            "account_owner_idx",
        ),
        // No key: no account is read.
        (
            "SELECT a.balance FROM ledger.account a JOIN ledger.customer c ON a.owner = c.id WHERE c.name = 'nobody'",
            "account_owner_idx",
        ),
        // Every key: the query's order stays (neither side is chosen
        // rows), and the customers are scanned (too many to read by key).
        (
            "SELECT count(*), sum(a.balance) FROM ledger.account a JOIN ledger.customer c ON a.owner = c.id",
            "customer_pkey",
        ),
        (
            "SELECT a.id, c.name FROM ledger.account a JOIN ledger.customer c ON a.owner = c.id WHERE a.balance BETWEEN 10 AND 20",
            "customer_pkey",
        ),
    ];
    for (sql, index) in cases {
        let plan = explain(&c, sql).await;
        assert!(plan.contains(index), "{sql}:\n{plan}");
        let mut keyed = simple_rows(&c, sql).await;
        let mut scanned = simple_rows(&c, &sql.replace(join, "a.owner + 0 = c.id + 0")).await;
        keyed.sort();
        scanned.sort();
        assert!(!scanned.is_empty() || sql.contains("nobody"), "{sql}");
        assert_eq!(keyed, scanned, "{sql}");
    }
    assert_eq!(
        simple_rows(&c, cases[1].0).await[0][1].as_deref(),
        Some("v1")
    );

    // The accounts of c7 read by key: an insert of another customer's
    // account is no conflict, one of c7's is.
    let c7 = "SELECT count(*) FROM ledger.account a JOIN ledger.customer c ON a.owner = c.id WHERE c.name = 'c7'";
    for (owner, conflict) in [("c8", false), ("c7", true)] {
        c.batch_execute("BEGIN").await.unwrap();
        assert_eq!(one(&c, c7).await.as_deref(), Some("10"));
        c.batch_execute("INSERT INTO log VALUES ('read c7')")
            .await
            .unwrap();
        b.batch_execute(&format!(
            "INSERT INTO ledger.account (owner, balance)
               SELECT id, 0 FROM ledger.customer WHERE name = '{owner}'"
        ))
        .await
        .unwrap();
        match c.batch_execute("COMMIT").await {
            Ok(()) => assert!(!conflict, "a write of a key read must conflict"),
            Err(e) => {
                assert!(conflict, "{e}");
                assert_eq!(code(&e), "40001");
            }
        }
    }
    assert_eq!(
        one(&c, "SELECT count(*) FROM log").await.as_deref(),
        Some("1")
    );
}
