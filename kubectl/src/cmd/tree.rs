//! `skiffctl tree <kind>/<name>`: what an object owns, by
//! `metadata.ownerReferences` (Deployment → ReplicaSets → Pods), plus the
//! pods a Service's EndpointSlices point at, with status and age per line.
//! With `-w` the tree is drawn again whenever any of those types changes
//! (watches, debounced 200 ms) and the tree (ages aside) is different: on
//! a terminal in place, otherwise one tree after another with a blank line
//! between, so a class sees each step of a rollout.

use serde_json::Value;

use crate::discovery::Resource;
use crate::error::{CtlError, Result, usage};
use crate::print::tabwriter;
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// KIND/NAME, e.g. deploy/web
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
    pub object: String,
    /// Draw the tree again as the cluster changes it.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

/// The types scanned for children.
const CHILD_TYPES: &[&str] = &[
    "replicasets.apps",
    "pods",
    "jobs.batch",
    "controllerrevisions.apps",
    "endpointslices.discovery.k8s.io",
];

/// The tree's rows now (header first), or None when the root is gone.
async fn rows(session: &Session, r: &Resource, name: &str) -> Result<Option<Vec<Vec<String>>>> {
    let mut root = match session
        .get_json(&format!("{}/{name}", r.path(Some(session.namespace()))))
        .await
    {
        Ok(root) => root,
        Err(CtlError::Server(s)) if s.code == 404 => return Ok(None),
        Err(e) => return Err(e),
    };
    root["kind"] = Value::String(r.kind.clone());
    root["apiVersion"] = Value::String(r.api_version());
    let mut candidates = Vec::new();
    for t in CHILD_TYPES {
        let Some(cr) = session.catalog.find(t) else {
            continue;
        };
        let list = session
            .get_json(&cr.path(Some(session.namespace())))
            .await?;
        for mut o in list["items"].as_array().cloned().unwrap_or_default() {
            o["kind"] = Value::String(cr.kind.clone());
            o["apiVersion"] = Value::String(cr.api_version());
            candidates.push(o);
        }
    }
    let now = jiff::Timestamp::now();
    let mut rows = vec![vec!["NAME".to_string(), "STATUS".into(), "AGE".into()]];
    walk(session, &root, &candidates, "", "", &now, &mut rows, 0);
    Ok(Some(rows))
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let (typed, name) = args
        .object
        .split_once('/')
        .ok_or_else(|| usage("tree needs KIND/NAME, e.g. deploy/web"))?;
    let r = session.catalog.resolve(typed)?.clone();
    let Some(first) = rows(session, &r, name).await? else {
        // The same NotFound a plain GET gives.
        session
            .get_json(&format!("{}/{name}", r.path(Some(session.namespace()))))
            .await?;
        return Ok(());
    };
    print!("{}", tabwriter::render(&first));
    if !args.watch {
        return Ok(());
    }
    watch(session, &r, name, first).await
}

/// `-w`: redraws on every change of the root's type or a child type.
async fn watch(session: &Session, r: &Resource, name: &str, first: Vec<Vec<String>>) -> Result<()> {
    use futures::{AsyncBufReadExt, TryStreamExt};
    use std::io::{IsTerminal, Write};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut paths = vec![r.path(Some(session.namespace()))];
    paths.extend(
        CHILD_TYPES
            .iter()
            .filter_map(|t| session.catalog.find(t))
            .map(|cr| cr.path(Some(session.namespace()))),
    );
    for path in paths {
        let stream = session.stream(&format!("{path}?watch=true"), None).await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = stream.lines();
            while let Ok(Some(_)) = lines.try_next().await {
                if tx.send(()).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let terminal = std::io::stdout().is_terminal();
    // Ages change every second; only the rest says something happened.
    let shape = |rows: &[Vec<String>]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r[..r.len().saturating_sub(1)].to_vec())
            .collect()
    };
    let mut last = shape(&first);
    while rx.recv().await.is_some() {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        while rx.try_recv().is_ok() {}
        let Some(now) = rows(session, r, name).await? else {
            println!("\n{}/{name} deleted", r.kind_group());
            return Ok(());
        };
        if shape(&now) == last {
            continue;
        }
        last = shape(&now);
        if terminal {
            print!("\x1b[H\x1b[2J");
        } else {
            println!();
        }
        print!("{}", tabwriter::render(&now));
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

/// The children of `parent` among `all`, sorted by kind then name.
pub fn children<'a>(parent: &Value, all: &'a [Value]) -> Vec<&'a Value> {
    let uid = &parent["metadata"]["uid"];
    let mut out: Vec<&Value> = all
        .iter()
        .filter(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == *uid))
        })
        .collect();
    if parent["kind"] == "EndpointSlice" {
        for ep in parent["endpoints"].as_array().into_iter().flatten() {
            let target = &ep["targetRef"];
            if target["kind"] == "Pod"
                && let Some(pod) = all
                    .iter()
                    .find(|o| o["kind"] == "Pod" && o["metadata"]["name"] == target["name"])
            {
                out.push(pod);
            }
        }
    }
    out.sort_by_key(|o| {
        (
            o["kind"].as_str().unwrap_or_default().to_string(),
            o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    });
    out
}

#[allow(clippy::too_many_arguments)]
fn walk(
    session: &Session,
    node: &Value,
    all: &[Value],
    lead: &str,
    branch: &str,
    now: &jiff::Timestamp,
    rows: &mut Vec<Vec<String>>,
    depth: usize,
) {
    let prefix = session
        .catalog
        .by_kind(
            node["apiVersion"].as_str().unwrap_or_default(),
            node["kind"].as_str().unwrap_or_default(),
        )
        .map(|r| r.kind_group())
        .unwrap_or_else(|| node["kind"].as_str().unwrap_or_default().to_lowercase());
    rows.push(vec![
        format!(
            "{lead}{branch}{prefix}/{}",
            node["metadata"]["name"].as_str().unwrap_or_default()
        ),
        coloured_status(node),
        age(node, now),
    ]);
    if depth > 8 {
        return;
    }
    let kids = children(node, all);
    let child_lead = if branch.is_empty() {
        lead.to_string()
    } else if branch.starts_with('└') {
        format!("{lead}    ")
    } else {
        format!("{lead}│   ")
    };
    for (i, kid) in kids.iter().enumerate() {
        let b = if i + 1 == kids.len() {
            "└── "
        } else {
            "├── "
        };
        walk(session, kid, all, &child_lead, b, now, rows, depth + 1);
    }
}

/// [`status`], green when all is ready, yellow while not, red when
/// terminating (on a terminal only; see [`crate::print::colour`]).
fn coloured_status(o: &Value) -> String {
    use crate::print::colour::{Colour, enabled, paint};
    let s = status(o);
    let colour = if s == "Terminating" {
        Colour::Red
    } else if s.contains("NotReady") || o["kind"] != "Pod" && ready_count_short(o) {
        Colour::Yellow
    } else {
        Colour::Green
    };
    paint(&s, colour, enabled() && s != "-")
}

/// A workload with fewer ready replicas than it wants.
fn ready_count_short(o: &Value) -> bool {
    matches!(
        o["kind"].as_str(),
        Some("Deployment" | "ReplicaSet" | "StatefulSet")
    ) && o["status"]["readyReplicas"].as_i64().unwrap_or(0)
        < o["spec"]["replicas"].as_i64().unwrap_or(1)
}

/// A one-word summary: replicas ready for workloads, phase and readiness for pods.
pub fn status(o: &Value) -> String {
    let s = &o["status"];
    match o["kind"].as_str().unwrap_or_default() {
        "Deployment" | "ReplicaSet" | "StatefulSet" => format!(
            "{}/{} ready",
            s["readyReplicas"].as_i64().unwrap_or(0),
            o["spec"]["replicas"].as_i64().unwrap_or(1)
        ),
        "Pod" => {
            let phase = s["phase"].as_str().unwrap_or("Pending");
            let ready = s["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            if o["metadata"]["deletionTimestamp"].is_string() {
                "Terminating".into()
            } else if ready {
                format!("{phase}, Ready")
            } else {
                format!("{phase}, NotReady")
            }
        }
        "EndpointSlice" => format!(
            "{} endpoints",
            o["endpoints"].as_array().map(Vec::len).unwrap_or(0)
        ),
        _ => "-".into(),
    }
}

/// How old `o` is, as kubectl's AGE column says it.
fn age(o: &Value, now: &jiff::Timestamp) -> String {
    super::describe::events::since(&o["metadata"]["creationTimestamp"], *now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn children_follow_owner_references() {
        let d = json!({"kind": "Deployment", "metadata": {"uid": "d1", "name": "web"}});
        let all = vec![
            json!({"kind": "ReplicaSet", "metadata": {"name": "web-b", "ownerReferences": [{"uid": "d1"}]}}),
            json!({"kind": "ReplicaSet", "metadata": {"name": "web-a", "ownerReferences": [{"uid": "d1"}]}}),
            json!({"kind": "ReplicaSet", "metadata": {"name": "other", "ownerReferences": [{"uid": "d2"}]}}),
        ];
        let names: Vec<&str> = children(&d, &all)
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["web-a", "web-b"]);
    }
}
