//! A real API server (skiff-apiserver over its embedded store, in-process, fresh data dir,
//! HTTPS on a free loopback port) with a scheduler running against it through the admin
//! kubeconfig, and helpers to make fake nodes and pods and to wait for what happens.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use skiff_scheduler::bench::fake_node;

pub struct Cluster {
    pub client: Client,
    pub kubeconfig: std::path::PathBuf,
    server: Option<skiff_apiserver::Running>,
    pub scheduler: Option<skiff_scheduler::Running>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// An API server with a scheduler for `default-scheduler`.
    pub async fn start() -> Cluster {
        let mut c = Cluster::api_only().await;
        c.start_scheduler("default-scheduler").await;
        c
    }

    pub async fn api_only() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("skiff-scheduler-test-")
            .tempdir()
            .unwrap();
        let server =
            skiff_apiserver::start(skiff_apiserver::Config::for_dir(dir.path().join("data")))
                .await
                .expect("start skiff-apiserver");
        let kubeconfig = server.admin_kubeconfig.clone();
        let client = skiff_proto::client::connect(Some(&kubeconfig))
            .await
            .unwrap();
        Cluster {
            client,
            kubeconfig,
            server: Some(server),
            scheduler: None,
            _dir: dir,
        }
    }

    pub async fn start_scheduler(&mut self, name: &str) {
        let mut config = skiff_scheduler::Config::for_kubeconfig(&self.kubeconfig);
        config.scheduler_name = name.into();
        self.scheduler = Some(
            skiff_scheduler::start(config)
                .await
                .expect("start scheduler"),
        );
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.scheduler.take() {
            s.stop().await.expect("the scheduler stops cleanly");
        }
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    /// A fake node (4 cpu / 8Gi unless given) with labels, and `spec` merged into its spec
    /// (taints, unschedulable).
    pub async fn node(
        &self,
        name: &str,
        cpu: &str,
        memory: &str,
        labels: &[(&str, &str)],
        spec: Value,
    ) {
        let mut node = fake_node(name, cpu, memory, 110, labels);
        let mut s = serde_json::to_value(node.spec.take().unwrap_or_default()).unwrap();
        if let (Value::Object(into), Value::Object(from)) = (&mut s, spec) {
            into.extend(from);
        }
        node.spec = Some(serde_json::from_value(s).unwrap());
        let stored = skiff_scheduler::bench::create_node(&self.client, &node)
            .await
            .expect("create node");
        // What the scheduler reads must have been stored as sent.
        assert_eq!(
            stored.status.unwrap().allocatable,
            node.status.unwrap().allocatable
        );
    }

    /// Creates a pod from `spec` (a container requesting `cpu`/`memory` is added when the
    /// spec has none) and `meta` merged into its metadata.
    pub async fn pod(&self, name: &str, cpu: &str, memory: &str, meta: Value, spec: Value) -> Pod {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c", "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": cpu, "memory": memory}}}]);
        }
        let mut metadata = json!({"name": name});
        if let (Value::Object(into), Value::Object(from)) = (&mut metadata, meta) {
            into.extend(from);
        }
        let pod: Pod = serde_json::from_value(json!({"metadata": metadata, "spec": spec})).unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("create pod")
    }

    pub async fn delete_pod(&self, name: &str) {
        self.pods()
            .delete(name, &DeleteParams::default().grace_period(0))
            .await
            .expect("delete pod");
    }

    /// Waits (up to 30s) for `check` to return Some.
    pub async fn wait_for<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the pod to be bound; returns its node.
    pub async fn bound(&self, name: &str) -> String {
        let pods = self.pods();
        self.wait_for(&format!("{name} to be bound"), || {
            let pods = pods.clone();
            async move { node_of(&pods.get(name).await.ok()?) }
        })
        .await
    }

    /// Waits for the pod's PodScheduled=False condition; returns (reason, message).
    pub async fn unschedulable(&self, name: &str) -> (String, String) {
        let pods = self.pods();
        self.wait_for(&format!("{name} to be marked unschedulable"), || {
            let pods = pods.clone();
            async move {
                let pod = pods.get(name).await.ok()?;
                let c = pod
                    .status?
                    .conditions?
                    .into_iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
                Some((c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
            }
        })
        .await
    }

    /// Waits for an event with `reason` about pod `name`; returns its message.
    pub async fn event(&self, name: &str, reason: &str) -> String {
        let events: Api<Event> = Api::namespaced(self.client.clone(), "default");
        self.wait_for(&format!("a {reason} event for {name}"), || {
            let events = events.clone();
            async move {
                let list = events.list(&ListParams::default()).await.ok()?;
                list.items.into_iter().find_map(|e| {
                    (e.involved_object.name.as_deref() == Some(name)
                        && e.reason.as_deref() == Some(reason))
                    .then(|| e.message.unwrap_or_default())
                })
            }
        })
        .await
    }

    /// Every pod's node (None when pending), by name.
    pub async fn placements(&self) -> std::collections::BTreeMap<String, Option<String>> {
        let list = self.pods().list(&ListParams::default()).await.unwrap();
        list.items
            .iter()
            .map(|p| (p.metadata.name.clone().unwrap(), node_of(p)))
            .collect()
    }

    /// A GET on the scheduler's plain-HTTP health server; returns (status line, body).
    pub async fn health_get(&self, path: &str) -> (String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.scheduler.as_ref().unwrap().health_addr;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (
            head.lines().next().unwrap_or("").to_string(),
            body.to_string(),
        )
    }
}

pub fn node_of(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()?
        .node_name
        .clone()
        .filter(|n| !n.is_empty())
}
