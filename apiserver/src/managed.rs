//! Server-side apply's field ownership: `metadata.managedFields`.
//!
//! Every write records which fields its manager (`fieldManager`, else the
//! client's user agent) set, in upstream's FieldsV1 form:
//!
//! ```text
//! {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers":
//!     {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}
//! ```
//!
//! `f:<field>` is a field, `k:<key>` an element of a keyed list (containers
//! by name), `v:<value>` a value of a set, `.` the element itself. Here a set
//! of fields is the set of such paths, one per leaf.
//!
//! - An *apply* by manager M fails with 409 (one cause per field) when it
//!   sets a field another manager owns to a different value, unless
//!   `force=true`, which takes the field over. Fields M applied before and
//!   leaves out now are removed, unless someone else also owns them.
//! - An *update* (create, PUT, non-apply PATCH) gives its manager the fields
//!   whose values it changed, and takes them from everyone else.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use skiff_patch::{ListKind, TypeRef};

use crate::error::ApiError;
use crate::object;

/// A field path: segments like `f:spec`, `k:{"name":"web"}`, `v:"x"`, `.`.
pub type Path = Vec<String>;
pub type FieldSet = BTreeSet<Path>;

/// Metadata fields the server owns, never tracked.
const SERVER_FIELDS: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "managedFields",
    "selfLink",
];

/// The fields `obj` sets (status left out unless `with_status`).
pub fn fields_of(obj: &Value, ty: TypeRef, with_status: bool) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (key, value) in map {
        match key.as_str() {
            "apiVersion" | "kind" => {}
            "status" if !with_status => {}
            "metadata" => {
                if let Some(meta) = value.as_object() {
                    let (meta_ty, _) = ty.child("metadata");
                    let mut prefix = vec!["f:metadata".to_string()];
                    for (mk, mv) in meta
                        .iter()
                        .filter(|(k, _)| !SERVER_FIELDS.contains(&k.as_str()))
                    {
                        walk_field(mk, mv, meta_ty, &mut prefix, &mut out);
                    }
                }
            }
            _ => walk_field(key, value, ty, &mut Vec::new(), &mut out),
        }
    }
    out
}

fn walk_field(key: &str, value: &Value, ty: TypeRef, prefix: &mut Path, out: &mut FieldSet) {
    let (child, list) = ty.child(key);
    prefix.push(format!("f:{key}"));
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                walk_field(k, v, child, prefix, out);
            }
        }
        Value::Array(items) => match list {
            ListKind::Keyed(merge_key) if items.iter().all(|i| i.get(merge_key).is_some()) => {
                for item in items {
                    prefix.push(element_key(merge_key, item));
                    let mut dot = prefix.clone();
                    dot.push(".".into());
                    out.insert(dot);
                    if let Some(fields) = item.as_object() {
                        for (k, v) in fields {
                            walk_field(k, v, child, prefix, out);
                        }
                    }
                    prefix.pop();
                }
            }
            ListKind::Set => {
                for item in items {
                    let mut path = prefix.clone();
                    path.push(format!("v:{item}"));
                    out.insert(path);
                }
            }
            _ => {
                out.insert(prefix.clone());
            }
        },
        _ => {
            out.insert(prefix.clone());
        }
    }
    prefix.pop();
}

fn element_key(merge_key: &str, item: &Value) -> String {
    let mut key = Map::new();
    key.insert(
        merge_key.to_string(),
        item.get(merge_key).cloned().unwrap_or(Value::Null),
    );
    format!("k:{}", Value::Object(key))
}

/// The value at `path` in `obj`, if present.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut here = obj;
    for seg in path {
        here = if let Some(field) = seg.strip_prefix("f:") {
            here.get(field)?
        } else if let Some(key) = seg.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(key).ok()?;
            here.as_array()?
                .iter()
                .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))?
        } else if let Some(wanted) = seg.strip_prefix("v:") {
            let wanted: Value = serde_json::from_str(wanted).ok()?;
            here.as_array()?.iter().find(|item| **item == wanted)?
        } else if seg == "." {
            here
        } else {
            return None;
        };
    }
    Some(here)
}

/// Removes the field or element at `path` from `obj`.
fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    if last == "." {
        // The element itself: remove it from its list.
        if let Some((element, list_path)) = parents.split_last() {
            remove_element(obj, list_path, element);
        }
        return;
    }
    if last.starts_with("v:") {
        remove_element(obj, parents, last);
        return;
    }
    let Some(parent) = value_at_mut(obj, parents) else {
        return;
    };
    if let (Some(field), Some(map)) = (last.strip_prefix("f:"), parent.as_object_mut()) {
        map.remove(field);
    }
}

fn remove_element(obj: &mut Value, list_path: &[String], element: &str) {
    let Some(list) = value_at_mut(obj, list_path).and_then(Value::as_array_mut) else {
        return;
    };
    if let Some(key) = element.strip_prefix("k:") {
        if let Ok(key) = serde_json::from_str::<Map<String, Value>>(key) {
            list.retain(|item| !key.iter().all(|(k, v)| item.get(k) == Some(v)));
        }
    } else if let Some(wanted) = element.strip_prefix("v:")
        && let Ok(wanted) = serde_json::from_str::<Value>(wanted)
    {
        list.retain(|item| *item != wanted);
    }
}

fn value_at_mut<'a>(obj: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut here = obj;
    for seg in path {
        here = if let Some(field) = seg.strip_prefix("f:") {
            here.get_mut(field)?
        } else if let Some(key) = seg.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(key).ok()?;
            here.as_array_mut()?
                .iter_mut()
                .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))?
        } else if let Some(wanted) = seg.strip_prefix("v:") {
            let wanted: Value = serde_json::from_str(wanted).ok()?;
            here.as_array_mut()?
                .iter_mut()
                .find(|item| **item == wanted)?
        } else if seg == "." {
            here
        } else {
            return None;
        };
    }
    Some(here)
}

/// FieldsV1 JSON of a set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut here = &mut root;
        for seg in path {
            here = match here.entry(seg.clone()).or_insert_with(|| json!({})) {
                Value::Object(map) => map,
                _ => unreachable!("only objects are inserted"),
            };
        }
    }
    Value::Object(root)
}

/// The set of a FieldsV1 JSON value.
pub fn from_fields_v1(fields: &Value) -> FieldSet {
    fn walk(node: &Value, prefix: &mut Path, out: &mut FieldSet) {
        let Some(map) = node.as_object() else { return };
        if map.is_empty() && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        for (seg, child) in map {
            prefix.push(seg.clone());
            walk(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = FieldSet::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: Option<String>,
    time: String,
    fields: FieldSet,
}

impl Entry {
    /// How upstream names a manager in conflicts: `"kubectl"`, plus
    /// ` with subresource "scale"` and, for updates, ` using apps/v1`.
    fn label(&self) -> String {
        let mut label = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            label.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            label.push_str(&format!(" using {}", self.api_version));
        }
        label
    }
}

fn entries(obj: &Value) -> Vec<Entry> {
    object::items(obj, &["metadata", "managedFields"])
        .iter()
        .map(|e| Entry {
            manager: object::str_at(e, &["manager"]).unwrap_or("").to_string(),
            operation: object::str_at(e, &["operation"])
                .unwrap_or("Update")
                .to_string(),
            api_version: object::str_at(e, &["apiVersion"]).unwrap_or("").to_string(),
            subresource: object::str_at(e, &["subresource"]).map(String::from),
            time: object::str_at(e, &["time"]).unwrap_or("").to_string(),
            fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
        })
        .collect()
}

fn write_entries(obj: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut entry = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(sub) = e.subresource {
                entry["subresource"] = json!(sub);
            }
            entry
        })
        .collect();
    let meta = object::object_at(obj, &["metadata"]);
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// Who is writing.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    /// `Some("status")` for status writes.
    pub subresource: Option<&'a str>,
    /// A server-side apply: ownership was settled by [`apply`] already.
    pub apply: bool,
}

/// Records an update by `writer` that turned `old` (None: a create) into `new`.
pub fn record_update(new: &mut Value, old: Option<&Value>, writer: &Writer<'_>, ty: TypeRef) {
    let with_status = writer.subresource == Some("status");
    let after = fields_of(new, ty, with_status);
    let before = old
        .map(|o| fields_of(o, ty, with_status))
        .unwrap_or_default();
    let changed: FieldSet = after
        .iter()
        .filter(|p| old.is_none_or(|o| value_at(o, p) != value_at(new, p)))
        .cloned()
        .collect();
    let removed: FieldSet = before.difference(&after).cloned().collect();
    let mut list = old.map(entries).unwrap_or_default();
    for entry in &mut list {
        entry
            .fields
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    if changed.is_empty() && old.is_some() {
        write_entries(new, list);
        return;
    }
    let now = crate::handlers::prepare::now();
    let mine = list.iter_mut().find(|e| {
        e.manager == writer.manager
            && e.operation == "Update"
            && e.subresource.as_deref() == writer.subresource
    });
    match mine {
        Some(entry) => {
            entry.fields.extend(changed);
            entry.time = now;
            entry.api_version = writer.api_version.to_string();
        }
        None => list.push(Entry {
            manager: writer.manager.to_string(),
            operation: "Update".into(),
            api_version: writer.api_version.to_string(),
            subresource: writer.subresource.map(String::from),
            time: now,
            fields: changed,
        }),
    }
    write_entries(new, list);
}

/// Server-side apply of `config` by `writer` onto `current`: returns the new
/// object, or 409 listing every conflict when not forced.
pub fn apply(
    current: &Value,
    config: &Value,
    writer: &Writer<'_>,
    ty: TypeRef,
    force: bool,
    target: crate::error::Target<'_>,
) -> Result<Value, ApiError> {
    let applied = fields_of(config, ty, false);
    let mut list = entries(current);
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for entry in list
        .iter()
        .filter(|e| !(e.manager == writer.manager && e.operation == "Apply"))
    {
        for path in applied.intersection(&entry.fields) {
            if path.last().is_some_and(|s| s == ".") {
                continue;
            }
            if value_at(config, path) != value_at(current, path) {
                conflicts.push((dotted(path), entry.label()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&conflicts, target));
    }
    if force {
        for entry in list
            .iter_mut()
            .filter(|e| !(e.manager == writer.manager && e.operation == "Apply"))
        {
            entry
                .fields
                .retain(|p| !applied.contains(p) || value_at(config, p) == value_at(current, p));
        }
    }
    let mut merged = skiff_patch::strategic_merge_patch(current, config, &ty)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // What this manager applied before and leaves out now goes, unless
    // another manager also owns it. Longest paths first, so an element's
    // fields go before the element.
    let before: FieldSet = list
        .iter()
        .filter(|e| e.manager == writer.manager && e.operation == "Apply")
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let others: FieldSet = list
        .iter()
        .filter(|e| !(e.manager == writer.manager && e.operation == "Apply"))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut dropped: Vec<&Path> = before
        .iter()
        .filter(|p| !applied.contains(*p) && !others.contains(*p))
        .collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in dropped {
        remove_at(&mut merged, path);
    }
    let now = crate::handlers::prepare::now();
    list.retain(|e| !(e.manager == writer.manager && e.operation == "Apply"));
    list.push(Entry {
        manager: writer.manager.to_string(),
        operation: "Apply".into(),
        api_version: writer.api_version.to_string(),
        subresource: None,
        time: now,
        fields: applied,
    });
    write_entries(&mut merged, list);
    Ok(merged)
}

/// The entries of a freshly applied object.
pub fn record_apply_create(obj: &mut Value, config: &Value, writer: &Writer<'_>, ty: TypeRef) {
    let entry = Entry {
        manager: writer.manager.to_string(),
        operation: "Apply".into(),
        api_version: writer.api_version.to_string(),
        subresource: None,
        time: crate::handlers::prepare::now(),
        fields: fields_of(config, ty, false),
    };
    write_entries(obj, vec![entry]);
}

/// `.spec.replicas`, `.spec.template.spec.containers[name="web"].image`, as upstream shows paths.
fn dotted(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if let Some(field) = seg.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(key) = seg.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let inner: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", inner.join(",")));
        } else if let Some(value) = seg.strip_prefix("v:") {
            out.push_str(&format!("[{value}]"));
        }
    }
    out
}

/// The message upstream writes for a failed apply: one conflict on one
/// line, several grouped by manager (managers sorted), e.g.
///
/// ```text
/// Apply failed with 2 conflicts: conflicts with "kubectl" with subresource "scale" using apps/v1:
/// - .spec.replicas
/// conflicts with "bob" using apps/v1:
/// - .spec.template.spec.containers[name="web"].image
/// ```
fn conflict_error(conflicts: &[(String, String)], target: crate::error::Target<'_>) -> ApiError {
    let message = if let [(field, manager)] = conflicts {
        format!("Apply failed with 1 conflict: conflict with {manager}: {field}")
    } else {
        let mut by_manager: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (field, manager) in conflicts {
            by_manager.entry(manager).or_default().push(field);
        }
        let mut lines = Vec::new();
        for (manager, fields) in by_manager {
            lines.push(format!("conflicts with {manager}:"));
            lines.extend(fields.iter().map(|f| format!("- {f}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(field, manager)| {
            json!({"reason": "FieldManagerConflict", "message": format!("conflict with {manager}"), "field": field})
        })
        .collect();
    let mut details = json!({"name": target.name, "kind": target.resource, "causes": causes});
    if !target.group.is_empty() {
        details["group"] = json!(target.group);
    }
    ApiError {
        code: 409,
        reason: "Conflict",
        message,
        details: Some(details),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment_type() -> TypeRef {
        skiff_patch::kubernetes_type("apps", "Deployment")
    }

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    fn target() -> crate::error::Target<'static> {
        crate::error::Target {
            resource: "deployments",
            group: "apps",
            name: "web",
        }
    }

    #[test]
    fn field_sets_look_like_upstream() {
        let set = fields_of(&deployment(2, "nginx"), deployment_type(), false);
        let v1 = to_fields_v1(&set);
        assert_eq!(v1["f:spec"]["f:replicas"], json!({}));
        assert_eq!(
            v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"],
            json!({".": {}, "f:image": {}, "f:name": {}})
        );
        assert_eq!(v1["f:metadata"]["f:labels"]["f:app"], json!({}));
        assert!(
            v1["f:metadata"].get("f:name").is_none(),
            "server fields are not tracked"
        );
        assert_eq!(from_fields_v1(&v1), set);
    }

    #[test]
    fn apply_conflicts_with_another_managers_field() {
        let applier = Writer {
            manager: "alice",
            api_version: "apps/v1",
            subresource: None,
            apply: true,
        };
        let mut live = deployment(2, "nginx");
        record_apply_create(
            &mut live,
            &deployment(2, "nginx"),
            &applier,
            deployment_type(),
        );
        // Bob scales with an update: he now owns spec.replicas.
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(5);
        record_update(
            &mut scaled,
            Some(&live),
            &Writer {
                manager: "bob",
                api_version: "apps/v1",
                subresource: None,
                apply: false,
            },
            deployment_type(),
        );
        // Alice applies her config (replicas 2) again: conflict on .spec.replicas.
        let err = apply(
            &scaled,
            &deployment(2, "nginx"),
            &applier,
            deployment_type(),
            false,
            target(),
        )
        .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"bob\" using apps/v1: .spec.replicas"
        );
        assert_eq!(
            err.details.as_ref().unwrap()["causes"][0]["reason"],
            "FieldManagerConflict"
        );
        // Same value: no conflict. Forced: she takes it over.
        assert!(
            apply(
                &scaled,
                &deployment(5, "nginx"),
                &applier,
                deployment_type(),
                false,
                target()
            )
            .is_ok()
        );
        let forced = apply(
            &scaled,
            &deployment(2, "nginx"),
            &applier,
            deployment_type(),
            true,
            target(),
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 2);
        let bob = forced["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["manager"] == "bob");
        assert!(bob.is_none(), "bob lost his only field: {forced}");
    }

    #[test]
    fn fields_left_out_of_a_new_apply_are_removed() {
        let applier = Writer {
            manager: "alice",
            api_version: "apps/v1",
            subresource: None,
            apply: true,
        };
        let mut with_label = deployment(2, "nginx");
        with_label["metadata"]["labels"]["tier"] = json!("front");
        let mut live = with_label.clone();
        record_apply_create(&mut live, &with_label, &applier, deployment_type());
        let next = apply(
            &live,
            &deployment(2, "nginx"),
            &applier,
            deployment_type(),
            false,
            target(),
        )
        .unwrap();
        assert_eq!(next["metadata"]["labels"], json!({"app": "web"}));
    }

    #[test]
    fn paths_print_like_upstream() {
        let path: Path = vec![
            "f:spec".into(),
            "f:template".into(),
            "f:spec".into(),
            "f:containers".into(),
            "k:{\"name\":\"web\"}".into(),
            "f:image".into(),
        ];
        assert_eq!(
            dotted(&path),
            ".spec.template.spec.containers[name=\"web\"].image"
        );
    }
}
