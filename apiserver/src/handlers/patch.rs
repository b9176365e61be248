//! PATCH: JSON merge patch, JSON patch, strategic merge patch and
//! server-side apply, on an object or its status.
//!
//! A patch is relative to whatever is stored, so when someone else writes
//! between the read and the write the patch is applied again to the new
//! object (as upstream does), unless it names a resourceVersion.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use skiff_patch::PatchError;

use super::create::{create_object_as, with_warnings};
use super::prepare::{self, FieldValidation};
use super::update::{RETRIES, Saved, map_save_error, save};
use super::{Api, Query, error_target, respond, storage_error};
use crate::error::{ApiError, ApiResult};
use crate::http::body;
use crate::http::request::Target;
use crate::object;
use crate::registry::{Resource, Sub};
use crate::storage::StorageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> ApiResult<PatchType> {
        Ok(match content_type {
            "application/merge-patch+json" => PatchType::Merge,
            "application/json-patch+json" => PatchType::Json,
            "application/strategic-merge-patch+json" => PatchType::Strategic,
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => PatchType::Apply,
            other => {
                return Err(ApiError::unsupported_media_type(other));
            }
        })
    }
}

/// Applies a patch of `kind` to `base`.
pub fn apply_patch(
    kind: PatchType,
    resource: &Resource,
    base: &Value,
    patch: &Value,
) -> ApiResult<Value> {
    let result = match kind {
        PatchType::Merge => Ok(skiff_patch::merge_patch(base, patch)),
        PatchType::Json => skiff_patch::json_patch(base, patch),
        // Server-side apply merges the applied configuration the way a
        // strategic merge patch does (keyed lists by their merge keys).
        PatchType::Strategic | PatchType::Apply => skiff_patch::strategic_merge_patch(
            base,
            patch,
            &skiff_patch::kubernetes_type(resource.group, resource.kind),
        ),
    };
    result.map_err(|e: PatchError| {
        if e.is_malformed() {
            ApiError::bad_request(e.to_string())
        } else {
            ApiError {
                code: 422,
                reason: "Invalid",
                message: e.to_string(),
                details: None,
                retry_after: None,
            }
        }
    })
}

pub async fn patch(
    api: &Api,
    headers: &HeaderMap,
    query: &Query,
    target: &Target,
    name: &str,
    body: Body,
) -> ApiResult<Response> {
    let resource = target.resource;
    let content_type = body::content_type(headers);
    let kind = PatchType::from_content_type(&content_type)?;
    let bytes = body::read(body).await?;
    let patch = body::decode(&content_type, &bytes)?;
    match kind {
        PatchType::Json if !patch.is_array() => {
            return Err(ApiError::bad_request(
                "a JSON patch must be an array of operations",
            ));
        }
        PatchType::Json => {}
        _ if !patch.is_object() => {
            return Err(ApiError::bad_request("the patch must be a JSON object"));
        }
        _ => {}
    }
    if kind == PatchType::Apply && query.get("fieldManager").is_none() {
        return Err(ApiError::bad_request(
            "PATCH, application/apply-patch+yaml requires fieldManager to be set",
        ));
    }
    let mode = FieldValidation::from_query(query);
    let key = resource.key(&target.namespace, name);
    // A resourceVersion in a merge or strategic patch is a precondition.
    let expected: Option<i64> =
        object::str_at(&patch, &["metadata", "resourceVersion"]).and_then(|rv| rv.parse().ok());

    for _ in 0..RETRIES {
        let current = api
            .store(resource)
            .get(&key)
            .await
            .map_err(|e| storage_error(e, resource, name))?;
        let Some(current) = current else {
            if kind == PatchType::Apply && target.sub.is_none() {
                let mut obj = patch.clone();
                object::set(&mut obj, &["metadata", "name"], json!(name));
                let (created, warnings) =
                    create_object_as(api, query, resource, &target.namespace, obj, Some(&patch))
                        .await?;
                return Ok(with_warnings(
                    respond(StatusCode::CREATED, &created),
                    &warnings,
                ));
            }
            return Err(ApiError::not_found(error_target(resource, name)));
        };
        if expected.is_some_and(|rv| rv != current.revision) {
            return Err(ApiError::conflict(error_target(resource, name)));
        }
        let mut patched = if kind == PatchType::Apply {
            // Server-side apply: merge, with field ownership and conflicts.
            let api_version = resource.api_version();
            let writer = crate::managed::Writer {
                manager: query.manager(),
                api_version: &api_version,
                subresource: None,
                apply: true,
            };
            let ty = skiff_patch::kubernetes_type(resource.group, resource.kind);
            crate::managed::apply(
                &current.value,
                &patch,
                &writer,
                ty,
                query.flag("force"),
                error_target(resource, name),
            )?
        } else {
            apply_patch(kind, resource, &current.value, &patch)?
        };
        let warnings =
            prepare::check_patched(resource, &mut patched, &target.namespace, name, mode)?;
        let sub = target.sub.filter(|s| *s == Sub::Status);
        let new = prepare::updated(resource, sub, &patched, &current.value);
        match save(
            api,
            query,
            resource,
            &key,
            new,
            &current,
            sub,
            kind == PatchType::Apply,
        )
        .await
        {
            Err(StorageError::Conflict) if expected.is_none() => continue,
            Err(e) => return Err(map_save_error(e, resource, name)),
            Ok(Saved::Written(value) | Saved::Deleted(value)) => {
                return Ok(with_warnings(respond(StatusCode::OK, &value), &warnings));
            }
        }
    }
    Err(ApiError::conflict(error_target(resource, name)))
}
