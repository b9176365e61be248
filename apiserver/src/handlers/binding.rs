//! `pods/binding` (how the scheduler assigns a pod to a node) and
//! `pods/eviction` (how `kubectl drain` removes pods).

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::update::RETRIES;
use super::{Api, Query, error_target, respond, storage_error};
use crate::error::{ApiError, ApiResult};
use crate::http::body;
use crate::http::request::Target;
use crate::object::{self, items, str_at};
use crate::storage::StorageError;

fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

/// Sets `spec.nodeName` once, and the PodScheduled condition.
pub async fn bind(
    api: &Api,
    query: &Query,
    target: &Target,
    name: &str,
    body: Body,
) -> ApiResult<Response> {
    let resource = target.resource;
    let bytes = body::read(body).await?;
    let binding = body::decode_object("application/json", &bytes)?;
    let node = str_at(&binding, &["target", "name"])
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "Binding",
                "",
                name,
                &[crate::validation::FieldError::required("target.name", "")],
            )
        })?;
    let key = resource.key(&target.namespace, name);
    for _ in 0..RETRIES {
        let current = api
            .store(resource)
            .get(&key)
            .await
            .map_err(|e| storage_error(e, resource, name))?
            .ok_or_else(|| ApiError::not_found(error_target(resource, name)))?;
        if let Some(bound) = str_at(&current.value, &["spec", "nodeName"]).filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict_because(
                error_target(resource, name),
                &format!("pod {name} is already assigned to node \"{bound}\""),
            ));
        }
        if object::get(&current.value, &["metadata", "deletionTimestamp"])
            .is_some_and(|t| !t.is_null())
        {
            return Err(ApiError::conflict_because(
                error_target(resource, name),
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        let mut pod = current.value.clone();
        object::set(&mut pod, &["spec", "nodeName"], json!(node));
        let mut conditions: Vec<Value> = items(&pod, &["status", "conditions"])
            .iter()
            .filter(|c| str_at(c, &["type"]) != Some("PodScheduled"))
            .cloned()
            .collect();
        conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": super::prepare::now()}));
        object::set(
            &mut pod,
            &["status", "conditions"],
            Value::Array(conditions),
        );
        if query.dry_run() {
            return Ok(respond(StatusCode::CREATED, &success(201)));
        }
        match api
            .store(resource)
            .update(&key, &pod, current.revision, &[], &[])
            .await
        {
            Ok(_) => return Ok(respond(StatusCode::CREATED, &success(201))),
            Err(StorageError::Conflict) => continue,
            Err(e) => return Err(storage_error(e, resource, name)),
        }
    }
    Err(ApiError::conflict(error_target(resource, name)))
}

/// Deletes the pod as a DELETE would (there are no disruption budgets to
/// consult yet), answering 201 Success as upstream's eviction does.
pub async fn evict(
    api: &Api,
    query: &Query,
    target: &Target,
    name: &str,
    body: Body,
) -> ApiResult<Response> {
    let bytes = body::read(body).await?;
    let eviction = if bytes.is_empty() {
        json!({})
    } else {
        body::decode_object("application/json", &bytes)?
    };
    let options = eviction.get("deleteOptions").cloned().unwrap_or(json!({}));
    let options_body = axum::body::Body::from(options.to_string());
    let response = super::delete::delete(api, query, target, name, options_body).await?;
    if response.status().is_success() {
        return Ok(respond(StatusCode::CREATED, &success(201)));
    }
    Ok(response)
}
