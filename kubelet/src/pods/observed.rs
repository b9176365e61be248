//! What the runtime holds for one pod, read fresh at every sync: its
//! sandboxes and their containers, found by the pod-uid label, so a restarted
//! kubelet needs no state of its own to pick up where it was.

use skiff_proto::cri;

use crate::runtime::{Result, Runtime};

/// Labels on every sandbox and container the kubelet creates, as upstream's.
pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";

#[derive(Debug, Clone, PartialEq)]
pub struct SandboxView {
    pub id: String,
    pub ready: bool,
    pub attempt: u32,
    pub created_at: i64,
    pub ip: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerView {
    pub id: String,
    pub sandbox_id: String,
    pub name: String,
    /// Restarts before this instance (the CRI `attempt`), so the latest
    /// instance's attempt is the container's `restartCount`.
    pub attempt: u32,
    pub state: cri::ContainerState,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image_ref: String,
}

impl ContainerView {
    pub fn running(&self) -> bool {
        self.state == cri::ContainerState::ContainerRunning
    }
    pub fn exited(&self) -> bool {
        self.state == cri::ContainerState::ContainerExited
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub sandboxes: Vec<SandboxView>,
    pub containers: Vec<ContainerView>,
}

impl Observed {
    /// The newest ready sandbox: the one containers run in.
    pub fn current_sandbox(&self) -> Option<&SandboxView> {
        self.sandboxes
            .iter()
            .filter(|s| s.ready)
            .max_by_key(|s| (s.attempt, s.created_at))
    }

    /// The newest instance of container `name`, in any sandbox.
    pub fn latest(&self, name: &str) -> Option<&ContainerView> {
        self.containers
            .iter()
            .filter(|c| c.name == name)
            .max_by_key(|c| (c.attempt, c.created_at))
    }

    /// The newest instance of `name` in sandbox `sandbox_id`.
    pub fn latest_in(&self, sandbox_id: &str, name: &str) -> Option<&ContainerView> {
        self.containers
            .iter()
            .filter(|c| c.name == name && c.sandbox_id == sandbox_id)
            .max_by_key(|c| (c.attempt, c.created_at))
    }

    /// The instance before the newest one (for `lastState`).
    pub fn previous(&self, name: &str) -> Option<&ContainerView> {
        let latest = self.latest(name)?;
        self.containers
            .iter()
            .filter(|c| c.name == name && c.id != latest.id)
            .max_by_key(|c| (c.attempt, c.created_at))
    }
}

/// Reads the sandboxes and containers of the pod with `uid`.
pub async fn observe<R: Runtime>(runtime: &R, uid: &str) -> Result<Observed> {
    let mut observed = Observed::default();
    for sb in runtime.list_pod_sandboxes(&[(POD_UID, uid)]).await? {
        let status = match runtime.pod_sandbox_status(&sb.id).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        observed.sandboxes.push(SandboxView {
            id: sb.id.clone(),
            ready: status.state == cri::PodSandboxState::SandboxReady as i32,
            attempt: sb.metadata.as_ref().map_or(0, |m| m.attempt),
            created_at: sb.created_at,
            ip: status.network.map(|n| n.ip).unwrap_or_default(),
        });
        for c in runtime.list_containers(&sb.id).await? {
            let s = match runtime.container_status(&c.id).await {
                Ok(s) => s,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            let metadata = s.metadata.clone().unwrap_or_default();
            observed.containers.push(ContainerView {
                id: c.id.clone(),
                sandbox_id: sb.id.clone(),
                name: metadata.name,
                attempt: metadata.attempt,
                state: cri::ContainerState::try_from(s.state)
                    .unwrap_or(cri::ContainerState::ContainerUnknown),
                created_at: s.created_at,
                started_at: s.started_at,
                finished_at: s.finished_at,
                exit_code: s.exit_code,
                reason: s.reason,
                message: s.message,
                image_ref: s.image_ref,
            });
        }
    }
    Ok(observed)
}
