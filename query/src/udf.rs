//! What Amber's row-wise SQL functions share: a call whose arguments are
//! all constants is computed once and answers a constant (DataFusion then
//! folds or broadcasts it); otherwise one value per row.

use datafusion::arrow::array::ArrayRef;
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::ColumnarValue;

/// Whether every argument is a constant.
pub(crate) fn all_scalar(args: &[ColumnarValue]) -> bool {
    args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)))
}

/// `array` (one value per computed row) as the call's result: its one
/// value when the arguments were all constants.
pub(crate) fn result(array: ArrayRef, all_scalar: bool) -> DfResult<ColumnarValue> {
    Ok(match all_scalar {
        true => ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?),
        false => ColumnarValue::Array(array),
    })
}
