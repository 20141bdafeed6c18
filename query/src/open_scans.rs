//! The last physical optimizer rule: opens the cursors of every class scan
//! that will read its class, once the plan is final and before it runs.
//!
//! A cursor's range joins the transaction's read set when it opens, and
//! the cursor sees the statement's snapshot and its writes so far. Opened
//! here, every partition of every scan reads the same state however late
//! DataFusion starts it (a Python function called by the statement may
//! write meanwhile). Two scans stay closed until they run: one a join
//! reads by key (`index/join.rs`: its class range is read only if it
//! falls back to scanning), and an index-ordered read with a small LIMIT
//! (`index/ordered.rs`), which reads only its entries.

use crate::index::exec::ClassScanExec;
use crate::index::ordered::IndexOrderExec;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

#[derive(Debug, Default)]
pub(crate) struct OpenScans;

impl PhysicalOptimizerRule for OpenScans {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.apply(|node| {
            let opener = if let Some(scan) = node.downcast_ref::<ClassScanExec>() {
                scan.opener_unless_keyed()
            } else if let Some(ordered) = node.downcast_ref::<IndexOrderExec>() {
                ordered.opener_if_scanning()
            } else {
                None
            };
            if let Some(opener) = opener {
                opener.open().map_err(DataFusionError::from)?;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "amber_open_scans"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
