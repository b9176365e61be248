//! Routes between nodes (host-gw): every node sends the traffic for another
//! node's `spec.podCIDR` straight to that node's InternalIP, so a pod on
//! node1 reaches a pod on node2 without NAT or tunnels — as flannel's
//! host-gw backend does. This works only when the nodes share one L2
//! network (a VM lab on one virtual switch, or `skiff up --nodes N`'s
//! bridge): the kernel accepts a route only through a gateway it can reach
//! directly, and refuses the others (logged, retried on the next change).
//!
//! [`plan`] is pure: Nodes in, the routes this node should have out. The
//! routes carry their own protocol number ([`PROTO`]), so the proxy finds
//! exactly its own on start (a restarted proxy, a node that left) and never
//! touches a route someone else made. Behind a trait: [`IpRoutes`] runs
//! `ip route`; [`RecordingRoutes`] records, for tests without root.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Node;

use crate::dns::link::LinkError;

/// The routing protocol number that marks the proxy's routes
/// (`ip route show proto 115`; 115 is `s`, unassigned in rt_protos).
pub const PROTO: &str = "115";

/// One route: `cidr via gateway`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub cidr: String,
    pub via: IpAddr,
}

/// The routes this node (`me`) should have: each other node's pod CIDRs
/// through its first InternalIP of the same family. Nodes without a pod
/// CIDR or an InternalIP yet are skipped, as are gateways that cannot be
/// another machine (loopback, unspecified) and CIDRs this node owns.
pub fn plan(nodes: &[Node], me: &str) -> Vec<Route> {
    let mine: Vec<String> = nodes
        .iter()
        .filter(|n| n.metadata.name.as_deref() == Some(me))
        .flat_map(pod_cidrs)
        .collect();
    let mut routes: BTreeMap<String, Route> = BTreeMap::new();
    for node in nodes {
        if node.metadata.name.as_deref() == Some(me) {
            continue;
        }
        let ips = internal_ips(node);
        for cidr in pod_cidrs(node) {
            if mine.contains(&cidr) {
                continue;
            }
            let v4 = !cidr.contains(':');
            let Some(via) = ips.iter().find(|ip| ip.is_ipv4() == v4) else {
                continue;
            };
            if via.is_loopback() || via.is_unspecified() {
                continue;
            }
            routes
                .entry(cidr.clone())
                .or_insert(Route { cidr, via: *via });
        }
    }
    routes.into_values().collect()
}

fn pod_cidrs(node: &Node) -> Vec<String> {
    let Some(spec) = &node.spec else {
        return Vec::new();
    };
    let mut cidrs = spec.pod_cidrs.clone().unwrap_or_default();
    if let Some(c) = &spec.pod_cidr
        && !cidrs.contains(c)
    {
        cidrs.insert(0, c.clone());
    }
    cidrs
}

fn internal_ips(node: &Node) -> Vec<IpAddr> {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .filter_map(|a| a.address.parse().ok())
        .collect()
}

/// What to change to go from `have` to `want`: routes to replace (new or
/// through another gateway) and CIDRs to delete.
pub fn diff(have: &[Route], want: &[Route]) -> (Vec<Route>, Vec<String>) {
    let replace = want.iter().filter(|r| !have.contains(r)).cloned().collect();
    let delete = have
        .iter()
        .filter(|h| !want.iter().any(|w| w.cidr == h.cidr))
        .map(|h| h.cidr.clone())
        .collect();
    (replace, delete)
}

/// The node's routing table, as far as the proxy's routes go.
pub trait Routes: Send + Sync + 'static {
    /// The routes marked with [`PROTO`].
    fn list(&self) -> Result<Vec<Route>, LinkError>;
    fn replace(&self, route: &Route) -> Result<(), LinkError>;
    fn delete(&self, cidr: &str) -> Result<(), LinkError>;
}

/// `ip route` (iproute2).
#[derive(Debug, Default)]
pub struct IpRoutes;

impl Routes for IpRoutes {
    fn list(&self) -> Result<Vec<Route>, LinkError> {
        let mut all = Vec::new();
        for family in ["-4", "-6"] {
            let text = crate::dns::link::ip(&[family, "-o", "route", "show", "proto", PROTO])?;
            all.extend(parse_routes(&text));
        }
        Ok(all)
    }

    fn replace(&self, r: &Route) -> Result<(), LinkError> {
        crate::dns::link::ip(&[
            "route",
            "replace",
            &r.cidr,
            "via",
            &r.via.to_string(),
            "proto",
            PROTO,
        ])
        .map(drop)
    }

    fn delete(&self, cidr: &str) -> Result<(), LinkError> {
        crate::dns::link::ip(&["route", "del", cidr, "proto", PROTO]).map(drop)
    }
}

/// `ip -o route show` lines: `10.244.1.0/24 via 10.245.0.12 dev eth0 proto 115`.
pub fn parse_routes(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "via")?;
            Some(Route {
                cidr: words.first()?.to_string(),
                via: words.get(at + 1)?.parse().ok()?,
            })
        })
        .collect()
}

/// Keeps the routes it is given in memory, and records every call.
#[derive(Debug, Default)]
pub struct RecordingRoutes {
    pub table: Mutex<Vec<Route>>,
    pub calls: Mutex<Vec<String>>,
}

impl Routes for RecordingRoutes {
    fn list(&self) -> Result<Vec<Route>, LinkError> {
        Ok(self.table.lock().unwrap().clone())
    }

    fn replace(&self, r: &Route) -> Result<(), LinkError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("replace {} via {}", r.cidr, r.via));
        let mut t = self.table.lock().unwrap();
        t.retain(|x| x.cidr != r.cidr);
        t.push(r.clone());
        Ok(())
    }

    fn delete(&self, cidr: &str) -> Result<(), LinkError> {
        self.calls.lock().unwrap().push(format!("delete {cidr}"));
        self.table.lock().unwrap().retain(|x| x.cidr != cidr);
        Ok(())
    }
}

/// Brings the table to `want`; a route the kernel refuses is logged and
/// the rest still made. Returns how many changes failed.
pub fn sync(routes: &dyn Routes, want: &[Route]) -> usize {
    let have = match routes.list() {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the routing table");
            return 1;
        }
    };
    let (replace, delete) = diff(&have, want);
    let mut failed = 0;
    for r in &replace {
        match routes.replace(r) {
            Ok(()) => tracing::info!(cidr = %r.cidr, via = %r.via, "route to a node's pods"),
            Err(e) => {
                failed += 1;
                tracing::warn!(cidr = %r.cidr, via = %r.via, error = %e,
                    "cannot route to a node's pods (is that node on this node's network?)");
            }
        }
    }
    for cidr in &delete {
        match routes.delete(cidr) {
            Ok(()) => tracing::info!(%cidr, "route removed (its node left)"),
            Err(e) => {
                failed += 1;
                tracing::warn!(%cidr, error = %e, "cannot remove a route");
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cidr: Option<&str>, ip: Option<&str>) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": cidr.map(|c| serde_json::json!({"podCIDR": c, "podCIDRs": [c]})).unwrap_or_default(),
            "status": {"addresses": ip.map(|i| vec![
                serde_json::json!({"type": "Hostname", "address": name}),
                serde_json::json!({"type": "InternalIP", "address": i}),
            ]).unwrap_or_default()},
        }))
        .unwrap()
    }

    fn route(cidr: &str, via: &str) -> Route {
        Route {
            cidr: cidr.into(),
            via: via.parse().unwrap(),
        }
    }

    #[test]
    fn each_other_node_is_routed_through_its_internal_ip() {
        let nodes = [
            node("node1", Some("10.244.1.0/24"), Some("10.245.0.11")),
            node("node2", Some("10.244.2.0/24"), Some("10.245.0.12")),
            node("node3", Some("10.244.3.0/24"), Some("10.245.0.13")),
            // Not yet given a pod CIDR, or not yet reporting an address.
            node("node4", None, Some("10.245.0.14")),
            node("node5", Some("10.244.5.0/24"), None),
            // A one-machine test cluster: every node on 127.0.0.1.
            node("local", Some("10.244.9.0/24"), Some("127.0.0.1")),
        ];
        for (me, want) in [
            (
                "node1",
                vec![
                    route("10.244.2.0/24", "10.245.0.12"),
                    route("10.244.3.0/24", "10.245.0.13"),
                ],
            ),
            (
                "node3",
                vec![
                    route("10.244.1.0/24", "10.245.0.11"),
                    route("10.244.2.0/24", "10.245.0.12"),
                ],
            ),
            // A proxy whose node is not (yet) in the list routes to all.
            (
                "elsewhere",
                vec![
                    route("10.244.1.0/24", "10.245.0.11"),
                    route("10.244.2.0/24", "10.245.0.12"),
                    route("10.244.3.0/24", "10.245.0.13"),
                ],
            ),
        ] {
            assert_eq!(plan(&nodes, me), want, "{me}");
        }
    }

    #[test]
    fn dual_stack_nodes_get_a_route_per_family() {
        let mut n: Node = node("b", Some("10.244.2.0/24"), Some("10.245.0.12"));
        n.spec.as_mut().unwrap().pod_cidrs =
            Some(vec!["10.244.2.0/24".into(), "fd00:10:244:2::/64".into()]);
        let addrs = n.status.as_mut().unwrap().addresses.as_mut().unwrap();
        addrs.push(
            serde_json::from_value(
                serde_json::json!({"type": "InternalIP", "address": "fd00::12"}),
            )
            .unwrap(),
        );
        // No IPv6 address: only the IPv4 route.
        let v4_only = node("c", Some("10.244.3.0/24"), Some("10.245.0.13"));
        assert_eq!(
            plan(&[n, v4_only], "a"),
            [
                route("10.244.2.0/24", "10.245.0.12"),
                route("10.244.3.0/24", "10.245.0.13"),
                route("fd00:10:244:2::/64", "fd00::12"),
            ]
        );
    }

    #[test]
    fn sync_changes_only_what_differs_and_removes_routes_of_nodes_gone() {
        let r = RecordingRoutes::default();
        *r.table.lock().unwrap() = vec![
            route("10.244.2.0/24", "10.245.0.12"),
            // node3 moved to another address; node4 left.
            route("10.244.3.0/24", "10.245.0.99"),
            route("10.244.4.0/24", "10.245.0.14"),
        ];
        let want = [
            route("10.244.2.0/24", "10.245.0.12"),
            route("10.244.3.0/24", "10.245.0.13"),
        ];
        assert_eq!(sync(&r, &want), 0);
        assert_eq!(
            *r.calls.lock().unwrap(),
            [
                "replace 10.244.3.0/24 via 10.245.0.13",
                "delete 10.244.4.0/24"
            ]
        );
        // A second sync has nothing to do.
        r.calls.lock().unwrap().clear();
        sync(&r, &want);
        assert!(r.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn ip_route_output_is_read() {
        let text = "10.244.2.0/24 via 10.245.0.12 dev eth0 proto 115 \n\
                    10.244.3.0/24 via 10.245.0.13 dev eth0 proto 115 onlink \n\
                    blackhole 10.96.0.0/12 proto 115 \n";
        assert_eq!(
            parse_routes(text),
            [
                route("10.244.2.0/24", "10.245.0.12"),
                route("10.244.3.0/24", "10.245.0.13"),
            ]
        );
    }
}
