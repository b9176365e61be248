//! Static pods against a real API server (skiff-apiserver in-process) and
//! the in-memory [`FakeRuntime`], unprivileged: a file dropped in
//! `--pod-manifest-path` runs and shows as a mirror pod with its status
//! (through the API and the real `kubectl get pods`); a deleted mirror is
//! made again without touching the pod; a changed file replaces the pod; a
//! removed file stops it and its mirror goes; a bad file is logged once and
//! the others run on. And static pods run with the API server down at the
//! kubelet's start, and get their mirror once it is up.

mod common;
use common::wait_within;

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use skiff_kubelet::pods::static_pods::{CONFIG_HASH, CONFIG_MIRROR, CONFIG_SOURCE};
use skiff_kubelet::runtime::Runtime;
use skiff_kubelet::runtime::fake::FakeRuntime;
use tokio::sync::oneshot;

/// Everything the kubelets of this test binary log, to look for the bad
/// file's line.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Capture(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        buf
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        // Shown too, for when a test fails.
        let _ = std::io::stderr().write_all(b);
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged_lines(needle: &[&str]) -> usize {
    let logs = logs();
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| needle.iter().all(|n| l.contains(n)))
        .count()
}

struct Kubelet {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    fn start(
        kubeconfig: &std::path::Path,
        node: &str,
        root: &std::path::Path,
        manifests: &std::path::Path,
        runtime: Arc<FakeRuntime>,
    ) -> Kubelet {
        let mut config = skiff_kubelet::Config::for_test(kubeconfig, node, root);
        config.node_ip = Some("127.0.0.1".parse().unwrap());
        config.pod_manifest_path = Some(manifests.into());
        // Only the change check can notice the edits in time.
        config.file_check_frequency = Duration::from_secs(3600);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            skiff_kubelet::run_with_runtime(config, runtime, async {
                let _ = stopped.await;
            })
            .await
            .expect("kubelet runs");
        });
        Kubelet { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn pod_yaml(name: &str, color: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: {name}-c
    image: skiff/httpd:1
    imagePullPolicy: IfNotPresent
    env: [{{name: COLOR, value: {color}}}]
"
    )
}

fn annotation(pod: &Pod, key: &str) -> Option<String> {
    pod.metadata.annotations.as_ref()?.get(key).cloned()
}

fn running_container(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        })
}

fn env_of(runtime: &FakeRuntime, container: &str, var: &str) -> Option<String> {
    runtime
        .config_of(container)?
        .envs
        .into_iter()
        .find(|e| e.key == var)
        .map(|e| e.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_pods_run_from_files_and_show_as_mirror_pods() {
    logs();
    const NODE: &str = "static-node";
    let dir = tempfile::Builder::new()
        .prefix("skiff-kubelet-static-")
        .tempdir()
        .unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let web_file = manifests.join("web.yaml");
    std::fs::write(&web_file, pod_yaml("web", "blue")).unwrap();
    let bad_file = manifests.join("bad.yaml");
    std::fs::write(&bad_file, "apiVersion: v1\nkind: Deployment\n").unwrap();

    let server = skiff_apiserver::start(skiff_apiserver::Config::for_dir(dir.path().join("data")))
        .await
        .expect("start skiff-apiserver");
    let kubeconfig = server.admin_kubeconfig.clone();
    let client = skiff_proto::client::connect(Some(&kubeconfig))
        .await
        .unwrap();
    let runtime = Arc::new(FakeRuntime::with_images(&["skiff/httpd:1"]));
    let kubelet = Kubelet::start(
        &kubeconfig,
        NODE,
        &dir.path().join("kubelet"),
        &manifests,
        runtime.clone(),
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let nodes: Api<Node> = Api::all(client.clone());
    let limit = Duration::from_secs(30);

    // The file's pod runs, and its mirror shows it with its status.
    let mirror = wait_within("the mirror of web, Running", limit, || async {
        let p = pods.get_opt("web-static-node").await.ok()??;
        let phase = p.status.as_ref()?.phase.clone()?;
        (phase == "Running" && running_container(&p)).then_some(p)
    })
    .await;
    assert_eq!(runtime.running(), ["web-c"]);
    assert_eq!(env_of(&runtime, "web-c", "COLOR").as_deref(), Some("blue"));
    let hash = annotation(&mirror, CONFIG_MIRROR).expect("config.mirror");
    assert_eq!(annotation(&mirror, CONFIG_HASH).as_ref(), Some(&hash));
    assert_eq!(annotation(&mirror, CONFIG_SOURCE).as_deref(), Some("file"));
    assert_ne!(
        mirror.metadata.uid.as_ref(),
        Some(&hash),
        "the API's own uid"
    );
    assert_eq!(
        mirror.spec.as_ref().unwrap().node_name.as_deref(),
        Some(NODE)
    );
    let node_uid = nodes.get(NODE).await.unwrap().metadata.uid;
    let owner = &mirror.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), Some(&owner.uid)),
        ("Node", node_uid.as_ref())
    );
    // The sandbox the kubelet made is the static pod's (its hash uid).
    let sandboxes = runtime.list_pod_sandboxes(&[]).await.unwrap();
    let uids: Vec<_> = sandboxes
        .iter()
        .map(|s| s.labels["io.kubernetes.pod.uid"].clone())
        .collect();
    assert_eq!(uids, std::slice::from_ref(&hash));
    if let Some(out) = kubectl(&kubeconfig, &["get", "pods", "--no-headers"]) {
        let line = out
            .lines()
            .find(|l| l.starts_with("web-static-node "))
            .unwrap_or_else(|| panic!("kubectl get pods: {out}"));
        assert!(line.contains("Running") && line.contains("1/1"), "{line}");
    }

    // The bad file: logged once, with the file and what is wrong; the
    // good one runs regardless.
    let bad = bad_file.display().to_string();
    assert_eq!(
        logged_lines(&[&bad, "static pod file skipped", "Deployment"]),
        1
    );

    // Deleting the mirror does not stop the pod: the mirror comes back.
    if kubectl(
        &kubeconfig,
        &["delete", "pod", "web-static-node", "--wait=false"],
    )
    .is_none()
    {
        pods.delete("web-static-node", &Default::default())
            .await
            .unwrap();
    }
    let again = wait_within("the mirror made again, with status", limit, || async {
        let p = pods.get_opt("web-static-node").await.ok()??;
        (p.metadata.uid != mirror.metadata.uid
            && p.metadata.deletion_timestamp.is_none()
            && running_container(&p))
        .then_some(p)
    })
    .await;
    assert_eq!(annotation(&again, CONFIG_MIRROR), Some(hash.clone()));
    assert_eq!(runtime.instances("web-c"), 1, "the pod was not restarted");
    assert_eq!(runtime.running(), ["web-c"]);

    // A changed file replaces the pod: the new spec runs, the old pod is
    // stopped, the mirror carries the new hash.
    std::fs::write(&web_file, pod_yaml("web", "green")).unwrap();
    let replaced = wait_within("the changed pod's mirror, Running", limit, || async {
        let p = pods.get_opt("web-static-node").await.ok()??;
        let new = annotation(&p, CONFIG_MIRROR)? != hash;
        (new && running_container(&p) && runtime.running().len() == 1).then_some(p)
    })
    .await;
    assert_eq!(env_of(&runtime, "web-c", "COLOR").as_deref(), Some("green"));
    // The old one was stopped with the pod's grace period, and removed.
    let calls = runtime.calls();
    let count = |call: &str| calls.iter().filter(|c| *c == call).count();
    assert_eq!(count("CreateContainer web-c"), 2, "{calls:?}");
    assert_eq!(count("StopContainer web-c 1"), 1, "{calls:?}");
    assert_eq!(runtime.instances("web-c"), 1);
    assert_ne!(replaced.metadata.uid, again.metadata.uid);

    // A second good file runs beside it.
    std::fs::write(manifests.join("db.json"), {
        let v: serde_json::Value = serde_saphyr::from_str(&pod_yaml("db", "red")).unwrap();
        v.to_string()
    })
    .unwrap();
    wait_within("db's mirror, Running", limit, || async {
        let p = pods.get_opt("db-static-node").await.ok()??;
        running_container(&p).then_some(())
    })
    .await;

    // A removed file stops its pod, and its mirror goes; the other stays.
    std::fs::remove_file(&web_file).unwrap();
    wait_within("web stopped and its mirror gone", limit, || async {
        let gone = pods.get_opt("web-static-node").await.ok()?.is_none();
        (gone && runtime.running() == ["db-c"]).then_some(())
    })
    .await;
    assert!(pods.get_opt("db-static-node").await.unwrap().is_some());
    assert_eq!(runtime.sandbox_count(), 1);
    // Still one line for the bad file, which has not changed.
    assert_eq!(
        logged_lines(&[&bad, "static pod file skipped", "Deployment"]),
        1
    );

    // A kubelet restart adopts the static pod: nothing started twice.
    kubelet.stop().await;
    let kubelet = Kubelet::start(
        &kubeconfig,
        NODE,
        &dir.path().join("kubelet"),
        &manifests,
        runtime.clone(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(runtime.instances("db-c"), 1);
    assert_eq!(runtime.running(), ["db-c"]);
    kubelet.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_pods_run_without_the_api_server_and_get_their_mirror_later() {
    logs();
    const NODE: &str = "lonely-node";
    let dir = tempfile::Builder::new()
        .prefix("skiff-kubelet-static-down-")
        .tempdir()
        .unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("api.yaml"), pod_yaml("api", "blue")).unwrap();
    // Started once for its kubeconfig and port, then stopped.
    let data = dir.path().join("data");
    let server = skiff_apiserver::start(skiff_apiserver::Config::for_dir(&data))
        .await
        .expect("start skiff-apiserver");
    let (kubeconfig, port) = (server.admin_kubeconfig.clone(), server.port);
    server.stop().await;

    let runtime = Arc::new(FakeRuntime::with_images(&["skiff/httpd:1"]));
    let kubelet = Kubelet::start(
        &kubeconfig,
        NODE,
        &dir.path().join("kubelet"),
        &manifests,
        runtime.clone(),
    );
    wait_within(
        "the static pod running without an API server",
        Duration::from_secs(30),
        || async { (runtime.running() == ["api-c"]).then_some(()) },
    )
    .await;

    let server = skiff_apiserver::start(skiff_apiserver::Config {
        secure_port: port,
        ..skiff_apiserver::Config::for_dir(&data)
    })
    .await
    .expect("start skiff-apiserver again");
    let client = skiff_proto::client::connect(Some(&kubeconfig))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // Registration and the mirror's watch back off while the server is
    // down: allow for their retries.
    wait_within(
        "the mirror once the API server is up",
        Duration::from_secs(90),
        || async {
            let p = pods.get_opt("api-lonely-node").await.ok()??;
            running_container(&p).then_some(())
        },
    )
    .await;
    assert_eq!(runtime.instances("api-c"), 1);
    kubelet.stop().await;
    server.stop().await;
}
