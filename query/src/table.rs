//! DataFusion views of Amber: class tables that scan through the session's
//! transaction, and module functions as scalar UDFs.

use crate::convert;
use crate::error::SqlError;
use crate::exact::ExactNumeric;
use crate::value::Settings;
use amber_catalog::{object_key, ClassDef, ModuleDef, SqlType};
use amber_runtime::{CallSpec, Runtime, TxnHandle};
use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::TableProviderFilterPushDown;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::Expr;
use serde_json::Value as Json;
use std::sync::Arc;

/// The name under which UPDATE and DELETE read the object id of a table
/// whose id is hidden (a table created by SQL): never a declared column
/// (CREATE TABLE refuses names starting with `__amber`), and only in the
/// statement Amber plans to find the rows again.
pub const HIDDEN_ID_COLUMN: &str = "__amber_oid";

/// SQL types of a class table's columns: `id` first (unless hidden),
/// then the attributes.
pub fn class_types(class: &ClassDef) -> Vec<SqlType> {
    let mut types = Vec::with_capacity(class.columns.len() + 1);
    if !class.hidden_id {
        types.push(SqlType::Int8);
    }
    types.extend(class.columns.iter().map(|c| c.ty.clone()));
    types
}

/// Whether the first field of `schema`, a class table's schema, is the
/// object id (`id`, or the hidden id a DML statement asked for).
pub fn id_first(class: &ClassDef, schema: &SchemaRef) -> bool {
    !class.hidden_id
        || schema
            .fields()
            .first()
            .is_some_and(|f| f.name() == HIDDEN_ID_COLUMN)
}

/// The table's schema; numeric columns that `exact` keeps are exact text.
pub fn class_schema(class: &ClassDef, exact: &ExactNumeric) -> SchemaRef {
    class_schema_in(class, exact, "UTC", false)
}

/// As [`class_schema`], with timestamptz columns typed in the session's
/// TimeZone `zone`: the instants are the same, but a string compared with
/// such a column (`ts > '2024-01-02 08:00'`) is read in that zone, as
/// PostgreSQL reads it. `expose_hidden`: a hidden id is the first field,
/// [`HIDDEN_ID_COLUMN`].
pub fn class_schema_in(
    class: &ClassDef,
    exact: &ExactNumeric,
    zone: &str,
    expose_hidden: bool,
) -> SchemaRef {
    let mut fields = Vec::with_capacity(class.columns.len() + 1);
    if !class.hidden_id {
        let id = convert::field("id", &SqlType::Int8, false);
        fields.push(crate::column_source::with_source(id, class.oid, 1));
    } else if expose_hidden {
        fields.push(convert::field(HIDDEN_ID_COLUMN, &SqlType::Int8, false));
    }
    // pg_attribute's numbering: a visible id is column 1.
    let first_attnum = if class.hidden_id { 1 } else { 2 };
    fields.extend(class.columns.iter().enumerate().map(|(i, c)| {
        let exact_text =
            exact.keeps(&c.name) && convert::column_arrow_type(c) == convert::arrow_type(&c.ty);
        let f = if exact_text {
            convert::exact_field(&c.name, &c.ty, c.nullable)
        } else {
            convert::field(&c.name, &c.ty, c.nullable).with_data_type(convert::column_arrow_type(c))
        };
        let f = convert::declared_field(f, c.declared.as_ref());
        let f = match (&c.ty, f.data_type()) {
            (SqlType::Timestamptz, DataType::Timestamp(unit, _)) => {
                let dt = DataType::Timestamp(*unit, Some(zone.into()));
                f.with_data_type(dt)
            }
            _ => f,
        };
        let attnum = i16::try_from(i + first_attnum).unwrap_or(i16::MAX);
        crate::column_source::with_source(f, class.oid, attnum)
    }));
    convert::schema_of(fields)
}

/// Reads the objects with the given ids (of `class` or a subclass) as
/// `(class id, object id, stored bytes)`, by point reads, so only those keys join the
/// transaction's read set and a concurrent write to another object is no
/// conflict.
pub fn read_class_objects_by_ids(
    ids: &[u64],
    oids: &[u64],
    txn: &TxnHandle,
) -> Result<Vec<crate::columnar::Stored>, SqlError> {
    let guard = crate::dml::lock(txn)?;
    let mut oids = oids.to_vec();
    oids.sort_unstable();
    oids.dedup();
    let mut objects = Vec::new();
    for oid in oids {
        for cid in ids {
            if let Some(value) = guard.get(&object_key(*cid, oid))? {
                objects.push((*cid, oid, value));
                break;
            }
        }
    }
    Ok(objects)
}

/// Most ids an `id IN (...)` filter turns into point reads; a longer list
/// scans, which is cheaper than that many random reads.
const POINT_READS_MAX: usize = 1024;

/// The object ids a filter restricts the id column `id_name` to, when it
/// is `id = <literal>` or `id IN (<literals>)`; `None` when it restricts
/// otherwise.
fn id_filter(filter: &Expr, id_name: &str) -> Option<Vec<u64>> {
    use datafusion::logical_expr::{BinaryExpr, Operator};
    use datafusion::scalar::ScalarValue;
    fn literal_oid(e: &Expr) -> Option<Option<u64>> {
        match e {
            Expr::Literal(v, _) => match v {
                ScalarValue::Int64(Some(i)) => Some(u64::try_from(*i).ok()),
                ScalarValue::Int32(Some(i)) => Some(u64::try_from(*i).ok()),
                ScalarValue::Int16(Some(i)) => Some(u64::try_from(*i).ok()),
                ScalarValue::Int8(Some(i)) => Some(u64::try_from(*i).ok()),
                ScalarValue::UInt64(Some(i)) => Some(Some(*i)),
                _ => None,
            },
            Expr::Cast(c) => literal_oid(&c.expr),
            Expr::TryCast(c) => literal_oid(&c.expr),
            _ => None,
        }
    }
    let is_id = |e: &Expr| {
        let mut e = e;
        // Bounded: each step goes one cast deeper into a finite tree.
        loop {
            match e {
                Expr::Column(c) => return c.name == id_name,
                Expr::Cast(c) => e = &c.expr,
                _ => return false,
            }
        }
    };
    match filter {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => {
            let lit = if is_id(left) {
                literal_oid(right)?
            } else if is_id(right) {
                literal_oid(left)?
            } else {
                return None;
            };
            // A negative id matches nothing.
            Some(lit.into_iter().collect())
        }
        Expr::InList(list) if !list.negated && is_id(&list.expr) => {
            if list.list.len() > POINT_READS_MAX {
                return None;
            }
            let mut out = Vec::with_capacity(list.list.len());
            for e in &list.list {
                out.extend(literal_oid(e)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// `filter` with every parameter placeholder as the id 0: the shape a
/// cached plan's filter will have once its parameters are bound, so that
/// `id = $1` is pushed into the scan of a generic plan as `id = 5` is.
fn bound_placeholders(filter: &Expr) -> Expr {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::scalar::ScalarValue;
    filter
        .clone()
        .transform_up(|e| match e {
            Expr::Placeholder(_) => Ok(Transformed::yes(Expr::Literal(
                ScalarValue::Int64(Some(0)),
                None,
            ))),
            e => Ok(Transformed::no(e)),
        })
        .map(|t| t.data)
        .unwrap_or_else(|_| filter.clone())
}

/// How `parse.rs` names the table of `FROM ONLY t` (`t` renamed
/// `<prefix>t AS t`): the statement's catalog gives it t's objects alone.
pub const ONLY_PREFIX: &str = "__amber_only__";

/// A class as a DataFusion table, read through one transaction.
#[derive(Debug)]
pub struct ClassTable {
    module: Arc<ModuleDef>,
    class: ClassDef,
    schema: SchemaRef,
    txn: TxnHandle,
    /// The id column's name, if the table has one (`id`, or the exposed
    /// hidden id): what filters choose point reads by.
    id_name: Option<&'static str>,
    /// The classes whose objects the table holds: the class and its
    /// subclasses, or the class alone (`ONLY`).
    class_ids: Vec<u64>,
}

impl ClassTable {
    pub fn new(
        module: Arc<ModuleDef>,
        class: ClassDef,
        txn: TxnHandle,
        exact: &ExactNumeric,
        zone: &str,
        expose_hidden: bool,
        only: bool,
    ) -> ClassTable {
        let class_ids = match only {
            true => vec![class.id],
            false => module.class_ids_with_subclasses(&class.name),
        };
        let schema = class_schema_in(&class, exact, zone, expose_hidden);
        let id_name = if !class.hidden_id {
            Some("id")
        } else {
            expose_hidden.then_some(HIDDEN_ID_COLUMN)
        };
        ClassTable {
            module,
            class,
            schema,
            txn,
            id_name,
            class_ids,
        }
    }
}

#[async_trait]
impl TableProvider for ClassTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Id filters choose point reads; DataFusion still applies every
        // filter to the rows returned.
        Ok(filters
            .iter()
            .map(|f| {
                let by_id = self.id_name.is_some_and(|id| {
                    id_filter(f, id).is_some() || id_filter(&bound_placeholders(f), id).is_some()
                });
                if by_id || (self.indexed() && crate::index::pushdown::supports(&self.class, f)) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // Several id filters (a conjunction) narrow to their intersection;
        // the smallest list is enough since DataFusion re-checks them all.
        let narrowest = self.id_name.and_then(|id| {
            filters
                .iter()
                .filter_map(|f| id_filter(f, id))
                .min_by_key(|ids| ids.len())
        });
        let by_index = match narrowest {
            Some(_) => None,
            None if self.indexed() => self.index_lookup(filters)?,
            None => None,
        };
        let (oids, shown) = match (narrowest, by_index) {
            (Some(oids), _) => (oids, None),
            (None, Some((oids, shown))) => (oids, Some(shown)),
            (None, None) => {
                let scan = crate::scan::class_scan(
                    self.module.clone(),
                    &self.class,
                    &self.class_ids,
                    self.schema.clone(),
                    projection,
                    limit,
                    &self.txn,
                )?;
                // A class scan may be read in an index's order (`ORDER BY
                // ... LIMIT`) or by a join's keys (`index/join.rs`).
                let source = crate::index::ordered::Source {
                    module: self.module.clone(),
                    class_id: self.class.id,
                    class_ids: self.class_ids.clone(),
                    id_name: self.id_name,
                    rows_estimate: scan.rows_estimate,
                    opener: scan.opener,
                    schema: self.schema.clone(),
                    projection: projection.cloned(),
                    txn: Arc::downgrade(&self.txn),
                };
                return Ok(Arc::new(crate::index::exec::ClassScanExec {
                    scan: scan.exec,
                    shown: None,
                    source: Some(Arc::new(source)),
                    join: None,
                }));
            }
        };
        // Point reads: only those keys join the read set.
        let objects = read_class_objects_by_ids(&self.class_ids, &oids, &self.txn)?;
        let (schema, batch) = crate::columnar::decode_batch(
            &self.module,
            &self.class,
            &self.schema,
            projection.map(Vec::as_slice),
            &objects,
        )?;
        let exec = MemorySourceConfig::try_new_exec(&[vec![batch]], schema, None)?;
        Ok(Arc::new(crate::index::exec::ClassScanExec {
            scan: exec,
            shown,
            source: None,
            join: None,
        }))
    }
}

/// Most objects a scan reads through an index; more are read by a scan
/// of the class, cheaper than that many point reads.
const INDEX_ROWS_MAX: usize = 65_536;

impl ClassTable {
    /// Whether filters may go to indexes: the class has some (each
    /// subclass the table holds is read through indexes of its own).
    fn indexed(&self) -> bool {
        !self.class.indexes.is_empty()
    }

    /// The ids the indexes give for `filters` (one index of each class
    /// the table holds), and what EXPLAIN shows of them; `None`: a class
    /// has no index that helps, or they hold too many ids.
    fn index_lookup(&self, filters: &[Expr]) -> Result<Option<(Vec<u64>, String)>, SqlError> {
        let mut oids = Vec::new();
        let mut shown = Vec::new();
        for cid in &self.class_ids {
            let Some(class) = self.module.class_by_id(*cid) else {
                return Ok(None);
            };
            let Some(access) = crate::index::pushdown::choose(class, filters) else {
                return Ok(None);
            };
            let found = {
                let txn = crate::dml::lock(&self.txn)?;
                crate::index::pushdown::read(&txn, &access, INDEX_ROWS_MAX - oids.len())?
            };
            let Some(found) = found else {
                return Ok(None);
            };
            oids.extend(found);
            shown.push(format!(
                "IndexScan: {} on {}.{}, {}",
                access.index.name,
                self.module.name,
                class.table,
                access.shown.join(", ")
            ));
        }
        oids.sort_unstable();
        Ok(Some((oids, shown.join("; "))))
    }
}

/// A module function or method as a scalar SQL function; each row is one
/// call into Python in the session's transaction.
#[derive(Debug)]
pub struct PythonUdf {
    name: String,
    spec: CallSpec,
    params: Vec<SqlType>,
    returns: Option<SqlType>,
    signature: Signature,
    env: UdfEnv,
    /// A numeric result is returned as its exact text (the call is only
    /// output, see `exact.rs`), so `Decimal('100.50')` prints 100.50.
    exact_result: bool,
}

impl PartialEq for PythonUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for PythonUdf {}
impl std::hash::Hash for PythonUdf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

/// What every module function of a statement runs with.
#[derive(Debug, Clone)]
pub struct UdfEnv {
    pub runtime: Arc<Runtime>,
    pub txn: TxnHandle,
    /// The session's value settings (text arguments read in its TimeZone).
    pub settings: Settings,
}

impl PythonUdf {
    pub fn new(
        name: String,
        spec: CallSpec,
        params: Vec<SqlType>,
        returns: Option<SqlType>,
        env: UdfEnv,
        exact_result: bool,
    ) -> PythonUdf {
        // Arguments are cast to the parameter types (see `coerce_types`), as
        // PostgreSQL casts an integer literal to a numeric parameter.
        let signature = Signature::user_defined(Volatility::Volatile);
        PythonUdf {
            name,
            spec,
            params,
            returns,
            signature,
            env,
            exact_result,
        }
    }

    /// The result's SQL type and field (exact numeric text, jsonb marked).
    fn result_field(&self) -> (SqlType, datafusion::arrow::datatypes::Field) {
        let t = self.returns.clone().unwrap_or(SqlType::Text);
        let field = if self.exact_result {
            convert::exact_field(&self.name, &t, true)
        } else {
            convert::field(&self.name, &t, true)
        };
        (t, field)
    }
}

impl ScalarUDFImpl for PythonUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        if arg_types.len() != self.params.len() {
            return Err(SqlError::new(
                "42883",
                format!(
                    "function {}({}) does not exist: it takes {} arguments",
                    self.name,
                    arg_types
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.params.len()
                ),
            )
            .into());
        }
        let mut out = Vec::with_capacity(arg_types.len());
        for (given, param) in arg_types.iter().zip(&self.params) {
            // A numeric argument keeps its own scale (1.50 stays 1.50).
            if matches!(param, SqlType::Numeric) && matches!(given, DataType::Decimal128(..)) {
                out.push(given.clone());
                continue;
            }
            let wanted = convert::arrow_type(param);
            if given == &wanted
                || given.is_null()
                || datafusion::arrow::compute::can_cast_types(given, &wanted)
            {
                out.push(wanted);
            } else {
                return Err(SqlError::new(
                    "42883",
                    format!(
                        "function {} does not accept {given} where {} is expected",
                        self.name,
                        param.pg_name()
                    ),
                )
                .into());
            }
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.result_field().1.data_type().clone())
    }

    fn return_field_from_args(
        &self,
        _args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> DfResult<datafusion::arrow::datatypes::FieldRef> {
        Ok(Arc::new(self.result_field().1))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<DfResult<Vec<_>>>()?;
        let mut rows = Vec::with_capacity(n);
        for row in 0..n {
            let mut call_args = Vec::with_capacity(self.params.len());
            for (i, t) in self.params.iter().enumerate() {
                let s = convert::cell(&arrays[i], row)?;
                call_args.push(convert::scalar_to_json(t, &s, &self.env.settings)?);
            }
            rows.push(call_args);
        }
        // One call of the worker for the batch's rows (a process per row
        // cost milliseconds each). The call blocks this thread until a
        // Python worker answers.
        let results = tokio::task::block_in_place(|| {
            self.env
                .runtime
                .call_rows_blocking(self.spec.clone(), rows, self.env.txn.clone())
        })
        .map_err(SqlError::from)?;
        // call_rows_blocking refuses a worker answer without a result per row.
        debug_assert_eq!(results.len(), n);
        let (t, field) = self.result_field();
        let refs: Vec<&Json> = results
            .iter()
            .map(|v| {
                if self.returns.is_none() {
                    &Json::Null
                } else {
                    v
                }
            })
            .collect();
        let array = convert::json_column(&t, field.data_type(), &refs)?;
        Ok(ColumnarValue::Array(array))
    }
}

/// Builds a record batch holding the given rows, for results computed
/// outside DataFusion.
pub fn batch(
    schema: SchemaRef,
    types: &[SqlType],
    rows: &[Vec<Json>],
) -> Result<RecordBatch, SqlError> {
    convert::rows_to_batch(schema, types, rows)
}
