//! The real `skiff-controller-manager` binary, twice, against an in-process
//! `skiff-apiserver`: `/healthz` and `/metrics` answer, one instance leads
//! (the Lease names it) while the other waits idle, SIGKILL of the leader
//! hands the Lease to the other within the lease duration, and the new
//! leader carries on without duplicating anything.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    config: skiff_apiserver::Config,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A controller manager process, killed (by PID) when dropped.
struct Instance {
    child: Child,
    port: u16,
}

impl Instance {
    fn start(kubeconfig: &Path, log: &Path) -> Instance {
        let port = free_port();
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_skiff-controller-manager"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--port", &port.to_string()])
            .args([
                "--leader-elect-lease-duration=3s",
                "--leader-elect-renew-deadline=2s",
            ])
            .arg("--leader-elect-retry-period=500ms")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start skiff-controller-manager");
        Instance { child, port }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn get(&self, path: &str) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await.ok()?;
        Some(body)
    }

    /// The value of the replicaset-controller's reconcile counter.
    async fn replicaset_reconciles(&self) -> u64 {
        let metrics = self.get("/metrics").await.unwrap_or_default();
        metrics
            .lines()
            .find(|l| {
                l.starts_with(
                    "skiff_controller_reconcile_total{controller=\"replicaset-controller\"}",
                )
            })
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no counter in {metrics}"))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn holder(leases: &Api<Lease>) -> String {
    leases
        .get_opt("kube-controller-manager")
        .await
        .unwrap()
        .and_then(|l| l.spec?.holder_identity)
        .unwrap_or_default()
}

async fn pod_count(pods: &Api<Pod>) -> usize {
    pods.list(&ListParams::default().labels("app=le"))
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_a_takeover() {
    let dir = tempfile::Builder::new()
        .prefix("skiff-cm-le-")
        .tempdir()
        .unwrap();
    let port = free_port().to_string();
    let data = dir.path().join("data");
    let args = <Args as clap::Parser>::parse_from([
        "skiff-apiserver",
        "--data-dir",
        data.to_str().unwrap(),
        "--bind-address",
        "127.0.0.1",
        "--secure-port",
        &port,
    ]);
    let api = skiff_apiserver::start(args.config)
        .await
        .expect("apiserver");
    let kubeconfig = api.admin_kubeconfig.clone();
    let cfg = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = Client::try_from(cfg).unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");

    let a = Instance::start(&kubeconfig, &dir.path().join("a.log"));
    wait_for("a's /healthz", Duration::from_secs(30), || async {
        a.get("/healthz")
            .await
            .filter(|b| b.starts_with("HTTP/1.1 200") && b.ends_with("ok"))
    })
    .await;
    let a_id = format!("_{}_", a.pid());
    wait_for("a to lead", Duration::from_secs(10), || async {
        holder(&leases).await.contains(&a_id).then_some(())
    })
    .await;
    let b = Instance::start(&kubeconfig, &dir.path().join("b.log"));
    wait_for("b's /healthz", Duration::from_secs(30), || async {
        a.get("/healthz").await.and(b.get("/healthz").await)
    })
    .await;

    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "le"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "le"}},
                 "template": {"metadata": {"labels": {"app": "le"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    wait_for("3 pods", Duration::from_secs(30), || async {
        (pod_count(&pods).await == 3).then_some(())
    })
    .await;
    assert!(a.replicaset_reconciles().await > 0);
    assert_eq!(
        b.replicaset_reconciles().await,
        0,
        "the follower does nothing"
    );
    assert!(holder(&leases).await.contains(&a_id));

    // The leader dies without releasing: the other takes over once the 3 s
    // lease has run out (renewed every 500 ms).
    let mut a = a;
    let killed = Instant::now();
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let b_id = format!("_{}_", b.pid());
    wait_for("b to lead", Duration::from_secs(15), || async {
        holder(&leases).await.contains(&b_id).then_some(())
    })
    .await;
    let takeover = killed.elapsed();
    println!("takeover after {takeover:?}");
    assert!(takeover < Duration::from_secs(6), "{takeover:?}");

    deployments
        .patch(
            "le",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    wait_for("5 pods", Duration::from_secs(30), || async {
        (pod_count(&pods).await == 5).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pod_count(&pods).await, 5, "nothing duplicated");
    let rs_count =
        Api::<k8s_openapi::api::apps::v1::ReplicaSet>::namespaced(client.clone(), "default")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len();
    assert_eq!(rs_count, 1);
    assert!(b.replicaset_reconciles().await > 0);

    drop(b);
    drop(a);
    api.stop().await;
}
