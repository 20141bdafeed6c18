//! `array::text` as PostgreSQL writes it (`'{1,2}'`): DataFusion casts a
//! list to text as `[1, 2]`. This analyzer rule, ahead of DataFusion's
//! coercion, turns a cast of an array to text into
//! `__amber_array_text(array)` (`array_functions.rs`), keeping the
//! expression's name.

use crate::expr_rules::Names;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::config::ConfigOptions;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;
use std::sync::Arc;

#[derive(Debug, Default)]
pub(crate) struct ArrayTextCasts;

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_list(t: &DataType) -> bool {
    matches!(t, DataType::List(_) | DataType::LargeList(_))
}

impl AnalyzerRule for ArrayTextCasts {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        let udf = Arc::new(crate::array_functions::array_text());
        crate::expr_rules::rewrite_expressions(plan, Names::Preserve, |e, schema| match e {
            Expr::Cast(Cast { expr, field })
                if is_text(field.data_type())
                    && expr.get_type(schema).is_ok_and(|t| is_list(&t)) =>
            {
                Ok(Transformed::yes(Expr::ScalarFunction(
                    ScalarFunction::new_udf(udf.clone(), vec![*expr]),
                )))
            }
            other => Ok(Transformed::no(other)),
        })
    }

    fn name(&self) -> &str {
        "amber_array_text_casts"
    }
}
