//! `skiff`: see the library (`lib.rs`) for where to start.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = skiff_deploy::Cli::parse();
    match skiff_deploy::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skiff: {e:#}");
            ExitCode::from(1)
        }
    }
}
