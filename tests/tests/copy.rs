//! COPY FROM STDIN / TO STDOUT in text, CSV and binary, through
//! tokio-postgres's copy API (the extended protocol) and the simple
//! protocol: values, NULLs, escapes and defaults round-trip; bad data is
//! PostgreSQL's error with its context, and nothing of a failed COPY stays.

use super::{code, connect, deploy, simple_rows};
use amber_tests::Server;
use bytes::Bytes;
use futures::{SinkExt, TryStreamExt};
use tokio_postgres::binary_copy::{BinaryCopyInWriter, BinaryCopyOutStream};
use tokio_postgres::types::Type;
use tokio_postgres::Client;

const SHOP: &str = r#"
from amber import Persistent

class Customer(Persistent):
    name: str

class Item(Persistent):
    owner: Customer
    label: str
    qty: int = 1
    price: float | None = None
    ok: bool = True
"#;

/// A client of `server` with the shop module deployed and one customer,
/// whose id is returned.
async fn shop(server: &Server) -> (Client, i64) {
    let c = connect(server).await;
    deploy(&c, "shop", SHOP).await;
    let ann: i64 = c
        .query_one(
            "INSERT INTO shop.customer (name) VALUES ('ann') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (c, ann)
}

async fn copy_in(c: &Client, sql: &str, data: &str) -> Result<u64, tokio_postgres::Error> {
    let sink = c.copy_in(sql).await?;
    futures::pin_mut!(sink);
    sink.send(Bytes::from(data.to_string())).await?;
    sink.finish().await
}

async fn copy_out(c: &Client, sql: &str) -> String {
    let stream = c.copy_out(sql).await.expect(sql);
    let parts: Vec<Bytes> = stream.try_collect().await.expect(sql);
    String::from_utf8(parts.concat()).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_round_trips_text_csv_and_binary() {
    let server = Server::start();
    let (c, ann) = shop(&server).await;

    // Text: escapes, \N, a column left to its default; split records.
    let text = format!("{ann}\ttab\\there\t2\t\\N\n{ann}\tback\\\\slash\t3\t1.5\n");
    let n = copy_in(
        &c,
        "COPY shop.item (owner, label, qty, price) FROM STDIN",
        &text,
    )
    .await
    .unwrap();
    assert_eq!(n, 2);
    let rows = simple_rows(
        &c,
        "SELECT label, qty, price, ok FROM shop.item ORDER BY id",
    )
    .await;
    assert_eq!(
        rows,
        vec![
            vec![
                Some("tab\there".into()),
                Some("2".into()),
                None,
                Some("t".into())
            ],
            vec![
                Some("back\\slash".into()),
                Some("3".into()),
                Some("1.5".into()),
                Some("t".into())
            ],
        ]
    );
    // TO STDOUT writes what FROM STDIN read (escaped the same way).
    let out = copy_out(&c, "COPY shop.item (owner, label, qty, price) TO STDOUT").await;
    assert_eq!(out, text);

    // CSV with a header, quotes, an embedded newline and NULL vs "".
    let csv = format!("owner,label,qty,price\n{ann},\"a,\"\"b\"\"\",4,\n{ann},\"\",5,2\n{ann},\"two\nlines\",6,\n");
    let n = copy_in(
        &c,
        "COPY shop.item (owner, label, qty, price) FROM STDIN WITH (FORMAT csv, HEADER true)",
        &csv,
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    let out = copy_out(
        &c,
        "COPY (SELECT owner, label, qty, price FROM shop.item WHERE qty >= 4 ORDER BY qty) TO STDOUT WITH (FORMAT csv, HEADER)",
    )
    .await;
    assert_eq!(out, csv);

    // Binary, both ways, through tokio-postgres's binary copy.
    let sink = c
        .copy_in("COPY shop.item (owner, label, qty, price, ok) FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    let types = [Type::INT8, Type::TEXT, Type::INT8, Type::FLOAT8, Type::BOOL];
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    for i in 0..1000i64 {
        let price = (i % 2 == 0).then_some(i as f64 / 4.0);
        writer
            .as_mut()
            .write(&[&ann, &format!("b{i}"), &(100 + i), &price, &(i % 3 == 0)])
            .await
            .unwrap();
    }
    assert_eq!(writer.finish().await.unwrap(), 1000);
    let stream = c
        .copy_out("COPY (SELECT label, qty, price, ok FROM shop.item WHERE qty >= 100 ORDER BY qty) TO STDOUT (FORMAT binary)")
        .await
        .unwrap();
    let rows: Vec<_> =
        BinaryCopyOutStream::new(stream, &[Type::TEXT, Type::INT8, Type::FLOAT8, Type::BOOL])
            .try_collect()
            .await
            .unwrap();
    assert_eq!(rows.len(), 1000);
    for (i, r) in rows.iter().enumerate() {
        let i = i as i64;
        assert_eq!(r.get::<String>(0), format!("b{i}"));
        assert_eq!(r.get::<i64>(1), 100 + i);
        assert_eq!(
            r.get::<Option<f64>>(2),
            (i % 2 == 0).then_some(i as f64 / 4.0)
        );
        assert_eq!(r.get::<bool>(3), i % 3 == 0);
    }
    let rows = simple_rows(&c, "SELECT count(*) FROM shop.item").await;
    assert_eq!(rows, vec![vec![Some("1005".into())]]);
}

/// psql's `\copy`: the simple protocol (CopyInResponse from a Query, the
/// tag after CopyDone, then ReadyForQuery), a file on the client's side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_copies_through_the_simple_protocol() {
    let server = Server::start();
    let (_client, ann) = shop(&server).await;
    let dir = std::env::temp_dir().join(format!("amber-copy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.csv");
    let output = dir.join("out.csv");
    std::fs::write(&input, format!("label,owner\n\"x, y\",{ann}\nz,{ann}\n")).unwrap();
    let psql = |commands: &[String]| {
        let mut cmd = std::process::Command::new("psql");
        cmd.arg(server.conn_string()).arg("-X");
        for c in commands {
            cmd.arg("-c").arg(c);
        }
        let out = cmd.output().expect("psql (installed by .ci/run) runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, stdout, stderr) = psql(&[
        format!(
            "\\copy shop.item (label, owner) FROM '{}' WITH (FORMAT csv, HEADER)",
            input.display()
        ),
        format!(
            "\\copy (SELECT label, qty FROM shop.item ORDER BY id) TO '{}' CSV",
            output.display()
        ),
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "COPY 2\nCOPY 2\n");
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "\"x, y\",1\nz,1\n"
    );
    // A bad record: the error and its context, nothing kept, and the same
    // connection goes on (psql runs the next command on it).
    std::fs::write(&input, format!("label,owner\nok,{ann}\nbad,zz\n")).unwrap();
    let (_, stdout, stderr) = psql(&[
        format!(
            "\\copy shop.item (label, owner) FROM '{}' WITH (FORMAT csv, HEADER)",
            input.display()
        ),
        "SELECT count(*) FROM shop.item".to_string(),
    ]);
    assert!(
        stderr.contains("invalid input syntax for type bigint: \"zz\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("COPY item, line 3, column owner: \"zz\""),
        "{stderr}"
    );
    assert!(stdout.contains(" 2\n"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_copy_keeps_nothing() {
    let server = Server::start();
    let (c, ann) = shop(&server).await;
    let count = || async {
        c.query_one("SELECT count(*) FROM shop.item", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };

    // A bad value: PostgreSQL's error and context; the good rows before it
    // are not kept.
    let e = copy_in(
        &c,
        "COPY shop.item (owner, label, qty) FROM STDIN",
        &format!("{ann}\tok\t1\n{ann}\tbad\tzz\n"),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), "22P02");
    let db = e.as_db_error().unwrap();
    assert_eq!(db.message(), "invalid input syntax for type bigint: \"zz\"");
    assert_eq!(db.where_(), Some("COPY item, line 2, column qty: \"zz\""));
    assert_eq!(count().await, 0);

    // Missing and extra fields, a broken reference, NOT NULL.
    for (data, want) in [
        (format!("{ann}\tx\n"), "22P04"),
        (format!("{ann}\tx\t1\t9\n"), "22P04"),
        ("999999\tx\t1\n".to_string(), "23503"),
        (format!("{ann}\t\\N\t1\n"), "23502"),
    ] {
        let e = copy_in(&c, "COPY shop.item (owner, label, qty) FROM STDIN", &data)
            .await
            .unwrap_err();
        assert_eq!(code(&e), want, "{data:?}");
    }
    assert_eq!(count().await, 0);

    // Inside a block: the block is aborted, as by any failed statement.
    c.batch_execute("BEGIN").await.unwrap();
    copy_in(
        &c,
        "COPY shop.item (owner, label) FROM STDIN",
        &format!("{ann}\tin\n"),
    )
    .await
    .unwrap();
    let e = copy_in(&c, "COPY shop.item (owner, label) FROM STDIN", "x\ty\n")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "22P02");
    let e = c.query_one("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(code(&e), "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(count().await, 0);

    // The client gives up (CopyFail): nothing kept, the session goes on.
    {
        let sink = c
            .copy_in::<_, Bytes>("COPY shop.item (owner, label) FROM STDIN")
            .await
            .unwrap();
        futures::pin_mut!(sink);
        sink.send(Bytes::from(format!("{ann}\tgone\n")))
            .await
            .unwrap();
        // Dropped without finish(): tokio-postgres sends CopyFail.
    }
    assert_eq!(count().await, 0);

    // Server files are never read or written; options are checked.
    for (sql, want) in [
        ("COPY shop.item TO '/etc/passwd'", "42501"),
        ("COPY shop.item FROM '/etc/passwd'", "42501"),
        ("COPY shop.item TO STDOUT (FORMAT binary, HEADER)", "0A000"),
        ("COPY shop.item TO STDOUT (FORMAT xml)", "22023"),
        ("COPY shop.nothing TO STDOUT", "42P01"),
        ("COPY shop.item (nope) TO STDOUT", "42703"),
        ("COPY shop.item (id) FROM STDIN", "428C9"),
    ] {
        let e = c.simple_query(sql).await.unwrap_err();
        assert_eq!(code(&e), want, "{sql}");
    }
    let rows = simple_rows(&c, "SELECT 1").await;
    assert_eq!(rows, vec![vec![Some("1".into())]]);
}

/// COPY TO sends one row per CopyData message (the protocol's rule for a
/// backend, which clients rely on), a binary copy ends with PostgreSQL's
/// trailer in a message of its own, and the tag counts rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_to_sends_a_row_per_message_and_the_binary_trailer() {
    let server = Server::start();
    let (c, ann) = shop(&server).await;
    let n = 2_000;
    c.batch_execute(&format!(
        "INSERT INTO shop.item (owner, label, qty) SELECT {ann}, 'l' || g, g FROM generate_series(1, {n}) AS t(g)"
    ))
    .await
    .unwrap();
    let sql = "COPY (SELECT label, qty FROM shop.item ORDER BY qty) TO STDOUT";
    let parts: Vec<Bytes> = c.copy_out(sql).await.unwrap().try_collect().await.unwrap();
    assert_eq!(parts.len(), n as usize);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(&p[..], format!("l{}\t{}\n", i + 1, i + 1).as_bytes());
    }

    let binary = "COPY (SELECT qty FROM shop.item ORDER BY qty) TO STDOUT (FORMAT binary)";
    let parts: Vec<Bytes> = c
        .copy_out(binary)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(parts.len(), n as usize + 1);
    assert!(parts[0].starts_with(b"PGCOPY\n\xff\r\n\0"));
    assert_eq!(&parts[n as usize][..], &[0xff, 0xff], "the trailer, alone");
    let rows: Vec<_> = BinaryCopyOutStream::new(c.copy_out(binary).await.unwrap(), &[Type::INT8])
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows.len(), n as usize);
    assert_eq!(rows[n as usize - 1].get::<i64>(0), n);
    // No rows: the header, then the trailer.
    let empty = "COPY (SELECT qty FROM shop.item WHERE qty < 0) TO STDOUT (FORMAT binary)";
    let parts: Vec<Bytes> = c
        .copy_out(empty)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(&parts[1][..], &[0xff, 0xff]);

    let out = std::process::Command::new("psql")
        .arg(server.conn_string())
        .args([
            "-X",
            "-c",
            "\\copy (SELECT qty FROM shop.item ORDER BY qty) TO '/dev/null' (FORMAT binary)",
        ])
        .output()
        .expect("psql (installed by .ci/run) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("COPY {n}\n"));
}
