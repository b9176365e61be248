//! Request bodies: size limit, and decoding JSON or YAML into objects.

use axum::body::Body;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Bodies over this are answered with 413 (upstream's limit is 3 MiB too).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Past the limit the rest of a body is still read (and dropped) up to this,
/// so the client, still sending, gets the 413 rather than a broken connection.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;

pub async fn read(body: Body) -> ApiResult<Bytes> {
    let mut stream = body.into_data_stream();
    let mut collected = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        total += chunk.len();
        if total > DRAIN_BYTES {
            break;
        }
        if total <= MAX_BODY_BYTES {
            collected.extend_from_slice(&chunk);
        }
    }
    if total > MAX_BODY_BYTES {
        return Err(ApiError::too_large(MAX_BODY_BYTES));
    }
    Ok(collected.freeze())
}

/// The media type of the body, without parameters ("" when missing).
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Decodes an object sent as JSON (also when no Content-Type is given, as
/// `kubectl scale` does) or YAML.
pub fn decode(content_type: &str, bytes: &[u8]) -> ApiResult<Value> {
    let value: Value = match content_type {
        ""
        | "application/json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/json-patch+json" => serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
        })?,
        "application/yaml"
        | "application/apply-patch+yaml"
        | "application/x-yaml"
        | "text/yaml" => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
            serde_saphyr::from_str(text).map_err(|e| {
                ApiError::bad_request(format!("the request body is not valid YAML: {e}"))
            })?
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    Ok(value)
}

/// The fields a JSON body sends twice in one object, as upstream's strict
/// decoder names them (`metadata.name`, `spec.containers[0].image`). A
/// decoder keeps the last value silently; `fieldValidation` reports them.
/// Nothing for other encodings (YAML refuses duplicate keys outright) or
/// for a body that does not parse (its decoder reports that).
pub fn duplicate_fields(content_type: &str, bytes: &[u8]) -> Vec<String> {
    use serde::de::DeserializeSeed;
    if !matches!(content_type, "" | "application/json") {
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let walked = Duplicates {
        path: String::new(),
        found: &mut found,
    }
    .deserialize(&mut de);
    if walked.is_err() {
        return Vec::new();
    }
    found
}

/// Walks a JSON document, noting keys seen twice in one object.
struct Duplicates<'a> {
    path: String,
    found: &'a mut Vec<String>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Duplicates<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Duplicates<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.found.push(path.clone());
            }
            map.next_value_seed(Duplicates {
                path,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let seed = Duplicates {
                path: format!("{}[{index}]", self.path),
                found: &mut *self.found,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Decodes a body that must be an object.
pub fn decode_object(content_type: &str, bytes: &[u8]) -> ApiResult<Value> {
    let value = decode(content_type, bytes)?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_fields_are_named_by_path() {
        let body = br#"{"metadata":{"name":"a","name":"b"},"spec":{"containers":[{"image":"x","image":"y"}]},"kind":"Pod","kind":"Pod"}"#;
        assert_eq!(
            duplicate_fields("application/json", body),
            ["metadata.name", "spec.containers[0].image", "kind"]
        );
        assert!(duplicate_fields("application/json", br#"{"a":{"b":1},"c":{"b":1}}"#).is_empty());
        assert!(duplicate_fields("application/json", b"{not json").is_empty());
        assert!(duplicate_fields("application/yaml", b"a: 1").is_empty());
    }

    #[test]
    fn decoding() {
        assert_eq!(decode("application/json", br#"{"a":1}"#).unwrap()["a"], 1);
        assert_eq!(decode("", br#"{"a":1}"#).unwrap()["a"], 1);
        assert_eq!(
            decode("application/yaml", b"a: 1\nb: [x]\n").unwrap()["b"][0],
            "x"
        );
        let err = decode("application/json", b"{").unwrap_err();
        assert_eq!((err.code, err.reason), (400, "BadRequest"));
        assert_eq!(decode("text/plain", b"").unwrap_err().code, 415);
        assert_eq!(
            decode_object("application/json", b"[1]").unwrap_err().code,
            400
        );
    }
}
