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
    /// Look inside this node through its CRI socket, like crictl: pods, ps,
    /// images, pull, exec, logs, inspect, inspectp, inspecti.
    Crictl(skiff_kubelet::crictl::Crictl),
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        // Before any thread exists: `runtime run` forks.
        Some(Sub::Runtime(command)) => return Ok(skiff_runtime::cli::dispatch(command)?),
        Some(Sub::Crictl(args)) => {
            return match skiff_kubelet::crictl::run(args) {
                Ok(code) => Ok(code),
                Err(e) => {
                    eprintln!("crictl: {e}");
                    Ok(ExitCode::FAILURE)
                }
            };
        }
        None => {}
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
