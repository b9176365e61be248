//! A Deployment through the real API server and controller manager, driven by
//! the real kubectl, with a fake node marking pods Ready: created with 10
//! replicas, scaled 10→3→7, rolled to a new image with maxSurge=2 and
//! maxUnavailable=1 while an observer checks the bounds at every watch event,
//! `kubectl rollout status|history|undo`, and `kubectl get events`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use skiff_tests::{TestCluster, eventually, fake_node};

const MANIFEST: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 10
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 2, maxUnavailable: 1}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
"#;

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn image(pod: &Pod) -> String {
    pod.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

async fn active_pods(pods: &Api<Pod>) -> Vec<Pod> {
    pods.list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

/// Waits until the Deployment reports `n` updated, available replicas of
/// its latest generation, and exactly `n` ready pods of `image` exist.
async fn settled(deployments: &Api<Deployment>, pods: &Api<Pod>, n: i32, want_image: &str) {
    eventually(
        &format!("{n} ready pods of {want_image}"),
        Duration::from_secs(60),
        || async {
            let d = deployments.get("web").await.ok()?;
            let s = d.status.clone()?;
            let current = s.observed_generation >= d.metadata.generation
                && s.updated_replicas == Some(n)
                && s.available_replicas == Some(n)
                && s.replicas == Some(n);
            let pods = active_pods(pods).await;
            let good = pods.len() == n as usize
                && pods.iter().all(|p| is_ready(p) && image(p) == want_image);
            (current && good).then_some(())
        },
    )
    .await
}

/// What the observer saw during a rollout.
#[derive(Debug, Default)]
struct Observation {
    events: usize,
    violations: Vec<String>,
    /// Most pods seen at once, fewest ready pods seen at once, most
    /// ReplicaSet replicas (by spec) seen at once.
    max_pods: usize,
    min_ready: usize,
    max_spec: i32,
    /// Whether old and new pods were ever ready at the same moment.
    saw_mixed: bool,
}

/// Watches pods and ReplicaSets; after every event checks that pods (not
/// terminating) ≤ `max_total`, ready pods ≥ `min_ready` and the
/// ReplicaSets' replicas add up to ≤ `max_total`.
fn observe(
    client: Client,
    max_total: usize,
    min_ready: usize,
) -> (Arc<Mutex<Observation>>, tokio::task::JoinHandle<()>) {
    let obs = Arc::new(Mutex::new(Observation {
        min_ready: usize::MAX,
        ..Default::default()
    }));
    let out = obs.clone();
    let task = tokio::spawn(async move {
        enum Ev {
            Pod(Result<Event<Pod>, watcher::Error>),
            Rs(Result<Event<ReplicaSet>, watcher::Error>),
        }
        let pods = watcher::watcher(
            Api::<Pod>::namespaced(client.clone(), "default"),
            watcher::Config::default(),
        )
        .map(Ev::Pod);
        let rss = watcher::watcher(
            Api::<ReplicaSet>::namespaced(client, "default"),
            watcher::Config::default(),
        )
        .map(Ev::Rs);
        let mut stream = futures::stream::select(pods.boxed(), rss.boxed());
        let mut pod_map: BTreeMap<String, Pod> = BTreeMap::new();
        let mut rs_map: BTreeMap<String, ReplicaSet> = BTreeMap::new();
        let (mut pods_listed, mut rss_listed) = (false, false);
        while let Some(ev) = stream.next().await {
            match ev {
                Ev::Pod(Ok(Event::Apply(p) | Event::InitApply(p))) => {
                    pod_map.insert(p.name_any(), p);
                }
                Ev::Pod(Ok(Event::Delete(p))) => {
                    pod_map.remove(&p.name_any());
                }
                Ev::Pod(Ok(Event::InitDone)) => pods_listed = true,
                Ev::Rs(Ok(Event::Apply(r) | Event::InitApply(r))) => {
                    rs_map.insert(r.name_any(), r);
                }
                Ev::Rs(Ok(Event::Delete(r))) => {
                    rs_map.remove(&r.name_any());
                }
                Ev::Rs(Ok(Event::InitDone)) => rss_listed = true,
                _ => continue,
            }
            if !(pods_listed && rss_listed) {
                continue;
            }
            let active: Vec<&Pod> = pod_map
                .values()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let ready: Vec<&&Pod> = active.iter().filter(|p| is_ready(p)).collect();
            let spec: i32 = rs_map.values().map(|r| r.spec.replicas.unwrap_or(0)).sum();
            let mut o = out.lock().unwrap();
            o.events += 1;
            o.max_pods = o.max_pods.max(active.len());
            o.min_ready = o.min_ready.min(ready.len());
            o.max_spec = o.max_spec.max(spec);
            let images: std::collections::BTreeSet<String> =
                ready.iter().map(|p| image(p)).collect();
            o.saw_mixed |= images.len() > 1;
            if active.len() > max_total {
                o.violations
                    .push(format!("{} pods (max {max_total})", active.len()));
            }
            if ready.len() < min_ready {
                o.violations
                    .push(format!("{} ready (min {min_ready})", ready.len()));
            }
            if spec > max_total as i32 {
                o.violations
                    .push(format!("replica sets want {spec} (max {max_total})"));
            }
        }
    });
    (obs, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_scale_rollout_and_undo() {
    let cluster = TestCluster::start().await;
    let client = cluster.client().await;
    let node = fake_node(client.clone(), "default", Duration::from_millis(50));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");

    // Create: 10 pods owned by one ReplicaSet named web-<pod-template-hash>.
    cluster
        .kubectl_stdin(&["apply", "-f", "-"], Some(MANIFEST))
        .ok();
    settled(&deployments, &pods, 10, "nginx:1.27").await;
    let rs_list = replica_sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(rs_list.len(), 1);
    let first_rs = rs_list[0].name_any();
    let hash = rs_list[0].labels()["pod-template-hash"].clone();
    assert_eq!(first_rs, format!("web-{hash}"));
    for p in active_pods(&pods).await {
        assert!(
            p.name_any().starts_with(&format!("{first_rs}-")),
            "{}",
            p.name_any()
        );
        assert_eq!(p.labels()["pod-template-hash"], hash);
        assert_eq!(p.owner_references()[0].name, first_rs);
    }
    let status = cluster
        .kubectl_async(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await
        .ok();
    assert!(
        status.contains("deployment \"web\" successfully rolled out"),
        "{status}"
    );
    let shown = cluster
        .kubectl_async(&["get", "deployment", "web"])
        .await
        .ok();
    let row: Vec<&str> = shown.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "10/10", "10", "10"], "{shown}");

    // Scale 10 → 3 → 7.
    cluster
        .kubectl_async(&["scale", "deployment/web", "--replicas=3"])
        .await
        .ok();
    settled(&deployments, &pods, 3, "nginx:1.27").await;
    cluster
        .kubectl_async(&["scale", "deployment/web", "--replicas=7"])
        .await
        .ok();
    settled(&deployments, &pods, 7, "nginx:1.27").await;
    assert_eq!(
        replica_sets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // Roll to a new image: 7 replicas, maxSurge 2, maxUnavailable 1 → at most 9
    // pods, at least 6 ready, at every moment the observer sees.
    let (observation, observer) = observe(client.clone(), 9, 6);
    eventually(
        "the observer's first list",
        Duration::from_secs(10),
        || async { (observation.lock().unwrap().events > 0).then_some(()) },
    )
    .await;
    cluster
        .kubectl_async(&["set", "image", "deployment/web", "web=nginx:1.28"])
        .await
        .ok();
    let status = cluster
        .kubectl_async(&["rollout", "status", "deployment/web", "--timeout=90s"])
        .await
        .ok();
    assert!(
        status.ends_with("deployment \"web\" successfully rolled out\n"),
        "{status}"
    );
    assert!(
        status.contains("Waiting for deployment \"web\" rollout to finish"),
        "rollout status saw the rollout: {status}"
    );
    settled(&deployments, &pods, 7, "nginx:1.28").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    observer.abort();
    {
        let o = observation.lock().unwrap();
        assert!(o.violations.is_empty(), "bounds broken: {:?}", o.violations);
        assert!(o.events > 20, "the observer saw the rollout: {o:?}");
        assert!(o.saw_mixed, "old and new pods were ready together: {o:?}");
        assert!(
            o.max_pods > 7 && o.max_pods <= 9,
            "the rollout surged: {o:?}"
        );
        assert!(o.min_ready >= 6, "{o:?}");
        println!("rollout observation: {o:?}");
    }
    let rs_list = replica_sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(rs_list.len(), 2);
    let revision = |rs: &ReplicaSet| {
        rs.annotations()
            .get("deployment.kubernetes.io/revision")
            .cloned()
            .unwrap_or_default()
    };
    let old = rs_list.iter().find(|r| r.name_any() == first_rs).unwrap();
    assert_eq!((revision(old).as_str(), old.spec.replicas), ("1", Some(0)));
    let history = cluster
        .kubectl_async(&["rollout", "history", "deployment/web"])
        .await
        .ok();
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");

    // Undo: back to revision 1's ReplicaSet, which becomes revision 3.
    let undo = cluster
        .kubectl_async(&["rollout", "undo", "deployment/web"])
        .await
        .ok();
    assert_eq!(undo.trim(), "deployment.apps/web rolled back");
    let status = cluster
        .kubectl_async(&["rollout", "status", "deployment/web", "--timeout=90s"])
        .await
        .ok();
    assert!(status.contains("successfully rolled out"), "{status}");
    settled(&deployments, &pods, 7, "nginx:1.27").await;
    let rs_list = replica_sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(rs_list.len(), 2, "no third ReplicaSet");
    let back = rs_list.iter().find(|r| r.name_any() == first_rs).unwrap();
    assert_eq!(revision(back), "3");
    assert_eq!(back.spec.replicas, Some(7));
    assert_eq!(
        back.annotations()
            .get("deployment.kubernetes.io/revision-history")
            .map(String::as_str),
        Some("1")
    );
    let d = deployments.get("web").await.unwrap();
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("3")
    );
    let conditions: Vec<(String, String, String)> = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| {
            (
                c.type_.unwrap_or_default(),
                c.status.unwrap_or_default(),
                c.reason.unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        conditions.contains(&(
            "Available".into(),
            "True".into(),
            "MinimumReplicasAvailable".into()
        )),
        "{conditions:?}"
    );
    assert!(
        conditions.contains(&(
            "Progressing".into(),
            "True".into(),
            "NewReplicaSetAvailable".into()
        )),
        "{conditions:?}"
    );

    // kubectl get events shows what the controllers did.
    let events = eventually("events", Duration::from_secs(10), || async {
        let out = cluster
            .kubectl_async(&[
                "get",
                "events",
                "-o",
                "custom-columns=REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message",
            ])
            .await
            .ok();
        (out.contains("ScalingReplicaSet")
            && out.contains("SuccessfulCreate")
            && out.contains("SuccessfulDelete"))
        .then_some(out)
    })
    .await;
    assert!(
        events.contains(&format!("Scaled up replica set {first_rs} from 0 to 10")),
        "{events}"
    );
    assert!(
        events.contains(&format!("Scaled down replica set {first_rs} from 10 to 3")),
        "{events}"
    );
    assert!(
        events.lines().any(|l| l.starts_with("SuccessfulCreate")
            && l.contains(&format!("Created pod: {first_rs}-"))),
        "{events}"
    );
    let plain = cluster.kubectl_async(&["get", "events"]).await.ok();
    assert!(plain.lines().next().unwrap().contains("REASON"), "{plain}");
    assert!(
        plain.contains("deployment/web") && plain.contains(&format!("replicaset/{first_rs}")),
        "{plain}"
    );

    node.abort();
    cluster.stop().await;
}

const SMALL: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 2
  progressDeadlineSeconds: 4
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
"#;

async fn progressing(deployments: &Api<Deployment>) -> (String, String) {
    let d = deployments.get("web").await.unwrap();
    let c = d
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_.as_deref() == Some("Progressing"))
        .expect("a Progressing condition");
    (c.status.unwrap_or_default(), c.reason.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_restart_undo_to_revision_and_deadline() {
    let cluster = TestCluster::start().await;
    let client = cluster.client().await;
    let node = fake_node(client.clone(), "default", Duration::from_millis(50));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs_count = || async {
        replica_sets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len()
    };

    cluster
        .kubectl_stdin(&["apply", "-f", "-"], Some(SMALL))
        .ok();
    settled(&deployments, &pods, 2, "nginx:1.27").await;

    // Paused: the template changes, nothing rolls.
    cluster
        .kubectl_async(&["rollout", "pause", "deployment/web"])
        .await
        .ok();
    cluster
        .kubectl_async(&["set", "image", "deployment/web", "web=nginx:1.28"])
        .await
        .ok();
    eventually(
        "the DeploymentPaused condition",
        Duration::from_secs(10),
        || async {
            (progressing(&deployments).await == ("Unknown".into(), "DeploymentPaused".into()))
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rs_count().await, 1);
    assert!(
        active_pods(&pods)
            .await
            .iter()
            .all(|p| image(p) == "nginx:1.27")
    );

    // Resumed: it rolls.
    cluster
        .kubectl_async(&["rollout", "resume", "deployment/web"])
        .await
        .ok();
    cluster
        .kubectl_async(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await
        .ok();
    settled(&deployments, &pods, 2, "nginx:1.28").await;
    assert_eq!(rs_count().await, 2);

    // Restart: same image, new pods (a new ReplicaSet from the restartedAt annotation).
    let before: Vec<String> = active_pods(&pods)
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    cluster
        .kubectl_async(&["rollout", "restart", "deployment/web"])
        .await
        .ok();
    cluster
        .kubectl_async(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await
        .ok();
    settled(&deployments, &pods, 2, "nginx:1.28").await;
    assert_eq!(rs_count().await, 3);
    let after = active_pods(&pods).await;
    assert!(
        after.iter().all(|p| !before.contains(&p.name_any())),
        "all pods replaced"
    );
    assert!(after.iter().all(|p| {
        p.annotations()
            .contains_key("kubectl.kubernetes.io/restartedAt")
    }));

    // Undo to revision 1: the first ReplicaSet comes back as revision 4.
    let out = cluster
        .kubectl_async(&["rollout", "undo", "deployment/web", "--to-revision=1"])
        .await
        .ok();
    assert_eq!(out.trim(), "deployment.apps/web rolled back");
    cluster
        .kubectl_async(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await
        .ok();
    settled(&deployments, &pods, 2, "nginx:1.27").await;
    assert_eq!(rs_count().await, 3);
    let history = cluster
        .kubectl_async(&["rollout", "history", "deployment/web"])
        .await
        .ok();
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["2", "3", "4"], "{history}");

    // A rollout that cannot progress: after progressDeadlineSeconds (4 s) the
    // condition says so, kubectl rollout status fails, and the old pods stay
    // (maxUnavailable 0).
    cluster
        .kubectl_async(&["set", "image", "deployment/web", "web=broken:1"])
        .await
        .ok();
    let stuck = cluster
        .kubectl_async(&["rollout", "status", "deployment/web", "--timeout=120s"])
        .await;
    assert_ne!(stuck.code, 0);
    assert!(
        stuck
            .stderr
            .contains("deployment \"web\" exceeded its progress deadline"),
        "{stuck:?}"
    );
    assert_eq!(
        progressing(&deployments).await,
        ("False".into(), "ProgressDeadlineExceeded".into())
    );
    let ready_old = active_pods(&pods)
        .await
        .into_iter()
        .filter(|p| is_ready(p) && image(p) == "nginx:1.27")
        .count();
    assert_eq!(ready_old, 2);

    node.abort();
    cluster.stop().await;
}
