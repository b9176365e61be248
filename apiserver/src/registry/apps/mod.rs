//! The `apps/v1` group: workloads with a pod template.

mod workloads;

use k8s_openapi::api::apps::v1 as api;

use super::{Resource, Sub, type_ops};

pub fn resources() -> Vec<Resource> {
    let apps = |kind, plural, singular, short_names, strategy, typed| Resource {
        short_names,
        categories: &["all"],
        subresources: &[Sub::Status, Sub::Scale],
        tracks_generation: true,
        strategy,
        ..Resource::new("apps", kind, plural, singular, typed)
    };
    vec![
        apps(
            "Deployment",
            "deployments",
            "deployment",
            &["deploy"],
            &workloads::DEPLOYMENT,
            type_ops::<api::Deployment>(),
        ),
        apps(
            "ReplicaSet",
            "replicasets",
            "replicaset",
            &["rs"],
            &workloads::REPLICA_SET,
            type_ops::<api::ReplicaSet>(),
        ),
        Resource {
            subresources: &[Sub::Status],
            ..apps(
                "DaemonSet",
                "daemonsets",
                "daemonset",
                &["ds"],
                &workloads::DAEMON_SET,
                type_ops::<api::DaemonSet>(),
            )
        },
        apps(
            "StatefulSet",
            "statefulsets",
            "statefulset",
            &["sts"],
            &workloads::STATEFUL_SET,
            type_ops::<api::StatefulSet>(),
        ),
    ]
}
