//! A class scan as DataFusion executes it: batches streamed from storage
//! cursors, decoded as they come (only the projected columns), in
//! partitions that run in parallel.
//!
//! A class's objects are one key range (`o` + class id + object id); a
//! class with subclasses is one range per class. A large range is split by
//! object id into one partition per core, which DataFusion runs as
//! concurrent tasks (partial aggregates per partition), so a scan uses
//! every core. The split points come from the first and last key (two
//! seeks), the first partition starts at the range's start and the last
//! ends at its end, so together they cover the whole range (a concurrent
//! insert anywhere in it conflicts: no phantoms).
//!
//! Each batch holds at most `BATCH_ROWS` objects, and a LIMIT reaches the
//! scan, so `SELECT * FROM t LIMIT 10` reads about ten objects per
//! partition, not the class. The cursors open once the plan is final,
//! before it runs (`open_scans.rs`), in the statement's transaction (its
//! snapshot and its writes so far); an open partition holds only its
//! cursor, not the transaction, so a partition task DataFusion abandons (a
//! LIMIT met elsewhere) never delays the statement's commit.

use crate::columnar::Decoder;
use crate::error::SqlError;
use amber_catalog::{class_prefix, class_range_end, oid_of_key, ClassDef, ModuleDef};
use amber_runtime::TxnHandle;
use amber_storage::Cursor;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::ExecutionPlan;
use std::sync::{Arc, Mutex};

/// Objects per batch: DataFusion's default batch size.
pub const BATCH_ROWS: usize = 8192;

/// Most partitions one class range is split into: one per core (more
/// would only queue), at most this many.
const PARTITIONS_MAX: u64 = 8;

/// Partitions a large range is split into: the cores this process may
/// use, within `1..=PARTITIONS_MAX`.
fn partition_count() -> u64 {
    static CORES: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (n as u64).clamp(1, PARTITIONS_MAX)
    })
}

/// A range narrower than this many object ids is not split: its objects
/// fit in a few batches and a second task would cost more than it saves.
const SPLIT_OIDS_MIN: u64 = 64 * 1024;

/// One partition: the objects of one stored class in one key range.
struct ClassPartition {
    module: Arc<ModuleDef>,
    class: Arc<ClassDef>,
    /// The class table's full schema, and the projection of it to build.
    table_schema: SchemaRef,
    projection: Option<Vec<usize>>,
    projected: SchemaRef,
    /// The stored class of the objects in this range.
    class_id: u64,
    /// Opened before the plan runs, taken by the first (only) execution.
    cursor: Mutex<Cursoring>,
    /// Rows this partition need not exceed (the query's LIMIT).
    rows_max: Option<usize>,
}

impl std::fmt::Debug for ClassPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassPartition")
            .field("class_id", &self.class_id)
            .field("rows_max", &self.rows_max)
            .finish()
    }
}

/// A partition's cursor: not opened yet (its range is not read until it
/// opens), open, or taken by the execution.
enum Cursoring {
    Deferred {
        /// Held weakly, as `index/ordered.rs`'s `Source` holds it.
        txn: std::sync::Weak<Mutex<amber_storage::Txn>>,
        start: Vec<u8>,
        end: Vec<u8>,
    },
    Open(Cursor),
    Taken,
}

impl Cursoring {
    /// Opens the cursor if it is not open yet: its range joins the read
    /// set now.
    fn open(&mut self) -> Result<(), SqlError> {
        if let Cursoring::Deferred { txn, start, end } = self {
            let txn = txn
                .upgrade()
                .ok_or_else(|| SqlError::internal("a class scan ran after its statement"))?;
            let cursor = crate::dml::lock(&txn)?.cursor(start, end)?;
            *self = Cursoring::Open(cursor);
        }
        Ok(())
    }
}

impl ClassPartition {
    fn cursoring(&self) -> Result<std::sync::MutexGuard<'_, Cursoring>, SqlError> {
        self.cursor
            .lock()
            .map_err(|_| SqlError::internal("class scan lock poisoned"))
    }

    fn open(&self) -> Result<(), SqlError> {
        self.cursoring()?.open()
    }

    /// The open cursor, for the one execution.
    fn take(&self) -> Result<Option<Cursor>, SqlError> {
        let mut state = self.cursoring()?;
        state.open()?;
        Ok(match std::mem::replace(&mut *state, Cursoring::Taken) {
            Cursoring::Open(c) => Some(c),
            _ => None,
        })
    }
}

/// Opens the cursors of one class scan's partitions. A scan's cursors open
/// once the plan is final, before it runs (`open_scans.rs`), so every
/// partition reads the statement's snapshot and its writes before the
/// statement, whenever DataFusion starts it; a scan a join reads by key
/// (`index/join.rs`) opens them only if it falls back to scanning, so
/// its class range is read only then.
#[derive(Debug, Clone)]
pub struct Opener(Arc<[Arc<ClassPartition>]>);

impl Opener {
    pub fn open(&self) -> Result<(), SqlError> {
        self.0.iter().try_for_each(|p| p.open())
    }
}

/// A class scan as planned: the plan, what opens its cursors, and about
/// how many objects it reads.
pub struct ClassScan {
    pub exec: Arc<dyn ExecutionPlan>,
    pub opener: Opener,
    /// The span of the ids of each class's objects, summed: an upper
    /// bound of their number (ids are given out increasing; deletes leave
    /// gaps), from two seeks per class outside the read set.
    pub rows_estimate: Option<usize>,
}

/// What a partition's stream carries between batches.
struct Scanning {
    part: Arc<ClassPartition>,
    cursor: Option<Cursor>,
    rows_left: usize,
    /// Why there is no cursor (executed twice, or it could not open):
    /// the stream's one item, unless it need return no row.
    failed: Option<SqlError>,
}

impl ClassPartition {
    /// The next batch, or `None` at the end of the range.
    fn next_batch(&self, st: &mut Scanning) -> Result<Option<RecordBatch>, SqlError> {
        if st.rows_left == 0 {
            return Ok(None);
        }
        let Some(cursor) = st.cursor.as_mut() else {
            return Ok(None);
        };
        let want = st.rows_left.min(BATCH_ROWS);
        let mut decoder = Decoder::new(
            &self.module,
            &self.class,
            &self.table_schema,
            self.projection.as_deref(),
            want,
        )?;
        let n = cursor.next_batch(want, |key, value| {
            let oid = oid_of_key(key).ok_or_else(|| SqlError::internal("corrupt object key"))?;
            decoder.push(self.class_id, oid, value)
        })?;
        if n == 0 {
            st.cursor = None;
            st.rows_left = 0;
            return Ok(None);
        }
        st.rows_left -= n;
        let (_, batch) = decoder.finish()?;
        debug_assert_eq!(batch.num_rows(), n);
        Ok(Some(batch))
    }
}

/// The partition as DataFusion polls it (it needs a `PartitionStream`
/// behind an `Arc`).
#[derive(Debug)]
struct Partition(Arc<ClassPartition>);

impl PartitionStream for Partition {
    fn schema(&self) -> &SchemaRef {
        &self.0.projected
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        // A cursor not opened yet (a plan run without `open_scans.rs`)
        // opens now. A partition is executed once; a second execution
        // (which no plan Amber makes does) gets an error rather than an
        // empty result, as does a cursor that could not open.
        let (cursor, failed) = match self.0.take() {
            Ok(Some(c)) => (Some(c), None),
            Ok(None) => (
                None,
                Some(SqlError::internal(
                    "a class scan partition was executed twice",
                )),
            ),
            Err(e) => (None, Some(e)),
        };
        let st = Scanning {
            part: self.0.clone(),
            rows_left: self.0.rows_max.unwrap_or(usize::MAX),
            cursor,
            failed,
        };
        let stream = futures::stream::unfold(st, move |mut st| async move {
            if let Some(e) = st.failed.take().filter(|_| st.rows_left > 0) {
                st.rows_left = 0;
                return Some((Err(DataFusionError::from(e)), st));
            }
            let part = st.part.clone();
            match part.next_batch(&mut st) {
                Ok(Some(batch)) => Some((Ok(batch), st)),
                Ok(None) => None,
                Err(e) => {
                    // Nothing after an error.
                    st.rows_left = 0;
                    Some((Err(DataFusionError::from(e)), st))
                }
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(
            self.0.projected.clone(),
            stream,
        ))
    }
}

/// The execution plan of a scan of the objects of `class_ids` (`class`
/// and the subclasses its table holds), projected to `projection`,
/// reading at most `limit` rows.
pub fn class_scan(
    module: Arc<ModuleDef>,
    class: &ClassDef,
    class_ids: &[u64],
    schema: SchemaRef,
    projection: Option<&Vec<usize>>,
    limit: Option<usize>,
    txn: &TxnHandle,
) -> Result<ClassScan, SqlError> {
    let projected = match projection {
        Some(p) => Arc::new(
            schema
                .project(p)
                .map_err(|e| SqlError::internal(e.to_string()))?,
        ),
        None => schema.clone(),
    };
    let class = Arc::new(class.clone());
    let mut parts: Vec<Arc<ClassPartition>> = Vec::new();
    let mut part = |class_id: u64, start: &[u8], end: &[u8]| {
        parts.push(Arc::new(ClassPartition {
            module: module.clone(),
            class: class.clone(),
            table_schema: schema.clone(),
            projection: projection.cloned(),
            projected: projected.clone(),
            class_id,
            cursor: Mutex::new(Cursoring::Deferred {
                txn: Arc::downgrade(txn),
                start: start.to_vec(),
                end: end.to_vec(),
            }),
            rows_max: limit,
        }))
    };
    let mut rows = 0u64;
    for &cid in class_ids {
        let start = class_prefix(cid);
        let end = class_range_end(cid);
        let bounds = crate::dml::lock(txn)?.key_bounds_estimate(&start, &end)?;
        let oids = bounds.and_then(|(first, last)| Some((oid_of_key(&first)?, oid_of_key(&last)?)));
        if let Some((lo, hi)) = oids {
            rows = rows.saturating_add(hi.saturating_sub(lo).saturating_add(1));
        }
        // A LIMIT small enough for one batch is read by one partition.
        let split = limit.is_none_or(|l| l > BATCH_ROWS);
        match oids {
            Some((lo, hi))
                if split && hi.saturating_sub(lo) >= SPLIT_OIDS_MIN && partition_count() > 1 =>
            {
                let n = partition_count();
                let step = (hi - lo) / n + 1;
                let mut from = start;
                for i in 1..n {
                    let cut = amber_catalog::object_key(cid, lo + step * i);
                    part(cid, &from, &cut);
                    from = cut;
                }
                part(cid, &from, &end);
            }
            _ => part(cid, &start, &end),
        }
    }
    let partitions: Vec<Arc<dyn PartitionStream>> = parts
        .iter()
        .map(|p| Arc::new(Partition(p.clone())) as Arc<dyn PartitionStream>)
        .collect();
    debug_assert!(!partitions.is_empty());
    let exec = StreamingTableExec::try_new(projected, partitions, None, [], false, limit)?;
    Ok(ClassScan {
        exec: Arc::new(exec),
        opener: Opener(parts.into()),
        rows_estimate: usize::try_from(rows).ok(),
    })
}
