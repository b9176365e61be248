//! A cluster is its data dir: state, logs, kubeconfig, and the settings it
//! was first started with (`cluster.json`), which later commands reuse.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::{Error, Result};

/// `--data-dir`, shared by every command.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDir {
    /// Where the cluster keeps its state and logs.
    #[arg(long, env = "SKIFF_DATA_DIR", default_value = ".skiff")]
    pub data_dir: PathBuf,
}

impl DataDir {
    pub fn layout(&self) -> Result<Layout> {
        Layout::new(&self.data_dir)
    }
}

/// `skiff up`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// The API server's port on 127.0.0.1.
    #[arg(long, env = "SKIFF_API_PORT", default_value_t = 6443)]
    pub port: u16,
    /// The address the node reports (and its kubelet API listens on).
    #[arg(long, env = "SKIFF_NODE_IP", default_value = "127.0.0.1")]
    pub node_ip: String,
    /// Take --node-ip from this interface's first IPv4 address (on a VM
    /// with a NAT interface and a lab interface: the lab one).
    #[arg(long, env = "SKIFF_IFACE", conflicts_with = "node_ip")]
    pub iface: Option<String>,
    /// The pods' addresses, fenced in on this machine: one node's pod CIDR
    /// (default 10.244.0.0/24), or with --nodes the cluster's range that
    /// each node gets a /24 of (default 10.244.0.0/16).
    #[arg(long, env = "SKIFF_POD_SUBNET")]
    pub pod_subnet: Option<String>,
    /// How many nodes: 1 runs the kubelet and proxy on this machine; more
    /// run each node's kubelet and proxy in its own network namespace
    /// (`node1`, `node2`, …) with its own address on a host bridge — a lab
    /// of several VMs simulated on one machine (`skiff node stop|start|partition|heal`).
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    /// With --nodes: the nodes' network; the host bridge takes its first
    /// address (the API server listens there), node N takes the 10+N-th.
    #[arg(long, default_value = "10.245.0.0/24")]
    pub node_subnet: String,
    /// Names the host objects: bridge `<name>0`, nftables table `inet <name>_up`.
    #[arg(long, default_value = "skiff")]
    pub name: String,
    /// A real etcd (comma-separated URLs) instead of the embedded store.
    #[arg(long)]
    pub etcd_servers: Option<String>,
    /// The kubelet API's port (0: any free one, for a second cluster on the machine).
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Stay in the foreground (the supervisor itself); Ctrl-C stops the cluster.
    #[arg(long)]
    pub foreground: bool,
    /// Short timers for teaching: a silent node is NotReady after 10 s (not
    /// 40 s) and its pods are evicted 30 s later (not 300 s), a crashing
    /// container waits at most 20 s between restarts (not 5 min). Applies
    /// to each `up` (`skiff down` then `skiff up` without it goes back).
    #[arg(long)]
    pub demo: bool,
    /// Set by `skiff server` (not a flag of `up`).
    #[arg(skip)]
    pub server: bool,
}

/// The settings a cluster keeps: the first `up`'s, reused by the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub port: u16,
    pub node_ip: String,
    pub pod_subnet: String,
    pub name: String,
    pub etcd_servers: Option<String>,
    pub kubelet_port: u16,
    /// `--demo`: the short timers (taken from each `up`, not kept).
    pub demo: bool,
    pub nodes: u32,
    pub node_subnet: String,
    /// `skiff server`: the API on every address, advertised at --node-ip,
    /// and the join service for workers.
    pub server: bool,
    /// `skiff join`: this machine is a worker of the server at this API URL
    /// (only its kubelet and proxy run here).
    pub join: Option<String>,
    /// The worker's Node name (`skiff join --node-name`).
    pub node_name: Option<String>,
}

/// `skiff up`'s defaults: one node on 127.0.0.1.
impl Default for Settings {
    fn default() -> Settings {
        Settings {
            port: 6443,
            node_ip: "127.0.0.1".into(),
            pod_subnet: "10.244.0.0/24".into(),
            name: "skiff".into(),
            etcd_servers: None,
            kubelet_port: 10250,
            demo: false,
            nodes: 1,
            node_subnet: "10.245.0.0/24".into(),
            server: false,
            join: None,
            node_name: None,
        }
    }
}

/// One node of a `--nodes N` cluster: a network namespace with its own
/// address, joined to the host bridge by a veth pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimNode {
    /// The Node's name, `node1`…
    pub name: String,
    pub ip: std::net::Ipv4Addr,
    /// `/run/netns/<netns>`.
    pub netns: String,
    /// The veth's end on the host bridge (the node's end is `eth0`).
    pub veth: String,
}

/// The first IPv4 address of interface `iface` (`ip -o -4 addr show dev`).
pub fn iface_address(iface: &str) -> Result<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", iface])
        .output()
        .map_err(Error::io("run ip"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_inet(&text).ok_or_else(|| {
        Error::Failed(format!(
            "--iface {iface}: {}",
            if out.status.success() {
                "no IPv4 address on it".to_string()
            } else {
                String::from_utf8_lossy(&out.stderr).trim().to_string()
            }
        ))
    })
}

/// The first IPv4 address in `ip -o -4 addr` output.
fn parse_inet(text: &str) -> Option<String> {
    addresses_in(text)
        .into_iter()
        .find(|ip| ip.is_ipv4())
        .map(|ip| ip.to_string())
}

/// The addresses in `ip -o addr` output, one per line:
/// `2: eth1    inet 192.168.56.10/24 brd …` (and `inet6`).
pub fn addresses_in(text: &str) -> Vec<std::net::IpAddr> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let at = w.iter().position(|x| *x == "inet" || *x == "inet6")?;
            w.get(at + 1)?.split('/').next()?.parse().ok()
        })
        .collect()
}

/// `a.b.c.d/len` as (address, len).
fn ipv4_cidr(text: &str) -> Option<(std::net::Ipv4Addr, u8)> {
    let (ip, len) = text.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    (len <= 32).then_some(())?;
    Some((ip.parse().ok()?, len))
}

impl Settings {
    pub fn from_args(a: &UpArgs) -> Settings {
        Settings {
            port: a.port,
            node_ip: a.node_ip.clone(),
            pod_subnet: a.pod_subnet.clone().unwrap_or_else(|| {
                if a.nodes > 1 || a.server {
                    "10.244.0.0/16"
                } else {
                    "10.244.0.0/24"
                }
                .into()
            }),
            name: a.name.clone(),
            etcd_servers: a.etcd_servers.clone(),
            kubelet_port: a.kubelet_port,
            demo: a.demo,
            nodes: a.nodes,
            node_subnet: a.node_subnet.clone(),
            server: a.server,
            join: None,
            node_name: None,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"port": self.port, "nodeIP": self.node_ip, "podSubnet": self.pod_subnet,
               "name": self.name, "etcdServers": self.etcd_servers,
               "kubeletPort": self.kubelet_port, "demo": self.demo,
               "nodes": self.nodes, "nodeSubnet": self.node_subnet,
               "server": self.server, "join": self.join, "nodeName": self.node_name})
    }

    pub fn from_json(v: &Value) -> Option<Settings> {
        Some(Settings {
            port: u16::try_from(v["port"].as_u64()?).ok()?,
            node_ip: v["nodeIP"].as_str()?.into(),
            pod_subnet: v["podSubnet"].as_str()?.into(),
            name: v["name"].as_str()?.into(),
            etcd_servers: v["etcdServers"].as_str().map(String::from),
            kubelet_port: v["kubeletPort"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(10250),
            demo: v["demo"].as_bool().unwrap_or(false),
            nodes: v["nodes"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1),
            node_subnet: v["nodeSubnet"].as_str().unwrap_or("10.245.0.0/24").into(),
            server: v["server"].as_bool().unwrap_or(false),
            join: v["join"].as_str().map(String::from),
            node_name: v["nodeName"].as_str().map(String::from),
        })
    }

    /// Several machines share the pod range (--nodes, or a server with
    /// workers): each node gets a block of it.
    fn shares_pod_range(&self) -> bool {
        self.multi() || self.server || self.join.is_some()
    }

    /// Several nodes, each in its own network namespace.
    pub fn multi(&self) -> bool {
        self.nodes > 1
    }

    /// The size of each node's pod CIDR: the whole subnet for one node; a
    /// /24 (or smaller, when the subnet is too small for N /24s) for several.
    pub fn node_mask(&self) -> u8 {
        let len = ipv4_cidr(&self.pod_subnet).map_or(24, |(_, l)| l);
        if !self.shares_pod_range() {
            return len;
        }
        let bits = u32::BITS - (self.nodes - 1).leading_zeros();
        (len + bits as u8).max(24)
    }

    /// The host bridge of a --nodes cluster.
    pub fn nodes_bridge(&self) -> String {
        let mut b = format!("{}nodes", self.name);
        b.truncate(15);
        b
    }

    /// The host's address on the nodes' bridge (and the API server's, with --nodes).
    pub fn gateway(&self) -> std::net::Ipv4Addr {
        let (net, _) = ipv4_cidr(&self.node_subnet).unwrap_or(([10, 245, 0, 0].into(), 24));
        (u32::from(net) + 1).into()
    }

    /// The node subnet's prefix length.
    pub fn node_subnet_len(&self) -> u8 {
        ipv4_cidr(&self.node_subnet).map_or(24, |(_, l)| l)
    }

    /// Where the programs reach the API server: 127.0.0.1, or with --nodes
    /// the bridge address (the nodes' namespaces have their own loopback).
    pub fn api_host(&self) -> String {
        if self.multi() {
            self.gateway().to_string()
        } else {
            "127.0.0.1".into()
        }
    }

    /// The nodes of a --nodes cluster (none for one node on the host).
    pub fn sim_nodes(&self) -> Vec<SimNode> {
        if !self.multi() {
            return Vec::new();
        }
        let gw = u32::from(self.gateway());
        (1..=self.nodes)
            .map(|i| SimNode {
                name: format!("node{i}"),
                ip: (gw - 1 + 10 + i).into(),
                netns: format!("{}-node{i}", self.name),
                veth: format!("{}v{i}", self.name),
            })
            .collect()
    }

    /// The CNI bridge (at most 15 characters, as Linux requires).
    pub fn bridge(&self) -> String {
        let mut b = format!("{}0", self.name);
        b.truncate(15);
        b
    }

    /// The nftables table (family inet) that fences the pods in.
    pub fn fence_table(&self) -> String {
        format!("{}_up", self.name)
    }

    /// Checks what would otherwise fail later, deep in a program's log.
    pub fn validate(&self) -> Result<()> {
        let (ip, len) = self.pod_subnet.split_once('/').ok_or_else(|| {
            Error::Failed(format!("--pod-subnet {}: not a CIDR", self.pod_subnet))
        })?;
        let ok = ip.parse::<std::net::Ipv4Addr>().is_ok()
            && len.parse::<u8>().is_ok_and(|l| (8..=30).contains(&l));
        if !ok {
            return Err(Error::Failed(format!(
                "--pod-subnet {}: an IPv4 CIDR from /8 to /30",
                self.pod_subnet
            )));
        }
        if !(1..=50).contains(&self.nodes) {
            return Err(Error::Failed(format!(
                "--nodes {}: from 1 to 50",
                self.nodes
            )));
        }
        if self.multi() {
            let (len, mask) = (
                ipv4_cidr(&self.pod_subnet).map_or(0, |c| c.1),
                self.node_mask(),
            );
            if mask > 28 || (1u64 << (mask - len)) < u64::from(self.nodes) {
                return Err(Error::Failed(format!(
                    "--pod-subnet {}: too small for {} nodes (each takes a /24)",
                    self.pod_subnet, self.nodes
                )));
            }
            let fits = ipv4_cidr(&self.node_subnet).is_some_and(|(_, l)| {
                (16..=28).contains(&l) && (1u32 << (32 - l)) > self.nodes + 11
            });
            if !fits {
                return Err(Error::Failed(format!(
                    "--node-subnet {}: an IPv4 CIDR from /16 to /28 with room for {} nodes (from its 11th address)",
                    self.node_subnet, self.nodes
                )));
            }
            if self.name.len() > 12 {
                return Err(Error::Failed(format!(
                    "--name {:?}: at most 12 characters with --nodes (it names the nodes' interfaces)",
                    self.name
                )));
            }
        }
        if (self.server || self.join.is_some())
            && self
                .node_ip
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
        {
            return Err(Error::Failed(format!(
                "--node-ip {}: a server and its workers need the address they reach each other at (this machine's address on the lab network)",
                self.node_ip
            )));
        }
        if self.node_ip.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::Failed(format!(
                "--node-ip {}: not an IP address",
                self.node_ip
            )));
        }
        if self.name.is_empty()
            || self.name.len() > 14
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(Error::Failed(format!(
                "--name {:?}: 1 to 14 lower-case letters or digits",
                self.name
            )));
        }
        Ok(())
    }
}

/// Paths in the data dir.
#[derive(Debug, Clone)]
pub struct Layout {
    pub data: PathBuf,
}

impl Layout {
    /// The data dir, made absolute (programs run with other working dirs).
    pub fn new(data: &Path) -> Result<Layout> {
        let data = if data.is_absolute() {
            data.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(Error::io("the current directory"))?
                .join(data)
        };
        Ok(Layout { data })
    }
    pub fn settings(&self) -> PathBuf {
        self.data.join("cluster.json")
    }
    pub fn supervisor_pid(&self) -> PathBuf {
        self.data.join("skiff.pid")
    }
    pub fn program_pid(&self, program: &str) -> PathBuf {
        self.data.join("run").join(format!("{program}.pid"))
    }
    pub fn log(&self, program: &str) -> PathBuf {
        self.data.join(format!("{program}.log"))
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.data.join("admin.kubeconfig")
    }
    /// A worker's node credentials (`skiff join`).
    pub fn node_kubeconfig(&self) -> PathBuf {
        self.data.join("kubelet.kubeconfig")
    }
    /// The kubeconfig this machine's programs use: the admin's, or on a
    /// worker the node's.
    pub fn client_kubeconfig(&self, s: &Settings) -> PathBuf {
        if s.join.is_some() {
            self.node_kubeconfig()
        } else {
            self.kubeconfig()
        }
    }
    pub fn kubelet_root(&self) -> PathBuf {
        self.data.join("kubelet")
    }
    pub fn cni_dir(&self) -> PathBuf {
        self.data.join("cni")
    }
    /// A --nodes node's own data dir (its kubelet root and CNI config).
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.data.join("nodes").join(node)
    }
    /// Present while `skiff node stop` holds the node down.
    pub fn node_stopped(&self, node: &str) -> PathBuf {
        self.data.join("run").join(format!("{node}.stopped"))
    }
    /// Present while `skiff node partition` holds the node off the network.
    pub fn node_partitioned(&self, node: &str) -> PathBuf {
        self.data.join("run").join(format!("{node}.partitioned"))
    }
    /// Every kubelet root of the cluster: the host's, or each node's.
    pub fn kubelet_roots(&self, s: &Settings) -> Vec<PathBuf> {
        if s.multi() {
            s.sim_nodes()
                .iter()
                .map(|n| self.node_dir(&n.name).join("kubelet"))
                .collect()
        } else {
            vec![self.kubelet_root()]
        }
    }

    /// The settings of an existing cluster.
    pub fn load_settings(&self) -> Option<Settings> {
        let text = std::fs::read_to_string(self.settings()).ok()?;
        Settings::from_json(&serde_json::from_str(&text).ok()?)
    }

    pub fn save_settings(&self, s: &Settings) -> Result<()> {
        std::fs::create_dir_all(&self.data).map_err(Error::io(self.data.display().to_string()))?;
        std::fs::write(self.settings(), s.to_json().to_string())
            .map_err(Error::io(self.settings().display().to_string()))
    }

    /// The supervisor's pid, when it runs.
    pub fn running(&self) -> Option<i32> {
        alive(&self.supervisor_pid())
    }
}

/// The pid in `file`, when that process exists.
pub fn alive(file: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    (pid > 1 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
        .then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::default()
    }

    #[test]
    fn settings_round_trip_and_name_host_objects() {
        let s = settings();
        assert_eq!(Settings::from_json(&s.to_json()), Some(s.clone()));
        assert_eq!(s.bridge(), "skiff0");
        assert_eq!(s.fence_table(), "skiff_up");
        assert!(s.validate().is_ok());
    }

    #[test]
    fn several_nodes_get_addresses_interfaces_and_pod_cidr_blocks() {
        let s = Settings {
            nodes: 3,
            pod_subnet: "10.244.0.0/16".into(),
            ..settings()
        };
        assert!(s.validate().is_ok());
        assert_eq!(s.gateway().to_string(), "10.245.0.1");
        assert_eq!(s.api_host(), "10.245.0.1");
        assert_eq!(s.nodes_bridge(), "skiffnodes");
        assert_eq!(s.node_mask(), 24);
        let n = s.sim_nodes();
        assert_eq!(n.len(), 3);
        assert_eq!(
            (
                n[2].name.as_str(),
                n[2].ip.to_string(),
                n[2].netns.as_str(),
                n[2].veth.as_str()
            ),
            ("node3", "10.245.0.13".into(), "skiff-node3", "skiffv3")
        );
        // One node: on the host, the whole subnet its pod CIDR.
        assert!(settings().sim_nodes().is_empty());
        assert_eq!(settings().node_mask(), 24);
        assert_eq!(settings().api_host(), "127.0.0.1");
        // A /22 holds four /24s; five nodes get /25s.
        for (subnet, nodes, mask) in [
            ("10.250.0.0/22", 4, 24),
            ("10.250.0.0/22", 5, 25),
            ("10.244.0.0/16", 2, 24),
        ] {
            let s = Settings {
                nodes,
                pod_subnet: subnet.into(),
                ..settings()
            };
            assert_eq!(s.node_mask(), mask, "{subnet} {nodes}");
            assert!(s.validate().is_ok(), "{subnet} {nodes}");
        }
    }

    #[test]
    fn an_interface_address_is_read_from_ip() {
        let line = "3: enp0s8    inet 192.168.56.10/24 brd 192.168.56.255 scope global enp0s8\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(parse_inet(line).as_deref(), Some("192.168.56.10"));
        assert_eq!(parse_inet(""), None);
        assert_eq!(iface_address("lo").unwrap(), "127.0.0.1");
        let err = iface_address("nosuchiface0").unwrap_err().to_string();
        assert!(err.starts_with("--iface nosuchiface0"), "{err}");
    }

    #[test]
    fn bad_settings_say_which_flag() {
        for (change, want) in [
            (
                Settings {
                    pod_subnet: "10.244.0.0".into(),
                    ..settings()
                },
                "--pod-subnet",
            ),
            (
                Settings {
                    pod_subnet: "10.244.0.0/31".into(),
                    ..settings()
                },
                "--pod-subnet",
            ),
            (
                Settings {
                    node_ip: "localhost".into(),
                    ..settings()
                },
                "--node-ip",
            ),
            (
                Settings {
                    name: "Skiff-Lab".into(),
                    ..settings()
                },
                "--name",
            ),
            (
                Settings {
                    nodes: 0,
                    ..settings()
                },
                "--nodes",
            ),
            (
                Settings {
                    nodes: 3,
                    pod_subnet: "10.244.0.0/27".into(),
                    ..settings()
                },
                "--pod-subnet",
            ),
            (
                Settings {
                    nodes: 3,
                    pod_subnet: "10.244.0.0/16".into(),
                    node_subnet: "10.245.0.0/30".into(),
                    ..settings()
                },
                "--node-subnet",
            ),
            (
                Settings {
                    nodes: 2,
                    pod_subnet: "10.244.0.0/16".into(),
                    name: "thirteenchars".into(),
                    ..settings()
                },
                "--name",
            ),
        ] {
            let err = change.validate().unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
        }
    }
}
