//! Writes the server makes itself (bootstrap objects), through the same
//! checks and storage steps as API requests.

use serde_json::Value;

use super::create::create_object;
use super::prepare::updated;
use super::update::{Saved, map_save_error, save};
use super::{Api, Query, storage_error};
use crate::error::ApiResult;
use crate::object;
use crate::registry::Resource;

/// Creates `obj` unless an object of that name exists; returns what is stored.
pub async fn ensure(
    api: &Api,
    resource: &'static Resource,
    namespace: &str,
    obj: Value,
) -> ApiResult<Value> {
    let key = resource.key(namespace, object::name(&obj));
    if let Some(existing) = api
        .store(resource)
        .get(&key)
        .await
        .map_err(|e| storage_error(e, resource, object::name(&obj)))?
    {
        return Ok(existing.value);
    }
    match create_object(api, &Query::default(), resource, namespace, obj.clone()).await {
        Ok((created, _)) => Ok(created),
        Err(e) if e.code == 409 => Ok(api
            .store(resource)
            .get(&key)
            .await
            .map_err(|e| storage_error(e, resource, ""))?
            .map(|s| s.value)
            .unwrap_or(obj)),
        Err(e) => Err(e),
    }
}

/// Creates `obj`, or replaces what is stored with it (keeping the server's metadata).
pub async fn upsert(
    api: &Api,
    resource: &'static Resource,
    namespace: &str,
    mut obj: Value,
) -> ApiResult<Value> {
    let name = object::name(&obj).to_string();
    let key = resource.key(namespace, &name);
    for _ in 0..super::update::RETRIES {
        let Some(current) = api
            .store(resource)
            .get(&key)
            .await
            .map_err(|e| storage_error(e, resource, &name))?
        else {
            match create_object(api, &Query::default(), resource, namespace, obj.clone()).await {
                Ok((created, _)) => return Ok(created),
                Err(e) if e.code == 409 => continue,
                Err(e) => return Err(e),
            }
        };
        super::prepare::check_kind(resource, &mut obj)?;
        super::prepare::check_namespace(resource, &mut obj, namespace)?;
        let new = updated(resource, None, &obj, &current.value);
        match save(
            api,
            &Query::default(),
            resource,
            &key,
            new,
            &current,
            None,
            false,
        )
        .await
        {
            Ok(Saved::Written(v) | Saved::Deleted(v)) => return Ok(v),
            Err(crate::storage::StorageError::Conflict) => continue,
            Err(e) => return Err(map_save_error(e, resource, &name)),
        }
    }
    Err(crate::error::ApiError::conflict(super::error_target(
        resource, &name,
    )))
}
