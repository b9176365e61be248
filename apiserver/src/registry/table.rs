//! Table columns and cells, as `kubectl get` shows them. The server renders
//! tables (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), so the
//! columns here are what users see.

use serde_json::{Value, json};

use crate::object::str_at;

#[derive(Debug, Clone)]
pub struct Column {
    pub name: &'static str,
    pub kind: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    pub priority: u8,
}

pub const fn col(name: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind: "string",
        format: "",
        description,
        priority: 0,
    }
}

pub const fn int_col(name: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind: "integer",
        format: "",
        description,
        priority: 0,
    }
}

pub const fn wide(mut column: Column) -> Column {
    column.priority = 1;
    column
}

pub fn name_column() -> Column {
    Column {
        name: "Name",
        kind: "string",
        format: "name",
        description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        priority: 0,
    }
}

pub fn age_column() -> Column {
    col(
        "Age",
        "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    )
}

pub fn column_json(column: &Column) -> Value {
    json!({
        "name": column.name,
        "type": column.kind,
        "format": column.format,
        "description": column.description,
        "priority": column.priority,
    })
}

/// The Name cell.
pub fn name(obj: &Value) -> Value {
    json!(crate::object::name(obj))
}

/// The Age cell: how long ago the object was created.
pub fn age(obj: &Value) -> Value {
    json!(since(str_at(obj, &["metadata", "creationTimestamp"])))
}

/// How long ago an RFC 3339 time was, as upstream shows it ("<unknown>" when unset).
pub fn since(time: Option<&str>) -> String {
    let Some(time) = time.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let elapsed = jiff::Timestamp::now().duration_since(time);
    human_duration(elapsed.as_secs())
}

/// Upstream's `duration.HumanDuration`: precise when short, coarse when long.
/// For example 90 s → "90s", 150 s → "2m30s", 2 h 5 m → "125m", 5 h 5 m → "5h5m",
/// 30 h → "30h", 3 d 4 h → "3d4h", 400 d → "400d", 3 y 10 d → "3y10d".
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let seconds = seconds.max(0);
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let d = days % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

/// `a,b,c` or `<none>` for an empty list, as upstream joins names.
pub fn joined(values: impl IntoIterator<Item = String>) -> String {
    let all: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
    if all.is_empty() {
        "<none>".into()
    } else {
        all.join(",")
    }
}

/// A label selector map as `k=v,k2=v2`, or `<none>`.
pub fn selector_string(selector: Option<&Value>) -> String {
    let Some(map) = selector.and_then(Value::as_object) else {
        return "<none>".into();
    };
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// A `metav1.LabelSelector` (matchLabels and matchExpressions) as a string.
pub fn label_selector_string(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return "<none>".into();
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        let mut pairs: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        pairs.sort();
        parts.extend(pairs);
    }
    for expr in crate::object::items(selector, &["matchExpressions"]) {
        let key = str_at(expr, &["key"]).unwrap_or("");
        let values: Vec<&str> = crate::object::items(expr, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        match str_at(expr, &["operator"]).unwrap_or("") {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_upstream() {
        let cases = [
            (0, "0s"),
            (90, "90s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (125 * 60, "125m"),
            (5 * 3600 + 300, "5h5m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (400 * 86400, "400d"),
            (3 * 365 * 86400 + 10 * 86400, "3y10d"),
            (-5, "<invalid>"),
        ];
        for (seconds, want) in cases {
            assert_eq!(human_duration(seconds), want, "{seconds}");
        }
    }

    #[test]
    fn selectors() {
        let s = serde_json::json!({"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]});
        assert_eq!(label_selector_string(Some(&s)), "a=1,b=2,tier in (web,api)");
        assert_eq!(selector_string(None), "<none>");
    }
}
