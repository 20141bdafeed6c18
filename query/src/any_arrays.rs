//! `x = ANY(array)` as PostgreSQL types it. DataFusion plans it as
//! `array_has(array, x)` but neither infers a parameter's type from `x`
//! (`name = ANY($1)`, psycopg's idiom for a Python list, arrives untyped)
//! nor compares elements of another type than `x` (`id = ANY($1)` with
//! an `int2[]` parameter, as psycopg types small integers). PostgreSQL
//! does both: the parameter is an array of `x`'s type, and an integer
//! column compares with any integer array.

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::DFSchema;
use datafusion::config::ConfigOptions;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::{Placeholder, ScalarFunction};
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;
use std::sync::Arc;

const ARRAY_HAS: &str = "array_has";

/// The schema a node's expressions are evaluated against: its inputs'.
fn input_schema(node: &LogicalPlan) -> DFSchema {
    let mut schema = DFSchema::empty();
    for input in node.inputs() {
        schema.merge(input.schema());
    }
    schema
}

/// `$n`'s type where it is the array of `x = ANY($n)`: an array of `x`'s
/// type, as PostgreSQL infers it.
pub(crate) fn placeholder_types(plan: &LogicalPlan) -> Vec<(String, DataType)> {
    let mut found = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        let schema = input_schema(node);
        let _ = node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    if f.name() == ARRAY_HAS {
                        if let [Expr::Placeholder(p), needle] = f.args.as_slice() {
                            if let Ok(t) = needle.get_type(&schema) {
                                found.push((
                                    p.id.clone(),
                                    DataType::List(Arc::new(Field::new_list_field(t, true))),
                                ));
                            }
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        });
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// The analyzer rule: `array_has(a, x)` whose element type is not `x`'s
/// compares both as their common type (casting the array, or `x`).
#[derive(Debug, Default)]
pub(crate) struct AnyArrays;

fn element_type(t: &DataType) -> Option<&DataType> {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            Some(f.data_type())
        }
        _ => None,
    }
}

fn coerce(f: ScalarFunction, schema: &DFSchema) -> Transformed<Expr> {
    let unchanged = |f: ScalarFunction| Transformed::no(Expr::ScalarFunction(f));
    if f.name() != ARRAY_HAS || f.args.len() != 2 {
        return unchanged(f);
    }
    // An untyped parameter becomes an array of the needle's type (a
    // cached plan's parameters are cast to it before they are bound).
    if let Expr::Placeholder(p) = &f.args[0] {
        if p.field.is_none() {
            if let Ok(t) = f.args[1].get_type(schema) {
                let mut args = f.args.clone();
                let list = DataType::List(Arc::new(Field::new_list_field(t, true)));
                let field = Arc::new(Field::new(p.id.clone(), list, true));
                args[0] = Expr::Placeholder(Placeholder::new_with_field(p.id.clone(), Some(field)));
                return Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                    f.func, args,
                )));
            }
        }
    }
    let (Ok(array_t), Ok(needle_t)) = (f.args[0].get_type(schema), f.args[1].get_type(schema))
    else {
        return unchanged(f);
    };
    let Some(element_t) = element_type(&array_t) else {
        return unchanged(f);
    };
    if *element_t == needle_t || matches!(needle_t, DataType::Null) {
        return unchanged(f);
    }
    let Some(common) = comparison_coercion(element_t, &needle_t) else {
        return unchanged(f);
    };
    let mut args = f.args.clone();
    if *element_t != common {
        let list = DataType::List(Arc::new(Field::new_list_field(common.clone(), true)));
        args[0] = args[0]
            .clone()
            .cast_to(&list, schema)
            .unwrap_or(args[0].clone());
    }
    if needle_t != common {
        args[1] = args[1]
            .clone()
            .cast_to(&common, schema)
            .unwrap_or(args[1].clone());
    }
    Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(f.func, args)))
}

impl AnalyzerRule for AnyArrays {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            if node.inputs().is_empty() {
                return Ok(Transformed::no(node));
            }
            let schema = input_schema(&node);
            node.map_expressions(|e| {
                e.transform_up(|e| match e {
                    Expr::ScalarFunction(f) => Ok(coerce(f, &schema)),
                    other => Ok(Transformed::no(other)),
                })
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "amber_any_arrays"
    }
}
