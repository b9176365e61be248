//! Pod volumes: `spec.volumes` set up on the node, then bind-mounted into
//! each container per its `volumeMounts` (through the CRI `mounts` of
//! CreateContainer; the runtime does the binds).
//!
//! Each volume of the pod lives where upstream keeps it,
//! `<root-dir>/pods/<uid>/volumes/<plugin>/<name>` (`kubernetes.io~empty-dir`,
//! `~configmap`, `~secret`, `~downward-api`, `~projected`); `hostPath` and
//! `persistentVolumeClaim` volumes are node paths used in place.
//!
//! - [`plan`] (pure): from the pod and the objects it names
//!   ([`crate::pods::sources`]) to what each volume needs — a directory
//!   ([`empty_dir`]), a checked node path ([`host_path`], [`pvc`]) or files
//!   ([`projected`]) — or why it cannot be had.
//! - [`set_up`]: does it — directories, tmpfs mounts through a
//!   [`mounter::Mounter`] (emptyDir `medium: Memory`; every `secret`
//!   volume, so Secrets stay off the disk), files through the
//!   [`atomic_writer`]. The worker runs it before the sandbox and again
//!   every [`RESYNC`] while the pod runs, so containers see ConfigMap and
//!   Secret changes (as upstream, not for `subPath` mounts).
//! - [`container_mounts`]: a container's `volumeMounts` as CRI mounts
//!   (`subPath`/`subPathExpr` made and checked to stay in the volume;
//!   API-data volumes always read-only, as upstream).
//! - [`tear_down`]: unmounts what is mounted under the pod's volumes when
//!   the pod goes; the worker then removes the pod's directory.

pub mod atomic_writer;
pub mod empty_dir;
pub mod host_path;
pub mod mounter;
pub mod projected;
pub mod pvc;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use skiff_proto::cri;

use atomic_writer::Payload;
use empty_dir::Medium;
use host_path::{HostPathError, HostPathType};
use mounter::Mounter;

use super::sources::Sources;
use crate::node::quantity::QuantityError;

/// How often a running pod's volumes are set up again, which is how
/// ConfigMap and Secret changes reach its files (upstream's kubelet
/// re-syncs each pod every minute or so; shorter here, for classes that
/// watch it happen).
pub const RESYNC: Duration = Duration::from_secs(10);

pub const EMPTY_DIR: &str = "kubernetes.io~empty-dir";
pub const CONFIG_MAP: &str = "kubernetes.io~configmap";
pub const SECRET: &str = "kubernetes.io~secret";
pub const DOWNWARD_API: &str = "kubernetes.io~downward-api";
pub const PROJECTED: &str = "kubernetes.io~projected";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// As the API server words it (`configmaps "cfg" not found`).
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: &'static str, name: String },
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKey(String),
    #[error("references non-existent secret key: {0}")]
    SecretKey(String),
    /// Reading an object failed (not a 404).
    #[error("{0}")]
    Fetch(String),
    #[error("{0}")]
    Field(String),
    #[error(transparent)]
    HostPath(#[from] HostPathError),
    #[error(transparent)]
    Write(#[from] atomic_writer::WriteError),
    #[error("PVC {namespace}/{name} is not bound")]
    NotBound { namespace: String, name: String },
    #[error(
        "persistentvolume \"{0}\" is neither hostPath nor local: this kubelet mounts only those"
    )]
    PersistentVolumeKind(String),
    #[error("local volume path {0} does not exist")]
    LocalMissing(PathBuf),
    #[error(
        "unsupported volume type: this kubelet mounts emptyDir, hostPath, configMap, secret, downwardAPI, projected and persistentVolumeClaim volumes"
    )]
    Unsupported,
    #[error("emptyDir medium {0:?} is not supported (\"\" or Memory)")]
    Medium(String),
    #[error("emptyDir sizeLimit: {0}")]
    SizeLimit(QuantityError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unable to find volume {0:?} to mount into the container")]
    NoVolume(String),
    #[error("invalid subPath {0:?}: must be a relative path without '..'")]
    SubPath(String),
    #[error("subPath {0:?} leads outside its volume")]
    SubPathEscape(String),
}

/// What one volume needs on the node.
#[derive(Debug, Clone, PartialEq)]
pub enum Setup {
    EmptyDir(Medium),
    /// A node path, checked (and maybe made) per its type.
    HostPath(HostPathType),
    /// A `local` PersistentVolume's path: it must exist.
    Local,
    /// Files written atomically, on a tmpfs for Secrets.
    Files {
        payload: Payload,
        tmpfs: bool,
    },
}

/// One of the pod's volumes: where it is on the node and what it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub name: String,
    pub path: PathBuf,
    /// Every mount of it is read-only (API data, a read-only claim).
    pub read_only: bool,
    pub setup: Setup,
}

/// Where a pod's volume of `plugin` named `name` lives.
pub fn volume_dir(pods_dir: &Path, uid: &str, plugin: &str, name: &str) -> PathBuf {
    pods_dir.join(uid).join("volumes").join(plugin).join(name)
}

/// Every volume of `pod`, or why it cannot be set up — pure.
pub fn plan(
    pod: &Pod,
    sources: &Sources,
    pods_dir: &Path,
) -> Vec<(String, Result<Volume, VolumeError>)> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let dir = |plugin: &str, name: &str| volume_dir(pods_dir, uid, plugin, name);
    let files = |plugin: &str, name: &str, payload: Payload, tmpfs: bool| Volume {
        name: name.into(),
        path: dir(plugin, name),
        read_only: true,
        setup: Setup::Files { payload, tmpfs },
    };
    let mut out = Vec::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let name = v.name.clone();
        let volume = if let Some(e) = &v.empty_dir {
            empty_dir::medium(e).map(|m| Volume {
                name: name.clone(),
                path: dir(EMPTY_DIR, &name),
                read_only: false,
                setup: Setup::EmptyDir(m),
            })
        } else if let Some(h) = &v.host_path {
            HostPathType::parse(h.type_.as_deref())
                .map_err(VolumeError::from)
                .map(|t| Volume {
                    name: name.clone(),
                    path: h.path.clone().into(),
                    read_only: false,
                    setup: Setup::HostPath(t),
                })
        } else if let Some(c) = &v.config_map {
            projected::config_map(c, sources).map(|p| files(CONFIG_MAP, &name, p, false))
        } else if let Some(s) = &v.secret {
            projected::secret(s, sources).map(|p| files(SECRET, &name, p, true))
        } else if let Some(d) = &v.downward_api {
            let mut p = Payload::new();
            projected::downward_api(
                pod,
                d.items.as_deref().unwrap_or_default(),
                d.default_mode.unwrap_or(projected::DEFAULT_MODE),
                &mut p,
            )
            .map(|()| files(DOWNWARD_API, &name, p, false))
        } else if let Some(p) = &v.projected {
            projected::projected(pod, p, sources).map(|p| files(PROJECTED, &name, p, false))
        } else if let Some(c) = &v.persistent_volume_claim {
            pvc::resolve(c, namespace, sources).map(|r| Volume {
                name: name.clone(),
                path: r.path,
                read_only: r.read_only,
                setup: r.check.map_or(Setup::Local, Setup::HostPath),
            })
        } else {
            Err(VolumeError::Unsupported)
        };
        out.push((name, volume));
    }
    out
}

/// Makes `volume` real on the node; whether files changed (for the log).
pub fn set_up(mounter: &dyn Mounter, volume: &Volume) -> Result<bool, VolumeError> {
    match &volume.setup {
        Setup::EmptyDir(medium) => empty_dir::set_up(mounter, &volume.path, medium).map(|()| false),
        // No type: what is missing is made a directory, as containerd's
        // CRI does for a bind source (upstream's kubelet leaves it to the
        // runtime).
        Setup::HostPath(HostPathType::Unset) if !volume.path.exists() => {
            host_path::check(&volume.path, HostPathType::DirectoryOrCreate)?;
            Ok(false)
        }
        Setup::HostPath(t) => {
            host_path::check(&volume.path, *t)?;
            Ok(false)
        }
        Setup::Local if !volume.path.exists() => {
            Err(VolumeError::LocalMissing(volume.path.clone()))
        }
        Setup::Local => Ok(false),
        Setup::Files { payload, tmpfs } => {
            if *tmpfs {
                empty_dir::set_up(mounter, &volume.path, &Medium::Memory(None))?;
            }
            Ok(atomic_writer::write(&volume.path, payload)?)
        }
    }
}

/// A volume that has been set up: what the containers' mounts need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub path: PathBuf,
    pub read_only: bool,
}

impl From<&Volume> for Ready {
    fn from(v: &Volume) -> Ready {
        Ready {
            path: v.path.clone(),
            read_only: v.read_only,
        }
    }
}

/// Container `c`'s `volumeMounts` as CRI mounts. `subPath` (or
/// `subPathExpr`, expanded with the container's `env`) must stay inside
/// its volume; a missing one is made (a directory, as upstream).
pub fn container_mounts(
    c: &Container,
    ready: &BTreeMap<String, Ready>,
    env: &BTreeMap<String, String>,
) -> Result<Vec<cri::Mount>, VolumeError> {
    let mut out = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let v = ready
            .get(&m.name)
            .ok_or_else(|| VolumeError::NoVolume(m.name.clone()))?;
        let sub = match (&m.sub_path, &m.sub_path_expr) {
            (Some(p), _) if !p.is_empty() => p.clone(),
            (_, Some(e)) if !e.is_empty() => super::config::expand(e, env),
            _ => String::new(),
        };
        let host_path = if sub.is_empty() {
            v.path.clone()
        } else {
            sub_path(&v.path, &sub)?
        };
        out.push(cri::Mount {
            container_path: m.mount_path.clone(),
            host_path: host_path.display().to_string(),
            readonly: v.read_only || m.read_only.unwrap_or(false),
            ..Default::default()
        });
    }
    Ok(out)
}

/// `volume/sub`, made when missing and resolved (links followed) to a
/// path that must still be inside the volume.
fn sub_path(volume: &Path, sub: &str) -> Result<PathBuf, VolumeError> {
    let p = Path::new(sub);
    if p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(VolumeError::SubPath(sub.into()));
    }
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| VolumeError::Io { what, path, source }
    };
    let path = volume.join(p);
    if std::fs::symlink_metadata(&path).is_err() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(volume)
            .map(|m| m.permissions().mode() & 0o7777)
            .map_err(io("stat", volume))?;
        std::fs::create_dir_all(&path).map_err(io("create", &path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(io("chmod", &path))?;
    }
    let resolved = path.canonicalize().map_err(io("resolve", &path))?;
    let base = volume.canonicalize().map_err(io("resolve", volume))?;
    if !resolved.starts_with(&base) {
        return Err(VolumeError::SubPathEscape(sub.into()));
    }
    Ok(resolved)
}

/// Unmounts everything mounted under the pod's volumes (tmpfs of
/// emptyDirs and Secrets). Errors are collected: the caller must not remove
/// the directory while something is still mounted in it.
pub fn tear_down(mounter: &dyn Mounter, pods_dir: &Path, uid: &str) -> Result<(), VolumeError> {
    let dir = pods_dir.join(uid).join("volumes");
    let mut first_error = None;
    for m in mounter.mounts_under(&dir) {
        if let Err(source) = mounter.unmount(&m) {
            first_error.get_or_insert(VolumeError::Io {
                what: "unmount",
                path: m,
                source,
            });
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests;
