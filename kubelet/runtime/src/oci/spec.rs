//! A container's OCI runtime `config.json`, from what the CRI layer knows
//! ([`ContainerConfig`]): command already resolved against the image,
//! environment, user, capabilities (Kubernetes' default set with adds and
//! drops), hostname, the sandbox's namespaces to join, bind mounts, the
//! rootfs, and resources. The rest is what runc's and containerd's defaults
//! give every container: `/proc`, a tmpfs `/dev` with `/dev/pts`,
//! `/dev/shm`, `/dev/mqueue`, read-only `/sys` and `/sys/fs/cgroup`, masked
//! and read-only kernel paths, every device denied but the defaults.
//!
//! The result is a standard [`Spec`] (the `oci-spec` crate): `runc run`
//! takes the same bundle, which the differential test does.

use std::path::Path;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilities, LinuxCpuBuilder,
    LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, Process, Root, Spec, User,
};

use super::SpecError;
use crate::linux::userns::Mappings;

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

/// Paths hidden from containers (runc's defaults).
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

/// Paths containers may read but not write (runc's defaults).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A host path shown in the container (a volume, the pod's /etc/hosts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindMount {
    pub source: String,
    pub destination: String,
    pub readonly: bool,
}

/// A container, as the runtime is asked to make it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerConfig {
    /// The command and its arguments, already resolved against the image's
    /// Entrypoint and Cmd.
    pub args: Vec<String>,
    /// `NAME=value`; a default `PATH` is added when missing.
    pub env: Vec<String>,
    /// Empty means `/`.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The base capability set (`CAP_…` or bare names); empty means
    /// [`DEFAULT_CAPABILITIES`].
    pub capabilities: Vec<String>,
    /// Added to the base set (Kubernetes' `capabilities.add`).
    pub add_capabilities: Vec<String>,
    /// Removed from it; `ALL` removes every one (`capabilities.drop`).
    pub drop_capabilities: Vec<String>,
    pub no_new_privileges: bool,
    /// Set only when the container has its own UTS namespace.
    pub hostname: String,
    /// The rootfs, relative to the bundle or absolute.
    pub rootfs: String,
    pub readonly_rootfs: bool,
    /// Namespace files to join, by OCI type (`network`, `uts`, `ipc`, `pid`);
    /// the others are new, except those in `host`.
    pub join: Vec<(String, String)>,
    /// Namespaces the container shares with the runtime's own process (the
    /// node's: a `hostNetwork` pod's `network` and `uts`). OCI says so by
    /// leaving them out of `linux.namespaces`.
    pub host: Vec<String>,
    pub mounts: Vec<BindMount>,
    /// The cgroup: absolute from the hierarchy's root, or relative to the
    /// runtime's own cgroup (as runc reads it).
    pub cgroups_path: String,
    /// Bytes; memory+swap is set to the same, so no swap beyond it.
    pub memory_limit: Option<i64>,
    pub cpu_shares: Option<u64>,
    /// Microseconds per `cpu_period` (default 100 000).
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub pids_limit: Option<i64>,
    /// `process.terminal`: stdin is a terminal (the shim's, with a TTY)
    /// that becomes the process's controlling terminal.
    pub terminal: bool,
    /// A new user namespace with these mappings (`hostUsers: false`): OCI
    /// `user` in `linux.namespaces`, `linux.uidMappings`/`gidMappings`.
    pub user_namespace: Option<Mappings>,
}

fn capability(name: &str) -> Result<Capability, SpecError> {
    let bare = name.trim_start_matches("CAP_").to_ascii_uppercase();
    bare.parse::<Capability>()
        .map_err(|_| SpecError::Config(format!("unknown capability {name:?}")))
}

/// The capability set: the base (or the default), plus adds, minus drops.
pub fn capabilities(c: &ContainerConfig) -> Result<Capabilities, SpecError> {
    let base: Vec<&str> = if c.capabilities.is_empty() {
        DEFAULT_CAPABILITIES.to_vec()
    } else {
        c.capabilities.iter().map(String::as_str).collect()
    };
    let mut set = Capabilities::new();
    for name in base
        .into_iter()
        .chain(c.add_capabilities.iter().map(String::as_str))
    {
        set.insert(capability(name)?);
    }
    for name in &c.drop_capabilities {
        if name.eq_ignore_ascii_case("ALL") || name.eq_ignore_ascii_case("CAP_ALL") {
            set.clear();
        } else {
            set.remove(&capability(name)?);
        }
    }
    // Drop ALL then add X means "only X", as in Kubernetes.
    if c.drop_capabilities
        .iter()
        .any(|d| d.eq_ignore_ascii_case("ALL"))
    {
        for name in &c.add_capabilities {
            set.insert(capability(name)?);
        }
    }
    Ok(set)
}

fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ(kind)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(|e| SpecError::Config(e.to_string()))
}

/// The standard mounts every container gets, then the binds asked for.
fn mounts(c: &ContainerConfig) -> Result<Vec<Mount>, SpecError> {
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ];
    for m in &c.mounts {
        if !m.destination.starts_with('/') {
            return Err(SpecError::Config(format!(
                "mount destination {:?} is not absolute",
                m.destination
            )));
        }
        let mut options = vec!["rbind", "rprivate"];
        if m.readonly {
            options.push("ro");
        }
        out.push(mount(&m.destination, "bind", &m.source, &options)?);
    }
    Ok(out)
}

fn ns_type(name: &str) -> Result<LinuxNamespaceType, SpecError> {
    LinuxNamespaceType::try_from(name).map_err(|e| SpecError::Config(e.to_string()))
}

/// Bounding, effective and permitted; no inheritable or ambient ones
/// (containerd's choice since CVE-2022-24769: exec'd programs gain nothing).
/// Set field by field: the crate's defaults would add inheritable and
/// ambient capabilities.
fn process_capabilities(caps: Capabilities) -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(caps.clone()))
        .set_effective(Some(caps.clone()))
        .set_permitted(Some(caps))
        .set_inheritable(None)
        .set_ambient(None);
    c
}

/// The standard OCI spec for `c`.
pub fn build(c: &ContainerConfig) -> Result<Spec, SpecError> {
    let err = |e: oci_spec::OciSpecError| SpecError::Config(e.to_string());
    if c.args.is_empty() {
        return Err(SpecError::Config("no command".into()));
    }
    let caps = capabilities(c)?;
    let mut env = c.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={}", crate::linux::process::DEFAULT_PATH));
    }
    let mut user = User::default();
    user.set_uid(c.uid);
    user.set_gid(c.gid);
    if !c.additional_gids.is_empty() {
        user.set_additional_gids(Some(c.additional_gids.clone()));
    }
    let mut process = Process::default();
    process
        .set_terminal(Some(c.terminal))
        .set_user(user)
        .set_args(Some(c.args.clone()))
        .set_env(Some(env))
        .set_cwd(if c.cwd.is_empty() { "/" } else { &c.cwd }.into())
        .set_capabilities(Some(process_capabilities(caps)))
        .set_rlimits(None)
        .set_no_new_privileges(Some(c.no_new_privileges));

    let mut namespaces = Vec::new();
    let host: Vec<LinuxNamespaceType> = c
        .host
        .iter()
        .map(|k| match ns_type(k)? {
            // A container always gets its own mount namespace: pivot_root
            // in the host's would move the host.
            LinuxNamespaceType::Mount => Err(SpecError::Config(format!(
                "cannot share the host's {k} namespace"
            ))),
            t => Ok(t),
        })
        .collect::<Result<_, _>>()?;
    for kind in ["pid", "ipc", "uts", "mount", "network"] {
        let t = ns_type(kind)?;
        if host.contains(&t) {
            continue;
        }
        let b = LinuxNamespaceBuilder::default().typ(t);
        let joined = c.join.iter().find(|(k, _)| ns_type(k).ok() == Some(t));
        namespaces.push(match joined {
            Some((_, path)) => b.path(path).build().map_err(err)?,
            None => b.build().map_err(err)?,
        });
    }
    for (k, _) in &c.join {
        if !["pid", "ipc", "uts", "mount", "mnt", "network", "net"].contains(&k.as_str()) {
            return Err(SpecError::Config(format!("cannot join a {k} namespace")));
        }
    }
    let uts_is_new =
        !c.join.iter().any(|(k, _)| k == "uts") && !host.contains(&LinuxNamespaceType::Uts);

    let mut resources = LinuxResourcesBuilder::default().devices(vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .map_err(err)?,
    ]);
    if let Some(limit) = c.memory_limit.filter(|l| *l > 0) {
        resources = resources.memory(
            LinuxMemoryBuilder::default()
                .limit(limit)
                .swap(limit)
                .build()
                .map_err(err)?,
        );
    }
    if c.cpu_shares.is_some() || c.cpu_quota.is_some() {
        let mut cpu = LinuxCpuBuilder::default();
        if let Some(s) = c.cpu_shares {
            cpu = cpu.shares(s);
        }
        if let Some(q) = c.cpu_quota.filter(|q| *q > 0) {
            cpu = cpu.quota(q).period(c.cpu_period.unwrap_or(100_000));
        }
        resources = resources.cpu(cpu.build().map_err(err)?);
    }
    if let Some(p) = c.pids_limit.filter(|p| *p > 0) {
        resources = resources.pids(LinuxPidsBuilder::default().limit(p).build().map_err(err)?);
    }
    if let Some(m) = &c.user_namespace {
        for maps in [&m.uids, &m.gids] {
            crate::linux::userns::validate(maps).map_err(|e| SpecError::Config(e.to_string()))?;
        }
        // First, as runc lists it: the others are made inside it.
        namespaces.insert(
            0,
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::User)
                .build()
                .map_err(err)?,
        );
    }
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources.build().map_err(err)?)
        .masked_paths(MASKED_PATHS.map(String::from).to_vec())
        .readonly_paths(READONLY_PATHS.map(String::from).to_vec())
        .build()
        .map_err(err)?;
    if !c.cgroups_path.is_empty() {
        linux.set_cgroups_path(Some(c.cgroups_path.clone().into()));
    }
    if let Some(m) = &c.user_namespace {
        let oci =
            |maps: &[crate::linux::userns::IdMapping]| maps.iter().map(|m| m.to_oci()).collect();
        linux.set_uid_mappings(Some(oci(&m.uids)));
        linux.set_gid_mappings(Some(oci(&m.gids)));
    }

    let mut root = Root::default();
    root.set_path(
        if c.rootfs.is_empty() {
            "rootfs"
        } else {
            &c.rootfs
        }
        .into(),
    );
    root.set_readonly(Some(c.readonly_rootfs));

    let mut spec = Spec::default();
    spec.set_version("1.0.2".into())
        .set_root(Some(root))
        .set_mounts(Some(mounts(c)?))
        .set_process(Some(process))
        .set_hostname((uts_is_new && !c.hostname.is_empty()).then(|| c.hostname.clone()))
        .set_annotations(None)
        .set_linux(Some(linux));
    Ok(spec)
}

/// Writes `spec` as `bundle/config.json` (atomically: a reader never sees
/// half a file).
pub fn write(bundle: &Path, spec: &Spec) -> Result<(), SpecError> {
    let path = bundle.join("config.json");
    let io = |source| SpecError::Io {
        path: path.clone(),
        source,
    };
    let text = serde_json::to_vec_pretty(spec).map_err(|e| io(e.into()))?;
    let tmp = bundle.join(".config.json.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// [`build`] as JSON (for callers that write the file themselves).
pub fn config_json(c: &ContainerConfig) -> serde_json::Value {
    build(c)
        .and_then(|s| serde_json::to_value(s).map_err(|e| SpecError::Config(e.to_string())))
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ContainerConfig {
        ContainerConfig {
            args: vec!["sh".into(), "-c".into(), "echo hi".into()],
            env: vec!["A=b".into()],
            hostname: "web-1".into(),
            rootfs: "rootfs".into(),
            ..Default::default()
        }
    }

    fn names(set: &Capabilities) -> Vec<String> {
        let mut v: Vec<String> = set.iter().map(|c| format!("CAP_{c}")).collect();
        v.sort();
        v
    }

    #[test]
    fn capability_sets_table() {
        let mut default: Vec<String> = DEFAULT_CAPABILITIES.map(String::from).to_vec();
        default.sort();
        type Case<'a> = (
            &'a str,
            Vec<&'a str>,
            Vec<&'a str>,
            Vec<&'a str>,
            Vec<&'a str>,
        );
        let cases: Vec<Case> = vec![
            // (name, base, add, drop, expected; empty expected = the default)
            ("default", vec![], vec![], vec![], vec![]),
            (
                "add",
                vec![],
                vec!["NET_ADMIN"],
                vec![],
                vec!["+CAP_NET_ADMIN"],
            ),
            (
                "drop",
                vec![],
                vec![],
                vec!["CAP_KILL", "mknod"],
                vec!["-CAP_KILL", "-CAP_MKNOD"],
            ),
            (
                "drop all add one",
                vec![],
                vec!["NET_BIND_SERVICE"],
                vec!["ALL"],
                vec!["=CAP_NET_BIND_SERVICE"],
            ),
            (
                "explicit base",
                vec!["CAP_CHOWN"],
                vec![],
                vec![],
                vec!["=CAP_CHOWN"],
            ),
        ];
        for (name, base_caps, add, drop, expected) in cases {
            let c = ContainerConfig {
                capabilities: base_caps.iter().map(|s| s.to_string()).collect(),
                add_capabilities: add.iter().map(|s| s.to_string()).collect(),
                drop_capabilities: drop.iter().map(|s| s.to_string()).collect(),
                ..base()
            };
            let got = names(&capabilities(&c).unwrap());
            let mut want = default.clone();
            for e in expected {
                match e.split_at(1) {
                    ("+", n) => want.push(n.into()),
                    ("-", n) => want.retain(|w| w != n),
                    ("=", n) => want = vec![n.into()],
                    _ => unreachable!(),
                }
            }
            want.sort();
            assert_eq!(got, want, "{name}");
        }
        let bad = ContainerConfig {
            add_capabilities: vec!["CAP_FLY".into()],
            ..base()
        };
        assert!(matches!(capabilities(&bad), Err(SpecError::Config(_))));
    }

    #[test]
    fn a_standard_spec_round_trips_through_config_json() {
        let c = ContainerConfig {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![5],
            no_new_privileges: true,
            join: vec![("network".into(), "/run/skiff/sb1/net".into())],
            mounts: vec![
                BindMount {
                    source: "/data".into(),
                    destination: "/data".into(),
                    readonly: true,
                },
                BindMount {
                    source: "/run/sb1/hosts".into(),
                    destination: "/etc/hosts".into(),
                    readonly: false,
                },
            ],
            cgroups_path: "/skiff/pod1/c1".into(),
            memory_limit: Some(64 << 20),
            cpu_shares: Some(256),
            cpu_quota: Some(50_000),
            pids_limit: Some(64),
            readonly_rootfs: true,
            ..base()
        };
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &build(&c).unwrap()).unwrap();
        let spec = crate::oci::load(dir.path()).unwrap();
        assert_eq!(
            crate::oci::rootfs(dir.path(), &spec),
            dir.path().join("rootfs")
        );
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap()[2], "echo hi");
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[5][..]));
        assert_eq!(p.no_new_privileges(), Some(true));
        assert!(p.rlimits().is_none());
        let env = p.env().as_ref().unwrap();
        assert!(env[0].starts_with("PATH=") && env.contains(&"A=b".to_string()));
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
        assert_eq!(caps.effective(), caps.permitted());
        assert!(caps.inheritable().is_none() && caps.ambient().is_none());
        assert_eq!(spec.hostname().as_deref(), Some("web-1"));
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));

        let linux = spec.linux().as_ref().unwrap();
        let ns: Vec<(LinuxNamespaceType, Option<String>)> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| (n.typ(), n.path().as_ref().map(|p| p.display().to_string())))
            .collect();
        assert_eq!(
            ns,
            [
                (LinuxNamespaceType::Pid, None),
                (LinuxNamespaceType::Ipc, None),
                (LinuxNamespaceType::Uts, None),
                (LinuxNamespaceType::Mount, None),
                (
                    LinuxNamespaceType::Network,
                    Some("/run/skiff/sb1/net".into())
                ),
            ]
        );
        let r = linux.resources().as_ref().unwrap();
        assert_eq!(r.memory().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.memory().unwrap().swap(), Some(64 << 20));
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(256));
        assert_eq!(r.cpu().as_ref().unwrap().period(), Some(100_000));
        assert_eq!(r.pids().unwrap().limit(), 64);
        assert_eq!(r.devices().as_ref().unwrap()[0].to_string(), "a *:* rwm");
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/skiff/pod1/c1"))
        );
        assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 10);
        assert_eq!(linux.readonly_paths().as_ref().unwrap().len(), 5);

        let mounts = spec.mounts().as_ref().unwrap();
        let dests: Vec<String> = mounts
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup",
                "/data",
                "/etc/hosts"
            ]
        );
        assert_eq!(
            mounts[7].options().as_deref().unwrap(),
            ["rbind", "rprivate", "ro"]
        );
        assert_eq!(
            mounts[8].options().as_deref().unwrap(),
            ["rbind", "rprivate"]
        );
    }

    #[test]
    fn a_user_namespace_is_listed_first_with_its_mappings() {
        let c = ContainerConfig {
            join: vec![("network".into(), "/run/sb/net".into())],
            user_namespace: Some(Mappings::pod(65536 * 2)),
            ..base()
        };
        let json = serde_json::to_value(build(&c).unwrap()).unwrap();
        let linux = &json["linux"];
        assert_eq!(linux["namespaces"][0], serde_json::json!({"type": "user"}));
        assert_eq!(linux["namespaces"].as_array().unwrap().len(), 6);
        let map = serde_json::json!([{"containerID": 0, "hostID": 131072, "size": 65536}]);
        assert_eq!(linux["uidMappings"], map);
        assert_eq!(linux["gidMappings"], map);
        // Without one: no user entry, no mappings.
        let json = serde_json::to_value(build(&base()).unwrap()).unwrap();
        assert!(json["linux"].get("uidMappings").is_none());
        assert!(
            !json["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "user")
        );
        // Mappings the kernel would refuse are refused here.
        let empty = ContainerConfig {
            user_namespace: Some(Mappings::default()),
            ..base()
        };
        assert!(build(&empty).is_err());
    }

    #[test]
    fn table_of_smaller_choices() {
        // (what, config, check)
        type Check = fn(&Spec) -> bool;
        let cases: Vec<(&str, ContainerConfig, Check)> = vec![
            (
                "a joined UTS namespace gets no hostname (runc refuses one)",
                ContainerConfig {
                    join: vec![("uts".into(), "/run/sb/uts".into())],
                    ..base()
                },
                |s| s.hostname().is_none(),
            ),
            (
                "no limits, no resource entries but the device rule",
                base(),
                |s| {
                    let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
                    r.memory().is_none() && r.cpu().is_none() && r.pids().is_none()
                },
            ),
            ("an empty cwd is /", base(), |s| {
                s.process().as_ref().unwrap().cwd() == Path::new("/")
            }),
            (
                "a PATH given is kept, not doubled",
                ContainerConfig {
                    env: vec!["PATH=/x".into()],
                    ..base()
                },
                |s| s.process().as_ref().unwrap().env().as_deref() == Some(&["PATH=/x".into()][..]),
            ),
            (
                "the host's network and UTS (hostNetwork): left out of the list, no hostname",
                ContainerConfig {
                    join: vec![("ipc".into(), "/run/sb/ipc".into())],
                    host: vec!["network".into(), "uts".into()],
                    ..base()
                },
                |s| {
                    let kinds: Vec<(LinuxNamespaceType, bool)> = s
                        .linux()
                        .as_ref()
                        .unwrap()
                        .namespaces()
                        .as_ref()
                        .unwrap()
                        .iter()
                        .map(|n| (n.typ(), n.path().is_some()))
                        .collect();
                    s.hostname().is_none()
                        && kinds
                            == [
                                (LinuxNamespaceType::Pid, false),
                                (LinuxNamespaceType::Ipc, true),
                                (LinuxNamespaceType::Mount, false),
                            ]
                },
            ),
            (
                "shares alone make no quota",
                ContainerConfig {
                    cpu_shares: Some(2),
                    ..base()
                },
                |s| {
                    let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
                    let cpu = r.cpu().as_ref().unwrap();
                    cpu.shares() == Some(2) && cpu.quota().is_none()
                },
            ),
        ];
        for (what, c, check) in cases {
            assert!(check(&build(&c).unwrap()), "{what}");
        }
        for bad in [
            ContainerConfig {
                args: vec![],
                ..base()
            },
            ContainerConfig {
                join: vec![("user".into(), "/x".into())],
                ..base()
            },
            ContainerConfig {
                host: vec!["mount".into()],
                ..base()
            },
            ContainerConfig {
                mounts: vec![BindMount {
                    source: "/a".into(),
                    destination: "rel".into(),
                    readonly: false,
                }],
                ..base()
            },
        ] {
            assert!(build(&bad).is_err(), "{bad:?}");
        }
    }
}
