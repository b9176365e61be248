//! The core/v1 Endpoints object of a Service (upstream `endpoint`
//! controller's `syncService`), as a pure function of the Service, its pods
//! and the Endpoints seen: every backing pod is an address — in `addresses`
//! when Ready (or when the Service publishes not-ready addresses), else in
//! `notReadyAddresses` — with the Service's ports resolved on that pod.
//! Addresses with the same ports share a subset. A write happens only when
//! the subsets, the labels or the capacity annotation differ.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::address;

/// When the last change that made the controller write happened (the
/// newest pod or Service transition it saw). Upstream marks the Endpoints it
/// manages with it, which is also how a leftover one is told from a
/// user's after its Service went.
pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Set when more than [`MAX_ADDRESSES`] addresses had to be cut.
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Most addresses an Endpoints object holds (upstream's limit); the slices
/// hold them all.
pub const MAX_ADDRESSES: usize = 1000;

/// What to do with a Service's Endpoints.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Create(Box<Endpoints>),
    /// A JSON merge patch, with the resourceVersion seen as precondition.
    Update(Value),
    /// The Service is gone: delete its Endpoints (that incarnation).
    Delete {
        uid: Option<String>,
    },
}

/// The Endpoints the controller wants for `service` (which has a selector).
pub fn desired(service: &Service, pods: &[Pod]) -> Endpoints {
    let publish = address::publish_not_ready(service);
    let ports = address::ports(service);
    // ports of an address → (ready, not ready)
    type Group = (Vec<EndpointAddress>, Vec<EndpointAddress>);
    let mut groups: BTreeMap<Vec<(String, i32, String)>, Group> = BTreeMap::new();
    for pod in address::backing_pods(service, pods).unwrap_or_default() {
        if !address::should_include(pod, publish) {
            continue;
        }
        let ip = address::pod_ip(pod).unwrap_or_default().to_string();
        let addr = EndpointAddress {
            ip,
            hostname: address::hostname(pod, service),
            node_name: address::node_name(pod),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            }),
        };
        let mut resolved: Vec<(String, i32, String)> = ports
            .iter()
            .filter_map(|p| {
                let port = address::resolve_port(pod, p)?;
                Some((
                    p.name.clone().unwrap_or_default(),
                    port,
                    address::port_protocol(p),
                ))
            })
            .collect();
        // A Service without ports has addresses only when headless (DNS
        // records need no port); otherwise a pod without any resolved
        // port serves nothing.
        if resolved.is_empty() && !(ports.is_empty() && address::is_headless(service)) {
            continue;
        }
        resolved.sort();
        let group = groups.entry(resolved).or_default();
        if publish || address::is_ready(pod) {
            group.0.push(addr);
        } else {
            group.1.push(addr);
        }
    }
    let mut truncated = false;
    let mut room = MAX_ADDRESSES;
    let mut subsets = Vec::new();
    for (ports, (mut ready, mut not_ready)) in groups {
        sort_addresses(&mut ready);
        sort_addresses(&mut not_ready);
        // Ready addresses are kept first: they are the ones that serve.
        for list in [&mut ready, &mut not_ready] {
            if list.len() > room {
                list.truncate(room);
                truncated = true;
            }
            room -= list.len();
        }
        if ready.is_empty() && not_ready.is_empty() {
            continue;
        }
        let ports: Vec<EndpointPort> = ports
            .into_iter()
            .map(|(name, port, protocol)| EndpointPort {
                name: (!name.is_empty()).then_some(name),
                port,
                protocol: Some(protocol),
                app_protocol: None,
            })
            .collect();
        subsets.push(EndpointSubset {
            addresses: (!ready.is_empty()).then_some(ready),
            not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
            ports: (!ports.is_empty()).then_some(ports),
        });
    }
    let mut annotations = BTreeMap::new();
    if let Some(t) = trigger_time(service, pods) {
        annotations.insert(TRIGGER_TIME.to_string(), t.to_string());
    }
    if truncated {
        annotations.insert(OVER_CAPACITY.to_string(), "truncated".to_string());
    }
    Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            labels: Some(address::owned_labels(service)).filter(|l| !l.is_empty()),
            annotations: Some(annotations).filter(|a| !a.is_empty()),
            ..Default::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    }
}

fn sort_addresses(list: &mut [EndpointAddress]) {
    list.sort_by(|a, b| {
        let name = |x: &EndpointAddress| x.target_ref.as_ref().and_then(|r| r.name.clone());
        a.ip.cmp(&b.ip).then_with(|| name(a).cmp(&name(b)))
    });
}

/// The newest change among the Service and its pods: creation, a Ready
/// transition, a deletion.
pub(crate) fn trigger_time(service: &Service, pods: &[Pod]) -> Option<Timestamp> {
    let mut newest = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
    for pod in address::backing_pods(service, pods).unwrap_or_default() {
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.last_transition_time.as_ref());
        for t in [
            pod.metadata.creation_timestamp.as_ref(),
            ready,
            pod.metadata.deletion_timestamp.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            newest = newest.max(Some(t.0));
        }
    }
    newest
}

/// Subsets in one canonical order, so that equal contents compare equal
/// whatever order the server returned them in.
fn canonical(subsets: Option<&Vec<EndpointSubset>>) -> Vec<EndpointSubset> {
    let mut out: Vec<EndpointSubset> = subsets
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut s| {
            for list in [&mut s.addresses, &mut s.not_ready_addresses] {
                if let Some(l) = list.as_mut() {
                    sort_addresses(l);
                }
                if list.as_ref().is_some_and(|l| l.is_empty()) {
                    *list = None;
                }
            }
            if let Some(p) = s.ports.as_mut() {
                for port in p.iter_mut() {
                    port.protocol.get_or_insert_with(|| "TCP".into());
                }
                p.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
            }
            if s.ports.as_ref().is_some_and(|p| p.is_empty()) {
                s.ports = None;
            }
            s
        })
        .collect();
    out.sort_by_key(|s| serde_json::to_string(&s.ports).unwrap_or_default());
    out
}

/// A merge patch turning the `observed` map into `desired` (keys no longer
/// wanted are set to null).
fn map_patch(
    observed: Option<&BTreeMap<String, String>>,
    desired: Option<&BTreeMap<String, String>>,
    only: impl Fn(&str) -> bool,
) -> serde_json::Map<String, Value> {
    let mut patch = serde_json::Map::new();
    for k in observed.into_iter().flat_map(|m| m.keys()) {
        if only(k) && !desired.is_some_and(|d| d.contains_key(k)) {
            patch.insert(k.clone(), Value::Null);
        }
    }
    for (k, v) in desired.into_iter().flatten() {
        patch.insert(k.clone(), json!(v));
    }
    patch
}

/// The decision for one Service key: `service` and `observed` as the caches
/// hold them (either may be gone).
pub fn plan(
    service: Option<&Service>,
    pods: &[Pod],
    observed: Option<&Endpoints>,
) -> Option<Action> {
    let Some(service) = service else {
        return observed.map(|ep| Action::Delete {
            uid: ep.metadata.uid.clone(),
        });
    };
    address::selector(service)?;
    let want = desired(service, pods);
    let Some(seen) = observed else {
        return Some(Action::Create(Box::new(want)));
    };
    let annotation = |e: &Endpoints, k: &str| {
        e.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .cloned()
    };
    let labels = |e: &Endpoints| e.metadata.labels.clone().unwrap_or_default();
    let same = canonical(want.subsets.as_ref()) == canonical(seen.subsets.as_ref())
        && labels(&want) == labels(seen)
        && annotation(&want, OVER_CAPACITY) == annotation(seen, OVER_CAPACITY);
    if same {
        return None;
    }
    // Annotations: ours are set or removed; any other stays as it is.
    let annotations = map_patch(
        seen.metadata.annotations.as_ref(),
        want.metadata.annotations.as_ref(),
        |k| k == TRIGGER_TIME || k == OVER_CAPACITY,
    );
    let labels = map_patch(
        seen.metadata.labels.as_ref(),
        want.metadata.labels.as_ref(),
        |_| true,
    );
    Some(Action::Update(json!({
        "metadata": {
            "resourceVersion": seen.metadata.resource_version,
            "labels": labels,
            "annotations": annotations,
        },
        "subsets": want.subsets.unwrap_or_default(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(extra: Value) -> Service {
        let mut v = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid", "labels": {"app": "web"},
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10",
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}
        });
        merge(&mut v, extra);
        serde_json::from_value(v).unwrap()
    }

    fn merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    /// A pod named `name` with IP `ip`, Ready or not, whose container names
    /// port `http` as `port`.
    fn pod(name: &str, ip: &str, ready: bool, port: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "web"},
                         "creationTimestamp": "2024-01-01T00:00:01Z"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [
                {"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": "2024-01-01T00:00:05Z"}]}
        }))
        .unwrap()
    }

    fn ips(list: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        list.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn ready_and_not_ready_addresses_with_ports_by_name() {
        let pods = [
            pod("b", "10.0.0.2", true, 8080),
            pod("a", "10.0.0.1", true, 8080),
            pod("c", "10.0.0.3", false, 8080),
            // Another namespace: not this Service's.
            {
                let mut p = pod("x", "10.0.0.9", true, 8080);
                p.metadata.namespace = Some("other".into());
                p
            },
        ];
        let ep = desired(&service(json!({})), &pods);
        let subsets = ep.subsets.unwrap();
        assert_eq!(subsets.len(), 1);
        assert_eq!(ips(&subsets[0].addresses), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.0.0.3"]);
        let port = &subsets[0].ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.port, port.protocol.as_deref()),
            (Some("http"), 8080, Some("TCP"))
        );
        let a = &subsets[0].addresses.as_ref().unwrap()[0];
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        let r = a.target_ref.as_ref().unwrap();
        assert_eq!(
            (r.kind.as_deref(), r.name.as_deref(), r.uid.as_deref()),
            (Some("Pod"), Some("a"), Some("uid-a"))
        );
        assert_eq!(ep.metadata.labels.unwrap()["app"], "web");
        assert_eq!(
            ep.metadata.annotations.unwrap()[TRIGGER_TIME],
            "2024-01-01T00:00:05Z"
        );
    }

    #[test]
    fn table_of_services_and_pods() {
        struct Case {
            what: &'static str,
            service: Value,
            pods: Vec<Pod>,
            // per subset: (ready ips, not ready ips, ports)
            want: Vec<(Vec<&'static str>, Vec<&'static str>, Vec<i32>)>,
        }
        let terminating = {
            let mut p = pod("t", "10.0.0.7", true, 8080);
            p.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    "2024-01-01T00:00:09Z".parse().unwrap(),
                ));
            p
        };
        let no_ip = pod("n", "", true, 8080);
        let cases = [
            Case {
                what: "publishNotReadyAddresses lists every pod as ready",
                service: json!({"spec": {"publishNotReadyAddresses": true}}),
                pods: vec![
                    pod("a", "10.0.0.1", false, 8080),
                    pod("b", "10.0.0.2", true, 8080),
                ],
                want: vec![(vec!["10.0.0.1", "10.0.0.2"], vec![], vec![8080])],
            },
            Case {
                what: "pods resolving the name to different ports get subsets of their own",
                service: json!({}),
                pods: vec![
                    pod("a", "10.0.0.1", true, 8080),
                    pod("b", "10.0.0.2", true, 9090),
                ],
                want: vec![
                    (vec!["10.0.0.1"], vec![], vec![8080]),
                    (vec!["10.0.0.2"], vec![], vec![9090]),
                ],
            },
            Case {
                what: "terminating pods and pods without an IP are left out",
                service: json!({}),
                pods: vec![terminating.clone(), no_ip, pod("a", "10.0.0.1", true, 8080)],
                want: vec![(vec!["10.0.0.1"], vec![], vec![8080])],
            },
            Case {
                what: "publishNotReadyAddresses keeps terminating pods",
                service: json!({"spec": {"publishNotReadyAddresses": true}}),
                pods: vec![terminating],
                want: vec![(vec!["10.0.0.7"], vec![], vec![8080])],
            },
            Case {
                what: "a pod without the named port serves nothing",
                service: json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": "grpc"}]}}),
                pods: vec![pod("a", "10.0.0.1", true, 8080)],
                want: vec![],
            },
            Case {
                what: "a numeric targetPort needs no container port",
                service: json!({"spec": {"ports": [{"port": 80, "targetPort": 8000}]}}),
                pods: vec![pod("a", "10.0.0.1", true, 8080)],
                want: vec![(vec!["10.0.0.1"], vec![], vec![8000])],
            },
            Case {
                what: "a headless Service without ports lists addresses only",
                service: json!({"spec": {"clusterIP": "None", "ports": []}}),
                pods: vec![pod("a", "10.0.0.1", true, 8080)],
                want: vec![(vec!["10.0.0.1"], vec![], vec![])],
            },
            Case {
                what: "a pod whose labels do not match is not selected",
                service: json!({"spec": {"selector": {"app": "db"}}}),
                pods: vec![pod("a", "10.0.0.1", true, 8080)],
                want: vec![],
            },
        ];
        for case in cases {
            let ep = desired(&service(case.service), &case.pods);
            let got: Vec<(Vec<&str>, Vec<&str>, Vec<i32>)> = ep
                .subsets
                .iter()
                .flatten()
                .map(|s| {
                    (
                        ips(&s.addresses),
                        ips(&s.not_ready_addresses),
                        s.ports.iter().flatten().map(|p| p.port).collect(),
                    )
                })
                .collect();
            assert_eq!(got, case.want, "{}", case.what);
        }
    }

    #[test]
    fn headless_and_hostnames() {
        let svc = service(json!({"spec": {"clusterIP": "None"}}));
        let mut p = pod("a", "10.0.0.1", true, 8080);
        let spec = p.spec.as_mut().unwrap();
        spec.hostname = Some("a-0".into());
        spec.subdomain = Some("web".into());
        let ep = desired(&svc, &[p]);
        assert_eq!(ep.metadata.labels.unwrap()[address::HEADLESS_LABEL], "");
        let a = &ep.subsets.unwrap()[0].addresses.clone().unwrap()[0];
        assert_eq!(a.hostname.as_deref(), Some("a-0"));
    }

    #[test]
    fn over_capacity_keeps_ready_addresses_first() {
        let mut pods: Vec<Pod> = (0..MAX_ADDRESSES + 5)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    &format!("10.1.{}.{}", i / 250, i % 250),
                    true,
                    8080,
                )
            })
            .collect();
        pods.push(pod("late", "10.9.9.9", false, 8080));
        let ep = desired(&service(json!({})), &pods);
        let s = &ep.subsets.unwrap()[0];
        assert_eq!(s.addresses.as_ref().unwrap().len(), MAX_ADDRESSES);
        assert!(s.not_ready_addresses.is_none());
        assert_eq!(ep.metadata.annotations.unwrap()[OVER_CAPACITY], "truncated");
    }

    #[test]
    fn writes_only_what_changed() {
        let svc = service(json!({}));
        let pods = [
            pod("a", "10.0.0.1", true, 8080),
            pod("b", "10.0.0.2", false, 8080),
        ];
        // Nothing there yet: create.
        let Some(Action::Create(created)) = plan(Some(&svc), &pods, None) else {
            panic!("expected a create");
        };
        // As the server returns it, with a resourceVersion, addresses in
        // another order and defaults filled: nothing to do.
        let mut seen = (*created).clone();
        seen.metadata.resource_version = Some("7".into());
        seen.metadata.uid = Some("ep-uid".into());
        if let Some(s) = seen.subsets.as_mut() {
            s[0].addresses.as_mut().unwrap().reverse();
        }
        assert_eq!(plan(Some(&svc), &pods, Some(&seen)), None);
        // A newer trigger time alone writes nothing either.
        let later = [pod("a", "10.0.0.1", true, 8080), {
            let mut b = pod("b", "10.0.0.2", false, 8080);
            b.metadata.creation_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    "2024-02-01T00:00:00Z".parse().unwrap(),
                ));
            b
        }];
        assert_eq!(plan(Some(&svc), &later, Some(&seen)), None);

        // b turns ready: one update, preconditioned on what was seen.
        let now_ready = [
            pod("a", "10.0.0.1", true, 8080),
            pod("b", "10.0.0.2", true, 8080),
        ];
        let Some(Action::Update(patch)) = plan(Some(&svc), &now_ready, Some(&seen)) else {
            panic!("expected an update");
        };
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        assert_eq!(
            patch["subsets"][0]["addresses"],
            json!([
                {"ip": "10.0.0.1", "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}},
                {"ip": "10.0.0.2", "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "default", "name": "b", "uid": "uid-b"}},
            ])
        );
        assert!(patch["subsets"][0].get("notReadyAddresses").is_none());

        // A label removed from the Service is removed from its Endpoints;
        // someone else's annotation stays.
        let mut seen2 = seen.clone();
        seen2
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("old".into(), "x".into());
        seen2
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("note".into(), "mine".into());
        let Some(Action::Update(patch)) = plan(Some(&svc), &pods, Some(&seen2)) else {
            panic!("expected an update");
        };
        assert_eq!(
            patch["metadata"]["labels"],
            json!({"old": null, "app": "web"})
        );
        assert!(patch["metadata"]["annotations"].get("note").is_none());
    }

    #[test]
    fn selectorless_services_are_left_alone_and_gone_ones_deleted() {
        let svc = service(json!({"spec": {"selector": null}}));
        let theirs: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "ep-uid"},
            "subsets": [{"addresses": [{"ip": "192.168.1.1"}], "ports": [{"port": 5432}]}]
        }))
        .unwrap();
        let pods = [pod("a", "10.0.0.1", true, 8080)];
        assert_eq!(plan(Some(&svc), &pods, Some(&theirs)), None);
        assert_eq!(plan(Some(&svc), &pods, None), None);
        assert_eq!(
            plan(None, &pods, Some(&theirs)),
            Some(Action::Delete {
                uid: Some("ep-uid".into())
            })
        );
        assert_eq!(plan(None, &pods, None), None);
    }
}
