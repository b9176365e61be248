//! JSON Merge Patch, RFC 7386 (`application/merge-patch+json`).
//!
//! Kubernetes uses it for `kubectl patch --type=merge`, for `kubectl label`,
//! `annotate` and `scale` on custom resources, and as the fallback for types
//! it has no strategic-merge metadata for.

use serde_json::{Map, Value};

/// Applies a JSON Merge Patch (RFC 7386) to `target` and returns the result.
///
/// * A patch that is an object merges into the target key by key; a `null`
///   value deletes the key, any other value is merged in recursively.
/// * A patch that is anything else (array, string, number, boolean, null)
///   replaces the target wholesale. Arrays are never merged.
///
/// This cannot fail: every JSON value is a valid merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    // RFC 7386 §2: a non-object target is treated as an empty object.
    let mut result = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    merge_into(&mut result, patch);
    Value::Object(result)
}

/// Merges `patch` into `target` in place; this avoids cloning each level of
/// the target twice.
fn merge_into(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(sub_patch) => match target.get_mut(key) {
                Some(Value::Object(sub_target)) => merge_into(sub_target, sub_patch),
                _ => {
                    // Nothing (or a non-object) to merge into: merging into an
                    // empty object also drops the nulls nested in the patch,
                    // as the RFC's pseudo-code does.
                    let mut fresh = Map::new();
                    merge_into(&mut fresh, sub_patch);
                    target.insert(key.clone(), Value::Object(fresh));
                }
            },
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}
