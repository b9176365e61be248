//! `skiff bench`: how fast a cluster starts and how much memory it holds
//! idle — a fresh cluster in a temporary data dir (its own port and host
//! names, removed afterwards): `skiff up` to a Ready node, twice (the
//! first builds the demo images, the second reuses the data dir after a
//! `down`), then the resident memory of every program after 10 s idle;
//! then pod startup latency for 100 pods created at once
//! ([`super::pod_startup`]) and the kubelet's memory with them running.
//! Reference figures (the SLO, other projects) are printed beside ours.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cluster::{DataDir, Layout, UpArgs};
use crate::programs::programs;
use crate::{Error, Result};

fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn bench() -> Result<ExitCode> {
    let tmp = std::env::temp_dir().join(format!("skiff-bench-{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(Error::io("a free port"))?
        .port();
    let args = UpArgs {
        data: DataDir {
            data_dir: tmp.clone(),
        },
        port,
        node_ip: "127.0.0.1".into(),
        iface: None,
        pod_subnet: Some(format!("10.248.{}.0/24", std::process::id() % 250)),
        name: format!("sb{}", std::process::id() % 100000),
        etcd_servers: None,
        kubelet_port: 0,
        foreground: false,
        demo: false,
        nodes: 1,
        node_subnet: "10.245.0.0/24".into(),
        server: false,
    };
    let l = Layout::new(&tmp)?;
    let result = (|| -> Result<()> {
        let t = Instant::now();
        super::up::up(&args)?;
        let first = t.elapsed();
        super::down::down(&l)?;
        let t = Instant::now();
        super::up::up(&args)?;
        let second = t.elapsed();
        std::thread::sleep(Duration::from_secs(10));
        let s = l
            .load_settings()
            .ok_or_else(|| Error::Failed("no settings".into()))?;
        println!("\nskiff bench: start to a Ready node, and the idle cluster's memory");
        println!(
            "{:<44} {:>10}",
            "skiff up on a clean data dir (images built)",
            format!("{:.1} s", first.as_secs_f64())
        );
        println!(
            "{:<44} {:>10}",
            "skiff up after skiff down",
            format!("{:.1} s", second.as_secs_f64())
        );
        let mut total = 0;
        for p in programs(&s, &l) {
            if let Some(kib) = crate::cluster::alive(&l.program_pid(&p.name)).and_then(rss_kib) {
                total += kib;
                println!(
                    "{:<44} {:>10}",
                    format!("RSS {}", p.name),
                    format!("{:.1} MiB", kib as f64 / 1024.0)
                );
            }
        }
        if let Some(kib) = l.running().and_then(rss_kib) {
            total += kib;
            println!(
                "{:<44} {:>10}",
                "RSS skiff supervisor",
                format!("{:.1} MiB", kib as f64 / 1024.0)
            );
        }
        println!(
            "{:<44} {:>10}",
            "RSS whole cluster (control plane + 1 node)",
            format!("{:.1} MiB", total as f64 / 1024.0)
        );
        let kubelet_idle = crate::cluster::alive(&l.program_pid("kubelet")).and_then(rss_kib);
        let rt = tokio::runtime::Runtime::new().map_err(Error::io("tokio"))?;
        const PODS: usize = 100;
        let latencies = rt.block_on(super::pod_startup::measure(&l.kubeconfig(), PODS))?;
        let kubelet_busy = crate::cluster::alive(&l.program_pid("kubelet")).and_then(rss_kib);
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
        use super::pod_startup::quantile;
        println!(
            "{:<44} {:>10}",
            format!("pod startup p50 ({PODS} pods at once)"),
            ms(quantile(&latencies, 0.5))
        );
        println!(
            "{:<44} {:>10}",
            format!("pod startup p99 ({PODS} pods at once)"),
            ms(quantile(&latencies, 0.99))
        );
        println!(
            "{:<44} {:>10}",
            "pod startup max",
            ms(quantile(&latencies, 1.0))
        );
        for (label, kib) in [
            ("RSS kubelet, 0 pods", kubelet_idle),
            ("RSS kubelet, 100 pods running", kubelet_busy),
        ] {
            if let Some(kib) = kib {
                println!(
                    "{:<44} {:>10}",
                    label,
                    format!("{:.1} MiB", kib as f64 / 1024.0)
                );
            }
        }
        println!("references (their projects' published figures, not measured here):");
        println!(
            "{:<44} {:>10}",
            "  Kubernetes SLO: pod startup p99", "<= 5 s"
        );
        println!(
            "{:<44} {:>10}",
            "  aim of issue 7: pod startup p99", "< 1 s"
        );
        println!("{:<44} {:>10}", "  aim of issue 10: Ready in", "< 5 s");
        println!(
            "{:<44} {:>10}",
            "  aim of issue 10: whole cluster", "< 150 MB"
        );
        println!("{:<44} {:>10}", "  k0s controller alone, idle", "510 MB");
        println!("{:<44} {:>10}", "  k3s agent, idle", "275 MB");
        Ok(())
    })();
    let _ = super::reset::reset(&l);
    result.map(|()| ExitCode::SUCCESS)
}
