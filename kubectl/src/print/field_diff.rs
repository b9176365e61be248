//! What changed between two versions of an object, field by field, for
//! `get -w --diff`: so a class sees exactly what a controller (or the
//! kubelet) wrote. Each leaf is named by its path (`spec.replicas`,
//! `status.conditions[1].status`); `metadata.resourceVersion` and
//! `metadata.managedFields` are left out (they change on every write).

use std::collections::BTreeMap;

use serde_json::Value;

/// Paths whose changes are noise.
const IGNORED: [&str; 2] = ["metadata.resourceVersion", "metadata.managedFields"];

/// Leaf path → value as text.
fn flatten(v: &Value, path: &str, out: &mut BTreeMap<String, String>) {
    if IGNORED
        .iter()
        .any(|i| path == *i || path.starts_with(&format!("{i}.")))
    {
        return;
    }
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                // Keys with dots (labels, annotations) are quoted.
                let key = if k.contains('.') || k.contains('/') {
                    format!("\"{k}\"")
                } else {
                    k.clone()
                };
                let p = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                flatten(v, &p, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                flatten(v, &format!("{path}[{i}]"), out);
            }
        }
        // An empty root is nothing; an empty map or list inside is a leaf.
        Value::Object(_) | Value::Array(_) if path.is_empty() => {}
        Value::String(s) => {
            out.insert(path.to_string(), s.clone());
        }
        other => {
            out.insert(path.to_string(), other.to_string());
        }
    }
}

/// One changed field.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Added(String, String),
    Removed(String, String),
    Changed(String, String, String),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Added(p, new) => write!(f, "+ {p}: {new}"),
            Change::Removed(p, old) => write!(f, "- {p}: {old}"),
            Change::Changed(p, old, new) => write!(f, "~ {p}: {old} → {new}"),
        }
    }
}

/// The changes from `old` to `new`, by path.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten(old, "", &mut a);
    flatten(new, "", &mut b);
    let mut out = Vec::new();
    for (p, old) in &a {
        match b.get(p) {
            None => out.push(Change::Removed(p.clone(), old.clone())),
            Some(new) if new != old => {
                out.push(Change::Changed(p.clone(), old.clone(), new.clone()))
            }
            Some(_) => {}
        }
    }
    for (p, new) in &b {
        if !a.contains_key(p) {
            out.push(Change::Added(p.clone(), new.clone()));
        }
    }
    out.sort_by(|x, y| path_of(x).cmp(path_of(y)));
    out
}

fn path_of(c: &Change) -> &str {
    match c {
        Change::Added(p, _) | Change::Removed(p, _) | Change::Changed(p, _, _) => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_are_named_by_path() {
        let old = json!({"metadata": {"resourceVersion": "1", "labels": {"app.kubernetes.io/name": "web"}},
                         "spec": {"replicas": 2},
                         "status": {"conditions": [{"type": "Ready", "status": "False"}], "hostIP": "10.0.0.1"}});
        let new = json!({"metadata": {"resourceVersion": "2", "labels": {"app.kubernetes.io/name": "web"}},
                         "spec": {"replicas": 3},
                         "status": {"conditions": [{"type": "Ready", "status": "True"}], "podIP": "10.244.0.5"}});
        let lines: Vec<String> = diff(&old, &new).iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "~ spec.replicas: 2 → 3",
                "~ status.conditions[0].status: False → True",
                "- status.hostIP: 10.0.0.1",
                "+ status.podIP: 10.244.0.5",
            ]
        );
    }

    #[test]
    fn noise_is_left_out_and_sameness_is_empty() {
        let a = json!({"metadata": {"resourceVersion": "1", "managedFields": [{"manager": "x"}]}});
        let b = json!({"metadata": {"resourceVersion": "9", "managedFields": [{"manager": "y"}]}});
        assert!(diff(&a, &b).is_empty());
        let labelled = json!({"metadata": {"labels": {"tier.example.com/x": "a"}}});
        assert_eq!(
            diff(&json!({}), &labelled)[0].to_string(),
            "+ metadata.labels.\"tier.example.com/x\": a"
        );
    }
}
