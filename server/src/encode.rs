//! Results to DataRow messages and wire parameters to values, through
//! `amber_query::value` (the one encoding of a value) and pgwire's message
//! types.

use amber_query::arrow::datatypes::{DataType, Schema};
use amber_query::arrow::record_batch::RecordBatch;
use amber_query::value::{self, types, Settings};
use amber_query::{ScalarValue, SqlError};
use bytes::BufMut;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::messages::data::DataRow;

/// Rows a result may hold before the statement fails (fails closed with
/// 54000 instead of taking the server's memory).
pub const RESULT_BYTES_MAX: usize = 1 << 30;

pub fn pg_type(oid: u32) -> Type {
    Type::from_oid(oid).unwrap_or(Type::TEXT)
}

/// The Arrow type of a parameter the client declared as `t`.
pub fn pg_to_data_type(t: &Type) -> Option<DataType> {
    types::arrow_of(t.oid())
}

pub fn field_infos(schema: &Schema, format: &Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            // The table and column it comes from; none when computed.
            let (table, attnum) = amber_query::column_source::source_of(f);
            let oid = types::oid_of_field(f);
            FieldInfo::new(
                f.name().clone(),
                (table != 0).then_some(table as i32),
                (table != 0).then_some(attnum),
                pg_type(oid),
                format.format_for(i),
            )
            .with_type_size(types::typlen(oid))
            .with_type_modifier(types::typmod_of_field(f))
        })
        .collect()
}

/// DataRows of `batches`, each cell in its field's type and format.
pub fn encode_batches(
    batches: &[RecordBatch],
    fields: &[FieldInfo],
    settings: &Settings,
) -> Result<Vec<DataRow>, SqlError> {
    let shape: Vec<(u32, bool)> = fields
        .iter()
        .map(|f| (f.datatype().oid(), f.format() == FieldFormat::Binary))
        .collect();
    // `character(n)` columns are stored without their padding.
    let pad: Vec<usize> = fields
        .iter()
        .map(|f| match f.datatype().oid() {
            types::BPCHAR => usize::try_from(f.type_modifier() - 4).unwrap_or(0),
            _ => 0,
        })
        .collect();
    let mut rows = Vec::new();
    let mut total = 0usize;
    let mut cell = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let mut data = bytes::BytesMut::with_capacity(16 * shape.len());
            for (c, (oid, binary)) in shape.iter().enumerate() {
                cell.clear();
                if value::encode_cell(batch.column(c), row, *oid, *binary, settings, &mut cell)? {
                    value::text::pad_chars(&mut cell, pad[c]);
                    let len = i32::try_from(cell.len())
                        .map_err(|_| SqlError::new("54000", "a value is larger than 2 GB"))?;
                    data.put_i32(len);
                    data.put_slice(&cell);
                } else {
                    data.put_i32(-1);
                }
            }
            total += data.len();
            if total > RESULT_BYTES_MAX {
                return Err(SqlError::new(
                    "54000",
                    format!("result larger than {RESULT_BYTES_MAX} bytes"),
                ));
            }
            rows.push(DataRow::new(data, shape.len() as i16));
        }
    }
    Ok(rows)
}

/// Bind parameter `idx` of type `oid` from its raw bytes (never through
/// pgwire's `FromSqlText`, which un-escapes `''`: see `value`).
pub fn decode_param(
    bytes: Option<&[u8]>,
    oid: u32,
    format: &Format,
    idx: usize,
    dt: &DataType,
    settings: &Settings,
) -> Result<ScalarValue, SqlError> {
    let Some(bytes) = bytes else {
        return ScalarValue::try_from(dt).map_err(|e| SqlError::internal(e.to_string()));
    };
    let binary = format.format_for(idx) == FieldFormat::Binary;
    value::decode_param(oid, binary, bytes, settings).map_err(|mut e| {
        if e.code == "22P03" {
            e.message = format!("{} in bind parameter {}", e.message, idx + 1);
        }
        e
    })
}
