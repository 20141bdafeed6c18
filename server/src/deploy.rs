//! `amber deploy FILE.py [--module NAME] [--dry-run]`: a client of the
//! server, like psql (the same connection options and PG* variables).
//!
//! It runs the real deploy (`CREATE OR REPLACE MODULE`) in a transaction
//! and compares the catalog before and after it inside that transaction:
//! classes, attributes, indexes, functions, and how many objects the
//! change converts. `--dry-run` then rolls back, so what it prints (or the
//! error it reports) is exactly what the deploy would do; otherwise it
//! commits.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use tokio_postgres::{Client, NoTls};

/// The largest module source accepted (the server's own limit on a
/// message is larger; a module past this is a mistake).
const SOURCE_BYTES_MAX: u64 = 16 << 20;

#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct DeployArgs {
    /// The module's Python source.
    file: PathBuf,
    /// The module (SQL schema) name; default: the file's name without `.py`.
    #[arg(long)]
    module: Option<String>,
    /// Print what would change (classes, attributes, indexes, objects to
    /// convert) and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Server host (PGHOST).
    #[arg(short = 'h', long, env = "PGHOST", default_value = "127.0.0.1")]
    host: String,
    /// Server port (PGPORT).
    #[arg(short = 'p', long, env = "PGPORT", default_value_t = 5432)]
    port: u16,
    /// User name (PGUSER).
    #[arg(
        short = 'U',
        long = "username",
        env = "PGUSER",
        default_value = "amber"
    )]
    user: String,
    /// Database name (PGDATABASE).
    #[arg(
        short = 'd',
        long = "dbname",
        env = "PGDATABASE",
        default_value = "amber"
    )]
    dbname: String,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// What the catalog says of one module.
#[derive(Default)]
struct Snapshot {
    version: Option<i64>,
    /// table -> [(attribute, type, not null)]
    tables: BTreeMap<String, Vec<(String, String, bool)>>,
    /// index name -> definition
    indexes: BTreeMap<String, String>,
    functions: BTreeSet<String>,
}

async fn snapshot(c: &Client, module: &str) -> Result<Snapshot> {
    let mut s = Snapshot {
        version: c
            .query_opt(
                "SELECT version FROM amber.modules WHERE name = $1",
                &[&module],
            )
            .await?
            .map(|r| r.get(0)),
        ..Snapshot::default()
    };
    for r in c
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY 1, a.attnum",
            &[&module],
        )
        .await?
    {
        s.tables
            .entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2), r.get(3)));
    }
    for r in c
        .query(
            "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = $1",
            &[&module],
        )
        .await?
    {
        s.indexes.insert(r.get(0), r.get(1));
    }
    for r in c
        .query(
            "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname = $1",
            &[&module],
        )
        .await?
    {
        s.functions.insert(r.get(0));
    }
    Ok(s)
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A dollar quote tag that does not occur in `source`.
fn dollar_tag(source: &str) -> String {
    let mut n = 0u32;
    loop {
        let tag = if n == 0 {
            "$amber$".to_string()
        } else {
            format!("$amber{n}$")
        };
        if !source.contains(&tag) {
            return tag;
        }
        n += 1;
    }
}

/// How an attribute's nullability is shown after its type.
fn nullable(not_null: bool) -> &'static str {
    if not_null {
        ""
    } else {
        " (nullable)"
    }
}

/// The lines describing the change from `before` to `after`; objects to
/// convert are counted in `c` (the deploy's transaction, before it runs).
fn describe(before: &Snapshot, after: &Snapshot, counts: &BTreeMap<String, i64>) -> Vec<String> {
    let mut out = Vec::new();
    for (table, cols) in &after.tables {
        let Some(old) = before.tables.get(table) else {
            out.push(format!("+ class {table}"));
            for (name, ty, not_null) in cols {
                out.push(format!(
                    "    + attribute {name} {ty}{}",
                    nullable(*not_null)
                ));
            }
            continue;
        };
        let mut lines = Vec::new();
        for (name, ty, not_null) in cols {
            match old.iter().find(|o| &o.0 == name) {
                None => lines.push(format!(
                    "    + attribute {name} {ty}{}",
                    nullable(*not_null)
                )),
                Some((_, old_ty, old_nn)) if old_ty != ty || old_nn != not_null => {
                    lines.push(format!(
                        "    ~ attribute {name} {old_ty}{} -> {ty}{}",
                        nullable(*old_nn),
                        nullable(*not_null)
                    ))
                }
                Some(_) => {}
            }
        }
        for (name, ty, _) in old {
            if !cols.iter().any(|c| &c.0 == name) {
                lines.push(format!("    - attribute {name} {ty}"));
            }
        }
        if !lines.is_empty() {
            out.push(format!("~ class {table}"));
            out.extend(lines);
            if let Some(n) = counts.get(table) {
                out.push(format!("    {n} objects to convert"));
            }
        }
    }
    for table in before.tables.keys() {
        if !after.tables.contains_key(table) {
            out.push(format!("- class {table}"));
        }
    }
    for (name, def) in &after.indexes {
        match before.indexes.get(name) {
            None => out.push(format!("+ index {def}")),
            Some(old) if old != def => out.push(format!("~ index {def}")),
            Some(_) => {}
        }
    }
    for (name, def) in &before.indexes {
        if !after.indexes.contains_key(name) {
            out.push(format!("- index {def}"));
        }
    }
    for f in after.functions.difference(&before.functions) {
        out.push(format!("+ function {f}"));
    }
    for f in before.functions.difference(&after.functions) {
        out.push(format!("- function {f}"));
    }
    out
}

/// The message psql would print for a server error.
fn server_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("ERROR:  {}", db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!("\nDETAIL:  {d}"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("\nHINT:  {h}"));
            }
            s
        }
        None => e.to_string(),
    }
}

/// Runs the command; its error is printed as psql prints one (no
/// backtrace), and the exit status is 1.
pub fn run(args: DeployArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if let Err(e) = runtime.block_on(deploy(args)) {
        eprintln!("amber deploy: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

async fn deploy(args: DeployArgs) -> Result<()> {
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    if size > SOURCE_BYTES_MAX {
        bail!(
            "{} is {size} bytes; a module may have at most {SOURCE_BYTES_MAX}",
            args.file.display()
        );
    }
    let source = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let module = match &args.module {
        Some(m) => m.clone(),
        None => args
            .file
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
            .context("the file has no name to take the module's from: give --module")?,
    };
    let mut config = tokio_postgres::Config::new();
    config
        .host(&args.host)
        .port(args.port)
        .user(&args.user)
        .dbname(&args.dbname)
        .application_name("amber deploy");
    if let Ok(pw) = std::env::var("PGPASSWORD") {
        config.password(pw);
    }
    let (client, conn) = config.connect(NoTls).await.with_context(|| {
        format!(
            "connecting to {}:{} as {} (database {})",
            args.host, args.port, args.user, args.dbname
        )
    })?;
    let conn = tokio::spawn(conn);
    let before = snapshot(&client, &module).await?;
    // Objects of each class that exists now (its own, not its
    // subclasses', which are converted as their class changes).
    let mut counts = BTreeMap::new();
    for table in before.tables.keys() {
        let n: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM ONLY {}.{}",
                    quote_ident(&module),
                    quote_ident(table)
                ),
                &[],
            )
            .await?
            .get(0);
        counts.insert(table.clone(), n);
    }
    client.batch_execute("BEGIN").await?;
    let tag = dollar_tag(&source);
    let ddl = format!(
        "CREATE OR REPLACE MODULE {} AS {tag}{source}{tag}",
        quote_ident(&module)
    );
    if let Err(e) = client.batch_execute(&ddl).await {
        let _ = client.batch_execute("ROLLBACK").await;
        bail!(
            "module {module} was not deployed{}:\n{}",
            if args.dry_run { " (dry run)" } else { "" },
            server_error(&e)
        );
    }
    let after = snapshot(&client, &module).await?;
    let lines = describe(&before, &after, &counts);
    let version = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "none".into());
    if args.dry_run {
        client.batch_execute("ROLLBACK").await?;
        println!(
            "module {module}: version {} -> {} (dry run: nothing changed)",
            version(before.version),
            version(after.version)
        );
    } else {
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| anyhow::anyhow!("commit failed:\n{}", server_error(&e)))?;
        println!(
            "module {module}: version {} -> {} deployed",
            version(before.version),
            version(after.version)
        );
    }
    if lines.is_empty() {
        println!("  no change to classes, attributes, indexes or functions");
    }
    for l in lines {
        println!("  {l}");
    }
    drop(client);
    let _ = conn.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_tags_avoid_the_source() {
        assert_eq!(dollar_tag("x = '$$'"), "$amber$");
        assert_eq!(dollar_tag("s = '$amber$'"), "$amber1$");
    }
}
