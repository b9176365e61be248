//! `skiff-proxy`: see the library (`lib.rs`) for where to start.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "skiff-proxy",
    version,
    about = "Makes Services work on this node: load balancing, routes to other nodes' pods, cluster DNS.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    config: skiff_proxy::Config,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// (root) Throughput and latency direct / nftables / userspace, and rule programming times.
    Bench(skiff_proxy::bench::BenchArgs),
    /// The bench's backend (run by `bench` inside its namespace).
    #[command(hide = true)]
    BenchBackend {
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn")),
        )
        .init();
    match cli.command {
        Some(Cmd::Bench(args)) => skiff_proxy::bench::bench(&args).await?,
        Some(Cmd::BenchBackend { listen }) => skiff_proxy::bench::backend(listen).await?,
        None => {
            let shutdown = skiff_proto::shutdown_signal();
            skiff_proxy::run(cli.config, shutdown).await?;
        }
    }
    Ok(())
}
