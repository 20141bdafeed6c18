//! Amber's storage: a transactional, ordered key-value store.
//!
//! The interface is deliberately narrow (get, put, delete, ordered scans,
//! commit) so that another engine (FoundationDB) can replace fjall without
//! anything above this crate noticing. Nothing outside this crate names fjall.
//!
//! Guarantees:
//! - Serializable transactions: optimistic concurrency control; at commit the
//!   read set (point reads and scanned ranges, so phantoms count) is checked
//!   against every write committed since the transaction's snapshot. A
//!   transaction that read something since overwritten fails with
//!   [`StorageError::Conflict`]. Writers serialize in commit order, read-only
//!   transactions at their snapshot.
//! - Durability: [`Txn::commit`] returns only after the commit's journal entry
//!   is fsynced (group commit: one fsync covers every commit that finished
//!   before it started). A committed write is visible to other transactions
//!   a moment before its fsync ends, so a read-only transaction's commit waits
//!   until everything it could have seen is durable: no acknowledged
//!   transaction has observed state that a crash could take back.
//! - A failed fsync poisons the store (as PostgreSQL PANICs since fsyncgate):
//!   the failing commit and every later transaction, reads included, fail,
//!   because the state in memory may differ from the state on disk. Only a
//!   restart (which replays the journal) clears it.
//! - Object ids are allocated in durable blocks and never reused.

use fjall::{
    KeyspaceCreateOptions, OptimisticTxDatabase, OptimisticTxKeyspace, PersistMode, Readable,
};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("could not serialize access due to concurrent update")]
    Conflict,
    #[error("could not fsync the journal; the outcome of this commit is unknown and the store refuses all work until restarted")]
    Poisoned,
    #[error("storage error: {0}")]
    Engine(String),
    /// A write in a transaction begun read-only (`BEGIN READ ONLY`).
    #[error("cannot write in a read-only transaction")]
    ReadOnly,
}

impl StorageError {
    /// The SQLSTATE every layer reports this error with.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            StorageError::Conflict => "40001",
            StorageError::Poisoned => "58030",
            StorageError::Engine(_) => "58000",
            StorageError::ReadOnly => "25006",
        }
    }
}

impl From<fjall::Error> for StorageError {
    fn from(e: fjall::Error) -> Self {
        StorageError::Engine(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// Key of the durable object-id high-water mark: every id below it may have
/// been handed out; ids at or above it never were.
const OID_HWM_KEY: &[u8] = b"m\x00oid_hwm";
/// Key prefix of a sequence's high-water mark: `q` + sequence id (u64 BE)
/// -> u64 BE, the first value not yet reserved.
const SEQUENCE_KEY_PREFIX: u8 = b'q';
/// Values a sequence reserves per durable write (PostgreSQL logs 32 ahead
/// too: after a crash, up to that many values are skipped, never reused).
const SEQUENCE_BLOCK_SIZE: u64 = 32;
/// Sequences whose reserved block is kept in memory; past it the blocks
/// are forgotten (their unused values skipped).
const SEQUENCES_CACHED_MAX: usize = 65_536;
/// Ids reserved per durable write of the high-water mark.
const OID_BLOCK_SIZE: u64 = 1024;
/// The size (keys and values, as fjall counts it) at which the memtable
/// is flushed to a table on disk. Its real footprint is about four times
/// that (skiplist nodes, one allocation per value): 16 MiB keeps it near
/// 70 MiB where fjall's default 64 MiB held 290 MiB after a 1M-object load
/// (bench P7); a flush every 16 MiB of writes costs the disk little.
const MEMTABLE_BYTES_MAX: u64 = 16 << 20;
/// The most ids [`Store::allocate_oids`] hands out in one call.
pub const OID_BATCH_MAX: u64 = 65_536;
/// Upper bound on rows returned by one scan call, so a runaway scan cannot
/// take all memory; callers page with `scan_range`.
pub const SCAN_ROWS_MAX: usize = 10_000_000;

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    db: OptimisticTxDatabase,
    data: OptimisticTxKeyspace,
    group_commit: GroupCommit,
    oids: Mutex<OidBlock>,
    /// Reserved blocks of sequences in use, by sequence id.
    sequences: Mutex<std::collections::HashMap<u64, OidBlock>>,
}

struct OidBlock {
    next: u64,
    end: u64,
}

/// Leader-based group commit. Each commit takes a ticket right after its
/// journal write, under `commit_lock`, so a commit is visible to readers only
/// once its ticket is taken or about to be (readers take `commit_lock` to
/// see the latest ticket). A commit is durable once `synced >= ticket`.
/// Whoever holds `sync_lock` fsyncs for everyone whose ticket was taken
/// before the fsync started.
struct GroupCommit {
    commit_lock: Mutex<()>,
    committed: AtomicU64,
    synced: AtomicU64,
    sync_lock: Mutex<()>,
    poisoned: AtomicBool,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let db = OptimisticTxDatabase::builder(path)
            .manual_journal_persist(true)
            .open()?;
        let data = db.keyspace("data", || {
            KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES_MAX)
        })?;
        let hwm = match data.get(OID_HWM_KEY)? {
            Some(v) => decode_u64(&v)?,
            None => 1,
        };
        let store = Store {
            inner: Arc::new(StoreInner {
                db,
                data,
                group_commit: GroupCommit {
                    commit_lock: Mutex::new(()),
                    committed: AtomicU64::new(0),
                    synced: AtomicU64::new(0),
                    sync_lock: Mutex::new(()),
                    poisoned: AtomicBool::new(false),
                },
                oids: Mutex::new(OidBlock {
                    next: hwm,
                    end: hwm,
                }),
                sequences: Mutex::new(std::collections::HashMap::new()),
            }),
        };
        Ok(store)
    }

    /// Starts a transaction reading a consistent snapshot.
    pub fn begin(&self) -> Result<Txn> {
        if self.is_poisoned() {
            return Err(StorageError::Poisoned);
        }
        let tx = self.inner.db.write_tx()?.durability(None);
        Ok(Txn {
            tx: Some(tx),
            store: self.clone(),
            wrote: false,
            read_only: false,
            undo: Vec::new(),
            savepoints_open: 0,
        })
    }

    /// The next value of sequence `id` (1, 2, 3, ...): never handed out
    /// before, also across restarts and crashes; outside any transaction,
    /// as PostgreSQL's nextval (a rolled-back insert leaves a gap).
    pub fn sequence_next(&self, id: u64) -> Result<u64> {
        let key = sequence_key(id);
        let mut seqs = self
            .inner
            .sequences
            .lock()
            .map_err(|_| StorageError::Engine("sequence lock poisoned".into()))?;
        if seqs.len() >= SEQUENCES_CACHED_MAX && !seqs.contains_key(&id) {
            seqs.clear();
        }
        let block = match seqs.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let hwm = match self.inner.data.get(&key)? {
                    Some(b) => decode_u64(&b)?,
                    None => 1,
                };
                v.insert(OidBlock {
                    next: hwm,
                    end: hwm,
                })
            }
        };
        if block.next >= block.end {
            let new_end = block
                .end
                .checked_add(SEQUENCE_BLOCK_SIZE)
                .filter(|e| *e <= i64::MAX as u64)
                .ok_or_else(|| StorageError::Engine("sequence reached its maximum value".into()))?;
            // As for object ids: the mark is durable before a value of the
            // block is used.
            let mut tx = self.inner.db.write_tx()?.durability(None);
            tx.insert(&self.inner.data, key, new_end.to_be_bytes());
            let ticket = self.commit_journal(tx)?;
            self.wait_durable(ticket)?;
            block.end = new_end;
        }
        let value = block.next;
        block.next += 1;
        debug_assert!(block.next <= block.end);
        Ok(value)
    }

    /// Allocates a fresh object id, never handed out before (also across
    /// restarts and crashes).
    pub fn allocate_oid(&self) -> Result<u64> {
        Ok(self.allocate_oids(1)?.start)
    }

    /// Allocates `n` consecutive fresh object ids (1 ..= [`OID_BATCH_MAX`]),
    /// with at most one durable write: bulk loads (COPY) take their ids a
    /// batch at a time instead of one lock and, every 1024 ids, one fsync
    /// per object.
    pub fn allocate_oids(&self, n: u64) -> Result<std::ops::Range<u64>> {
        if n == 0 || n > OID_BATCH_MAX {
            return Err(StorageError::Engine(format!(
                "{n} object ids asked for at once (1 to {OID_BATCH_MAX})"
            )));
        }
        let mut block = self
            .inner
            .oids
            .lock()
            .map_err(|_| StorageError::Engine("oid allocator lock poisoned".into()))?;
        let left = block.end - block.next;
        if left < n {
            let new_end = block.end + OID_BLOCK_SIZE.max(n - left);
            // Blind write of the new mark, made durable before any id of the
            // block is used.
            let mut tx = self.inner.db.write_tx()?.durability(None);
            tx.insert(&self.inner.data, OID_HWM_KEY, new_end.to_be_bytes());
            let ticket = self.commit_journal(tx)?;
            self.wait_durable(ticket)?;
            block.end = new_end;
        }
        let ids = block.next..block.next + n;
        block.next = ids.end;
        debug_assert!(block.next <= block.end);
        Ok(ids)
    }

    /// Writes a transaction's commit to the journal (not yet synced) and
    /// returns its group-commit ticket.
    fn commit_journal(&self, tx: fjall::OptimisticWriteTx) -> Result<u64> {
        let gc = &self.inner.group_commit;
        let _guard = gc.commit_lock.lock().map_err(|_| StorageError::Poisoned)?;
        match tx.commit()? {
            Ok(()) => {}
            Err(_conflict) => return Err(StorageError::Conflict),
        }
        Ok(gc.committed.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// The ticket of the latest commit visible to a snapshot taken before
    /// this call.
    fn visible_ticket(&self) -> Result<u64> {
        let gc = &self.inner.group_commit;
        let _guard = gc.commit_lock.lock().map_err(|_| StorageError::Poisoned)?;
        Ok(gc.committed.load(Ordering::SeqCst))
    }

    /// Waits until the commit holding `ticket`, and every one before it, is
    /// on disk; fsyncs if nobody else is about to.
    fn wait_durable(&self, ticket: u64) -> Result<()> {
        let gc = &self.inner.group_commit;
        if gc.synced.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        if gc.poisoned.load(Ordering::SeqCst) {
            return Err(StorageError::Poisoned);
        }
        let _guard = gc.sync_lock.lock().map_err(|_| StorageError::Poisoned)?;
        if gc.synced.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        if gc.poisoned.load(Ordering::SeqCst) {
            return Err(StorageError::Poisoned);
        }
        // Every ticket up to `target` belongs to a commit whose journal write
        // finished before this fsync starts.
        let target = gc.committed.load(Ordering::SeqCst);
        debug_assert!(target >= ticket);
        if let Err(e) = self.inner.db.persist(PersistMode::SyncAll) {
            gc.poisoned.store(true, Ordering::SeqCst);
            tracing::error!(error = %e, "fsync failed; storage poisoned, refusing all further work");
            return Err(StorageError::Poisoned);
        }
        gc.synced.store(target, Ordering::SeqCst);
        Ok(())
    }

    pub fn is_poisoned(&self) -> bool {
        self.inner.group_commit.poisoned.load(Ordering::SeqCst)
    }

    /// Flushes everything to disk (used at shutdown).
    pub fn sync(&self) -> Result<()> {
        self.inner.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}

/// The key of sequence `id`'s high-water mark (deleted with its table).
pub fn sequence_key(id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(SEQUENCE_KEY_PREFIX);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn decode_u64(v: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = v
        .try_into()
        .map_err(|_| StorageError::Engine("corrupt u64 value".into()))?;
    Ok(u64::from_be_bytes(arr))
}

/// A serializable transaction. Dropping it without commit rolls it back.
pub struct Txn {
    tx: Option<fjall::OptimisticWriteTx>,
    store: Store,
    wrote: bool,
    /// Every write is refused ([`StorageError::ReadOnly`]).
    read_only: bool,
    /// While a savepoint is open: each write's key and the value it
    /// replaced, so that the writes after a savepoint can be undone.
    undo: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    savepoints_open: usize,
}

/// A point in a transaction's writes to return to ([`Txn::rollback_to`]).
#[derive(Debug)]
#[must_use]
pub struct Savepoint {
    undo_len: usize,
}

/// Savepoints open at once in one transaction (nesting depth).
const SAVEPOINTS_OPEN_MAX: usize = 64;

/// A forward cursor over a key range of one transaction ([`Txn::cursor`]).
pub struct Cursor {
    iter: fjall::Iter,
}

/// The first `limit` pairs `iter` yields.
fn take_pairs(
    iter: impl Iterator<Item = fjall::Guard>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for guard in iter.take(limit) {
        let (k, v) = guard.into_inner()?;
        out.push((k.to_vec(), v.to_vec()));
    }
    Ok(out)
}

impl Cursor {
    /// Hands the next pairs, at most `rows_max` of them, to `f` without
    /// copying them; returns how many there were (0: the range is done).
    /// Stops at `f`'s first error.
    pub fn next_batch<E: From<StorageError>>(
        &mut self,
        rows_max: usize,
        mut f: impl FnMut(&[u8], &[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<usize, E> {
        let mut n = 0usize;
        while n < rows_max {
            let Some(guard) = self.iter.next() else { break };
            let (k, v) = guard.into_inner().map_err(StorageError::from)?;
            f(&k, &v)?;
            n += 1;
        }
        Ok(n)
    }
}

impl std::fmt::Debug for Txn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txn").field("wrote", &self.wrote).finish()
    }
}

impl Txn {
    fn tx(&self) -> Result<&fjall::OptimisticWriteTx> {
        self.tx
            .as_ref()
            .ok_or_else(|| StorageError::Engine("transaction already finished".into()))
    }

    fn tx_mut(&mut self) -> Result<&mut fjall::OptimisticWriteTx> {
        self.tx
            .as_mut()
            .ok_or_else(|| StorageError::Engine("transaction already finished".into()))
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let data = &self.store.inner.data;
        Ok(self.tx()?.get(data, key)?.map(|v| v.to_vec()))
    }

    /// Makes every later write of this transaction fail with
    /// [`StorageError::ReadOnly`] (or lifts that, for `false`).
    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.read_only {
            return Err(StorageError::ReadOnly);
        }
        self.remember(key)?;
        let data = self.store.inner.data.clone();
        self.tx_mut()?.insert(&data, key.to_vec(), value.to_vec());
        self.wrote = true;
        Ok(())
    }

    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        if self.read_only {
            return Err(StorageError::ReadOnly);
        }
        self.remember(key)?;
        let data = self.store.inner.data.clone();
        self.tx_mut()?.remove(&data, key.to_vec());
        self.wrote = true;
        Ok(())
    }

    /// Under a savepoint, records the value `key` had before this write
    /// (a read: it joins the read set, as the write would have anyway for
    /// any statement that looked at the key first).
    fn remember(&mut self, key: &[u8]) -> Result<()> {
        if self.savepoints_open > 0 {
            let before = self.get(key)?;
            self.undo.push((key.to_vec(), before));
        }
        Ok(())
    }

    /// Opens a savepoint: writes after it can be undone by
    /// [`Txn::rollback_to`] (as a failed statement in PostgreSQL's
    /// subtransaction).
    pub fn savepoint(&mut self) -> Result<Savepoint> {
        if self.savepoints_open >= SAVEPOINTS_OPEN_MAX {
            return Err(StorageError::Engine(format!(
                "more than {SAVEPOINTS_OPEN_MAX} savepoints open in one transaction"
            )));
        }
        self.savepoints_open += 1;
        Ok(Savepoint {
            undo_len: self.undo.len(),
        })
    }

    /// Undoes every write since `sp` and closes it.
    pub fn rollback_to(&mut self, sp: Savepoint) -> Result<()> {
        let data = self.store.inner.data.clone();
        let undone = self.undo.split_off(sp.undo_len.min(self.undo.len()));
        let tx = self.tx_mut()?;
        for (key, before) in undone.into_iter().rev() {
            match before {
                Some(v) => tx.insert(&data, key, v),
                None => tx.remove(&data, key),
            }
        }
        self.release(sp);
        Ok(())
    }

    /// Closes `sp`, keeping its writes (an outer savepoint still needs
    /// their undo entries).
    pub fn release(&mut self, _sp: Savepoint) {
        debug_assert!(self.savepoints_open > 0, "release without a savepoint");
        self.savepoints_open = self.savepoints_open.saturating_sub(1);
        if self.savepoints_open == 0 {
            self.undo.clear();
        }
    }

    /// All pairs whose key starts with `prefix`, in key order. The whole
    /// prefix range joins the read set, so a concurrent insert into it is a
    /// conflict (no phantoms).
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let data = &self.store.inner.data;
        let mut cursor = Cursor {
            iter: self.tx()?.prefix(data, prefix),
        };
        let mut out = Vec::new();
        let n = cursor.next_batch(SCAN_ROWS_MAX, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok::<(), StorageError>(())
        })?;
        if n >= SCAN_ROWS_MAX {
            return Err(StorageError::Engine("scan exceeds row limit".into()));
        }
        Ok(out)
    }

    /// A cursor over the pairs with `start <= key < end`, in key order, as
    /// this transaction sees them now (its snapshot and its own writes so
    /// far). The whole range joins the read set when the cursor opens
    /// (no phantoms), and reading it needs no access to the transaction:
    /// several cursors of one transaction can be read at once, on other
    /// threads, each batch bounded by its reader.
    pub fn cursor(&self, start: &[u8], end: &[u8]) -> Result<Cursor> {
        let data = &self.store.inner.data;
        let range = (
            Bound::Included(start.to_vec()),
            Bound::Excluded(end.to_vec()),
        );
        Ok(Cursor {
            iter: self.tx()?.range(data, range),
        })
    }

    /// The first and the last key with `start <= key < end` (`None` if
    /// there is none) among the latest committed keys: two seeks, whatever
    /// lies between. An estimate (how to split a scan, how many objects a
    /// class has), read outside the transaction: it joins no read set, as
    /// a snapshot read in FoundationDB does not, so it causes no conflict.
    pub fn key_bounds_estimate(
        &self,
        start: &[u8],
        end: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        // Fails closed like every read of a finished transaction.
        self.tx()?;
        let data = self.store.inner.data.inner();
        let mut iter = data.range::<&[u8], _>((Bound::Included(start), Bound::Excluded(end)));
        let Some(first) = iter.next() else {
            return Ok(None);
        };
        let first = first.key()?.to_vec();
        let last = match iter.next_back() {
            Some(g) => g.key()?.to_vec(),
            None => first.clone(),
        };
        Ok(Some((first, last)))
    }

    /// Pairs with `start <= key < end`, at most `limit` of them.
    pub fn scan_range(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let iter = self.range_iter(start, end)?;
        take_pairs(iter, limit)
    }

    /// Pairs with `start <= key < end`, the last first, at most `limit`
    /// of them (an index read backwards: `ORDER BY ... DESC LIMIT n`).
    /// The whole range joins the read set.
    pub fn scan_range_rev(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let iter = self.range_iter(start, end)?;
        take_pairs(iter.rev(), limit)
    }

    fn range_iter(&self, start: &[u8], end: &[u8]) -> Result<fjall::Iter> {
        let range = (
            Bound::Included(start.to_vec()),
            Bound::Excluded(end.to_vec()),
        );
        Ok(self.tx()?.range(&self.store.inner.data, range))
    }

    pub fn has_writes(&self) -> bool {
        self.wrote
    }

    /// Commits; returns once the commit is durable. A conflict with a
    /// concurrent commit is [`StorageError::Conflict`] and nothing is written.
    pub fn commit(mut self) -> Result<()> {
        let tx = self
            .tx
            .take()
            .ok_or_else(|| StorageError::Engine("transaction already finished".into()))?;
        if !self.wrote {
            // Read-only: serialized at its snapshot, nothing to check; but
            // what it read must be durable before it is acknowledged.
            tx.rollback();
            let ticket = self.store.visible_ticket()?;
            return self.store.wait_durable(ticket);
        }
        if self.store.is_poisoned() {
            tx.rollback();
            return Err(StorageError::Poisoned);
        }
        let ticket = self.store.commit_journal(tx)?;
        self.store.wait_durable(ticket)
    }

    /// Commits at once if that cannot block: a read-only transaction whose
    /// view is already durable (the common case: nothing it could have seen
    /// is still being fsynced). `None`: nothing was done, and the
    /// transaction must go through [`Txn::commit`] on a thread that may
    /// block.
    pub fn commit_if_immediate(&mut self) -> Option<Result<()>> {
        if self.wrote || self.tx.is_none() {
            return None;
        }
        let ticket = match self.store.visible_ticket() {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        if self.store.inner.group_commit.synced.load(Ordering::SeqCst) < ticket {
            return None;
        }
        // Everything this snapshot could see is durable: the same end as
        // `commit` for a read-only transaction, without waiting.
        if let Some(tx) = self.tx.take() {
            tx.rollback();
        }
        Some(Ok(()))
    }

    pub fn rollback(mut self) {
        if let Some(tx) = self.tx.take() {
            tx.rollback();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_skew_is_a_conflict() -> Result<()> {
        let dir = tempdir();
        let store = Store::open(&dir)?;
        let mut setup = store.begin()?;
        setup.put(b"x", b"1")?;
        setup.put(b"y", b"1")?;
        setup.commit()?;
        let mut t1 = store.begin()?;
        let mut t2 = store.begin()?;
        t1.get(b"x")?;
        t1.get(b"y")?;
        t2.get(b"x")?;
        t2.get(b"y")?;
        t1.put(b"x", b"0")?;
        t2.put(b"y", b"0")?;
        t1.commit()?;
        assert!(matches!(t2.commit(), Err(StorageError::Conflict)));
        Ok(())
    }

    #[test]
    fn phantom_is_a_conflict() -> Result<()> {
        let dir = tempdir();
        let store = Store::open(&dir)?;
        let mut t1 = store.begin()?;
        let mut t2 = store.begin()?;
        assert!(t1.scan_prefix(b"o")?.is_empty());
        t2.put(b"o1", b"new")?;
        t2.commit()?;
        t1.put(b"count", b"0")?;
        assert!(matches!(t1.commit(), Err(StorageError::Conflict)));
        Ok(())
    }

    #[test]
    fn oids_survive_reopen_without_reuse() -> Result<()> {
        let dir = tempdir();
        let first = {
            let store = Store::open(&dir)?;
            let a = store.allocate_oid()?;
            let b = store.allocate_oid()?;
            assert!(b > a);
            b
        };
        let store = Store::open(&dir)?;
        assert!(store.allocate_oid()? > first);
        Ok(())
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "amber-storage-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
}
