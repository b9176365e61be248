//! Helpers for the end-to-end tests in `tests/`: a real `skiff-apiserver`
//! (in-process, embedded store, HTTPS with its generated admin kubeconfig), a
//! real `skiff-controller-manager` (in-process, talking to it over HTTPS with
//! that kubeconfig), a fake node that marks pods Running and Ready through
//! the status subresource the way a kubelet would, and the real `kubectl`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(clap::Parser)]
struct ApiServerArgs {
    #[command(flatten)]
    config: skiff_apiserver::Config,
}

/// A running API server and controller manager.
pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    apiserver: Option<skiff_apiserver::Running>,
    controller_manager: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    kubectl_cache: tempfile::TempDir,
}

/// What a kubectl run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `cmd` to its end with `input` on its stdin (none: closed).
    pub fn of(mut cmd: Command, input: Option<&str>) -> Run {
        use std::io::Write;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_program()));
        let mut stdin = child.stdin.take().unwrap();
        if let Some(input) = input {
            stdin.write_all(input.as_bytes()).unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "kubectl failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stdout
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestCluster {
    /// Starts the API server, then the controller manager.
    pub async fn start() -> TestCluster {
        let mut cluster = Self::start_apiserver().await;
        cluster.start_controller_manager();
        cluster
    }

    /// Starts only the API server.
    pub async fn start_apiserver() -> TestCluster {
        let dir = tempfile::Builder::new()
            .prefix("skiff-e2e-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let port = free_port().to_string();
        let args = <ApiServerArgs as clap::Parser>::parse_from([
            "skiff-apiserver",
            "--data-dir",
            data.to_str().unwrap(),
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            &port,
        ]);
        let running = skiff_apiserver::start(args.config)
            .await
            .expect("start skiff-apiserver");
        let kubeconfig = running.admin_kubeconfig.clone();
        TestCluster {
            dir,
            kubeconfig,
            apiserver: Some(running),
            controller_manager: None,
            kubectl_cache: tempfile::Builder::new()
                .prefix("skiff-e2e-kubectl-")
                .tempdir()
                .unwrap(),
        }
    }

    /// Starts the API server, then the controller manager with `flags`
    /// added to its command line (e.g. `--node-monitor-grace-period=3s`).
    pub async fn start_with(flags: &[&str]) -> TestCluster {
        let mut cluster = Self::start_apiserver().await;
        cluster.start_controller_manager_with(flags);
        cluster
    }

    /// Starts the controller manager in-process.
    pub fn start_controller_manager(&mut self) {
        self.start_controller_manager_with(&[]);
    }

    /// Starts the controller manager in-process with `flags` added.
    pub fn start_controller_manager_with(&mut self, flags: &[&str]) {
        let mut args = vec![
            "skiff-controller-manager",
            "--kubeconfig",
            self.kubeconfig.to_str().unwrap(),
            "--leader-elect=false",
            "--port",
            "0",
        ];
        args.extend_from_slice(flags);
        let config = <skiff_controller_manager::Config as clap::Parser>::parse_from(args);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            skiff_controller_manager::run(config, async {
                let _ = rx.await;
            })
            .await
            .expect("controller manager");
        });
        self.controller_manager = Some((tx, task));
    }

    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
        Client::try_from(cfg).unwrap()
    }

    /// Runs `kubectl <args>` (blocking; call from `spawn_blocking` or accept the wait).
    pub fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], input: Option<&str>) -> Run {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.kubectl_cache.path())
            .args(args)
            .env_remove("KUBECONFIG");
        Run::of(cmd, input)
    }

    /// `kubectl` on a blocking thread, so the in-process servers keep running.
    pub async fn kubectl_async(&self, args: &[&str]) -> Run {
        let kubeconfig = self.kubeconfig.clone();
        let cache = self.kubectl_cache.path().to_path_buf();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let out = Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .arg("--cache-dir")
                .arg(&cache)
                .args(&args)
                .env_remove("KUBECONFIG")
                .stdin(Stdio::null())
                .output()
                .expect("kubectl is on PATH");
            Run {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .await
        .unwrap()
    }

    /// Stops the controller manager, then the API server.
    pub async fn stop(mut self) {
        if let Some((tx, task)) = self.controller_manager.take() {
            let _ = tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some(api) = self.apiserver.take() {
            api.stop().await;
        }
    }
}

/// A fake node: marks every pod of `namespace` Running and Ready (after
/// `delay`) unless its first container's image contains "broken", and
/// finishes the deletion of pods that are terminating, as a kubelet would.
pub fn fake_node(client: Client, namespace: &str, delay: Duration) -> JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    tokio::spawn(async move {
        let mut stream = watcher::watcher(pods.clone(), watcher::Config::default()).boxed();
        while let Some(event) = stream.next().await {
            let pod = match event {
                Ok(Event::Apply(pod) | Event::InitApply(pod)) => pod,
                _ => continue,
            };
            let name = pod.name_any();
            if pod.metadata.deletion_timestamp.is_some() {
                let _ = pods
                    .delete(&name, &DeleteParams::default().grace_period(0))
                    .await;
                continue;
            }
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let broken = pod
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.as_deref())
                .is_some_and(|i| i.contains("broken"));
            if ready || broken {
                continue;
            }
            let pods = pods.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let now = k8s_openapi::jiff::Timestamp::now().to_string();
                let status = json!({"status": {
                    "phase": "Running",
                    "podIP": "10.244.0.10",
                    "startTime": now,
                    "conditions": [
                        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                        {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                        {"type": "Ready", "status": "True", "lastTransitionTime": now},
                    ],
                }});
                let _ = pods
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            });
        }
    })
}

/// Marks `pod` Running with IP `ip`, Ready or not, through `pods/status`
/// (what a kubelet reports).
pub async fn set_pod_status(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let ready = if ready { "True" } else { "False" };
    let status = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
            {"type": "Ready", "status": ready, "lastTransitionTime": now},
        ],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap_or_else(|e| panic!("status of pod {name}: {e}"));
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
