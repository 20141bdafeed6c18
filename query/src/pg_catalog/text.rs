//! What PostgreSQL prints for catalog objects: `format_type`,
//! `quote_ident`, `pg_get_indexdef`, `pg_get_constraintdef`,
//! `pg_get_function_arguments` / `_result`.

use super::builtin;
use super::model::{ForeignKey, Function, Index, Relation, Snapshot};

/// PostgreSQL's `quote_ident`: quoted unless a lower-case identifier that
/// is no keyword.
pub(crate) fn quote_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !is_reserved(name);
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Keywords `quote_ident` quotes (PostgreSQL's reserved and
/// type/function-name keywords that clash in identifiers).
fn is_reserved(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "current_catalog",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "grant",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lateral",
        "leading",
        "limit",
        "localtime",
        "localtimestamp",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "placing",
        "primary",
        "references",
        "returning",
        "select",
        "session_user",
        "some",
        "symmetric",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
        "authorization",
        "binary",
        "collation",
        "concurrently",
        "cross",
        "current_schema",
        "freeze",
        "full",
        "ilike",
        "inner",
        "is",
        "isnull",
        "join",
        "left",
        "like",
        "natural",
        "notnull",
        "outer",
        "overlaps",
        "right",
        "similar",
        "tablesample",
        "verbose",
        "between",
        "bigint",
        "bit",
        "boolean",
        "char",
        "character",
        "coalesce",
        "dec",
        "decimal",
        "exists",
        "extract",
        "float",
        "greatest",
        "grouping",
        "inout",
        "int",
        "integer",
        "interval",
        "least",
        "national",
        "nchar",
        "none",
        "normalize",
        "nullif",
        "numeric",
        "out",
        "overlay",
        "position",
        "precision",
        "real",
        "row",
        "setof",
        "smallint",
        "substring",
        "time",
        "timestamp",
        "treat",
        "trim",
        "values",
        "varchar",
        "xmlattributes",
        "xmlconcat",
        "xmlelement",
        "xmlexists",
        "xmlforest",
        "xmlnamespaces",
        "xmlparse",
        "xmlpi",
        "xmlroot",
        "xmlserialize",
        "xmltable",
    ];
    WORDS.contains(&name)
}

/// `schema.name`, each part quoted as needed.
pub(crate) fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// `format_type(oid, typmod)`; `None` for an unknown oid (PostgreSQL
/// prints `???`).
pub(crate) fn format_type(snapshot: &Snapshot, oid: u32, typmod: Option<i32>) -> Option<String> {
    if let Some(info) = builtin::type_info(oid) {
        if info.elem != 0 && info.name.starts_with('_') {
            return format_type(snapshot, info.elem, typmod).map(|e| format!("{e}[]"));
        }
        return builtin_type_name(oid, typmod);
    }
    let (schema, name) = snapshot.row_type(oid)?;
    let visible = snapshot.search_path.first().is_some_and(|s| *s == schema);
    Some(if visible {
        quote_ident(&name)
    } else {
        qualified(&schema, &name)
    })
}

/// `format_type` of a built-in type (`pg_typeof` too).
pub(crate) fn builtin_type_name(oid: u32, typmod: Option<i32>) -> Option<String> {
    {
        let info = builtin::type_info(oid)?;
        if info.elem != 0 && info.name.starts_with('_') {
            return builtin_type_name(info.elem, typmod).map(|e| format!("{e}[]"));
        }
        let m = typmod.filter(|m| *m >= 0);
        let name = match info.name.as_str() {
            "int8" => "bigint".to_string(),
            "int4" => "integer".into(),
            "int2" => "smallint".into(),
            "float8" => "double precision".into(),
            "float4" => "real".into(),
            "bool" => "boolean".into(),
            "varchar" => match m {
                Some(m) => format!("character varying({})", m - 4),
                None => "character varying".into(),
            },
            "bpchar" => match m {
                Some(m) => format!("character({})", m - 4),
                None => "character".into(),
            },
            "numeric" => match m {
                Some(m) => format!("numeric({},{})", ((m - 4) >> 16) & 0xffff, (m - 4) & 0xffff),
                None => "numeric".into(),
            },
            "timestamptz" | "timestamp" | "timetz" | "time" => {
                let (base, zone) = info.name.split_at(if info.name.starts_with("timestamp") {
                    9
                } else {
                    4
                });
                let precision = m.map(|m| format!("({m})")).unwrap_or_default();
                let zone = if zone == "tz" { "with" } else { "without" };
                format!("{base}{precision} {zone} time zone")
            }
            "varbit" => match m {
                Some(m) => format!("bit varying({m})"),
                None => "bit varying".into(),
            },
            "bit" => match m {
                Some(m) => format!("bit({m})"),
                None => "bit".into(),
            },
            "char" => "\"char\"".into(),
            other => other.to_string(),
        };
        // information_schema's domains are not on the search path.
        if info.namespace != builtin::PG_CATALOG_NAMESPACE {
            return Some(qualified("information_schema", &name));
        }
        Some(name)
    }
}

/// `pg_get_indexdef(index)`.
pub(crate) fn index_def(relation: &Relation<'_>, index: &Index) -> String {
    let columns: Vec<String> = index.columns.iter().map(|(_, n)| quote_ident(n)).collect();
    format!(
        "CREATE {}INDEX {} ON {} USING btree ({})",
        if index.unique { "UNIQUE " } else { "" },
        quote_ident(&index.name),
        qualified(relation.schema(), &relation.name()),
        columns.join(", ")
    )
}

/// `pg_get_constraintdef` of a key.
pub(crate) fn key_def(index: &Index) -> String {
    let columns: Vec<String> = index.columns.iter().map(|(_, n)| quote_ident(n)).collect();
    format!(
        "{} ({})",
        if index.primary {
            "PRIMARY KEY"
        } else {
            "UNIQUE"
        },
        columns.join(", ")
    )
}

/// `pg_get_constraintdef` of a CHECK whose expression is `expr`: as
/// written when `pretty` (psql's form), else with every operation in
/// parentheses, as PostgreSQL deparses it.
pub(crate) fn check_def(expr: &str, pretty: bool) -> String {
    use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr};
    let text = match crate::checks::parse(expr) {
        Some(e) if pretty => e.to_string(),
        Some(mut e) => {
            let _ = visit_expressions_mut(&mut e, |e: &mut Expr| {
                if matches!(
                    e,
                    Expr::BinaryOp { .. } | Expr::IsNull(_) | Expr::IsNotNull(_)
                ) {
                    *e = Expr::Nested(Box::new(e.clone()));
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
            e.to_string()
        }
        None => expr.to_string(),
    };
    format!("CHECK ({text})")
}

/// `pg_get_constraintdef` of a foreign key; the referenced table is
/// qualified unless `visible` on search_path, as PostgreSQL names it.
pub(crate) fn fkey_def(fk: &ForeignKey, visible: bool) -> String {
    format!(
        "FOREIGN KEY ({}) REFERENCES {}({}){}",
        quote_ident(&fk.column.1),
        if visible {
            quote_ident(&fk.target_table)
        } else {
            qualified(&fk.target_schema, &fk.target_table)
        },
        quote_ident(&fk.target_column.1),
        match fk.on_delete {
            amber_catalog::OnDelete::NoAction => "",
            amber_catalog::OnDelete::Cascade => " ON DELETE CASCADE",
            amber_catalog::OnDelete::SetNull => " ON DELETE SET NULL",
        }
    )
}

/// `pg_get_function_arguments` (names and types).
pub(crate) fn function_arguments(snapshot: &Snapshot, f: &Function<'_>) -> String {
    f.args
        .iter()
        .map(|(name, t)| {
            let ty = format_type(snapshot, *t, None).unwrap_or_else(|| "???".into());
            if name.is_empty() {
                ty
            } else {
                format!("{} {ty}", quote_ident(name))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `pg_get_function_result`.
pub(crate) fn function_result(snapshot: &Snapshot, f: &Function<'_>) -> String {
    let t = format_type(snapshot, f.result, None).unwrap_or_else(|| "???".into());
    if f.returns_set {
        format!("SETOF {t}")
    } else {
        t
    }
}
