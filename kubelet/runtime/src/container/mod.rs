//! The container engine (the part that plays runc's role), with runc's
//! lifecycle: [`Engine::create`] sets everything up and leaves the
//! container's init waiting, [`Engine::start`] lets it exec,
//! [`Engine::state`], [`Engine::kill`] / [`Engine::stop`],
//! [`Engine::delete`] (cgroup and state removed), and [`Engine::run`] =
//! create + start + wait + delete.
//!
//! Where things are: [`crate::oci`] writes and reads the bundle's
//! `config.json`; [`bundle`] makes a bundle with an overlayfs rootfs;
//! [`state`] is the on-disk state; [`init`] is the container init's
//! sequence and [`spawn`] the fork around it; [`crate::linux`] holds the
//! kernel-facing pieces. [`cli`] is the runc-like command line, [`bench`]
//! times it against runc and crun, [`shim`] keeps a container's logs and
//! stdio, [`attach`] serves its attach sessions.

pub mod attach;
pub mod bench;
pub mod bundle;
pub mod cli;
pub mod engine;
pub mod init;
pub mod run;
pub mod shim;
pub mod spawn;
pub mod spec;
pub mod state;

use std::path::Path;

pub use engine::Engine;
pub use state::{Exit, State, Status};

/// What can go wrong with a container.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("invalid container id {0:?}: letters, digits and _.- only")]
    InvalidId(String),
    #[error("container {id:?} is {status}: cannot {action}")]
    BadState {
        id: String,
        status: Status,
        action: &'static str,
    },
    #[error(transparent)]
    Spec(#[from] crate::oci::SpecError),
    #[error(transparent)]
    Sys(#[from] crate::linux::SysError),
    #[error("container init: {0}")]
    Init(String),
    #[error("bench: {0}")]
    Bench(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out: {0}")]
    Timeout(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// For callers on `std::io` errors (the shared command line).
impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        std::io::Error::other(e)
    }
}
