//! INSERT, UPDATE and DELETE: objects created, changed and deleted through
//! the session's transaction. Single-object statements by id with constant
//! values take a direct path; others find their rows through DataFusion.

use crate::constant::{constant_value, constant_values};
use crate::convert;
use crate::error::SqlError;
use crate::exact::ExactNumeric;
use crate::rowexpr;
use crate::session::{split_qualified, Output, Session};
use crate::table;
use amber_catalog::{object_key, ClassDef, ColumnDef, ModuleDef, SqlType};
use amber_runtime::TxnHandle;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::sql::sqlparser::ast::{
    self, AssignmentTarget, BinaryOperator, Expr, FromTable, ObjectName, SelectItem, SetExpr,
    Statement, TableFactor, TableObject,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde_json::{Map, Value as Json};
use std::collections::HashSet;
use std::sync::Arc;

pub(crate) type Object = Map<String, Json>;

/// References a bulk load has seen exist: (column index, id).
pub(crate) type RefsVerified = HashSet<(usize, i64)>;
/// At most this many are remembered (16 bytes each, plus the set's own).
const REFS_VERIFIED_MAX: usize = 1 << 16;

/// One object an UPDATE changes.
struct Change {
    oid: u64,
    /// (class id, object), when finding the new values already loaded it.
    loaded: Option<(u64, Object)>,
    /// The new values of the SET columns.
    values: Vec<ScalarValue>,
}

type Changes = Vec<Change>;

impl Session {
    pub(crate) fn resolve_table(
        &self,
        name: &ObjectName,
    ) -> Result<(Arc<ModuleDef>, ClassDef), SqlError> {
        // `UPDATE ONLY t` (`parse.rs`): the rows are found by a query that
        // reads t alone; the class is t's.
        let unprefixed = |t: &str| {
            t.strip_prefix(crate::table::ONLY_PREFIX)
                .unwrap_or(t)
                .to_string()
        };
        let parts = crate::session::name_parts(name);
        let (schema, table) = match parts.as_slice() {
            [table] => {
                let table = unprefixed(table);
                (self.schema_of_bare(&table), table)
            }
            _ => {
                let (schema, table) = split_qualified(name).ok_or_else(|| {
                    SqlError::new("42P01", format!("relation \"{name}\" does not exist"))
                })?;
                (schema, unprefixed(&table))
            }
        };
        let module = self
            .module(&schema)
            .ok_or_else(|| SqlError::new("42P01", format!("relation \"{name}\" does not exist")))?;
        let class = module
            .table(&table)
            .ok_or_else(|| SqlError::new("42P01", format!("relation \"{name}\" does not exist")))?
            .clone();
        Ok((module, class))
    }

    /// The schema an unqualified relation name finds its relation in: the
    /// first of search_path that has it (else the first, for the error).
    pub(crate) fn schema_of_bare(&self, name: &str) -> String {
        let path = self.search_path();
        path.iter()
            .find(|s| {
                self.module(s).is_some_and(|m| {
                    m.table(name).is_some() || m.shape.views.iter().any(|v| v.name == name)
                })
            })
            .or(path.first())
            .cloned()
            .unwrap_or_else(|| crate::modules::PUBLIC_SCHEMA.to_string())
    }

    pub(crate) async fn insert(
        &mut self,
        ins: &ast::Insert,
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<Output, SqlError> {
        let TableObject::TableName(name) = &ins.table else {
            return Err(SqlError::unsupported("INSERT into a table function"));
        };
        let (module, class) = self.resolve_table(name)?;
        let settings = self.value_settings();
        let targets = target_columns(
            &class,
            &insert_column_names(&ins.columns),
            &name.to_string(),
        )?;
        // `DEFAULT VALUES`: one row of defaults.
        let default_values = default_values_query()?;
        let source = match ins.source.as_ref() {
            Some(s) => s.as_ref(),
            None if ins.columns.is_empty() && ins.assignments.is_empty() => &default_values,
            None => return Err(SqlError::unsupported("INSERT without VALUES or SELECT")),
        };
        // `VALUES (1, DEFAULT)`: each DEFAULT cell is left out of its row's
        // object, so the column's default applies.
        let (source, defaults) = values_defaults(source);
        let source = &source;
        let fast = match source.body.as_ref() {
            SetExpr::Values(values) => {
                let mut rows = Vec::with_capacity(values.rows.len());
                for row in &values.rows {
                    match constant_values(row, params, &settings)? {
                        Some(r) => rows.push(r),
                        None => break,
                    }
                }
                (rows.len() == values.rows.len()).then_some(rows)
            }
            _ => None,
        };
        let rows: Vec<Vec<ScalarValue>> = match fast {
            Some(rows) => rows,
            None => {
                let (_schema, batches) = self.run_query(source, params, txn).await?;
                let mut rows = Vec::new();
                for b in &batches {
                    for r in 0..b.num_rows() {
                        rows.push(
                            (0..b.num_columns())
                                .map(|c| convert::cell(b.column(c), r))
                                .collect::<Result<Vec<_>, _>>()?,
                        );
                    }
                }
                rows
            }
        };
        let fk_modules = self.foreign_key_modules(&class, false, txn)?;
        let mut returned = Vec::with_capacity(rows.len());
        for (row_index, row) in rows.iter().enumerate() {
            if row.len() > targets.len() {
                return Err(SqlError::syntax(
                    "INSERT has more expressions than target columns",
                ));
            }
            // Without a column list, fewer values fill the first columns
            // (the rest take their defaults), as in PostgreSQL.
            if row.len() < targets.len() && !ins.columns.is_empty() {
                return Err(SqlError::syntax(
                    "INSERT has more target columns than expressions",
                ));
            }
            let skipped = defaults.get(row_index);
            let fields: Vec<usize> = (0..row.len())
                .filter(|f| !skipped.is_some_and(|d| d.contains(f)))
                .collect();
            let row_targets: Vec<usize> = fields.iter().map(|f| targets[*f]).collect();
            let obj = new_object(&class, &row_targets, &self.engine.store, |field, col| {
                convert::column_json(col, &row[fields[field]], &settings)
            })?;
            self.check_object(&module, &class, &obj, txn, None)?;
            let oid = self.engine.store.allocate_oid()?;
            crate::index::write(&mut *lock(txn)?, &module.name, &class, oid, None, &obj)?;
            if let Some(all) = &fk_modules {
                crate::foreign_keys::check_references(
                    &*lock(txn)?,
                    all,
                    &module.name,
                    &class,
                    &obj,
                )?;
            }
            returned.push(write_object(&class, &class, oid, &obj, txn)?);
        }
        let tag = format!("INSERT 0 {}", rows.len());
        self.finish_dml(&class, ins.returning.as_deref(), returned, tag, txn)
            .await
    }

    pub(crate) async fn update(
        &mut self,
        upd: &ast::Update,
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<Output, SqlError> {
        let (name, alias) = match &upd.table.relation {
            TableFactor::Table { name, alias, .. } => (name, alias),
            _ => return Err(SqlError::unsupported("UPDATE of this kind of relation")),
        };
        if upd.from.is_some() || !upd.table.joins.is_empty() {
            return Err(SqlError::unsupported("UPDATE ... FROM"));
        }
        let (module, class) = self.resolve_table(name)?;
        let settings = self.value_settings();
        let mut columns = Vec::with_capacity(upd.assignments.len());
        for a in &upd.assignments {
            let AssignmentTarget::ColumnName(c) = &a.target else {
                return Err(SqlError::unsupported("tuple assignment"));
            };
            let cname =
                c.0.last()
                    .and_then(|p| p.as_ident())
                    .map(|i| i.value.clone())
                    .unwrap_or_default();
            let always = class
                .columns
                .iter()
                .any(|k| k.name == cname && k.identity_always);
            if cname == "id" && !class.hidden_id || always {
                return Err(SqlError::new(
                    "428C9",
                    format!("column \"{cname}\" can only be updated to DEFAULT"),
                )
                .with_detail(Some(format!(
                    "Column \"{cname}\" is an identity column defined as GENERATED ALWAYS."
                ))));
            }
            let col = class
                .columns
                .iter()
                .find(|k| k.name == cname)
                .ok_or_else(|| {
                    SqlError::new(
                        "42703",
                        format!(
                            "column \"{cname}\" of relation \"{}\" does not exist",
                            class.table
                        ),
                    )
                })?;
            columns.push(col.clone());
        }
        // (oid, new values) for each row to change.
        let assigned: Vec<Expr> = upd.assignments.iter().map(|a| a.value.clone()).collect();
        let by_id = match class.hidden_id {
            false => id_equality(upd.selection.as_ref(), params),
            true => None,
        };
        let direct = match by_id {
            Some(oid) => match constant_values(&assigned, params, &settings)? {
                Some(values) => Some(vec![Change {
                    oid,
                    loaded: None,
                    values,
                }]),
                // `SET n = n + $2`: computed on the object itself.
                None => {
                    self.computed_on_object(&module, &class, &columns, oid, &assigned, params, txn)?
                }
            },
            None => None,
        };
        let changes: Changes = match direct {
            Some(changes) => changes,
            None => {
                let items: Vec<String> = upd
                    .assignments
                    .iter()
                    .map(|a| a.value.to_string())
                    .collect();
                let mut sql = format!(
                    "SELECT {}{}{} FROM {}",
                    id_column(&class),
                    if items.is_empty() { "" } else { ", " },
                    items.join(", "),
                    name
                );
                if let Some(a) = alias {
                    // The alias's name: its Display repeats an explicit AS.
                    sql.push_str(&format!(" AS {}", a.name));
                }
                if let Some(sel) = &upd.selection {
                    sql.push_str(&format!(" WHERE {sel}"));
                }
                let rows = self.query_rows(&sql, params, txn, &class).await?;
                rows.into_iter()
                    .map(|mut r| {
                        let oid = match r.first() {
                            Some(ScalarValue::Int64(Some(i))) => *i as u64,
                            _ => return Err(SqlError::internal("UPDATE lost the object id")),
                        };
                        r.remove(0);
                        Ok(Change {
                            oid,
                            loaded: None,
                            values: r,
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let fk_modules = self.foreign_key_modules(&class, true, txn)?;
        let referenced = fk_modules
            .as_deref()
            .is_some_and(|all| crate::foreign_keys::is_referenced(all, &module.name, &class));
        let mut returned = Vec::with_capacity(changes.len());
        for change in changes {
            let (cid, mut obj) = match change.loaded {
                Some(loaded) => loaded,
                None => match self.load_object(&module, &class, change.oid, txn)? {
                    Some(loaded) => loaded,
                    None => continue,
                },
            };
            let before = (!class.indexes.is_empty()).then(|| obj.clone());
            for (col, v) in columns.iter().zip(&change.values) {
                obj.insert(col.name.clone(), convert::column_json(col, v, &settings)?);
            }
            self.check_object(&module, &class, &obj, txn, None)?;
            if let Some(before) = &before {
                crate::index::write(
                    &mut *lock(txn)?,
                    &module.name,
                    &class,
                    change.oid,
                    Some(before),
                    &obj,
                )?;
                if let Some(all) = &fk_modules {
                    let mut guard = lock(txn)?;
                    crate::foreign_keys::check_references(&guard, all, &module.name, &class, &obj)?;
                    if referenced {
                        crate::foreign_keys::check_referenced(
                            &mut guard,
                            all,
                            &module.name,
                            &class,
                            before,
                            Some(&obj),
                        )?;
                    }
                }
            }
            let stored = module.class_by_id(cid).unwrap_or(&class);
            returned.push(write_object(&class, stored, change.oid, &obj, txn)?);
        }
        let tag = format!("UPDATE {}", returned.len());
        self.finish_dml(&class, upd.returning.as_deref(), returned, tag, txn)
            .await
    }

    /// The new values of a one-object UPDATE whose SET expressions the
    /// row evaluator computes from the object itself; `None` when one of
    /// them needs planning.
    #[allow(clippy::too_many_arguments)]
    fn computed_on_object(
        &self,
        module: &ModuleDef,
        class: &ClassDef,
        columns: &[amber_catalog::ColumnDef],
        oid: u64,
        assigned: &[Expr],
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<Option<Changes>, SqlError> {
        let Some((cid, obj)) = self.load_object(module, class, oid, txn)? else {
            return Ok(Some(Vec::new()));
        };
        let settings = self.value_settings();
        let mut values = Vec::with_capacity(assigned.len());
        for (col, e) in columns.iter().zip(assigned) {
            match rowexpr::eval(e, class, &obj, params, &settings)? {
                Some(v) if rowexpr::fits(&col.ty, &v) => values.push(v),
                _ => return Ok(None),
            }
        }
        // The object goes along, so the write does not read it again.
        Ok(Some(vec![Change {
            oid,
            loaded: Some((cid, obj)),
            values,
        }]))
    }

    pub(crate) async fn delete(
        &mut self,
        del: &ast::Delete,
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<Output, SqlError> {
        let tables = match &del.from {
            FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
        };
        let [twj] = tables.as_slice() else {
            return Err(SqlError::unsupported("DELETE from several tables"));
        };
        let TableFactor::Table { name, alias, .. } = &twj.relation else {
            return Err(SqlError::unsupported("DELETE from this kind of relation"));
        };
        if del.using.is_some() {
            return Err(SqlError::unsupported("DELETE ... USING"));
        }
        let (module, class) = self.resolve_table(name)?;
        let by_id = match class.hidden_id {
            false => id_equality(del.selection.as_ref(), params),
            true => None,
        };
        let oids: Vec<u64> = match by_id {
            Some(oid) => vec![oid],
            None => {
                let mut sql = format!("SELECT {} FROM {name}", id_column(&class));
                if let Some(a) = alias {
                    // The alias's name: its Display repeats an explicit AS.
                    sql.push_str(&format!(" AS {}", a.name));
                }
                if let Some(sel) = &del.selection {
                    sql.push_str(&format!(" WHERE {sel}"));
                }
                self.query_rows(&sql, params, txn, &class)
                    .await?
                    .into_iter()
                    .filter_map(|r| match r.first() {
                        Some(ScalarValue::Int64(Some(i))) => Some(*i as u64),
                        _ => None,
                    })
                    .collect()
            }
        };
        let fk_modules = self
            .foreign_key_modules(&class, true, txn)?
            .filter(|all| crate::foreign_keys::is_referenced(all, &module.name, &class));
        let mut returned = Vec::with_capacity(oids.len());
        for oid in oids {
            let Some((cid, obj)) = self.load_object(&module, &class, oid, txn)? else {
                continue;
            };
            let mut guard = lock(txn)?;
            crate::index::remove(&mut guard, &class, oid, &obj)?;
            guard.delete(&object_key(cid, oid))?;
            // After the delete: a row referencing itself goes with it.
            if let Some(all) = &fk_modules {
                crate::foreign_keys::check_referenced(
                    &mut guard,
                    all,
                    &module.name,
                    &class,
                    &obj,
                    None,
                )?;
            }
            drop(guard);
            returned.push(object_row(&class, oid, &obj));
        }
        let tag = format!("DELETE {}", returned.len());
        self.finish_dml(&class, del.returning.as_deref(), returned, tag, txn)
            .await
    }

    /// The direct path for `SELECT cols FROM t WHERE id = <constant>`: one
    /// key read, no planning. `None` when the query has any other shape.
    pub(crate) fn point_read(
        &self,
        query: &ast::Query,
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<Option<Output>, SqlError> {
        let Some(select) = crate::constant::plain_select(query) else {
            return Ok(None);
        };
        if select.distinct.is_some()
            || select.top.is_some()
            || select.into.is_some()
            || select.having.is_some()
            || !matches!(&select.group_by, ast::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
            || select.from.len() != 1
            || !select.from[0].joins.is_empty()
        {
            return Ok(None);
        }
        let TableFactor::Table {
            name, args: None, ..
        } = &select.from[0].relation
        else {
            return Ok(None);
        };
        let Some(oid) = id_equality(select.selection.as_ref(), params) else {
            return Ok(None);
        };
        let Ok((module, class)) = self.resolve_table(name) else {
            return Ok(None);
        };
        if class.hidden_id {
            // `id` is an ordinary column there, if any.
            return Ok(None);
        }
        // Values go out as stored: numerics exactly.
        let schema = table::class_schema(&class, &ExactNumeric::all());
        let types = table::class_types(&class);
        // (output name, index into the class row)
        let mut picks: Vec<(String, usize)> = Vec::new();
        for item in &select.projection {
            match item {
                SelectItem::Wildcard(opts)
                    if opts == &ast::WildcardAdditionalOptions::default() =>
                {
                    for (i, f) in schema.fields().iter().enumerate() {
                        picks.push((f.name().clone(), i));
                    }
                }
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    let column = match e {
                        Expr::Identifier(i) => i.value.clone(),
                        _ => return Ok(None),
                    };
                    let Some(idx) = schema.fields().iter().position(|f| f.name() == &column) else {
                        return Ok(None);
                    };
                    let out = match item {
                        SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                        _ => column,
                    };
                    picks.push((out, idx));
                }
                _ => return Ok(None),
            }
        }
        let row = self
            .load_object(&module, &class, oid, txn)?
            .map(|(_cid, obj)| object_row(&class, oid, &obj));
        let fields: Vec<_> = picks
            .iter()
            .map(|(n, i)| schema.field(*i).clone().with_name(n.clone()))
            .collect();
        let out_types: Vec<SqlType> = picks.iter().map(|(_, i)| types[*i].clone()).collect();
        let rows: Vec<Vec<Json>> = row
            .map(|r| vec![picks.iter().map(|(_, i)| r[*i].clone()).collect()])
            .unwrap_or_default();
        let out_schema = convert::schema_of(fields);
        let batch = table::batch(out_schema.clone(), &out_types, &rows)?;
        Ok(Some(Output::Rows {
            schema: out_schema,
            batches: vec![batch],
            tag: format!("SELECT {}", rows.len()),
        }))
    }

    /// Loads an object of `class` or a subclass: (its class id, its state).
    fn load_object(
        &self,
        module: &ModuleDef,
        class: &ClassDef,
        oid: u64,
        txn: &TxnHandle,
    ) -> Result<Option<(u64, Object)>, SqlError> {
        let guard = lock(txn)?;
        for cid in module.class_ids_with_subclasses(&class.name) {
            if let Some(raw) = guard.get(&object_key(cid, oid))? {
                let stored = module.class_by_id(cid).unwrap_or(class);
                let obj = amber_catalog::row::decode(stored, &raw)
                    .map_err(|e| SqlError::new("XX001", format!("object {oid}: {e}")))?;
                return Ok(Some((cid, obj)));
            }
        }
        Ok(None)
    }

    /// NOT NULL and reference checks before an object is written.
    /// `verified`: references (column index, id) already found to exist
    /// in this transaction, which a bulk load (COPY) need not read again
    /// (an object this transaction read cannot vanish before it commits:
    /// a concurrent delete conflicts).
    /// Every module, when a write of rows of `class` has foreign keys to
    /// check (`foreign_keys.rs`): its own references, and, when the write
    /// removes keys (`removes_keys`: UPDATE, DELETE), the references other
    /// tables may hold to a single-column unique key of it. `None` when
    /// there can be none (only tables made by SQL have foreign keys), so
    /// such a write neither reads every module nor makes them part of its
    /// transaction.
    pub(crate) fn foreign_key_modules(
        &self,
        class: &ClassDef,
        removes_keys: bool,
        txn: &TxnHandle,
    ) -> Result<Option<Vec<Arc<ModuleDef>>>, SqlError> {
        let references = class.columns.iter().any(|c| c.references.is_some());
        let referable = removes_keys
            && class
                .indexes
                .iter()
                .any(|i| i.unique && i.columns.len() == 1);
        if !class.hidden_id || !(references || referable) {
            return Ok(None);
        }
        let all = self.engine.catalog.resolve_all(&*lock(txn)?)?;
        Ok(Some(all.iter().cloned().collect()))
    }

    /// The compiled CHECK constraints of `class` of `module` (cached per
    /// module version; at most CHECKS_CACHED_MAX shapes).
    fn compiled_checks(
        &self,
        module: &ModuleDef,
        class: &ClassDef,
    ) -> Result<Arc<crate::checks::Checks>, SqlError> {
        const CHECKS_CACHED_MAX: usize = 32;
        let key = (module.generation, class.id);
        let mut cache = self
            .checks
            .lock()
            .map_err(|_| SqlError::internal("checks cache poisoned"))?;
        if let Some((_, c)) = cache.iter().find(|(k, _)| *k == key) {
            return Ok(c.clone());
        }
        let compiled = Arc::new(crate::checks::Checks::compile(class)?);
        if cache.len() >= CHECKS_CACHED_MAX {
            cache.clear();
        }
        cache.push((key, compiled.clone()));
        Ok(compiled)
    }

    pub(crate) fn check_object(
        &self,
        module: &ModuleDef,
        class: &ClassDef,
        obj: &Object,
        txn: &TxnHandle,
        mut verified: Option<&mut RefsVerified>,
    ) -> Result<(), SqlError> {
        for (col_index, col) in class.columns.iter().enumerate() {
            let v = obj.get(&col.name).unwrap_or(&Json::Null);
            if v.is_null() {
                if !col.nullable {
                    return Err(SqlError::new(
                        "23502",
                        format!("null value in column \"{}\" of relation \"{}\" violates not-null constraint", col.name, class.table),
                    )
                    .with_table(&module.name, &class.table)
                    .with_column(&col.name));
                }
                continue;
            }
            if let SqlType::Ref(target) = &col.ty {
                let oid = v.as_i64().unwrap_or(-1);
                let target_class = module
                    .class(target)
                    .ok_or_else(|| SqlError::internal("reference to unknown class"))?;
                let known = verified
                    .as_deref()
                    .is_some_and(|v| v.contains(&(col_index, oid)));
                let exists = known
                    || oid >= 0
                        && self
                            .load_object(module, target_class, oid as u64, txn)?
                            .is_some();
                if exists && !known {
                    if let Some(v) = verified.as_deref_mut() {
                        if v.len() < REFS_VERIFIED_MAX {
                            v.insert((col_index, oid));
                        }
                    }
                }
                if !exists {
                    return Err(SqlError::new(
                        "23503",
                        format!(
                            "insert or update on table \"{}\" violates foreign key constraint \"{}_{}_fkey\"",
                            class.table, class.table, col.name
                        ),
                    )
                    .with_detail(Some(format!("Key ({})=({oid}) is not present in table \"{}\".", col.name, target_class.table)))
                    .with_table(&module.name, &class.table)
                    .with_constraint(&format!("{}_{}_fkey", class.table, col.name)));
                }
            }
        }
        if !class.checks.is_empty() {
            self.compiled_checks(module, class)?
                .verify(&module.name, class, obj)?;
        }
        Ok(())
    }

    /// Runs the query an UPDATE or DELETE finds its rows of `target` with
    /// (its first column the object id, hidden or not).
    async fn query_rows(
        &mut self,
        sql: &str,
        params: &[ScalarValue],
        txn: &TxnHandle,
        target: &ClassDef,
    ) -> Result<Vec<Vec<ScalarValue>>, SqlError> {
        let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .map_err(|e| SqlError::syntax(e.to_string()))?;
        let Some(Statement::Query(q)) = stmts.into_iter().next() else {
            return Err(SqlError::internal("generated query did not parse"));
        };
        let (_schema, batches) = if target.hidden_id {
            // Not the prepared statement's plan: this one reads a column
            // no user query can.
            let cache = self.plan_cache.take();
            self.expose_hidden = Some(target.id);
            let out = self.run_query(&q, params, txn).await;
            self.expose_hidden = None;
            self.plan_cache = cache;
            out?
        } else {
            self.run_query(&q, params, txn).await?
        };
        let mut rows = Vec::new();
        for b in &batches {
            for r in 0..b.num_rows() {
                rows.push(
                    (0..b.num_columns())
                        .map(|c| convert::cell(b.column(c), r))
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
        }
        Ok(rows)
    }

    /// The statement's result: its tag, and with RETURNING the rows.
    async fn finish_dml(
        &mut self,
        class: &ClassDef,
        returning: Option<&[SelectItem]>,
        rows: Vec<Vec<Json>>,
        tag: String,
        txn: &TxnHandle,
    ) -> Result<Output, SqlError> {
        let Some(items) = returning else {
            return Ok(Output::Command(tag));
        };
        let items: Vec<String> = items.iter().map(|i| i.to_string()).collect();
        let sql = format!(
            "SELECT {} FROM __amber_returning AS {}",
            items.join(", "),
            class.table
        );
        let stmts = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
            .map_err(|e| SqlError::syntax(e.to_string()))?;
        let Some(Statement::Query(q)) = stmts.into_iter().next() else {
            return Err(SqlError::internal("RETURNING did not parse"));
        };
        let exact = ExactNumeric::of_statement(&Statement::Query(q.clone()));
        let schema = table::class_schema(class, &exact);
        let batch = table::batch(schema.clone(), &table::class_types(class), &rows)?;
        let mut ctx = self.statement_context(txn, &exact);
        ctx.register_temp(
            "__amber_returning",
            Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
        );
        let names = crate::names::select_item_names(&q);
        let (out_schema, batches) = ctx.run(Statement::Query(q), &[]).await?;
        let out_schema = rename(&out_schema, names.as_deref());
        let batches = batches
            .into_iter()
            .map(|b| {
                datafusion::arrow::record_batch::RecordBatch::try_new(
                    out_schema.clone(),
                    b.columns().to_vec(),
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SqlError::internal(e.to_string()))?;
        Ok(Output::Rows {
            schema: out_schema,
            batches,
            tag,
        })
    }

    /// Parameter types and RETURNING columns of a DML statement.
    pub(crate) async fn describe_dml(
        &mut self,
        stmt: &Statement,
        txn: &TxnHandle,
    ) -> Result<(Vec<Option<DataType>>, HashSet<usize>, Option<SchemaRef>), SqlError> {
        let mut types: Vec<Option<DataType>> = Vec::new();
        // Parameters written to jsonb columns (Arrow computes them as Utf8).
        let mut jsonb: HashSet<usize> = HashSet::new();
        let mut set = |idx: usize, t: DataType| {
            if types.len() <= idx {
                types.resize(idx + 1, None);
            }
            if types[idx].is_none() {
                types[idx] = Some(t);
            }
        };
        let (class, returning, where_sql) = match stmt {
            Statement::Insert(ins) => {
                let TableObject::TableName(name) = &ins.table else {
                    return Ok((types, jsonb, None));
                };
                let (_m, class) = self.resolve_table(name)?;
                let targets = target_columns(
                    &class,
                    &insert_column_names(&ins.columns),
                    &name.to_string(),
                )?;
                if let Some(SetExpr::Values(values)) = ins.source.as_ref().map(|s| s.body.as_ref())
                {
                    for row in &values.rows {
                        for (i, e) in row.iter().enumerate() {
                            if let (Some(idx), Some(&col)) = (placeholder(e), targets.get(i)) {
                                if let Some(c) = class.columns.get(col) {
                                    set(idx, convert::arrow_type(&c.ty));
                                    if matches!(c.ty, SqlType::Jsonb) {
                                        jsonb.insert(idx);
                                    }
                                }
                            }
                        }
                    }
                }
                (class, ins.returning.clone(), None)
            }
            Statement::Update(upd) => {
                let TableFactor::Table { name, .. } = &upd.table.relation else {
                    return Ok((types, jsonb, None));
                };
                let (_m, class) = self.resolve_table(name)?;
                for a in &upd.assignments {
                    if let (AssignmentTarget::ColumnName(c), Some(idx)) =
                        (&a.target, placeholder(&a.value))
                    {
                        let cname =
                            c.0.last()
                                .and_then(|p| p.as_ident())
                                .map(|i| i.value.clone())
                                .unwrap_or_default();
                        if let Some(col) = class.columns.iter().find(|k| k.name == cname) {
                            set(idx, convert::arrow_type(&col.ty));
                            if matches!(col.ty, SqlType::Jsonb) {
                                jsonb.insert(idx);
                            }
                        }
                    }
                }
                // Parameters inside SET expressions (`n + $2`) and in WHERE
                // are typed by planning them as a query over the class.
                let mut items = vec!["id".to_string()];
                items.extend(
                    upd.assignments
                        .iter()
                        .filter(|a| placeholder(&a.value).is_none())
                        .map(|a| a.value.to_string()),
                );
                let mut w = format!("SELECT {} FROM {name}", items.join(", "));
                if let Some(s) = &upd.selection {
                    w.push_str(&format!(" WHERE {s}"));
                }
                (class, upd.returning.clone(), Some(w))
            }
            Statement::Delete(del) => {
                let tables = match &del.from {
                    FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
                };
                let Some(TableFactor::Table { name, .. }) = tables.first().map(|t| &t.relation)
                else {
                    return Ok((types, jsonb, None));
                };
                let (_m, class) = self.resolve_table(name)?;
                let w = del
                    .selection
                    .as_ref()
                    .map(|s| format!("SELECT id FROM {name} WHERE {s}"));
                (class, del.returning.clone(), w)
            }
            _ => return Ok((types, jsonb, None)),
        };
        if let Some(sql) = where_sql {
            let ctx = self.statement_context(txn, &ExactNumeric::none());
            let stmts = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
                .map_err(|e| SqlError::syntax(e.to_string()))?;
            if let Some(s) = stmts.into_iter().next() {
                let plan = ctx.plan(s)?;
                let any_arrays = crate::any_arrays::placeholder_types(&plan)
                    .into_iter()
                    .map(|(n, t)| (n, Some(t)));
                for (name, t) in plan.get_parameter_types()?.into_iter().chain(any_arrays) {
                    if let (Some(idx), Some(t)) = (
                        name.trim_start_matches('$')
                            .parse::<usize>()
                            .ok()
                            .and_then(|i| i.checked_sub(1)),
                        t,
                    ) {
                        set(idx, t);
                    }
                }
            }
        }
        let columns = match returning {
            None => None,
            Some(items) => {
                let schema = table::class_schema(&class, &ExactNumeric::none());
                let mut ctx = self.statement_context(txn, &ExactNumeric::none());
                ctx.register_temp(
                    "__amber_returning",
                    Arc::new(MemTable::try_new(schema, vec![vec![]])?),
                );
                let items: Vec<String> = items.iter().map(|i| i.to_string()).collect();
                let sql = format!(
                    "SELECT {} FROM __amber_returning AS {}",
                    items.join(", "),
                    class.table
                );
                let stmts = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
                    .map_err(|e| SqlError::syntax(e.to_string()))?;
                let Some(Statement::Query(q)) = stmts.into_iter().next() else {
                    return Ok((types, jsonb, None));
                };
                let names = crate::names::select_item_names(&q);
                let plan = ctx.plan(Statement::Query(q))?;
                Some(rename(
                    &Arc::new(plan.schema().as_arrow().clone()),
                    names.as_deref(),
                ))
            }
        };
        Ok((types, jsonb, columns))
    }
}

fn rename(schema: &SchemaRef, names: Option<&[Option<String>]>) -> SchemaRef {
    let Some(names) = names else {
        return schema.clone();
    };
    if names.iter().any(|n| n.is_none()) || names.len() != schema.fields().len() {
        return schema.clone();
    }
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .zip(names)
        .map(|(f, n)| f.as_ref().clone().with_name(n.clone().unwrap_or_default()))
        .collect();
    Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
}

pub(crate) fn lock(
    txn: &TxnHandle,
) -> Result<std::sync::MutexGuard<'_, amber_storage::Txn>, SqlError> {
    txn.lock()
        .map_err(|_| SqlError::internal("transaction lock poisoned"))
}

/// Stores an object of class `stored` (`class` or a subclass); returns
/// its row as a row of `class` (`id` first).
fn write_object(
    class: &ClassDef,
    stored: &ClassDef,
    oid: u64,
    obj: &Object,
    txn: &TxnHandle,
) -> Result<Vec<Json>, SqlError> {
    put_object(stored, oid, obj, &mut *lock(txn)?)?;
    Ok(object_row(class, oid, obj))
}

/// Stores an object under its class's id.
pub(crate) fn put_object(
    class: &ClassDef,
    oid: u64,
    obj: &Object,
    txn: &mut amber_storage::Txn,
) -> Result<(), SqlError> {
    let bytes = amber_catalog::row::encode(class, obj)?;
    txn.put(&object_key(class.id, oid), &bytes)?;
    Ok(())
}

/// The column a statement reads the object ids of `class` by.
fn id_column(class: &ClassDef) -> &'static str {
    match class.hidden_id {
        false => "id",
        true => table::HIDDEN_ID_COLUMN,
    }
}

/// An object as a row of its class table ([`table::class_types`]).
pub(crate) fn object_row(class: &ClassDef, oid: u64, obj: &Object) -> Vec<Json> {
    let mut row = Vec::with_capacity(class.columns.len() + 1);
    if !class.hidden_id {
        row.push(Json::from(oid));
    }
    for c in &class.columns {
        row.push(obj.get(&c.name).cloned().unwrap_or(Json::Null));
    }
    row
}

/// The class columns an INSERT or COPY FROM fills, as indexes into
/// `class.columns`, in the order named (all of them when none are).
pub(crate) fn target_columns(
    class: &ClassDef,
    names: &[String],
    table: &str,
) -> Result<Vec<usize>, SqlError> {
    if names.is_empty() {
        if let Some(c) = class.columns.iter().find(|c| c.identity_always) {
            return Err(SqlError::new(
                "428C9",
                format!(
                    "cannot insert a non-DEFAULT value into column \"{}\"",
                    c.name
                ),
            )
            .with_detail(Some(format!(
                "Column \"{}\" is an identity column defined as GENERATED ALWAYS.",
                c.name
            ))));
        }
        return Ok((0..class.columns.len()).collect());
    }
    names
        .iter()
        .map(|name| {
            if name == "id" && !class.hidden_id {
                return Err(SqlError::new(
                    "428C9",
                    "cannot insert a non-DEFAULT value into column \"id\"",
                )
                .with_detail(Some(
                    "Column \"id\" is an identity column defined as GENERATED ALWAYS.".into(),
                )));
            }
            let at = column_index(class, name, table)?;
            if class.columns[at].identity_always {
                return Err(SqlError::new(
                    "428C9",
                    format!("cannot insert a non-DEFAULT value into column \"{name}\""),
                )
                .with_detail(Some(format!(
                    "Column \"{name}\" is an identity column defined as GENERATED ALWAYS."
                ))));
            }
            Ok(at)
        })
        .collect()
}

/// The index of attribute `name` in `class.columns` (42703 if none).
pub(crate) fn column_index(class: &ClassDef, name: &str, table: &str) -> Result<usize, SqlError> {
    class
        .columns
        .iter()
        .position(|k| k.name == name)
        .ok_or_else(|| {
            SqlError::new(
                "42703",
                format!("column \"{name}\" of relation \"{table}\" does not exist"),
            )
        })
}

/// The names of an INSERT's target columns as written.
fn insert_column_names(columns: &[ObjectName]) -> Vec<String> {
    columns
        .iter()
        .map(|c| {
            c.0.last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// A new object of `class`: each target column (`targets[field]`) gets
/// `value(field, column)`, every other column its sequence's next value,
/// its default or NULL.
/// `source` with each `DEFAULT` of its VALUES rows replaced by NULL, and
/// the positions replaced in each row (none for other sources).
fn values_defaults(source: &ast::Query) -> (ast::Query, Vec<HashSet<usize>>) {
    let mut source = source.clone();
    let mut defaults = Vec::new();
    if let SetExpr::Values(values) = source.body.as_mut() {
        for row in &mut values.rows {
            let mut found = HashSet::new();
            for (i, e) in row.iter_mut().enumerate() {
                if matches!(e, Expr::Identifier(id) if id.quote_style.is_none()
                    && id.value.eq_ignore_ascii_case("default"))
                {
                    *e = Expr::value(ast::Value::Null);
                    found.insert(i);
                }
            }
            defaults.push(found);
        }
    }
    (source, defaults)
}

pub(crate) fn new_object(
    class: &ClassDef,
    targets: &[usize],
    store: &amber_storage::Store,
    mut value: impl FnMut(usize, &ColumnDef) -> Result<Json, SqlError>,
) -> Result<Object, SqlError> {
    let mut obj = Object::new();
    for (index, col) in class.columns.iter().enumerate() {
        let v = match targets.iter().position(|t| *t == index) {
            Some(field) => value(field, col)?,
            None => match col.sequence {
                Some(seq) => {
                    let next = store.sequence_next(seq)?;
                    let (_, max) = col.ty.integer_range().unwrap_or((i64::MIN, i64::MAX));
                    if i64::try_from(next).map_or(true, |n| n > max) {
                        return Err(SqlError::new(
                            "2200H",
                            format!(
                                "nextval: reached maximum value of the sequence of column \"{}\" ({max})",
                                col.name
                            ),
                        ));
                    }
                    Json::from(next)
                }
                // Stored as written (PostgreSQL prints the expression so);
                // the column's length or precision applies here.
                None if col.has_default => crate::declared::apply(col, col.default.clone())?,
                None => Json::Null,
            },
        };
        obj.insert(col.name.clone(), v);
    }
    Ok(obj)
}

/// `VALUES ()`: the one row of `INSERT ... DEFAULT VALUES`, every value
/// its column's default.
fn default_values_query() -> Result<ast::Query, SqlError> {
    let mut stmts = Parser::parse_sql(&PostgreSqlDialect {}, "VALUES (1)")
        .map_err(|e| SqlError::internal(e.to_string()))?;
    let Some(Statement::Query(mut q)) = stmts.pop() else {
        return Err(SqlError::internal("VALUES did not parse"));
    };
    if let SetExpr::Values(v) = q.body.as_mut() {
        for row in v.rows.iter_mut() {
            row.content.clear();
        }
    }
    Ok(*q)
}

fn placeholder(e: &Expr) -> Option<usize> {
    match e {
        Expr::Value(v) => match &v.value {
            ast::Value::Placeholder(p) => p
                .trim_start_matches('$')
                .parse::<usize>()
                .ok()?
                .checked_sub(1),
            _ => None,
        },
        _ => None,
    }
}

/// `id = <constant>` (either side): the one object a statement touches.
fn id_equality(selection: Option<&Expr>, params: &[ScalarValue]) -> Option<u64> {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = selection?
    else {
        return None;
    };
    let is_id = |e: &Expr| match e {
        Expr::Identifier(i) => i.value == "id",
        Expr::CompoundIdentifier(p) => p.last().is_some_and(|i| i.value == "id"),
        _ => false,
    };
    let settings = crate::value::Settings::default();
    let value = if is_id(left) {
        constant_value(right, params, &settings).ok().flatten()?
    } else if is_id(right) {
        constant_value(left, params, &settings).ok().flatten()?
    } else {
        return None;
    };
    match value.cast_to(&DataType::Int64).ok()? {
        ScalarValue::Int64(Some(i)) if i >= 0 => Some(i as u64),
        _ => None,
    }
}
