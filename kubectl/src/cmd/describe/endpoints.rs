//! `describe endpoints`: each subset's ready and not-ready addresses and
//! its ports.

use serde_json::Value;

use super::events::{self, Reference};
use super::writer::{self, Writer, int, s};
use crate::session::Session;

pub async fn describe(session: &Session, ep: &Value, show_events: bool) -> String {
    let events = if show_events {
        Some(events::search(session, &Reference::to(ep)).await)
    } else {
        None
    };
    render(ep, events.as_deref())
}

fn ips(list: &Value) -> String {
    let ips: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| s(&a["ip"]))
        .collect();
    writer::or_none(&ips.join(",")).to_string()
}

pub fn render(ep: &Value, events: Option<&[Value]>) -> String {
    let md = &ep["metadata"];
    let mut w = Writer::new();
    w.write(0, format!("Name:\t{}\n", s(&md["name"])));
    w.write(0, format!("Namespace:\t{}\n", s(&md["namespace"])));
    writer::labels(&mut w, "", "Labels", &md["labels"]);
    writer::annotations(&mut w, "Annotations", &md["annotations"]);
    w.write(0, "Subsets:\n");
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        w.write(1, format!("Addresses:\t{}\n", ips(&subset["addresses"])));
        w.write(
            1,
            format!(
                "NotReadyAddresses:\t{}\n",
                ips(&subset["notReadyAddresses"])
            ),
        );
        let ports: Vec<&Value> = subset["ports"].as_array().into_iter().flatten().collect();
        if !ports.is_empty() {
            w.write(1, "Ports:\n");
            w.write(2, "Name\tPort\tProtocol\n");
            w.write(2, "----\t----\t--------\n");
            for p in ports {
                let name = s(&p["name"]);
                let name = if name.is_empty() { "<unset>" } else { name };
                w.write(
                    2,
                    format!("{name}\t{}\t{}\n", int(&p["port"]), s(&p["protocol"])),
                );
            }
        }
        w.write(0, "\n");
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
    fn subsets_list_addresses_and_ports() {
        let ep = json!({"metadata": {"name": "web", "namespace": "default"},
                        "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                                     "ports": [{"port": 80, "protocol": "TCP"}]}]});
        assert_eq!(
            render(&ep, Some(&[])),
            "Name:         web\nNamespace:    default\nLabels:       <none>\nAnnotations:  <none>\nSubsets:\n  Addresses:          10.0.0.1,10.0.0.2\n  NotReadyAddresses:  <none>\n  Ports:\n    Name     Port  Protocol\n    ----     ----  --------\n    <unset>  80    TCP\n\nEvents:  <none>\n"
        );
    }
}
