//! Compiles the `.proto` files with protox (a pure-Rust protoc), so building
//! Skiff needs no system `protoc` for its own contracts:
//!
//! - `etcd/` and `skiff/` become Rust types and the etcd gRPC server traits;
//! - `cri/` (the Container Runtime Interface subset) becomes Rust types, the
//!   gRPC client and the server traits;
//! - `k8s/` (the Kubernetes protobuf subset) becomes a descriptor set,
//!   `OUT_DIR/k8s_descriptors.bin`, which `src/kubernetes.rs` embeds and
//!   reads with prost-reflect. No Rust types are generated for it.

use std::path::PathBuf;

/// The Kubernetes files, relative to `k8s/`; each file's imports come along.
const K8S_FILES: &[&str] = &[
    "api/apps_v1.proto",
    "api/authentication_v1.proto",
    "api/authorization_v1.proto",
    "api/autoscaling_v1.proto",
    "api/autoscaling_v2.proto",
    "api/batch_v1.proto",
    "api/core_v1.proto",
    "api/networking_v1.proto",
    "api/policy_v1.proto",
    "api/rbac_v1.proto",
    "api/scheduling_v1.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "etcd/mvccpb/kv.proto",
        "etcd/etcdserverpb/rpc.proto",
        "skiff/store_wal.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["etcd", "skiff"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .compile_fds(descriptors)?;

    // The CRI subset: the kubelet is its client, the runtime its server.
    let cri = "cri/runtime/v1/api.proto";
    println!("cargo:rerun-if-changed={cri}");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(protox::compile([cri], ["cri"])?)?;

    println!("cargo:rerun-if-changed=k8s");
    let mut compiler = protox::Compiler::new(["k8s"])?;
    // Imports (meta/v1, google/protobuf/descriptor.proto for the options)
    // must be in the set for prost-reflect to resolve the references.
    compiler.include_imports(true);
    compiler.open_files(K8S_FILES)?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("k8s_descriptors.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    Ok(())
}
