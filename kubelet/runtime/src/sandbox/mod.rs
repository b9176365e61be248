//! Pod sandboxes: the namespaces a pod's containers share ([`namespaces`]:
//! network, UTS, IPC, pinned by bind mounts, no pause process), the pod's
//! network through CNI, and its `/etc/hosts`, `/etc/hostname`,
//! `/etc/resolv.conf` ([`files`]). State lives in `<run-dir>/<id>/state.json`,
//! so a restarted runtime finds every sandbox and its IP.
//!
//! The life of a sandbox, as the CRI drives it:
//! - run: directory and state first (not ready), then the namespaces, then
//!   CNI ADD, then the pod files, then ready. The state is on disk before
//!   anything is made, so a runtime killed half-way leaves a not-ready
//!   sandbox that list shows and remove cleans, never an invisible leak;
//!   a failure undoes everything before returning.
//! - stop: CNI DEL (the IP goes back to the pool); namespaces and files stay,
//!   as CRI wants (containers may still be inspected).
//! - remove: stop if needed, unpin the namespaces, delete the directory.
//!
//! Every step is idempotent: stop or remove twice succeeds.
//!
//! A `hostNetwork` sandbox (CRI network mode `NODE`) is the node's network
//! and hostname, as containerd makes it: only an IPC namespace of its own,
//! no CNI call ever (no ADD, DEL or CHECK, so no portmap either: its ports
//! are the node's), no IP of its own (the kubelet reports the node's),
//! `/etc/hosts` the node's file under upstream's "host network" header,
//! `/etc/hostname` the node's name. That it was made so is kept in its
//! state, so stop, remove and a restarted runtime treat it the same way.

pub mod files;
pub mod loopback;
pub mod namespaces;
#[doc(hidden)]
pub mod testnet;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cni::{Attachment, Cni, CniError, CniResult, pod_ip};
use namespaces::{Namespaces, NsPaths};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox {0} not found")]
    NotFound(String),
    #[error("sandbox {id}: {what}: {source}")]
    Io {
        id: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("sandbox {id}: network: {source}")]
    Network { id: String, source: CniError },
    #[error("sandbox id {0:?}: only letters, digits, '-' and '_'")]
    BadId(String),
    #[error("sandbox {0} already exists")]
    AlreadyExists(String),
}

/// What a sandbox is made from.
#[derive(Debug, Clone, Default)]
pub struct SandboxConfig {
    pub id: String,
    pub hostname: String,
    pub dns_servers: Vec<String>,
    pub dns_searches: Vec<String>,
    pub dns_options: Vec<String>,
    /// CNI `portMappings` runtime config (`[{hostPort, containerPort, protocol}]`).
    pub port_mappings: Vec<Value>,
    /// CNI_ARGS: `K8S_POD_NAMESPACE=…;K8S_POD_NAME=…`.
    pub cni_args: String,
    /// The node's network namespace and hostname (`hostNetwork: true`).
    pub host_network: bool,
    /// Kept as given for the CRI layer (metadata, labels, annotations).
    pub extra: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxState {
    pub id: String,
    pub hostname: String,
    pub ns: NsPaths,
    /// The pod IP (the first IPv4 of the CNI result); empty without CNI.
    pub ip: String,
    /// The result's other IPs (IPv6 on a dual-stack network).
    #[serde(default)]
    pub additional_ips: Vec<String>,
    /// True once created and until stopped (network released; namespaces
    /// kept until removal).
    pub ready: bool,
    /// CNI ADD was (or may have been) run and no DEL since: stop and remove
    /// must DEL. Set *before* ADD, so a crash during ADD is still undone.
    #[serde(default)]
    pub cni_attached: bool,
    /// The node's network and hostname: no `net`/`uts` namespace of its
    /// own and never a CNI call. Absent in older state: false.
    #[serde(default)]
    pub host_network: bool,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    pub dir: PathBuf,
    pub cni_args: String,
    pub port_mappings: Vec<Value>,
    pub extra: Value,
}

impl SandboxState {
    pub fn hosts_file(&self) -> PathBuf {
        self.dir.join("hosts")
    }
    pub fn hostname_file(&self) -> PathBuf {
        self.dir.join("hostname")
    }
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }
    /// Whether stop and remove must give the network back through CNI
    /// (`ready` alone: state written before `cni_attached` existed). Never
    /// for a host-network sandbox, which was never attached.
    pub fn needs_cni_del(&self) -> bool {
        !self.host_network && (self.cni_attached || self.ready)
    }
}

/// The node's hostname, which a sandbox given none takes (containerd's
/// rule; the kubelet gives a host-network pod none).
fn node_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

pub struct Sandboxes {
    pub run_dir: PathBuf,
    pub namespaces: Arc<dyn Namespaces>,
    /// `None`: sandboxes get no network beyond their own loopback.
    pub cni: Option<Cni>,
    /// The node's pod CIDR (CRI UpdateRuntimeConfig), handed to plugins that
    /// declare the `ipRanges` capability (host-local takes its range from
    /// it), as the CNI conventions define.
    pub pod_cidr: std::sync::RwLock<Option<String>>,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Sandboxes {
    fn io<'a>(id: &'a str, what: &'static str) -> impl Fn(std::io::Error) -> SandboxError + 'a {
        move |source| SandboxError::Io {
            id: id.to_string(),
            what,
            source,
        }
    }

    fn attachment(&self, s: &SandboxState) -> Attachment {
        Attachment {
            container_id: s.id.clone(),
            netns: s.ns.net.display().to_string(),
            ifname: "eth0".into(),
            // Plugins refuse CNI_ARGS they do not know unless told to ignore them.
            args: if s.cni_args.is_empty() || s.cni_args.contains("IgnoreUnknown=") {
                s.cni_args.clone()
            } else {
                format!("IgnoreUnknown=1;{}", s.cni_args)
            },
            runtime_config: self.runtime_config(&s.port_mappings),
        }
    }

    /// CNI `runtimeConfig`: the sandbox's port mappings and, once known,
    /// the node's pod CIDR as `ipRanges`.
    fn runtime_config<T: serde::Serialize>(&self, port_mappings: &T) -> serde_json::Value {
        let mut config = json!({"portMappings": port_mappings});
        if let Some(cidr) = self.pod_cidr() {
            config["ipRanges"] = json!([[{"subnet": cidr}]]);
        }
        config
    }

    /// The pod CIDR, once the kubelet passed it.
    pub fn pod_cidr(&self) -> Option<String> {
        self.pod_cidr.read().ok().and_then(|c| c.clone())
    }

    /// Sets the pod CIDR new sandboxes get their addresses from.
    pub fn set_pod_cidr(&self, cidr: Option<String>) {
        if let Ok(mut c) = self.pod_cidr.write() {
            *c = cidr;
        }
    }

    fn save(&self, s: &SandboxState) -> Result<(), SandboxError> {
        let path = s.dir.join("state.json");
        let tmp = s.dir.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(s).unwrap_or_default())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(Self::io(&s.id, "writing its state"))
    }

    /// Creates the namespaces, attaches the network, writes the pod files.
    /// On failure nothing is left behind.
    pub fn run(&self, config: &SandboxConfig) -> Result<SandboxState, SandboxError> {
        let id = config.id.as_str();
        if !valid_id(id) {
            return Err(SandboxError::BadId(id.into()));
        }
        let dir = self.run_dir.join(id);
        if dir.join("state.json").exists() {
            return Err(SandboxError::AlreadyExists(id.into()));
        }
        if dir.exists() {
            // A directory without state: a run that died before writing it.
            let _ = self.namespaces.remove(&NsPaths::in_dir(&dir));
            let _ = std::fs::remove_dir_all(&dir);
        }
        std::fs::create_dir_all(&dir).map_err(Self::io(id, "creating its directory"))?;
        let mut state = SandboxState {
            id: id.into(),
            // A host-network pod's UTS namespace is the node's, so its
            // /etc/hostname says the node's name whatever it was sent.
            hostname: if config.hostname.is_empty() || config.host_network {
                node_hostname()
            } else {
                config.hostname.clone()
            },
            ns: NsPaths::in_dir(&dir),
            ip: String::new(),
            additional_ips: Vec::new(),
            ready: false,
            cni_attached: false,
            host_network: config.host_network,
            created_at: jiff::Timestamp::now().as_nanosecond() as i64,
            dir: dir.clone(),
            cni_args: config.cni_args.clone(),
            port_mappings: config.port_mappings.clone(),
            extra: config.extra.clone(),
        };
        let started = std::time::Instant::now();
        match self.build(config, &mut state) {
            Ok(()) => {
                tracing::info!(
                    sandbox = id,
                    ip = %state.ip,
                    ms = started.elapsed().as_secs_f64() * 1000.0,
                    "pod sandbox ready"
                );
                Ok(state)
            }
            Err(e) => {
                if state.cni_attached
                    && let Some(cni) = &self.cni
                    && let Err(del) = cni.del(&self.attachment(&state))
                {
                    tracing::warn!(sandbox = id, error = %del, "CNI DEL after a failed run");
                }
                let _ = self.namespaces.remove(&state.ns);
                let _ = std::fs::remove_dir_all(&state.dir);
                Err(e)
            }
        }
    }

    /// The steps of [`Sandboxes::run`] after the directory exists; the
    /// caller undoes whatever `state` says was done if this fails.
    fn build(&self, config: &SandboxConfig, state: &mut SandboxState) -> Result<(), SandboxError> {
        let id = config.id.as_str();
        self.save(state)?;
        self.namespaces
            .create(&state.ns, &state.hostname, state.host_network)
            .map_err(Self::io(id, "creating its namespaces"))?;
        if let Some(cni) = self.cni.as_ref().filter(|_| !state.host_network) {
            state.cni_attached = true;
            self.save(state)?;
            let network = |source| SandboxError::Network {
                id: id.into(),
                source,
            };
            // A failed ADD undoes itself (DEL through the list).
            let result = cni.add(&self.attachment(state)).map_err(|e| {
                state.cni_attached = false;
                network(e)
            })?;
            state.ip = pod_ip(&result).map_err(network)?;
            state.additional_ips = CniResult::from_value(&result)
                .map_err(network)?
                .pod_ips()
                .into_iter()
                .filter(|ip| *ip != state.ip)
                .collect();
        }
        let hosts = if state.host_network {
            files::host_network_hosts(Path::new("/etc/hosts"))
        } else {
            files::hosts(&state.hostname, &state.ip)
        };
        std::fs::write(state.hosts_file(), hosts)
            .and_then(|()| std::fs::write(state.hostname_file(), format!("{}\n", state.hostname)))
            .and_then(|()| {
                std::fs::write(
                    state.resolv_conf(),
                    files::pod_resolv_conf(
                        &config.dns_servers,
                        &config.dns_searches,
                        &config.dns_options,
                        Path::new("/etc/resolv.conf"),
                    ),
                )
            })
            .map_err(Self::io(id, "writing its /etc files"))?;
        state.ready = true;
        self.save(state)
    }

    pub fn status(&self, id: &str) -> Result<SandboxState, SandboxError> {
        if !valid_id(id) {
            return Err(SandboxError::NotFound(id.into()));
        }
        let path = self.run_dir.join(id).join("state.json");
        let text = std::fs::read(&path).map_err(|_| SandboxError::NotFound(id.into()))?;
        let mut state: SandboxState =
            serde_json::from_slice(&text).map_err(|e| SandboxError::Io {
                id: id.into(),
                what: "reading its state",
                source: std::io::Error::other(e),
            })?;
        // Its namespaces gone (the machine rebooted): not ready, so the
        // kubelet makes the pod a new sandbox, as after a node reboot. A
        // host-network sandbox has no network namespace file to judge by:
        // its IPC one says it.
        if state.ready && !self.namespaces.pinned(state.ns.witness(state.host_network)) {
            state.ready = false;
        }
        Ok(state)
    }

    /// Every sandbox on disk, oldest first.
    pub fn list(&self) -> Vec<SandboxState> {
        let mut all: Vec<SandboxState> = std::fs::read_dir(&self.run_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| self.status(&e.file_name().to_string_lossy()).ok())
            .collect();
        all.sort_by_key(|s| s.created_at);
        all
    }

    /// Releases the network (CNI DEL); the namespaces stay until removal.
    /// Stopping a stopped sandbox succeeds (and calls nothing); a failed DEL
    /// leaves the sandbox attached, so the next stop tries again.
    pub fn stop(&self, id: &str) -> Result<(), SandboxError> {
        let mut state = self.status(id)?;
        let attached = state.needs_cni_del();
        match &self.cni {
            Some(cni) if attached => {
                cni.del(&self.attachment(&state))
                    .map_err(|source| SandboxError::Network {
                        id: id.into(),
                        source,
                    })?
            }
            None if state.cni_attached => {
                tracing::warn!(sandbox = id, "no CNI network configured to release it from");
            }
            _ => {}
        }
        if state.ready || state.cni_attached {
            state.ready = false;
            state.cni_attached = false;
            self.save(&state)?;
        }
        Ok(())
    }

    /// Stops if needed, unpins the namespaces, deletes the directory.
    /// Removing a removed sandbox succeeds.
    pub fn remove(&self, id: &str) -> Result<(), SandboxError> {
        let state = match self.status(id) {
            Ok(s) => s,
            Err(SandboxError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if state.ready || state.cni_attached {
            self.stop(id)?;
        }
        self.namespaces
            .remove(&state.ns)
            .map_err(Self::io(id, "unpinning its namespaces"))?;
        std::fs::remove_dir_all(&state.dir).map_err(Self::io(id, "deleting its directory"))
    }

    /// CNI CHECK of a ready sandbox's network.
    pub fn check(&self, id: &str) -> Result<(), SandboxError> {
        let state = self.status(id)?;
        match &self.cni {
            // The node's network is not CNI's to check.
            Some(_) if state.host_network => Ok(()),
            Some(cni) => {
                cni.check(&self.attachment(&state))
                    .map_err(|source| SandboxError::Network {
                        id: id.into(),
                        source,
                    })
            }
            None => Ok(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.run_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::NetworkList;
    use crate::cni::fake::FakeExec;
    use namespaces::FakeNamespaces;

    fn sandboxes(dir: &Path, exec: Arc<FakeExec>) -> (Sandboxes, Arc<FakeNamespaces>) {
        let ns = Arc::new(FakeNamespaces::default());
        let s = Sandboxes {
            pod_cidr: Default::default(),
            run_dir: dir.join("run"),
            namespaces: ns.clone(),
            cni: Some(Cni {
                list: NetworkList::parse(r#"{"name": "t", "plugins": [{"type": "bridge"}]}"#, "t")
                    .unwrap(),
                exec,
                cache_dir: dir.join("cni-cache"),
            }),
        };
        (s, ns)
    }

    fn config(id: &str) -> SandboxConfig {
        SandboxConfig {
            id: id.into(),
            hostname: "web-1".into(),
            dns_servers: vec!["10.96.0.10".into()],
            dns_searches: vec!["shop.svc.cluster.local".into()],
            dns_options: vec!["ndots:5".into()],
            cni_args: "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn run_stop_remove_and_find_again() {
        let dir = tempfile::tempdir().unwrap();
        let cni = Arc::new(FakeExec::new("10.244.9."));
        let (s, ns) = sandboxes(dir.path(), cni.clone());
        let state = s.run(&config("sb1")).unwrap();
        assert_eq!(state.ip, "10.244.9.2");
        assert!(state.ready && state.cni_attached);
        assert_eq!(state.ns.net, dir.path().join("run/sb1/net"));
        assert!(
            std::fs::read_to_string(state.hosts_file())
                .unwrap()
                .ends_with("10.244.9.2\tweb-1\n")
        );
        assert_eq!(
            std::fs::read_to_string(state.hostname_file()).unwrap(),
            "web-1\n"
        );
        assert_eq!(
            std::fs::read_to_string(state.resolv_conf()).unwrap(),
            "search shop.svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
        // A restarted runtime (a new Sandboxes on the same dir) finds it.
        let (again, _) = sandboxes(dir.path(), cni.clone());
        assert_eq!(again.list(), vec![state.clone()]);
        assert_eq!(again.status("sb1").unwrap(), state);
        // Same id again: refused, and the first is untouched.
        assert!(matches!(
            s.run(&config("sb1")),
            Err(SandboxError::AlreadyExists(_))
        ));
        assert_eq!(s.status("sb1").unwrap(), state);
        again.stop("sb1").unwrap();
        again.stop("sb1").unwrap();
        let stopped = s.status("sb1").unwrap();
        assert!(!stopped.ready && !stopped.cni_attached);
        assert!(stopped.ns.net.exists(), "stop keeps the namespaces");
        s.remove("sb1").unwrap();
        s.remove("sb1").unwrap();
        assert!(s.list().is_empty() && !state.dir.exists());
        assert_eq!(
            cni.seen(),
            ["ADD bridge sb1", "DEL bridge sb1"],
            "one DEL: a stopped sandbox has nothing to release"
        );
        assert_eq!(
            *ns.calls.lock().unwrap(),
            [
                format!("create {} web-1", state.ns.net.display()),
                format!("remove {}", state.ns.net.display())
            ]
        );
        assert!(matches!(s.status("sb1"), Err(SandboxError::NotFound(_))));
    }

    #[test]
    fn a_sandbox_left_half_made_is_listed_and_removed_with_a_del() {
        let dir = tempfile::tempdir().unwrap();
        let cni = Arc::new(FakeExec::new("10.244.9."));
        let (s, _) = sandboxes(dir.path(), cni.clone());
        // What a runtime killed during CNI ADD leaves on disk.
        let mut state = s.run(&config("sb3")).unwrap();
        state.ready = false;
        state.ip.clear();
        s.save(&state).unwrap();
        let (restarted, _) = sandboxes(dir.path(), cni.clone());
        let listed = restarted.list();
        assert_eq!(listed.len(), 1);
        assert!(!listed[0].ready && listed[0].cni_attached);
        restarted.remove("sb3").unwrap();
        assert_eq!(cni.seen(), ["ADD bridge sb3", "DEL bridge sb3"]);
        assert!(!state.dir.exists());
        // A directory without state (killed before writing it) is no obstacle.
        std::fs::create_dir_all(dir.path().join("run/sb4")).unwrap();
        std::fs::write(dir.path().join("run/sb4/net"), "").unwrap();
        assert!(restarted.list().is_empty());
        assert!(restarted.run(&config("sb4")).unwrap().ready);
    }

    #[test]
    fn a_host_network_sandbox_is_the_nodes_network_and_never_calls_cni() {
        let dir = tempfile::tempdir().unwrap();
        let cni = Arc::new(FakeExec::new("10.244.9."));
        let (s, ns) = sandboxes(dir.path(), cni.clone());
        // As the kubelet sends it: network mode NODE, no hostname, no DNS
        // config of its own, the pod's hostPorts.
        let host = SandboxConfig {
            hostname: String::new(),
            host_network: true,
            port_mappings: vec![json!({"hostPort": 8080, "containerPort": 8080})],
            ..config("hn1")
        };
        let state = s.run(&host).unwrap();
        assert!(state.ready && state.host_network && !state.cni_attached);
        assert_eq!(
            state.ip, "",
            "no IP of its own: the kubelet reports the node's"
        );
        assert_eq!(state.hostname, node_hostname());
        assert!(!state.hostname.is_empty());
        assert!(!state.ns.net.exists() && !state.ns.uts.exists());
        assert!(state.ns.ipc.exists(), "its own IPC namespace");
        assert!(
            std::fs::read_to_string(state.hosts_file())
                .unwrap()
                .starts_with("# Kubernetes-managed hosts file (host network).\n")
        );
        assert_eq!(
            std::fs::read_to_string(state.hostname_file()).unwrap(),
            format!("{}\n", node_hostname())
        );
        // Judged by its IPC namespace, not by a network one it never had:
        // a restarted runtime finds it ready.
        let (restarted, _) = sandboxes(dir.path(), cni.clone());
        assert_eq!(restarted.status("hn1").unwrap(), state);
        restarted.check("hn1").unwrap();
        restarted.stop("hn1").unwrap();
        assert!(!restarted.status("hn1").unwrap().ready);
        restarted.remove("hn1").unwrap();
        assert!(!state.dir.exists());
        assert!(cni.seen().is_empty(), "no CNI call: {:?}", cni.seen());
        assert_eq!(
            *ns.calls.lock().unwrap(),
            [format!("create {} (host network)", state.ns.ipc.display())]
        );
    }

    #[test]
    fn a_sandbox_whose_namespaces_are_gone_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = sandboxes(dir.path(), Arc::new(FakeExec::new("10.244.9.")));
        let pod = s.run(&config("sb5")).unwrap();
        let host = s
            .run(&SandboxConfig {
                host_network: true,
                ..config("hn2")
            })
            .unwrap();
        // What a reboot leaves: the files, no longer pins.
        std::fs::remove_file(&pod.ns.net).unwrap();
        std::fs::remove_file(&host.ns.ipc).unwrap();
        assert!(!s.status("sb5").unwrap().ready);
        assert!(!s.status("hn2").unwrap().ready);
    }

    #[test]
    fn a_failed_network_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cni = Arc::new(FakeExec::new("10.244.9."));
        cni.fail("ADD", "bridge");
        let (s, ns) = sandboxes(dir.path(), cni.clone());
        let err = s.run(&config("sb2")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("sandbox sb2: network: CNI plugin bridge ADD failed"),
            "{err}"
        );
        assert!(s.list().is_empty() && !dir.path().join("run/sb2").exists());
        assert_eq!(cni.seen(), ["ADD bridge sb2", "DEL bridge sb2"]);
        assert!(
            ns.calls
                .lock()
                .unwrap()
                .iter()
                .any(|c| c.starts_with("remove"))
        );
        assert!(matches!(
            s.run(&config("../x")),
            Err(SandboxError::BadId(_))
        ));
    }

    #[test]
    fn the_pod_cidr_goes_to_plugins_as_ip_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = sandboxes(dir.path(), Arc::new(FakeExec::new("10.244.9.")));
        let ports: Vec<u16> = vec![];
        assert_eq!(s.runtime_config(&ports), json!({"portMappings": []}));
        s.set_pod_cidr(Some("10.244.3.0/24".into()));
        assert_eq!(
            s.runtime_config(&ports),
            json!({"portMappings": [], "ipRanges": [[{"subnet": "10.244.3.0/24"}]]})
        );
        // Only plugins that declare the capability get it (host-local,
        // under a bridge that declares it, reads it as its range).
        let list = NetworkList::parse(
            r#"{"name": "t", "cniVersion": "1.0.0", "plugins": [
                {"type": "bridge", "capabilities": {"ipRanges": true}, "ipam": {"type": "host-local"}},
                {"type": "portmap", "capabilities": {"portMappings": true}}]}"#,
            "t",
        )
        .unwrap();
        let config = s.runtime_config(&ports);
        assert_eq!(
            list.plugin_input(0, None, &config)["runtimeConfig"],
            json!({"ipRanges": [[{"subnet": "10.244.3.0/24"}]]})
        );
        assert!(
            list.plugin_input(1, None, &config)["runtimeConfig"]
                .get("ipRanges")
                .is_none()
        );
    }
}
