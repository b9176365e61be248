//! The kubelet's pod logic against a real API server (skiff-apiserver
//! in-process) and the in-memory [`FakeRuntime`] — the runtime is faked here,
//! not the API: pods bound to the node are started (sandbox, then
//! containers, with their environment), their status is what `kubectl get
//! pods` shows, crashes restart with back-off into CrashLoopBackOff, failed
//! pulls show ErrImagePull/ImagePullBackOff, a graceful delete stops the
//! containers and completes the deletion, and a restarted kubelet adopts
//! what runs without starting anything twice.

mod common;
use common::wait_for;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;
use skiff_kubelet::runtime::fake::FakeRuntime;
use tokio::sync::oneshot;

const NODE: &str = "fake-node";

struct Kubelet {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn start_kubelet(
    kubeconfig: &std::path::Path,
    root: &std::path::Path,
    runtime: Arc<FakeRuntime>,
) -> Kubelet {
    let mut config = skiff_kubelet::Config::for_test(kubeconfig, NODE, root);
    config.node_ip = Some("127.0.0.1".parse().unwrap());
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

impl Kubelet {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn container_state(pod: &Pod) -> Option<(String, i32)> {
    let c = &pod.status.as_ref()?.container_statuses.as_ref()?[0];
    let s = c.state.as_ref()?;
    let what = if s.running.is_some() {
        "running".to_string()
    } else if let Some(w) = &s.waiting {
        w.reason.clone().unwrap_or_default()
    } else {
        "terminated".to_string()
    };
    Some((what, c.restart_count))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_restart_report_and_stop_through_the_runtime() {
    let dir = tempfile::Builder::new()
        .prefix("skiff-kubelet-pods-")
        .tempdir()
        .unwrap();
    let server = skiff_apiserver::start(skiff_apiserver::Config::for_dir(dir.path().join("data")))
        .await
        .expect("start skiff-apiserver");
    let kubeconfig = server.admin_kubeconfig.clone();
    let client = skiff_proto::client::connect(Some(&kubeconfig))
        .await
        .unwrap();
    let runtime = Arc::new(FakeRuntime::with_images(&["skiff/httpd:1"]));
    let root = dir.path().join("kubelet");
    let kubelet = start_kubelet(&kubeconfig, &root, runtime.clone());

    // The fake runtime says it is ready: so does the Node.
    let nodes: Api<Node> = Api::all(client.clone());
    wait_for("the Node to be Ready", || async {
        let node = nodes.get_opt(NODE).await.ok()??;
        let ready = node
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.status == "True").then_some(())
    })
    .await;

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"color": "blue"}}))
            .unwrap(),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod_with = |name: &str, container: &str, image: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"nodeName": NODE, "containers": [{
                "name": container, "image": image, "imagePullPolicy": "IfNotPresent",
                "env": [{"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
            }]}
        }))
        .unwrap()
    };
    let pod = |name: &str, image: &str| pod_with(name, "app", image);
    pods.create(&PostParams::default(), &pod("web", "skiff/httpd:1"))
        .await
        .unwrap();
    pods.create(
        &PostParams::default(),
        &pod_with("steady", "steady-app", "skiff/httpd:1"),
    )
    .await
    .unwrap();

    let running = wait_for("web to run", || async {
        let p = pods.get_opt("web").await.ok()??;
        (p.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(p)
    })
    .await;
    let status = running.status.unwrap();
    let ip = status.pod_ip.clone().unwrap();
    assert!(ip.starts_with("10.244.0."), "{ip}");
    assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    let ready = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    let env = runtime.config_of("app").unwrap().envs;
    let get = |k: &str| env.iter().find(|e| e.key == k).map(|e| e.value.clone());
    assert_eq!(get("COLOR").as_deref(), Some("blue"));
    assert_eq!(get("POD_IP"), Some(ip.clone()));
    let table = kubectl(&kubeconfig, &["get", "pods", "-o", "wide"]);
    let row = table.lines().find(|l| l.starts_with("web ")).expect(&table);
    for column in ["1/1", "Running", &ip, NODE] {
        assert!(row.contains(column), "{column} in {row}");
    }

    // A crash: the first restart is at once, the next waits (CrashLoopBackOff).
    assert!(runtime.exit("app", 1, "Error"));
    wait_for("restart 1", || async {
        let p = pods.get_opt("web").await.ok()??;
        (container_state(&p)? == ("running".into(), 1)).then_some(())
    })
    .await;
    assert!(runtime.exit("app", 1, "Error"));
    let crashed = wait_for("CrashLoopBackOff", || async {
        let p = pods.get_opt("web").await.ok()??;
        (container_state(&p)?.0 == "CrashLoopBackOff").then_some(p)
    })
    .await;
    let c = &crashed.status.unwrap().container_statuses.unwrap()[0];
    let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    let table = kubectl(&kubeconfig, &["get", "pod", "web"]);
    assert!(table.contains("CrashLoopBackOff"), "{table}");
    assert_eq!(
        runtime.instances("app"),
        2,
        "the oldest dead instance was removed"
    );

    // A pull that fails: ErrImagePull, then ImagePullBackOff while it waits.
    runtime.fail_pulls("registry.invalid/nope:1", "manifest unknown");
    pods.create(
        &PostParams::default(),
        &pod("broken", "registry.invalid/nope:1"),
    )
    .await
    .unwrap();
    let reasons = wait_for("ImagePullBackOff", || async {
        let p = pods.get_opt("broken").await.ok()??;
        let (reason, _) = container_state(&p)?;
        (reason == "ImagePullBackOff").then_some(reason)
    })
    .await;
    assert_eq!(reasons, "ImagePullBackOff");
    assert!(
        runtime
            .calls()
            .contains(&"PullImage registry.invalid/nope:1".to_string())
    );
    // What `kubectl describe pod` shows, in upstream's words: the
    // container's life as events, one BackOff per back-off.
    let events = wait_for("the pull's BackOff event", || async {
        let text = kubectl(&kubeconfig, &["get", "events", "-o", "json"]);
        let events: serde_json::Value = serde_json::from_str(&text).ok()?;
        let items = events["items"].as_array()?.clone();
        items
            .iter()
            .any(|e| e["reason"] == "BackOff" && e["involvedObject"]["name"] == "broken")
            .then_some(items)
    })
    .await;
    let said = |pod: &str, reason: &str, message: &str| {
        events.iter().any(|e| {
            e["involvedObject"]["name"] == pod
                && e["reason"] == reason
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
        })
    };
    for (pod, reason, message) in [
        (
            "web",
            "Pulled",
            "Container image \"skiff/httpd:1\" already present on machine",
        ),
        ("web", "Created", "Created container app"),
        ("web", "Started", "Started container app"),
        (
            "web",
            "BackOff",
            "Back-off restarting failed container app in pod web_default(",
        ),
        (
            "broken",
            "Pulling",
            "Pulling image \"registry.invalid/nope:1\"",
        ),
        (
            "broken",
            "Failed",
            "Failed to pull image \"registry.invalid/nope:1\"",
        ),
        (
            "broken",
            "BackOff",
            "Back-off pulling image \"registry.invalid/nope:1\"",
        ),
    ] {
        assert!(
            said(pod, reason, message),
            "{pod} {reason} {message:?}: {events:#?}"
        );
    }
    let backoffs = events
        .iter()
        .filter(|e| e["reason"] == "BackOff" && e["involvedObject"]["name"] == "web")
        .map(|e| {
            e["count"]
                .as_i64()
                .unwrap_or(1)
                .max(e["series"]["count"].as_i64().unwrap_or(1))
        })
        .sum::<i64>();
    assert_eq!(backoffs, 1, "one BackOff event for one back-off");

    // A restarted kubelet adopts what runs: no sandbox and no running
    // container is created again. (The crash-looping one may restart at once:
    // back-off lives in the kubelet's memory, as upstream's does.)
    wait_for("steady to run", || async {
        let p = pods.get_opt("steady").await.ok()??;
        (container_state(&p)?.0 == "running").then_some(())
    })
    .await;
    kubelet.stop().await;
    let before = runtime.calls().len();
    let sandboxes = runtime.sandbox_count();
    let kubelet = start_kubelet(&kubeconfig, &root, runtime.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let new_calls: Vec<String> = runtime.calls()[before..].to_vec();
    assert!(
        !new_calls
            .iter()
            .any(|c| c.starts_with("RunPodSandbox") || c == "CreateContainer steady-app"),
        "{new_calls:?}"
    );
    assert_eq!(runtime.sandbox_count(), sandboxes);

    // kubectl delete: the kubelet stops the containers (SIGTERM with the
    // grace period), removes the sandbox, and completes the deletion.
    kubectl(
        &kubeconfig,
        &["delete", "pod", "web", "--grace-period=7", "--timeout=30s"],
    );
    assert!(pods.get_opt("web").await.unwrap().is_none());
    kubectl(
        &kubeconfig,
        &["delete", "pod", "broken", "steady", "--timeout=30s"],
    );
    let calls = runtime.calls();
    assert!(
        calls.contains(&"StopContainer steady-app 30".to_string()),
        "SIGTERM with the default grace period: {calls:?}"
    );
    assert_eq!(runtime.sandbox_count(), 0);
    assert!(runtime.running().is_empty());
    kubelet.stop().await;
    server.stop().await;
}

/// An API server (in-process) and a kubelet on the fake runtime.
struct TestNode {
    dir: tempfile::TempDir,
    server: skiff_apiserver::Running,
    kubeconfig: std::path::PathBuf,
    client: kube::Client,
    runtime: Arc<FakeRuntime>,
    kubelet: Kubelet,
}

async fn node(prefix: &str) -> TestNode {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let server = skiff_apiserver::start(skiff_apiserver::Config::for_dir(dir.path().join("data")))
        .await
        .expect("start skiff-apiserver");
    let kubeconfig = server.admin_kubeconfig.clone();
    let client = skiff_proto::client::connect(Some(&kubeconfig))
        .await
        .unwrap();
    let runtime = Arc::new(FakeRuntime::with_images(&["skiff/httpd:1"]));
    let kubelet = start_kubelet(&kubeconfig, &dir.path().join("kubelet"), runtime.clone());
    TestNode {
        dir,
        server,
        kubeconfig,
        client,
        runtime,
        kubelet,
    }
}

fn condition(pod: &Pod, kind: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.clone())
}

/// Probes through the fake runtime's ExecSync (whose exit codes the test
/// sets per container): readiness gates the pod's Ready condition both
/// ways, a startup probe holds back `started` and readiness, a failing
/// liveness probe kills the container for a restart, and failures are
/// `Unhealthy` events, as `kubectl describe pod` shows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_gate_readiness_and_restart_unhealthy_containers() {
    let TestNode {
        dir: _dir,
        server,
        kubeconfig,
        client,
        runtime,
        kubelet,
    } = node("skiff-kubelet-probes-").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let exec = json!({"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1});
    let with_probe = |name: &str, container: &str, kind: &str, extra: serde_json::Value| -> Pod {
        let mut probe = exec.clone();
        probe
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"nodeName": NODE, "containers": [{
                "name": container, "image": "skiff/httpd:1", kind: probe
            }]}
        }))
        .unwrap()
    };
    let get = |name: &'static str| {
        let pods = pods.clone();
        async move { pods.get_opt(name).await.ok().flatten() }
    };

    // Readiness: failing at first, so running but not Ready.
    runtime.set_exec_exit("gate", 1);
    pods.create(
        &PostParams::default(),
        &with_probe(
            "gated",
            "gate",
            "readinessProbe",
            json!({"failureThreshold": 1}),
        ),
    )
    .await
    .unwrap();
    wait_for("gated to run, probed not ready", || async {
        let p = get("gated").await?;
        let probed = runtime
            .calls()
            .iter()
            .any(|c| c == "ExecSync gate cat /tmp/healthy");
        (container_state(&p)?.0 == "running" && probed).then_some(())
    })
    .await;
    let p = get("gated").await.unwrap();
    assert_eq!(condition(&p, "Ready").as_deref(), Some("False"));
    assert!(!p.status.unwrap().container_statuses.unwrap()[0].ready);
    // The probe passes: Ready; it fails again: not Ready, without a restart.
    runtime.set_exec_exit("gate", 0);
    wait_for("gated to be Ready", || async {
        (condition(&get("gated").await?, "Ready")? == "True").then_some(())
    })
    .await;
    runtime.set_exec_exit("gate", 1);
    wait_for("gated to be not Ready again", || async {
        (condition(&get("gated").await?, "Ready")? == "False").then_some(())
    })
    .await;
    assert_eq!(container_state(&get("gated").await.unwrap()).unwrap().1, 0);

    // Startup: until it passes the container is neither started nor ready.
    runtime.set_exec_exit("boot", 1);
    pods.create(
        &PostParams::default(),
        &with_probe(
            "booting",
            "boot",
            "startupProbe",
            json!({"failureThreshold": 60}),
        ),
    )
    .await
    .unwrap();
    wait_for("booting to run, not started", || async {
        let p = get("booting").await?;
        let c = p.status.as_ref()?.container_statuses.as_ref()?[0].clone();
        let probed = runtime
            .calls()
            .iter()
            .any(|c| c == "ExecSync boot cat /tmp/healthy");
        (c.state?.running.is_some() && c.started == Some(false) && !c.ready && probed).then_some(())
    })
    .await;
    runtime.set_exec_exit("boot", 0);
    wait_for("booting to be started and Ready", || async {
        let p = get("booting").await?;
        let c = p.status.as_ref()?.container_statuses.as_ref()?[0].clone();
        (c.started == Some(true) && condition(&p, "Ready")? == "True").then_some(())
    })
    .await;

    // Liveness: two failures in a row kill the container; restartPolicy
    // Always starts it again.
    runtime.set_exec_exit("live", 1);
    pods.create(
        &PostParams::default(),
        &with_probe(
            "lively",
            "live",
            "livenessProbe",
            json!({"failureThreshold": 2}),
        ),
    )
    .await
    .unwrap();
    wait_for("lively to be restarted", || async {
        let (_, restarts) = container_state(&get("lively").await?)?;
        (restarts >= 1).then_some(())
    })
    .await;
    assert!(
        runtime.calls().iter().any(|c| c == "StopContainer live 30"),
        "killed with the pod's grace period: {:?}",
        runtime.calls()
    );
    let events = kubectl(&kubeconfig, &["get", "events", "-o", "json"]);
    let events: serde_json::Value = serde_json::from_str(&events).unwrap();
    let said =
        |reason: &str, message: &str| {
            events["items"].as_array().unwrap().iter().any(|e| {
                e["reason"] == reason && e["message"].as_str().is_some_and(|m| m == message)
            })
        };
    assert!(
        said("Unhealthy", "Readiness probe failed: probe failed"),
        "{events}"
    );
    assert!(
        said("Unhealthy", "Liveness probe failed: probe failed"),
        "{events}"
    );
    assert!(
        said(
            "Killing",
            "Container live failed liveness probe, will be restarted"
        ),
        "{events}"
    );
    kubectl(&kubeconfig, &["delete", "pod", "--all", "--timeout=30s"]);
    kubelet.stop().await;
    server.stop().await;
}

/// postStart runs after the start (a failure is a FailedPostStartHook event
/// and a killed, restarted container); preStop runs before the stop when a
/// pod is deleted, and the stop gets what is left of the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_hooks_run_around_start_and_stop() {
    let TestNode {
        dir: _dir,
        server,
        kubeconfig,
        client,
        runtime,
        kubelet,
    } = node("skiff-kubelet-hooks-").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let hooked = |name: &str, container: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 20, "containers": [{
                "name": container, "image": "skiff/httpd:1",
                "lifecycle": {
                    "postStart": {"exec": {"command": ["touch", "/tmp/started"]}},
                    "preStop": {"exec": {"command": ["httpd-quit"]}}
                }
            }]}
        }))
        .unwrap()
    };

    // A postStart that succeeds: the container runs, the hook ran after its start.
    pods.create(&PostParams::default(), &hooked("good", "good-c"))
        .await
        .unwrap();
    wait_for("good to run", || async {
        let p = pods.get_opt("good").await.ok()??;
        (container_state(&p)?.0 == "running").then_some(())
    })
    .await;
    let calls = runtime.calls();
    let started = calls.iter().position(|c| c == "StartContainer good-c");
    let hook = calls
        .iter()
        .position(|c| c == "ExecSync good-c touch /tmp/started");
    assert!(
        started.is_some() && hook > started,
        "postStart after the start: {calls:?}"
    );

    // One that fails: an event, and the container is killed and restarted.
    runtime.set_exec_exit("bad-c", 1);
    pods.create(&PostParams::default(), &hooked("bad", "bad-c"))
        .await
        .unwrap();
    wait_for("bad to be restarted", || async {
        let (_, restarts) = container_state(&pods.get_opt("bad").await.ok()??)?;
        (restarts >= 1).then_some(())
    })
    .await;
    let events = kubectl(&kubeconfig, &["get", "events", "-o", "json"]);
    let events: serde_json::Value = serde_json::from_str(&events).unwrap();
    let failed = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "FailedPostStartHook")
        .unwrap_or_else(|| panic!("no FailedPostStartHook event: {events}"));
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Exec lifecycle hook ([\"touch\", \"/tmp/started\"]) for Container \"bad-c\" in Pod \"bad_default("
        ) && message.ends_with("failed - error: probe failed"),
        "{message}"
    );

    // Deleting runs preStop first, then stops with the rest of the grace period.
    kubectl(&kubeconfig, &["delete", "pod", "good", "--timeout=30s"]);
    let calls = runtime.calls();
    let pre = calls.iter().position(|c| c == "ExecSync good-c httpd-quit");
    let stop = calls
        .iter()
        .position(|c| c.starts_with("StopContainer good-c "));
    assert!(
        pre.is_some() && stop > pre,
        "preStop before the stop: {calls:?}"
    );
    let grace: i64 = calls[stop.unwrap()]
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((2..=20).contains(&grace), "{}", calls[stop.unwrap()]);
    kubectl(&kubeconfig, &["delete", "pod", "bad", "--timeout=30s"]);

    // The node IPAM (here: kubectl) gives the Node a pod CIDR: the kubelet
    // passes it to the runtime (CRI UpdateRuntimeConfig).
    kubectl(
        &kubeconfig,
        &[
            "patch",
            "node",
            NODE,
            "-p",
            r#"{"spec":{"podCIDR":"10.244.7.0/24","podCIDRs":["10.244.7.0/24"]}}"#,
        ],
    );
    wait_for("the pod CIDR to reach the runtime", || async {
        runtime
            .calls()
            .contains(&"UpdateRuntimeConfig 10.244.7.0/24".to_string())
            .then_some(())
    })
    .await;
    kubelet.stop().await;
    server.stop().await;
}

/// Volumes with the fake runtime (no mounts on the machine: emptyDir on
/// disk, a ConfigMap, the downward API): their directories under
/// `<root>/pods/<uid>/volumes`, the CRI mounts each container is created
/// with (API data read-only, a subPath, a claim bound to a hostPath PV), a
/// ConfigMap change reaching the file within the re-sync period, a missing
/// ConfigMap holding the pod in ContainerCreating with upstream's
/// `FailedMount` event until it appears, and the pod's directory gone with
/// the pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_are_set_up_mounted_refreshed_and_removed() {
    let TestNode {
        dir,
        server,
        kubeconfig,
        client,
        runtime,
        kubelet,
    } = node("skiff-kubelet-volumes-").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = |name: &str, color: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"color": color}}))
            .unwrap()
    };
    cms.create(&PostParams::default(), &cm("cfg", "blue"))
        .await
        .unwrap();
    // A claim bound to a hostPath PersistentVolume (made on first use).
    let pv_path = dir.path().join("pv-data");
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    pvs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "pv-data"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": pv_path.display().to_string(), "type": "DirectoryOrCreate"}}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    claims
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": "pv-data",
                         "resources": {"requests": {"storage": "1Gi"}}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = |name: &str, container: &str, cm: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"nodeName": NODE, "containers": [{
                "name": container, "image": "skiff/httpd:1",
                "volumeMounts": [
                    {"name": "shared", "mountPath": "/shared"},
                    {"name": "shared", "mountPath": "/work", "subPath": "work"},
                    {"name": "cfg", "mountPath": "/etc/cfg"},
                    {"name": "info", "mountPath": "/etc/info", "readOnly": false},
                    {"name": "data", "mountPath": "/data"}
                ]
            }], "volumes": [
                {"name": "shared", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": cm}},
                {"name": "info", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data", "readOnly": true}}
            ]}
        }))
        .unwrap()
    };
    pods.create(&PostParams::default(), &pod("vols", "app", "cfg"))
        .await
        .unwrap();
    let uid = wait_for("vols to run", || async {
        let p = pods.get_opt("vols").await.ok()??;
        (container_state(&p)?.0 == "running").then_some(p.metadata.uid?)
    })
    .await;
    let root = dir.path().join("kubelet").canonicalize().unwrap();
    let volumes = root.join("pods").join(&uid).join("volumes");
    let mounts: Vec<(String, String, bool)> = runtime
        .config_of("app")
        .unwrap()
        .mounts
        .into_iter()
        .map(|m| (m.container_path, m.host_path, m.readonly))
        .collect();
    let at = |p: &str| volumes.join(p).display().to_string();
    assert_eq!(
        mounts[..5],
        [
            (
                "/shared".into(),
                at("kubernetes.io~empty-dir/shared"),
                false
            ),
            (
                "/work".into(),
                at("kubernetes.io~empty-dir/shared/work"),
                false
            ),
            ("/etc/cfg".into(), at("kubernetes.io~configmap/cfg"), true),
            (
                "/etc/info".into(),
                at("kubernetes.io~downward-api/info"),
                true
            ),
            ("/data".into(), pv_path.display().to_string(), true),
        ],
        "then the termination log: {mounts:?}"
    );
    assert_eq!(mounts[5].0, "/dev/termination-log");
    assert!(pv_path.is_dir(), "DirectoryOrCreate made it");
    let color = volumes.join("kubernetes.io~configmap/cfg/color");
    assert_eq!(std::fs::read_to_string(&color).unwrap(), "blue");
    assert_eq!(
        std::fs::read_to_string(volumes.join("kubernetes.io~downward-api/info/labels")).unwrap(),
        "app=\"vols\""
    );
    // A change to the ConfigMap reaches the file (re-sync every 10 s).
    cms.replace("cfg", &PostParams::default(), &{
        let mut c = cms.get("cfg").await.unwrap();
        c.data = Some([("color".to_string(), "green".to_string())].into());
        c
    })
    .await
    .unwrap();
    wait_for("the new color in the volume", || async {
        (std::fs::read_to_string(&color).ok()? == "green").then_some(())
    })
    .await;

    // A ConfigMap that does not exist: no sandbox, no container, the
    // FailedMount event; it appears, the pod starts.
    pods.create(
        &PostParams::default(),
        &pod("blocked", "blocked-app", "later"),
    )
    .await
    .unwrap();
    let message = "MountVolume.SetUp failed for volume \"cfg\" : configmaps \"later\" not found";
    wait_for("the FailedMount event", || async {
        let events = kubectl(&kubeconfig, &["get", "events", "-o", "json"]);
        let events: serde_json::Value = serde_json::from_str(&events).ok()?;
        events["items"]
            .as_array()?
            .iter()
            .any(|e| e["reason"] == "FailedMount" && e["message"] == message)
            .then_some(())
    })
    .await;
    let p = pods.get("blocked").await.unwrap();
    assert_eq!(container_state(&p).unwrap().0, "ContainerCreating");
    assert!(runtime.config_of("blocked-app").is_none());
    cms.create(&PostParams::default(), &cm("later", "red"))
        .await
        .unwrap();
    wait_for("blocked to run once its ConfigMap exists", || async {
        let p = pods.get_opt("blocked").await.ok()??;
        (container_state(&p)?.0 == "running").then_some(())
    })
    .await;

    kubectl(&kubeconfig, &["delete", "pod", "--all", "--timeout=30s"]);
    assert!(
        !root.join("pods").join(&uid).exists(),
        "the pod's volumes are removed with it"
    );
    kubelet.stop().await;
    server.stop().await;
}
