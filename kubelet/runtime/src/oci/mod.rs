//! OCI runtime bundles: [`spec`] turns a [`spec::ContainerConfig`] (what the
//! CRI layer knows about a container) into a standard `config.json`; [`load`]
//! reads one back, with the `oci-spec` crate, for the executor — so any
//! bundle runc accepts is read the same way here, and ours run under runc.

pub mod spec;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

/// A bundle that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid OCI runtime config: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("invalid container config: {0}")]
    Config(String),
}

/// The bundle's `config.json`.
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    let path = bundle.join("config.json");
    Spec::load(&path).map_err(|source| match source {
        oci_spec::OciSpecError::Io(e) => SpecError::Io { path, source: e },
        source => SpecError::Invalid { path, source },
    })
}

/// The rootfs of `spec`, a relative `root.path` taken from the bundle.
pub fn rootfs(bundle: &Path, spec: &Spec) -> PathBuf {
    let p = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| "rootfs".into());
    if p.is_absolute() { p } else { bundle.join(p) }
}
