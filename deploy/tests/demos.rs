//! The teaching demos of `deploy/demos/` run unattended, as root, against a
//! lab of three nodes on this machine (`skiff up --nodes 3 --demo`): each
//! script checks its own expectations (`wait_for`, `expect`) and exits
//! non-zero when one fails, so this test only runs them one after another
//! with `DEMO_PAUSE=0` and asserts each exits 0, that each removed its
//! namespace, and that `skiff reset` leaves nothing behind.
//!
//! `SKIFF_DEMOS=scale,crashloop` runs only those (to work on one demo).
//!
//! Traffic goes only to addresses inside the namespaces the cluster made.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{Cluster, leftovers, ok};

/// In the order a class would see them; the node failure last, as it is
/// the one that disturbs the cluster.
const DEMOS: &[&str] = &[
    "scale",
    "rolling-update",
    "crashloop",
    "service-rolling",
    "node-failure",
];

fn demos_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demos")
}

/// Every demo is an executable bash script that parses, and sources lib.sh.
#[test]
fn demos_are_executable_scripts() {
    use std::os::unix::fs::PermissionsExt;
    for name in DEMOS {
        let path = demos_dir().join(format!("{name}.sh"));
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert!(
            meta.permissions().mode() & 0o111 != 0,
            "{path:?} is not executable"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("#!/usr/bin/env bash\n"), "{path:?}");
        assert!(
            text.contains(&format!("DEMO_NAME={name}\n")) && text.contains("/lib.sh\""),
            "{path:?} must set DEMO_NAME={name} and source lib.sh"
        );
        let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "bash -n {path:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lib = std::fs::read_to_string(demos_dir().join("lib.sh")).unwrap();
    assert!(lib.contains("set -euo pipefail"));
}

/// Without a cluster a demo says how to start one, and fails.
#[test]
fn a_demo_without_a_cluster_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("none.kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\n\
         users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n",
    )
    .unwrap();
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl is not installed: skipped");
        return;
    }
    let out = Command::new(demos_dir().join("scale.sh"))
        .env("KUBECONFIG", &kubeconfig)
        .env("DEMO_PAUSE", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no cluster answers"), "{err}");
    assert!(err.contains("skiff up --nodes 3 --demo"), "{err}");
}

#[test]
#[ignore = "needs root: runs three nodes in network namespaces with containers, bridges and nftables"]
fn every_demo_runs_unattended_on_three_nodes() {
    let skiff = PathBuf::from(env!("CARGO_BIN_EXE_skiff"));
    let bin = skiff.parent().unwrap().to_path_buf();
    for b in [
        "skiff-apiserver",
        "skiff-kubelet",
        "skiff-proxy",
        "skiffctl",
    ] {
        assert!(
            bin.join(b).exists(),
            "{b} is not built next to skiff: cargo build --bins first"
        );
    }
    let only: Option<Vec<String>> = std::env::var("SKIFF_DEMOS")
        .ok()
        .map(|s| s.split(',').map(|d| d.trim().to_string()).collect());
    let tmp = tempfile::Builder::new()
        .prefix("skiff-demos-")
        .tempdir()
        .unwrap();
    let pid = std::process::id();
    let (pods, nodes) = (
        format!("10.{}.0.0/16", 200 + pid % 40),
        format!("10.246.{}.0/24", pid % 250),
    );
    let c = Cluster::new(
        tmp.path(),
        "sd",
        pods,
        &["--nodes", "3", "--demo", "--node-subnet", &nodes],
    );
    let out = ok(&c.skiff(&["up"]), "skiff up --nodes 3 --demo");
    assert!(out.contains("nodes node1, node2, node3 are Ready"), "{out}");

    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failed = Vec::new();
    for name in DEMOS {
        if only.as_ref().is_some_and(|o| !o.iter().any(|d| d == name)) {
            continue;
        }
        println!("\n======== demo {name} ========");
        let started = Instant::now();
        let status = Command::new(demos_dir().join(format!("{name}.sh")))
            .env("DEMO_PAUSE", "0")
            .env("KUBECONFIG", c.data.join("admin.kubeconfig"))
            .env("SKIFF_DATA_DIR", &c.data)
            .env("SKIFF", &skiff)
            .env("PATH", &path)
            .env_remove("SKIFFCTL")
            .env_remove("DEMO_KEEP")
            .stdin(Stdio::null())
            .status()
            .expect("run the demo");
        println!(
            "======== demo {name}: {status} after {:.0} s ========",
            started.elapsed().as_secs_f64()
        );
        if !status.success() {
            failed.push(format!("{name} ({status})"));
        }
        let ns = c.kubectl(&["get", "namespace", &format!("demo-{name}")], None);
        if ns.status.success() {
            failed.push(format!("{name} left its namespace demo-{name}"));
        }
    }
    assert!(failed.is_empty(), "demos failed: {failed:?}");
    // The node the failure demo stopped is back.
    let nodes = ok(&c.kubectl(&["get", "nodes"], None), "get nodes");
    assert_eq!(
        nodes.lines().filter(|l| l.contains(" Ready ")).count(),
        3,
        "{nodes}"
    );

    ok(&c.skiff(&["reset"]), "skiff reset");
    // The kernel frees a deleted network namespace (and with it the host
    // end of its veth) in the background: a moment after `reset` returns.
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = leftovers(&c);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left behind: {left:#?}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
