//! End-to-end tests of each skiffctl command against the real API server
//! and controller manager (in-process), checked through the real kubectl
//! or the API.

use std::time::Duration;

use skiff_tests::{TestCluster, eventually, fake_node};

mod common;
use common::skiffctl;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

const DEPLOY: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_files_directories_stdin_and_dry_runs() {
    let cluster = std::sync::Arc::new(TestCluster::start_apiserver().await);
    let c = cluster.clone();
    blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("nested");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
        )
        .unwrap();
        std::fs::write(
            sub.join("c.json"),
            r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}]}"#,
        )
        .unwrap();
        let d = dir.path().to_str().unwrap();
        // Without -R only the top directory.
        let out = skiffctl(&c, &["apply", "-f", d], None);
        assert_eq!((out.code, out.stdout.as_str()), (0, "configmap/a serverside-applied\nconfigmap/b serverside-applied\n"), "{out:?}");
        assert_eq!(c.kubectl(&["get", "cm", "c"]).code, 1);
        let out = skiffctl(&c, &["apply", "-R", "-f", d], None);
        assert!(out.stdout.ends_with("configmap/c serverside-applied\n"), "{out:?}");
        // The field manager is skiffctl.
        let managers = c.kubectl(&["get", "cm", "a", "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields[*].manager}"]).ok();
        assert_eq!(managers, "skiffctl");
        // Dry runs change nothing.
        let dep = skiffctl(&c, &["apply", "--dry-run=server", "-f", "-"], Some(DEPLOY));
        assert_eq!(dep.stdout, "deployment.apps/web serverside-applied (server dry run)\n", "{dep:?}");
        let dep = skiffctl(&c, &["apply", "--dry-run=client", "-f", "-"], Some(DEPLOY));
        assert_eq!(dep.stdout, "deployment.apps/web serverside-applied (dry run)\n", "{dep:?}");
        assert_eq!(c.kubectl(&["get", "deploy", "web"]).code, 1);
        // A conflict with another manager fails, --force-conflicts takes the field.
        c.kubectl_stdin(&["apply", "--server-side", "--force-conflicts", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: theirs\n")).ok();
        let out = skiffctl(&c, &["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: ours\n"));
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr.starts_with("error: Apply failed with 1 conflict: conflict with \"kubectl\"")
                && out.stderr.contains("re-run the apply\n  command with the `--force-conflicts` flag."),
            "{out:?}"
        );
        let out = skiffctl(&c, &["apply", "--force-conflicts", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: ours\n"));
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(c.kubectl(&["get", "cm", "a", "-o", "jsonpath={.data.k}"]).ok(), "ours");
        // A manifest error names the file, the document and the line.
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\nkind: ConfigMap\nmetadata:\n  name: [y\n").unwrap();
        let out = skiffctl(&c, &["apply", "-f", bad.to_str().unwrap()], None);
        assert_eq!(out.code, 1);
        assert!(out.stderr.starts_with(&format!("error: error parsing {} (document 2, line ", bad.display())), "{out:?}");
        // An unknown kind.
        let out = skiffctl(&c, &["apply", "-f", "-"], Some("apiVersion: v9\nkind: Nope\nmetadata:\n  name: n\n"));
        assert_eq!(out.code, 1);
        assert!(out.stderr.contains("no matches for kind \"Nope\" in version \"v9\""), "{out:?}");
    })
    .await;
    std::sync::Arc::try_unwrap(cluster)
        .ok()
        .unwrap()
        .stop()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_by_name_label_all_and_file_with_cascades() {
    let cluster = std::sync::Arc::new(TestCluster::start().await);
    let node = fake_node(cluster.client().await, "default", Duration::from_millis(50));
    let c = cluster.clone();
    blocking(move || {
        for (n, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
            c.kubectl(&["create", "configmap", n]).ok();
            c.kubectl(&["label", "cm", n, &format!("app={app}")]).ok();
        }
        let out = skiffctl(&c, &["delete", "cm", "-l", "app=x"], None);
        assert_eq!(
            out.stdout, "configmap \"a\" deleted\nconfigmap \"b\" deleted\n",
            "{out:?}"
        );
        let left = c.kubectl(&["get", "cm", "-l", "app", "-o", "name"]).ok();
        assert_eq!(left, "configmap/c\n");
        let out = skiffctl(&c, &["delete", "cm", "--all"], None);
        assert!(out.stdout.contains("configmap \"c\" deleted"), "{out:?}");
        let out = skiffctl(&c, &["delete", "cm", "nosuch"], None);
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (
                1,
                "Error from server (NotFound): configmaps \"nosuch\" not found\n"
            )
        );
        let out = skiffctl(&c, &["delete", "cm", "nosuch", "--ignore-not-found"], None);
        assert_eq!(out.code, 0);
        // Orphan keeps the ReplicaSet; foreground returns with nothing left.
        c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(DEPLOY))
            .ok();
        wait_for(&c, &["get", "rs", "-l", "app=web", "-o", "name"], |s| {
            !s.is_empty()
        });
        let out = skiffctl(&c, &["delete", "deploy", "web", "--cascade=orphan"], None);
        assert_eq!(out.stdout, "deployment.apps \"web\" deleted\n", "{out:?}");
        let rs = c
            .kubectl(&["get", "rs", "-l", "app=web", "-o", "name"])
            .ok();
        assert!(!rs.is_empty(), "orphaned ReplicaSet kept");
        c.kubectl(&["delete", "rs", "-l", "app=web"]).ok();
        c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(DEPLOY))
            .ok();
        wait_for(&c, &["get", "pods", "-l", "app=web", "-o", "name"], |s| {
            s.lines().count() == 2
        });
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), DEPLOY).unwrap();
        let out = skiffctl(
            &c,
            &[
                "delete",
                "-f",
                file.path().to_str().unwrap(),
                "--cascade=foreground",
            ],
            None,
        );
        assert_eq!(out.code, 0, "{out:?}");
        // --wait (the default) returned only once the Deployment was gone,
        // and foreground deletion removes the dependents first.
        assert_eq!(c.kubectl(&["get", "deploy", "web"]).code, 1);
        assert_eq!(
            c.kubectl(&["get", "rs", "-l", "app=web", "-o", "name"])
                .ok(),
            ""
        );
    })
    .await;
    node.abort();
    std::sync::Arc::try_unwrap(cluster)
        .ok()
        .unwrap()
        .stop()
        .await;
}

fn wait_for(c: &TestCluster, args: &[&str], check: impl Fn(&str) -> bool) -> String {
    for _ in 0..600 {
        let out = c.kubectl(args);
        if out.code == 0 && check(&out.stdout) {
            return out.stdout;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for kubectl {args:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tree_shows_deployment_replicasets_and_pods() {
    let cluster = TestCluster::start().await;
    let node = fake_node(cluster.client().await, "default", Duration::from_millis(50));
    let c = std::sync::Arc::new(cluster);
    let c2 = c.clone();
    let out = blocking(move || {
        c2.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(DEPLOY))
            .ok();
        wait_for(
            &c2,
            &[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ],
            |s| s == "2",
        );
        skiffctl(&c2, &["tree", "deploy/web"], None)
    })
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("STATUS") && lines[0].ends_with("AGE"),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].starts_with("deployment.apps/web ") && lines[1].contains("2/2 ready"),
        "{}",
        out.stdout
    );
    assert!(
        lines[2].starts_with("└── replicaset.apps/web-"),
        "{}",
        out.stdout
    );
    let pods: Vec<&&str> = lines.iter().filter(|l| l.contains("pod/web-")).collect();
    assert_eq!(pods.len(), 2, "{}", out.stdout);
    assert!(
        pods.iter()
            .all(|l| l.starts_with("    ") && l.contains("Running, Ready")),
        "{}",
        out.stdout
    );
    // Service → EndpointSlice → the pods it points at.
    let out = blocking({
        let c = c.clone();
        move || {
            c.kubectl_stdin(
                &["apply", "--server-side", "-f", "-"],
                Some("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n"),
            )
            .ok();
            wait_for(&c, &["get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "jsonpath={.items[*].endpoints[*].targetRef.name}"], |s| s.split(' ').count() == 2);
            skiffctl(&c, &["tree", "svc/web"], None)
        }
    })
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[1].starts_with("service/web "), "{}", out.stdout);
    assert!(
        lines[2].starts_with("└── endpointslice.discovery.k8s.io/web-")
            && lines[2].contains("2 endpoints"),
        "{}",
        out.stdout
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("    ") && l.contains("pod/web-"))
            .count(),
        2,
        "{}",
        out.stdout
    );
    let out = blocking({
        let c = c.clone();
        move || skiffctl(&c, &["tree", "deploy/nosuch"], None)
    })
    .await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Error from server (NotFound): deployments.apps \"nosuch\" not found\n"
        )
    );
    // On a terminal (script's pty) the statuses are coloured; NO_COLOR
    // and pipes keep them plain.
    let in_pty = |no_colour: bool| {
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qec"])
            .arg(format!(
                "{} --kubeconfig {} tree deploy/web",
                env!("CARGO_BIN_EXE_skiffctl"),
                c.kubeconfig.display()
            ))
            .arg("/dev/null")
            .stdin(std::process::Stdio::null());
        if no_colour {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()
    };
    let coloured = in_pty(false);
    assert!(
        coloured.contains("\x1b[0;32m2/2 ready\x1b[0m"),
        "{coloured:?}"
    );
    let plain = in_pty(true);
    assert!(
        plain.contains("2/2 ready") && !plain.contains('\x1b'),
        "{plain:?}"
    );
    // -w: a new tree each time the cluster changes it — a scale to 3 shows
    // up as a tree with a third, then ready, pod; a delete ends it.
    let common::Following {
        mut child,
        lines,
        reader,
    } = common::follow(&c, &["tree", "-w", "deploy/web"]);
    let text = || {
        let lines = lines.clone();
        async move {
            let mut t = lines.lock().await.join("\n");
            t.push('\n');
            t
        }
    };
    let trees = || async {
        let t = text().await;
        t.split("\n\n").map(str::to_string).collect::<Vec<_>>()
    };
    eventually("the first tree", Duration::from_secs(20), || async {
        trees().await[0].contains("2/2 ready").then_some(())
    })
    .await;
    let c3 = c.clone();
    blocking(move || c3.kubectl(&["scale", "deploy", "web", "--replicas=3"]).ok()).await;
    eventually(
        "a tree with three ready pods",
        Duration::from_secs(30),
        || async {
            trees()
                .await
                .iter()
                .any(|t| t.contains("3/3 ready") && t.matches("Running, Ready").count() == 3)
                .then_some(())
        },
    )
    .await;
    assert!(trees().await.len() >= 2, "{}", text().await);
    let c3 = c.clone();
    blocking(move || c3.kubectl(&["delete", "deploy", "web"]).ok()).await;
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    assert!(
        status.is_ok_and(|s| s.is_ok_and(|s| s.success())),
        "tree -w ends when its root goes"
    );
    reader.await.unwrap();
    let all = text().await;
    assert!(all.ends_with("deployment.apps/web deleted\n"), "{all}");
    node.abort();
    std::sync::Arc::try_unwrap(c).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_watch_prints_rows_as_events_arrive() {
    let cluster = std::sync::Arc::new(TestCluster::start_apiserver().await);
    let c = cluster.clone();
    blocking(move || c.kubectl(&["create", "configmap", "first"]).ok()).await;
    let common::Following {
        mut child,
        lines,
        reader,
    } = common::follow(&cluster, &["get", "cm", "-w"]);
    eventually("the listed row", Duration::from_secs(30), || {
        let lines = lines.clone();
        async move {
            lines
                .lock()
                .await
                .iter()
                .any(|l| l.starts_with("first "))
                .then_some(())
        }
    })
    .await;
    let c = cluster.clone();
    blocking(move || c.kubectl(&["create", "configmap", "second"]).ok()).await;
    eventually("the watched row", Duration::from_secs(30), || {
        let lines = lines.clone();
        async move {
            lines
                .lock()
                .await
                .iter()
                .any(|l| l.starts_with("second "))
                .then_some(())
        }
    })
    .await;
    assert!(lines.lock().await[0].starts_with("NAME"));
    child.kill().await.unwrap();
    reader.abort();
    std::sync::Arc::try_unwrap(cluster)
        .ok()
        .unwrap()
        .stop()
        .await;
}

/// `get -w --diff`: under each watched row, what changed in that object.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_watch_diff_shows_the_fields_each_write_changed() {
    let cluster = std::sync::Arc::new(TestCluster::start_apiserver().await);
    let c = cluster.clone();
    blocking(move || {
        c.kubectl(&["create", "configmap", "first", "--from-literal=k=v1"])
            .ok()
    })
    .await;
    let common::Following {
        mut child,
        lines,
        reader,
    } = common::follow(&cluster, &["get", "cm", "-w", "--diff"]);
    let wait_line = |what: &'static str, want: &'static str| {
        let lines = lines.clone();
        eventually(what, Duration::from_secs(30), move || {
            let lines = lines.clone();
            async move { lines.lock().await.iter().any(|l| l == want).then_some(()) }
        })
    };
    eventually("the listed row", Duration::from_secs(30), || {
        let lines = lines.clone();
        async move {
            lines
                .lock()
                .await
                .iter()
                .any(|l| l.starts_with("first "))
                .then_some(())
        }
    })
    .await;
    let c = cluster.clone();
    blocking(move || {
        c.kubectl(&[
            "patch",
            "cm",
            "first",
            "--type=merge",
            "-p",
            r#"{"data":{"k":"v2","n":"1"}}"#,
        ])
        .ok();
        c.kubectl(&["label", "cm", "first", "tier=web"]).ok();
        c.kubectl(&["create", "configmap", "second"]).ok();
        c.kubectl(&["delete", "configmap", "second"]).ok();
    })
    .await;
    wait_line("the data change", "    ~ data.k: v1 → v2").await;
    wait_line("the added key", "    + data.n: 1").await;
    wait_line("the label", "    + metadata.labels.tier: web").await;
    wait_line("the new object", "    (created)").await;
    wait_line("the deletion", "    (deleted)").await;
    // Nothing but the fields a write changed: never the resourceVersion.
    assert!(
        !lines
            .lock()
            .await
            .iter()
            .any(|l| l.contains("resourceVersion"))
    );
    child.kill().await.unwrap();
    reader.abort();
    std::sync::Arc::try_unwrap(cluster)
        .ok()
        .unwrap()
        .stop()
        .await;
}

#[test]
fn config_merges_kubeconfig_files_and_edits_contexts() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    let two = dir.path().join("two");
    std::fs::write(&one, "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: ca\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: a\n  context:\n    cluster: ca\n    user: ua\nusers:\n- name: ua\n  user:\n    token: secret\n").unwrap();
    std::fs::write(&two, "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n- name: cb\n  cluster:\n    server: https://127.0.0.1:2\ncontexts:\n- name: b\n  context:\n    cluster: cb\n    user: ub\n    namespace: team\nusers:\n- name: ub\n  user: {}\n").unwrap();
    let env = std::env::join_paths([&one, &two]).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_skiffctl"))
            .args(args)
            .env("KUBECONFIG", &env)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(run(&["config", "current-context"]).1, "a\n");
    assert_eq!(
        run(&["config", "get-contexts"]).1,
        "CURRENT   NAME   CLUSTER   AUTHINFO   NAMESPACE\n*         a      ca        ua         \n          b      cb        ub         team\n"
    );
    let view = run(&["config", "view"]).1;
    assert!(
        view.contains("token: REDACTED") && view.contains("server: https://127.0.0.1:2"),
        "{view}"
    );
    assert_eq!(
        run(&["config", "use-context", "b"]).1,
        "Switched to context \"b\".\n"
    );
    // Written to the first file, as client-go does.
    assert!(
        std::fs::read_to_string(&one)
            .unwrap()
            .contains("current-context: b")
    );
    assert_eq!(run(&["config", "current-context"]).1, "b\n");
    assert_eq!(
        run(&["config", "set-context", "--current", "--namespace", "prod"]).1,
        "Context \"b\" modified.\n"
    );
    assert!(
        std::fs::read_to_string(&two)
            .unwrap()
            .contains("namespace: prod")
    );
    let (code, _, err) = run(&["config", "use-context", "nosuch"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "error: no context exists with the name: \"nosuch\"\n")
    );
    // --context and -n pick the cluster and namespace: the refusal names b's server.
    let (code, _, err) = run(&["--context", "a", "get", "pods"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_prints_both_tools_side_by_side() {
    let cluster = std::sync::Arc::new(TestCluster::start_apiserver().await);
    let c = cluster.clone();
    // SKIFFCTL_BENCH_BIN=<release skiffctl> and --nocapture print real figures.
    let out = blocking(move || match std::env::var("SKIFFCTL_BENCH_BIN") {
        Ok(bin) => {
            let out = std::process::Command::new(bin)
                .arg("--kubeconfig")
                .arg(&c.kubeconfig)
                .args(["bench", "--runs", "20"])
                .output()
                .unwrap();
            skiff_tests::Run {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Err(_) => skiffctl(&c, &["bench", "--runs", "2"], None),
    })
    .await;
    println!("{}", out.stdout);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("COMMAND"), "{}", out.stdout);
    for (i, what) in [
        "skiffctl get pods",
        "kubectl get pods",
        "skiffctl apply -f",
        "kubectl apply --server-side -f",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            lines[i + 1].starts_with(what) && lines[i + 1].contains("ms"),
            "{}",
            out.stdout
        );
    }
    std::sync::Arc::try_unwrap(cluster)
        .ok()
        .unwrap()
        .stop()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollout_status_waits_and_restart_rolls_new_pods() {
    let cluster = TestCluster::start().await;
    let node = fake_node(
        cluster.client().await,
        "default",
        Duration::from_millis(300),
    );
    let c = std::sync::Arc::new(cluster);
    let c2 = c.clone();
    blocking(move || {
        c2.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(DEPLOY))
            .ok();
        let out = skiffctl(&c2, &["rollout", "status", "deploy/web"], None);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(
            out.stdout
                .ends_with("deployment \"web\" successfully rolled out\n"),
            "{out:?}"
        );
        let rs_before = c2
            .kubectl(&["get", "rs", "-l", "app=web", "-o", "name"])
            .ok();
        let out = skiffctl(&c2, &["rollout", "restart", "deploy/web"], None);
        assert_eq!(out.stdout, "deployment.apps/web restarted\n", "{out:?}");
        let out = skiffctl(&c2, &["rollout", "status", "deploy", "web"], None);
        assert_eq!(out.code, 0, "{out:?}");
        // The same status kubectl reports, and a second ReplicaSet.
        assert_eq!(
            c2.kubectl(&["rollout", "status", "deploy/web"]).ok(),
            "deployment \"web\" successfully rolled out\n"
        );
        let rs_after = c2
            .kubectl(&["get", "rs", "-l", "app=web", "-o", "name"])
            .ok();
        assert_eq!(
            rs_after.lines().count(),
            rs_before.lines().count() + 1,
            "{rs_after}"
        );
        let annotation = c2
            .kubectl(&[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.spec.template.metadata.annotations}",
            ])
            .ok();
        assert!(
            annotation.contains("kubectl.kubernetes.io/restartedAt"),
            "{annotation}"
        );

        // wait: the fake node makes the pods ready, so the Deployment
        // becomes Available.
        let out = skiffctl(
            &c2,
            &["wait", "--for=condition=Available", "deploy/web", "--timeout=60s"],
            None,
        );
        assert_eq!(out.stdout, "deployment.apps/web condition met\n", "{out:?}");
        // undo: back to the template before the restart, as a new revision.
        let out = skiffctl(&c2, &["rollout", "undo", "deploy/web"], None);
        assert_eq!(out.stdout, "deployment.apps/web rolled back\n", "{out:?}");
        let out = skiffctl(&c2, &["rollout", "status", "deploy/web"], None);
        assert_eq!(out.code, 0, "{out:?}");
        let annotation = c2
            .kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.metadata.annotations}"])
            .ok();
        assert!(!annotation.contains("restartedAt"), "{annotation}");
        let history = skiffctl(&c2, &["rollout", "history", "deploy/web"], None);
        assert_eq!(
            history.stdout,
            "deployment.apps/web \nREVISION  CHANGE-CAUSE\n2         <none>\n3         <none>\n\n",
            "{history:?}"
        );

        // wait --for=delete on an object that goes while we wait: a
        // finalizer holds it Terminating until we let it go.
        c2.kubectl_stdin(
            &["apply", "-f", "-"],
            Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: doomed\n  finalizers: [example.com/hold]\n"),
        )
        .ok();
        c2.kubectl(&["delete", "cm", "doomed", "--wait=false"]).ok();
        let c3 = c2.clone();
        let waiter = std::thread::spawn(move || {
            skiffctl(&c3, &["wait", "--for=delete", "cm/doomed", "--timeout=30s"], None)
        });
        std::thread::sleep(Duration::from_millis(500));
        c2.kubectl(&["patch", "cm", "doomed", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#])
            .ok();
        let out = waiter.join().unwrap();
        assert_eq!(out.stdout, "configmap/doomed condition met\n", "{out:?}");

        // events -w: the list, then a scale's event as it happens.
        let mut watch = std::process::Command::new(env!("CARGO_BIN_EXE_skiffctl"))
            .arg("--kubeconfig")
            .arg(&c2.kubeconfig)
            .args(["events", "-w", "--for", "deploy/web"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = watch.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let header = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(header.starts_with("LAST SEEN"), "{header}");
        c2.kubectl(&["scale", "deploy", "web", "--replicas=5"]).ok();
        let scaled = loop {
            let line = rx.recv_timeout(Duration::from_secs(20)).expect("a ScalingReplicaSet line");
            if line.contains("to 5") {
                break line;
            }
        };
        watch.kill().unwrap();
        watch.wait().unwrap();
        assert!(
            scaled.contains("Normal") && scaled.contains("ScalingReplicaSet") && scaled.contains("Deployment/web"),
            "{scaled}"
        );
    })
    .await;
    node.abort();
    std::sync::Arc::try_unwrap(c).ok().unwrap().stop().await;
}

/// Two nodes set up alike, one drained by kubectl and the other by
/// skiffctl: the same lines (names swapped; evictions run concurrently in
/// kubectl, so lines are compared sorted), and the same pods gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drain_refuses_and_evicts_as_kubectl_does() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams, PostParams};
    let cluster = TestCluster::start().await;
    let client = cluster.client().await;
    let node = fake_node(client.clone(), "default", Duration::from_millis(100));
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let c = std::sync::Arc::new(cluster);
    for who in ["k", "s"] {
        let manifest = format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-{who}\n---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{who}\nspec:\n  replicas: 2\n  \
             selector: {{matchLabels: {{app: web-{who}}}}}\n  template:\n    metadata: {{labels: {{app: web-{who}}}}}\n    \
             spec: {{containers: [{{name: c, image: nginx:1.27}}]}}\n---\n\
             apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent-{who}\nspec:\n  \
             selector: {{matchLabels: {{app: agent-{who}}}}}\n  template:\n    metadata: {{labels: {{app: agent-{who}}}}}\n    \
             spec: {{containers: [{{name: c, image: agent:1}}]}}\n"
        );
        c.kubectl_stdin(&["apply", "-f", "-"], Some(&manifest)).ok();
        let ds_uid = c
            .kubectl(&[
                "get",
                "ds",
                &format!("agent-{who}"),
                "-o",
                "jsonpath={.metadata.uid}",
            ])
            .ok();
        let extra = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bare-{who}\nspec:\n  nodeName: node-{who}\n  \
             containers: [{{name: c, image: busybox:1}}]\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata:\n  name: scratch-{who}\nspec:\n  nodeName: node-{who}\n  \
             containers: [{{name: c, image: busybox:1}}]\n  volumes: [{{name: tmp, emptyDir: {{}}}}]\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata:\n  name: agent-{who}-x\n  labels: {{app: agent-{who}}}\n  \
             ownerReferences: [{{apiVersion: apps/v1, kind: DaemonSet, name: agent-{who}, uid: {ds_uid}, controller: true}}]\n\
             spec:\n  nodeName: node-{who}\n  containers: [{{name: c, image: agent:1}}]\n"
        );
        c.kubectl_stdin(&["apply", "-f", "-"], Some(&extra)).ok();
        // The Deployment's pods, bound to this node as a scheduler would.
        let selector = format!("app=web-{who}");
        let names: Vec<String> = eventually("2 web pods", Duration::from_secs(20), || async {
            let list = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .ok()?;
            (list.items.len() == 2).then(|| {
                list.items
                    .iter()
                    .map(|p| p.metadata.name.clone().unwrap())
                    .collect()
            })
        })
        .await;
        for name in names {
            let binding = serde_json::json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                                             "target": {"apiVersion": "v1", "kind": "Node", "name": format!("node-{who}")}});
            pods.create_subresource::<serde_json::Value, serde_json::Value>(
                "binding",
                &name,
                &PostParams::default(),
                &binding,
            )
            .await
            .unwrap();
        }
    }
    let c2 = c.clone();
    blocking(move || {
        // Web pod names differ between the two; they are replaced by WEB-n.
        let web_names = |who: &str| -> Vec<String> {
            let out = c2
                .kubectl(&[
                    "get",
                    "pods",
                    "-l",
                    &format!("app=web-{who}"),
                    "--field-selector",
                    &format!("spec.nodeName=node-{who}"),
                    "-o",
                    "name",
                ])
                .ok();
            out.lines()
                .map(|l| l.trim_start_matches("pod/").to_string())
                .collect()
        };
        let normalise = |text: &str, who: &str, webs: &[String]| -> Vec<String> {
            let mut t = text.to_string();
            for (i, w) in webs.iter().enumerate() {
                t = t.replace(w, &format!("WEB-{i}"));
            }
            t = t.replace(&format!("-{who}"), "-X");
            // kubectl lists a node's errors in Go map order: sort them.
            let mut lines: Vec<String> = t
                .lines()
                .map(|l| match (l.find('['), l.rfind(']')) {
                    (Some(a), Some(b)) if a < b => {
                        let mut items: Vec<&str> = l[a + 1..b].split(", cannot delete ").collect();
                        items
                            .iter_mut()
                            .for_each(|i| *i = i.trim_start_matches("cannot delete "));
                        items.sort();
                        format!("{}[{}]{}", &l[..a], items.join(" | "), &l[b + 1..])
                    }
                    // Its warnings too.
                    _ if l.starts_with("Warning: ") => {
                        let mut items: Vec<&str> = l["Warning: ".len()..].split("; ").collect();
                        items.sort();
                        format!("Warning: {}", items.join("; "))
                    }
                    _ => l.to_string(),
                })
                .collect();
            lines.sort();
            lines
        };
        let both = |args: &[&str]| {
            let theirs_args: Vec<String> =
                args.iter().map(|a| a.replace("NODE", "node-k")).collect();
            let ours_args: Vec<String> = args.iter().map(|a| a.replace("NODE", "node-s")).collect();
            let (wk, ws) = (web_names("k"), web_names("s"));
            let theirs = c2.kubectl(&theirs_args.iter().map(String::as_str).collect::<Vec<_>>());
            let ours = skiffctl(
                &c2,
                &ours_args.iter().map(String::as_str).collect::<Vec<_>>(),
                None,
            );
            assert_eq!(
                ours.code, theirs.code,
                "{args:?}\n  skiffctl {ours:?}\n  kubectl {theirs:?}"
            );
            assert_eq!(
                (
                    normalise(&ours.stdout, "s", &ws),
                    normalise(&ours.stderr, "s", &ws)
                ),
                (
                    normalise(&theirs.stdout, "k", &wk),
                    normalise(&theirs.stderr, "k", &wk)
                ),
                "{args:?}\n  skiffctl {ours:?}\n  kubectl {theirs:?}"
            );
            ours
        };
        // Without flags: refused (the node stays cordoned, nothing evicted).
        let out = both(&["drain", "NODE"]);
        assert_eq!(out.code, 1);
        assert!(
            out.stderr
                .contains("cannot delete Pods that declare no controller"),
            "{out:?}"
        );
        assert_eq!(web_names("s").len(), 2);
        // With them: the DaemonSet pod stays, the rest go.
        let out = both(&[
            "drain",
            "NODE",
            "--ignore-daemonsets",
            "--force",
            "--delete-emptydir-data",
        ]);
        assert_eq!(out.code, 0);
        assert!(out.stdout.ends_with("node/node-s drained\n"), "{out:?}");
        assert!(web_names("s").is_empty());
        let left = c2
            .kubectl(&[
                "get",
                "pods",
                "--field-selector",
                "spec.nodeName=node-s",
                "-o",
                "name",
            ])
            .ok();
        assert_eq!(left, "pod/agent-s-x\n");
        assert_eq!(
            c2.kubectl(&[
                "get",
                "node",
                "node-s",
                "-o",
                "jsonpath={.spec.unschedulable}"
            ])
            .ok(),
            "true"
        );
    })
    .await;
    node.abort();
    std::sync::Arc::try_unwrap(c).ok().unwrap().stop().await;
}

/// `edit` with scripted editors (run as `sh script`, so a script just
/// written is never exec'd while open): a change, no change, a change the
/// server refuses then fixed in the reopened file, and one never fixed.
/// The same first two through the real kubectl print the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edit_sends_the_change_and_reopens_on_refusal() {
    let cluster = std::sync::Arc::new(TestCluster::start_apiserver().await);
    let c = cluster.clone();
    blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            format!("sh {}", path.display())
        };
        let bump = script("bump.sh", "sed -i 's/replicas: 2/replicas: 3/' \"$1\"\n");
        let seen = dir.path().join("seen-error.yaml");
        let fix = script(
            "fix.sh",
            &format!(
                "if grep -q 'Invalid value' \"$1\"; then cp \"$1\" {}; sed -i 's/replicas: -1/replicas: 4/' \"$1\"; \
                 else sed -i 's/replicas: [0-9]*$/replicas: -1/' \"$1\"; fi\n",
                seen.display()
            ),
        );
        let never = script("never.sh", "sed -i 's/replicas: [0-9]*$/replicas: -1/' \"$1\"\n");
        for name in ["s-web", "k-web"] {
            c.kubectl_stdin(&["apply", "-f", "-"], Some(&DEPLOY.replace("name: web", &format!("name: {name}")))).ok();
        }
        let edit = |program: &str, editor: &str, name: &str| {
            let mut cmd = std::process::Command::new(program);
            cmd.arg("--kubeconfig")
                .arg(&c.kubeconfig)
                .args(["edit", &format!("deploy/{name}")])
                .env("KUBE_EDITOR", editor)
                .env_remove("KUBECONFIG");
            skiff_tests::Run::of(cmd, None)
        };
        let replicas = |name: &str| c.kubectl(&["get", "deploy", name, "-o", "jsonpath={.spec.replicas}"]).ok();
        let ours_bin = env!("CARGO_BIN_EXE_skiffctl");
        for editor in [bump.as_str(), "true"] {
            let ours = edit(ours_bin, editor, "s-web");
            let theirs = edit("kubectl", editor, "k-web");
            assert_eq!(
                (ours.code, ours.stdout.replace("s-web", "k-web"), ours.stderr.clone()),
                (theirs.code, theirs.stdout.clone(), theirs.stderr.clone()),
                "{editor}"
            );
        }
        assert_eq!(replicas("s-web"), "3");
        let out = edit(ours_bin, "true", "s-web");
        assert_eq!(out.stderr, "Edit cancelled, no changes made.\n");
        // Refused, reopened with the reason on top, fixed there.
        let out = edit(ours_bin, &fix, "s-web");
        assert_eq!((out.code, out.stdout.as_str()), (0, "deployment.apps/s-web edited\n"), "{out:?}");
        assert_eq!(replicas("s-web"), "4");
        let reopened = std::fs::read_to_string(&seen).unwrap();
        assert!(reopened.starts_with("# Please edit the object below."), "{reopened}");
        assert!(reopened.contains("# The Deployment \"s-web\" is invalid"), "{reopened}");
        // Never fixed: kubectl's giving up, the edit kept in a file.
        let out = edit(ours_bin, &never, "s-web");
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr.starts_with("error: Edit cancelled, no valid changes were saved.\nA copy of your changes has been stored to"),
            "{out:?}"
        );
        assert_eq!(replicas("s-web"), "4");
    })
    .await;
    std::sync::Arc::try_unwrap(cluster)
        .ok()
        .unwrap()
        .stop()
        .await;
}

/// `completion bash`, sourced into a real bash: verbs, resource types and
/// names from the cluster (in the namespace the words name), `TYPE/NAME`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bash_completion_offers_verbs_types_and_names_from_the_cluster() {
    let cluster = std::sync::Arc::new(TestCluster::start_apiserver().await);
    let c = cluster.clone();
    blocking(move || {
        c.kubectl(&["create", "configmap", "alpha"]).ok();
        c.kubectl(&["create", "configmap", "beta"]).ok();
        c.kubectl(&["create", "namespace", "team"]).ok();
        c.kubectl(&["create", "configmap", "gamma", "-n", "team"])
            .ok();
        let script = skiffctl(&c, &["completion", "bash"], None);
        assert_eq!(script.code, 0, "{script:?}");
        assert!(
            script.stdout.contains("_clap_complete_skiffctl"),
            "{}",
            script.stdout
        );
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("skiffctl.bash");
        std::fs::write(&source, &script.stdout).unwrap();
        let kc = c.kubeconfig.display().to_string();
        // COMPREPLY for the words (the last one is being completed).
        let complete = |words: &[&str]| -> Vec<String> {
            let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
            let cword = words.len() - 1;
            let program = format!(
                "source {}; COMP_WORDS=({}); COMP_CWORD={cword}; COMP_TYPE=9; \
                 _clap_complete_skiffctl skiffctl '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                source.display(),
                quoted.join(" "),
                words[cword],
                words[cword - 1],
            );
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(&program)
                .output()
                .unwrap();
            let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            got.sort();
            got
        };
        let verbs = complete(&["skiffctl", "dr"]);
        assert_eq!(verbs, ["drain"], "{verbs:?}");
        let types = complete(&["skiffctl", "--kubeconfig", &kc, "get", "config"]);
        assert_eq!(types, ["configmaps"], "{types:?}");
        let names = complete(&["skiffctl", "--kubeconfig", &kc, "get", "cm", ""]);
        assert!(
            names.contains(&"alpha".to_string()) && names.contains(&"beta".to_string()),
            "{names:?}"
        );
        assert!(!names.contains(&"gamma".to_string()), "{names:?}");
        let in_team = complete(&[
            "skiffctl",
            "--kubeconfig",
            &kc,
            "-n",
            "team",
            "describe",
            "cm",
            "g",
        ]);
        assert_eq!(in_team, ["gamma"], "{in_team:?}");
        let slashed = complete(&["skiffctl", "--kubeconfig", &kc, "delete", "cm/al"]);
        assert_eq!(slashed, ["cm/alpha"], "{slashed:?}");
        // Nothing to reach: no names (clap offers the flags), no hang.
        let unreachable = complete(&["skiffctl", "--kubeconfig", "/nonexistent", "get", "cm", ""]);
        assert!(
            unreachable.iter().all(|c| c.starts_with("--")),
            "{unreachable:?}"
        );
    })
    .await;
    std::sync::Arc::try_unwrap(cluster)
        .ok()
        .unwrap()
        .stop()
        .await;
}

/// `apply --prune -l`: what skiffctl applied before with the label and is no
/// longer in the files goes; what someone else made, or what lacks the
/// label, stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_prune_deletes_only_what_it_applied_and_left_out() {
    let cluster = std::sync::Arc::new(TestCluster::start_apiserver().await);
    let c = cluster.clone();
    blocking(move || {
        let cm = |name: &str, label: &str| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{app: {label}}}\n---\n")
        };
        let both = format!("{}{}{}", cm("a", "p"), cm("b", "p"), cm("other", "q"));
        let out = skiffctl(&c, &["apply", "-f", "-"], Some(&both));
        assert_eq!(out.code, 0, "{out:?}");
        // Someone else's object with the same label.
        c.kubectl_stdin(&["create", "-f", "-"], Some(&cm("theirs", "p"))).ok();
        let out = skiffctl(&c, &["apply", "--prune", "-f", "-"], Some(&cm("a", "p")));
        assert_eq!(out.code, 1, "no selector: refused as kubectl refuses");
        let only_a = cm("a", "p");
        let out = skiffctl(&c, &["apply", "--prune", "-l", "app=p", "--dry-run=server", "-f", "-"], Some(&only_a));
        assert_eq!(out.stdout, "configmap/a serverside-applied (server dry run)\nconfigmap/b pruned (server dry run)\n", "{out:?}");
        assert_eq!(c.kubectl(&["get", "cm", "b", "-o", "name"]).ok(), "configmap/b\n");
        let out = skiffctl(&c, &["apply", "--prune", "-l", "app=p", "-f", "-"], Some(&only_a));
        assert_eq!(out.stdout, "configmap/a serverside-applied\nconfigmap/b pruned\n", "{out:?}");
        let left = c.kubectl(&["get", "cm", "-o", "name"]).ok();
        assert!(left.contains("configmap/a\n") && left.contains("configmap/theirs\n") && left.contains("configmap/other\n"), "{left}");
        assert!(!left.contains("configmap/b\n"), "{left}");
    })
    .await;
    std::sync::Arc::try_unwrap(cluster)
        .ok()
        .unwrap()
        .stop()
        .await;
}
