//! Reading and writing fields of objects held as JSON.

use serde_json::{Map, Value};

/// The value at `path`, if every step exists.
pub fn get<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(value, path).and_then(Value::as_str)
}

pub fn i64_at(value: &Value, path: &[&str]) -> Option<i64> {
    get(value, path).and_then(Value::as_i64)
}

/// The object at `path`, created (replacing nulls and non-objects) as needed.
pub fn object_at<'a>(value: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut here = value;
    for key in path {
        if !here.is_object() {
            *here = Value::Object(Map::new());
        }
        let Value::Object(map) = here else {
            unreachable!("just made an object")
        };
        here = map.entry(key.to_string()).or_insert(Value::Null);
    }
    if !here.is_object() {
        *here = Value::Object(Map::new());
    }
    match here {
        Value::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

/// Sets `path` to `new`, creating the objects on the way.
pub fn set(value: &mut Value, path: &[&str], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        *value = new;
        return;
    };
    object_at(value, parents).insert(last.to_string(), new);
}

/// Sets `path` to `default` when it is missing or null.
pub fn default(value: &mut Value, path: &[&str], default: Value) {
    if get(value, path).is_none_or(Value::is_null) {
        set(value, path, default);
    }
}

pub fn remove(value: &mut Value, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut here = value;
    for key in parents {
        here = here.get_mut(key)?;
    }
    here.as_object_mut()?.remove(*last)
}

pub fn name(obj: &Value) -> &str {
    str_at(obj, &["metadata", "name"]).unwrap_or("")
}

pub fn namespace(obj: &Value) -> &str {
    str_at(obj, &["metadata", "namespace"]).unwrap_or("")
}

/// The entries of the array at `path` (none when missing).
pub fn items<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    get(value, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let mut v = json!({"spec": null});
        default(&mut v, &["spec", "replicas"], json!(1));
        default(&mut v, &["spec", "replicas"], json!(5));
        assert_eq!(v, json!({"spec": {"replicas": 1}}));
        set(&mut v, &["metadata", "labels", "app"], json!("web"));
        assert_eq!(str_at(&v, &["metadata", "labels", "app"]), Some("web"));
        assert_eq!(remove(&mut v, &["spec", "replicas"]), Some(json!(1)));
        assert_eq!(items(&v, &["spec", "containers"]).len(), 0);
    }
}
