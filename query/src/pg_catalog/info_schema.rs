//! The rows of the information_schema views Amber builds (the SQL
//! standard's names for what pg_catalog holds); `None` for a view it does
//! not build yet, which then does not exist (42P01) rather than answer
//! with no rows.

use super::model::{RelationKind, Snapshot};
use super::relations::OWNER;
use super::{text, Row, ViewTypes};
use crate::value::types;
use datafusion::error::Result as DfResult;

const DATABASE: &str = "amber";

/// The views [`rows`] builds; the others of PostgreSQL's do not exist here.
pub(crate) const BUILT: &[&str] = &[
    "schemata",
    "tables",
    "table_privileges",
    "columns",
    "views",
    "table_constraints",
    "key_column_usage",
    "referential_constraints",
    "constraint_column_usage",
    "routines",
    "parameters",
];

/// `data_type` as information_schema spells it (arrays are `ARRAY`,
/// row types `USER-DEFINED`) and the type's udt_name.
fn data_type(s: &Snapshot, oid: u32) -> (String, String) {
    match super::builtin::type_info(oid) {
        Some(t) if t.elem != 0 && t.name.starts_with('_') => ("ARRAY".into(), t.name.clone()),
        Some(t) => (
            text::format_type(s, oid, None).unwrap_or_else(|| t.name.clone()),
            t.name.clone(),
        ),
        None => (
            "USER-DEFINED".into(),
            s.row_type(oid).map(|(_, n)| n).unwrap_or_default(),
        ),
    }
}

/// information_schema.columns' sizes of a column of type `oid` with
/// `typmod`: character_maximum_length, character_octet_length,
/// numeric_precision, numeric_precision_radix, numeric_scale,
/// datetime_precision (PostgreSQL's `_pg_char_max_length` and friends).
fn sizes(oid: u32, typmod: i32) -> [Option<i64>; 6] {
    // A character is at most 4 bytes in UTF8; 1 GB when unlimited.
    const OCTETS_MAX: i64 = 1_073_741_824;
    let m = (typmod >= 0).then(|| i64::from(typmod) - 4);
    match oid {
        types::VARCHAR | types::BPCHAR | types::TEXT => [
            m,
            Some(m.map(|n| n * 4).unwrap_or(OCTETS_MAX)),
            None,
            None,
            None,
            None,
        ],
        types::INT2 => [None, None, Some(16), Some(2), Some(0), None],
        types::INT4 => [None, None, Some(32), Some(2), Some(0), None],
        types::INT8 => [None, None, Some(64), Some(2), Some(0), None],
        types::FLOAT4 => [None, None, Some(24), Some(2), None, None],
        types::FLOAT8 => [None, None, Some(53), Some(2), None, None],
        types::NUMERIC => [
            None,
            None,
            m.map(|m| (m >> 16) & 0xffff),
            Some(10),
            m.map(|m| m & 0xffff),
            None,
        ],
        types::DATE => [None, None, None, None, None, Some(0)],
        types::TIMESTAMP | types::TIMESTAMPTZ => [
            None,
            None,
            None,
            None,
            None,
            Some(if typmod >= 0 { typmod.into() } else { 6 }),
        ],
        _ => [None; 6],
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "YES"
    } else {
        "NO"
    }
}

pub(crate) fn rows(s: &Snapshot, view: &str, view_types: &ViewTypes) -> DfResult<Option<Vec<Row>>> {
    if !BUILT.contains(&view) {
        return Ok(None);
    }
    let rows = match view {
        "schemata" => s
            .schemas()
            .into_iter()
            .filter(|(_, name, _)| name != "pg_toast")
            .map(|(_, name, _)| {
                Row::new()
                    .set("catalog_name", DATABASE)
                    .set("schema_name", name)
                    .set("schema_owner", OWNER)
            })
            .collect(),
        "tables" => s
            .relations()
            .map(|r| {
                let is_table = r.class().is_some();
                Row::new()
                    .set("table_catalog", DATABASE)
                    .set("table_schema", r.schema())
                    .set("table_name", r.name())
                    .set("table_type", if is_table { "BASE TABLE" } else { "VIEW" })
                    .set("is_insertable_into", yes(is_table))
                    .set("is_typed", "NO")
            })
            .collect(),
        // The owner's privileges on each table and view, as PostgreSQL
        // lists them (Amber has one role, which owns everything).
        "table_privileges" => s
            .relations()
            .flat_map(|r| {
                [
                    "DELETE",
                    "INSERT",
                    "REFERENCES",
                    "SELECT",
                    "TRIGGER",
                    "TRUNCATE",
                    "UPDATE",
                ]
                .into_iter()
                .map(move |privilege| {
                    Row::new()
                        .set("grantor", super::relations::OWNER)
                        .set("grantee", super::relations::OWNER)
                        .set("table_catalog", DATABASE)
                        .set("table_schema", r.schema())
                        .set("table_name", r.name())
                        .set("privilege_type", privilege)
                        .set("is_grantable", "YES")
                        .set("with_hierarchy", yes(privilege == "SELECT"))
                })
            })
            .collect(),
        "columns" => {
            let mut rows = Vec::new();
            for r in s.relations() {
                for a in r.attributes(r.view_types(view_types)) {
                    let (dt, udt) = data_type(s, a.type_oid);
                    let [char_max, octets, precision, radix, scale, dt_precision] =
                        sizes(a.type_oid, a.typmod);
                    rows.push(
                        Row::new()
                            .set("character_maximum_length", char_max)
                            .set("character_octet_length", octets)
                            .set("numeric_precision", precision)
                            .set("numeric_precision_radix", radix)
                            .set("numeric_scale", scale)
                            .set("datetime_precision", dt_precision)
                            .set("table_catalog", DATABASE)
                            .set("table_schema", r.schema())
                            .set("table_name", r.name())
                            .set("column_name", a.name.clone())
                            .set("ordinal_position", i64::from(a.num))
                            .set("column_default", a.default.map(|(_, t)| t))
                            .set("is_nullable", yes(!a.not_null))
                            .set("data_type", dt)
                            .set("udt_catalog", DATABASE)
                            .set("udt_schema", "pg_catalog")
                            .set("udt_name", udt)
                            .set("dtd_identifier", i64::from(a.num).to_string())
                            .set("is_self_referencing", "NO")
                            .set("is_identity", yes(!a.identity.is_empty()))
                            .set(
                                "identity_generation",
                                match a.identity {
                                    "a" => Some("ALWAYS".to_string()),
                                    "d" => Some("BY DEFAULT".to_string()),
                                    _ => None,
                                },
                            )
                            .set("is_generated", "NEVER")
                            .set("is_updatable", yes(r.class().is_some())),
                    );
                }
            }
            rows
        }
        "views" => s
            .relations()
            .filter_map(|r| match r.kind {
                RelationKind::View(v) => Some(
                    Row::new()
                        .set("table_catalog", DATABASE)
                        .set("table_schema", r.schema())
                        .set("table_name", v.name.clone())
                        .set("view_definition", format!(" {};", v.sql))
                        .set("check_option", "NONE")
                        .set("is_updatable", "NO")
                        .set("is_insertable_into", "NO")
                        .set("is_trigger_updatable", "NO")
                        .set("is_trigger_deletable", "NO")
                        .set("is_trigger_insertable_into", "NO"),
                ),
                RelationKind::Table(_) => None,
            })
            .collect(),
        "table_constraints" => {
            let mut rows = Vec::new();
            for r in s.relations() {
                let base = |name: &str, kind: &str| {
                    Row::new()
                        .set("constraint_catalog", DATABASE)
                        .set("constraint_schema", r.schema())
                        .set("constraint_name", name)
                        .set("table_catalog", DATABASE)
                        .set("table_schema", r.schema())
                        .set("table_name", r.name())
                        .set("constraint_type", kind)
                        .set("is_deferrable", "NO")
                        .set("initially_deferred", "NO")
                        .set("enforced", "YES")
                };
                for i in r.indexes().iter().filter(|i| i.constraint_oid.is_some()) {
                    let kind = if i.primary { "PRIMARY KEY" } else { "UNIQUE" };
                    rows.push(base(&i.name, kind).set("nulls_distinct", "YES"));
                }
                for fk in r.foreign_keys(s) {
                    rows.push(base(&fk.name, "FOREIGN KEY"));
                }
            }
            rows
        }
        "key_column_usage" => {
            let mut rows = Vec::new();
            for r in s.relations() {
                let base = |name: &str, column: &str, position: usize| {
                    Row::new()
                        .set("constraint_catalog", DATABASE)
                        .set("constraint_schema", r.schema())
                        .set("constraint_name", name)
                        .set("table_catalog", DATABASE)
                        .set("table_schema", r.schema())
                        .set("table_name", r.name())
                        .set("column_name", column)
                        .set("ordinal_position", position as i64)
                };
                for i in r.indexes().iter().filter(|i| i.constraint_oid.is_some()) {
                    for (n, (_, column)) in i.columns.iter().enumerate() {
                        rows.push(base(&i.name, column, n + 1));
                    }
                }
                for fk in r.foreign_keys(s) {
                    rows.push(
                        base(&fk.name, &fk.column.1, 1).set("position_in_unique_constraint", 1i64),
                    );
                }
            }
            rows
        }
        "referential_constraints" => s
            .relations()
            .flat_map(|r| {
                r.foreign_keys(s).into_iter().map(move |fk| {
                    Row::new()
                        .set("constraint_catalog", DATABASE)
                        .set("constraint_schema", r.schema())
                        .set("constraint_name", fk.name.clone())
                        .set("unique_constraint_catalog", DATABASE)
                        .set("unique_constraint_schema", fk.target_schema.clone())
                        .set("unique_constraint_name", fk.target_index_name.clone())
                        .set("match_option", "NONE")
                        .set("update_rule", "NO ACTION")
                        .set(
                            "delete_rule",
                            match fk.on_delete {
                                amber_catalog::OnDelete::NoAction => "NO ACTION",
                                amber_catalog::OnDelete::Cascade => "CASCADE",
                                amber_catalog::OnDelete::SetNull => "SET NULL",
                            },
                        )
                })
            })
            .collect(),
        "constraint_column_usage" => {
            let mut rows = Vec::new();
            for r in s.relations() {
                let base = |schema: &str, table: &str, column: &str, name: &str| {
                    Row::new()
                        .set("table_catalog", DATABASE)
                        .set("table_schema", schema)
                        .set("table_name", table)
                        .set("column_name", column)
                        .set("constraint_catalog", DATABASE)
                        .set("constraint_schema", r.schema())
                        .set("constraint_name", name)
                };
                for i in r.indexes().iter().filter(|i| i.constraint_oid.is_some()) {
                    for (_, column) in &i.columns {
                        rows.push(base(r.schema(), &r.name(), column, &i.name));
                    }
                }
                for fk in r.foreign_keys(s) {
                    rows.push(base(
                        &fk.target_schema,
                        &fk.target_table,
                        &fk.target_column.1,
                        &fk.name,
                    ));
                }
            }
            rows
        }
        "routines" => s
            .functions()
            .into_iter()
            .map(|f| {
                let (dt, udt) = data_type(s, f.result);
                let specific = format!("{}_{}", f.name, f.oid);
                Row::new()
                    .set("specific_catalog", DATABASE)
                    .set("specific_schema", f.module.name.clone())
                    .set("specific_name", specific)
                    .set("routine_catalog", DATABASE)
                    .set("routine_schema", f.module.name.clone())
                    .set("routine_name", f.name.clone())
                    .set("routine_type", "FUNCTION")
                    .set(
                        "data_type",
                        if f.result == 2278 { "void".into() } else { dt },
                    )
                    .set("type_udt_catalog", DATABASE)
                    .set("type_udt_schema", "pg_catalog")
                    .set("type_udt_name", udt)
                    .set("routine_body", "EXTERNAL")
                    .set("external_language", "PYTHON")
                    .set("parameter_style", "GENERAL")
                    .set("is_deterministic", "NO")
                    .set("sql_data_access", "MODIFIES")
                    .set("is_null_call", "NO")
                    .set("schema_level_routine", "YES")
                    .set("security_type", "INVOKER")
                    .set("is_user_defined_cast", "NO")
                    .set("is_implicitly_invocable", "NO")
                    .set("as_locator", "NO")
            })
            .collect(),
        "parameters" => {
            let mut rows = Vec::new();
            for f in s.functions() {
                for (n, (name, t)) in f.args.iter().enumerate() {
                    let (dt, udt) = data_type(s, *t);
                    rows.push(
                        Row::new()
                            .set("specific_catalog", DATABASE)
                            .set("specific_schema", f.module.name.clone())
                            .set("specific_name", format!("{}_{}", f.name, f.oid))
                            .set("ordinal_position", n as i64 + 1)
                            .set("parameter_mode", "IN")
                            .set("is_result", "NO")
                            .set("as_locator", "NO")
                            .set("parameter_name", name.clone())
                            .set("data_type", dt)
                            .set("udt_catalog", DATABASE)
                            .set("udt_schema", "pg_catalog")
                            .set("udt_name", udt)
                            .set("dtd_identifier", (n + 1).to_string()),
                    );
                }
            }
            rows
        }
        _ => return Ok(None),
    };
    Ok(Some(rows))
}
