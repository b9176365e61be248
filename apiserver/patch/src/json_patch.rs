//! JSON Patch, RFC 6902 (`application/json-patch+json`), as sent by
//! `kubectl patch --type=json` and by `kubectl rollout undo`.
//!
//! The whole patch is parsed before anything is applied, so a malformed
//! operation is reported as such whatever the document holds. Operations are
//! then applied in order to a private copy of the target; the first failure
//! abandons that copy, so callers never see a half-applied patch.

use serde_json::{Map, Value};

use crate::error::PatchError;
use crate::pointer::Pointer;
use crate::value::{json_eq, type_name};

/// Applies a JSON Patch (RFC 6902) to `target` and returns the result.
///
/// `patch` must be an array of operation objects (`add`, `remove`,
/// `replace`, `move`, `copy`, `test`). Members an operation does not use are
/// ignored, as the RFC requires. Values may contain `null`s anywhere.
///
/// # Errors
///
/// * [`PatchError::JsonPatchNotAnArray`] or [`PatchError::InvalidOperation`]
///   when the patch is malformed;
/// * [`PatchError::OperationFailed`] when an operation does not fit the
///   document (a missing path, an out-of-bounds index, ...);
/// * [`PatchError::TestFailed`] when a `test` operation does not match.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(raw_ops) = patch else {
        return Err(PatchError::JsonPatchNotAnArray {
            found: type_name(patch),
        });
    };
    let ops = raw_ops
        .iter()
        .enumerate()
        .map(|(index, raw)| Operation::parse(index, raw))
        .collect::<Result<Vec<_>, _>>()?;

    let mut doc = target.clone();
    for (index, op) in ops.into_iter().enumerate() {
        op.apply(index, &mut doc)?;
    }
    Ok(doc)
}

/// One parsed operation. Values are borrowed from the patch and cloned only
/// when they are put into the document.
enum Operation<'p> {
    Add { path: Pointer, value: &'p Value },
    Remove { path: Pointer },
    Replace { path: Pointer, value: &'p Value },
    Move { from: Pointer, path: Pointer },
    Copy { from: Pointer, path: Pointer },
    Test { path: Pointer, value: &'p Value },
}

impl<'p> Operation<'p> {
    fn parse(index: usize, raw: &'p Value) -> Result<Self, PatchError> {
        let invalid = |op: Option<&str>, reason: String| PatchError::InvalidOperation {
            index,
            op: op.map(str::to_owned),
            reason,
        };
        let Value::Object(obj) = raw else {
            return Err(invalid(
                None,
                format!(
                    "an operation must be an object, but this one is {}",
                    type_name(raw)
                ),
            ));
        };
        let name = match obj.get("op") {
            Some(Value::String(name)) => name.as_str(),
            Some(other) => {
                return Err(invalid(
                    None,
                    format!("\"op\" must be a string, but it is {}", type_name(other)),
                ));
            }
            None => return Err(invalid(None, "the \"op\" member is missing".to_owned())),
        };
        let pointer = |member: &str| -> Result<Pointer, PatchError> {
            match obj.get(member) {
                Some(Value::String(text)) => {
                    Pointer::parse(text).map_err(|reason| invalid(Some(name), reason))
                }
                Some(other) => Err(invalid(
                    Some(name),
                    format!(
                        "{member:?} must be a string, but it is {}",
                        type_name(other)
                    ),
                )),
                None => Err(invalid(
                    Some(name),
                    format!("the {member:?} member is missing"),
                )),
            }
        };
        let value = || -> Result<&'p Value, PatchError> {
            value_member(obj)
                .ok_or_else(|| invalid(Some(name), "the \"value\" member is missing".to_owned()))
        };
        Ok(match name {
            "add" => Operation::Add {
                path: pointer("path")?,
                value: value()?,
            },
            "remove" => Operation::Remove {
                path: pointer("path")?,
            },
            "replace" => Operation::Replace {
                path: pointer("path")?,
                value: value()?,
            },
            "move" => Operation::Move {
                from: pointer("from")?,
                path: pointer("path")?,
            },
            "copy" => Operation::Copy {
                from: pointer("from")?,
                path: pointer("path")?,
            },
            "test" => Operation::Test {
                path: pointer("path")?,
                value: value()?,
            },
            other => {
                return Err(invalid(
                    None,
                    format!(
                        "unknown operation {other:?}; expected one of add, remove, replace, move, copy, test"
                    ),
                ));
            }
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Operation::Add { .. } => "add",
            Operation::Remove { .. } => "remove",
            Operation::Replace { .. } => "replace",
            Operation::Move { .. } => "move",
            Operation::Copy { .. } => "copy",
            Operation::Test { .. } => "test",
        }
    }

    fn apply(self, index: usize, doc: &mut Value) -> Result<(), PatchError> {
        let op = self.name();
        let failed = |reason: String| PatchError::OperationFailed { index, op, reason };
        match self {
            Operation::Add { path, value } => path.add(doc, value.clone()).map_err(failed),
            Operation::Remove { path } => path.remove(doc).map(drop).map_err(failed),
            Operation::Replace { path, value } => path.replace(doc, value.clone()).map_err(failed),
            Operation::Move { from, path } => {
                if from == path {
                    // Moving a value onto itself changes nothing, but the
                    // value must still exist.
                    return from
                        .get(doc)
                        .map(drop)
                        .map_err(|reason| failed(from_reason(reason)));
                }
                if path.is_proper_child_of(&from) {
                    return Err(failed(format!(
                        "cannot move {:?} into one of its own children ({:?})",
                        from.as_str(),
                        path.as_str()
                    )));
                }
                let moved = from
                    .remove(doc)
                    .map_err(|reason| failed(from_reason(reason)))?;
                path.add(doc, moved).map_err(failed)
            }
            Operation::Copy { from, path } => {
                let copied = from
                    .get(doc)
                    .map_err(|reason| failed(from_reason(reason)))?
                    .clone();
                path.add(doc, copied).map_err(failed)
            }
            Operation::Test { path, value } => {
                let found = path.get(doc).map_err(failed)?;
                if json_eq(found, value) {
                    Ok(())
                } else {
                    Err(PatchError::TestFailed {
                        index,
                        path: path.as_str().to_owned(),
                    })
                }
            }
        }
    }
}

/// The `value` member. Present-but-null is a real value (`rollout undo`
/// sends `"creationTimestamp": null` inside one), so look at presence, not at
/// the value.
fn value_member(obj: &Map<String, Value>) -> Option<&Value> {
    obj.get("value")
}

/// Marks a pointer error as being about the `from` location.
fn from_reason(reason: String) -> String {
    format!("\"from\" {reason}")
}
