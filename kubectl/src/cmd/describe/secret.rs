//! `describe secret`: type and the size of each data value in bytes,
//! never the values (but a service account token's, as kubectl).
//! kubectl walks the data in Go map order (random); skiffctl sorts keys.

use serde_json::Value;

use super::configmap::decoded_len;
use super::writer::{self, Writer, s};

pub fn render(secret: &Value) -> String {
    let md = &secret["metadata"];
    let mut w = Writer::new();
    w.write(0, format!("Name:\t{}\n", s(&md["name"])));
    w.write(0, format!("Namespace:\t{}\n", s(&md["namespace"])));
    writer::labels(&mut w, "", "Labels", &md["labels"]);
    writer::annotations(&mut w, "Annotations", &md["annotations"]);
    let kind = s(&secret["type"]);
    w.write(0, format!("\nType:\t{kind}\n"));
    w.write(0, "\nData\n====\n");
    let mut data: Vec<(&String, &Value)> =
        secret["data"].as_object().into_iter().flatten().collect();
    data.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in data {
        if k == "token" && kind == "kubernetes.io/service-account-token" {
            let token = base64_decode(s(v)).unwrap_or_default();
            w.write(0, format!("{k}:\t{}\n", String::from_utf8_lossy(&token)));
        } else {
            w.write(0, format!("{k}:\t{} bytes\n", decoded_len(s(v))));
        }
    }
    w.finish()
}

/// Standard base64 (with or without padding); None when malformed.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_not_values() {
        let secret = json!({"metadata": {"name": "s", "namespace": "default"}, "type": "Opaque",
                            "data": {"password": "c2VjcmV0", "user": "YWRtaW4="}});
        let out = render(&secret);
        assert_eq!(
            out,
            "Name:         s\nNamespace:    default\nLabels:       <none>\nAnnotations:  <none>\n\nType:  Opaque\n\nData\n====\npassword:  6 bytes\nuser:      5 bytes\n"
        );
        assert!(!out.contains("secret") || !out.contains("admin"));
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert!(base64_decode("*").is_none());
    }
}
