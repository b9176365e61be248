//! The whole node, as root: the real `skiff-kubelet` binary with its
//! embedded runtime (images imported from `<root-dir>/images`, sandboxes on
//! a CNI bridge whose subnet the test fences in with nftables, containers on
//! overlayfs run by per-container shims), a real API server, and the real
//! kubectl: a pod applied with kubectl runs busybox httpd and answers HTTP on
//! its pod IP, `kubectl logs`, `kubectl exec` (pipes, exit codes, stdin, a
//! TTY) and `kubectl cp` (both ways) reach it; `kubectl delete` stops it and the runtime is left empty;
//! `kubectl attach` and `kubectl run -i --rm` reach a container's stdin; the
//! same exec, attach, cp and port-forward over SPDY/3.1; a `hostNetwork`
//! pod answers on the node's loopback with the node's IP as its pod IP.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use skiff_runtime::sandbox::testnet::TestNet;

struct Kubelet(Child);

impl Drop for Kubelet {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

/// Containers outlive the kubelet by design: when the test fails half-way
/// its node is removed from the machine all the same (processes, mounts,
/// cgroups of this test's own root dir).
struct NodeCleanup {
    root: std::path::PathBuf,
}

impl Drop for NodeCleanup {
    fn drop(&mut self) {
        skiff_runtime::cleanup::remove_all(&self.root);
    }
}

async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One node on this machine with its API server: test images imported,
/// a fenced CNI network (`tag` distinct per test), the kubelet binary
/// (with its embedded runtime) registered and Ready with a pod CIDR.
/// Dropped (also on a panic): the kubelet, then what it left on the
/// machine, then the network and the files.
struct Cluster {
    kubelet: Kubelet,
    _cleanup: NodeCleanup,
    server: skiff_apiserver::Running,
    net: TestNet,
    dir: tempfile::TempDir,
    root: std::path::PathBuf,
    kubeconfig: std::path::PathBuf,
    client: kube::Client,
    /// `10.244.N.` of the test subnet.
    prefix: String,
    pod_cidr: String,
}

impl Cluster {
    async fn start(tag: u32) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("skiff-kubelet-e2e-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("kubelet");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/build.sh");
        let built = Command::new("bash")
            .arg(&script)
            .arg(root.join("images"))
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
        let net = TestNet::new(dir.path(), tag).expect("fence and CNI config");
        let cleanup = NodeCleanup { root: root.clone() };
        net.take_ranges_from_pod_cidr()
            .expect("CNI config from the pod CIDR");

        let server =
            skiff_apiserver::start(skiff_apiserver::Config::for_dir(dir.path().join("data")))
                .await
                .expect("start skiff-apiserver");
        let kubeconfig = server.admin_kubeconfig.clone();
        let kubelet = start_kubelet(&kubeconfig, &root, &net.conf_dir);
        let client = skiff_proto::client::connect(Some(&kubeconfig))
            .await
            .unwrap();
        let nodes: Api<Node> = Api::all(client.clone());
        // The test's CNI network takes addresses from the node's pod CIDR
        // (ipRanges): until the Node has one, the runtime's network is not
        // ready and neither is the Node. Node IPAM would assign it; here the
        // test does, the upper half of the test subnet.
        let prefix = net.subnet.trim_end_matches("0/24").to_string();
        let pod_cidr = format!("{prefix}128/25");
        wait_for("the Node to register", 30, || async {
            nodes.get_opt("e2e-node").await.ok()?.map(|_| ())
        })
        .await;
        let n = nodes.get("e2e-node").await.unwrap();
        let not_ready = n
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready");
        assert!(
            not_ready.as_ref().is_none_or(|c| c.status != "True"),
            "Ready before it has a pod CIDR: {not_ready:?}"
        );
        kubectl(
            &kubeconfig,
            &[
                "patch",
                "node",
                "e2e-node",
                "-p",
                &format!(r#"{{"spec":{{"podCIDR":"{pod_cidr}","podCIDRs":["{pod_cidr}"]}}}}"#),
            ],
            None,
        );
        wait_for("the Node to be Ready", 30, || async {
            let n = nodes.get_opt("e2e-node").await.ok()??;
            let ready = n
                .status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Ready")?;
            (ready.status == "True").then_some(())
        })
        .await;
        Cluster {
            kubelet,
            _cleanup: cleanup,
            server,
            net,
            dir,
            root,
            kubeconfig,
            client,
            prefix,
            pod_cidr,
        }
    }

    /// A kubelet again (after the test killed it).
    fn restart_kubelet(&mut self) {
        self.kubelet = start_kubelet(&self.kubeconfig, &self.root, &self.net.conf_dir);
    }

    /// Stops the kubelet and the API server, and checks that the kubelet
    /// itself left no mount behind (before the clean-up would remove it).
    async fn stop(self) {
        let Cluster {
            kubelet,
            _cleanup,
            server,
            net,
            dir,
            ..
        } = self;
        drop(kubelet);
        server.stop().await;
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&dir.path().display().to_string()),
            "no mount left: {mounts}"
        );
        drop(_cleanup);
        drop(net);
    }
}

fn start_kubelet(kubeconfig: &Path, root: &Path, cni_conf_dir: &Path) -> Kubelet {
    Kubelet(
        Command::new(env!("CARGO_BIN_EXE_skiff-kubelet"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--hostname-override", "e2e-node", "--node-ip", "127.0.0.1"])
            .arg("--root-dir")
            .arg(root)
            .arg("--cni-conf-dir")
            .arg(cni_conf_dir)
            .arg("--node-status-update-frequency=1s")
            .args(["--port=0", "--address=127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start skiff-kubelet"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: namespaces, overlayfs, cgroups, CNI, nftables"]
async fn kubectl_apply_runs_a_pod_that_answers_http() {
    let mut cluster = Cluster::start(3).await;
    let (root, kubeconfig, client, prefix, pod_cidr) = (
        cluster.root.clone(),
        cluster.kubeconfig.clone(),
        cluster.client.clone(),
        cluster.prefix.clone(),
        cluster.pod_cidr.clone(),
    );

    let manifest = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  nodeName: e2e-node
  containers:
  - name: httpd
    image: skiff/httpd:latest
    imagePullPolicy: Never
    ports:
    - name: http
      containerPort: 80
    # Probes run for real: HTTP from the node to the pod's address by port
    # name, and a command inside the container through the runtime's ExecSync.
    readinessProbe:
      httpGet: {path: /index.html, port: http}
      periodSeconds: 1
    livenessProbe:
      exec: {command: [test, -f, /var/www/index.html]}
      periodSeconds: 1
"#;
    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(manifest));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let ip = wait_for("web to run and pass its readiness probe", 60, || async {
        let p = pods.get_opt("web").await.ok()??;
        let s = p.status?;
        let ready = s
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        (s.phase.as_deref() == Some("Running") && ready).then_some(s.pod_ip?)
    })
    .await;
    let last: u8 = ip
        .strip_prefix(&prefix)
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    assert!(last >= 128, "{ip} in the node's pod CIDR {pod_cidr}");
    let table = kubectl(&kubeconfig, &["get", "pods", "-o", "wide"], None);
    assert!(
        table.lines().any(|l| l.starts_with("web ")
            && l.contains("1/1")
            && l.contains("Running")
            && l.contains(&ip)),
        "{table}"
    );

    // HTTP to the pod IP, over the test's own bridge.
    let get = || {
        let ip = ip.clone();
        async move {
            let mut s = std::net::TcpStream::connect_timeout(
                &format!("{ip}:80").parse().ok()?,
                Duration::from_secs(2),
            )
            .ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n").ok()?;
            let mut body = String::new();
            s.read_to_string(&mut body).ok()?;
            Some(body)
        }
    };
    let page = wait_for("httpd to answer", 20, get).await;
    assert!(
        page.starts_with("HTTP/1.") && page.contains("Hello from Skiff"),
        "{page}"
    );

    // kubectl logs: the API server asks this node's kubelet API (its
    // kubelet-client certificate against the kubelet's client CA) for the
    // container's log, which busybox httpd -v writes a line to per request
    // (the readiness probes' requests included). The same checks through
    // the real kubectl and through skiffctl.
    let skiffctl = Path::new(env!("CARGO_BIN_EXE_skiff-kubelet")).with_file_name("skiffctl");
    assert!(
        skiffctl.exists(),
        "skiffctl is not built next to skiff-kubelet: cargo build --workspace first (scripts/test.sh does)"
    );
    for program in [Path::new("kubectl"), skiffctl.as_path()] {
        let run = |args: &[&str]| {
            Command::new(program)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(args)
                .output()
                .unwrap()
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let logs = wait_for("httpd's log of our request", 20, || async {
            let out = run(&["logs", "web"]);
            let text = text(&out.stdout);
            (out.status.success() && text.contains("response:200")).then_some(text)
        })
        .await;
        let lines = logs.lines().count();
        assert!(lines >= 2, "{program:?}: {logs}");
        let tail = run(&["logs", "web", "--tail=1", "--timestamps"]);
        let tail = text(&tail.stdout);
        assert_eq!(tail.lines().count(), 1, "{program:?}: {tail}");
        let stamp = tail.split(' ').next().unwrap();
        assert!(
            stamp.parse::<jiff::Timestamp>().is_ok(),
            "{program:?}: {stamp:?} is an RFC 3339 time: {tail}"
        );
        let wrong = run(&["logs", "web", "-c", "nope"]);
        assert!(!wrong.status.success());
        // kubectl checks the name itself first, in the API server's words.
        assert_eq!(
            text(&wrong.stderr).trim(),
            "error: container nope is not valid for pod web",
            "{program:?}"
        );
        // By selector, each line prefixed with where it came from.
        let selected = run(&["logs", "-l", "app=web", "--prefix", "--tail=2"]);
        let selected = text(&selected.stdout);
        assert_eq!(selected.lines().count(), 2, "{program:?}: {selected}");
        assert!(
            selected.lines().all(|l| l.starts_with("[pod/web/httpd] ")),
            "{program:?}: {selected}"
        );
        // --previous: nothing ran before; the API server says so as upstream.
        let previous = run(&["logs", "web", "--previous"]);
        assert_eq!(
            text(&previous.stderr).trim(),
            "Error from server (BadRequest): previous terminated container \"httpd\" in pod \"web\" not found",
            "{program:?}"
        );
        // -f: what is there, then a new request's line as it is written.
        let mut follow = Command::new(program)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["logs", "-f", "web", "--tail=0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = follow.stdout.take().unwrap();
        let (line_tx, line_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        get().await;
        let followed = line_rx.recv_timeout(Duration::from_secs(20));
        follow.kill().unwrap();
        follow.wait().unwrap();
        assert!(
            followed.as_ref().is_ok_and(|l| l.contains("response:")),
            "{program:?}: a line followed: {followed:?}"
        );
    }

    // kubectl exec: a WebSocket (v5.channel.k8s.io) from kubectl to the API
    // server, passed on to this node's kubelet, then to the runtime's
    // streaming server, which runs the command in the container.
    let exec_with = |program: &Path, args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(program)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("exec")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    // The same through the real kubectl and through skiffctl (kube-rs's
    // WebSocket client, which offers v5 and v4 in one header).
    for program in [Path::new("kubectl"), skiffctl.as_path()] {
        let exec = |args: &[&str], stdin: Option<&str>| exec_with(program, args, stdin);
        let out = exec(
            &["web", "--", "sh", "-c", "hostname; echo to stderr >&2"],
            None,
        );
        assert!(out.status.success(), "{program:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "web\n");
        assert_eq!(text(&out.stderr), "to stderr\n");
        // The exit code comes back as the client's own.
        let out = exec(&["web", "--", "sh", "-c", "exit 7"], None);
        assert_eq!(
            out.status.code(),
            Some(7),
            "{program:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stderr).trim(),
            "command terminated with exit code 7"
        );
        // -i: stdin through, and its end closes the command's.
        let out = exec(&["-i", "web", "--", "tr", "a-z", "A-Z"], Some("shout\n"));
        assert!(out.status.success(), "{program:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "SHOUT\n");
    }
    let exec = |args: &[&str], stdin: Option<&str>| exec_with(Path::new("kubectl"), args, stdin);
    // A container the pod does not have: the API server's 400.
    let out = exec(&["web", "-c", "nope", "--", "true"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("container nope is not valid for pod web"),
        "{}",
        text(&out.stderr)
    );
    // -it through a real terminal (script's pty): a terminal in the
    // container's own devpts, and the exit code.
    let script = Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "kubectl --kubeconfig {} exec -it web -- sh -c 'tty; exit 3'",
            kubeconfig.display()
        ))
        .arg("/dev/null")
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(script.status.code(), Some(3), "{}", text(&script.stdout));
    assert!(
        text(&script.stdout).contains("/dev/pts/0"),
        "{}",
        text(&script.stdout)
    );
    // kubectl cp rides on exec (tar in the container, through stdin/stdout).
    let scratch = tempfile::tempdir().unwrap();
    let sent = scratch.path().join("sent.txt");
    std::fs::write(&sent, "copied in\n").unwrap();
    kubectl(
        &kubeconfig,
        &["cp", sent.to_str().unwrap(), "web:/tmp/sent.txt"],
        None,
    );
    let out = exec(&["web", "--", "cat", "/tmp/sent.txt"], None);
    assert_eq!(text(&out.stdout), "copied in\n", "{}", text(&out.stderr));
    let back = scratch.path().join("back.html");
    kubectl(
        &kubeconfig,
        &["cp", "web:/var/www/index.html", back.to_str().unwrap()],
        None,
    );
    assert!(
        std::fs::read_to_string(&back)
            .unwrap()
            .contains("Hello from Skiff")
    );
    // The same with skiffctl (its own tar on this side), a directory too.
    let skiff = |args: &[&str]| {
        let out = Command::new(&skiffctl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skiffctl {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    skiff(&[
        "cp",
        sent.to_str().unwrap(),
        "web:/tmp/sent-by-skiffctl.txt",
    ]);
    assert_eq!(
        skiff(&["exec", "pod/web", "--", "cat", "/tmp/sent-by-skiffctl.txt"]),
        "copied in\n"
    );
    let www = scratch.path().join("www");
    skiff(&["cp", "web:/var/www", www.to_str().unwrap()]);
    assert!(
        std::fs::read_to_string(www.join("index.html"))
            .unwrap()
            .contains("Hello from Skiff")
    );
    // kubectl port-forward: SPDY/3.1 in a WebSocket, through the API
    // server to this kubelet, which connects to the pod's port 80. Two
    // requests over the same forward, each its own pair of streams.
    // The same through skiffctl (its own SPDY client over kube-rs's connection).
    let through = |port: u16| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
        let mut page = String::new();
        use std::io::Read;
        s.read_to_string(&mut page).ok()?;
        Some(page)
    };
    // Starts `program port-forward ARGS`; the local port it reports.
    let start_forward = |program: &Path, args: &[&str]| {
        let mut child = Command::new(program)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("port-forward")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                // "Forwarding from 127.0.0.1:41234 -> 80"
                if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:")
                    && let Some(port) = rest.split(' ').next().and_then(|p| p.parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                }
            }
        });
        (child, rx.recv_timeout(Duration::from_secs(20)))
    };
    for program in [Path::new("kubectl"), skiffctl.as_path()] {
        let (mut forward, local) = start_forward(program, &["pod/web", ":80"]);
        let pages: Vec<Option<String>> = match local {
            Ok(port) => (0..2).map(|_| through(port)).collect(),
            Err(_) => vec![],
        };
        forward.kill().unwrap();
        let fwd = forward.wait_with_output().unwrap();
        assert!(
            local.is_ok(),
            "{program:?} port-forward never said where: {}",
            text(&fwd.stderr)
        );
        assert_eq!(pages.len(), 2);
        for page in &pages {
            assert!(
                page.as_ref()
                    .is_some_and(|p| p.contains("Hello from Skiff")),
                "{program:?}: {page:?} {}",
                text(&fwd.stderr)
            );
        }
    }

    // A port nothing listens on: the kubelet's reason comes back on the
    // error stream and kubectl shows it.
    let (mut refused, port81) = start_forward(Path::new("kubectl"), &["pod/web", ":81"]);
    if let Ok(port) = port81 {
        let got = through(port);
        assert!(got.as_deref().unwrap_or_default().is_empty(), "{got:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = refused.kill();
    let refused = refused.wait_with_output().unwrap();
    assert!(
        text(&refused.stderr).contains("error forwarding port 81 to pod"),
        "{}",
        text(&refused.stderr)
    );

    // Termination messages: what a container writes to
    // /dev/termination-log (a file the kubelet mounts there), or with
    // FallbackToLogsOnError the end of a failed container's log.
    let quitters = r#"
apiVersion: v1
kind: Pod
metadata:
  name: bye
spec:
  nodeName: e2e-node
  restartPolicy: Never
  containers:
  - name: note
    image: skiff/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, "echo disk full > /dev/termination-log; exit 3"]
---
apiVersion: v1
kind: Pod
metadata:
  name: oops
spec:
  nodeName: e2e-node
  restartPolicy: Never
  containers:
  - name: crash
    image: skiff/busybox:latest
    imagePullPolicy: Never
    terminationMessagePolicy: FallbackToLogsOnError
    command: [sh, -c, "echo starting >&2; echo cannot open config >&2; exit 4"]
"#;
    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(quitters));
    for (pod, code, message) in [
        ("bye", 3, "disk full\n"),
        ("oops", 4, "starting\ncannot open config\n"),
    ] {
        let terminated = wait_for("the pod to fail", 60, || async {
            let p = pods.get_opt(pod).await.ok()??;
            let s = p.status?;
            (s.phase.as_deref() == Some("Failed")).then_some(())?;
            s.container_statuses?[0].state.clone()?.terminated
        })
        .await;
        assert_eq!(terminated.exit_code, code, "{pod}");
        assert_eq!(terminated.message.as_deref(), Some(message), "{pod}");
    }
    let bye_uid = pods.get("bye").await.unwrap().metadata.uid.unwrap();
    assert!(root.join("pods").join(&bye_uid).exists());
    kubectl(
        &kubeconfig,
        &["delete", "pod", "bye", "oops", "--timeout=60s"],
        None,
    );
    assert!(
        !root.join("pods").join(&bye_uid).exists(),
        "the pod's files are removed with it"
    );

    // SIGKILL the kubelet (runtime included): the container lives on in its
    // shim; a new kubelet adopts it — same container, no restart — and the
    // pod keeps answering.
    let containers = || {
        std::fs::read_dir(root.join("runtime/containers"))
            .unwrap()
            .count()
    };
    assert_eq!(containers(), 1);
    cluster.kubelet.0.kill().unwrap();
    cluster.kubelet.0.wait().unwrap();
    assert!(
        get().await.is_some_and(|p| p.contains("Hello from Skiff")),
        "serving while no kubelet runs"
    );
    cluster.restart_kubelet();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(containers(), 1, "nothing started twice");
    let p = pods.get("web").await.unwrap();
    let status = p.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.container_statuses.unwrap()[0].restart_count, 0);
    assert!(get().await.is_some_and(|p| p.contains("Hello from Skiff")));

    kubectl(
        &kubeconfig,
        &["delete", "pod", "web", "--grace-period=2", "--timeout=60s"],
        None,
    );
    assert!(pods.get_opt("web").await.unwrap().is_none());
    let containers = std::fs::read_dir(root.join("runtime/containers"))
        .map(|d| d.count())
        .unwrap_or(0);
    let sandboxes = std::fs::read_dir(root.join("runtime/sandboxes"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!((containers, sandboxes), (0, 0), "the runtime is left empty");
    cluster.stop().await;
}

/// `kubectl attach` and `kubectl run -i`, which rides on it, with the real
/// kubectl: the WebSocket goes to the API server's `pods/attach`, on to this
/// node's kubelet, to the runtime's streaming server, and is relayed to the
/// container's shim, which holds its stdin (`stdin: true`, `stdinOnce`).
/// The piped input reaches the container, its output comes back, and the
/// end of kubectl's input is the container's (stdinOnce).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: namespaces, overlayfs, cgroups, CNI, nftables"]
async fn kubectl_attach_and_run_i_reach_the_containers_stdin() {
    let cluster = Cluster::start(5).await;
    let (kubeconfig, client) = (cluster.kubeconfig.clone(), cluster.client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let kubectl_with_input = |args: &[&str], input: &str| {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    };

    // A pod whose container waits for a line on its stdin.
    let manifest = r#"
apiVersion: v1
kind: Pod
metadata:
  name: echo
spec:
  nodeName: e2e-node
  restartPolicy: Never
  containers:
  - name: echo
    image: skiff/busybox:latest
    imagePullPolicy: Never
    stdin: true
    stdinOnce: true
    command: [sh, -c, 'read x; echo "got $x"; echo to stderr >&2; cat; echo "eof"']
"#;
    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(manifest));
    wait_for("echo to run", 60, || async {
        let p = pods.get_opt("echo").await.ok()??;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    // Nothing was written to it yet: it waits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = kubectl(&kubeconfig, &["logs", "echo"], None);
    assert_eq!(log, "", "it waits for its input");
    let out = kubectl_with_input(&["attach", "-i", "echo"], "hello\nmore\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The first line to `read`, the rest to cat, then kubectl's end of
    // input is the container's (stdinOnce), cat ends, so does the pod.
    assert_eq!(
        text(&out.stdout),
        "got hello\nmore\neof\n",
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("to stderr\n"),
        "{}",
        text(&out.stderr)
    );
    wait_for("echo to succeed", 60, || async {
        let p = pods.get_opt("echo").await.ok()??;
        (p.status?.phase.as_deref() == Some("Succeeded")).then_some(())
    })
    .await;
    // Both streams are logged (each in its order; between them, in the
    // order the shim read them).
    let log = kubectl(&kubeconfig, &["logs", "echo"], None);
    let mut lines: Vec<&str> = log.lines().collect();
    lines.sort();
    assert_eq!(lines, ["eof", "got hello", "more", "to stderr"], "{log}");

    // kubectl run -i --rm: kubectl makes the pod (stdin, stdinOnce), waits
    // for it to run, attaches, sends what is piped in, then takes the exit
    // code from the pod's status and deletes the pod.
    let out = kubectl_with_input(
        &[
            "run",
            "runner",
            "-i",
            "--rm",
            "--restart=Never",
            "--image=skiff/busybox:latest",
            "--image-pull-policy=Never",
            // No scheduler here: the pod is put on the node directly.
            r#"--overrides={"apiVersion":"v1","spec":{"nodeName":"e2e-node"}}"#,
            "--",
            "sh",
            "-c",
            r#"read x; echo "got $x"; exit 5"#,
        ],
        "there\n",
    );
    assert_eq!(
        out.status.code(),
        Some(5),
        "{} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with("got there\n"),
        "{} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    wait_for("runner to be deleted", 60, || async {
        pods.get_opt("runner").await.ok()?.is_none().then_some(())
    })
    .await;

    // kubectl run -it, through a real terminal (script's pty): the
    // container's terminal echoes what is typed, and it is its controlling
    // terminal (/dev/tty opens).
    let mut script = Command::new("timeout")
        .args(["120", "script", "-qec"])
        .arg(format!(
            "kubectl --kubeconfig {} run shell -it --rm --restart=Never \
             --image=skiff/busybox:latest --image-pull-policy=Never \
             --overrides='{{\"apiVersion\":\"v1\",\"spec\":{{\"nodeName\":\"e2e-node\"}}}}' \
             -- sh -c 'read x; echo \"got $x\"; : </dev/tty && echo ctty'",
            kubeconfig.display()
        ))
        .arg("/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut typed = script.stdin.take().unwrap();
    // What is typed before kubectl attaches waits in the terminal.
    typed.write_all(b"hi\r").unwrap();
    let script = script.wait_with_output().unwrap();
    drop(typed);
    let screen = text(&script.stdout);
    assert_eq!(
        script.status.code(),
        Some(0),
        "{screen} {}",
        text(&script.stderr)
    );
    assert!(screen.contains("got hi\r\n"), "{screen}");
    assert!(screen.contains("ctty\r\n"), "{screen}");
    wait_for("shell to be deleted", 60, || async {
        pods.get_opt("shell").await.ok()?.is_none().then_some(())
    })
    .await;

    kubectl(
        &kubeconfig,
        &["delete", "pod", "echo", "--timeout=60s"],
        None,
    );
    cluster.stop().await;
}

/// The SPDY/3.1 protocols, with the real kubectl 1.32 told to speak them
/// (`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`,
/// `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`), as kubectl 1.27–1.29 always do:
/// the API server passes the `Upgrade: SPDY/3.1` POST on to this node's
/// kubelet, which agrees `v4.channel.k8s.io` (exec, attach) or
/// `portforward.k8s.io` and serves SPDY itself — exec and attach translated
/// to the runtime's streaming session, port-forward spliced with the pod's
/// port. Everything in a namespace the test makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: namespaces, overlayfs, cgroups, CNI, nftables"]
async fn kubectl_over_spdy_execs_attaches_and_forwards_ports() {
    let cluster = Cluster::start(7).await;
    let (kubeconfig, client) = (cluster.kubeconfig.clone(), cluster.client.clone());
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let manifest = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: spdy
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: spdy
spec:
  nodeName: e2e-node
  containers:
  - name: httpd
    image: skiff/httpd:latest
    imagePullPolicy: Never
    readinessProbe:
      httpGet: {path: /index.html, port: 80}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: echo
  namespace: spdy
spec:
  nodeName: e2e-node
  restartPolicy: Never
  containers:
  - name: echo
    image: skiff/busybox:latest
    imagePullPolicy: Never
    stdin: true
    stdinOnce: true
    command: [sh, -c, 'read x; echo "got $x"; echo to stderr >&2; cat; echo "eof"']
"#;
    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(manifest));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "spdy");
    for name in ["web", "echo"] {
        wait_for("the pods to run (web ready)", 60, || async {
            let s = pods.get_opt(name).await.ok()??.status?;
            let ready = s
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            (s.phase.as_deref() == Some("Running") && ready).then_some(())
        })
        .await;
    }

    // kubectl in namespace spdy, with WebSocket off for every command.
    let spdy = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["-n", "spdy"])
            .args(args)
            .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
            .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(t) = stdin {
            input.write_all(t.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    };

    // exec: stdout and stderr on their streams.
    let out = spdy(
        &[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "hostname; echo to stderr >&2",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "web\n", "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "to stderr\n");
    // The exit code, from the v4 Status on the error stream.
    let out = spdy(&["exec", "web", "--", "sh", "-c", "exit 7"], None);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).trim(),
        "command terminated with exit code 7"
    );
    // -i: stdin through, and its end (FIN) closes the command's.
    let out = spdy(
        &["exec", "-i", "web", "--", "tr", "a-z", "A-Z"],
        Some("shout\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "SHOUT\n");
    // The API server's checks come first, as for WebSocket.
    let out = spdy(&["exec", "web", "-c", "nope", "--", "true"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("container nope is not valid for pod web"),
        "{}",
        text(&out.stderr)
    );
    // kubectl cp rides on exec: tar through stdin, and back through stdout.
    let scratch = tempfile::tempdir().unwrap();
    let sent = scratch.path().join("sent.txt");
    std::fs::write(&sent, "copied over spdy\n").unwrap();
    let out = spdy(&["cp", sent.to_str().unwrap(), "web:/tmp/sent.txt"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let back = scratch.path().join("back.txt");
    let out = spdy(&["cp", "web:/tmp/sent.txt", back.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        "copied over spdy\n"
    );

    // -it through a real terminal (script's pty) sized 45x123: the
    // container's terminal takes that size from the resize stream, and
    // the exit code comes back.
    let script = Command::new("timeout")
        .args(["60", "script", "-qec"])
        .arg(format!(
            "stty rows 45 cols 123; kubectl --kubeconfig {} -n spdy exec -it web -- \
             sh -c 'sleep 1; stty size; tty; exit 3'",
            kubeconfig.display()
        ))
        .arg("/dev/null")
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    let screen = text(&script.stdout);
    assert_eq!(script.status.code(), Some(3), "{screen}");
    assert!(screen.contains("45 123\r\n"), "{screen}");
    assert!(screen.contains("/dev/pts/0"), "{screen}");

    // attach -i: the input to the container's stdin, its end (stdinOnce)
    // the container's, its stdout and stderr back.
    let out = spdy(&["attach", "-i", "echo"], Some("hello\nmore\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "got hello\nmore\neof\n",
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("to stderr\n"),
        "{}",
        text(&out.stderr)
    );
    wait_for("echo to succeed", 60, || async {
        let p = pods.get_opt("echo").await.ok()??;
        (p.status?.phase.as_deref() == Some("Succeeded")).then_some(())
    })
    .await;

    // port-forward over raw SPDY: two requests through 127.0.0.1, each its
    // own pair of streams.
    let through = |port: u16| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
        let mut page = String::new();
        s.read_to_string(&mut page).ok()?;
        Some(page)
    };
    let start_forward = |remote: &str| {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["-n", "spdy", "port-forward", "pod/web", remote])
            .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:")
                    && let Some(port) = rest.split(' ').next().and_then(|p| p.parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                }
            }
        });
        (child, rx.recv_timeout(Duration::from_secs(20)))
    };
    let (mut forward, local) = start_forward(":80");
    let pages: Vec<Option<String>> = match local {
        Ok(port) => (0..2).map(|_| through(port)).collect(),
        Err(_) => vec![],
    };
    forward.kill().unwrap();
    let fwd = forward.wait_with_output().unwrap();
    assert!(local.is_ok(), "never said where: {}", text(&fwd.stderr));
    assert_eq!(pages.len(), 2);
    for page in &pages {
        assert!(
            page.as_ref()
                .is_some_and(|p| p.contains("Hello from Skiff")),
            "{page:?} {}",
            text(&fwd.stderr)
        );
    }
    // A port nothing listens on: the reason on the error stream.
    let (mut refused, port81) = start_forward(":81");
    if let Ok(port) = port81 {
        let got = through(port);
        assert!(got.as_deref().unwrap_or_default().is_empty(), "{got:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = refused.kill();
    let refused = refused.wait_with_output().unwrap();
    assert!(
        text(&refused.stderr).contains("error forwarding port 81 to pod"),
        "{}",
        text(&refused.stderr)
    );

    // No namespace controller runs here: the pods go, the namespace goes
    // with the test's API server.
    kubectl(
        &kubeconfig,
        &[
            "-n",
            "spdy",
            "delete",
            "pod",
            "web",
            "echo",
            "--timeout=60s",
        ],
        None,
    );
    cluster.stop().await;
}

/// Pod volumes for real: two containers sharing an emptyDir (one writes,
/// the other reads), a ConfigMap volume that follows `kubectl apply` of a
/// changed ConfigMap, a Secret volume with `items` and `defaultMode: 0400`
/// (on a tmpfs), an emptyDir `medium: Memory` (a tmpfs in the container's
/// /proc/mounts), a downward API labels file and a hostPath Directory; a
/// hostPath of the wrong type is a FailedMount event. Deleting the pod
/// unmounts and removes its volumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: namespaces, overlayfs, cgroups, CNI, nftables, tmpfs mounts"]
async fn volumes_are_shared_projected_updated_and_removed() {
    let cluster = Cluster::start(4).await;
    let kubeconfig = cluster.kubeconfig.clone();
    let host_dir = cluster.dir.path().join("from-the-host");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("hello.txt"), "hello from the node\n").unwrap();
    let not_a_dir = cluster.dir.path().join("a-file");
    std::fs::write(&not_a_dir, "").unwrap();
    let config = |color: &str| {
        format!(
            r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  color: {color}
"#
        )
    };
    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&config("blue")));
    let manifest = format!(
        r#"
apiVersion: v1
kind: Secret
metadata:
  name: app-secret
data:
  token: dDBrM24=
  unused: eA==
---
apiVersion: v1
kind: Pod
metadata:
  name: vols
  labels: {{app: vols, tier: demo}}
spec:
  nodeName: e2e-node
  containers:
  - name: writer
    image: skiff/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, "echo hello from writer > /shared/note; exec sleep 3600"]
    volumeMounts:
    - {{name: shared, mountPath: /shared}}
    - {{name: config, mountPath: /etc/config}}
    - {{name: secret, mountPath: /etc/secret}}
    - {{name: ram, mountPath: /ram}}
    - {{name: info, mountPath: /etc/info}}
    - {{name: host, mountPath: /host, readOnly: true}}
  - name: reader
    image: skiff/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, "until [ -f /in/note ]; do sleep 0.2; done; cat /in/note; exec sleep 3600"]
    volumeMounts:
    - {{name: shared, mountPath: /in}}
  volumes:
  - name: shared
    emptyDir: {{}}
  - name: config
    configMap: {{name: app-config}}
  - name: secret
    secret:
      secretName: app-secret
      defaultMode: 0400
      items:
      - {{key: token, path: auth/token}}
  - name: ram
    emptyDir: {{medium: Memory, sizeLimit: 16Mi}}
  - name: info
    downwardAPI:
      items:
      - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}
  - name: host
    hostPath: {{path: {host}, type: Directory}}
---
apiVersion: v1
kind: Pod
metadata:
  name: wrong-type
spec:
  nodeName: e2e-node
  containers:
  - name: app
    image: skiff/busybox:latest
    imagePullPolicy: Never
    command: [sleep, "3600"]
    volumeMounts:
    - {{name: host, mountPath: /host}}
  volumes:
  - name: host
    hostPath: {{path: {file}, type: Directory}}
"#,
        host = host_dir.display(),
        file = not_a_dir.display(),
    );
    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&manifest));
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let uid = wait_for("vols to run", 60, || async {
        let p = pods.get_opt("vols").await.ok()??;
        (p.status?.phase.as_deref() == Some("Running")).then_some(p.metadata.uid?)
    })
    .await;
    let exec = |container: &str, cmd: &str| {
        kubectl(
            &kubeconfig,
            &["exec", "vols", "-c", container, "--", "sh", "-c", cmd],
            None,
        )
    };

    // The emptyDir is the same directory in both containers.
    let logs = wait_for("the reader to read the writer's note", 30, || async {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["logs", "vols", "-c", "reader"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("hello from writer").then_some(text)
    })
    .await;
    assert_eq!(logs, "hello from writer\n");
    assert_eq!(exec("reader", "cat /in/note"), "hello from writer\n");

    // The ConfigMap's file, read-only, and its update.
    assert_eq!(exec("writer", "cat /etc/config/color"), "blue");
    let refused = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["exec", "vols", "-c", "writer", "--"])
        .args(["sh", "-c", "echo x > /etc/config/new"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&config("green")));
    let started = Instant::now();
    wait_for("the ConfigMap change in the container", 40, || async {
        (exec("writer", "cat /etc/config/color") == "green").then_some(())
    })
    .await;
    eprintln!("the ConfigMap change arrived after {:?}", started.elapsed());
    assert_eq!(
        exec(
            "writer",
            "readlink /etc/config/color; ls -a /etc/config | grep -c '^\\.\\.2'"
        ),
        "..data/color\n1\n",
        "the atomic writer's link, one version left"
    );

    // The Secret: only the item asked for, mode 0400, on a tmpfs.
    assert_eq!(exec("writer", "cat /etc/secret/auth/token"), "t0k3n");
    assert_eq!(exec("writer", "stat -c %a /etc/secret/auth/token"), "400\n");
    assert_eq!(exec("writer", "ls /etc/secret"), "auth\n");
    let proc_mounts = exec("writer", "cat /proc/mounts");
    let mount_of = |at: &str| {
        proc_mounts
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(at))
            .unwrap_or_default()
            .to_string()
    };
    assert!(mount_of("/etc/secret").contains(" tmpfs "), "{proc_mounts}");
    // medium: Memory, sizeLimit 16Mi.
    let ram = mount_of("/ram");
    assert!(ram.starts_with("tmpfs /ram tmpfs "), "{proc_mounts}");
    assert!(ram.contains("size=16384k"), "{ram}");
    exec("writer", "echo in memory > /ram/x");

    // The downward API and the hostPath.
    assert_eq!(
        exec("writer", "cat /etc/info/labels"),
        "app=\"vols\"\ntier=\"demo\""
    );
    assert_eq!(
        exec("writer", "cat /host/hello.txt"),
        "hello from the node\n"
    );
    assert!(mount_of("/host").contains(" ro,"), "{}", mount_of("/host"));

    // The hostPath that is a file: the pod waits, the event says why.
    let message = format!(
        "MountVolume.SetUp failed for volume \"host\" : hostPath type check failed: {} is not a directory",
        not_a_dir.display()
    );
    wait_for("the FailedMount event", 30, || async {
        let events = kubectl(&kubeconfig, &["get", "events", "-o", "json"], None);
        let events: serde_json::Value = serde_json::from_str(&events).ok()?;
        events["items"]
            .as_array()?
            .iter()
            .any(|e| e["reason"] == "FailedMount" && e["message"] == message.as_str())
            .then_some(())
    })
    .await;
    let waiting = pods.get("wrong-type").await.unwrap();
    let state = waiting.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap();
    assert_eq!(
        state.waiting.unwrap().reason.as_deref(),
        Some("ContainerCreating")
    );

    // On the node, while it runs: the two tmpfs mounts of the pod.
    let volumes = cluster
        .root
        .canonicalize()
        .unwrap()
        .join("pods")
        .join(&uid)
        .join("volumes");
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&volumes.display().to_string()))
            .count()
    };
    assert_eq!(mounted(), 2, "the Secret's and the Memory emptyDir's tmpfs");
    kubectl(
        &kubeconfig,
        &[
            "delete",
            "pod",
            "vols",
            "wrong-type",
            "--grace-period=1",
            "--timeout=60s",
        ],
        None,
    );
    assert_eq!(mounted(), 0, "unmounted with the pod");
    assert!(!volumes.exists(), "removed with the pod");
    assert!(
        host_dir.join("hello.txt").exists(),
        "a hostPath is the node's: kept"
    );
    cluster.stop().await;
}

/// `skiff reset`'s clean-up (`skiff_runtime::cleanup::remove_all`) also
/// undoes the kubelet's own volume mounts: a tmpfs mounted as an emptyDir
/// `medium: Memory` (and a Secret's) under `<root>/pods/<uid>/volumes` is
/// unmounted with everything else under the root dir.
#[test]
#[ignore = "needs root: tmpfs mounts"]
fn reset_unmounts_the_tmpfs_of_pod_volumes() {
    use skiff_kubelet::pods::volumes::{self, mounter::HostMounter, mounter::Mounter};
    let dir = tempfile::Builder::new()
        .prefix("skiff-kubelet-reset-")
        .tempdir()
        .unwrap();
    let root = dir.path().canonicalize().unwrap().join("kubelet");
    let pods = root.join("pods");
    let ram = volumes::volume_dir(&pods, "u1", volumes::EMPTY_DIR, "ram");
    let secret = volumes::volume_dir(&pods, "u1", volumes::SECRET, "creds");
    for d in [&ram, &secret] {
        std::fs::create_dir_all(d).unwrap();
        HostMounter.mount_tmpfs(d, Some(1 << 20)).unwrap();
    }
    assert_eq!(HostMounter.mounts_under(&pods).len(), 2);
    let removed = skiff_runtime::cleanup::remove_all(&root);
    assert_eq!(removed.mounts, 2);
    assert!(HostMounter.mounts_under(&pods).is_empty());
}

/// A `hostNetwork` pod end to end: busybox httpd on a free high port of the
/// node's loopback only (127.0.0.1, never a public address), reached from
/// this process — the node — at 127.0.0.1:<port> with no CNI in between;
/// its readiness probe goes to the node's address; `status.podIP` is the
/// node's IP (also in `kubectl get pods -o wide`); inside it the network
/// namespace and hostname are the node's and /etc/hosts is the node's file;
/// deleted, the port is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: namespaces, overlayfs, cgroups, CNI, nftables"]
async fn a_host_network_pod_answers_on_the_nodes_loopback() {
    let cluster = Cluster::start(6).await;
    let (kubeconfig, client) = (cluster.kubeconfig.clone(), cluster.client.clone());
    // A free port on loopback; the listener is closed before httpd binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: hostweb
spec:
  nodeName: e2e-node
  hostNetwork: true
  containers:
  - name: httpd
    image: skiff/httpd:latest
    imagePullPolicy: Never
    args: ["-p", "127.0.0.1:{port}", "-h", "/var/www"]
    ports:
    - containerPort: {port}
    readinessProbe:
      httpGet: {{path: /index.html, port: {port}}}
      periodSeconds: 1
"#
    );
    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&manifest));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let (pod_ip, host_ip) = wait_for("hostweb to run and be ready", 60, || async {
        let p = pods.get_opt("hostweb").await.ok()??;
        let s = p.status?;
        let ready = s
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        (s.phase.as_deref() == Some("Running") && ready).then_some((s.pod_ip?, s.host_ip?))
    })
    .await;
    assert_eq!(
        pod_ip, "127.0.0.1",
        "the node's IP (--node-ip) as the pod's"
    );
    assert_eq!(pod_ip, host_ip);
    let table = kubectl(&kubeconfig, &["get", "pods", "-o", "wide"], None);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("hostweb ") && l.contains("Running") && l.contains("127.0.0.1")),
        "{table}"
    );

    // From the node, on its own loopback: no bridge, no portmap.
    let get = || async move {
        let mut s = std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(2),
        )
        .ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: hostweb\r\n\r\n")
            .ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        Some(body)
    };
    let page = wait_for("httpd to answer on 127.0.0.1", 20, get).await;
    assert!(page.contains("Hello from Skiff"), "{page}");

    // kubectl port-forward to it: the kubelet dials the node's loopback,
    // where the pod listens (it has no address of its own).
    let mut forward = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["port-forward", "pod/hostweb", &format!(":{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = forward.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Read every line, so kubectl's "Handling connection" lines never meet
    // a closed pipe.
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(p) = line
                .strip_prefix("Forwarding from 127.0.0.1:")
                .and_then(|r| r.split(' ').next()?.parse::<u16>().ok())
            {
                let _ = tx.send(p);
            }
        }
    });
    let local = rx.recv_timeout(Duration::from_secs(20)).ok();
    let forwarded = local.and_then(|local| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", local)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        Some(body)
    });
    forward.kill().unwrap();
    let fwd = forward.wait_with_output().unwrap();
    assert!(
        forwarded
            .as_deref()
            .is_some_and(|b| b.contains("Hello from Skiff")),
        "{forwarded:?} {}",
        String::from_utf8_lossy(&fwd.stderr)
    );

    // Inside: the node's network namespace and hostname, the node's hosts.
    let inside = kubectl(
        &kubeconfig,
        &[
            "exec",
            "hostweb",
            "--",
            "sh",
            "-c",
            "readlink /proc/self/ns/net; hostname; head -n 1 /etc/hosts",
        ],
        None,
    );
    let node_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    let node_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let node_name = node_name.trim();
    assert_eq!(
        inside,
        format!(
            "{}\n{node_name}\n# Kubernetes-managed hosts file (host network).\n",
            node_net.display()
        )
    );

    kubectl(
        &kubeconfig,
        &["delete", "pod", "hostweb", "--grace-period=1"],
        None,
    );
    wait_for("hostweb to be gone", 60, || async {
        pods.get_opt("hostweb").await.ok()?.is_none().then_some(())
    })
    .await;
    // httpd is stopped: nothing listens on the port any more.
    assert!(
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(1),
        )
        .is_err(),
        "httpd still listens on 127.0.0.1:{port}"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: namespaces, overlayfs, idmapped mounts, cgroups, CNI, nftables"]
async fn a_pod_without_host_users_is_root_only_inside() {
    let cluster = Cluster::start(8).await;
    let (kubeconfig, client) = (cluster.kubeconfig.clone(), cluster.client.clone());
    let manifest = r#"
apiVersion: v1
kind: Pod
metadata:
  name: userns
spec:
  nodeName: e2e-node
  hostUsers: false
  containers:
  - name: sh
    image: skiff/busybox:latest
    imagePullPolicy: Never
    command: ["sh", "-c", "echo hello > /made-inside; sleep 3600"]
"#;
    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(manifest));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    wait_for("userns to run", 60, || async {
        let p = pods.get_opt("userns").await.ok()??;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    // Inside: root, with a mapping of 65536 IDs from a block above the host's first.
    let id = kubectl(&kubeconfig, &["exec", "userns", "--", "id", "-u"], None);
    assert_eq!(id.trim(), "0");
    let map = kubectl(
        &kubeconfig,
        &["exec", "userns", "--", "cat", "/proc/self/uid_map"],
        None,
    );
    let fields: Vec<u64> = map.split_whitespace().map(|f| f.parse().unwrap()).collect();
    assert_eq!(fields.len(), 3, "{map}");
    let (inside, outside, count) = (fields[0], fields[1], fields[2]);
    assert_eq!((inside, count), (0, 65536), "{map}");
    assert!(outside >= 65536 && outside % 65536 == 0, "{map}");
    // The image's files are root's inside (idmapped layers).
    let ls = kubectl(
        &kubeconfig,
        &["exec", "userns", "--", "stat", "-c", "%u", "/bin/busybox"],
        None,
    );
    assert_eq!(ls.trim(), "0");
    // Outside: what root wrote belongs to the mapped ID, not to the host's root.
    let written: Vec<std::path::PathBuf> = walk(&cluster.root.join("runtime/containers"))
        .into_iter()
        .filter(|p| p.ends_with("upper/made-inside"))
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&written[0]).unwrap().uid() as u64,
        outside
    );
    // A pod with host users sees the host's mapping.
    let plain = kubectl(
        &kubeconfig,
        &[
            "run",
            "plain",
            "--image=skiff/busybox:latest",
            "--image-pull-policy=Never",
            "--restart=Never",
            "--overrides",
            r#"{"spec":{"nodeName":"e2e-node"}}"#,
            "--command",
            "--",
            "sleep",
            "3600",
        ],
        None,
    );
    assert!(plain.contains("created"), "{plain}");
    wait_for("plain to run", 60, || async {
        let p = pods.get_opt("plain").await.ok()??;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    let host_map = kubectl(
        &kubeconfig,
        &["exec", "plain", "--", "cat", "/proc/self/uid_map"],
        None,
    );
    assert_eq!(
        host_map.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "4294967295"]
    );
    kubectl(
        &kubeconfig,
        &["delete", "pod", "userns", "plain", "--grace-period=1"],
        None,
    );
    wait_for("both pods gone", 60, || async {
        let l = pods.list(&Default::default()).await.ok()?;
        l.items.is_empty().then_some(())
    })
    .await;
    cluster.stop().await;
}

/// Every path under `dir` (not following links).
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}
