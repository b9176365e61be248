//! `skiff-kubelet`: see the library (`lib.rs`) for where to start.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Skiff's node agent: registers this machine as a Node and keeps it alive.
#[derive(Debug, Parser)]
#[command(name = "skiff-kubelet", version)]
struct Cli {
    #[command(flatten)]
    config: skiff_kubelet::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn")),
        )
        .init();
    let cli = Cli::parse();
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    skiff_kubelet::run(cli.config, shutdown).await?;
    Ok(())
}
