//! `drain NODE [--ignore-daemonsets] [--delete-emptydir-data] [--force]`:
//! cordon the node, then evict its pods through the `pods/eviction`
//! subresource (so PodDisruptionBudgets could refuse) and wait until they
//! are gone, as kubectl drain does, with its filters, warnings, errors and
//! lines.
//!
//! Which pods go, in kubectl's order of checks:
//! - finished pods (Succeeded, Failed): always;
//! - mirror (static) pods: never, silently;
//! - DaemonSet pods: refused unless `--ignore-daemonsets`, then left (their
//!   controller would only put them back);
//! - pods without a controller: refused unless `--force` (nothing would
//!   recreate them);
//! - pods with `emptyDir` volumes: refused unless `--delete-emptydir-data`
//!   (the data is lost).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cordon;
use crate::error::{CtlError, Result, usage};
use crate::session::{Session, with_query};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// NODE…
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::nodes))]
    pub nodes: Vec<String>,
    /// Ignore DaemonSet-managed pods.
    #[arg(long)]
    pub ignore_daemonsets: bool,
    /// Continue even if there are pods using emptyDir.
    #[arg(long)]
    pub delete_emptydir_data: bool,
    /// Continue even if there are pods that do not declare a controller.
    #[arg(long)]
    pub force: bool,
    /// Seconds each pod gets to terminate (-1: its own).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// How long to wait before giving up (0: forever).
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// Only pods matching this label selector.
    #[arg(long)]
    pub pod_selector: Option<String>,
    /// Delete instead of evicting (bypasses PodDisruptionBudgets).
    #[arg(long)]
    pub disable_eviction: bool,
}

/// What the filters decided for one node's pods.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// `ns/name` of the pods to evict, in list order.
    pub evict: Vec<Value>,
    /// Warning message → `ns/name`s.
    pub warnings: BTreeMap<&'static str, Vec<String>>,
    /// Error message → `ns/name`s.
    pub errors: BTreeMap<&'static str, Vec<String>>,
}

// kubectl prefixes each error with "cannot delete ", and its message for
// pods without a controller already starts so: it prints the words twice.
const DAEMONSET_ERROR: &str = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)";
const DAEMONSET_WARNING: &str = "ignoring DaemonSet-managed Pods";
const UNMANAGED_ERROR: &str =
    "cannot delete Pods that declare no controller (use --force to override)";
const UNMANAGED_WARNING: &str = "deleting Pods that declare no controller";
const LOCAL_ERROR: &str = "Pods with local storage (use --delete-emptydir-data to override)";
const LOCAL_WARNING: &str = "deleting Pods with local storage";

fn key(pod: &Value) -> String {
    format!(
        "{}/{}",
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// What one filter says of a pod.
enum Status {
    Okay,
    Warning(&'static str),
    /// Not evicted, but listed with this warning.
    Skip(Option<&'static str>),
    Error(&'static str),
}

/// kubectl drain's pod filters over the pods bound to a node. As kubectl,
/// the filters run in order until one keeps the pod, and the last status
/// is the pod's: a later "okay" replaces an earlier warning.
pub fn plan(pods: &[Value], args: &Args) -> Plan {
    let mut out = Plan::default();
    for pod in pods {
        let phase = pod["status"]["phase"].as_str().unwrap_or_default();
        let finished = phase == "Succeeded" || phase == "Failed";
        let controller = pod["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["controller"] == true);
        let filters: [&dyn Fn() -> Status; 4] = [
            &|| match controller {
                Some(c) if c["kind"] == "DaemonSet" && args.ignore_daemonsets => {
                    Status::Skip(Some(DAEMONSET_WARNING))
                }
                Some(c) if c["kind"] == "DaemonSet" => Status::Error(DAEMONSET_ERROR),
                _ => Status::Okay,
            },
            &|| {
                if pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() {
                    Status::Skip(None)
                } else {
                    Status::Okay
                }
            },
            &|| {
                let local = pod["spec"]["volumes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|v| v["emptyDir"].is_object());
                match (local && !finished, args.delete_emptydir_data) {
                    (false, _) => Status::Okay,
                    (true, true) => Status::Warning(LOCAL_WARNING),
                    (true, false) => Status::Error(LOCAL_ERROR),
                }
            },
            &|| match (finished || controller.is_some(), args.force) {
                (true, _) => Status::Okay,
                (false, true) => Status::Warning(UNMANAGED_WARNING),
                (false, false) => Status::Error(UNMANAGED_ERROR),
            },
        ];
        let mut status = Status::Okay;
        for filter in filters {
            status = filter();
            if matches!(status, Status::Skip(_) | Status::Error(_)) {
                break;
            }
        }
        let k = key(pod);
        match status {
            Status::Okay => out.evict.push(pod.clone()),
            Status::Warning(w) => {
                out.warnings.entry(w).or_default().push(k);
                out.evict.push(pod.clone());
            }
            Status::Skip(Some(w)) => out.warnings.entry(w).or_default().push(k),
            Status::Skip(None) => {}
            Status::Error(e) => out.errors.entry(e).or_default().push(k),
        }
    }
    out
}

/// `msg: a, b; msg2: c` (kubectl's warning and error lists).
fn joined(groups: &BTreeMap<&'static str, Vec<String>>) -> Vec<String> {
    groups
        .iter()
        .map(|(m, pods)| format!("{m}: {}", pods.join(", ")))
        .collect()
}

/// `cannot delete MSG: a, b` for each error.
fn error_lines(groups: &BTreeMap<&'static str, Vec<String>>) -> Vec<String> {
    joined(groups)
        .into_iter()
        .map(|e| format!("cannot delete {e}"))
        .collect()
}

/// kubectl's aggregate of several errors: one as it is, several in brackets.
fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

async fn evict(session: &Session, pod: &Value, args: &Args) -> Result<()> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let mut options = json!({});
    if args.grace_period >= 0 {
        options["gracePeriodSeconds"] = json!(args.grace_period);
    }
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    if args.disable_eviction {
        session.delete(&path, &options).await?;
        return Ok(());
    }
    let body = json!({"apiVersion": "policy/v1", "kind": "Eviction",
                      "metadata": {"name": name, "namespace": ns}, "deleteOptions": options});
    loop {
        match session.post(&format!("{path}/eviction"), &body).await {
            Ok(_) => return Ok(()),
            Err(CtlError::Server(s)) if s.code == 404 => return Ok(()),
            // A disruption budget says not now: kubectl tries again in 5 s.
            Err(CtlError::Server(s)) if s.code == 429 => {
                eprintln!(
                    "error when evicting pods/\"{name}\" -n \"{ns}\" (will retry after 5s): {}",
                    s.message
                );
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits until each pod is gone (or replaced by another of the same name).
async fn wait_gone(session: &Session, pods: &[Value], deadline: Option<Instant>) -> Result<()> {
    for pod in pods {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let uid = &pod["metadata"]["uid"];
        loop {
            match session
                .get_json(&format!("/api/v1/namespaces/{ns}/pods/{name}"))
                .await
            {
                Err(CtlError::Server(s)) if s.code == 404 => break,
                Ok(now) if &now["metadata"]["uid"] != uid => break,
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(usage(format!(
                    "error when waiting for pod \"{name}\" in namespace \"{ns}\" to terminate: global timeout reached"
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let verb = if pod["metadata"]["deletionTimestamp"].is_string() {
            "deleted"
        } else {
            "evicted"
        };
        println!("pod/{name} {verb}");
    }
    Ok(())
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    if args.nodes.is_empty() {
        return Err(usage(
            "resource(s) were provided, but no name was specified",
        ));
    }
    let timeout = humantime::parse_duration(&args.timeout).map_err(|e| {
        usage(format!(
            "invalid argument \"{}\" for \"--timeout\" flag: {e}",
            args.timeout
        ))
    })?;
    let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
    cordon::run(
        session,
        cordon::Args {
            nodes: args.nodes.clone(),
            selector: None,
        },
        true,
    )
    .await?;
    for (i, node) in args.nodes.iter().enumerate() {
        let field = format!("spec.nodeName={node}");
        let uri = with_query(
            "/api/v1/pods",
            &[
                ("fieldSelector", Some(&field)),
                ("labelSelector", args.pod_selector.as_deref()),
            ],
        );
        let list = session.get_json(&uri).await?;
        let pods: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
        let plan = plan(&pods, &args);
        if !plan.errors.is_empty() {
            let errors = error_lines(&plan.errors);
            eprintln!(
                "error: unable to drain node \"{node}\" due to error: {}, continuing command...",
                aggregate(&errors)
            );
            eprintln!("There are pending nodes to be drained:");
            for pending in &args.nodes[i..] {
                eprintln!(" {pending}");
            }
            // kubectl's last word: one error as `error: …`, several a line each.
            return Err(match errors.as_slice() {
                [one] => usage(one.clone()),
                many => CtlError::Raw(many.join("\n")),
            });
        }
        if !plan.warnings.is_empty() {
            eprintln!("Warning: {}", joined(&plan.warnings).join("; "));
        }
        for pod in &plan.evict {
            println!("evicting pod {}", key(pod));
            evict(session, pod, &args).await?;
        }
        wait_gone(session, &plan.evict, deadline).await?;
        println!("node/{node} drained");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, owner: Option<&str>, phase: &str, empty_dir: bool) -> Value {
        let owners =
            owner.map(|k| json!([{"kind": k, "controller": true, "name": "o", "uid": "u"}]));
        let volumes = if empty_dir {
            json!([{"name": "scratch", "emptyDir": {}}])
        } else {
            json!([])
        };
        json!({"metadata": {"name": name, "namespace": "default", "ownerReferences": owners},
               "spec": {"volumes": volumes}, "status": {"phase": phase}})
    }

    fn args(ignore_ds: bool, force: bool, emptydir: bool) -> Args {
        Args {
            nodes: vec!["n1".into()],
            ignore_daemonsets: ignore_ds,
            delete_emptydir_data: emptydir,
            force,
            grace_period: -1,
            timeout: "0s".into(),
            pod_selector: None,
            disable_eviction: false,
        }
    }

    fn pods() -> Vec<Value> {
        let mut mirror = pod("static", None, "Running", false);
        mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "x"});
        vec![
            pod("web", Some("ReplicaSet"), "Running", false),
            pod("agent", Some("DaemonSet"), "Running", false),
            pod("bare", None, "Running", false),
            pod("cache", Some("ReplicaSet"), "Running", true),
            pod("done", None, "Succeeded", true),
            mirror,
        ]
    }

    fn names(p: &Plan) -> Vec<&str> {
        p.evict
            .iter()
            .map(|v| v["metadata"]["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn without_flags_every_risky_pod_is_refused() {
        let p = plan(&pods(), &args(false, false, false));
        assert_eq!(
            error_lines(&p.errors),
            [
                "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/agent",
                "cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache",
                "cannot delete cannot delete Pods that declare no controller (use --force to override): default/bare",
            ]
        );
        assert_eq!(names(&p), ["web", "done"]);
    }

    #[test]
    fn with_the_flags_they_become_warnings_and_daemonsets_stay() {
        let p = plan(&pods(), &args(true, true, true));
        assert!(p.errors.is_empty());
        assert_eq!(
            joined(&p.warnings).join("; "),
            "deleting Pods that declare no controller: default/bare; ignoring DaemonSet-managed Pods: default/agent",
            "a replicated pod's local-storage warning is replaced by the next filter's okay"
        );
        assert_eq!(names(&p), ["web", "bare", "cache", "done"]);
    }

    #[test]
    fn errors_aggregate_as_kubectl_prints_them() {
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
    }
}
