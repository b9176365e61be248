//! `skiff-proxy`: see the library (`lib.rs`) for where to start.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "skiff-proxy",
    version,
    about = "Makes Services work on this node: load balancing, routes to other nodes' pods, cluster DNS."
)]
struct Cli {
    #[command(flatten)]
    config: skiff_proxy::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn")),
        )
        .init();
    let shutdown = skiff_proto::shutdown_signal();
    skiff_proxy::run(cli.config, shutdown).await?;
    Ok(())
}
