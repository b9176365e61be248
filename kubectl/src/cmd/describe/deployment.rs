//! `describe deployment`: replicas, strategy, pod template, conditions,
//! its old and new ReplicaSets.

use serde_json::Value;

use super::events::{self, Reference};
use super::pod;
use super::replicaset::conditions;
use super::writer::{self, Writer, int, plain, rfc1123z, s};
use crate::session::{Session, with_query};

pub async fn describe(session: &Session, d: &Value, show_events: bool) -> String {
    let md = &d["metadata"];
    let events = if show_events {
        Some(events::search(session, &Reference::to(d)).await)
    } else {
        None
    };
    let selector = writer::selector_string(&d["spec"]["selector"]);
    let uri = with_query(
        &format!(
            "/apis/apps/v1/namespaces/{}/replicasets",
            s(&md["namespace"])
        ),
        &[(
            "labelSelector",
            Some(selector.as_str()).filter(|s| !s.is_empty()),
        )],
    );
    let sets = match session.get_json(&uri).await {
        Ok(list) => Some(split_sets(d, &list)),
        Err(_) => None,
    };
    render(d, sets, events.as_deref())
}

/// The ReplicaSets `d` controls: (old, new). The new one is the oldest
/// whose template equals the Deployment's but for `pod-template-hash`.
pub fn split_sets(d: &Value, list: &Value) -> (Vec<Value>, Vec<Value>) {
    let uid = s(&d["metadata"]["uid"]);
    let mut owned: Vec<Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rs| writer::controller_of(rs).is_some_and(|r| s(&r["uid"]) == uid))
        .cloned()
        .collect();
    owned.sort_by(|a, b| {
        let key = |x: &Value| {
            (
                s(&x["metadata"]["creationTimestamp"]).to_string(),
                s(&x["metadata"]["name"]).to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    let without_hash = |t: &Value| {
        let mut t = t.clone();
        if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
            labels.remove("pod-template-hash");
            if labels.is_empty() {
                t["metadata"].as_object_mut().map(|m| m.remove("labels"));
            }
        }
        t
    };
    let want = without_hash(&d["spec"]["template"]);
    let new = owned
        .iter()
        .position(|rs| without_hash(&rs["spec"]["template"]) == want);
    let new_set: Vec<Value> = new.map(|i| owned.remove(i)).into_iter().collect();
    (owned, new_set)
}

fn sets_line(sets: &[Value]) -> String {
    if sets.is_empty() {
        return "<none>".into();
    }
    sets.iter()
        .map(|rs| {
            format!(
                "{} ({}/{} replicas created)",
                s(&rs["metadata"]["name"]),
                int(&rs["status"]["replicas"]),
                int(&rs["spec"]["replicas"])
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render(
    d: &Value,
    sets: Option<(Vec<Value>, Vec<Value>)>,
    events: Option<&[Value]>,
) -> String {
    let (md, spec, status) = (&d["metadata"], &d["spec"], &d["status"]);
    let mut w = Writer::new();
    w.write(0, format!("Name:\t{}\n", s(&md["name"])));
    w.write(0, format!("Namespace:\t{}\n", s(&md["namespace"])));
    w.write(
        0,
        format!(
            "CreationTimestamp:\t{}\n",
            rfc1123z(&md["creationTimestamp"])
        ),
    );
    writer::labels(&mut w, "", "Labels", &md["labels"]);
    writer::annotations(&mut w, "Annotations", &md["annotations"]);
    w.write(
        0,
        format!(
            "Selector:\t{}\n",
            writer::selector_string(&spec["selector"])
        ),
    );
    w.write(
        0,
        format!(
            "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable\n",
            int(&spec["replicas"]),
            int(&status["updatedReplicas"]),
            int(&status["replicas"]),
            int(&status["availableReplicas"]),
            int(&status["unavailableReplicas"])
        ),
    );
    w.write(
        0,
        format!("StrategyType:\t{}\n", s(&spec["strategy"]["type"])),
    );
    w.write(
        0,
        format!("MinReadySeconds:\t{}\n", int(&spec["minReadySeconds"])),
    );
    let ru = &spec["strategy"]["rollingUpdate"];
    if ru.is_object() {
        w.write(
            0,
            format!(
                "RollingUpdateStrategy:\t{} max unavailable, {} max surge\n",
                plain(&ru["maxUnavailable"]),
                plain(&ru["maxSurge"])
            ),
        );
    }
    pod::template(&mut w, &spec["template"]);
    conditions(&mut w, status);
    if let Some((old, new)) = sets
        && (!old.is_empty() || !new.is_empty())
    {
        w.write(0, format!("OldReplicaSets:\t{}\n", sets_line(&old)));
        w.write(0, format!("NewReplicaSet:\t{}\n", sets_line(&new)));
    }
    if let Some(events) = events {
        events::describe(&mut w, events);
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_new_set_has_the_deployments_template() {
        let d = json!({"metadata": {"uid": "d1"},
                       "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"image": "b"}]}}}});
        let rs = |name: &str, image: &str, t: &str| {
            json!({
            "metadata": {"name": name, "creationTimestamp": t,
                         "ownerReferences": [{"controller": true, "uid": "d1"}]},
            "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": name}},
                                    "spec": {"containers": [{"image": image}]}}},
            "status": {"replicas": 1}})
        };
        let list = json!({"items": [rs("new", "b", "2"), rs("old", "a", "1"),
                                    {"metadata": {"name": "stray"}, "spec": {}}]});
        let (old, new) = split_sets(&d, &list);
        assert_eq!(sets_line(&old), "old (1/1 replicas created)");
        assert_eq!(sets_line(&new), "new (1/1 replicas created)");
        assert_eq!(sets_line(&[]), "<none>");
    }
}
