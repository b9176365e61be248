//! The `pod-template-hash`: how a Deployment names its ReplicaSets and tells
//! its pods apart.
//!
//! Upstream (`controller.ComputeHash`) feeds the pod template into FNV-32a
//! (through Go's deep-hash printer), then the collision count as 8
//! little-endian bytes when set, prints the 32-bit sum in decimal and maps
//! each digit through the "safe encode" alphabet `bcdfghjklmnpqrstvwxz2456789`
//! (no vowels, so no words). Go's printer cannot be reproduced outside Go, so
//! Skiff feeds the template's canonical JSON (keys sorted, no spaces) instead:
//! the same properties (stable for one template, different for different
//! templates, bumped by collisionCount), not byte-identical names.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// The label every ReplicaSet of a Deployment (and each of its pods) carries.
pub const HASH_LABEL: &str = "pod-template-hash";

const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1a, 32 bits.
pub fn fnv32a(data: &[u8], mut hash: u32) -> u32 {
    for byte in data {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The FNV-32a offset basis.
pub const FNV32_OFFSET: u32 = 0x811c_9dc5;

/// Upstream `rand.SafeEncodeString`: each byte mapped into the alphabet.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// Writes `value` as JSON with object keys sorted, whatever the map type.
pub fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The pod-template-hash of `template` with `collision_count`.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let value = serde_json::to_value(template).unwrap_or(Value::Null);
    let mut text = String::new();
    canonical_json(&value, &mut text);
    let mut hash = fnv32a(text.as_bytes(), FNV32_OFFSET);
    if let Some(count) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hash = fnv32a(&bytes, hash);
    }
    safe_encode(&hash.to_string())
}

/// The template without the `pod-template-hash` label, as JSON, to compare
/// templates the way upstream's `EqualIgnoreHash` does.
pub fn without_hash(template: &PodTemplateSpec) -> Value {
    let mut template = template.clone();
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
        if labels.is_empty() {
            template.metadata.as_mut().unwrap().labels = None;
        }
    }
    if template
        .metadata
        .as_ref()
        .is_some_and(|m| m == &Default::default())
    {
        template.metadata = None;
    }
    serde_json::to_value(&template).unwrap_or(Value::Null)
}

/// Upstream `EqualIgnoreHash`.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "web", "image": image}]}
        }))
        .unwrap()
    }

    #[test]
    fn fnv32a_known_vectors() {
        // Reference values of FNV-1a 32 (Fowler/Noll/Vo's test suite).
        assert_eq!(fnv32a(b"", FNV32_OFFSET), 0x811c9dc5);
        assert_eq!(fnv32a(b"a", FNV32_OFFSET), 0xe40c292c);
        assert_eq!(fnv32a(b"foobar", FNV32_OFFSET), 0xbf9cf968);
    }

    #[test]
    fn safe_encode_maps_digits() {
        // '0' is byte 48, 48 % 27 = 21 → '4'; '9' = 57, 57 % 27 = 3 → 'f'.
        assert_eq!(safe_encode("0"), "4");
        assert_eq!(safe_encode("9"), "f");
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let a = pod_template_hash(&template("nginx:1.27"), None);
        assert_eq!(a, pod_template_hash(&template("nginx:1.27"), None));
        assert!(a.len() >= 8 && a.len() <= 10, "{a}: a u32 in decimal");
        assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_ne!(a, pod_template_hash(&template("nginx:1.28"), None));
        // The collision count changes the name; each count gives a new one.
        let c0 = pod_template_hash(&template("nginx:1.27"), Some(0));
        let c1 = pod_template_hash(&template("nginx:1.27"), Some(1));
        assert_ne!(a, c0);
        assert_ne!(c0, c1);
    }

    #[test]
    fn key_order_does_not_matter() {
        let one: Value = json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": "x"}});
        let mut text = String::new();
        canonical_json(&one, &mut text);
        assert_eq!(text, r#"{"a":{"c":"x","d":[1,{"y":1,"z":0}]},"b":1}"#);
    }

    #[test]
    fn equal_ignoring_the_hash_label() {
        let plain = template("nginx:1.27");
        let mut labelled = plain.clone();
        labelled
            .metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(HASH_LABEL.into(), "abc".into());
        assert!(equal_ignore_hash(&plain, &labelled));
        assert!(!equal_ignore_hash(&plain, &template("nginx:1.28")));
    }
}
