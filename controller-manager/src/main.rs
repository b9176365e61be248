//! `skiff-controller-manager`: see the library (`lib.rs`) for where to start.

use clap::Parser;
use skiff_controller_manager::Config;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn")),
        )
        .init();
    let config = Config::parse();
    let shutdown = skiff_proto::shutdown_signal();
    skiff_controller_manager::run(config, shutdown).await?;
    Ok(())
}
