//! One module per verb; each has `Args` (clap) and `run`.

pub mod apply;
pub mod bench;
pub mod config;
pub mod cordon;
pub mod cp;
pub mod create;
pub mod delete;
pub mod describe;
pub mod diff;
pub mod drain;
pub mod edit;
pub mod events;
pub mod exec;
pub mod expose;
pub mod get;
pub mod info;
pub mod label;
pub mod logs;
pub mod patch;
pub mod rollout;
pub mod rollout_history;
pub mod scale;
pub mod set_image;
pub mod targets;
pub mod tree;
pub mod wait;
