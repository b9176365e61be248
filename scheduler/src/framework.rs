//! The scheduling framework: filter plugins say which nodes can take a pod, score plugins
//! rank those, and [`Framework::schedule`] picks the best — the way kube-scheduler's
//! framework does, in one synchronous function over a [`Snapshot`].
//!
//! One scheduling cycle:
//!
//! 1. every filter plugin's [`FilterPlugin::pre_filter`] (once per pod: compute what the
//!    per-node checks need, e.g. PodTopologySpread's counts per domain);
//! 2. [`FilterPlugin::filter`] on each node, plugins in order, stopping at the first that
//!    rejects it; as upstream, on large clusters the search stops once enough feasible
//!    nodes are found ([`num_feasible_nodes_to_find`]) and the next pod starts where this one
//!    stopped;
//! 3. no feasible node → a [`FitError`] whose message is upstream's, reason by reason;
//! 4. else each [`ScorePlugin`] scores every feasible node, normalizes its scores to
//!    0–[`MAX_NODE_SCORE`], and they add up times the plugin's weight; the highest total wins
//!    (ties are broken at random, as upstream).

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use rand::Rng;

use crate::snapshot::{NodeInfo, PodInfo, Snapshot};

/// The highest score a plugin gives a node after normalizing.
pub const MAX_NODE_SCORE: i64 = 100;

/// How a filter judged a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Success,
    /// Does not fit now; could fit if other pods went away (preemption could help).
    Unschedulable,
    /// Does not fit, and removing pods would not change that.
    UnschedulableAndUnresolvable,
}

/// A filter's verdict on one node, with upstream's reason texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    /// The plugin that said so (set by the framework).
    pub plugin: &'static str,
}

impl Status {
    pub fn success() -> Status {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub fn unschedulable(reason: impl Into<String>) -> Status {
        Status {
            code: Code::Unschedulable,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }

    pub fn unresolvable(reason: impl Into<String>) -> Status {
        Status {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }
}

/// What plugins compute once per pod and read for every node, by plugin name.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn Any + Send + Sync>>,
}

impl CycleState {
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }

    pub fn read<T: Any>(&self, key: &'static str) -> Option<&T> {
        self.data.get(key).and_then(|v| v.downcast_ref())
    }
}

/// Says whether a node can take a pod.
pub trait FilterPlugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// Once per pod before any [`filter`](Self::filter) call. Default: nothing.
    fn pre_filter(&self, _pod: &PodInfo, _snapshot: &Snapshot, _state: &mut CycleState) {}

    fn filter(&self, pod: &PodInfo, node: &NodeInfo, state: &CycleState) -> Status;
}

/// Ranks the nodes that passed every filter.
pub trait ScorePlugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// Once per pod, given the feasible nodes, before scoring. Default: nothing.
    fn pre_score(
        &self,
        _pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _snapshot: &Snapshot,
        _state: &mut CycleState,
    ) {
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo, state: &CycleState) -> i64;

    /// Brings raw scores into 0–[`MAX_NODE_SCORE`]. Default: they already are.
    fn normalize(&self, _scores: &mut [i64]) {}
}

/// Scales scores so the highest becomes [`MAX_NODE_SCORE`]; `reverse` turns it upside down
/// (fewest is best). As upstream's `DefaultNormalizeScore`.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = MAX_NODE_SCORE * *s / max;
        if reverse {
            *s = MAX_NODE_SCORE - *s;
        }
    }
}

/// Why a pod fits no node: each node's verdict, formatted as upstream's `FitError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub statuses: Vec<(String, Status)>,
    /// `spec.preemptionPolicy: Never`: preemption is not even considered.
    pub preemption_never: bool,
}

/// `"1 Insufficient cpu, 2 node(s) were unschedulable"`: each reason with how many nodes
/// gave it, sorted as strings (as upstream sorts them).
fn histogram<'a>(reasons: impl Iterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in reasons {
        *counts.entry(r).or_default() += 1;
    }
    let mut lines: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    lines.sort();
    lines.join(", ")
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.num_all_nodes;
        let reasons = histogram(
            self.statuses
                .iter()
                .flat_map(|(_, s)| s.reasons.iter().map(String::as_str)),
        );
        write!(f, "0/{n} nodes are available: {reasons}.")?;
        if self.preemption_never {
            return write!(f, " not eligible due to preemptionPolicy=Never.");
        }
        // Skiff does not preempt: a node that failed for a reason removing pods could fix is
        // reported as upstream reports a node with no lower-priority pods to remove.
        let preemption = histogram(self.statuses.iter().map(|(_, s)| match s.code {
            Code::UnschedulableAndUnresolvable => "Preemption is not helpful for scheduling",
            _ => "No preemption victims found for incoming pod",
        }));
        write!(f, " preemption: 0/{n} nodes are available: {preemption}.")
    }
}

/// Why a cycle found no node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    NoNodes,
    Fit(FitError),
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::NoNodes => write!(f, "no nodes available to schedule pods"),
            ScheduleError::Fit(e) => e.fmt(f),
        }
    }
}

/// Where a pod should go, and how it was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleResult {
    pub node: String,
    pub evaluated_nodes: usize,
    pub feasible_nodes: usize,
}

/// Upstream's adaptive sampling: all nodes below 100; above, a percentage that falls from 50%
/// by one point per 125 nodes down to 5%, and never fewer than 100 nodes.
pub fn num_feasible_nodes_to_find(num_all_nodes: usize, percentage: u32) -> usize {
    const MIN_FEASIBLE: usize = 100;
    if num_all_nodes < MIN_FEASIBLE || percentage >= 100 {
        return num_all_nodes;
    }
    let percentage = if percentage == 0 {
        50usize.saturating_sub(num_all_nodes / 125).max(5)
    } else {
        percentage as usize
    };
    (num_all_nodes * percentage / 100).max(MIN_FEASIBLE)
}

/// The filter and score plugins in order, with the score plugins' weights.
pub struct Framework {
    pub filters: Vec<Box<dyn FilterPlugin>>,
    pub scores: Vec<(Box<dyn ScorePlugin>, i64)>,
    /// Percentage of nodes to find feasible before scoring; 0 = adaptive, as upstream.
    pub percentage_of_nodes_to_score: u32,
    next_start_node: usize,
}

impl Framework {
    pub fn new(
        filters: Vec<Box<dyn FilterPlugin>>,
        scores: Vec<(Box<dyn ScorePlugin>, i64)>,
    ) -> Framework {
        Framework {
            filters,
            scores,
            percentage_of_nodes_to_score: 0,
            next_start_node: 0,
        }
    }

    /// Runs the filters on one node: the first rejection, or success.
    pub fn run_filters(&self, pod: &PodInfo, node: &NodeInfo, state: &CycleState) -> Status {
        for plugin in &self.filters {
            let mut status = plugin.filter(pod, node, state);
            if !status.is_success() {
                status.plugin = plugin.name();
                return status;
            }
        }
        Status::success()
    }

    /// One scheduling cycle for `pod`.
    pub fn schedule(
        &mut self,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> Result<ScheduleResult, ScheduleError> {
        let nodes = snapshot.nodes();
        if nodes.is_empty() {
            return Err(ScheduleError::NoNodes);
        }
        let mut state = CycleState::default();
        for plugin in &self.filters {
            plugin.pre_filter(pod, snapshot, &mut state);
        }
        let want = num_feasible_nodes_to_find(nodes.len(), self.percentage_of_nodes_to_score);
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(nodes.len()));
        let mut statuses = Vec::new();
        let start = self.next_start_node % nodes.len();
        let mut evaluated = 0;
        for i in 0..nodes.len() {
            let node = &nodes[(start + i) % nodes.len()];
            evaluated += 1;
            let status = self.run_filters(pod, node, &state);
            if status.is_success() {
                feasible.push(node);
                if feasible.len() >= want {
                    break;
                }
            } else {
                statuses.push((node.name.clone(), status));
            }
        }
        self.next_start_node = (start + evaluated) % nodes.len();
        if feasible.is_empty() {
            let preemption_never = pod
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.preemption_policy.as_deref())
                == Some("Never");
            return Err(ScheduleError::Fit(FitError {
                num_all_nodes: nodes.len(),
                statuses,
                preemption_never,
            }));
        }
        let result = |node: &NodeInfo| ScheduleResult {
            node: node.name.clone(),
            evaluated_nodes: evaluated,
            feasible_nodes: feasible.len(),
        };
        if feasible.len() == 1 {
            return Ok(result(feasible[0]));
        }
        let totals = self.score(pod, &feasible, snapshot, &mut state);
        // Highest total; among equals each is equally likely (reservoir sampling).
        let mut rng = rand::rng();
        let mut best = 0;
        let mut ties = 0;
        for (i, total) in totals.iter().enumerate() {
            if *total > totals[best] {
                best = i;
                ties = 1;
            } else if *total == totals[best] {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = i;
                }
            }
        }
        Ok(result(feasible[best]))
    }

    /// Every feasible node's weighted total score.
    pub fn score(
        &self,
        pod: &PodInfo,
        feasible: &[&NodeInfo],
        snapshot: &Snapshot,
        state: &mut CycleState,
    ) -> Vec<i64> {
        let mut totals = vec![0i64; feasible.len()];
        let mut scores = vec![0i64; feasible.len()];
        for (plugin, weight) in &self.scores {
            plugin.pre_score(pod, feasible, snapshot, state);
            for (s, node) in scores.iter_mut().zip(feasible) {
                *s = plugin.score(pod, node, state);
            }
            plugin.normalize(&mut scores);
            for (t, s) in totals.iter_mut().zip(&scores) {
                debug_assert!(
                    (0..=MAX_NODE_SCORE).contains(s),
                    "{} gave {s}",
                    plugin.name()
                );
                *t += s * weight;
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit_error(statuses: Vec<Status>) -> FitError {
        FitError {
            num_all_nodes: statuses.len(),
            statuses: statuses
                .into_iter()
                .enumerate()
                .map(|(i, s)| (format!("node-{i}"), s))
                .collect(),
            preemption_never: false,
        }
    }

    #[test]
    fn fit_error_messages_are_upstreams() {
        let taint = || {
            Status::unresolvable(
                "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
            )
        };
        let cases = vec![
            (
                vec![taint(), taint(), taint()],
                "0/3 nodes are available: 3 node(s) had untolerated taint \
                 {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are \
                 available: 3 Preemption is not helpful for scheduling.",
            ),
            (
                vec![Status::unschedulable("Insufficient cpu"), taint(), taint()],
                "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
                 {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are \
                 available: 1 No preemption victims found for incoming pod, 2 Preemption is \
                 not helpful for scheduling.",
            ),
            (
                // one node, two reasons: both counted; sorted as strings
                vec![
                    Status {
                        code: Code::Unschedulable,
                        reasons: vec!["Insufficient memory".into(), "Insufficient cpu".into()],
                        plugin: "",
                    },
                    Status::unresolvable("node(s) were unschedulable"),
                ],
                "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 node(s) \
                 were unschedulable. preemption: 0/2 nodes are available: 1 No preemption \
                 victims found for incoming pod, 1 Preemption is not helpful for scheduling.",
            ),
        ];
        for (statuses, want) in cases {
            assert_eq!(fit_error(statuses).to_string(), want);
        }
        // as strings, "10 …" sorts before "2 …" (upstream's sort.Strings)
        let mut many: Vec<Status> = (0..10).map(|_| taint()).collect();
        many.extend((0..2).map(|_| Status::unschedulable("Insufficient cpu")));
        let msg = fit_error(many).to_string();
        assert!(
            msg.starts_with(
                "0/12 nodes are available: 10 node(s) had untolerated taint \
                 {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu."
            ),
            "{msg}"
        );
        let mut never = fit_error(vec![Status::unschedulable("Insufficient cpu")]);
        never.preemption_never = true;
        assert_eq!(
            never.to_string(),
            "0/1 nodes are available: 1 Insufficient cpu. not eligible due to \
             preemptionPolicy=Never."
        );
        assert_eq!(
            ScheduleError::NoNodes.to_string(),
            "no nodes available to schedule pods"
        );
    }

    #[test]
    fn sampling_follows_upstream() {
        let cases = [
            (0, 0, 0),
            (50, 0, 50),
            (99, 0, 99),
            (100, 0, 100),   // 50% of 100 = 50, but never fewer than 100
            (1000, 0, 420),  // 50 - 8 = 42%
            (5000, 0, 500),  // 50 - 40 = 10%
            (10000, 0, 500), // floor at 5%
            (5000, 100, 5000),
            (5000, 30, 1500),
        ];
        for (all, pct, want) in cases {
            assert_eq!(
                num_feasible_nodes_to_find(all, pct),
                want,
                "{all} nodes at {pct}%"
            );
        }
    }

    #[test]
    fn normalize() {
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, false);
        assert_eq!(s, [0, 50, 100]);
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, true);
        assert_eq!(s, [100, 50, 0]);
        let mut s = vec![0, 0];
        default_normalize(&mut s, true);
        assert_eq!(s, [100, 100]);
        let mut s = vec![0, 0];
        default_normalize(&mut s, false);
        assert_eq!(s, [0, 0]);
    }
}
