//! `skiffctl describe` against the real `kubectl describe` on the same
//! real cluster (skiff-apiserver and controller manager, in-process): a
//! Deployment with its ReplicaSet and pods (one marked Running and Ready
//! through `pods/status`, as a kubelet would), a Service and its
//! Endpoints, a Node, Namespaces, ConfigMaps, Secrets, and a Lease (which
//! has no describer of its own, so both use the generic one). stdout,
//! stderr and exit codes must match.
//!
//! Normalised before comparing, and why:
//! - The Age cells of `Events:` tables: time passes between the two runs,
//!   and a cell's width moves the columns after it, so each event row is
//!   compared cell by cell with its Age cell blanked. Every other time
//!   (`CreationTimestamp:`, `Start Time:`, conditions) is the object's
//!   own and prints the same from both tools, so it is compared as is.
//!
//! Where skiffctl differs on purpose:
//! - ConfigMap and Secret data: kubectl walks the keys in Go map order,
//!   which changes from run to run; skiffctl sorts them. Objects with one
//!   key are compared byte for byte; with several keys, as sorted lines.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use skiff_tests::{TestCluster, eventually, set_pod_status};

mod common;
use common::skiffctl;

const FIXTURES: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: desc-ns
  labels:
    team: blue
  annotations:
    note: describe me
---
apiVersion: v1
kind: Namespace
metadata:
  name: desc-empty
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: one
  labels:
    app: web
data:
  key: |
    line one
    line two
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: many
data:
  a: \"1\"
  b: two
  c: three
binaryData:
  bin: AAECAw==
---
apiVersion: v1
kind: Secret
metadata:
  name: single
type: Opaque
data:
  password: c2VjcmV0
---
apiVersion: v1
kind: Secret
metadata:
  name: several
  labels:
    app: web
stringData:
  user: admin
  password: hunter22
  token: abc
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
  annotations:
    team: blue
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        args: [\"-g\", \"daemon off;\"]
        ports:
        - containerPort: 80
          name: http
        env:
        - name: MODE
          value: prod
        - name: POD
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        resources:
          requests:
            cpu: 100m
            memory: 64Mi
          limits:
            memory: 128Mi
        readinessProbe:
          httpGet:
            path: /healthz
            port: 80
        volumeMounts:
        - name: conf
          mountPath: /etc/conf
          readOnly: true
      volumes:
      - name: conf
        configMap:
          name: one
      - name: scratch
        emptyDir: {}
      tolerations:
      - key: dedicated
        operator: Equal
        value: web
        effect: NoSchedule
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    app: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: http
  - name: metrics
    port: 9090
    targetPort: 9090
---
apiVersion: v1
kind: Node
metadata:
  name: desc-node
  labels:
    node-role.kubernetes.io/worker: \"\"
    kubernetes.io/hostname: desc-node
spec:
  taints:
  - key: dedicated
    value: web
    effect: NoSchedule
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: desc-lease
  namespace: desc-ns
spec:
  holderIdentity: someone
  leaseDurationSeconds: 40
";

/// Blanks the Age cell of every row of an `Events:` table (cells are
/// split on runs of two or more spaces and joined with ` | `).
fn normalise(text: &str) -> String {
    let mut out = String::new();
    let mut in_events = false;
    for line in text.lines() {
        if line.starts_with("Events:") {
            in_events = line.trim() == "Events:";
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if in_events && line.starts_with("  ") {
            let cells: Vec<&str> = line
                .trim()
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            let mut cells: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
            if cells.len() > 2 && cells[0] != "Type" && cells[0] != "----" {
                cells[2] = "AGE".into();
            }
            out.push_str(&cells.join(" | "));
            out.push('\n');
            continue;
        }
        in_events = false;
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn sorted_lines(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    lines.join("\n")
}

#[derive(Clone, Copy)]
enum How {
    /// Byte for byte but the events' ages.
    Normalised,
    /// As sorted lines (kubectl's map order is random).
    SortedLines,
}

fn compare(cluster: &TestCluster, args: &[&str], how: How) -> Option<String> {
    let ours = skiffctl(cluster, args, None);
    let theirs = cluster.kubectl(args);
    let shape = |s: &str| match how {
        How::Normalised => normalise(s),
        How::SortedLines => sorted_lines(&normalise(s)),
    };
    let same = ours.code == theirs.code
        && shape(&ours.stdout) == shape(&theirs.stdout)
        && ours.stderr.trim_end() == theirs.stderr.trim_end();
    (!same).then(|| {
        format!(
            "{args:?}:\n--- skiffctl (exit {})\n{}{}\n--- kubectl (exit {})\n{}{}",
            ours.code, ours.stdout, ours.stderr, theirs.code, theirs.stdout, theirs.stderr
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn skiffctl_describes_what_kubectl_describes() {
    let cluster = std::sync::Arc::new(TestCluster::start().await);
    let c = cluster.clone();
    let applied = tokio::task::spawn_blocking(move || {
        c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(FIXTURES))
    })
    .await
    .unwrap();
    assert_eq!(applied.code, 0, "{applied:?}");

    // The Deployment's two pods; one of them Running and Ready.
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let names: Vec<String> = eventually("the Deployment's pods", Duration::from_secs(60), || {
        let pods = pods.clone();
        async move {
            let list = pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .ok()?;
            let names: Vec<String> = list
                .items
                .iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            (names.len() == 2).then_some(names)
        }
    })
    .await;
    set_pod_status(&pods, &names[0], "10.244.0.7", true).await;
    // Let the controllers settle (endpoints, deployment status, events).
    let c = cluster.clone();
    eventually("the Service's endpoints", Duration::from_secs(60), || {
        let c = c.clone();
        async move {
            let out = c
                .kubectl_async(&[
                    "get",
                    "endpoints",
                    "web",
                    "-o",
                    "jsonpath={.subsets[0].addresses[0].ip}",
                ])
                .await;
            (out.stdout == "10.244.0.7").then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let c = cluster.clone();
    let pod = names[0].clone();
    let diffs = tokio::task::spawn_blocking(move || {
        let cluster = &*c;
        use How::*;
        let cases: Vec<(Vec<&str>, How)> = vec![
            (vec!["describe", "pod", &pod], Normalised),
            (vec!["describe", "pods"], Normalised),
            (vec!["describe", "pods", "-l", "app=web"], Normalised),
            (vec!["describe", "pods", "web"], Normalised),
            (vec!["describe", "deploy", "web"], Normalised),
            (vec!["describe", "deployment.apps/web"], Normalised),
            (
                vec!["describe", "deploy", "web", "--show-events=false"],
                Normalised,
            ),
            (vec!["describe", "deploy", "-A"], Normalised),
            (vec!["describe", "rs"], Normalised),
            (vec!["describe", "svc", "web"], Normalised),
            (vec!["describe", "svc", "kubernetes"], Normalised),
            (vec!["describe", "endpoints", "web"], Normalised),
            (vec!["describe", "node", "desc-node"], Normalised),
            (vec!["describe", "ns", "desc-ns"], Normalised),
            (vec!["describe", "ns", "default"], Normalised),
            (vec!["describe", "cm", "one"], Normalised),
            (vec!["describe", "cm", "many"], SortedLines),
            (vec!["describe", "secret", "single"], Normalised),
            (vec!["describe", "secret", "several"], SortedLines),
            (vec!["describe", "secrets", "-l", "app=web"], SortedLines),
            (
                vec!["describe", "lease", "desc-lease", "-n", "desc-ns"],
                Normalised,
            ),
            (vec!["describe", "cm", "one", "svc/web"], Normalised),
            (
                vec!["describe", "cm/one", "svc/web", "deploy/web"],
                Normalised,
            ),
            (vec!["describe", "nodes"], Normalised),
            (vec!["describe", "ns"], Normalised),
            (vec!["describe", "pod", "nosuch"], Normalised),
            (vec!["describe", "cm", "one", "nosuch"], Normalised),
            (vec!["describe", "cm", "-n", "desc-empty"], Normalised),
        ];
        // The comparisons are only worth something if kubectl described.
        let deploy = cluster.kubectl(&["describe", "deploy", "web"]).ok();
        assert!(
            deploy.contains("Pod Template:")
                && deploy.contains("NewReplicaSet:")
                && deploy.contains("ScalingReplicaSet"),
            "{deploy}"
        );
        let pod_text = cluster.kubectl(&["describe", "pod", &pod]).ok();
        assert!(pod_text.contains("Status:           Running"), "{pod_text}");
        cases
            .iter()
            .filter_map(|(args, how)| compare(cluster, args, *how))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    // Secrets never show their values.
    let c = cluster.clone();
    let secret =
        tokio::task::spawn_blocking(move || skiffctl(&c, &["describe", "secret", "several"], None))
            .await
            .unwrap();
    assert!(
        secret.stdout.contains("password:  8 bytes") && !secret.stdout.contains("hunter22"),
        "{secret:?}"
    );
    if let Ok(cluster) = std::sync::Arc::try_unwrap(cluster) {
        cluster.stop().await;
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n\n{}",
        diffs.len(),
        diffs.join("\n\n")
    );
}

#[test]
fn event_ages_are_blanked_and_nothing_else() {
    let text = "Name:  x\nEvents:\n  Type    Reason  Age   From  Message\n  ----    ------  ----  ----  -------\n  Normal  Made    5s    me    it  was made\nOther:  5s\n";
    assert_eq!(
        normalise(text),
        "Name:  x\nEvents:\nType | Reason | Age | From | Message\n---- | ------ | ---- | ---- | -------\nNormal | Made | AGE | me | it | was made\nOther:  5s\n"
    );
    assert_eq!(normalise("Events:  <none>\n"), "Events:  <none>\n");
}
