//! The same API through kube-rs, the client every Skiff program uses:
//! typed CRUD, pagination, a watcher that keeps going across a restart of
//! the API server and relists after a 410, and the server's limits.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{ApiServer, Backend};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Error};
use serde_json::json;

on_both_backends!(
    typed_crud,
    pagination,
    limits,
    events_in_both_groups,
    status_on_create
);

async fn client(server: &ApiServer) -> Client {
    Client::try_from(config(server).await).expect("client")
}

async fn config(server: &ApiServer) -> kube::Config {
    let kubeconfig = Kubeconfig::read_from(&server.kubeconfig).expect("admin kubeconfig");
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig")
}

fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
        "data": {"color": "blue"},
    }))
    .unwrap()
}

fn api_code(err: Error) -> u16 {
    match err {
        Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn typed_crud(s: &ApiServer) {
    let c = client(s).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let created = cms
        .create(
            &PostParams::default(),
            &config_map("one", &[("app", "web")]),
        )
        .await
        .unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    assert!(
        created.metadata.resource_version.is_some()
            && created.metadata.creation_timestamp.is_some()
    );
    assert_eq!(
        api_code(
            cms.create(&PostParams::default(), &config_map("one", &[]))
                .await
                .unwrap_err()
        ),
        409
    );

    let got = cms.get("one").await.unwrap();
    assert_eq!(got.metadata.uid.as_deref(), Some(uid.as_str()));
    cms.create(&PostParams::default(), &config_map("two", &[("app", "db")]))
        .await
        .unwrap();
    let web = cms
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(
        web.items
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect::<Vec<_>>(),
        ["one"]
    );

    // Replace with the resourceVersion read: fine once, a conflict with the old one.
    let mut changed = got.clone();
    changed
        .data
        .as_mut()
        .unwrap()
        .insert("color".into(), "red".into());
    let replaced = cms
        .replace("one", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        got.metadata.resource_version
    );
    assert_eq!(
        api_code(
            cms.replace("one", &PostParams::default(), &changed)
                .await
                .unwrap_err()
        ),
        409
    );

    let merged = cms
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"size": "xl"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.data.unwrap().get("size").map(String::as_str),
        Some("xl")
    );
    let applied = cms
        .patch("one", &PatchParams::apply("skiff-test").force(), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}, "data": {"color": "green"}})))
        .await
        .unwrap();
    assert_eq!(
        applied.data.unwrap().get("color").map(String::as_str),
        Some("green")
    );

    let deployments: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "side", "image": "busybox"}]}}},
    }))
    .unwrap();
    let created = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    assert_eq!(created.spec.replicas, Some(1), "defaulted");
    let strategic = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}});
    let patched = deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(strategic))
        .await
        .unwrap();
    let containers = patched.spec.template.spec.unwrap().containers;
    assert_eq!(
        containers
            .iter()
            .map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or("")))
            .collect::<Vec<_>>(),
        [("web", "nginx:1.28"), ("side", "busybox")]
    );
    assert_eq!(patched.metadata.generation, Some(2));

    let deleted = cms.delete("two", &DeleteParams::default()).await.unwrap();
    assert!(
        deleted.is_right(),
        "deleted at once, answered with a Status"
    );
    assert_eq!(api_code(cms.get("two").await.unwrap_err()), 404);
}

async fn pagination(s: &ApiServer) {
    let c = client(s).await;
    let cms: Api<ConfigMap> = Api::namespaced(c, "default");
    for i in 0..25 {
        cms.create(
            &PostParams::default(),
            &config_map(&format!("page-{i:02}"), &[("paged", "yes")]),
        )
        .await
        .unwrap();
    }
    let mut names = Vec::new();
    let mut params = ListParams::default().labels("paged=yes").limit(10);
    let mut pages = 0;
    loop {
        let page = cms.list(&params).await.unwrap();
        pages += 1;
        names.extend(page.items.iter().map(|c| c.metadata.name.clone().unwrap()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        (0..25).map(|i| format!("page-{i:02}")).collect::<Vec<_>>()
    );
}

async fn limits(s: &ApiServer) {
    let c = client(s).await;
    let send = |request: http::Request<Vec<u8>>| {
        let c = c.clone();
        async move { c.send(request.map(Into::into)).await.unwrap() }
    };
    let post = |body: Vec<u8>| {
        http::Request::post("/api/v1/namespaces/default/configmaps")
            .header("Content-Type", "application/json")
            .body(body)
            .unwrap()
    };
    // Over 3 MiB: 413.
    let huge = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"}, "data": {"x": "y".repeat(4 << 20)}});
    let resp = send(post(serde_json::to_vec(&huge).unwrap())).await;
    assert_eq!(resp.status(), 413);
    // Not JSON: 400 with the decoder's message.
    let resp = send(post(b"{\"apiVersion\": \"v1\", ".to_vec())).await;
    assert_eq!(resp.status(), 400);
    let body = axum_body(resp).await;
    assert_eq!(body["reason"], "BadRequest");
    assert!(
        body["message"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );
    // An unknown resource: 404 Status.
    let resp = send(
        http::Request::get("/api/v1/nosuchthings")
            .body(vec![])
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), 404);
}

/// An Event written through events.k8s.io/v1 by kube-rs's `Recorder` (how
/// Skiff's controllers report) is the Event `kubectl get events` and
/// `kubectl describe` read through core/v1, and the other way round.
async fn events_in_both_groups(s: &ApiServer) {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event;
    use kube::Resource;
    use kube::runtime::events::{Event as Report, EventType, Recorder, Reporter};

    let c = client(s).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let cm = cms
        .create(&PostParams::default(), &config_map("settings", &[]))
        .await
        .unwrap();
    let reporter = Reporter {
        controller: "skiff-test-controller".into(),
        instance: Some("test-1".into()),
    };
    let recorder = Recorder::new(c.clone(), reporter);
    let report = Report {
        type_: EventType::Warning,
        reason: "ColorChanged".into(),
        note: Some("color went from red to blue".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    // Twice: the second is a merge patch that starts a series.
    for _ in 0..2 {
        recorder
            .publish(&report, &cm.object_ref(&()))
            .await
            .unwrap();
    }

    let core: Api<CoreEvent> = Api::namespaced(c.clone(), "default");
    let about_cm = ListParams::default().fields("involvedObject.name=settings");
    let listed = core.list(&about_cm).await.unwrap();
    assert_eq!(listed.items.len(), 1, "{:?}", listed.items);
    let event = &listed.items[0];
    assert_eq!(
        event.message.as_deref(),
        Some("color went from red to blue")
    );
    assert_eq!(
        event.reporting_component.as_deref(),
        Some("skiff-test-controller")
    );
    assert_eq!(event.involved_object.kind.as_deref(), Some("ConfigMap"));
    assert_eq!(event.series.as_ref().and_then(|s| s.count), Some(2));

    let table = s.kubectl(&["get", "events", "-n", "default"]).ok();
    let row = table
        .lines()
        .find(|l| l.contains("ColorChanged"))
        .unwrap_or_else(|| panic!("no event row in:\n{table}"));
    assert!(
        row.contains("Warning") && row.contains("configmap/settings"),
        "{row}"
    );
    assert!(row.contains("color went from red to blue"), "{row}");
    let described = s
        .kubectl(&["describe", "configmap", "settings", "-n", "default"])
        .ok();
    let events = described.split("Events:").nth(1).unwrap_or_default();
    assert!(
        events.contains("ColorChanged") && events.contains("skiff-test-controller"),
        "{described}"
    );

    // And a core Event (how the kubelet and kubectl's own tools write) reads
    // through events.k8s.io with its fields renamed.
    let core_event: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "settings.core"},
        "involvedObject": {"kind": "ConfigMap", "name": "settings", "namespace": "default"},
        "reason": "Pulled", "message": "from core", "type": "Normal",
        "source": {"component": "kubelet"}, "count": 3,
    }))
    .unwrap();
    core.create(&PostParams::default(), &core_event)
        .await
        .unwrap();
    let v1: Api<Event> = Api::namespaced(c.clone(), "default");
    let read = v1.get("settings.core").await.unwrap();
    assert_eq!(read.note.as_deref(), Some("from core"));
    assert_eq!(
        read.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("settings")
    );
    assert_eq!(read.deprecated_count, Some(3));
    let by_regarding = ListParams::default().fields("regarding.name=settings");
    assert_eq!(v1.list(&by_regarding).await.unwrap().items.len(), 2);

    // events.k8s.io asks more of a write than core/v1 does.
    let sparse: Event = serde_json::from_value(json!({"metadata": {"name": "sparse"}})).unwrap();
    let err = v1
        .create(&PostParams::default(), &sparse)
        .await
        .unwrap_err();
    assert_eq!(api_code(err), 422);
}

/// A kubelet registers its Node with its status in one POST, so a Node keeps
/// the status it is created with; every other kind with a status
/// subresource starts from the server's status, as upstream.
async fn status_on_create(s: &ApiServer) {
    use k8s_openapi::api::core::v1::{Node, Pod};
    let c = client(s).await;
    let nodes: Api<Node> = Api::all(c.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "worker-1"},
        "status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "3800m", "memory": "7Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let read = nodes.get("worker-1").await.unwrap();
    let status = read.status.expect("the node keeps its status");
    let allocatable = status.allocatable.expect("allocatable");
    assert_eq!(allocatable["cpu"].0, "3800m");
    assert_eq!(status.conditions.unwrap()[0].type_, "Ready");

    let pods: Api<Pod> = Api::namespaced(c, "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.9"},
    }))
    .unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = created.status.unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert_eq!(
        status.pod_ip, None,
        "a pod cannot be created Running with an IP"
    );
}

async fn axum_body(resp: http::Response<kube::client::Body>) -> serde_json::Value {
    let bytes = resp.into_body().collect_bytes().await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Collects watcher events in the background.
fn watch_config_maps(c: Client) -> tokio::sync::mpsc::UnboundedReceiver<watcher::Event<ConfigMap>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    tokio::spawn(async move {
        let config = watcher::Config::default().labels("watched=yes");
        let mut stream = watcher(api, config).boxed();
        loop {
            match stream.try_next().await {
                Ok(Some(event)) => {
                    if tx.send(event).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                // Connection errors while the server restarts: the watcher retries.
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    rx
}

/// Waits for an event naming `name` (Apply or InitApply); returns what came before it.
async fn until_named(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<watcher::Event<ConfigMap>>,
    name: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no event for {name}; saw {seen:?}"))
            .unwrap();
        let (label, object) = match &event {
            watcher::Event::Init => ("Init".to_string(), None),
            watcher::Event::InitDone => ("InitDone".to_string(), None),
            watcher::Event::InitApply(o) => ("InitApply".to_string(), o.metadata.name.clone()),
            watcher::Event::Apply(o) => ("Apply".to_string(), o.metadata.name.clone()),
            watcher::Event::Delete(o) => ("Delete".to_string(), o.metadata.name.clone()),
        };
        seen.push(format!("{label}({})", object.clone().unwrap_or_default()));
        if object.as_deref() == Some(name) && label != "Delete" {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_resumes_after_a_restart() {
    let mut s = ApiServer::start(Backend::Embedded).await;
    let c = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let mut events = watch_config_maps(c);
    cms.create(
        &PostParams::default(),
        &config_map("before", &[("watched", "yes")]),
    )
    .await
    .unwrap();
    until_named(&mut events, "before").await;

    s.restart();
    let c = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(c, "default");
    cms.create(
        &PostParams::default(),
        &config_map("after", &[("watched", "yes")]),
    )
    .await
    .unwrap();
    let seen = until_named(&mut events, "after").await;
    assert!(
        seen.iter()
            .any(|e| e == "Apply(after)" || e == "InitApply(after)"),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_relists_after_410() {
    let mut s = ApiServer::start(Backend::Etcd).await;
    let c = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let mut events = watch_config_maps(c);
    cms.create(
        &PostParams::default(),
        &config_map("before", &[("watched", "yes")]),
    )
    .await
    .unwrap();
    until_named(&mut events, "before").await;

    // While the API server is down, etcd moves on: when it comes back its
    // watch history starts after the watcher's last resourceVersion.
    s.kill();
    let mut etcd = etcd_client::Client::connect([s.etcd_endpoint().unwrap()], None)
        .await
        .unwrap();
    let outage = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "outage", "namespace": "default", "uid": "00000000-0000-4000-8000-000000000001", "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"watched": "yes"}}, "data": {"written": "while the API server was down"}});
    etcd.put(
        "/registry/configmaps/default/outage",
        outage.to_string(),
        None,
    )
    .await
    .unwrap();
    s.restart();

    let seen = until_named(&mut events, "outage").await;
    // The resume from the old resourceVersion got 410 Expired: the watcher
    // started over with a fresh list.
    assert!(
        seen.iter().any(|e| e == "Init()"),
        "a relist after the 410: {seen:?}"
    );
    assert!(seen.iter().any(|e| e == "InitApply(outage)"), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_get_429_with_retry_after() {
    let s = ApiServer::start_with(Backend::Embedded, &["--max-requests-inflight", "1"]).await;
    // Another user's list, waiting for a resourceVersion the cache has not
    // reached, holds the only slot for a few seconds (then answers 504).
    let mut slow = s.kubectl_spawn(&[
        "get",
        "--raw",
        "/api/v1/configmaps?resourceVersion=999999999",
        "--request-timeout=20s",
    ]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // kube-rs retries 429s by default (as client-go does): see the raw answer first.
    let mut raw = config(&s).await;
    raw.default_retry = false;
    let c = Client::try_from(raw).unwrap();
    let request = http::Request::get("/api/v1/namespaces")
        .body(Vec::new())
        .unwrap();
    let resp = c.send(request.map(Into::into)).await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body = axum_body(resp).await;
    assert_eq!(body["reason"], "TooManyRequests");
    // Watches do not count against the limit: one starts while the slot is taken.
    let watch = http::Request::get("/api/v1/configmaps?watch=true&timeoutSeconds=1")
        .body(Vec::new())
        .unwrap();
    assert_eq!(c.send(watch.map(Into::into)).await.unwrap().status(), 200);
    // With kube's default retries, the same request waits its turn and succeeds.
    let patient = client(&s).await;
    let request = http::Request::get("/api/v1/namespaces")
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        patient
            .send(request.map(Into::into))
            .await
            .unwrap()
            .status(),
        200
    );
    let _ = slow.kill();
    let _ = slow.wait();
}
