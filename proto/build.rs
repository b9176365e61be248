//! Compiles the `.proto` files under `etcd/` and `skiff/` with protox (a pure-Rust protoc),
//! so building Skiff needs no system `protoc` for its own contracts.

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
    Ok(())
}
