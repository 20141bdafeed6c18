//! Checkers in the spirit of Elle: infer a dependency graph from a history
//! and name every anomaly found. Each workload has its own inference; the
//! cycle search is shared ([`graph`]).

pub mod graph;
pub mod list_append;
pub mod register;
pub mod set;

use crate::history::{Outcome, Txn};
use serde::Serialize;
use std::collections::BTreeMap;

/// Examples kept per anomaly kind; the count covers all of them.
const EXAMPLES_PER_KIND_MAX: usize = 8;

/// One anomaly: its kind (G0, G1a, ..., lost-write), the transactions
/// involved and why.
#[derive(Serialize, Clone, Debug)]
pub struct Anomaly {
    pub kind: String,
    pub txns: Vec<usize>,
    pub explanation: String,
}

/// A checker's verdict on one history.
#[derive(Serialize, Default, Debug)]
pub struct Report {
    pub ok: usize,
    pub failed: usize,
    pub info: usize,
    /// Number of anomalies of each kind.
    pub counts: BTreeMap<String, usize>,
    /// Up to [`EXAMPLES_PER_KIND_MAX`] examples of each kind.
    pub examples: Vec<Anomaly>,
    pub graph_edges: usize,
}

impl Report {
    pub fn new(history: &[Txn]) -> Report {
        let count = |o: Outcome| history.iter().filter(|t| t.outcome == o).count();
        Report {
            ok: count(Outcome::Ok),
            failed: count(Outcome::Fail),
            info: count(Outcome::Info),
            ..Report::default()
        }
    }

    pub fn push(&mut self, kind: &str, txns: Vec<usize>, explanation: String) {
        let n = self.counts.entry(kind.to_string()).or_insert(0);
        *n += 1;
        if *n <= EXAMPLES_PER_KIND_MAX {
            self.examples.push(Anomaly {
                kind: kind.to_string(),
                txns,
                explanation,
            });
        }
    }

    pub fn valid(&self) -> bool {
        self.counts.is_empty()
    }

    pub fn has(&self, kind: &str) -> bool {
        self.counts.contains_key(kind)
    }

    /// `ok 1200, failed 300, info 4; anomalies: none` (or their counts).
    pub fn summary(&self) -> String {
        let anomalies = if self.counts.is_empty() {
            "none".to_string()
        } else {
            self.counts
                .iter()
                .map(|(k, n)| format!("{k} x{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "ok {}, failed {}, info {}; anomalies: {anomalies}",
            self.ok, self.failed, self.info
        )
    }

    /// The verdict for people: summary, then every example explained.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{}\nvalid: {}\ndependency graph edges: {}\n",
            self.summary(),
            self.valid(),
            self.graph_edges
        );
        for a in &self.examples {
            s.push_str(&format!(
                "\n[{}] transactions {:?}\n  {}\n",
                a.kind, a.txns, a.explanation
            ));
        }
        s
    }

    /// Adds the graph's cycles as anomalies.
    pub fn push_cycles(&mut self, g: &graph::Graph) {
        self.graph_edges = g.edge_count();
        for c in g.cycles() {
            // As many transactions as the explanation shows.
            let txns = c
                .steps
                .iter()
                .take(graph::STEPS_SHOWN_MAX)
                .map(|s| s.from)
                .collect();
            let text = graph::explain(g, &c);
            self.push(&c.name, txns, text);
        }
    }
}

/// Which checker a history needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    ListAppend,
    Register,
    Set,
}

pub fn check(model: Model, history: &[Txn]) -> Report {
    match model {
        Model::ListAppend => list_append::check(history),
        Model::Register => register::check(history),
        Model::Set => set::check(history),
    }
}

fn fmt_list(l: &[u64]) -> String {
    format!(
        "[{}]",
        l.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
    )
}
