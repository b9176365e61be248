//! The `scale` subresource: an `autoscaling/v1` Scale view of
//! `spec.replicas`, for `kubectl scale` and autoscalers.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::patch::{PatchType, apply_patch};
use super::prepare::updated;
use super::update::{RETRIES, Saved, map_save_error, save};
use super::{Api, Query, error_target, respond, storage_error};
use crate::error::{ApiError, ApiResult};
use crate::http::body;
use crate::http::request::Target;
use crate::object::{self, get, i64_at};
use crate::registry::Resource;
use crate::storage::StorageError;

/// The Scale of a workload.
fn scale_of(obj: &Value) -> Value {
    let meta = get(obj, &["metadata"]).cloned().unwrap_or(json!({}));
    let selector = crate::registry::table::label_selector_string(get(obj, &["spec", "selector"]));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": i64_at(obj, &["spec", "replicas"]).unwrap_or(0)},
        "status": {
            "replicas": i64_at(obj, &["status", "replicas"]).unwrap_or(0),
            "selector": if selector == "<none>" { String::new() } else { selector },
        },
    })
}

pub async fn scale(
    api: &Api,
    method: &Method,
    headers: &HeaderMap,
    query: &Query,
    target: &Target,
    name: &str,
    body: Body,
) -> ApiResult<Response> {
    let resource: &Resource = target.resource;
    let key = resource.key(&target.namespace, name);
    if method == Method::GET {
        let current = api
            .store(resource)
            .get(&key)
            .await
            .map_err(|e| storage_error(e, resource, name))?
            .ok_or_else(|| ApiError::not_found(error_target(resource, name)))?;
        return Ok(respond(StatusCode::OK, &scale_of(&current.value)));
    }
    let content_type = body::content_type(headers);
    let bytes = body::read(body).await?;
    let sent = body::decode(&content_type, &bytes)?;
    let patch_type = (method == Method::PATCH)
        .then(|| PatchType::from_content_type(&content_type))
        .transpose()?;
    for _ in 0..RETRIES {
        let current = api
            .store(resource)
            .get(&key)
            .await
            .map_err(|e| storage_error(e, resource, name))?
            .ok_or_else(|| ApiError::not_found(error_target(resource, name)))?;
        let scale = match patch_type {
            Some(kind) => apply_patch(kind, resource, &scale_of(&current.value), &sent)?,
            None => sent.clone(),
        };
        if patch_type.is_none()
            && let Some(rv) =
                object::str_at(&scale, &["metadata", "resourceVersion"]).filter(|rv| !rv.is_empty())
            && rv != current.revision.to_string()
        {
            return Err(ApiError::conflict(error_target(resource, name)));
        }
        let replicas = match get(&scale, &["spec", "replicas"]) {
            Some(Value::Number(n)) if n.as_i64().is_some_and(|r| r >= 0) => n.as_i64().unwrap_or(0),
            other => {
                return Err(ApiError::invalid(
                    "Scale",
                    "autoscaling",
                    name,
                    &[crate::validation::FieldError::invalid(
                        "spec.replicas",
                        other.cloned().unwrap_or(Value::Null),
                        "must be greater than or equal to 0",
                    )],
                ));
            }
        };
        let mut wanted = current.value.clone();
        object::set(&mut wanted, &["spec", "replicas"], json!(replicas));
        let new = updated(resource, None, &wanted, &current.value);
        let scale = Some(crate::registry::Sub::Scale);
        match save(api, query, resource, &key, new, &current, scale, false).await {
            Err(StorageError::Conflict) => continue,
            Err(e) => return Err(map_save_error(e, resource, name)),
            Ok(Saved::Written(value) | Saved::Deleted(value)) => {
                return Ok(respond(StatusCode::OK, &scale_of(&value)));
            }
        }
    }
    Err(ApiError::conflict(error_target(resource, name)))
}
