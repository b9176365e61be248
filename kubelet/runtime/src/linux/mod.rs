//! The Linux side of the container engine, one file per concern:
//! [`namespaces`], [`rootfs`] (mounts, devices, pivot_root, masked and
//! read-only paths), [`cgroups`] (v1 and v2), [`capabilities`] and
//! [`process`] (user, no_new_privs, exec), [`userns`] (user namespaces,
//! idmapped mounts).
//!
//! Every host side effect goes through the [`syscalls::Syscalls`] trait, so
//! the order and arguments of mounts, namespace switches and privilege drops
//! are unit-tested unprivileged with [`syscalls::RecordingSyscalls`]; the
//! real [`syscalls::LinuxSyscalls`] is exercised by the root tests.

pub mod capabilities;
pub mod cgroups;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod syscalls;
pub mod userns;

/// A failed host operation, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct SysError {
    pub op: String,
    #[source]
    pub source: std::io::Error,
}

impl SysError {
    pub fn new(op: impl Into<String>, source: impl Into<std::io::Error>) -> SysError {
        SysError {
            op: op.into(),
            source: source.into(),
        }
    }

    /// An error that is not an errno (a bad value in the spec, say).
    pub fn other(op: impl Into<String>, msg: impl Into<String>) -> SysError {
        SysError::new(op, std::io::Error::other(msg.into()))
    }
}

pub type Result<T, E = SysError> = std::result::Result<T, E>;

/// Attaches "what was being done" to an errno or io error.
pub trait Context<T> {
    fn ctx(self, op: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| SysError::new(op(), std::io::Error::from(e)))
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn ctx(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| SysError::new(op(), e))
    }
}
