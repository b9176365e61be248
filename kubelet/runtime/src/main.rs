//! `skiff-runtime`: the embedded runtime's command line, for tests,
//! benchmarks and curious students — `run` takes an OCI bundle like `runc
//! run` does; `bench` times it against runc and crun. See the library
//! (`lib.rs`) for where to start.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "skiff-runtime", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the bundle's container until it exits; exits with its code.
    Run {
        /// The bundle directory (config.json and the rootfs).
        #[arg(long, short, default_value = ".")]
        bundle: PathBuf,
        /// Where to write the container's PID 1 (as the host sees it).
        #[arg(long)]
        pid_file: Option<PathBuf>,
        /// The container id (names its cgroup when the spec has no cgroupsPath).
        id: String,
    },
    /// The per-container shim: runs COMMAND, logs its output in the CRI format,
    /// records its exit.
    #[command(hide = true)]
    Shim {
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        exit_file: PathBuf,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Times create+start+wait+delete of the bundle with skiff-runtime, runc and crun.
    Bench {
        #[arg(long, short)]
        bundle: PathBuf,
        #[arg(long, default_value_t = 100)]
        rounds: usize,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        // Single-threaded here: `run` forks.
        Command::Run {
            bundle,
            pid_file,
            id,
        } => {
            let exit = skiff_runtime::container::run::run_with_pid_file(
                &bundle,
                &id,
                pid_file.as_deref(),
            )?;
            if exit.reason == "OOMKilled" {
                eprintln!("skiff-runtime: {id}: OOMKilled");
            }
            Ok(ExitCode::from(exit.code.clamp(0, 255) as u8))
        }
        Command::Shim {
            log,
            exit_file,
            command,
        } => {
            let (program, args) = command.split_first().expect("clap requires a command");
            skiff_runtime::container::shim::shim(program.as_ref(), args, &log, &exit_file)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { bundle, rounds } => {
            skiff_runtime::container::bench::run(&bundle, rounds)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
