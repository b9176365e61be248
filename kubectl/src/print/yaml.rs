//! YAML as kubectl prints it. kubectl marshals the object to JSON (keys
//! sorted) and converts that with sigs.k8s.io/yaml, i.e. go-yaml v2's
//! emitter: two-space indent, list items at their key's indentation,
//! strings quoted only when needed — double quotes when the plain text
//! would read as another type (`"1"`, `"true"`, `""`, timestamps), single
//! quotes when it is not a valid plain scalar (`'*'`), `|` blocks for
//! multi-line text.

use serde_json::Value;

pub fn render(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => mapping(&mut out, value, 0),
        Value::Array(items) if !items.is_empty() => sequence(&mut out, items, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn sorted_entries(value: &Value) -> Vec<(&String, &Value)> {
    let Value::Object(map) = value else {
        return vec![];
    };
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn mapping(out: &mut String, value: &Value, indent: usize) {
    for (i, (key, v)) in sorted_entries(value).into_iter().enumerate() {
        if i > 0 {
            out.extend(std::iter::repeat_n(' ', indent));
        }
        out.push_str(&string(key, indent));
        out.push(':');
        entry_value(out, v, indent, true);
    }
}

/// Writes what follows `key:` or `- `.
fn entry_value(out: &mut String, v: &Value, indent: usize, in_map: bool) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            if in_map {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', indent + 2));
            }
            mapping(out, v, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            // go-yaml v2 writes a mapping's sequence at the key's column.
            let col = if in_map { indent } else { indent + 2 };
            out.extend(std::iter::repeat_n(' ', col));
            sequence(out, items, col);
        }
        other => {
            if in_map {
                out.push(' ');
            }
            out.push_str(&scalar(other, indent));
            out.push('\n');
        }
    }
}

fn sequence(out: &mut String, items: &[Value], indent: usize) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.extend(std::iter::repeat_n(' ', indent));
        }
        out.push_str("- ");
        match item {
            Value::Array(inner) if !inner.is_empty() => sequence(out, inner, indent + 2),
            Value::Object(m) if !m.is_empty() => mapping(out, item, indent + 2),
            other => {
                out.push_str(&scalar(other, indent));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => string(s, indent),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

fn number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or_default();
    // Go's strconv 'g' with the shortest precision: 1e+06, 0.5.
    let s = format!("{f:?}");
    if f.abs() >= 1e21 || (f != 0.0 && f.abs() < 1e-4) {
        let e = format!("{f:e}");
        let (m, exp) = e.split_once('e').unwrap();
        let exp: i32 = exp.parse().unwrap();
        return format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    s.trim_end_matches(".0").to_string()
}

/// A string scalar in go-yaml v2's style.
pub fn string(s: &str, indent: usize) -> String {
    if s.contains('\n') && s.chars().all(|c| c == '\n' || !c.is_control() || c == '\t') {
        return literal(s, indent);
    }
    if resolves_to_non_string(s) {
        return double_quoted(s);
    }
    if s.chars()
        .any(|c| c.is_control() && c != '\t' || c == '\u{feff}')
    {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn literal(s: &str, indent: usize) -> String {
    let chomp = if s.ends_with("\n\n") {
        "+"
    } else if s.ends_with('\n') {
        ""
    } else {
        "-"
    };
    let lead = if s.starts_with(' ') { "2" } else { "" };
    let mut out = format!("|{lead}{chomp}");
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent + 2));
            out.push_str(line);
        }
    }
    out
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether go-yaml v2's resolver would read `s` as something other than a
/// string (bool, null, int, float, timestamp).
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let first = s.chars().next().unwrap();
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return false;
    }
    let plain = s.replace('_', "");
    let body = plain.trim_start_matches(['+', '-']);
    if body.is_empty() {
        return false;
    }
    let int = body.chars().all(|c| c.is_ascii_digit())
        || body
            .strip_prefix("0x")
            .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
        || body
            .strip_prefix("0b")
            .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c == '0' || c == '1'));
    let float = body.parse::<f64>().is_ok()
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    // base 60 (`1:20`) reads as a float in YAML 1.1; go-yaml quotes it.
    let base60 = body.contains(':')
        && body
            .split(':')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && body.split(':').skip(1).all(|p| p.len() <= 2);
    int || float || base60 || is_timestamp(s)
}

/// YAML 1.1 timestamps as go-yaml v2 resolves them (`2006-01-02`,
/// `2006-01-02T15:04:05Z`, …).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 10 || !(b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-') {
        return false;
    }
    let date_ok = b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit);
    if !date_ok {
        return false;
    }
    if b.len() == 10 {
        return true;
    }
    s.parse::<jiff::Timestamp>().is_ok()
}

/// go-yaml's block-plain analysis (yaml_emitter_analyze_scalar).
fn plain_allowed(s: &str) -> bool {
    if s.starts_with(' ') || s.ends_with(' ') || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next_blank = chars.get(i + 1).is_none_or(|n| *n == ' ' || *n == '\t');
        let prev_blank = i > 0 && (chars[i - 1] == ' ' || chars[i - 1] == '\t');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => return false,
                '?' | ':' | '-' if next_blank => return false,
                _ => {}
            }
        } else {
            match c {
                ':' if next_blank => return false,
                '#' if prev_blank => return false,
                _ => {}
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_like_kubectl() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "web"}, "resourceVersion": "12",
                         "creationTimestamp": "2026-01-02T03:04:05Z", "annotations": {"a": ""}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "args": ["a", "*"],
                                     "ports": [{"containerPort": 80}]}],
                     "tolerations": [], "securityContext": {}},
        });
        let want = "\
apiVersion: v1
kind: Pod
metadata:
  annotations:
    a: \"\"
  creationTimestamp: \"2026-01-02T03:04:05Z\"
  labels:
    app: web
  name: web
  resourceVersion: \"12\"
spec:
  containers:
  - args:
    - a
    - '*'
    image: nginx
    name: c
    ports:
    - containerPort: 80
  securityContext: {}
  tolerations: []
";
        assert_eq!(render(&pod), want);
    }

    #[test]
    fn strings_are_quoted_as_go_yaml_does() {
        for (s, want) in [
            ("web", "web"),
            ("1", "\"1\""),
            ("true", "\"true\""),
            ("yes", "\"yes\""),
            ("1.5", "\"1.5\""),
            ("a: b", "'a: b'"),
            ("it's", "it's"),
            ("'x'", "'''x'''"),
            ("-", "'-'"),
            ("10.244.0.1", "10.244.0.1"),
            ("", "\"\""),
        ] {
            assert_eq!(string(s, 0), want, "{s}");
        }
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        let out = render(&json!({"data": {"f": "a\nb\n"}}));
        assert_eq!(out, "data:\n  f: |\n    a\n    b\n");
    }
}
