//! `logs [-f] [-p] (POD | TYPE/NAME | -l SELECTOR) [-c CONTAINER]`: the
//! `pods/log` subresource streamed to stdout, with kubectl's flags, choices
//! and messages.
//!
//! - A workload (`deploy/web`, `rs/…`, `sts/…`, `ds/…`, `job/…`) stands for
//!   one of its pods, picked as kubectl picks it (scheduled, running, ready,
//!   most restarts, oldest), with `Found N pods, using pod/…` on stderr.
//! - Without `-c` a pod with several containers uses its
//!   `kubectl.kubernetes.io/default-container` or its first container
//!   (`Defaulted container …` on stderr); `--all-containers` takes each,
//!   init containers first.
//! - `-l` takes every matching pod (at most `--max-log-requests`), one after
//!   the other; `--prefix` starts each line with `[pod/NAME/CONTAINER]`.

use std::cmp::Reverse;

use futures::{AsyncBufReadExt, AsyncReadExt, TryStreamExt};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::targets::parse;
use crate::error::{Result, usage};
use crate::session::{Session, with_query};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// POD, pod/POD or TYPE/NAME of a workload; optionally a container.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::pods))]
    pub args: Vec<String>,
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Stream the logs.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The previous terminated container's logs.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Lines of recent log to show (-1: all; 10 with a selector).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Only logs newer than a relative duration like 5s, 2m, or 3h.
    #[arg(long)]
    pub since: Option<String>,
    /// Only logs after an RFC 3339 time.
    #[arg(long)]
    pub since_time: Option<String>,
    /// Include timestamps on each line.
    #[arg(long)]
    pub timestamps: bool,
    /// Most bytes of logs to return.
    #[arg(long)]
    pub limit_bytes: Option<u64>,
    /// Every container of the pod.
    #[arg(long)]
    pub all_containers: bool,
    /// Pods by label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Prefix each line with the pod and container name.
    #[arg(long)]
    pub prefix: bool,
    /// With a selector: most pods to read.
    #[arg(long, default_value_t = 5)]
    pub max_log_requests: usize,
}

/// Sorts first: scheduled, phase, ready, restarts (all descending), then
/// creation time and name.
pub type Rank = (
    Reverse<bool>,
    Reverse<i32>,
    Reverse<bool>,
    Reverse<i64>,
    String,
    String,
);

/// kubectl's order for picking one pod to show (`podutils.ByLogging`):
/// scheduled first, then running, ready, most restarts, oldest.
pub fn logging_rank(pod: &Value) -> Rank {
    let scheduled = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let phase = match pod["status"]["phase"].as_str() {
        Some("Running") => 2,
        Some("Unknown") => 1,
        _ => 0,
    };
    let ready = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    let restarts: i64 = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["restartCount"].as_i64())
        .max()
        .unwrap_or(0);
    let created = pod["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (
        Reverse(scheduled),
        Reverse(phase),
        Reverse(ready),
        Reverse(restarts),
        created,
        name,
    )
}

/// The containers to read and the note kubectl prints when it chose one.
pub fn containers_of(
    pod: &Value,
    asked: Option<&str>,
    all: bool,
) -> Result<(Vec<String>, Option<String>)> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    let (init, main) = (names("initContainers"), names("containers"));
    if all {
        return Ok((init.into_iter().chain(main).collect(), None));
    }
    if let Some(c) = asked {
        if !init.iter().chain(&main).any(|n| n == c) {
            return Err(usage(format!(
                "container {c} is not valid for pod {pod_name}"
            )));
        }
        return Ok((vec![c.to_string()], None));
    }
    let annotated = pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"]
        .as_str()
        .filter(|c| main.iter().any(|n| n == c));
    let Some(first) = annotated
        .map(str::to_string)
        .or_else(|| main.first().cloned())
    else {
        return Err(usage(format!("pod {pod_name} does not have a container")));
    };
    let note = (annotated.is_none() && main.len() + init.len() > 1).then(|| {
        let listed: Vec<String> = main
            .iter()
            .cloned()
            .chain(init.iter().map(|i| format!("{i} (init)")))
            .collect();
        format!(
            "Defaulted container \"{first}\" out of: {}",
            listed.join(", ")
        )
    });
    Ok((vec![first], note))
}

/// `5s`, `2m`, `3h`, `1h30m` → seconds.
pub fn parse_since(text: &str) -> Result<i64> {
    let d = humantime::parse_duration(text).map_err(|e| {
        usage(format!(
            "invalid argument \"{text}\" for \"--since\" flag: {e}"
        ))
    })?;
    Ok((d.as_secs() as i64).max(1))
}

/// The pods of the session's namespace that `selector` selects, in
/// kubectl's order for logging.
async fn selected_pods(session: &Session, selector: &str) -> Result<Vec<Value>> {
    let uri = with_query(
        &format!("/api/v1/namespaces/{}/pods", session.namespace()),
        &[("labelSelector", Some(selector))],
    );
    let list = session.get_json(&uri).await?;
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(logging_rank);
    Ok(items)
}

/// The pods the arguments name (sorted as kubectl sorts them).
async fn pods(session: &Session, args: &Args) -> Result<(Vec<Value>, Option<String>)> {
    if let Some(selector) = &args.selector {
        if !args.args.is_empty() {
            return Err(usage("only a selector (-l) or a POD name is allowed"));
        }
        let mut items = selected_pods(session, selector).await?;
        items.truncate(args.max_log_requests.max(1));
        return Ok((items, args.container.clone()));
    }
    let (target, container) = match args.args.as_slice() {
        [t] => (t.clone(), args.container.clone()),
        [t, c] => (t.clone(), args.container.clone().or(Some(c.clone()))),
        _ => {
            return Err(usage(
                "expected POD_NAME or TYPE/NAME, and optionally a container name",
            ));
        }
    };
    Ok((vec![pod_for(session, &target, true).await?], container))
}

/// The pod `target` (POD, pod/POD or TYPE/NAME of a workload) stands for,
/// as kubectl picks it; `Found N pods, using pod/…` on stderr if `say`.
pub async fn pod_for(session: &Session, target: &str, say: bool) -> Result<Value> {
    let (kind, name) = match target.split_once('/') {
        Some((_, n)) => {
            let (targets, _) = parse(session, &[target.to_string()])?;
            let r = &targets[0].resource;
            (r.clone(), n.to_string())
        }
        None => (session.catalog.resolve("pods")?.clone(), target.to_string()),
    };
    let object = session
        .get_json(&format!(
            "{}/{name}",
            kind.path(session.ns_for(&kind, false))
        ))
        .await?;
    if kind.kind == "Pod" {
        return Ok(object);
    }
    let selector = object["spec"]["selector"]["matchLabels"]
        .as_object()
        .or(object["spec"]["selector"]
            .as_object()
            .filter(|_| kind.kind == "Service"))
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            usage(format!(
                "cannot attach to {}: selector not found",
                kind.kind_group()
            ))
        })?;
    let items = selected_pods(session, &selector).await?;
    let Some(first) = items.first() else {
        return Err(usage("timed out waiting for the condition"));
    };
    if items.len() > 1 && say {
        let pod = first["metadata"]["name"].as_str().unwrap_or_default();
        eprintln!("Found {} pods, using pod/{pod}", items.len());
    }
    Ok(first.clone())
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let (pods, container) = pods(session, &args).await?;
    // A selector shows the last 10 lines unless told otherwise, as kubectl.
    let tail = if args.selector.is_some() && args.tail == -1 {
        10
    } else {
        args.tail
    };
    let mut out = tokio::io::stdout();
    for pod in &pods {
        let (containers, note) = containers_of(pod, container.as_deref(), args.all_containers)?;
        if let Some(note) = note {
            eprintln!("{note}");
        }
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let ns = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or(session.namespace());
        for c in &containers {
            let tail = (tail >= 0).then(|| tail.to_string());
            let since = since.map(|s| s.to_string());
            let limit = args.limit_bytes.map(|b| b.to_string());
            let uri = with_query(
                &format!("/api/v1/namespaces/{ns}/pods/{name}/log"),
                &[
                    ("container", Some(c.as_str())),
                    ("follow", args.follow.then_some("true")),
                    ("previous", args.previous.then_some("true")),
                    ("tailLines", tail.as_deref()),
                    ("sinceSeconds", since.as_deref()),
                    ("sinceTime", args.since_time.as_deref()),
                    ("timestamps", args.timestamps.then_some("true")),
                    ("limitBytes", limit.as_deref()),
                ],
            );
            let mut body = session.stream(&uri, None).await?;
            let io = |e: std::io::Error| usage(e.to_string());
            if args.prefix {
                let prefix = format!("[pod/{name}/{c}] ");
                let mut lines = body.lines();
                while let Some(line) = lines.try_next().await.map_err(io)? {
                    out.write_all(format!("{prefix}{line}\n").as_bytes())
                        .await
                        .map_err(io)?;
                    out.flush().await.map_err(io)?;
                }
            } else {
                // Bytes as they come: a followed line shows at once.
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = body.read(&mut buf).await.map_err(io)?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n]).await.map_err(io)?;
                    out.flush().await.map_err(io)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(
        name: &str,
        node: bool,
        phase: &str,
        ready: bool,
        restarts: i64,
        created: &str,
    ) -> Value {
        json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": if node { json!("n1") } else { Value::Null },
                     "initContainers": [{"name": "setup"}],
                     "containers": [{"name": "app"}, {"name": "side"}]},
            "status": {"phase": phase,
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                       "containerStatuses": [{"restartCount": restarts}]}
        })
    }

    #[test]
    fn the_pod_shown_for_a_workload_is_picked_as_kubectl_picks_it() {
        let t = "2024-01-01T00:00:00Z";
        let later = "2024-01-02T00:00:00Z";
        let mut pods = [
            pod("unscheduled", false, "Pending", false, 0, t),
            pod("pending", true, "Pending", false, 0, t),
            pod("running-not-ready", true, "Running", false, 0, t),
            pod("ready-new", true, "Running", true, 0, later),
            pod("ready-old", true, "Running", true, 0, t),
            pod("ready-restarted", true, "Running", true, 3, later),
        ];
        pods.sort_by_key(logging_rank);
        let order: Vec<&str> = pods
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "ready-restarted",
                "ready-old",
                "ready-new",
                "running-not-ready",
                "pending",
                "unscheduled"
            ]
        );
    }

    #[test]
    fn containers_default_validate_and_expand() {
        let p = pod("web", true, "Running", true, 0, "");
        let (c, note) = containers_of(&p, None, false).unwrap();
        assert_eq!(c, ["app"]);
        assert_eq!(
            note.unwrap(),
            "Defaulted container \"app\" out of: app, side, setup (init)"
        );
        assert_eq!(
            containers_of(&p, Some("setup"), false).unwrap().0,
            ["setup"]
        );
        assert_eq!(
            containers_of(&p, Some("nope"), false)
                .unwrap_err()
                .to_string(),
            "error: container nope is not valid for pod web"
        );
        assert_eq!(
            containers_of(&p, None, true).unwrap().0,
            ["setup", "app", "side"]
        );
        let mut annotated = p.clone();
        annotated["metadata"]["annotations"] =
            json!({"kubectl.kubernetes.io/default-container": "side"});
        assert_eq!(
            containers_of(&annotated, None, false).unwrap(),
            (vec!["side".to_string()], None)
        );
    }

    #[test]
    fn since_takes_go_style_durations() {
        assert_eq!(parse_since("5s").unwrap(), 5);
        assert_eq!(parse_since("2m").unwrap(), 120);
        assert_eq!(parse_since("1h30m").unwrap(), 5400);
        assert!(parse_since("soon").is_err());
    }
}
