//! Hand-written histories: each anomaly the checkers must report, and valid
//! histories they must accept.

use crate::checker::{check, Model, Report};
use crate::history::{element_attrs, ElementAttrs, Mop, Outcome, Txn};

/// A transaction on its own process, from `start` to `end` microseconds.
fn txn(index: usize, start: u64, end: u64, outcome: Outcome, mops: Vec<Mop>) -> Txn {
    Txn {
        index,
        process: index as u64,
        start_us: start,
        end_us: end,
        outcome,
        mops,
        error: None,
    }
}
fn ok(index: usize, start: u64, end: u64, mops: Vec<Mop>) -> Txn {
    txn(index, start, end, Outcome::Ok, mops)
}
fn ap(k: u64, v: u64) -> Mop {
    Mop::Append { k, v }
}
fn r(k: u64, l: &[u64]) -> Mop {
    Mop::Read {
        k,
        v: Some(l.to_vec()),
    }
}
fn w(k: u64, v: u64) -> Mop {
    Mop::Write { k, v }
}
fn rr(k: u64, v: Option<u64>) -> Mop {
    Mop::ReadReg { k, v }
}

fn la(history: Vec<Txn>) -> Report {
    check(Model::ListAppend, &history)
}

#[track_caller]
fn assert_only(report: &Report, kinds: &[&str]) {
    let found: Vec<&str> = report.counts.keys().map(String::as_str).collect();
    for k in kinds {
        assert!(
            report.has(k),
            "expected {k}, found {found:?}\n{}",
            report.render()
        );
    }
    assert!(
        found.iter().all(|f| kinds.contains(f)),
        "unexpected anomalies {found:?} (expected only {kinds:?})\n{}",
        report.render()
    );
}

#[test]
fn list_append_serial_history_is_valid() {
    let h = vec![
        ok(0, 0, 10, vec![ap(1, 1), ap(2, 1)]),
        ok(1, 20, 30, vec![r(1, &[1]), ap(1, 2), r(1, &[1, 2])]),
        ok(2, 40, 50, vec![r(1, &[1, 2]), r(2, &[1])]),
    ];
    let rep = la(h);
    assert!(rep.valid(), "{}", rep.render());
    assert_eq!((rep.ok, rep.failed, rep.info), (3, 0, 0));
    assert!(rep.graph_edges > 0);
}

#[test]
fn list_append_concurrent_valid_history_is_valid() {
    // Overlapping transactions in a serializable order T1, T0, T2.
    let h = vec![
        ok(0, 0, 100, vec![r(1, &[5]), ap(2, 6)]),
        ok(1, 0, 100, vec![ap(1, 5)]),
        ok(2, 50, 150, vec![r(1, &[5]), r(2, &[6])]),
    ];
    let rep = la(h);
    assert!(rep.valid(), "{}", rep.render());
}

#[test]
fn info_transactions_may_or_may_not_have_committed() {
    let seen = vec![
        txn(0, 0, 10, Outcome::Info, vec![ap(1, 1)]),
        ok(1, 20, 30, vec![r(1, &[1])]),
    ];
    assert!(la(seen).valid());
    let unseen = vec![
        txn(0, 0, 10, Outcome::Info, vec![ap(1, 1)]),
        ok(1, 20, 30, vec![r(1, &[])]),
    ];
    assert!(la(unseen).valid());
    // Reads of an info transaction are not trusted.
    let info_read = vec![
        ok(0, 0, 10, vec![ap(1, 1)]),
        txn(1, 20, 30, Outcome::Info, vec![r(1, &[7, 7])]),
    ];
    assert!(la(info_read).valid());
}

#[test]
fn g0_write_cycle() {
    let h = vec![
        ok(0, 0, 10, vec![ap(1, 1), ap(2, 2)]),
        ok(1, 0, 10, vec![ap(1, 3), ap(2, 4)]),
        ok(2, 20, 30, vec![r(1, &[1, 3]), r(2, &[4, 2])]),
    ];
    let rep = la(h);
    assert!(rep.has("G0"), "{}", rep.render());
}

#[test]
fn g1a_aborted_read() {
    let h = vec![
        txn(0, 0, 10, Outcome::Fail, vec![ap(1, 1)]),
        ok(1, 20, 30, vec![r(1, &[1])]),
    ];
    assert_only(&la(h), &["G1a"]);
}

#[test]
fn g1b_intermediate_read() {
    let h = vec![
        ok(0, 0, 10, vec![ap(1, 1), ap(1, 2)]),
        ok(1, 0, 10, vec![r(1, &[1])]),
    ];
    assert_only(&la(h), &["G1b"]);
}

#[test]
fn g1c_circular_information_flow() {
    let h = vec![
        ok(0, 0, 10, vec![ap(1, 1), r(2, &[2])]),
        ok(1, 0, 10, vec![ap(2, 2), r(1, &[1])]),
    ];
    assert_only(&la(h), &["G1c"]);
}

#[test]
fn g_single_read_skew() {
    let h = vec![
        ok(0, 0, 10, vec![r(1, &[]), r(2, &[5])]),
        ok(1, 0, 10, vec![ap(1, 4), ap(2, 5)]),
        ok(2, 20, 30, vec![r(1, &[4])]),
    ];
    assert_only(&la(h), &["G-single"]);
}

#[test]
fn g2_item_write_skew() {
    let h = vec![
        ok(0, 0, 10, vec![r(1, &[]), r(2, &[]), ap(1, 10)]),
        ok(1, 0, 10, vec![r(1, &[]), r(2, &[]), ap(2, 20)]),
        ok(2, 20, 30, vec![r(1, &[10]), r(2, &[20])]),
    ];
    assert_only(&la(h), &["G2-item"]);
}

#[test]
fn lost_update() {
    let h = vec![
        ok(0, 0, 10, vec![r(1, &[]), ap(1, 1)]),
        ok(1, 0, 10, vec![r(1, &[]), ap(1, 2)]),
        ok(2, 20, 30, vec![r(1, &[1, 2])]),
    ];
    let rep = la(h);
    assert_only(&rep, &["lost-update", "G-single"]);
}

#[test]
fn internal_inconsistency() {
    let h = vec![ok(0, 0, 10, vec![ap(1, 1), r(1, &[])])];
    assert_only(&la(h), &["internal"]);
    let h = vec![
        ok(0, 0, 10, vec![ap(1, 7)]),
        ok(1, 20, 30, vec![r(1, &[7]), r(1, &[])]),
    ];
    assert!(la(h).has("internal"));
}

#[test]
fn duplicate_and_garbage_elements() {
    let h = vec![
        ok(0, 0, 10, vec![ap(1, 1)]),
        ok(1, 20, 30, vec![r(1, &[1, 1])]),
    ];
    assert!(la(h).has("duplicate-elements"));
    let h = vec![ok(0, 0, 10, vec![r(1, &[99])])];
    assert_only(&la(h), &["garbage-read"]);
}

#[test]
fn incompatible_orders() {
    let h = vec![
        ok(0, 0, 10, vec![ap(1, 1)]),
        ok(1, 0, 10, vec![ap(1, 2)]),
        ok(2, 0, 10, vec![ap(1, 3)]),
        ok(3, 20, 30, vec![r(1, &[1, 2])]),
        ok(4, 20, 30, vec![r(1, &[1, 3])]),
    ];
    assert!(la(h).has("incompatible-order"));
}

#[test]
fn acknowledged_append_missing_later_is_a_lost_write_and_a_realtime_cycle() {
    let h = vec![
        ok(0, 0, 10, vec![ap(1, 1)]),
        ok(1, 20, 30, vec![r(1, &[])]),
        ok(2, 40, 50, vec![r(1, &[1])]),
    ];
    let rep = la(h);
    assert_only(&rep, &["lost-write", "G-single-realtime"]);
}

#[test]
fn process_order_violation() {
    // One client: its second transaction does not see its first one's
    // append, and they overlap in time (clock skew cannot explain it).
    let mut h = vec![
        ok(0, 0, 30, vec![ap(1, 1)]),
        ok(1, 10, 40, vec![r(1, &[])]),
        ok(2, 50, 60, vec![r(1, &[1])]),
    ];
    h[1].process = h[0].process;
    let rep = la(h);
    assert!(rep.has("G-single-process"), "{}", rep.render());
}

#[test]
fn register_valid_history() {
    let h = vec![
        ok(0, 0, 10, vec![w(1, 1)]),
        ok(1, 20, 30, vec![rr(1, Some(1)), w(1, 2), rr(1, Some(2))]),
        ok(2, 40, 50, vec![rr(1, Some(2)), rr(2, None)]),
    ];
    let rep = check(Model::Register, &h);
    assert!(rep.valid(), "{}", rep.render());
}

#[test]
fn register_anomalies() {
    let g1a = vec![
        txn(0, 0, 10, Outcome::Fail, vec![w(1, 1)]),
        ok(1, 20, 30, vec![rr(1, Some(1))]),
    ];
    assert_only(&check(Model::Register, &g1a), &["G1a"]);
    let garbage = vec![ok(0, 0, 10, vec![rr(1, Some(3))])];
    assert_only(&check(Model::Register, &garbage), &["garbage-read"]);
    let internal = vec![
        ok(0, 0, 10, vec![w(1, 1), rr(1, Some(2))]),
        ok(1, 0, 10, vec![w(1, 2)]),
    ];
    assert!(check(Model::Register, &internal).has("internal"));
    let g1b = vec![
        ok(0, 0, 10, vec![w(1, 1), w(1, 2)]),
        ok(1, 0, 10, vec![rr(1, Some(1))]),
    ];
    assert_only(&check(Model::Register, &g1b), &["G1b"]);
    let g1c = vec![
        ok(0, 0, 10, vec![w(1, 1), rr(2, Some(2))]),
        ok(1, 0, 10, vec![w(2, 2), rr(1, Some(1))]),
    ];
    assert_only(&check(Model::Register, &g1c), &["G1c"]);
    let skew = vec![
        ok(0, 0, 10, vec![rr(1, None), rr(2, None), w(1, 1)]),
        ok(1, 0, 10, vec![rr(1, None), rr(2, None), w(2, 2)]),
    ];
    assert_only(&check(Model::Register, &skew), &["G2-item"]);
    let lost = vec![
        ok(0, 0, 10, vec![rr(1, None), w(1, 1)]),
        ok(1, 0, 10, vec![rr(1, None), w(1, 2)]),
    ];
    let rep = check(Model::Register, &lost);
    assert!(rep.has("lost-update"), "{}", rep.render());
}

fn add(v: u64) -> Mop {
    Mop::Add {
        v,
        id: Some(v + 100),
    }
}
fn back(v: u64, attrs: Option<ElementAttrs>) -> Mop {
    Mop::ReadBack {
        v,
        via: "sql".into(),
        attrs,
    }
}
fn read_set(vs: &[u64]) -> Mop {
    Mop::ReadSet {
        v: Some(vs.iter().map(|v| element_attrs(*v)).collect()),
    }
}

#[test]
fn set_valid_history() {
    let h = vec![
        ok(0, 0, 10, vec![add(1), back(1, Some(element_attrs(1)))]),
        txn(1, 0, 10, Outcome::Info, vec![add(2)]),
        txn(2, 0, 10, Outcome::Fail, vec![add(3)]),
        ok(3, 20, 30, vec![read_set(&[1])]),
        ok(4, 40, 50, vec![read_set(&[1, 2])]),
    ];
    let rep = check(Model::Set, &h);
    assert!(rep.valid(), "{}", rep.render());
}

fn claim(v: u64) -> Mop {
    Mop::Claim {
        v,
        id: Some(v + 200),
    }
}

#[test]
fn set_claims_of_unique_values() {
    // A claim may commit when the first creator failed; one that failed
    // after the first creator committed is what the index must do.
    let valid = vec![
        txn(0, 0, 10, Outcome::Fail, vec![add(1)]),
        ok(1, 5, 15, vec![claim(1)]),
        ok(2, 0, 10, vec![add(2)]),
        txn(3, 5, 15, Outcome::Fail, vec![claim(2)]),
        ok(4, 20, 30, vec![read_set(&[1, 2])]),
    ];
    let rep = check(Model::Set, &valid);
    assert!(rep.valid(), "{}", rep.render());
    let duplicate = vec![
        ok(0, 0, 10, vec![add(1)]),
        ok(1, 5, 15, vec![claim(1)]),
        ok(2, 20, 30, vec![read_set(&[1])]),
    ];
    assert_only(&check(Model::Set, &duplicate), &["duplicate-commit"]);
    // Both committed and both are read: the read sees it twice too.
    let twice = vec![
        ok(0, 0, 10, vec![add(1)]),
        ok(1, 5, 15, vec![claim(1)]),
        ok(2, 20, 30, vec![read_set(&[1, 1])]),
    ];
    assert_only(
        &check(Model::Set, &twice),
        &["duplicate-commit", "duplicate-elements"],
    );
    let aborted = vec![
        txn(0, 0, 10, Outcome::Fail, vec![add(1)]),
        txn(1, 5, 15, Outcome::Fail, vec![claim(1)]),
        ok(2, 20, 30, vec![read_set(&[1])]),
    ];
    assert_only(&check(Model::Set, &aborted), &["G1a"]);
}

#[test]
fn set_anomalies() {
    let lost = vec![
        ok(0, 0, 10, vec![add(1)]),
        ok(1, 20, 30, vec![read_set(&[])]),
    ];
    assert_only(&check(Model::Set, &lost), &["lost-write"]);
    let vanished = vec![
        txn(0, 0, 10, Outcome::Info, vec![add(1)]),
        ok(1, 20, 30, vec![read_set(&[1])]),
        ok(2, 40, 50, vec![read_set(&[])]),
    ];
    assert_only(&check(Model::Set, &vanished), &["vanished"]);
    let mut wrong = element_attrs(1);
    wrong.name = "default".into();
    let initial = vec![ok(0, 0, 10, vec![add(1), back(1, Some(wrong))])];
    assert_only(&check(Model::Set, &initial), &["initial-values"]);
    let missing = vec![ok(0, 0, 10, vec![add(1), back(1, None)])];
    assert_only(&check(Model::Set, &missing), &["initial-values"]);
    let aborted = vec![
        txn(0, 0, 10, Outcome::Fail, vec![add(1)]),
        ok(1, 20, 30, vec![read_set(&[1])]),
    ];
    assert_only(&check(Model::Set, &aborted), &["G1a"]);
    let garbage = vec![ok(0, 0, 10, vec![read_set(&[5, 5])])];
    assert_only(
        &check(Model::Set, &garbage),
        &["garbage-read", "duplicate-elements"],
    );
}

/// Transactions in the long-history tests: the checker must handle any
/// history it is given, however deep its dependency chains.
const LONG_HISTORY_TXNS: usize = 1_000_000;

/// Runs `f` on a thread with Rust's default 2 MiB stack (what `cargo test`
/// and `amber-jepsen check` give the checker), whatever RUST_MIN_STACK says.
fn on_default_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .expect("spawn checker thread")
        .join()
        .expect("the checker must not overflow its stack")
}

/// `n` concurrent transactions appending 0, 1, ... to key 0 (a ww chain
/// through all of them), then one that reads the whole list.
fn long_chain(n: usize) -> Vec<Txn> {
    let mut h: Vec<Txn> = (0..n).map(|i| ok(i, 0, 1, vec![ap(0, i as u64)])).collect();
    let all: Vec<u64> = (0..n as u64).collect();
    h.push(ok(n, 2, 3, vec![r(0, &all)]));
    h
}

#[test]
fn a_million_transactions_in_one_chain_are_checked_without_recursion() {
    let report = on_default_stack(|| la(long_chain(LONG_HISTORY_TXNS)));
    assert!(report.valid(), "{}", report.summary());
    assert!(
        report.graph_edges >= LONG_HISTORY_TXNS,
        "{}",
        report.graph_edges
    );
}

#[test]
fn a_cycle_through_a_million_transactions_is_found_without_recursion() {
    // The last appender also appends to key 1, and the first one read that
    // append: T(n-1) -wr-> T0 closes the ww chain into one cycle.
    let n = LONG_HISTORY_TXNS;
    let mut h = long_chain(n);
    h[0].mops.insert(0, r(1, &[7]));
    h[n - 1].mops.push(ap(1, 7));
    let report = on_default_stack(move || la(h));
    assert_only(&report, &["G1c"]);
    let cycle = &report.examples[0];
    assert_eq!(cycle.txns.len(), crate::checker::graph::STEPS_SHOWN_MAX);
    assert!(
        cycle.explanation.contains(&format!(
            "({} more steps)",
            n - crate::checker::graph::STEPS_SHOWN_MAX
        )),
        "{}",
        &cycle.explanation[..200]
    );
}
