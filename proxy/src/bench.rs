//! `skiff-proxy bench` (root): what the two modes cost, measured in one run.
//!
//! A backend (a tiny HTTP/1.0 server: this binary's hidden `bench-backend`)
//! runs in a network namespace the bench creates, reached over a veth. A
//! client in this process opens one connection per request from
//! `--concurrency` tasks for `--duration`, three times: straight to the
//! backend, through a ClusterIP programmed by the nftables rules
//! ([`crate::rules::ruleset`] of a made-up Service, loaded with `nft`), and
//! through a ClusterIP of the userspace mode ([`crate::userspace`]). Then,
//! inside the namespace (so no real Service is touched), the time to load
//! the rules of `--services` Services × `--endpoints` endpoints, and after
//! one endpoint changed, to load them whole again and to load only the
//! difference ([`crate::rules::update`], what the proxy does).
//!
//! Every name carries this run's id; traffic goes to loopback and to the
//! namespace only (the made-up service range is routed into the veth, so an
//! untranslated packet dies in the namespace). [`Host`] removes the
//! namespace (and its veth), the table, the route and the address on drop,
//! after an error too.

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::nft::{Nft, NftError, RealNft};
use crate::rules::{self, Endpoint, ServicePort, Settings};
use crate::userspace::Userspace;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// How long each path is loaded.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Client tasks, each one request (one connection) at a time.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Services in the programming benchmark.
    #[arg(long, default_value_t = 1000)]
    pub services: usize,
    /// Endpoints per Service in the programming benchmark.
    #[arg(long, default_value_t = 10)]
    pub endpoints: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{what}: {message}")]
    Command { what: String, message: String },
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error("the backend at {0} never answered")]
    Backend(SocketAddr),
}

fn run(program: &str, args: &[&str]) -> Result<String, BenchError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| BenchError::Command {
            what: format!("{program} {}", args.join(" ")),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(BenchError::Command {
            what: format!("{program} {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What the bench made on the host, removed on drop (best effort: each
/// step is tried whatever the others did).
#[derive(Debug, Default)]
struct Host {
    netns: Option<String>,
    veth: Option<String>,
    table: Option<String>,
    route: Option<String>,
    lo_address: Option<String>,
    backends: Vec<Child>,
}

impl Drop for Host {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new(args[0])
                .args(&args[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        for mut b in self.backends.drain(..) {
            let _ = b.kill();
            let _ = b.wait();
        }
        if let Some(a) = &self.lo_address {
            quiet(&["ip", "addr", "del", a, "dev", "lo"]);
        }
        if let Some(t) = &self.table {
            quiet(&["nft", "delete", "table", "ip", t]);
        }
        if let Some(r) = &self.route {
            quiet(&["ip", "route", "del", r]);
        }
        if let Some(v) = &self.veth {
            quiet(&["ip", "link", "del", v]);
        }
        if let Some(n) = &self.netns {
            quiet(&["ip", "netns", "del", n]);
        }
    }
}

/// `nft -f` inside a network namespace.
struct NetnsNft(String);

impl Nft for NetnsNft {
    fn apply(&self, ruleset: &str) -> Result<(), NftError> {
        crate::nft::feed(&["ip", "netns", "exec", &self.0, "nft", "-f", "-"], ruleset)
    }
}

/// Throughput and latency of one path.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub requests: usize,
    pub errors: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// The `q` quantile (0..=1) of sorted `samples` (nearest rank).
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn summarize(mut latencies: Vec<Duration>, errors: usize, took: Duration) -> Load {
    latencies.sort();
    Load {
        requests: latencies.len(),
        errors,
        per_second: latencies.len() as f64 / took.as_secs_f64().max(1e-9),
        p50: quantile(&latencies, 0.50),
        p99: quantile(&latencies, 0.99),
    }
}

async fn request(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
    let mut body = Vec::with_capacity(128);
    s.read_to_end(&mut body).await?;
    if body.starts_with(b"HTTP/1.0 200") {
        Ok(())
    } else {
        Err(std::io::Error::other("not a 200"))
    }
}

async fn load(addr: SocketAddr, concurrency: usize, duration: Duration) -> Load {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while start.elapsed() < duration {
                let t = Instant::now();
                match tokio::time::timeout(Duration::from_secs(5), request(addr)).await {
                    Ok(Ok(())) => latencies.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    while let Some(Ok((l, e))) = tasks.join_next().await {
        all.extend(l);
        errors += e;
    }
    summarize(all, errors, start.elapsed())
}

/// The hidden `bench-backend`: answers every request with a 200 and closes.
pub async fn backend(listen: SocketAddr) -> std::io::Result<()> {
    let l = tokio::net::TcpListener::bind(listen).await?;
    loop {
        let (mut s, _) = l.accept().await?;
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let mut got = 0;
            // Up to the blank line that ends the request head.
            while got < buf.len() {
                match s.read(&mut buf[got..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got += n,
                }
                if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let _ = s
                .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                .await;
        });
    }
}

fn service(name: &str, cluster_ip: String, endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        namespace: "bench".into(),
        name: name.into(),
        port_name: "http".into(),
        cluster_ip,
        protocol: "tcp".into(),
        port: 80,
        node_port: None,
        endpoints,
        affinity_seconds: None,
    }
}

fn endpoint(ip: String, port: u16) -> Endpoint {
    Endpoint {
        ip,
        port,
        ready: true,
        serving: true,
        terminating: false,
    }
}

/// `services` × `endpoints` made-up service ports (for the programming
/// benchmark, inside the namespace).
pub fn many(services: usize, endpoints: usize) -> Vec<ServicePort> {
    (0..services)
        .map(|i| {
            let eps = (0..endpoints)
                .map(|j| {
                    let n = i * endpoints + j;
                    endpoint(
                        format!("10.{}.{}.{}", 128 + n / 65536, (n / 256) % 256, n % 256),
                        8080,
                    )
                })
                .collect();
            service(
                &format!("svc{i}"),
                format!("10.96.{}.{}", i / 250, i % 250 + 1),
                eps,
            )
        })
        .collect()
}

/// Median time of `n` runs of `f`.
fn median(n: usize, mut f: impl FnMut() -> Result<(), BenchError>) -> Result<Duration, BenchError> {
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Runs the bench and prints its report.
pub async fn bench(args: &BenchArgs) -> Result<(), BenchError> {
    let pid = std::process::id();
    let id = pid % 250;
    let mut host = Host::default();
    let netns = format!("spxbench{pid}");
    let (veth, peer) = (format!("spxb{id}h"), format!("spxb{id}n"));
    let (host_ip, backend_ip) = (format!("10.252.{id}.1"), format!("10.252.{id}.2"));
    let service_range = format!("10.253.{id}.0/24");
    let (nft_ip, user_ip) = (format!("10.253.{id}.10"), format!("10.253.{id}.20"));

    run("ip", &["netns", "add", &netns])?;
    host.netns = Some(netns.clone());
    run(
        "ip",
        &["link", "add", &veth, "type", "veth", "peer", "name", &peer],
    )?;
    host.veth = Some(veth.clone());
    run("ip", &["link", "set", &peer, "netns", &netns])?;
    run(
        "ip",
        &["addr", "add", &format!("{host_ip}/30"), "dev", &veth],
    )?;
    run("ip", &["link", "set", &veth, "up"])?;
    let inside = |args: &[&str]| {
        let mut all = vec!["netns", "exec", &netns];
        all.extend_from_slice(args);
        run("ip", &all)
    };
    inside(&[
        "ip",
        "addr",
        "add",
        &format!("{backend_ip}/30"),
        "dev",
        &peer,
    ])?;
    inside(&["ip", "link", "set", &peer, "up"])?;
    inside(&["ip", "link", "set", "lo", "up"])?;
    inside(&["ip", "route", "add", "default", "via", &host_ip])?;
    // The made-up service range goes into the veth: nothing leaves the machine.
    run("ip", &["route", "add", &service_range, "dev", &veth])?;
    host.route = Some(service_range.clone());

    // One backend port per path (80 direct, 81 behind the nftables
    // ClusterIP, 82 behind the userspace one): each path's connections are
    // new 4-tuples to the backend. With one port, a path run after another
    // reuses client ports whose TIME-WAIT sockets the backend still holds
    // from the earlier path, with other sequence numbers and timestamps
    // (their offsets hash the destination address, the ClusterIP or the
    // pod's), and some SYNs are refused and sent again: whichever path ran
    // second showed a p99 of ~10 ms that was not its own.
    let backend_at = |port: u16| -> Result<SocketAddr, BenchError> {
        format!("{backend_ip}:{port}")
            .parse()
            .map_err(|_| BenchError::Backend(SocketAddr::from(([0, 0, 0, 0], port))))
    };
    let exe = std::env::current_exe().map_err(|e| BenchError::Io("current exe", e))?;
    for port in [80, 81, 82] {
        let addr = backend_at(port)?;
        host.backends.push(
            Command::new("ip")
                .args(["netns", "exec", &netns])
                .arg(&exe)
                .args(["bench-backend", "--listen", &addr.to_string()])
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| BenchError::Io("start the backend", e))?,
        );
        let ready = Instant::now();
        while request(addr).await.is_err() {
            if ready.elapsed() > Duration::from_secs(10) {
                return Err(BenchError::Backend(addr));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let backend_addr = backend_at(80)?;

    // The nftables mode: the real rules of one made-up Service.
    let table = format!("skiff_bench_{pid}");
    let settings = Settings {
        table: table.clone(),
        cluster_cidr: format!("10.252.{id}.0/24"),
        // Only our ClusterIP: the drop rule for the rest of the range
        // must not catch the userspace one.
        service_cidr: format!("{nft_ip}/32"),
        cluster_dns: None,
    };
    host.table = Some(table.clone());
    let one = |ip: &str, backend_port: u16| {
        vec![service(
            "web",
            ip.to_string(),
            vec![endpoint(backend_ip.clone(), backend_port)],
        )]
    };
    RealNft.apply(&rules::ruleset(&one(&nft_ip, 81), &settings))?;

    // The userspace mode: its ClusterIP on lo, its listener in this process.
    host.lo_address = Some(format!("{user_ip}/32"));
    let mut relay = Userspace::new(Arc::new(crate::dns::link::IpLink), Duration::from_secs(30));
    let synced = relay.sync(&one(&user_ip, 82), None).await;
    if synced.failed > 0 {
        relay.stop().await;
        return Err(BenchError::Command {
            what: "userspace listener".into(),
            message: format!("{synced:?}"),
        });
    }

    let port = |ip: &str| -> SocketAddr {
        SocketAddr::new(
            ip.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            80,
        )
    };
    let paths = [
        ("direct", backend_addr),
        ("nftables ClusterIP", port(&nft_ip)),
        ("userspace ClusterIP", port(&user_ip)),
    ];
    // Warm up each path (ARP, conntrack, the relay's first accept).
    for (_, addr) in &paths {
        let _ = load(*addr, 2, Duration::from_millis(200)).await;
    }
    let mut results = Vec::new();
    for (name, addr) in &paths {
        results.push((*name, load(*addr, args.concurrency, args.duration).await));
    }
    relay.stop().await;

    println!(
        "skiff-proxy bench: HTTP/1.0, one connection per request, {} clients, {:?} per path",
        args.concurrency, args.duration
    );
    println!(
        "{:<22} {:>10} {:>8} {:>10} {:>10} {:>12} {:>10}",
        "path", "req/s", "errors", "p50", "p99", "req/s ratio", "p99 ratio"
    );
    let direct = results[0].1.clone();
    for (name, l) in &results {
        println!(
            "{:<22} {:>10.0} {:>8} {:>10} {:>10} {:>12.2} {:>10.2}",
            name,
            l.per_second,
            l.errors,
            ms(l.p50),
            ms(l.p99),
            l.per_second / direct.per_second.max(1e-9),
            l.p99.as_secs_f64() / direct.p99.as_secs_f64().max(1e-9),
        );
    }

    // Programming, inside the namespace: whole-table loads.
    let ns_nft = NetnsNft(netns.clone());
    let mut big = many(args.services, args.endpoints);
    let prog = Settings {
        table: "skiff_bench".into(),
        cluster_cidr: "10.244.0.0/16".into(),
        service_cidr: "10.96.0.0/12".into(),
        cluster_dns: None,
    };
    let t = Instant::now();
    let full = rules::ruleset(&big, &prog);
    let generate = t.elapsed();
    let empty = median(3, || Ok(ns_nft.apply("")?))?;
    let first = median(1, || Ok(ns_nft.apply(&full)?))?;
    let reload = median(3, || Ok(ns_nft.apply(&full)?))?;
    // One endpoint of one Service changes (a pod replaced): the whole
    // table again (what the proxy did before updates), then the proxy's way.
    let middle = big.len() / 2;
    let mut change = 0u8;
    let mut replace_one = |big: &mut Vec<ServicePort>| {
        change = change.wrapping_add(1);
        if let Some(e) = big.get_mut(middle).and_then(|s| s.endpoints.get_mut(0)) {
            e.ip = format!("10.200.0.{change}");
        }
    };
    let one_change = median(3, || {
        replace_one(&mut big);
        Ok(ns_nft.apply(&rules::ruleset(&big, &prog))?)
    })?;
    let mut loaded = rules::programme(&big, &prog);
    let mut update_lines = 0;
    let one_update = median(5, || {
        replace_one(&mut big);
        let want = rules::programme(&big, &prog);
        let tx = rules::update(&loaded, &want, &prog.table).unwrap_or_default();
        update_lines = tx.lines().count();
        ns_nft.apply(&tx)?;
        loaded = want;
        Ok(())
    })?;
    println!(
        "\nprogramming {} Services x {} endpoints ({} KiB of rules), in the bench's namespace:",
        args.services,
        args.endpoints,
        full.len() / 1024
    );
    println!("  generate the ruleset                {}", ms(generate));
    println!("  nft -f, first load                  {}", ms(first));
    println!("  nft -f, whole table again (median)  {}", ms(reload));
    println!(
        "  one endpoint changed: generate + nft -f of the whole table (median) {}",
        ms(one_change)
    );
    println!(
        "  one endpoint changed: generate + diff + nft -f of the {update_lines} changed lines (median, the proxy's way) {}",
        ms(one_update)
    );
    println!(
        "  (nft -f of nothing, the floor of each load: {})",
        ms(empty)
    );
    drop(host);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let d = |ms: u64| Duration::from_millis(ms);
        let samples: Vec<Duration> = (1..=100).map(d).collect();
        let cases = [(0.5, d(50)), (0.99, d(99)), (1.0, d(100)), (0.0, d(1))];
        for (q, want) in cases {
            assert_eq!(quantile(&samples, q), want, "{q}");
        }
        assert_eq!(quantile(&[], 0.99), Duration::ZERO);
        let l = summarize(vec![d(3), d(1), d(2)], 1, Duration::from_secs(1));
        assert_eq!((l.requests, l.errors, l.p50, l.p99), (3, 1, d(2), d(3)));
        assert!((l.per_second - 3.0).abs() < 1e-9);
    }

    #[test]
    fn many_services_have_distinct_addresses() {
        let ports = many(1000, 10);
        let ips: std::collections::BTreeSet<&str> =
            ports.iter().map(|p| p.cluster_ip.as_str()).collect();
        assert_eq!(ips.len(), 1000);
        let eps: std::collections::BTreeSet<&str> = ports
            .iter()
            .flat_map(|p| p.endpoints.iter().map(|e| e.ip.as_str()))
            .collect();
        assert_eq!(eps.len(), 10_000);
        assert!(
            ips.iter()
                .all(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        );
        assert!(
            eps.iter()
                .all(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        );
    }
}
