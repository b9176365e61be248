//! DELETE: one object or a collection.
//!
//! An object with finalizers is only marked (`deletionTimestamp`) and stays
//! until the finalizers are removed; `propagationPolicy=Foreground` and
//! `Orphan` add the `foregroundDeletion` / `orphan` finalizers the garbage
//! collector acts on. A pod bound to a node is deleted gracefully: it is
//! marked with its grace period and its kubelet stops it and then deletes
//! it for good. Everything else is deleted at once.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::list::Filter;
use super::prepare;
use super::update::RETRIES;
use super::{Api, Query, error_target, respond, storage_error};
use crate::admission;
use crate::error::{ApiError, ApiResult};
use crate::http::body;
use crate::http::request::Target;
use crate::object::{self, get, i64_at, str_at};
use crate::registry::Resource;
use crate::storage::StorageError;

/// What the client asked for, from the query and the DeleteOptions body.
#[derive(Debug, Default)]
struct Options {
    grace_period: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
}

fn options(query: &Query, body: &[u8]) -> ApiResult<Options> {
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("DeleteOptions is not valid JSON: {e}")))?
    };
    let mut propagation = str_at(&body, &["propagationPolicy"])
        .map(String::from)
        .or_else(|| query.get("propagationPolicy").map(String::from));
    let orphan = body
        .get("orphanDependents")
        .and_then(Value::as_bool)
        .or_else(|| query.get("orphanDependents").map(|v| v == "true"));
    if propagation.is_none() && orphan == Some(true) {
        propagation = Some("Orphan".into());
    }
    if let Some(p) = &propagation
        && !["Orphan", "Background", "Foreground"].contains(&p.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
        )));
    }
    let grace_period = i64_at(&body, &["gracePeriodSeconds"])
        .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok()));
    Ok(Options {
        grace_period,
        propagation,
        uid: str_at(&body, &["preconditions", "uid"]).map(String::from),
        resource_version: str_at(&body, &["preconditions", "resourceVersion"]).map(String::from),
    })
}

pub async fn delete(
    api: &Api,
    query: &Query,
    target: &Target,
    name: &str,
    body: Body,
) -> ApiResult<Response> {
    let bytes = body::read(body).await?;
    let options = options(query, &bytes)?;
    let (status, value) = delete_one(
        api,
        query,
        target.resource,
        &target.namespace,
        name,
        &options,
    )
    .await?;
    Ok(respond(status, &value))
}

async fn delete_one(
    api: &Api,
    query: &Query,
    resource: &Resource,
    namespace: &str,
    name: &str,
    options: &Options,
) -> ApiResult<(StatusCode, Value)> {
    let key = resource.key(namespace, name);
    for _ in 0..RETRIES {
        let current = api
            .store(resource)
            .get(&key)
            .await
            .map_err(|e| storage_error(e, resource, name))?
            .ok_or_else(|| ApiError::not_found(error_target(resource, name)))?;
        let uid = str_at(&current.value, &["metadata", "uid"]).unwrap_or("");
        if let Some(want) = &options.uid
            && want != uid
        {
            return Err(ApiError::conflict_because(
                error_target(resource, name),
                &format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                ),
            ));
        }
        if let Some(want) = &options.resource_version
            && *want != current.revision.to_string()
        {
            return Err(ApiError::conflict_because(
                error_target(resource, name),
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                    current.revision
                ),
            ));
        }
        let mut marked = current.value.clone();
        let mut finalizers: Vec<Value> =
            object::items(&marked, &["metadata", "finalizers"]).to_vec();
        let extra = match options.propagation.as_deref() {
            Some("Foreground") => Some("foregroundDeletion"),
            Some("Orphan") => Some("orphan"),
            _ => None,
        };
        if let Some(extra) = extra
            && !finalizers.iter().any(|f| f == extra)
        {
            finalizers.push(json!(extra));
        }
        let already =
            get(&marked, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_null());
        let graceful_pod = resource.plural == "pods"
            && resource.group.is_empty()
            && str_at(&marked, &["spec", "nodeName"]).is_some_and(|n| !n.is_empty());
        let grace = options.grace_period.unwrap_or_else(|| {
            i64_at(&marked, &["spec", "terminationGracePeriodSeconds"]).unwrap_or(30)
        });
        let wait_for_kubelet = graceful_pod && grace > 0;
        // A namespace waits for the namespace controller to empty it and
        // remove its `kubernetes` finalizer (in spec.finalizers).
        let namespace_content =
            is_namespace(resource) && !object::items(&marked, &["spec", "finalizers"]).is_empty();

        if finalizers.is_empty() && !wait_for_kubelet && !namespace_content {
            if query.dry_run() {
                return Ok((StatusCode::OK, current.value));
            }
            let (_, released) =
                admission::claim_changes(resource, &Value::Null, Some(&current.value));
            match api
                .store(resource)
                .delete(&key, Some(current.revision), &released)
                .await
            {
                Ok(gone) => return Ok((StatusCode::OK, deleted_answer(resource, gone.value))),
                Err(StorageError::Conflict) => continue,
                Err(e) => return Err(storage_error(e, resource, name)),
            }
        }
        // Mark it; whoever finishes the deletion (the garbage collector, a
        // controller removing its finalizer, the kubelet) deletes it later.
        if already && !wait_for_kubelet && extra.is_none() {
            return Ok((StatusCode::ACCEPTED, current.value));
        }
        if namespace_content {
            object::set(&mut marked, &["status", "phase"], json!("Terminating"));
        }
        let meta = object::object_at(&mut marked, &["metadata"]);
        if !finalizers.is_empty() {
            meta.insert("finalizers".into(), Value::Array(finalizers));
        }
        let grace = if wait_for_kubelet { grace } else { 0 };
        if !already || wait_for_kubelet {
            let when = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
            let shorter = get(&marked, &["metadata", "deletionGracePeriodSeconds"])
                .and_then(Value::as_i64)
                .is_none_or(|g| grace < g);
            if !already || shorter {
                object::set(
                    &mut marked,
                    &["metadata", "deletionTimestamp"],
                    json!(when.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                );
                object::set(
                    &mut marked,
                    &["metadata", "deletionGracePeriodSeconds"],
                    json!(grace),
                );
            }
        }
        if query.dry_run() {
            return Ok((StatusCode::ACCEPTED, marked));
        }
        match api
            .store(resource)
            .update(&key, &marked, current.revision, &[], &[])
            .await
        {
            Ok(stored) => return Ok((StatusCode::ACCEPTED, stored.value)),
            Err(StorageError::Conflict) => continue,
            Err(e) => return Err(storage_error(e, resource, name)),
        }
    }
    Err(ApiError::conflict(error_target(resource, name)))
}

pub fn is_namespace(resource: &Resource) -> bool {
    resource.group.is_empty() && resource.plural == "namespaces"
}

/// Pods answer with the deleted object; other kinds with a Success Status,
/// as upstream does.
fn deleted_answer(resource: &Resource, gone: Value) -> Value {
    if resource.plural == "pods" && resource.group.is_empty() {
        return gone;
    }
    let mut details = json!({"name": object::name(&gone), "kind": resource.plural, "uid": str_at(&gone, &["metadata", "uid"]).unwrap_or("")});
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

pub async fn delete_collection(
    api: &Api,
    query: &Query,
    target: &Target,
    body: Body,
) -> ApiResult<Response> {
    let resource = target.resource;
    let bytes = body::read(body).await?;
    let options = options(query, &bytes)?;
    let filter = Filter::parse(resource, query, &target.namespace, None)?;
    let page = api
        .store(resource)
        .list(&resource.list_prefix(&target.namespace), None, 0, None)
        .await
        .map_err(|e| storage_error(e, resource, ""))?;
    let mut deleted = Vec::new();
    for item in page
        .items
        .into_iter()
        .filter(|i| filter.matches(resource, &i.value))
    {
        let (name, namespace) = (
            object::name(&item.value).to_string(),
            object::namespace(&item.value).to_string(),
        );
        match delete_one(api, query, resource, &namespace, &name, &options).await {
            Ok((_, value)) if value.get("kind") != Some(&json!("Status")) => deleted.push(value),
            Ok(_) => deleted.push(item.value),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let _ = prepare::now;
    let list = json!({"kind": format!("{}List", resource.kind), "apiVersion": resource.api_version(), "metadata": {"resourceVersion": page.revision.to_string()}, "items": deleted});
    Ok(respond(StatusCode::OK, &list))
}
