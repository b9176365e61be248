//! `run` as the CRI shim calls it today: one container from a bundle, until
//! it exits, in the default state root — a thin wrapper over
//! [`Engine::run`](super::Engine::run).

use std::path::Path;

pub use super::state::Exit;
use super::{Engine, Error};

/// Where `skiff-runtime` keeps container state unless told otherwise.
pub const DEFAULT_ROOT: &str = "/run/skiff-runtime";

/// Runs the bundle as container `id` until it exits.
pub fn run(bundle: &Path, id: &str) -> Result<Exit, Error> {
    run_with_pid_file(bundle, id, None)
}

/// [`run`], writing the container's PID 1 (as the host sees it) to
/// `pid_file` once it is in its cgroup: what a stop signals.
pub fn run_with_pid_file(bundle: &Path, id: &str, pid_file: Option<&Path>) -> Result<Exit, Error> {
    Engine::new(DEFAULT_ROOT).run(id, bundle, pid_file)
}
