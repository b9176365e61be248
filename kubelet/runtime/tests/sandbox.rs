//! Real pod sandboxes, as root: namespaces pinned without a pause process,
//! the standard CNI chain from Debian's containernetworking-plugins
//! (`bridge` + `host-local`, `portmap`, `loopback`), loopback up, the
//! hostname set, two sandboxes talking to each other (ping and TCP), a host
//! port DNAT rule from `portMappings`, CHECK passing and then failing once
//! the pod's interface is gone, a restarted runtime finding both, and
//! removal that leaves no veth, IP allocation, DNAT rule, namespace file or
//! mount.
//!
//! The subnet is fenced in with nftables for the whole test
//! ([`TestNet`]); traffic only flows between the test's own namespaces.
//! Guards undo everything on failure: sandboxes (CNI DEL, unmount), the
//! listener processes, then the bridge and the fence, and the nat tables
//! portmap made if the host had none before.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_runtime::cni::exec::RealExec;
use skiff_runtime::cni::{Cni, CniResult, NetworkList};
use skiff_runtime::sandbox::namespaces::LinuxNamespaces;
use skiff_runtime::sandbox::testnet::TestNet;
use skiff_runtime::sandbox::{SandboxConfig, SandboxState, Sandboxes};

fn nsenter(args: &[&str]) -> (bool, String) {
    let out = Command::new("nsenter").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn net_of(s: &SandboxState) -> String {
    format!("--net={}", s.ns.net.display())
}

fn open_sandboxes(dir: &Path, conf_dir: &Path) -> Arc<Sandboxes> {
    Arc::new(Sandboxes {
        pod_cidr: Default::default(),
        run_dir: dir.join("run"),
        namespaces: Arc::new(LinuxNamespaces),
        cni: Some(Cni {
            list: NetworkList::load_dir(conf_dir).unwrap(),
            exec: Arc::new(RealExec {
                dirs: vec![PathBuf::from("/usr/lib/cni")],
            }),
            cache_dir: dir.join("cni-cache"),
        }),
    })
}

/// Removes every sandbox left under the run dir (CNI DEL, unpin) and, should
/// that fail, lazily unmounts whatever is still mounted under `root`.
struct SandboxGuard {
    sandboxes: Arc<Sandboxes>,
    root: PathBuf,
}

impl Drop for SandboxGuard {
    fn drop(&mut self) {
        for s in self.sandboxes.list() {
            let _ = self.sandboxes.remove(&s.id);
        }
        for m in mounts_under(&self.root) {
            let _ = nix::mount::umount2(Path::new(&m), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Kills a process this test started (and only that one) if it is still there.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// portmap (through iptables-nft) creates the `ip nat` and `ip6 nat` tables
/// with its shared CNI-HOSTPORT-* chains on first use, and never removes
/// them. If they were not there before the test, they go again at the end,
/// unless some other container's DNAT chain (CNI-DN-*) lives in them.
struct NatTablesGuard {
    existed: Vec<(&'static str, bool)>,
}

fn nft_table(family: &str) -> Option<String> {
    let out = Command::new("nft")
        .args(["list", "table", family, "nat"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl NatTablesGuard {
    fn new() -> NatTablesGuard {
        NatTablesGuard {
            existed: ["ip", "ip6"]
                .into_iter()
                .map(|f| (f, nft_table(f).is_some()))
                .collect(),
        }
    }
}

impl Drop for NatTablesGuard {
    fn drop(&mut self) {
        for (family, existed) in &self.existed {
            if !existed && nft_table(family).is_some_and(|t| !t.contains("CNI-DN-")) {
                let _ = Command::new("nft")
                    .args(["delete", "table", family, "nat"])
                    .status();
            }
        }
    }
}

fn mounts_under(root: &Path) -> Vec<String> {
    let root = root.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&root))
        .map(String::from)
        .collect()
}

/// `busybox nc -l -p <port>` inside `ns`, its stdin held open so it does not
/// quit before a client came; returns once the port is listening.
fn listen(ns: &str, port: u16) -> ChildGuard {
    let child = Command::new("nsenter")
        .args([ns, "busybox", "nc", "-l", "-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, out) = nsenter(&[ns, "busybox", "netstat", "-ltn"]);
        if out.contains(&format!(":{port} ")) {
            return guard;
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port}: {out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the listener received, once its client has gone.
fn received(mut l: ChildGuard) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    while l.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the listener never saw its client leave"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(l.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    out
}

fn ino(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().ino()
}

fn nat_rules() -> String {
    Command::new("iptables")
        .args(["-t", "nat", "-S"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
#[ignore = "needs root: network namespaces, bind mounts, CNI plugins, nftables"]
fn two_sandboxes_on_a_bridge() {
    let dir = tempfile::Builder::new()
        .prefix("skiff-rt-sandbox-")
        .tempdir()
        .unwrap();
    let nat = NatTablesGuard::new();
    let net = TestNet::new(dir.path(), 1).expect("fence and CNI config");
    assert!(net.fenced());
    let sandboxes = open_sandboxes(dir.path(), &net.conf_dir);
    let guard = SandboxGuard {
        sandboxes: sandboxes.clone(),
        root: dir.path().to_path_buf(),
    };
    let cni = sandboxes.cni.as_ref().unwrap();
    cni.check_versions()
        .expect("bridge, portmap, loopback speak CNI 1.0.0");

    let host_port = 20000 + (std::process::id() % 20000) as u16;
    let config = |id: &str, host: &str| SandboxConfig {
        id: id.into(),
        hostname: host.into(),
        dns_servers: vec!["10.96.0.10".into()],
        dns_searches: vec!["test.svc.cluster.local".into()],
        cni_args: format!("K8S_POD_NAMESPACE=test;K8S_POD_NAME={host}"),
        ..Default::default()
    };
    let a = sandboxes
        .run(&SandboxConfig {
            port_mappings: vec![serde_json::json!(
                {"hostPort": host_port, "containerPort": 8080, "protocol": "tcp"})],
            ..config("sba", "pod-a")
        })
        .unwrap();
    let b = sandboxes.run(&config("sbb", "pod-b")).unwrap();

    // Distinct IPs in the test subnet, held by host-local.
    let prefix = net.subnet.trim_end_matches("0/24");
    assert!(
        a.ip.starts_with(prefix) && b.ip.starts_with(prefix),
        "{} {} in {}",
        a.ip,
        b.ip,
        net.subnet
    );
    assert_ne!(a.ip, b.ip);
    let mut both = vec![a.ip.clone(), b.ip.clone()];
    both.sort();
    assert_eq!(net.allocated_ips(), both);
    let hosts = std::fs::read_to_string(a.hosts_file()).unwrap();
    assert!(hosts.ends_with(&format!("{}\tpod-a\n", a.ip)), "{hosts}");

    // Namespaces of their own, pinned by the files.
    assert_ne!(ino(&a.ns.net), ino(&b.ns.net));
    assert_ne!(ino(&a.ns.net), ino(Path::new("/proc/self/ns/net")));
    assert_ne!(ino(&a.ns.ipc), ino(Path::new("/proc/self/ns/ipc")));
    assert_ne!(ino(&a.ns.ipc), ino(&b.ns.ipc));

    // Loopback up, eth0 with the pod IP, the hostname in the UTS namespace.
    let (ok, lo) = nsenter(&[&net_of(&a), "ip", "-o", "addr", "show", "lo"]);
    assert!(ok && lo.contains("127.0.0.1/8"), "{lo}");
    let (ok, link) = nsenter(&[&net_of(&a), "ip", "-o", "link", "show", "lo"]);
    assert!(ok && link.contains(",UP"), "{link}");
    let (ok, eth0) = nsenter(&[&net_of(&a), "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(ok && eth0.contains(&format!("{}/24", a.ip)), "{eth0}");
    for (s, name) in [(&a, "pod-a"), (&b, "pod-b")] {
        let (ok, host) = nsenter(&[&format!("--uts={}", s.ns.uts.display()), "hostname"]);
        assert!(ok);
        assert_eq!(host.trim(), name);
    }
    let (ok, out) = nsenter(&[
        &net_of(&a),
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "127.0.0.1",
    ]);
    assert!(ok, "pod-a pings its own loopback: {out}");

    // The two pods talk: ping, then TCP from b to a.
    let (ok, out) = nsenter(&[&net_of(&a), "busybox", "ping", "-c", "1", "-W", "3", &b.ip]);
    assert!(ok, "pod-a pings pod-b: {out}");
    let listener = listen(&net_of(&a), 8080);
    let (ok, out) = nsenter(&[
        &net_of(&b),
        "sh",
        "-c",
        &format!("echo hello-from-b | busybox nc -w 3 {} 8080", a.ip),
    ]);
    assert!(ok, "pod-b connects to pod-a: {out}");
    assert_eq!(received(listener).trim(), "hello-from-b");

    // portmap got the runtime's portMappings: a DNAT to pod-a:8080.
    let dnat = format!("--to-destination {}:8080", a.ip);
    let rules = nat_rules();
    assert!(
        rules
            .lines()
            .any(|l| l.contains(&format!("--dport {host_port}")) && l.contains(&dnat)),
        "{rules}"
    );

    // CHECK of the whole chain passes for pod-b. For pod-a, Debian's portmap
    // 1.1.1 has a known bug (containernetworking/plugins#819: with port
    // mappings on an IPv4-only pod, CHECK looks for an IPv6 DNAT chain that
    // was never made); bridge's CHECK before it must pass all the same.
    sandboxes.check("sbb").expect("CNI CHECK of pod-b");
    if let Err(e) = sandboxes.check("sba") {
        let e = e.to_string();
        assert!(
            e.contains("portmap CHECK failed") && e.contains("ipv6 dnat"),
            "{e}"
        );
    }
    // Once pod-b's interface is gone, CHECK says so.
    let (ok, out) = nsenter(&[&net_of(&b), "ip", "link", "del", "eth0"]);
    assert!(ok, "{out}");
    let err = sandboxes.check("sbb").unwrap_err().to_string();
    assert!(err.contains("bridge CHECK failed"), "{err}");

    // Stop releases pod-b's network (DEL of an interface already gone is
    // fine) and keeps its namespaces.
    let veths: Vec<String> = [&a, &b]
        .iter()
        .flat_map(|s| {
            let r = CniResult::from_value(&cni.cached(&s.id).unwrap()).unwrap();
            r.host_interfaces()
                .filter(|i| *i != net.bridge)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(veths.len(), 2, "{veths:?}");
    sandboxes.stop("sbb").unwrap();
    assert_eq!(net.allocated_ips(), vec![a.ip.clone()]);
    assert!(b.ns.net.exists() && !sandboxes.status("sbb").unwrap().ready);

    // A restarted runtime (a new Sandboxes on the same dirs) finds both.
    let restarted = open_sandboxes(dir.path(), &net.conf_dir);
    let found = restarted.list();
    assert_eq!(
        found
            .iter()
            .map(|s| (s.id.as_str(), s.ready, s.ip.as_str()))
            .collect::<Vec<_>>(),
        [("sba", true, a.ip.as_str()), ("sbb", false, b.ip.as_str())]
    );
    for id in ["sba", "sbb"] {
        restarted.remove(id).unwrap();
    }

    // Nothing left: no veth, no IP, no DNAT, no namespace file, no mount.
    for v in &veths {
        assert!(
            !Path::new("/sys/class/net").join(v).exists(),
            "veth {v} left behind"
        );
    }
    let ports = std::fs::read_dir(format!("/sys/class/net/{}/brif", net.bridge))
        .unwrap()
        .count();
    assert_eq!(ports, 0, "no port left on the bridge");
    assert!(net.allocated_ips().is_empty(), "{:?}", net.allocated_ips());
    assert!(!nat_rules().contains(&dnat), "the DNAT rule went with DEL");
    assert!(!a.ns.net.exists() && !a.dir.exists() && !b.dir.exists());
    assert!(restarted.list().is_empty());
    assert_eq!(
        mounts_under(dir.path()),
        Vec::<String>::new(),
        "no mount left"
    );

    // The guards take the bridge and the fence away.
    let bridge = Path::new("/sys/class/net").join(&net.bridge);
    let table = net.table.clone();
    drop(guard);
    drop(net);
    drop(nat);
    assert!(!bridge.exists(), "the bridge is gone");
    let listed = Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .unwrap();
    assert!(!listed.status.success(), "the fence is gone");
}

#[test]
#[ignore = "needs root: network namespaces, bind mounts, CNI plugins, nftables"]
fn a_failed_network_is_undone() {
    let dir = tempfile::Builder::new()
        .prefix("skiff-rt-sandbox-fail-")
        .tempdir()
        .unwrap();
    let net = TestNet::new(dir.path(), 4).expect("fence and CNI config");
    // The test list with a plugin that does not exist after bridge: bridge's
    // ADD succeeds, then the chain fails and must be undone.
    let path = net.conf_dir.join("10-skiff-test.conflist");
    let mut list: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    list["plugins"]
        .as_array_mut()
        .unwrap()
        .insert(1, serde_json::json!({"type": "skiff-no-such-plugin"}));
    std::fs::write(&path, list.to_string()).unwrap();
    let sandboxes = open_sandboxes(dir.path(), &net.conf_dir);
    let _guard = SandboxGuard {
        sandboxes: sandboxes.clone(),
        root: dir.path().to_path_buf(),
    };
    let err = sandboxes
        .run(&SandboxConfig {
            id: "sbf".into(),
            hostname: "pod-f".into(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"skiff-no-such-plugin\" not found"), "{err}");
    assert!(sandboxes.list().is_empty());
    assert!(!dir.path().join("run/sbf").exists());
    assert!(net.allocated_ips().is_empty(), "{:?}", net.allocated_ips());
    let ports = std::fs::read_dir(format!("/sys/class/net/{}/brif", net.bridge))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(ports, 0, "no veth left on the bridge");
    assert_eq!(mounts_under(dir.path()), Vec::<String>::new());
}
