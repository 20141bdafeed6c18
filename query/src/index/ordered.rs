//! `ORDER BY <indexed columns> LIMIT n` read through the index: the first
//! n entries of the index in key order, then those objects by point
//! reads, instead of a scan and a sort of the whole class.
//!
//! A class scan (`exec.rs`'s `ClassScanExec`) answers DataFusion's sort
//! push-down (`try_pushdown_sort`) through its [`Source`]:
//! when the requested order is a leading run of one of the class's
//! indexes, ascending with NULLs last (the index's own order, PostgreSQL's
//! default) or descending with NULLs first (read backwards), on columns whose key order is the order DataFusion sorts
//! them in (integers, references, text, boolean, date, timestamps,
//! bytea; not floats, whose `-0` and `0` are one key, nor numerics), it
//! becomes an `IndexOrderExec`, and the sort goes. With a LIMIT of at most
//! [`ORDERED_FETCH_MAX`] rows it reads that many entries; without one (or
//! a larger one) it sorts the class scan as the sort would have.

use crate::error::SqlError;
use amber_catalog::index_key;
use amber_catalog::{object_key, ClassDef, IndexDef, ModuleDef, SqlType};
use amber_runtime::TxnHandle;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SortOrderPushdownResult,
};
use std::fmt;
use std::sync::Arc;

/// Most rows an ordered read takes through the index; past it, a scan
/// and a sort is cheaper than that many point reads.
pub(crate) const ORDERED_FETCH_MAX: usize = 10_000;

/// What an ordered read needs of the table it replaces.
#[derive(Debug)]
pub(crate) struct Source {
    pub module: Arc<ModuleDef>,
    /// The class (of `module`) the table reads.
    pub class_id: u64,
    /// The classes whose objects the table holds: the class and its
    /// subclasses, or the class alone (`ONLY`).
    pub class_ids: Vec<u64>,
    /// The table's id column, if it has one (`id`, or the exposed hidden id).
    pub id_name: Option<&'static str>,
    /// About how many objects a scan reads (from the span of their ids):
    /// what a join compares to put the smaller side first.
    pub rows_estimate: Option<usize>,
    /// Opens the class scan's cursors (`open_scans.rs`).
    pub opener: crate::scan::Opener,
    /// The table's schema (before projection).
    pub schema: SchemaRef,
    pub projection: Option<Vec<usize>>,
    /// The statement's transaction, held weakly: a plan node a task still
    /// holds after the statement (a LIMIT met, the task abandoned) must not
    /// keep the transaction from committing.
    pub txn: std::sync::Weak<std::sync::Mutex<amber_storage::Txn>>,
}

/// Whether an index's key order is DataFusion's order of `ty`.
fn sorts_as_datafusion(ty: &SqlType) -> bool {
    matches!(
        ty,
        SqlType::Int8
            | SqlType::Int4
            | SqlType::Int2
            | SqlType::Ref(_)
            | SqlType::Text
            | SqlType::Bool
            | SqlType::Date
            | SqlType::Timestamptz
            | SqlType::Timestamp
            | SqlType::Bytea
    )
}

impl Source {
    /// The statement's transaction, while it runs.
    pub(crate) fn txn(&self) -> Result<TxnHandle, SqlError> {
        self.txn
            .upgrade()
            .ok_or_else(|| SqlError::internal("a class scan ran after its statement"))
    }

    /// The batch of `objects` (of `class`, this table's) in the scan's
    /// projected columns.
    pub(crate) fn batch(
        &self,
        class: &ClassDef,
        objects: &[crate::columnar::Stored],
    ) -> Result<(SchemaRef, datafusion::arrow::record_batch::RecordBatch), SqlError> {
        crate::columnar::decode_batch(
            &self.module,
            class,
            &self.schema,
            self.projection.as_deref(),
            objects,
        )
    }

    pub(crate) fn class(&self) -> Option<&ClassDef> {
        self.module.class_by_id(self.class_id)
    }

    /// The index whose leading columns are `order`, if it gives that order
    /// read forwards (every key ASC NULLS LAST) or backwards (every key
    /// DESC NULLS FIRST): the index, and whether backwards.
    fn index_for(&self, order: &[PhysicalSortExpr]) -> Option<(IndexDef, bool)> {
        let table = &self.schema;
        let reverse = order.first()?.options.descending;
        // Subclasses' objects are in their own indexes.
        let class = self.class().filter(|_| self.class_ids.len() == 1)?;
        let mut names = Vec::with_capacity(order.len());
        for e in order {
            // Backwards, NULLs (last in the index) come first.
            if e.options.descending != reverse || e.options.nulls_first != reverse {
                return None;
            }
            let col = e.expr.downcast_ref::<Column>()?;
            let field_index = match &self.projection {
                Some(p) => *p.get(col.index())?,
                None => col.index(),
            };
            let name = table.fields().get(field_index)?.name();
            let def = class.columns.iter().find(|c| c.name == *name)?;
            if !sorts_as_datafusion(&def.ty)
                || matches!(def.declared, Some(amber_catalog::Declared::Char { .. }))
            {
                return None;
            }
            names.push(def.name.clone());
        }
        class
            .indexes
            .iter()
            .find(|i| i.columns.len() >= names.len() && i.columns[..names.len()] == names[..])
            .map(|i| (i.clone(), reverse))
    }

    /// DataFusion's sort push-down into `scan`, a scan of this source:
    /// an [`IndexOrderExec`] when an index gives `order`.
    pub(crate) fn pushdown_sort(
        self: &Arc<Self>,
        scan: &Arc<dyn ExecutionPlan>,
        order: &[PhysicalSortExpr],
    ) -> DfResult<SortOrderPushdownResult<Arc<dyn ExecutionPlan>>> {
        let Some((index, reverse)) = (!order.is_empty()).then(|| self.index_for(order)).flatten()
        else {
            return Ok(SortOrderPushdownResult::Unsupported);
        };
        let schema = scan.schema();
        let ordering = LexOrdering::new(order.to_vec());
        let eq = EquivalenceProperties::new_with_orderings(schema, [order.to_vec()]);
        let properties = Arc::new(PlanProperties::new(
            eq,
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(SortOrderPushdownResult::Exact {
            inner: Arc::new(IndexOrderExec {
                source: self.clone(),
                index,
                reverse,
                scan: scan.clone(),
                ordering,
                fetch: None,
                properties,
            }),
        })
    }
}

/// A class read in the order of one of its indexes.
#[derive(Debug)]
pub(crate) struct IndexOrderExec {
    source: Arc<Source>,
    index: IndexDef,
    /// Read from the last entry backwards (`DESC NULLS FIRST`).
    reverse: bool,
    /// The class scan, sorted instead when there is no small LIMIT.
    scan: Arc<dyn ExecutionPlan>,
    ordering: Option<LexOrdering>,
    fetch: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl DisplayAs for IndexOrderExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let table = self.source.class().map_or("?", |c| c.table.as_str());
        write!(
            f,
            "IndexScan: {} on {}.{}, in {}index order",
            self.index.name,
            self.source.module.name,
            table,
            if self.reverse { "reverse " } else { "" }
        )?;
        if let Some(n) = self.fetch {
            write!(f, ", fetch={n}")?;
        }
        Ok(())
    }
}

impl IndexOrderExec {
    /// What opens the class scan's cursors when this node sorts the scan
    /// rather than reading the index (`open_scans.rs`).
    pub(crate) fn opener_if_scanning(&self) -> Option<&crate::scan::Opener> {
        match self.fetch {
            Some(n) if n <= ORDERED_FETCH_MAX => None,
            _ => Some(&self.source.opener),
        }
    }

    /// The first `n` objects in the index's order, as one batch.
    fn read_first(&self, n: usize) -> Result<SendableRecordBatchStream, SqlError> {
        let s = &self.source;
        let class = s
            .class()
            .ok_or_else(|| SqlError::internal("ordered scan of a vanished class"))?;
        let handle = s.txn()?;
        let txn = crate::dml::lock(&handle)?;
        let (start, end) = (
            index_key::index_prefix(self.index.id),
            index_key::index_end(self.index.id),
        );
        let entries = match self.reverse {
            false => txn.scan_range(&start, &end, n)?,
            true => txn.scan_range_rev(&start, &end, n)?,
        };
        let mut objects = Vec::with_capacity(entries.len());
        for (key, _) in &entries {
            let Some(oid) = index_key::entry_oid(key) else {
                continue;
            };
            if let Some(bytes) = txn.get(&object_key(s.class_id, oid))? {
                objects.push((s.class_id, oid, bytes));
            }
        }
        drop(txn);
        let (schema, batch) = s.batch(class, &objects)?;
        let stream = MemoryStream::try_new(vec![batch], schema, None)?;
        Ok(Box::pin(stream))
    }
}

impl ExecutionPlan for IndexOrderExec {
    fn name(&self) -> &str {
        "IndexScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_fetch(&self, fetch: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        Some(Arc::new(IndexOrderExec {
            source: self.source.clone(),
            index: self.index.clone(),
            reverse: self.reverse,
            scan: self.scan.clone(),
            ordering: self.ordering.clone(),
            fetch,
            properties: self.properties.clone(),
        }))
    }

    fn fetch(&self) -> Option<usize> {
        self.fetch
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        match self.fetch {
            Some(n) if n <= ORDERED_FETCH_MAX && partition == 0 => Ok(self.read_first(n)?),
            _ => {
                // The sort this node replaced, over one partition.
                let Some(ordering) = self.ordering.clone() else {
                    return self.scan.execute(partition, context);
                };
                let merged: Arc<dyn ExecutionPlan> = Arc::new(
                    datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec::new(
                        self.scan.clone(),
                    ),
                );
                let sort = SortExec::new(ordering, merged).with_fetch(self.fetch);
                sort.execute(partition, context)
            }
        }
    }
}
