//! Restart safety of the controller manager: the real
//! `skiff-controller-manager` binary is SIGKILLed eight times at moments
//! spread over 150–450 ms (seeded from the PID, printed) while a
//! 30-replica Deployment is created and then rolled to a new image, and
//! each time a new one is started (no leader election, so it acts at
//! once). A watch of the pods checks at every event that no more than
//! replicas + maxSurge (30 + 8) pods ever live — a restarted controller
//! that forgot what it had created would overshoot. At the end: exactly 30
//! pods, all of the new template, two ReplicaSets (the old one at 0), and
//! the Deployment's status complete.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use skiff_tests::{TestCluster, eventually, fake_node};

const REPLICAS: usize = 30;
/// 25 % of 30, rounded up, as upstream rounds maxSurge.
const SURGE: usize = 8;

/// The controller manager built next to this test (scripts/test.sh builds
/// the workspace first).
fn binary() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let bin = deps
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("skiff-controller-manager");
    assert!(
        bin.exists(),
        "{} is not built: cargo build --workspace first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

struct Manager(Child);

impl Manager {
    fn start(kubeconfig: &std::path::Path) -> Manager {
        Manager(
            Command::new(binary())
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .args(["--leader-elect=false", "--port=0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start skiff-controller-manager"),
        )
    }

    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pauses of 150–450 ms from a small LCG (reproducible from its seed).
fn pauses(seed: u64, n: usize) -> Vec<Duration> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            Duration::from_millis(150 + (x >> 33) % 300)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_at_any_moment_it_converges_without_duplicates() {
    let cluster = TestCluster::start_apiserver().await;
    let client = cluster.client().await;
    let node = fake_node(client.clone(), "default", Duration::from_millis(50));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // Every pod alive (not terminating) at each moment, and the most seen.
    let live: Arc<Mutex<(HashSet<String>, usize)>> = Arc::default();
    let counter = {
        let live = live.clone();
        let pods = pods.clone();
        tokio::spawn(async move {
            let mut events = watcher::watcher(pods, watcher::Config::default()).boxed();
            while let Some(Ok(event)) = events.next().await {
                let mut l = live.lock().unwrap();
                match event {
                    // A re-list starts the picture again.
                    Event::Init => l.0.clear(),
                    Event::Apply(p) | Event::InitApply(p) => {
                        let name = p.metadata.name.clone().unwrap_or_default();
                        if p.metadata.deletion_timestamp.is_some() {
                            l.0.remove(&name);
                        } else {
                            l.0.insert(name);
                        }
                    }
                    Event::Delete(p) => {
                        l.0.remove(&p.metadata.name.unwrap_or_default());
                    }
                    _ => {}
                }
                l.1 = l.1.max(l.0.len());
            }
        })
    };

    let seed = u64::from(std::process::id());
    println!("restart convergence: seed {seed}");
    let mut pauses = pauses(seed, 8).into_iter();
    let mut manager = Manager::start(&cluster.kubeconfig);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "skiff/httpd:v1"}]}},
        },
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    for i in 0..8 {
        tokio::time::sleep(pauses.next().unwrap()).await;
        manager.kill();
        if i == 3 {
            // Mid-way, a new image: a rollout under the same kills.
            let image = json!({"spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "skiff/httpd:v2"}]}}}});
            deployments
                .patch("web", &PatchParams::default(), &Patch::Strategic(&image))
                .await
                .unwrap();
        }
        manager = Manager::start(&cluster.kubeconfig);
    }

    let done = eventually("the rollout to complete", Duration::from_secs(60), || {
        let deployments = deployments.clone();
        async move {
            let d = deployments.get("web").await.ok()?;
            let generation = d.metadata.generation;
            let s = d.status?;
            let complete = s.observed_generation == generation
                && s.updated_replicas == Some(REPLICAS as i32)
                && s.available_replicas == Some(REPLICAS as i32)
                && s.replicas == Some(REPLICAS as i32);
            complete.then_some(())
        }
    })
    .await;
    let () = done;
    let all = pods.list(&ListParams::default()).await.unwrap().items;
    let images: Vec<String> = all
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            p.spec.as_ref().unwrap().containers[0]
                .image
                .clone()
                .unwrap()
        })
        .collect();
    assert_eq!(images.len(), REPLICAS, "{images:?}");
    assert!(images.iter().all(|i| i == "skiff/httpd:v2"), "{images:?}");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let mut sizes: Vec<i32> = sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|rs| rs.spec.replicas.unwrap_or(0))
        .collect();
    sizes.sort();
    assert_eq!(
        sizes,
        [0, REPLICAS as i32],
        "one old ReplicaSet at 0, one new"
    );
    let most = live.lock().unwrap().1;
    println!("restart convergence: at most {most} pods at once");
    assert!(
        most <= REPLICAS + SURGE,
        "at one moment {most} pods lived: more than {REPLICAS} + maxSurge {SURGE} (seed {seed})"
    );
    counter.abort();
    node.abort();
    manager.kill();
    cluster.stop().await;
}
