//! Admission: what is checked or decided about an object beyond its own
//! validity, because it depends on the rest of the cluster.
//!
//! - Namespace lifecycle: objects go only into namespaces that exist and are
//!   not being deleted.
//! - DefaultTolerationSeconds: new pods tolerate `not-ready` and
//!   `unreachable` for `--default-…-toleration-seconds` (300) unless they
//!   say otherwise.
//! - Services get a ClusterIP from `--service-cluster-ip-range` and, for
//!   NodePort and LoadBalancer services, node ports from 30000–32767. Each
//!   allocation is a "claim" key (`/registry/ipallocations/<ip>`,
//!   `/registry/nodeports/<port>`) created in the same etcd transaction as
//!   the Service, so two Services can never get the same IP or port, and
//!   released in the same transaction that deletes the Service.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::object::{get, i64_at, items, str_at};
use crate::registry::Resource;
use crate::storage::Storage;
use crate::validation::FieldError;

pub const IP_CLAIMS: &str = "/registry/ipallocations/";
pub const PORT_CLAIMS: &str = "/registry/nodeports/";

/// An IPv4 range like 10.96.0.0/12.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (ip, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a CIDR like 10.96.0.0/12"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("prefix /{prefix} must be between /8 and /30"))?;
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr {
            base: u32::from(ip) & mask,
            prefix,
        })
    }

    fn size(self) -> u32 {
        1 << (32 - self.prefix)
    }

    /// The n-th address of the range (0 is the network address).
    pub fn nth(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + n)
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & (u32::MAX << (32 - self.prefix))) == self.base
    }
}

pub struct Admission {
    pub service_range: Cidr,
    pub node_ports: (u16, u16),
    /// (not-ready, unreachable) seconds of the tolerations new pods get.
    pub toleration_seconds: (i64, i64),
}

impl Admission {
    /// Upstream's DefaultTolerationSeconds admission, on pod creation only (not
    /// on workload templates): a pod that tolerates neither taint gets
    /// `node.kubernetes.io/not-ready` and `…/unreachable` NoExecute
    /// tolerations for `not_ready` and `unreachable` seconds, so it stays bound
    /// to a failed node that long before the node lifecycle controller evicts
    /// it (300 s each unless the API server is told otherwise).
    pub fn default_toleration_seconds(&self, pod: &mut Value) {
        let (not_ready, unreachable) = self.toleration_seconds;
        let Some(spec) = pod.get_mut("spec").filter(|s| s.is_object()) else {
            return;
        };
        let mut tolerations = spec
            .get("tolerations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (key, seconds) in [
            ("node.kubernetes.io/not-ready", not_ready),
            ("node.kubernetes.io/unreachable", unreachable),
        ] {
            let present = tolerations.iter().any(|t| {
                str_at(t, &["key"]) == Some(key)
                    || (str_at(t, &["operator"]) == Some("Exists") && t.get("key").is_none())
            });
            if !present {
                tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}));
            }
        }
        spec["tolerations"] = Value::Array(tolerations);
    }

    /// The `kubernetes` Service's address: the first of the range.
    pub fn api_service_ip(&self) -> Ipv4Addr {
        self.service_range.nth(1)
    }

    /// Objects may be created only in namespaces that exist and are not terminating.
    pub async fn namespace_lifecycle(
        &self,
        storage: &Storage,
        resource: &Resource,
        namespace: &str,
        name: &str,
    ) -> ApiResult<()> {
        if !resource.namespaced {
            return Ok(());
        }
        let key = format!("/registry/namespaces/{namespace}");
        let stored = storage
            .get(&key)
            .await
            .map_err(|e| ApiError::service_unavailable(e.to_string()))?;
        let Some(ns) = stored else {
            return Err(ApiError::not_found(crate::error::Target {
                resource: "namespaces",
                group: "",
                name: namespace,
            }));
        };
        let terminating = get(&ns.value, &["metadata", "deletionTimestamp"])
            .is_some_and(|t| !t.is_null())
            || str_at(&ns.value, &["status", "phase"]) == Some("Terminating");
        if terminating {
            return Err(ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                resource.qualified()
            )));
        }
        Ok(())
    }

    /// Allocates what a new or changed Service needs; returns the claim keys
    /// it holds afterwards. `old`: the Service before an update.
    pub async fn allocate(
        &self,
        storage: &Storage,
        svc: &mut Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        let name = crate::object::name(svc).to_string();
        let kind = str_at(svc, &["spec", "type"])
            .unwrap_or("ClusterIP")
            .to_string();
        let invalid = |field: &str, value: Value, why: String| {
            ApiError::invalid(
                "Service",
                "",
                &name,
                &[FieldError::invalid(field, value, why)],
            )
        };

        // ClusterIP: kept on update, chosen or checked on create.
        if kind != "ExternalName" {
            let kept = old
                .and_then(|o| str_at(o, &["spec", "clusterIP"]))
                .filter(|ip| !ip.is_empty())
                .map(String::from);
            let asked = str_at(svc, &["spec", "clusterIP"])
                .filter(|ip| !ip.is_empty())
                .map(String::from);
            let ip = match (asked, kept) {
                (Some(ip), _) if ip == "None" => "None".to_string(),
                (Some(ip), _) => {
                    let parsed: Ipv4Addr = ip.parse().map_err(|_| {
                        invalid(
                            "spec.clusterIPs[0]",
                            json!(ip),
                            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into(),
                        )
                    })?;
                    if !self.service_range.contains(parsed) {
                        return Err(invalid(
                            "spec.clusterIPs[0]",
                            json!(ip),
                            format!(
                                "failed to allocate IP {ip}: provided IP is not in the valid range. The range of valid IPs is {}/{}",
                                self.service_range.nth(0),
                                self.service_range.prefix
                            ),
                        ));
                    }
                    ip
                }
                (None, Some(kept)) => kept,
                (None, None) => self.free_ip(storage).await?,
            };
            svc["spec"]["clusterIP"] = json!(ip);
            svc["spec"]["clusterIPs"] = json!([ip]);
        }

        // Node ports: kept when the port stays, chosen when missing.
        if kind == "NodePort" || kind == "LoadBalancer" {
            let taken: HashSet<u16> = storage
                .keys(PORT_CLAIMS)
                .await
                .map_err(|e| ApiError::service_unavailable(e.to_string()))?
                .iter()
                .filter_map(|k| k.strip_prefix(PORT_CLAIMS)?.parse().ok())
                .collect();
            let mine: HashSet<u16> = old
                .map(service_claims)
                .unwrap_or_default()
                .iter()
                .filter_map(|k| k.strip_prefix(PORT_CLAIMS)?.parse().ok())
                .collect();
            let mut used = HashSet::new();
            let count = items(svc, &["spec", "ports"]).len();
            for i in 0..count {
                let port = &mut svc["spec"]["ports"][i];
                match i64_at(port, &["nodePort"]).filter(|p| *p != 0) {
                    Some(p) => {
                        let (low, high) = self.node_ports;
                        let field = format!("spec.ports[{i}].nodePort");
                        if !(i64::from(low)..=i64::from(high)).contains(&p) {
                            return Err(invalid(
                                &field,
                                json!(p),
                                format!(
                                    "provided port is not in the valid range. The range of valid ports is {low}-{high}"
                                ),
                            ));
                        }
                        let p = p as u16;
                        if (taken.contains(&p) && !mine.contains(&p)) || !used.insert(p) {
                            return Err(invalid(
                                &field,
                                json!(p),
                                "provided port is already allocated".into(),
                            ));
                        }
                    }
                    None => {
                        let (low, high) = self.node_ports;
                        let free: Vec<u16> = (low..=high)
                            .filter(|p| !taken.contains(p) && !used.contains(p))
                            .collect();
                        if free.is_empty() {
                            return Err(ApiError::internal(
                                "failed to allocate a nodePort: range is full",
                            ));
                        }
                        let p = free[rand::random_range(0..free.len())];
                        used.insert(p);
                        port["nodePort"] = json!(p);
                    }
                }
            }
        } else if let Some(ports) = svc
            .get_mut("spec")
            .and_then(|s| s.get_mut("ports"))
            .and_then(Value::as_array_mut)
        {
            for port in ports {
                if let Some(p) = port.as_object_mut() {
                    p.remove("nodePort");
                }
            }
        }
        Ok(())
    }

    async fn free_ip(&self, storage: &Storage) -> ApiResult<String> {
        let taken: HashSet<String> = storage
            .keys(IP_CLAIMS)
            .await
            .map_err(|e| ApiError::service_unavailable(e.to_string()))?
            .iter()
            .filter_map(|k| k.strip_prefix(IP_CLAIMS).map(String::from))
            .collect();
        // Skip the network address, the first (the API's own Service) and the broadcast address.
        let size = self.service_range.size();
        for _ in 0..64 {
            let candidate = self
                .service_range
                .nth(rand::random_range(2..size - 1))
                .to_string();
            if !taken.contains(&candidate) {
                return Ok(candidate);
            }
        }
        (2..size - 1)
            .map(|n| self.service_range.nth(n).to_string())
            .find(|ip| !taken.contains(ip))
            .ok_or_else(|| ApiError::internal("failed to allocate a serviceIP: range is full"))
    }
}

/// The claim keys a Service holds: its ClusterIP and node ports.
pub fn service_claims(svc: &Value) -> Vec<String> {
    let mut claims = Vec::new();
    if let Some(ip) =
        str_at(svc, &["spec", "clusterIP"]).filter(|ip| !ip.is_empty() && *ip != "None")
    {
        claims.push(format!("{IP_CLAIMS}{ip}"));
    }
    for port in items(svc, &["spec", "ports"]) {
        if let Some(p) = i64_at(port, &["nodePort"]).filter(|p| *p != 0) {
            claims.push(format!("{PORT_CLAIMS}{p}"));
        }
    }
    claims
}

/// (claims to create, claims to release) when `old` becomes `new`.
pub fn claim_changes(
    resource: &Resource,
    new: &Value,
    old: Option<&Value>,
) -> (Vec<String>, Vec<String>) {
    if resource.plural != "services" || !resource.group.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let after = service_claims(new);
    let before = old.map(service_claims).unwrap_or_default();
    let created = after
        .iter()
        .filter(|c| !before.contains(c))
        .cloned()
        .collect();
    let released = before
        .iter()
        .filter(|c| !after.contains(c))
        .cloned()
        .collect();
    (created, released)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.96.0.0/12").unwrap();
        assert_eq!(c.nth(1).to_string(), "10.96.0.1");
        assert!(c.contains("10.111.255.254".parse().unwrap()));
        assert!(!c.contains("10.112.0.1".parse().unwrap()));
        assert_eq!(Cidr::parse("10.96.0.5/12").unwrap(), c);
        assert!(Cidr::parse("10.96.0.0").is_err());
        assert!(Cidr::parse("10.96.0.0/4").is_err());
    }

    #[test]
    fn claims() {
        let services = crate::registry::find("", "v1", "services").unwrap();
        let old = json!({"spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 80}]}});
        let new =
            json!({"spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 80, "nodePort": 30001}]}});
        assert_eq!(
            claim_changes(services, &new, Some(&old)),
            (vec!["/registry/nodeports/30001".to_string()], vec![])
        );
        assert_eq!(
            claim_changes(services, &old, Some(&new)),
            (vec![], vec!["/registry/nodeports/30001".to_string()])
        );
        let headless = json!({"spec": {"clusterIP": "None"}});
        assert!(service_claims(&headless).is_empty());
    }
}

#[cfg(test)]
mod toleration_tests {
    use super::*;

    #[test]
    fn new_pods_get_the_configured_toleration_seconds_unless_they_have_their_own() {
        let a = Admission {
            service_range: Cidr::parse("10.96.0.0/12").unwrap(),
            node_ports: (30000, 32767),
            toleration_seconds: (30, 20),
        };
        let mut bare = json!({"spec": {"containers": [{"name": "c"}]}});
        a.default_toleration_seconds(&mut bare);
        assert_eq!(
            bare["spec"]["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 20},
            ])
        );
        // Its own for one key stays; an all-tolerating one needs nothing.
        let mut own = json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]}});
        a.default_toleration_seconds(&mut own);
        let keys: Vec<(&str, i64)> = own["spec"]["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().unwrap(),
                    t["tolerationSeconds"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("node.kubernetes.io/unreachable", 2),
                ("node.kubernetes.io/not-ready", 30)
            ]
        );
        let mut everything = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        a.default_toleration_seconds(&mut everything);
        assert_eq!(
            everything["spec"]["tolerations"].as_array().unwrap().len(),
            1
        );
    }
}
