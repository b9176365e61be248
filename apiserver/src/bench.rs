//! `skiff-apiserver bench`: the API server over its embedded store and over
//! a real etcd, the same workload through kube-rs, side by side.
//!
//! Each round starts fresh servers as separate processes (the embedded one,
//! then one with `--etcd-servers` pointing at an etcd this command starts).
//! Rows, median of the rounds:
//!
//! - pod creates with 1 and 64 concurrent clients: throughput and p50/p99;
//! - listing 10 000 pods in one request (p50/p99);
//! - fan-out: one ConfigMap update watched by 1 000 watches, from the write
//!   to the last watcher's delivery (p50/p99 over the updates);
//! - the API server's resident memory with 10 000 pods stored.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use skiff_store::harness::{Binaries, Kind, ServerProcess, ServerSettings};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// How long each create-throughput row runs.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Pods stored for the list and memory rows.
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Concurrent watches for the fan-out row.
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    /// Updates measured for the fan-out row.
    #[arg(long, default_value_t = 30)]
    pub updates: usize,
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// The etcd binary to compare with.
    #[arg(long, env = "SKIFF_ETCD_BIN", default_value = "etcd")]
    pub etcd: PathBuf,
}

#[derive(Debug, Default, Clone)]
struct Figures {
    create: Vec<(usize, f64, f64, f64)>,
    list_p50_ms: f64,
    list_p99_ms: f64,
    fanout_p50_ms: f64,
    fanout_p99_ms: f64,
    rss_mib: f64,
}

/// An API server process started for the benchmark.
struct Server {
    child: Child,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    _etcd: Option<ServerProcess>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(me: &Path, etcd: Option<ServerProcess>) -> anyhow::Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("skiff-bench-apiserver-")
            .tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new(me);
        cmd.arg("--data-dir").arg(dir.path().join("data")).args([
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            &port.to_string(),
        ]);
        cmd.args(["--max-requests-inflight", "10000"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(etcd) = &etcd {
            cmd.arg("--etcd-servers").arg(&etcd.endpoint);
        }
        let child = cmd.spawn()?;
        let kubeconfig = dir.path().join("data/admin.kubeconfig");
        let server = Server {
            child,
            _dir: dir,
            kubeconfig,
            _etcd: etcd,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if server.kubeconfig.exists()
                && let Ok(client) = server.client().await
                && client
                    .request_text(http::Request::get("/readyz").body(Vec::new())?)
                    .await
                    .is_ok_and(|t| t == "ok")
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        anyhow::bail!("the API server did not become ready")
    }

    async fn client(&self) -> anyhow::Result<kube::Client> {
        let config = kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&self.kubeconfig)?,
            &KubeConfigOptions::default(),
        )
        .await?;
        Ok(kube::Client::try_from(config)?)
    }

    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmRSS:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0);
        kib / 1024.0
    }
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "app", "image": "registry.local/app:1.0", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    }))
    .expect("a valid pod")
}

/// (p50, p99) in milliseconds.
fn percentiles(mut took: Vec<Duration>) -> (f64, f64) {
    if took.is_empty() {
        return (0.0, 0.0);
    }
    took.sort_unstable();
    let at = |q: f64| {
        took[((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1].as_secs_f64()
            * 1000.0
    };
    (at(0.50), at(0.99))
}

async fn creates(
    server: &Server,
    clients: usize,
    duration: Duration,
    prefix: &str,
) -> anyhow::Result<(f64, f64, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        // Created pods go to their own namespace, so the list row lists exactly `--pods`.
        let pods: Api<Pod> = Api::namespaced(server.client().await?, "bench-create");
        let (stop, prefix) = (stop.clone(), prefix.to_string());
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                pods.create(&PostParams::default(), &pod(&format!("{prefix}-{c}-{n}")))
                    .await?;
                took.push(start.elapsed());
                n += 1;
            }
            Ok::<_, kube::Error>(took)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let rate = all.len() as f64 / elapsed.as_secs_f64();
    let (p50, p99) = percentiles(all);
    Ok((rate, p50, p99))
}

/// Creates pods until `total` exist in the namespace.
async fn fill(server: &Server, total: usize) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(server.client().await?, "bench");
    let have = pods.list(&ListParams::default()).await?.items.len();
    let missing = total.saturating_sub(have);
    let workers = 32;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let pods: Api<Pod> = Api::namespaced(server.client().await?, "bench");
        tasks.push(tokio::spawn(async move {
            for i in (w..missing).step_by(workers) {
                pods.create(&PostParams::default(), &pod(&format!("fill-{i}")))
                    .await?;
            }
            Ok::<_, kube::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

async fn list_latency(server: &Server, samples: usize) -> anyhow::Result<(f64, f64, usize)> {
    let pods: Api<Pod> = Api::namespaced(server.client().await?, "bench");
    let mut took = Vec::new();
    let mut count = 0;
    for _ in 0..samples {
        let start = Instant::now();
        count = pods.list(&ListParams::default()).await?.items.len();
        took.push(start.elapsed());
    }
    let (p50, p99) = percentiles(took);
    Ok((p50, p99, count))
}

async fn fan_out(server: &Server, watchers: usize, updates: usize) -> anyhow::Result<(f64, f64)> {
    let client = server.client().await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "bench");
    let target: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "fanout"}, "data": {"round": "0"}}))?;
    let created = cms.create(&PostParams::default(), &target).await?;
    let start_rv = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let mut tasks = Vec::new();
    // Spread the watches over a few clients (each has its own connections).
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(server.client().await?);
    }
    for w in 0..watchers {
        let api: Api<ConfigMap> = Api::namespaced(clients[w % clients.len()].clone(), "bench");
        let (tx, rv) = (tx.clone(), start_rv.clone());
        tasks.push(tokio::spawn(async move {
            let params = WatchParams::default()
                .fields("metadata.name=fanout")
                .timeout(290);
            let Ok(stream) = api.watch(&params, &rv).await else {
                return;
            };
            let mut stream = stream.boxed();
            while let Some(Ok(event)) = stream.next().await {
                if let WatchEvent::Modified(cm) = event {
                    let round = cm
                        .data
                        .and_then(|d| d.get("round").and_then(|r| r.parse().ok()))
                        .unwrap_or(0);
                    if tx.send((round, Instant::now())).is_err() {
                        return;
                    }
                }
            }
        }));
    }
    drop(tx);
    // Let every watch get established.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut took = Vec::new();
    for round in 1..=updates {
        let start = Instant::now();
        let patch = json!({"data": {"round": round.to_string()}});
        cms.patch(
            "fanout",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await?;
        let mut delivered = 0;
        let mut last = start;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while delivered < watchers {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((r, at))) if r == round => {
                    delivered += 1;
                    last = last.max(at);
                }
                Ok(Some(_)) => {}
                _ => anyhow::bail!("only {delivered} of {watchers} watchers saw update {round}"),
            }
        }
        took.push(last - start);
    }
    for task in tasks {
        task.abort();
    }
    Ok(percentiles(took))
}

async fn measure(
    me: &Path,
    etcd: Option<ServerProcess>,
    args: &BenchArgs,
    name: &str,
) -> anyhow::Result<Figures> {
    let server = Server::start(me, etcd).await?;
    let client = server.client().await?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    for ns in ["bench", "bench-create"] {
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
            )
            .await?;
    }
    let mut figures = Figures::default();
    for clients in [1, 64] {
        let (rate, p50, p99) =
            creates(&server, clients, args.duration, &format!("c{clients}")).await?;
        eprintln!(
            "  {name}: create with {clients} clients: {rate:.0}/s, p50 {p50:.2}ms, p99 {p99:.2}ms"
        );
        figures.create.push((clients, rate, p50, p99));
    }
    fill(&server, args.pods).await?;
    let (p50, p99, count) = list_latency(&server, 20).await?;
    eprintln!("  {name}: list of {count} pods: p50 {p50:.1}ms, p99 {p99:.1}ms");
    figures.list_p50_ms = p50;
    figures.list_p99_ms = p99;
    figures.rss_mib = server.rss_mib();
    let (p50, p99) = fan_out(&server, args.watchers, args.updates).await?;
    eprintln!(
        "  {name}: fan-out to {} watchers: p50 {p50:.1}ms, p99 {p99:.1}ms",
        args.watchers
    );
    figures.fanout_p50_ms = p50;
    figures.fanout_p99_ms = p99;
    Ok(figures)
}

fn median(runs: &[Figures]) -> Figures {
    fn mid(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
    let of = |f: fn(&Figures) -> f64| mid(runs.iter().map(f).collect());
    let create = (0..runs[0].create.len())
        .map(|i| {
            let m = |g: fn(&(usize, f64, f64, f64)) -> f64| {
                mid(runs.iter().map(|r| g(&r.create[i])).collect())
            };
            (runs[0].create[i].0, m(|c| c.1), m(|c| c.2), m(|c| c.3))
        })
        .collect();
    Figures {
        create,
        list_p50_ms: of(|f| f.list_p50_ms),
        list_p99_ms: of(|f| f.list_p99_ms),
        fanout_p50_ms: of(|f| f.fanout_p50_ms),
        fanout_p99_ms: of(|f| f.fanout_p99_ms),
        rss_mib: of(|f| f.rss_mib),
    }
}

pub async fn run(args: BenchArgs, me: &Path) -> anyhow::Result<()> {
    println!(
        "skiff-apiserver bench: {} per create row, {} pods listed, {} watchers × {} updates, {} rounds (medians)",
        humantime::format_duration(args.duration),
        args.pods,
        args.watchers,
        args.updates,
        args.rounds
    );
    let binaries = Binaries {
        skiff_store: PathBuf::from("/nonexistent"),
        etcd: args.etcd.clone(),
    };
    let (mut embedded, mut etcd) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds.max(1) {
        eprintln!("round {round}:");
        embedded.push(measure(me, None, &args, "embedded store").await?);
        let store = ServerProcess::start(Kind::Etcd, &binaries, ServerSettings::default()).await?;
        etcd.push(measure(me, Some(store), &args, "etcd").await?);
    }
    let (a, b) = (median(&embedded), median(&etcd));
    println!();
    println!(
        "{:<46} {:>14} {:>14} {:>10}  better",
        "workload", "embedded store", "etcd", "emb/etcd"
    );
    let row = |name: String, ours: f64, theirs: f64, higher_is_better: bool| {
        let ratio = if theirs > 0.0 { ours / theirs } else { 0.0 };
        let ours_better = if higher_is_better {
            ratio >= 1.0
        } else {
            ratio <= 1.0
        };
        println!(
            "{name:<46} {ours:>14.2} {theirs:>14.2} {ratio:>9.2}x  {}",
            if ours_better { "embedded" } else { "etcd" }
        );
    };
    for (i, (clients, rate, p50, p99)) in a.create.iter().enumerate() {
        let (_, r2, p502, p992) = b.create[i];
        row(
            format!("pod create, {clients} clients (creates/s)"),
            *rate,
            r2,
            true,
        );
        row(
            format!("pod create, {clients} clients, p50 (ms)"),
            *p50,
            p502,
            false,
        );
        row(
            format!("pod create, {clients} clients, p99 (ms)"),
            *p99,
            p992,
            false,
        );
    }
    row(
        format!("list {} pods, p50 (ms)", args.pods),
        a.list_p50_ms,
        b.list_p50_ms,
        false,
    );
    row(
        format!("list {} pods, p99 (ms)", args.pods),
        a.list_p99_ms,
        b.list_p99_ms,
        false,
    );
    row(
        format!("fan-out to {} watchers, p50 (ms)", args.watchers),
        a.fanout_p50_ms,
        b.fanout_p50_ms,
        false,
    );
    row(
        format!("fan-out to {} watchers, p99 (ms)", args.watchers),
        a.fanout_p99_ms,
        b.fanout_p99_ms,
        false,
    );
    row(
        format!("API server RSS with {} pods (MiB)", args.pods),
        a.rss_mib,
        b.rss_mib,
        false,
    );
    println!(
        "(the etcd column's RSS is the API server's only; etcd's own memory is not counted, the embedded store's is)"
    );
    Ok(())
}
