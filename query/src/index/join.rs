//! Joins on references read their inner side through an index, not by a
//! scan of its class.
//!
//! DataFusion's hash join reads its build side first, then hands the
//! probe side's scan a dynamic filter on the join key (join filter
//! push-down): `key IN (v1, ...)` when the build side has at most
//! [`JOIN_LIST_MAX`] distinct keys, and `key >= min AND key <= max`
//! always. A class scan whose join key is its id, or the leading column
//! of one of its indexes, takes that filter ([`accept`], at planning). On
//! its first poll, the build side read, it reads only those keys' objects:
//! by point reads for ids (or the id range, one range read), through the
//! index's ranges for another column. Only those keys join the
//! transaction's read set. Past [`JOIN_ROWS_MAX`] objects, or with no
//! usable keys, it scans the class as before. The hash join still matches
//! every row, so the filter only ever narrows what is read.
//!
//! `JOIN bank.customer c ON a.owner = c.id WHERE a.id = 5` reads one
//! customer; `... WHERE c.name = 'x'` reads x's accounts through
//! `account_owner_idx` (the filtered side is the build side: the scan of
//! a class estimates its rows from its id range, so the join puts the
//! smaller side first).

use super::ordered::Source;
use crate::columnar::Stored;
use crate::error::SqlError;
use amber_catalog::{class_range_end, object_key};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::Operator;
use datafusion::logical_expr::{col, lit, Expr};
use datafusion::physical_expr::expressions::{
    BinaryExpr, Column, DynamicFilterPhysicalExpr, InListExpr, Literal,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::scalar::ScalarValue;
use std::sync::{Arc, OnceLock};

/// Most distinct build-side keys DataFusion sends as a list
/// (`hash_join_inlist_pushdown_max_distinct_values`, set in
/// `context.rs`); more send only their bounds.
pub(crate) const JOIN_LIST_MAX: usize = 4096;

/// Most objects a join reads by key; more are read by a scan of the
/// class, cheaper than that many point reads.
pub(crate) const JOIN_ROWS_MAX: usize = 65_536;

/// A keyed read pays a point read per object, about ten times what a scan
/// pays per object: it reads at most a tenth of the class's estimate.
const KEYED_SHARE_DIVISOR: usize = 10;

/// Keyed reads of at most this many objects are always cheaper than a
/// scan (whatever the estimate says).
const KEYED_ROWS_MIN: usize = 64;

/// Most objects a keyed read of `source` may take before a scan is cheaper.
fn keyed_rows_max(source: &Source) -> usize {
    let share = source.rows_estimate.unwrap_or(0) / KEYED_SHARE_DIVISOR;
    share.clamp(KEYED_ROWS_MIN, JOIN_ROWS_MAX)
}

/// Keys of a list read first, as a sample: if they find objects at a
/// rate that all the keys would take past the keyed read's limit, the
/// class is scanned without reading the rest.
const SAMPLE_KEYS: usize = 32;

/// How the keys find objects.
#[derive(Debug)]
enum By {
    /// The join key is the object id.
    Id,
    /// The join key leads this index.
    Index(String),
}

/// What a scan does with the keys, decided once (on the first poll of any
/// of its partitions) and shared by all.
#[derive(Debug)]
pub(crate) enum Decision {
    /// The objects the keys found (returned by partition 0).
    Rows(RecordBatch),
    /// Too many, or no usable keys: the whole class.
    Scan,
}

/// A class scan's join keys: a hash join's dynamic filter on one column.
#[derive(Debug)]
pub(crate) struct JoinKeys {
    /// The join's dynamic filter (a `DynamicFilterPhysicalExpr`), held as
    /// the expression the scan exposes (`apply_expressions`): the join
    /// fills it in only if a node of its probe side holds it.
    pub(crate) filter: Arc<dyn PhysicalExpr>,
    /// The class column (or id column) the keys are values of.
    column: String,
    by: By,
    decision: OnceLock<Decision>,
}

/// The join keys `filter` gives a scan of `source` whose output schema is
/// `schema`, if it is a hash join's dynamic filter on one column that an
/// id or an index answers.
pub(crate) fn accept(
    source: &Source,
    schema: &SchemaRef,
    filter: &Arc<dyn PhysicalExpr>,
) -> Option<JoinKeys> {
    let children = filter
        .downcast_ref::<DynamicFilterPhysicalExpr>()?
        .children();
    let [key] = children.as_slice() else {
        return None;
    };
    let key = key.downcast_ref::<Column>()?;
    let name = schema.fields().get(key.index())?.name().clone();
    let by = if source.id_name == Some(name.as_str()) {
        By::Id
    } else {
        // An index is read for the table's own class only (each subclass
        // would need one of its own).
        let class = source.class().filter(|_| source.class_ids.len() == 1)?;
        let column = class.columns.iter().find(|c| c.name == name)?;
        if !super::pushdown::indexable(column) {
            return None;
        }
        let index = class
            .indexes
            .iter()
            .find(|i| i.columns.first() == Some(&name))?;
        By::Index(index.name.clone())
    };
    Some(JoinKeys {
        filter: Arc::clone(filter),
        column: name,
        by,
        decision: OnceLock::new(),
    })
}

/// The keys a dynamic filter holds now: a list, bounds, or neither.
#[derive(Default)]
struct Keys {
    list: Option<Vec<ScalarValue>>,
    lower: Option<ScalarValue>,
    upper: Option<ScalarValue>,
    /// The build side was empty (the filter is `false`).
    none: bool,
}

/// Most nodes of a dynamic filter's expression read for keys (its own
/// conjunction has a handful).
const KEY_TREE_NODES_MAX: usize = 64;

/// Reads `expr` (a conjunction of `key IN (...)`, `key >= min`,
/// `key <= max`); anything else it holds is left to the join.
fn keys_of(expr: &Arc<dyn PhysicalExpr>) -> Keys {
    let mut keys = Keys::default();
    // Iterative over the AND tree: each step takes one node off the stack.
    let mut stack = vec![Arc::clone(expr)];
    for _ in 0..KEY_TREE_NODES_MAX {
        let Some(e) = stack.pop() else { break };
        if let Some(l) = e.downcast_ref::<Literal>() {
            if l.value() == &ScalarValue::Boolean(Some(false)) {
                keys.none = true;
            }
        } else if let Some(list) = e.downcast_ref::<InListExpr>() {
            if list.negated() || list.expr().downcast_ref::<Column>().is_none() {
                continue;
            }
            let values: Option<Vec<ScalarValue>> = list
                .list()
                .iter()
                .map(|v| v.downcast_ref::<Literal>().map(|l| l.value().clone()))
                .collect();
            keys.list = values;
        } else if let Some(b) = e.downcast_ref::<BinaryExpr>() {
            let literal = b.right().downcast_ref::<Literal>();
            match (b.op(), literal) {
                (Operator::And, _) => {
                    stack.push(Arc::clone(b.left()));
                    stack.push(Arc::clone(b.right()));
                }
                (Operator::GtEq, Some(l)) if b.left().downcast_ref::<Column>().is_some() => {
                    keys.lower = Some(l.value().clone())
                }
                (Operator::LtEq, Some(l)) if b.left().downcast_ref::<Column>().is_some() => {
                    keys.upper = Some(l.value().clone())
                }
                _ => {}
            }
        }
    }
    keys
}

/// An object id of a key value (`None`: no object has it).
fn oid_of(v: &ScalarValue) -> Option<u64> {
    let id = match v {
        ScalarValue::Int64(Some(x)) => *x,
        ScalarValue::Int32(Some(x)) => i64::from(*x),
        _ => return None,
    };
    u64::try_from(id).ok()
}

impl JoinKeys {
    /// What EXPLAIN adds to the scan.
    pub(crate) fn shown(&self, source: &Source) -> String {
        let table = source.class().map_or("?", |c| c.table.as_str());
        match &self.by {
            By::Id => format!(
                "IndexScan: {table}_pkey on {}.{table}, {} = join keys",
                source.module.name, self.column
            ),
            By::Index(index) => format!(
                "IndexScan: {index} on {}.{table}, {} = join keys",
                source.module.name, self.column
            ),
        }
    }

    /// The decision, made on the first call: the build side has been read
    /// by then (a hash join polls its probe side only after).
    pub(crate) fn decide(&self, source: &Source) -> Result<&Decision, SqlError> {
        if let Some(d) = self.decision.get() {
            return Ok(d);
        }
        let decided = self.read(source)?;
        Ok(self.decision.get_or_init(|| decided))
    }

    fn read(&self, source: &Source) -> Result<Decision, SqlError> {
        let dynamic = self
            .filter
            .downcast_ref::<DynamicFilterPhysicalExpr>()
            .ok_or_else(|| SqlError::internal("join keys without a dynamic filter"))?;
        let current = dynamic
            .current()
            .map_err(|e| SqlError::internal(e.to_string()))?;
        let keys = keys_of(&current);
        let objects = if keys.none {
            Some(Vec::new())
        } else {
            match &self.by {
                By::Id => self.by_id(source, &keys)?,
                By::Index(_) => self.by_index(source, &keys)?,
            }
        };
        let Some(objects) = objects else {
            return Ok(Decision::Scan);
        };
        let class = source
            .class()
            .ok_or_else(|| SqlError::internal("join scan of a vanished class"))?;
        Ok(Decision::Rows(source.batch(class, &objects)?.1))
    }

    /// The objects whose ids are the keys: point reads for a list, one
    /// range read per class for bounds.
    fn by_id(&self, source: &Source, keys: &Keys) -> Result<Option<Vec<Stored>>, SqlError> {
        if let Some(list) = &keys.list {
            if list.len() > keyed_rows_max(source) {
                return Ok(None);
            }
            let oids: Vec<u64> = list.iter().filter_map(oid_of).collect();
            return crate::table::read_class_objects_by_ids(
                &source.class_ids,
                &oids,
                &source.txn()?,
            )
            .map(Some);
        }
        let (Some(lo), Some(hi)) = (&keys.lower, &keys.upper) else {
            return Ok(None);
        };
        let lo = oid_of(lo).unwrap_or(0);
        let Some(hi) = oid_of(hi) else {
            return Ok(Some(Vec::new()));
        };
        let handle = source.txn()?;
        let txn = crate::dml::lock(&handle)?;
        let mut objects = Vec::new();
        for &cid in &source.class_ids {
            let end = match hi.checked_add(1) {
                Some(next) => object_key(cid, next),
                None => class_range_end(cid),
            };
            let left = JOIN_ROWS_MAX + 1 - objects.len();
            for (key, value) in txn.scan_range(&object_key(cid, lo), &end, left)? {
                if let Some((_, oid)) = amber_catalog::object_of_key(&key) {
                    objects.push((cid, oid, value));
                }
            }
            if objects.len() > JOIN_ROWS_MAX {
                return Ok(None);
            }
        }
        Ok(Some(objects))
    }

    /// The objects an index finds for the keys: one range per listed key,
    /// or the range between the bounds.
    fn by_index(&self, source: &Source, keys: &Keys) -> Result<Option<Vec<Stored>>, SqlError> {
        let Some(class) = source.class() else {
            return Ok(None);
        };
        let rows_max = keyed_rows_max(source);
        if keys.list.as_ref().is_some_and(|l| l.len() > rows_max) {
            return Ok(None);
        }
        let key = || col(datafusion::common::Column::from_name(&self.column));
        // A list goes as several `IN`s, each within what push-down reads;
        // the first a sample of [`SAMPLE_KEYS`] keys, whose objects say
        // whether all the keys would find more than `rows_max`.
        let filters: Vec<Vec<Expr>> = match (&keys.list, &keys.lower, &keys.upper) {
            (Some(list), _, _) => {
                let (sample, rest) = list.split_at(list.len().min(SAMPLE_KEYS));
                std::iter::once(sample)
                    .chain(rest.chunks(super::pushdown::IN_VALUES_MAX))
                    .filter(|chunk| !chunk.is_empty())
                    .map(|chunk| {
                        let values = chunk.iter().filter(|v| !v.is_null());
                        vec![key().in_list(values.map(|v| lit(v.clone())).collect(), false)]
                    })
                    .collect()
            }
            (None, Some(lo), Some(hi)) => {
                vec![vec![
                    key().gt_eq(lit(lo.clone())),
                    key().lt_eq(lit(hi.clone())),
                ]]
            }
            _ => return Ok(None),
        };
        let mut oids = Vec::new();
        for (i, conjunction) in filters.iter().enumerate() {
            let Some(access) = super::pushdown::choose(class, conjunction) else {
                return Ok(None);
            };
            let handle = source.txn()?;
            let txn = crate::dml::lock(&handle)?;
            match super::pushdown::read(&txn, &access, rows_max - oids.len())? {
                Some(found) => oids.extend(found),
                None => return Ok(None),
            }
            // After the sample: the keys at its rate would find too many.
            if let (0, Some(list)) = (i, &keys.list) {
                let sampled = list.len().clamp(1, SAMPLE_KEYS);
                if oids.len().saturating_mul(list.len()) / sampled > rows_max {
                    return Ok(None);
                }
            }
        }
        crate::table::read_class_objects_by_ids(&[class.id], &oids, &source.txn()?).map(Some)
    }
}
