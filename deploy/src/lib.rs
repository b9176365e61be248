//! `skiff`: a whole Skiff cluster on this machine in one command.
//!
//! # Where to start reading
//!
//! - [`Cli`] and [`run`]: the commands — `up`, `down`, `status`, `logs`,
//!   `reset`, `doctor`, `node`, `server`, `join`, `token` (and the hidden `supervise` that `up` starts in the
//!   background).
//! - [`cluster`]: the data dir's layout and the settings a cluster keeps
//!   between `up`s (`cluster.json`).
//! - [`programs`]: which programs run and with which flags — one entry per
//!   program; add a program there.
//! - [`supervise`]: the supervisor: starts the programs in order (the API
//!   server first), restarts one that dies (with back-off), stops them all
//!   on SIGTERM.
//! - [`host`]: the node's host set-up: demo images, the CNI network, the
//!   nftables fence that keeps pod packets on this machine.
//! - [`join`]: join tokens, the server's join service and the worker's
//!   side (CA pinned by the token's hash).
//! - [`cmd`]: one file per command.

pub mod cluster;
pub mod cmd;
pub mod host;
pub mod join;
pub mod programs;
pub mod supervise;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "skiff",
    version,
    about = "Starts and stops a whole Skiff cluster on this machine."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the cluster (or find it running): API server with its embedded store, controller
    /// manager, scheduler, kubelet (and proxy), supervised in the background; returns once
    /// the node is Ready.
    Up(cluster::UpArgs),
    /// Stop the cluster's programs; its state stays in the data dir for the next `up`.
    Down(cluster::DataDir),
    /// Whether the cluster runs, and each program's pid and log.
    Status(cluster::DataDir),
    /// A program's log (apiserver, controller-manager, scheduler, kubelet, proxy, skiff).
    Logs {
        program: String,
        /// Keep printing what is appended.
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        data: cluster::DataDir,
    },
    /// Stop the cluster and remove everything it created: containers, mounts, cgroups,
    /// network, nftables table, the data dir.
    Reset(cluster::DataDir),
    /// Do to one node of a `skiff up --nodes N` cluster what happens to a lab VM: stop (power
    /// off), start (boot), partition (cut off the network), heal (plug back in).
    Node(cmd::node::NodeArgs),
    /// Start the control plane of a lab of several machines (and this machine's node): the API
    /// on every address, advertised at --node-ip, and a join service; prints the join command.
    Server(cluster::UpArgs),
    /// Make this machine a worker of a `skiff server`: verify the server by the token's CA
    /// hash, get a node certificate, run the kubelet and proxy.
    Join(cmd::join::JoinArgs),
    /// The server's join tokens: create (printed once), list, delete (revoke).
    #[command(subcommand)]
    Token(cmd::token::TokenCommand),
    /// Check this machine (and the running cluster) for the usual reasons a node does not work.
    Doctor(cluster::DataDir),
    /// Time `skiff up` to a Ready node and measure the idle cluster's memory, on a fresh
    /// temporary cluster (as root, with the binaries built in release mode).
    Bench,
    /// The supervisor `up` starts in the background.
    #[command(hide = true)]
    Supervise(cluster::UpArgs),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

impl Error {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Runs one command.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Up(args) => cmd::up::up(&args),
        Command::Supervise(args) => cmd::up::supervise(&args),
        Command::Down(d) => cmd::down::down(&d.layout()?),
        Command::Status(d) => cmd::status::status(&d.layout()?),
        Command::Logs {
            program,
            follow,
            data,
        } => cmd::logs::logs(&data.layout()?, &program, follow),
        Command::Reset(d) => cmd::reset::reset(&d.layout()?),
        Command::Node(a) => cmd::node::node(&a),
        Command::Server(a) => cmd::server::server(&a),
        Command::Join(a) => cmd::join::join(&a),
        Command::Token(t) => cmd::token::token(&t),
        Command::Bench => cmd::bench::bench(),
        Command::Doctor(d) => cmd::doctor::doctor(&d),
    }
}

/// Where the other programs are: next to `skiff` itself (one `cargo build`
/// puts them all in `target/<profile>/`).
pub fn bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(Error::io("where is skiff"))?;
    Ok(exe.parent().map(PathBuf::from).unwrap_or_default())
}
