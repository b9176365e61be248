//! `describe replicaset`: replicas, the pods it controls by phase, its
//! pod template and conditions.

use serde_json::Value;

use super::events::{self, Reference};
use super::pod;
use super::writer::{self, Writer, int, s};
use crate::session::{Session, with_query};

/// Counts of the pods `owner_uid` controls among those `selector` selects:
/// (running, waiting, succeeded, failed), or the error's text.
pub async fn pod_phases(
    session: &Session,
    namespace: &str,
    selector: &str,
    owner_uid: &str,
) -> Result<[usize; 4], String> {
    let uri = with_query(
        &format!("/api/v1/namespaces/{namespace}/pods"),
        &[("labelSelector", Some(selector).filter(|s| !s.is_empty()))],
    );
    let list = session.get_json(&uri).await.map_err(|e| e.to_string())?;
    Ok(count_phases(&list, owner_uid))
}

pub fn count_phases(list: &Value, owner_uid: &str) -> [usize; 4] {
    let mut counts = [0; 4];
    for p in list["items"].as_array().into_iter().flatten() {
        if writer::controller_of(p).is_none_or(|r| s(&r["uid"]) != owner_uid) {
            continue;
        }
        match s(&p["status"]["phase"]) {
            "Running" => counts[0] += 1,
            "Pending" => counts[1] += 1,
            "Succeeded" => counts[2] += 1,
            "Failed" => counts[3] += 1,
            _ => {}
        }
    }
    counts
}

pub async fn describe(session: &Session, rs: &Value, show_events: bool) -> String {
    let md = &rs["metadata"];
    let selector = writer::selector_string(&rs["spec"]["selector"]);
    let phases = pod_phases(session, s(&md["namespace"]), &selector, s(&md["uid"])).await;
    let events = if show_events {
        Some(events::search(session, &Reference::to(rs)).await)
    } else {
        None
    };
    render(rs, phases, events.as_deref())
}

pub fn render(rs: &Value, phases: Result<[usize; 4], String>, events: Option<&[Value]>) -> String {
    let (md, spec, status) = (&rs["metadata"], &rs["spec"], &rs["status"]);
    let mut w = Writer::new();
    w.write(0, format!("Name:\t{}\n", s(&md["name"])));
    w.write(0, format!("Namespace:\t{}\n", s(&md["namespace"])));
    w.write(
        0,
        format!(
            "Selector:\t{}\n",
            writer::format_selector(&spec["selector"])
        ),
    );
    writer::labels(&mut w, "", "Labels", &md["labels"]);
    writer::annotations(&mut w, "Annotations", &md["annotations"]);
    writer::controlled_by(&mut w, rs);
    w.write(
        0,
        format!(
            "Replicas:\t{} current / {} desired\n",
            int(&status["replicas"]),
            int(&spec["replicas"])
        ),
    );
    w.write(0, "Pods Status:\t");
    match phases {
        Err(e) => w.write(0, format!("error in fetching pods: {e}\n")),
        Ok([r, wt, sc, f]) => w.write(
            0,
            format!("{r} Running / {wt} Waiting / {sc} Succeeded / {f} Failed\n"),
        ),
    }
    pod::template(&mut w, &spec["template"]);
    conditions(&mut w, status);
    if let Some(events) = events {
        events::describe(&mut w, events);
    }
    w.finish()
}

/// `Conditions:` as ReplicaSets and Deployments print them.
pub fn conditions(w: &mut Writer, status: &Value) {
    let list: Vec<&Value> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if list.is_empty() {
        return;
    }
    w.write(0, "Conditions:\n  Type\tStatus\tReason\n");
    w.write(1, "----\t------\t------\n");
    for c in list {
        w.write(
            1,
            format!(
                "{} \t{}\t{}\n",
                s(&c["type"]),
                s(&c["status"]),
                s(&c["reason"])
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_controlled_pods_are_counted() {
        let pod = |phase: &str, uid: &str| {
            json!({"metadata": {"ownerReferences": [{"controller": true, "uid": uid, "kind": "ReplicaSet", "name": "x"}]},
                   "status": {"phase": phase}})
        };
        let list = json!({"items": [pod("Running", "u"), pod("Pending", "u"), pod("Running", "other"),
                                    {"status": {"phase": "Running"}}, pod("Failed", "u")]});
        assert_eq!(count_phases(&list, "u"), [1, 1, 0, 1]);
    }
}
