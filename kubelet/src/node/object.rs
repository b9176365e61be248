//! The Node object the kubelet registers and the status it posts: pure
//! functions of the configuration, the machine and the clock.

use std::collections::BTreeMap;
use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints,
    NodeSpec, NodeStatus, NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::host::HostInfo;
use super::pressure::Pressure;
use super::quantity::{Reserved, resource_list};

/// The version the Node reports (`kubectl get nodes` VERSION), the API's minor.
pub const KUBELET_VERSION: &str = "v1.32.0";
/// The port the kubelet's API is served on, as upstream.
pub const KUBELET_PORT: i32 = 10250;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NodeFlagError {
    #[error("--node-labels {0:?}: expected key=value")]
    Label(String),
    #[error(
        "--register-with-taints {0:?}: expected key[=value]:NoSchedule|PreferNoSchedule|NoExecute"
    )]
    Taint(String),
}

/// `key=value` pieces of `--node-labels`.
pub fn parse_labels(items: &[String]) -> Result<BTreeMap<String, String>, NodeFlagError> {
    items
        .iter()
        .filter(|i| !i.is_empty())
        .map(|i| match i.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(NodeFlagError::Label(i.clone())),
        })
        .collect()
}

/// `key=value:Effect` or `key:Effect` pieces of `--register-with-taints`.
pub fn parse_taints(items: &[String]) -> Result<Vec<Taint>, NodeFlagError> {
    items
        .iter()
        .filter(|i| !i.is_empty())
        .map(|i| {
            let bad = || NodeFlagError::Taint(i.clone());
            let (kv, effect) = i.rsplit_once(':').ok_or_else(bad)?;
            if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
                return Err(bad());
            }
            let (key, value) = match kv.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (kv, None),
            };
            if key.is_empty() {
                return Err(bad());
            }
            Ok(Taint {
                key: key.to_string(),
                value,
                effect: effect.to_string(),
                time_added: None,
            })
        })
        .collect()
}

/// Everything the Node is built from.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub name: String,
    pub ip: IpAddr,
    pub hostname: String,
    pub host: HostInfo,
    pub max_pods: u32,
    /// system-reserved + kube-reserved + the hard memory eviction threshold.
    pub reserved: Reserved,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// Where the kubelet API listens (`status.daemonEndpoints`).
    pub kubelet_port: i32,
}

impl NodeFacts {
    /// The well-known labels first; `--node-labels` may not override them.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        for (k, v) in [
            ("kubernetes.io/hostname", self.name.as_str()),
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", self.host.architecture.as_str()),
            ("beta.kubernetes.io/os", "linux"),
            ("beta.kubernetes.io/arch", self.host.architecture.as_str()),
        ] {
            labels.insert(k.to_string(), v.to_string());
        }
        labels
    }

    /// The Node as first registered: labels, taints, and its status.
    pub fn node(&self) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(self.labels()),
                annotations: Some(BTreeMap::from([(
                    "node.alpha.kubernetes.io/ttl".to_string(),
                    "0".to_string(),
                )])),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: (!self.taints.is_empty()).then(|| self.taints.clone()),
                ..Default::default()
            }),
            status: None,
        }
    }

    /// The status posted at every update, with `conditions` already decided.
    pub fn status(
        &self,
        conditions: Vec<NodeCondition>,
        images: Vec<ContainerImage>,
    ) -> NodeStatus {
        let h = &self.host;
        let r = &self.reserved;
        NodeStatus {
            capacity: Some(resource_list(
                h.milli_cpu,
                h.memory_bytes,
                h.ephemeral_bytes,
                self.max_pods,
            )),
            allocatable: Some(resource_list(
                h.milli_cpu.saturating_sub(r.milli_cpu),
                h.memory_bytes.saturating_sub(r.memory),
                h.ephemeral_bytes.saturating_sub(r.ephemeral_storage),
                self.max_pods,
            )),
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: self.ip.to_string(),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: self.hostname.clone(),
                },
            ]),
            conditions: Some(conditions),
            images: Some(images),
            daemon_endpoints: Some(NodeDaemonEndpoints {
                kubelet_endpoint: Some(DaemonEndpoint {
                    port: self.kubelet_port,
                }),
            }),
            node_info: Some(NodeSystemInfo {
                architecture: h.architecture.clone(),
                boot_id: h.boot_id.clone(),
                container_runtime_version: format!("skiff://{}", env!("CARGO_PKG_VERSION")),
                kernel_version: h.kernel_version.clone(),
                kube_proxy_version: String::new(),
                kubelet_version: KUBELET_VERSION.into(),
                machine_id: h.machine_id.clone(),
                operating_system: "linux".into(),
                os_image: h.os_image.clone(),
                system_uuid: h.machine_id.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Whether the node is ready, and if not why (the runtime or its network).
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    Ready,
    NotReady(String),
}

/// The four conditions at `now`: each keeps its `lastTransitionTime` from
/// `previous` when its status did not change, and every heartbeat time is now.
pub fn conditions(
    previous: &[NodeCondition],
    pressures: &[Pressure; 3],
    readiness: &Readiness,
    now: Timestamp,
) -> Vec<NodeCondition> {
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        let transition = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        NodeCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time: Some(transition),
        }
    };
    let mut all: Vec<NodeCondition> = pressures
        .iter()
        .map(|p| {
            condition(
                p.type_,
                if p.under { "True" } else { "False" },
                p.reason,
                p.message,
            )
        })
        .collect();
    all.push(match readiness {
        Readiness::Ready => condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
        Readiness::NotReady(why) => condition("Ready", "False", "KubeletNotReady", why),
    });
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::pressure::{Thresholds, conditions as pressure_conditions};

    fn facts() -> NodeFacts {
        NodeFacts {
            name: "node-1".into(),
            ip: "192.168.56.11".parse().unwrap(),
            hostname: "node-1".into(),
            host: HostInfo {
                milli_cpu: 4000,
                memory_bytes: 8 << 30,
                ephemeral_bytes: 100 << 30,
                kernel_version: "6.1.0".into(),
                os_image: "Debian GNU/Linux 12 (bookworm)".into(),
                machine_id: "abc".into(),
                boot_id: "boot".into(),
                architecture: "amd64".into(),
            },
            max_pods: 110,
            reserved: Reserved {
                milli_cpu: 100,
                memory: 100 << 20,
                ephemeral_storage: 0,
                pids: 0,
            },
            labels: parse_labels(&["role=web".into(), "kubernetes.io/os=windows".into()]).unwrap(),
            taints: parse_taints(&["dedicated=lab:NoSchedule".into()]).unwrap(),
            kubelet_port: KUBELET_PORT,
        }
    }

    #[test]
    fn flags() {
        assert_eq!(
            parse_labels(&["a".into()]),
            Err(NodeFlagError::Label("a".into()))
        );
        let taints = parse_taints(&["k=v:NoExecute".into(), "solo:NoSchedule".into()]).unwrap();
        assert_eq!(taints[0].value.as_deref(), Some("v"));
        assert_eq!(
            (taints[1].key.as_str(), taints[1].value.clone()),
            ("solo", None)
        );
        for bad in ["k=v", "k=v:Sometimes", ":NoSchedule"] {
            assert!(parse_taints(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_and_status() {
        let f = facts();
        let node = f.node();
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["role"], "web");
        assert_eq!(labels["kubernetes.io/os"], "linux", "well-known labels win");
        assert_eq!(labels["kubernetes.io/hostname"], "node-1");
        assert_eq!(node.spec.unwrap().taints.unwrap()[0].effect, "NoSchedule");

        let status = f.status(vec![], vec![]);
        let cap = status.capacity.unwrap();
        let alloc = status.allocatable.unwrap();
        assert_eq!(
            (cap["cpu"].0.as_str(), alloc["cpu"].0.as_str()),
            ("4", "3900m")
        );
        assert_eq!(cap["memory"].0, "8388608Ki");
        assert_eq!(alloc["memory"].0, "8286208Ki");
        assert_eq!(alloc["pods"].0, "110");
        let addresses = status.addresses.unwrap();
        assert_eq!(addresses[0].address, "192.168.56.11");
        assert_eq!(status.node_info.unwrap().kubelet_version, "v1.32.0");
    }

    #[test]
    fn transitions_are_kept_while_status_holds() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let t1 = Timestamp::from_second(1_700_000_010).unwrap();
        let sample = crate::node::host::Sample {
            memory_available: 4 << 30,
            nodefs_available: 50 << 30,
            nodefs_capacity: 100 << 30,
            pids_available: 1 << 20,
            pid_max: 1 << 22,
        };
        let p = pressure_conditions(&sample, 8 << 30, &Thresholds::default());
        let first = conditions(&[], &p, &Readiness::NotReady("runtime starting".into()), t0);
        assert_eq!(first.len(), 4);
        let ready = &first[3];
        assert_eq!(
            (ready.type_.as_str(), ready.status.as_str()),
            ("Ready", "False")
        );

        let second = conditions(&first, &p, &Readiness::Ready, t1);
        assert_eq!(
            second[0].last_transition_time,
            Some(Time(t0)),
            "MemoryPressure held"
        );
        assert_eq!(second[0].last_heartbeat_time, Some(Time(t1)));
        assert_eq!(second[3].status, "True");
        assert_eq!(
            second[3].last_transition_time,
            Some(Time(t1)),
            "Ready flipped"
        );
        assert_eq!(second[3].reason.as_deref(), Some("KubeletReady"));
    }
}
