//! PostgreSQL array functions catalog queries use that DataFusion lacks:
//! `information_schema._pg_expandarray(a)` (pgjdbc's primary and index
//! keys), as `unnest(__amber_expandarray(a))`: each element with its
//! one-based position, a record (x, n); and `__amber_array_text(a)`, an
//! array as PostgreSQL's `array::text` writes it (`{1,2}`, quoted as
//! array_out quotes), where DataFusion's cast writes `[1, 2]`.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, ListArray, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

pub(crate) const EXPANDARRAY: &str = "__amber_expandarray";

pub(crate) const ARRAY_TEXT: &str = "__amber_array_text";

pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(ExpandArray {
            signature: Signature::any(1, Volatility::Immutable),
        }),
        array_text(),
    ]
}

/// `__amber_array_text(a)`: `a::text` as PostgreSQL writes it.
pub(crate) fn array_text() -> ScalarUDF {
    ScalarUDF::new_from_impl(ArrayText {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayText {
    signature: Signature,
}

impl ScalarUDFImpl for ArrayText {
    fn name(&self) -> &str {
        ARRAY_TEXT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let scalar = crate::udf::all_scalar(&args.args);
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(input) = arrays.first() else {
            return Err(DataFusionError::Internal(format!(
                "{ARRAY_TEXT}: one argument"
            )));
        };
        let oid = crate::value::types::oid_of(input.data_type());
        let settings = crate::value::Settings::default();
        let mut out = datafusion::arrow::array::StringBuilder::with_capacity(input.len(), 16);
        let mut cell = Vec::new();
        for row in 0..input.len() {
            cell.clear();
            match crate::value::encode_cell(input, row, oid, false, &settings, &mut cell)? {
                true => out.append_value(String::from_utf8_lossy(&cell)),
                false => out.append_null(),
            }
        }
        crate::udf::result(Arc::new(out.finish()), scalar)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
}

fn record_fields(element: &Field) -> Fields {
    Fields::from(vec![
        Field::new("x", element.data_type().clone(), true)
            .with_metadata(element.metadata().clone()),
        Field::new("n", DataType::Int32, false),
    ])
}

fn element_field(t: &DataType) -> DfResult<Arc<Field>> {
    match t {
        DataType::List(f) => Ok(f.clone()),
        other => Err(DataFusionError::Plan(format!(
            "_pg_expandarray takes an array, not {other}"
        ))),
    }
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        EXPANDARRAY
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        let element = element_field(args.first().unwrap_or(&DataType::Null))?;
        Ok(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(record_fields(&element)),
            true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(input) = arrays.first() else {
            return Err(DataFusionError::Internal(format!(
                "{EXPANDARRAY}: one argument"
            )));
        };
        let list = input.as_list::<i32>();
        let element = element_field(input.data_type())?;
        let values = list.values().clone();
        // Positions restart at 1 in each row's array.
        let mut positions = Vec::with_capacity(values.len());
        let offsets = list.value_offsets();
        for w in offsets.windows(2) {
            let len = usize::try_from(w[1] - w[0]).unwrap_or(0);
            positions.extend((1..=len).map(|p| i32::try_from(p).unwrap_or(i32::MAX)));
        }
        let fields = record_fields(&element);
        let records = StructArray::try_new(
            fields.clone(),
            vec![values, Arc::new(Int32Array::from(positions)) as ArrayRef],
            None,
        )?;
        let out = ListArray::try_new(
            Arc::new(Field::new("item", DataType::Struct(fields), true)),
            list.offsets().clone(),
            Arc::new(records),
            list.nulls().cloned(),
        )?;
        debug_assert_eq!(out.len(), list.len());
        let out: ArrayRef = Arc::new(out);
        Ok(
            match args
                .args
                .iter()
                .all(|a| matches!(a, ColumnarValue::Scalar(_)))
                && rows == 1
            {
                true => {
                    ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?)
                }
                false => ColumnarValue::Array(out),
            },
        )
    }
}
