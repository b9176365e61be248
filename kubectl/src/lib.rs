//! `skiffctl`: Skiff's kubectl. Same verbs, flags, output, errors and exit
//! codes as kubectl, through kube-rs only, so it works against any
//! Kubernetes API server; plus `skiffctl tree` to show what owns what.
//!
//! Where to start: [`Cli`] is the command tree (clap), [`main`] runs one
//! command and turns its error into kubectl's stderr text and exit code.
//! [`session::Session`] is what a verb gets: the kube-rs client, the
//! namespace in effect and the server's resource types
//! ([`discovery::Catalog`], which resolves `po`, `deploy`,
//! `deployments.apps` as kubectl does). Output formats live in [`print`],
//! manifest reading in [`manifest`], errors in [`error`].
//!
//! To add a verb: create `src/cmd/<verb>.rs` with an `Args` struct
//! (clap `Args`, flags named as kubectl's) and `pub async fn run(session,
//! args) -> Result<()>`, add it to [`cmd`] and a variant to [`Command`],
//! and add a differential case to `tests/differential.rs` comparing it with
//! the real kubectl.
//!
//! `apply` is always server-side apply (field manager `skiffctl`), the
//! equivalent of `kubectl apply --server-side`.

pub mod cmd;
pub mod discovery;
pub mod error;
pub mod kubeconfig;
pub mod manifest;
pub mod print;
pub mod session;

use clap::{Parser, Subcommand};

pub use error::{CtlError, Result};
pub use kubeconfig::ConfigFlags;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "skiffctl",
    about = "skiffctl controls a Kubernetes cluster, as kubectl does.",
    version
)]
pub struct Cli {
    #[command(flatten)]
    pub flags: ConfigFlags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Display one or many resources.
    Get(cmd::get::Args),
    /// Apply a configuration to a resource by file name or stdin (server-side).
    Apply(cmd::apply::Args),
    /// Delete resources by file names, stdin, resources and names, or by label selector.
    Delete(cmd::delete::Args),
    /// Create a resource (namespace, deployment, configmap, secret generic, service clusterip|nodeport).
    Create(cmd::create::Args),
    /// Set a new size for a deployment, replica set or stateful set.
    Scale(cmd::scale::Args),
    /// Update the labels on a resource.
    Label(cmd::label::Args),
    /// Update the annotations on a resource.
    Annotate(cmd::label::Args),
    /// Time `skiffctl get pods` and `apply -f` beside kubectl's.
    Bench(cmd::bench::Args),
    /// Manage the rollout of a Deployment (status, history, undo, restart, pause, resume).
    Rollout(cmd::rollout::Args),
    /// Modify kubeconfig files.
    Config(cmd::config::Args),
    /// Show details of a specific resource or group of resources.
    Describe(cmd::describe::Args),
    /// List events.
    Events(cmd::events::Args),
    /// Wait for a specific condition on one or many resources.
    Wait(cmd::wait::Args),
    /// Print the logs for a container in a pod.
    Logs(cmd::logs::Args),
    /// Copy files and directories to and from containers.
    Cp(cmd::cp::Args),
    /// Forward one or more local ports to a pod.
    PortForward(cmd::port_forward::Args),
    /// Execute a command in a container.
    Exec(cmd::exec::Args),
    /// Update fields of a resource (strategic merge, JSON merge or JSON patch).
    Patch(cmd::patch::Args),
    /// Set specific features on objects (`set image`).
    Set(cmd::set_image::Args),
    /// Mark node as unschedulable.
    Cordon(cmd::cordon::Args),
    /// Mark node as schedulable.
    Uncordon(cmd::cordon::Args),
    /// Print the client and server version information.
    Version(cmd::info::VersionArgs),
    /// Display addresses of the control plane and services with label kubernetes.io/cluster-service=true.
    ClusterInfo,
    /// Print the supported API resources on the server.
    ApiResources(cmd::info::ApiResourcesArgs),
    /// Diff the live version against what apply would make (server-side dry run).
    Diff(cmd::diff::Args),
    /// Edit a resource on the server in $KUBE_EDITOR or $EDITOR.
    Edit(cmd::edit::Args),
    /// Drain node in preparation for maintenance.
    Drain(cmd::drain::Args),
    /// Take a deployment, replica set, pod or service and expose it as a new Service.
    Expose(cmd::expose::Args),
    /// Output shell completion code for bash, zsh or fish (with resource names from the cluster).
    Completion(cmd::completion::Args),
    /// Get the documentation of a resource type or field (from the server's OpenAPI v3).
    Explain(cmd::explain::Args),
    /// Show what a resource owns (Deployment → ReplicaSets → Pods), with status and age.
    Tree(cmd::tree::Args),
}

/// Runs `cli`, printing any error as kubectl does; returns the exit code.
pub async fn main(cli: Cli) -> i32 {
    match run(cli).await {
        Ok(()) => 0,
        Err(e) => {
            // `diff`'s "there are differences" exits 1 with nothing to say.
            let text = e.to_string();
            if !text.is_empty() {
                eprintln!("{text}");
            }
            match e {
                CtlError::Exit(code, _) => code,
                _ => 1,
            }
        }
    }
}

/// Runs one command.
pub async fn run(cli: Cli) -> Result<()> {
    let flags = cli.flags;
    match cli.command {
        Command::Config(args) => cmd::config::run(&flags, args),
        Command::Completion(args) => cmd::completion::run(args),
        Command::Bench(args) => cmd::bench::run(&flags, args),
        Command::Get(args) => cmd::get::run(&session::Session::open(&flags).await?, args).await,
        Command::Apply(args) => cmd::apply::run(&session::Session::open(&flags).await?, args).await,
        Command::Delete(args) => {
            cmd::delete::run(&session::Session::open(&flags).await?, args).await
        }
        Command::Create(args) => {
            cmd::create::run(&session::Session::open(&flags).await?, args).await
        }
        Command::Scale(args) => cmd::scale::run(&session::Session::open(&flags).await?, args).await,
        Command::Label(args) => {
            let s = session::Session::open(&flags).await?;
            cmd::label::run(&s, args, cmd::label::Which::Labels).await
        }
        Command::Annotate(args) => {
            let s = session::Session::open(&flags).await?;
            cmd::label::run(&s, args, cmd::label::Which::Annotations).await
        }
        Command::Rollout(args) => {
            cmd::rollout::run(&session::Session::open(&flags).await?, args).await
        }
        Command::Tree(args) => cmd::tree::run(&session::Session::open(&flags).await?, args).await,
        Command::Patch(args) => cmd::patch::run(&session::Session::open(&flags).await?, args).await,
        Command::Set(args) => {
            cmd::set_image::run(&session::Session::open(&flags).await?, args).await
        }
        Command::Cordon(args) => {
            cmd::cordon::run(&session::Session::open(&flags).await?, args, true).await
        }
        Command::Uncordon(args) => {
            cmd::cordon::run(&session::Session::open(&flags).await?, args, false).await
        }
        Command::Version(args) => cmd::info::version(&flags, args).await,
        Command::ClusterInfo => {
            cmd::info::cluster_info(&session::Session::open(&flags).await?).await
        }
        Command::ApiResources(args) => {
            cmd::info::api_resources(&session::Session::open(&flags).await?, args).await
        }
        Command::Describe(args) => {
            cmd::describe::run(&session::Session::open(&flags).await?, args).await
        }
        Command::Events(args) => {
            cmd::events::run(&session::Session::open(&flags).await?, args).await
        }
        Command::Wait(args) => cmd::wait::run(&session::Session::open(&flags).await?, args).await,
        Command::Logs(args) => cmd::logs::run(&session::Session::open(&flags).await?, args).await,
        Command::Diff(args) => cmd::diff::run(&session::Session::open(&flags).await?, args).await,
        Command::Edit(args) => cmd::edit::run(&session::Session::open(&flags).await?, args).await,
        Command::Drain(args) => cmd::drain::run(&session::Session::open(&flags).await?, args).await,
        Command::Expose(args) => {
            cmd::expose::run(&session::Session::open(&flags).await?, args).await
        }
        Command::Cp(args) => cmd::cp::run(&session::Session::open(&flags).await?, args).await,
        Command::Explain(args) => {
            cmd::explain::run(&session::Session::open(&flags).await?, args).await
        }
        Command::PortForward(args) => {
            cmd::port_forward::run(&session::Session::open(&flags).await?, args).await
        }
        Command::Exec(args) => cmd::exec::run(&session::Session::open(&flags).await?, args).await,
    }
}
