//! Class inheritance as SPEC §3 says, and as PostgreSQL's table
//! inheritance reads: a subclass's table holds its own objects; the
//! parent's table (and `Parent.all()`, `Parent.where()`) includes the
//! subclasses' objects with the parent's columns; `ONLY` excludes them;
//! pg_inherits shows it.

use super::{connect, deploy, rows, simple_rows};
use amber_tests::Server;

const ZOO: &str = r#"
from amber import Persistent

class Animal(Persistent):
    name: str
    legs: int = 4
    __indexes__ = ("name",)

class Bird(Animal):
    wingspan: float = 1.0

def add_animal(n: str) -> int:
    return Animal(name=n).id

def add_bird(n: str, w: float) -> int:
    return Bird(name=n, legs=2, wingspan=w).id

def named(n: str) -> list[str]:
    return [type(a).__name__ + ":" + a.name for a in Animal.where(name=n)]

def everyone() -> list[str]:
    return [type(a).__name__ + ":" + a.name for a in Animal.all()]
"#;

#[tokio::test]
async fn parents_include_subclasses_and_only_excludes_them() {
    let server = Server::start();
    let c = connect(&server).await;
    deploy(&c, "zoo", ZOO).await;
    c.batch_execute(
        "SELECT zoo.add_animal('cat'), zoo.add_bird('tweety', 0.2), zoo.add_bird('cat', 3.0)",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT name, legs FROM zoo.animal ORDER BY id").await,
        rows(&[&["cat", "4"], &["tweety", "2"], &["cat", "2"]])
    );
    assert_eq!(
        simple_rows(&c, "SELECT name, legs FROM ONLY zoo.animal ORDER BY id").await,
        rows(&[&["cat", "4"]])
    );
    assert_eq!(
        simple_rows(&c, "SELECT animal.name FROM ONLY zoo.animal").await,
        rows(&[&["cat"]])
    );
    assert_eq!(
        simple_rows(&c, "SELECT name, wingspan FROM zoo.bird ORDER BY id").await,
        rows(&[&["tweety", "0.2"], &["cat", "3"]])
    );
    // Python sees the same: subclasses included, in id order.
    assert_eq!(
        simple_rows(&c, "SELECT zoo.named('cat'), zoo.everyone()").await,
        rows(&[&["{Animal:cat,Bird:cat}", "{Animal:cat,Bird:tweety,Bird:cat}"]])
    );
    // The parent's filter reads each class's own index.
    let plan: Vec<String> = simple_rows(&c, "EXPLAIN SELECT * FROM zoo.animal WHERE name = 'cat'")
        .await
        .into_iter()
        .filter_map(|r| r[1].clone())
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("IndexScan: animal_name_idx on zoo.animal")
            && plan.contains("IndexScan: bird_name_idx on zoo.bird"),
        "{plan}"
    );
    assert_eq!(
        simple_rows(
            &c,
            "SELECT legs FROM zoo.animal WHERE name = 'cat' ORDER BY id"
        )
        .await,
        rows(&[&["4"], &["2"]])
    );
    // UPDATE and DELETE with ONLY leave the subclasses alone.
    c.batch_execute("UPDATE ONLY zoo.animal SET legs = 5 WHERE name = 'cat'")
        .await
        .unwrap();
    c.batch_execute("DELETE FROM ONLY zoo.animal AS a WHERE a.name = 'tweety'")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT name, legs FROM zoo.animal ORDER BY id").await,
        rows(&[&["cat", "5"], &["tweety", "2"], &["cat", "2"]])
    );
    c.batch_execute("UPDATE zoo.animal SET legs = legs + 1 WHERE name = 'cat'")
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT legs FROM zoo.animal ORDER BY id").await,
        rows(&[&["6"], &["2"], &["3"]])
    );
    // The catalog: pg_inherits, relhassubclass.
    assert_eq!(
        simple_rows(
            &c,
            "SELECT inhrelid::regclass::text, inhparent::regclass::text, inhseqno FROM pg_inherits"
        )
        .await,
        rows(&[&["zoo.bird", "zoo.animal", "1"]])
    );
    assert_eq!(
        simple_rows(
            &c,
            "SELECT relname, relhassubclass FROM pg_class WHERE relnamespace = 'zoo'::regnamespace \
             AND relkind = 'r' ORDER BY 1"
        )
        .await,
        rows(&[&["animal", "t"], &["bird", "f"]])
    );
    assert_eq!(
        simple_rows(
            &c,
            "SELECT attname, attislocal, attinhcount FROM pg_attribute \
             WHERE attrelid = 'zoo.bird'::regclass AND attnum > 0 ORDER BY attnum"
        )
        .await,
        rows(&[
            &["id", "f", "1"],
            &["name", "f", "1"],
            &["legs", "f", "1"],
            &["wingspan", "t", "0"]
        ])
    );
}
