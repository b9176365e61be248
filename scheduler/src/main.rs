//! `skiff-scheduler`: see the library (`lib.rs`) for where to start.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "skiff-scheduler",
    version,
    about = "Binds pending pods to nodes, as kube-scheduler does."
)]
struct Cli {
    #[command(flatten)]
    config: skiff_scheduler::Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// scheduler_perf-style benchmark: a real API server (embedded store), N fake nodes and
    /// many pending pods; prints pods scheduled per second and creation→binding latency.
    Bench(skiff_scheduler::bench::BenchConfig),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The bench prints a table; its embedded API server's logs would drown it.
    let default_filter = match cli.command {
        Some(Command::Bench(_)) => "error",
        None => "info,kube=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .init();
    if let Some(Command::Bench(bench)) = cli.command {
        skiff_scheduler::bench::run(bench).await?;
        return Ok(());
    }
    let shutdown = skiff_proto::shutdown_signal();
    skiff_scheduler::run(cli.config, shutdown).await?;
    Ok(())
}
