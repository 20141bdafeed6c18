//! Amber's catalog as PostgreSQL describes it: a module is a schema, a
//! class a table (a class with a visible `id` has it as primary key), a
//! reference column a foreign key to the referenced class's `id`, an
//! `IndexDef` an index (and a constraint when declared as one), a module
//! function or method a function; each with its stored oid
//! ([`amber_catalog::oids`]).

use super::builtin::{self, AMBER_NAMESPACE, INFORMATION_SCHEMA_NAMESPACE, PG_CATALOG_NAMESPACE};
use super::builtin::{PG_TOAST_NAMESPACE, PUBLIC_NAMESPACE};
use crate::value::types;
use amber_catalog::{ClassDef, ColumnDef, FunctionDef, ModuleDef, SqlType, ViewDef};
use serde_json::Value as Json;
use std::sync::Arc;

/// What a statement's catalog queries read: the modules its transaction
/// sees and its search_path.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub modules: Vec<Arc<ModuleDef>>,
    pub search_path: Vec<String>,
    /// The session's settings as SET them (pg_settings shows them).
    pub settings: Arc<std::collections::HashMap<String, String>>,
    /// The engine's sessions (pg_stat_activity).
    pub activity: Arc<crate::activity::Activity>,
    /// Lookups built once per statement (catalog functions run per row:
    /// `obj_description(c.oid)` over every table is then linear, not
    /// quadratic).
    pub cache: SnapshotCache,
}

/// Descriptions by (object oid, column number): (catalog oid, text).
type DescriptionIndex = std::collections::HashMap<(u32, i64), Vec<(u32, String)>>;

/// What a [`Snapshot`] computes on first use.
#[derive(Debug, Clone, Default)]
pub(crate) struct SnapshotCache {
    descriptions: std::sync::OnceLock<DescriptionIndex>,
    /// Relation and index oid -> visible on search_path.
    visible: std::sync::OnceLock<std::collections::HashMap<u32, bool>>,
}

/// An oid a record written before oids existed lacks: a stand-in derived
/// from an id that is stable until the module's next deploy (which
/// stores real ones), in a range PostgreSQL never assigns.
fn or_legacy(oid: u32, id: u64) -> u32 {
    if oid != 0 {
        return oid;
    }
    0x8000_0000 | (id as u32 & 0x7fff_ffff)
}

/// One attribute of a relation, as pg_attribute lists it.
#[derive(Debug, Clone)]
pub(crate) struct Attribute {
    pub num: i16,
    pub name: String,
    pub type_oid: u32,
    /// atttypmod: a declared length or precision; -1 for none.
    pub typmod: i32,
    pub not_null: bool,
    /// (pg_attrdef oid, the expression as `pg_get_expr` prints it).
    pub default: Option<(u32, String)>,
    /// `a` (ALWAYS), `d` (BY DEFAULT) or empty.
    pub identity: &'static str,
}

/// An index (or the primary key a class's `id` is).
#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub oid: u32,
    pub name: String,
    pub columns: Vec<(i16, String)>,
    pub unique: bool,
    pub primary: bool,
    /// The pg_constraint oid when it is a constraint (PRIMARY KEY, UNIQUE).
    pub constraint_oid: Option<u32>,
}

/// A foreign key: a reference column to the referenced class's `id`.
#[derive(Debug, Clone)]
pub(crate) struct ForeignKey {
    pub oid: u32,
    pub name: String,
    pub column: (i16, String),
    pub target: u32,
    pub target_schema: String,
    pub target_table: String,
    /// The target's key column (attnum and name: a Python class's `id`,
    /// or the column a SQL `REFERENCES` names), its unique index's oid
    /// and name.
    pub target_column: (i16, String),
    pub target_index: u32,
    pub target_index_name: String,
    /// The key's type (its equality operator).
    pub type_oid: u32,
    pub on_delete: amber_catalog::OnDelete,
}

/// A table or view of a schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Relation<'a> {
    pub module: &'a ModuleDef,
    pub kind: RelationKind<'a>,
    /// The statement's search_path: a default's `nextval('seq'::regclass)`
    /// names the sequence unqualified when its schema is on it.
    pub search_path: &'a [String],
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum RelationKind<'a> {
    Table(&'a ClassDef),
    View(&'a ViewDef),
}

/// A module function or method, as pg_proc lists it.
#[derive(Debug, Clone)]
pub(crate) struct Function<'a> {
    pub oid: u32,
    pub module: &'a ModuleDef,
    /// Its SQL name within the schema (`deposit`, `account_deposit`).
    pub name: String,
    pub def: &'a FunctionDef,
    /// Argument types as SQL sees them (a method's first is its object).
    pub args: Vec<(String, u32)>,
    pub result: u32,
    pub returns_set: bool,
}

/// The sequence of a `serial` or identity column, a relation (relkind
/// `S`) as in PostgreSQL: `<table>_<column>_seq`, owned by its column.
#[derive(Debug, Clone)]
pub(crate) struct Sequence<'a> {
    pub oid: u32,
    pub name: String,
    pub module: &'a ModuleDef,
    /// The owning column: its table's oid and attnum.
    pub table: u32,
    pub attnum: i16,
    /// An identity column's (pg_depend `i`) rather than a serial's (`a`).
    pub identity: bool,
}

/// The name PostgreSQL gives the sequence of `table.column`.
pub(crate) fn sequence_name(table: &str, column: &str) -> String {
    format!("{table}_{column}_seq")
}

/// The oid of a column, parameter or result of type `t`.
pub(crate) fn type_oid(t: &SqlType) -> u32 {
    crate::convert::type_oid(t)
}

/// The type a default's constant is cast to when PostgreSQL prints it.
fn cast_name(c: &ColumnDef) -> String {
    match &c.declared {
        Some(amber_catalog::Declared::Varchar { .. }) => "character varying".into(),
        Some(amber_catalog::Declared::Char { .. }) => "bpchar".into(),
        _ => c.ty.pg_name(),
    }
}

/// A column default as PostgreSQL prints its expression.
fn default_text(c: &ColumnDef, schema: &str, table: &str, on_path: bool) -> Option<String> {
    if c.sequence.is_some() && c.identity_always {
        return None;
    }
    if let Some(_seq) = c.sequence {
        let name = sequence_name(table, &c.name);
        return Some(format!(
            "nextval('{}'::regclass)",
            if on_path {
                super::text::quote_ident(&name)
            } else {
                super::text::qualified(schema, &name)
            }
        ));
    }
    if !c.has_default {
        return None;
    }
    Some(match (&c.default, &c.ty) {
        (Json::Null, _) => "NULL".into(),
        (Json::Bool(b), _) => b.to_string(),
        (Json::Number(n), SqlType::Numeric | SqlType::Float8 | SqlType::Float4) => {
            let t = match (&c.ty, n.as_f64()) {
                // A real's default is the float4 it stored, shortest.
                (SqlType::Float4, Some(f)) => (f as f32).to_string(),
                _ => n.to_string(),
            };
            if t.starts_with('-') {
                format!("'{t}'::{}", c.ty.pg_name())
            } else {
                t
            }
        }
        (Json::Number(n), _) => {
            let t = n.to_string();
            if t.starts_with('-') {
                format!("'{t}'::{}", c.ty.pg_name())
            } else {
                t
            }
        }
        // A numeric is stored as its exact text: PostgreSQL prints a
        // non-negative one bare.
        (Json::String(s), SqlType::Numeric)
            if !s.starts_with('-') && s.parse::<f64>().is_ok_and(f64::is_finite) =>
        {
            s.clone()
        }
        (Json::String(s), _) => {
            format!("'{}'::{}", s.replace('\'', "''"), cast_name(c))
        }
        (other, _) => format!(
            "'{}'::{}",
            other.to_string().replace('\'', "''"),
            c.ty.pg_name()
        ),
    })
}

impl Snapshot {
    /// The namespace oid of `module` (`public` is PostgreSQL's 2200).
    pub(crate) fn namespace_oid(module: &ModuleDef) -> u32 {
        if module.name == crate::modules::PUBLIC_SCHEMA {
            return PUBLIC_NAMESPACE;
        }
        or_legacy(module.oid, module.generation)
    }

    /// Every schema: PostgreSQL's system ones, `amber`, `public` and the
    /// modules.
    pub(crate) fn schemas(&self) -> Vec<(u32, String, Option<&ModuleDef>)> {
        let mut out: Vec<(u32, String, Option<&ModuleDef>)> = vec![
            (PG_CATALOG_NAMESPACE, "pg_catalog".into(), None),
            (PG_TOAST_NAMESPACE, "pg_toast".into(), None),
            (
                INFORMATION_SCHEMA_NAMESPACE,
                "information_schema".into(),
                None,
            ),
            (AMBER_NAMESPACE, "amber".into(), None),
        ];
        if !self
            .modules
            .iter()
            .any(|m| m.name == crate::modules::PUBLIC_SCHEMA)
        {
            out.push((PUBLIC_NAMESPACE, crate::modules::PUBLIC_SCHEMA.into(), None));
        }
        for m in &self.modules {
            out.push((Snapshot::namespace_oid(m), m.name.clone(), Some(m)));
        }
        out
    }

    pub(crate) fn schema_name(&self, oid: u32) -> Option<String> {
        self.schemas()
            .into_iter()
            .find(|(o, _, _)| *o == oid)
            .map(|(_, n, _)| n)
    }

    /// Tables and views, in module order.
    pub(crate) fn relations(&self) -> impl Iterator<Item = Relation<'_>> {
        let search_path: &[String] = &self.search_path;
        self.modules.iter().flat_map(move |m| {
            let tables = m.shape.classes.iter().map(move |c| Relation {
                module: m,
                kind: RelationKind::Table(c),
                search_path,
            });
            let views = m.shape.views.iter().map(move |v| Relation {
                module: m,
                kind: RelationKind::View(v),
                search_path,
            });
            tables.chain(views)
        })
    }

    /// The schema PostgreSQL resolves an unqualified `name` of a relation
    /// in: the first of search_path holding one (pg_catalog first).
    fn visible_schema(&self, name: &str) -> Option<&str> {
        self.search_path
            .iter()
            .find(|s| {
                self.modules.iter().any(|m| {
                    &m.name == *s
                        && (m.shape.classes.iter().any(|c| c.table == name)
                            || m.shape.views.iter().any(|v| v.name == name)
                            || m.shape.classes.iter().any(|c| {
                                c.columns.iter().any(|col| {
                                    col.sequence.is_some()
                                        && sequence_name(&c.table, &col.name) == name
                                })
                            })
                            || m.shape.classes.iter().any(|c| {
                                c.indexes.iter().any(|i| i.name == name)
                                    || (!c.hidden_id && pkey_name(c) == name)
                            }))
                })
            })
            .map(String::as_str)
    }

    /// The description of object `oid` (catalog `class`, any when
    /// `None`), column `sub`: PostgreSQL's of its built-ins and Amber's
    /// ([`Self::descriptions`]), through an index built once per
    /// statement.
    pub(crate) fn description_of(&self, oid: u32, class: Option<u32>, sub: i64) -> Option<String> {
        let index = self.cache.descriptions.get_or_init(|| {
            let mut m = DescriptionIndex::new();
            for r in builtin::rows_ref("pg_description") {
                let int = |c: &str| match r.0.get(c) {
                    Some(super::Cell::Int(v)) => Some(*v),
                    _ => None,
                };
                if let (Some(o), Some(c), Some(n), Some(super::Cell::Text(text))) = (
                    int("objoid").and_then(|v| u32::try_from(v).ok()),
                    int("classoid").and_then(|v| u32::try_from(v).ok()),
                    int("objsubid"),
                    r.0.get("description"),
                ) {
                    m.entry((o, n)).or_default().push((c, text.clone()));
                }
            }
            for (o, c, n, text) in self.descriptions() {
                m.entry((o, n)).or_default().push((c, text));
            }
            m
        });
        index
            .get(&(oid, sub))?
            .iter()
            .find(|(c, _)| class.is_none_or(|k| k == *c))
            .map(|(_, text)| text.clone())
    }

    /// `pg_table_is_visible`: the relation (table, view, index or
    /// sequence) is in search_path and no relation of the same name comes
    /// before it. `None` for an oid that is none of Amber's. Computed for
    /// every relation once per statement (catalog queries ask per row).
    pub(crate) fn relation_visible(&self, oid: u32) -> Option<bool> {
        let index = self.cache.visible.get_or_init(|| {
            let mut m = std::collections::HashMap::new();
            let mut visible = |oid: u32, name: &str, module: &ModuleDef| {
                m.insert(oid, self.visible_schema(name) == Some(module.name.as_str()));
            };
            for r in self.relations() {
                visible(r.oid(), &r.name(), r.module);
                for i in r.indexes() {
                    visible(i.oid, &i.name, r.module);
                }
            }
            for q in self.sequences() {
                visible(q.oid, &q.name, q.module);
            }
            m
        });
        index.get(&oid).copied()
    }

    /// A relation named `name` (`schema.table` or unqualified, as
    /// `::regclass` reads it): its oid.
    pub(crate) fn relation_oid(&self, schema: Option<&str>, name: &str) -> Option<u32> {
        let schema = match schema {
            Some(s) => s,
            None => self.visible_schema(name)?,
        };
        let module = self.modules.iter().find(|m| m.name == schema)?;
        for r in self
            .relations()
            .filter(|r| std::ptr::eq(r.module, module.as_ref()))
        {
            if r.name() == name {
                return Some(r.oid());
            }
            if let Some(i) = r.indexes().into_iter().find(|i| i.name == name) {
                return Some(i.oid);
            }
        }
        self.sequences()
            .into_iter()
            .find(|q| std::ptr::eq(q.module, module.as_ref()) && q.name == name)
            .map(|q| q.oid)
    }

    /// Every sequence of a serial or identity column (those with oids).
    pub(crate) fn sequences(&self) -> Vec<Sequence<'_>> {
        let mut out = Vec::new();
        for r in self.relations() {
            let Some(c) = r.class() else { continue };
            for col in &c.columns {
                if col.sequence.is_none() || col.sequence_oid == 0 {
                    continue;
                }
                out.push(Sequence {
                    oid: col.sequence_oid,
                    name: sequence_name(&c.table, &col.name),
                    module: r.module,
                    table: r.oid(),
                    attnum: r.attnum(&col.name),
                    // A BY DEFAULT identity is not told from a serial yet.
                    identity: col.identity_always,
                });
            }
        }
        out
    }

    /// Functions and methods of every module.
    /// The descriptions of Amber's objects (pg_description rows:
    /// object oid, catalog oid, column number, text): module docstrings
    /// and `COMMENT ON SCHEMA` on schemas, class docstrings and `COMMENT
    /// ON` on tables, views and columns, function docstrings.
    pub(crate) fn descriptions(&self) -> Vec<(u32, u32, i64, String)> {
        const PG_NAMESPACE: u32 = 2615;
        const PG_CLASS: u32 = 1259;
        const PG_PROC: u32 = 1255;
        let mut out = Vec::new();
        for m in &self.modules {
            if let Some(c) = &m.shape.comment {
                out.push((Self::namespace_oid(m), PG_NAMESPACE, 0, c.clone()));
            }
        }
        for r in self.relations() {
            match r.kind {
                RelationKind::Table(c) => {
                    if let Some(text) = &c.comment {
                        out.push((r.oid(), PG_CLASS, 0, text.clone()));
                    }
                    for col in &c.columns {
                        if let Some(text) = &col.comment {
                            out.push((
                                r.oid(),
                                PG_CLASS,
                                i64::from(r.attnum(&col.name)),
                                text.clone(),
                            ));
                        }
                    }
                }
                RelationKind::View(v) => {
                    if let Some(text) = &v.comment {
                        out.push((r.oid(), PG_CLASS, 0, text.clone()));
                    }
                }
            }
        }
        for f in self.functions() {
            if let Some(text) = &f.def.comment {
                out.push((f.oid, PG_PROC, 0, text.clone()));
            }
        }
        out
    }

    pub(crate) fn functions(&self) -> Vec<Function<'_>> {
        let mut out = Vec::new();
        for m in &self.modules {
            for (sql_name, callable) in m.sql_functions() {
                let def = callable.function;
                let mut args: Vec<(String, u32)> = Vec::new();
                if callable.class.is_some() {
                    args.push(("self".to_string(), types::INT8));
                }
                args.extend(def.params.iter().map(|p| (p.name.clone(), type_oid(&p.ty))));
                let (result, returns_set) = match &def.returns {
                    amber_catalog::Returns::Void => (2278, false),
                    amber_catalog::Returns::Scalar(t) => (type_oid(t), false),
                    amber_catalog::Returns::SetOf(c) => (
                        m.class(c)
                            .map(|c| or_legacy(c.type_oid, c.id))
                            .unwrap_or(builtin::RECORD_TYPE),
                        true,
                    ),
                };
                out.push(Function {
                    oid: or_legacy(def.oid, m.generation ^ ((out.len() as u64) << 20)),
                    module: m,
                    name: sql_name,
                    def,
                    args,
                    result,
                    returns_set,
                });
            }
        }
        out
    }

    /// The row type of a class or view by its pg_type oid: (schema, name).
    pub(crate) fn row_type(&self, oid: u32) -> Option<(String, String)> {
        self.relations()
            .find(|r| r.type_oid() == oid)
            .map(|r| (r.module.name.clone(), r.name()))
    }
}

/// A class's primary key name (PostgreSQL's `<table>_pkey`).
pub(crate) fn pkey_name(class: &ClassDef) -> String {
    format!("{}_pkey", class.table)
}

impl<'a> Relation<'a> {
    pub(crate) fn oid(&self) -> u32 {
        match self.kind {
            RelationKind::Table(c) => or_legacy(c.oid, c.id),
            RelationKind::View(v) => or_legacy(v.oid, self.module.generation ^ 0x5a5a),
        }
    }

    pub(crate) fn type_oid(&self) -> u32 {
        match self.kind {
            RelationKind::Table(c) => or_legacy(c.type_oid, c.id ^ 0x1),
            RelationKind::View(v) => or_legacy(v.type_oid, self.module.generation ^ 0xa5a5),
        }
    }

    pub(crate) fn name(&self) -> String {
        match self.kind {
            RelationKind::Table(c) => c.table.clone(),
            RelationKind::View(v) => v.name.clone(),
        }
    }

    pub(crate) fn schema(&self) -> &'a str {
        &self.module.name
    }

    /// A view's planned column types from `types`, for [`Self::attributes`].
    pub(crate) fn view_types<'t>(&self, types: &'t super::ViewTypes) -> Option<&'t [u32]> {
        types
            .get(&(self.module.name.clone(), self.name()))
            .map(Vec::as_slice)
    }

    pub(crate) fn namespace(&self) -> u32 {
        Snapshot::namespace_oid(self.module)
    }

    pub(crate) fn class(&self) -> Option<&'a ClassDef> {
        match self.kind {
            RelationKind::Table(c) => Some(c),
            RelationKind::View(_) => None,
        }
    }

    /// Its attributes; a view's columns have the types `view_types` gives
    /// (text where it gives none).
    pub(crate) fn attributes(&self, view_types: Option<&[u32]>) -> Vec<Attribute> {
        // Callers that list a view's columns pass its types.
        match self.kind {
            RelationKind::Table(c) => {
                let mut out = Vec::with_capacity(c.columns.len() + 1);
                if !c.hidden_id {
                    out.push(Attribute {
                        num: 1,
                        name: "id".into(),
                        type_oid: types::INT8,
                        typmod: -1,
                        not_null: true,
                        default: None,
                        identity: "",
                    });
                }
                for col in &c.columns {
                    let num = i16::try_from(out.len() + 1).unwrap_or(i16::MAX);
                    let (type_oid, typmod) = crate::convert::column_type(col);
                    out.push(Attribute {
                        num,
                        name: col.name.clone(),
                        type_oid,
                        typmod,
                        not_null: !col.nullable,
                        default: default_text(
                            col,
                            self.schema(),
                            &c.table,
                            self.search_path.iter().any(|p| p == self.schema()),
                        )
                        .map(|t| {
                            (
                                or_legacy(col.default_oid, c.id ^ (u64::from(col.id) << 24)),
                                t,
                            )
                        }),
                        identity: match (col.sequence, col.identity_always) {
                            (Some(_), true) => "a",
                            _ => "",
                        },
                    });
                }
                out
            }
            RelationKind::View(v) => v
                .columns
                .iter()
                .enumerate()
                .map(|(i, name)| Attribute {
                    num: i16::try_from(i + 1).unwrap_or(i16::MAX),
                    name: name.clone(),
                    type_oid: view_types
                        .and_then(|t| t.get(i).copied())
                        .unwrap_or(types::TEXT),
                    typmod: -1,
                    not_null: false,
                    default: None,
                    identity: "",
                })
                .collect(),
        }
    }

    pub(crate) fn attnum(&self, column: &str) -> i16 {
        self.attributes(None)
            .iter()
            .find(|a| a.name == column)
            .map(|a| a.num)
            .unwrap_or(0)
    }

    /// Its indexes: the primary key `id` is, then the declared ones.
    pub(crate) fn indexes(&self) -> Vec<Index> {
        let Some(c) = self.class() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if !c.hidden_id {
            out.push(Index {
                oid: or_legacy(c.id_index_oid, c.id ^ 0x2),
                name: pkey_name(c),
                columns: vec![(1, "id".into())],
                unique: true,
                primary: true,
                constraint_oid: Some(or_legacy(c.id_constraint_oid, c.id ^ 0x3)),
            });
        }
        for i in &c.indexes {
            out.push(Index {
                oid: or_legacy(i.oid, i.id),
                name: i.name.clone(),
                columns: i
                    .columns
                    .iter()
                    .map(|n| (self.attnum(n), n.clone()))
                    .collect(),
                unique: i.unique,
                primary: i.primary,
                constraint_oid: i
                    .constraint
                    .then(|| or_legacy(i.constraint_oid, i.id ^ 0x1)),
            });
        }
        out
    }

    /// Its foreign keys: one per reference column of a Python class (to
    /// the target's `id`) and per `REFERENCES` of a table made by SQL (to
    /// the named key, in any schema of `s`).
    pub(crate) fn foreign_keys(&self, s: &Snapshot) -> Vec<ForeignKey> {
        let Some(c) = self.class() else {
            return Vec::new();
        };
        let module = self.module;
        c.columns
            .iter()
            .filter_map(|col| {
                let oid = or_legacy(col.fkey_oid, c.id ^ (u64::from(col.id) << 28));
                let column = (self.attnum(&col.name), col.name.clone());
                if let Some(fk) = &col.references {
                    let m = s.modules.iter().find(|m| m.name == fk.schema)?;
                    let t = m.table(&fk.table)?;
                    let index = t
                        .indexes
                        .iter()
                        .find(|i| i.unique && i.columns.len() == 1 && i.columns[0] == fk.column)?;
                    let target = Relation {
                        module: m,
                        kind: RelationKind::Table(t),
                        search_path: self.search_path,
                    };
                    return Some(ForeignKey {
                        oid,
                        name: fk.name.clone(),
                        column,
                        target: or_legacy(t.oid, t.id),
                        target_schema: m.name.clone(),
                        target_table: t.table.clone(),
                        target_column: (target.attnum(&fk.column), fk.column.clone()),
                        target_index: or_legacy(index.oid, index.id),
                        target_index_name: index.name.clone(),
                        type_oid: crate::convert::column_type(col).0,
                        on_delete: fk.on_delete,
                    });
                }
                let SqlType::Ref(target) = &col.ty else {
                    return None;
                };
                let t = module.class(target)?;
                Some(ForeignKey {
                    oid,
                    name: format!("{}_{}_fkey", c.table, col.name),
                    column,
                    target: or_legacy(t.oid, t.id),
                    target_schema: module.name.clone(),
                    target_table: t.table.clone(),
                    target_column: (1, "id".into()),
                    target_index: or_legacy(t.id_index_oid, t.id ^ 0x2),
                    target_index_name: format!("{}_pkey", t.table),
                    type_oid: types::INT8,
                    on_delete: amber_catalog::OnDelete::NoAction,
                })
            })
            .collect()
    }
}
