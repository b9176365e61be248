//! Request bodies in Kubernetes' protobuf encoding.
//!
//! kubectl 1.32 sends protobuf for `kubectl create deployment|namespace|
//! configmap|secret|service|job`, `autoscale` and `auth can-i`, and does not
//! retry with JSON. `skiff_proto::kubernetes` decodes such bodies into
//! Kubernetes JSON (fields it does not know are refused, never dropped);
//! here the decoded kind must be the one the URL names.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::http::body;
use crate::registry::Resource;

/// Decodes an object body in any supported encoding.
pub fn decode_body(resource: &Resource, content_type: &str, bytes: &[u8]) -> ApiResult<Value> {
    if content_type != skiff_proto::kubernetes::MEDIA_TYPE {
        return body::decode_object(content_type, bytes);
    }
    let decoded = skiff_proto::kubernetes::decode(bytes)
        .map_err(|e| ApiError::bad_request(format!("cannot decode the protobuf body: {e}")))?;
    if decoded.kind != resource.kind || decoded.api_version != resource.api_version() {
        return Err(ApiError::bad_request(format!(
            "the body is a {} {}, but the request is for {} {}",
            decoded.api_version,
            decoded.kind,
            resource.api_version(),
            resource.kind
        )));
    }
    let mut object = decoded.object;
    object["apiVersion"] = json!(decoded.api_version);
    object["kind"] = json!(decoded.kind);
    Ok(object)
}
