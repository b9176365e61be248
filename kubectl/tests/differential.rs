//! The same commands against the same real cluster (skiff-apiserver and
//! controller manager, in-process), run with `skiffctl` and the real
//! `kubectl`: stdout, stderr and exit codes must match. Tables are compared
//! without their AGE column (time passes between the two runs).
//!
//! Where skiffctl differs on purpose, nothing is compared:
//! - `apply` is always server-side, so it is compared with
//!   `kubectl apply --server-side`, and its field manager is `skiffctl`,
//!   not `kubectl`.
//! - A manifest that does not parse: kubectl prints
//!   `error converting YAML to JSON: yaml: line N: …` with a line number
//!   relative to the document; skiffctl names the file, the document index
//!   and the line in the file (tested in `commands.rs`).
//! - `get foo` (unknown type): kubectl logs discovery retries first, so
//!   only the last stderr line is compared.
//! - `version`: the client versions differ (skiffctl's own; kubectl also
//!   prints Kustomize's), so only the server's part is compared.

use std::process::Command;

use skiff_tests::TestCluster;

mod common;
use common::skiffctl;

const FIXTURES: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: diff-empty
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: alpha
  labels:
    app: web
    tier: front
data:
  key: value
  number: \"1\"
  multi: |
    line one
    line two
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: beta
  labels:
    app: db
data:
  flag: \"true\"
  star: \"*\"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
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
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
";

/// Removes the AGE column from every table in `text` (tables are
/// separated by blank lines; the column is found in each header).
fn drop_age(text: &str) -> String {
    let mut out = String::new();
    for block in text.split("\n\n") {
        let lines: Vec<&str> = block.lines().collect();
        let Some(header) = lines.first() else {
            continue;
        };
        let range = header
            .find("AGE")
            .filter(|&i| i == 0 || header[..i].ends_with("   "))
            .map(|start| {
                let rest = &header[start..];
                let end = rest
                    .find(|c: char| c != ' ' && !"AGE".contains(c))
                    .map(|e| start + e);
                (start, end)
            });
        for line in &lines {
            match range {
                Some((start, end)) if line.len() >= start => {
                    out.push_str(&line[..start]);
                    if let Some(end) = end {
                        // The AGE column's width depends on the ages; keep
                        // only what follows the (re-found) next column.
                        let rest = &line[start..];
                        let next = rest
                            .find("   ")
                            .map(|i| i + rest[i..].len() - rest[i..].trim_start().len());
                        let _ = end;
                        if let Some(n) = next {
                            out.push_str(&rest[n..]);
                        }
                    }
                }
                _ => out.push_str(line),
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn swap_names(s: &str) -> String {
    s.replace("s-obj", "k-obj")
}

#[derive(Clone, Copy)]
enum Compare {
    /// Byte for byte.
    Exact,
    /// Tables: without the AGE column.
    NoAge,
    /// Only the last stderr line and the exit code (kubectl logs retries first).
    LastErrLine,
    /// `events`: without the LAST SEEN column and in sorted order (events
    /// of the same second come in any order from kubectl's unstable sort).
    Events,
}

/// The lines of an events table without their LAST SEEN cell, sorted.
fn events_without_times(text: &str) -> String {
    let cells = |l: &str| -> Vec<String> {
        l.split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    };
    // The column under the header's LAST SEEN (second with -A).
    let at = text
        .lines()
        .next()
        .and_then(|h| cells(h).iter().position(|c| c == "LAST SEEN"))
        .unwrap_or(0);
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            let mut c = cells(l);
            if at < c.len() {
                c.remove(at);
            }
            c.join(" | ")
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

fn compare(cluster: &TestCluster, args: &[&str], how: Compare) -> Vec<String> {
    let ours = skiffctl(cluster, args, None);
    let theirs = cluster.kubectl(args);
    let mut diffs = Vec::new();
    if ours.code != theirs.code {
        diffs.push(format!(
            "{args:?}: exit code skiffctl {} kubectl {}\n  skiffctl stderr: {}\n  kubectl stderr: {}",
            ours.code, theirs.code, ours.stderr, theirs.stderr
        ));
    }
    let (a, b) = match how {
        Compare::Exact => (ours.stdout.clone(), theirs.stdout.clone()),
        Compare::NoAge => (drop_age(&ours.stdout), drop_age(&theirs.stdout)),
        Compare::LastErrLine => (String::new(), String::new()),
        Compare::Events => (
            events_without_times(&ours.stdout),
            events_without_times(&theirs.stdout),
        ),
    };
    if a != b {
        diffs.push(format!(
            "{args:?}: stdout differs\n--- skiffctl\n{a}\n--- kubectl\n{b}"
        ));
    }
    let err_lines = |s: &str| -> Vec<String> {
        let lines: Vec<String> = s
            .lines()
            .filter(|l| !l.starts_with('W') && !l.starts_with('I'))
            .map(str::to_string)
            .collect();
        match how {
            Compare::LastErrLine => lines.last().cloned().into_iter().collect(),
            _ => lines,
        }
    };
    if err_lines(&ours.stderr) != err_lines(&theirs.stderr) {
        diffs.push(format!(
            "{args:?}: stderr differs\n--- skiffctl\n{}\n--- kubectl\n{}",
            ours.stderr, theirs.stderr
        ));
    }
    diffs
}

/// Runs `args` with skiffctl on `s-obj` and with kubectl on `k-obj` (for
/// NAME): the same exit code and lines, names swapped, or the difference.
fn twins(cluster: &TestCluster, args: &[&str]) -> Option<String> {
    let with =
        |name: &str| -> Vec<String> { args.iter().map(|a| a.replace("NAME", name)).collect() };
    let (ours_args, theirs_args) = (with("s-obj"), with("k-obj"));
    let ours = skiffctl(
        cluster,
        &ours_args.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    );
    let theirs = cluster.kubectl(&theirs_args.iter().map(String::as_str).collect::<Vec<_>>());
    let swap = |s: &str| s.replace("s-obj", "k-obj");
    ((ours.code, swap(&ours.stdout), swap(&ours.stderr))
        != (theirs.code, theirs.stdout.clone(), theirs.stderr.clone()))
        .then(|| format!("{args:?}:\n  skiffctl {ours:?}\n  kubectl  {theirs:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn skiffctl_prints_what_kubectl_prints() {
    let cluster = TestCluster::start().await;
    let cluster = std::sync::Arc::new(cluster);
    let c = cluster.clone();
    let diffs = tokio::task::spawn_blocking(move || {
        let cluster = &*c;
        // kubectl creates the fixtures (server-side, so both tools see
        // the same managedFields-free objects).
        let applied = cluster.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(FIXTURES));
        assert_eq!(applied.code, 0, "{applied:?}");
        // Both apply the same manifests again: same lines (field managers
        // differ on purpose: `skiffctl` vs `kubectl`).
        let ours = skiffctl(cluster, &["apply", "-f", "-"], Some(FIXTURES));
        let theirs = cluster.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(FIXTURES));
        let mut diffs = Vec::new();
        if (ours.code, &ours.stdout) != (theirs.code, &theirs.stdout) {
            diffs.push(format!("apply: skiffctl {ours:?}\nkubectl {theirs:?}"));
        }
        // Managed fields now differ (skiffctl applied too); kubectl hides them.
        use Compare::*;
        let cases: &[(&[&str], Compare)] = &[
            (&["get", "configmaps"], NoAge),
            (&["get", "cm", "alpha"], NoAge),
            (&["get", "cm", "alpha", "beta"], NoAge),
            (&["get", "cm", "--show-labels"], NoAge),
            (&["get", "cm", "-l", "app=web"], NoAge),
            (
                &["get", "cm", "--field-selector", "metadata.name=beta"],
                NoAge,
            ),
            (&["get", "cm", "-A"], NoAge),
            (&["get", "cm", "--sort-by", ".metadata.name"], NoAge),
            (&["get", "deploy"], NoAge),
            (&["get", "deployments.apps", "-o", "wide"], NoAge),
            (&["get", "svc"], NoAge),
            (&["get", "deploy,svc"], NoAge),
            (&["get", "deploy/web", "svc/web"], NoAge),
            (&["get", "ns"], NoAge),
            (&["get", "ns", "default", "-o", "yaml"], Exact),
            (&["get", "nodes"], NoAge),
            (&["get", "pods"], NoAge),
            (&["get", "po", "-o", "wide"], NoAge),
            (&["get", "pods", "-A", "-o", "wide", "--show-labels"], NoAge),
            (&["get", "rs"], NoAge),
            (&["get", "all"], NoAge),
            (
                &[
                    "get",
                    "cm",
                    "--no-headers",
                    "-o",
                    "custom-columns=N:.metadata.name,D:.data.key",
                ],
                Exact,
            ),
            (
                &[
                    "get",
                    "deploy",
                    "-o",
                    "jsonpath={.items[0].spec.template.spec.containers[0].image}",
                ],
                Exact,
            ),
            (
                &["get", "deploy", "--sort-by", ".spec.replicas", "-o", "name"],
                Exact,
            ),
            (&["get", "cm", "-n", "diff-empty"], NoAge),
            (&["get", "pods", "-n", "diff-empty"], NoAge),
            (&["get", "cm", "alpha", "-o", "yaml"], Exact),
            (&["get", "cm", "alpha", "-o", "json"], Exact),
            (&["get", "cm", "-o", "yaml"], Exact),
            (&["get", "cm", "-o", "json"], Exact),
            (&["get", "deploy", "web", "-o", "yaml"], Exact),
            (&["get", "svc", "web", "-o", "json"], Exact),
            (&["get", "cm", "-o", "name"], Exact),
            (&["get", "deploy,svc", "-o", "name"], Exact),
            (
                &["get", "cm", "-o", "jsonpath={.items[*].metadata.name}"],
                Exact,
            ),
            (
                &[
                    "get",
                    "cm",
                    "-o",
                    "jsonpath={range .items[*]}{.metadata.name}={.data.key}{\"\\n\"}{end}",
                ],
                Exact,
            ),
            (
                &[
                    "get",
                    "cm",
                    "-o",
                    "custom-columns=NAME:.metadata.name,APP:.metadata.labels.app,X:.missing",
                ],
                Exact,
            ),
            (&["get", "pods", "nosuch"], Exact),
            (&["get", "cm", "alpha", "nosuch"], NoAge),
            (&["get", "foo"], LastErrLine),
            (&["delete", "cm", "nosuch"], Exact),
            (&["config", "current-context"], Exact),
            (&["config", "get-contexts"], Exact),
            (&["config", "view"], Exact),
            (&["config", "view", "--minify"], Exact),
            (&["api-resources"], Exact),
            (&["api-resources", "--namespaced=false"], Exact),
            (&["api-resources", "-o", "name"], Exact),
            (&["cluster-info"], Exact),
            (&["rollout", "pause", "deploy/nosuch"], Exact),
            (&["cordon", "nosuch"], Exact),
            (&["patch", "cm", "nosuch", "-p", "{}"], Exact),
            (&["explain", "cm"], Exact),
            (&["explain", "deployment"], Exact),
            (&["explain", "deployment.spec"], Exact),
            (&["explain", "deployment.spec.replicas"], Exact),
            (&["explain", "deployment.spec.strategy"], Exact),
            (&["explain", "deploy.spec.template.spec.containers.ports"], Exact),
            (&["explain", "svc.spec.type"], Exact),
            (&["explain", "svc.spec.ports.targetPort"], Exact),
            (&["explain", "pods.spec.containers.imagePullPolicy"], Exact),
            (&["explain", "node.status.capacity"], Exact),
            (&["explain", "pod.metadata.creationTimestamp"], Exact),
            (&["explain", "endpointslices"], Exact),
            (&["explain", "cm", "--recursive"], Exact),
            (&["explain", "deployment.spec.strategy", "--recursive"], Exact),
            (&["explain", "deployment.spec.nope"], Exact),
            (&["explain", "nosuchtype"], LastErrLine),
            (&["events"], Events),
            (&["events", "--for", "deploy/web"], Events),
            (&["events", "-A", "--types=Normal"], Events),
            (&["events", "--types=Warning"], Events),
            (&["events", "-n", "diff-empty"], Events),
            (
                &["wait", "--for=condition=Progressing", "deploy/web"],
                Exact,
            ),
            (
                &["wait", "--for=jsonpath={.spec.replicas}=2", "deploy/web"],
                Exact,
            ),
            (
                &["wait", "--for=condition=Nope", "deploy/web", "--timeout=1s"],
                Exact,
            ),
            (
                &["wait", "--for=delete", "cm/nosuch", "--timeout=1s"],
                Exact,
            ),
            (&["wait", "--for=condition=Ready", "cm/nosuch"], Exact),
        ];
        // Wait for the Deployment's pods so `get pods` has rows.
        for _ in 0..300 {
            if cluster
                .kubectl(&["get", "pods", "-o", "name"])
                .stdout
                .lines()
                .count()
                == 2
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // The comparison is only worth something if kubectl printed the objects.
        let yaml = cluster.kubectl(&["get", "cm", "alpha", "-o", "yaml"]).ok();
        assert!(
            yaml.contains("  name: alpha\n") && yaml.contains("multi: |"),
            "{yaml}"
        );
        let table = cluster.kubectl(&["get", "deploy,svc"]).ok();
        assert!(
            table.contains("deployment.apps/web") && table.contains("service/web"),
            "{table}"
        );
        for (args, how) in cases {
            diffs.extend(compare(cluster, args, *how));
        }
        // Writes: the same command on twin objects (`s-obj` by skiffctl,
        // `k-obj` by kubectl) prints the same, names swapped.
        let writes: &[&[&str]] = &[
            &["create", "namespace", "NAME"],
            &["create", "namespace", "NAME"],
            &[
                "create",
                "deployment",
                "NAME",
                "--image=nginx:1.27",
                "--replicas=2",
            ],
            &[
                "create",
                "configmap",
                "NAME",
                "--from-literal=a=1",
                "--from-literal=b=two",
            ],
            &["scale", "deploy", "NAME", "--replicas=3"],
            &["scale", "deploy/NAME", "--replicas=1"],
            &["label", "deploy", "NAME", "tier=x"],
            &["label", "deploy", "NAME", "tier=y"],
            &["label", "deploy", "NAME", "tier=y", "--overwrite"],
            &["label", "deploy/NAME", "tier-"],
            &["annotate", "cm", "NAME", "note=hi"],
            &["annotate", "cm", "NAME", "note=hi"],
            &["create", "secret", "generic", "NAME", "--from-literal=a=1", "--from-literal=b=two"],
            &["create", "service", "clusterip", "NAME", "--tcp=80:8080", "--tcp=443:https"],
            &["create", "service", "nodeport", "NAME-np", "--tcp=80"],
            &["create", "service", "clusterip", "NAME-headless", "--clusterip=None"],
            &["expose", "deploy", "NAME", "--port=80", "--target-port=8080", "--name=NAME-x"],
            &["expose", "deploy/NAME", "--port=81", "--name=NAME-y", "--type=NodePort"],
            &["expose", "deploy/NAME", "--port=82"],
            &["scale", "deploy", "nosuch", "--replicas=1"],
            &[
                "patch",
                "deploy",
                "NAME",
                "-p",
                r#"{"spec":{"replicas":1}}"#,
            ],
            &[
                "patch",
                "deploy",
                "NAME",
                "-p",
                r#"{"spec":{"replicas":1}}"#,
            ],
            &[
                "patch",
                "cm",
                "NAME",
                "--type",
                "merge",
                "-p",
                "data:\n  c: three",
            ],
            &[
                "patch",
                "deploy/NAME",
                "--type=json",
                "-p",
                r#"[{"op":"replace","path":"/spec/replicas","value":2}]"#,
            ],
            &["set", "image", "deploy/NAME", "nginx=nginx:1.28"],
            &["set", "image", "deploy", "NAME", "*=nginx:1.28"],
            &["set", "image", "deploy/NAME", "nope=x:1"],
            &["rollout", "pause", "deploy/NAME"],
            &["rollout", "pause", "deploy/NAME"],
            &["rollout", "resume", "deploy/NAME"],
            &["rollout", "resume", "deploy/NAME"],
        ];
        for args in writes {
            diffs.extend(twins(cluster, args));
        }
        // The generated objects are the same after the server's defaults
        // (before undo, which writes kubectl's serialisation of a template).
        for (kind, suffix, path) in [
            ("deploy", "", "{.spec}"),
            ("cm", "", "{.data}"),
            ("deploy", "", "{.metadata.labels}"),
            ("secret", "", "{.data} {.type}"),
            // Services: not the allocated addresses and node ports.
            ("svc", "", "{.metadata.labels} {.spec.ports} {.spec.selector} {.spec.type}"),
            ("svc", "-np", "{.metadata.labels} {.spec.ports[*].port} {.spec.ports[*].targetPort} {.spec.selector} {.spec.type}"),
            ("svc", "-headless", "{.spec} {.metadata.labels}"),
            ("svc", "-x", "{.metadata.labels} {.spec.ports} {.spec.selector} {.spec.type}"),
            ("svc", "-y", "{.spec.ports[*].port} {.spec.ports[*].targetPort} {.spec.selector} {.spec.type}"),
        ] {
            let jp = format!("jsonpath={path}");
            let ours = cluster.kubectl(&["get", kind, &format!("s-obj{suffix}"), "-o", &jp]).ok();
            let theirs = cluster.kubectl(&["get", kind, &format!("k-obj{suffix}"), "-o", &jp]).ok();
            if swap_names(&ours) != theirs {
                diffs.push(format!(
                    "generated {kind} {path}:\n  skiffctl {ours}\n  kubectl  {theirs}"
                ));
            }
        }
        // History and undo, once each Deployment has its two ReplicaSets
        // (the image change above made revision 2).
        for name in ["s-obj", "k-obj"] {
            let mut sets = 0;
            for _ in 0..300 {
                sets = cluster
                    .kubectl(&["get", "rs", "-l", &format!("app={name}"), "-o", "name"])
                    .stdout
                    .lines()
                    .count();
                if sets == 2 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            assert_eq!(sets, 2, "{name}'s ReplicaSets");
        }
        let sequence: &[&[&str]] = &[
            &["rollout", "history", "deploy/NAME"],
            &["rollout", "undo", "deploy/NAME", "--to-revision=9"],
            &["rollout", "undo", "deploy/NAME", "--to-revision=2"],
            &["rollout", "undo", "deploy/NAME"],
        ];
        for args in sequence {
            diffs.extend(twins(cluster, args));
        }
        // cordon / uncordon on a Node object: the same four lines from each.
        let node = "apiVersion: v1\nkind: Node\nmetadata:\n  name: diff-node\n";
        cluster
            .kubectl_stdin(&["apply", "-f", "-"], Some(node))
            .ok();
        let steps: &[&[&str]] = &[
            &["cordon", "diff-node"],
            &["cordon", "diff-node"],
            &["uncordon", "diff-node"],
            &["uncordon", "diff-node"],
        ];
        let run_all = |tool: &dyn Fn(&[&str]) -> skiff_tests::Run| -> Vec<(i32, String, String)> {
            steps
                .iter()
                .map(|a| {
                    let r = tool(a);
                    (r.code, r.stdout, r.stderr)
                })
                .collect()
        };
        let theirs = run_all(&|a| cluster.kubectl(a));
        let ours = run_all(&|a| skiffctl(cluster, a, None));
        if ours != theirs {
            diffs.push(format!(
                "cordon/uncordon:\n  skiffctl {ours:?}\n  kubectl  {theirs:?}"
            ));
        }
        // version: the server's part (the clients differ on purpose).
        let server_line = |out: &str| {
            out.lines()
                .find(|l| l.starts_with("Server Version:"))
                .map(str::to_string)
        };
        let ours = skiffctl(cluster, &["version"], None);
        let theirs = cluster.kubectl(&["version"]);
        if server_line(&ours.stdout).is_none()
            || server_line(&ours.stdout) != server_line(&theirs.stdout)
        {
            diffs.push(format!(
                "version:\n  skiffctl {ours:?}\n  kubectl  {theirs:?}"
            ));
        }
        let server_json = |out: &str| {
            serde_json::from_str::<serde_json::Value>(out)
                .ok()
                .map(|v| v["serverVersion"].clone())
        };
        let ours = skiffctl(cluster, &["version", "-o", "json"], None);
        let theirs = cluster.kubectl(&["version", "-o", "json"]);
        if server_json(&ours.stdout) != server_json(&theirs.stdout) {
            diffs.push(format!(
                "version -o json:\n  skiffctl {ours:?}\n  kubectl  {theirs:?}"
            ));
        }

        // diff: what an apply would change, through the same `diff -u -N`.
        // The temporary directories' names and the files' times differ, and
        // so do the uid and creation time a dry-run create makes up.
        let normalise_diff = |text: &str| -> String {
            text.lines()
                .map(|l| {
                    let l = l.trim_end();
                    let mut words: Vec<String> = l.split(' ').map(str::to_string).collect();
                    for w in &mut words {
                        for prefix in ["LIVE-", "MERGED-"] {
                            if let Some(i) = w.find(prefix) {
                                let file = w[i..].split_once('/').map(|x| x.1).unwrap_or("");
                                *w = format!("{}/{file}", &prefix[..prefix.len() - 1]);
                            }
                        }
                    }
                    let mut l = words.join(" ");
                    if l.starts_with("--- ") || l.starts_with("+++ ") {
                        l = l.split('\t').next().unwrap_or_default().to_string();
                    }
                    if l.trim_start_matches(['+', '-', ' ']).starts_with("uid: ") {
                        l = format!("{}uid: UID", &l[..l.find("uid:").unwrap()]);
                    }
                    if l.trim_start_matches(['+', '-', ' ']).starts_with("creationTimestamp: \"") {
                        l = format!("{}creationTimestamp: TIME", &l[..l.find("creationTimestamp:").unwrap()]);
                    }
                    l
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let changed = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: beta\n  labels:\n    app: db\ndata:\n  flag: \"false\"\n  star: \"*\"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fresh\ndata:\n  k: v\n";
        for (what, manifest) in [("a change and a new object", changed), ("nothing to change", FIXTURES)] {
            let ours = skiffctl(cluster, &["diff", "--force-conflicts", "-f", "-"], Some(manifest));
            let theirs = cluster.kubectl_stdin(&["diff", "--server-side", "--force-conflicts", "-f", "-"], Some(manifest));
            if (ours.code, normalise_diff(&ours.stdout), ours.stderr.trim())
                != (theirs.code, normalise_diff(&theirs.stdout), theirs.stderr.trim())
            {
                diffs.push(format!("diff, {what}:\n  skiffctl {ours:?}\n  kubectl  {theirs:?}"));
            }
            // Worth comparing only if something real was printed.
            if manifest == changed {
                assert_eq!(ours.code, 1, "{ours:?}");
                assert!(
                    ours.stdout.contains("-  flag: \"true\"\n+  flag: \"false\"")
                        && ours.stdout.contains("+++ ")
                        && ours.stdout.contains("v1.ConfigMap.default.fresh"),
                    "{ours:?}"
                );
            } else {
                assert_eq!((ours.code, ours.stdout.as_str()), (0, ""), "{ours:?}");
            }
        }
        assert_eq!(cluster.kubectl(&["get", "cm", "fresh"]).code, 1, "diff changed nothing");

        // An invalid object: 422 with the causes.
        let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n";
        let ours = skiffctl(cluster, &["apply", "-f", "-"], Some(bad));
        let theirs = cluster.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(bad));
        if (ours.code, ours.stderr.trim()) != (theirs.code, theirs.stderr.trim()) {
            diffs.push(format!(
                "invalid apply: skiffctl {ours:?}\nkubectl {theirs:?}"
            ));
        }
        // Delete: the same lines for the same kind of object.
        let ours = skiffctl(cluster, &["delete", "cm", "alpha"], None);
        let theirs = cluster.kubectl(&["delete", "cm", "beta"]);
        if (ours.code, ours.stdout.replace("alpha", "beta")) != (theirs.code, theirs.stdout.clone())
        {
            diffs.push(format!("delete: skiffctl {ours:?}\nkubectl {theirs:?}"));
        }
        diffs
    })
    .await
    .unwrap();
    std::sync::Arc::try_unwrap(cluster)
        .ok()
        .unwrap()
        .stop()
        .await;
    assert!(
        diffs.is_empty(),
        "{} differences:\n\n{}",
        diffs.len(),
        diffs.join("\n\n")
    );
}

#[tokio::test]
async fn an_unreachable_server_reads_like_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_skiffctl"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "pods"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "The connection to the server 127.0.0.1:{port} was refused - did you specify the right host or port?\n"
        )
    );
}
