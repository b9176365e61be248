//! The `skiff-runtime` command line, shaped like runc's so a test or a
//! benchmark can swap one for the other on the same bundle:
//! `skiff-runtime [--root DIR] create|start|state|kill|delete|run|list …`,
//! plus `bench` (against runc and crun) and the hidden `shim`. runc's
//! global `--log`, `--log-format` and `--systemd-cgroup` are accepted and
//! ignored, as callers written for runc pass them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nix::sys::signal::Signal;

use super::run::DEFAULT_ROOT;
use super::{Engine, Error};

#[derive(Debug, Parser)]
#[command(
    name = "skiff-runtime",
    version,
    about = "A small OCI runtime (runc's commands)"
)]
pub struct Cli {
    /// Where container state lives.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Ignored (runc compatibility).
    #[arg(long, global = true, hide = true)]
    pub log: Option<PathBuf>,
    /// Ignored (runc compatibility).
    #[arg(long, global = true, hide = true)]
    pub log_format: Option<String>,
    /// Ignored (runc compatibility).
    #[arg(long, global = true, hide = true)]
    pub systemd_cgroup: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sets the container up; its process waits for `start`.
    Create {
        #[arg(long, short, default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        pid_file: Option<PathBuf>,
        id: String,
    },
    /// Lets a created container's process run.
    Start { id: String },
    /// Prints the container's state as JSON.
    State { id: String },
    /// Sends a signal (default SIGTERM; `KILL`, `SIGKILL` and `9` all work).
    Kill {
        id: String,
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Signal, then SIGKILL after the timeout; waits until it has stopped.
    Stop {
        id: String,
        #[arg(long, default_value = "TERM")]
        signal: String,
        #[arg(long, default_value_t = 10)]
        timeout_secs: u64,
    },
    /// Removes the container (a running one only with --force).
    Delete {
        #[arg(long, short)]
        force: bool,
        id: String,
    },
    /// create + start + wait + delete; exits with the container's code.
    Run {
        #[arg(long, short, default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        pid_file: Option<PathBuf>,
        id: String,
    },
    /// Lists the containers.
    List,
    /// Times create+start+wait+delete with this runtime, runc and crun.
    Bench {
        /// The bundle; default: a busybox rootfs running /bin/true.
        #[arg(long, short)]
        bundle: Option<PathBuf>,
        #[arg(long, default_value_t = 100)]
        rounds: usize,
    },
    /// One runtime's bench loop (run by `bench` as a child process, so its
    /// peak memory is that runtime's alone).
    #[command(hide = true)]
    BenchOne {
        #[arg(long)]
        runtime: PathBuf,
        #[arg(long)]
        bundle: PathBuf,
        #[arg(long)]
        rounds: usize,
        #[arg(long)]
        state_root: PathBuf,
    },
    /// The per-container shim: runs COMMAND, logs its output in the CRI
    /// format, serves attach sessions, records its exit.
    #[command(hide = true)]
    Shim(crate::container::shim::ShimArgs),
}

/// A signal by name (`TERM`, `SIGTERM`) or number.
pub fn parse_signal(s: &str) -> Result<Signal, String> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|e| format!("signal {s}: {e}"));
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    Signal::from_str(&name).map_err(|_| format!("unknown signal {s:?}"))
}

/// Runs one command; what `main` returns. Single-threaded: create and run
/// fork.
pub fn dispatch(cli: Cli) -> Result<ExitCode, Error> {
    let engine = Engine::new(&cli.root);
    let print = |v: &dyn erased::Json| println!("{}", v.json());
    match cli.command {
        Command::Create {
            bundle,
            pid_file,
            id,
        } => {
            engine.create(&id, &bundle, pid_file.as_deref())?;
        }
        Command::Start { id } => {
            engine.start(&id)?;
        }
        Command::State { id } => print(&engine.state(&id)?),
        Command::Kill { id, signal } => {
            let sig = parse_signal(&signal).map_err(Error::Init)?;
            engine.kill(&id, sig)?;
        }
        Command::Stop {
            id,
            signal,
            timeout_secs,
        } => {
            let sig = parse_signal(&signal).map_err(Error::Init)?;
            print(&engine.stop(&id, sig, Duration::from_secs(timeout_secs))?);
        }
        Command::Delete { force, id } => {
            engine.delete(&id, force)?;
        }
        Command::Run {
            bundle,
            pid_file,
            id,
        } => {
            let exit = engine.run(&id, &bundle, pid_file.as_deref())?;
            if exit.reason == "OOMKilled" {
                eprintln!("skiff-runtime: {id}: OOMKilled");
            }
            return Ok(ExitCode::from(exit.code.clamp(0, 255) as u8));
        }
        Command::List => print(&engine.list()?),
        Command::Bench { bundle, rounds } => {
            super::bench::main(bundle.as_deref(), rounds)
                .map_err(|e| Error::Bench(e.to_string()))?;
        }
        Command::BenchOne {
            runtime,
            bundle,
            rounds,
            state_root,
        } => {
            super::bench::one(&runtime, &bundle, rounds, &state_root)
                .map_err(|e| Error::Bench(e.to_string()))?;
        }
        Command::Shim(args) => {
            super::shim::shim(&args).map_err(|e| Error::io(&args.log, e))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Printing any serialisable value as JSON from one closure.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string_pretty(self).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        for (s, want) in [
            ("TERM", Signal::SIGTERM),
            ("SIGKILL", Signal::SIGKILL),
            ("kill", Signal::SIGKILL),
            ("9", Signal::SIGKILL),
            ("15", Signal::SIGTERM),
        ] {
            assert_eq!(parse_signal(s), Ok(want), "{s}");
        }
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn runc_style_arguments_parse() {
        let cli = Cli::try_parse_from([
            "skiff-runtime",
            "--root",
            "/tmp/r",
            "--log",
            "/dev/null",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "c1",
        ])
        .unwrap();
        assert_eq!(cli.root, PathBuf::from("/tmp/r"));
        assert!(matches!(cli.command, Command::Create { ref id, .. } if id == "c1"));
        let cli = Cli::try_parse_from(["skiff-runtime", "delete", "--force", "c1", "--root", "/x"])
            .unwrap();
        assert!(matches!(cli.command, Command::Delete { force: true, .. }));
        assert_eq!(cli.root, PathBuf::from("/x"));
    }
}
