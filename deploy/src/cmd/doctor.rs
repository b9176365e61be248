//! `skiff doctor`: the usual reasons a node does not work, checked before
//! anyone has to read a log — one line per check, `ok`, `warn` or `FAIL`
//! with what to do; exit code 1 when something fails.
//!
//! On this machine: root, the tools the node uses (`nft`, `ip`, the CNI
//! plugins, busybox-static for the demo images), cgroups with the cpu,
//! memory and pids controllers (v2, or v1 hierarchies: the runtime drives
//! both), overlayfs, IP forwarding, and the API and
//! kubelet ports (free, or held by this data dir's running cluster). With
//! the cluster running: nodes sharing an address, node clocks ahead of
//! this one (a Lease renewed "in the future" by more than 2 s), and for
//! every node on another machine: its pod CIDR routed via its address
//! (host-gw) and its kubelet port answering (a firewall between VMs).
//!
//! The facts are gathered into [`Facts`] (paths passed in, so the checks
//! are table-tested on made-up machines) and judged by the pure [`checks`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::Result;
use crate::cluster::{DataDir, Layout};

/// What the checks look at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub root: bool,
    /// Programs found on PATH.
    pub programs: Vec<String>,
    /// CNI plugins found in the plugin dirs.
    pub cni_plugins: Vec<String>,
    /// `/sys/fs/cgroup/cgroup.controllers` (None: not cgroup v2).
    pub cgroup_controllers: Option<String>,
    /// Without v2: the cgroup v1 hierarchies mounted under `/sys/fs/cgroup`.
    pub cgroup_v1: Vec<String>,
    /// `/proc/filesystems`.
    pub filesystems: String,
    /// `/proc/sys/net/ipv4/ip_forward`.
    pub ip_forward: Option<String>,
    /// (port, what uses it, is it free or ours).
    pub ports: Vec<(u16, &'static str, bool)>,
    /// With the cluster running: (node, InternalIP).
    pub node_addresses: Vec<(String, String)>,
    /// With the cluster running: (node, seconds its Lease's renewTime is ahead of now).
    pub lease_ahead: Vec<(String, f64)>,
    /// With the cluster running: how this machine routes each other node's pods.
    pub pod_routes: Vec<PodRoute>,
    /// With the cluster running: (node, its kubelet's address:port, answered).
    pub kubelets: Vec<(String, String, bool)>,
}

/// How this machine reaches another node's pods.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodRoute {
    pub node: String,
    pub pod_cidr: String,
    pub internal_ip: String,
    /// `ip route get <first pod address>`.
    pub route: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub level: Level,
    pub name: &'static str,
    pub detail: String,
}

fn check(level: Level, name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        level,
        name,
        detail: detail.into(),
    }
}

/// The plugins the node's CNI network uses.
pub const CNI_PLUGINS: [&str; 4] = ["bridge", "host-local", "loopback", "portmap"];

/// Judges the facts.
pub fn checks(f: &Facts) -> Vec<Check> {
    use Level::*;
    let mut out = Vec::new();
    out.push(if f.root {
        check(Ok, "root", "running as root")
    } else {
        check(
            Warn,
            "root",
            "not root: the kubelet registers the node but cannot run pods",
        )
    });
    for (program, package) in [
        ("nft", "nftables"),
        ("ip", "iproute2"),
        ("busybox", "busybox-static"),
    ] {
        out.push(if f.programs.iter().any(|p| p == program) {
            check(Ok, "tools", format!("{program} found"))
        } else {
            check(
                Fail,
                "tools",
                format!("{program} missing: apt-get install {package}"),
            )
        });
    }
    let missing: Vec<&str> = CNI_PLUGINS
        .iter()
        .copied()
        .filter(|p| !f.cni_plugins.iter().any(|have| have == p))
        .collect();
    out.push(if missing.is_empty() {
        check(
            Ok,
            "cni",
            "bridge, host-local, loopback and portmap plugins found",
        )
    } else {
        check(
            Fail,
            "cni",
            format!(
                "CNI plugins missing ({}): apt-get install containernetworking-plugins",
                missing.join(", ")
            ),
        )
    });
    // The runtime drives cgroup v2, or v1 hierarchies when v2 is not at /sys/fs/cgroup.
    let (version, have): (&str, Vec<&str>) = match &f.cgroup_controllers {
        Some(c) => ("v2", c.split_whitespace().collect()),
        None => ("v1", f.cgroup_v1.iter().map(String::as_str).collect()),
    };
    let lacking: Vec<&str> = ["cpu", "memory", "pids"]
        .into_iter()
        .filter(|w| !have.contains(w))
        .collect();
    out.push(if lacking.is_empty() {
        check(
            Ok,
            "cgroups",
            format!("cgroup {version} with cpu, memory and pids"),
        )
    } else {
        check(
            Fail,
            "cgroups",
            format!(
                "cgroup {version} lacks the {} controller(s)",
                lacking.join(", ")
            ),
        )
    });
    out.push(
        if f.filesystems
            .lines()
            .any(|l| l.split_whitespace().last() == Some("overlay"))
        {
            check(Ok, "overlayfs", "overlay filesystem available")
        } else {
            check(Fail, "overlayfs", "no overlay filesystem: modprobe overlay")
        },
    );
    out.push(match f.ip_forward.as_deref().map(str::trim) {
        Some("1") => check(Ok, "ip_forward", "net.ipv4.ip_forward=1"),
        Some(v) => check(
            Warn,
            "ip_forward",
            format!("net.ipv4.ip_forward={v}: pods cannot reach other nodes (sysctl -w net.ipv4.ip_forward=1)"),
        ),
        None => check(Warn, "ip_forward", "cannot read net.ipv4.ip_forward"),
    });
    for (port, what, usable) in &f.ports {
        out.push(if *usable {
            check(Ok, "ports", format!("{port} ({what}) free or ours"))
        } else {
            check(Fail, "ports", format!("{port} ({what}) is taken by another program: choose another with skiff up's flags"))
        });
    }
    let mut seen: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (node, ip) in &f.node_addresses {
        seen.entry(ip.as_str()).or_default().push(node.as_str());
    }
    for (ip, nodes) in seen {
        if nodes.len() > 1 {
            out.push(check(
                Fail,
                "nodes",
                format!(
                    "nodes {} share the address {ip}: give each --node-ip",
                    nodes.join(", ")
                ),
            ));
        }
    }
    for r in &f.pod_routes {
        out.push(if r.route.contains(&format!(" via {} ", r.internal_ip)) {
            check(Ok, "routes", format!("pods of {} ({}) via {}", r.node, r.pod_cidr, r.internal_ip))
        } else {
            check(
                Fail,
                "routes",
                format!(
                    "pods of {} ({}) are not routed via its address {}: {}; is skiff-proxy running here (host-gw), and are the nodes on one L2 network?",
                    r.node,
                    r.pod_cidr,
                    r.internal_ip,
                    r.route.trim()
                ),
            )
        });
    }
    for (node, addr, answered) in &f.kubelets {
        out.push(if *answered {
            check(Ok, "kubelets", format!("{node}'s kubelet answers on {addr}"))
        } else {
            check(
                Fail,
                "kubelets",
                format!("{node}'s kubelet does not answer on {addr}: a firewall between the machines? (logs, exec and port-forward need it)"),
            )
        });
    }
    for (node, ahead) in &f.lease_ahead {
        if *ahead > 2.0 {
            out.push(check(Warn, "clock", format!("node {node}'s clock is {ahead:.0} s ahead of this machine's: run NTP (heartbeats are timed when seen, but certificates and logs are not)")));
        }
    }
    out
}

/// Programs on PATH among `names`.
fn on_path(names: &[&str]) -> Vec<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .collect();
    names
        .iter()
        .filter(|n| dirs.iter().any(|d| d.join(n).is_file()))
        .map(|n| n.to_string())
        .collect()
}

/// Whether `port` on 127.0.0.1 can be bound now (or `ours`: our cluster holds it).
fn port_usable(port: u16, ours: bool) -> bool {
    ours || std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The facts of this machine (`sys` and `proc` are `/sys` and `/proc`).
pub fn host_facts(sys: &Path, proc: &Path, l: &Layout) -> Facts {
    let settings = l.load_settings();
    let running = l.running().is_some();
    let (api, kubelet) = settings
        .as_ref()
        .map_or((6443, 10250), |s| (s.port, s.kubelet_port));
    let mut ports = vec![(api, "API server", port_usable(api, running))];
    if kubelet != 0 {
        ports.push((kubelet, "kubelet API", port_usable(kubelet, running)));
    }
    Facts {
        root: nix::unistd::geteuid().is_root(),
        programs: on_path(&["nft", "ip", "busybox"]),
        cni_plugins: CNI_PLUGINS
            .iter()
            .filter(|p| {
                ["/usr/lib/cni", "/opt/cni/bin"]
                    .iter()
                    .any(|d| Path::new(d).join(p).is_file())
            })
            .map(|p| p.to_string())
            .collect(),
        cgroup_controllers: std::fs::read_to_string(sys.join("fs/cgroup/cgroup.controllers")).ok(),
        cgroup_v1: std::fs::read_dir(sys.join("fs/cgroup"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        filesystems: std::fs::read_to_string(proc.join("filesystems")).unwrap_or_default(),
        ip_forward: std::fs::read_to_string(proc.join("sys/net/ipv4/ip_forward")).ok(),
        ports,
        ..Facts::default()
    }
}

/// Adds what the running cluster says: node addresses and Lease clocks.
async fn cluster_facts(l: &Layout, f: &mut Facts) {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, ListParams};
    let kubeconfig = match l.load_settings() {
        Some(s) => l.client_kubeconfig(&s),
        None => l.kubeconfig(),
    };
    let Ok(client) = skiff_proto::client::connect(Some(&kubeconfig)).await else {
        return;
    };
    let local = local_addresses();
    let nodes: Api<Node> = Api::all(client.clone());
    if let Ok(list) = nodes.list(&ListParams::default()).await {
        for n in list.items {
            let name = n.metadata.name.clone().unwrap_or_default();
            let pod_cidr = n.spec.as_ref().and_then(|s| s.pod_cidr.clone());
            let status = n.status.unwrap_or_default();
            let port = status
                .daemon_endpoints
                .and_then(|d| d.kubelet_endpoint)
                .map_or(10250, |e| e.port);
            for a in status.addresses.unwrap_or_default() {
                if a.type_ != "InternalIP" {
                    continue;
                }
                f.node_addresses.push((name.clone(), a.address.clone()));
                let Ok(ip) = a.address.parse::<std::net::IpAddr>() else {
                    continue;
                };
                // Nodes on this machine's own addresses are not across a network.
                if ip.is_loopback() || local.contains(&ip) {
                    continue;
                }
                let addr = std::net::SocketAddr::new(ip, port as u16);
                let answered = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    tokio::net::TcpStream::connect(addr),
                )
                .await
                .is_ok_and(|c| c.is_ok());
                f.kubelets.push((name.clone(), addr.to_string(), answered));
                if let Some(cidr) = &pod_cidr
                    && let Some(first) = first_address(cidr)
                {
                    let route = std::process::Command::new("ip")
                        .args(["route", "get", &first])
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                        .unwrap_or_default();
                    f.pod_routes.push(PodRoute {
                        node: name.clone(),
                        pod_cidr: cidr.clone(),
                        internal_ip: a.address.clone(),
                        route: format!("{} ", route.trim()),
                    });
                }
            }
        }
    }
    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let now = k8s_openapi::jiff::Timestamp::now();
    if let Ok(list) = leases.list(&ListParams::default()).await {
        for lease in list.items {
            if let Some(t) = lease.spec.and_then(|s| s.renew_time) {
                let ahead = t.0.duration_since(now).as_secs_f64();
                f.lease_ahead
                    .push((lease.metadata.name.unwrap_or_default(), ahead));
            }
        }
    }
}

/// This machine's addresses (`ip -o addr`).
fn local_addresses() -> Vec<std::net::IpAddr> {
    let out = std::process::Command::new("ip")
        .args(["-o", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    crate::cluster::addresses_in(&out)
}

/// The first host address of an IPv4 CIDR (`10.244.1.0/24` → `10.244.1.1`).
fn first_address(cidr: &str) -> Option<String> {
    let (ip, _) = cidr.split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    Some(std::net::Ipv4Addr::from(u32::from(ip) + 1).to_string())
}

pub fn doctor(d: &DataDir) -> Result<ExitCode> {
    let l = d.layout()?;
    let mut facts = host_facts(Path::new("/sys"), Path::new("/proc"), &l);
    if l.running().is_some() {
        let rt = tokio::runtime::Runtime::new().map_err(crate::Error::io("tokio"))?;
        rt.block_on(cluster_facts(&l, &mut facts));
    }
    let results = checks(&facts);
    for c in &results {
        let level = match c.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        println!("{level}  {:<10} {}", c.name, c.detail);
    }
    let failed = results.iter().filter(|c| c.level == Level::Fail).count();
    if failed > 0 {
        println!("skiff doctor: {failed} problem(s) to fix before skiff up");
        return Ok(ExitCode::from(1));
    }
    println!("skiff doctor: nothing in the way");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Facts {
        Facts {
            root: true,
            programs: vec!["nft".into(), "ip".into(), "busybox".into()],
            cni_plugins: CNI_PLUGINS.iter().map(|p| p.to_string()).collect(),
            cgroup_controllers: Some("cpuset cpu io memory hugetlb pids rdma misc".into()),
            cgroup_v1: vec![],
            filesystems: "nodev\tsysfs\nnodev\toverlay\n\text4\n".into(),
            ip_forward: Some("1\n".into()),
            ports: vec![(6443, "API server", true), (10250, "kubelet API", true)],
            node_addresses: vec![
                ("a".into(), "10.0.0.1".into()),
                ("b".into(), "10.0.0.2".into()),
            ],
            lease_ahead: vec![("a".into(), -3.0), ("b".into(), 0.5)],
            pod_routes: vec![],
            kubelets: vec![],
        }
    }

    fn levels(f: &Facts) -> Vec<(Level, &'static str)> {
        checks(f)
            .into_iter()
            .filter(|c| c.level != Level::Ok)
            .map(|c| (c.level, c.name))
            .collect()
    }

    #[test]
    fn a_good_machine_passes_everything() {
        assert_eq!(levels(&good()), vec![]);
    }

    #[test]
    fn each_lab_failure_is_named_with_what_to_do() {
        use Level::*;
        type Case = (
            &'static str,
            Box<dyn Fn(&mut Facts)>,
            Vec<(Level, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "no nft",
                Box::new(|f: &mut Facts| f.programs.retain(|p| p != "nft")),
                vec![(Fail, "tools")],
            ),
            (
                "no portmap",
                Box::new(|f: &mut Facts| f.cni_plugins.retain(|p| p != "portmap")),
                vec![(Fail, "cni")],
            ),
            (
                "cgroup v1 without hierarchies",
                Box::new(|f: &mut Facts| f.cgroup_controllers = None),
                vec![(Fail, "cgroups")],
            ),
            (
                "cgroup v1 with its hierarchies",
                Box::new(|f: &mut Facts| {
                    f.cgroup_controllers = None;
                    f.cgroup_v1 = ["cpu", "cpuacct", "memory", "pids", "unified"]
                        .map(String::from)
                        .to_vec();
                }),
                vec![],
            ),
            (
                "no pids",
                Box::new(|f: &mut Facts| f.cgroup_controllers = Some("cpu memory".into())),
                vec![(Fail, "cgroups")],
            ),
            (
                "no overlay",
                Box::new(|f: &mut Facts| f.filesystems = "nodev\tsysfs\n".into()),
                vec![(Fail, "overlayfs")],
            ),
            (
                "forwarding off",
                Box::new(|f: &mut Facts| f.ip_forward = Some("0".into())),
                vec![(Warn, "ip_forward")],
            ),
            (
                "port taken",
                Box::new(|f: &mut Facts| f.ports[0].2 = false),
                vec![(Fail, "ports")],
            ),
            (
                "not root",
                Box::new(|f: &mut Facts| f.root = false),
                vec![(Warn, "root")],
            ),
            (
                "same address",
                Box::new(|f: &mut Facts| f.node_addresses[1].1 = "10.0.0.1".into()),
                vec![(Fail, "nodes")],
            ),
            (
                "clock ahead",
                Box::new(|f: &mut Facts| f.lease_ahead[1].1 = 30.0),
                vec![(Warn, "clock")],
            ),
        ];
        for (what, change, want) in cases {
            let mut f = good();
            change(&mut f);
            assert_eq!(levels(&f), want, "{what}");
        }
        let mut f = good();
        f.cni_plugins.clear();
        let cni = checks(&f).into_iter().find(|c| c.name == "cni").unwrap();
        assert!(
            cni.detail
                .contains("apt-get install containernetworking-plugins"),
            "{}",
            cni.detail
        );
    }

    #[test]
    fn routes_to_other_nodes_pods_and_their_kubelets_are_checked() {
        let f = Facts {
            pod_routes: vec![
                PodRoute {
                    node: "vm2".into(),
                    pod_cidr: "10.244.1.0/24".into(),
                    internal_ip: "192.168.56.11".into(),
                    route: "10.244.1.1 via 192.168.56.11 dev enp0s8 src 192.168.56.10 uid 0 "
                        .into(),
                },
                // The classic: no host-gw route, so pods go to the default gateway.
                PodRoute {
                    node: "vm3".into(),
                    pod_cidr: "10.244.2.0/24".into(),
                    internal_ip: "192.168.56.12".into(),
                    route: "10.244.2.1 via 10.0.2.2 dev enp0s3 src 10.0.2.15 uid 0 ".into(),
                },
            ],
            kubelets: vec![
                ("vm2".into(), "192.168.56.11:10250".into(), true),
                ("vm3".into(), "192.168.56.12:10250".into(), false),
            ],
            ..good()
        };
        let found: Vec<(Level, String)> = checks(&f)
            .into_iter()
            .filter(|c| c.name == "routes" || c.name == "kubelets")
            .map(|c| (c.level, c.detail))
            .collect();
        assert_eq!(found.len(), 4);
        assert_eq!(found[0].0, Level::Ok);
        assert!(
            found[1].0 == Level::Fail && found[1].1.contains("via 10.0.2.2"),
            "{found:?}"
        );
        assert_eq!(found[2].0, Level::Ok);
        assert!(
            found[3].0 == Level::Fail && found[3].1.contains("firewall"),
            "{found:?}"
        );
        assert_eq!(
            first_address("10.244.1.0/24").as_deref(),
            Some("10.244.1.1")
        );
    }

    #[test]
    fn a_port_someone_listens_on_is_not_usable_unless_it_is_ours() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        assert!(!port_usable(port, false));
        assert!(port_usable(port, true));
        drop(held);
        assert!(port_usable(port, false));
    }

    #[test]
    fn facts_are_read_from_the_paths_given() {
        let dir = tempfile::tempdir().unwrap();
        let (sys, proc) = (dir.path().join("sys"), dir.path().join("proc"));
        std::fs::create_dir_all(sys.join("fs/cgroup")).unwrap();
        std::fs::create_dir_all(proc.join("sys/net/ipv4")).unwrap();
        std::fs::write(
            sys.join("fs/cgroup/cgroup.controllers"),
            "cpu memory pids\n",
        )
        .unwrap();
        std::fs::write(proc.join("filesystems"), "nodev\toverlay\n").unwrap();
        std::fs::write(proc.join("sys/net/ipv4/ip_forward"), "1\n").unwrap();
        let l = Layout::new(&dir.path().join("data")).unwrap();
        let f = host_facts(&sys, &proc, &l);
        assert_eq!(f.cgroup_controllers.as_deref(), Some("cpu memory pids\n"));
        assert_eq!(f.ip_forward.as_deref(), Some("1\n"));
        assert!(
            checks(&f)
                .iter()
                .any(|c| c.name == "overlayfs" && c.level == Level::Ok)
        );
        assert_eq!(
            f.ports.iter().map(|p| p.0).collect::<Vec<_>>(),
            [6443, 10250]
        );
    }
}
