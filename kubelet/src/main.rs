//! `skiff-kubelet`: see the library (`lib.rs`) for where to start.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Skiff's node agent: registers this machine as a Node and runs its pods.
#[derive(Debug, Parser)]
#[command(
    name = "skiff-kubelet",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    config: skiff_kubelet::Config,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// The embedded runtime's own commands (the per-container shim re-executes
    /// this binary with them).
    #[command(hide = true, subcommand)]
    Runtime(skiff_runtime::cli::Command),
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(Sub::Runtime(command)) = cli.command {
        // Before any thread exists: `runtime run` forks.
        return Ok(skiff_runtime::cli::dispatch(command)?);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn")),
        )
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let shutdown = skiff_proto::shutdown_signal();
            skiff_kubelet::run(cli.config, shutdown).await
        })?;
    Ok(ExitCode::SUCCESS)
}
