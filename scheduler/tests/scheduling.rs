//! The scheduler against a real API server (skiff-apiserver in-process over its embedded
//! store) with fake nodes: Node objects with capacity, allocatable and a Ready condition,
//! created by the test; no kubelet. Every assertion reads the result back from the API server.

mod common;

use std::collections::BTreeMap;

use common::Cluster;
use serde_json::json;

fn count(placements: &BTreeMap<String, Option<String>>, node: &str) -> usize {
    placements
        .values()
        .filter(|n| n.as_deref() == Some(node))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_fit_and_do_not_overcommit() {
    let c = Cluster::start().await;
    c.node("small-a", "1", "2Gi", &[], json!({})).await;
    c.node("small-b", "1", "2Gi", &[], json!({})).await;
    for i in 0..5 {
        c.pod(&format!("p{i}"), "400m", "100Mi", json!({}), json!({}))
            .await;
    }
    // Two 400m pods fit on a 1-cpu node, three do not: four are bound, two per node.
    let mut pending = Vec::new();
    for i in 0..5 {
        let name = format!("p{i}");
        let pods = c.pods();
        let got = c
            .wait_for(&format!("{name} bound or unschedulable"), || {
                let (pods, name) = (pods.clone(), name.clone());
                async move {
                    let pod = pods.get(&name).await.ok()?;
                    if let Some(node) = common::node_of(&pod) {
                        return Some(Some(node));
                    }
                    let unschedulable = pod.status?.conditions?.iter().any(|c| {
                        c.type_ == "PodScheduled" && c.reason.as_deref() == Some("Unschedulable")
                    });
                    unschedulable.then_some(None)
                }
            })
            .await;
        if got.is_none() {
            pending.push(name);
        }
    }
    let placements = c.placements().await;
    assert_eq!(count(&placements, "small-a"), 2, "{placements:?}");
    assert_eq!(count(&placements, "small-b"), 2, "{placements:?}");
    assert_eq!(pending.len(), 1, "{placements:?}");
    let (reason, message) = c.unschedulable(&pending[0]).await;
    assert_eq!(reason, "Unschedulable");
    assert_eq!(
        message,
        "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: \
         2 No preemption victims found for incoming pod."
    );
    // Deleting a bound pod frees room: the pending one is scheduled there.
    let victim = placements
        .iter()
        .find(|(_, n)| n.as_deref() == Some("small-b"))
        .map(|(name, _)| name.clone())
        .unwrap();
    c.delete_pod(&victim).await;
    assert_eq!(c.bound(&pending[0]).await, "small-b");
    let placements = c.placements().await;
    assert_eq!(count(&placements, "small-a"), 2);
    assert_eq!(count(&placements, "small-b"), 2);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordoned_and_tainted_nodes_are_avoided() {
    let c = Cluster::start().await;
    c.node("cordoned", "8", "16Gi", &[], json!({"unschedulable": true}))
        .await;
    c.node(
        "tainted",
        "8",
        "16Gi",
        &[],
        json!({"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}),
    )
    .await;
    c.node("plain", "2", "4Gi", &[], json!({})).await;
    for i in 0..4 {
        c.pod(&format!("web-{i}"), "100m", "64Mi", json!({}), json!({}))
            .await;
    }
    for i in 0..4 {
        assert_eq!(c.bound(&format!("web-{i}")).await, "plain");
    }
    // A pod that tolerates the taint may go there (and is sent there by its selector).
    c.pod(
        "gpu-job",
        "100m",
        "64Mi",
        json!({}),
        json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                "effect": "NoSchedule"}],
               "nodeSelector": {"kubernetes.io/hostname": "tainted"}}),
    )
    .await;
    assert_eq!(c.bound("gpu-job").await, "tainted");
    // One that does not fit on the plain node has nowhere to go, and says why.
    c.pod("big", "4", "64Mi", json!({}), json!({})).await;
    let (_, message) = c.unschedulable("big").await;
    assert_eq!(
        message,
        "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint \
         {dedicated: gpu}, 1 node(s) were unschedulable. preemption: 0/3 nodes are available: \
         1 No preemption victims found for incoming pod, 2 Preemption is not helpful for \
         scheduling."
    );
    // Uncordoning the node lets it in.
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(c.client.clone());
    nodes
        .patch(
            "cordoned",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"unschedulable": false}})),
        )
        .await
        .unwrap();
    assert_eq!(c.bound("big").await, "cordoned");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_selector_and_affinity_are_honoured() {
    let c = Cluster::start().await;
    c.node(
        "a-ssd",
        "4",
        "8Gi",
        &[("zone", "a"), ("disk", "ssd")],
        json!({}),
    )
    .await;
    c.node(
        "a-hdd",
        "4",
        "8Gi",
        &[("zone", "a"), ("disk", "hdd")],
        json!({}),
    )
    .await;
    c.node(
        "b-ssd",
        "4",
        "8Gi",
        &[("zone", "b"), ("disk", "ssd")],
        json!({}),
    )
    .await;
    c.node(
        "b-hdd",
        "4",
        "8Gi",
        &[("zone", "b"), ("disk", "hdd"), ("cores", "16")],
        json!({}),
    )
    .await;
    let required = |exprs: serde_json::Value| {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": exprs}]}}}})
    };
    let cases = [
        (
            "selector",
            json!({"nodeSelector": {"zone": "b", "disk": "ssd"}}),
            vec!["b-ssd"],
        ),
        (
            "in-notin",
            required(json!([{"key": "disk", "operator": "In", "values": ["hdd"]},
                            {"key": "zone", "operator": "NotIn", "values": ["b"]}])),
            vec!["a-hdd"],
        ),
        (
            "gt",
            required(json!([{"key": "cores", "operator": "Gt", "values": ["8"]}])),
            vec!["b-hdd"],
        ),
        (
            "doesnotexist",
            required(json!([{"key": "cores", "operator": "DoesNotExist"},
                            {"key": "zone", "operator": "In", "values": ["b"]}])),
            vec!["b-ssd"],
        ),
    ];
    for (name, spec, _) in &cases {
        for i in 0..3 {
            c.pod(
                &format!("{name}-{i}"),
                "100m",
                "64Mi",
                json!({}),
                spec.clone(),
            )
            .await;
        }
    }
    for (name, _, allowed) in &cases {
        for i in 0..3 {
            let node = c.bound(&format!("{name}-{i}")).await;
            assert!(
                allowed.contains(&node.as_str()),
                "{name}-{i} went to {node}"
            );
        }
    }
    // Preferred affinity: every node fits, the preferred zone wins.
    for i in 0..3 {
        c.pod(
            &format!("prefers-a-{i}"),
            "100m",
            "64Mi",
            json!({}),
            json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a"]}]}}]}}}),
        )
        .await;
    }
    for i in 0..3 {
        let node = c.bound(&format!("prefers-a-{i}")).await;
        assert!(node.starts_with("a-"), "prefers-a-{i} went to {node}");
    }
    // A selector nothing matches: upstream's message.
    c.pod(
        "nowhere",
        "100m",
        "64Mi",
        json!({}),
        json!({"nodeSelector": {"zone": "c"}}),
    )
    .await;
    let (_, message) = c.unschedulable("nowhere").await;
    assert_eq!(
        message,
        "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling."
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicasets_pods_spread_across_nodes() {
    let c = Cluster::start().await;
    // One big node that least-allocated alone would always prefer, two small ones.
    c.node("big", "64", "256Gi", &[], json!({})).await;
    c.node("small-1", "4", "8Gi", &[], json!({})).await;
    c.node("small-2", "4", "8Gi", &[], json!({})).await;
    // Pods without an owner (and no requests) all go to the big node…
    for i in 0..3 {
        c.pod(
            &format!("loose-{i}"),
            "",
            "",
            json!({}),
            json!({"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}),
        )
        .await;
    }
    for i in 0..3 {
        assert_eq!(c.bound(&format!("loose-{i}")).await, "big");
    }
    // …but a ReplicaSet's pods spread: two on each node.
    let owner = json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": "web-5d8f", "uid": "6f1c9a52-0d7e-4b8e-9a51-3c2b7c1d9e01",
        "controller": true, "blockOwnerDeletion": true}]});
    for i in 0..6 {
        c.pod(
            &format!("web-5d8f-{i}"),
            "",
            "",
            owner.clone(),
            json!({"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}),
        )
        .await;
    }
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..6 {
        *per_node
            .entry(c.bound(&format!("web-5d8f-{i}")).await)
            .or_default() += 1;
    }
    assert_eq!(
        per_node,
        BTreeMap::from([
            ("big".into(), 2),
            ("small-1".into(), 2),
            ("small-2".into(), 2)
        ])
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pod_says_why_and_is_scheduled_when_a_node_fits() {
    let c = Cluster::start().await;
    let control_plane = json!({"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]});
    c.node("cp-1", "8", "16Gi", &[], control_plane.clone())
        .await;
    c.node("cp-2", "8", "16Gi", &[], control_plane).await;
    c.node("worker-1", "1", "16Gi", &[], json!({})).await;
    c.pod("web-1", "2", "1Gi", json!({}), json!({})).await;
    let (reason, message) = c.unschedulable("web-1").await;
    assert_eq!(reason, "Unschedulable");
    assert_eq!(
        message,
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
         {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: \
         1 No preemption victims found for incoming pod, 2 Preemption is not helpful for \
         scheduling."
    );
    assert_eq!(c.event("web-1", "FailedScheduling").await, message);
    // A pod for another scheduler is left alone.
    c.pod(
        "other",
        "100m",
        "64Mi",
        json!({}),
        json!({"schedulerName": "my-scheduler"}),
    )
    .await;

    c.node("worker-2", "4", "16Gi", &[], json!({})).await;
    assert_eq!(c.bound("web-1").await, "worker-2");
    assert_eq!(
        c.event("web-1", "Scheduled").await,
        "Successfully assigned default/web-1 to worker-2"
    );
    let pod = c.pods().get("web-1").await.unwrap();
    let scheduled = pod
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(scheduled.status, "True");

    // Metrics count what happened; the other scheduler's pod was never tried.
    let (status, metrics) = c.health_get("/metrics").await;
    assert!(status.contains("200"), "{status}");
    let value = |result: &str| -> u64 {
        let prefix = format!(
            "scheduler_schedule_attempts_total{{profile=\"default-scheduler\",result=\"{result}\"}} "
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("scheduled"), 1);
    assert!(value("unschedulable") >= 1);
    assert!(
        metrics.contains("scheduler_pending_pods{queue=\"unschedulable\"} 0"),
        "{metrics}"
    );
    assert_eq!(c.health_get("/healthz").await.1, "ok");
    assert_eq!(c.health_get("/readyz").await.1, "ok");
    let other = c.pods().get("other").await.unwrap();
    assert_eq!(common::node_of(&other), None);
    assert!(
        other
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .is_empty()
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_scheduler_takes_only_its_pods() {
    let mut c = Cluster::api_only().await;
    c.start_scheduler("my-scheduler").await;
    c.node("n1", "4", "8Gi", &[], json!({})).await;
    c.pod(
        "mine",
        "100m",
        "64Mi",
        json!({}),
        json!({"schedulerName": "my-scheduler"}),
    )
    .await;
    c.pod("default", "100m", "64Mi", json!({}), json!({})).await;
    assert_eq!(c.bound("mine").await, "n1");
    assert_eq!(
        c.event("mine", "Scheduled").await,
        "Successfully assigned default/mine to n1"
    );
    // Once "mine" is bound the scheduler has seen "default" too (same watch, earlier event),
    // and must have left it pending.
    let default = c.pods().get("default").await.unwrap();
    assert_eq!(common::node_of(&default), None);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_ports_and_topology_spread_constraints() {
    let c = Cluster::start().await;
    for (name, zone) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
        c.node(
            name,
            "4",
            "8Gi",
            &[("topology.kubernetes.io/zone", zone)],
            json!({}),
        )
        .await;
    }
    // hostPort 8080: one pod per node, the fourth has nowhere to go.
    let port_spec = json!({"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
        "ports": [{"containerPort": 80, "hostPort": 8080}]}]});
    for i in 0..4 {
        c.pod(&format!("port-{i}"), "", "", json!({}), port_spec.clone())
            .await;
    }
    let mut nodes = Vec::new();
    let mut pending = Vec::new();
    for i in 0..4 {
        let name = format!("port-{i}");
        let pods = c.pods();
        let got = c
            .wait_for(&name, || {
                let (pods, name) = (pods.clone(), name.clone());
                async move {
                    let pod = pods.get(&name).await.ok()?;
                    if let Some(n) = common::node_of(&pod) {
                        return Some(Some(n));
                    }
                    pod.status?
                        .conditions?
                        .iter()
                        .any(|c| c.type_ == "PodScheduled")
                        .then_some(None)
                }
            })
            .await;
        match got {
            Some(n) => nodes.push(n),
            None => pending.push(name),
        }
    }
    nodes.sort();
    assert_eq!(nodes, ["a1", "a2", "b1"]);
    assert_eq!(
        c.unschedulable(&pending[0]).await.1,
        "0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports. \
         preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
    // Zone spread, maxSkew 1, over zones a (2 nodes) and b (1 node): 2 + 2 of 4 pods.
    let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "spread"}}}]});
    for i in 0..4 {
        c.pod(
            &format!("spread-{i}"),
            "100m",
            "64Mi",
            json!({"labels": {"app": "spread"}}),
            spread.clone(),
        )
        .await;
    }
    let mut zone_b = 0;
    for i in 0..4 {
        if c.bound(&format!("spread-{i}")).await == "b1" {
            zone_b += 1;
        }
    }
    assert_eq!(zone_b, 2);
    c.stop().await;
}

/// Leader election: of two schedulers only the Lease holder schedules; a
/// stopped leader releases the Lease and the other takes over at once; a
/// leader whose Lease is taken from it stops with `LostLease`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_schedules() {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::Api;
    use kube::api::{Patch, PatchParams};
    use skiff_scheduler::metrics::AttemptResult::Scheduled;

    let c = Cluster::api_only().await;
    c.node("n1", "4", "8Gi", &[], json!({})).await;
    let elected = || {
        let mut config = skiff_scheduler::Config::for_kubeconfig(&c.kubeconfig);
        config.leader = skiff_proto::leader::Flags {
            leader_elect: true,
            leader_elect_lease_duration: std::time::Duration::from_secs(3),
            leader_elect_renew_deadline: std::time::Duration::from_secs(2),
            leader_elect_retry_period: std::time::Duration::from_millis(200),
        };
        config
    };
    let leases: Api<Lease> = Api::namespaced(c.client.clone(), "kube-system");
    let holder = || {
        let leases = leases.clone();
        async move {
            let lease = leases.get_opt("kube-scheduler").await.ok()??;
            lease.spec?.holder_identity
        }
    };

    let first = skiff_scheduler::start(elected()).await.unwrap();
    let first_holder = c.wait_for("a Lease holder", holder).await;
    let second = skiff_scheduler::start(elected()).await.unwrap();
    c.pod("p1", "100m", "10Mi", json!({}), json!({})).await;
    assert_eq!(c.bound("p1").await, "n1");
    assert_eq!(first.metrics.attempts(Scheduled), 1);
    assert_eq!(
        second.metrics.attempts(Scheduled),
        0,
        "the follower stays idle"
    );

    // A clean stop releases the Lease: the second takes it and schedules.
    first.stop().await.expect("a leader stopped cleanly");
    let second_holder = c
        .wait_for("the second instance to hold the Lease", || async {
            holder().await.filter(|h| *h != first_holder)
        })
        .await;
    c.pod("p2", "100m", "10Mi", json!({}), json!({})).await;
    assert_eq!(c.bound("p2").await, "n1");
    assert_eq!(second.metrics.attempts(Scheduled), 1);

    // Someone else takes the Lease (as an expired one would be taken): the
    // second sees it at its next renewal and stops scheduling for good.
    let usurp = json!({"spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 60}});
    leases
        .patch(
            "kube-scheduler",
            &PatchParams::default(),
            &Patch::Merge(&usurp),
        )
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), second.stopped())
        .await
        .expect("the usurped leader stops within a few renewals");
    assert!(matches!(
        second.stop().await,
        Err(skiff_scheduler::Error::LostLease)
    ));
    assert_ne!(second_holder, "someone-else");
    c.stop().await;
}
