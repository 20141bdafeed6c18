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
use petgraph::visit::{EdgeFiltered, EdgeRef};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

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

/// Steps of a cycle written out in a verdict; a longer cycle is cut there
/// (the count of the rest is given), so one huge cycle cannot make a
/// verdict of gigabytes.
pub const STEPS_SHOWN_MAX: usize = 64;

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

/// Every algorithm here is iterative (petgraph's `kosaraju_scc` and
/// breadth-first search): nothing recurses in proportion to the history,
/// so a history of millions of transactions is checked on a default-sized
/// thread.
#[derive(Default)]
pub struct Graph {
    /// Edges in the order they were added (so verdicts are reproducible).
    edges: Vec<(usize, usize, EdgeKind)>,
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
        self.edges.push((from, to, kind));
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
    ///
    /// Cost: one SCC pass over the whole graph, then per cycle class one
    /// SCC pass over the edges that class may use and one breadth-first
    /// search per component that has such a cycle: O(classes x (V + E)),
    /// never a search per seed edge.
    pub fn cycles(&self) -> Vec<Cycle> {
        let mut g: DiGraph<usize, EdgeKind> = DiGraph::new();
        let mut ids: HashMap<usize, NodeIndex> = HashMap::new();
        for &(from, to, kind) in &self.edges {
            let a = *ids.entry(from).or_insert_with(|| g.add_node(from));
            let b = *ids.entry(to).or_insert_with(|| g.add_node(to));
            g.add_edge(a, b, kind);
        }
        // Component of each node; components of one node have no cycle
        // (self-loops are never added).
        let component = component_ids(&g, |_| true);
        let mut sizes: HashMap<usize, usize> = HashMap::new();
        for &c in &component {
            *sizes.entry(c).or_default() += 1;
        }

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
        // Per component: the cycles found, and the names already used.
        let mut per_component: BTreeMap<usize, (Vec<Cycle>, HashSet<String>)> = BTreeMap::new();
        for (seed_kind, allowed) in searches {
            // A seed edge a -> b closes a cycle over `allowed` exactly when
            // b reaches a over `allowed`, i.e. both lie in one component
            // of the graph restricted to `allowed`.
            let sub = component_ids(&g, |k| allowed.contains(&k));
            let mut seeded: HashSet<usize> = HashSet::new();
            for e in g.edge_references() {
                let (a, b) = (e.source(), e.target());
                let c = component[a.index()];
                if *e.weight() != seed_kind
                    || sizes[&c] < 2
                    || c != component[b.index()]
                    || sub[a.index()] != sub[b.index()]
                    || !seeded.insert(c)
                {
                    continue;
                }
                let Some(path) = shortest_path(&g, b, a, allowed) else {
                    debug_assert!(false, "nodes of one component must reach each other");
                    continue;
                };
                let mut steps = vec![Step {
                    from: g[a],
                    to: g[b],
                    kind: seed_kind,
                }];
                steps.extend(path);
                let name = classify(&steps);
                let (cycles, names) = per_component.entry(c).or_default();
                if names.insert(name.clone()) {
                    cycles.push(Cycle { name, steps });
                }
            }
        }
        per_component
            .into_values()
            .flat_map(|(cycles, _)| cycles)
            .collect()
    }
}

/// The strongly connected component of every node (by node index), over
/// the edges whose kind `keep` accepts. Iterative (Kosaraju's algorithm
/// with explicit stacks).
fn component_ids(g: &DiGraph<usize, EdgeKind>, keep: impl Fn(EdgeKind) -> bool) -> Vec<usize> {
    let filtered = EdgeFiltered::from_fn(g, |e| keep(*e.weight()));
    let mut ids = vec![usize::MAX; g.node_count()];
    for (i, scc) in petgraph::algo::kosaraju_scc(&filtered)
        .into_iter()
        .enumerate()
    {
        for n in scc {
            ids[n.index()] = i;
        }
    }
    debug_assert!(ids.iter().all(|&i| i != usize::MAX));
    ids
}

/// Shortest path `from` ⇝ `to` over `allowed` edges (breadth-first).
fn shortest_path(
    g: &DiGraph<usize, EdgeKind>,
    from: NodeIndex,
    to: NodeIndex,
    allowed: &[EdgeKind],
) -> Option<Vec<Step>> {
    let mut came_from: HashMap<NodeIndex, (NodeIndex, EdgeKind)> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = HashSet::from([from]);
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut steps = Vec::new();
            let mut cur = to;
            while cur != from {
                let (prev, kind) = came_from[&cur];
                steps.push(Step {
                    from: g[prev],
                    to: g[cur],
                    kind,
                });
                cur = prev;
            }
            steps.reverse();
            return Some(steps);
        }
        for e in g.edges(n) {
            let (m, k) = (e.target(), *e.weight());
            if allowed.contains(&k) && seen.insert(m) {
                came_from.insert(m, (n, k));
                queue.push_back(m);
            }
        }
    }
    None
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
    let shown = &cycle.steps[..cycle.steps.len().min(STEPS_SHOWN_MAX)];
    let chain: Vec<String> = shown
        .iter()
        .map(|st| format!("T{}", st.from))
        .chain(cycle.steps.first().map(|st| format!("T{}", st.from)))
        .collect();
    let hidden = cycle.steps.len() - shown.len();
    if hidden == 0 {
        s.push_str(&chain.join(" -> "));
    } else {
        let (head, first) = chain.split_at(chain.len() - 1);
        s.push_str(&format!(
            "{} -> ({hidden} more steps) -> {}",
            head.join(" -> "),
            first.join("")
        ));
    }
    for st in shown {
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
