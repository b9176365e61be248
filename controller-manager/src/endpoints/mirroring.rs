//! EndpointSlice mirroring (upstream `endpointslicemirroring`): a Service
//! without a selector has Endpoints its user writes by hand (an external
//! database, a service on another cluster); this mirrors them into
//! EndpointSlices, which is what the proxy and the cluster DNS read.
//!
//! An Endpoints object is mirrored when its Service exists and has no
//! selector, and it is not labelled `endpointslice.kubernetes.io/skip-mirror:
//! "true"` (the API server's own `kubernetes` Endpoints is) nor annotated as
//! a leader-election lock. Each subset becomes one slice per address family
//! (subsets with the same ports share slices), at most 1000 addresses per
//! subset, ready ones first, as upstream. `addresses` are `ready: true`,
//! `notReadyAddresses` `ready: false`; invalid IPs are skipped. Slices are
//! owned by the Endpoints object, so deleting it takes them along, and carry
//! its labels and annotations (without the apply and trigger-time ones).

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::address;
use super::slices::{MANAGED_BY_LABEL, SERVICE_NAME_LABEL, SlicePlan, endpoints_of};
use crate::owner::controller_ref;

/// The `managed-by` value of mirrored slices.
pub const MIRROR_MANAGED_BY: &str = "endpointslicemirroring-controller.k8s.io";
/// On an Endpoints object: "true" keeps it from being mirrored.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Endpoints used as leader-election locks are not endpoints.
pub const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
/// Upstream's `--mirroring-max-endpoints-per-subset` default.
pub const MAX_PER_SUBSET: usize = 1000;
/// Annotations of the Endpoints object that are not copied.
const NOT_COPIED: [&str; 2] = [
    "endpoints.kubernetes.io/last-change-trigger-time",
    "kubectl.kubernetes.io/last-applied-configuration",
];

/// (name, port, protocol, appProtocol) of each port, sorted.
type Ports = Vec<(String, i32, String, Option<String>)>;
/// Slices hold endpoints of one address type with exactly these ports.
type GroupKey = (String, Ports);

/// Whether `endpoints` should be mirrored, given its Service.
pub fn wants_mirror(service: Option<&Service>, endpoints: &Endpoints) -> bool {
    let labelled = endpoints
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SKIP_MIRROR_LABEL))
        .is_some_and(|v| v == "true");
    let lock = endpoints
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
    // A selector, even an empty one, makes the Service the endpoint
    // controllers' (upstream tests `Spec.Selector != nil`).
    let selectorless =
        service.is_some_and(|s| s.spec.as_ref().is_none_or(|s| s.selector.is_none()));
    selectorless && !labelled && !lock
}

/// Whether `slice` is a mirrored slice of the Endpoints named `name`.
pub fn mirrored_for(slice: &EndpointSlice, name: &str) -> bool {
    let labels = slice.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    label(MANAGED_BY_LABEL) == Some(MIRROR_MANAGED_BY) && label(SERVICE_NAME_LABEL) == Some(name)
}

/// The name of the Endpoints a mirrored slice belongs to.
pub fn mirrored_name(slice: &EndpointSlice) -> Option<&str> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MIRROR_MANAGED_BY) {
        return None;
    }
    labels.get(SERVICE_NAME_LABEL).map(String::as_str)
}

fn address_type(ip: &str) -> Option<&'static str> {
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => Some("IPv4"),
        IpAddr::V6(_) => Some("IPv6"),
    }
}

fn endpoint(a: &EndpointAddress, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![a.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: None,
            terminating: None,
        }),
        hostname: a.hostname.clone(),
        node_name: a.node_name.clone(),
        target_ref: a.target_ref.clone(),
        ..Default::default()
    }
}

/// The desired endpoints, grouped; within a group in the Endpoints' order.
fn desired(endpoints: &Endpoints) -> BTreeMap<GroupKey, Vec<Endpoint>> {
    let mut groups: BTreeMap<GroupKey, Vec<Endpoint>> = BTreeMap::new();
    let mut seen: HashSet<(GroupKey, String)> = HashSet::new();
    for subset in endpoints.subsets.iter().flatten() {
        let mut ports: Ports = subset
            .ports
            .iter()
            .flatten()
            .map(|p| {
                let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
                (
                    p.name.clone().unwrap_or_default(),
                    p.port,
                    protocol,
                    p.app_protocol.clone(),
                )
            })
            .collect();
        ports.sort();
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        // Ready addresses first, so a cut keeps the ones that serve.
        for (a, is_ready) in ready.chain(not_ready).take(MAX_PER_SUBSET) {
            let Some(family) = address_type(&a.ip) else {
                continue;
            };
            let key: GroupKey = (family.to_string(), ports.clone());
            if seen.insert((key.clone(), a.ip.clone())) {
                groups.entry(key).or_default().push(endpoint(a, is_ready));
            }
        }
    }
    groups
}

fn slice_ports(ports: &Ports) -> Vec<EndpointPort> {
    ports
        .iter()
        .map(|(name, port, protocol, app)| EndpointPort {
            name: Some(name.clone()),
            port: Some(*port),
            protocol: Some(protocol.clone()),
            app_protocol: app.clone(),
        })
        .collect()
}

fn existing_ports(slice: &EndpointSlice) -> Ports {
    let mut ports: Ports = slice
        .ports
        .iter()
        .flatten()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or(0),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.app_protocol.clone(),
            )
        })
        .collect();
    ports.sort();
    ports
}

/// The labels of a mirrored slice: the Endpoints' own, and ours on top.
fn labels_of(endpoints: &Endpoints) -> BTreeMap<String, String> {
    let mut labels = endpoints.metadata.labels.clone().unwrap_or_default();
    labels.remove(SKIP_MIRROR_LABEL);
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        endpoints.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), MIRROR_MANAGED_BY.into());
    labels
}

fn annotations_of(endpoints: &Endpoints) -> BTreeMap<String, String> {
    let mut annotations = endpoints.metadata.annotations.clone().unwrap_or_default();
    for k in NOT_COPIED {
        annotations.remove(k);
    }
    annotations
}

/// A JSON merge patch turning map `old` into `new` (removed keys null).
fn map_patch(old: Option<&BTreeMap<String, String>>, new: &BTreeMap<String, String>) -> Value {
    let mut patch = serde_json::Map::new();
    for k in old.into_iter().flatten().map(|(k, _)| k) {
        if !new.contains_key(k) {
            patch.insert(k.clone(), Value::Null);
        }
    }
    for (k, v) in new {
        patch.insert(k.clone(), json!(v));
    }
    Value::Object(patch)
}

/// What to write so that `existing` (the slices [`mirrored_for`] this
/// Endpoints' name) mirror `endpoints`; `None` (not to be mirrored, or
/// gone) deletes them all. An existing slice of the same address type and
/// ports is updated in place; `max_per_slice` cuts larger groups.
pub fn plan(
    endpoints: Option<&Endpoints>,
    existing: &[EndpointSlice],
    max_per_slice: usize,
) -> SlicePlan {
    let mut out = SlicePlan::default();
    let mut unused: Vec<&EndpointSlice> = existing.iter().collect();
    unused.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let Some(endpoints) = endpoints else {
        out.delete = unused.into_iter().map(delete_of).collect();
        return out;
    };
    let labels = labels_of(endpoints);
    let annotations = annotations_of(endpoints);
    let owner = controller_ref("v1", "Endpoints", &endpoints.metadata);
    for ((family, ports), group) in desired(endpoints) {
        for chunk in group.chunks(max_per_slice.max(1)) {
            let found = unused
                .iter()
                .position(|s| s.address_type == family && existing_ports(s) == ports)
                .map(|i| unused.remove(i));
            let Some(slice) = found else {
                let name = endpoints.metadata.name.clone().unwrap_or_default();
                out.create.push(EndpointSlice {
                    metadata: ObjectMeta {
                        // Room for the five characters the API server appends.
                        generate_name: Some(format!("{name}-").chars().take(58).collect()),
                        namespace: endpoints.metadata.namespace.clone(),
                        labels: Some(labels.clone()),
                        annotations: (!annotations.is_empty()).then(|| annotations.clone()),
                        owner_references: Some(vec![owner.clone()]),
                        ..Default::default()
                    },
                    address_type: family.clone(),
                    endpoints: Some(chunk.to_vec()),
                    ports: Some(slice_ports(&ports)),
                });
                continue;
            };
            let same = endpoints_of(slice) == chunk
                && slice.metadata.labels.as_ref() == Some(&labels)
                && slice.metadata.annotations.clone().unwrap_or_default() == annotations
                && slice.metadata.owner_references.as_deref() == Some(std::slice::from_ref(&owner));
            if !same {
                out.update.push((
                    slice.metadata.name.clone().unwrap_or_default(),
                    json!({
                        "metadata": {
                            "resourceVersion": slice.metadata.resource_version,
                            "labels": map_patch(slice.metadata.labels.as_ref(), &labels),
                            "annotations": map_patch(slice.metadata.annotations.as_ref(), &annotations),
                            "ownerReferences": [owner],
                        },
                        "endpoints": chunk,
                    }),
                ));
            }
        }
    }
    out.delete.extend(unused.into_iter().map(delete_of));
    out
}

fn delete_of(slice: &EndpointSlice) -> (String, Option<String>) {
    (
        slice.metadata.name.clone().unwrap_or_default(),
        slice.metadata.uid.clone(),
    )
}

/// Whether a Service change can change what is mirrored: it came, went, or
/// gained or lost its selector.
pub fn service_matters(old: Option<&Service>, new: &Service) -> bool {
    old.is_none_or(|o| address::selector(o).is_some() != address::selector(new).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(selector: Option<Value>) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "shop", "uid": "svc-uid"},
            "spec": {"selector": selector, "ports": [{"port": 5432}]}
        }))
        .unwrap()
    }

    fn endpoints(subsets: Value) -> Endpoints {
        serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "shop", "uid": "ep-uid",
                         "labels": {"team": "data"},
                         "annotations": {"note": "external",
                                         "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "subsets": subsets
        }))
        .unwrap()
    }

    fn ips(slice: &EndpointSlice) -> Vec<(String, bool)> {
        endpoints_of(slice)
            .iter()
            .map(|e| {
                let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false);
                (e.addresses[0].clone(), ready)
            })
            .collect()
    }

    /// The plan's creations, given names and uids as the API server would.
    fn created(plan: &SlicePlan) -> Vec<EndpointSlice> {
        plan.create
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut s = s.clone();
                s.metadata.name = Some(format!("db-{i}"));
                s.metadata.uid = Some(format!("slice-{i}"));
                s.metadata.resource_version = Some("7".into());
                s
            })
            .collect()
    }

    #[test]
    fn which_endpoints_are_mirrored() {
        let ep = endpoints(json!([]));
        let mut skip = ep.clone();
        skip.metadata.labels = Some([(SKIP_MIRROR_LABEL.into(), "true".into())].into());
        let mut skip_false = ep.clone();
        skip_false.metadata.labels = Some([(SKIP_MIRROR_LABEL.into(), "false".into())].into());
        let mut lock = ep.clone();
        lock.metadata.annotations = Some([(LEADER_ANNOTATION.into(), "{}".into())].into());
        let selectorless = service(None);
        let cases = [
            (
                "selector-less Service",
                Some(selectorless.clone()),
                &ep,
                true,
            ),
            ("no Service", None, &ep, false),
            (
                "Service with a selector",
                Some(service(Some(json!({"app": "db"})))),
                &ep,
                false,
            ),
            (
                "even an empty one",
                Some(service(Some(json!({})))),
                &ep,
                false,
            ),
            ("skip-mirror true", Some(selectorless.clone()), &skip, false),
            (
                "skip-mirror false",
                Some(selectorless.clone()),
                &skip_false,
                true,
            ),
            ("leader lock", Some(selectorless), &lock, false),
        ];
        for (what, svc, ep, want) in cases {
            assert_eq!(wants_mirror(svc.as_ref(), ep), want, "{what}");
        }
    }

    #[test]
    fn subsets_become_slices_by_family_and_ports_ready_ones_first() {
        let ep = endpoints(json!([
            {"addresses": [{"ip": "10.0.0.1", "nodeName": "n1", "hostname": "a"}, {"ip": "fd00::1"}],
             "notReadyAddresses": [{"ip": "10.0.0.2"}, {"ip": "not-an-ip"}],
             "ports": [{"name": "pg", "port": 5432}]},
            // Same ports: joins the first subset's slices; a repeat is kept once.
            {"addresses": [{"ip": "10.0.0.3"}, {"ip": "10.0.0.1"}], "ports": [{"name": "pg", "port": 5432}]},
            {"addresses": [{"ip": "10.0.0.9"}],
             "ports": [{"name": "metrics", "port": 9187, "protocol": "TCP", "appProtocol": "http"}]}
        ]));
        let plan = plan(Some(&ep), &[], 100);
        assert!(plan.update.is_empty() && plan.delete.is_empty());
        let got: Vec<(String, Vec<(String, bool)>)> = plan
            .create
            .iter()
            .map(|s| (s.address_type.clone(), ips(s)))
            .collect();
        assert_eq!(
            got,
            vec![
                ("IPv4".into(), vec![("10.0.0.9".into(), true)]),
                (
                    "IPv4".into(),
                    vec![
                        ("10.0.0.1".into(), true),
                        ("10.0.0.2".into(), false),
                        ("10.0.0.3".into(), true)
                    ]
                ),
                ("IPv6".into(), vec![("fd00::1".into(), true)]),
            ]
        );
        let pg = &plan.create[1];
        let first = &endpoints_of(pg)[0];
        assert_eq!(first.node_name.as_deref(), Some("n1"));
        assert_eq!(first.hostname.as_deref(), Some("a"));
        let port = &pg.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.port, port.protocol.as_deref()),
            (Some("pg"), Some(5432), Some("TCP"))
        );
        assert_eq!(
            plan.create[0].ports.as_ref().unwrap()[0]
                .app_protocol
                .as_deref(),
            Some("http")
        );
        let meta = &pg.metadata;
        assert_eq!(meta.generate_name.as_deref(), Some("db-"));
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels[SERVICE_NAME_LABEL], "db");
        assert_eq!(labels[MANAGED_BY_LABEL], MIRROR_MANAGED_BY);
        assert_eq!(labels["team"], "data");
        let annotations = meta.annotations.as_ref().unwrap();
        assert_eq!(annotations.keys().collect::<Vec<_>>(), ["note"]);
        let owner = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Endpoints", "ep-uid")
        );
    }

    #[test]
    fn at_most_a_thousand_addresses_of_a_subset_ready_ones_kept() {
        let ready: Vec<Value> = (0..900)
            .map(|i| json!({"ip": format!("10.1.{}.{}", i / 250, i % 250)}))
            .collect();
        let not_ready: Vec<Value> = (0..300)
            .map(|i| json!({"ip": format!("10.2.{}.{}", i / 250, i % 250)}))
            .collect();
        let ep = endpoints(
            json!([{"addresses": ready, "notReadyAddresses": not_ready, "ports": [{"port": 1}]}]),
        );
        let plan = plan(Some(&ep), &[], 400);
        let all: Vec<(String, bool)> = plan.create.iter().flat_map(ips).collect();
        assert_eq!(all.len(), MAX_PER_SUBSET);
        assert_eq!(all.iter().filter(|(_, r)| *r).count(), 900);
        assert_eq!(
            plan.create
                .iter()
                .map(|s| endpoints_of(s).len())
                .collect::<Vec<_>>(),
            [400, 400, 200]
        );
    }

    #[test]
    fn a_second_pass_writes_nothing_and_changes_update_in_place() {
        let ep = endpoints(json!([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 5432}]}]));
        let first = plan(Some(&ep), &[], 100);
        let existing = created(&first);
        assert!(plan(Some(&ep), &existing, 100).is_empty(), "idempotent");

        // An address turns not ready and a label goes: one patch, same slice.
        let mut changed = endpoints(
            json!([{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 5432}]}]),
        );
        changed.metadata.labels = None;
        let next = plan(Some(&changed), &existing, 100);
        assert!(next.create.is_empty() && next.delete.is_empty());
        let (name, patch) = &next.update[0];
        assert_eq!(name, "db-0");
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        assert_eq!(patch["metadata"]["labels"]["team"], Value::Null);
        assert_eq!(patch["endpoints"][0]["conditions"]["ready"], false);

        // New ports: a new slice, the old one deleted.
        let moved =
            endpoints(json!([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 5433}]}]));
        let next = plan(Some(&moved), &existing, 100);
        assert_eq!(next.create.len(), 1);
        assert_eq!(
            next.delete,
            vec![("db-0".to_string(), Some("slice-0".to_string()))]
        );

        // Not to be mirrored any more: everything goes.
        let gone = plan(None, &existing, 100);
        assert!(gone.create.is_empty() && gone.update.is_empty());
        assert_eq!(gone.delete.len(), 1);
    }

    #[test]
    fn empty_endpoints_mirror_to_no_slices() {
        let ep = endpoints(json!(null));
        assert!(plan(Some(&ep), &[], 100).is_empty());
    }

    #[test]
    fn only_selector_changes_of_a_service_matter() {
        let plain = service(None);
        let selected = service(Some(json!({"app": "db"})));
        assert!(service_matters(None, &plain));
        assert!(service_matters(Some(&plain), &selected));
        assert!(!service_matters(Some(&plain), &plain));
    }
}
