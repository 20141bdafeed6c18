//! set: objects are created (each with attributes derived from its element
//! value), read back at once, and the whole set is read now and then.
//!
//! Anomalies: an object read with other than its initial attributes
//! (`initial-values`), an acknowledged object missing from a later read
//! (`lost-write`), one seen and later gone (`vanished`), elements nobody
//! created (`garbage-read`), created by aborted transactions (`G1a`),
//! read twice (`duplicate-elements`), or created by two committed
//! transactions although its value is unique (`duplicate-commit`: a
//! claim of a value created before must fail unless its creator did).

use super::Report;
use crate::history::{element_attrs, ElementAttrs, Mop, Outcome, Txn};
use std::collections::{HashMap, HashSet};

pub fn check(history: &[Txn]) -> Report {
    let mut report = Report::new(history);

    // element -> the transactions that created it (its Add, then claims)
    let mut creators: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut added: HashSet<u64> = HashSet::new();
    for t in history {
        for m in &t.mops {
            match m {
                Mop::Add { v, .. } => {
                    if !added.insert(*v) {
                        report.push(
                            "duplicate-appends",
                            vec![t.index],
                            format!("element {v} was added twice: the generator must make elements unique"),
                        );
                    }
                    creators.entry(*v).or_default().push(t.index);
                }
                Mop::Claim { v, .. } => creators.entry(*v).or_default().push(t.index),
                _ => {}
            }
        }
    }
    for (v, by) in &creators {
        let committed: Vec<usize> = by
            .iter()
            .copied()
            .filter(|&c| history[c].outcome == Outcome::Ok)
            .collect();
        if committed.len() > 1 {
            report.push(
                "duplicate-commit",
                committed.clone(),
                format!(
                    "element {v} is unique, yet {} transactions that created it committed: {}",
                    committed.len(),
                    committed
                        .iter()
                        .map(|c| format!("T{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }

    let wrong = |a: &ElementAttrs| *a != element_attrs(a.v);
    let mut set_reads: Vec<(usize, HashSet<u64>)> = Vec::new();
    for t in history.iter().filter(|t| t.outcome == Outcome::Ok) {
        for m in &t.mops {
            match m {
                Mop::ReadBack { v, via, attrs } => match attrs {
                    None => report.push(
                        "initial-values",
                        vec![t.index],
                        format!(
                            "T{} created element {v} and could not read it back ({via})",
                            t.index
                        ),
                    ),
                    Some(a) if a.v != *v || wrong(a) => report.push(
                        "initial-values",
                        vec![t.index],
                        format!(
                            "T{} created element {v} and read it back ({via}) as {a:?}, not {:?}",
                            t.index,
                            element_attrs(*v)
                        ),
                    ),
                    Some(_) => {}
                },
                Mop::ReadSet { v: Some(elements) } => {
                    let mut seen = HashSet::new();
                    for a in elements {
                        if !seen.insert(a.v) {
                            report.push(
                                "duplicate-elements",
                                vec![t.index],
                                format!("T{} read element {} more than once", t.index, a.v),
                            );
                        }
                        match creators.get(&a.v) {
                            None => report.push(
                                "garbage-read",
                                vec![t.index],
                                format!("T{} read element {}, which nobody created", t.index, a.v),
                            ),
                            Some(by) if by.iter().all(|&c| history[c].outcome == Outcome::Fail) => {
                                let mut txns = by.clone();
                                txns.push(t.index);
                                report.push(
                                    "G1a",
                                    txns,
                                    format!(
                                        "T{} read element {}, created only by transactions that aborted",
                                        t.index, a.v
                                    ),
                                )
                            }
                            Some(_) => {}
                        }
                        if wrong(a) {
                            report.push(
                                "initial-values",
                                vec![t.index],
                                format!(
                                    "T{} read element {} as {a:?}, not {:?}",
                                    t.index,
                                    a.v,
                                    element_attrs(a.v)
                                ),
                            );
                        }
                    }
                    set_reads.push((t.index, seen));
                }
                _ => {}
            }
        }
    }

    // Lost: acknowledged before a read began, yet missing from it.
    for (&v, by) in &creators {
        let Some(&c) = by.iter().find(|&&c| history[c].outcome == Outcome::Ok) else {
            continue;
        };
        let creator = &history[c];
        for (r, seen) in &set_reads {
            if history[*r].start_us > creator.end_us && !seen.contains(&v) {
                report.push(
                    "lost-write",
                    vec![c, *r],
                    format!(
                        "T{c} created element {v}, acknowledged at {} us; T{r}, begun at {} us, read the set without it",
                        creator.end_us, history[*r].start_us
                    ),
                );
            }
        }
    }

    // Vanished: seen by a read that ended before another read began, which
    // misses it (whatever its creator's outcome).
    let mut first_seen_end: HashMap<u64, (u64, usize)> = HashMap::new();
    for (r, seen) in &set_reads {
        let end = history[*r].end_us;
        for v in seen {
            let e = first_seen_end.entry(*v).or_insert((end, *r));
            if end < e.0 {
                *e = (end, *r);
            }
        }
    }
    for (&v, &(end, first)) in &first_seen_end {
        for (r, seen) in &set_reads {
            if history[*r].start_us > end && !seen.contains(&v) {
                report.push(
                    "vanished",
                    vec![first, *r],
                    format!(
                        "T{first} read element {v} (ending at {end} us); T{r}, begun later at {} us, did not",
                        history[*r].start_us
                    ),
                );
            }
        }
    }
    report
}
