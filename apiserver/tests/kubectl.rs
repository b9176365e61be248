//! The real kubectl against the real skiff-apiserver, over the embedded
//! store and over a real etcd: what users type, and what they should see.

mod common;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use common::{ApiServer, columns};

on_both_backends!(
    apply_change_and_server_side,
    get_in_every_format,
    watch_prints_changes,
    describe_edit_and_patch,
    label_annotate_scale,
    delete_by_file_and_label,
    create_generators,
    api_resources_and_explain,
    errors_read_like_upstream,
    server_side_apply_conflicts,
    auth_can_i_and_whoami,
);

const APP: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  color: blue
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
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
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
"#;

fn deploy_app(s: &ApiServer) -> String {
    let path = s.file("app.yaml", APP);
    s.kubectl(&["apply", "-f", &path]).ok();
    path
}

async fn apply_change_and_server_side(s: &ApiServer) {
    let path = s.file("app.yaml", APP);
    let out = s.kubectl(&["apply", "-f", &path]).ok();
    assert_eq!(
        out,
        "namespace/shop created\nconfigmap/settings created\ndeployment.apps/web created\nservice/web created\n"
    );

    let out = s.kubectl(&["apply", "-f", &path]).ok();
    assert_eq!(
        out,
        "namespace/shop unchanged\nconfigmap/settings unchanged\ndeployment.apps/web unchanged\nservice/web unchanged\n"
    );

    let changed = APP
        .replace("replicas: 2", "replicas: 3")
        .replace("color: blue", "color: red");
    let path = s.file("app.yaml", &changed);
    let out = s.kubectl(&["apply", "-f", &path]).ok();
    assert_eq!(
        out,
        "namespace/shop unchanged\nconfigmap/settings configured\ndeployment.apps/web configured\nservice/web unchanged\n"
    );
    assert_eq!(
        s.kubectl(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}"
        ])
        .ok(),
        "3"
    );
    assert_eq!(
        s.kubectl(&[
            "get",
            "cm",
            "settings",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.color}"
        ])
        .ok(),
        "red"
    );
    // The generation counts spec changes only.
    assert_eq!(
        s.kubectl(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.metadata.generation}"
        ])
        .ok(),
        "2"
    );

    let ssa = changed.replace("replicas: 3", "replicas: 4");
    let path = s.file("app.yaml", &ssa);
    let out = s
        .kubectl(&["apply", "--server-side", "--force-conflicts", "-f", &path])
        .ok();
    assert_eq!(
        out,
        "namespace/shop serverside-applied\nconfigmap/settings serverside-applied\ndeployment.apps/web serverside-applied\nservice/web serverside-applied\n"
    );
    assert_eq!(
        s.kubectl(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}"
        ])
        .ok(),
        "4"
    );
    // Server-side apply creates what does not exist yet.
    let fresh = s.file("fresh.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fresh\n  namespace: shop\ndata:\n  a: b\n");
    assert_eq!(
        s.kubectl(&["apply", "--server-side", "-f", &fresh]).ok(),
        "configmap/fresh serverside-applied\n"
    );
}

async fn get_in_every_format(s: &ApiServer) {
    deploy_app(s);
    let table = columns(&s.kubectl(&["get", "deploy", "-n", "shop"]).ok());
    assert_eq!(
        table[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(&table[1][..4], ["web", "0/2", "0", "0"]);

    let wide = columns(
        &s.kubectl(&["get", "deploy", "-n", "shop", "-o", "wide"])
            .ok(),
    );
    assert_eq!(
        wide[0],
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(&wide[1][5..], ["web", "nginx:1.27", "app=web"]);

    let yaml = s
        .kubectl(&["get", "deploy", "web", "-n", "shop", "-o", "yaml"])
        .ok();
    assert!(
        yaml.contains("kind: Deployment")
            && yaml.contains("image: nginx:1.27")
            && yaml.contains("uid: "),
        "{yaml}"
    );

    let json: serde_json::Value = serde_json::from_str(
        &s.kubectl(&["get", "svc", "web", "-n", "shop", "-o", "json"])
            .ok(),
    )
    .unwrap();
    let ip = json["spec"]["clusterIP"].as_str().unwrap();
    assert!(ip.starts_with("10."), "a ClusterIP from 10.96.0.0/12: {ip}");
    assert_eq!(json["spec"]["ports"][0]["protocol"], "TCP");

    let services = columns(&s.kubectl(&["get", "svc", "-n", "shop"]).ok());
    assert_eq!(
        services[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert_eq!(
        &services[1][..5],
        ["web", "ClusterIP", ip, "<none>", "80/TCP"]
    );

    let labelled = s
        .kubectl(&["get", "deploy", "-n", "shop", "-l", "app=web", "-o", "name"])
        .ok();
    assert_eq!(labelled, "deployment.apps/web\n");
    assert_eq!(
        s.kubectl(&["get", "deploy", "-n", "shop", "-l", "app=db", "-o", "name"])
            .ok(),
        ""
    );

    let all = columns(&s.kubectl(&["get", "cm", "-A"]).ok());
    assert_eq!(all[0], ["NAMESPACE", "NAME", "DATA", "AGE"]);
    assert!(
        all.iter().any(|row| row[..3] == ["shop", "settings", "1"]),
        "{all:?}"
    );

    let namespaces = s.kubectl(&["get", "ns", "-o", "name"]).ok();
    for ns in [
        "default",
        "kube-node-lease",
        "kube-public",
        "kube-system",
        "shop",
    ] {
        assert!(
            namespaces.contains(&format!("namespace/{ns}\n")),
            "{namespaces}"
        );
    }
    // The API's own Service exists from the start, at the first address.
    let kubernetes = columns(&s.kubectl(&["get", "svc", "kubernetes"]).ok());
    assert_eq!(
        &kubernetes[1][..5],
        ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP"]
    );
}

async fn watch_prints_changes(s: &ApiServer) {
    deploy_app(s);
    let mut watcher = s.kubectl_spawn(&[
        "get",
        "cm",
        "-n",
        "shop",
        "--watch",
        "--output-watch-events",
    ]);
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let wait_for = |needle: &str, lines: &mut Vec<String>| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                let found = line.contains(needle);
                lines.push(line);
                if found {
                    return;
                }
            }
        }
        panic!("no line with {needle:?} in {lines:?}");
    };
    wait_for("settings", &mut lines);
    s.kubectl(&[
        "create",
        "-n",
        "shop",
        "-f",
        &s.file(
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\ndata:\n  a: b\n",
        ),
    ])
    .ok();
    wait_for("late", &mut lines);
    s.kubectl(&["delete", "cm", "late", "-n", "shop"]).ok();
    wait_for("DELETED", &mut lines);
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(
        lines[0].split_whitespace().collect::<Vec<_>>() == ["EVENT", "NAME", "DATA", "AGE"],
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ADDED") && l.contains("late")),
        "{lines:?}"
    );
}

async fn describe_edit_and_patch(s: &ApiServer) {
    deploy_app(s);
    let described = s.kubectl(&["describe", "deploy", "web", "-n", "shop"]).ok();
    for expected in [
        "Name:",
        "web",
        "Namespace:",
        "shop",
        "Replicas:",
        "StrategyType:",
        "RollingUpdate",
        "nginx:1.27",
    ] {
        assert!(
            described.contains(expected),
            "{expected:?} in:\n{described}"
        );
    }

    let out = s
        .kubectl_env(
            &["edit", "cm", "settings", "-n", "shop"],
            &[("KUBE_EDITOR", "sed -i s/blue/green/")],
        )
        .ok();
    assert_eq!(out, "configmap/settings edited\n");
    assert_eq!(
        s.kubectl(&[
            "get",
            "cm",
            "settings",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.color}"
        ])
        .ok(),
        "green"
    );

    let replicas = || {
        s.kubectl(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .ok()
    };
    assert_eq!(
        s.kubectl(&[
            "patch",
            "deploy",
            "web",
            "-n",
            "shop",
            "-p",
            r#"{"spec":{"replicas":1}}"#
        ])
        .ok(),
        "deployment.apps/web patched\n"
    );
    assert_eq!(replicas(), "1");
    assert_eq!(
        s.kubectl(&[
            "patch",
            "deploy",
            "web",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":6}}"#
        ])
        .ok(),
        "deployment.apps/web patched\n"
    );
    assert_eq!(replicas(), "6");
    let json_patch = r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#;
    assert_eq!(
        s.kubectl(&[
            "patch",
            "deploy",
            "web",
            "-n",
            "shop",
            "--type=json",
            "-p",
            json_patch
        ])
        .ok(),
        "deployment.apps/web patched\n"
    );
    assert_eq!(replicas(), "4");
    // A strategic patch merges containers by name: the image changes, the port stays.
    let image =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}"#;
    s.kubectl(&["patch", "deploy", "web", "-n", "shop", "-p", image])
        .ok();
    let container = s.kubectl(&["get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}"]).ok();
    assert_eq!(container, "nginx:1.28 80");
    // A patch that changes nothing says so.
    assert_eq!(
        s.kubectl(&["patch", "deploy", "web", "-n", "shop", "-p", image])
            .ok(),
        "deployment.apps/web patched (no change)\n"
    );
}

async fn label_annotate_scale(s: &ApiServer) {
    deploy_app(s);
    assert_eq!(
        s.kubectl(&["label", "cm", "settings", "-n", "shop", "tier=front"])
            .ok(),
        "configmap/settings labeled\n"
    );
    assert_eq!(
        s.kubectl(&["annotate", "cm", "settings", "-n", "shop", "owner=ops"])
            .ok(),
        "configmap/settings annotated\n"
    );
    let meta = s
        .kubectl(&[
            "get",
            "cm",
            "settings",
            "-n",
            "shop",
            "-o",
            "jsonpath={.metadata.labels.tier} {.metadata.annotations.owner}",
        ])
        .ok();
    assert_eq!(meta, "front ops");
    assert_eq!(
        s.kubectl(&["label", "cm", "settings", "-n", "shop", "tier-"])
            .ok(),
        "configmap/settings unlabeled\n"
    );
    assert_eq!(
        s.kubectl(&["scale", "deploy", "web", "-n", "shop", "--replicas=5"])
            .ok(),
        "deployment.apps/web scaled\n"
    );
    assert_eq!(
        s.kubectl(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}"
        ])
        .ok(),
        "5"
    );
    // With a precondition (a PUT of the Scale, with no Content-Type).
    assert_eq!(
        s.kubectl(&[
            "scale",
            "deploy",
            "web",
            "-n",
            "shop",
            "--current-replicas=5",
            "--replicas=2"
        ])
        .ok(),
        "deployment.apps/web scaled\n"
    );
    let err = s
        .kubectl(&[
            "scale",
            "deploy",
            "web",
            "-n",
            "shop",
            "--current-replicas=5",
            "--replicas=3",
        ])
        .fails();
    assert!(err.contains("Expected replicas to be 5, was 2"), "{err}");
}

async fn delete_by_file_and_label(s: &ApiServer) {
    let path = deploy_app(s);
    s.kubectl(&["label", "cm", "settings", "-n", "shop", "tier=front"])
        .ok();
    assert_eq!(
        s.kubectl(&["delete", "cm", "-n", "shop", "-l", "tier=front"])
            .ok(),
        "configmap \"settings\" deleted\n"
    );
    assert_eq!(
        s.kubectl(&["get", "cm", "-n", "shop", "-l", "tier=front", "-o", "name"])
            .ok(),
        ""
    );
    // Without a namespace controller yet, a namespace stays Terminating, so
    // do not wait for it.
    let out = s
        .kubectl(&["delete", "-f", &path, "--wait=false", "--ignore-not-found"])
        .ok();
    assert_eq!(
        out,
        "namespace \"shop\" deleted\ndeployment.apps \"web\" deleted\nservice \"web\" deleted\n"
    );
    let phase = s
        .kubectl(&[
            "get",
            "ns",
            "shop",
            "-o",
            "jsonpath={.status.phase} {.metadata.deletionTimestamp}",
        ])
        .ok();
    assert!(phase.starts_with("Terminating 20"), "{phase}");
    assert!(
        s.kubectl(&["get", "deploy", "web", "-n", "shop"])
            .fails()
            .contains("NotFound")
    );
    // Nothing new goes into a namespace being deleted.
    let err = s
        .kubectl(&[
            "create",
            "-n",
            "shop",
            "-f",
            &s.file(
                "c.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
            ),
        ])
        .fails();
    assert!(err.contains("because it is being terminated"), "{err}");
}

async fn create_generators(s: &ApiServer) {
    assert_eq!(
        s.kubectl(&["create", "namespace", "gen"]).ok(),
        "namespace/gen created\n"
    );
    assert_eq!(
        s.kubectl(&[
            "create",
            "configmap",
            "conf",
            "-n",
            "gen",
            "--from-literal=a=b"
        ])
        .ok(),
        "configmap/conf created\n"
    );
    assert_eq!(
        s.kubectl(&[
            "create",
            "secret",
            "generic",
            "pw",
            "-n",
            "gen",
            "--from-literal=password=hunter2"
        ])
        .ok(),
        "secret/pw created\n"
    );
    assert_eq!(
        s.kubectl(&[
            "get",
            "secret",
            "pw",
            "-n",
            "gen",
            "-o",
            "jsonpath={.data.password}"
        ])
        .ok(),
        "aHVudGVyMg=="
    );
    assert_eq!(
        s.kubectl(&[
            "create",
            "deployment",
            "api",
            "-n",
            "gen",
            "--image=nginx:1.27",
            "--replicas=2",
            "--port=80"
        ])
        .ok(),
        "deployment.apps/api created\n"
    );
    let selector = s.kubectl(&["get", "deploy", "api", "-n", "gen", "-o", "jsonpath={.spec.selector.matchLabels.app} {.spec.template.spec.containers[0].ports[0].containerPort}"]).ok();
    assert_eq!(selector, "api 80");
    assert_eq!(
        s.kubectl(&[
            "create",
            "service",
            "nodeport",
            "api",
            "-n",
            "gen",
            "--tcp=80:8080"
        ])
        .ok(),
        "service/api created\n"
    );
    let port = s
        .kubectl(&[
            "get",
            "svc",
            "api",
            "-n",
            "gen",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ])
        .ok();
    let port: u16 = port.parse().unwrap();
    assert!((30000..=32767).contains(&port));
    assert_eq!(
        s.kubectl(&[
            "create",
            "job",
            "once",
            "-n",
            "gen",
            "--image=busybox",
            "--",
            "echo",
            "hi"
        ])
        .ok(),
        "job.batch/once created\n"
    );
}

async fn api_resources_and_explain(s: &ApiServer) {
    let resources = columns(&s.kubectl(&["api-resources"]).ok());
    assert_eq!(
        resources[0],
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    );
    assert!(
        resources.contains(&vec![
            "deployments".into(),
            "deploy".into(),
            "apps/v1".into(),
            "true".into(),
            "Deployment".into()
        ]),
        "{resources:?}"
    );
    assert!(resources.contains(&vec![
        "nodes".into(),
        "no".into(),
        "v1".into(),
        "false".into(),
        "Node".into()
    ]));
    let explained = s.kubectl(&["explain", "deployment.spec"]).ok();
    assert!(explained.contains("KIND:       Deployment"), "{explained}");
    assert!(explained.contains("replicas\t<integer>"), "{explained}");
    let deeper = s.kubectl(&["explain", "pod.spec.containers.image"]).ok();
    assert!(deeper.contains("Container image name."), "{deeper}");
}

async fn errors_read_like_upstream(s: &ApiServer) {
    let bad = s.file("bad.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\nspec:\n  replicas: -1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: other\n    spec:\n      containers:\n      - name: web\n        image: nginx\n");
    let err = s.kubectl(&["apply", "-f", &bad]).fails();
    assert!(err.contains("The Deployment \"bad\" is invalid: "), "{err}");
    assert!(
        err.contains("spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        "{err}"
    );
    assert!(
        err.contains("`selector` does not match template `labels`"),
        "{err}"
    );

    let unknown = s.file(
        "unknown.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\ndata:\n  a: b\ndatta:\n  c: d\n",
    );
    let err = s.kubectl(&["apply", "-f", &unknown]).fails();
    assert!(err.contains("unknown field \"datta\""), "{err}");

    // A JSON body with a field twice: Strict refuses it, Warn warns (kubectl
    // prints the warning), and the last value is the one kept.
    let twice = s.file(
        "twice.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"twice","name":"twice"},"data":{"a":"1","a":"2"}}"#,
    );
    let strict = "/api/v1/namespaces/default/configmaps?fieldValidation=Strict";
    let err = s
        .kubectl(&["create", "--raw", strict, "-f", &twice])
        .fails();
    assert!(
        err.contains(r#"strict decoding error: duplicate field \"metadata.name\", duplicate field \"data.a\""#)
            || err.contains(r#"strict decoding error: duplicate field "metadata.name", duplicate field "data.a""#),
        "{err}"
    );
    let warn = "/api/v1/namespaces/default/configmaps?fieldValidation=Warn";
    let run = s.kubectl(&["create", "--raw", warn, "-f", &twice]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("Warning: duplicate field \"data.a\""),
        "{}",
        run.stderr
    );
    assert_eq!(
        s.kubectl(&["get", "cm", "twice", "-o", "jsonpath={.data.a}"])
            .ok(),
        "2"
    );

    let err = s.kubectl(&["get", "deploy", "nosuch"]).fails();
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): deployments.apps \"nosuch\" not found"
    );

    let cm = s.file(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: once\ndata:\n  a: b\n",
    );
    s.kubectl(&["create", "-f", &cm]).ok();
    let err = s.kubectl(&["create", "-f", &cm]).fails();
    assert!(
        err.contains("Error from server (AlreadyExists): error when creating")
            && err.contains("configmaps \"once\" already exists"),
        "{err}"
    );

    // A replace with a stale resourceVersion is a conflict.
    let stale = s.kubectl(&["get", "cm", "once", "-o", "json"]).ok();
    s.kubectl(&["label", "cm", "once", "x=y"]).ok();
    let err = s.kubectl_stdin(&["replace", "-f", "-"], &stale).fails();
    assert!(
        err.contains(
            "Operation cannot be fulfilled on configmaps \"once\": the object has been modified"
        ),
        "{err}"
    );

    // A token nobody issued, over HTTPS: 401.
    let stranger = s.file(
        "stranger.kubeconfig",
        &format!("apiVersion: v1\nkind: Config\nclusters:\n- name: skiff\n  cluster:\n    server: {}\n    insecure-skip-tls-verify: true\nusers:\n- name: stranger\n  user:\n    token: not-a-valid-token\ncontexts:\n- name: stranger\n  context:\n    cluster: skiff\n    user: stranger\ncurrent-context: stranger\n", s.url),
    );
    let err = s
        .kubectl_env(&["--kubeconfig", &stranger, "get", "pods"], &[])
        .fails();
    assert!(err.contains("You must be logged in to the server"), "{err}");
}

async fn server_side_apply_conflicts(s: &ApiServer) {
    let config = |replicas: u32, extra_label: bool| {
        let label = if extra_label { "\n    tier: front" } else { "" };
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: web{label}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n"
        )
    };
    let path = s.file("ssa.yaml", &config(2, true));
    assert_eq!(
        s.kubectl(&["apply", "--server-side", "-f", &path]).ok(),
        "deployment.apps/web serverside-applied\n"
    );
    let managers = s
        .kubectl(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .ok();
    assert_eq!(managers, "kubectl");

    // Someone else scales: they own spec.replicas now.
    s.kubectl(&["scale", "deploy", "web", "--replicas=5"]).ok();
    let err = s.kubectl(&["apply", "--server-side", "-f", &path]).fails();
    assert!(err.contains("Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas"), "{err}");
    assert!(
        err.contains("--force-conflicts"),
        "kubectl explains the way out: {err}"
    );
    assert_eq!(
        s.kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
            .ok(),
        "5"
    );

    // Forcing takes the field back; a label left out of the config goes away.
    let path = s.file("ssa.yaml", &config(2, false));
    assert_eq!(
        s.kubectl(&["apply", "--server-side", "--force-conflicts", "-f", &path])
            .ok(),
        "deployment.apps/web serverside-applied\n"
    );
    let state = s
        .kubectl(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.metadata.labels}",
        ])
        .ok();
    assert_eq!(state, "2 {\"app\":\"web\"}");
}

/// `kubectl auth` sends protobuf reviews; Skiff allows every authenticated
/// user and says so.
async fn auth_can_i_and_whoami(s: &ApiServer) {
    assert_eq!(
        s.kubectl(&["auth", "can-i", "create", "deployments"]).ok(),
        "yes\n"
    );
    assert_eq!(
        s.kubectl(&["auth", "can-i", "get", "/healthz"]).ok(),
        "yes\n"
    );
    let listed = s
        .kubectl(&["auth", "can-i", "--list", "-n", "default"])
        .ok();
    let rows = columns(&listed);
    assert_eq!(
        rows[0],
        [
            "Resources",
            "Non-Resource",
            "URLs",
            "Resource",
            "Names",
            "Verbs"
        ],
        "{listed}"
    );
    assert!(
        rows.iter().any(|r| r == &["*.*", "[]", "[]", "[*]"]),
        "{listed}"
    );
    let me = s.kubectl(&["auth", "whoami"]).ok();
    let rows = columns(&me);
    assert_eq!(rows[0], ["ATTRIBUTE", "VALUE"], "{me}");
    assert!(rows[1][0] == "Username" && rows[1].len() == 2, "{me}");
    assert!(
        me.contains("system:masters"),
        "the admin is a superuser: {me}"
    );
    let resources = s
        .kubectl(&[
            "api-resources",
            "--api-group=authorization.k8s.io",
            "-o",
            "wide",
        ])
        .ok();
    let review = columns(&resources)
        .into_iter()
        .find(|r| r[0] == "selfsubjectaccessreviews")
        .unwrap_or_else(|| panic!("{resources}"));
    assert_eq!(
        review.last().map(String::as_str),
        Some("create"),
        "{resources}"
    );
    // Reviews are not stored: there is nothing to get.
    let err = s.kubectl(&["get", "selfsubjectaccessreviews"]).fails();
    assert!(
        err.contains("MethodNotAllowed") || err.contains("not allow"),
        "{err}"
    );
}
