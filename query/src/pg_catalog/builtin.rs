//! PostgreSQL 15's built-in catalog rows (types, access methods,
//! collations, ranges, languages, schemas, predefined roles, their
//! descriptions, and the functions these name), dumped from PostgreSQL 15 by
//! `tools/pg15_catalog_rows.sh` into `pg15/*.tsv` (COPY's text format) and
//! read once.

use super::{columns_of, Cell, Col, Row};
use std::collections::HashMap;
use std::sync::OnceLock;

const PG_TYPE: &str = include_str!("pg15/pg_type.tsv");
const PG_AM: &str = include_str!("pg15/pg_am.tsv");
const PG_COLLATION: &str = include_str!("pg15/pg_collation.tsv");
const PG_RANGE: &str = include_str!("pg15/pg_range.tsv");
const PG_LANGUAGE: &str = include_str!("pg15/pg_language.tsv");
const PG_NAMESPACE: &str = include_str!("pg15/pg_namespace.tsv");
const PG_AUTHID: &str = include_str!("pg15/pg_authid.tsv");
const PG_DESCRIPTION: &str = include_str!("pg15/pg_description.tsv");
const PG_PROC: &str = include_str!("pg15/pg_proc.tsv");
const PG_CLASS: &str = include_str!("pg15/pg_class.tsv");
const PG_ATTRIBUTE: &str = include_str!("pg15/pg_attribute.tsv");

/// pg_catalog's and information_schema's namespace oids, and the bootstrap
/// superuser's (PostgreSQL's fixed ones).
pub(crate) const PG_CATALOG_NAMESPACE: u32 = 11;
pub(crate) const PG_TOAST_NAMESPACE: u32 = 99;
pub(crate) const PUBLIC_NAMESPACE: u32 = 2200;
pub(crate) const INFORMATION_SCHEMA_NAMESPACE: u32 = 13207;
pub(crate) const SUPERUSER: u32 = 10;
/// Amber's own: the `amber` schema (`amber.modules`) and the language of
/// module functions. Below PostgreSQL's first user oid, above every oid
/// PostgreSQL 15's initdb assigns.
pub(crate) const AMBER_NAMESPACE: u32 = 16383;
pub(crate) const PYTHON_LANGUAGE: u32 = 16382;
/// The database's oid (PostgreSQL's `postgres` database has 5).
pub(crate) const DATABASE: u32 = 5;
pub(crate) const HEAP_AM: u32 = 2;
pub(crate) const BTREE_AM: u32 = 403;
pub(crate) const DEFAULT_COLLATION: u32 = 100;
pub(crate) const RECORD_TYPE: u32 = 2249;

/// What the catalog needs to know of a built-in type.
#[derive(Debug, Clone)]
pub(crate) struct TypeInfo {
    pub oid: u32,
    pub name: String,
    pub len: i64,
    pub byval: bool,
    pub align: String,
    pub storage: String,
    pub elem: u32,
    pub collation: u32,
    pub namespace: u32,
}

struct Builtins {
    types: Vec<Row>,
    /// Built-in functions: oid to name and name to oid (regproc).
    proc_names: HashMap<u32, String>,
    proc_oids: HashMap<String, u32>,
    /// The other relations' rows, by relation name.
    tables: HashMap<&'static str, Vec<Row>>,
    by_oid: HashMap<u32, TypeInfo>,
    by_name: HashMap<String, u32>,
}

/// `{a,b}` (an array's text form, elements unquoted in these dumps).
fn array_items(text: &str) -> Vec<String> {
    let inner = text.trim_start_matches('{').trim_end_matches('}');
    if inner.is_empty() {
        return Vec::new();
    }
    inner
        .split(',')
        .map(|s| s.trim_matches('"').to_string())
        .collect()
}

/// One COPY text line as a row of `columns`.
fn parse_row(columns: &'static [(&'static str, Col)], line: &str) -> Row {
    let mut row = Row::new();
    for ((name, col), field) in columns.iter().zip(line.split('\t')) {
        if field == "\\N" {
            continue;
        }
        let field = field.replace("\\\\", "\\");
        let cell = match col {
            Col::Oid | Col::Regtype | Col::Xid | Col::Int2 | Col::Int4 | Col::Int8 => {
                match field.parse::<i64>() {
                    Ok(v) => Cell::Int(v),
                    Err(_) => Cell::Null,
                }
            }
            Col::Float4 | Col::Float8 => Cell::Float(field.parse().unwrap_or(0.0)),
            Col::Bool => Cell::Bool(field == "t"),
            Col::OidArray | Col::OidVector | Col::Int2Vector | Col::Int2Array => Cell::Ints(
                field
                    .trim_start_matches('{')
                    .trim_end_matches('}')
                    .split([',', ' '])
                    .filter_map(|s| s.parse().ok())
                    .collect(),
            ),
            Col::TextArray | Col::NameArray | Col::CharArray | Col::Acl => {
                Cell::Texts(array_items(&field))
            }
            _ => Cell::Text(field),
        };
        row = row.set(name, cell);
    }
    row
}

fn parse(name: &str, data: &str) -> Vec<Row> {
    let Some(columns) = columns_of("pg_catalog", name) else {
        return Vec::new();
    };
    data.lines().map(|l| parse_row(columns, l)).collect()
}

fn builtins() -> &'static Builtins {
    static BUILTINS: OnceLock<Builtins> = OnceLock::new();
    BUILTINS.get_or_init(|| {
        let types = parse("pg_type", PG_TYPE);
        let mut by_oid = HashMap::new();
        let mut by_name = HashMap::new();
        for row in &types {
            let int = |c: &str| match row.0.get(c) {
                Some(Cell::Int(v)) => *v,
                _ => 0,
            };
            let text = |c: &str| match row.0.get(c) {
                Some(Cell::Text(s)) => s.clone(),
                _ => String::new(),
            };
            let info = TypeInfo {
                oid: int("oid") as u32,
                name: text("typname"),
                len: int("typlen"),
                byval: matches!(row.0.get("typbyval"), Some(Cell::Bool(true))),
                align: text("typalign"),
                storage: text("typstorage"),
                elem: int("typelem") as u32,
                collation: int("typcollation") as u32,
                namespace: int("typnamespace") as u32,
            };
            by_name.insert(info.name.clone(), info.oid);
            by_oid.insert(info.oid, info);
        }
        let tables: HashMap<&'static str, Vec<Row>> = [
            ("pg_am", PG_AM),
            ("pg_collation", PG_COLLATION),
            ("pg_range", PG_RANGE),
            ("pg_language", PG_LANGUAGE),
            // The schemas every PostgreSQL has, with their owners and ACLs.
            ("pg_namespace", PG_NAMESPACE),
            // The predefined roles (pg_monitor, pg_database_owner, ...).
            ("pg_authid", PG_AUTHID),
            // The descriptions of the built-in rows above.
            ("pg_description", PG_DESCRIPTION),
            // The functions those rows name (type I/O, handlers).
            ("pg_proc", PG_PROC),
            // The catalog relations Amber serves and their columns.
            ("pg_class", PG_CLASS),
            ("pg_attribute", PG_ATTRIBUTE),
        ]
        .into_iter()
        .map(|(name, data)| (name, parse(name, data)))
        .collect();
        let mut proc_names = HashMap::new();
        let mut proc_oids = HashMap::new();
        for row in tables.get("pg_proc").map(Vec::as_slice).unwrap_or(&[]) {
            if let (Some(Cell::Int(oid)), Some(Cell::Text(name))) =
                (row.0.get("oid"), row.0.get("proname"))
            {
                if let Ok(oid) = u32::try_from(*oid) {
                    proc_names.insert(oid, name.clone());
                    proc_oids.entry(name.clone()).or_insert(oid);
                }
            }
        }
        Builtins {
            types,
            proc_names,
            proc_oids,
            tables,
            by_oid,
            by_name,
        }
    })
}

/// PostgreSQL 15's built-in rows of `relation`, in oid order.
pub(crate) fn rows(relation: &str) -> Vec<Row> {
    let cloned = |rows: &[Row]| rows.iter().map(|r| Row(r.0.clone())).collect::<Vec<Row>>();
    match relation {
        "pg_type" => cloned(&builtins().types),
        other => builtins()
            .tables
            .get(other)
            .map(|rows| cloned(rows))
            .unwrap_or_default(),
    }
}

/// The built-in rows of `relation`, borrowed (for lookups per row).
pub(crate) fn rows_ref(relation: &str) -> &'static [Row] {
    builtins()
        .tables
        .get(relation)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(crate) fn type_info(oid: u32) -> Option<&'static TypeInfo> {
    builtins().by_oid.get(&oid)
}

/// A built-in type by its `typname` (`int4`, `_text`, `varchar`).
pub(crate) fn type_oid(typname: &str) -> Option<u32> {
    builtins().by_name.get(typname).copied()
}

/// The name of built-in function `oid` (a regproc's text).
pub(crate) fn proc_name(oid: u32) -> Option<&'static str> {
    builtins().proc_names.get(&oid).map(String::as_str)
}

/// The oid of built-in function `name` (`-`: none, 0).
pub(crate) fn proc_oid(name: &str) -> Option<u32> {
    if name == "-" {
        return Some(0);
    }
    builtins().proc_oids.get(name).copied()
}
