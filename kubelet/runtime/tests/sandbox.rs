//! Real pod sandboxes, as root: namespaces pinned without a pause process,
//! the standard CNI `bridge` + `host-local` plugins from Debian's
//! containernetworking-plugins, loopback up, the hostname set, two sandboxes
//! talking to each other, CHECK, and removal that leaves no veth, namespace
//! file or mount. The subnet is fenced in with nftables for the whole test.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use skiff_runtime::cni::exec::RealExec;
use skiff_runtime::cni::{Cni, NetworkList};
use skiff_runtime::sandbox::namespaces::LinuxNamespaces;
use skiff_runtime::sandbox::testnet::TestNet;
use skiff_runtime::sandbox::{SandboxConfig, Sandboxes};

fn nsenter(args: &[&str]) -> (bool, String) {
    let out = Command::new("nsenter").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
#[ignore = "needs root: network namespaces, bind mounts, CNI plugins, nftables"]
fn two_sandboxes_on_a_bridge() {
    let dir = tempfile::Builder::new()
        .prefix("skiff-rt-sandbox-")
        .tempdir()
        .unwrap();
    let net = TestNet::new(dir.path(), 1).expect("fence and CNI config");
    let sandboxes = Sandboxes {
        run_dir: dir.path().join("run"),
        namespaces: Arc::new(LinuxNamespaces),
        cni: Some(Cni {
            list: NetworkList::load_dir(&net.conf_dir).unwrap(),
            exec: Arc::new(RealExec {
                dirs: vec![PathBuf::from("/usr/lib/cni")],
            }),
            cache_dir: dir.path().join("cni-cache"),
        }),
    };
    let config = |id: &str, host: &str| SandboxConfig {
        id: id.into(),
        hostname: host.into(),
        cni_args: format!("K8S_POD_NAMESPACE=test;K8S_POD_NAME={host}"),
        ..Default::default()
    };
    let a = sandboxes.run(&config("sba", "pod-a")).unwrap();
    let b = sandboxes.run(&config("sbb", "pod-b")).unwrap();
    let prefix = net.subnet.trim_end_matches("0/24");
    assert!(
        a.ip.starts_with(prefix) && b.ip.starts_with(prefix),
        "{} {} in {}",
        a.ip,
        b.ip,
        net.subnet
    );
    assert_ne!(a.ip, b.ip);

    let net_a = format!("--net={}", a.ns.net.display());
    let (ok, lo) = nsenter(&[&net_a, "ip", "-o", "addr", "show", "lo"]);
    assert!(ok && lo.contains("127.0.0.1"), "{lo}");
    let (ok, links) = nsenter(&[&net_a, "ip", "-o", "link", "show", "lo"]);
    assert!(ok && links.contains("UP"), "{links}");
    let (ok, host) = nsenter(&[&format!("--uts={}", a.ns.uts.display()), "hostname"]);
    assert!(ok);
    assert_eq!(host.trim(), "pod-a");
    let (ok, out) = nsenter(&[&net_a, "busybox", "ping", "-c", "1", "-W", "3", &b.ip]);
    assert!(ok, "pod-a pings pod-b: {out}");
    sandboxes.check("sba").expect("CNI CHECK passes");

    // A restarted runtime finds both.
    assert_eq!(sandboxes.list().len(), 2);
    for id in ["sba", "sbb"] {
        sandboxes.remove(id).unwrap();
    }
    let ports = std::fs::read_dir(format!("/sys/class/net/{}/brif", net.bridge))
        .unwrap()
        .count();
    assert_eq!(ports, 0, "no veth left on the bridge");
    assert!(!a.ns.net.exists() && !a.dir.exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir.path().display().to_string()),
        "no mount left"
    );
}
