//! `skiff-runtime`: the embedded runtime's command line, for tests,
//! benchmarks and curious students — `run` takes an OCI bundle like `runc
//! run` does; `bench` times it against runc and crun. See the library
//! (`lib.rs`) for where to start.

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "skiff-runtime", version)]
struct Cli {
    #[command(subcommand)]
    command: skiff_runtime::cli::Command,
}

fn main() -> anyhow::Result<ExitCode> {
    // No async runtime here: `run` forks and must be single-threaded.
    Ok(skiff_runtime::cli::dispatch(Cli::parse().command)?)
}
