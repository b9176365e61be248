//! Strategic merge patch (`application/strategic-merge-patch+json`), the
//! default patch type of `kubectl patch`, and what `kubectl apply`,
//! `set image`, `rollout restart` and `cordon` send.
//!
//! It is JSON merge patch plus two things: a schema ([`schema`]) saying
//! which lists merge element by element (and by which key) instead of being
//! replaced, and directives — keys starting with `$` — that let a patch
//! delete list elements, replace a map or a list, keep only some keys, or
//! fix the order of a list.
//!
//! The behaviour follows `k8s.io/apimachinery/pkg/util/strategicpatch`
//! (`StrategicMergeMapPatch`) as of Kubernetes 1.32. Where this code differs
//! on purpose it says so; the differences are all about leftovers that
//! Kubernetes drops later, when it decodes the result into a Go struct, and
//! that we must drop here because the result is stored as JSON.
//!
//! Deliberate differences from upstream, all in corners kubectl does not
//! reach:
//!
//! * nulls and directives inside values that have nothing to merge into
//!   (new fields, new list elements, replaced lists) are applied and
//!   removed here; upstream copies them and relies on the Go decoder;
//! * `{"$patch": "replace", ...}` for a map that does not exist yet yields
//!   the other keys (upstream drops the map);
//! * `"$deleteFromPrimitiveList/<f>": null` is an error (upstream deletes
//!   `<f>`), and `$setElementOrder` on an empty result is not an error;
//! * fields the schema does not know are merged (maps) or replaced (lists)
//!   instead of rejected, since our schema lists only fields with patch
//!   metadata and the paths to them.
//!
//! This file holds the entry point and the merge of objects (maps) with
//! their directives; [`list`] holds the merge and ordering of lists.

mod list;
mod path;
mod schema;
mod type_ref;

use serde_json::{Map, Value};

pub use type_ref::{FieldPatchMeta, ListKind, TypeRef, kubernetes_type, patch_metadata};

use crate::error::PatchError;
use crate::value::type_name;
use path::Path;
use type_ref::Strategy;

/// `"$patch": "replace" | "delete"` in a map, or in a list element.
const PATCH: &str = "$patch";
/// `"$retainKeys": [..]`: the keys a map keeps.
const RETAIN_KEYS: &str = "$retainKeys";
/// `"$setElementOrder/<field>": [..]`: the order of the list `<field>`.
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
/// `"$deleteFromPrimitiveList/<field>": [..]`: values to remove from the
/// primitive list `<field>`.
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Applies a strategic merge patch to `original`, using `kind` (see
/// [`kubernetes_type`]) to know which lists merge and by which key.
///
/// Both `original` and `patch` must be JSON objects. The result never
/// contains directive keys (`$patch`, `$retainKeys`, `$setElementOrder/...`,
/// `$deleteFromPrimitiveList/...`).
///
/// # Errors
///
/// [`PatchError::NotAnObject`] when either document is not an object;
/// [`PatchError::InvalidDirective`], [`PatchError::MissingMergeKey`] or
/// [`PatchError::UnmergeableList`] when the patch cannot be applied, with the
/// field path where the problem is.
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    kind: &TypeRef,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::NotAnObject {
            what: "patch",
            found: type_name(patch),
        });
    };
    let Value::Object(original) = original else {
        return Err(PatchError::NotAnObject {
            what: "original object",
            found: type_name(original),
        });
    };
    merge_object(original.clone(), patch, *kind, &Path::ROOT).map(Value::Object)
}

/// What `$patch` asks of a map.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MapDirective {
    Replace,
    Delete,
}

/// Merges `patch` into `original`, which is of schema type `ty`.
fn merge_object(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    ty: TypeRef,
    path: &Path<'_>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(PATCH) {
        return match map_directive(directive, path)? {
            // The map becomes the patch's other keys. They are still run
            // through the merge (into nothing) so that nested directives and
            // nulls do not end up in the result; upstream copies them as they
            // are and lets the Go decoder drop them.
            MapDirective::Replace => {
                let rest: Map<String, Value> = patch
                    .iter()
                    .filter(|(key, _)| key.as_str() != PATCH)
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                merge_object(Map::new(), &rest, ty, path)
            }
            // Upstream leaves an empty map where the map was (a test case in
            // apimachinery pins this down), not a missing key.
            MapDirective::Delete => Ok(Map::new()),
        };
    }

    if let Some(keep) = patch.get(RETAIN_KEYS) {
        retain_keys(&mut original, keep, patch, path)?;
    }

    // `$setElementOrder` goes first: it merges its list itself (so the list
    // is skipped below) and sorts the result.
    let mut ordered: Vec<&str> = Vec::new();
    for (key, order) in patch {
        if let Some(field) = directive_field(key, SET_ELEMENT_ORDER, path)? {
            list::set_element_order(&mut original, patch, field, order, ty, path)?;
            ordered.push(field);
        }
    }

    for (key, value) in patch {
        if is_directive(key) || ordered.contains(&key.as_str()) {
            continue;
        }
        if value.is_null() {
            original.remove(key);
            continue;
        }
        let (child, strategy) = ty.field(key);
        let field_path = path.key(key);
        let merged = match (original.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(sub_patch))
                if strategy != Strategy::Replace =>
            {
                let existing = std::mem::take(existing);
                Some(Value::Object(merge_object(
                    existing,
                    sub_patch,
                    child,
                    &field_path,
                )?))
            }
            (Some(Value::Array(existing)), Value::Array(sub_patch)) if strategy.merges_lists() => {
                let existing = std::mem::take(existing);
                Some(Value::Array(list::merge_list(
                    existing,
                    sub_patch,
                    child,
                    strategy,
                    &field_path,
                )?))
            }
            // Missing, of another JSON type, a scalar, a list that does not
            // merge, or a map with strategy `replace`: the patch value wins.
            _ => fresh(value, child, strategy, &field_path)?,
        };
        match merged {
            Some(value) => {
                original.insert(key.clone(), value);
            }
            None => {
                original.remove(key);
            }
        }
    }

    // Deletions from primitive lists run last, after any additions to the
    // same list above, so a value both added and deleted ends up deleted
    // whatever the order of keys in the patch.
    for (key, value) in patch {
        if let Some(field) = directive_field(key, DELETE_FROM_PRIMITIVE_LIST, path)? {
            list::delete_from_primitive_list(&mut original, field, value, path)?;
        }
    }

    Ok(original)
}

/// The value a patch value becomes when there is nothing to merge it into:
/// the patch value with its directives applied and removed, and (inside
/// maps) its nulls dropped. `None` means "no value at all" (a map carrying
/// `$patch: delete`).
fn fresh(
    value: &Value,
    ty: TypeRef,
    strategy: Strategy,
    path: &Path<'_>,
) -> Result<Option<Value>, PatchError> {
    match value {
        Value::Object(map) => {
            if let Some(directive) = map.get(PATCH)
                && map_directive(directive, path)? == MapDirective::Delete
            {
                return Ok(None);
            }
            Ok(Some(Value::Object(merge_object(
                Map::new(),
                map,
                ty,
                path,
            )?)))
        }
        Value::Array(items) => Ok(Some(Value::Array(list::fresh_list(
            items, ty, strategy, path,
        )?))),
        scalar => Ok(Some(scalar.clone())),
    }
}

fn map_directive(directive: &Value, path: &Path<'_>) -> Result<MapDirective, PatchError> {
    match directive.as_str() {
        Some("replace") => Ok(MapDirective::Replace),
        Some("delete") => Ok(MapDirective::Delete),
        Some(other) => Err(invalid_directive(
            path,
            format!(
                "invalid \"$patch\" directive {other:?}: in a map it must be \"replace\" or \"delete\""
            ),
        )),
        None => Err(invalid_directive(
            path,
            format!(
                "\"$patch\" must be the string \"replace\" or \"delete\", but it is {}",
                type_name(directive)
            ),
        )),
    }
}

/// Applies `$retainKeys`: the map keeps only the listed keys (after the
/// patch is merged, so the patch may set any of them). Upstream honours the
/// directive wherever it appears, not only in fields tagged `retainKeys`;
/// so does this code. Like upstream, a patch that sets a key it does not
/// list contradicts itself and is rejected.
fn retain_keys(
    original: &mut Map<String, Value>,
    keep: &Value,
    patch: &Map<String, Value>,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    let Value::Array(keep) = keep else {
        return Err(invalid_directive(
            path,
            format!(
                "\"$retainKeys\" must be a list of field names, but it is {}",
                type_name(keep)
            ),
        ));
    };
    let listed = |key: &str| keep.iter().any(|k| k.as_str() == Some(key));
    for (key, value) in patch {
        if value.is_null() || is_directive(key) || listed(key) {
            continue;
        }
        return Err(invalid_directive(
            path,
            format!("the patch sets {key:?}, which its \"$retainKeys\" list does not include"),
        ));
    }
    original.retain(|key, _| listed(key));
    Ok(())
}

/// True for the keys the merge treats as directives rather than fields.
fn is_directive(key: &str) -> bool {
    key == PATCH
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// For `"$setElementOrder/containers"` and prefix `$setElementOrder`,
/// `Some("containers")`; `None` for keys without the prefix; an error for a
/// key that has the prefix but not the `/<field>` part.
fn directive_field<'k>(
    key: &'k str,
    prefix: &str,
    path: &Path<'_>,
) -> Result<Option<&'k str>, PatchError> {
    let Some(rest) = key.strip_prefix(prefix) else {
        return Ok(None);
    };
    match rest.strip_prefix('/') {
        // A directive naming a directive would smuggle a `$` key into the
        // result; no real field starts with `$`.
        Some(field) if !field.is_empty() && !is_directive(field) => Ok(Some(field)),
        _ => Err(invalid_directive(
            path,
            format!("malformed directive {key:?}: expected \"{prefix}/<field name>\""),
        )),
    }
}

fn invalid_directive(path: &Path<'_>, reason: String) -> PatchError {
    PatchError::InvalidDirective {
        path: path.render(),
        reason,
    }
}
