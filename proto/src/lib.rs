//! `skiff-proto`: the contracts between Skiff's programs.
//!
//! Start here to see what goes over the wire between programs that are not
//! plain Kubernetes REST:
//!
//! - [`etcd`]: the etcd v3 API subset (KV, Watch, Lease, Cluster, Maintenance)
//!   whose server side the embedded store (`apiserver/store`) implements. The
//!   `.proto` files live in `proto/etcd/` and are compiled by `build.rs` with
//!   protox, so no system `protoc` is needed for them.

/// The etcd v3 API, as generated from `proto/etcd/`.
pub mod etcd {
    /// Multi-version key-value records (`mvccpb.KeyValue`, `mvccpb.Event`).
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
    /// The gRPC services and their messages (`etcdserverpb`).
    pub mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
    pub use etcdserverpb::*;
    pub use mvccpb::{Event, KeyValue, event};
}
