//! The container description the CRI layer fills in today
//! ([`ContainerSpec`], its capability list already final), mapped onto
//! [`crate::oci::spec::ContainerConfig`]; new code should use that directly.

use crate::oci::spec::ContainerConfig;
pub use crate::oci::spec::{BindMount, DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS};

/// A container, as the CRI layer asks for it (see [`ContainerConfig`] for
/// the fields).
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Capability names (`CAP_…`); empty means [`DEFAULT_CAPABILITIES`].
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    pub hostname: String,
    pub rootfs: String,
    pub readonly_rootfs: bool,
    /// Namespace files to join (`network`, `uts`, `ipc`); the others are new,
    /// except those in `host`.
    pub join: Vec<(String, String)>,
    /// Namespaces shared with the node (`network`, `uts` of a `hostNetwork` pod).
    pub host: Vec<String>,
    pub mounts: Vec<BindMount>,
    pub cgroups_path: String,
    pub memory_limit: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub pids_limit: Option<i64>,
    /// A TTY (CRI `tty`): the process's stdin is its controlling terminal.
    pub terminal: bool,
    /// A user namespace with these mappings (`hostUsers: false`).
    pub user_namespace: Option<crate::linux::userns::Mappings>,
}

impl From<&ContainerSpec> for ContainerConfig {
    fn from(s: &ContainerSpec) -> ContainerConfig {
        ContainerConfig {
            args: s.args.clone(),
            env: s.env.clone(),
            cwd: s.cwd.clone(),
            uid: s.uid,
            gid: s.gid,
            additional_gids: s.additional_gids.clone(),
            capabilities: s.capabilities.clone(),
            add_capabilities: vec![],
            drop_capabilities: vec![],
            no_new_privileges: s.no_new_privileges,
            hostname: s.hostname.clone(),
            rootfs: s.rootfs.clone(),
            readonly_rootfs: s.readonly_rootfs,
            join: s.join.clone(),
            host: s.host.clone(),
            mounts: s.mounts.clone(),
            cgroups_path: s.cgroups_path.clone(),
            memory_limit: s.memory_limit,
            cpu_shares: s.cpu_shares,
            cpu_quota: s.cpu_quota,
            cpu_period: s.cpu_period,
            pids_limit: s.pids_limit,
            terminal: s.terminal,
            user_namespace: s.user_namespace.clone(),
        }
    }
}

/// The `config.json` for `spec` (the standard OCI document).
pub fn config_json(spec: &ContainerSpec) -> serde_json::Value {
    crate::oci::spec::config_json(&ContainerConfig::from(spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cri_shape_maps_onto_the_config() {
        let spec = ContainerSpec {
            args: vec!["sh".into()],
            capabilities: vec!["CAP_KILL".into()],
            memory_limit: Some(1 << 20),
            ..Default::default()
        };
        let json = config_json(&spec);
        assert_eq!(
            json["process"]["capabilities"]["bounding"],
            serde_json::json!(["CAP_KILL"])
        );
        assert_eq!(json["linux"]["resources"]["memory"]["limit"], 1 << 20);
        // An empty list means the default set (this type's contract).
        let default = config_json(&ContainerSpec {
            args: vec!["sh".into()],
            ..Default::default()
        });
        assert_eq!(
            default["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            DEFAULT_CAPABILITIES.len()
        );
    }
}
