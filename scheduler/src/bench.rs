//! `skiff-scheduler bench`, in the style of Kubernetes' scheduler_perf `SchedulingBasic`:
//! a real API server (embedded store, in this process), N fake nodes (Node objects, no
//! kubelet), then many pods created while the scheduler runs. It prints pods scheduled per
//! second and the time from each pod's creation request to its binding being seen on a
//! watch (p50/p99), next to kube-scheduler's published CI floor for reference.
//!
//! Everything — API server, store, scheduler and the load generator — shares this machine's
//! CPUs, so the figures are a floor for the scheduler alone.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use tokio::sync::Mutex;

use crate::Config;
use crate::resources::Resources;

/// kube-scheduler's CI threshold for SchedulingBasic at 5000 nodes (pods/s).
pub const UPSTREAM_FLOOR_5000_NODES: f64 = 680.0;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchConfig {
    /// Node counts, one round each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,5000")]
    pub nodes: Vec<usize>,

    /// Pods created per round.
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,

    /// Concurrent clients creating nodes and pods.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,

    /// Create every pod before the scheduler starts: measures scheduling alone (the
    /// creation→binding times then include the wait for the scheduler).
    #[arg(long)]
    pub preload: bool,
}

/// A Node object as a kubelet would register it: capacity = allocatable, Ready.
pub fn fake_node(name: &str, cpu: &str, memory: &str, pods: u32, labels: &[(&str, &str)]) -> Node {
    let mut all_labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all_labels.insert("kubernetes.io/hostname".into(), name.into());
    all_labels.insert("kubernetes.io/os".into(), "linux".into());
    let resources = json!({"cpu": cpu, "memory": memory, "pods": pods.to_string(),
                           "ephemeral-storage": "100Gi"});
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": all_labels},
        "spec": {},
        "status": {
            "capacity": resources, "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "fake node (no kubelet)"}],
        }
    }))
    .expect("a valid Node")
}

/// A pod asking for `cpu` and `memory`, scheduled by default-scheduler.
pub fn pending_pod(name: &str, cpu: &str, memory: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
    }))
    .expect("a valid Pod")
}

/// Creates a Node as a kubelet registers one, status included. skiff-apiserver drops the
/// status sent with a create (upstream keeps a Node's), so it is written again through the
/// status subresource.
pub async fn create_node(client: &kube::Client, node: &Node) -> Result<Node, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let created = nodes.create(&PostParams::default(), node).await?;
    if created
        .status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .is_some()
    {
        return Ok(created);
    }
    let name = created.metadata.name.clone().unwrap_or_default();
    let patch = json!({"status": node.status});
    nodes
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot create a temporary directory: {0}")]
    TempDir(std::io::Error),
    #[error("API server: {0}")]
    ApiServer(#[from] skiff_apiserver::StartError),
    #[error("scheduler: {0}")]
    Scheduler(#[from] crate::Error),
    #[error("API request: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}

/// One round's figures.
#[derive(Debug, Clone)]
pub struct RoundResult {
    pub nodes: usize,
    pub pods: usize,
    pub created_per_sec: f64,
    pub scheduled_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max_pods_on_a_node: usize,
}

pub async fn run(config: BenchConfig) -> Result<Vec<RoundResult>, BenchError> {
    println!(
        "skiff-scheduler bench: {} pods per round (100m cpu, 500Mi each), {} clients{}",
        config.pods,
        config.clients,
        if config.preload {
            ", pods created before the scheduler starts"
        } else {
            ""
        }
    );
    println!(
        "{:>6} {:>7} {:>11} {:>12} {:>14} {:>14} {:>10}",
        "nodes", "pods", "created/s", "scheduled/s", "p50 create→bind", "p99", "max/node"
    );
    let mut results = Vec::new();
    for &nodes in &config.nodes {
        let r = round(&config, nodes).await?;
        println!(
            "{:>6} {:>7} {:>11.0} {:>12.0} {:>14.1?} {:>14.1?} {:>10}",
            r.nodes,
            r.pods,
            r.created_per_sec,
            r.scheduled_per_sec,
            r.p50,
            r.p99,
            r.max_pods_on_a_node
        );
        results.push(r);
    }
    println!(
        "reference: kube-scheduler's CI floor (scheduler_perf SchedulingBasic, 5000 nodes) is \
         {UPSTREAM_FLOOR_5000_NODES:.0} pods/s, on much larger machines with the API server elsewhere."
    );
    Ok(results)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn round(config: &BenchConfig, node_count: usize) -> Result<RoundResult, BenchError> {
    let dir = tempfile::Builder::new()
        .prefix("skiff-scheduler-bench-")
        .tempdir()
        .map_err(BenchError::TempDir)?;
    let mut api_config = skiff_apiserver::Config::for_dir(dir.path().join("data"));
    api_config.max_requests_inflight = 4000;
    let server = skiff_apiserver::start(api_config).await?;
    let sched_config = Config::for_kubeconfig(&server.admin_kubeconfig);
    let client = skiff_proto::client::connect(sched_config.kubeconfig.as_deref())
        .await
        .map_err(crate::Error::from)?;

    futures::stream::iter(0..node_count)
        .map(|i| {
            let client = client.clone();
            async move {
                let zone = format!("zone-{}", i % 10);
                let node = fake_node(
                    &format!("node-{i}"),
                    "32",
                    "256Gi",
                    110,
                    &[("topology.kubernetes.io/zone", zone.as_str())],
                );
                create_node(&client, &node).await
            }
        })
        .buffer_unordered(config.clients)
        .try_collect::<Vec<_>>()
        .await?;

    // Bindings as a watch sees them.
    let bound: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let watch_bound = bound.clone();
    let watch_pods = pods.clone();
    let watch = tokio::spawn(async move {
        let mut stream = watcher(watch_pods, watcher::Config::default()).boxed();
        while let Some(ev) = stream.next().await {
            let Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = ev else {
                continue;
            };
            if pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some()
            {
                let now = Instant::now();
                watch_bound
                    .lock()
                    .await
                    .entry(pod.metadata.name.unwrap_or_default())
                    .or_insert(now);
            }
        }
    });

    let mut scheduler = None;
    if !config.preload {
        scheduler = Some(start_scheduler(sched_config.clone()).await?);
    }
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let create_start = Instant::now();
    futures::stream::iter(0..config.pods)
        .map(|i| {
            let (pods, created) = (pods.clone(), created.clone());
            async move {
                let name = format!("pod-{i}");
                let at = Instant::now();
                pods.create(&PostParams::default(), &pending_pod(&name, "100m", "500Mi"))
                    .await?;
                created.lock().await.insert(name, at);
                Ok::<_, kube::Error>(())
            }
        })
        .buffer_unordered(config.clients)
        .try_collect::<Vec<_>>()
        .await?;
    let create_took = create_start.elapsed();
    let schedule_start = if config.preload {
        let start = Instant::now();
        scheduler = Some(start_scheduler(sched_config.clone()).await?);
        start
    } else {
        create_start
    };

    let deadline = Instant::now() + Duration::from_secs(30 * 60);
    loop {
        let n = bound.lock().await.len();
        if n >= config.pods {
            break;
        }
        if Instant::now() > deadline {
            return Err(BenchError::Other(format!(
                "only {n} of {} pods bound after 30 minutes",
                config.pods
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watch.abort();
    if let Some(s) = scheduler {
        s.stop().await?;
    }

    let bound = bound.lock().await;
    let created = created.lock().await;
    let last_bind = bound.values().max().copied().unwrap_or(schedule_start);
    let mut latencies: Vec<Duration> = created
        .iter()
        .filter_map(|(name, at)| bound.get(name).map(|b| b.saturating_duration_since(*at)))
        .collect();
    latencies.sort();

    // Check the result: no node holds more than it can.
    let list = pods.list(&ListParams::default()).await?;
    let mut per_node: HashMap<String, (usize, Resources)> = HashMap::new();
    for pod in &list.items {
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
            let e = per_node.entry(node).or_default();
            e.0 += 1;
            e.1.add(&crate::resources::pod_requests(pod));
        }
    }
    for (node, (count, requested)) in &per_node {
        if *count > 110 || requested.milli_cpu > 32_000 {
            return Err(BenchError::Other(format!(
                "node {node} overcommitted: {count} pods, {}m cpu",
                requested.milli_cpu
            )));
        }
    }
    server.stop().await;
    drop(dir);
    Ok(RoundResult {
        nodes: node_count,
        pods: config.pods,
        created_per_sec: config.pods as f64 / create_took.as_secs_f64(),
        scheduled_per_sec: config.pods as f64
            / last_bind.duration_since(schedule_start).as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max_pods_on_a_node: per_node.values().map(|(n, _)| *n).max().unwrap_or(0),
    })
}

async fn start_scheduler(config: Config) -> Result<crate::Running, BenchError> {
    let running = crate::start(config).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !running
        .metrics
        .synced
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        if Instant::now() > deadline {
            return Err(BenchError::Other("scheduler did not sync in 60s".into()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&d, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn fake_nodes_have_what_the_scheduler_reads() {
        let n = crate::snapshot::NodeInfo::new(Arc::new(fake_node(
            "n1",
            "4",
            "8Gi",
            110,
            &[("zone", "a")],
        )));
        assert_eq!(n.allocatable.milli_cpu, 4000);
        assert_eq!(n.allocatable.pods, 110);
        assert_eq!(n.labels().get("zone").map(String::as_str), Some("a"));
        assert_eq!(
            n.labels().get("kubernetes.io/hostname").map(String::as_str),
            Some("n1")
        );
    }
}
