//! COPY: `FROM STDIN` creates objects from the records a client streams
//! (CopyData messages in text, CSV or binary format), in the statement's
//! transaction, as INSERT would (defaults, NOT NULL and reference checks);
//! `TO STDOUT` writes a table's objects or a query's rows, one message per
//! row. Files and programs on the server are never read or written: the
//! server is not the user's machine (psql's `\copy` is the way).
//!
//! A COPY FROM spans several protocol messages: the statement starts it
//! (`Output::CopyIn`), then `copy_data` per message, and `copy_done` (or
//! `copy_fail`) ends it. Any other statement arriving first abandons it.

use crate::convert;
use crate::copy_format::{self, Field, Format, Options, RecordReader};
use crate::dml::{column_index, new_object, put_object, target_columns, RefsVerified};
use crate::error::SqlError;
use crate::session::{commit, Output, Session, TxnState};
use crate::value::{self, types, Settings};
use amber_catalog::{ClassDef, ModuleDef};
use amber_runtime::TxnHandle;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{CopySource, CopyTarget, Query, SetExpr, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde_json::Value as Json;
use std::sync::{Arc, Mutex};

/// Object ids taken from the store at a time by a load.
const IDS_PER_BATCH: u64 = 1024;

/// A COPY FROM STDIN in progress.
pub(crate) struct CopyIn {
    module: Arc<ModuleDef>,
    class: ClassDef,
    /// The class column each field of a record goes to.
    targets: Vec<usize>,
    reader: RecordReader,
    handle: TxnHandle,
    /// The COPY is its own transaction (committed by `copy_done`), not
    /// part of a block.
    autocommit: bool,
    rows: u64,
    /// Records read, the header line included (for error context).
    line: u64,
    ids: std::ops::Range<u64>,
    fields: Vec<Field>,
    verified: RefsVerified,
    /// Every module, when the table has foreign keys to check.
    fk_modules: Option<Vec<Arc<ModuleDef>>>,
}

fn file_error() -> SqlError {
    SqlError::new(
        "42501",
        "COPY to or from a file or program is not allowed in Amber",
    )
    .with_detail(Some(
        "Use COPY ... FROM STDIN or COPY ... TO STDOUT (psql's \\copy reads and writes the client's files).".into(),
    ))
}

fn copy_parts(stmt: &Statement) -> Result<(&CopySource, &CopyTarget, Options), SqlError> {
    let Statement::Copy {
        source,
        target,
        options,
        legacy_options,
        values,
        ..
    } = stmt
    else {
        return Err(SqlError::internal("not a COPY statement"));
    };
    if !values.is_empty() {
        return Err(SqlError::unsupported(
            "COPY data inline in the query string",
        ));
    }
    Ok((source, target, Options::parse(options, legacy_options)?))
}

impl Session {
    /// `COPY table [(columns)] FROM STDIN`: checks the statement and waits
    /// for the data.
    pub(crate) fn copy_from(&mut self, stmt: &Statement) -> Result<Output, SqlError> {
        let (source, target, options) = copy_parts(stmt)?;
        if !matches!(target, CopyTarget::Stdin) {
            return Err(file_error());
        }
        let CopySource::Table {
            table_name,
            columns,
        } = source
        else {
            return Err(SqlError::syntax("COPY FROM of a query"));
        };
        let (handle, autocommit) = match &self.state {
            TxnState::Open(h) => (h.clone(), false),
            _ => (Arc::new(Mutex::new(self.begin_txn(None)?)), true),
        };
        let started = (|| {
            self.use_modules(stmt, &handle)?;
            let (module, class) = self.resolve_table(table_name)?;
            let targets = copy_targets(&class, columns, &table_name.to_string())?;
            let fk_modules = self.foreign_key_modules(&class, false, &handle)?;
            Ok::<_, SqlError>((module, class, targets, fk_modules))
        })();
        let (module, class, targets, fk_modules) = match started {
            Ok(t) => t,
            Err(e) => {
                if !autocommit {
                    self.fail_block();
                }
                return Err(e);
            }
        };
        let binary = options.format == Format::Binary;
        let columns = targets.len();
        let line = u64::from(options.header);
        self.copy_in = Some(Box::new(CopyIn {
            module,
            class,
            targets,
            reader: RecordReader::new(options),
            handle,
            autocommit,
            rows: 0,
            line,
            ids: 0..0,
            fields: Vec::new(),
            verified: RefsVerified::new(),
            fk_modules,
        }));
        Ok(Output::CopyIn { columns, binary })
    }

    /// One CopyData message of the running COPY FROM.
    pub fn copy_data(&mut self, data: &[u8]) -> Result<(), SqlError> {
        let Some(mut copy) = self.copy_in.take() else {
            return Err(SqlError::new("08P01", "unexpected COPY data"));
        };
        let loaded = copy
            .reader
            .push(data)
            .and_then(|()| self.load_records(&mut copy, false));
        match loaded {
            Ok(()) => {
                self.copy_in = Some(copy);
                Ok(())
            }
            Err(e) => {
                self.copy_failed(&copy);
                Err(e)
            }
        }
    }

    /// CopyDone: the last record, then the command tag (`COPY n`); a COPY
    /// of its own commits here.
    pub async fn copy_done(&mut self) -> Result<String, SqlError> {
        let Some(mut copy) = self.copy_in.take() else {
            return Err(SqlError::new("08P01", "unexpected CopyDone"));
        };
        if let Err(e) = self.load_records(&mut copy, true) {
            self.copy_failed(&copy);
            return Err(e);
        }
        if copy.reader.has_partial() {
            self.copy_failed(&copy);
            return Err(SqlError::new("22P04", "unexpected EOF in COPY data"));
        }
        let tag = format!("COPY {}", copy.rows);
        if copy.autocommit {
            let CopyIn { handle, .. } = *copy;
            commit(handle).await?;
        }
        Ok(tag)
    }

    /// CopyFail: the client gave up; nothing of the COPY is kept.
    pub fn copy_fail(&mut self, message: &str) -> SqlError {
        if let Some(copy) = self.copy_in.take() {
            self.copy_failed(&copy);
        }
        SqlError::new("57014", format!("COPY from stdin failed: {message}"))
    }

    /// A statement arrived while a COPY FROM waited for data: the COPY is
    /// over, and failed.
    pub(crate) fn abandon_copy(&mut self) {
        if let Some(copy) = self.copy_in.take() {
            self.copy_failed(&copy);
        }
    }

    fn copy_failed(&mut self, copy: &CopyIn) {
        if !copy.autocommit {
            self.fail_block();
        }
    }

    /// Creates an object for each complete record buffered.
    fn load_records(&self, copy: &mut CopyIn, at_end: bool) -> Result<(), SqlError> {
        let settings = self.value_settings();
        let mut fields = std::mem::take(&mut copy.fields);
        let result = (|| {
            while copy.reader.next_record(&mut fields, at_end)? {
                copy.line += 1;
                self.load_record(copy, &fields, &settings)?;
            }
            Ok(())
        })();
        copy.fields = fields;
        result
    }

    fn load_record(
        &self,
        copy: &mut CopyIn,
        fields: &[Field],
        settings: &Settings,
    ) -> Result<(), SqlError> {
        let binary = copy.reader.format() == Format::Binary;
        let context = |column: Option<&str>, value: Option<&[u8]>| {
            let mut c = format!("COPY {}, line {}", copy.class.table, copy.line);
            if let Some(column) = column {
                c.push_str(&format!(", column {column}"));
                if let Some(v) = value.filter(|_| !binary) {
                    c.push_str(&format!(": \"{}\"", String::from_utf8_lossy(v)));
                }
            }
            c
        };
        if fields.len() != copy.targets.len() {
            let e = if binary {
                SqlError::new(
                    "22P04",
                    format!(
                        "row field count is {}, expected {}",
                        fields.len(),
                        copy.targets.len()
                    ),
                )
            } else if fields.len() < copy.targets.len() {
                let missing = &copy.class.columns[copy.targets[fields.len()]].name;
                SqlError::new("22P04", format!("missing data for column \"{missing}\""))
            } else {
                SqlError::new("22P04", "extra data after last expected column")
            };
            return Err(e.with_context(context(None, None)));
        }
        let obj = new_object(
            &copy.class,
            &copy.targets,
            &self.engine.store,
            |field, col| match &fields[field] {
                None => Ok(Json::Null),
                Some(bytes) => field_value(col, bytes, binary, settings)
                    .map_err(|e| e.with_context(context(Some(&col.name), Some(bytes)))),
            },
        )?;
        self.check_object(
            &copy.module,
            &copy.class,
            &obj,
            &copy.handle,
            Some(&mut copy.verified),
        )
        .map_err(|e| e.with_context(context(None, None)))?;
        let oid = match copy.ids.next() {
            Some(oid) => oid,
            None => {
                copy.ids = self.engine.store.allocate_oids(IDS_PER_BATCH)?;
                copy.ids
                    .next()
                    .ok_or_else(|| SqlError::internal("empty id batch"))?
            }
        };
        let mut txn = crate::dml::lock(&copy.handle)?;
        crate::index::write(&mut txn, &copy.module.name, &copy.class, oid, None, &obj)
            .map_err(|e| e.with_context(context(None, None)))?;
        if let Some(all) = &copy.fk_modules {
            crate::foreign_keys::check_references(&txn, all, &copy.module.name, &copy.class, &obj)
                .map_err(|e| e.with_context(context(None, None)))?;
        }
        put_object(&copy.class, oid, &obj, &mut txn)?;
        copy.rows += 1;
        Ok(())
    }

    /// `COPY table [(columns)] TO STDOUT` and `COPY (query) TO STDOUT`.
    pub(crate) async fn copy_to(
        &mut self,
        stmt: &Statement,
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<Output, SqlError> {
        let (source, target, options) = copy_parts(stmt)?;
        if !matches!(target, CopyTarget::Stdout) {
            return Err(file_error());
        }
        let query: Query = match source {
            CopySource::Query(q) => (**q).clone(),
            CopySource::Table {
                table_name,
                columns,
            } => {
                let (_, class) = self.resolve_table(table_name)?;
                let mut list = vec![];
                for c in columns {
                    if c.value != "id" || class.hidden_id {
                        column_index(&class, &c.value, &table_name.to_string())?;
                    }
                    list.push(c.to_string());
                }
                let list = if list.is_empty() {
                    "*".to_string()
                } else {
                    list.join(", ")
                };
                let sql = format!("SELECT {list} FROM {table_name}");
                let mut stmts = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
                    .map_err(|e| SqlError::syntax(e.to_string()))?;
                match stmts.pop() {
                    Some(Statement::Query(q)) => *q,
                    _ => return Err(SqlError::internal("COPY's query did not parse")),
                }
            }
        };
        if !matches!(
            query.body.as_ref(),
            SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::SetOperation { .. }
        ) {
            return Err(SqlError::unsupported("COPY of this statement"));
        }
        let (schema, batches) = self.run_query(&query, params, txn).await?;
        Ok(Output::CopyOut(CopyOutRows::new(
            schema,
            batches,
            options,
            self.value_settings(),
        )))
    }
}

/// The stored value of one field of a record, read as its column's type.
fn field_value(
    col: &amber_catalog::ColumnDef,
    bytes: &[u8],
    binary: bool,
    settings: &Settings,
) -> Result<Json, SqlError> {
    let oid = convert::type_oid(&col.ty);
    let scalar = if binary {
        value::from_binary(oid, bytes, settings)?
    } else {
        value::from_text(oid, value::text::utf8(bytes)?, settings)?
    };
    convert::column_json(col, &scalar, settings)
}

/// The class columns a COPY FROM fills, in the order of the record's
/// fields: INSERT's rules, and each named once.
fn copy_targets(
    class: &ClassDef,
    columns: &[datafusion::sql::sqlparser::ast::Ident],
    table: &str,
) -> Result<Vec<usize>, SqlError> {
    let names: Vec<String> = columns.iter().map(|c| c.value.clone()).collect();
    let targets = target_columns(class, &names, table)?;
    for (i, t) in targets.iter().enumerate() {
        if targets[..i].contains(t) {
            return Err(SqlError::new(
                "42701",
                format!("column \"{}\" specified more than once", names[i]),
            ));
        }
    }
    Ok(targets)
}

/// The rows of a COPY TO, encoded as the client reads them: one CopyData
/// message per row (the header, if any, with the first).
pub struct CopyOutRows {
    schema: SchemaRef,
    batches: std::vec::IntoIter<RecordBatch>,
    batch: Option<RecordBatch>,
    row: usize,
    oids: Vec<u32>,
    options: Options,
    settings: Settings,
    header_pending: bool,
    cell: Vec<u8>,
    /// The capacity a row's buffer starts with.
    row_bytes: usize,
}

impl std::fmt::Debug for CopyOutRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOutRows")
            .field("columns", &self.oids.len())
            .field("format", &self.options.format)
            .finish()
    }
}

impl CopyOutRows {
    fn new(
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        options: Options,
        settings: Settings,
    ) -> CopyOutRows {
        let oids = schema
            .fields()
            .iter()
            .map(|f| types::oid_of_field(f))
            .collect();
        let header_pending = options.header || options.format == Format::Binary;
        CopyOutRows {
            schema,
            batches: batches.into_iter(),
            batch: None,
            row: 0,
            oids,
            options,
            settings,
            header_pending,
            cell: Vec::new(),
            row_bytes: 64,
        }
    }

    pub fn columns(&self) -> usize {
        self.oids.len()
    }

    pub fn binary(&self) -> bool {
        self.options.format == Format::Binary
    }

    fn header(&mut self, out: &mut Vec<u8>) {
        if !std::mem::take(&mut self.header_pending) {
            return;
        }
        if self.options.format == Format::Binary {
            copy_format::binary_header(out);
            return;
        }
        for (i, f) in self.schema.fields().iter().enumerate() {
            if i > 0 {
                out.push(self.options.delimiter);
            }
            copy_format::write_text_field(&self.options, Some(f.name().as_bytes()), out);
        }
        out.push(b'\n');
    }

    fn encode_row(&mut self, batch: &RecordBatch, row: usize) -> Result<Vec<u8>, SqlError> {
        let mut out = Vec::with_capacity(self.row_bytes);
        self.header(&mut out);
        let binary = self.binary();
        if binary {
            out.extend_from_slice(&(batch.num_columns() as i16).to_be_bytes());
        }
        for (c, oid) in self.oids.iter().enumerate() {
            self.cell.clear();
            let present = value::encode_cell(
                batch.column(c),
                row,
                *oid,
                binary,
                &self.settings,
                &mut self.cell,
            )?;
            if binary {
                if present {
                    let len = i32::try_from(self.cell.len())
                        .map_err(|_| SqlError::new("54000", "COPY value too large"))?;
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(&self.cell);
                } else {
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                }
                continue;
            }
            if c > 0 {
                out.push(self.options.delimiter);
            }
            copy_format::write_text_field(
                &self.options,
                present.then_some(&self.cell[..]),
                &mut out,
            );
        }
        if !binary {
            out.push(b'\n');
        }
        // Rows of one query are usually alike in size.
        self.row_bytes = out.len().next_power_of_two();
        Ok(out)
    }
}

impl Iterator for CopyOutRows {
    type Item = Result<Vec<u8>, SqlError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(batch) = self.batch.take() {
                if self.row < batch.num_rows() {
                    let row = self.row;
                    self.row += 1;
                    let out = self.encode_row(&batch, row);
                    self.batch = Some(batch);
                    return Some(out);
                }
            }
            match self.batches.next() {
                Some(b) => {
                    self.batch = Some(b);
                    self.row = 0;
                }
                None => {
                    // No rows: the header alone.
                    let mut out = Vec::new();
                    self.header(&mut out);
                    return (!out.is_empty()).then_some(Ok(out));
                }
            }
        }
    }
}
