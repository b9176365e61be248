//! The ReplicaSet controller: keeps `replicas` pods of each ReplicaSet.
//! [`plan`] decides (pure); [`controller`] watches, queues and writes.

pub mod controller;
pub mod plan;
