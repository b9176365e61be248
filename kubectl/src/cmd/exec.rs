//! `exec [-i] [-t] [-c CONTAINER] POD -- COMMAND [ARG…]`: a command in a
//! running container, over kube-rs's WebSocket exec (`v5.channel.k8s.io`),
//! with kubectl's defaults, messages and exit codes: the remote exit code
//! becomes ours (`command terminated with exit code 7`). With `-t` the
//! local terminal goes raw and its size follows SIGWINCH.

use std::io::IsTerminal;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, TerminalSize};
use tokio::io::AsyncWriteExt;

use crate::error::{CtlError, Result, from_kube, usage};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// POD, pod/POD or TYPE/NAME of a workload (one of its pods).
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::pods))]
    pub pod: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
    /// Container name; default: the `kubectl.kubernetes.io/default-container`
    /// annotation, else the first container.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass stdin to the container.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Stdin is a TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Only print output from the remote session.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// The container to run in, as kubectl picks it; the note it prints when
/// it had to choose.
pub fn pick_container(pod: &Pod, asked: Option<&str>) -> Result<(String, Option<String>)> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let names: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
        .collect();
    if let Some(c) = asked {
        return Ok((c.to_string(), None));
    }
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
        .filter(|c| names.contains(c));
    let Some(first) = annotated.or(names.first()) else {
        return Err(usage(format!("pod {name} does not have a container")));
    };
    let note = (annotated.is_none() && names.len() > 1).then(|| {
        format!(
            "Defaulted container \"{first}\" out of: {}",
            names.join(", ")
        )
    });
    Ok((first.clone(), note))
}

/// The exit code a finished session's status means: `Ok(0)`, the remote
/// command's code for `NonZeroExitCode`, or the error it reports.
pub fn exit_code(
    status: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
) -> Result<i32> {
    let Some(s) = status else { return Ok(0) };
    if s.status.as_deref() != Some("Failure") {
        return Ok(0);
    }
    if s.reason.as_deref() == Some("NonZeroExitCode") {
        let code = s
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.parse::<i32>().ok())
            .unwrap_or(1);
        return Err(CtlError::Exit(
            code,
            format!("command terminated with exit code {code}"),
        ));
    }
    Err(usage(
        s.message.clone().unwrap_or_else(|| "exec failed".into()),
    ))
}

/// The local terminal's size, as `stty size` reads it from stdin.
fn terminal_size() -> Option<TerminalSize> {
    let out = std::process::Command::new("stty")
        .arg("size")
        .stdin(std::process::Stdio::inherit())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
    let (height, width) = (it.next()??, it.next()??);
    Some(TerminalSize { width, height })
}

/// Raw mode on the local terminal for the session; restored when dropped.
struct RawTerminal(nix::sys::termios::Termios);

impl RawTerminal {
    fn enter() -> Option<RawTerminal> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.0,
        );
    }
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    if args.command.is_empty() {
        return Err(usage(
            "you must specify at least one command for the container",
        ));
    }
    // POD, pod/POD, or a workload (deploy/web) standing for one of its pods.
    let picked = super::logs::pod_for(session, &args.pod, false).await?;
    let name = picked["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pods: Api<Pod> = Api::namespaced(session.conn.client.clone(), session.namespace());
    let pod = pods
        .get(&name)
        .await
        .map_err(|e| from_kube(e, &session.conn.server))?;
    if let Some(phase @ ("Succeeded" | "Failed")) =
        pod.status.as_ref().and_then(|s| s.phase.as_deref())
    {
        return Err(usage(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    let (container, note) = pick_container(&pod, args.container.as_deref())?;
    if let Some(note) = note
        && !args.quiet
    {
        eprintln!("{note}");
    }
    let mut tty = args.tty;
    if tty && !std::io::stdin().is_terminal() {
        if !args.quiet {
            eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
        }
        tty = false;
    }
    let params = AttachParams {
        container: Some(container),
        stdin: args.stdin,
        stdout: true,
        stderr: !tty,
        tty,
        ..AttachParams::default()
    };
    let size = tty.then(terminal_size).flatten();
    let mut process = pods
        .exec(&name, args.command.clone(), &params)
        .await
        .map_err(|e| from_kube(e, &session.conn.server))?;
    let raw = tty.then(RawTerminal::enter).flatten();
    // The size now, then again on every SIGWINCH, as kubectl does.
    let resizes = match (size, process.terminal_size()) {
        (Some(size), Some(mut sender)) => Some(tokio::spawn(async move {
            use futures::SinkExt;
            use tokio::signal::unix::{SignalKind, signal};
            if sender.send(size).await.is_err() {
                return;
            }
            let Ok(mut winch) = signal(SignalKind::window_change()) else {
                return;
            };
            while winch.recv().await.is_some() {
                if let Some(size) = terminal_size()
                    && sender.send(size).await.is_err()
                {
                    return;
                }
            }
        })),
        _ => None,
    };
    let input = process.stdin().map(|mut remote| {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut remote).await;
            // Our stdin ended: the command's ends too.
            let _ = remote.shutdown().await;
        })
    });
    let output = process.stdout().map(|mut remote| {
        tokio::spawn(async move {
            let mut out = tokio::io::stdout();
            let _ = tokio::io::copy(&mut remote, &mut out).await;
            let _ = out.flush().await;
        })
    });
    let errors = process.stderr().map(|mut remote| {
        tokio::spawn(async move {
            let mut err = tokio::io::stderr();
            let _ = tokio::io::copy(&mut remote, &mut err).await;
            let _ = err.flush().await;
        })
    });
    let status = match process.take_status() {
        Some(s) => s.await,
        None => None,
    };
    for task in [output, errors].into_iter().flatten() {
        let _ = task.await;
    }
    for task in [input, resizes].into_iter().flatten() {
        task.abort();
    }
    drop(raw);
    exit_code(status.as_ref()).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};

    fn pod(containers: &[&str], default: Option<&str>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web",
                "annotations": default.map(|d| serde_json::json!({"kubectl.kubernetes.io/default-container": d})),
            },
            "spec": {"containers": containers.iter().map(|c| serde_json::json!({"name": c})).collect::<Vec<_>>()},
        }))
        .unwrap()
    }

    #[test]
    fn the_container_is_picked_as_kubectl_picks_it() {
        let one = pick_container(&pod(&["app"], None), None).unwrap();
        assert_eq!(one, ("app".to_string(), None));
        let (c, note) = pick_container(&pod(&["app", "side"], None), None).unwrap();
        assert_eq!(c, "app");
        assert_eq!(
            note.as_deref(),
            Some("Defaulted container \"app\" out of: app, side")
        );
        let annotated = pick_container(&pod(&["app", "side"], Some("side")), None).unwrap();
        assert_eq!(annotated, ("side".to_string(), None));
        let asked = pick_container(&pod(&["app", "side"], None), Some("side")).unwrap();
        assert_eq!(asked, ("side".to_string(), None));
        assert!(pick_container(&pod(&[], None), None).is_err());
    }

    #[test]
    fn the_status_becomes_the_exit_code() {
        assert_eq!(exit_code(None).unwrap(), 0);
        let ok = Status {
            status: Some("Success".into()),
            ..Default::default()
        };
        assert_eq!(exit_code(Some(&ok)).unwrap(), 0);
        let seven = Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some("7".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        match exit_code(Some(&seven)) {
            Err(CtlError::Exit(7, m)) => assert_eq!(m, "command terminated with exit code 7"),
            other => panic!("{other:?}"),
        }
        let broken = Status {
            status: Some("Failure".into()),
            reason: Some("InternalError".into()),
            message: Some("no sh".into()),
            ..Default::default()
        };
        assert_eq!(
            exit_code(Some(&broken)).unwrap_err().to_string(),
            "error: no sh"
        );
    }
}
