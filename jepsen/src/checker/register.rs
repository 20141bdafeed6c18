//! rw-register: each key holds one integer; writes are unique per key; a
//! read returns the current value or nothing (the initial state).
//!
//! A register read reveals less than a list: the version order comes only
//! from the initial state preceding every write and from transactions that
//! read a version and then wrote the next one (Elle's default inference; no
//! realtime assumption about versions).

use super::graph::{EdgeKind, Graph};
use super::Report;
use crate::history::{Mop, Outcome, Txn};
use std::collections::{HashMap, HashSet};

fn show(v: Option<u64>) -> String {
    v.map_or("nothing".to_string(), |v| v.to_string())
}

pub fn check(history: &[Txn]) -> Report {
    let mut report = Report::new(history);
    let outcome = |t: usize| history[t].outcome;

    // (key, value) -> (writer, was it the writer's last write to the key).
    let mut writers: HashMap<(u64, u64), (usize, bool)> = HashMap::new();
    // Every write of a key by a transaction that may have committed.
    let mut writes_of_key: HashMap<u64, Vec<(u64, usize)>> = HashMap::new();
    for t in history {
        for (k, v, is_last) in t.writes() {
            if writers.insert((k, v), (t.index, is_last)).is_some() {
                report.push(
                    "duplicate-writes",
                    vec![t.index],
                    format!("value {v} was written to key {k} twice: writes must be unique"),
                );
            }
            if is_last && t.outcome != Outcome::Fail {
                writes_of_key.entry(k).or_default().push((v, t.index));
            }
        }
    }

    // External reads (first operation on the key) and final writes of
    // committed transactions; internal consistency of the rest.
    struct Ext {
        txn: usize,
        key: u64,
        read: Option<u64>,
        then_wrote: Option<u64>,
    }
    let mut exts: Vec<Ext> = Vec::new();
    let mut reads: Vec<(usize, u64, Option<u64>)> = Vec::new();
    for t in history.iter().filter(|t| t.outcome == Outcome::Ok) {
        let mut known: HashMap<u64, Option<u64>> = HashMap::new();
        let mut ext_at: HashMap<u64, usize> = HashMap::new();
        for m in &t.mops {
            match m {
                Mop::Write { k, v } => {
                    known.insert(*k, Some(*v));
                    if let Some(&i) = ext_at.get(k) {
                        let e: &mut Ext = &mut exts[i];
                        e.then_wrote = Some(*v);
                    }
                }
                Mop::ReadReg { k, v } => {
                    match known.get(k) {
                        Some(expected) if expected != v => report.push(
                            "internal",
                            vec![t.index],
                            format!(
                                "T{} read key {k} = {} but its own earlier operations imply {}",
                                t.index,
                                show(*v),
                                show(*expected)
                            ),
                        ),
                        Some(_) => {}
                        None => {
                            ext_at.insert(*k, exts.len());
                            exts.push(Ext {
                                txn: t.index,
                                key: *k,
                                read: *v,
                                then_wrote: None,
                            });
                        }
                    }
                    known.insert(*k, *v);
                    reads.push((t.index, *k, *v));
                }
                _ => {}
            }
        }
    }

    for &(txn, k, v) in &reads {
        let Some(v) = v else { continue };
        match writers.get(&(k, v)) {
            None => report.push(
                "garbage-read",
                vec![txn],
                format!("T{txn} read key {k} = {v}, which nobody wrote"),
            ),
            Some(&(w, _)) if outcome(w) == Outcome::Fail => report.push(
                "G1a",
                vec![w, txn],
                format!("T{txn} read key {k} = {v}, written by T{w}, which aborted"),
            ),
            Some(&(w, false)) if w != txn => report.push(
                "G1b",
                vec![w, txn],
                format!("T{txn} read key {k} = {v}, an intermediate write of T{w} (which wrote the key again)"),
            ),
            _ => {}
        }
    }

    // Version order: read-then-write pairs; the initial state precedes all.
    let writer_node = |k: u64, v: u64| -> Option<usize> {
        writers
            .get(&(k, v))
            .map(|w| w.0)
            .filter(|t| outcome(*t) != Outcome::Fail)
    };
    let mut next_versions: HashMap<(u64, u64), Vec<u64>> = HashMap::new();
    for e in &exts {
        if let (Some(a), Some(b)) = (e.read, e.then_wrote) {
            next_versions.entry((e.key, a)).or_default().push(b);
        }
    }
    let mut nodes: HashSet<usize> = history
        .iter()
        .filter(|t| t.outcome == Outcome::Ok)
        .map(|t| t.index)
        .collect();
    for &(_, k, v) in &reads {
        if let Some(w) = v.and_then(|v| writer_node(k, v)) {
            nodes.insert(w);
        }
    }

    let mut g = Graph::default();
    for (&(k, a), bs) in &next_versions {
        for &b in bs {
            if let (Some(wa), Some(wb)) = (writer_node(k, a), writer_node(k, b)) {
                g.add(wa, wb, EdgeKind::Ww, || {
                    format!("T{wa} wrote key {k} = {a}; T{wb} read that and wrote {b}")
                });
            }
        }
    }
    for e in &exts {
        let k = e.key;
        match e.read {
            Some(v) => {
                if let Some(w) = writer_node(k, v) {
                    g.add(w, e.txn, EdgeKind::Wr, || {
                        format!("T{w} wrote key {k} = {v}, T{} read it", e.txn)
                    });
                }
                for &b in next_versions.get(&(k, v)).map(Vec::as_slice).unwrap_or(&[]) {
                    if let Some(wb) = writer_node(k, b) {
                        g.add(e.txn, wb, EdgeKind::Rw, || {
                            format!(
                                "T{} read key {k} = {v}, T{wb} overwrote that version with {b}",
                                e.txn
                            )
                        });
                    }
                }
            }
            None => {
                // Every write of the key comes after its initial state.
                for &(b, wb) in writes_of_key.get(&k).map(Vec::as_slice).unwrap_or(&[]) {
                    g.add(e.txn, wb, EdgeKind::Rw, || {
                        format!(
                            "T{} read key {k} in its initial state, T{wb} wrote {b}",
                            e.txn
                        )
                    });
                }
            }
        }
    }
    g.add_session_edges(history, &nodes);

    // Lost update: two committed transactions read the same version and
    // both wrote the key.
    let mut by_version: HashMap<(u64, Option<u64>), Vec<usize>> = HashMap::new();
    for e in exts.iter().filter(|e| e.then_wrote.is_some()) {
        by_version.entry((e.key, e.read)).or_default().push(e.txn);
    }
    for ((k, v), txns) in by_version {
        if txns.len() > 1 {
            report.push(
                "lost-update",
                txns.clone(),
                format!(
                    "transactions {txns:?} all read key {k} = {} and wrote it: all but one update is lost",
                    show(v)
                ),
            );
        }
    }

    report.push_cycles(&g);
    report
}
