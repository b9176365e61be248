//! `skiff-store bench`: the same workload against skiff-store and a real etcd
//! on this machine, printed side by side.
//!
//! Both servers run as separate processes with fresh data directories on the
//! same disk and default durability (every acknowledged write is synced),
//! and the same client code (the `etcd-client` crate) drives both. Rows:
//!
//! - put throughput with 1, 16 and 256 concurrent clients (over at most 16
//!   connections, like etcd's own benchmark tool shares connections);
//! - latency of a single-key range (a `get`), one request at a time;
//! - put-to-watch latency: from sending a put to a watcher receiving its event;
//! - resident memory of the server after the workload, and its peak.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{Client, WatchOptions};

use crate::harness::{Binaries, Kind, ServerProcess, ServerSettings};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// How long each throughput row runs.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Value size of every put, in bytes.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Requests measured for each latency row.
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    /// Rounds, alternating skiff-store and etcd; each row reports the median.
    /// Shared machines are noisy: one round is not a measurement.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// The etcd binary to compare with.
    #[arg(long, env = "SKIFF_ETCD_BIN", default_value = "etcd")]
    pub etcd: PathBuf,
    /// Only benchmark skiff-store (when no etcd is installed).
    #[arg(long)]
    pub skip_etcd: bool,
    /// A flag for the skiff-store under test (repeatable), e.g.
    /// `--store-arg=--backend-cache-bytes=16777216`.
    #[arg(long = "store-arg", allow_hyphen_values = true)]
    pub store_args: Vec<String>,
}

/// One server's figures.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub put_throughput: Vec<(usize, f64)>,
    pub range_p50_us: f64,
    pub range_p99_us: f64,
    pub watch_p50_us: f64,
    pub watch_p99_us: f64,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
}

const CLIENT_COUNTS: [usize; 3] = [1, 16, 256];
const MAX_CONNECTIONS: usize = 16;

pub async fn run(args: BenchArgs, skiff_store: &Path) -> anyhow::Result<()> {
    let binaries = Binaries {
        skiff_store: skiff_store.to_path_buf(),
        etcd: args.etcd.clone(),
    };
    println!(
        "skiff-store bench: {} per throughput row, {}-byte values, {} samples per latency row",
        humantime::format_duration(args.duration),
        args.value_size,
        args.samples
    );
    println!(
        "machine: {} cores; data directories under {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::temp_dir().display()
    );
    println!(
        "{} rounds, alternating the servers; every figure is the median of its row",
        args.rounds.max(1)
    );
    let mut skiff_runs = Vec::new();
    let mut etcd_runs = Vec::new();
    for round in 1..=args.rounds.max(1) {
        eprintln!("round {round}:");
        skiff_runs.push(measure(Kind::SkiffStore, &binaries, &args).await?);
        if !args.skip_etcd {
            etcd_runs.push(measure(Kind::Etcd, &binaries, &args).await?);
        }
    }
    let skiff = Figures::median(&skiff_runs);
    let etcd = (!etcd_runs.is_empty()).then(|| Figures::median(&etcd_runs));
    let etcd_version = etcd_version(&args.etcd);
    print_table(&skiff, etcd.as_ref(), &etcd_version);
    Ok(())
}

impl Figures {
    /// Row by row, the median of several rounds.
    fn median(runs: &[Figures]) -> Figures {
        fn mid(mut values: Vec<f64>) -> f64 {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        }
        let of = |f: fn(&Figures) -> f64| mid(runs.iter().map(f).collect());
        let put_throughput = (0..runs[0].put_throughput.len())
            .map(|i| {
                (
                    runs[0].put_throughput[i].0,
                    mid(runs.iter().map(|r| r.put_throughput[i].1).collect()),
                )
            })
            .collect();
        Figures {
            put_throughput,
            range_p50_us: of(|f| f.range_p50_us),
            range_p99_us: of(|f| f.range_p99_us),
            watch_p50_us: of(|f| f.watch_p50_us),
            watch_p99_us: of(|f| f.watch_p99_us),
            rss_kib: of(|f| f.rss_kib as f64) as u64,
            peak_rss_kib: of(|f| f.peak_rss_kib as f64) as u64,
        }
    }
}

async fn measure(kind: Kind, binaries: &Binaries, args: &BenchArgs) -> anyhow::Result<Figures> {
    eprintln!("starting {} ...", kind.name());
    let settings = match kind {
        Kind::SkiffStore => ServerSettings {
            skiff_store_args: args.store_args.clone(),
            ..ServerSettings::default()
        },
        Kind::Etcd => ServerSettings::default(),
    };
    let server = ServerProcess::start(kind, binaries, settings).await?;
    let mut figures = Figures::default();
    let value = vec![b'x'; args.value_size];
    for clients in CLIENT_COUNTS {
        let rate = put_throughput(&server, clients, args.duration, &value).await?;
        eprintln!("  {}: put with {clients} clients: {rate:.0}/s", kind.name());
        figures.put_throughput.push((clients, rate));
    }
    let (p50, p99) = range_latency(&server, args.samples, &value).await?;
    figures.range_p50_us = p50;
    figures.range_p99_us = p99;
    let (p50, p99) = watch_latency(&server, args.samples, &value).await?;
    figures.watch_p50_us = p50;
    figures.watch_p99_us = p99;
    eprintln!(
        "  {}: range p50 {:.0}µs p99 {:.0}µs, put-to-watch p50 {:.0}µs p99 {:.0}µs",
        kind.name(),
        figures.range_p50_us,
        figures.range_p99_us,
        figures.watch_p50_us,
        figures.watch_p99_us
    );

    let (rss, peak) = server.memory_kib().unwrap_or((0, 0));
    figures.rss_kib = rss;
    figures.peak_rss_kib = peak;
    Ok(figures)
}

async fn connections(server: &ServerProcess, count: usize) -> anyhow::Result<Vec<Client>> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(server.client().await?);
    }
    Ok(out)
}

async fn put_throughput(
    server: &ServerProcess,
    clients: usize,
    duration: Duration,
    value: &[u8],
) -> anyhow::Result<f64> {
    let conns = connections(server, clients.min(MAX_CONNECTIONS)).await?;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let mut client = conns[i % conns.len()].clone();
        let (done, stop, value) = (done.clone(), stop.clone(), value.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                client
                    .put(format!("bench/put/{clients}/{i}/{n}"), value.clone(), None)
                    .await?;
                done.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            Ok::<_, etcd_client::Error>(())
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let measured = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    for task in tasks {
        task.await??;
    }
    Ok(measured as f64 / elapsed.as_secs_f64())
}

async fn range_latency(
    server: &ServerProcess,
    samples: usize,
    value: &[u8],
) -> anyhow::Result<(f64, f64)> {
    let mut client = server.client().await?;
    client.put("bench/range/key", value.to_vec(), None).await?;
    for _ in 0..100 {
        client.get("bench/range/key", None).await?;
    }
    let mut took = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        let resp = client.get("bench/range/key", None).await?;
        took.push(start.elapsed());
        anyhow::ensure!(
            resp.kvs().len() == 1,
            "the range returned {} keys",
            resp.kvs().len()
        );
    }
    Ok(percentiles(took))
}

async fn watch_latency(
    server: &ServerProcess,
    samples: usize,
    value: &[u8],
) -> anyhow::Result<(f64, f64)> {
    let mut writer = server.client().await?;
    let mut watcher = server.client().await?;
    let mut stream = watcher
        .watch("bench/watch/", Some(WatchOptions::new().with_prefix()))
        .await?;
    let mut took = Vec::with_capacity(samples);
    for i in 0..samples + 50 {
        let key = format!("bench/watch/{i}");
        let start = Instant::now();
        writer.put(key.clone(), value.to_vec(), None).await?;
        // Wait for this put's event (events arrive in order).
        'wait: loop {
            let Some(resp) = stream.message().await? else {
                anyhow::bail!("the watch ended")
            };
            for event in resp.events() {
                if event.kv().map(|kv| kv.key()) == Some(key.as_bytes()) {
                    break 'wait;
                }
            }
        }
        if i >= 50 {
            took.push(start.elapsed());
        }
    }
    Ok(percentiles(took))
}

/// (p50, p99) in microseconds.
fn percentiles(mut took: Vec<Duration>) -> (f64, f64) {
    took.sort_unstable();
    let at = |q: f64| {
        let i = ((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1;
        took[i].as_secs_f64() * 1e6
    };
    (at(0.50), at(0.99))
}

fn etcd_version(etcd: &Path) -> String {
    std::process::Command::new(etcd)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| {
            text.lines()
                .next()
                .map(|l| l.trim_start_matches("etcd Version:").trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn print_table(skiff: &Figures, etcd: Option<&Figures>, etcd_version: &str) {
    println!();
    println!(
        "{:<34} {:>14} {:>14} {:>12}  better",
        "workload",
        "skiff-store",
        format!("etcd {etcd_version}"),
        "skiff/etcd"
    );
    let row = |name: &str, ours: f64, theirs: Option<f64>, higher_is_better: bool| match theirs {
        Some(theirs) if theirs > 0.0 => {
            let ratio = ours / theirs;
            let ours_better = if higher_is_better {
                ratio >= 1.0
            } else {
                ratio <= 1.0
            };
            println!(
                "{name:<34} {ours:>14.1} {theirs:>14.1} {ratio:>11.2}x  {}",
                if ours_better { "skiff-store" } else { "etcd" }
            );
        }
        _ => println!("{name:<34} {ours:>14.1} {:>14} {:>12}", "-", "-"),
    };
    for (i, (clients, rate)) in skiff.put_throughput.iter().enumerate() {
        let theirs = etcd.and_then(|e| e.put_throughput.get(i)).map(|(_, r)| *r);
        row(
            &format!("put, {clients} clients (ops/s)"),
            *rate,
            theirs,
            true,
        );
    }
    row(
        "range latency p50 (µs)",
        skiff.range_p50_us,
        etcd.map(|e| e.range_p50_us),
        false,
    );
    row(
        "range latency p99 (µs)",
        skiff.range_p99_us,
        etcd.map(|e| e.range_p99_us),
        false,
    );
    row(
        "put-to-watch latency p50 (µs)",
        skiff.watch_p50_us,
        etcd.map(|e| e.watch_p50_us),
        false,
    );
    row(
        "put-to-watch latency p99 (µs)",
        skiff.watch_p99_us,
        etcd.map(|e| e.watch_p99_us),
        false,
    );
    row(
        "resident memory after (MiB)",
        skiff.rss_kib as f64 / 1024.0,
        etcd.map(|e| e.rss_kib as f64 / 1024.0),
        false,
    );
    row(
        "peak resident memory (MiB)",
        skiff.peak_rss_kib as f64 / 1024.0,
        etcd.map(|e| e.peak_rss_kib as f64 / 1024.0),
        false,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_row_by_row() {
        let run = |put: f64, p50: f64| Figures {
            put_throughput: vec![(1, put)],
            range_p50_us: p50,
            ..Figures::default()
        };
        let median = Figures::median(&[run(10.0, 300.0), run(30.0, 100.0), run(20.0, 200.0)]);
        assert_eq!(median.put_throughput, vec![(1, 20.0)]);
        assert_eq!(median.range_p50_us, 200.0);
    }

    #[test]
    fn percentiles_pick_ranks() {
        let took: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentiles(took), (50.0, 99.0));
        assert_eq!(percentiles(vec![Duration::from_micros(7)]), (7.0, 7.0));
    }
}
