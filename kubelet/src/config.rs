//! The kubelet's settings, with upstream kubelet's flag names and defaults.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Kubeconfig to reach the API server (default: $KUBECONFIG, ~/.kube/config, or the
    /// in-cluster service account).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// The Node's name (default: this machine's hostname, lowercased).
    #[arg(long)]
    pub hostname_override: Option<String>,

    /// The address the Node reports (InternalIP). Without it the kubelet takes the address of
    /// the interface that holds the default route, and says in its log which others it saw:
    /// on VMs with a NAT interface and a lab network, pass the lab address here.
    #[arg(long)]
    pub node_ip: Option<IpAddr>,

    /// Where the kubelet keeps its state (pods, volumes, the runtime's data).
    #[arg(long, default_value = "/var/lib/skiff-kubelet")]
    pub root_dir: PathBuf,

    /// Labels added to the Node at registration: `key=value,key2=value2`.
    #[arg(long, value_delimiter = ',')]
    pub node_labels: Vec<String>,

    /// Taints the Node registers with: `key=value:Effect,key2:Effect`.
    #[arg(long, value_delimiter = ',')]
    pub register_with_taints: Vec<String>,

    /// How often the Node's status (conditions, addresses) is posted.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub node_status_update_frequency: Duration,

    /// How long the Node's Lease in kube-node-lease lasts; it is renewed every quarter of it
    /// (10 s for the default 40 s), as upstream.
    #[arg(long, default_value_t = 40)]
    pub node_lease_duration_seconds: i32,

    /// The longest a crashing container waits before its next restart (the
    /// back-off doubles from 10 s up to this).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub max_container_restart_period: Duration,

    /// A directory of static pods (upstream's name; `staticPodPath` in its config file): every
    /// `*.yaml`, `*.yml` or `*.json` file in it holding a Pod is run by this kubelet, with or
    /// without the API server, which shows it as a mirror pod `<name>-<node>`. Created when
    /// missing.
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,

    /// How often --pod-manifest-path is read whole (a change to its files is noticed within
    /// a second anyway).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub file_check_frequency: Duration,

    /// Pods this node takes at most (its `pods` capacity).
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,

    /// Resources kept for the system daemons: `cpu=100m,memory=100Mi,ephemeral-storage=1Gi`.
    #[arg(long, value_delimiter = ',')]
    pub system_reserved: Vec<String>,

    /// Resources kept for Kubernetes' own daemons, same form as --system-reserved.
    #[arg(long, value_delimiter = ',')]
    pub kube_reserved: Vec<String>,

    /// The CRI socket of an external container runtime. Without it the kubelet serves its
    /// embedded runtime on `<root-dir>/runtime.sock` and uses that. `unix://` may be written
    /// before the path, as upstream.
    #[arg(long)]
    pub container_runtime_endpoint: Option<String>,

    /// Where the embedded runtime finds its CNI network configuration (the first
    /// `.conflist` by name).
    #[arg(long, default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: PathBuf,

    /// Where the CNI plugin binaries are (Debian's containernetworking-plugins).
    #[arg(long, default_value = "/usr/lib/cni")]
    pub cni_bin_dir: PathBuf,

    /// Registries the embedded runtime pulls from over plain HTTP (`127.0.0.1:5000`).
    #[arg(long, value_delimiter = ',')]
    pub insecure_registries: Vec<String>,

    /// Registry credentials for the embedded runtime, in docker's `config.json` form
    /// (default: `<root-dir>/config.json` when it exists).
    #[arg(long)]
    pub image_credentials: Option<PathBuf>,

    /// DNS servers the pods use (the cluster DNS Service's IP). Empty: pods get no nameserver
    /// from the kubelet.
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<String>,

    /// The cluster's DNS domain, for the pods' search path.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,

    /// The node's resolver file: what `dnsPolicy: Default` pods (and
    /// `hostNetwork` pods with `ClusterFirst`) get, and whose searches follow
    /// the cluster's. Empty: none (such pods get `nameserver 127.0.0.1`).
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: String,

    /// The port of the kubelet's own HTTPS API (container logs), as upstream; 0 picks a free
    /// one (tests), which the Node reports in `status.daemonEndpoints`.
    #[arg(long, default_value_t = 10250)]
    pub port: u16,

    /// The address the kubelet API listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub address: std::net::IpAddr,

    /// CA bundle (PEM) that signs the client certificates allowed to call the kubelet API
    /// (the API server's). Default: the CA of the cluster in --kubeconfig.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,

    /// Hard eviction thresholds: `memory.available<100Mi,nodefs.available<10%,pid.available<5%`
    /// (upstream's defaults, kept when not given). The memory threshold is also taken out of
    /// allocatable, as upstream does.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "memory.available<100Mi,nodefs.available<10%,pid.available<5%"
    )]
    pub eviction_hard: Vec<String>,

    /// The size a container's log file reaches before it is rotated (`10Mi`, `500Ki`, bytes),
    /// as upstream. The embedded runtime's shim rotates it; an external runtime is not told.
    #[arg(long, default_value = "10Mi", value_parser = parse_log_size)]
    pub container_log_max_size: u64,

    /// How many log files a container keeps, the current one included (at least 2), as
    /// upstream: the oldest rotated file goes when there would be more.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..))]
    pub container_log_max_files: u64,

    /// Image GC starts when the disk of the kubelet's root dir is at least this full (percent;
    /// 100 turns it off), as upstream.
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub image_gc_high_threshold: u8,

    /// ...and removes unused images, least recently used first, until the disk is below this
    /// (percent, lower than the high threshold).
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub image_gc_low_threshold: u8,

    /// An image the kubelet has known for less than this is never collected (upstream's name).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub minimum_image_ttl_duration: Duration,

    /// How often image GC looks at the disk (upstream: every 5 min, not a flag).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub image_gc_period: Duration,

    /// How often the eviction manager compares the node with --eviction-hard (upstream: every
    /// 10 s, not a flag).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub eviction_monitoring_period: Duration,
}

/// `--container-log-max-size`: a quantity of bytes, more than zero.
fn parse_log_size(s: &str) -> Result<u64, String> {
    match crate::node::quantity::parse_bytes(s) {
        Ok(0) => Err("must be more than zero".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

impl Config {
    /// The runtime's socket path.
    pub fn runtime_socket(&self) -> PathBuf {
        match &self.container_runtime_endpoint {
            Some(e) => PathBuf::from(e.strip_prefix("unix://").unwrap_or(e)),
            None => self.root_dir.join("runtime.sock"),
        }
    }

    /// Settings for tests: the given kubeconfig, node name and root dir, fast heartbeats.
    pub fn for_test(
        kubeconfig: impl Into<PathBuf>,
        node: &str,
        root_dir: impl Into<PathBuf>,
    ) -> Config {
        let mut config = <Flags as clap::Parser>::parse_from(["skiff-kubelet"]).config;
        config.kubeconfig = Some(kubeconfig.into());
        config.hostname_override = Some(node.into());
        config.root_dir = root_dir.into();
        config.node_status_update_frequency = Duration::from_secs(1);
        config.node_lease_duration_seconds = 4;
        // Tests run several kubelets on one machine.
        config.port = 0;
        config.address = std::net::Ipv4Addr::LOCALHOST.into();
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let all = std::iter::once("skiff-kubelet").chain(args.iter().copied());
        <Flags as clap::Parser>::try_parse_from(all).map(|f| f.config)
    }

    #[test]
    fn container_log_rotation_flags() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            (c.container_log_max_size, c.container_log_max_files),
            (10 << 20, 5)
        );
        let c = parse(&[
            "--container-log-max-size=500Ki",
            "--container-log-max-files=2",
        ])
        .unwrap();
        assert_eq!(
            (c.container_log_max_size, c.container_log_max_files),
            (500 << 10, 2)
        );
        for bad in [
            "--container-log-max-size=0",
            "--container-log-max-size=ten",
            "--container-log-max-files=1",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
    }
}

/// The command line when the kubelet is its own program (`main.rs` adds subcommands around it).
#[derive(Debug, clap::Parser)]
struct Flags {
    #[command(flatten)]
    config: Config,
}
