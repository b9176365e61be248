//! A Service in front of a Deployment, through the real API server and
//! controller manager: its Endpoints and EndpointSlice list the pods' IPs
//! (set through `pods/status`, as a kubelet would), a pod turning not ready
//! moves to `notReadyAddresses` / `ready: false` within a second or two,
//! the real kubectl shows both, a Service without a selector keeps its
//! user-managed Endpoints and has them mirrored into an EndpointSlice until
//! it gains a selector, and deleting the Service removes them all.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher::{self, Event};
use skiff_tests::{TestCluster, eventually, set_pod_status};

const MANIFEST: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  labels: {tier: front}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - {name: http, containerPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: external
  namespace: default
spec:
  ports:
  - {port: 5432}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: external
  namespace: default
subsets:
- addresses: [{ip: 192.168.7.7}]
  ports: [{port: 5432}]
"#;

/// Binds `pod` to `node` through `pods/binding`, as the scheduler would
/// (a bound pod is deleted gracefully, so it can be seen terminating).
async fn bind(pods: &Api<Pod>, pod: &str, node: &str) {
    let binding = serde_json::json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
                                     "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    pods.create_subresource::<serde_json::Value, serde_json::Value>(
        "binding",
        pod,
        &PostParams::default(),
        &binding,
    )
    .await
    .unwrap_or_else(|e| panic!("bind {pod}: {e}"));
}

/// (ready, not ready) IPs of an Endpoints object, with its ports.
fn addresses(ep: &Endpoints) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<i32>) {
    let mut ready = BTreeSet::new();
    let mut not_ready = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for s in ep.subsets.iter().flatten() {
        ready.extend(s.addresses.iter().flatten().map(|a| a.ip.clone()));
        not_ready.extend(s.not_ready_addresses.iter().flatten().map(|a| a.ip.clone()));
        ports.extend(s.ports.iter().flatten().map(|p| p.port));
    }
    (ready, not_ready, ports)
}

/// (ip, ready, serving, terminating) of every endpoint in `slices`.
fn slice_endpoints(slices: &[EndpointSlice]) -> BTreeSet<(String, bool, bool, bool)> {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            (
                e.addresses[0].clone(),
                c.ready == Some(true),
                c.serving == Some(true),
                c.terminating == Some(true),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_endpoints_follow_pod_readiness() {
    let cluster = TestCluster::start().await;
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let web_slices = ListParams::default().labels("kubernetes.io/service-name=web");

    cluster
        .kubectl_stdin(&["apply", "-f", "-"], Some(MANIFEST))
        .ok();
    let names: Vec<String> = eventually("3 pods", Duration::from_secs(30), || async {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?;
        (list.items.len() == 3).then(|| list.items.iter().map(|p| p.name_any()).collect())
    })
    .await;
    // Before any pod has an IP: an Endpoints without addresses and one
    // placeholder slice.
    eventually(
        "empty endpoints and a placeholder slice",
        Duration::from_secs(10),
        || async {
            let ep = endpoints.get_opt("web").await.ok()??;
            let s = slices.list(&web_slices).await.ok()?.items;
            (ep.subsets.is_none() && s.len() == 1 && slice_endpoints(&s).is_empty()).then_some(())
        },
    )
    .await;

    // The "kubelet" reports each pod Running and Ready with its own IP.
    let mut ips = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        bind(&pods, name, "n1").await;
        let ip = format!("10.244.1.{}", i + 10);
        set_pod_status(&pods, name, &ip, true).await;
        ips.insert(ip);
    }
    let ep = eventually("3 ready addresses", Duration::from_secs(10), || async {
        let ep = endpoints.get_opt("web").await.ok()??;
        (addresses(&ep).0 == ips).then_some(ep)
    })
    .await;
    let (_, not_ready, ports) = addresses(&ep);
    assert!(not_ready.is_empty());
    // targetPort "http" resolved to the container's port.
    assert_eq!(ports, BTreeSet::from([8080]));
    let subset = &ep.subsets.as_ref().unwrap()[0];
    let port = &subset.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.protocol.as_deref()),
        (Some("http"), Some("TCP"))
    );
    let address = &subset.addresses.as_ref().unwrap()[0];
    let target = address.target_ref.as_ref().unwrap();
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert_eq!(address.node_name.as_deref(), Some("n1"));
    assert!(names.contains(target.name.as_ref().unwrap()));
    assert_eq!(ep.labels().get("tier").map(String::as_str), Some("front"));

    let want: BTreeSet<(String, bool, bool, bool)> = ips
        .iter()
        .map(|ip| (ip.clone(), true, true, false))
        .collect();
    let slice = eventually(
        "a slice of 3 ready endpoints",
        Duration::from_secs(10),
        || async {
            let s = slices.list(&web_slices).await.ok()?.items;
            (s.len() == 1 && slice_endpoints(&s) == want).then(|| s[0].clone())
        },
    )
    .await;
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(
        slice
            .labels()
            .get("endpointslice.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpointslice-controller.k8s.io")
    );
    let owner = &slice.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Service", "web")
    );
    let slice_port = &slice.ports.as_ref().unwrap()[0];
    assert_eq!(
        (slice_port.name.as_deref(), slice_port.port),
        (Some("http"), Some(8080))
    );

    // One pod turns not ready: within a second or two it moves. Timed
    // from watches started beforehand, so the time is the controllers'
    // (not that of polling a busy machine).
    let sick_ip = "10.244.1.10".to_string();
    let ep_events = watcher::watcher(
        endpoints.clone(),
        watcher::Config::default().fields("metadata.name=web"),
    );
    let slice_events = watcher::watcher(
        slices.clone(),
        watcher::Config::default().labels("kubernetes.io/service-name=web"),
    );
    let sick = sick_ip.clone();
    let ep_seen = tokio::spawn(async move {
        let mut s = ep_events.boxed();
        while let Some(Ok(ev)) = s.next().await {
            if let Event::Apply(ep) = ev {
                let (ready, not_ready, _) = addresses(&ep);
                if not_ready == BTreeSet::from([sick.clone()]) && ready.len() == 2 {
                    return Instant::now();
                }
            }
        }
        panic!("endpoints watch ended");
    });
    let sick = (sick_ip.clone(), false, false, false);
    let slice_seen = tokio::spawn(async move {
        let mut s = slice_events.boxed();
        while let Some(Ok(ev)) = s.next().await {
            if let Event::Apply(slice) = ev
                && slice_endpoints(&[slice]).contains(&sick)
            {
                return Instant::now();
            }
        }
        panic!("slice watch ended");
    });
    // Both watches have listed (the pod is still ready there).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    set_pod_status(&pods, &names[0], &sick_ip, false).await;
    for (what, seen) in [("endpoints", ep_seen), ("slice", slice_seen)] {
        let at = tokio::time::timeout(Duration::from_secs(10), seen)
            .await
            .unwrap_or_else(|_| panic!("{what} never showed the pod not ready"))
            .unwrap();
        let took = at - started;
        assert!(took < Duration::from_secs(2), "{what} took {took:?}");
    }

    // The real kubectl shows them: Endpoints list the ready ones only.
    let out = cluster
        .kubectl_async(&["get", "endpoints", "web"])
        .await
        .ok();
    assert!(
        out.contains("10.244.1.11:8080") && out.contains("10.244.1.12:8080"),
        "{out}"
    );
    assert!(!out.contains("10.244.1.10"), "{out}");
    let out = cluster
        .kubectl_async(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ])
        .await
        .ok();
    assert!(out.contains("IPv4") && out.contains("8080"), "{out}");
    for ip in &ips {
        assert!(out.contains(ip.as_str()), "{out}");
    }

    // A terminating pod: ready=false, terminating=true in the slice, gone
    // from the Endpoints. (Nobody finishes its deletion: no kubelet.)
    pods.delete(&names[1], &DeleteParams::default())
        .await
        .unwrap();
    let leaving = "10.244.1.11".to_string();
    eventually("a terminating endpoint", Duration::from_secs(5), || async {
        let ep = endpoints.get("web").await.ok()?;
        let (ready, not_ready, _) = addresses(&ep);
        let s = slices.list(&web_slices).await.ok()?.items;
        (!ready.contains(&leaving)
            && !not_ready.contains(&leaving)
            && slice_endpoints(&s).contains(&(leaving.clone(), false, true, true)))
        .then_some(())
    })
    .await;

    // A Service without a selector keeps the Endpoints its user wrote.
    let external = endpoints.get("external").await.unwrap();
    assert_eq!(
        addresses(&external).0,
        BTreeSet::from(["192.168.7.7".to_string()])
    );
    // ... and mirrors them into an EndpointSlice (what the proxy reads),
    // owned by the Endpoints, following the user's edits.
    let mirrored = ListParams::default().labels(
        "kubernetes.io/service-name=external,endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io",
    );
    let mirrored_now = || async {
        let items = slices.list(&mirrored).await.ok()?.items;
        let ports: BTreeSet<i32> = items
            .iter()
            .flat_map(|s| s.ports.iter().flatten().filter_map(|p| p.port))
            .collect();
        let owners: BTreeSet<String> = items
            .iter()
            .flat_map(|s| s.metadata.owner_references.iter().flatten())
            .map(|o| format!("{}/{}", o.kind, o.name))
            .collect();
        Some((slice_endpoints(&items), ports, owners))
    };
    let ready_only =
        |ip: &str, ready: bool| BTreeSet::from([(ip.to_string(), ready, false, false)]);
    eventually("the mirrored slice", Duration::from_secs(10), || async {
        let (eps, ports, owners) = mirrored_now().await?;
        (eps == ready_only("192.168.7.7", true)
            && ports == BTreeSet::from([5432])
            && owners == BTreeSet::from(["Endpoints/external".to_string()]))
        .then_some(())
    })
    .await;
    let edited = r#"{"subsets": [{"notReadyAddresses": [{"ip": "192.168.7.8"}], "ports": [{"port": 5433}]}]}"#;
    cluster
        .kubectl_async(&[
            "patch",
            "endpoints",
            "external",
            "--type=merge",
            "-p",
            edited,
        ])
        .await
        .ok();
    eventually("the edit mirrored", Duration::from_secs(10), || async {
        let (eps, ports, _) = mirrored_now().await?;
        (eps == ready_only("192.168.7.8", false) && ports == BTreeSet::from([5433])).then_some(())
    })
    .await;
    // kubectl shows the mirrored slice like any other.
    let shown = cluster
        .kubectl_async(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=external",
        ])
        .await
        .ok();
    assert!(
        shown.contains("IPv4") && shown.contains("5433") && shown.contains("192.168.7.8"),
        "{shown}"
    );

    // The Service goes: its Endpoints (controller) and slices (GC) follow.
    cluster
        .kubectl_async(&["delete", "service", "web"])
        .await
        .ok();
    eventually(
        "endpoints and slices gone",
        Duration::from_secs(15),
        || async {
            let ep = endpoints.get_opt("web").await.ok()?;
            let s = slices.list(&web_slices).await.ok()?.items;
            (ep.is_none() && s.is_empty()).then_some(())
        },
    )
    .await;
    assert!(endpoints.get_opt("external").await.unwrap().is_some());

    // A selector on the external Service makes it the endpoint controllers':
    // the mirrored slice goes (they write their own, empty, as no pod matches).
    cluster
        .kubectl_async(&[
            "patch",
            "service",
            "external",
            "-p",
            r#"{"spec":{"selector":{"app":"db"}}}"#,
        ])
        .await
        .ok();
    eventually(
        "the mirrored slice gone",
        Duration::from_secs(10),
        || async {
            slices
                .list(&mirrored)
                .await
                .ok()?
                .items
                .is_empty()
                .then_some(())
        },
    )
    .await;

    cluster.stop().await;
}
