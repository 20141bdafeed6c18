//! `pg_catalog` and `information_schema`, computed from Amber's own
//! catalog: the modules a statement's transaction sees (so a query reads
//! the catalog as of its snapshot, its block's own DDL included).
//!
//! - `columns.rs` (generated from PostgreSQL 15): every relation's exact
//!   column set, since tools select `c.*`;
//! - `builtin.rs`: PostgreSQL's built-in rows (types, access methods,
//!   collations, ranges, languages), dumped from PostgreSQL 15;
//! - `model.rs`: Amber's objects as PostgreSQL sees them (schemas,
//!   relations with attnums, keys, defaults, functions) and their oids;
//! - `relations.rs` / `info_schema.rs`: the rows of each relation;
//! - `text.rs`: what `format_type`, `pg_get_indexdef`,
//!   `pg_get_constraintdef`, ... print; `functions.rs`: those functions;
//! - `rewrite.rs`: PostgreSQL syntax clients send that DataFusion lacks
//!   (`::regclass`, `OPERATOR(pg_catalog.~)`, `COLLATE`).
//!
//! A relation is built only when a statement names it, from the modules
//! the statement resolved (every module, see `modules.rs`).

pub(crate) mod builtin;
mod columns;
pub(crate) mod functions;
mod info_schema;
pub(crate) mod model;
mod relations;
pub(crate) mod rewrite;
pub(crate) mod text;

use crate::value::types::PG_TYPE_KEY;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder,
    Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt32Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) use model::Snapshot;

/// The type a catalog column is computed as (columns.rs names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Oid,
    Regproc,
    Regtype,
    Xid,
    Name,
    Text,
    Varchar,
    Char,
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    OidArray,
    Int2Vector,
    OidVector,
    TextArray,
    NameArray,
    CharArray,
    Int2Array,
    Acl,
    NodeTree,
    Timestamptz,
    Bytea,
}

/// A catalog relation PostgreSQL 15 has: its name, oid and columns.
pub(crate) type Relation = (&'static str, u32, &'static [(&'static str, Col)]);

/// One value of a catalog row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Ints(Vec<i64>),
    Texts(Vec<String>),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}
impl From<bool> for Cell {
    fn from(b: bool) -> Cell {
        Cell::Bool(b)
    }
}
impl From<u32> for Cell {
    fn from(v: u32) -> Cell {
        Cell::Int(v.into())
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Cell {
        Cell::Int(v)
    }
}
impl From<i32> for Cell {
    fn from(v: i32) -> Cell {
        Cell::Int(v.into())
    }
}
impl From<Option<i64>> for Cell {
    fn from(v: Option<i64>) -> Cell {
        v.map_or(Cell::Null, Cell::Int)
    }
}
impl From<Option<String>> for Cell {
    fn from(v: Option<String>) -> Cell {
        v.map(Cell::Text).unwrap_or(Cell::Null)
    }
}

/// A row being built: cells by column name; columns not set are NULL.
#[derive(Debug, Default)]
pub(crate) struct Row(HashMap<&'static str, Cell>);

impl Row {
    pub(crate) fn new() -> Row {
        Row(HashMap::new())
    }

    pub(crate) fn set(mut self, column: &'static str, value: impl Into<Cell>) -> Row {
        self.0.insert(column, value.into());
        self
    }
}

/// The column set of `schema.name` (PostgreSQL 15's), if Amber serves it.
pub(crate) fn columns_of(schema: &str, name: &str) -> Option<&'static [(&'static str, Col)]> {
    let list = match schema {
        "pg_catalog" => columns::PG_CATALOG,
        "information_schema" => columns::INFORMATION_SCHEMA,
        _ => return None,
    };
    list.iter().find(|(n, _, _)| *n == name).map(|(_, _, c)| *c)
}

/// PostgreSQL's oid of the catalog relation `schema.name` (what
/// `'pg_class'::regclass` gives; `pg_description.classoid` holds them).
/// `(schema, name)` of the catalog relation with `oid`, if Amber serves it.
pub(crate) fn system_relation_name(oid: u32) -> Option<(&'static str, &'static str)> {
    [
        ("pg_catalog", columns::PG_CATALOG),
        ("information_schema", columns::INFORMATION_SCHEMA),
    ]
    .into_iter()
    .find_map(|(schema, list)| {
        list.iter()
            .find(|(_, o, _)| *o == oid)
            .map(|(name, _, _)| (schema, *name))
    })
}

pub(crate) fn system_relation_oid(schema: &str, name: &str) -> Option<u32> {
    let list = match schema {
        "pg_catalog" => columns::PG_CATALOG,
        "information_schema" => columns::INFORMATION_SCHEMA,
        _ => return None,
    };
    list.iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, oid, _)| *oid)
}

/// Whether `schema` is one of the catalog's own (pg_catalog,
/// information_schema): its relations and functions are built here.
pub(crate) fn is_catalog_schema(schema: &str) -> bool {
    schema == "pg_catalog" || schema == "information_schema"
}

/// Whether an unqualified `name` is a pg_catalog relation (which
/// PostgreSQL finds before any schema of search_path).
pub(crate) fn is_pg_catalog_relation(name: &str) -> bool {
    columns_of("pg_catalog", name).is_some()
}

fn arrow_type(col: Col) -> (DataType, Option<&'static str>) {
    let list = |dt: DataType, meta: Option<&'static str>| {
        let mut f = Field::new("item", dt, true);
        if let Some(m) = meta {
            f = f.with_metadata(HashMap::from([(PG_TYPE_KEY.to_string(), m.to_string())]));
        }
        DataType::List(Arc::new(f))
    };
    match col {
        Col::Oid | Col::Regtype | Col::Xid => (DataType::UInt32, None),
        // An oid (joins with pg_proc.oid), printed as the function's name.
        Col::Regproc => (DataType::UInt32, Some("regproc")),
        Col::Name => (DataType::Utf8, Some("name")),
        Col::Text => (DataType::Utf8, None),
        Col::Varchar => (DataType::Utf8, Some("varchar")),
        Col::Char => (DataType::Utf8, Some("char")),
        Col::NodeTree => (DataType::Utf8, Some("pg_node_tree")),
        Col::Bool => (DataType::Boolean, None),
        Col::Int2 => (DataType::Int16, None),
        Col::Int4 => (DataType::Int32, None),
        Col::Int8 => (DataType::Int64, None),
        Col::Float4 => (DataType::Float32, None),
        Col::Float8 => (DataType::Float64, None),
        Col::Timestamptz => (
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            None,
        ),
        Col::Bytea => (DataType::Binary, None),
        Col::OidArray => (list(DataType::UInt32, None), None),
        Col::Int2Vector => (list(DataType::Int16, None), Some("int2vector")),
        Col::OidVector => (list(DataType::UInt32, None), Some("oidvector")),
        Col::TextArray | Col::Acl => (list(DataType::Utf8, None), None),
        Col::NameArray => (list(DataType::Utf8, Some("name")), None),
        Col::CharArray => (list(DataType::Utf8, Some("char")), None),
        Col::Int2Array => (list(DataType::Int16, None), None),
    }
}

pub(crate) fn schema_of(columns: &[(&'static str, Col)], relation_oid: u32) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, col))| {
            let (dt, meta) = arrow_type(*col);
            let f = Field::new(*name, dt, true);
            let f = match meta {
                Some(m) => {
                    f.with_metadata(HashMap::from([(PG_TYPE_KEY.to_string(), m.to_string())]))
                }
                None => f,
            };
            let attnum = i16::try_from(i + 1).unwrap_or(i16::MAX);
            crate::column_source::with_source(f, relation_oid, attnum)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn bad_cell(table: &str, column: &str, cell: &Cell) -> DataFusionError {
    DataFusionError::Internal(format!("catalog {table}.{column}: cannot hold {cell:?}"))
}

/// One column of `rows` as Arrow, computed as `col`.
fn column(table: &str, name: &'static str, col: Col, rows: &[Row]) -> DfResult<ArrayRef> {
    let cells = rows.iter().map(|r| r.0.get(name).unwrap_or(&Cell::Null));
    macro_rules! scalar {
        ($builder:expr, $($pat:pat => $v:expr),+) => {{
            let mut b = $builder;
            for cell in cells {
                match cell {
                    Cell::Null => b.append_null(),
                    $($pat => b.append_value($v),)+
                    other => return Err(bad_cell(table, name, other)),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    macro_rules! list {
        ($inner:expr, $pat:pat => $items:expr) => {{
            let (dt, _) = arrow_type(col);
            let DataType::List(field) = dt else {
                return Err(DataFusionError::Internal("catalog list type".into()));
            };
            let mut b = ListBuilder::new($inner).with_field(field);
            for cell in cells {
                match cell {
                    Cell::Null => b.append_null(),
                    $pat => {
                        for v in $items {
                            b.values().append_value(v);
                        }
                        b.append(true);
                    }
                    other => return Err(bad_cell(table, name, other)),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    let int = |v: &i64, max: i64, min: i64| -> DfResult<i64> {
        if *v < min || *v > max {
            return Err(bad_cell(table, name, &Cell::Int(*v)));
        }
        Ok(*v)
    };
    Ok(match col {
        Col::Oid | Col::Regtype | Col::Xid => {
            scalar!(UInt32Builder::new(), Cell::Int(v) => int(v, u32::MAX.into(), 0)? as u32)
        }
        // Rows name the function (`array_in`, `-` for none).
        Col::Regproc => scalar!(UInt32Builder::new(),
            Cell::Int(v) => int(v, u32::MAX.into(), 0)? as u32,
            Cell::Text(s) => builtin::proc_oid(s).unwrap_or(0)),
        Col::Name | Col::Text | Col::Varchar | Col::Char | Col::NodeTree => {
            scalar!(StringBuilder::new(), Cell::Text(s) => s)
        }
        Col::Bool => scalar!(BooleanBuilder::new(), Cell::Bool(b) => *b),
        Col::Int2 => {
            scalar!(Int16Builder::new(), Cell::Int(v) => int(v, i16::MAX.into(), i16::MIN.into())? as i16)
        }
        Col::Int4 => {
            scalar!(Int32Builder::new(), Cell::Int(v) => int(v, i32::MAX.into(), i32::MIN.into())? as i32)
        }
        Col::Int8 => scalar!(Int64Builder::new(), Cell::Int(v) => *v),
        Col::Float4 => scalar!(Float32Builder::new(), Cell::Float(v) => *v as f32),
        Col::Float8 => scalar!(Float64Builder::new(), Cell::Float(v) => *v),
        Col::Timestamptz => {
            let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
            for cell in cells {
                match cell {
                    Cell::Null => b.append_null(),
                    Cell::Int(v) => b.append_value(*v),
                    other => return Err(bad_cell(table, name, other)),
                }
            }
            Arc::new(b.finish())
        }
        Col::Bytea => {
            scalar!(datafusion::arrow::array::BinaryBuilder::new(), Cell::Text(s) => s.as_bytes())
        }
        Col::OidArray | Col::OidVector => {
            list!(UInt32Builder::new(), Cell::Ints(v) => v.iter().map(|x| *x as u32))
        }
        Col::Int2Vector | Col::Int2Array => {
            list!(Int16Builder::new(), Cell::Ints(v) => v.iter().map(|x| *x as i16))
        }
        Col::TextArray | Col::NameArray | Col::CharArray | Col::Acl => {
            list!(StringBuilder::new(), Cell::Texts(v) => v.iter())
        }
    })
}

/// `rows` as a batch of `columns`; a cell set under a name the relation
/// does not have is an internal error (a typo would otherwise be a NULL).
pub(crate) fn batch(
    table: &str,
    relation_oid: u32,
    columns: &'static [(&'static str, Col)],
    rows: &[Row],
) -> DfResult<RecordBatch> {
    for row in rows {
        if let Some(unknown) = row.0.keys().find(|k| !columns.iter().any(|(c, _)| c == *k)) {
            return Err(DataFusionError::Internal(format!(
                "catalog {table} has no column {unknown}"
            )));
        }
    }
    let arrays = columns
        .iter()
        .map(|(name, col)| column(table, name, *col, rows))
        .collect::<DfResult<Vec<_>>>()?;
    Ok(RecordBatch::try_new(
        schema_of(columns, relation_oid),
        arrays,
    )?)
}

/// The column types of views, by (schema, view): planned by the caller
/// (only for the relations that list columns, [`lists_columns`]).
pub(crate) type ViewTypes = HashMap<(String, String), Vec<u32>>;

/// Whether `schema.name` lists the columns of views (which need their
/// types, so their queries planned).
pub(crate) fn lists_columns(schema: &str, name: &str) -> bool {
    matches!(
        (schema, name),
        ("pg_catalog", "pg_attribute") | ("information_schema", "columns")
    )
}

/// The relation `schema.name` as of `snapshot`, if Amber serves it.
pub(crate) fn table(
    snapshot: &Snapshot,
    schema: &str,
    name: &str,
    view_types: &ViewTypes,
) -> DfResult<Option<Arc<dyn TableProvider>>> {
    let Some(columns) = columns_of(schema, name) else {
        return Ok(None);
    };
    let rows = match schema {
        "pg_catalog" => relations::rows(snapshot, name, view_types)?,
        _ => match info_schema::rows(snapshot, name, view_types)? {
            Some(rows) => rows,
            // Not built: an honest "does not exist" rather than no rows.
            None => return Ok(None),
        },
    };
    let relation_oid = system_relation_oid(schema, name).unwrap_or(0);
    let batch = batch(name, relation_oid, columns, &rows)?;
    Ok(Some(Arc::new(MemTable::try_new(
        batch.schema(),
        vec![vec![batch]],
    )?)))
}
