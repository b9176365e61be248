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
