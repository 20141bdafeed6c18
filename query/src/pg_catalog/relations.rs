//! The rows of the pg_catalog relations, from a [`Snapshot`]. Relations
//! this file does not fill are empty (Amber has no triggers, policies,
//! publications, extensions, ...); the README lists the gaps.

use super::builtin::SUPERUSER;
use super::builtin::{self, BTREE_AM, DATABASE, DEFAULT_COLLATION, HEAP_AM, PYTHON_LANGUAGE};
use super::model::{RelationKind, Snapshot};
use super::{text, Cell, Row, ViewTypes};
use crate::value::types;
use datafusion::error::Result as DfResult;

/// The user every object belongs to (PostgreSQL's bootstrap superuser).
pub(crate) const OWNER: &str = "amber";

/// The equality operator of a key column's type (conpfeqop and friends).
/// pg_class's own oid (a catalog oid pg_depend and pg_description name).
const PG_CLASS: u32 = 1259;

/// PostgreSQL 15's `=` operator of a key type (pg_constraint's
/// conpfeqop and the like).
fn equality_operator(type_oid: u32) -> i64 {
    match type_oid {
        types::INT8 => 410,
        types::INT4 => 96,
        types::INT2 => 94,
        types::FLOAT4 => 620,
        // varchar compares with text's operator.
        types::TEXT | types::VARCHAR => 98,
        types::BPCHAR => 1054,
        types::NUMERIC => 1752,
        types::DATE => 1093,
        types::TIMESTAMPTZ => 1320,
        types::FLOAT8 => 670,
        types::BOOL => 91,
        types::BYTEA => 1955,
        _ => 0,
    }
}

fn ints(v: impl IntoIterator<Item = i64>) -> Cell {
    Cell::Ints(v.into_iter().collect())
}

pub(crate) fn rows(s: &Snapshot, relation: &str, view_types: &ViewTypes) -> DfResult<Vec<Row>> {
    Ok(match relation {
        "pg_namespace" => {
            let builtin = builtin::rows(relation);
            s.schemas()
                .into_iter()
                .map(|(oid, name, _)| {
                    builtin
                        .iter()
                        .find(|r| matches!(r.0.get("oid"), Some(Cell::Int(o)) if *o == i64::from(oid)))
                        .map(|r| Row(r.0.clone()))
                        .unwrap_or_else(|| {
                            Row::new()
                                .set("oid", oid)
                                .set("nspname", name)
                                .set("nspowner", SUPERUSER)
                        })
                })
                .collect()
        }
        "pg_description" => builtin::rows(relation)
            .into_iter()
            .chain(
                s.descriptions()
                    .into_iter()
                    .map(|(objoid, classoid, sub, text)| {
                        Row::new()
                            .set("objoid", objoid)
                            .set("classoid", classoid)
                            .set("objsubid", Cell::Int(sub))
                            .set("description", text)
                    }),
            )
            .collect(),
        "pg_class" => pg_class(s),
        "pg_attribute" => pg_attribute(s, view_types),
        "pg_type" => pg_type(s),
        "pg_index" => pg_index(s),
        "pg_constraint" => pg_constraint(s),
        "pg_attrdef" => pg_attrdef(s),
        "pg_proc" => pg_proc(s),
        "pg_am" | "pg_collation" | "pg_range" => builtin::rows(relation),
        "pg_language" => {
            let mut rows = builtin::rows(relation);
            rows.push(
                Row::new()
                    .set("oid", PYTHON_LANGUAGE)
                    .set("lanname", "python")
                    .set("lanowner", SUPERUSER)
                    .set("lanispl", true)
                    .set("lanpltrusted", false)
                    .set("lanplcallfoid", 0u32)
                    .set("laninline", 0u32)
                    .set("lanvalidator", 0u32),
            );
            rows
        }
        "pg_database" => vec![Row::new()
            .set("oid", DATABASE)
            .set("datname", "amber")
            .set("datdba", SUPERUSER)
            .set("encoding", 6i32)
            .set("datlocprovider", "c")
            .set("datistemplate", false)
            .set("datallowconn", true)
            .set("datconnlimit", -1i32)
            .set("datfrozenxid", 0u32)
            .set("datminmxid", 1u32)
            .set("dattablespace", 1663u32)
            .set("datcollate", "C")
            .set("datctype", "C")],
        "pg_tablespace" => vec![
            Row::new()
                .set("oid", 1663u32)
                .set("spcname", "pg_default")
                .set("spcowner", SUPERUSER),
            Row::new()
                .set("oid", 1664u32)
                .set("spcname", "pg_global")
                .set("spcowner", SUPERUSER),
        ],
        "pg_roles" | "pg_authid" => std::iter::once(
            Row::new()
                .set("oid", SUPERUSER)
                .set("rolname", OWNER)
                .set("rolsuper", true)
                .set("rolinherit", true)
                .set("rolcreaterole", true)
                .set("rolcreatedb", true)
                .set("rolcanlogin", true)
                .set("rolreplication", true)
                .set("rolconnlimit", -1i32)
                .set("rolbypassrls", true)
                .set(
                    "rolpassword",
                    if relation == "pg_roles" {
                        Cell::Text("********".into())
                    } else {
                        Cell::Null
                    },
                ),
        )
        // PostgreSQL's predefined roles; pg_roles shows every password
        // as asterisks.
        .chain(
            builtin::rows("pg_authid")
                .into_iter()
                .map(|r| match relation {
                    "pg_roles" => r.set("rolpassword", "********"),
                    _ => r,
                }),
        )
        .collect(),
        "pg_user" => vec![Row::new()
            .set("usename", OWNER)
            .set("usesysid", SUPERUSER)
            .set("usecreatedb", true)
            .set("usesuper", true)
            .set("userepl", true)
            .set("usebypassrls", true)
            .set("passwd", "********")],
        "pg_tables" => {
            let triggers = with_fk_triggers(s);
            s.relations()
                .filter(|r| r.class().is_some())
                .map(|r| {
                    Row::new()
                        .set("schemaname", r.schema())
                        .set("tablename", r.name())
                        .set("tableowner", OWNER)
                        .set("hasindexes", !r.indexes().is_empty())
                        .set("hasrules", false)
                        .set("hastriggers", triggers.contains(&r.oid()))
                        .set("rowsecurity", false)
                })
                .collect()
        }
        "pg_views" => s
            .relations()
            .filter_map(|r| match r.kind {
                RelationKind::View(v) => Some(
                    Row::new()
                        .set("schemaname", r.schema())
                        .set("viewname", v.name.clone())
                        .set("viewowner", OWNER)
                        .set("definition", format!(" {};", v.sql)),
                ),
                RelationKind::Table(_) => None,
            })
            .collect(),
        // A subclass's table inherits its parent's (SPEC §3).
        "pg_inherits" => s
            .relations()
            .filter_map(|r| {
                let parent = r.class()?.parent.as_deref()?;
                let parent = r.module.class(parent)?;
                Some(
                    Row::new()
                        .set("inhrelid", r.oid())
                        .set("inhparent", parent.oid)
                        .set("inhseqno", Cell::Int(1))
                        .set("inhdetachpending", false),
                )
            })
            .collect(),
        "pg_indexes" => s
            .relations()
            .flat_map(|r| {
                r.indexes().into_iter().map(move |i| {
                    Row::new()
                        .set("schemaname", r.schema())
                        .set("tablename", r.name())
                        .set("indexname", i.name.clone())
                        .set("indexdef", text::index_def(&r, &i))
                })
            })
            .collect(),
        "pg_settings" => crate::gucs::all()
            .map(|g| {
                let set = s.settings.contains_key(&g.name.to_lowercase());
                let vartype = match g.vartype {
                    crate::gucs::VarType::Bool => "bool",
                    crate::gucs::VarType::Integer => "integer",
                    crate::gucs::VarType::Real => "real",
                    crate::gucs::VarType::Enum => "enum",
                    crate::gucs::VarType::String => "string",
                };
                let text = |v: &str| match v {
                    "" => Cell::Null,
                    v => Cell::Text(v.to_string()),
                };
                Row::new()
                    .set("name", g.name)
                    .set("setting", crate::settings::shown(&s.settings, None, g.name))
                    .set("unit", text(g.unit))
                    .set("short_desc", g.short_desc)
                    .set("context", g.context)
                    .set("vartype", vartype)
                    .set("source", if set { "session" } else { "default" })
                    .set("min_val", text(g.min))
                    .set("max_val", text(g.max))
                    .set(
                        "enumvals",
                        match g.enumvals.is_empty() {
                            true => Cell::Null,
                            false => {
                                Cell::Texts(g.enumvals.iter().map(|v| v.to_string()).collect())
                            }
                        },
                    )
                    .set("boot_val", g.default)
                    .set("reset_val", g.default)
                    .set("pending_restart", false)
            })
            .collect(),
        "pg_stat_activity" => s
            .activity
            .backends()
            .into_iter()
            .map(|b| {
                Row::new()
                    .set("datid", DATABASE)
                    .set("datname", "amber")
                    .set("pid", b.pid)
                    .set("usesysid", SUPERUSER)
                    .set("usename", "amber")
                    .set("application_name", b.application_name)
                    .set("client_addr", b.client_addr)
                    .set("client_hostname", Option::<String>::None)
                    .set(
                        "client_port",
                        b.client_port.map_or(Cell::Null, |p| Cell::Int(p.into())),
                    )
                    .set("backend_start", Cell::Int(b.backend_start_us))
                    .set("xact_start", b.xact_start_us.map_or(Cell::Null, Cell::Int))
                    .set(
                        "query_start",
                        b.query_start_us.map_or(Cell::Null, Cell::Int),
                    )
                    .set("state_change", Cell::Int(b.state_change_us))
                    .set(
                        "wait_event_type",
                        (b.state == "idle").then(|| "Client".to_string()),
                    )
                    .set(
                        "wait_event",
                        (b.state == "idle").then(|| "ClientRead".to_string()),
                    )
                    .set("state", b.state)
                    .set("query", b.query)
                    .set("backend_type", "client backend")
            })
            .collect(),
        "pg_stat_user_tables" | "pg_stat_all_tables" | "pg_statio_user_tables" => s
            .relations()
            .filter(|r| r.class().is_some())
            .map(|r| {
                Row::new()
                    .set("relid", r.oid())
                    .set("schemaname", r.schema())
                    .set("relname", r.name())
            })
            .collect(),
        // Sequences count from 1 by 1, bigint, never cycling.
        "pg_sequence" => s
            .sequences()
            .into_iter()
            .map(|q| {
                Row::new()
                    .set("seqrelid", q.oid)
                    .set("seqtypid", types::INT8)
                    .set("seqstart", 1i64)
                    .set("seqincrement", 1i64)
                    .set("seqmax", i64::MAX)
                    .set("seqmin", 1i64)
                    .set("seqcache", 1i64)
                    .set("seqcycle", false)
            })
            .collect(),
        // What PostgreSQL records of Amber's objects: a sequence belongs
        // to its column (auto for serial, internal for identity).
        "pg_depend" => s
            .sequences()
            .into_iter()
            .map(|q| {
                Row::new()
                    .set("classid", PG_CLASS)
                    .set("objid", q.oid)
                    .set("objsubid", 0i32)
                    .set("refclassid", PG_CLASS)
                    .set("refobjid", q.table)
                    .set("refobjsubid", i32::from(q.attnum))
                    .set("deptype", if q.identity { "i" } else { "a" })
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// The relations with foreign key triggers in PostgreSQL: those with a
/// foreign key and those a foreign key references (psql shows a table's
/// foreign keys only when `relhastriggers`).
fn with_fk_triggers(s: &Snapshot) -> std::collections::HashSet<u32> {
    let mut out = std::collections::HashSet::new();
    for r in s.relations() {
        for fk in r.foreign_keys(s) {
            out.insert(r.oid());
            out.insert(fk.target);
        }
    }
    out
}

/// pg_class rows of the sequences of serial and identity columns.
/// A pg_class row with what every relation of Amber's has in common
/// (owner, no tablespace, permanent, no rules, triggers, row security or
/// partitions); callers set what differs.
fn class_row(oid: u32, name: &str, namespace: u32, kind: &str, natts: usize) -> Row {
    Row::new()
        .set("oid", oid)
        .set("relname", name)
        .set("relnamespace", namespace)
        .set("reltype", 0u32)
        .set("reloftype", 0u32)
        .set("relowner", SUPERUSER)
        .set("relam", 0u32)
        .set("relfilenode", 0u32)
        .set("reltablespace", 0u32)
        .set("relpages", 0i32)
        .set("reltuples", Cell::Float(-1.0))
        .set("relallvisible", 0i32)
        .set("reltoastrelid", 0u32)
        .set("relhasindex", false)
        .set("relisshared", false)
        .set("relpersistence", "p")
        .set("relkind", kind)
        .set("relnatts", i32::try_from(natts).unwrap_or(i32::MAX))
        .set("relchecks", 0i32)
        .set("relhasrules", false)
        .set("relhastriggers", false)
        .set("relhassubclass", false)
        .set("relrowsecurity", false)
        .set("relforcerowsecurity", false)
        .set("relispopulated", true)
        .set("relreplident", "n")
        .set("relispartition", false)
        .set("relrewrite", 0u32)
        .set("relfrozenxid", 0u32)
        .set("relminmxid", 0u32)
}

/// Whether PostgreSQL's catalog relation `r` (a pg_class row) is served
/// here: information_schema views not built yet do not exist.
fn served(r: &Row) -> bool {
    match (r.0.get("relnamespace"), r.0.get("relname")) {
        (Some(Cell::Int(ns)), Some(Cell::Text(name))) => {
            *ns != i64::from(builtin::INFORMATION_SCHEMA_NAMESPACE)
                || super::info_schema::BUILT.contains(&name.as_str())
        }
        _ => false,
    }
}

/// `column` of the built-in pg_class rows that are served (or not).
fn catalog_oids(column: &str, is_served: bool) -> std::collections::HashSet<i64> {
    builtin::rows_ref("pg_class")
        .iter()
        .filter(|r| served(r) == is_served)
        .filter_map(|r| match r.0.get(column) {
            Some(Cell::Int(oid)) => Some(*oid),
            _ => None,
        })
        .collect()
}

/// PostgreSQL 15's rows (in `relation`: pg_class or pg_attribute) of the
/// catalog relations Amber serves.
fn served_catalog_rows(relation: &str, oid_column: &str) -> Vec<Row> {
    let served = catalog_oids("oid", true);
    builtin::rows_ref(relation)
        .iter()
        .filter(|r| matches!(r.0.get(oid_column), Some(Cell::Int(o)) if served.contains(o)))
        .map(|r| Row(r.0.clone()))
        .collect()
}

fn pg_class(s: &Snapshot) -> Vec<Row> {
    let triggers = with_fk_triggers(s);
    let mut rows = served_catalog_rows("pg_class", "oid");
    // The sequences of serial and identity columns.
    rows.extend(s.sequences().into_iter().map(|q| {
        class_row(q.oid, &q.name, Snapshot::namespace_oid(q.module), "S", 3)
            .set("relfilenode", q.oid)
            .set("relpages", 1i32)
            .set("reltuples", Cell::Float(1.0))
    }));
    for r in s.relations() {
        let is_table = r.class().is_some();
        let indexes = r.indexes();
        let attributes = r.attributes(None);
        let has_subclass = r.class().is_some_and(|c| {
            r.module
                .shape
                .classes
                .iter()
                .any(|o| o.parent.as_deref() == Some(&c.name))
        });
        let kind = if is_table { "r" } else { "v" };
        rows.push(
            class_row(r.oid(), &r.name(), r.namespace(), kind, attributes.len())
                .set("reltype", r.type_oid())
                .set("relam", if is_table { HEAP_AM } else { 0 })
                .set("relfilenode", if is_table { r.oid() } else { 0 })
                .set("relhasindex", !indexes.is_empty())
                .set("relhasrules", !is_table)
                .set("relhastriggers", triggers.contains(&r.oid()))
                .set(
                    "relchecks",
                    i32::try_from(r.class().map_or(0, |c| c.checks.len())).unwrap_or(i32::MAX),
                )
                .set("relhassubclass", has_subclass)
                .set("relreplident", if is_table { "d" } else { "n" }),
        );
        for i in indexes {
            rows.push(
                class_row(i.oid, &i.name, r.namespace(), "i", i.columns.len())
                    .set("relam", BTREE_AM)
                    .set("relfilenode", i.oid)
                    .set("relpages", 1i32)
                    .set("reltuples", Cell::Float(0.0)),
            );
        }
    }
    rows
}

/// One pg_attribute row; the type's storage properties are PostgreSQL's.
fn attribute(rel: u32, num: i64, name: &str, type_oid: u32) -> Row {
    let info = builtin::type_info(type_oid);
    let collation = info.map(|t| t.collation).unwrap_or(0);
    Row::new()
        .set("attrelid", rel)
        .set("attname", name)
        .set("atttypid", type_oid)
        // System columns have no statistics target (0); user columns
        // the default (-1).
        .set("attstattarget", if num < 0 { 0i32 } else { -1 })
        .set("attlen", info.map(|t| t.len).unwrap_or(-1))
        .set("attnum", num)
        .set(
            "attndims",
            i32::from(info.is_some_and(|t| t.elem != 0 && t.name.starts_with('_'))),
        )
        .set("attcacheoff", -1i32)
        .set("atttypmod", -1i32)
        .set("attbyval", info.is_some_and(|t| t.byval))
        .set(
            "attalign",
            info.map(|t| t.align.clone()).unwrap_or_else(|| "d".into()),
        )
        .set(
            "attstorage",
            info.map(|t| t.storage.clone())
                .unwrap_or_else(|| "x".into()),
        )
        .set("attcompression", "")
        .set("attnotnull", false)
        .set("atthasdef", false)
        .set("atthasmissing", false)
        .set("attidentity", "")
        .set("attgenerated", "")
        .set("attisdropped", false)
        .set("attislocal", true)
        .set("attinhcount", 0i32)
        .set("attcollation", collation)
}

/// PostgreSQL 15's system columns of every table: (attnum, name, type).
const SYSTEM_COLUMNS: &[(i64, &str, u32)] = &[
    (-1, "ctid", 27),
    (-2, "xmin", 28),
    (-3, "cmin", 29),
    (-4, "xmax", 28),
    (-5, "cmax", 29),
    (-6, "tableoid", 26),
];

fn pg_attribute(s: &Snapshot, view_types: &ViewTypes) -> Vec<Row> {
    let mut rows = served_catalog_rows("pg_attribute", "attrelid");
    // A sequence's columns, as PostgreSQL 15 lists them.
    for q in s.sequences() {
        for (num, name, t) in [
            (1, "last_value", types::INT8),
            (2, "log_cnt", types::INT8),
            (3, "is_called", types::BOOL),
        ] {
            rows.push(attribute(q.oid, num, name, t).set("attnotnull", true));
        }
        for (num, name, t) in SYSTEM_COLUMNS {
            rows.push(attribute(q.oid, *num, name, *t).set("attnotnull", true));
        }
    }
    for r in s.relations() {
        let oid = r.oid();
        let attributes = r.attributes(r.view_types(view_types));
        // A subclass's columns that its parent has are inherited.
        let parent = r
            .class()
            .and_then(|c| c.parent.as_deref())
            .and_then(|p| r.module.class(p));
        for a in &attributes {
            let inherited = parent.is_some_and(|p| {
                (a.name == "id" && !p.hidden_id) || p.columns.iter().any(|c| c.name == a.name)
            });
            rows.push(
                attribute(oid, a.num.into(), &a.name, a.type_oid)
                    .set("atttypmod", a.typmod)
                    .set("attnotnull", a.not_null)
                    .set("atthasdef", a.default.is_some())
                    .set("attidentity", a.identity)
                    .set("attislocal", !inherited)
                    .set("attinhcount", i32::from(inherited)),
            );
        }
        if r.class().is_some() {
            for (num, name, t) in SYSTEM_COLUMNS {
                rows.push(attribute(oid, *num, name, *t).set("attnotnull", true));
            }
        }
        for i in r.indexes() {
            for (n, (num, name)) in i.columns.iter().enumerate() {
                let (t, typmod) = attributes
                    .iter()
                    .find(|a| a.num == *num)
                    .map(|a| (a.type_oid, a.typmod))
                    .unwrap_or((types::TEXT, -1));
                rows.push(attribute(i.oid, n as i64 + 1, name, t).set("atttypmod", typmod));
            }
        }
    }
    rows
}

fn pg_type(s: &Snapshot) -> Vec<Row> {
    // Not the row types (nor their arrays) of catalog views not served.
    let absent = catalog_oids("reltype", false);
    let mut rows: Vec<Row> = builtin::rows("pg_type")
        .into_iter()
        .filter(|r| {
            ![r.0.get("oid"), r.0.get("typelem")]
                .into_iter()
                .any(|c| matches!(c, Some(Cell::Int(o)) if absent.contains(o)))
        })
        .collect();
    for r in s.relations() {
        rows.push(
            Row::new()
                .set("oid", r.type_oid())
                .set("typname", r.name())
                .set("typnamespace", r.namespace())
                .set("typowner", SUPERUSER)
                .set("typlen", -1i32)
                .set("typbyval", false)
                .set("typtype", "c")
                .set("typcategory", "C")
                .set("typispreferred", false)
                .set("typisdefined", true)
                .set("typdelim", ",")
                .set("typrelid", r.oid())
                .set("typsubscript", "-")
                .set("typelem", 0u32)
                .set("typarray", 0u32)
                .set("typinput", "record_in")
                .set("typoutput", "record_out")
                .set("typreceive", "record_recv")
                .set("typsend", "record_send")
                .set("typmodin", "-")
                .set("typmodout", "-")
                .set("typanalyze", "-")
                .set("typalign", "d")
                .set("typstorage", "x")
                .set("typnotnull", false)
                .set("typbasetype", 0u32)
                .set("typtypmod", -1i32)
                .set("typndims", 0i32)
                .set("typcollation", 0u32),
        );
    }
    rows
}

/// PostgreSQL 15's default btree operator class of a column type
/// (`pg_opclass` where `opcdefault`), as pg_index.indclass names it.
fn default_btree_opclass(type_oid: u32) -> i64 {
    match type_oid {
        types::BOOL => 10003,
        types::BYTEA => 10006,
        types::INT8 => 3124,
        types::INT2 => 1979,
        types::INT4 => 1978,
        types::TEXT | types::VARCHAR => 3126,
        types::BPCHAR => 10004,
        types::OID => 1981,
        types::FLOAT4 => 10012,
        types::FLOAT8 => 3123,
        types::DATE => 3122,
        types::TIMESTAMP => 3128,
        types::TIMESTAMPTZ => 3127,
        types::NUMERIC => 3125,
        types::UUID => 10065,
        types::JSONB => 10088,
        // Arrays: array_ops.
        t if builtin::type_info(t).is_some_and(|i| i.name.starts_with('_')) => 10000,
        _ => 0,
    }
}

fn pg_index(s: &Snapshot) -> Vec<Row> {
    let mut rows = Vec::new();
    for r in s.relations() {
        let attributes = r.attributes(None);
        for i in r.indexes() {
            let n = i.columns.len() as i32;
            let (collations, classes): (Vec<i64>, Vec<i64>) = i
                .columns
                .iter()
                .map(|(num, _)| {
                    let t = attributes
                        .iter()
                        .find(|a| a.num == *num)
                        .map(|a| a.type_oid);
                    let collation = match t {
                        Some(types::TEXT) => i64::from(DEFAULT_COLLATION),
                        _ => 0,
                    };
                    (collation, t.map_or(0, default_btree_opclass))
                })
                .unzip();
            rows.push(
                Row::new()
                    .set("indexrelid", i.oid)
                    .set("indrelid", r.oid())
                    .set("indnatts", n)
                    .set("indnkeyatts", n)
                    .set("indisunique", i.unique)
                    .set("indnullsnotdistinct", false)
                    .set("indisprimary", i.primary)
                    .set("indisexclusion", false)
                    .set("indimmediate", true)
                    .set("indisclustered", false)
                    .set("indisvalid", true)
                    .set("indcheckxmin", false)
                    .set("indisready", true)
                    .set("indislive", true)
                    .set("indisreplident", false)
                    .set(
                        "indkey",
                        ints(i.columns.iter().map(|(num, _)| i64::from(*num))),
                    )
                    .set("indcollation", ints(collations))
                    .set("indclass", ints(classes))
                    .set("indoption", ints(i.columns.iter().map(|_| 0))),
            );
        }
    }
    rows
}

fn constraint(oid: u32, name: &str, namespace: u32, kind: &str, rel: u32) -> Row {
    Row::new()
        .set("oid", oid)
        .set("conname", name)
        .set("connamespace", namespace)
        .set("contype", kind)
        .set("condeferrable", false)
        .set("condeferred", false)
        .set("convalidated", true)
        .set("conrelid", rel)
        .set("contypid", 0u32)
        .set("conindid", 0u32)
        .set("conparentid", 0u32)
        .set("confrelid", 0u32)
        .set("confupdtype", " ")
        .set("confdeltype", " ")
        .set("confmatchtype", " ")
        .set("conislocal", true)
        .set("coninhcount", 0i32)
        .set("connoinherit", true)
}

fn pg_constraint(s: &Snapshot) -> Vec<Row> {
    let mut rows = Vec::new();
    for r in s.relations() {
        for i in r.indexes() {
            let Some(oid) = i.constraint_oid else {
                continue;
            };
            let kind = if i.primary { "p" } else { "u" };
            rows.push(
                constraint(oid, &i.name, r.namespace(), kind, r.oid())
                    .set("conindid", i.oid)
                    .set("conkey", ints(i.columns.iter().map(|(n, _)| i64::from(*n)))),
            );
        }
        if let Some(class) = r.class().filter(|c| !c.checks.is_empty()) {
            let attributes = r.attributes(None);
            for k in &class.checks {
                // conkey: the columns the expression names.
                let names = crate::checks::columns_named(&k.expr);
                let named: Vec<i64> = attributes
                    .iter()
                    .filter(|a| names.contains(&a.name))
                    .map(|a| i64::from(a.num))
                    .collect();
                rows.push(
                    constraint(k.oid, &k.name, r.namespace(), "c", r.oid())
                        .set("connoinherit", false)
                        .set("conkey", ints(named))
                        .set("conbin", k.expr.clone()),
                );
            }
        }
        for fk in r.foreign_keys(s) {
            let eq = equality_operator(fk.type_oid);
            rows.push(
                constraint(fk.oid, &fk.name, r.namespace(), "f", r.oid())
                    .set("conindid", fk.target_index)
                    .set("confrelid", fk.target)
                    .set("confupdtype", "a")
                    .set(
                        "confdeltype",
                        match fk.on_delete {
                            amber_catalog::OnDelete::NoAction => "a",
                            amber_catalog::OnDelete::Cascade => "c",
                            amber_catalog::OnDelete::SetNull => "n",
                        },
                    )
                    .set("confmatchtype", "s")
                    .set("connoinherit", true)
                    .set("conkey", ints([i64::from(fk.column.0)]))
                    .set("confkey", ints([i64::from(fk.target_column.0)]))
                    .set("conpfeqop", ints([eq]))
                    .set("conppeqop", ints([eq]))
                    .set("conffeqop", ints([eq])),
            );
        }
    }
    rows
}

fn pg_attrdef(s: &Snapshot) -> Vec<Row> {
    let mut rows = Vec::new();
    for r in s.relations() {
        for a in r.attributes(None) {
            if let Some((oid, expr)) = a.default {
                rows.push(
                    Row::new()
                        .set("oid", oid)
                        .set("adrelid", r.oid())
                        .set("adnum", i64::from(a.num))
                        .set("adbin", expr),
                );
            }
        }
    }
    rows
}

/// PostgreSQL's built-in functions the catalog names (type I/O and the
/// like), then Amber's functions and methods.
fn pg_proc(s: &Snapshot) -> Vec<Row> {
    let builtin = builtin::rows("pg_proc");
    builtin.into_iter().chain(pg_proc_of_modules(s)).collect()
}

fn pg_proc_of_modules(s: &Snapshot) -> Vec<Row> {
    s.functions()
        .into_iter()
        .map(|f| {
            Row::new()
                .set("oid", f.oid)
                .set("proname", f.name.clone())
                .set("pronamespace", Snapshot::namespace_oid(f.module))
                .set("proowner", SUPERUSER)
                .set("prolang", PYTHON_LANGUAGE)
                .set("procost", Cell::Float(100.0))
                .set(
                    "prorows",
                    Cell::Float(if f.returns_set { 1000.0 } else { 0.0 }),
                )
                .set("provariadic", 0u32)
                .set("prosupport", "-")
                .set("prokind", "f")
                .set("prosecdef", false)
                .set("proleakproof", false)
                .set("proisstrict", false)
                .set("proretset", f.returns_set)
                .set("provolatile", "v")
                .set("proparallel", "u")
                .set("pronargs", f.args.len() as i32)
                .set("pronargdefaults", 0i32)
                .set("prorettype", f.result)
                .set(
                    "proargtypes",
                    ints(f.args.iter().map(|(_, t)| i64::from(*t))),
                )
                .set(
                    "proargnames",
                    Cell::Texts(f.args.iter().map(|(n, _)| n.clone()).collect()),
                )
                .set("prosrc", f.def.name.clone())
        })
        .collect()
}
