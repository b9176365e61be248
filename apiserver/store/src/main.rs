//! `skiff-store`: serve the embedded etcd-compatible store on its own, or
//! benchmark it against a real etcd (`skiff-store bench`).

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "skiff-store",
    version,
    about = "Skiff's embedded etcd-compatible store (etcd v3 API over redb)"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(flatten)]
    config: skiff_store::Config,

    /// Log level: debug, info, warn or error (or a RUST_LOG filter).
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    log_level: String,

    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the same workload against skiff-store and a real etcd and print both side by side.
    Bench(skiff_store::bench::BenchArgs),
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
            let me = std::env::current_exe().context("cannot find the skiff-store binary")?;
            skiff_store::bench::run(args, &me)
                .await
                .context("benchmark failed")?;
        }
        None => {
            skiff_store::run(cli.config, skiff_proto::shutdown_signal())
                .await
                .context("skiff-store failed")?;
        }
    }
    Ok(())
}
