//! The API server's settings, with kube-apiserver's flag names.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// etcd endpoints (comma-separated). Without any, the embedded store is
    /// started in-process on <data-dir>/store.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,

    /// Where the API server keeps its state: the embedded store, the PKI
    /// (pki/), and admin.kubeconfig. Created with mode 0700.
    #[arg(long, default_value = "skiff-data")]
    pub data_dir: PathBuf,

    /// HTTPS port.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,

    /// Address to serve HTTPS on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,

    /// The address other programs and nodes reach this server at (the
    /// `kubernetes` Service's endpoint). Default: the bind address, or
    /// 127.0.0.1 when that is 0.0.0.0.
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,

    /// Extra names or IPs for the serving certificate (repeatable).
    #[arg(long = "tls-san", value_delimiter = ',')]
    pub tls_sans: Vec<String>,

    /// Serving certificate (PEM); with --tls-private-key-file. Default: one
    /// generated into <data-dir>/pki, signed by a generated cluster CA.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,

    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,

    /// Extra CA bundle whose client certificates are accepted (CN = user, O = groups).
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,

    /// Static bearer tokens: CSV lines `token,user,uid,"group1,group2"`.
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,

    /// ClusterIPs are allocated from this range.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cluster_ip_range: String,

    /// NodePorts are allocated from this range.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,

    /// Seconds a new pod tolerates its node's `not-ready` NoExecute taint
    /// (the toleration added to pods that have none: DefaultTolerationSeconds).
    #[arg(long, default_value_t = 300)]
    pub default_not_ready_toleration_seconds: i64,

    /// The same for the `unreachable` taint.
    #[arg(long, default_value_t = 300)]
    pub default_unreachable_toleration_seconds: i64,

    /// Plain-HTTP port on loopback, without authentication (0: off). For
    /// local development only; it refuses any non-loopback address.
    #[arg(long, default_value_t = 0)]
    pub insecure_port: u16,

    #[arg(long, default_value = "127.0.0.1")]
    pub insecure_bind_address: IpAddr,

    /// Most requests in flight (watches and other long-running requests
    /// excluded); more are answered 429 with Retry-After.
    #[arg(long, default_value_t = 400)]
    pub max_requests_inflight: usize,

    /// How long watch history is kept for clients to resume from.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub watch_history: Duration,

    /// How often etcd's history is compacted (to what it was this long ago).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub etcd_compaction_interval: Duration,
}

impl Config {
    /// Settings for a test or an embedded use: data in `data_dir`, HTTPS on
    /// a free loopback port.
    pub fn for_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            etcd_servers: Vec::new(),
            data_dir: data_dir.into(),
            secure_port: 0,
            bind_address: IpAddr::from([127, 0, 0, 1]),
            advertise_address: None,
            tls_sans: Vec::new(),
            tls_cert_file: None,
            tls_private_key_file: None,
            client_ca_file: None,
            token_auth_file: None,
            service_cluster_ip_range: "10.96.0.0/12".into(),
            service_node_port_range: "30000-32767".into(),
            default_not_ready_toleration_seconds: 300,
            default_unreachable_toleration_seconds: 300,
            insecure_port: 0,
            insecure_bind_address: IpAddr::from([127, 0, 0, 1]),
            max_requests_inflight: 400,
            watch_history: Duration::from_secs(300),
            etcd_compaction_interval: Duration::from_secs(300),
        }
    }

    pub fn node_port_range(&self) -> Result<(u16, u16), String> {
        let (low, high) = self
            .service_node_port_range
            .split_once('-')
            .ok_or("--service-node-port-range must look like 30000-32767")?;
        let (low, high): (u16, u16) = (
            low.trim().parse().map_err(|_| "bad low port")?,
            high.trim().parse().map_err(|_| "bad high port")?,
        );
        if low == 0 || low > high {
            return Err(format!("--service-node-port-range {low}-{high} is empty"));
        }
        Ok((low, high))
    }
}
