//! Services: defaults, validation, and the service table. ClusterIP and
//! NodePort allocation happen in admission (`admission/ipalloc.rs`).

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::object::{default, get, i64_at, items, str_at};
use crate::registry::Strategy;
use crate::registry::table::{self, Column, col, selector_string, wide};
use crate::validation::{FieldError, is_dns1123_label, validate_labels};

pub struct ServiceStrategy;

const TYPES: [&str; 4] = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

impl Strategy for ServiceStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
            return;
        };
        default(spec, &["type"], json!("ClusterIP"));
        default(spec, &["sessionAffinity"], json!("None"));
        let kind = str_at(spec, &["type"]).unwrap_or("ClusterIP").to_string();
        if kind != "ExternalName" {
            default(spec, &["internalTrafficPolicy"], json!("Cluster"));
            default(spec, &["ipFamilyPolicy"], json!("SingleStack"));
            default(spec, &["ipFamilies"], json!(["IPv4"]));
        }
        if kind == "NodePort" || kind == "LoadBalancer" {
            default(spec, &["externalTrafficPolicy"], json!("Cluster"));
        }
        if kind == "LoadBalancer" {
            default(spec, &["allocateLoadBalancerNodePorts"], json!(true));
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports {
                default(port, &["protocol"], json!("TCP"));
                if let Some(number) = port.get("port").cloned() {
                    default(port, &["targetPort"], number);
                }
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let Some(spec) = get(obj, &["spec"]) else {
            return vec![FieldError::required("spec", "")];
        };
        let kind = str_at(spec, &["type"]).unwrap_or("ClusterIP");
        if !TYPES.contains(&kind) {
            errors.push(FieldError::not_supported("spec.type", json!(kind), &TYPES));
        }
        let headless = str_at(spec, &["clusterIP"]) == Some("None");
        let ports = items(spec, &["ports"]);
        if ports.is_empty() && kind != "ExternalName" && !headless {
            errors.push(FieldError::required("spec.ports", ""));
        }
        if kind == "ExternalName" && str_at(spec, &["externalName"]).is_none_or(str::is_empty) {
            errors.push(FieldError::required("spec.externalName", ""));
        }
        let mut names = HashSet::new();
        for (i, port) in ports.iter().enumerate() {
            let at = format!("spec.ports[{i}]");
            match str_at(port, &["name"]).filter(|n| !n.is_empty()) {
                Some(name) => {
                    if !is_dns1123_label(name) {
                        errors.push(FieldError::invalid(format!("{at}.name"), json!(name), "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
                    }
                    if !names.insert(name.to_string()) {
                        errors.push(FieldError::duplicate(format!("{at}.name"), json!(name)));
                    }
                }
                None if ports.len() > 1 => {
                    errors.push(FieldError::required(format!("{at}.name"), ""))
                }
                None => {}
            }
            match i64_at(port, &["port"]) {
                Some(n) if (1..=65535).contains(&n) => {}
                Some(n) => errors.push(FieldError::invalid(
                    format!("{at}.port"),
                    json!(n),
                    "must be between 1 and 65535, inclusive",
                )),
                None => errors.push(FieldError::required(format!("{at}.port"), "")),
            }
            let protocol = str_at(port, &["protocol"]).unwrap_or("TCP");
            if !["TCP", "UDP", "SCTP"].contains(&protocol) {
                errors.push(FieldError::not_supported(
                    format!("{at}.protocol"),
                    json!(protocol),
                    &["SCTP", "TCP", "UDP"],
                ));
            }
            if let Some(node_port) = i64_at(port, &["nodePort"]).filter(|p| *p != 0) {
                if kind != "NodePort" && kind != "LoadBalancer" {
                    errors.push(FieldError::forbidden(
                        format!("{at}.nodePort"),
                        "may not be used when `type` is 'ClusterIP'",
                    ));
                } else if !(1..=65535).contains(&node_port) {
                    errors.push(FieldError::invalid(
                        format!("{at}.nodePort"),
                        json!(node_port),
                        "must be between 1 and 65535, inclusive",
                    ));
                }
            }
            if let Some(target) = port.get("targetPort") {
                let ok = match target {
                    Value::Number(n) => n.as_i64().is_some_and(|n| (1..=65535).contains(&n)),
                    Value::String(s) => s.len() <= 15 && is_dns1123_label(s),
                    _ => false,
                };
                if !ok {
                    errors.push(FieldError::invalid(format!("{at}.targetPort"), target.clone(), "must be a port number between 1 and 65535 or a name of at most 15 characters"));
                }
            }
        }
        errors.extend(validate_labels("spec.selector", spec.get("selector")));
        errors
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        let old_ip = str_at(old, &["spec", "clusterIP"]).unwrap_or("");
        let new_ip = str_at(new, &["spec", "clusterIP"]).unwrap_or("");
        let type_change = str_at(old, &["spec", "type"]) != str_at(new, &["spec", "type"]);
        if !old_ip.is_empty() && old_ip != new_ip && !type_change {
            errors.push(FieldError::immutable("spec.clusterIPs[0]", json!(new_ip)));
        }
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            table::name_column(),
            col("Type", "type determines how the Service is exposed."),
            col(
                "Cluster-IP",
                "clusterIP is the IP address of the service and is usually assigned randomly.",
            ),
            col(
                "External-IP",
                "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
            ),
            col(
                "Port(s)",
                "The list of ports that are exposed by this service.",
            ),
            table::age_column(),
            wide(col(
                "Selector",
                "Route service traffic to pods with label keys and values matching this selector.",
            )),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let kind = str_at(obj, &["spec", "type"]).unwrap_or("ClusterIP");
        let cluster_ip = str_at(obj, &["spec", "clusterIP"])
            .filter(|s| !s.is_empty())
            .unwrap_or("<none>");
        let external: Vec<String> = match kind {
            "ExternalName" => str_at(obj, &["spec", "externalName"])
                .map(String::from)
                .into_iter()
                .collect(),
            "LoadBalancer" => {
                let ingress: Vec<String> = items(obj, &["status", "loadBalancer", "ingress"])
                    .iter()
                    .filter_map(|i| {
                        str_at(i, &["ip"])
                            .or_else(|| str_at(i, &["hostname"]))
                            .map(String::from)
                    })
                    .collect();
                if ingress.is_empty() {
                    vec!["<pending>".into()]
                } else {
                    ingress
                }
            }
            _ => items(obj, &["spec", "externalIPs"])
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
        };
        let ports: Vec<String> = items(obj, &["spec", "ports"])
            .iter()
            .map(|p| {
                let protocol = str_at(p, &["protocol"]).unwrap_or("TCP");
                let port = i64_at(p, &["port"]).unwrap_or(0);
                match i64_at(p, &["nodePort"]).filter(|n| *n != 0) {
                    Some(node_port) => format!("{port}:{node_port}/{protocol}"),
                    None => format!("{port}/{protocol}"),
                }
            })
            .collect();
        vec![
            table::name(obj),
            json!(kind),
            json!(cluster_ip),
            json!(table::joined(external)),
            json!(table::joined(ports)),
            table::age(obj),
            json!(selector_string(get(obj, &["spec", "selector"]))),
        ]
    }

    fn field(&self, obj: &Value, path: &str) -> Option<String> {
        match path {
            "spec.clusterIP" => Some(str_at(obj, &["spec", "clusterIP"]).unwrap_or("").into()),
            "spec.type" => Some(str_at(obj, &["spec", "type"]).unwrap_or("").into()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_cells() {
        let mut svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "nodePort": 30080}]}});
        ServiceStrategy.default(&mut svc);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
        assert!(ServiceStrategy.validate(&svc).is_empty());
        svc["spec"]["clusterIP"] = json!("10.96.0.10");
        let cells = ServiceStrategy.cells(&svc);
        assert_eq!(cells[1], "NodePort");
        assert_eq!(cells[3], "<none>");
        assert_eq!(cells[4], "80:30080/TCP");
        assert_eq!(cells[6], "app=web");
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"ports": [{"port": 80}, {"port": 81}]}),
                "spec.ports[0].name: Required value",
            ),
            (
                json!({"ports": [{"port": 0}]}),
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            ),
            (
                json!({"type": "Magic", "ports": [{"port": 80}]}),
                "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
            ),
            (json!({}), "spec.ports: Required value"),
        ];
        for (spec, want) in cases {
            let svc = json!({"metadata": {"name": "s"}, "spec": spec});
            assert_eq!(ServiceStrategy.validate(&svc)[0].to_string(), want);
        }
        let old = json!({"spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}});
        let new = json!({"spec": {"clusterIP": "10.96.0.11", "ports": [{"port": 80}]}});
        assert_eq!(
            ServiceStrategy.validate_update(&new, &old)[0].to_string(),
            "spec.clusterIPs[0]: Invalid value: \"10.96.0.11\": field is immutable"
        );
    }
}
