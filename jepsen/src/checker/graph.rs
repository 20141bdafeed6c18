//! The transaction dependency graph and its cycles, named as Adya and Elle
//! name them.
//!
//! Nodes are transactions (by history index). Edges: `ww` (write then
//! overwrite of the same key), `wr` (write then read of it), `rw` (read of a
//! version, then the write of the next version: an anti-dependency),
//! `process` (one client's transactions in order) and `realtime` (one
//! transaction finished before the other began). A serializable history has
//! no cycle of ww/wr/rw edges; a strict serializable one has none even with
//! the realtime edges.

use crate::history::{Outcome, Txn};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum EdgeKind {
    Ww,
    Wr,
    Rw,
    Process,
    Realtime,
}

impl EdgeKind {
    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::Ww => "ww",
            EdgeKind::Wr => "wr",
            EdgeKind::Rw => "rw",
            EdgeKind::Process => "process",
            EdgeKind::Realtime => "realtime",
        }
    }
}

/// Seeds tried per cycle class and strongly connected component, so that a
/// badly broken history still gets checked in bounded time.
const SEEDS_PER_CLASS_MAX: usize = 256;

/// One step of a cycle: `from -[kind]-> to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
}

/// A cycle found in the graph, with its Adya/Elle name.
#[derive(Clone, Debug)]
pub struct Cycle {
    pub name: String,
    pub steps: Vec<Step>,
}

#[derive(Default)]
pub struct Graph {
    adjacency: HashMap<usize, Vec<(usize, EdgeKind)>>,
    reasons: HashMap<(usize, usize, EdgeKind), String>,
}

impl Graph {
    /// Adds `from -[kind]-> to` unless it is a self-loop or already there;
    /// `why` explains it to a reader of the verdict.
    pub fn add(&mut self, from: usize, to: usize, kind: EdgeKind, why: impl FnOnce() -> String) {
        if from == to || self.reasons.contains_key(&(from, to, kind)) {
            return;
        }
        self.reasons.insert((from, to, kind), why());
        self.adjacency.entry(from).or_default().push((to, kind));
    }

    pub fn edge_count(&self) -> usize {
        self.reasons.len()
    }

    pub fn reason(&self, step: &Step) -> &str {
        self.reasons
            .get(&(step.from, step.to, step.kind))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Adds the process and realtime edges among `nodes` (transactions that
    /// committed or may have: `Ok`, and `Info` ones whose writes were seen).
    pub fn add_session_edges(&mut self, history: &[Txn], nodes: &HashSet<usize>) {
        // Process order: consecutive committed transactions of a client.
        let mut by_process: HashMap<u64, Vec<&Txn>> = HashMap::new();
        for t in history {
            if t.outcome == Outcome::Ok && nodes.contains(&t.index) {
                by_process.entry(t.process).or_default().push(t);
            }
        }
        for txns in by_process.values_mut() {
            txns.sort_by_key(|t| t.start_us);
            for pair in txns.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                self.add(a.index, b.index, EdgeKind::Process, || {
                    format!(
                        "T{} and then T{} ran on client process {}",
                        a.index, b.index, a.process
                    )
                });
            }
        }
        // Realtime order, transitively reduced as Elle does: a transaction's
        // predecessors are the frontier of completed transactions when it
        // began; a completion retires the predecessors it covers.
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        enum Event {
            // At equal times a start sorts first: ending at the very
            // microsecond another begins does not order them.
            Start(usize),
            End(usize),
        }
        let mut events: Vec<(u64, Event)> = Vec::new();
        for t in history {
            if !nodes.contains(&t.index) {
                continue;
            }
            events.push((t.start_us, Event::Start(t.index)));
            if let Some(end) = t.end_known() {
                events.push((end, Event::End(t.index)));
            }
        }
        events.sort();
        let mut frontier: BTreeSet<usize> = BTreeSet::new();
        let mut preds: HashMap<usize, Vec<usize>> = HashMap::new();
        for (_, e) in events {
            match e {
                Event::Start(t) => {
                    preds.insert(t, frontier.iter().copied().collect());
                }
                Event::End(t) => {
                    for p in preds.get(&t).map(Vec::as_slice).unwrap_or(&[]) {
                        frontier.remove(p);
                    }
                    frontier.insert(t);
                }
            }
        }
        for (t, ps) in preds {
            for p in ps {
                let (pe, ts) = (history[p].end_us, history[t].start_us);
                self.add(p, t, EdgeKind::Realtime, || {
                    format!("T{p} ended (at {pe} us) before T{t} began (at {ts} us)")
                });
            }
        }
    }

    /// Finds cycles, at most one of each class per strongly connected
    /// component, named by their edges.
    pub fn cycles(&self) -> Vec<Cycle> {
        let mut g: DiGraph<usize, ()> = DiGraph::new();
        let mut ids: HashMap<usize, NodeIndex> = HashMap::new();
        let mut node = |g: &mut DiGraph<usize, ()>, t: usize| -> NodeIndex {
            *ids.entry(t).or_insert_with(|| g.add_node(t))
        };
        for (&from, outs) in &self.adjacency {
            let a = node(&mut g, from);
            for &(to, _) in outs {
                let b = node(&mut g, to);
                g.add_edge(a, b, ());
            }
        }
        let mut found = Vec::new();
        for scc in petgraph::algo::tarjan_scc(&g) {
            if scc.len() < 2 {
                continue;
            }
            let members: HashSet<usize> = scc.iter().map(|n| g[*n]).collect();
            found.extend(self.classify_component(&members));
        }
        found
    }

    fn classify_component(&self, members: &HashSet<usize>) -> Vec<Cycle> {
        use EdgeKind::*;
        // (seed edge kind, kinds a path back may use), weakest class first.
        let searches: [(EdgeKind, &[EdgeKind]); 6] = [
            (Ww, &[Ww]),
            (Wr, &[Ww, Wr]),
            (Rw, &[Ww, Wr]),
            (Rw, &[Ww, Wr, Rw]),
            (Process, &[Ww, Wr, Rw, Process]),
            (Realtime, &[Ww, Wr, Rw, Process, Realtime]),
        ];
        let mut names = HashSet::new();
        let mut out = Vec::new();
        for (seed_kind, allowed) in searches {
            let seeds = members
                .iter()
                .flat_map(|&a| {
                    self.adjacency
                        .get(&a)
                        .into_iter()
                        .flatten()
                        .filter(move |(b, k)| *k == seed_kind && members.contains(b))
                        .map(move |&(b, k)| Step {
                            from: a,
                            to: b,
                            kind: k,
                        })
                })
                .take(SEEDS_PER_CLASS_MAX);
            for seed in seeds {
                if let Some(path) = self.path(seed.to, seed.from, allowed, members) {
                    let mut steps = vec![seed];
                    steps.extend(path);
                    let name = classify(&steps);
                    if names.insert(name.clone()) {
                        out.push(Cycle { name, steps });
                    }
                    break;
                }
            }
        }
        out
    }

    /// Shortest path `from` ⇝ `to` over `allowed` edges inside `members`.
    fn path(
        &self,
        from: usize,
        to: usize,
        allowed: &[EdgeKind],
        members: &HashSet<usize>,
    ) -> Option<Vec<Step>> {
        let mut came_from: HashMap<usize, (usize, EdgeKind)> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = HashSet::from([from]);
        while let Some(n) = queue.pop_front() {
            if n == to {
                let mut steps = Vec::new();
                let mut cur = to;
                while cur != from {
                    let (prev, kind) = came_from[&cur];
                    steps.push(Step {
                        from: prev,
                        to: cur,
                        kind,
                    });
                    cur = prev;
                }
                steps.reverse();
                return Some(steps);
            }
            for &(m, k) in self.adjacency.get(&n).into_iter().flatten() {
                if allowed.contains(&k) && members.contains(&m) && seen.insert(m) {
                    came_from.insert(m, (n, k));
                    queue.push_back(m);
                }
            }
        }
        None
    }
}

/// Adya's and Elle's names: G0 (only write-write), G1c (write-write and
/// write-read), G-single (exactly one anti-dependency), G2-item (more than
/// one); `-process` / `-realtime` when the cycle needs session or realtime
/// order, i.e. the history is serializable but not strong-session or
/// strict serializable.
pub fn classify(steps: &[Step]) -> String {
    let count = |k: EdgeKind| steps.iter().filter(|s| s.kind == k).count();
    let base = match count(EdgeKind::Rw) {
        0 if count(EdgeKind::Wr) == 0 && count(EdgeKind::Ww) > 0 => "G0",
        0 => "G1c",
        1 => "G-single",
        _ => "G2-item",
    };
    let suffix = if count(EdgeKind::Realtime) > 0 {
        "-realtime"
    } else if count(EdgeKind::Process) > 0 {
        "-process"
    } else {
        ""
    };
    format!("{base}{suffix}")
}

/// A cycle written out for people: one line per edge with its reason.
pub fn explain(graph: &Graph, cycle: &Cycle) -> String {
    let mut s = String::new();
    let chain: Vec<String> = cycle
        .steps
        .iter()
        .map(|st| format!("T{}", st.from))
        .chain(cycle.steps.first().map(|st| format!("T{}", st.from)))
        .collect();
    s.push_str(&chain.join(" -> "));
    for st in &cycle.steps {
        s.push_str(&format!(
            "\n    T{} -[{}]-> T{}: {}",
            st.from,
            st.kind.name(),
            st.to,
            graph.reason(st)
        ));
    }
    s
}
