//! The strategic merge schema: Kubernetes 1.32 built-in types' patch
//! metadata, as data.
//!
//! Upstream declares this with Go struct tags, e.g. in
//! `k8s.io/api/core/v1/types.go`:
//! `Containers []Container `json:"containers" patchStrategy:"merge" patchMergeKey:"name"``.
//! Each such tag is one row of [`FIELDS`] here; so is every plain field
//! whose contents lead to a tagged field (`spec`, `template`, ...), so that a
//! look-up can walk from the object root down to the tagged list.
//!
//! Every tag below was checked against `k8s.io/api` and
//! `k8s.io/apimachinery` at tag `v0.32.0` (Kubernetes 1.32). Fields that are
//! listed with [`Plain`] and no child type are here only to document that
//! upstream has no tag on them (e.g. `NodeSpec.taints`: replaced whole).
//!
//! Not reachable, so not listed: `ContainerStatus.volumeMounts` and
//! `ContainerStatus.allocatedResourcesStatus` (merge by `mountPath` / `name`
//! upstream) live inside `PodStatus.containerStatuses`, which has no tag and
//! is therefore always replaced whole.
//!
//! To add a type, see the crate documentation ("Extending the schema").

use super::type_ref::Strategy::{self, *};
use super::type_ref::{FieldSchema, KindSchema};

/// "No child type": nothing inside the field needs special handling.
const NONE: &str = "";

const fn f(
    owner: &'static str,
    field: &'static str,
    child: &'static str,
    strategy: Strategy,
) -> FieldSchema {
    FieldSchema {
        owner,
        field,
        child,
        strategy,
    }
}

const fn k(group: &'static str, kind: &'static str, root: &'static str) -> KindSchema {
    KindSchema { group, kind, root }
}

/// Which schema type describes a whole object of each built-in kind.
/// Kinds whose only patch metadata is in `metadata` use `Object`.
#[rustfmt::skip]
pub(crate) const KINDS: &[KindSchema] = &[
    //  group                               kind                                root type
    k("",                                   "Pod",                              "Pod"),
    k("",                                   "PodTemplate",                      "PodTemplate"),
    k("",                                   "ReplicationController",            "ReplicationController"),
    k("",                                   "Service",                          "Service"),
    k("",                                   "ServiceAccount",                   "ServiceAccount"),
    k("",                                   "Node",                             "Node"),
    k("",                                   "Namespace",                        "Namespace"),
    k("",                                   "PersistentVolumeClaim",            "PersistentVolumeClaim"),
    k("",                                   "ComponentStatus",                  "ComponentStatus"),
    k("",                                   "ConfigMap",                        "Object"),
    k("",                                   "Secret",                           "Object"),
    k("",                                   "Endpoints",                        "Object"),
    k("",                                   "Event",                            "Object"),
    k("",                                   "LimitRange",                       "Object"),
    k("",                                   "ResourceQuota",                    "Object"),
    k("",                                   "PersistentVolume",                 "Object"),
    k("",                                   "Binding",                          "Object"),
    k("apps",                               "Deployment",                       "Deployment"),
    k("apps",                               "ReplicaSet",                       "ReplicaSet"),
    k("apps",                               "DaemonSet",                        "DaemonSet"),
    k("apps",                               "StatefulSet",                      "StatefulSet"),
    k("apps",                               "ControllerRevision",               "Object"),
    k("batch",                              "Job",                              "Job"),
    k("batch",                              "CronJob",                          "CronJob"),
    k("autoscaling",                        "HorizontalPodAutoscaler",          "HorizontalPodAutoscaler"),
    k("policy",                             "PodDisruptionBudget",              "PodDisruptionBudget"),
    k("storage.k8s.io",                     "CSINode",                          "CSINode"),
    k("storage.k8s.io",                     "StorageClass",                     "Object"),
    k("storage.k8s.io",                     "CSIDriver",                        "Object"),
    k("storage.k8s.io",                     "VolumeAttachment",                 "Object"),
    k("storage.k8s.io",                     "CSIStorageCapacity",               "Object"),
    k("admissionregistration.k8s.io",       "ValidatingWebhookConfiguration",   "ValidatingWebhookConfiguration"),
    k("admissionregistration.k8s.io",       "MutatingWebhookConfiguration",     "MutatingWebhookConfiguration"),
    k("admissionregistration.k8s.io",       "ValidatingAdmissionPolicy",        "ValidatingAdmissionPolicy"),
    k("admissionregistration.k8s.io",       "ValidatingAdmissionPolicyBinding", "Object"),
    k("flowcontrol.apiserver.k8s.io",       "FlowSchema",                       "FlowSchema"),
    k("flowcontrol.apiserver.k8s.io",       "PriorityLevelConfiguration",       "PriorityLevelConfiguration"),
    k("networking.k8s.io",                  "Ingress",                          "Object"),
    k("networking.k8s.io",                  "IngressClass",                     "Object"),
    k("networking.k8s.io",                  "NetworkPolicy",                    "Object"),
    k("rbac.authorization.k8s.io",          "Role",                             "Object"),
    k("rbac.authorization.k8s.io",          "ClusterRole",                      "Object"),
    k("rbac.authorization.k8s.io",          "RoleBinding",                      "Object"),
    k("rbac.authorization.k8s.io",          "ClusterRoleBinding",               "Object"),
    k("coordination.k8s.io",                "Lease",                            "Object"),
    k("scheduling.k8s.io",                  "PriorityClass",                    "Object"),
    k("discovery.k8s.io",                   "EndpointSlice",                    "Object"),
    k("events.k8s.io",                      "Event",                            "Object"),
    k("node.k8s.io",                        "RuntimeClass",                     "Object"),
    k("certificates.k8s.io",                "CertificateSigningRequest",        "Object"),
];

/// One row per field: owner type, JSON field name, type of its contents (the
/// element type for lists), patch strategy.
#[rustfmt::skip]
pub(crate) const FIELDS: &[FieldSchema] = &[
    //  owner                               field                          child type                        strategy
    // --- meta/v1 ---
    f("Object",                             "metadata",                    "ObjectMeta",                     Plain),
    f("ObjectMeta",                         "ownerReferences",             NONE,                             MergeByKey("uid")),
    f("ObjectMeta",                         "finalizers",                  NONE,                             MergePrimitives),

    // --- core/v1: pods ---
    f("Pod",                                "metadata",                    "ObjectMeta",                     Plain),
    f("Pod",                                "spec",                        "PodSpec",                        Plain),
    f("Pod",                                "status",                      "PodStatus",                      Plain),
    f("PodTemplate",                        "metadata",                    "ObjectMeta",                     Plain),
    f("PodTemplate",                        "template",                    "PodTemplateSpec",                Plain),
    f("PodTemplateSpec",                    "metadata",                    "ObjectMeta",                     Plain),
    f("PodTemplateSpec",                    "spec",                        "PodSpec",                        Plain),
    f("PodSpec",                            "volumes",                     NONE,                             MergeByKeyRetainKeys("name")),
    f("PodSpec",                            "initContainers",              "Container",                      MergeByKey("name")),
    f("PodSpec",                            "containers",                  "Container",                      MergeByKey("name")),
    f("PodSpec",                            "ephemeralContainers",         "EphemeralContainer",             MergeByKey("name")),
    f("PodSpec",                            "imagePullSecrets",            NONE,                             MergeByKey("name")),
    f("PodSpec",                            "hostAliases",                 NONE,                             MergeByKey("ip")),
    f("PodSpec",                            "topologySpreadConstraints",   NONE,                             MergeByKey("topologyKey")),
    f("PodSpec",                            "schedulingGates",             NONE,                             MergeByKey("name")),
    f("PodSpec",                            "resourceClaims",              NONE,                             MergeByKeyRetainKeys("name")),
    f("PodSpec",                            "tolerations",                 NONE,                             Plain),
    f("Container",                          "ports",                       NONE,                             MergeByKey("containerPort")),
    f("Container",                          "env",                         NONE,                             MergeByKey("name")),
    f("Container",                          "volumeMounts",                NONE,                             MergeByKey("mountPath")),
    f("Container",                          "volumeDevices",               NONE,                             MergeByKey("devicePath")),
    f("Container",                          "args",                        NONE,                             Plain),
    f("Container",                          "command",                     NONE,                             Plain),
    // EphemeralContainer inlines EphemeralContainerCommon, which repeats
    // Container's tags.
    f("EphemeralContainer",                 "ports",                       NONE,                             MergeByKey("containerPort")),
    f("EphemeralContainer",                 "env",                         NONE,                             MergeByKey("name")),
    f("EphemeralContainer",                 "volumeMounts",                NONE,                             MergeByKey("mountPath")),
    f("EphemeralContainer",                 "volumeDevices",               NONE,                             MergeByKey("devicePath")),
    f("PodStatus",                          "conditions",                  NONE,                             MergeByKey("type")),
    f("PodStatus",                          "podIPs",                      NONE,                             MergeByKey("ip")),
    f("PodStatus",                          "hostIPs",                     NONE,                             MergeByKey("ip")),
    f("PodStatus",                          "resourceClaimStatuses",       NONE,                             MergeByKeyRetainKeys("name")),
    f("PodStatus",                          "containerStatuses",           NONE,                             Plain),
    f("ReplicationController",              "metadata",                    "ObjectMeta",                     Plain),
    f("ReplicationController",              "spec",                        "ReplicationControllerSpec",      Plain),
    f("ReplicationController",              "status",                      "ReplicationControllerStatus",    Plain),
    f("ReplicationControllerSpec",          "template",                    "PodTemplateSpec",                Plain),
    f("ReplicationControllerStatus",        "conditions",                  NONE,                             MergeByKey("type")),

    // --- core/v1: everything else ---
    f("Service",                            "metadata",                    "ObjectMeta",                     Plain),
    f("Service",                            "spec",                        "ServiceSpec",                    Plain),
    f("Service",                            "status",                      "ServiceStatus",                  Plain),
    f("ServiceSpec",                        "ports",                       NONE,                             MergeByKey("port")),
    f("ServiceStatus",                      "conditions",                  NONE,                             MergeByKey("type")),
    f("ServiceAccount",                     "metadata",                    "ObjectMeta",                     Plain),
    f("ServiceAccount",                     "secrets",                     NONE,                             MergeByKey("name")),
    f("Node",                               "metadata",                    "ObjectMeta",                     Plain),
    f("Node",                               "spec",                        "NodeSpec",                       Plain),
    f("Node",                               "status",                      "NodeStatus",                     Plain),
    f("NodeSpec",                           "podCIDRs",                    NONE,                             MergePrimitives),
    f("NodeSpec",                           "taints",                      NONE,                             Plain),
    f("NodeStatus",                         "conditions",                  NONE,                             MergeByKey("type")),
    f("NodeStatus",                         "addresses",                   NONE,                             MergeByKey("type")),
    f("Namespace",                          "metadata",                    "ObjectMeta",                     Plain),
    f("Namespace",                          "status",                      "NamespaceStatus",                Plain),
    f("NamespaceStatus",                    "conditions",                  NONE,                             MergeByKey("type")),
    f("PersistentVolumeClaim",              "metadata",                    "ObjectMeta",                     Plain),
    f("PersistentVolumeClaim",              "status",                      "PersistentVolumeClaimStatus",    Plain),
    f("PersistentVolumeClaimStatus",        "conditions",                  NONE,                             MergeByKey("type")),
    f("ComponentStatus",                    "metadata",                    "ObjectMeta",                     Plain),
    f("ComponentStatus",                    "conditions",                  NONE,                             MergeByKey("type")),

    // --- apps/v1 ---
    f("Deployment",                         "metadata",                    "ObjectMeta",                     Plain),
    f("Deployment",                         "spec",                        "DeploymentSpec",                 Plain),
    f("Deployment",                         "status",                      "DeploymentStatus",               Plain),
    f("DeploymentSpec",                     "template",                    "PodTemplateSpec",                Plain),
    f("DeploymentSpec",                     "strategy",                    NONE,                             RetainKeys),
    f("DeploymentStatus",                   "conditions",                  NONE,                             MergeByKey("type")),
    f("ReplicaSet",                         "metadata",                    "ObjectMeta",                     Plain),
    f("ReplicaSet",                         "spec",                        "ReplicaSetSpec",                 Plain),
    f("ReplicaSet",                         "status",                      "ReplicaSetStatus",               Plain),
    f("ReplicaSetSpec",                     "template",                    "PodTemplateSpec",                Plain),
    f("ReplicaSetStatus",                   "conditions",                  NONE,                             MergeByKey("type")),
    f("DaemonSet",                          "metadata",                    "ObjectMeta",                     Plain),
    f("DaemonSet",                          "spec",                        "DaemonSetSpec",                  Plain),
    f("DaemonSet",                          "status",                      "DaemonSetStatus",                Plain),
    f("DaemonSetSpec",                      "template",                    "PodTemplateSpec",                Plain),
    f("DaemonSetStatus",                    "conditions",                  NONE,                             MergeByKey("type")),
    f("StatefulSet",                        "metadata",                    "ObjectMeta",                     Plain),
    f("StatefulSet",                        "spec",                        "StatefulSetSpec",                Plain),
    f("StatefulSet",                        "status",                      "StatefulSetStatus",              Plain),
    f("StatefulSetSpec",                    "template",                    "PodTemplateSpec",                Plain),
    f("StatefulSetStatus",                  "conditions",                  NONE,                             MergeByKey("type")),

    // --- batch/v1 ---
    f("Job",                                "metadata",                    "ObjectMeta",                     Plain),
    f("Job",                                "spec",                        "JobSpec",                        Plain),
    f("Job",                                "status",                      "JobStatus",                      Plain),
    f("JobSpec",                            "template",                    "PodTemplateSpec",                Plain),
    f("JobStatus",                          "conditions",                  NONE,                             MergeByKey("type")),
    f("CronJob",                            "metadata",                    "ObjectMeta",                     Plain),
    f("CronJob",                            "spec",                        "CronJobSpec",                    Plain),
    f("CronJobSpec",                        "jobTemplate",                 "JobTemplateSpec",                Plain),
    f("JobTemplateSpec",                    "metadata",                    "ObjectMeta",                     Plain),
    f("JobTemplateSpec",                    "spec",                        "JobSpec",                        Plain),

    // --- autoscaling/v2 (v1 has no conditions field; the row is harmless there) ---
    f("HorizontalPodAutoscaler",            "metadata",                    "ObjectMeta",                     Plain),
    f("HorizontalPodAutoscaler",            "status",                      "HorizontalPodAutoscalerStatus",  Plain),
    f("HorizontalPodAutoscalerStatus",      "conditions",                  NONE,                             MergeByKey("type")),

    // --- policy/v1 ---
    f("PodDisruptionBudget",                "metadata",                    "ObjectMeta",                     Plain),
    f("PodDisruptionBudget",                "spec",                        "PodDisruptionBudgetSpec",        Plain),
    f("PodDisruptionBudget",                "status",                      "PodDisruptionBudgetStatus",      Plain),
    f("PodDisruptionBudgetSpec",            "selector",                    NONE,                             Replace),
    f("PodDisruptionBudgetStatus",          "conditions",                  NONE,                             MergeByKey("type")),

    // --- storage/v1 ---
    f("CSINode",                            "metadata",                    "ObjectMeta",                     Plain),
    f("CSINode",                            "spec",                        "CSINodeSpec",                    Plain),
    f("CSINodeSpec",                        "drivers",                     NONE,                             MergeByKey("name")),

    // --- admissionregistration/v1 ---
    f("ValidatingWebhookConfiguration",     "metadata",                    "ObjectMeta",                     Plain),
    f("ValidatingWebhookConfiguration",     "webhooks",                    "ValidatingWebhook",              MergeByKey("name")),
    f("ValidatingWebhook",                  "matchConditions",             NONE,                             MergeByKey("name")),
    f("MutatingWebhookConfiguration",       "metadata",                    "ObjectMeta",                     Plain),
    f("MutatingWebhookConfiguration",       "webhooks",                    "MutatingWebhook",                MergeByKey("name")),
    f("MutatingWebhook",                    "matchConditions",             NONE,                             MergeByKey("name")),
    f("ValidatingAdmissionPolicy",          "metadata",                    "ObjectMeta",                     Plain),
    f("ValidatingAdmissionPolicy",          "spec",                        "ValidatingAdmissionPolicySpec",  Plain),
    f("ValidatingAdmissionPolicySpec",      "matchConditions",             NONE,                             MergeByKey("name")),
    f("ValidatingAdmissionPolicySpec",      "variables",                   NONE,                             MergeByKey("name")),

    // --- flowcontrol/v1 ---
    f("FlowSchema",                         "metadata",                    "ObjectMeta",                     Plain),
    f("FlowSchema",                         "status",                      "FlowSchemaStatus",               Plain),
    f("FlowSchemaStatus",                   "conditions",                  NONE,                             MergeByKey("type")),
    f("PriorityLevelConfiguration",         "metadata",                    "ObjectMeta",                     Plain),
    f("PriorityLevelConfiguration",         "status",                      "PriorityLevelConfigurationStatus", Plain),
    f("PriorityLevelConfigurationStatus",   "conditions",                  NONE,                             MergeByKey("type")),
];
