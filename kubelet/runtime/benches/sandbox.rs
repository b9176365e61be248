//! Pod sandbox creation with CNI, timed: `cargo bench -p skiff-runtime --bench
//! sandbox` (as root). Each round creates a sandbox (namespaces pinned, loopback
//! up, CNI bridge + host-local ADD, the pod's /etc files) and removes it (DEL,
//! unpin). The subnet is fenced in with nftables while it runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_runtime::cni::exec::RealExec;
use skiff_runtime::cni::{Cni, NetworkList};
use skiff_runtime::sandbox::namespaces::LinuxNamespaces;
use skiff_runtime::sandbox::testnet::TestNet;
use skiff_runtime::sandbox::{SandboxConfig, Sandboxes};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("sandbox bench: needs root (namespaces, CNI); skipped");
        return;
    }
    let rounds: usize = std::env::var("SKIFF_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::Builder::new()
        .prefix("skiff-rt-bench-")
        .tempdir()
        .unwrap();
    let net = TestNet::new(dir.path(), 9).expect("fence and CNI config");
    let sandboxes = Sandboxes {
        run_dir: dir.path().join("run"),
        namespaces: Arc::new(LinuxNamespaces),
        cni: Some(Cni {
            list: NetworkList::load_dir(&net.conf_dir).unwrap(),
            exec: Arc::new(RealExec {
                dirs: vec![PathBuf::from("/usr/lib/cni")],
            }),
            cache_dir: dir.path().join("cni-cache"),
        }),
    };
    let (mut create, mut remove) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let config = SandboxConfig {
            id: format!("bench{i}"),
            hostname: format!("bench-{i}"),
            ..Default::default()
        };
        let t = Instant::now();
        sandboxes.run(&config).expect("sandbox");
        create.push(t.elapsed());
        let t = Instant::now();
        sandboxes.remove(&config.id).expect("remove");
        remove.push(t.elapsed());
    }
    create.sort();
    remove.sort();
    let p = |v: &[Duration], q: f64| ms(v[((v.len() - 1) as f64 * q) as usize]);
    println!("pod sandbox with CNI (bridge + host-local), {rounds} rounds");
    println!("{:<28} {:>10} {:>10}", "", "p50 ms", "p99 ms");
    println!(
        "{:<28} {:>10.1} {:>10.1}",
        "create (RunPodSandbox)",
        p(&create, 0.5),
        p(&create, 0.99)
    );
    println!(
        "{:<28} {:>10.1} {:>10.1}",
        "stop + remove",
        p(&remove, 0.5),
        p(&remove, 0.99)
    );
}
