//! The gRPC services: thin adapters from etcd's API to [`Store`](crate::Store).

mod cluster;
mod kv;
mod lease;
mod maintenance;
mod watch;

pub(crate) use cluster::ClusterService;
pub(crate) use kv::KvService;
pub(crate) use lease::LeaseService;
pub(crate) use maintenance::MaintenanceService;
pub(crate) use watch::WatchService;

/// The etcd version the store reports. It is the level of the API the store
/// implements, so clients that check versions enable the features it has.
pub const ETCD_API_VERSION: &str = "3.5.0";
