//! `skiff-apiserver`: see the crate docs. `skiff-apiserver bench` compares
//! the server over its embedded store and over a real etcd.

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "skiff-apiserver",
    version,
    about = "Skiff's Kubernetes API server (over etcd, or its embedded store)"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(flatten)]
    config: skiff_apiserver::Config,

    /// Log level (debug, info, warn, error) or a RUST_LOG filter.
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    log_level: String,

    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the same workload over the embedded store and a real etcd, side by side.
    Bench(skiff_apiserver::bench::BenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log_level))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Some(Cmd::Bench(args)) => {
            let me = std::env::current_exe().context("cannot find the skiff-apiserver binary")?;
            skiff_apiserver::bench::run(args, &me).await
        }
        None => skiff_apiserver::run(cli.config, skiff_proto::shutdown_signal())
            .await
            .context("skiff-apiserver failed"),
    }
}
