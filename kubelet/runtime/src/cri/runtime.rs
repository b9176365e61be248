//! The CRI RuntimeService: sandboxes ([`crate::sandbox`]) and containers —
//! each an overlayfs rootfs over the image's unpacked layers, a standard OCI
//! bundle ([`crate::container::spec`]), run by a detached shim process
//! ([`crate::container::shim`]) that logs in the CRI format, holds the
//! container's stdin (`stdin`, `stdinOnce`, `tty`), serves attach sessions
//! on `<dir>/attach.sock` ([`crate::container::attach`]) and records the
//! exit. Everything is on disk under the runtime's root, so a restarted
//! runtime (or kubelet) finds every container, running or exited.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use skiff_proto::cri;
use tonic::{Request, Response, Status};

use crate::container::spec::{BindMount, ContainerSpec, DEFAULT_CAPABILITIES, config_json};
use crate::image::ImageStore;
use crate::sandbox::{SandboxConfig, SandboxError, SandboxState, Sandboxes};

/// How the runtime starts its shims: `exe prefix… shim --log L --exit-file E
/// --log-max-size S --log-max-files N [--stdin] [--stdin-once] [--tty]
/// --attach-socket A -- exe prefix… run --bundle B --pid-file P ID` (the kubelet passes its own binary and `runtime`; the
/// runtime's tests pass `skiff-runtime`).
#[derive(Debug, Clone)]
pub struct ShimCommand {
    pub exe: PathBuf,
    pub prefix: Vec<String>,
    /// When the shims rotate the container logs (the kubelet's
    /// `--container-log-max-size` and `--container-log-max-files`).
    pub log_rotation: crate::container::shim::LogRotation,
}

pub struct RuntimeSvc {
    pub sandboxes: Arc<Sandboxes>,
    pub images: Arc<ImageStore>,
    /// Containers live in `<dir>/<id>/`.
    pub dir: PathBuf,
    pub shim: ShimCommand,
    /// Where `Exec`'s URLs point ([`crate::stream`]).
    pub streams: Arc<crate::stream::Streams>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Meta {
    id: String,
    sandbox_id: String,
    name: String,
    attempt: u32,
    image: String,
    image_ref: String,
    labels: HashMap<String, String>,
    annotations: HashMap<String, String>,
    log_path: String,
    created_at: i64,
    started_at: i64,
    /// The container's stdio as CreateContainer asked (absent in the
    /// meta of containers made before attach: all false).
    #[serde(default)]
    stdin: bool,
    #[serde(default)]
    stdin_once: bool,
    #[serde(default)]
    tty: bool,
}

fn now() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:016x}{:08x}{:08x}",
        now(),
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

fn sandbox_status(e: SandboxError) -> Status {
    match e {
        SandboxError::NotFound(_) => Status::not_found(e.to_string()),
        SandboxError::BadId(_) => Status::invalid_argument(e.to_string()),
        _ => Status::unavailable(e.to_string()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}

/// The state of a container from its files: exited when the shim wrote the
/// exit, running while its shim lives, created before it was started.
///
/// A container whose shim is gone without writing the exit — the machine
/// rebooted, or someone killed the shim — is exited with code 255 and
/// reason `Unknown`, as containerd reports it; the verdict is written to
/// `exit.json` so it stays the same. Without that, a kubelet started after
/// a reboot would see its containers "running" for ever.
#[derive(Debug, Clone)]
struct Observed {
    state: cri::ContainerState,
    pid: Option<i32>,
    exit: Option<Value>,
}

fn observe(dir: &Path) -> Observed {
    let exit: Option<Value> = std::fs::read(dir.join("exit.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let pid: Option<i32> = std::fs::read_to_string(dir.join("pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let started = pid.is_some() || dir.join("started").exists();
    let exit = match exit {
        None if started && shim_gone(dir, pid) => {
            let lost = serde_json::json!({
                "code": 255, "reason": "Unknown", "oomKilled": false,
                "message": "the container's shim is gone (the machine restarted, or the shim was killed)",
                "finishedAt": jiff::Timestamp::now().as_nanosecond() as i64,
            });
            let _ = std::fs::write(dir.join("exit.json"), lost.to_string());
            Some(lost)
        }
        e => e,
    };
    let state = if exit.is_some() {
        cri::ContainerState::ContainerExited
    } else if started {
        cri::ContainerState::ContainerRunning
    } else {
        cri::ContainerState::ContainerCreated
    };
    Observed { state, pid, exit }
}

/// Whether the container's shim has ended: `shim.pid` holds its pid and
/// start time (so a pid reused after a reboot is not taken for it). Older
/// containers without the file: whether their first process has ended.
fn shim_gone(dir: &Path, pid: Option<i32>) -> bool {
    use crate::container::state::proc_stat;
    let alive = |pid: i32, start: Option<u64>| matches!(proc_stat(pid), Some((s, t)) if s != 'Z' && start.is_none_or(|st| st == t));
    match std::fs::read_to_string(dir.join("shim.pid")) {
        Ok(text) => {
            let mut words = text.split_whitespace();
            let shim: Option<i32> = words.next().and_then(|w| w.parse().ok());
            let start: Option<u64> = words.next().and_then(|w| w.parse().ok());
            !shim.is_some_and(|p| alive(p, start))
        }
        Err(_) => pid.is_some_and(|p| !alive(p, None)),
    }
}

impl RuntimeSvc {
    /// The host PID of running container `id`'s first process; exec goes
    /// into its namespaces.
    fn running_pid(&self, id: &str) -> Result<i32, Status> {
        let o = observe(&self.container_dir(id)?);
        match (o.pid, o.exit) {
            (Some(pid), None) => Ok(pid),
            _ => Err(Status::failed_precondition(format!(
                "container {id} is not running"
            ))),
        }
    }

    fn container_dir(&self, id: &str) -> Result<PathBuf, Status> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Status::not_found(format!("container {id:?} not found")));
        }
        let d = self.dir.join(id);
        if d.join("meta.json").exists() {
            Ok(d)
        } else {
            Err(Status::not_found(format!("container {id} not found")))
        }
    }

    fn meta(dir: &Path) -> Result<Meta, Status> {
        let b = std::fs::read(dir.join("meta.json")).map_err(internal)?;
        serde_json::from_slice(&b).map_err(internal)
    }

    fn all(&self) -> Vec<(PathBuf, Meta)> {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Self::meta(&e.path()).ok().map(|m| (e.path(), m)))
            .collect()
    }

    /// The directories of sandbox `id`'s containers.
    fn containers_of(&self, id: &str) -> Vec<PathBuf> {
        self.all()
            .into_iter()
            .filter(|(_, m)| m.sandbox_id == id)
            .map(|(d, _)| d)
            .collect()
    }

    /// SIGTERM, then SIGKILL after `timeout`; returns when the shim recorded the exit.
    fn stop_blocking(dir: &Path, timeout: Duration) {
        use nix::sys::signal::{Signal, kill};
        let o = observe(dir);
        let Some(pid) = o.pid.filter(|_| o.exit.is_none()) else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = kill(
            pid,
            if timeout.is_zero() {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            },
        );
        let deadline = Instant::now() + timeout;
        let mut killed = timeout.is_zero();
        let give_up = Instant::now() + timeout + Duration::from_secs(10);
        while observe(dir).exit.is_none() && Instant::now() < give_up {
            if !killed && Instant::now() >= deadline {
                let _ = kill(pid, Signal::SIGKILL);
                killed = true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn remove_blocking(dir: &Path) {
        Self::stop_blocking(dir, Duration::ZERO);
        let rootfs = dir.join("bundle/rootfs");
        let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn status_of(dir: &Path, meta: &Meta) -> cri::ContainerStatus {
        let o = observe(dir);
        let exit = o.exit.clone().unwrap_or(Value::Null);
        cri::ContainerStatus {
            id: meta.id.clone(),
            metadata: Some(cri::ContainerMetadata {
                name: meta.name.clone(),
                attempt: meta.attempt,
            }),
            state: o.state as i32,
            created_at: meta.created_at,
            started_at: meta.started_at,
            finished_at: exit["finishedAt"].as_i64().unwrap_or(0),
            exit_code: exit["code"].as_i64().unwrap_or(0) as i32,
            image: Some(cri::ImageSpec {
                image: meta.image.clone(),
                ..Default::default()
            }),
            image_ref: meta.image_ref.clone(),
            reason: exit["reason"].as_str().unwrap_or_default().to_string(),
            labels: meta.labels.clone(),
            annotations: meta.annotations.clone(),
            log_path: meta.log_path.clone(),
            image_id: meta.image_ref.clone(),
            ..Default::default()
        }
    }
}

fn sandbox_view(
    s: &SandboxState,
) -> (
    cri::PodSandboxMetadata,
    HashMap<String, String>,
    HashMap<String, String>,
) {
    let metadata =
        serde_json::from_value::<Value>(s.extra["metadata"].clone()).unwrap_or(Value::Null);
    let md = cri::PodSandboxMetadata {
        name: metadata["name"].as_str().unwrap_or_default().into(),
        uid: metadata["uid"].as_str().unwrap_or_default().into(),
        namespace: metadata["namespace"].as_str().unwrap_or_default().into(),
        attempt: metadata["attempt"].as_u64().unwrap_or(0) as u32,
    };
    let map = |v: &Value| -> HashMap<String, String> {
        serde_json::from_value(v.clone()).unwrap_or_default()
    };
    (md, map(&s.extra["labels"]), map(&s.extra["annotations"]))
}

fn state_of(s: &SandboxState) -> cri::PodSandboxState {
    if s.ready {
        cri::PodSandboxState::SandboxReady
    } else {
        cri::PodSandboxState::SandboxNotready
    }
}

/// Whether the kubelet asked for the node's network (`hostNetwork: true`):
/// CRI network mode `NODE`. CRI has no UTS mode; as containerd, the node's
/// network brings the node's UTS namespace with it.
fn host_network(config: &cri::PodSandboxConfig) -> bool {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .is_some_and(|n| n.network == cri::NamespaceMode::Node as i32)
}

/// A container's namespaces from its sandbox: those to join by file, and
/// those it shares with the node (left out of its OCI spec).
fn container_namespaces(s: &SandboxState) -> (Vec<(String, String)>, Vec<String>) {
    let file = |p: &Path| p.display().to_string();
    if s.host_network {
        (
            vec![("ipc".into(), file(&s.ns.ipc))],
            vec!["network".into(), "uts".into()],
        )
    } else {
        (
            vec![
                ("network".into(), file(&s.ns.net)),
                ("uts".into(), file(&s.ns.uts)),
                ("ipc".into(), file(&s.ns.ipc)),
            ],
            vec![],
        )
    }
}

fn labels_match(have: &HashMap<String, String>, want: &HashMap<String, String>) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// argv as Kubernetes defines it: `command` replaces the Entrypoint, `args`
/// the Cmd; the Cmd is dropped when only `command` is given.
pub fn argv(
    entrypoint: &[String],
    cmd: &[String],
    command: &[String],
    args: &[String],
) -> Vec<String> {
    match (command.is_empty(), args.is_empty()) {
        (false, _) => command.iter().chain(args).cloned().collect(),
        (true, false) => entrypoint.iter().chain(args).cloned().collect(),
        (true, true) => entrypoint.iter().chain(cmd).cloned().collect(),
    }
}

#[tonic::async_trait]
impl cri::runtime_service_server::RuntimeService for RuntimeSvc {
    async fn version(
        &self,
        _r: Request<cri::VersionRequest>,
    ) -> Result<Response<cri::VersionResponse>, Status> {
        Ok(Response::new(cri::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "skiff".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        }))
    }

    async fn update_runtime_config(
        &self,
        r: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<cri::UpdateRuntimeConfigResponse>, Status> {
        let cidr = r
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .filter(|c| !c.is_empty());
        if let Some(c) = &cidr {
            // A typo here would give every new pod a bad address: refuse it.
            let valid = c.split_once('/').is_some_and(|(ip, len)| {
                ip.parse::<std::net::IpAddr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 128)
            });
            if !valid {
                return Err(Status::invalid_argument(format!(
                    "pod CIDR {c:?}: not a CIDR"
                )));
            }
        }
        tracing::info!(pod_cidr = ?cidr, "pod CIDR for new sandboxes");
        self.sandboxes.set_pod_cidr(cidr);
        Ok(Response::new(cri::UpdateRuntimeConfigResponse {}))
    }

    async fn status(
        &self,
        _r: Request<cri::StatusRequest>,
    ) -> Result<Response<cri::StatusResponse>, Status> {
        let root = nix::unistd::geteuid().is_root();
        // A network whose addresses come from the node's pod CIDR (a plugin
        // declares `ipRanges`) is not ready before the kubelet passes it —
        // as upstream's kubenet said "lack of PodCIDR" — so no pod gets an
        // address outside its node's block.
        let (network, why) = match &self.sandboxes.cni {
            None => (false, "no CNI network configuration".to_string()),
            Some(cni) if cni.list.wants_ip_ranges() && self.sandboxes.pod_cidr().is_none() => (
                false,
                format!(
                    "CNI network {:?} takes pod addresses from the node's pod CIDR, which is not known yet",
                    cni.list.name
                ),
            ),
            Some(_) => (true, String::new()),
        };
        Ok(Response::new(cri::StatusResponse {
            status: Some(cri::RuntimeStatus {
                conditions: vec![
                    cri::RuntimeCondition {
                        r#type: "RuntimeReady".into(),
                        status: root,
                        reason: if root {
                            String::new()
                        } else {
                            "NotRoot".into()
                        },
                        message: if root {
                            String::new()
                        } else {
                            "the embedded runtime needs root (namespaces, mounts, cgroups)".into()
                        },
                    },
                    cri::RuntimeCondition {
                        r#type: "NetworkReady".into(),
                        status: network,
                        reason: if network {
                            String::new()
                        } else {
                            "NetworkPluginNotReady".into()
                        },
                        message: why,
                    },
                ],
            }),
            info: Default::default(),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        r: Request<cri::RunPodSandboxRequest>,
    ) -> Result<Response<cri::RunPodSandboxResponse>, Status> {
        let config = r
            .into_inner()
            .config
            .ok_or_else(|| Status::invalid_argument("no sandbox config"))?;
        let host_network = host_network(&config);
        let ns_options = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref());
        let userns = super::userns::mappings(ns_options)?;
        if userns.is_some()
            && ns_options.is_some_and(|n| n.network == cri::NamespaceMode::Node as i32)
        {
            return Err(Status::invalid_argument(
                "a pod in a user namespace cannot use the node's network",
            ));
        }
        let md = config.metadata.clone().unwrap_or_default();
        let id = new_id();
        let dns = config.dns_config.clone().unwrap_or_default();
        let sandbox = SandboxConfig {
            id: id.clone(),
            hostname: config.hostname.clone(),
            dns_servers: dns.servers,
            dns_searches: dns.searches,
            dns_options: dns.options,
            port_mappings: config
                .port_mappings
                .iter()
                .map(|p| {
                    json!({"hostPort": p.host_port, "containerPort": p.container_port, "hostIP": p.host_ip,
                           "protocol": cri::Protocol::try_from(p.protocol).unwrap_or(cri::Protocol::Tcp).as_str_name().to_lowercase()})
                })
                .collect(),
            cni_args: format!(
                "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={id};K8S_POD_UID={}",
                md.namespace, md.name, md.uid
            ),
            extra: json!({
                "metadata": {"name": md.name, "uid": md.uid, "namespace": md.namespace, "attempt": md.attempt},
                "labels": config.labels, "annotations": config.annotations,
                "logDirectory": config.log_directory,
                "cgroupParent": config.linux.as_ref().map(|l| l.cgroup_parent.clone()).unwrap_or_default(),
            }),
            host_network,
        };
        let sandboxes = self.sandboxes.clone();
        let state = blocking(move || sandboxes.run(&sandbox).map_err(sandbox_status)).await?;
        if userns.is_some() {
            // Root in the containers' user namespaces is not root over this
            // network namespace: let it bind low ports (see cri/userns.rs).
            if let Err(e) = super::userns::allow_low_ports(&state.ns.net) {
                let _ = self.sandboxes.remove(&id);
                return Err(internal(format!(
                    "sandbox {id}: ip_unprivileged_port_start: {e}"
                )));
            }
        }
        Ok(Response::new(cri::RunPodSandboxResponse {
            pod_sandbox_id: id,
        }))
    }

    async fn stop_pod_sandbox(
        &self,
        r: Request<cri::StopPodSandboxRequest>,
    ) -> Result<Response<cri::StopPodSandboxResponse>, Status> {
        let id = r.into_inner().pod_sandbox_id;
        let dirs = self.containers_of(&id);
        let sandboxes = self.sandboxes.clone();
        blocking(move || {
            for d in dirs {
                RuntimeSvc::stop_blocking(&d, Duration::ZERO);
            }
            match sandboxes.stop(&id) {
                Ok(()) | Err(SandboxError::NotFound(_)) => Ok(()),
                Err(e) => Err(sandbox_status(e)),
            }
        })
        .await?;
        Ok(Response::new(cri::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        r: Request<cri::RemovePodSandboxRequest>,
    ) -> Result<Response<cri::RemovePodSandboxResponse>, Status> {
        let id = r.into_inner().pod_sandbox_id;
        let dirs = self.containers_of(&id);
        let sandboxes = self.sandboxes.clone();
        blocking(move || {
            for d in dirs {
                RuntimeSvc::remove_blocking(&d);
            }
            sandboxes.remove(&id).map_err(sandbox_status)
        })
        .await?;
        Ok(Response::new(cri::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        r: Request<cri::PodSandboxStatusRequest>,
    ) -> Result<Response<cri::PodSandboxStatusResponse>, Status> {
        let s = self
            .sandboxes
            .status(&r.into_inner().pod_sandbox_id)
            .map_err(sandbox_status)?;
        let (metadata, labels, annotations) = sandbox_view(&s);
        let path = |p: &Path| p.display().to_string();
        Ok(Response::new(cri::PodSandboxStatusResponse {
            status: Some(cri::PodSandboxStatus {
                id: s.id.clone(),
                metadata: Some(metadata),
                state: state_of(&s) as i32,
                created_at: s.created_at,
                // Empty for a host-network sandbox, as containerd's: the
                // kubelet reports the node's IP for it.
                network: Some(cri::PodSandboxNetworkStatus {
                    ip: s.ip.clone(),
                    additional_ips: vec![],
                }),
                linux: Some(cri::LinuxPodSandboxStatus {
                    namespaces: Some(cri::Namespace {
                        options: Some(cri::NamespaceOption {
                            network: if s.host_network {
                                cri::NamespaceMode::Node
                            } else {
                                cri::NamespaceMode::Pod
                            } as i32,
                            pid: cri::NamespaceMode::Container as i32,
                            ipc: cri::NamespaceMode::Pod as i32,
                            ..Default::default()
                        }),
                    }),
                }),
                labels,
                annotations,
                runtime_handler: String::new(),
            }),
            info: HashMap::from([(
                "namespaces".to_string(),
                if s.host_network {
                    json!({"network": "host", "uts": "host", "ipc": path(&s.ns.ipc)})
                } else {
                    json!({"network": path(&s.ns.net), "uts": path(&s.ns.uts), "ipc": path(&s.ns.ipc)})
                }
                .to_string(),
            )]),
        }))
    }

    async fn list_pod_sandbox(
        &self,
        r: Request<cri::ListPodSandboxRequest>,
    ) -> Result<Response<cri::ListPodSandboxResponse>, Status> {
        let filter = r.into_inner().filter.unwrap_or_default();
        let items = self
            .sandboxes
            .list()
            .iter()
            .filter(|s| filter.id.is_empty() || s.id == filter.id)
            .filter(|s| {
                filter
                    .state
                    .as_ref()
                    .is_none_or(|f| f.state == state_of(s) as i32)
            })
            .filter_map(|s| {
                let (metadata, labels, annotations) = sandbox_view(s);
                labels_match(&labels, &filter.label_selector).then(|| cri::PodSandbox {
                    id: s.id.clone(),
                    metadata: Some(metadata),
                    state: state_of(s) as i32,
                    created_at: s.created_at,
                    labels,
                    annotations,
                    runtime_handler: String::new(),
                })
            })
            .collect();
        Ok(Response::new(cri::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        r: Request<cri::CreateContainerRequest>,
    ) -> Result<Response<cri::CreateContainerResponse>, Status> {
        let r = r.into_inner();
        let config = r
            .config
            .ok_or_else(|| Status::invalid_argument("no container config"))?;
        let sandbox = self
            .sandboxes
            .status(&r.pod_sandbox_id)
            .map_err(sandbox_status)?;
        let image = config.image.clone().map(|i| i.image).unwrap_or_default();
        let images = self.images.clone();
        let image_name = image.clone();
        let prepared =
            blocking(move || images.prepare(&image_name).map_err(super::status_of)).await?;
        if prepared.lower_dirs.is_empty() {
            return Err(Status::failed_precondition(format!(
                "image {image} has no layers"
            )));
        }
        let id = new_id();
        let dir = self.dir.join(&id);
        let md = config.metadata.clone().unwrap_or_default();
        let linux = config.linux.clone().unwrap_or_default();
        let sc = linux.security_context.clone().unwrap_or_default();
        let res = linux.resources.clone().unwrap_or_default();
        let userns = super::userns::mappings(sc.namespace_options.as_ref())?;
        let ic = &prepared.config;
        // Environment: the image's, then the container's (later wins).
        let mut env: Vec<String> = ic.env.clone();
        for kv in &config.envs {
            env.retain(|e| e.split('=').next() != Some(kv.key.as_str()));
            env.push(format!("{}={}", kv.key, kv.value));
        }
        let image_user = ic.user.clone().unwrap_or_default();
        let mut ids = image_user.split(':').map(|s| s.parse::<u32>().ok());
        let (image_uid, image_gid) = (ids.next().flatten(), ids.next().flatten());
        let uid = sc
            .run_as_user
            .map(|v| v.value as u32)
            .or(image_uid)
            .unwrap_or(0);
        let gid = sc
            .run_as_group
            .map(|v| v.value as u32)
            .or(image_gid)
            .unwrap_or(0);
        let caps = sc.capabilities.clone().unwrap_or_default();
        let mut capabilities: Vec<String> =
            DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
        let norm = |c: &str| {
            if c.starts_with("CAP_") {
                c.to_string()
            } else {
                format!("CAP_{c}")
            }
        };
        for add in &caps.add_capabilities {
            let add = norm(add);
            if !capabilities.contains(&add) {
                capabilities.push(add);
            }
        }
        let drops: Vec<String> = caps.drop_capabilities.iter().map(|c| norm(c)).collect();
        if drops.iter().any(|d| d == "CAP_ALL") {
            capabilities.clear();
        }
        capabilities.retain(|c| !drops.contains(c));
        let mut mounts: Vec<BindMount> = config
            .mounts
            .iter()
            .map(|m| BindMount {
                source: m.host_path.clone(),
                destination: m.container_path.clone(),
                readonly: m.readonly,
            })
            .collect();
        for (file, dest) in [
            (sandbox.hosts_file(), "/etc/hosts"),
            (sandbox.hostname_file(), "/etc/hostname"),
            (sandbox.resolv_conf(), "/etc/resolv.conf"),
        ] {
            if !mounts.iter().any(|m| m.destination == dest) {
                mounts.push(BindMount {
                    source: file.display().to_string(),
                    destination: dest.into(),
                    readonly: false,
                });
            }
        }
        let (join, host) = container_namespaces(&sandbox);
        let parent = sandbox.extra["cgroupParent"]
            .as_str()
            .filter(|p| !p.is_empty())
            .unwrap_or("skiff");
        let spec = ContainerSpec {
            args: argv(&ic.entrypoint, &ic.cmd, &config.command, &config.args),
            env,
            cwd: if config.working_dir.is_empty() {
                ic.working_dir.clone().unwrap_or_default()
            } else {
                config.working_dir.clone()
            },
            uid,
            gid,
            additional_gids: sc.supplemental_groups.iter().map(|g| *g as u32).collect(),
            capabilities,
            no_new_privileges: sc.no_new_privs,
            hostname: sandbox.hostname.clone(),
            rootfs: "rootfs".into(),
            readonly_rootfs: sc.readonly_rootfs,
            join,
            host,
            mounts,
            cgroups_path: format!("{parent}/{id}"),
            memory_limit: (res.memory_limit_in_bytes > 0).then_some(res.memory_limit_in_bytes),
            cpu_shares: (res.cpu_shares > 0).then_some(res.cpu_shares as u64),
            cpu_quota: (res.cpu_quota > 0).then_some(res.cpu_quota),
            cpu_period: (res.cpu_period > 0).then_some(res.cpu_period as u64),
            pids_limit: res.unified.get("pids.max").and_then(|v| v.parse().ok()),
            terminal: config.tty,
            user_namespace: userns.clone(),
        };
        if spec.args.is_empty() {
            return Err(Status::invalid_argument(
                "no command: the image has no Entrypoint or Cmd and none was given",
            ));
        }
        let log_dir = sandbox.extra["logDirectory"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let log_path = if log_dir.is_empty() || config.log_path.is_empty() {
            dir.join("container.log").display().to_string()
        } else {
            Path::new(&log_dir)
                .join(&config.log_path)
                .display()
                .to_string()
        };
        let meta = Meta {
            id: id.clone(),
            sandbox_id: sandbox.id.clone(),
            name: md.name,
            attempt: md.attempt,
            image: image.clone(),
            image_ref: prepared.image.id.to_string(),
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
            log_path,
            created_at: now(),
            started_at: 0,
            stdin: config.stdin,
            stdin_once: config.stdin && config.stdin_once,
            tty: config.tty,
        };
        let overlay = crate::container::bundle::Overlay {
            lowerdirs: prepared.lower_dirs.clone(),
            upperdir: dir.join("upper"),
            workdir: dir.join("work"),
            // In a user namespace the layers are seen idmapped.
            idmap: userns,
        };
        blocking(move || {
            overlay
                .mount(&dir.join("bundle/rootfs"))
                .map_err(|e| internal(format!("overlay rootfs: {e}")))?;
            std::fs::write(
                dir.join("bundle/config.json"),
                config_json(&spec).to_string(),
            )
            .map_err(internal)?;
            std::fs::write(
                dir.join("meta.json"),
                serde_json::to_vec(&meta).unwrap_or_default(),
            )
            .map_err(internal)
        })
        .await?;
        Ok(Response::new(cri::CreateContainerResponse {
            container_id: id,
        }))
    }

    async fn start_container(
        &self,
        r: Request<cri::StartContainerRequest>,
    ) -> Result<Response<cri::StartContainerResponse>, Status> {
        let id = r.into_inner().container_id;
        let dir = self.container_dir(&id)?;
        let mut meta = Self::meta(&dir)?;
        if observe(&dir).state != cri::ContainerState::ContainerCreated {
            return Err(Status::failed_precondition(format!(
                "container {id} was already started"
            )));
        }
        let s = &self.shim;
        let mut cmd = Command::new(&s.exe);
        cmd.args(&s.prefix)
            .arg("shim")
            .arg("--log")
            .arg(&meta.log_path)
            .arg("--exit-file")
            .arg(dir.join("exit.json"))
            .arg(format!("--log-max-size={}", s.log_rotation.max_size))
            .arg(format!("--log-max-files={}", s.log_rotation.max_files))
            .args(meta.stdin.then_some("--stdin"))
            .args(meta.stdin_once.then_some("--stdin-once"))
            .args(meta.tty.then_some("--tty"))
            .arg("--attach-socket")
            .arg(dir.join(crate::container::attach::SOCKET))
            .arg("--")
            .arg(&s.exe)
            .args(&s.prefix)
            .args(["run", "--bundle"])
            .arg(dir.join("bundle"))
            .arg("--pid-file")
            .arg(dir.join("pid"))
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: the kubelet's Ctrl-C does not reach it.
            .process_group(0);
        use std::os::unix::process::CommandExt;
        let mut child = cmd
            .spawn()
            .map_err(|e| internal(format!("start the shim: {e}")))?;
        let shim = child.id() as i32;
        let start = crate::container::state::proc_stat(shim).map_or(0, |(_, t)| t);
        std::fs::write(dir.join("shim.pid"), format!("{shim} {start}")).map_err(internal)?;
        // Reap the shim when it ends (while this process lives).
        std::thread::spawn(move || child.wait());
        std::fs::write(dir.join("started"), b"").map_err(internal)?;
        meta.started_at = now();
        std::fs::write(
            dir.join("meta.json"),
            serde_json::to_vec(&meta).unwrap_or_default(),
        )
        .map_err(internal)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while observe(&dir).pid.is_none()
            && observe(&dir).exit.is_none()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(Response::new(cri::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        r: Request<cri::StopContainerRequest>,
    ) -> Result<Response<cri::StopContainerResponse>, Status> {
        let r = r.into_inner();
        let dir = self.container_dir(&r.container_id)?;
        let timeout = Duration::from_secs(r.timeout.max(0) as u64);
        blocking(move || {
            RuntimeSvc::stop_blocking(&dir, timeout);
            Ok(())
        })
        .await?;
        Ok(Response::new(cri::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        r: Request<cri::RemoveContainerRequest>,
    ) -> Result<Response<cri::RemoveContainerResponse>, Status> {
        let id = r.into_inner().container_id;
        // Idempotent: a container that is gone is removed.
        let Ok(dir) = self.container_dir(&id) else {
            return Ok(Response::new(cri::RemoveContainerResponse {}));
        };
        blocking(move || {
            RuntimeSvc::remove_blocking(&dir);
            Ok(())
        })
        .await?;
        Ok(Response::new(cri::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        r: Request<cri::ListContainersRequest>,
    ) -> Result<Response<cri::ListContainersResponse>, Status> {
        let f = r.into_inner().filter.unwrap_or_default();
        let containers = self
            .all()
            .into_iter()
            .filter(|(_, m)| f.id.is_empty() || m.id == f.id)
            .filter(|(_, m)| f.pod_sandbox_id.is_empty() || m.sandbox_id == f.pod_sandbox_id)
            .filter(|(_, m)| labels_match(&m.labels, &f.label_selector))
            .map(|(d, m)| (observe(&d).state, m))
            .filter(|(s, _)| f.state.as_ref().is_none_or(|w| w.state == *s as i32))
            .map(|(state, m)| cri::Container {
                id: m.id.clone(),
                pod_sandbox_id: m.sandbox_id.clone(),
                metadata: Some(cri::ContainerMetadata {
                    name: m.name.clone(),
                    attempt: m.attempt,
                }),
                image: Some(cri::ImageSpec {
                    image: m.image.clone(),
                    ..Default::default()
                }),
                image_ref: m.image_ref.clone(),
                state: state as i32,
                created_at: m.created_at,
                labels: m.labels.clone(),
                annotations: m.annotations.clone(),
                image_id: m.image_ref.clone(),
            })
            .collect();
        Ok(Response::new(cri::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        r: Request<cri::ContainerStatusRequest>,
    ) -> Result<Response<cri::ContainerStatusResponse>, Status> {
        let dir = self.container_dir(&r.into_inner().container_id)?;
        let meta = Self::meta(&dir)?;
        Ok(Response::new(cri::ContainerStatusResponse {
            status: Some(Self::status_of(&dir, &meta)),
            info: Default::default(),
        }))
    }

    async fn exec_sync(
        &self,
        r: Request<cri::ExecSyncRequest>,
    ) -> Result<Response<cri::ExecSyncResponse>, Status> {
        let r = r.into_inner();
        let pid = self.running_pid(&r.container_id)?;
        if r.cmd.is_empty() {
            return Err(Status::invalid_argument("no command"));
        }
        let mut cmd = crate::stream::process::command(pid, &r.cmd, false);
        cmd.stdin(Stdio::null());
        let run = cmd.output();
        let out = if r.timeout > 0 {
            tokio::time::timeout(Duration::from_secs(r.timeout as u64), run)
                .await
                .map_err(|_| {
                    Status::deadline_exceeded(format!("command timed out after {}s", r.timeout))
                })?
        } else {
            run.await
        }
        .map_err(internal)?;
        const CAP: usize = 16 << 20;
        let cap = |mut v: Vec<u8>| {
            v.truncate(CAP);
            v
        };
        Ok(Response::new(cri::ExecSyncResponse {
            stdout: cap(out.stdout),
            stderr: cap(out.stderr),
            exit_code: crate::stream::process::exit_code(out.status),
        }))
    }

    async fn exec(
        &self,
        r: Request<cri::ExecRequest>,
    ) -> Result<Response<cri::ExecResponse>, Status> {
        let r = r.into_inner();
        let pid = self.running_pid(&r.container_id)?;
        if r.cmd.is_empty() {
            return Err(Status::invalid_argument("no command"));
        }
        if r.tty && r.stderr {
            return Err(Status::invalid_argument(
                "tty and stderr cannot both be true: a terminal has one output",
            ));
        }
        if !(r.stdin || r.stdout || r.stderr) {
            return Err(Status::invalid_argument(
                "one of stdin, stdout or stderr must be streamed",
            ));
        }
        let url = self.streams.exec_url(crate::stream::ExecParams {
            pid,
            cmd: r.cmd,
            tty: r.tty,
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
        });
        Ok(Response::new(cri::ExecResponse { url }))
    }

    async fn attach(
        &self,
        r: Request<cri::AttachRequest>,
    ) -> Result<Response<cri::AttachResponse>, Status> {
        let r = r.into_inner();
        self.running_pid(&r.container_id)?;
        let dir = self.container_dir(&r.container_id)?;
        let meta = Self::meta(&dir)?;
        let options = attach_options(&r, &meta)?;
        let socket = dir.join(crate::container::attach::SOCKET);
        if !socket.exists() {
            return Err(Status::failed_precondition(format!(
                "container {} was started by a shim that cannot be attached to; restart it",
                r.container_id
            )));
        }
        let url = self
            .streams
            .attach_url(crate::stream::AttachParams { socket, options });
        Ok(Response::new(cri::AttachResponse { url }))
    }
}

/// The streams an attach gets: what it asked for that the container has.
/// The container's own `tty` decides (kubectl asks for what the pod spec
/// says): a terminal has one output, so no stderr; stdin only if the
/// container was made with one.
fn attach_options(
    r: &cri::AttachRequest,
    meta: &Meta,
) -> Result<crate::container::attach::AttachOptions, Status> {
    if r.tty && r.stderr {
        return Err(Status::invalid_argument(
            "tty and stderr cannot both be true: a terminal has one output",
        ));
    }
    if !(r.stdin || r.stdout || r.stderr) {
        return Err(Status::invalid_argument(
            "one of stdin, stdout or stderr must be streamed",
        ));
    }
    Ok(crate::container::attach::AttachOptions {
        stdin: r.stdin && meta.stdin,
        stdout: r.stdout,
        stderr: r.stderr && !meta.tty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_gets_the_streams_the_container_has() {
        let ask = |stdin, stdout, stderr, tty| cri::AttachRequest {
            container_id: "c".into(),
            stdin,
            stdout,
            stderr,
            tty,
        };
        let piped = Meta {
            stdin: true,
            ..Default::default()
        };
        let o = attach_options(&ask(true, true, true, false), &piped).unwrap();
        assert!(o.stdin && o.stdout && o.stderr);
        // No stdin in the container: the client's input goes nowhere.
        let o = attach_options(&ask(true, true, true, false), &Meta::default()).unwrap();
        assert!(!o.stdin && o.stdout && o.stderr);
        // A terminal: one output.
        let tty = Meta {
            stdin: true,
            tty: true,
            ..Default::default()
        };
        let o = attach_options(&ask(true, true, true, false), &tty).unwrap();
        assert!(o.stdin && o.stdout && !o.stderr);
        let e = attach_options(&ask(true, true, true, true), &tty).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = attach_options(&ask(false, false, false, false), &tty).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn a_container_whose_shim_is_gone_has_exited_unknown_and_stays_so() {
        let d = tempfile::tempdir().unwrap();
        let dead = {
            let mut c = std::process::Command::new("true").spawn().unwrap();
            let pid = c.id();
            c.wait().unwrap();
            pid
        };
        std::fs::write(d.path().join("started"), "").unwrap();
        std::fs::write(d.path().join("pid"), dead.to_string()).unwrap();
        // Its shim is this test process, with its real start time: running.
        let me = std::process::id() as i32;
        let start = crate::container::state::proc_stat(me).unwrap().1;
        std::fs::write(d.path().join("shim.pid"), format!("{me} {start}")).unwrap();
        assert_eq!(
            observe(d.path()).state,
            cri::ContainerState::ContainerRunning
        );
        // The same pid with another start time is someone else (a reboot).
        std::fs::write(d.path().join("shim.pid"), format!("{me} {}", start + 1)).unwrap();
        let o = observe(d.path());
        assert_eq!(o.state, cri::ContainerState::ContainerExited);
        let exit = o.exit.unwrap();
        assert_eq!(
            (exit["code"].as_i64(), exit["reason"].as_str()),
            (Some(255), Some("Unknown"))
        );
        // Written down: the verdict does not change, whatever comes next.
        std::fs::write(d.path().join("shim.pid"), format!("{me} {start}")).unwrap();
        assert_eq!(
            observe(d.path()).exit.unwrap()["finishedAt"],
            exit["finishedAt"]
        );
        // No shim file (a container from before): its first process decides.
        let old = tempfile::tempdir().unwrap();
        std::fs::write(old.path().join("pid"), dead.to_string()).unwrap();
        assert_eq!(
            observe(old.path()).state,
            cri::ContainerState::ContainerExited
        );
        std::fs::remove_file(old.path().join("exit.json")).unwrap();
        std::fs::write(old.path().join("pid"), me.to_string()).unwrap();
        assert_eq!(
            observe(old.path()).state,
            cri::ContainerState::ContainerRunning
        );
    }

    #[test]
    fn network_mode_node_is_the_nodes_network_and_uts() {
        let with = |mode: Option<cri::NamespaceMode>| cri::PodSandboxConfig {
            linux: Some(cri::LinuxPodSandboxConfig {
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: mode.map(|m| cri::NamespaceOption {
                        network: m as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(host_network(&with(Some(cri::NamespaceMode::Node))));
        assert!(!host_network(&with(Some(cri::NamespaceMode::Pod))));
        assert!(!host_network(&with(None)));
        assert!(!host_network(&cri::PodSandboxConfig::default()));

        let dir = Path::new("/run/sb");
        let state = |host_network| SandboxState {
            id: "sb".into(),
            hostname: "h".into(),
            ns: crate::sandbox::namespaces::NsPaths::in_dir(dir),
            ip: String::new(),
            additional_ips: vec![],
            ready: true,
            cni_attached: false,
            host_network,
            created_at: 0,
            dir: dir.into(),
            cni_args: String::new(),
            port_mappings: vec![],
            extra: Value::Null,
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (join, host) = container_namespaces(&state(true));
        assert_eq!(join, [("ipc".to_string(), "/run/sb/ipc".to_string())]);
        assert_eq!(host, s(&["network", "uts"]));
        let (join, host) = container_namespaces(&state(false));
        assert_eq!(
            join.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["network", "uts", "ipc"]
        );
        assert!(host.is_empty());
    }

    #[test]
    fn argv_as_kubernetes_defines_it() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (ep, cmd) = (s(&["httpd", "-f"]), s(&["-p", "80"]));
        assert_eq!(argv(&ep, &cmd, &[], &[]), s(&["httpd", "-f", "-p", "80"]));
        assert_eq!(
            argv(&ep, &cmd, &[], &s(&["-p", "8080"])),
            s(&["httpd", "-f", "-p", "8080"])
        );
        assert_eq!(argv(&ep, &cmd, &s(&["sh"]), &[]), s(&["sh"]));
        assert_eq!(
            argv(&ep, &cmd, &s(&["sh"]), &s(&["-c", "x"])),
            s(&["sh", "-c", "x"])
        );
    }
}
