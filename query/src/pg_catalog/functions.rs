//! PostgreSQL's catalog functions over a statement's [`Snapshot`]:
//! visibility (`pg_table_is_visible` really follows search_path),
//! `format_type`, `pg_get_*def`, descriptions, privileges, `to_reg*` and
//! the printers of reg* casts (`rewrite.rs`). Built only when a statement
//! names one ([`function`]).

use super::builtin::{self, SUPERUSER};
use super::model::{RelationKind, Snapshot};
use super::rewrite::{REGCLASS_IN, REGCLASS_OUT, REGNAMESPACE_OUT, REGPROC_OUT, REGTYPE_OUT};
use super::{text, Cell};
use datafusion::arrow::array::{ArrayRef, BooleanBuilder, StringBuilder, UInt32Builder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// What a catalog function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Returns {
    Text,
    Bool,
    Oid,
    Bigint,
}

/// Every catalog function: (name, what it returns).
const FUNCTIONS: &[(&str, Returns)] = &[
    ("pg_table_is_visible", Returns::Bool),
    ("pg_type_is_visible", Returns::Bool),
    ("pg_function_is_visible", Returns::Bool),
    ("format_type", Returns::Text),
    ("pg_get_userbyid", Returns::Text),
    ("obj_description", Returns::Text),
    ("col_description", Returns::Text),
    ("shobj_description", Returns::Text),
    ("pg_get_expr", Returns::Text),
    ("pg_get_indexdef", Returns::Text),
    ("pg_get_constraintdef", Returns::Text),
    ("pg_get_viewdef", Returns::Text),
    ("pg_get_function_result", Returns::Text),
    ("pg_get_function_arguments", Returns::Text),
    ("pg_get_function_identity_arguments", Returns::Text),
    ("pg_get_serial_sequence", Returns::Text),
    ("pg_get_partkeydef", Returns::Text),
    ("pg_get_statisticsobjdef", Returns::Text),
    ("pg_get_statisticsobjdef_columns", Returns::Text),
    ("pg_get_triggerdef", Returns::Text),
    ("pg_get_ruledef", Returns::Text),
    ("pg_get_partition_constraintdef", Returns::Text),
    ("pg_get_function_sqlbody", Returns::Text),
    ("pg_encoding_to_char", Returns::Text),
    ("quote_ident", Returns::Text),
    ("to_regclass", Returns::Oid),
    ("to_regtype", Returns::Oid),
    ("to_regnamespace", Returns::Oid),
    ("has_table_privilege", Returns::Bool),
    ("has_schema_privilege", Returns::Bool),
    ("has_database_privilege", Returns::Bool),
    ("has_column_privilege", Returns::Bool),
    ("has_any_column_privilege", Returns::Bool),
    ("has_function_privilege", Returns::Bool),
    ("has_sequence_privilege", Returns::Bool),
    ("has_type_privilege", Returns::Bool),
    ("pg_has_role", Returns::Bool),
    ("pg_relation_is_publishable", Returns::Bool),
    ("pg_operator_is_visible", Returns::Bool),
    ("pg_opclass_is_visible", Returns::Bool),
    ("pg_opfamily_is_visible", Returns::Bool),
    ("pg_collation_is_visible", Returns::Bool),
    ("pg_conversion_is_visible", Returns::Bool),
    ("pg_ts_config_is_visible", Returns::Bool),
    ("pg_ts_dict_is_visible", Returns::Bool),
    ("pg_ts_parser_is_visible", Returns::Bool),
    ("pg_ts_template_is_visible", Returns::Bool),
    ("pg_statistics_obj_is_visible", Returns::Bool),
    ("pg_tablespace_location", Returns::Text),
    ("pg_size_pretty", Returns::Text),
    ("pg_table_size", Returns::Bigint),
    ("pg_relation_size", Returns::Bigint),
    ("pg_total_relation_size", Returns::Bigint),
    ("pg_indexes_size", Returns::Bigint),
    ("pg_stat_get_numscans", Returns::Bigint),
    (REGCLASS_OUT, Returns::Text),
    (REGCLASS_IN, Returns::Oid),
    (REGTYPE_OUT, Returns::Text),
    (REGPROC_OUT, Returns::Text),
    (REGNAMESPACE_OUT, Returns::Text),
];

/// Whether `name` (unqualified) is a catalog function.
pub(crate) fn is_catalog_function(name: &str) -> bool {
    FUNCTIONS.iter().any(|(n, _)| *n == name)
}

/// The catalog function `name` over `snapshot`, if there is one.
pub(crate) fn function(name: &str, snapshot: Arc<Snapshot>) -> Option<Arc<ScalarUDF>> {
    let name = name.strip_prefix("pg_catalog.").unwrap_or(name);
    let (name, returns) = FUNCTIONS.iter().find(|(n, _)| *n == name)?;
    Some(Arc::new(ScalarUDF::new_from_impl(CatalogFunction {
        name,
        returns: *returns,
        snapshot,
        // Stable: computed from the statement's catalog, never folded
        // into a cached plan.
        signature: Signature::variadic_any(Volatility::Stable),
    })))
}

#[derive(Debug)]
struct CatalogFunction {
    name: &'static str,
    returns: Returns,
    snapshot: Arc<Snapshot>,
    signature: Signature,
}

impl PartialEq for CatalogFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.snapshot, &other.snapshot)
    }
}
impl Eq for CatalogFunction {}
impl std::hash::Hash for CatalogFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

/// One argument's value, as the functions read it.
#[derive(Debug, Clone)]
enum Arg {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
}

fn arg(v: ScalarValue) -> Arg {
    if v.is_null() {
        return Arg::Null;
    }
    match v {
        ScalarValue::Boolean(Some(b)) => Arg::Bool(b),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => match s.parse::<i64>() {
            Ok(i) => Arg::Int(i),
            Err(_) => Arg::Text(s),
        },
        other => match other.cast_to(&DataType::Int64) {
            Ok(ScalarValue::Int64(Some(i))) => Arg::Int(i),
            _ => Arg::Text(other.to_string()),
        },
    }
}

enum Out {
    Error(crate::error::SqlError),
    Null,
    Text(String),
    Bool(bool),
    Oid(u32),
}

impl CatalogFunction {
    fn compute(&self, args: &[Arg]) -> Out {
        let s = &self.snapshot;
        let oid = |i: usize| match args.get(i) {
            Some(Arg::Int(v)) => u32::try_from(*v).ok(),
            _ => None,
        };
        let text_arg = |i: usize| match args.get(i) {
            Some(Arg::Text(t)) => Some(t.clone()),
            Some(Arg::Int(v)) => Some(v.to_string()),
            _ => None,
        };
        if args.first().is_some_and(|a| matches!(a, Arg::Null)) && !self.name.starts_with("has_") {
            return Out::Null;
        }
        let text_or_null = |t: Option<String>| t.map(Out::Text).unwrap_or(Out::Null);
        match self.name {
            "pg_table_is_visible" => match oid(0) {
                Some(o) => Out::Bool(s.relation_visible(o).unwrap_or(o < 16384)),
                None => Out::Null,
            },
            "pg_type_is_visible" => match oid(0) {
                Some(o) if builtin::type_info(o).is_some() => Out::Bool(true),
                Some(o) => match s.relations().find(|r| r.type_oid() == o) {
                    Some(r) => Out::Bool(s.relation_visible(r.oid()).unwrap_or(false)),
                    None => Out::Null,
                },
                None => Out::Null,
            },
            "pg_function_is_visible" => match oid(0) {
                Some(o) => Out::Bool(
                    s.functions()
                        .iter()
                        .find(|f| f.oid == o)
                        .is_some_and(|f| s.search_path.contains(&f.module.name)),
                ),
                None => Out::Null,
            },
            "format_type" => match oid(0) {
                Some(o) => {
                    let typmod = match args.get(1) {
                        Some(Arg::Int(m)) => i32::try_from(*m).ok(),
                        _ => None,
                    };
                    Out::Text(text::format_type(s, o, typmod).unwrap_or_else(|| "???".into()))
                }
                None => Out::Null,
            },
            "pg_get_userbyid" => match oid(0) {
                Some(SUPERUSER) => Out::Text(super::relations::OWNER.into()),
                Some(o) => builtin::rows_ref("pg_authid")
                    .iter()
                    .find(|r| matches!(r.0.get("oid"), Some(Cell::Int(v)) if *v == i64::from(o)))
                    .and_then(|r| match r.0.get("rolname") {
                        Some(Cell::Text(n)) => Some(Out::Text(n.clone())),
                        _ => None,
                    })
                    .unwrap_or_else(|| Out::Text(format!("unknown (OID={o})"))),
                None => Out::Null,
            },
            // pg_description: `obj_description(oid, 'pg_class')`,
            // `col_description(table, attnum)`.
            "obj_description" | "col_description" => {
                let Some(o) = oid(0) else { return Out::Null };
                let (class, sub) = match self.name {
                    "col_description" => (
                        Some(super::system_relation_oid("pg_catalog", "pg_class").unwrap_or(0)),
                        match args.get(1) {
                            Some(Arg::Int(n)) => *n,
                            _ => return Out::Null,
                        },
                    ),
                    _ => (
                        text_arg(1).and_then(|c| {
                            super::system_relation_oid("pg_catalog", c.trim_start_matches("pg_catalog."))
                        }),
                        0,
                    ),
                };
                text_or_null(s.description_of(o, class, sub))
            }
            // Amber has one database and its roles carry no comments.
            "shobj_description" => Out::Null,
            // Objects Amber does not have (partitions, extended
            // statistics, triggers, rules): no definition.
            "pg_get_partkeydef"
            | "pg_get_statisticsobjdef"
            | "pg_get_statisticsobjdef_columns"
            | "pg_get_triggerdef"
            | "pg_get_ruledef"
            | "pg_get_partition_constraintdef"
            // Module functions are Python, never a SQL body.
            | "pg_get_function_sqlbody" => Out::Null,
            // adbin holds the expression as PostgreSQL prints it.
            "pg_get_expr" => text_or_null(text_arg(0)),
            "pg_get_indexdef" => {
                let Some(o) = oid(0) else { return Out::Null };
                let column = match args.get(1) {
                    Some(Arg::Int(c)) => *c,
                    _ => 0,
                };
                for r in s.relations() {
                    if let Some(i) = r.indexes().into_iter().find(|i| i.oid == o) {
                        if column > 0 {
                            let name = usize::try_from(column - 1)
                                .ok()
                                .and_then(|c| i.columns.get(c))
                                .map(|(_, n)| text::quote_ident(n));
                            return text_or_null(name);
                        }
                        return Out::Text(text::index_def(&r, &i));
                    }
                }
                Out::Null
            }
            "pg_get_constraintdef" => {
                let Some(o) = oid(0) else { return Out::Null };
                for r in s.relations() {
                    if let Some(i) = r
                        .indexes()
                        .into_iter()
                        .find(|i| i.constraint_oid == Some(o))
                    {
                        return Out::Text(text::key_def(&i));
                    }
                    if let Some(k) = r
                        .class()
                        .and_then(|c| c.checks.iter().find(|k| k.oid == o))
                    {
                        let pretty = matches!(args.get(1), Some(Arg::Bool(true)));
                        return Out::Text(text::check_def(&k.expr, pretty));
                    }
                    if let Some(fk) = r.foreign_keys(s).into_iter().find(|f| f.oid == o) {
                        let visible = s.relation_visible(fk.target) == Some(true);
                        return Out::Text(text::fkey_def(&fk, visible));
                    }
                }
                Out::Null
            }
            "pg_get_viewdef" => {
                let Some(o) = oid(0) else { return Out::Null };
                match s.relations().find(|r| r.oid() == o).map(|r| r.kind) {
                    Some(RelationKind::View(v)) => Out::Text(format!(" {};", v.sql)),
                    _ => Out::Null,
                }
            }
            "pg_get_function_result"
            | "pg_get_function_arguments"
            | "pg_get_function_identity_arguments" => {
                let Some(o) = oid(0) else { return Out::Null };
                match s.functions().into_iter().find(|f| f.oid == o) {
                    Some(f) if self.name == "pg_get_function_result" => {
                        Out::Text(text::function_result(s, &f))
                    }
                    Some(f) => Out::Text(text::function_arguments(s, &f)),
                    None => Out::Null,
                }
            }
            "pg_get_serial_sequence" => {
                let (Some(table), Some(column)) = (text_arg(0), text_arg(1)) else {
                    return Out::Null;
                };
                let (schema, name) = match table.split_once('.') {
                    Some((a, b)) => (Some(a.to_string()), b.to_string()),
                    None => (None, table),
                };
                let Some(rel) = s.relation_oid(schema.as_deref(), &name) else {
                    return Out::Null;
                };
                s.relations()
                    .find(|r| r.oid() == rel)
                    .and_then(|r| {
                        let c = r.class()?.columns.iter().find(|c| c.name == column)?;
                        c.sequence?;
                        Some(text::qualified(r.schema(), &format!("{name}_{column}_seq")))
                    })
                    .map(Out::Text)
                    .unwrap_or(Out::Null)
            }
            "pg_encoding_to_char" => Out::Text(
                match oid(0) {
                    Some(6) => "UTF8",
                    Some(0) => "SQL_ASCII",
                    _ => "",
                }
                .into(),
            ),
            "quote_ident" => text_or_null(text_arg(0).map(|t| text::quote_ident(&t))),
            "to_regclass" | "to_regtype" | "to_regnamespace" => {
                let Some(t) = text_arg(0) else {
                    return Out::Null;
                };
                let found = match self.name {
                    "to_regclass" => {
                        let parts: Vec<&str> = t.split('.').collect();
                        match parts.as_slice() {
                            [n] => s.relation_oid(None, &n.to_lowercase()),
                            [sc, n] => s.relation_oid(Some(&sc.to_lowercase()), &n.to_lowercase()),
                            _ => None,
                        }
                    }
                    "to_regtype" => builtin::type_oid(&t.to_lowercase()),
                    _ => s
                        .schemas()
                        .into_iter()
                        .find(|(_, n, _)| *n == t)
                        .map(|(o, _, _)| o),
                };
                found.map(Out::Oid).unwrap_or(Out::Null)
            }
            name if name.starts_with("has_") || name == "pg_has_role" => Out::Bool(true),
            // Objects of these kinds are all PostgreSQL's built-ins, in
            // pg_catalog, which is always searched.
            name if name.ends_with("_is_visible") => Out::Bool(true),
            // pg_default and pg_global: in the data directory.
            "pg_tablespace_location" => Out::Text(String::new()),
            "pg_size_pretty" => match args.first() {
                Some(Arg::Int(bytes)) => Out::Text(size_pretty(*bytes)),
                _ => Out::Null,
            },
            // Amber keeps no per-table size (objects share one LSM tree):
            // unknown, never a made-up number.
            "pg_table_size" | "pg_relation_size" | "pg_total_relation_size" | "pg_indexes_size" => {
                Out::Null
            }
            "pg_relation_is_publishable" => match oid(0) {
                Some(o) => Out::Bool(s.relations().any(|r| r.oid() == o && r.class().is_some())),
                None => Out::Null,
            },
            // `$1::regclass`: a relation's name (or oid) to its oid.
            REGCLASS_IN => match (oid(0), text_arg(0)) {
                (Some(o), _) => Out::Oid(o),
                (None, Some(t)) => match super::rewrite::regclass_oid(s, &t) {
                    Ok(o) => Out::Oid(o),
                    Err(e) => Out::Error(e),
                },
                (None, None) => Out::Null,
            },
            REGCLASS_OUT => match oid(0) {
                Some(o) => Out::Text(regclass_name(s, o)),
                None => Out::Null,
            },
            REGTYPE_OUT => match oid(0) {
                Some(o) => {
                    Out::Text(text::format_type(s, o, None).unwrap_or_else(|| o.to_string()))
                }
                None => Out::Null,
            },
            REGPROC_OUT => match oid(0) {
                Some(0) => Out::Text("-".into()),
                Some(o) => Out::Text(
                    s.functions()
                        .into_iter()
                        .find(|f| f.oid == o)
                        .map(|f| f.name)
                        .or_else(|| builtin::proc_name(o).map(str::to_string))
                        .unwrap_or_else(|| o.to_string()),
                ),
                None => Out::Null,
            },
            REGNAMESPACE_OUT => match oid(0) {
                Some(o) => Out::Text(s.schema_name(o).unwrap_or_else(|| o.to_string())),
                None => Out::Null,
            },
            _ => Out::Null,
        }
    }
}

/// `pg_size_pretty(bigint)` as PostgreSQL 15's dbsize.c: bytes below
/// 10 kB, else the largest unit keeping the value below 20480 halves,
/// rounded half away from zero.
fn size_pretty(bytes: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    const LIMIT2: i64 = LIMIT * 2 - 1;
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    if bytes.abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    // One extra bit kept for rounding.
    let mut size = bytes >> 9;
    for unit in ["kB", "MB", "GB", "TB"] {
        if size.abs() < LIMIT2 {
            return format!("{} {unit}", half_rounded(size));
        }
        size >>= 10;
    }
    format!("{} PB", half_rounded(size))
}

/// A relation's name as `::regclass` prints it: qualified unless visible.
fn regclass_name(s: &Snapshot, oid: u32) -> String {
    for r in s.relations() {
        let named = if r.oid() == oid {
            Some(r.name())
        } else {
            r.indexes()
                .into_iter()
                .find(|i| i.oid == oid)
                .map(|i| i.name)
        };
        if let Some(name) = named {
            return if s.relation_visible(oid) == Some(true) {
                text::quote_ident(&name)
            } else {
                text::qualified(r.schema(), &name)
            };
        }
    }
    // PostgreSQL's own catalogs: pg_catalog is always on the path.
    match super::system_relation_name(oid) {
        Some(("pg_catalog", name)) => text::quote_ident(name),
        Some((schema, name)) => text::qualified(schema, name),
        None => oid.to_string(),
    }
}

impl ScalarUDFImpl for CatalogFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(match self.returns {
            Returns::Text => DataType::Utf8,
            Returns::Bool => DataType::Boolean,
            Returns::Oid => DataType::UInt32,
            Returns::Bigint => DataType::Int64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let all_scalar = crate::udf::all_scalar(&args.args);
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<DfResult<_>>()?;
        let n = if all_scalar { 1 } else { rows };
        let mut outs = Vec::with_capacity(n);
        for row in 0..n {
            let values = arrays
                .iter()
                .map(|a| ScalarValue::try_from_array(a, row).map(arg))
                .collect::<DfResult<Vec<_>>>()?;
            match self.compute(&values) {
                Out::Error(e) => return Err(e.into()),
                o => outs.push(o),
            }
        }
        let array: ArrayRef = match self.returns {
            Returns::Text => {
                let mut b = StringBuilder::new();
                for o in outs {
                    match o {
                        Out::Text(t) => b.append_value(t),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            Returns::Bool => {
                let mut b = BooleanBuilder::new();
                for o in outs {
                    match o {
                        Out::Bool(v) => b.append_value(v),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            // No function computes a bigint yet (sizes are unknown).
            Returns::Bigint => {
                datafusion::arrow::array::new_null_array(&DataType::Int64, outs.len())
            }
            Returns::Oid => {
                let mut b = UInt32Builder::new();
                for o in outs {
                    match o {
                        Out::Oid(v) => b.append_value(v),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
        };
        if !all_scalar && array.len() != rows {
            return Err(DataFusionError::Internal(format!(
                "{}: {} results for {rows} rows",
                self.name,
                array.len()
            )));
        }
        crate::udf::result(array, all_scalar)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_print_as_postgresql_prints_them() {
        // Answers of PostgreSQL 15's pg_size_pretty.
        for (bytes, text) in [
            (0, "0 bytes"),
            (8192, "8192 bytes"),
            (10239, "10239 bytes"),
            (10240, "10 kB"),
            (1_000_000, "977 kB"),
            (123_456_789, "118 MB"),
            (-123_456_789, "-118 MB"),
            (1 << 50, "1024 TB"),
            (i64::MAX, "8192 PB"),
        ] {
            assert_eq!(super::size_pretty(bytes), text, "{bytes}");
        }
    }
}
