//! `describe service`: type, IPs, each port with its target and the ready
//! endpoints (from the Service's EndpointSlices), affinity and policies.

use serde_json::Value;

use super::events::{self, Reference};
use super::writer::{self, Writer, int, plain, s};
use crate::session::{Session, query_escape};

pub async fn describe(session: &Session, svc: &Value, show_events: bool) -> String {
    let md = &svc["metadata"];
    let uri = format!(
        "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices?labelSelector={}",
        s(&md["namespace"]),
        query_escape(&format!("kubernetes.io/service-name={}", s(&md["name"])))
    );
    let slices = session
        .get_json(&uri)
        .await
        .ok()
        .and_then(|l| l["items"].as_array().cloned())
        .unwrap_or_default();
    let events = if show_events {
        Some(events::search(session, &Reference::to(svc)).await)
    } else {
        None
    };
    render(svc, &slices, events.as_deref())
}

/// The ready endpoints of the slices' ports named `port` (all when None):
/// `ip:port,…`, at most three and `+ N more...`.
pub fn endpoints_line(slices: &[Value], port: Option<&str>) -> String {
    if slices.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    let ready = |e: &Value| e["conditions"]["ready"].as_bool() != Some(false);
    let first_address = |e: &Value| {
        e["addresses"]
            .as_array()
            .and_then(|a| a.first())
            .map(plain)
            .unwrap_or_default()
    };
    for slice in slices {
        let endpoints: Vec<&Value> = slice["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let ports: Vec<&Value> = slice["ports"].as_array().into_iter().flatten().collect();
        if ports.is_empty() {
            for e in &endpoints {
                if list.len() == MAX {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    list.push(first_address(e));
                }
                count += 1;
            }
            continue;
        }
        for p in ports {
            if port.is_some_and(|name| s(&p["name"]) != name) {
                continue;
            }
            for e in &endpoints {
                if list.len() == MAX {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    let addr = first_address(e);
                    let host = if addr.contains(':') {
                        format!("[{addr}]")
                    } else {
                        addr
                    };
                    list.push(format!("{host}:{}", int(&p["port"])));
                }
                count += 1;
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

pub fn render(svc: &Value, slices: &[Value], events: Option<&[Value]>) -> String {
    let (md, spec, status) = (&svc["metadata"], &svc["spec"], &svc["status"]);
    let mut w = Writer::new();
    w.write(0, format!("Name:\t{}\n", s(&md["name"])));
    w.write(0, format!("Namespace:\t{}\n", s(&md["namespace"])));
    writer::labels(&mut w, "", "Labels", &md["labels"]);
    writer::annotations(&mut w, "Annotations", &md["annotations"]);
    w.write(
        0,
        format!("Selector:\t{}\n", writer::format_labels(&spec["selector"])),
    );
    w.write(0, format!("Type:\t{}\n", s(&spec["type"])));
    if let Some(p) = spec["ipFamilyPolicy"].as_str() {
        w.write(0, format!("IP Family Policy:\t{p}\n"));
    }
    let join = |v: &Value, sep: &str| {
        v.as_array()
            .into_iter()
            .flatten()
            .map(plain)
            .collect::<Vec<_>>()
            .join(sep)
    };
    let families = join(&spec["ipFamilies"], ",");
    w.write(0, format!("IP Families:\t{}\n", writer::or_none(&families)));
    w.write(0, format!("IP:\t{}\n", s(&spec["clusterIP"])));
    let ips = join(&spec["clusterIPs"], ",");
    w.write(0, format!("IPs:\t{}\n", writer::or_none(&ips)));
    let external = join(&spec["externalIPs"], ",");
    if !external.is_empty() {
        w.write(0, format!("External IPs:\t{external}\n"));
    }
    if !s(&spec["loadBalancerIP"]).is_empty() {
        w.write(
            0,
            format!("Desired LoadBalancer IP:\t{}\n", s(&spec["loadBalancerIP"])),
        );
    }
    if !s(&spec["externalName"]).is_empty() {
        w.write(0, format!("External Name:\t{}\n", s(&spec["externalName"])));
    }
    let ingress: Vec<String> = status["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            if !s(&i["ip"]).is_empty() {
                match i["ipMode"].as_str() {
                    Some(mode) => format!("{} ({mode})", s(&i["ip"])),
                    None => s(&i["ip"]).to_string(),
                }
            } else {
                s(&i["hostname"]).to_string()
            }
        })
        .collect();
    if !ingress.is_empty() {
        w.write(
            0,
            format!("LoadBalancer Ingress:\t{}\n", ingress.join(", ")),
        );
    }
    for p in spec["ports"].as_array().into_iter().flatten() {
        let name = s(&p["name"]);
        let shown = if name.is_empty() { "<unset>" } else { name };
        let proto = s(&p["protocol"]);
        w.write(0, format!("Port:\t{shown}\t{}/{proto}\n", int(&p["port"])));
        let target = match &p["targetPort"] {
            Value::Null => "0".to_string(),
            other => plain(other),
        };
        w.write(0, format!("TargetPort:\t{target}/{proto}\n"));
        if int(&p["nodePort"]) != 0 {
            w.write(
                0,
                format!("NodePort:\t{shown}\t{}/{proto}\n", int(&p["nodePort"])),
            );
        }
        w.write(
            0,
            format!("Endpoints:\t{}\n", endpoints_line(slices, Some(name))),
        );
    }
    w.write(
        0,
        format!("Session Affinity:\t{}\n", s(&spec["sessionAffinity"])),
    );
    if !s(&spec["externalTrafficPolicy"]).is_empty() {
        w.write(
            0,
            format!(
                "External Traffic Policy:\t{}\n",
                s(&spec["externalTrafficPolicy"])
            ),
        );
    }
    if let Some(p) = spec["internalTrafficPolicy"].as_str() {
        w.write(0, format!("Internal Traffic Policy:\t{p}\n"));
    }
    if int(&spec["healthCheckNodePort"]) != 0 {
        w.write(
            0,
            format!(
                "HealthCheck NodePort:\t{}\n",
                int(&spec["healthCheckNodePort"])
            ),
        );
    }
    let ranges = join(&spec["loadBalancerSourceRanges"], ",");
    if !ranges.is_empty() {
        w.write(0, format!("LoadBalancer Source Ranges:\t{ranges}\n"));
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
    fn endpoints_list_ready_addresses_of_the_port() {
        let ep = |ip: &str, ready: bool| json!({"addresses": [ip], "conditions": {"ready": ready}});
        let slice = json!({"ports": [{"name": "", "port": 80}, {"name": "x", "port": 81}],
                           "endpoints": [ep("10.0.0.1", true), ep("10.0.0.2", false), ep("10.0.0.3", true)]});
        assert_eq!(
            endpoints_line(std::slice::from_ref(&slice), Some("")),
            "10.0.0.1:80,10.0.0.3:80"
        );
        let many = json!({"ports": [{"name": "", "port": 80}],
                          "endpoints": [ep("a", true), ep("b", true), ep("c", true), ep("d", true), ep("e", true)]});
        assert_eq!(
            endpoints_line(&[many], Some("")),
            "a:80,b:80,c:80 + 2 more..."
        );
        assert_eq!(endpoints_line(&[], Some("")), "<none>");
        assert_eq!(endpoints_line(&[json!({})], Some("")), "");
    }
}
