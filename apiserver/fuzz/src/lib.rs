//! What the skiff-apiserver fuzz targets share: objects shaped like
//! Kubernetes objects built from the fuzzer's bytes, and the write path of
//! the API server replayed without its storage.
//!
//! The write path is `skiff_apiserver::exercise` (re-exported here): the
//! same pure stages the handlers run, up to the storage, shared with the
//! no-panic properties in `apiserver/tests/no_panics.rs`.
//!
//! Objects come from [`object`]: a valid object of the kind (so that the
//! typed check passes often enough to reach defaulting and validation) with
//! a few random edits made at random places in it, using field names and
//! values Kubernetes uses, plus arbitrary ones.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Number, Value, json};
use skiff_apiserver::handlers::prepare::FieldValidation;
use skiff_apiserver::registry::{RESOURCES, Resource, Sub};

pub use skiff_apiserver::exercise::{
    KEYS, STRINGS, body_in, create, patch, read_back, stored, strings, template, update,
};
pub use skiff_apiserver::handlers::patch::{PatchType, apply_patch};

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

/// One of the patch types `PATCH` takes.
pub fn patch_type(u: &mut Unstructured<'_>) -> Result<PatchType> {
    Ok(*u.choose(&[
        PatchType::Merge,
        PatchType::Json,
        PatchType::Strategic,
        PatchType::Apply,
    ])?)
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
