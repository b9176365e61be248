//! The core (`v1`) group.

mod config;
mod misc;
mod namespace;
mod node;
pub mod pod;
mod service;

use k8s_openapi::api::core::v1 as api;

use super::{Resource, Sub, type_ops};
use crate::validation::NameRule;

pub use misc::{EventStrategy, lease_holder};

pub fn resources() -> Vec<Resource> {
    vec![
        Resource {
            namespaced: false,
            short_names: &["ns"],
            subresources: &[Sub::Status, Sub::Finalize],
            name_rule: NameRule::Dns1123Label,
            strategy: &namespace::NamespaceStrategy,
            ..Resource::new(
                "",
                "Namespace",
                "namespaces",
                "namespace",
                type_ops::<api::Namespace>(),
            )
        },
        Resource {
            short_names: &["po"],
            categories: &["all"],
            subresources: &[
                Sub::Status,
                Sub::Binding,
                Sub::Eviction,
                Sub::Log,
                Sub::Exec,
                Sub::Attach,
                Sub::PortForward,
                Sub::Proxy,
            ],
            strategy: &pod::PodStrategy,
            ..Resource::new("", "Pod", "pods", "pod", type_ops::<api::Pod>())
        },
        Resource {
            namespaced: false,
            short_names: &["no"],
            subresources: &[Sub::Status, Sub::Proxy],
            strategy: &node::NodeStrategy,
            ..Resource::new("", "Node", "nodes", "node", type_ops::<api::Node>())
        },
        Resource {
            short_names: &["svc"],
            categories: &["all"],
            subresources: &[Sub::Status, Sub::Proxy],
            name_rule: NameRule::Dns1035Label,
            strategy: &service::ServiceStrategy,
            ..Resource::new(
                "",
                "Service",
                "services",
                "service",
                type_ops::<api::Service>(),
            )
        },
        Resource {
            short_names: &["ep"],
            strategy: &misc::EndpointsStrategy,
            ..Resource::new(
                "",
                "Endpoints",
                "endpoints",
                "endpoints",
                type_ops::<api::Endpoints>(),
            )
        },
        Resource {
            short_names: &["cm"],
            strategy: &config::ConfigMapStrategy,
            ..Resource::new(
                "",
                "ConfigMap",
                "configmaps",
                "configmap",
                type_ops::<api::ConfigMap>(),
            )
        },
        Resource {
            strategy: &config::SecretStrategy,
            ..Resource::new("", "Secret", "secrets", "secret", type_ops::<api::Secret>())
        },
        Resource {
            short_names: &["sa"],
            strategy: &misc::ServiceAccountStrategy,
            ..Resource::new(
                "",
                "ServiceAccount",
                "serviceaccounts",
                "serviceaccount",
                type_ops::<api::ServiceAccount>(),
            )
        },
        Resource {
            short_names: &["ev"],
            name_rule: NameRule::PathSegment,
            strategy: &misc::EventStrategy,
            ..Resource::new("", "Event", "events", "event", type_ops::<api::Event>())
        },
        Resource {
            short_names: &["pvc"],
            subresources: &[Sub::Status],
            strategy: &misc::PersistentVolumeClaimStrategy,
            ..Resource::new(
                "",
                "PersistentVolumeClaim",
                "persistentvolumeclaims",
                "persistentvolumeclaim",
                type_ops::<api::PersistentVolumeClaim>(),
            )
        },
        Resource {
            namespaced: false,
            short_names: &["pv"],
            subresources: &[Sub::Status],
            strategy: &misc::PersistentVolumeStrategy,
            ..Resource::new(
                "",
                "PersistentVolume",
                "persistentvolumes",
                "persistentvolume",
                type_ops::<api::PersistentVolume>(),
            )
        },
    ]
}
