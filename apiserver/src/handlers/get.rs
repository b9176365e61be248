//! GET one object (also `.../status`, which returns the whole object).

use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::{Api, Query, respond, storage_error};
use crate::error::{ApiError, ApiResult};
use crate::http::negotiate::{self, Format, IncludeObject};
use crate::http::request::Target;

pub async fn get(
    api: &Api,
    headers: &HeaderMap,
    query: &Query,
    target: &Target,
    name: &str,
) -> ApiResult<Response> {
    let resource = target.resource;
    let key = resource.key(&target.namespace, name);
    // resourceVersion=0 means "any version is fine": the cache answers.
    let object = if query.get("resourceVersion") == Some("0") {
        api.cache(resource)?.get(&key).map(|o| (*o).clone())
    } else {
        api.store(resource)
            .get(&key)
            .await
            .map_err(|e| storage_error(e, resource, name))?
            .map(|s| s.value)
    };
    let object = object.ok_or_else(|| ApiError::not_found(super::error_target(resource, name)))?;
    Ok(match negotiate::format(headers) {
        Format::Json => respond(StatusCode::OK, &object),
        Format::PartialMetadata => respond(StatusCode::OK, &negotiate::partial_metadata(&object)),
        Format::Table => {
            let rv = object["metadata"]["resourceVersion"].clone();
            let include = IncludeObject::parse(query.get("includeObject"));
            respond(
                StatusCode::OK,
                &negotiate::table(
                    resource,
                    [&object],
                    json!({"resourceVersion": rv}),
                    include,
                    true,
                ),
            )
        }
    })
}
