//! ConfigMaps and Secrets: key validation, `stringData`, and their tables.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::object::{default, get, str_at};
use crate::registry::Strategy;
use crate::registry::table::{self, Column, col, int_col};
use crate::validation::FieldError;

/// `[-._a-zA-Z0-9]+`, at most 253 characters: keys of data maps, which
/// become file names when mounted.
fn validate_keys(field: &str, map: Option<&Value>) -> Vec<FieldError> {
    let Some(map) = map.and_then(Value::as_object) else {
        return Vec::new();
    };
    map.keys()
        .filter(|k| k.is_empty() || k.len() > 253 || !k.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) || *k == "." || *k == "..")
        .map(|k| FieldError::invalid(field, json!(k), "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"))
        .collect()
}

fn count(obj: &Value, fields: &[&str]) -> usize {
    fields
        .iter()
        .filter_map(|f| get(obj, &[f]).and_then(Value::as_object))
        .map(Map::len)
        .sum()
}

pub struct ConfigMapStrategy;

impl Strategy for ConfigMapStrategy {
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errors = validate_keys("data", obj.get("data"));
        errors.extend(validate_keys("binaryData", obj.get("binaryData")));
        if let (Some(data), Some(binary)) = (
            obj.get("data").and_then(Value::as_object),
            obj.get("binaryData").and_then(Value::as_object),
        ) {
            for key in data.keys().filter(|k| binary.contains_key(*k)) {
                errors.push(FieldError::invalid(
                    "data",
                    json!(key),
                    "duplicate of key present in binaryData",
                ));
            }
        }
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            table::name_column(),
            int_col("Data", "Data contains the configuration data."),
            table::age_column(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj),
            json!(count(obj, &["data", "binaryData"])),
            table::age(obj),
        ]
    }
}

pub struct SecretStrategy;

impl Strategy for SecretStrategy {
    /// `stringData` is write-only: its entries are encoded into `data`, as
    /// upstream does.
    fn default(&self, obj: &mut Value) {
        default(obj, &["type"], json!("Opaque"));
        if let Some(Value::Object(strings)) =
            obj.as_object_mut().and_then(|o| o.remove("stringData"))
        {
            let data = crate::object::object_at(obj, &["data"]);
            for (key, value) in strings {
                let text = value.as_str().unwrap_or_default();
                data.insert(
                    key,
                    json!(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_keys("data", obj.get("data"))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        if get(old, &["immutable"]) == Some(&json!(true)) && (new.get("data") != old.get("data")) {
            errors.push(FieldError::forbidden(
                "data",
                "field is immutable when `immutable` is set",
            ));
        }
        if str_at(old, &["type"]) != str_at(new, &["type"]) {
            errors.push(FieldError::immutable(
                "type",
                new.get("type").cloned().unwrap_or(Value::Null),
            ));
        }
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            table::name_column(),
            col("Type", "The type of the secret"),
            int_col("Data", "The number of entries in the secret"),
            table::age_column(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj),
            json!(str_at(obj, &["type"]).unwrap_or("Opaque")),
            json!(count(obj, &["data"])),
            table::age(obj),
        ]
    }

    fn field(&self, obj: &Value, path: &str) -> Option<String> {
        (path == "type").then(|| str_at(obj, &["type"]).unwrap_or("").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_data_is_encoded() {
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}, "data": {"user": "YWRtaW4="}});
        SecretStrategy.default(&mut s);
        assert_eq!(s["data"]["password"], "aHVudGVyMg==");
        assert_eq!(s["data"]["user"], "YWRtaW4=");
        assert!(s.get("stringData").is_none());
        assert_eq!(s["type"], "Opaque");
    }

    #[test]
    fn keys() {
        let cm = json!({"data": {"good.key": "1", "bad key": "2"}});
        let errors = ConfigMapStrategy.validate(&cm);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            ConfigMapStrategy.cells(&json!({"data": {"a": "1"}, "binaryData": {"b": ""}}))[1],
            2
        );
    }
}
