//! `skiff-runtime`: the embedded runtime's command line, for tests,
//! benchmarks and curious students — runc's commands (`create`, `start`,
//! `state`, `kill`, `delete`, `run`) on OCI bundles, and `bench` against
//! runc and crun. The logic is in the library ([`skiff_runtime::container`]).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // No async runtime, no threads: `create` and `run` fork.
    let cli = skiff_runtime::container::cli::Cli::parse();
    match skiff_runtime::container::cli::dispatch(cli).map_err(anyhow::Error::from) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skiff-runtime: {e:#}");
            ExitCode::FAILURE
        }
    }
}
