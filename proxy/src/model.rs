//! Services and EndpointSlices as the API holds them → the
//! [`ServicePort`]s the rules are made from (pure, table-tested).

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::rules::{Endpoint, ServicePort};

/// The slices of a Service carry its name in this label.
const SERVICE_NAME: &str = "kubernetes.io/service-name";

/// A Service's namespace, name and spec (`None` for a malformed one).
pub fn parts(svc: &Service) -> Option<(&str, &str, &ServiceSpec)> {
    Some((
        svc.metadata.namespace.as_deref()?,
        svc.metadata.name.as_deref()?,
        svc.spec.as_ref()?,
    ))
}

/// The IPv4 EndpointSlices of Service `ns/name` (by their service-name label).
pub fn slices_of<'a>(slices: &'a [EndpointSlice], ns: &str, name: &str) -> Vec<&'a EndpointSlice> {
    all_slices_of(slices, ns, name)
        .into_iter()
        .filter(|s| s.address_type == "IPv4")
        .collect()
}

/// The EndpointSlices of Service `ns/name` of every address type (DNS
/// answers AAAA from the IPv6 ones).
pub fn all_slices_of<'a>(
    slices: &'a [EndpointSlice],
    ns: &str,
    name: &str,
) -> Vec<&'a EndpointSlice> {
    slices
        .iter()
        .filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns)
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME))
                    .map(String::as_str)
                    == Some(name)
        })
        .collect()
}

/// Every port of every Service with a ClusterIP, with the endpoints its
/// slices give that port (matched by port name and protocol). With
/// `local_node`, Services whose traffic policy is `Local` keep only this
/// node's endpoints.
pub fn service_ports(
    services: &[Service],
    slices: &[EndpointSlice],
    local_node: Option<&str>,
) -> Vec<ServicePort> {
    let mut out = Vec::new();
    for svc in services {
        let Some((ns, name, spec)) = parts(svc) else {
            continue;
        };
        let Some(cluster_ip) = spec.cluster_ip.clone() else {
            continue;
        };
        let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .map_or(10800, |t| t.max(1) as u32)
        });
        let local_only = spec.internal_traffic_policy.as_deref() == Some("Local")
            || spec.external_traffic_policy.as_deref() == Some("Local");
        let mine = slices_of(slices, ns, name);
        for p in spec.ports.iter().flatten() {
            let protocol = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
            if protocol != "tcp" && protocol != "udp" {
                continue;
            }
            let port_name = p.name.clone().unwrap_or_default();
            let mut endpoints = Vec::new();
            for slice in &mine {
                let Some(sp) = slice.ports.iter().flatten().find(|sp| {
                    sp.name.clone().unwrap_or_default() == port_name
                        && sp.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase() == protocol
                }) else {
                    continue;
                };
                let Some(port) = sp.port.and_then(|p| u16::try_from(p).ok()) else {
                    continue;
                };
                for e in slice.endpoints.iter().flatten() {
                    if local_only && local_node.is_some() && e.node_name.as_deref() != local_node {
                        continue;
                    }
                    let c = e.conditions.clone().unwrap_or_default();
                    let ready = c.ready.unwrap_or(true);
                    for ip in &e.addresses {
                        endpoints.push(Endpoint {
                            ip: ip.clone(),
                            port,
                            ready,
                            serving: c.serving.unwrap_or(ready),
                            terminating: c.terminating.unwrap_or(false),
                        });
                    }
                }
            }
            endpoints.sort();
            endpoints.dedup();
            out.push(ServicePort {
                namespace: ns.into(),
                name: name.into(),
                port_name,
                cluster_ip: cluster_ip.clone(),
                protocol,
                port: u16::try_from(p.port).unwrap_or(0),
                node_port: p.node_port.and_then(|n| u16::try_from(n).ok()),
                endpoints,
                affinity_seconds,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slices_give_each_port_its_endpoints() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": "web"},
            "spec": {"clusterIP": "10.96.0.20", "type": "NodePort",
                     "sessionAffinity": "ClientIP",
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080},
                               {"name": "dns", "port": 53, "protocol": "UDP"}]}
        }))
        .unwrap();
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": "web-abc",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.1.2"], "conditions": {"ready": true}, "nodeName": "n1"},
                {"addresses": ["10.244.2.2"], "conditions": {"ready": false, "serving": true, "terminating": true}, "nodeName": "n2"}
            ]
        }))
        .unwrap();
        let other: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"namespace": "shop", "name": "web-x",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 9999}],
            "endpoints": [{"addresses": ["10.244.9.9"]}]
        }))
        .unwrap();
        let ports = service_ports(&[svc], &[slice, other], Some("n1"));
        assert_eq!(ports.len(), 2);
        let http = &ports[0];
        assert_eq!(
            (http.port, http.node_port, http.protocol.as_str()),
            (80, Some(30080), "tcp")
        );
        assert_eq!(http.affinity_seconds, Some(10800));
        assert_eq!(
            http.endpoints,
            vec![
                Endpoint {
                    ip: "10.244.1.2".into(),
                    port: 8080,
                    ready: true,
                    serving: true,
                    terminating: false
                },
                Endpoint {
                    ip: "10.244.2.2".into(),
                    port: 8080,
                    ready: false,
                    serving: true,
                    terminating: true
                },
            ]
        );
        // The UDP port has no slice port: no endpoints (its traffic is rejected).
        assert_eq!(ports[1].protocol, "udp");
        assert!(ports[1].endpoints.is_empty());
    }
}
