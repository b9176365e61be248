//! `skiff-apiserver`: see the crate docs.

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "skiff-apiserver",
    version,
    about = "Skiff's Kubernetes API server (over etcd, or its embedded store)"
)]
struct Cli {
    #[command(flatten)]
    config: skiff_apiserver::Config,

    /// Log level (debug, info, warn, error) or a RUST_LOG filter.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log_level: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log_level))
        .with_writer(std::io::stderr)
        .init();
    skiff_apiserver::run(cli.config, shutdown_signal())
        .await
        .context("skiff-apiserver failed")
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
