//! The scan node of a class table: the scan it wraps (a streaming scan of
//! the class, or the objects an index found, read by point reads at
//! planning), shown by EXPLAIN as itself or as `IndexScan: <index> on
//! <table>, <filters>`; a scan of a class with indexes answers
//! DataFusion's sort push-down through `ordered.rs`.

use super::ordered::Source;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SortOrderPushdownResult,
};
use std::fmt;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct ClassScanExec {
    /// The rows: a class scan or an in-memory source.
    pub scan: Arc<dyn ExecutionPlan>,
    /// What EXPLAIN shows when an index chose the rows
    /// (`IndexScan: account_owner_idx on bank.account, owner = 6`).
    pub shown: Option<String>,
    /// Set for a whole-class scan that an index may read in order.
    pub ordered: Option<Arc<Source>>,
}

impl DisplayAs for ClassScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.shown {
            Some(shown) => write!(f, "{shown}"),
            None => self.scan.fmt_as(t, f),
        }
    }
}

impl ExecutionPlan for ClassScanExec {
    fn name(&self) -> &str {
        match self.shown {
            Some(_) => "IndexScan",
            None => self.scan.name(),
        }
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.scan.properties()
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

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        self.scan.execute(partition, context)
    }

    fn try_pushdown_sort(
        &self,
        order: &[PhysicalSortExpr],
    ) -> DfResult<SortOrderPushdownResult<Arc<dyn ExecutionPlan>>> {
        match &self.ordered {
            Some(source) => source.pushdown_sort(&self.scan, order),
            None => Ok(SortOrderPushdownResult::Unsupported),
        }
    }
}
