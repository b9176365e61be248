//! The core (`v1`) group.

mod config;
mod misc;
mod namespace;
mod node;
pub mod pod;
mod service;

use k8s_openapi::api::core::v1 as api;

use super::{Plain, Resource, Sub, type_ops};
use crate::validation::NameRule;

pub use misc::{EventStrategy, lease_holder};

fn core(kind: &'static str, plural: &'static str, namespaced: bool) -> Resource {
    Resource {
        group: "",
        version: "v1",
        kind,
        plural,
        singular: "",
        namespaced,
        short_names: &[],
        categories: &[],
        subresources: &[],
        name_rule: NameRule::Dns1123Subdomain,
        tracks_generation: false,
        strategy: &Plain,
        typed: type_ops::<api::ConfigMap>(),
        stored_as: None,
        review: None,
    }
}

pub fn resources() -> Vec<Resource> {
    vec![
        Resource {
            singular: "namespace",
            short_names: &["ns"],
            subresources: &[Sub::Status, Sub::Finalize],
            name_rule: NameRule::Dns1123Label,
            strategy: &namespace::NamespaceStrategy,
            typed: type_ops::<api::Namespace>(),
            ..core("Namespace", "namespaces", false)
        },
        Resource {
            singular: "pod",
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
            typed: type_ops::<api::Pod>(),
            ..core("Pod", "pods", true)
        },
        Resource {
            singular: "node",
            short_names: &["no"],
            subresources: &[Sub::Status, Sub::Proxy],
            strategy: &node::NodeStrategy,
            typed: type_ops::<api::Node>(),
            ..core("Node", "nodes", false)
        },
        Resource {
            singular: "service",
            short_names: &["svc"],
            categories: &["all"],
            subresources: &[Sub::Status, Sub::Proxy],
            name_rule: NameRule::Dns1035Label,
            strategy: &service::ServiceStrategy,
            typed: type_ops::<api::Service>(),
            ..core("Service", "services", true)
        },
        Resource {
            singular: "endpoints",
            short_names: &["ep"],
            strategy: &misc::EndpointsStrategy,
            typed: type_ops::<api::Endpoints>(),
            ..core("Endpoints", "endpoints", true)
        },
        Resource {
            singular: "configmap",
            short_names: &["cm"],
            strategy: &config::ConfigMapStrategy,
            typed: type_ops::<api::ConfigMap>(),
            ..core("ConfigMap", "configmaps", true)
        },
        Resource {
            singular: "secret",
            strategy: &config::SecretStrategy,
            typed: type_ops::<api::Secret>(),
            ..core("Secret", "secrets", true)
        },
        Resource {
            singular: "serviceaccount",
            short_names: &["sa"],
            strategy: &misc::ServiceAccountStrategy,
            typed: type_ops::<api::ServiceAccount>(),
            ..core("ServiceAccount", "serviceaccounts", true)
        },
        Resource {
            singular: "event",
            short_names: &["ev"],
            name_rule: NameRule::PathSegment,
            strategy: &misc::EventStrategy,
            typed: type_ops::<api::Event>(),
            ..core("Event", "events", true)
        },
        Resource {
            singular: "persistentvolumeclaim",
            short_names: &["pvc"],
            subresources: &[Sub::Status],
            strategy: &misc::PersistentVolumeClaimStrategy,
            typed: type_ops::<api::PersistentVolumeClaim>(),
            ..core("PersistentVolumeClaim", "persistentvolumeclaims", true)
        },
        Resource {
            singular: "persistentvolume",
            short_names: &["pv"],
            subresources: &[Sub::Status],
            strategy: &misc::PersistentVolumeStrategy,
            typed: type_ops::<api::PersistentVolume>(),
            ..core("PersistentVolume", "persistentvolumes", false)
        },
    ]
}
