//! Every error the API server answers with, and the one place that turns
//! them into Kubernetes `Status` objects.
//!
//! kubectl prints `Error from server (<reason>): <message>`, except for 422
//! `Invalid`, whose message it rebuilds from `details.causes`; so reasons,
//! messages and details follow upstream to the letter (see
//! `../shared/kubectl-wire.md` §14).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::validation::FieldError;

/// An error answered as a `Status`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` of the Status, when there are any.
    pub details: Option<Value>,
    /// Seconds, for a `Retry-After` header (client-go retries such answers).
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// What an error names: the resource (plural), its group, and the object.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub resource: &'a str,
    pub group: &'a str,
    pub name: &'a str,
}

impl Target<'_> {
    /// `deployments.apps "web"` or `pods "web"`: how upstream names an object.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            format!("{} \"{}\"", self.resource, self.name)
        } else {
            format!("{}.{} \"{}\"", self.resource, self.group, self.name)
        }
    }

    fn details(&self) -> Value {
        let mut details = json!({"name": self.name, "kind": self.resource});
        if !self.group.is_empty() {
            details["group"] = json!(self.group);
        }
        details
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn not_found(target: Target<'_>) -> Self {
        ApiError {
            details: Some(target.details()),
            ..Self::new(404, "NotFound", format!("{} not found", target.qualified()))
        }
    }

    pub fn already_exists(target: Target<'_>) -> Self {
        ApiError {
            details: Some(target.details()),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} already exists", target.qualified()),
            )
        }
    }

    /// The optimistic-concurrency conflict: the object changed since it was read.
    pub fn conflict(target: Target<'_>) -> Self {
        Self::conflict_because(
            target,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn conflict_because(target: Target<'_>, why: &str) -> Self {
        ApiError {
            details: Some(target.details()),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {}: {why}",
                    target.qualified()
                ),
            )
        }
    }

    /// 422 with one cause per field error. `kind` is the Kind (not the
    /// resource), since kubectl prints "The Deployment "x" is invalid".
    pub fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let listed: Vec<String> = errors.iter().map(FieldError::to_string).collect();
        let summary = match listed.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.reason(), "message": e.message(), "field": e.field}))
            .collect();
        let mut details = json!({"name": name, "kind": kind, "causes": causes});
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        ApiError {
            details: Some(details),
            ..Self::new(
                422,
                "Invalid",
                format!("{qualified} \"{name}\" is invalid: {summary}"),
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"
            ),
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    pub fn too_many_requests(message: impl Into<String>, retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(429, "TooManyRequests", message)
        }
    }

    /// 410 for a resourceVersion or continue token older than the history kept.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Gone", message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(504, "Timeout", message)
        }
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(503, "ServiceUnavailable", message)
        }
    }

    /// The Status object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        if let Some(seconds) = self.retry_after {
            // Indexing a missing key of an object (or null) creates it.
            status["details"]["retryAfterSeconds"] = json!(seconds);
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code >= 500 {
            tracing::warn!(code = self.code, reason = self.reason, message = %self.message, "request failed");
        }
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.status().to_string();
        let mut response =
            (code, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::FieldError;

    #[test]
    fn messages_match_upstream() {
        let t = Target {
            resource: "deployments",
            group: "apps",
            name: "web",
        };
        assert_eq!(
            ApiError::not_found(t).message,
            "deployments.apps \"web\" not found"
        );
        let t = Target {
            resource: "pods",
            group: "",
            name: "box",
        };
        assert_eq!(
            ApiError::already_exists(t).message,
            "pods \"box\" already exists"
        );
        assert_eq!(
            ApiError::conflict(t).message,
            "Operation cannot be fulfilled on pods \"box\": the object has been modified; please apply your changes to the latest version and try again"
        );
        let status = ApiError::not_found(Target {
            resource: "pods",
            group: "",
            name: "x",
        })
        .status();
        assert_eq!(status["details"], json!({"name": "x", "kind": "pods"}));
        assert_eq!(status["code"], 404);
    }

    #[test]
    fn invalid_lists_causes() {
        let one = [FieldError::invalid(
            "spec.replicas",
            json!(-1),
            "must be greater than or equal to 0",
        )];
        let err = ApiError::invalid("Deployment", "apps", "bad", &one);
        assert_eq!(
            err.message,
            "Deployment.apps \"bad\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        let two = [one[0].clone(), FieldError::required("spec.selector", "")];
        let err = ApiError::invalid("Deployment", "apps", "bad", &two);
        assert!(err.message.ends_with("is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.selector: Required value]"), "{}", err.message);
        let status = err.status();
        assert_eq!(status["details"]["kind"], "Deployment");
        assert_eq!(
            status["details"]["causes"][1],
            json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"})
        );
    }
}
