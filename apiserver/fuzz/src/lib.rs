//! What the skiff-apiserver fuzz targets share: objects shaped like
//! Kubernetes objects built from the fuzzer's bytes, and the write path of
//! the API server replayed without its storage.
//!
//! The handlers that create, update and patch objects are private and need a
//! running store, so [`create`], [`update`] and [`patch`] repeat their steps
//! with the public pieces (`handlers::prepare`, the registry's strategies,
//! `skiff_patch`) in the same order. When a handler changes its order, these
//! should follow; each says which handler it mirrors.
//!
//! Objects come from [`object`]: a valid object of the kind (so that the
//! typed check passes often enough to reach defaulting and validation) with
//! a few random edits made at random places in it, using field names and
//! values Kubernetes uses, plus arbitrary ones.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Number, Value, json};
use skiff_apiserver::handlers::prepare::{self, FieldValidation};
use skiff_apiserver::object;
use skiff_apiserver::registry::{RESOURCES, Resource, Sub, table};
use skiff_apiserver::selectors::LabelSelector;

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

/// A string: mostly one Kubernetes uses, sometimes a long or multi-byte one
/// (names are cut at byte lengths), sometimes anything.
pub fn string(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=7)? {
        0..=4 => (*u.choose(STRINGS)?).to_string(),
        5 => {
            // Long strings around the limits the code checks (15, 58, 63, 253
            // bytes), made of a character of 1 to 4 bytes.
            let unit = *u.choose(&["a", "-", "é", "日", "🚀", "aé"])?;
            let count = u.int_in_range(1..=300)?;
            let prefix = *u.choose(&["", "a", "ab", "abc"])?;
            format!("{prefix}{}", unit.repeat(count))
        }
        _ => u.arbitrary()?,
    })
}

/// An object key: mostly a Kubernetes field name.
pub fn key(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(3, 4)? {
        Ok((*u.choose(KEYS)?).to_string())
    } else {
        string(u)
    }
}

/// A number: small, at a boundary of i32, i64 or u64, or a float.
pub fn number(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=5)? {
        0 => json!(u.int_in_range(-3i64..=3)?),
        1 => json!(*u.choose(&[
            65535i64,
            65536,
            30000,
            i32::MAX as i64,
            i32::MIN as i64,
            i32::MAX as i64 + 1,
            i64::MAX,
            i64::MIN,
            i64::MAX - 1,
        ])?),
        2 => json!(u64::MAX - u.int_in_range(0u64..=2)?),
        3 => Number::from_f64(u.arbitrary::<f64>()?).map_or(Value::Null, Value::Number),
        4 => json!(*u.choose(&[0.5f64, -0.0, 1e300, -1e300, 1.0, 80.0, f64::MAX])?),
        _ => json!(u.arbitrary::<i64>()?),
    })
}

/// Any JSON value, nested at most `depth` more levels.
pub fn value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let top = if depth == 0 { 4 } else { 7 };
    Ok(match u.int_in_range(0..=top)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => number(u)?,
        3 | 4 => Value::String(string(u)?),
        5 => {
            let len = u.int_in_range(0..=3)?;
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(value(u, depth - 1)?);
            }
            Value::Array(items)
        }
        _ => {
            let len = u.int_in_range(0..=4)?;
            let mut map = Map::new();
            for _ in 0..len {
                map.insert(key(u)?, value(u, depth - 1)?);
            }
            Value::Object(map)
        }
    })
}

/// The resource a fuzz input is about.
pub fn resource(u: &mut Unstructured<'_>) -> Result<&'static Resource> {
    u.choose(RESOURCES.as_slice())
}

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

/// One random edit somewhere in `v`: walks down existing fields (or new
/// ones), then replaces, removes, adds or duplicates something there.
pub fn edit(u: &mut Unstructured<'_>, v: &mut Value, depth: u32) -> Result<()> {
    if depth < 8 && u.ratio(2, 3)? {
        match v {
            Value::Object(map) if !map.is_empty() && u.ratio(3, 4)? => {
                let index = u.choose_index(map.len())?;
                if let Some(child) = map.values_mut().nth(index) {
                    return edit(u, child, depth + 1);
                }
            }
            Value::Object(map) => {
                let k = key(u)?;
                return edit(u, map.entry(k).or_insert(Value::Null), depth + 1);
            }
            Value::Array(items) if !items.is_empty() => {
                let index = u.choose_index(items.len())?;
                return edit(u, &mut items[index], depth + 1);
            }
            _ => {}
        }
    }
    match (u.int_in_range(0..=3)?, &mut *v) {
        (1, Value::Object(map)) if !map.is_empty() => {
            let index = u.choose_index(map.len())?;
            if let Some(k) = map.keys().nth(index).cloned() {
                map.remove(&k);
            }
        }
        (1, Value::Array(items)) if !items.is_empty() => {
            let index = u.choose_index(items.len())?;
            items.remove(index);
        }
        (2, Value::Object(map)) => {
            map.insert(key(u)?, value(u, 3)?);
        }
        (2, Value::Array(items)) => items.push(value(u, 3)?),
        // Duplicates are what name and port uniqueness checks are for.
        (3, Value::Array(items)) if !items.is_empty() => {
            let index = u.choose_index(items.len())?;
            let copy = items[index].clone();
            items.push(copy);
        }
        _ => *v = value(u, 3)?,
    }
    Ok(())
}

/// The resource's template with up to `max_edits` random edits.
pub fn object(u: &mut Unstructured<'_>, resource: &Resource, max_edits: u32) -> Result<Value> {
    let mut obj = template(resource);
    let edits = u.int_in_range(0..=max_edits)?;
    for _ in 0..edits {
        edit(u, &mut obj, 0)?;
    }
    Ok(obj)
}

pub fn field_validation(u: &mut Unstructured<'_>) -> Result<FieldValidation> {
    Ok(*u.choose(&[
        FieldValidation::Ignore,
        FieldValidation::Warn,
        FieldValidation::Strict,
    ])?)
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

/// Mirrors `handlers::create::create_object` up to the storage: the checks,
/// the server's metadata, defaults and validation. Returns the object the
/// server would store, or `None` where it would answer with an error.
pub fn create(
    resource: &'static Resource,
    mut obj: Value,
    namespace: &str,
    mode: FieldValidation,
) -> Option<Value> {
    // `body::decode_object` refuses anything but an object before this.
    if !obj.is_object() {
        return None;
    }
    prepare::check_kind(resource, &mut obj).ok()?;
    prepare::check_namespace(resource, &mut obj, namespace).ok()?;
    prepare::check_fields(resource, &obj, mode).ok()?;
    if reported::skip() && reported::generate_name_cut_mid_char(&obj) {
        return None;
    }
    prepare::init_metadata(resource, &mut obj).ok()?;
    if resource.has(Sub::Status)
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    resource.strategy.default(&mut obj);
    resource.strategy.prepare_for_create(&mut obj);
    prepare::validate(resource, &obj, None).ok()?;
    read_back(resource, &obj);
    Some(obj)
}

/// Mirrors `handlers::update::updated`: what an update of `current` with
/// `sent` (already checked) would store.
pub fn updated(resource: &Resource, sub: Option<Sub>, sent: &Value, current: &Value) -> Value {
    let mut new = if sub == Some(Sub::Finalize) {
        let mut new = current.clone();
        match object::get(sent, &["spec", "finalizers"]) {
            Some(finalizers) => object::set(&mut new, &["spec", "finalizers"], finalizers.clone()),
            None => {
                object::remove(&mut new, &["spec", "finalizers"]);
            }
        }
        new
    } else if sub == Some(Sub::Status) {
        let mut new = current.clone();
        match sent.get("status") {
            Some(status) if !status.is_null() => new["status"] = status.clone(),
            _ => {
                object::remove(&mut new, &["status"]);
            }
        }
        new
    } else {
        let mut new = sent.clone();
        if resource.has(Sub::Status) {
            match current.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    object::remove(&mut new, &["status"]);
                }
            }
        }
        new
    };
    prepare::keep_server_metadata(&mut new, current);
    if sub.is_none() {
        resource.strategy.default(&mut new);
        if resource.tracks_generation && prepare::spec_changed(&new, current) {
            // `current` comes from `create` here, so its generation is small.
            let generation = object::i64_at(current, &["metadata", "generation"]).unwrap_or(1);
            object::set(&mut new, &["metadata", "generation"], json!(generation + 1));
        }
    }
    new
}

/// A subresource an update or patch may be sent to.
pub fn sub(u: &mut Unstructured<'_>, resource: &Resource) -> Result<Option<Sub>> {
    let choices: Vec<Sub> = [Sub::Status, Sub::Finalize]
        .into_iter()
        .filter(|s| resource.has(*s))
        .collect();
    if choices.is_empty() || u.ratio(1, 2)? {
        return Ok(None);
    }
    Ok(Some(*u.choose(&choices)?))
}

/// Mirrors `handlers::update::update` after decoding: `sent` replaces the
/// stored `current` (the URL names `current`).
pub fn update(
    resource: &'static Resource,
    mut sent: Value,
    current: &Value,
    sub: Option<Sub>,
    mode: FieldValidation,
) -> Option<Value> {
    if !sent.is_object() {
        return None;
    }
    let namespace = object::namespace(current).to_string();
    let name = object::name(current).to_string();
    prepare::check_kind(resource, &mut sent).ok()?;
    prepare::check_namespace(resource, &mut sent, &namespace).ok()?;
    match object::str_at(&sent, &["metadata", "name"]) {
        Some(n) if !n.is_empty() && n != name => return None,
        _ => object::set(&mut sent, &["metadata", "name"], json!(name)),
    }
    prepare::check_fields(resource, &sent, mode).ok()?;
    let new = updated(resource, sub, &sent, current);
    prepare::validate(resource, &new, Some(current)).ok()?;
    let _ = prepare::spec_changed(&new, current);
    read_back(resource, &new);
    Some(new)
}

/// The patch types `PATCH` takes (`handlers::patch::PatchType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

pub fn patch_type(u: &mut Unstructured<'_>) -> Result<PatchType> {
    Ok(*u.choose(&[
        PatchType::Merge,
        PatchType::Json,
        PatchType::Strategic,
        PatchType::Apply,
    ])?)
}

/// Mirrors `handlers::patch::apply_patch` (private there).
pub fn apply_patch(
    kind: PatchType,
    resource: &Resource,
    base: &Value,
    patch: &Value,
) -> Result<Value, skiff_patch::PatchError> {
    match kind {
        PatchType::Merge => Ok(skiff_patch::merge_patch(base, patch)),
        PatchType::Json => skiff_patch::json_patch(base, patch),
        PatchType::Strategic | PatchType::Apply => skiff_patch::strategic_merge_patch(
            base,
            patch,
            &skiff_patch::kubernetes_type(resource.group, resource.kind),
        ),
    }
}

/// Mirrors `handlers::patch::patch` after decoding, on a stored `current`.
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
            // Every error becomes a response: its message and class must work.
            let _ = (err.to_string(), err.is_malformed());
            return None;
        }
    };
    if reported::skip() && reported::patched_into_non_object(&patched) {
        return None;
    }
    prepare::check_kind(resource, &mut patched).ok()?;
    if object::name(&patched) != object::name(current)
        || (resource.namespaced && object::namespace(&patched) != object::namespace(current))
    {
        return None;
    }
    prepare::check_fields(resource, &patched, mode).ok()?;
    let new = updated(resource, sub.filter(|s| *s == Sub::Status), &patched, current);
    prepare::validate(resource, &new, Some(current)).ok()?;
    read_back(resource, &new);
    Some(new)
}

/// A JSON patch (RFC 6902): operations with pointers into the object's
/// fields, mostly well-formed, sometimes not.
pub fn json_patch(u: &mut Unstructured<'_>, base: &Value) -> Result<Value> {
    let count = u.int_in_range(0..=4)?;
    let mut ops = Vec::with_capacity(count);
    for _ in 0..count {
        let mut op = Map::new();
        op.insert(
            "op".into(),
            json!(*u.choose(&["add", "remove", "replace", "move", "copy", "test", "nope"])?),
        );
        op.insert("path".into(), json!(pointer(u, base)?));
        if u.ratio(1, 2)? {
            op.insert("from".into(), json!(pointer(u, base)?));
        }
        if u.ratio(3, 4)? {
            op.insert("value".into(), value(u, 3)?);
        }
        if u.ratio(1, 10)? {
            op.insert(key(u)?, value(u, 1)?);
        }
        ops.push(Value::Object(op));
    }
    Ok(Value::Array(ops))
}

/// A JSON pointer: down existing fields of `base` (escaped as RFC 6901 asks),
/// then maybe a step that does not exist, or a malformed one.
pub fn pointer(u: &mut Unstructured<'_>, base: &Value) -> Result<String> {
    let mut out = String::new();
    let mut here = Some(base);
    let steps = u.int_in_range(0..=6)?;
    for _ in 0..steps {
        let step = match here {
            Some(Value::Object(map)) if !map.is_empty() && u.ratio(4, 5)? => {
                let index = u.choose_index(map.len())?;
                let k = map.keys().nth(index).cloned().unwrap_or_default();
                here = map.get(&k);
                k.replace('~', "~0").replace('/', "~1")
            }
            Some(Value::Array(items)) if u.ratio(4, 5)? => {
                let index = u.int_in_range(0..=items.len())?;
                here = items.get(index);
                if index == items.len() && u.ratio(1, 2)? {
                    "-".to_string()
                } else {
                    index.to_string()
                }
            }
            _ => {
                here = None;
                match u.int_in_range(0..=5)? {
                    0 => "01".into(),
                    1 => "-1".into(),
                    2 => "18446744073709551616".into(),
                    3 => "~".into(),
                    4 => "~2".into(),
                    _ => key(u)?,
                }
            }
        };
        out.push('/');
        out.push_str(&step);
    }
    if u.ratio(1, 20)? {
        // Not starting with '/' at all.
        out = string(u)?;
    }
    Ok(out)
}

/// A merge or strategic merge patch: a copy of part of `base` with edits,
/// plus strategic directives now and then.
pub fn object_patch(u: &mut Unstructured<'_>, base: &Value) -> Result<Value> {
    let mut patch = match u.int_in_range(0..=2)? {
        0 => json!({}),
        1 => base.clone(),
        _ => value(u, 4)?,
    };
    let edits = u.int_in_range(0..=6)?;
    for _ in 0..edits {
        edit(u, &mut patch, 0)?;
    }
    if u.ratio(1, 4)?
        && let Some(map) = patch.as_object_mut()
    {
        let directive = *u.choose(&[
            "$patch",
            "$retainKeys",
            "$setElementOrder/finalizers",
            "$deleteFromPrimitiveList/finalizers",
        ])?;
        map.insert(directive.into(), value(u, 2)?);
    }
    Ok(patch)
}

/// Any of the four kinds of patch, fitting `kind` most of the time.
pub fn any_patch(u: &mut Unstructured<'_>, kind: PatchType, base: &Value) -> Result<Value> {
    if u.ratio(1, 16)? {
        return value(u, 3);
    }
    match kind {
        PatchType::Json => json_patch(u, base),
        _ => object_patch(u, base),
    }
}

/// Where this crate knowingly steps around a panic that was already
/// reported, so that the fuzzer keeps looking for new ones. Each returns
/// true for inputs that would hit a reported panic. Drop an entry once the
/// panic is fixed; meanwhile `SKIFF_FUZZ_ALL_PANICS=1` turns the detours
/// off, to check whether a fix landed.
pub mod reported {
    use serde_json::Value;
    use std::sync::LazyLock;

    /// Whether to step around reported panics (unless `SKIFF_FUZZ_ALL_PANICS` is set).
    pub fn skip() -> bool {
        static SKIP: LazyLock<bool> =
            LazyLock::new(|| std::env::var_os("SKIFF_FUZZ_ALL_PANICS").is_none());
        *SKIP
    }

    /// `handlers::prepare::generated_name` slices `generateName` at byte 58,
    /// which panics inside a multi-byte character.
    pub fn generate_name_cut_mid_char(obj: &Value) -> bool {
        let name = obj
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let prefix = obj
            .get("metadata")
            .and_then(|m| m.get("generateName"))
            .and_then(Value::as_str)
            .unwrap_or("");
        name.is_empty() && prefix.len() > 58 && !prefix.is_char_boundary(58)
    }

    /// `handlers::prepare::check_kind` indexes the object with
    /// `obj["apiVersion"] = …`, which panics when a JSON patch made the whole
    /// object something else (`[{"op":"replace","path":"","value":1}]`).
    pub fn patched_into_non_object(patched: &Value) -> bool {
        !patched.is_object()
    }
}
