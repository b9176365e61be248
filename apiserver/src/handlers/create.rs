//! POST: create an object.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use super::prepare::{self, FieldValidation};
use super::{Api, Query, respond, storage_error};
use crate::admission;
use crate::error::{ApiError, ApiResult};
use crate::http::body;
use crate::http::request::Target;
use crate::object;
use crate::registry::Resource;

pub async fn create(
    api: &Api,
    headers: &HeaderMap,
    query: &Query,
    target: &Target,
    body: Body,
) -> ApiResult<Response> {
    let resource = target.resource;
    if resource.namespaced && target.namespace.is_empty() {
        return Err(ApiError::method_not_allowed(format!(
            "{} must be created in a namespace: POST to .../namespaces/<namespace>/{}",
            resource.plural, resource.plural
        )));
    }
    let bytes = body::read(body).await?;
    let content_type = body::content_type(headers);
    let obj = crate::protobuf::decode_body(resource, &content_type, &bytes)?;
    let duplicates = body::duplicate_fields(&content_type, &bytes);
    let mode = FieldValidation::from_query(query);
    let mut warnings = prepare::check_duplicates(resource, &duplicates, mode)?;
    let (created, more) = create_object(api, query, resource, &target.namespace, obj).await?;
    warnings.extend(more);
    Ok(with_warnings(
        respond(StatusCode::CREATED, &created),
        &warnings,
    ))
}

/// Creates `obj` (decoded, not yet checked) in `namespace`: the steps a
/// create shares with a server-side apply of a new object.
pub async fn create_object(
    api: &Api,
    query: &Query,
    resource: &'static Resource,
    namespace: &str,
    obj: Value,
) -> ApiResult<(Value, Vec<String>)> {
    create_object_as(api, query, resource, namespace, obj, None).await
}

/// As [`create_object`]; `applied`: the configuration of a server-side apply
/// that creates the object (its fields become the applier's).
pub async fn create_object_as(
    api: &Api,
    query: &Query,
    resource: &'static Resource,
    namespace: &str,
    obj: Value,
    applied: Option<&Value>,
) -> ApiResult<(Value, Vec<String>)> {
    let mode = FieldValidation::from_query(query);
    let (mut obj, warnings) = prepare::for_create(resource, obj, namespace, mode)?;
    let name = object::name(&obj).to_string();
    api.admission
        .namespace_lifecycle(&api.storage, resource, namespace, &name)
        .await?;
    if resource.plural == "services" && resource.group.is_empty() {
        api.admission.allocate(&api.storage, &mut obj, None).await?;
    }
    if resource.plural == "pods" && resource.group.is_empty() {
        api.admission.default_toleration_seconds(&mut obj);
    }
    let api_version = resource.api_version();
    let writer = crate::managed::Writer {
        manager: query.manager(),
        api_version: &api_version,
        subresource: None,
        apply: applied.is_some(),
    };
    let ty = skiff_patch::kubernetes_type(resource.group, resource.kind);
    match applied {
        Some(config) => crate::managed::record_apply_create(&mut obj, config, &writer, ty),
        None => crate::managed::record_update(&mut obj, None, &writer, ty),
    }
    if query.dry_run() {
        return Ok((obj, warnings));
    }
    let (claims, _) = admission::claim_changes(resource, &obj, None);
    let key = resource.key(namespace, &name);
    let stored = api
        .store(resource)
        .create(&key, &obj, &claims)
        .await
        .map_err(|e| storage_error(e, resource, &name))?;
    tracing::debug!(resource = resource.plural, namespace, name, "created");
    Ok((stored.value, warnings))
}

/// Adds a `Warning` header per warning (kubectl prints them).
pub fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let escaped = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            response.headers_mut().append("Warning", value);
        }
    }
    response.into_response()
}
