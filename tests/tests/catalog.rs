//! pg_catalog and information_schema computed from Amber's catalog, read
//! with the queries psql and drivers send. Expected rows are PostgreSQL
//! 15's for the same DDL (`pg-scratch`).

use super::{connect, deploy_bank, simple_rows};
use amber_tests::Server;

fn rows(v: &[&[Option<&str>]]) -> Vec<Vec<Option<String>>> {
    v.iter()
        .map(|r| r.iter().map(|s| s.map(str::to_string)).collect())
        .collect()
}

const SHOP: &str = "CREATE SCHEMA shop;
CREATE TABLE shop.customer (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE);
CREATE TABLE shop.account (id bigint PRIMARY KEY, owner bigint, balance numeric DEFAULT 0, opened date);
CREATE INDEX account_owner_idx ON shop.account (owner);
CREATE VIEW shop.rich AS SELECT id, balance FROM shop.account WHERE balance > 100;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_queries_answer_as_postgresql() {
    let mut server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(SHOP).await.unwrap();
    // psql's \dt / \di / \dv listing.
    let listing = "SELECT n.nspname, c.relname, CASE c.relkind WHEN 'r' THEN 'table' \
        WHEN 'v' THEN 'view' WHEN 'i' THEN 'index' END, pg_catalog.pg_get_userbyid(c.relowner) \
        FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
        WHERE n.nspname OPERATOR(pg_catalog.~) '^(shop)$' COLLATE pg_catalog.default \
        AND c.relkind IN ('r','v','i') ORDER BY 1,2";
    let expected_listing = rows(&[
        &[Some("shop"), Some("account"), Some("table"), Some("amber")],
        &[
            Some("shop"),
            Some("account_owner_idx"),
            Some("index"),
            Some("amber"),
        ],
        &[
            Some("shop"),
            Some("account_pkey"),
            Some("index"),
            Some("amber"),
        ],
        &[Some("shop"), Some("customer"), Some("table"), Some("amber")],
        &[
            Some("shop"),
            Some("customer_email_key"),
            Some("index"),
            Some("amber"),
        ],
        &[
            Some("shop"),
            Some("customer_pkey"),
            Some("index"),
            Some("amber"),
        ],
        &[Some("shop"), Some("rich"), Some("view"), Some("amber")],
    ]);
    assert_eq!(simple_rows(&c, listing).await, expected_listing);
    // psql's \d columns: types, defaults (a non-aggregated correlated
    // scalar subquery), not-null.
    assert_eq!(
        simple_rows(
            &c,
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), \
             (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d \
              WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef), a.attnotnull \
             FROM pg_catalog.pg_attribute a WHERE a.attrelid = 'shop.customer'::regclass \
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        )
        .await,
        rows(&[
            &[
                Some("id"),
                Some("integer"),
                Some("nextval('shop.customer_id_seq'::regclass)"),
                Some("t")
            ],
            &[Some("name"), Some("text"), None, Some("t")],
            &[Some("email"), Some("text"), None, Some("f")],
        ])
    );
    assert_eq!(
        simple_rows(
            &c,
            "SELECT conname, contype, pg_catalog.pg_get_constraintdef(oid, true) \
             FROM pg_catalog.pg_constraint WHERE conrelid = 'shop.customer'::regclass ORDER BY 1"
        )
        .await,
        rows(&[
            &[
                Some("customer_email_key"),
                Some("u"),
                Some("UNIQUE (email)")
            ],
            &[Some("customer_pkey"), Some("p"), Some("PRIMARY KEY (id)")],
        ])
    );
    assert_eq!(
        simple_rows(
            &c,
            "SELECT c2.relname, i.indisprimary, i.indisunique, pg_catalog.pg_get_indexdef(i.indexrelid, 0, true) \
             FROM pg_catalog.pg_class c2, pg_catalog.pg_index i \
             WHERE i.indrelid = 'shop.account'::regclass AND i.indexrelid = c2.oid ORDER BY 1"
        )
        .await,
        rows(&[
            &[Some("account_owner_idx"), Some("f"), Some("f"), Some("CREATE INDEX account_owner_idx ON shop.account USING btree (owner)")],
            &[Some("account_pkey"), Some("t"), Some("t"), Some("CREATE UNIQUE INDEX account_pkey ON shop.account USING btree (id)")],
        ])
    );
    assert_eq!(
        simple_rows(
            &c,
            "SELECT table_name, column_name, data_type, is_nullable, column_default \
             FROM information_schema.columns WHERE table_schema = 'shop' \
             AND table_name IN ('account','customer') ORDER BY table_name, ordinal_position"
        )
        .await,
        rows(&[
            &[
                Some("account"),
                Some("id"),
                Some("bigint"),
                Some("NO"),
                None
            ],
            &[
                Some("account"),
                Some("owner"),
                Some("bigint"),
                Some("YES"),
                None
            ],
            &[
                Some("account"),
                Some("balance"),
                Some("numeric"),
                Some("YES"),
                Some("0")
            ],
            &[
                Some("account"),
                Some("opened"),
                Some("date"),
                Some("YES"),
                None
            ],
            &[
                Some("customer"),
                Some("id"),
                Some("integer"),
                Some("NO"),
                Some("nextval('shop.customer_id_seq'::regclass)")
            ],
            &[
                Some("customer"),
                Some("name"),
                Some("text"),
                Some("NO"),
                None
            ],
            &[
                Some("customer"),
                Some("email"),
                Some("text"),
                Some("YES"),
                None
            ],
        ])
    );
    assert_eq!(
        simple_rows(
            &c,
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'shop' ORDER BY 1"
        )
        .await,
        rows(&[
            &[Some("account"), Some("BASE TABLE")],
            &[Some("customer"), Some("BASE TABLE")],
            &[Some("rich"), Some("VIEW")],
        ])
    );
    // Visibility and ::regclass follow search_path.
    let visible = "SELECT c.oid::regclass, pg_table_is_visible(c.oid), \
        'shop.account'::regclass::oid = c.oid FROM pg_class c WHERE c.relname = 'account'";
    assert_eq!(
        simple_rows(&c, visible).await,
        rows(&[&[Some("shop.account"), Some("f"), Some("t")]])
    );
    c.batch_execute("SET search_path = shop, public")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, visible).await,
        rows(&[&[Some("account"), Some("t"), Some("t")]])
    );
    let err = c
        .simple_query("SELECT 'shop.nothing'::regclass")
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|s| s.code()), Some("42P01"), "{err}");
    // A scalar subquery with more than one row is 21000, as PostgreSQL.
    let err = c
        .simple_query("SELECT (SELECT relname FROM pg_class c WHERE c.relnamespace = n.oid) FROM pg_namespace n WHERE nspname = 'shop'")
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|s| s.code()), Some("21000"), "{err}");
    // Oids are stored: the same after a restart.
    let oids = "SELECT c.relname, c.oid::bigint, c.reltype::bigint FROM pg_class c \
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'shop' ORDER BY 1";
    let before = simple_rows(&c, oids).await;
    // Tables, indexes, the view and customer.id's sequence, as PostgreSQL.
    assert_eq!(before.len(), 8);
    assert!(before.iter().all(|r| r[1]
        .as_deref()
        .and_then(|o| o.parse::<u32>().ok())
        .is_some_and(|o| o >= 16384)));
    drop(c);
    server.stop();
    server.restart();
    let c = connect(&server).await;
    assert_eq!(simple_rows(&c, oids).await, before);
    // The listing is the same after the restart too.
    assert_eq!(simple_rows(&c, listing).await, expected_listing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_classes_are_tables_with_keys_and_functions() {
    let server = Server::start();
    let c = connect(&server).await;
    deploy_bank(&c).await;
    assert_eq!(
        simple_rows(
            &c,
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = 'bank.account'::regclass ORDER BY 1"
        )
        .await,
        rows(&[
            &[
                Some("account_owner_fkey"),
                Some("f"),
                Some("FOREIGN KEY (owner) REFERENCES bank.customer(id)")
            ],
            &[Some("account_pkey"), Some("p"), Some("PRIMARY KEY (id)")],
        ])
    );
    assert_eq!(
        simple_rows(
            &c,
            "SELECT p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid) \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname = 'bank' AND p.proname IN ('transfer', 'account_deposit', 'total') ORDER BY 1"
        )
        .await,
        rows(&[
            &[Some("account_deposit"), Some("self bigint, amount bigint"), Some("bigint")],
            &[Some("total"), Some(""), Some("bigint")],
            &[Some("transfer"), Some("src bigint, dst bigint, amount bigint"), Some("void")],
        ])
    );
    // The referencing side, as pgjdbc's getImportedKeys reads it.
    assert_eq!(
        simple_rows(
            &c,
            "SELECT kcu.column_name, ccu.table_name, ccu.column_name \
             FROM information_schema.table_constraints tc \
             JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name \
             JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name \
             WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_name = 'account'"
        )
        .await,
        rows(&[&[Some("owner"), Some("customer"), Some("id")]])
    );
}

/// RowDescription names each column's table and attnum as pg_class and
/// pg_attribute do, as PostgreSQL 15 does (each case checked against it):
/// a column, aliased or through a subquery, names its table; a view's
/// column names the view; a catalog table's column names it; anything
/// computed, aggregated or from a UNION of two tables names none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_descriptions_name_the_columns_tables() {
    let server = Server::start();
    let c = connect(&server).await;
    deploy_bank(&c).await;
    c.batch_execute(
        "CREATE TABLE src_t (id bigint PRIMARY KEY, name text, total numeric);
         CREATE VIEW src_v AS SELECT name, total FROM src_t;",
    )
    .await
    .unwrap();
    let oid =
        |rows: Vec<Vec<Option<String>>>| -> u32 { rows[0][0].as_deref().unwrap().parse().unwrap() };
    let t = oid(simple_rows(&c, "SELECT 'src_t'::regclass::oid").await);
    let v = oid(simple_rows(&c, "SELECT 'src_v'::regclass::oid").await);
    let account = oid(simple_rows(&c, "SELECT 'bank.account'::regclass::oid").await);
    let balance_attnum: i16 = simple_rows(
        &c,
        "SELECT attnum FROM pg_attribute WHERE attrelid = 'bank.account'::regclass AND attname = 'balance'",
    )
    .await[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    for (sql, want) in [
        (
            "SELECT id, name, id + 1, name AS n, total FROM src_t",
            vec![(t, 1), (t, 2), (0, 0), (t, 2), (t, 3)],
        ),
        (
            "SELECT x FROM (SELECT name AS x FROM src_t) s",
            vec![(t, 2)],
        ),
        ("SELECT * FROM src_v", vec![(v, 1), (v, 2)]),
        ("SELECT max(id) FROM src_t", vec![(0, 0)]),
        (
            "SELECT name FROM src_t UNION ALL SELECT relname::text FROM pg_class",
            vec![(0, 0)],
        ),
        (
            "SELECT oid, relname FROM pg_class",
            vec![(1259, 1), (1259, 2)],
        ),
        (
            "SELECT id, balance FROM bank.account",
            vec![(account, 1), (account, balance_attnum)],
        ),
    ] {
        let stmt = c.prepare(sql).await.unwrap();
        let got: Vec<(u32, i16)> = stmt
            .columns()
            .iter()
            .map(|col| (col.table_oid().unwrap_or(0), col.column_id().unwrap_or(0)))
            .collect();
        assert_eq!(got, want, "{sql}");
    }
}

/// Descriptions as PostgreSQL keeps them (pg_description,
/// `obj_description`, `col_description`): `COMMENT ON` a table, column,
/// view and schema made by SQL (NULL removes it; a missing object is
/// 42P01/42703), and a Python module's docstrings for its schema, classes
/// and functions (cleaned as `inspect.cleandoc` cleans them); `COMMENT
/// ON` a Python class is refused (its docstring is its comment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_and_docstrings_are_descriptions() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute(
        "CREATE SCHEMA cm;
         CREATE TABLE cm.t (id bigint PRIMARY KEY, name text);
         CREATE VIEW cm.v AS SELECT id FROM cm.t;
         COMMENT ON TABLE cm.t IS 'people who buy';
         COMMENT ON COLUMN cm.t.name IS 'their name';
         COMMENT ON VIEW cm.v IS 'just ids';
         COMMENT ON SCHEMA cm IS 'the shop';",
    )
    .await
    .unwrap();
    c.batch_execute(
        "CREATE MODULE docs AS $$
\"\"\"A module of documented things.\"\"\"
from amber import Persistent

class Item(Persistent):
    \"\"\"A thing on a shelf.

    It has a name.\"\"\"
    name: str

def count() -> int:
    \"\"\"How many items there are.\"\"\"
    return len(list(Item.all()))
$$",
    )
    .await
    .unwrap();
    let got = simple_rows(
        &c,
        "SELECT obj_description('cm.t'::regclass, 'pg_class'), col_description('cm.t'::regclass, 2),
                obj_description('cm.v'::regclass, 'pg_class'), obj_description('cm'::regnamespace, 'pg_namespace'),
                obj_description('docs'::regnamespace, 'pg_namespace'),
                obj_description('docs.item'::regclass, 'pg_class'),
                (SELECT d.description FROM pg_description d JOIN pg_proc p ON p.oid = d.objoid
                  WHERE p.proname = 'count' AND d.classoid = 'pg_proc'::regclass)",
    )
    .await;
    let want: Vec<Option<String>> = [
        "people who buy",
        "their name",
        "just ids",
        "the shop",
        "A module of documented things.",
        "A thing on a shelf.\n\nIt has a name.",
        "How many items there are.",
    ]
    .iter()
    .map(|s| Some(s.to_string()))
    .collect();
    assert_eq!(got, vec![want]);
    c.batch_execute("COMMENT ON TABLE cm.t IS NULL")
        .await
        .unwrap();
    let cleared = simple_rows(&c, "SELECT obj_description('cm.t'::regclass, 'pg_class')").await;
    assert_eq!(cleared, vec![vec![None]]);
    for (sql, want) in [
        ("COMMENT ON TABLE cm.nope IS 'x'", "42P01"),
        ("COMMENT ON COLUMN cm.t.nope IS 'x'", "42703"),
        ("COMMENT ON TABLE docs.item IS 'x'", "0A000"),
    ] {
        let err = c.batch_execute(sql).await.unwrap_err();
        assert_eq!(super::code(&err), want, "{sql}");
    }
}

/// information_schema.table_privileges: the owner's seven privileges on
/// each table and view, as PostgreSQL 15 lists them (its answer for the
/// same DDL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_privileges_are_the_owners() {
    let server = Server::start();
    let c = connect(&server).await;
    c.batch_execute("CREATE SCHEMA priv; CREATE TABLE priv.t (id bigint PRIMARY KEY)")
        .await
        .unwrap();
    let got = simple_rows(
        &c,
        "SELECT grantor, grantee, table_name, privilege_type, is_grantable, with_hierarchy \
         FROM information_schema.table_privileges WHERE table_schema = 'priv' ORDER BY privilege_type",
    )
    .await;
    let want: Vec<Vec<Option<String>>> = [
        ("DELETE", "NO"),
        ("INSERT", "NO"),
        ("REFERENCES", "NO"),
        ("SELECT", "YES"),
        ("TRIGGER", "NO"),
        ("TRUNCATE", "NO"),
        ("UPDATE", "NO"),
    ]
    .iter()
    .map(|(p, h)| {
        ["amber", "amber", "t", p, "YES", h]
            .iter()
            .map(|s| Some(s.to_string()))
            .collect()
    })
    .collect();
    assert_eq!(got, want);
}

/// pg_stat_activity lists every connected session with its state and
/// query, as DBeaver's and pgAdmin's session views read it.
#[tokio::test]
async fn pg_stat_activity_lists_the_sessions() {
    let server = Server::start();
    let (worker, conn) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=amber dbname=amber application_name=worker",
            server.port
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let task = tokio::spawn(conn);
    worker.batch_execute("BEGIN").await.unwrap();
    worker.simple_query("SELECT 42").await.unwrap();
    let c = connect(&server).await;
    let query = "SELECT application_name, state, query, pid = pg_backend_pid() \
                 FROM pg_stat_activity ORDER BY backend_start";
    assert_eq!(
        simple_rows(&c, query).await,
        vec![
            vec![
                Some("worker".to_string()),
                Some("idle in transaction".to_string()),
                Some("SELECT 42".to_string()),
                Some("f".to_string())
            ],
            vec![
                Some(String::new()),
                Some("active".to_string()),
                Some(query.to_string()),
                Some("t".to_string())
            ],
        ]
    );
    drop(worker);
    let _ = task.await;
    // The server notices the closed connection shortly.
    let mut left = Vec::new();
    for _ in 0..50 {
        left = simple_rows(&c, "SELECT count(*) FROM pg_stat_activity").await;
        if left == vec![vec![Some("1".to_string())]] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, vec![vec![Some("1".to_string())]]);
}
