//! Amber's Jepsen-style test suite: concurrent workloads through a real
//! PostgreSQL driver against a running `amber`, faults (kill -9, SIGSTOP,
//! cut connections, failing fsync), and checkers in the spirit of Elle that
//! find and name anomalies in the recorded history.
//!
//! - [`history`]: what clients did and saw; written to `history.jsonl`.
//! - [`checker`]: pure functions from a history to a [`checker::Report`].
//! - [`workload`]: the client transactions; [`server`], [`proxy`]: the
//!   system under test and the fault points; [`run`]: one run end to end.

pub mod checker;
pub mod history;
pub mod proxy;
pub mod run;
pub mod server;
pub mod workload;

#[cfg(test)]
mod checker_tests;
