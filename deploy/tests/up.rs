//! `skiff up` as a new user runs it, as root: on a clean data dir the
//! cluster starts and its node gets Ready; kubectl applies a Deployment of
//! the demo HTTP image and the pod answers on its IP; `skiff status` lists
//! the programs; `skiff down` + `skiff up` keeps everything (the pod's
//! container survives and is adopted); `skiff reset` leaves nothing behind
//! (processes, mounts, bridge, nftables table, data dir).
//!
//! Everything is named per test run (port, bridge, table, pod subnet) and
//! fenced: pod packets stay on this machine.

use std::path::Path;
use std::process::Command;

mod common;
use common::{Cluster, eventually, http_get, leftovers, ok};

fn web_pod_ip(c: &Cluster) -> Option<String> {
    let out = c.kubectl(
        &[
            "get", "pods", "-l", "app=web", "-o",
            "jsonpath={range .items[*]}{.status.phase} {.status.podIP} {.status.containerStatuses[0].ready}{\"\\n\"}{end}",
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().next()?;
    let f: Vec<&str> = line.split(' ').collect();
    (f.len() == 3 && f[0] == "Running" && f[2] == "true").then(|| f[1].to_string())
}

#[test]
#[ignore = "needs root: runs a whole cluster with containers, a bridge and nftables"]
fn up_apply_down_up_reset() {
    let bin = Path::new(env!("CARGO_BIN_EXE_skiff"))
        .parent()
        .unwrap()
        .to_path_buf();
    for b in [
        "skiff-apiserver",
        "skiff-controller-manager",
        "skiff-scheduler",
        "skiff-kubelet",
    ] {
        assert!(
            bin.join(b).exists(),
            "{b} is not built next to skiff in {}: cargo build --workspace first (scripts/test.sh does)",
            bin.display()
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix("skiff-up-")
        .tempdir()
        .unwrap();
    let id = std::process::id() % 200;
    let c = Cluster::new(tmp.path(), "sut", format!("10.249.{id}.0/24"), &[]);

    // up: Ready, and how to use it.
    let out = ok(&c.skiff(&["up"]), "skiff up");
    assert!(out.contains("is Ready"), "{out}");
    assert!(
        out.contains(&format!(
            "export KUBECONFIG={}",
            c.data.join("admin.kubeconfig").display()
        )),
        "{out}"
    );
    let status = c.skiff(&["status"]);
    let table = ok(&status, "skiff status");
    for p in ["apiserver", "controller-manager", "scheduler", "kubelet"] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(p) && l.contains("running")),
            "{p}: {table}"
        );
    }
    // A second up finds it running.
    // doctor on the running cluster: its own ports are its own, the node's
    // address and clock are fine.
    let doctor = c.skiff(&["doctor"]);
    let report = String::from_utf8_lossy(&doctor.stdout).into_owned();
    assert!(
        doctor.status.success() && !report.contains("FAIL"),
        "{report}"
    );
    assert!(
        report.contains("(API server) free or ours") && report.contains("ok    cgroups"),
        "{report}"
    );
    let again = ok(&c.skiff(&["up"]), "second skiff up");
    assert!(again.contains("already running"), "{again}");

    // A Deployment of the demo image, applied with the real kubectl.
    let manifest = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: httpd
        image: skiff/httpd:latest
        imagePullPolicy: Never
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
"#;
    ok(
        &c.kubectl(&["apply", "-f", "-"], Some(manifest)),
        "kubectl apply",
    );
    let ip = eventually("the web pod to be ready", 90, || web_pod_ip(&c));
    let prefix = c.subnet.trim_end_matches("0/24");
    assert!(ip.starts_with(prefix), "{ip} in {}", c.subnet);
    let page = eventually("the pod to answer", 30, || http_get(&ip));
    assert!(page.contains("Hello from Skiff"), "{page}");
    // A Service in front of it, through the proxy's ClusterIP rules.
    ok(
        &c.kubectl(&["expose", "deployment", "web", "--port=80"], None),
        "kubectl expose",
    );
    let cluster_ip = ok(
        &c.kubectl(
            &["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"],
            None,
        ),
        "get svc",
    );
    let via_service = eventually("the Service to answer", 30, || http_get(&cluster_ip));
    assert!(via_service.contains("Hello from Skiff"), "{via_service}");
    // Cluster DNS from inside the pod (kubectl exec): its resolv.conf
    // points at the proxy's DNS, whose search path makes `web` a Service.
    for name in ["web", "web.default.svc.cluster.local"] {
        let answer = eventually(&format!("DNS for {name} in the pod"), 30, || {
            let out = c.kubectl(&["exec", "deploy/web", "--", "nslookup", name], None);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.contains(&format!("Address: {cluster_ip}"))
                .then_some(text)
        });
        assert!(answer.contains("web.default.svc.cluster.local"), "{answer}");
    }
    // And the Service by name from inside its own pod (hairpin).
    let own = eventually("the pod to reach its Service by name", 30, || {
        // nc -w, not wget -T: Debian's busybox-static wget segfaults when
        // given -T (seen with 1.35), and without a timeout it could hang.
        let get = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 web 80";
        let out = c.kubectl(&["exec", "deploy/web", "--", "sh", "-c", get], None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("Hello from Skiff").then_some(text)
    });
    assert!(own.contains("Hello from Skiff"), "{own}");
    // skiffctl picks the Deployment's pod for exec and logs as kubectl does.
    let skiffctl = std::path::Path::new(env!("CARGO_BIN_EXE_skiff")).with_file_name("skiffctl");
    assert!(
        skiffctl.exists(),
        "skiffctl is not built next to skiff: cargo build --workspace first"
    );
    let skiffctl_run = |args: &[&str]| {
        Command::new(&skiffctl)
            .arg("--kubeconfig")
            .arg(c.data.join("admin.kubeconfig"))
            .args(args)
            .output()
            .unwrap()
    };
    let pod = ok(
        &c.kubectl(
            &[
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[0].metadata.name}",
            ],
            None,
        ),
        "the web pod",
    );
    let out = skiffctl_run(&["exec", "deploy/web", "--", "hostname"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        pod.trim(),
        "{out:?}"
    );
    let out = skiffctl_run(&["logs", "deploy/web", "--tail=1"]);
    assert!(out.status.success(), "{out:?}");

    // down keeps the state (and the running container); up brings the same back.
    ok(&c.skiff(&["down"]), "skiff down");
    assert_eq!(c.skiff(&["status"]).status.code(), Some(3));
    assert!(
        http_get(&ip).is_some_and(|p| p.contains("Hello from Skiff")),
        "the pod outlives its kubelet"
    );
    // Up again, this time with --demo's short timers: every program takes
    // its flags, the node comes Ready, and a new pod gets 30 s tolerations.
    let out = ok(&c.skiff(&["up", "--demo"]), "skiff up --demo");
    assert!(out.contains("is Ready"), "{out}");
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: demo-timers\nspec:\n  containers:\n  - {name: c, image: skiff/httpd:latest, imagePullPolicy: Never}\n";
    ok(
        &c.kubectl(&["apply", "-f", "-"], Some(pod)),
        "a pod under --demo",
    );
    let seconds = ok(
        &c.kubectl(
            &[
                "get",
                "pod",
                "demo-timers",
                "-o",
                "jsonpath={.spec.tolerations[*].tolerationSeconds}",
            ],
            None,
        ),
        "its tolerations",
    );
    assert_eq!(seconds, "30 30");
    ok(
        &c.kubectl(&["delete", "pod", "demo-timers", "--wait=false"], None),
        "delete it",
    );
    let deploy = ok(
        &c.kubectl(&["get", "deploy", "web", "-o", "name"], None),
        "get deploy",
    );
    assert_eq!(deploy.trim(), "deployment.apps/web");
    let ip_again = eventually("the web pod to be ready again", 90, || web_pod_ip(&c));
    assert_eq!(ip_again, ip, "the same pod, adopted");
    let logs = ok(&c.skiff(&["logs", "kubelet"]), "skiff logs kubelet");
    assert!(logs.contains("skiff_kubelet"), "the kubelet's own log");

    // A reboot of the machine: down, then everything that lives in memory
    // goes — processes (the containers with their shims), mounts (rootfs,
    // the sandboxes' namespaces), pod cgroups, the bridge and nftables —
    // and only the disk stays. `up` brings the pod back as a kubelet does
    // after a node reboot: a new sandbox, its container started again.
    let pod_name = ok(
        &c.kubectl(
            &[
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[0].metadata.name}",
            ],
            None,
        ),
        "the web pod's name",
    );
    ok(&c.skiff(&["down"]), "skiff down before the reboot");
    skiff_runtime::cleanup::remove_all(&c.data.join("kubelet"));
    let settings = skiff_deploy::cluster::Layout::new(&c.data)
        .unwrap()
        .load_settings()
        .unwrap();
    skiff_deploy::host::remove(&settings);
    // Every container process is gone (checked by pid: nothing is sent to
    // the pod's address while no route or fence holds it on this machine).
    let containers = c.data.join("kubelet/runtime/containers");
    for e in std::fs::read_dir(&containers).unwrap().flatten() {
        if let Ok(pid) = std::fs::read_to_string(e.path().join("pid")) {
            let pid = pid.trim();
            assert!(
                !Path::new("/proc").join(pid).exists()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .is_ok_and(|s| s.contains(") Z ")),
                "container process {pid} outlived the reboot"
            );
        }
    }
    let out = ok(&c.skiff(&["up"]), "skiff up after the reboot");
    assert!(out.contains("is Ready"), "{out}");
    let ip_rebooted = eventually("the web pod to run again after the reboot", 90, || {
        web_pod_ip(&c)
    });
    let page = eventually("the pod to answer after the reboot", 30, || {
        http_get(&ip_rebooted)
    });
    assert!(page.contains("Hello from Skiff"), "{page}");
    let after = ok(
        &c.kubectl(&["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].metadata.name} {.items[0].status.containerStatuses[0].restartCount}"], None),
        "the web pod after the reboot",
    );
    let (name_after, restarts) = after.split_once(' ').unwrap();
    assert_eq!(
        name_after,
        pod_name.trim(),
        "the same pod, restarted in place"
    );
    assert!(restarts.parse::<u32>().unwrap() >= 1, "{after}");

    // reset: nothing left.
    ok(&c.skiff(&["reset"]), "skiff reset");
    let left = leftovers(&c);
    assert!(left.is_empty(), "left behind: {left:#?}");
}
