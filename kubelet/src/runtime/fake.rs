//! An in-memory runtime for tests of the pod logic: sandboxes get IPs,
//! containers run until the test makes them exit, images are present or not,
//! pulls can be made to fail, and every call is recorded in order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use skiff_proto::cri;

use super::{Result, Runtime, RuntimeError};

#[derive(Debug, Clone)]
struct Sandbox {
    config: cri::PodSandboxConfig,
    ready: bool,
    created_at: i64,
    ip: String,
}

#[derive(Debug, Clone)]
struct Container {
    sandbox: String,
    config: cri::ContainerConfig,
    state: cri::ContainerState,
    created_at: i64,
    started_at: i64,
    finished_at: i64,
    exit_code: i32,
    reason: String,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    clock: i64,
    sandboxes: BTreeMap<String, Sandbox>,
    containers: BTreeMap<String, Container>,
    images: BTreeMap<String, String>,
    failing_pulls: HashMap<String, String>,
    /// Exit codes exec probes get, by container name (absent: 0).
    exec_exit: HashMap<String, i32>,
}

#[derive(Debug, Default)]
pub struct FakeRuntime {
    state: Mutex<State>,
    calls: Mutex<Vec<String>>,
}

fn not_found(what: &str) -> RuntimeError {
    RuntimeError::Call(tonic::Status::not_found(format!("{what} not found")))
}

impl FakeRuntime {
    /// A runtime with `images` already present.
    pub fn with_images(images: &[&str]) -> FakeRuntime {
        let f = FakeRuntime::default();
        for i in images {
            f.add_image(i);
        }
        f
    }

    pub fn add_image(&self, image: &str) {
        let mut s = self.state.lock().unwrap();
        let id = format!("sha256:{:064x}", s.images.len() + 1);
        s.images.insert(image.to_string(), id);
    }

    /// Pulls of `image` fail with `message` until [`FakeRuntime::add_image`].
    pub fn fail_pulls(&self, image: &str, message: &str) {
        let mut s = self.state.lock().unwrap();
        s.failing_pulls.insert(image.into(), message.into());
    }

    /// Commands run in containers named `name` exit with `code` from now on.
    pub fn set_exec_exit(&self, name: &str, code: i32) {
        let mut s = self.state.lock().unwrap();
        s.exec_exit.insert(name.into(), code);
    }

    /// Every call so far, as `verb target` strings.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    /// The running container named `name` exits with `code` (`reason` as the
    /// runtime reports it: "Completed", "Error", "OOMKilled").
    pub fn exit(&self, name: &str, code: i32, reason: &str) -> bool {
        let mut s = self.state.lock().unwrap();
        let now = tick(&mut s);
        let running = s.containers.values_mut().find(|c| {
            c.config.metadata.as_ref().is_some_and(|m| m.name == name)
                && c.state == cri::ContainerState::ContainerRunning
        });
        match running {
            Some(c) => {
                c.state = cri::ContainerState::ContainerExited;
                c.exit_code = code;
                c.finished_at = now;
                c.reason = reason.into();
                true
            }
            None => false,
        }
    }

    /// How many containers (of any state) are named `name`.
    pub fn instances(&self, name: &str) -> usize {
        let s = self.state.lock().unwrap();
        s.containers
            .values()
            .filter(|c| c.config.metadata.as_ref().is_some_and(|m| m.name == name))
            .count()
    }

    pub fn running(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.containers
            .values()
            .filter(|c| c.state == cri::ContainerState::ContainerRunning)
            .filter_map(|c| c.config.metadata.as_ref().map(|m| m.name.clone()))
            .collect()
    }

    pub fn sandbox_count(&self) -> usize {
        self.state.lock().unwrap().sandboxes.len()
    }

    /// The config the container named `name` was last created with.
    pub fn config_of(&self, name: &str) -> Option<cri::ContainerConfig> {
        let s = self.state.lock().unwrap();
        s.containers
            .values()
            .rev()
            .find(|c| c.config.metadata.as_ref().is_some_and(|m| m.name == name))
            .map(|c| c.config.clone())
    }
}

/// The wall clock in nanoseconds (the kubelet times back-off against it),
/// made strictly increasing so events keep their order.
fn tick(s: &mut State) -> i64 {
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    s.clock = now.max(s.clock + 1);
    s.clock
}

impl Runtime for FakeRuntime {
    async fn update_runtime_config(&self, pod_cidr: &str) -> Result<()> {
        self.record(format!("UpdateRuntimeConfig {pod_cidr}"));
        Ok(())
    }

    async fn exec(&self, request: cri::ExecRequest) -> Result<String> {
        let s = self.state.lock().unwrap();
        let c = s
            .containers
            .get(&request.container_id)
            .ok_or_else(|| not_found(&request.container_id))?;
        if c.state != cri::ContainerState::ContainerRunning {
            return Err(RuntimeError::Call(tonic::Status::failed_precondition(
                format!("container {} is not running", request.container_id),
            )));
        }
        self.record(format!(
            "Exec {} {}",
            request.container_id,
            request.cmd.join(" ")
        ));
        // Nothing listens there: the fake has no streaming server.
        Ok(format!("http://127.0.0.1:9/exec/{}", request.container_id))
    }

    async fn attach(&self, request: cri::AttachRequest) -> Result<String> {
        let s = self.state.lock().unwrap();
        let c = s
            .containers
            .get(&request.container_id)
            .ok_or_else(|| not_found(&request.container_id))?;
        if c.state != cri::ContainerState::ContainerRunning {
            return Err(RuntimeError::Call(tonic::Status::failed_precondition(
                format!("container {} is not running", request.container_id),
            )));
        }
        self.record(format!("Attach {}", request.container_id));
        // Nothing listens there: the fake has no streaming server.
        Ok(format!(
            "http://127.0.0.1:9/attach/{}",
            request.container_id
        ))
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        _timeout_seconds: i64,
    ) -> Result<cri::ExecSyncResponse> {
        let s = self.state.lock().unwrap();
        let c = s.containers.get(id).ok_or_else(|| not_found(id))?;
        let name = c
            .config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        self.record(format!("ExecSync {name} {}", cmd.join(" ")));
        if c.state != cri::ContainerState::ContainerRunning {
            return Err(RuntimeError::Call(tonic::Status::failed_precondition(
                format!("container {id} is not running"),
            )));
        }
        let code = s.exec_exit.get(&name).copied().unwrap_or(0);
        Ok(cri::ExecSyncResponse {
            stdout: Vec::new(),
            stderr: if code == 0 {
                Vec::new()
            } else {
                b"probe failed\n".to_vec()
            },
            exit_code: code,
        })
    }

    async fn status(&self) -> Result<cri::RuntimeStatus> {
        let ok = |t: &str| cri::RuntimeCondition {
            r#type: t.into(),
            status: true,
            ..Default::default()
        };
        Ok(cri::RuntimeStatus {
            conditions: vec![ok("RuntimeReady"), ok("NetworkReady")],
        })
    }

    async fn run_pod_sandbox(&self, config: cri::PodSandboxConfig) -> Result<String> {
        let mut s = self.state.lock().unwrap();
        s.next += 1;
        let id = format!("sb{}", s.next);
        let created_at = tick(&mut s);
        let ip = format!("10.244.0.{}", s.next);
        self.record(format!("RunPodSandbox {id}"));
        s.sandboxes.insert(
            id.clone(),
            Sandbox {
                config,
                ready: true,
                created_at,
                ip,
            },
        );
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        self.record(format!("StopPodSandbox {id}"));
        let now = tick(&mut s);
        for c in s.containers.values_mut().filter(|c| c.sandbox == id) {
            if c.state == cri::ContainerState::ContainerRunning {
                c.state = cri::ContainerState::ContainerExited;
                c.exit_code = 137;
                c.finished_at = now;
                c.reason = "Error".into();
            }
        }
        if let Some(sb) = s.sandboxes.get_mut(id) {
            sb.ready = false;
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        self.record(format!("RemovePodSandbox {id}"));
        s.containers.retain(|_, c| c.sandbox != id);
        s.sandboxes.remove(id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<cri::PodSandboxStatus> {
        let s = self.state.lock().unwrap();
        let sb = s.sandboxes.get(id).ok_or_else(|| not_found(id))?;
        Ok(cri::PodSandboxStatus {
            id: id.into(),
            metadata: sb.config.metadata.clone(),
            state: if sb.ready {
                cri::PodSandboxState::SandboxReady
            } else {
                cri::PodSandboxState::SandboxNotready
            } as i32,
            created_at: sb.created_at,
            network: Some(cri::PodSandboxNetworkStatus {
                ip: sb.ip.clone(),
                additional_ips: vec![],
            }),
            labels: sb.config.labels.clone(),
            annotations: sb.config.annotations.clone(),
            ..Default::default()
        })
    }

    async fn list_pod_sandboxes(&self, labels: &[(&str, &str)]) -> Result<Vec<cri::PodSandbox>> {
        let s = self.state.lock().unwrap();
        Ok(s.sandboxes
            .iter()
            .filter(|(_, sb)| {
                labels
                    .iter()
                    .all(|(k, v)| sb.config.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(id, sb)| cri::PodSandbox {
                id: id.clone(),
                metadata: sb.config.metadata.clone(),
                state: if sb.ready {
                    cri::PodSandboxState::SandboxReady
                } else {
                    cri::PodSandboxState::SandboxNotready
                } as i32,
                created_at: sb.created_at,
                labels: sb.config.labels.clone(),
                annotations: sb.config.annotations.clone(),
                runtime_handler: String::new(),
            })
            .collect())
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: cri::ContainerConfig,
        _sandbox_config: cri::PodSandboxConfig,
    ) -> Result<String> {
        let mut s = self.state.lock().unwrap();
        if !s.sandboxes.contains_key(sandbox_id) {
            return Err(not_found(sandbox_id));
        }
        s.next += 1;
        let id = format!("c{}", s.next);
        let name = config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        self.record(format!("CreateContainer {name}"));
        let created_at = tick(&mut s);
        s.containers.insert(
            id.clone(),
            Container {
                sandbox: sandbox_id.into(),
                config,
                state: cri::ContainerState::ContainerCreated,
                created_at,
                started_at: 0,
                finished_at: 0,
                exit_code: 0,
                reason: String::new(),
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        let now = tick(&mut s);
        let c = s.containers.get_mut(id).ok_or_else(|| not_found(id))?;
        let name = c
            .config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        c.state = cri::ContainerState::ContainerRunning;
        c.started_at = now;
        self.record(format!("StartContainer {name}"));
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout_seconds: i64) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        let now = tick(&mut s);
        let c = s.containers.get_mut(id).ok_or_else(|| not_found(id))?;
        let name = c
            .config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        if c.state == cri::ContainerState::ContainerRunning {
            c.state = cri::ContainerState::ContainerExited;
            // As if SIGTERM ended it.
            c.exit_code = 143;
            c.finished_at = now;
            c.reason = "Error".into();
        }
        self.record(format!("StopContainer {name} {timeout_seconds}"));
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        if let Some(c) = s.containers.remove(id) {
            let name = c
                .config
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            self.record(format!("RemoveContainer {name}"));
        }
        Ok(())
    }

    async fn list_containers(&self, sandbox_id: &str) -> Result<Vec<cri::Container>> {
        let s = self.state.lock().unwrap();
        Ok(s.containers
            .iter()
            // An empty filter is every container, as the CRI has it.
            .filter(|(_, c)| sandbox_id.is_empty() || c.sandbox == sandbox_id)
            .map(|(id, c)| cri::Container {
                id: id.clone(),
                pod_sandbox_id: c.sandbox.clone(),
                metadata: c.config.metadata.clone(),
                image: c.config.image.clone(),
                state: c.state as i32,
                created_at: c.created_at,
                labels: c.config.labels.clone(),
                annotations: c.config.annotations.clone(),
                ..Default::default()
            })
            .collect())
    }

    async fn container_status(&self, id: &str) -> Result<cri::ContainerStatus> {
        let s = self.state.lock().unwrap();
        let c = s.containers.get(id).ok_or_else(|| not_found(id))?;
        let image = c
            .config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        Ok(cri::ContainerStatus {
            id: id.into(),
            metadata: c.config.metadata.clone(),
            state: c.state as i32,
            created_at: c.created_at,
            started_at: c.started_at,
            finished_at: c.finished_at,
            exit_code: c.exit_code,
            image: c.config.image.clone(),
            image_ref: s.images.get(&image).cloned().unwrap_or_default(),
            reason: c.reason.clone(),
            labels: c.config.labels.clone(),
            annotations: c.config.annotations.clone(),
            ..Default::default()
        })
    }

    async fn list_images(&self) -> Result<Vec<cri::Image>> {
        let s = self.state.lock().unwrap();
        Ok(s.images
            .iter()
            .map(|(name, id)| cri::Image {
                id: id.clone(),
                repo_tags: vec![name.clone()],
                size: 1 << 20,
                ..Default::default()
            })
            .collect())
    }

    async fn image_status(&self, image: &str) -> Result<Option<cri::Image>> {
        let s = self.state.lock().unwrap();
        Ok(s.images.get(image).map(|id| cri::Image {
            id: id.clone(),
            repo_tags: vec![image.into()],
            size: 1,
            ..Default::default()
        }))
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        self.record(format!("RemoveImage {image}"));
        let mut s = self.state.lock().unwrap();
        s.images.retain(|name, id| name != image && id != image);
        Ok(())
    }

    async fn pull_image(&self, image: &str, _auth: Option<cri::AuthConfig>) -> Result<String> {
        self.record(format!("PullImage {image}"));
        let message = self.state.lock().unwrap().failing_pulls.get(image).cloned();
        if let Some(message) = message {
            return Err(RuntimeError::Call(tonic::Status::unavailable(message)));
        }
        self.add_image(image);
        let s = self.state.lock().unwrap();
        Ok(s.images[image].clone())
    }
}
