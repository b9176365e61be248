//! `rollout status` (kubectl's Deployment status viewer, same messages)
//! and `rollout restart` (the `kubectl.kubernetes.io/restartedAt`
//! template annotation); `history`, `undo`, `pause` and `resume` are in
//! [`super::rollout_history`]. Deployments only.

use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Result, usage};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Show the status of the rollout.
    Status {
        /// deploy/NAME or deploy NAME
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
        resources: Vec<String>,
        /// Return after one status line instead of waiting.
        #[arg(short = 'w', long, default_value = "true", num_args = 0..=1, default_missing_value = "true")]
        watch: String,
    },
    /// Restart a resource.
    Restart {
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
        resources: Vec<String>,
    },
    /// View rollout history.
    History {
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
        resources: Vec<String>,
    },
    /// Undo a previous rollout.
    Undo {
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
        resources: Vec<String>,
        /// The revision to roll back to (0: the previous one).
        #[arg(long, default_value_t = 0)]
        to_revision: i64,
    },
    /// Mark the provided resource as paused.
    Pause {
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
        resources: Vec<String>,
    },
    /// Resume a paused resource.
    Resume {
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
        resources: Vec<String>,
    },
}

/// One step of kubectl's DeploymentStatusViewer: the message and whether
/// the rollout is done; an error for an exceeded progress deadline.
pub fn deployment_status(d: &Value) -> Result<(String, bool)> {
    let name = d["metadata"]["name"].as_str().unwrap_or_default();
    let generation = d["metadata"]["generation"].as_i64().unwrap_or(0);
    let s = &d["status"];
    let observed = s["observedGeneration"].as_i64().unwrap_or(0);
    if generation > observed {
        return Ok((
            "Waiting for deployment spec update to be observed...".into(),
            false,
        ));
    }
    let deadline = s["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
    if deadline {
        return Err(usage(format!(
            "deployment \"{name}\" exceeded its progress deadline"
        )));
    }
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    let (updated, replicas, available) = (
        n(&s["updatedReplicas"]),
        n(&s["replicas"]),
        n(&s["availableReplicas"]),
    );
    if let Some(want) = d["spec"]["replicas"].as_i64()
        && updated < want
    {
        return Ok((
            format!(
                "Waiting for deployment \"{name}\" rollout to finish: {updated} out of {want} new replicas have been updated..."
            ),
            false,
        ));
    }
    if replicas > updated {
        return Ok((
            format!(
                "Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...",
                replicas - updated
            ),
            false,
        ));
    }
    if available < updated {
        return Ok((
            format!(
                "Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."
            ),
            false,
        ));
    }
    Ok((
        format!("deployment \"{name}\" successfully rolled out"),
        true,
    ))
}

fn one(session: &Session, resources: &[String]) -> Result<(String, String, String)> {
    let (targets, _) = super::targets::parse(session, resources)?;
    let t = targets
        .first()
        .filter(|t| t.names.len() == 1 && targets.len() == 1)
        .ok_or_else(|| usage("rollout needs exactly one resource, e.g. deploy/web"))?;
    if t.resource.kind != "Deployment" {
        return Err(usage(format!(
            "no status viewer has been implemented for {}",
            t.resource.kind
        )));
    }
    Ok((
        t.resource.path(session.ns_for(&t.resource, false)),
        t.names[0].clone(),
        t.resource.kind_group(),
    ))
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    match args.command {
        Sub::Status { resources, watch } => {
            let (path, name, _) = one(session, &resources)?;
            let mut last = String::new();
            loop {
                let d = session.get_json(&format!("{path}/{name}")).await?;
                let (msg, done) = deployment_status(&d)?;
                if msg != last {
                    println!("{msg}");
                    last = msg;
                }
                if done || watch != "true" {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Sub::History { resources } => {
            let (path, name, label) = one(session, &resources)?;
            super::rollout_history::run_history(session, &path, &name, &label).await
        }
        Sub::Undo {
            resources,
            to_revision,
        } => {
            let (path, name, label) = one(session, &resources)?;
            super::rollout_history::run_undo(session, &path, &name, &label, to_revision).await
        }
        Sub::Pause { resources } => {
            let (path, name, label) = one(session, &resources)?;
            super::rollout_history::run_pause(session, &path, &name, &label, true).await
        }
        Sub::Resume { resources } => {
            let (path, name, label) = one(session, &resources)?;
            super::rollout_history::run_pause(session, &path, &name, &label, false).await
        }
        Sub::Restart { resources } => {
            let (path, name, label) = one(session, &resources)?;
            let now = jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string();
            let patch = json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": now}}}}});
            session
                .patch(
                    &format!("{path}/{name}"),
                    "application/strategic-merge-patch+json",
                    &patch,
                )
                .await?;
            println!("{label}/{name} restarted");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(generation: i64, status: Value) -> Value {
        json!({"metadata": {"name": "web", "generation": generation}, "spec": {"replicas": 3}, "status": status})
    }

    #[test]
    fn messages_follow_kubectls_viewer() {
        let cases = [
            (
                d(2, json!({"observedGeneration": 1})),
                "Waiting for deployment spec update to be observed...",
                false,
            ),
            (
                d(
                    1,
                    json!({"observedGeneration": 1, "updatedReplicas": 1, "replicas": 3}),
                ),
                "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...",
                false,
            ),
            (
                d(
                    1,
                    json!({"observedGeneration": 1, "updatedReplicas": 3, "replicas": 4}),
                ),
                "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...",
                false,
            ),
            (
                d(
                    1,
                    json!({"observedGeneration": 1, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 2}),
                ),
                "Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are available...",
                false,
            ),
            (
                d(
                    1,
                    json!({"observedGeneration": 1, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}),
                ),
                "deployment \"web\" successfully rolled out",
                true,
            ),
        ];
        for (dep, msg, done) in cases {
            assert_eq!(deployment_status(&dep).unwrap(), (msg.to_string(), done));
        }
        let stuck = d(
            1,
            json!({"observedGeneration": 1, "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert_eq!(
            deployment_status(&stuck).unwrap_err().to_string(),
            "error: deployment \"web\" exceeded its progress deadline"
        );
    }
}
