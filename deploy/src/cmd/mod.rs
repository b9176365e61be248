//! One file per `skiff` command.

pub mod bench;
pub mod doctor;
pub mod down;
pub mod logs;
pub mod node;
pub mod pod_startup;
pub mod reset;
pub mod status;
pub mod up;
