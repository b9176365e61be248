//! Request bodies in Kubernetes' protobuf encoding.
//!
//! kubectl 1.32 sends protobuf for `kubectl create deployment|namespace|
//! configmap|secret|service|job` and does not retry with JSON. Decoding is
//! not implemented yet: such requests get a 415 that says so.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::http::body;
use crate::registry::Resource;

/// Decodes an object body in any supported encoding.
pub fn decode_body(_resource: &Resource, content_type: &str, bytes: &[u8]) -> ApiResult<Value> {
    if content_type == "application/vnd.kubernetes.protobuf" {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    body::decode_object(content_type, bytes)
}
