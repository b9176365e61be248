//! Node lifecycle: notices nodes that stopped sending heartbeats, marks them
//! (conditions Unknown, `unreachable` taints), marks their pods not Ready,
//! and evicts pods whose tolerations of those taints ran out, so their
//! ReplicaSets replace them on healthy nodes. When the node's kubelet posts
//! again, its taints go.
//!
//! - [`health`]: heartbeats, conditions and taints of one node (pure).
//! - [`disruption`]: zone states and how fast nodes may be tainted (pure).
//! - [`pods`]: tolerations, eviction times, the not-Ready mark (pure).
//! - [`controller`]: the loop that applies them.

pub mod controller;
pub mod disruption;
pub mod health;
pub mod pods;
