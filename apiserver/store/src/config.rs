//! The store's settings, with etcd's flag names so people who know etcd find them.

use std::path::PathBuf;
use std::time::Duration;

use crate::mvcc::StoreOptions;
use crate::watch::WatchOptions;

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Directory that holds the database file (created with mode 0700).
    #[arg(long, env = "ETCD_DATA_DIR", default_value = "skiff-store.data")]
    pub data_dir: PathBuf,

    /// URLs to serve etcd's gRPC API (and /health, /version, /metrics) on,
    /// comma-separated. Only http:// is supported; keep them on loopback or a
    /// trusted network.
    #[arg(
        long,
        env = "ETCD_LISTEN_CLIENT_URLS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub listen_client_urls: Vec<String>,

    /// Client URLs reported to clients by MemberList (default: the listen URLs).
    #[arg(long, env = "ETCD_ADVERTISE_CLIENT_URLS", value_delimiter = ',')]
    pub advertise_client_urls: Vec<String>,

    /// This member's name, as MemberList reports it.
    #[arg(long, env = "ETCD_NAME", default_value = "default")]
    pub name: String,

    /// Largest request accepted, in bytes.
    #[arg(long, default_value_t = 1536 * 1024)]
    pub max_request_bytes: usize,

    /// Most compares, or operations per branch, in one txn.
    #[arg(long, default_value_t = 128)]
    pub max_txn_ops: usize,

    /// How often idle watches that asked for progress notifications get one.
    #[arg(long = "experimental-watch-progress-notify-interval", default_value = "10m", value_parser = humantime::parse_duration)]
    pub watch_progress_notify_interval: Duration,

    /// Most write requests committed together in one group commit.
    #[arg(long, default_value_t = 1024)]
    pub max_batch_requests: usize,

    /// How often the database file itself is synced. Writes are durable
    /// before that, in the write-ahead log; this bounds how much log a
    /// restart replays.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub backend_batch_interval: Duration,

    /// Memory for the database's page cache, in bytes. Half of it at most
    /// holds pages written since the last sync of the database file.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub backend_cache_bytes: usize,
}

impl Config {
    /// Settings for a store in `data_dir` serving on `url`, otherwise the defaults.
    pub fn new(data_dir: impl Into<PathBuf>, url: impl Into<String>) -> Self {
        Config {
            data_dir: data_dir.into(),
            listen_client_urls: vec![url.into()],
            advertise_client_urls: Vec::new(),
            name: "default".into(),
            max_request_bytes: 1536 * 1024,
            max_txn_ops: 128,
            watch_progress_notify_interval: Duration::from_secs(600),
            max_batch_requests: 1024,
            backend_batch_interval: Duration::from_secs(1),
            backend_cache_bytes: 64 * 1024 * 1024,
        }
    }

    pub(crate) fn store_options(&self) -> StoreOptions {
        StoreOptions {
            max_request_bytes: self.max_request_bytes,
            max_txn_ops: self.max_txn_ops,
            max_batch: self.max_batch_requests,
            checkpoint_interval: self.backend_batch_interval,
            cache_bytes: self.backend_cache_bytes,
            ..StoreOptions::new(&self.data_dir)
        }
    }

    pub(crate) fn watch_options(&self) -> WatchOptions {
        WatchOptions {
            progress_notify_interval: self
                .watch_progress_notify_interval
                .max(Duration::from_millis(100)),
            max_response_bytes: self.max_request_bytes,
        }
    }
}
