//! Nodes through the real API server and controller manager, with two fake
//! nodes whose "kubelets" are tasks of this test (a Lease renewed every
//! 500 ms, pods bound by a fake scheduler and marked Ready): each node gets
//! its own pod CIDR; when n1's Lease stops being renewed it is marked
//! Unknown and tainted `unreachable`, its pods are marked not Ready and —
//! their toleration being 2 s — evicted, and the Deployment's ReplicaSet
//! replaces them on n2; when n1 heartbeats again its taints go.
//! `--node-monitor-grace-period=3s` keeps it short.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use skiff_tests::{TestCluster, eventually, set_pod_status};

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      containers:
      - name: app
        image: busybox
"#;

fn ready_status() -> Value {
    let now = Timestamp::now().to_string();
    json!({"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
         "lastHeartbeatTime": now, "lastTransitionTime": now},
        {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
         "lastHeartbeatTime": now, "lastTransitionTime": now},
    ]}})
}

async fn register(nodes: &Api<Node>, name: &str) {
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&ready_status()),
        )
        .await
        .unwrap();
}

/// Renews `name`'s Lease every 500 ms while `alive[name]` holds.
fn heartbeat(
    client: Client,
    name: &str,
    alive: Arc<Mutex<HashMap<String, bool>>>,
) -> tokio::task::JoinHandle<()> {
    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let name = name.to_string();
    tokio::spawn(async move {
        let lease: Lease = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": Timestamp::now().to_string()},
        }))
        .unwrap();
        leases.create(&PostParams::default(), &lease).await.unwrap();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if alive.lock().unwrap().get(&name) != Some(&true) {
                continue;
            }
            let renew = json!({"spec": {"renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(Timestamp::now())}});
            let _ = leases
                .patch(&name, &PatchParams::default(), &Patch::Merge(&renew))
                .await;
        }
    })
}

/// The fake scheduler and kubelets: binds unbound pods to `target`, marks
/// pods of live nodes Running and Ready with an IP, and finishes the
/// deletion of terminating pods on live nodes. Pods on a dead node are left
/// as they are, as they would be.
fn fake_nodes(
    client: Client,
    target: Arc<Mutex<String>>,
    alive: Arc<Mutex<HashMap<String, bool>>>,
) -> tokio::task::JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client, "default");
    tokio::spawn(async move {
        let mut next_ip = 20;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Ok(list) = pods.list(&ListParams::default()).await else {
                continue;
            };
            for pod in list.items {
                let name = pod.name_any();
                let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
                let Some(node) = node else {
                    let to = target.lock().unwrap().clone();
                    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                                         "target": {"apiVersion": "v1", "kind": "Node", "name": to}});
                    let _ = pods
                        .create_subresource::<Value, Value>(
                            "binding",
                            &name,
                            &PostParams::default(),
                            &binding,
                        )
                        .await;
                    continue;
                };
                if alive.lock().unwrap().get(&node) != Some(&true) {
                    continue;
                }
                if pod.metadata.deletion_timestamp.is_some() {
                    let _ = pods
                        .delete(&name, &DeleteParams::default().grace_period(0))
                        .await;
                    continue;
                }
                let has_ip = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.pod_ip.as_ref())
                    .is_some();
                if !has_ip {
                    next_ip += 1;
                    set_pod_status(&pods, &name, &format!("10.244.9.{next_ip}"), true).await;
                }
            }
        }
    })
}

fn condition(node: &Node, type_: &str) -> Option<(String, Option<String>, Option<String>)> {
    let c = node
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn taints(node: &Node) -> Vec<String> {
    let mut t: Vec<String> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .iter()
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect();
    t.sort();
    t
}

fn pod_ready(pod: &Pod) -> Option<bool> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some(c.status == "True")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_node_is_tainted_and_its_pods_replaced() {
    let cluster = TestCluster::start_with(&[
        "--node-monitor-grace-period=3s",
        "--node-monitor-period=500ms",
    ])
    .await;
    let client = cluster.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    let alive = Arc::new(Mutex::new(HashMap::from([
        ("n1".to_string(), true),
        ("n2".to_string(), true),
    ])));
    register(&nodes, "n1").await;
    register(&nodes, "n2").await;
    let beats = [
        heartbeat(client.clone(), "n1", alive.clone()),
        heartbeat(client.clone(), "n2", alive.clone()),
    ];

    // Node IPAM: a distinct /24 of 10.244.0.0/16 each.
    let cidrs: Vec<String> = eventually("pod CIDRs", Duration::from_secs(10), || async {
        let mut out = Vec::new();
        for n in ["n1", "n2"] {
            let spec = nodes.get(n).await.ok()?.spec?;
            let cidr = spec.pod_cidr?;
            assert_eq!(spec.pod_cidrs, Some(vec![cidr.clone()]));
            out.push(cidr);
        }
        Some(out)
    })
    .await;
    assert_ne!(cidrs[0], cidrs[1]);
    for c in &cidrs {
        let (ip, bits) = c.split_once('/').unwrap();
        let ip: Ipv4Addr = ip.parse().unwrap();
        assert_eq!(bits, "24");
        assert_eq!(ip.octets()[..2], [10, 244], "{c}");
    }

    // Two pods on n1, Ready.
    let target = Arc::new(Mutex::new("n1".to_string()));
    let fake = fake_nodes(client.clone(), target.clone(), alive.clone());
    cluster
        .kubectl_stdin(&["apply", "-f", "-"], Some(DEPLOYMENT))
        .ok();
    let old: Vec<String> = eventually("2 ready pods on n1", Duration::from_secs(20), || async {
        let list = pods
            .list(&ListParams::default().labels("app=app"))
            .await
            .ok()?
            .items;
        let ok = list.len() == 2
            && list.iter().all(|p| {
                pod_ready(p) == Some(true)
                    && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("n1")
            });
        ok.then(|| list.iter().map(|p| p.name_any()).collect())
    })
    .await;
    // Healthy nodes are left alone (a few grace periods pass).
    tokio::time::sleep(Duration::from_secs(4)).await;
    for n in ["n1", "n2"] {
        let node = nodes.get(n).await.unwrap();
        assert_eq!(condition(&node, "Ready").unwrap().0, "True", "{n}");
        assert!(taints(&node).is_empty(), "{n}: {:?}", taints(&node));
    }

    // n1 goes silent; from now on the "scheduler" uses n2.
    *target.lock().unwrap() = "n2".to_string();
    alive.lock().unwrap().insert("n1".into(), false);
    let n1 = eventually(
        "n1 Unknown and tainted",
        Duration::from_secs(15),
        || async {
            let n = nodes.get("n1").await.ok()?;
            let tainted = taints(&n)
                == [
                    "node.kubernetes.io/unreachable:NoExecute",
                    "node.kubernetes.io/unreachable:NoSchedule",
                ];
            (condition(&n, "Ready")?.0 == "Unknown" && tainted).then_some(n)
        },
    )
    .await;
    assert_eq!(
        condition(&n1, "Ready").unwrap(),
        (
            "Unknown".to_string(),
            Some("NodeStatusUnknown".to_string()),
            Some("Kubelet stopped posting node status.".to_string())
        )
    );
    assert_eq!(condition(&n1, "MemoryPressure").unwrap().0, "Unknown");
    let noexec = n1
        .spec
        .as_ref()
        .unwrap()
        .taints
        .as_ref()
        .unwrap()
        .iter()
        .find(|t| t.effect == "NoExecute")
        .unwrap();
    assert!(noexec.time_added.is_some());

    // Its pods: marked not Ready, evicted after their 2 s toleration, and
    // replaced on n2.
    eventually(
        "old pods evicted, 2 new ready pods on n2",
        Duration::from_secs(20),
        || async {
            let list = pods
                .list(&ListParams::default().labels("app=app"))
                .await
                .ok()?
                .items;
            let olds: Vec<&Pod> = list
                .iter()
                .filter(|p| old.contains(&p.name_any()))
                .collect();
            let evicted = olds
                .iter()
                .all(|p| p.metadata.deletion_timestamp.is_some() && pod_ready(p) == Some(false));
            let new: Vec<&Pod> = list
                .iter()
                .filter(|p| !old.contains(&p.name_any()) && p.metadata.deletion_timestamp.is_none())
                .collect();
            let replaced = new.len() == 2
                && new.iter().all(|p| {
                    pod_ready(p) == Some(true)
                        && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("n2")
                });
            (evicted && replaced).then_some(())
        },
    )
    .await;
    let n2 = nodes.get("n2").await.unwrap();
    assert_eq!(condition(&n2, "Ready").unwrap().0, "True");
    assert!(taints(&n2).is_empty());

    // What kubectl shows: the node, and the events.
    let out = cluster
        .kubectl_async(&["describe", "node", "n1"])
        .await
        .ok();
    assert!(
        out.contains("node.kubernetes.io/unreachable:NoExecute"),
        "{out}"
    );
    let out = eventually("events", Duration::from_secs(10), || async {
        let out = cluster.kubectl_async(&["get", "events", "-A"]).await.ok();
        (out.contains("NodeNotReady") && out.contains("TaintManagerEviction")).then_some(out)
    })
    .await;
    assert!(out.contains("Marking for deletion Pod default/"), "{out}");

    // n1 comes back: fresh Lease, Ready=True posted; its taints go.
    alive.lock().unwrap().insert("n1".into(), true);
    nodes
        .patch_status(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(&ready_status()),
        )
        .await
        .unwrap();
    eventually("n1 untainted", Duration::from_secs(10), || async {
        let n = nodes.get("n1").await.ok()?;
        (condition(&n, "Ready")?.0 == "True" && taints(&n).is_empty()).then_some(())
    })
    .await;

    fake.abort();
    for b in beats {
        b.abort();
    }
    cluster.stop().await;
}
