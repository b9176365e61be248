//! The eviction manager and image GC against a real API server
//! (skiff-apiserver in-process) and the in-memory fake runtime. Pressure is
//! made with thresholds no node can meet (`memory.available<100%`: less
//! than all of it is available), so the tests need no full disk or memory:
//! what is checked is what the kubelet does about it — which pod goes
//! first, what its status and events say, that it is not started again,
//! that unused images go before any pod under disk pressure, and that image
//! GC removes unused images only.

mod common;
use common::wait_for;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use skiff_kubelet::runtime::fake::FakeRuntime;
use tokio::sync::oneshot;

const NODE: &str = "pressed-node";

struct Setup {
    _dir: tempfile::TempDir,
    _server: skiff_apiserver::Running,
    client: kube::Client,
    runtime: Arc<FakeRuntime>,
    stop: oneshot::Sender<()>,
    kubelet: tokio::task::JoinHandle<()>,
}

/// An API server, `pods` bound to the node already, then a kubelet with
/// `configure` applied.
async fn setup(
    pods: &[serde_json::Value],
    configure: impl FnOnce(&mut skiff_kubelet::Config),
) -> Setup {
    let dir = tempfile::Builder::new()
        .prefix("skiff-kubelet-eviction-")
        .tempdir()
        .unwrap();
    let server = skiff_apiserver::start(skiff_apiserver::Config::for_dir(dir.path().join("data")))
        .await
        .expect("start skiff-apiserver");
    let kubeconfig = server.admin_kubeconfig.clone();
    let client = skiff_proto::client::connect(Some(&kubeconfig))
        .await
        .unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    for p in pods {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(p.clone()).unwrap(),
        )
        .await
        .unwrap();
    }
    let runtime = Arc::new(FakeRuntime::with_images(&[
        "skiff/httpd:1",
        "skiff/unused:1",
    ]));
    let mut config = skiff_kubelet::Config::for_test(&kubeconfig, NODE, dir.path().join("kubelet"));
    config.node_ip = Some("127.0.0.1".parse().unwrap());
    config.eviction_monitoring_period = Duration::from_secs(2);
    config.minimum_image_ttl_duration = Duration::ZERO;
    configure(&mut config);
    let (stop, stopped) = oneshot::channel::<()>();
    let rt = runtime.clone();
    let kubelet = tokio::spawn(async move {
        skiff_kubelet::run_with_runtime(config, rt, async {
            let _ = stopped.await;
        })
        .await
        .expect("kubelet runs");
    });
    Setup {
        _dir: dir,
        _server: server,
        client,
        runtime,
        stop,
        kubelet,
    }
}

fn pod(name: &str, priority: i32) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {"nodeName": NODE, "priority": priority, "containers": [{
            "name": format!("{name}-app"), "image": "skiff/httpd:1", "imagePullPolicy": "IfNotPresent"
        }]}
    })
}

fn evicted(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| {
        s.phase.as_deref() == Some("Failed") && s.reason.as_deref() == Some("Evicted")
    })
}

fn disruption_time(p: &Pod) -> jiff::Timestamp {
    let c = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "DisruptionTarget"))
        .unwrap_or_else(|| panic!("no DisruptionTarget: {:?}", p.status));
    assert_eq!(c.status, "True");
    assert_eq!(c.reason.as_deref(), Some("TerminationByKubelet"));
    c.last_transition_time.as_ref().unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pressure_evicts_the_lowest_priority_first_and_for_good() {
    let s = setup(&[pod("low", 0), pod("high", 1000)], |c| {
        c.eviction_hard = vec!["memory.available<100%".into()];
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let low = wait_for("low to be evicted", || async {
        let p = pods.get_opt("low").await.ok()??;
        evicted(&p).then_some(p)
    })
    .await;
    let message = low.status.as_ref().unwrap().message.clone().unwrap();
    assert!(
        message.starts_with("The node was low on resource: memory. Threshold quantity: "),
        "{message}"
    );
    let high = wait_for("high to be evicted next", || async {
        let p = pods.get_opt("high").await.ok()??;
        evicted(&p).then_some(p)
    })
    .await;
    // One pod per pass, lowest priority first.
    assert!(
        disruption_time(&low) < disruption_time(&high),
        "{:?} then {:?}",
        disruption_time(&low),
        disruption_time(&high)
    );
    // An Evicted event for each, in upstream's words.
    let events: Api<Event> = Api::namespaced(s.client.clone(), "default");
    for name in ["low", "high"] {
        let field = format!("involvedObject.name={name}");
        let list = wait_for("the Evicted event", || async {
            let l = events
                .list(&ListParams::default().fields(&field))
                .await
                .ok()?;
            l.items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("Evicted"))
        })
        .await;
        assert_eq!(list.type_.as_deref(), Some("Warning"));
        assert!(
            list.message
                .unwrap()
                .starts_with("The node was low on resource: memory.")
        );
    }
    // Killed at once (no grace under a hard threshold), sandbox gone, and
    // never started again.
    wait_for("no container left", || async {
        s.runtime.running().is_empty().then_some(())
    })
    .await;
    let calls = s.runtime.calls();
    assert!(
        calls.iter().any(|c| c == "StopContainer low-app 0"),
        "{calls:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let starts = |calls: &[String]| {
        calls
            .iter()
            .filter(|c| *c == "StartContainer low-app")
            .count()
    };
    assert_eq!(starts(&s.runtime.calls()), 1, "{:?}", s.runtime.calls());
    assert_eq!(s.runtime.sandbox_count(), 0);
    assert!(evicted(&pods.get("low").await.unwrap()));
    let _ = s.stop.send(());
    s.kubelet.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_pressure_removes_unused_images_before_evicting() {
    let s = setup(&[pod("web", 0)], |c| {
        c.eviction_hard = vec!["nodefs.available<100%".into()];
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let web = wait_for("web to be evicted", || async {
        let p = pods.get_opt("web").await.ok()??;
        evicted(&p).then_some(p)
    })
    .await;
    let message = web.status.unwrap().message.unwrap();
    assert!(
        message.starts_with("The node was low on resource: ephemeral-storage."),
        "{message}"
    );
    let calls = s.runtime.calls();
    let removed = calls.iter().position(|c| {
        c == "RemoveImage sha256:0000000000000000000000000000000000000000000000000000000000000002"
    });
    let killed = calls.iter().position(|c| c == "StopContainer web-app 0");
    assert!(
        matches!((removed, killed), (Some(r), Some(k)) if r < k),
        "the unused image goes first: {calls:?}"
    );
    // The image the pod ran from stayed (it was in use then).
    assert!(
        !calls
            .iter()
            .any(|c| c == "RemoveImage sha256:0000000000000000000000000000000000000000000000000000000000000001"),
        "{calls:?}"
    );
    let _ = s.stop.send(());
    s.kubelet.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_gc_removes_only_unused_images() {
    // Any disk is at least 1 % full: image GC runs at every period, and
    // wants the disk at 0 %, so it removes every unused image.
    let s = setup(&[pod("web", 0)], |c| {
        c.eviction_hard = vec![];
        c.image_gc_high_threshold = 1;
        c.image_gc_low_threshold = 0;
        c.image_gc_period = Duration::from_secs(1);
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    wait_for("web to run", || async {
        let p = pods.get_opt("web").await.ok()??;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    wait_for("the unused image to go", || async {
        s.runtime
            .calls()
            .iter()
            .any(|c| c.starts_with("RemoveImage ") && c.ends_with("2"))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let removed: Vec<String> = s
        .runtime
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("RemoveImage "))
        .collect();
    assert_eq!(
        removed,
        ["RemoveImage sha256:0000000000000000000000000000000000000000000000000000000000000002"],
        "the image in use stays"
    );
    let p = pods.get("web").await.unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Running"));
    let _ = s.stop.send(());
    s.kubelet.await.unwrap();
}
