//! Pod sandbox creation with CNI, timed: `cargo bench -p skiff-runtime --bench
//! sandbox` (as root; `SKIFF_BENCH_ROUNDS`, default 30). Three figures:
//! - namespaces only: net+UTS+IPC unshared and pinned, lo up, hostname, the
//!   pod files — what the sandbox costs without any network plugin;
//! - one at a time with CNI (bridge + host-local, portmap, loopback): create
//!   (RunPodSandbox) then stop + remove, N times;
//! - N alive at once: N creates in a row, then N removals (each ADD sees a
//!   bridge with more ports, each host-local allocation a fuller range).
//!
//! The subnet is fenced in with nftables while it runs ([`TestNet`]), and a
//! guard removes every sandbox should the bench fail half-way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_runtime::cni::exec::RealExec;
use skiff_runtime::cni::{Cni, NetworkList};
use skiff_runtime::sandbox::namespaces::LinuxNamespaces;
use skiff_runtime::sandbox::testnet::TestNet;
use skiff_runtime::sandbox::{SandboxConfig, Sandboxes};

struct Guard(Vec<Arc<Sandboxes>>);

impl Drop for Guard {
    fn drop(&mut self) {
        for sandboxes in &self.0 {
            for s in sandboxes.list() {
                let _ = sandboxes.remove(&s.id);
            }
        }
    }
}

fn config(i: usize) -> SandboxConfig {
    SandboxConfig {
        id: format!("bench{i}"),
        hostname: format!("bench-{i}"),
        dns_servers: vec!["10.96.0.10".into()],
        cni_args: format!("K8S_POD_NAMESPACE=bench;K8S_POD_NAME=bench-{i}"),
        ..Default::default()
    }
}

struct Figures(Vec<Duration>);

impl Figures {
    fn row(&mut self, what: &str) {
        let v = &mut self.0;
        v.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mean = ms(v.iter().sum::<Duration>()) / v.len() as f64;
        let p = |q: f64| ms(v[((v.len() - 1) as f64 * q).round() as usize]);
        println!(
            "{what:<34} {mean:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            p(0.5),
            p(0.99),
            ms(v[0])
        );
    }
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
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
    let make = |run: &Path, cni: bool| {
        Arc::new(Sandboxes {
            pod_cidr: Default::default(),
            run_dir: run.to_path_buf(),
            namespaces: Arc::new(LinuxNamespaces),
            cni: cni.then(|| Cni {
                list: NetworkList::load_dir(&net.conf_dir).unwrap(),
                exec: Arc::new(RealExec {
                    dirs: vec![PathBuf::from("/usr/lib/cni")],
                }),
                cache_dir: dir.path().join("cni-cache"),
            }),
        })
    };
    let bare = make(&dir.path().join("run-bare"), false);
    let full = make(&dir.path().join("run"), true);
    let _guard = Guard(vec![bare.clone(), full.clone()]);
    // One to warm the page cache and let the bridge plugin create the bridge.
    full.run(&config(9999)).expect("sandbox");
    full.remove("bench9999").expect("remove");

    let (mut ns_create, mut ns_remove) = (Vec::new(), Vec::new());
    let (mut create, mut remove) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        ns_create.push(timed(|| {
            bare.run(&config(i)).expect("sandbox");
        }));
        ns_remove.push(timed(|| bare.remove(&config(i).id).expect("remove")));
        create.push(timed(|| {
            full.run(&config(i)).expect("sandbox");
        }));
        remove.push(timed(|| {
            full.stop(&config(i).id).expect("stop");
            full.remove(&config(i).id).expect("remove");
        }));
    }
    let (mut many_create, mut many_remove) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        many_create.push(timed(|| {
            full.run(&config(i)).expect("sandbox");
        }));
    }
    for i in 0..rounds {
        many_remove.push(timed(|| full.remove(&config(i).id).expect("remove")));
    }

    println!(
        "pod sandboxes, {rounds} rounds, ms per sandbox ({} CPUs)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "", "mean", "p50", "p99", "min"
    );
    Figures(ns_create).row("namespaces only: create");
    Figures(ns_remove).row("namespaces only: remove");
    Figures(create).row("with CNI: create (RunPodSandbox)");
    Figures(remove).row("with CNI: stop + remove");
    Figures(many_create).row(&format!("with CNI, {rounds} alive: create"));
    Figures(many_remove).row(&format!("with CNI, {rounds} alive: remove"));
}
