//! `rollout history`, `undo [--to-revision]`, `pause` and `resume` of a
//! Deployment, as kubectl's rollback and history viewers do them.
//!
//! A Deployment's history is its ReplicaSets (those it controls), each
//! with its `deployment.kubernetes.io/revision` annotation and the
//! `kubernetes.io/change-cause` it was made with. Undo copies the chosen
//! ReplicaSet's pod template (without its `pod-template-hash` label) back
//! into the Deployment, with its annotations, through one JSON patch; the
//! Deployment controller then rolls forward to it as a new revision.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::{Result, usage};
use crate::session::Session;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
const HASH_LABEL: &str = "pod-template-hash";
/// ReplicaSet annotations that undo does not copy onto the Deployment
/// (kubectl's `annotationsToSkip`).
const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// Revision → ReplicaSet, of the ReplicaSets `deployment` controls.
pub fn history(deployment: &Value, replica_sets: &[Value]) -> BTreeMap<i64, Value> {
    let uid = &deployment["metadata"]["uid"];
    replica_sets
        .iter()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["controller"] == true && &o["uid"] == uid)
        })
        .filter_map(|rs| {
            let rev = rs["metadata"]["annotations"][REVISION].as_str()?;
            Some((rev.parse().ok()?, rs.clone()))
        })
        .collect()
}

/// kubectl's history table (after a `deployment.apps/NAME ` line).
pub fn history_table(history: &BTreeMap<i64, Value>) -> String {
    let mut out = String::from("REVISION  CHANGE-CAUSE\n");
    for (rev, rs) in history {
        let cause = rs["metadata"]["annotations"][CHANGE_CAUSE]
            .as_str()
            .unwrap_or("<none>");
        out.push_str(&format!("{rev:<10}{cause}\n"));
    }
    out
}

/// A pod template without the label the Deployment controller adds.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
    }
    t
}

/// `v` without nulls and empty objects or lists, at any depth: kubectl
/// compares typed templates, where `creationTimestamp: null`, `{}` and a
/// missing field are all the same.
fn pruned(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let m: Map<String, Value> = m
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), pruned(v)?)))
                .collect();
            (!m.is_empty()).then_some(Value::Object(m))
        }
        Value::Array(a) => {
            let a: Vec<Value> = a.iter().map(|v| pruned(v).unwrap_or(json!({}))).collect();
            (!a.is_empty()).then_some(Value::Array(a))
        }
        other => Some(other.clone()),
    }
}

/// What undo does.
#[derive(Debug, Clone, PartialEq)]
pub enum Undo {
    /// The JSON patch to send.
    Patch(Value),
    /// Nothing: the template already is that revision's.
    Skip(i64),
}

/// Plans `rollout undo` to `to_revision` (0: the one before the newest).
pub fn plan_undo(
    deployment: &Value,
    history: &BTreeMap<i64, Value>,
    to_revision: i64,
) -> Result<Undo> {
    let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
    if deployment["spec"]["paused"] == true {
        return Err(usage(format!(
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume deployment/{name}' and try again"
        )));
    }
    let rev = if to_revision == 0 {
        // The second newest revision.
        let mut revs = history.keys().rev();
        revs.next();
        *revs.next().ok_or_else(|| {
            usage("no rollout history found for deployment \"".to_string() + name + "\"")
        })?
    } else {
        to_revision
    };
    let rs = history.get(&rev).ok_or_else(|| {
        usage(format!(
            "unable to find specified revision {rev} in history"
        ))
    })?;
    let template = without_hash(&rs["spec"]["template"]);
    if pruned(&without_hash(&deployment["spec"]["template"])) == pruned(&template) {
        return Ok(Undo::Skip(rev));
    }
    let mut annotations: Map<String, Value> = deployment["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in rs["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if !NOT_COPIED.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    Ok(Undo::Patch(json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ])))
}

/// The patch that sets `spec.paused`, or kubectl's error when it already is so.
pub fn plan_pause(deployment: &Value, pause: bool) -> Result<Value> {
    let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
    let paused = deployment["spec"]["paused"] == true;
    match (pause, paused) {
        (true, true) => Err(usage(format!(
            "deployments.apps \"{name}\" is already paused"
        ))),
        (false, false) => Err(usage(format!("deployments.apps \"{name}\" is not paused"))),
        _ => Ok(json!({"spec": {"paused": if pause { Value::Bool(true) } else { Value::Null }}})),
    }
}

/// The Deployment and its history.
async fn load(session: &Session, path: &str, name: &str) -> Result<(Value, BTreeMap<i64, Value>)> {
    let deployment = session.get_json(&format!("{path}/{name}")).await?;
    let ns = deployment["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let list = session
        .get_json(&format!("/apis/apps/v1/namespaces/{ns}/replicasets"))
        .await?;
    let items: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    let history = history(&deployment, &items);
    Ok((deployment, history))
}

pub async fn run_history(session: &Session, path: &str, name: &str, label: &str) -> Result<()> {
    let (_, history) = load(session, path, name).await?;
    if history.is_empty() {
        println!("No rollout history found.");
        return Ok(());
    }
    println!("{label}/{name} ");
    println!("{}", history_table(&history));
    Ok(())
}

pub async fn run_undo(
    session: &Session,
    path: &str,
    name: &str,
    label: &str,
    to_revision: i64,
) -> Result<()> {
    let (deployment, history) = load(session, path, name).await?;
    match plan_undo(&deployment, &history, to_revision)? {
        Undo::Skip(rev) => {
            println!(
                "{label}/{name} skipped rollback (current template already matches revision {rev})"
            )
        }
        Undo::Patch(patch) => {
            session
                .patch(
                    &format!("{path}/{name}"),
                    "application/json-patch+json",
                    &patch,
                )
                .await?;
            println!("{label}/{name} rolled back");
        }
    }
    Ok(())
}

pub async fn run_pause(
    session: &Session,
    path: &str,
    name: &str,
    label: &str,
    pause: bool,
) -> Result<()> {
    let deployment = session.get_json(&format!("{path}/{name}")).await?;
    let patch = plan_pause(&deployment, pause)?;
    session
        .patch(
            &format!("{path}/{name}"),
            "application/strategic-merge-patch+json",
            &patch,
        )
        .await?;
    println!(
        "{label}/{name} {}",
        if pause { "paused" } else { "resumed" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(image: &str, paused: bool) -> Value {
        json!({
            "metadata": {"name": "web", "uid": "d-uid", "annotations": {REVISION: "3", "team": "a"}},
            "spec": {"paused": paused, "template": {"metadata": {"labels": {"app": "web"}},
                      "spec": {"containers": [{"name": "c", "image": image}]}}}
        })
    }

    fn rs(rev: &str, image: &str, owner: &str, cause: Option<&str>) -> Value {
        let mut annotations =
            json!({REVISION: rev, "deployment.kubernetes.io/desired-replicas": "2"});
        if let Some(c) = cause {
            annotations[CHANGE_CAUSE] = json!(c);
        }
        json!({
            "metadata": {"name": format!("web-{rev}"), "annotations": annotations,
                         "ownerReferences": [{"controller": true, "uid": owner}]},
            "spec": {"template": {"metadata": {"labels": {"app": "web", HASH_LABEL: format!("h{rev}")}},
                      "spec": {"containers": [{"name": "c", "image": image}]}}}
        })
    }

    fn sets() -> Vec<Value> {
        vec![
            rs("1", "nginx:1", "d-uid", Some("kubectl create")),
            rs("3", "nginx:3", "d-uid", None),
            rs("2", "nginx:2", "d-uid", None),
            rs("9", "other", "someone-else", None),
        ]
    }

    #[test]
    fn history_lists_the_controlled_revisions_in_order() {
        let h = history(&deployment("nginx:3", false), &sets());
        assert_eq!(h.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(
            history_table(&h),
            "REVISION  CHANGE-CAUSE\n1         kubectl create\n2         <none>\n3         <none>\n"
        );
    }

    #[test]
    fn undo_goes_to_the_previous_revision_or_the_one_asked() {
        let d = deployment("nginx:3", false);
        let h = history(&d, &sets());
        let Undo::Patch(p) = plan_undo(&d, &h, 0).unwrap() else {
            panic!()
        };
        assert_eq!(p[0]["path"], "/spec/template");
        assert_eq!(p[0]["value"]["spec"]["containers"][0]["image"], "nginx:2");
        assert_eq!(
            p[0]["value"]["metadata"]["labels"],
            json!({"app": "web"}),
            "hash label dropped"
        );
        // The Deployment's annotations stay; the ReplicaSet's bookkeeping ones are not copied.
        assert_eq!(p[1]["value"], json!({REVISION: "3", "team": "a"}));
        let Undo::Patch(p) = plan_undo(&d, &h, 1).unwrap() else {
            panic!()
        };
        assert_eq!(p[0]["value"]["spec"]["containers"][0]["image"], "nginx:1");
        assert_eq!(
            p[1]["value"][CHANGE_CAUSE], "kubectl create",
            "change-cause copied"
        );
    }

    #[test]
    fn undo_refuses_or_skips_as_kubectl_does() {
        let d = deployment("nginx:3", false);
        let h = history(&d, &sets());
        assert_eq!(plan_undo(&d, &h, 3).unwrap(), Undo::Skip(3));
        // The same template with a null timestamp and an empty map is the same.
        let mut noisy = d.clone();
        noisy["spec"]["template"]["metadata"]["creationTimestamp"] = Value::Null;
        noisy["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({});
        assert_eq!(plan_undo(&noisy, &h, 3).unwrap(), Undo::Skip(3));
        let err = plan_undo(&d, &h, 7).unwrap_err().to_string();
        assert_eq!(err, "error: unable to find specified revision 7 in history");
        let err = plan_undo(&deployment("nginx:3", true), &h, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("you cannot rollback a paused deployment"),
            "{err}"
        );
        let lone: BTreeMap<i64, Value> = [(1, sets()[0].clone())].into();
        assert!(plan_undo(&d, &lone, 0).is_err());
    }

    #[test]
    fn pause_and_resume_only_change_what_needs_changing() {
        assert_eq!(
            plan_pause(&deployment("x", false), true).unwrap(),
            json!({"spec": {"paused": true}})
        );
        assert_eq!(
            plan_pause(&deployment("x", true), false).unwrap(),
            json!({"spec": {"paused": null}})
        );
        assert_eq!(
            plan_pause(&deployment("x", true), true)
                .unwrap_err()
                .to_string(),
            "error: deployments.apps \"web\" is already paused"
        );
        assert_eq!(
            plan_pause(&deployment("x", false), false)
                .unwrap_err()
                .to_string(),
            "error: deployments.apps \"web\" is not paused"
        );
    }
}
