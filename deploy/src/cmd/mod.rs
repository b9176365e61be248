//! One file per `skiff` command.

pub mod bench;
pub mod doctor;
pub mod down;
pub mod join;
pub mod logs;
pub mod node;
pub mod pod_startup;
pub mod reset;
pub mod server;
pub mod status;
pub mod token;
pub mod up;
