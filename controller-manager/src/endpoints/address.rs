//! Which pods back a Service, and on which ports: the rules both the
//! Endpoints and the EndpointSlice controllers follow (upstream
//! `ShouldPodBeInEndpoints`, `FindPort`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Label on the Endpoints and slices of a headless Service (`clusterIP: None`).
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// The Service's selector, when it has one. A Service without a selector
/// (or with an empty one, which the API server stores as none) has
/// user-managed Endpoints: the controllers leave it alone.
pub fn selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    service
        .spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

/// Whether `pod` carries every label of `selector`.
pub fn selected(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

pub fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

pub fn publish_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

pub fn ports(service: &Service) -> &[ServicePort] {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or(&[])
}

/// The pod's (first) IP, once the kubelet has reported one.
pub fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()?
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Whether the pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    crate::replicaset::plan::is_ready(pod)
}

/// Whether `pod` belongs in the Service's endpoints at all: it has an IP,
/// has not finished (Succeeded/Failed pods never serve again), and is not
/// terminating unless `include_terminating`.
pub fn should_include(pod: &Pod, include_terminating: bool) -> bool {
    if pod_ip(pod).is_none() {
        return false;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    include_terminating || !is_terminating(pod)
}

/// The pods of `pods` (any namespace) that back `service`, when it has a selector.
pub fn backing_pods<'a>(service: &Service, pods: &'a [Pod]) -> Option<Vec<&'a Pod>> {
    let selector = selector(service)?;
    let ns = service.metadata.namespace.as_deref();
    Some(
        pods.iter()
            .filter(|p| p.metadata.namespace.as_deref() == ns && selected(selector, p))
            .collect(),
    )
}

fn protocol(p: Option<&str>) -> &str {
    p.filter(|p| !p.is_empty()).unwrap_or("TCP")
}

/// The port `service_port` reaches on `pod`: `targetPort` as a number, or
/// by name among the pod's container ports of the same protocol; unset means
/// the Service's own port. `None`: the pod has no port by that name (the
/// pod is left out of that port, as upstream).
pub fn resolve_port(pod: &Pod, service_port: &ServicePort) -> Option<i32> {
    match &service_port.target_port {
        None => Some(service_port.port),
        Some(IntOrString::Int(0)) => Some(service_port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let want = protocol(service_port.protocol.as_deref());
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name) && protocol(p.protocol.as_deref()) == want
                })
                .map(|p| p.container_port)
        }
    }
}

/// The protocol of a Service port, defaulted as the API server does.
pub fn port_protocol(service_port: &ServicePort) -> String {
    protocol(service_port.protocol.as_deref()).to_string()
}

/// The DNS hostname a pod gets in the Service's records: its `hostname`,
/// when its `subdomain` is this Service (upstream's rule for headless
/// Services and StatefulSets).
pub fn hostname(pod: &Pod, service: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let host = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == service.metadata.name.as_deref()).then(|| host.to_string())
}

pub fn node_name(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()?
        .node_name
        .clone()
        .filter(|n| !n.is_empty())
}

/// The Service's labels for the objects it owns, plus the headless marker.
pub fn owned_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if is_headless(service) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn port(v: serde_json::Value) -> ServicePort {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn target_ports_resolve_by_number_name_and_protocol() {
        let p = pod(json!({
            "metadata": {"name": "a"},
            "spec": {"containers": [
                {"name": "web", "ports": [{"name": "http", "containerPort": 8080}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}]},
                {"name": "side", "ports": [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]},
            ]}
        }));
        let cases = [
            (json!({"port": 80}), Some(80)),
            (json!({"port": 80, "targetPort": 0}), Some(80)),
            (json!({"port": 80, "targetPort": 8000}), Some(8000)),
            (json!({"port": 80, "targetPort": "http"}), Some(8080)),
            (json!({"port": 80, "targetPort": "metrics"}), Some(9090)),
            (
                json!({"port": 53, "targetPort": "dns", "protocol": "UDP"}),
                Some(53),
            ),
            // The name exists, but for another protocol.
            (json!({"port": 53, "targetPort": "dns"}), None),
            (json!({"port": 80, "targetPort": "nope"}), None),
            // A string is a name, even made of digits (upstream FindPort).
            (json!({"port": 80, "targetPort": "8080"}), None),
        ];
        for (sp, want) in cases {
            assert_eq!(resolve_port(&p, &port(sp.clone())), want, "{sp}");
        }
    }

    #[test]
    fn which_pods_are_included() {
        let base =
            json!({"metadata": {"name": "a"}, "status": {"phase": "Running", "podIP": "10.0.0.1"}});
        let mut no_ip = base.clone();
        no_ip["status"]["podIP"] = json!("");
        let mut done = base.clone();
        done["status"]["phase"] = json!("Succeeded");
        let mut failed = base.clone();
        failed["status"]["phase"] = json!("Failed");
        let mut terminating = base.clone();
        terminating["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        let cases = [
            (base, false, true),
            (no_ip, true, false),
            (done, true, false),
            (failed, true, false),
            (terminating.clone(), false, false),
            (terminating, true, true),
        ];
        for (p, include_terminating, want) in cases {
            assert_eq!(
                should_include(&pod(p.clone()), include_terminating),
                want,
                "{p} {include_terminating}"
            );
        }
    }

    #[test]
    fn empty_selector_is_no_selector() {
        let s: Service =
            serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {"selector": {}}}))
                .unwrap();
        assert!(selector(&s).is_none());
        let s: Service = serde_json::from_value(
            json!({"metadata": {"name": "s"}, "spec": {"selector": {"app": "web"}}}),
        )
        .unwrap();
        let web = pod(json!({"metadata": {"name": "a", "labels": {"app": "web", "x": "y"}}}));
        let other = pod(json!({"metadata": {"name": "b", "labels": {"app": "db"}}}));
        assert!(selected(selector(&s).unwrap(), &web));
        assert!(!selected(selector(&s).unwrap(), &other));
    }
}
