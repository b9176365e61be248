//! The node heartbeat: a Lease `kube-node-lease/<node>` renewed every quarter
//! of its duration (10 s for 40 s, as upstream), owned by the Node so it goes
//! when the Node does. The node lifecycle controller reads its `renewTime`.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{Api, PostParams};

pub const NAMESPACE: &str = "kube-node-lease";

/// The Lease for `node`, renewed at `now`.
pub fn desired(node: &Node, duration_seconds: i32, now: Timestamp) -> Lease {
    let name = node.metadata.name.clone().unwrap_or_default();
    Lease {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(NAMESPACE.into()),
            owner_references: node.metadata.uid.clone().map(|uid| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    name: name.clone(),
                    uid,
                    ..Default::default()
                }]
            }),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name),
            lease_duration_seconds: Some(duration_seconds),
            renew_time: Some(MicroTime(now)),
            ..Default::default()
        }),
    }
}

/// How often the Lease is renewed: a quarter of its duration, at least 250 ms.
pub fn renew_interval(duration_seconds: i32) -> Duration {
    Duration::from_millis((duration_seconds.max(1) as u64 * 1000 / 4).max(250))
}

/// One renewal: create the Lease, or replace its spec (keeping its
/// resourceVersion, so a concurrent writer is noticed and retried next time).
pub async fn renew(client: &Client, node: &Node, duration_seconds: i32) -> Result<(), kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let want = desired(node, duration_seconds, Timestamp::now());
    let name = want.metadata.name.clone().unwrap_or_default();
    match api.get_opt(&name).await? {
        None => api.create(&PostParams::default(), &want).await.map(|_| ()),
        Some(mut lease) => {
            lease.spec = want.spec;
            if lease.metadata.owner_references.is_none() {
                lease.metadata.owner_references = want.metadata.owner_references;
            }
            api.replace(&name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_shape() {
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                uid: Some("u-1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let lease = desired(&node, 40, now);
        assert_eq!(lease.metadata.namespace.as_deref(), Some("kube-node-lease"));
        let owner = &lease.metadata.owner_references.unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Node", "u-1"));
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("n1"));
        assert_eq!(spec.renew_time, Some(MicroTime(now)));
        assert_eq!(renew_interval(40), Duration::from_secs(10));
        assert_eq!(renew_interval(0), Duration::from_millis(250));
    }
}
