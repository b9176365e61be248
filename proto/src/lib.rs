//! `skiff-proto`: the contracts between Skiff's programs.
//!
//! Start here to see what goes over the wire between programs that are not
//! plain Kubernetes REST:
//!
//! - [`etcd`]: the etcd v3 API subset (KV, Watch, Lease, Cluster, Maintenance)
//!   whose server side the embedded store (`apiserver/store`) implements. The
//!   `.proto` files live in `proto/etcd/` and are compiled by `build.rs` with
//!   protox, so no system `protoc` is needed for them.
//! - [`store`]: the record format of the store's write-ahead log
//!   (`proto/skiff/store_wal.proto`).
//! - [`cri`]: the Container Runtime Interface subset (`proto/cri/`) between
//!   the kubelet and its embedded runtime, with upstream's message and field
//!   names and numbers, so `crictl` can talk to the runtime's socket too.
//! - [`client`] and [`leader`]: the plumbing every control-plane program
//!   shares — the API client from `--kubeconfig`, and leader election on a
//!   Lease in `kube-system`.
//! - [`upgrade`]: one hop of an HTTP upgrade (the WebSocket of `kubectl
//!   exec`), as the API server and the kubelet pass it on.
//! - [`kubernetes`]: Kubernetes' own protobuf encoding, which kubectl uses for
//!   request bodies; [`kubernetes::decode`] turns such a body into the JSON
//!   form the API server works on. The message subset lives in `proto/k8s/`
//!   and is read at run time with prost-reflect, not compiled to Rust types.

// The generated modules sit at the crate root because prost resolves
// references between packages by their place in the package hierarchy
// (`skiff.store` refers to `etcdserverpb` as `super::super::etcdserverpb`).
#[doc(hidden)]
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}
#[doc(hidden)]
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}
#[doc(hidden)]
pub mod skiff {
    pub mod store {
        tonic::include_proto!("skiff.store");
    }
}

/// The etcd v3 API, as generated from `proto/etcd/`: the gRPC services and
/// their messages (`etcdserverpb`) and the key-value records (`mvccpb`).
pub mod etcd {
    pub use crate::etcdserverpb::*;
    pub use crate::mvccpb;
    pub use crate::mvccpb::{Event, KeyValue, event};
}

/// The CRI subset (`proto/cri/runtime/v1/api.proto`, package `runtime.v1`):
/// messages, `runtime_service_client`/`image_service_client` for the kubelet,
/// `runtime_service_server`/`image_service_server` for the runtime.
pub mod cri {
    tonic::include_proto!("runtime.v1");

    /// A channel to a CRI server on the unix socket `path`, dialled at the
    /// first call (the kubelet's client, crictl-style tools, the tests).
    pub fn unix_channel(path: &std::path::Path) -> tonic::transport::Channel {
        let path = path.to_path_buf();
        // The URI is required by tonic but unused: the connector dials the socket.
        tonic::transport::Endpoint::from_static("http://[::1]:50051").connect_with_connector_lazy(
            tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }),
        )
    }
}

/// skiff-store's own records (`proto/skiff/store_wal.proto`).
pub use skiff::store;

pub mod client;
pub mod kubernetes;
pub mod leader;
pub mod spdy;
pub mod upgrade;

/// Resolves on SIGINT (Ctrl-C) or SIGTERM: what every program's `main`
/// passes to its `run` as the shutdown future.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
