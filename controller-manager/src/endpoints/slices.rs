//! The discovery.k8s.io/v1 EndpointSlices of a Service (upstream
//! `endpointslice` controller's reconciler), as a pure function of the
//! Service, its pods and the slices it already owns.
//!
//! Every backing pod with an IPv4 address is an endpoint, with conditions
//! `serving` (Ready), `terminating` (being deleted) and `ready` (serving and
//! not terminating, or the Service publishes not-ready addresses). Endpoints
//! whose ports resolve alike share slices, at most `max_per_slice` each.
//! To keep writes few, an endpoint stays in the slice that holds it; new
//! ones fill slices with room, then reuse slices that emptied, then go into
//! new slices. A Service with no endpoints keeps one empty placeholder
//! slice, as upstream. A slice is written only when it changes.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::address;
use crate::owner::controller_ref;

/// Label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming who manages a slice; other managers' slices are not ours.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
pub const ADDRESS_TYPE: &str = "IPv4";
/// Node label whose value is an endpoint's `zone`.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Upstream's `--max-endpoints-per-slice` default.
pub const DEFAULT_MAX_PER_SLICE: usize = 100;

/// (name, port, protocol) of each port, sorted: slices hold endpoints that
/// share exactly these.
type PortKey = Vec<(String, i32, String)>;

/// The writes for one Service's slices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlicePlan {
    pub create: Vec<EndpointSlice>,
    /// (slice name, JSON merge patch with the resourceVersion seen).
    pub update: Vec<(String, Value)>,
    /// (slice name, uid).
    pub delete: Vec<(String, Option<String>)>,
}

impl SlicePlan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// Whether `slice` is one this controller manages for `service` (this
/// incarnation: a slice owned by an earlier Service of the same name is
/// the garbage collector's).
pub fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    let labels = slice.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    label(SERVICE_NAME_LABEL) == service.metadata.name.as_deref()
        && label(MANAGED_BY_LABEL) == Some(MANAGED_BY)
        && slice.metadata.namespace == service.metadata.namespace
        && slice
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.kind == "Service" && Some(&r.uid) == service.metadata.uid.as_ref())
}

/// A slice's endpoints (none when the field is absent).
pub fn endpoints_of(slice: &EndpointSlice) -> &[Endpoint] {
    slice.endpoints.as_deref().unwrap_or(&[])
}

fn endpoint_key(e: &Endpoint) -> String {
    e.target_ref
        .as_ref()
        .and_then(|r| r.uid.clone())
        .unwrap_or_else(|| e.addresses.join(","))
}

fn port_key(ports: Option<&Vec<EndpointPort>>) -> PortKey {
    let mut key: PortKey = ports
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or(0),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            )
        })
        .collect();
    key.sort();
    key
}

fn slice_ports(key: &PortKey) -> Vec<EndpointPort> {
    key.iter()
        .map(|(name, port, protocol)| EndpointPort {
            name: Some(name.clone()),
            port: Some(*port),
            protocol: Some(protocol.clone()),
            app_protocol: None,
        })
        .collect()
}

fn sorted(mut endpoints: Vec<Endpoint>) -> Vec<Endpoint> {
    endpoints.sort_by(|a, b| {
        a.addresses
            .cmp(&b.addresses)
            .then_with(|| endpoint_key(a).cmp(&endpoint_key(b)))
    });
    endpoints
}

/// The endpoint `pod` is, with its conditions (upstream `podToEndpoint`).
fn endpoint(pod: &Pod, service: &Service, zones: &BTreeMap<String, String>) -> Endpoint {
    let publish = address::publish_not_ready(service);
    let serving = publish || address::is_ready(pod);
    let terminating = address::is_terminating(pod);
    // "ready" never says true of a terminating pod, unless the Service asks
    // for not-ready addresses: old clients read only "ready".
    let ready = publish || (serving && !terminating);
    let node = address::node_name(pod);
    Endpoint {
        addresses: vec![address::pod_ip(pod).unwrap_or_default().to_string()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: address::hostname(pod, service),
        zone: node.as_ref().and_then(|n| zones.get(n).cloned()),
        node_name: node,
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Endpoints by port set, each keyed by pod uid.
fn desired_endpoints(
    service: &Service,
    pods: &[Pod],
    zones: &BTreeMap<String, String>,
) -> BTreeMap<PortKey, BTreeMap<String, Endpoint>> {
    let mut groups: BTreeMap<PortKey, BTreeMap<String, Endpoint>> = BTreeMap::new();
    for pod in address::backing_pods(service, pods).unwrap_or_default() {
        // Slices always carry terminating endpoints, marked as such.
        if !address::should_include(pod, true) {
            continue;
        }
        if address::pod_ip(pod)
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
            .is_none()
        {
            continue;
        }
        let mut key: PortKey = address::ports(service)
            .iter()
            .filter_map(|p| {
                Some((
                    p.name.clone().unwrap_or_default(),
                    address::resolve_port(pod, p)?,
                    address::port_protocol(p),
                ))
            })
            .collect();
        key.sort();
        let e = endpoint(pod, service, zones);
        groups.entry(key).or_default().insert(endpoint_key(&e), e);
    }
    groups
}

/// The labels every slice of `service` carries.
pub fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = address::owned_labels(service);
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels
}

/// A slice being worked on: an existing one (name set) or a new one.
struct Working<'a> {
    existing: Option<&'a EndpointSlice>,
    ports: PortKey,
    endpoints: Vec<Endpoint>,
}

impl Working<'_> {
    fn changed(&self, labels: &BTreeMap<String, String>, service: &Service) -> bool {
        let Some(s) = self.existing else {
            return true;
        };
        sorted(endpoints_of(s).to_vec()) != sorted(self.endpoints.clone())
            || port_key(s.ports.as_ref()) != self.ports
            || s.metadata.labels.as_ref() != Some(labels)
            || !owned_by(s, service)
    }
}

/// What to write so that `existing` (the slices [`owned_by`] the Service)
/// become what `service` and `pods` call for.
pub fn plan(
    service: &Service,
    pods: &[Pod],
    zones: &BTreeMap<String, String>,
    existing: &[EndpointSlice],
    max_per_slice: usize,
) -> SlicePlan {
    let max = max_per_slice.max(1);
    let mut out = SlicePlan::default();
    if address::selector(service).is_none() {
        return out;
    }
    let desired = desired_endpoints(service, pods, zones);
    let labels = slice_labels(service);
    let trigger = super::subsets::trigger_time(service, pods).map(|t| t.to_string());
    let trigger = trigger.as_deref();

    let mut existing: Vec<&EndpointSlice> = existing.iter().collect();
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut working: Vec<Working> = Vec::new();
    // Slices whose endpoints all went, or whose ports no pod has any more:
    // reused before a new slice is created, deleted if not needed.
    let mut spare: Vec<&EndpointSlice> = Vec::new();
    let mut placed: HashSet<String> = HashSet::new();
    for slice in existing {
        if slice.address_type != ADDRESS_TYPE {
            out.delete.push(delete_of(slice));
            continue;
        }
        let ports = port_key(slice.ports.as_ref());
        let Some(group) = desired.get(&ports) else {
            spare.push(slice);
            continue;
        };
        let endpoints: Vec<Endpoint> = endpoints_of(slice)
            .iter()
            .filter_map(|e| {
                let key = endpoint_key(e);
                let want = group.get(&key)?;
                // An endpoint found twice (a lagging write) stays in one slice.
                placed.insert(key).then(|| want.clone())
            })
            .collect();
        if endpoints.is_empty() {
            spare.push(slice);
        } else {
            working.push(Working {
                existing: Some(slice),
                ports,
                endpoints,
            });
        }
    }

    if desired.is_empty() {
        // No endpoints: one placeholder slice, without ports or endpoints.
        let keep = spare
            .iter()
            .position(|s| endpoints_of(s).is_empty() && port_key(s.ports.as_ref()).is_empty())
            .unwrap_or(0);
        let mut placeholder = Working {
            existing: None,
            ports: Vec::new(),
            endpoints: Vec::new(),
        };
        for (i, s) in spare.into_iter().enumerate() {
            if i == keep {
                placeholder.existing = Some(s);
            } else {
                out.delete.push(delete_of(s));
            }
        }
        emit(&mut out, service, &labels, trigger, placeholder);
        return out;
    }

    for (ports, group) in &desired {
        let mut remaining: Vec<Endpoint> = sorted(
            group
                .iter()
                .filter(|(k, _)| !placed.contains(*k))
                .map(|(_, e)| e.clone())
                .collect(),
        );
        if remaining.is_empty() {
            continue;
        }
        // First into slices of these ports that are being written anyway,
        // then into the others with room.
        let mut order: Vec<usize> = (0..working.len())
            .filter(|&i| working[i].ports == *ports && working[i].endpoints.len() < max)
            .collect();
        order.sort_by_key(|&i| !working[i].changed(&labels, service));
        for i in order {
            let room = max - working[i].endpoints.len();
            let take = room.min(remaining.len());
            working[i].endpoints.extend(remaining.drain(..take));
        }
        while !remaining.is_empty() {
            let take = max.min(remaining.len());
            working.push(Working {
                existing: spare.pop(),
                ports: ports.clone(),
                endpoints: remaining.drain(..take).collect(),
            });
        }
    }
    out.delete.extend(spare.into_iter().map(delete_of));
    for w in working {
        emit(&mut out, service, &labels, trigger, w);
    }
    out
}

fn delete_of(slice: &EndpointSlice) -> (String, Option<String>) {
    (
        slice.metadata.name.clone().unwrap_or_default(),
        slice.metadata.uid.clone(),
    )
}

/// Adds the write `w` needs, if any.
/// Writes `w` when it changed. A written slice carries the time of the
/// change that caused it (`last-change-trigger-time`, as upstream), from
/// which proxies measure network programming latency.
fn emit(
    out: &mut SlicePlan,
    service: &Service,
    labels: &BTreeMap<String, String>,
    trigger: Option<&str>,
    w: Working,
) {
    if !w.changed(labels, service) {
        return;
    }
    let annotations: BTreeMap<String, String> = trigger
        .map(|t| (super::subsets::TRIGGER_TIME.to_string(), t.to_string()))
        .into_iter()
        .collect();
    let ports = slice_ports(&w.ports);
    let endpoints = sorted(w.endpoints);
    let owner = controller_ref("v1", "Service", &service.metadata);
    match w.existing {
        Some(s) => {
            let mut label_patch = serde_json::Map::new();
            for k in s.metadata.labels.iter().flatten().map(|(k, _)| k) {
                if !labels.contains_key(k) {
                    label_patch.insert(k.clone(), Value::Null);
                }
            }
            for (k, v) in labels {
                label_patch.insert(k.clone(), json!(v));
            }
            out.update.push((
                s.metadata.name.clone().unwrap_or_default(),
                json!({
                    "metadata": {
                        "resourceVersion": s.metadata.resource_version,
                        "labels": label_patch,
                        "annotations": annotations,
                        "ownerReferences": [owner],
                    },
                    "addressType": ADDRESS_TYPE,
                    "ports": ports,
                    "endpoints": endpoints,
                }),
            ));
        }
        None => {
            let name = service.metadata.name.clone().unwrap_or_default();
            // Room for the five characters the API server appends.
            let prefix: String = format!("{name}-").chars().take(58).collect();
            out.create.push(EndpointSlice {
                metadata: ObjectMeta {
                    generate_name: Some(prefix),
                    namespace: service.metadata.namespace.clone(),
                    labels: Some(labels.clone()),
                    annotations: Some(annotations).filter(|a| !a.is_empty()),
                    owner_references: Some(vec![owner]),
                    ..Default::default()
                },
                address_type: ADDRESS_TYPE.into(),
                endpoints: Some(endpoints),
                ports: Some(ports),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn service(publish: bool) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "publishNotReadyAddresses": publish,
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
        }))
        .unwrap()
    }

    fn pod(name: &str, ip: &str, ready: bool, port: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [
                {"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap()
    }

    fn pods(n: usize) -> Vec<Pod> {
        (0..n)
            .map(|i| {
                pod(
                    &format!("p{i:03}"),
                    &format!("10.1.{}.{}", i / 200, i % 200 + 1),
                    true,
                    8080,
                )
            })
            .collect()
    }

    fn zones() -> BTreeMap<String, String> {
        BTreeMap::from([("n1".to_string(), "zone-a".to_string())])
    }

    /// What the server would hold after `plan`'s writes to `slices`.
    fn applied(mut slices: Vec<EndpointSlice>, plan: &SlicePlan) -> Vec<EndpointSlice> {
        let mut n = slices.len();
        slices.retain(|s| {
            !plan
                .delete
                .iter()
                .any(|(name, _)| s.metadata.name.as_ref() == Some(name))
        });
        for (name, patch) in &plan.update {
            let s = slices
                .iter_mut()
                .find(|s| s.metadata.name.as_ref() == Some(name))
                .expect("updates an existing slice");
            assert_eq!(
                patch["metadata"]["resourceVersion"].as_str(),
                s.metadata.resource_version.as_deref()
            );
            s.endpoints = serde_json::from_value(patch["endpoints"].clone()).unwrap();
            s.ports = serde_json::from_value(patch["ports"].clone()).unwrap();
            s.metadata.labels = Some(slice_labels(&service(false)));
            s.metadata.owner_references =
                serde_json::from_value(patch["metadata"]["ownerReferences"].clone()).unwrap();
            s.metadata.resource_version = Some(format!(
                "{}-next",
                s.metadata.resource_version.clone().unwrap()
            ));
        }
        for c in &plan.create {
            n += 1;
            let mut c = c.clone();
            c.metadata.name = Some(format!("web-{n:05}"));
            c.metadata.uid = Some(format!("slice-{n}"));
            c.metadata.resource_version = Some("1".into());
            slices.push(c);
        }
        slices
    }

    fn sizes(slices: &[EndpointSlice]) -> Vec<usize> {
        let mut s: Vec<usize> = slices.iter().map(|s| endpoints_of(s).len()).collect();
        s.sort();
        s
    }

    #[test]
    fn one_slice_with_conditions_labels_and_owner() {
        let mut terminating = pod("t", "10.0.0.4", true, 8080);
        terminating.metadata.deletion_timestamp =
            Some(Time("2024-01-01T00:00:00Z".parse().unwrap()));
        let ps = vec![
            pod("a", "10.0.0.1", true, 8080),
            pod("b", "10.0.0.2", false, 8080),
            terminating,
            pod("v6", "fd00::1", true, 8080),
            pod("noip", "", true, 8080),
        ];
        let p = plan(&service(false), &ps, &zones(), &[], DEFAULT_MAX_PER_SLICE);
        assert!(p.update.is_empty() && p.delete.is_empty());
        let [slice] = p.create.as_slice() else {
            panic!("{p:?}")
        };
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
        let labels = slice.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[SERVICE_NAME_LABEL], "web");
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
        assert_eq!(labels["tier"], "front");
        // The newest change among the pods (here the terminating pod's
        // deletion) is when the proxies' programming latency starts.
        assert_eq!(
            slice.metadata.annotations.as_ref().unwrap()[super::super::subsets::TRIGGER_TIME],
            "2024-01-01T00:00:00Z"
        );
        let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Service", "svc-uid", Some(true))
        );
        assert_eq!(slice.address_type, "IPv4");
        assert_eq!(
            serde_json::to_value(&slice.ports).unwrap(),
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
        );
        let got: Vec<(String, bool, bool, bool)> = endpoints_of(slice)
            .iter()
            .map(|e| {
                let c = e.conditions.clone().unwrap();
                (
                    e.addresses[0].clone(),
                    c.ready.unwrap(),
                    c.serving.unwrap(),
                    c.terminating.unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("10.0.0.1".to_string(), true, true, false),
                ("10.0.0.2".to_string(), false, false, false),
                // Terminating: never "ready", still "serving" while Ready.
                ("10.0.0.4".to_string(), false, true, true),
            ]
        );
        let e = &endpoints_of(slice)[0];
        assert_eq!(e.node_name.as_deref(), Some("n1"));
        assert_eq!(e.zone.as_deref(), Some("zone-a"));
        assert_eq!(e.target_ref.as_ref().unwrap().name.as_deref(), Some("a"));

        // Written back by the server: nothing more to do.
        let after = applied(vec![], &p);
        assert!(
            plan(
                &service(false),
                &ps,
                &zones(),
                &after,
                DEFAULT_MAX_PER_SLICE
            )
            .is_empty()
        );

        // publishNotReadyAddresses: every endpoint is ready.
        let p = plan(&service(true), &ps, &zones(), &[], DEFAULT_MAX_PER_SLICE);
        assert!(
            endpoints_of(&p.create[0])
                .iter()
                .all(|e| e.conditions.as_ref().unwrap().ready == Some(true))
        );
    }

    #[test]
    fn readiness_change_updates_only_that_slice() {
        let mut ps = pods(150);
        let first = plan(&service(false), &ps, &zones(), &[], DEFAULT_MAX_PER_SLICE);
        assert_eq!(first.create.len(), 2);
        let slices = applied(vec![], &first);
        assert_eq!(sizes(&slices), [50, 100]);
        ps[120] = pod("p120", "10.1.0.121", false, 8080);
        let p = plan(
            &service(false),
            &ps,
            &zones(),
            &slices,
            DEFAULT_MAX_PER_SLICE,
        );
        assert!(p.create.is_empty() && p.delete.is_empty());
        let [(name, patch)] = p.update.as_slice() else {
            panic!("{p:?}")
        };
        let holder = slices
            .iter()
            .find(|s| {
                endpoints_of(s)
                    .iter()
                    .any(|e| e.addresses[0] == "10.1.0.121")
            })
            .unwrap();
        assert_eq!(Some(name), holder.metadata.name.as_ref());
        let e = patch["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["addresses"][0] == "10.1.0.121")
            .unwrap();
        assert_eq!(
            e["conditions"],
            json!({"ready": false, "serving": false, "terminating": false})
        );
    }

    #[test]
    fn table_of_slice_churn() {
        struct Case {
            what: &'static str,
            before: Vec<Pod>,
            after: Vec<Pod>,
            max: usize,
            // (creates, updates, deletes) of the second plan, then the sizes
            want: (usize, usize, usize),
            sizes: Vec<usize>,
        }
        let cases = [
            Case {
                what: "250 endpoints: three slices",
                before: vec![],
                after: pods(250),
                max: 100,
                want: (2, 1, 0),
                sizes: vec![50, 100, 100],
            },
            Case {
                what: "a pod added to full slices goes to a new one; the others stay",
                before: pods(200),
                after: pods(201),
                max: 100,
                want: (1, 0, 0),
                sizes: vec![1, 100, 100],
            },
            Case {
                what: "a pod replacing another takes its place: one update",
                before: pods(200),
                after: {
                    let mut p = pods(200);
                    p[5] = pod("new", "10.9.0.1", true, 8080);
                    p
                },
                max: 100,
                want: (0, 1, 0),
                sizes: vec![100, 100],
            },
            Case {
                what: "every pod gone: one empty placeholder is kept",
                before: pods(150),
                after: vec![],
                max: 100,
                want: (0, 1, 1),
                sizes: vec![0],
            },
            Case {
                what: "pods appearing reuse the placeholder",
                before: vec![],
                after: pods(3),
                max: 100,
                want: (0, 1, 0),
                sizes: vec![3],
            },
            Case {
                what: "ports resolving differently split the slices",
                before: vec![],
                after: vec![
                    pod("a", "10.0.0.1", true, 8080),
                    pod("b", "10.0.0.2", true, 9090),
                ],
                max: 100,
                want: (1, 1, 0),
                sizes: vec![1, 1],
            },
            Case {
                what: "max endpoints per slice is honoured",
                before: pods(4),
                after: pods(7),
                max: 3,
                want: (1, 1, 0),
                sizes: vec![1, 3, 3],
            },
        ];
        for case in cases {
            let svc = service(false);
            // The placeholder (or the `before` slices) as the server holds them.
            let first = plan(&svc, &case.before, &zones(), &[], case.max);
            let before = applied(vec![], &first);
            let p = plan(&svc, &case.after, &zones(), &before, case.max);
            assert_eq!(
                (p.create.len(), p.update.len(), p.delete.len()),
                case.want,
                "{}: {p:?}",
                case.what
            );
            let after = applied(before, &p);
            assert_eq!(sizes(&after), case.sizes, "{}", case.what);
            // Every wanted endpoint is in exactly one slice.
            let mut all: Vec<String> = after
                .iter()
                .flat_map(|s| endpoints_of(s).iter().map(|e| e.addresses[0].clone()))
                .collect();
            all.sort();
            let mut want: Vec<String> = case
                .after
                .iter()
                .map(|p| p.status.as_ref().unwrap().pod_ip.clone().unwrap())
                .collect();
            want.sort();
            assert_eq!(all, want, "{}", case.what);
            // And it is stable.
            assert!(
                plan(&svc, &case.after, &zones(), &after, case.max).is_empty(),
                "{}",
                case.what
            );
        }
    }

    #[test]
    fn duplicates_are_removed_and_foreign_slices_are_not_ours() {
        let svc = service(false);
        let ps = pods(2);
        let first = applied(vec![], &plan(&svc, &ps, &zones(), &[], 100));
        // A second copy (say, a create whose watch event came late).
        let mut dup = first[0].clone();
        dup.metadata.name = Some("web-dup".into());
        dup.metadata.uid = Some("dup".into());
        let both = vec![first[0].clone(), dup];
        let p = plan(&svc, &ps, &zones(), &both, 100);
        assert_eq!(p.delete, [("web-dup".to_string(), Some("dup".to_string()))]);
        assert!(p.create.is_empty() && p.update.is_empty());

        let mut foreign = first[0].clone();
        foreign.metadata.owner_references.as_mut().unwrap()[0].uid = "older-service".into();
        assert!(!owned_by(&foreign, &svc));
        assert!(owned_by(&first[0], &svc));
        let mut mirrored = first[0].clone();
        mirrored.metadata.labels.as_mut().unwrap().insert(
            MANAGED_BY_LABEL.into(),
            "endpointslicemirroring-controller.k8s.io".into(),
        );
        assert!(!owned_by(&mirrored, &svc));
    }
}
