//! The write path of every verb, run without a store: what the fuzz
//! targets (`apiserver/fuzz/`) and the no-panic properties
//! (`tests/no_panics.rs`) drive with generated input.
//!
//! [`create`], [`update`] and [`patch`] call the same pure stages the
//! handlers call (`handlers::prepare::{for_create, for_update,
//! check_patched, updated, validate}`, `handlers::patch::apply_patch`), in
//! the handlers' order, and stop where a handler would go to admission and
//! storage; each returns what would be stored, or `None` where the server
//! would answer with an error. [`read_back`] does what reads do with it.
//! Every step must answer with an error, never panic.

use serde_json::{Value, json};

use crate::handlers::Query;
use crate::handlers::patch::{PatchType, apply_patch};
use crate::handlers::prepare::{self, FieldValidation};
use crate::http::{body, request};
use crate::object;
use crate::registry::{Resource, Sub, table};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::validation::{self, NameRule};

/// Field names the strategies, the typed check and the patch directives look
/// at. Picking from these (rather than only random strings) is what makes
/// edits land on fields the code reads.
pub const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "generateName",
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "finalizers",
    "ownerReferences",
    "selfLink",
    "spec",
    "status",
    "containers",
    "initContainers",
    "ephemeralContainers",
    "image",
    "imagePullPolicy",
    "ports",
    "containerPort",
    "hostPort",
    "protocol",
    "env",
    "value",
    "volumeMounts",
    "mountPath",
    "volumes",
    "configMap",
    "secret",
    "downwardAPI",
    "projected",
    "defaultMode",
    "hostPath",
    "type",
    "restartPolicy",
    "dnsPolicy",
    "nodeName",
    "nodeSelector",
    "tolerations",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "resources",
    "requests",
    "limits",
    "cpu",
    "memory",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "httpGet",
    "path",
    "scheme",
    "replicas",
    "selector",
    "matchLabels",
    "matchExpressions",
    "key",
    "operator",
    "values",
    "template",
    "strategy",
    "rollingUpdate",
    "maxSurge",
    "maxUnavailable",
    "updateStrategy",
    "partition",
    "podManagementPolicy",
    "clusterIP",
    "clusterIPs",
    "port",
    "targetPort",
    "nodePort",
    "externalName",
    "externalIPs",
    "sessionAffinity",
    "data",
    "binaryData",
    "stringData",
    "immutable",
    "phase",
    "reason",
    "message",
    "conditions",
    "containerStatuses",
    "initContainerStatuses",
    "state",
    "waiting",
    "running",
    "terminated",
    "exitCode",
    "signal",
    "restartCount",
    "lastState",
    "finishedAt",
    "ready",
    "podIP",
    "startTime",
    "completionTime",
    "succeeded",
    "completions",
    "parallelism",
    "suspend",
    "manualSelector",
    "endpoints",
    "addresses",
    "addressType",
    "subsets",
    "ip",
    "hostname",
    "holderIdentity",
    "involvedObject",
    "regarding",
    "firstTimestamp",
    "lastTimestamp",
    "eventTime",
    "count",
    "source",
    "component",
    "host",
    "capacity",
    "storage",
    "accessModes",
    "claimRef",
    "storageClassName",
    "volumeMode",
    "persistentVolumeReclaimPolicy",
    "loadBalancer",
    "ingress",
    "unschedulable",
    "nodeInfo",
    "kubeletVersion",
    "readinessGates",
    "conditionType",
    "$patch",
    "$retainKeys",
    "$setElementOrder/containers",
    "$setElementOrder/ports",
    "$setElementOrder/finalizers",
    "$deleteFromPrimitiveList/finalizers",
    "op",
    "from",
];

/// Values the strategies compare against, values at the edges of what they
/// accept, and a few that are awkward to slice or print.
pub const STRINGS: &[&str] = &[
    "",
    "x",
    "web",
    "default",
    "kube-system",
    "app",
    "nginx",
    "nginx:1.27",
    "nginx@sha256:abc",
    "Always",
    "Never",
    "OnFailure",
    "IfNotPresent",
    "ClusterFirst",
    "ClusterIP",
    "NodePort",
    "LoadBalancer",
    "ExternalName",
    "None",
    "TCP",
    "UDP",
    "SCTP",
    "RollingUpdate",
    "Recreate",
    "OnDelete",
    "25%",
    "0%",
    "0",
    "-1",
    "In",
    "NotIn",
    "Exists",
    "DoesNotExist",
    "True",
    "False",
    "Ready",
    "Complete",
    "Failed",
    "Running",
    "Pending",
    "Bound",
    "Opaque",
    "NodeLost",
    "PodInitializing",
    "IPv4",
    "2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00.000000Z",
    "9999-12-31T23:59:59Z",
    "-009999-01-01T00:00:00Z",
    "0000-00-00T00:00:00Z",
    "1Gi",
    "100m",
    "1e309",
    "replace",
    "merge",
    "delete",
    "retainKeys",
    "add",
    "remove",
    "move",
    "copy",
    "test",
    "",
    "/",
    "/-",
    "/metadata/labels/app",
    "/metadata/name",
    "/spec/containers/0",
    "/spec/containers/-",
    "/spec/containers/99999999999999999999",
    "/metadata/labels/a~1b",
    "~",
    "~2",
    "node-role.kubernetes.io/control-plane",
    "kubernetes.io/role",
    "kubernetes.io/metadata.name",
    "a/b/c",
    "/a",
    "a/",
    ".",
    "..",
    "%",
    "\u{0}",
    "é",
    "日本語",
    "🚀",
    "a\u{301}",
    "MQ==",
    "!!!",
];

fn pod_spec(restart_policy: &str) -> Value {
    json!({
        "restartPolicy": restart_policy,
        "containers": [{
            "name": "web",
            "image": "nginx:1.27",
            "ports": [{"containerPort": 80, "name": "http"}],
            "env": [{"name": "A", "value": "1"}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
            "readinessProbe": {"httpGet": {"port": 80}}
        }],
        "volumes": [{"name": "data", "configMap": {"name": "web"}}]
    })
}

/// A valid object of the resource's kind, as a client would create it.
pub fn template(resource: &Resource) -> Value {
    let mut obj = json!({
        "apiVersion": resource.api_version(),
        "kind": resource.kind,
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a": "b"}},
    });
    if resource.namespaced {
        obj["metadata"]["namespace"] = json!("default");
    }
    let workload = json!({
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec("Always")}
    });
    let extra = match (resource.group, resource.kind) {
        ("", "Pod") => json!({"spec": pod_spec("Always")}),
        ("apps", _) => json!({"spec": workload}),
        ("batch", "Job") => {
            json!({"spec": {"completions": 1, "template": {"spec": pod_spec("Never")}}})
        }
        ("", "Service") => json!({"spec": {
            "type": "NodePort",
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]
        }}),
        ("", "ConfigMap") => json!({"data": {"a": "1"}, "binaryData": {"b": "MQ=="}}),
        ("", "Secret") => json!({"data": {"a": "MQ=="}, "stringData": {"b": "x"}}),
        ("", "Endpoints") => json!({"subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
            "ports": [{"port": 80}, {"port": 443}]
        }]}),
        ("discovery.k8s.io", _) => json!({
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]}],
            "ports": [{"port": 80}]
        }),
        ("coordination.k8s.io", _) => json!({"spec": {"holderIdentity": "node-1"}}),
        ("", "Event") => json!({
            "involvedObject": {"kind": "Pod", "name": "web"},
            "reason": "Started",
            "message": "started",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-01-01T00:00:00Z",
            "count": 2
        }),
        ("events.k8s.io", _) => json!({
            "eventTime": "2024-01-01T00:00:00.000000Z",
            "reportingController": "kubelet",
            "reportingInstance": "node-1",
            "action": "Started",
            "reason": "Started",
            "regarding": {"kind": "Pod", "name": "web"}
        }),
        ("", "PersistentVolumeClaim") => json!({"spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}
        }}),
        ("", "PersistentVolume") => json!({"spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp"},
            "claimRef": {"namespace": "default", "name": "web"}
        }}),
        _ => json!({}),
    };
    if let (Some(obj), Value::Object(extra)) = (obj.as_object_mut(), extra) {
        obj.extend(extra);
    }
    obj
}

/// What reads do with a stored object: the table row (`kubectl get`), field
/// and label selectors (list and watch filters), and the JSON encoding.
pub fn read_back(resource: &Resource, obj: &Value) {
    let columns = resource.strategy.columns();
    let cells = resource.strategy.cells(obj);
    // Not a panic, but a table whose rows do not fit its columns is broken
    // for every client, and cheap to check here.
    assert_eq!(
        columns.len(),
        cells.len(),
        "{} columns vs cells",
        resource.kind
    );
    for path in [
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
        "spec.clusterIP",
        "spec.type",
        "type",
        "spec.storageClassName",
        "involvedObject.kind",
        "involvedObject.name",
        "reason",
        "source",
        "",
    ] {
        let _ = resource.strategy.field(obj, path);
    }
    let selector = object::get(obj, &["spec", "selector"]);
    let _ = table::label_selector_string(selector);
    let _ = table::selector_string(selector);
    if let Some(selector) = selector
        && let Ok(parsed) = LabelSelector::from_object(selector)
    {
        let _ = parsed.matches_object(obj);
    }
    let _ = serde_json::to_vec(obj);
}

/// A create of `obj` in `namespace` (`handlers::create::create_object`).
pub fn create(
    resource: &'static Resource,
    obj: Value,
    namespace: &str,
    mode: FieldValidation,
) -> Option<Value> {
    // `body::decode_object` refuses anything but an object before this.
    if !obj.is_object() {
        return None;
    }
    let (obj, _warnings) = prepare::for_create(resource, obj, namespace, mode).ok()?;
    read_back(resource, &obj);
    Some(obj)
}

/// An update of the stored `current` with `sent` (`handlers::update`).
pub fn update(
    resource: &'static Resource,
    sent: Value,
    current: &Value,
    sub: Option<Sub>,
    mode: FieldValidation,
) -> Option<Value> {
    if !sent.is_object() {
        return None;
    }
    let (namespace, name) = (object::namespace(current), object::name(current));
    let (sent, _warnings) = prepare::for_update(resource, sent, namespace, name, mode).ok()?;
    let new = prepare::updated(resource, sub, &sent, current);
    prepare::validate(resource, &new, Some(current)).ok()?;
    read_back(resource, &new);
    Some(new)
}

/// A patch of the stored `current` (`handlers::patch`; server-side apply
/// is merged as a strategic patch here, without field ownership).
pub fn patch(
    resource: &'static Resource,
    kind: PatchType,
    current: &Value,
    patch: &Value,
    sub: Option<Sub>,
    mode: FieldValidation,
) -> Option<Value> {
    // The handler refuses these before applying anything.
    match kind {
        PatchType::Json if !patch.is_array() => return None,
        PatchType::Json => {}
        _ if !patch.is_object() => return None,
        _ => {}
    }
    let mut patched = match apply_patch(kind, resource, current, patch) {
        Ok(patched) => patched,
        Err(err) => {
            // Every error becomes a response: it must render.
            let _ = err.status();
            return None;
        }
    };
    let (namespace, name) = (object::namespace(current), object::name(current));
    prepare::check_patched(resource, &mut patched, namespace, name, mode).ok()?;
    let sub = sub.filter(|s| *s == Sub::Status);
    let new = prepare::updated(resource, sub, &patched, current);
    prepare::validate(resource, &new, Some(current)).ok()?;
    read_back(resource, &new);
    Some(new)
}

/// A body sent to the resource: what `create`, `update` and `patch` do
/// with it.
pub fn body_in(resource: &'static Resource, content_type: &str, bytes: &[u8]) {
    let decoded = body::decode(content_type, bytes);
    let _ = body::decode_object(content_type, bytes);
    let _ = body::duplicate_fields(content_type, bytes);
    if let Ok(obj) = crate::protobuf::decode_body(resource, content_type, bytes) {
        create(resource, obj, "default", FieldValidation::Strict);
    }
    let Ok(doc) = decoded else { return };
    let Ok(kind) = PatchType::from_content_type(content_type) else {
        return;
    };
    if let Some(current) = stored(resource) {
        patch(resource, kind, &current, &doc, None, FieldValidation::Warn);
    }
}

/// The resource's template, created: what a patch applies to.
pub fn stored(resource: &'static Resource) -> Option<Value> {
    create(
        resource,
        template(resource),
        "default",
        FieldValidation::Strict,
    )
}

/// Selectors, paths, queries and names made of `text`.
pub fn strings(resource: &'static Resource, text: &str) {
    let obj = template(resource);
    if let Ok(selector) = LabelSelector::parse(text) {
        let _ = selector.matches_object(&obj);
        let _ = selector.matches(Some(&json!({ text: text, "app": "web" })));
    }
    if let Ok(selector) = FieldSelector::parse(text) {
        let _ = selector.fields().count();
        let _ = selector.required("metadata.name");
        let _ = selector.matches(|field| match field {
            "metadata.name" => Some("web".to_string()),
            "metadata.namespace" => Some("default".to_string()),
            other => resource.strategy.field(&obj, other),
        });
    }
    if let Ok(value) = serde_json::from_str::<Value>(text)
        && let Ok(selector) = LabelSelector::from_object(&value)
    {
        let _ = selector.matches_object(&obj);
        let _ = table::label_selector_string(Some(&value));
    }
    let _ = request::route(text);
    for prefix in [
        "/api/v1/",
        "/apis/apps/v1/",
        "/api/v1/namespaces/default/",
        "/apis/",
    ] {
        let _ = request::route(&format!("{prefix}{text}"));
    }
    let query = Query::parse(Some(text));
    let _ = (
        FieldValidation::from_query(&query),
        query.dry_run(),
        query.flag("watch"),
    );
    for rule in [
        NameRule::Dns1123Subdomain,
        NameRule::Dns1123Label,
        NameRule::Dns1035Label,
        NameRule::PathSegment,
    ] {
        let _ = validation::validate_name("metadata.name", text, rule);
    }
    let _ = validation::validate_qualified_name("metadata.labels", text);
    let _ = validation::is_label_value(text);
    let _ = validation::validate_labels("metadata.labels", Some(&json!({ text: text })));
    let _ = validation::validate_annotations("metadata.annotations", Some(&json!({ text: text })));
    let _ = validation::validate_object_meta(
        Some(&json!({"name": text, "namespace": text, "generateName": text})),
        resource.namespaced,
        resource.name_rule,
    );
    let _ = table::since(Some(text));
    let _ = skiff_patch::TypeRef::named(text);
    let _ = body::duplicate_fields("application/json", text.as_bytes());
}
