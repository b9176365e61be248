//! The Deployment controller: ReplicaSets per pod template, rolled by the
//! strategy. [`rolling`] resolves maxSurge/maxUnavailable, [`hash`] names
//! ReplicaSets, [`plan`] decides one pass (pure), [`controller`] applies it.

pub mod controller;
pub mod hash;
pub mod plan;
pub mod rolling;
