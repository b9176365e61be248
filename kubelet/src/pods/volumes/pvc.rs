//! `persistentVolumeClaim` volumes: the claim names the PersistentVolume it
//! is bound to (`spec.volumeName`); this kubelet can mount that volume when
//! it is a path of the node — `hostPath` (checked against its `type`) or
//! `local` (which must exist) — and says so plainly for any other kind.
//! Read-only when the pod's volume says `readOnly`.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::PersistentVolumeClaimVolumeSource;

use super::VolumeError;
use super::host_path::HostPathType;
use crate::pods::sources::Sources;

/// The node path behind a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub path: PathBuf,
    /// The check for a `hostPath` PV; `None` for `local` (must exist).
    pub check: Option<HostPathType>,
    pub read_only: bool,
    pub volume: String,
}

pub fn resolve(
    src: &PersistentVolumeClaimVolumeSource,
    namespace: &str,
    sources: &Sources,
) -> Result<Resolved, VolumeError> {
    let name = &src.claim_name;
    let fetch_error = |resource: &str, n: &str| {
        sources
            .errors
            .get(&format!("{resource}/{n}"))
            .map(|e| VolumeError::Fetch(e.clone()))
    };
    let Some(claim) = sources.claims.get(name) else {
        return Err(
            fetch_error("persistentvolumeclaims", name).unwrap_or(VolumeError::NotFound {
                kind: "persistentvolumeclaims",
                name: name.clone(),
            }),
        );
    };
    let volume = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| VolumeError::NotBound {
            namespace: namespace.into(),
            name: name.clone(),
        })?;
    let Some(pv) = sources.persistent_volumes.get(&volume) else {
        return Err(
            fetch_error("persistentvolumes", &volume).unwrap_or(VolumeError::NotFound {
                kind: "persistentvolumes",
                name: volume,
            }),
        );
    };
    let spec = pv.spec.clone().unwrap_or_default();
    let read_only = src.read_only.unwrap_or(false);
    if let Some(h) = spec.host_path {
        return Ok(Resolved {
            path: h.path.into(),
            check: Some(HostPathType::parse(h.type_.as_deref())?),
            read_only,
            volume,
        });
    }
    if let Some(l) = spec.local {
        return Ok(Resolved {
            path: l.path.into(),
            check: None,
            read_only,
            volume,
        });
    }
    Err(VolumeError::PersistentVolumeKind(volume))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sources() -> Sources {
        let mut s = Sources::default();
        for (name, volume) in [
            ("data", "pv-host"),
            ("db", "pv-local"),
            ("cloud", "pv-nfs"),
            ("lost", "pv-gone"),
            ("pending", ""),
        ] {
            s.claims.insert(
                name.into(),
                serde_json::from_value(
                    json!({"metadata": {"name": name}, "spec": {"volumeName": volume}}),
                )
                .unwrap(),
            );
        }
        for (name, spec) in [
            (
                "pv-host",
                json!({"hostPath": {"path": "/srv/data", "type": "Directory"}}),
            ),
            ("pv-local", json!({"local": {"path": "/mnt/disk1"}})),
            (
                "pv-nfs",
                json!({"nfs": {"server": "nas", "path": "/export"}}),
            ),
        ] {
            s.persistent_volumes.insert(
                name.into(),
                serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap(),
            );
        }
        s.errors
            .insert("persistentvolumeclaims/flaky".into(), "timed out".into());
        s
    }

    #[test]
    fn claims_to_node_paths() {
        let s = sources();
        let claim = |name: &str, ro: bool| PersistentVolumeClaimVolumeSource {
            claim_name: name.into(),
            read_only: Some(ro),
        };
        assert_eq!(
            resolve(&claim("data", true), "shop", &s).unwrap(),
            Resolved {
                path: "/srv/data".into(),
                check: Some(HostPathType::Directory),
                read_only: true,
                volume: "pv-host".into()
            }
        );
        let local = resolve(&claim("db", false), "shop", &s).unwrap();
        assert_eq!(
            (local.path, local.check, local.read_only),
            ("/mnt/disk1".into(), None, false)
        );
        for (name, want) in [
            (
                "cloud",
                "persistentvolume \"pv-nfs\" is neither hostPath nor local: this kubelet mounts only those",
            ),
            ("lost", "persistentvolumes \"pv-gone\" not found"),
            ("pending", "PVC shop/pending is not bound"),
            ("nope", "persistentvolumeclaims \"nope\" not found"),
            ("flaky", "timed out"),
        ] {
            assert_eq!(
                resolve(&claim(name, false), "shop", &s)
                    .unwrap_err()
                    .to_string(),
                want,
                "{name}"
            );
        }
    }
}
