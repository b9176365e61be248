//! The runtime's commands, shared by the `skiff-runtime` binary and the
//! kubelet (which re-executes itself as `skiff-kubelet runtime shim …` and
//! `… runtime run …`, so one binary holds everything a node needs).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// The per-container shim: runs COMMAND, logs its output in the CRI
    /// format, serves attach sessions, records its exit.
    #[command(hide = true)]
    Shim(crate::container::shim::ShimArgs),
    /// Times create+start+wait+delete of the bundle with skiff-runtime, runc and crun.
    Bench {
        #[arg(long, short)]
        bundle: PathBuf,
        #[arg(long, default_value_t = 100)]
        rounds: usize,
    },
}

/// Runs one command. `run` forks: call it from a single-threaded process.
pub fn dispatch(command: Command) -> std::io::Result<ExitCode> {
    match command {
        // Single-threaded here: `run` forks.
        Command::Run {
            bundle,
            pid_file,
            id,
        } => {
            let exit = crate::container::run::run_with_pid_file(&bundle, &id, pid_file.as_deref())?;
            if exit.reason == "OOMKilled" {
                eprintln!("skiff-runtime: {id}: OOMKilled");
            }
            Ok(ExitCode::from(exit.code.clamp(0, 255) as u8))
        }
        Command::Shim(args) => {
            crate::container::shim::shim(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { bundle, rounds } => {
            crate::container::bench::run(&bundle, rounds)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Top {
        #[command(subcommand)]
        command: Command,
    }

    #[test]
    fn the_shim_takes_the_flags_the_runtime_passes() {
        let parse = |args: &[&str]| {
            let all = ["kubelet-runtime", "shim", "--log", "l", "--exit-file", "e"];
            let all = all.iter().chain(args).chain(&["--", "/bin/true"]);
            <Top as clap::Parser>::try_parse_from(all).map(|t| t.command)
        };
        match parse(&["--log-max-size=1024", "--log-max-files=2"]).unwrap() {
            Command::Shim(a) => assert_eq!((a.log_max_size, a.log_max_files), (1024, 2)),
            other => panic!("{other:?}"),
        }
        match parse(&[]).unwrap() {
            Command::Shim(a) => {
                assert_eq!((a.log_max_size, a.log_max_files), (10 << 20, 5));
                assert!(!a.stdin && !a.tty && a.attach_socket.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["--log-max-files=1"]).is_err());
        match parse(&["--stdin", "--stdin-once", "--tty", "--attach-socket=/s"]).unwrap() {
            Command::Shim(a) => {
                assert!(a.stdin && a.stdin_once && a.tty);
                assert_eq!(a.attach_socket, Some(PathBuf::from("/s")));
                assert_eq!(a.command, ["/bin/true"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["--stdin-once"]).is_err(), "stdin-once needs stdin");
    }
}
