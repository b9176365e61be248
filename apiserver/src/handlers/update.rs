//! PUT: replace an object (or only its status), with optimistic
//! concurrency: a resourceVersion in the body must still be current, else
//! 409 Conflict. Without one the update is unconditional.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::create::with_warnings;
use super::prepare::{self, FieldValidation};
use super::{Api, Query, error_target, respond, storage_error};
use crate::admission;
use crate::error::{ApiError, ApiResult};
use crate::http::body;
use crate::http::request::Target;
use crate::object::{self, get};
use crate::registry::{Resource, Sub};
use crate::storage::{StorageError, Stored};

/// Unconditional writes retry this often when someone else wrote first.
pub const RETRIES: usize = 8;

pub async fn update(
    api: &Api,
    headers: &HeaderMap,
    query: &Query,
    target: &Target,
    name: &str,
    body: Body,
) -> ApiResult<Response> {
    let resource = target.resource;
    let bytes = body::read(body).await?;
    let content_type = body::content_type(headers);
    let obj = crate::protobuf::decode_body(resource, &content_type, &bytes)?;
    let duplicates = body::duplicate_fields(&content_type, &bytes);
    let mode = FieldValidation::from_query(query);
    let mut warnings = prepare::check_duplicates(resource, &duplicates, mode)?;
    let (obj, more) = prepare::for_update(resource, obj, &target.namespace, name, mode)?;
    warnings.extend(more);
    let expected: Option<i64> = match object::str_at(&obj, &["metadata", "resourceVersion"])
        .filter(|v| !v.is_empty())
    {
        Some(rv) => Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
        None => None,
    };
    let key = resource.key(&target.namespace, name);
    for _ in 0..RETRIES {
        let current = api
            .store(resource)
            .get(&key)
            .await
            .map_err(|e| storage_error(e, resource, name))?
            .ok_or_else(|| ApiError::not_found(error_target(resource, name)))?;
        if expected.is_some_and(|rv| rv != current.revision) {
            return Err(ApiError::conflict(error_target(resource, name)));
        }
        let new = prepare::updated(resource, target.sub, &obj, &current.value);
        match save(api, query, resource, &key, new, &current, target.sub, false).await {
            Err(StorageError::Conflict) if expected.is_none() => continue,
            Err(e) => return Err(map_save_error(e, resource, name)),
            Ok(Saved::Written(value) | Saved::Deleted(value)) => {
                return Ok(with_warnings(respond(StatusCode::OK, &value), &warnings));
            }
        }
    }
    Err(ApiError::conflict(error_target(resource, name)))
}

pub enum Saved {
    Written(Value),
    /// The update removed the last finalizer of an object being deleted, so
    /// it is gone now.
    Deleted(Value),
}

/// Validates and stores `new` over `current` (compare-and-swap on its
/// revision), recording who changed which fields unless this is a
/// server-side apply (which settled ownership itself).
#[allow(clippy::too_many_arguments)]
pub async fn save(
    api: &Api,
    query: &Query,
    resource: &Resource,
    key: &str,
    mut new: Value,
    current: &Stored,
    sub: Option<Sub>,
    apply: bool,
) -> Result<Saved, StorageError> {
    if !apply {
        let api_version = resource.api_version();
        // Status and scale writes are recorded as their own managers'
        // entries (`subresource: scale`), as upstream does.
        let subresource = sub
            .filter(|s| matches!(s, Sub::Status | Sub::Scale))
            .map(Sub::name);
        let writer = crate::managed::Writer {
            manager: query.manager(),
            api_version: &api_version,
            subresource,
            apply,
        };
        let ty = skiff_patch::kubernetes_type(resource.group, resource.kind);
        crate::managed::record_update(&mut new, Some(&current.value), &writer, ty);
    }
    if let Err(invalid) = prepare::validate(resource, &new, Some(&current.value)) {
        return Err(StorageError::Invalid(Box::new(invalid)));
    }
    if resource.plural == "services" && resource.group.is_empty() {
        api.admission
            .allocate(&api.storage, &mut new, Some(&current.value))
            .await
            .map_err(|e| StorageError::Invalid(Box::new(e)))?;
    }
    let deleting = get(&new, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_null());
    let mut finalizers = object::items(&new, &["metadata", "finalizers"]).len();
    if super::delete::is_namespace(resource) {
        finalizers += object::items(&new, &["spec", "finalizers"]).len();
    }
    if deleting && finalizers == 0 {
        if query.dry_run() {
            return Ok(Saved::Deleted(new));
        }
        let (_, released) = admission::claim_changes(resource, &Value::Null, Some(&current.value));
        let gone = api
            .store(resource)
            .delete(key, Some(current.revision), &released)
            .await?;
        return Ok(Saved::Deleted(gone.value));
    }
    // An update that changes nothing writes nothing, so watchers see no event.
    let mut unchanged = new.clone();
    object::set(
        &mut unchanged,
        &["metadata", "resourceVersion"],
        current.value["metadata"]["resourceVersion"].clone(),
    );
    if unchanged == current.value {
        return Ok(Saved::Written(current.value.clone()));
    }
    if query.dry_run() {
        return Ok(Saved::Written(new));
    }
    let (claims, released) = admission::claim_changes(resource, &new, Some(&current.value));
    let stored = api
        .store(resource)
        .update(key, &new, current.revision, &claims, &released)
        .await?;
    Ok(Saved::Written(stored.value))
}

pub fn map_save_error(err: StorageError, resource: &Resource, name: &str) -> ApiError {
    match err {
        StorageError::Invalid(api_error) => *api_error,
        other => storage_error(other, resource, name),
    }
}
