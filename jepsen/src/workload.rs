//! The workloads: what each client transaction does, through tokio-postgres
//! (the extended protocol with prepared statements), each in BEGIN ... COMMIT.
//!
//! - `list-append`: keys are objects with a `list[int]` attribute; a
//!   transaction mixes `UPDATE ... SET vals = array_append(vals, $v)` and
//!   point reads of several keys.
//! - `list-append-proc`: the same operations done in Python by `CALL
//!   jla.txn(ops)`, split over one or two calls, so the runtime's change
//!   tracking (in-place `list.append` on loaded objects) is under test.
//! - `register`: integer registers, `UPDATE ... SET val = $v` and reads, by
//!   the direct path, through DataFusion plans, or the whole transaction as
//!   one simple-protocol query (`BEGIN; ...; COMMIT`, as psql sends it).
//! - `set`: objects created (by SQL INSERT ... RETURNING or by Python) and
//!   read back at once by SQL and Python, by id and through the class's
//!   indexes (`v` unique, `name`); some creations claim a value created
//!   just before (by a transaction that may still run), which the unique
//!   index must refuse unless its first creator failed; and reads of the
//!   whole set.

use crate::checker::Model;
use crate::history::{element_attrs, ElementAttrs, Mop};
use rand::Rng;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use tokio_postgres::{Client, NoTls, Statement};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    ListAppend,
    ListAppendProc,
    Register,
    Set,
}

impl Workload {
    pub const ALL: [Workload; 4] = [
        Workload::ListAppend,
        Workload::ListAppendProc,
        Workload::Register,
        Workload::Set,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::ListAppend => "list-append",
            Workload::ListAppendProc => "list-append-proc",
            Workload::Register => "register",
            Workload::Set => "set",
        }
    }

    pub fn model(self) -> Model {
        match self {
            Workload::ListAppend | Workload::ListAppendProc => Model::ListAppend,
            Workload::Register => Model::Register,
            Workload::Set => Model::Set,
        }
    }

    /// The module the workload runs against, deployed once at setup.
    pub fn module_sql(self) -> &'static str {
        match self {
            Workload::ListAppend | Workload::ListAppendProc => LIST_APPEND_MODULE,
            Workload::Register => REGISTER_MODULE,
            Workload::Set => SET_MODULE,
        }
    }

    /// The table whose objects are this workload's keys (none for `set`).
    pub fn key_table(self) -> Option<&'static str> {
        match self {
            Workload::ListAppend | Workload::ListAppendProc => Some("jla.cell"),
            Workload::Register => Some("jreg.reg"),
            Workload::Set => None,
        }
    }
}

/// How far back a set claim reaches for a value already created.
const CLAIM_BACK_MAX: u64 = 4;

/// One list-append-in-Python transaction in this many (by its first
/// appended value) fails on purpose after its writes.
const FAIL_ON_PURPOSE_EVERY: u64 = 11;

const LIST_APPEND_MODULE: &str = r#"CREATE MODULE jla AS $$
import json
import amber
from amber import Persistent

class Cell(Persistent):
    seq: int = 0
    vals: list[int] = []

def txn(ops: str) -> str:
    """Runs [["append", key, value, via] | ["r", key, null, via], ...] and
    returns the reads (null for appends), as JSON. `via` "py" works on the
    object (in-place list.append); "sql" runs the same operation through
    amber.sql() in the same transaction, so both must see each other."""
    out = []
    for f, k, v, via in json.loads(ops):
        if f == "fail":
            # Half way: the appends above (some through amber.sql) are
            # done; none of them may ever be read.
            raise ValueError("deliberate failure after the writes")
        if via == "sql":
            if f == "append":
                amber.sql("UPDATE jla.cell SET vals = array_append(vals, $2::bigint) WHERE id = $1", k, v)
                out.append(None)
            else:
                rows = amber.sql("SELECT vals FROM jla.cell WHERE id = $1", k)
                if not rows:
                    raise amber.Error("P0002", f"no key {k}")
                out.append(list(rows[0][0]))
            continue
        cell = Cell.get(k)
        if cell is None:
            raise amber.Error("P0002", f"no key {k}")
        if f == "append":
            cell.vals.append(v)
            out.append(None)
        else:
            out.append(list(cell.vals))
    return json.dumps(out)
$$"#;

const REGISTER_MODULE: &str = r#"CREATE MODULE jreg AS $$
from amber import Persistent

class Reg(Persistent):
    seq: int = 0
    val: int | None = None
$$"#;

const SET_MODULE: &str = r#"CREATE MODULE jset AS $$
import json
from amber import Persistent

class Element(Persistent):
    v: int
    name: str
    tags: list[int] = []
    __unique__ = ("v",)
    __indexes__ = ("name",)

def create(v: int) -> int:
    e = Element(v=v, name="e" + str(v), tags=[v, v + 1])
    return e.id

def show(id: int) -> str:
    e = Element.get(id)
    if e is None:
        return "null"
    return json.dumps({"v": e.v, "name": e.name, "tags": list(e.tags)})

def show_by(v: int) -> str:
    """Through the unique index on v: the one element, or null (also if
    the index held two)."""
    found = Element.where(v=v)
    if len(found) != 1:
        return "null"
    e = found[0]
    return json.dumps({"v": e.v, "name": e.name, "tags": list(e.tags)})
$$"#;

/// Knobs of transaction generation.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Keys in use at once (list-append, register): few, so transactions
    /// contend.
    pub keys_active: usize,
    /// Appends/writes a key takes before a fresh key replaces it, which
    /// keeps lists short and the checker fast (Elle does the same).
    pub writes_per_key_max: u32,
    /// Micro-operations per transaction, at most.
    pub mops_max: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            keys_active: 6,
            writes_per_key_max: 24,
            mops_max: 4,
        }
    }
}

/// Shared state of transaction generation: the key pool and unique values.
pub struct Generator {
    pub workload: Workload,
    config: GenConfig,
    /// (key, writes so far) of the keys in use.
    active: Vec<(u64, u32)>,
    /// Created, committed, not yet used keys.
    spare: Vec<u64>,
    /// Every key ever put to use, for the final reads.
    pub used: Vec<u64>,
    next_value: u64,
}

impl Generator {
    pub fn new(workload: Workload, config: GenConfig) -> Generator {
        Generator {
            workload,
            config,
            active: Vec::new(),
            spare: Vec::new(),
            used: Vec::new(),
            next_value: 1,
        }
    }

    pub fn spare_keys(&self) -> usize {
        self.spare.len()
    }

    pub fn add_keys(&mut self, keys: impl IntoIterator<Item = u64>) {
        self.spare.extend(keys);
        while self.active.len() < self.config.keys_active {
            let Some(k) = self.spare.pop() else { break };
            self.active.push((k, 0));
            self.used.push(k);
        }
    }

    fn value(&mut self) -> u64 {
        let v = self.next_value;
        self.next_value += 1;
        v
    }

    /// The next transaction's operations, with reads still unanswered.
    pub fn next_txn(&mut self, rng: &mut impl Rng) -> Vec<Mop> {
        match self.workload {
            Workload::Set => {
                if rng.random_bool(0.15) && self.next_value > 1 {
                    // A value created a moment ago (its creator may still
                    // be running, may have failed or committed).
                    let back = rng.random_range(1..=CLAIM_BACK_MAX.min(self.next_value - 1));
                    let v = self.next_value - back;
                    vec![Mop::Claim { v, id: None }]
                } else if rng.random_bool(0.7) {
                    let v = self.value();
                    vec![Mop::Add { v, id: None }]
                } else {
                    vec![Mop::ReadSet { v: None }]
                }
            }
            w => {
                if self.active.is_empty() {
                    return Vec::new();
                }
                let n = rng.random_range(1..=self.config.mops_max);
                let mut mops = Vec::with_capacity(n);
                for _ in 0..n {
                    let slot = rng.random_range(0..self.active.len());
                    let k = self.active[slot].0;
                    if rng.random_bool(0.5) {
                        mops.push(match w {
                            Workload::Register => Mop::ReadReg { k, v: None },
                            _ => Mop::Read { k, v: None },
                        });
                    } else {
                        let v = self.value();
                        mops.push(match w {
                            Workload::Register => Mop::Write { k, v },
                            _ => Mop::Append { k, v },
                        });
                        self.active[slot].1 += 1;
                        if self.active[slot].1 >= self.config.writes_per_key_max {
                            // Retire the key when a fresh one is at hand.
                            if let Some(fresh) = self.spare.pop() {
                                self.active[slot] = (fresh, 0);
                                self.used.push(fresh);
                            }
                        }
                    }
                }
                mops
            }
        }
    }
}

/// Which of a workload's ways of running a transaction a client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    First,
    Second,
    /// register only: the whole transaction in one simple query.
    OneQuery,
}

impl Variant {
    pub fn pick(rng: &mut impl Rng) -> Variant {
        match rng.random_range(0..3) {
            0 => Variant::First,
            1 => Variant::Second,
            _ => Variant::OneQuery,
        }
    }
}

/// Where a transaction failed: before COMMIT was sent (so it certainly
/// did not commit) or at COMMIT (so, unless the server said it aborted,
/// nobody knows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Body,
    Commit,
}

#[derive(Debug)]
pub struct TxnError {
    pub phase: Phase,
    /// SQLSTATE when the server answered with an error.
    pub code: Option<String>,
    pub message: String,
    /// The connection can take further statements.
    pub connection_usable: bool,
}

impl TxnError {
    fn from_pg(phase: Phase, e: tokio_postgres::Error) -> TxnError {
        let code = e.as_db_error().map(|d| d.code().code().to_string());
        let message = match e.as_db_error() {
            Some(d) => format!("{}: {}", d.code().code(), d.message()),
            None => e.to_string(),
        };
        TxnError {
            phase,
            connection_usable: code.is_some() && !e.is_closed(),
            code,
            message,
        }
    }

    fn timeout(phase: Phase, ms: u64) -> TxnError {
        TxnError {
            phase,
            code: None,
            message: format!("no answer within {ms} ms"),
            connection_usable: false,
        }
    }

    fn protocol(phase: Phase, message: String) -> TxnError {
        TxnError {
            phase,
            code: None,
            message,
            connection_usable: true,
        }
    }
}

/// A client connection with its prepared statements.
pub struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    op_timeout_ms: u64,
}

impl Conn {
    pub async fn connect(port: u16, op_timeout_ms: u64) -> Result<Conn, String> {
        let conn_str =
            format!("host=127.0.0.1 port={port} user=amber dbname=amber connect_timeout=2");
        let (client, connection) = tokio::time::timeout(
            Duration::from_millis(op_timeout_ms),
            tokio_postgres::connect(&conn_str, NoTls),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn {
            client,
            statements: HashMap::new(),
            op_timeout_ms,
        })
    }

    async fn timed<T>(
        &self,
        phase: Phase,
        f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, TxnError> {
        match tokio::time::timeout(Duration::from_millis(self.op_timeout_ms), f).await {
            Ok(r) => r.map_err(|e| TxnError::from_pg(phase, e)),
            Err(_) => Err(TxnError::timeout(phase, self.op_timeout_ms)),
        }
    }

    async fn statement(&mut self, sql: &'static str) -> Result<Statement, TxnError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.timed(Phase::Body, self.client.prepare(sql)).await?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    /// Runs a simple statement (setup, BEGIN, COMMIT, ROLLBACK).
    pub async fn batch(&self, phase: Phase, sql: &str) -> Result<(), TxnError> {
        self.timed(phase, self.client.batch_execute(sql)).await
    }

    /// Runs one transaction, filling in what its reads saw. On error,
    /// `mops` holds what was answered before it. `variant` picks between
    /// ways of doing the same thing (reads planned or direct; one CALL or
    /// two; objects created by SQL or by Python); for `register`, variant
    /// `Variant::OneQuery` sends the whole transaction as one simple query.
    pub async fn run_txn(
        &mut self,
        workload: Workload,
        mops: &mut Vec<Mop>,
        variant: Variant,
    ) -> Result<(), TxnError> {
        if workload == Workload::Register && variant == Variant::OneQuery {
            return self.register_one_query(mops).await;
        }
        let variant = variant == Variant::Second;
        self.batch(Phase::Body, "BEGIN").await?;
        match workload {
            Workload::ListAppend => self.list_append_sql(mops, variant).await?,
            Workload::ListAppendProc => self.list_append_proc(mops, variant).await?,
            Workload::Register => self.register(mops, variant).await?,
            Workload::Set => self.set(mops, variant).await?,
        }
        self.batch(Phase::Commit, "COMMIT").await
    }

    /// Appends go through DataFusion (`array_append`); reads alternate
    /// between the direct point-read path and a DataFusion plan (the extra
    /// predicate keeps it off the direct path), so both are under test.
    async fn list_append_sql(
        &mut self,
        mops: &mut [Mop],
        planned_reads: bool,
    ) -> Result<(), TxnError> {
        let append = self
            .statement("UPDATE jla.cell SET vals = array_append(vals, $2::bigint) WHERE id = $1")
            .await?;
        let read = if planned_reads {
            self.statement("SELECT vals FROM jla.cell WHERE id = $1 AND seq >= 0")
                .await?
        } else {
            self.statement("SELECT vals FROM jla.cell WHERE id = $1")
                .await?
        };
        for m in mops.iter_mut() {
            match m {
                Mop::Append { k, v } => self.write_key(&append, *k, *v).await?,
                Mop::Read { k, v } => {
                    let list: Vec<i64> = self.read_key(&read, *k).await?;
                    *v = Some(list.into_iter().map(|x| x as u64).collect());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Runs a prepared write of `(key, value)`, which must change one row.
    async fn write_key(&self, statement: &Statement, k: u64, v: u64) -> Result<(), TxnError> {
        let (key, value) = (k as i64, v as i64);
        let n = self
            .timed(Phase::Body, self.client.execute(statement, &[&key, &value]))
            .await?;
        if n != 1 {
            return Err(TxnError::protocol(
                Phase::Body,
                format!("writing key {k} changed {n} rows"),
            ));
        }
        Ok(())
    }

    /// Runs a prepared one-row read of `key`; returns its first column.
    async fn read_key<T>(&self, statement: &Statement, k: u64) -> Result<T, TxnError>
    where
        T: for<'a> tokio_postgres::types::FromSql<'a>,
    {
        let key = k as i64;
        let row = self
            .timed(Phase::Body, self.client.query_opt(statement, &[&key]))
            .await?
            .ok_or_else(|| TxnError::protocol(Phase::Body, format!("key {k} not found")))?;
        row.try_get(0)
            .map_err(|e| TxnError::protocol(Phase::Body, format!("reading key {k}: {e}")))
    }

    /// `split`: two CALLs instead of one. Operations on the same key
    /// alternate between Python objects and amber.sql() (by value parity,
    /// so the history shows which was used).
    async fn list_append_proc(&mut self, mops: &mut [Mop], split: bool) -> Result<(), TxnError> {
        let call = self.statement("CALL jla.txn($1)").await?;
        let cut = if split && mops.len() > 1 {
            mops.len() / 2
        } else {
            mops.len()
        };
        // Some transactions fail on purpose after their appends (in the
        // procedure, after amber.sql() wrote some of them): recorded as
        // failed, their values must never be read.
        let fail_on_purpose = mops
            .iter()
            .find_map(|m| match m {
                Mop::Append { v, .. } => Some(*v),
                _ => None,
            })
            .is_some_and(|v| v % FAIL_ON_PURPOSE_EVERY == 0);
        let (first, second) = mops.split_at_mut(cut);
        let last = if second.is_empty() { 0 } else { 1 };
        for (i, part) in [first, second].into_iter().enumerate() {
            if part.is_empty() {
                continue;
            }
            let ops: Vec<serde_json::Value> = part
                .iter()
                .map(|m| match m {
                    Mop::Append { k, v } => {
                        serde_json::json!(["append", k, v, if v % 3 == 0 { "sql" } else { "py" }])
                    }
                    Mop::Read { k, .. } => {
                        serde_json::json!(["r", k, null, if k % 2 == 0 { "sql" } else { "py" }])
                    }
                    _ => serde_json::Value::Null,
                })
                .collect();
            let mut ops = ops;
            if fail_on_purpose && i == last {
                ops.push(serde_json::json!(["fail", null, null, "py"]));
            }
            let arg = serde_json::Value::Array(ops).to_string();
            let row = self
                .timed(Phase::Body, self.client.query_one(&call, &[&arg]))
                .await?;
            let text: String = row
                .try_get(0)
                .map_err(|e| TxnError::protocol(Phase::Body, format!("CALL result: {e}")))?;
            let results: Vec<Option<Vec<u64>>> = serde_json::from_str(&text).map_err(|e| {
                TxnError::protocol(Phase::Body, format!("CALL result {text:?}: {e}"))
            })?;
            if results.len() != part.len() {
                return Err(TxnError::protocol(
                    Phase::Body,
                    format!(
                        "CALL answered {} results for {} operations",
                        results.len(),
                        part.len()
                    ),
                ));
            }
            for (m, r) in part.iter_mut().zip(results) {
                if let Mop::Read { v, .. } = m {
                    *v = Some(r.unwrap_or_default());
                }
            }
        }
        Ok(())
    }

    /// `BEGIN; UPDATE ...; SELECT ...; COMMIT` as one simple-protocol
    /// message, as psql and many tools send it. The server stops at the
    /// first error, so any SQL error means nothing committed (except 58030,
    /// whose outcome is unknown); a broken connection leaves it unknown.
    async fn register_one_query(&mut self, mops: &mut [Mop]) -> Result<(), TxnError> {
        use tokio_postgres::SimpleQueryMessage;
        let mut sql = String::from("BEGIN;");
        for m in mops.iter() {
            match m {
                Mop::Write { k, v } => {
                    sql.push_str(&format!(" UPDATE jreg.reg SET val = {v} WHERE id = {k};"))
                }
                Mop::ReadReg { k, .. } => {
                    sql.push_str(&format!(" SELECT val FROM jreg.reg WHERE id = {k};"))
                }
                _ => {}
            }
        }
        sql.push_str(" COMMIT;");
        let messages = match tokio::time::timeout(
            Duration::from_millis(self.op_timeout_ms),
            self.client.simple_query(&sql),
        )
        .await
        {
            Err(_) => return Err(TxnError::timeout(Phase::Commit, self.op_timeout_ms)),
            Ok(Err(e)) => {
                let unknown = e.as_db_error().is_none()
                    || e.as_db_error().map(|d| d.code().code()) == Some("58030");
                let phase = if unknown { Phase::Commit } else { Phase::Body };
                return Err(TxnError::from_pg(phase, e));
            }
            Ok(Ok(m)) => m,
        };
        let mut rows = messages.iter().filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        });
        for m in mops.iter_mut() {
            if let Mop::ReadReg { k, v } = m {
                let row = rows.next().ok_or_else(|| {
                    TxnError::protocol(Phase::Commit, format!("no row for the read of key {k}"))
                })?;
                *v = match row.get(0) {
                    None => None,
                    Some(text) => Some(text.parse().map_err(|e| {
                        TxnError::protocol(Phase::Commit, format!("key {k} = {text:?}: {e}"))
                    })?),
                };
            }
        }
        Ok(())
    }

    /// Writes and reads by the direct path, or (`planned`) through
    /// DataFusion plans.
    async fn register(&mut self, mops: &mut [Mop], planned: bool) -> Result<(), TxnError> {
        let (write, read) = if planned {
            (
                "UPDATE jreg.reg SET val = $2 WHERE id = $1 AND seq >= 0",
                "SELECT val FROM jreg.reg WHERE id = $1 AND seq >= 0",
            )
        } else {
            (
                "UPDATE jreg.reg SET val = $2 WHERE id = $1",
                "SELECT val FROM jreg.reg WHERE id = $1",
            )
        };
        let write = self.statement(write).await?;
        let read = self.statement(read).await?;
        for m in mops.iter_mut() {
            match m {
                Mop::Write { k, v } => self.write_key(&write, *k, *v).await?,
                Mop::ReadReg { k, v } => {
                    let val: Option<i64> = self.read_key(&read, *k).await?;
                    *v = val.map(|x| x as u64);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// One set transaction. Each `Add` is followed by the read-backs of
    /// the new object (RETURNING, SQL by id, Python), appended to `mops`.
    async fn set(&mut self, mops: &mut Vec<Mop>, by_python: bool) -> Result<(), TxnError> {
        let mut i = 0;
        while i < mops.len() {
            match &mut mops[i] {
                Mop::Add { v, id } | Mop::Claim { v, id } => {
                    let value = *v as i64;
                    let element = *v;
                    let (oid, returned) = if by_python {
                        let create = self.statement("SELECT jset.create($1)").await?;
                        let row = self
                            .timed(Phase::Body, self.client.query_one(&create, &[&value]))
                            .await?;
                        let oid: i64 = row
                            .try_get(0)
                            .map_err(|e| TxnError::protocol(Phase::Body, e.to_string()))?;
                        (oid, None)
                    } else {
                        let insert = self
                            .statement(
                                "INSERT INTO jset.element (v, name, tags) VALUES ($1, 'e' || $1, ARRAY[$1, $1 + 1]) RETURNING id, v, name, tags",
                            )
                            .await?;
                        let row = self
                            .timed(Phase::Body, self.client.query_one(&insert, &[&value]))
                            .await?;
                        let oid: i64 = row
                            .try_get(0)
                            .map_err(|e| TxnError::protocol(Phase::Body, e.to_string()))?;
                        let attrs = element_from_columns(&row, 1)?;
                        (oid, Some(attrs))
                    };
                    *id = Some(oid as u64);
                    let mut backs = Vec::new();
                    if let Some(attrs) = returned {
                        backs.push(Mop::ReadBack {
                            v: element,
                            via: "returning".into(),
                            attrs: Some(attrs),
                        });
                    }
                    backs.extend(self.read_back(element, oid as u64).await?);
                    let n = backs.len();
                    mops.splice(i + 1..i + 1, backs);
                    i += n;
                }
                Mop::ReadSet { v } => {
                    let all = self
                        .statement("SELECT v, name, tags FROM jset.element")
                        .await?;
                    let rows = self
                        .timed(Phase::Body, self.client.query(&all, &[]))
                        .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for row in rows {
                        out.push(element_from_columns(&row, 0)?);
                    }
                    *v = Some(out);
                }
                _ => {}
            }
            i += 1;
        }
        Ok(())
    }

    /// The element a Python function (`jset.show`, `jset.show_by`) shows
    /// for `arg`, or `None` (the function's JSON `null`).
    async fn shown_by_python(
        &self,
        function: &Statement,
        arg: i64,
    ) -> Result<Option<ElementAttrs>, TxnError> {
        let row = self
            .timed(Phase::Body, self.client.query_one(function, &[&arg]))
            .await?;
        let text: String = row
            .try_get(0)
            .map_err(|e| TxnError::protocol(Phase::Body, e.to_string()))?;
        serde_json::from_str(&text)
            .map_err(|e| TxnError::protocol(Phase::Body, format!("{text:?}: {e}")))
    }

    /// Reads a just-created element back by SQL and by Python, in the
    /// creating transaction; returns the read-back operations.
    async fn read_back(&mut self, v: u64, oid: u64) -> Result<Vec<Mop>, TxnError> {
        let by_id = self
            .statement("SELECT v, name, tags FROM jset.element WHERE id = $1")
            .await?;
        let by_name = self
            .statement("SELECT v, name, tags FROM jset.element WHERE name = $1")
            .await?;
        let show = self.statement("SELECT jset.show($1)").await?;
        let show_by = self.statement("SELECT jset.show_by($1)").await?;
        let id = oid as i64;
        let row = self
            .timed(Phase::Body, self.client.query_opt(&by_id, &[&id]))
            .await?;
        let sql = match row {
            Some(r) => Some(element_from_columns(&r, 0)?),
            None => None,
        };
        let python = self.shown_by_python(&show, id).await?;
        // Through the indexes: exactly the one element, or an anomaly.
        let name = element_attrs(v).name;
        let rows = self
            .timed(Phase::Body, self.client.query(&by_name, &[&name]))
            .await?;
        let sql_index = match rows.as_slice() {
            [r] => Some(element_from_columns(r, 0)?),
            _ => None,
        };
        let python_index = self.shown_by_python(&show_by, v as i64).await?;
        Ok(vec![
            Mop::ReadBack {
                v,
                via: "sql-index".into(),
                attrs: sql_index,
            },
            Mop::ReadBack {
                v,
                via: "python-index".into(),
                attrs: python_index,
            },
            Mop::ReadBack {
                v,
                via: "sql".into(),
                attrs: sql,
            },
            Mop::ReadBack {
                v,
                via: "python".into(),
                attrs: python,
            },
        ])
    }

    /// Creates `n` fresh keys in one committed transaction.
    pub async fn create_keys(&mut self, table: &str, n: usize) -> Result<Vec<u64>, TxnError> {
        let values = vec!["(0)"; n].join(", ");
        let sql = format!("INSERT INTO {table} (seq) VALUES {values} RETURNING id");
        let rows = self
            .timed(Phase::Commit, self.client.simple_query(&sql))
            .await?;
        Ok(rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0)?.parse().ok(),
                _ => None,
            })
            .collect())
    }

    pub async fn rollback(&self) -> Result<(), TxnError> {
        self.batch(Phase::Body, "ROLLBACK").await
    }
}

/// An element from the columns `v, name, tags` starting at `first`.
fn element_from_columns(row: &tokio_postgres::Row, first: usize) -> Result<ElementAttrs, TxnError> {
    let bad =
        |e: tokio_postgres::Error| TxnError::protocol(Phase::Body, format!("element row: {e}"));
    let v: i64 = row.try_get(first).map_err(bad)?;
    let name: String = row.try_get(first + 1).map_err(bad)?;
    let tags: Vec<i64> = row.try_get(first + 2).map_err(bad)?;
    Ok(ElementAttrs {
        v: v as u64,
        name,
        tags: tags.into_iter().map(|t| t as u64).collect(),
    })
}
