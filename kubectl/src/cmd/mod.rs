//! One module per verb; each has `Args` (clap) and `run`.

pub mod apply;
pub mod bench;
pub mod config;
pub mod create;
pub mod delete;
pub mod exec;
pub mod get;
pub mod label;
pub mod rollout;
pub mod scale;
pub mod targets;
pub mod tree;
