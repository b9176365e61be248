//! `describe namespace`: status, conditions, its ResourceQuotas and
//! LimitRanges (sections left out when the server serves neither).

use serde_json::Value;

use super::node::Quantity;
use super::writer::{self, Writer, plain, rfc1123z, s};
use crate::session::Session;

pub async fn describe(session: &Session, ns: &Value) -> String {
    let name = s(&ns["metadata"]["name"]);
    let list = |plural: &'static str| async move {
        // A server without the type: no section, as kubectl.
        session.catalog.find(plural)?;
        session
            .get_json(&format!("/api/v1/namespaces/{name}/{plural}"))
            .await
            .ok()
            .map(|l| l["items"].as_array().cloned().unwrap_or_default())
    };
    let quotas = list("resourcequotas").await;
    let limits = list("limitranges").await;
    render(ns, quotas.as_deref(), limits.as_deref())
}

fn canonical(v: &Value) -> String {
    match v.as_str().and_then(Quantity::parse) {
        Some(q) => q.text(),
        None if v.is_null() => "0".into(),
        None => plain(v),
    }
}

fn scope_help(scope: &str) -> &'static str {
    match scope {
        "Terminating" => {
            "Matches all pods that have an active deadline. These pods have a limited lifespan on a node before being actively terminated by the system."
        }
        "NotTerminating" => {
            "Matches all pods that do not have an active deadline. These pods usually include long running pods whose container command is not expected to terminate."
        }
        "BestEffort" => {
            "Matches all pods that do not have resource requirements set. These pods have a best effort quality of service."
        }
        "NotBestEffort" => {
            "Matches all pods that have at least one resource requirement set. These pods have a burstable or guaranteed quality of service."
        }
        _ => "",
    }
}

pub fn render(ns: &Value, quotas: Option<&[Value]>, limits: Option<&[Value]>) -> String {
    let md = &ns["metadata"];
    let mut w = Writer::new();
    w.write(0, format!("Name:\t{}\n", s(&md["name"])));
    writer::labels(&mut w, "", "Labels", &md["labels"]);
    writer::annotations(&mut w, "Annotations", &md["annotations"]);
    w.write(0, format!("Status:\t{}\n", s(&ns["status"]["phase"])));
    let conditions: Vec<&Value> = ns["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if !conditions.is_empty() {
        w.write(0, "Conditions:\n");
        w.write(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n");
        w.write(1, "----\t------\t------------------\t------\t-------\n");
        for c in conditions {
            w.write(
                1,
                format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    s(&c["type"]),
                    s(&c["status"]),
                    rfc1123z(&c["lastTransitionTime"]),
                    s(&c["reason"]),
                    s(&c["message"])
                ),
            );
        }
    }
    if let Some(quotas) = quotas {
        w.write(0, "\n");
        if quotas.is_empty() {
            w.write(0, "No resource quota.\n");
        } else {
            let mut quotas: Vec<&Value> = quotas.iter().collect();
            quotas.sort_by(|a, b| s(&a["metadata"]["name"]).cmp(s(&b["metadata"]["name"])));
            w.write(0, "Resource Quotas\n");
            for q in quotas {
                w.write(1, format!("Name:\t{}\n", s(&q["metadata"]["name"])));
                let mut scopes: Vec<&str> = q["spec"]["scopes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(s)
                    .collect();
                if !scopes.is_empty() {
                    scopes.sort();
                    w.write(1, format!("Scopes:\t{}\n", scopes.join(", ")));
                    for scope in scopes {
                        let help = scope_help(scope);
                        if !help.is_empty() {
                            w.write(1, format!("* {help}\n"));
                        }
                    }
                }
                w.write(1, "Resource\tUsed\tHard\n");
                w.write(1, "--------\t---\t---\n");
                let hard = &q["status"]["hard"];
                let mut names: Vec<&String> = hard
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                    .collect();
                names.sort();
                for n in names {
                    w.write(
                        1,
                        format!(
                            "{n}\t{}\t{}\n",
                            canonical(&q["status"]["used"][n.as_str()]),
                            canonical(&hard[n.as_str()])
                        ),
                    );
                }
            }
        }
    }
    if let Some(limits) = limits {
        w.write(0, "\n");
        if limits.is_empty() {
            w.write(0, "No LimitRange resource.\n");
        } else {
            w.write(0, "Resource Limits\n Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio\n");
            w.write(0, " ----\t--------\t---\t---\t---------------\t-------------\t-----------------------\n");
            for lr in limits {
                for item in lr["spec"]["limits"].as_array().into_iter().flatten() {
                    let fields = [
                        "min",
                        "max",
                        "defaultRequest",
                        "default",
                        "maxLimitRequestRatio",
                    ];
                    let mut names: Vec<&String> = fields
                        .iter()
                        .flat_map(|f| item[*f].as_object().into_iter().flatten().map(|(k, _)| k))
                        .collect();
                    names.sort();
                    names.dedup();
                    for n in names {
                        let cell = |f: &str| match &item[f][n.as_str()] {
                            Value::Null => "-".to_string(),
                            v => canonical(v),
                        };
                        w.write(
                            0,
                            format!(
                                " {}\t{n}\t{}\t{}\t{}\t{}\t{}\n",
                                s(&item["type"]),
                                cell("min"),
                                cell("max"),
                                cell("defaultRequest"),
                                cell("default"),
                                cell("maxLimitRequestRatio")
                            ),
                        );
                    }
                }
            }
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_active_namespace_without_quotas() {
        let ns = json!({"metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team"}},
                        "status": {"phase": "Active"}});
        assert_eq!(
            render(&ns, Some(&[]), Some(&[])),
            "Name:         team\nLabels:       kubernetes.io/metadata.name=team\nAnnotations:  <none>\nStatus:       Active\n\nNo resource quota.\n\nNo LimitRange resource.\n"
        );
        let q = json!({"metadata": {"name": "q"}, "status": {"hard": {"pods": "10"}, "used": {"pods": "2"}}});
        let out = render(&ns, Some(&[q]), None);
        assert!(out.ends_with("Resource Quotas\n  Name:     q\n  Resource  Used  Hard\n  --------  ---   ---\n  pods      2     10\n"), "{out}");
    }
}
