//! Histories: what each client transaction did and how it ended, as the
//! clients saw it. One transaction per JSON line in `history.jsonl`.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;

/// How a transaction ended, as far as its client can know.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// COMMIT was acknowledged.
    Ok,
    /// Certainly not committed: an error before COMMIT was sent, or COMMIT
    /// answered with a serialization failure.
    Fail,
    /// Unknown: the connection broke (or timed out) while COMMIT was in
    /// flight, or the server said the commit's outcome is unknown. It may
    /// or may not have committed; as in Jepsen, the client's process is
    /// retired and a new one takes its place.
    Info,
}

/// One micro-operation of a transaction. Reads carry what was read; in a
/// transaction that did not end `Ok` the values are whatever the client saw
/// before it ended, and the checkers ignore them.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Mop {
    /// list-append: append `v` to the list at key `k`.
    Append { k: u64, v: u64 },
    /// list-append: read the list at key `k` (`None`: never answered).
    Read { k: u64, v: Option<Vec<u64>> },
    /// rw-register: write `v` to register `k`.
    Write { k: u64, v: u64 },
    /// rw-register: read register `k` (`None`: never written, the initial
    /// state).
    ReadReg { k: u64, v: Option<u64> },
    /// set: create the element `v` as a new object whose attributes are
    /// derived from `v` (see [`element_attrs`]); `id` is its object id.
    Add { v: u64, id: Option<u64> },
    /// set: create element `v` again, racing its first creator and other
    /// claims: `v` is unique (`__unique__`), so at most one creator of it
    /// may commit (the others fail with 23505 or 40001).
    Claim { v: u64, id: Option<u64> },
    /// set: the attributes an object of the set was read with, by `via`
    /// (`returning`, `sql`, `python`; `sql-index` and `python-index`
    /// through the element's indexes), right after its creation.
    ReadBack {
        v: u64,
        via: String,
        attrs: Option<ElementAttrs>,
    },
    /// set: read every element of the set.
    ReadSet { v: Option<Vec<ElementAttrs>> },
}

/// The attributes of a set element as stored and read.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub struct ElementAttrs {
    pub v: u64,
    pub name: String,
    pub tags: Vec<u64>,
}

/// The initial attributes of element `v`: what every read of it must give.
pub fn element_attrs(v: u64) -> ElementAttrs {
    ElementAttrs {
        v,
        name: format!("e{v}"),
        tags: vec![v, v + 1],
    }
}

/// One client transaction.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    /// Position in the history.
    pub index: usize,
    /// The logical client (Jepsen's process); a client gets a new process
    /// after an `Info`, since its last transaction may still be in flight.
    pub process: u64,
    /// When the client sent BEGIN, in microseconds since the run started.
    pub start_us: u64,
    /// When the client learnt the outcome. For `Info` this is when it gave
    /// up, not when the transaction ended: checkers treat it as unknown.
    pub end_us: u64,
    pub outcome: Outcome,
    pub mops: Vec<Mop>,
    /// The error that ended it, for people reading the history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Txn {
    /// The transaction's appends or register writes as (key, value, is it
    /// the transaction's last write to the key), in order.
    pub fn writes(&self) -> Vec<(u64, u64, bool)> {
        let key_value = |m: &Mop| match m {
            Mop::Append { k, v } | Mop::Write { k, v } => Some((*k, *v)),
            _ => None,
        };
        let mut last: std::collections::HashMap<u64, usize> = Default::default();
        for (i, m) in self.mops.iter().enumerate() {
            if let Some((k, _)) = key_value(m) {
                last.insert(k, i);
            }
        }
        self.mops
            .iter()
            .enumerate()
            .filter_map(|(i, m)| key_value(m).map(|(k, v)| (k, v, last.get(&k) == Some(&i))))
            .collect()
    }

    /// The completion time, when known.
    pub fn end_known(&self) -> Option<u64> {
        (self.outcome != Outcome::Info).then_some(self.end_us)
    }
}

/// A fault the nemesis injected, kept beside the history for readers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NemesisEvent {
    pub at_us: u64,
    pub fault: String,
    pub detail: String,
}

pub fn write_history(path: &Path, txns: &[Txn]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for t in txns {
        serde_json::to_writer(&mut out, t)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

pub fn read_history(path: &Path) -> std::io::Result<Vec<Txn>> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut out = Vec::new();
    for line in file.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line)?);
    }
    Ok(out)
}
