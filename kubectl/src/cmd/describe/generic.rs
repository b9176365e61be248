//! kubectl's generic describer, for kinds without their own: name,
//! namespace, labels, annotations, then every other field (sorted, with
//! "smart" titles: `apiVersion` → `API Version`), then the Events.

use serde_json::{Map, Value};

use super::writer::{self, Writer, plain, s};

const SKIP: &[&str] = &[
    ".metadata.managedFields",
    ".metadata.name",
    ".metadata.namespace",
    ".metadata.labels",
    ".metadata.annotations",
];

pub fn render(obj: &Value, events: Option<&[Value]>) -> String {
    let md = &obj["metadata"];
    let mut w = Writer::new();
    w.write(0, format!("Name:\t{}\n", s(&md["name"])));
    w.write(0, format!("Namespace:\t{}\n", s(&md["namespace"])));
    writer::labels(&mut w, "", "Labels", &md["labels"]);
    writer::annotations(&mut w, "Annotations", &md["annotations"]);
    if let Some(map) = obj.as_object() {
        content(&mut w, 0, map, "");
    }
    if let Some(events) = events {
        super::events::describe(&mut w, events);
    }
    w.finish()
}

fn content(w: &mut Writer, level: usize, map: &Map<String, Value>, prefix: &str) {
    let mut fields: Vec<&String> = map.keys().collect();
    fields.sort();
    for field in fields {
        let path = format!("{prefix}.{field}");
        if SKIP.contains(&path.as_str()) {
            continue;
        }
        match &map[field] {
            Value::Object(child) => {
                w.write(level, format!("{}:\n", smart_label(field)));
                content(w, level + 1, child, &path);
            }
            Value::Array(items) => {
                w.write(level, format!("{}:\n", smart_label(field)));
                for item in items {
                    match item {
                        Value::Object(child) => content(w, level + 1, child, &path),
                        other => w.write(level + 1, format!("{}\n", go_value(other))),
                    }
                }
            }
            other => w.write(
                level,
                format!("{}:\t{}\n", smart_label(field), go_value(other)),
            ),
        }
    }
}

/// Go's `%v` of a decoded JSON value: whole numbers without a fraction,
/// others in Go's shortest form (`1e+21` for big ones).
fn go_value(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            let exp = if f == 0.0 {
                0
            } else {
                f.abs().log10().floor() as i32
            };
            if (-4..21).contains(&exp) {
                format!("{f}")
            } else {
                let t = format!("{f:e}");
                match t.split_once('e') {
                    Some((m, e)) => {
                        let (sign, digits) = match e.strip_prefix('-') {
                            Some(d) => ('-', d),
                            None => ('+', e),
                        };
                        format!("{m}e{sign}{digits:0>2}")
                    }
                    None => t,
                }
            }
        }
        other => plain(other),
    }
}

/// kubectl's title for a field: camel-case words capitalised, common
/// acronyms upper-cased; names with other than letters and `-` as they are.
pub fn smart_label(field: &str) -> String {
    if field.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return field.to_string();
    }
    let class = |c: char| {
        if c.is_lowercase() {
            1
        } else if c.is_uppercase() {
            2
        } else {
            3
        }
    };
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = 0;
    for c in field.chars() {
        let k = class(c);
        if k == last
            && let Some(run) = runs.last_mut()
        {
            run.push(c);
        } else {
            runs.push(vec![c]);
        }
        last = k;
    }
    // An upper-case run followed by a lower-case one gives it its last
    // letter: "HTTPServer" → "HTTP", "Server".
    for i in 0..runs.len().saturating_sub(1) {
        if runs[i].first().is_some_and(|c| c.is_uppercase())
            && runs[i + 1].first().is_some_and(|c| c.is_lowercase())
            && let Some(c) = runs[i].pop()
        {
            runs[i + 1].insert(0, c);
        }
    }
    const ACRONYMS: &[&str] = &["API", "URL", "UID", "OSB", "GUID"];
    runs.into_iter()
        .filter(|r| !r.is_empty())
        .map(|r| {
            let word: String = r.into_iter().collect();
            if ACRONYMS.contains(&word.to_uppercase().as_str()) {
                word.to_uppercase()
            } else {
                let mut chars = word.chars();
                match chars.next() {
                    Some(first) => first.to_uppercase().chain(chars).collect(),
                    None => word,
                }
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn smart_labels() {
        assert_eq!(smart_label("apiVersion"), "API Version");
        assert_eq!(smart_label("creationTimestamp"), "Creation Timestamp");
        assert_eq!(smart_label("uid"), "UID");
        assert_eq!(smart_label("HTTPServer"), "HTTP Server");
        assert_eq!(smart_label("port80"), "port80");
        assert_eq!(smart_label("a-b"), "A - B");
    }

    #[test]
    fn every_other_field_is_listed() {
        let obj = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": {"name": "x", "namespace": "d", "uid": "u", "managedFields": [{}]},
                         "secrets": [{"name": "t"}], "automount": false, "list": ["a", 1.5]});
        assert_eq!(
            render(&obj, None),
            "Name:         x\nNamespace:    d\nLabels:       <none>\nAnnotations:  <none>\nAPI Version:  v1\nAutomount:    false\nKind:         ServiceAccount\nList:\n  a\n  1.5\nMetadata:\n  UID:  u\nSecrets:\n  Name:  t\n"
        );
        assert_eq!(go_value(&json!(1e21)), "1e+21");
    }
}
