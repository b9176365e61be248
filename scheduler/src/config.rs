//! The scheduler's settings, with kube-scheduler's flag names.

use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Kubeconfig to reach the API server (default: $KUBECONFIG, ~/.kube/config, or the
    /// in-cluster service account).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Only pods whose spec.schedulerName is this are scheduled; events are reported from it.
    #[arg(long, default_value = "default-scheduler")]
    pub scheduler_name: String,

    /// `--leader-elect` and its timings: the Lease is kube-system/kube-scheduler.
    #[command(flatten)]
    pub leader: skiff_proto::leader::Flags,

    /// Address for /healthz and /metrics. Served over plain HTTP (no TLS yet), so only a
    /// loopback address is accepted.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,

    /// Port for /healthz and /metrics (0: any free port). kube-scheduler's port number,
    /// but plain HTTP.
    #[arg(long, default_value_t = 10259)]
    pub secure_port: u16,

    /// Percentage of nodes to find feasible before scoring (0: upstream's adaptive
    /// default, from 50% for small clusters down to 5%, never fewer than 100 nodes).
    #[arg(long, default_value_t = 0)]
    pub percentage_of_nodes_to_score: u32,
}

impl Config {
    /// Settings for tests and embedded use: the given kubeconfig, health on a free loopback
    /// port.
    pub fn for_kubeconfig(kubeconfig: impl Into<PathBuf>) -> Config {
        Config {
            kubeconfig: Some(kubeconfig.into()),
            scheduler_name: "default-scheduler".into(),
            leader: skiff_proto::leader::Flags::off(),
            bind_address: IpAddr::from([127, 0, 0, 1]),
            secure_port: 0,
            percentage_of_nodes_to_score: 0,
        }
    }
}
