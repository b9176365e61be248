//! Lists in a strategic merge patch: merging by key, union of primitives,
//! `$patch` elements, `$setElementOrder` and `$deleteFromPrimitiveList`.
//!
//! # Order of the merged list
//!
//! Kubernetes does not simply append new elements: it keeps the order the
//! patch gives for the elements the patch names, and slots each element the
//! patch does not name back in relative to them using their positions in the
//! live list. [`arrange`] implements that rule (apimachinery's
//! `normalizeElementOrder` + `mergeSortedSlice`): take from the live-only
//! elements while the next one sat earlier in the live list than the next
//! patch element, otherwise take the patch element. So the live list
//! `[a, b, c]` patched with `[c', d]` becomes `[a, b, c', d]`, and patched
//! with `[d, a']` becomes `[d, a', b, c]`.
//!
//! Element matching is by merge key for lists of objects and by value for
//! primitives, both using JSON equality (`1` matches `1.0`, as in Go where
//! every JSON number is a float64). Matching is quadratic in the list
//! length, as upstream's is; the lists involved (containers, env, ports,
//! conditions) are short.

use serde_json::{Map, Value};

use super::path::Path;
use super::type_ref::{Strategy, TypeRef};
use super::{PATCH, fresh, invalid_directive, merge_object};
use crate::error::PatchError;
use crate::value::{json_eq, type_name};

/// Merges a patch list into a list whose field has a merge strategy
/// (`strategy.merges_lists()`); `elem_ty` is the elements' schema type.
pub(super) fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    elem_ty: TypeRef,
    strategy: Strategy,
    path: &Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    merge_list_tracking(original, patch, elem_ty, strategy, path, None)
}

/// [`merge_list`], also recording deletions and additions in `view` (see
/// [`LiveView`]).
fn merge_list_tracking(
    original: Vec<Value>,
    patch: &[Value],
    elem_ty: TypeRef,
    strategy: Strategy,
    path: &Path<'_>,
    view: Option<&mut LiveView>,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    match element_kind(&original, patch, path)? {
        ElementKind::Primitive => Ok(merge_primitives(original, patch)),
        ElementKind::Object => {
            let Some(key) = strategy.merge_key() else {
                return Err(PatchError::UnmergeableList {
                    path: path.render(),
                    reason: "this list merges as a set of primitive values, so its elements \
                             cannot be objects"
                        .to_owned(),
                });
            };
            merge_by_key(original, patch, key, elem_ty, path, view)
        }
    }
}

/// A list from the patch with nothing to merge it into (the field is new,
/// or its list does not merge): directives applied and removed.
pub(super) fn fresh_list(
    items: &[Value],
    elem_ty: TypeRef,
    strategy: Strategy,
    path: &Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    if strategy.merges_lists() {
        return merge_list(Vec::new(), items, elem_ty, strategy, path);
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        // Upstream drops every element of a replaced list that carries a
        // `$patch` directive; do the same.
        if item.get(PATCH).is_some() {
            continue;
        }
        if let Some(value) = fresh(item, elem_ty, Strategy::Plain, &path.index(i))? {
            out.push(value);
        }
    }
    Ok(out)
}

/// Applies `"$setElementOrder/<field>": order` to `original[field]`,
/// merging `patch[field]` into it first if the patch has that list too.
pub(super) fn set_element_order(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    field: &str,
    order: &Value,
    ty: TypeRef,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    let directive = format!("$setElementOrder/{field}");
    let Value::Array(order) = order else {
        return Err(invalid_directive(
            path,
            format!(
                "{directive:?} must be a list, but it is {}",
                type_name(order)
            ),
        ));
    };
    let (elem_ty, strategy) = ty.field(field);
    let key = strategy.merge_key();
    let field_path = path.key(field);

    let current = match original.get_mut(field) {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(std::mem::take(items)),
        Some(other) => {
            return Err(invalid_directive(
                path,
                format!(
                    "{directive:?} cannot order {field:?}: the object has {} there, not a list",
                    type_name(other)
                ),
            ));
        }
    };
    let patch_list = match patch.get(field) {
        None => None,
        Some(Value::Array(items)) => Some(items.as_slice()),
        Some(other) => {
            return Err(invalid_directive(
                path,
                format!(
                    "{directive:?} is given, but the patch sets {field:?} to {}, not a list",
                    type_name(other)
                ),
            ));
        }
    };

    // The identities the order list names: merge-key values, or the
    // primitive values themselves.
    let mut wanted = Vec::with_capacity(order.len());
    for (i, entry) in order.iter().enumerate() {
        match key {
            Some(key) => match entry.get(key) {
                Some(id) => wanted.push(id),
                None => {
                    return Err(invalid_directive(
                        path,
                        format!(
                            "entry {i} of {directive:?} has no {key:?} field, \
                             which identifies elements of this list"
                        ),
                    ));
                }
            },
            None => wanted.push(entry),
        }
    }
    if let Some(patch_list) = patch_list {
        check_patch_follows_order(patch_list, &wanted, key, &directive, &field_path)?;
    }

    let mut view = current.as_deref().map(|items| LiveView::new(items, key));
    let merged = match (current, patch_list) {
        (None, None) => return Ok(()),
        (Some(current), None) => current,
        (None, Some(patch_list)) => fresh_list(patch_list, elem_ty, strategy, &field_path)?,
        (Some(current), Some(patch_list)) if strategy.merges_lists() => merge_list_tracking(
            current,
            patch_list,
            elem_ty,
            strategy,
            &field_path,
            view.as_mut(),
        )?,
        (Some(_), Some(patch_list)) => fresh_list(patch_list, elem_ty, strategy, &field_path)?,
    };
    let server: Vec<Option<&Value>> = view
        .as_ref()
        .map(|view| view.ids.iter().map(Option::as_ref).collect())
        .unwrap_or_default();
    let arranged = arrange(merged, key, &wanted, &server, &field_path)?;
    original.insert(field.to_owned(), Value::Array(arranged));
    Ok(())
}

/// Applies `"$deleteFromPrimitiveList/<field>": values`: removes every
/// occurrence of each value from `original[field]`. A missing field, or one
/// that is not a list, is left alone, as upstream does.
pub(super) fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    field: &str,
    values: &Value,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    let Value::Array(values) = values else {
        return Err(invalid_directive(
            path,
            format!(
                "\"$deleteFromPrimitiveList/{field}\" must be a list of values, but it is {}",
                type_name(values)
            ),
        ));
    };
    if let Some(Value::Array(items)) = original.get_mut(field) {
        items.retain(|item| !values.iter().any(|v| json_eq(v, item)));
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Primitive,
    Object,
}

/// Checks that all elements of both lists have the same JSON type (as
/// upstream requires) and says whether they are objects.
fn element_kind(
    original: &[Value],
    patch: &[Value],
    path: &Path<'_>,
) -> Result<ElementKind, PatchError> {
    let mut first: Option<&Value> = None;
    for item in original.iter().chain(patch) {
        if item.is_array() {
            return Err(PatchError::UnmergeableList {
                path: path.render(),
                reason: "lists of lists cannot be merged".to_owned(),
            });
        }
        match first {
            None => first = Some(item),
            Some(seen) if std::mem::discriminant(seen) != std::mem::discriminant(item) => {
                return Err(PatchError::UnmergeableList {
                    path: path.render(),
                    reason: format!(
                        "the list mixes element types ({} and {}), so its elements cannot be matched",
                        type_name(seen),
                        type_name(item)
                    ),
                });
            }
            Some(_) => {}
        }
    }
    Ok(match first {
        Some(Value::Object(_)) => ElementKind::Object,
        _ => ElementKind::Primitive,
    })
}

/// Set union of two primitive lists, duplicates dropped (including any
/// already in the live list, as upstream does), then arranged.
fn merge_primitives(original: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    let server = original.clone();
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for item in original.into_iter().chain(patch.iter().cloned()) {
        if !merged.iter().any(|m| json_eq(m, &item)) {
            merged.push(item);
        }
    }
    let wanted: Vec<&Value> = patch.iter().collect();
    let server: Vec<Option<&Value>> = server.iter().map(Some).collect();
    // Primitives always have an identity, so arranging cannot fail.
    arrange(merged, None, &wanted, &server, &Path::ROOT).unwrap_or_default()
}

/// What `$patch` asks of a list element.
enum ElementDirective {
    Delete,
    Replace,
}

/// Merges lists of objects matched by `key`.
fn merge_by_key(
    original: Vec<Value>,
    patch: &[Value],
    key: &str,
    elem_ty: TypeRef,
    path: &Path<'_>,
    mut view: Option<&mut LiveView>,
) -> Result<Vec<Value>, PatchError> {
    // First the special elements: `$patch: delete` removes every live element
    // with the same key, `$patch: replace` makes the other patch elements the
    // whole list.
    let mut list = original;
    let mut regular: Vec<(usize, &Map<String, Value>)> = Vec::new();
    let mut replace = false;
    for (i, item) in patch.iter().enumerate() {
        let Value::Object(element) = item else {
            // element_kind has checked this already; stay total anyway.
            continue;
        };
        let Some(directive) = element.get(PATCH) else {
            regular.push((i, element));
            continue;
        };
        match element_directive(directive, &path.index(i))? {
            ElementDirective::Delete => {
                let Some(id) = element.get(key) else {
                    return Err(missing_key(&path.index(i), key));
                };
                // One at a time, first match first, so that `view` sees the same
                // sequence of removals as upstream's list does.
                while let Some(at) = list
                    .iter()
                    .position(|live| live.get(key).is_some_and(|k| json_eq(k, id)))
                {
                    list.remove(at);
                    if let Some(view) = view.as_deref_mut() {
                        view.removed(at);
                    }
                }
            }
            ElementDirective::Replace => replace = true,
        }
    }
    if replace {
        list = Vec::with_capacity(regular.len());
        for (i, element) in regular.drain(..) {
            let at = element
                .get(key)
                .map_or(path.index(i), |id| path.keyed(key, id));
            list.push(Value::Object(merge_object(
                Map::new(),
                element,
                elem_ty,
                &at,
            )?));
        }
    }

    let server = identities(&list, Some(key));
    let server: Vec<Option<Value>> = server.into_iter().map(|id| id.cloned()).collect();

    let mut wanted = Vec::with_capacity(regular.len());
    for (i, element) in regular {
        let Some(id) = element.get(key) else {
            return Err(missing_key(&path.index(i), key));
        };
        wanted.push(id);
        let at = path.keyed(key, id);
        match list
            .iter()
            .position(|live| live.get(key).is_some_and(|k| json_eq(k, id)))
        {
            Some(pos) => {
                if let Some(Value::Object(live)) = list.get_mut(pos) {
                    *live = merge_object(std::mem::take(live), element, elem_ty, &at)?;
                }
            }
            None => {
                if let Some(view) = view.as_deref_mut() {
                    view.appended(id);
                }
                list.push(Value::Object(merge_object(
                    Map::new(),
                    element,
                    elem_ty,
                    &at,
                )?));
            }
        }
    }

    let server: Vec<Option<&Value>> = server.iter().map(Option::as_ref).collect();
    arrange(list, Some(key), &wanted, &server, path)
}

fn element_directive(directive: &Value, path: &Path<'_>) -> Result<ElementDirective, PatchError> {
    match directive.as_str() {
        Some("delete") => Ok(ElementDirective::Delete),
        Some("replace") => Ok(ElementDirective::Replace),
        Some("merge") => Err(invalid_directive(
            path,
            "\"$patch\": \"merge\" is not supported in list elements; leave \"$patch\" out to merge"
                .to_owned(),
        )),
        Some(other) => Err(invalid_directive(
            path,
            format!(
                "invalid \"$patch\" directive {other:?}: in a list element it must be \"delete\" or \"replace\""
            ),
        )),
        None => Err(invalid_directive(
            path,
            format!(
                "\"$patch\" must be the string \"delete\" or \"replace\", but it is {}",
                type_name(directive)
            ),
        )),
    }
}

/// The live list's identities as upstream's `$setElementOrder` handling
/// sees them after the list was merged.
///
/// Upstream keeps a reference to the live list while it merges the patch
/// into it, and Go's in-place `append` edits the array behind that
/// reference: removing element `i` shifts the later ones left (leaving a
/// stale copy in the last slot), and each new element is written into the
/// next slot while there is room in the original length. The final ordering
/// then ranks server-only elements against that edited array, so for a
/// patch that both deletes and adds elements of an ordered list (`kubectl
/// apply` removing one container and adding another) the result depends on
/// it. This replays the same edits on the identities so that we produce the
/// same order as a Kubernetes API server (whose live lists are built with
/// length equal to capacity).
struct LiveView {
    /// One slot per element of the live list; never grows.
    ids: Vec<Option<Value>>,
    /// The length of upstream's (shrinking, then growing) slice.
    len: usize,
}

impl LiveView {
    fn new(items: &[Value], key: Option<&str>) -> LiveView {
        let ids: Vec<Option<Value>> = identities(items, key)
            .into_iter()
            .map(|id| id.cloned())
            .collect();
        LiveView {
            len: ids.len(),
            ids,
        }
    }

    /// Element `at` of the current list was removed.
    fn removed(&mut self, at: usize) {
        let len = self.len;
        if at >= len || len > self.ids.len() {
            return;
        }
        if let Some(window) = self.ids.get_mut(at..len) {
            window.rotate_left(1);
        }
        // The last slot keeps its old value, which is now also one slot to
        // the left.
        if at + 1 < len {
            let previous = self.ids.get(len - 2).cloned().flatten();
            if let Some(last) = self.ids.get_mut(len - 1) {
                *last = previous;
            }
        }
        self.len -= 1;
    }

    /// A new element with identity `id` was appended.
    fn appended(&mut self, id: &Value) {
        if let Some(slot) = self.ids.get_mut(self.len) {
            *slot = Some(id.clone());
        }
        self.len += 1;
    }
}

/// The identity of each element: its merge-key value (`None` if it has
/// none), or the element itself for primitive lists.
fn identities<'v>(items: &'v [Value], key: Option<&str>) -> Vec<Option<&'v Value>> {
    items
        .iter()
        .map(|item| match key {
            Some(key) => item.get(key),
            None => Some(item),
        })
        .collect()
}

/// Upstream's check that the patch list follows `$setElementOrder`: its
/// elements (deletions and other `$patch` elements aside) must appear in the
/// order list, in the same relative order.
fn check_patch_follows_order(
    patch_list: &[Value],
    wanted: &[&Value],
    key: Option<&str>,
    directive: &str,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    let mut next = 0;
    for (i, item) in patch_list.iter().enumerate() {
        let id = match key {
            Some(key) => {
                if item.get(PATCH).is_some() {
                    continue;
                }
                match item.get(key) {
                    Some(id) => id,
                    None => return Err(missing_key(&path.index(i), key)),
                }
            }
            None => item,
        };
        match wanted.iter().skip(next).position(|w| json_eq(w, id)) {
            Some(offset) => next += offset + 1,
            None => {
                return Err(PatchError::InvalidDirective {
                    path: path.render(),
                    reason: format!(
                        "the patch list does not match {directive:?}: element {i} ({}) is \
                         missing from it or out of its order",
                        id
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Puts `merged` in its final order (see the module docs): elements whose
/// identity is in `wanted` in that order, interleaved with the others by
/// their positions in the live list (`server`).
fn arrange(
    merged: Vec<Value>,
    key: Option<&str>,
    wanted: &[&Value],
    server: &[Option<&Value>],
    path: &Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    // Each element with its position in the patch order and in the live list.
    let mut from_patch: Vec<(usize, Option<usize>, Value)> = Vec::new();
    let mut server_only: Vec<(usize, Option<usize>, Value)> = Vec::new();
    for (i, item) in merged.into_iter().enumerate() {
        let id = match key {
            Some(key) => match item.get(key) {
                Some(id) => id,
                None => return Err(missing_key(&path.index(i), key)),
            },
            None => &item,
        };
        let in_server = server
            .iter()
            .position(|candidate| candidate.is_some_and(|c| json_eq(c, id)));
        match wanted.iter().position(|w| json_eq(w, id)) {
            Some(in_patch) => from_patch.push((in_patch, in_server, item)),
            None => server_only.push((in_server.unwrap_or(usize::MAX), in_server, item)),
        }
    }
    // Stable sorts: equal identities (duplicates) keep their merged order.
    from_patch.sort_by_key(|(rank, _, _)| *rank);
    server_only.sort_by_key(|(rank, _, _)| *rank);

    let mut out = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = from_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some((_, Some(l), _)), Some((_, Some(r), _))) => l < r,
            (Some(_), Some(_)) => false,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, _, item)) = next {
            out.push(item);
        }
    }
    Ok(out)
}

fn missing_key(path: &Path<'_>, key: &str) -> PatchError {
    PatchError::MissingMergeKey {
        path: path.render(),
        key: key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn arrange_primitives(merged: Value, wanted: Value, server: Value) -> Value {
        let (Value::Array(merged), Value::Array(wanted), Value::Array(server)) =
            (merged, wanted, server)
        else {
            panic!("test input must be arrays");
        };
        let wanted: Vec<&Value> = wanted.iter().collect();
        let server: Vec<Option<&Value>> = server.iter().map(Some).collect();
        Value::Array(arrange(merged, None, &wanted, &server, &Path::ROOT).unwrap())
    }

    #[test]
    fn arrange_follows_upstream_interleaving() {
        // Patch elements keep the patch order; live-only ones slot in
        // before a patch element that came later in the live list.
        assert_eq!(
            arrange_primitives(
                json!(["a", "b", "c", "d"]),
                json!(["c", "d"]),
                json!(["a", "b", "c"])
            ),
            json!(["a", "b", "c", "d"])
        );
        assert_eq!(
            arrange_primitives(
                json!(["a", "b", "c", "d"]),
                json!(["d", "a"]),
                json!(["a", "b", "c"])
            ),
            json!(["d", "a", "b", "c"])
        );
        assert_eq!(
            arrange_primitives(
                json!(["a", "b", "c"]),
                json!(["c", "a"]),
                json!(["a", "b", "c"])
            ),
            json!(["b", "c", "a"])
        );
    }

    #[test]
    fn live_view_replays_in_place_edits() {
        let items = [json!("a"), json!("b"), json!("c")];
        let mut view = LiveView::new(&items, None);
        // Removing "a" shifts left and leaves a stale copy of "c" at the end.
        view.removed(0);
        assert_eq!(
            view.ids,
            [Some(json!("b")), Some(json!("c")), Some(json!("c"))]
        );
        // An append lands in the next slot; past the original length it is
        // not seen.
        view.appended(&json!("d"));
        view.appended(&json!("e"));
        assert_eq!(
            view.ids,
            [Some(json!("b")), Some(json!("c")), Some(json!("d"))]
        );
        // Removing the last element leaves the array as it was.
        let mut view = LiveView::new(&items, None);
        view.removed(2);
        assert_eq!(
            view.ids,
            [Some(json!("a")), Some(json!("b")), Some(json!("c"))]
        );
        // Out-of-range removals are ignored rather than panicking.
        view.removed(9);
        assert_eq!(view.len, 2);
    }

    #[test]
    fn primitives_union_drops_duplicates() {
        assert_eq!(
            merge_primitives(
                vec![json!("a"), json!("a"), json!("b")],
                &[json!("c"), json!("b")]
            ),
            // Upstream puts patch values not in the live list first.
            vec![json!("c"), json!("a"), json!("b")]
        );
    }
}
