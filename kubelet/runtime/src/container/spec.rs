//! The OCI runtime `config.json` of a container, from what the CRI layer
//! knows: command, environment, user, capabilities, hostname, the sandbox's
//! namespaces to join, mounts, and resources. It is standard (parsed back
//! with the `oci-spec` crate in the tests), so `runc run` takes the same
//! bundle — the differential test does exactly that.

use serde_json::{Value, json};

/// Kubernetes' default container capabilities (containerd's list).
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths hidden from containers, as runc's defaults.
pub const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// Paths containers may read but not write, as runc's defaults.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

#[derive(Debug, Clone, Default)]
pub struct BindMount {
    pub source: String,
    pub destination: String,
    pub readonly: bool,
}

/// A container, as the runtime is asked to make it.
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
    /// Namespace files to join (`network`, `uts`, `ipc`); the others are new.
    pub join: Vec<(String, String)>,
    pub mounts: Vec<BindMount>,
    pub cgroups_path: String,
    pub memory_limit: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub pids_limit: Option<i64>,
}

/// The `config.json` for `spec`.
pub fn config_json(spec: &ContainerSpec) -> Value {
    let caps: Vec<String> = if spec.capabilities.is_empty() {
        DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    } else {
        spec.capabilities.clone()
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    for m in &spec.mounts {
        let mut options = vec!["rbind", "rprivate"];
        if m.readonly {
            options.push("ro");
        }
        mounts.push(json!({"destination": m.destination, "type": "bind", "source": m.source, "options": options}));
    }
    let mut namespaces = vec![json!({"type": "pid"}), json!({"type": "mount"})];
    for kind in ["network", "uts", "ipc"] {
        match spec.join.iter().find(|(k, _)| k == kind) {
            Some((_, path)) => namespaces.push(json!({"type": kind, "path": path})),
            None => namespaces.push(json!({"type": kind})),
        }
    }
    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if let Some(limit) = spec.memory_limit {
        resources["memory"] = json!({"limit": limit});
    }
    if spec.cpu_shares.is_some() || spec.cpu_quota.is_some() {
        let mut cpu = json!({});
        if let Some(s) = spec.cpu_shares {
            cpu["shares"] = json!(s);
        }
        if let Some(q) = spec.cpu_quota {
            cpu["quota"] = json!(q);
            cpu["period"] = json!(spec.cpu_period.unwrap_or(100_000));
        }
        resources["cpu"] = cpu;
    }
    if let Some(p) = spec.pids_limit {
        resources["pids"] = json!({"limit": p});
    }
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": spec.uid, "gid": spec.gid, "additionalGids": spec.additional_gids},
            "args": spec.args,
            "env": env,
            "cwd": if spec.cwd.is_empty() { "/" } else { &spec.cwd },
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": spec.no_new_privileges,
        },
        "root": {"path": spec.rootfs, "readonly": spec.readonly_rootfs},
        "hostname": spec.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "resources": resources,
            "cgroupsPath": spec.cgroups_path,
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standard_config_the_oci_spec_crate_reads() {
        let spec = ContainerSpec {
            args: vec!["sh".into(), "-c".into(), "echo hi".into()],
            env: vec!["A=b".into()],
            uid: 1000,
            gid: 1000,
            hostname: "web-1".into(),
            rootfs: "rootfs".into(),
            join: vec![("network".into(), "/run/skiff/sb1/net".into())],
            mounts: vec![BindMount {
                source: "/data".into(),
                destination: "/data".into(),
                readonly: true,
            }],
            cgroups_path: "skiff/pod1/c1".into(),
            memory_limit: Some(64 << 20),
            cpu_shares: Some(256),
            cpu_quota: Some(50_000),
            pids_limit: Some(64),
            ..Default::default()
        };
        let json = config_json(&spec);
        let parsed: oci_spec::runtime::Spec =
            serde_json::from_value(json.clone()).expect("valid OCI config");
        let process = parsed.process().as_ref().unwrap();
        assert_eq!(process.args().as_ref().unwrap()[2], "echo hi");
        assert_eq!(process.user().uid(), 1000);
        let env = process.env().as_ref().unwrap();
        assert!(env[0].starts_with("PATH=") && env.contains(&"A=b".to_string()));
        let linux = parsed.linux().as_ref().unwrap();
        let ns = linux.namespaces().as_ref().unwrap();
        let net = ns
            .iter()
            .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(
            net.path().as_ref().unwrap().to_str(),
            Some("/run/skiff/sb1/net")
        );
        let res = linux.resources().as_ref().unwrap();
        assert_eq!(res.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(res.pids().as_ref().unwrap().limit(), 64);
        assert_eq!(
            json["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert_eq!(
            json["mounts"][6]["options"],
            json!(["rbind", "rprivate", "ro"])
        );
    }
}
