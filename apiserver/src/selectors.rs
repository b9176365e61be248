//! Label and field selectors: the `labelSelector` / `fieldSelector` query
//! strings and the `metav1.LabelSelector` objects in specs.
//!
//! Label selector syntax, as upstream: requirements joined by commas, all of
//! which must hold: `app=web`, `app==web`, `tier!=db`, `env in (prod,qa)`,
//! `env notin (dev)`, `canary` (key exists), `!canary` (key absent),
//! `replicas>2`, `replicas<5`. Field selectors take `=`, `==` and `!=` only.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

impl Requirement {
    fn holds(&self, labels: &Map<String, Value>) -> bool {
        let value = |key: &str| labels.get(key).and_then(Value::as_str);
        match self {
            Requirement::Equals(k, v) => value(k) == Some(v),
            // Like upstream, a missing key satisfies `!=`.
            Requirement::NotEquals(k, v) => value(k) != Some(v),
            Requirement::In(k, vs) => value(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => value(k).is_none_or(|v| !vs.iter().any(|x| x == v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::GreaterThan(k, n) => value(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            Requirement::LessThan(k, n) => value(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        }
    }
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

impl LabelSelector {
    /// Parses the query-string form.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(LabelSelector(requirements))
    }

    /// Converts a `metav1.LabelSelector` object (matchLabels, matchExpressions).
    pub fn from_object(selector: &Value) -> Result<Self, String> {
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (key, value) in labels {
                requirements.push(Requirement::Equals(
                    key.clone(),
                    value.as_str().unwrap_or("").to_string(),
                ));
            }
        }
        for expr in crate::object::items(selector, &["matchExpressions"]) {
            let key = crate::object::str_at(expr, &["key"])
                .ok_or("a matchExpression has no key")?
                .to_string();
            let values: Vec<String> = crate::object::items(expr, &["values"])
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect();
            let requirement = match crate::object::str_at(expr, &["operator"]).unwrap_or("") {
                "In" if !values.is_empty() => Requirement::In(key, values),
                "NotIn" if !values.is_empty() => Requirement::NotIn(key, values),
                "Exists" if values.is_empty() => Requirement::Exists(key),
                "DoesNotExist" if values.is_empty() => Requirement::DoesNotExist(key),
                "In" | "NotIn" => {
                    return Err(format!(
                        "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty (key {key:?})"
                    ));
                }
                "Exists" | "DoesNotExist" => {
                    return Err(format!(
                        "values: Invalid value: {values:?}: values set must be empty for exists and does not exist"
                    ));
                }
                other => {
                    return Err(format!(
                        "\"{other}\" is not a valid label selector operator"
                    ));
                }
            };
            requirements.push(requirement);
        }
        Ok(LabelSelector(requirements))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let empty = Map::new();
        let labels = labels.and_then(Value::as_object).unwrap_or(&empty);
        self.0.iter().all(|r| r.holds(labels))
    }

    /// Whether an object's `metadata.labels` match.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.is_empty() || self.matches(crate::object::get(obj, &["metadata", "labels"]))
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let bad = |why: &str| format!("unable to parse requirement: {why} in {part:?}");
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(
            check_key(key.trim()).map_err(|e| bad(&e))?,
        ));
    }
    for (op, build) in [("!=", 0), ("==", 1), ("=", 1), (">", 2), ("<", 3)] {
        if let Some((key, value)) = part.split_once(op) {
            let key = check_key(key.trim()).map_err(|e| bad(&e))?;
            let value = value.trim().to_string();
            return Ok(match build {
                0 => Requirement::NotEquals(key, value),
                1 => Requirement::Equals(key, value),
                2 => {
                    Requirement::GreaterThan(key, value.parse().map_err(|_| bad("not an integer"))?)
                }
                _ => Requirement::LessThan(key, value.parse().map_err(|_| bad("not an integer"))?),
            });
        }
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if let [key, rest] = words.as_slice() {
        let rest = rest.trim();
        let (op, set) = if let Some(set) = rest.strip_prefix("notin") {
            ("notin", set)
        } else if let Some(set) = rest.strip_prefix("in") {
            ("in", set)
        } else {
            return Err(bad("expected one of: '=', '==', '!=', 'in', 'notin'"));
        };
        let set = set
            .trim()
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(|| bad("expected a (set) of values"))?;
        let values: Vec<String> = set
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(bad(
                "for 'in', 'notin' operators, values set can't be empty",
            ));
        }
        let key = check_key(key).map_err(|e| bad(&e))?;
        return Ok(if op == "in" {
            Requirement::In(key, values)
        } else {
            Requirement::NotIn(key, values)
        });
    }
    Ok(Requirement::Exists(check_key(part).map_err(|e| bad(&e))?))
}

fn check_key(key: &str) -> Result<String, String> {
    if key.is_empty() || key.contains(char::is_whitespace) || key.contains(['(', ')', '!', '=']) {
        return Err(format!("invalid label key {key:?}"));
    }
    Ok(key.to_string())
}

/// A parsed field selector: (field, wanted value, equal or not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, String, bool)>);

impl FieldSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in split_unescaped(text, ',') {
            if part.trim().is_empty() {
                continue;
            }
            let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, true)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            terms.push((field.trim().to_string(), unescape(value.trim()), equal));
        }
        Ok(FieldSelector(terms))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields it names.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(f, _, _)| f.as_str())
    }

    /// Whether it holds, given a way to read each field.
    pub fn matches(&self, field: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|(name, want, equal)| {
            let got = field(name).unwrap_or_default();
            (got == *want) == *equal
        })
    }

    /// The value it requires for `field` with `=`, if any (e.g. the
    /// `metadata.name` of `kubectl get pod x --watch`).
    pub fn required(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _, equal)| f == field && *equal)
            .map(|(_, v, _)| v.as_str())
    }
}

fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            if let Some(last) = parts.last_mut() {
                last.push('\\');
                last.push(c);
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let labels = json!({"app": "web", "tier": "front", "replicas": "3"});
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=db", false),
            ("tier in (front,back)", true),
            ("tier notin (front)", false),
            ("tier notin (back)", true),
            ("canary", false),
            ("!canary", true),
            ("app", true),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            ("missing!=x", true),
            ("replicas>2", true),
            ("replicas<3", false),
            ("app=web, tier in (front, back)", true),
        ];
        for (text, want) in cases {
            let selector = LabelSelector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(selector.matches(Some(&labels)), want, "{text}");
        }
        for bad in ["a in ()", "a in x", "=x", "a b c"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selector_objects() {
        let s = LabelSelector::from_object(&json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]})).unwrap();
        assert!(s.matches(Some(&json!({"app": "web", "tier": "front"}))));
        assert!(!s.matches(Some(&json!({"app": "web"}))));
        assert!(
            LabelSelector::from_object(
                &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
            )
            .is_err()
        );
    }

    #[test]
    fn field_selectors() {
        let s = FieldSelector::parse("spec.nodeName=node-1,status.phase!=Failed").unwrap();
        let pod = |node: &str, phase: &str| {
            let (node, phase) = (node.to_string(), phase.to_string());
            move |f: &str| match f {
                "spec.nodeName" => Some(node.clone()),
                "status.phase" => Some(phase.clone()),
                _ => None,
            }
        };
        assert!(s.matches(pod("node-1", "Running")));
        assert!(!s.matches(pod("node-2", "Running")));
        assert!(!s.matches(pod("node-1", "Failed")));
        assert_eq!(s.required("spec.nodeName"), Some("node-1"));
        let escaped = FieldSelector::parse(r"metadata.name=a\,b").unwrap();
        assert_eq!(escaped.0[0].1, "a,b");
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
