//! JSON as kubectl prints it: Go's `json.MarshalIndent(obj, "", "    ")`
//! of an unstructured map (keys sorted) with HTML characters escaped.

use serde::Serialize;
use serde_json::Value;

pub fn render(value: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    sorted(value).serialize(&mut ser).unwrap();
    let text = String::from_utf8(buf).unwrap();
    // Go escapes these even inside strings; they cannot occur outside one.
    let mut out = text
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    out.push('\n');
    out
}

/// A copy with every object's keys sorted (serde_json may be built with
/// `preserve_order` by another crate of the workspace).
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn four_spaces_sorted_keys_and_go_escapes() {
        let out = render(&json!({"kind": "Pod", "apiVersion": "v1", "a": "<&>", "e": {}, "l": []}));
        assert_eq!(
            out,
            "{\n    \"a\": \"\\u003c\\u0026\\u003e\",\n    \"apiVersion\": \"v1\",\n    \"e\": {},\n    \"kind\": \"Pod\",\n    \"l\": []\n}\n"
        );
    }
}
