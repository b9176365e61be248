//! A lab of two "VMs" on one machine, as root: the server is this machine
//! (`skiff server` with its address on a bridge the test makes), the
//! worker a network namespace with its own mount namespace and data dir
//! that runs `skiff join` with the token the server printed. The worker's
//! Node gets Ready, a pod bound to it answers from the server's side
//! (the server's proxy routes the worker's pod CIDR to it), and a token
//! pinning another CA, an expired token and a revoked one are refused.
//! Everything the test made goes at the end.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{eventually, http_get, ok};

fn sh(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap()
}

fn must(program: &str, args: &[&str]) {
    let out = sh(program, args);
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
}

/// The lab's network and the two data dirs; all removed on drop.
struct Lab {
    name: String,
    bridge: String,
    netns: String,
    pods: String,
    server: PathBuf,
    worker: PathBuf,
    skiff: PathBuf,
}

impl Lab {
    fn skiff(&self, args: &[&str]) -> Output {
        Command::new(&self.skiff).args(args).output().unwrap()
    }

    /// `skiff` on the worker "VM": in its network namespace, with a mount
    /// namespace of its own.
    fn on_worker(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .args(["--", "unshare", "--mount", "--propagation", "private", "--"])
            .arg(&self.skiff)
            .args(args)
            .output()
            .unwrap()
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.server.join("admin.kubeconfig"))
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let w = self.worker.display().to_string();
        let _ = self.on_worker(&["reset", "--data-dir", &w]);
        let _ = self.skiff(&["reset", "--data-dir", &self.server.display().to_string()]);
        let _ = sh("ip", &["netns", "del", &self.netns]);
        let _ = sh("ip", &["link", "del", &self.bridge]);
        let _ = sh("ip", &["route", "del", "blackhole", &self.pods]);
    }
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
#[ignore = "needs root: a server and a worker in a network and mount namespace, with containers"]
fn a_worker_joins_with_a_token_and_bad_tokens_are_refused() {
    let skiff = PathBuf::from(env!("CARGO_BIN_EXE_skiff"));
    for b in ["skiff-apiserver", "skiff-kubelet", "skiff-proxy"] {
        assert!(
            skiff.with_file_name(b).exists(),
            "{b} is not built next to skiff: cargo build --workspace first"
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix("skiff-join-")
        .tempdir()
        .unwrap();
    let pid = std::process::id();
    let id = pid % 250;
    let lab = Lab {
        name: format!("sj{}", pid % 100000),
        bridge: format!("sj{}lab", pid % 100000),
        netns: format!("sj{}-vm2", pid % 100000),
        pods: format!("10.{}.0.0/16", 200 + pid % 40),
        server: tmp.path().join("server"),
        worker: tmp.path().join("worker"),
        skiff,
    };
    let (server_ip, worker_ip) = (format!("10.246.{id}.1"), format!("10.246.{id}.2"));
    // The lab network: a bridge here, the worker's veth in its namespace,
    // and the pod range blackholed here (the server routes only the blocks
    // it knows to their nodes; nothing else of it may leave).
    must("ip", &["link", "add", &lab.bridge, "type", "bridge"]);
    must(
        "ip",
        &[
            "addr",
            "add",
            &format!("{server_ip}/24"),
            "dev",
            &lab.bridge,
        ],
    );
    must("ip", &["link", "set", &lab.bridge, "up"]);
    must("ip", &["netns", "add", &lab.netns]);
    let veth = format!("{}w", lab.name);
    must(
        "ip",
        &[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &lab.netns,
        ],
    );
    must("ip", &["link", "set", &veth, "master", &lab.bridge, "up"]);
    for args in [
        vec![
            "-n",
            &lab.netns,
            "addr",
            "add",
            &format!("{worker_ip}/24"),
            "dev",
            "eth0",
        ],
        vec!["-n", &lab.netns, "link", "set", "eth0", "up"],
        vec!["-n", &lab.netns, "link", "set", "lo", "up"],
    ] {
        must("ip", &args);
    }
    must("ip", &["route", "add", "blackhole", &lab.pods]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    // The server prints the join command, with a token.
    let out = lab.skiff(&[
        "server",
        "--data-dir",
        &lab.server.display().to_string(),
        "--node-ip",
        &server_ip,
        "--port",
        &port.to_string(),
        "--name",
        &format!("{}s", lab.name),
        "--pod-subnet",
        &lab.pods,
        "--kubelet-port",
        "0",
    ]);
    let printed = ok(&out, "skiff server");
    let join_line = printed
        .lines()
        .find(|l| l.trim_start().starts_with("skiff join "))
        .unwrap_or_else(|| panic!("no join command: {printed}"));
    let words: Vec<&str> = join_line.split_whitespace().collect();
    let url = words[2].to_string();
    assert_eq!(url, format!("https://{server_ip}:{port}"));
    let token = words[words.iter().position(|w| *w == "--token").unwrap() + 1].to_string();
    assert!(token.starts_with("K10"), "{token}");
    // The token file keeps no secret.
    let secret = token.rsplit('.').next().unwrap();
    let stored = std::fs::read_to_string(lab.server.join("tokens.json")).unwrap();
    assert!(!stored.contains(secret));

    // The worker joins from its namespace.
    let w = lab.worker.display().to_string();
    let join = |token: &str, data: &str| {
        lab.on_worker(&[
            "join",
            &url,
            "--token",
            token,
            "--node-ip",
            &worker_ip,
            "--node-name",
            "vm2",
            "--name",
            &format!("{}w", lab.name),
            "--kubelet-port",
            "0",
            "--data-dir",
            data,
        ])
    };
    let out = join(&token, &w);
    let said = text(&out);
    assert!(out.status.success(), "skiff join: {said}");
    assert!(said.contains("node vm2 is Ready"), "{said}");
    // The worker's kubelet serves with a certificate the cluster CA signed
    // for its address (the kubelet makes a self-signed one only when none
    // is there).
    let pem = std::fs::read(lab.worker.join("kubelet/pki/kubelet.crt")).unwrap();
    let serving = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .unwrap()
        .unwrap();
    let ca = std::fs::read(lab.server.join("pki/ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls_pemfile::certs(&mut ca.as_slice())
                .next()
                .unwrap()
                .unwrap(),
        )
        .unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        std::sync::Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    use rustls::client::danger::ServerCertVerifier as _;
    let name = rustls::pki_types::ServerName::try_from(worker_ip.as_str()).unwrap();
    verifier
        .verify_server_cert(
            &serving,
            &[],
            &name,
            &[],
            rustls::pki_types::UnixTime::now(),
        )
        .expect("the kubelet's serving certificate verifies against the cluster CA");
    let nodes = ok(&lab.kubectl(&["get", "nodes", "-o", "wide"]), "get nodes");
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with("vm2 ") && l.contains(" Ready ") && l.contains(&worker_ip)),
        "{nodes}"
    );

    // A pod on the worker answers from the server's side.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: on-vm2}\nspec:\n  nodeName: vm2\n  containers:\n  - {name: web, image: skiff/httpd:latest, imagePullPolicy: Never}\n";
    let mut apply = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(lab.server.join("admin.kubeconfig"))
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    apply
        .stdin
        .take()
        .unwrap()
        .write_all(pod.as_bytes())
        .unwrap();
    let out = apply.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let ip = eventually("the pod on vm2 to run", 90, || {
        let out = lab.kubectl(&[
            "get",
            "pod",
            "on-vm2",
            "-o",
            "jsonpath={.status.phase} {.status.podIP}",
        ]);
        let t = String::from_utf8_lossy(&out.stdout).into_owned();
        t.strip_prefix("Running ")
            .filter(|ip| !ip.is_empty())
            .map(String::from)
    });
    let page = eventually("the pod on vm2 to answer", 60, || http_get(&ip));
    assert!(page.contains("Hello from Skiff"), "{page}");

    // Refused: a token pinning another CA (before anything is sent), an
    // expired token, a revoked one.
    let (head, rest) = token.split_once("::").unwrap();
    let flipped = if head.ends_with('0') { "1" } else { "0" };
    let wrong_ca = format!("{}{flipped}::{rest}", &head[..head.len() - 1]);
    let out = join(&wrong_ca, &format!("{w}-2"));
    assert!(!out.status.success());
    assert!(
        text(&out).contains("refusing to send the token"),
        "{}",
        text(&out)
    );
    let s = lab.server.display().to_string();
    let short = ok(
        &lab.skiff(&["token", "create", "--ttl", "1s", "--data-dir", &s]),
        "token create --ttl 1s",
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    let out = join(short.trim(), &format!("{w}-3"));
    assert!(!out.status.success());
    assert!(text(&out).contains("expired"), "{}", text(&out));
    let revoked = ok(
        &lab.skiff(&["token", "create", "--data-dir", &s]),
        "token create",
    );
    let revoked_id = revoked
        .trim()
        .split("::")
        .nth(1)
        .unwrap()
        .split('.')
        .next()
        .unwrap();
    let listed = ok(
        &lab.skiff(&["token", "list", "--data-dir", &s]),
        "token list",
    );
    assert!(
        listed.contains(revoked_id) && !listed.contains(revoked.trim()),
        "{listed}"
    );
    ok(
        &lab.skiff(&["token", "delete", revoked_id, "--data-dir", &s]),
        "token delete",
    );
    let out = join(revoked.trim(), &format!("{w}-4"));
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unknown or was revoked"),
        "{}",
        text(&out)
    );
    // None of the refused joins left a worker behind.
    for n in 2..=4 {
        assert!(!Path::new(&format!("{w}-{n}")).join("cluster.json").exists());
    }

    // Leaving: the worker's reset, then the server's; nothing of either stays.
    ok(&lab.on_worker(&["reset", "--data-dir", &w]), "worker reset");
    ok(&lab.skiff(&["reset", "--data-dir", &s]), "server reset");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let data = tmp.path().display().to_string();
    assert!(!mounts.contains(&data), "mounts left");
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmd).contains(&data),
            "process {:?} left",
            e.file_name()
        );
    }
}
