//! list-append (Elle's strongest inference): every key is a list, every
//! append writes a value unique to its key, and a read returns the whole
//! list, so each read reveals the order of every append before it.
//!
//! From the longest read of a key comes its version order; from it, ww edges
//! (an append and the next one), wr edges (the append a read ends with), and
//! rw edges (a read and the append right after what it saw).

use super::graph::{EdgeKind, Graph};
use super::{fmt_list, Report};
use crate::history::{Mop, Outcome, Txn};
use std::collections::{HashMap, HashSet};

/// Who appended a value to a key, and whether it was that transaction's
/// last append to the key (reading a non-last one is an intermediate read).
#[derive(Clone, Copy)]
struct Writer {
    txn: usize,
    last_in_txn: bool,
}

/// A read of a key by a committed transaction.
struct ReadRec<'a> {
    txn: usize,
    key: u64,
    list: &'a [u64],
    /// The transaction's first operation on the key, so it shows the state
    /// others left (later reads include the transaction's own appends).
    external: bool,
}

pub fn check(history: &[Txn]) -> Report {
    let mut report = Report::new(history);
    let outcome = |t: usize| history[t].outcome;

    // Every append, whatever its transaction's outcome.
    let mut writers: HashMap<(u64, u64), Writer> = HashMap::new();
    for t in history {
        for (k, v, last_in_txn) in t.writes() {
            let w = Writer {
                txn: t.index,
                last_in_txn,
            };
            if let Some(prev) = writers.insert((k, v), w) {
                report.push(
                    "duplicate-appends",
                    vec![prev.txn, t.index],
                    format!("value {v} was appended to key {k} twice: the generator must make every append unique"),
                );
            }
        }
    }

    // Reads of committed transactions, checked against the transaction's
    // own earlier operations (internal consistency).
    let mut reads: Vec<ReadRec> = Vec::new();
    for t in history.iter().filter(|t| t.outcome == Outcome::Ok) {
        // What the transaction knows of each key: the whole list after a
        // read, or only the suffix it appended itself.
        enum Known {
            List(Vec<u64>),
            Suffix(Vec<u64>),
        }
        let mut known: HashMap<u64, Known> = HashMap::new();
        for m in &t.mops {
            match m {
                Mop::Append { k, v } => match known.entry(*k).or_insert(Known::Suffix(vec![])) {
                    Known::List(l) | Known::Suffix(l) => l.push(*v),
                },
                Mop::Read { k, v: Some(list) } => {
                    let external = !known.contains_key(k);
                    let consistent = match known.get(k) {
                        None => true,
                        Some(Known::List(l)) => l == list,
                        Some(Known::Suffix(s)) => list.ends_with(s),
                    };
                    if !consistent {
                        let expected = match &known[k] {
                            Known::List(l) => format!("exactly {}", fmt_list(l)),
                            Known::Suffix(s) => format!("a list ending in {}", fmt_list(s)),
                        };
                        report.push(
                            "internal",
                            vec![t.index],
                            format!(
                                "T{} read key {k} = {} but its own earlier operations imply {expected}",
                                t.index,
                                fmt_list(list)
                            ),
                        );
                    }
                    known.insert(*k, Known::List(list.clone()));
                    reads.push(ReadRec {
                        txn: t.index,
                        key: *k,
                        list,
                        external,
                    });
                }
                _ => {}
            }
        }
    }

    // Per-read checks: duplicates, garbage, aborted and intermediate reads.
    for r in &reads {
        let mut seen = HashSet::new();
        for v in r.list {
            if !seen.insert(*v) {
                report.push(
                    "duplicate-elements",
                    vec![r.txn],
                    format!(
                        "T{} read key {} = {}: {v} appears more than once",
                        r.txn,
                        r.key,
                        fmt_list(r.list)
                    ),
                );
            }
            match writers.get(&(r.key, *v)) {
                None => report.push(
                    "garbage-read",
                    vec![r.txn],
                    format!(
                        "T{} read key {} = {}: nobody appended {v}",
                        r.txn,
                        r.key,
                        fmt_list(r.list)
                    ),
                ),
                Some(w) if outcome(w.txn) == Outcome::Fail => report.push(
                    "G1a",
                    vec![w.txn, r.txn],
                    format!(
                        "T{} read key {} = {}, which holds {v} from T{}, which aborted",
                        r.txn,
                        r.key,
                        fmt_list(r.list),
                        w.txn
                    ),
                ),
                _ => {}
            }
        }
        if let Some(last) = r.list.last() {
            if let Some(w) = writers.get(&(r.key, *last)) {
                if w.txn != r.txn && !w.last_in_txn {
                    report.push(
                        "G1b",
                        vec![w.txn, r.txn],
                        format!(
                            "T{} read key {} = {}, ending at {last}, an intermediate append of T{} (which appended to the key again after it)",
                            r.txn,
                            r.key,
                            fmt_list(r.list),
                            w.txn
                        ),
                    );
                }
            }
        }
    }

    // Version order of each key: the longest read; every other read must
    // be a prefix of it.
    let mut order: HashMap<u64, &[u64]> = HashMap::new();
    for r in &reads {
        let o = order.entry(r.key).or_insert(r.list);
        if r.list.len() > o.len() {
            *o = r.list;
        }
    }
    let mut incompatible_keys = HashSet::new();
    for r in &reads {
        let o = order[&r.key];
        if !o.starts_with(r.list) && incompatible_keys.insert(r.key) {
            report.push(
                "incompatible-order",
                vec![r.txn],
                format!(
                    "T{} read key {} = {}, which is not a prefix of the longest read {}: the key has no single order of appends",
                    r.txn,
                    r.key,
                    fmt_list(r.list),
                    fmt_list(o)
                ),
            );
        }
    }

    // Transactions in the graph: committed ones, and those of unknown
    // outcome whose appends someone saw (so they committed).
    let mut nodes: HashSet<usize> = history
        .iter()
        .filter(|t| t.outcome == Outcome::Ok)
        .map(|t| t.index)
        .collect();
    for (k, o) in &order {
        for v in o.iter() {
            if let Some(w) = writers.get(&(*k, *v)) {
                if outcome(w.txn) == Outcome::Info {
                    nodes.insert(w.txn);
                }
            }
        }
    }
    let writer_node = |k: u64, v: u64| -> Option<usize> {
        writers
            .get(&(k, v))
            .map(|w| w.txn)
            .filter(|t| outcome(*t) != Outcome::Fail)
    };

    let mut g = Graph::default();
    for (&k, o) in &order {
        for pair in o.windows(2) {
            if let (Some(a), Some(b)) = (writer_node(k, pair[0]), writer_node(k, pair[1])) {
                g.add(a, b, EdgeKind::Ww, || {
                    format!(
                        "T{a} appended {} to key {k}, T{b} appended {} right after it",
                        pair[0], pair[1]
                    )
                });
            }
        }
    }
    for r in reads.iter().filter(|r| r.external) {
        let k = r.key;
        if let Some(&last) = r.list.last() {
            if let Some(w) = writer_node(k, last) {
                g.add(w, r.txn, EdgeKind::Wr, || {
                    format!(
                        "T{w} appended {last} to key {k}, T{} read {} ending with it",
                        r.txn,
                        fmt_list(r.list)
                    )
                });
            }
        }
        let o = order[&k];
        if o.starts_with(r.list) {
            if let Some(&next) = o.get(r.list.len()) {
                if let Some(w) = writer_node(k, next) {
                    g.add(r.txn, w, EdgeKind::Rw, || {
                        format!(
                            "T{} read key {k} = {}, T{w} appended {next} right after that version",
                            r.txn,
                            fmt_list(r.list)
                        )
                    });
                }
            }
        }
    }
    g.add_session_edges(history, &nodes);

    // Lost update: two committed transactions read the same version of a
    // key and both appended to it.
    let appended: HashSet<(usize, u64)> = history
        .iter()
        .filter(|t| t.outcome == Outcome::Ok)
        .flat_map(|t| {
            t.mops.iter().filter_map(move |m| match m {
                Mop::Append { k, .. } => Some((t.index, *k)),
                _ => None,
            })
        })
        .collect();
    let mut by_version: HashMap<(u64, &[u64]), Vec<usize>> = HashMap::new();
    for r in reads.iter().filter(|r| r.external) {
        if appended.contains(&(r.txn, r.key)) {
            by_version.entry((r.key, r.list)).or_default().push(r.txn);
        }
    }
    for ((k, list), txns) in by_version {
        if txns.len() > 1 {
            report.push(
                "lost-update",
                txns.clone(),
                format!(
                    "transactions {txns:?} all read key {k} = {} and appended to it: all but one update is lost",
                    fmt_list(list)
                ),
            );
        }
    }

    // Lost write: an acknowledged append missing from a read that began
    // after the append was acknowledged (durability across crashes included).
    let mut acked: HashMap<u64, Vec<(u64, usize, u64)>> = HashMap::new();
    for t in history.iter().filter(|t| t.outcome == Outcome::Ok) {
        for m in &t.mops {
            if let Mop::Append { k, v } = m {
                acked.entry(*k).or_default().push((*v, t.index, t.end_us));
            }
        }
    }
    for r in &reads {
        let reader = &history[r.txn];
        let Some(candidates) = acked.get(&r.key) else {
            continue;
        };
        // A set of what the read saw: a membership test per acknowledged
        // append, not a scan of the list (which would be quadratic).
        let seen: HashSet<u64> = r.list.iter().copied().collect();
        for &(v, w, end_us) in candidates {
            if w != r.txn && end_us < reader.start_us && !seen.contains(&v) {
                report.push(
                    "lost-write",
                    vec![w, r.txn],
                    format!(
                        "T{w} appended {v} to key {} and was acknowledged at {end_us} us; T{}, begun at {} us, read {} without it",
                        r.key,
                        r.txn,
                        reader.start_us,
                        fmt_list(r.list)
                    ),
                );
            }
        }
    }

    report.push_cycles(&g);
    report
}
