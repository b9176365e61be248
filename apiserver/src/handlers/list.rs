//! LIST: from the watch cache, or page by page from etcd.
//!
//! - With `limit` (kubectl always sends `limit=500`) or `continue`, pages
//!   come from etcd at one revision: the first page's, carried in the
//!   continue token. A token older than the compacted history is 410.
//! - Without, the list comes from the watch cache once it has caught up with
//!   etcd's current revision (a consistent read), or at once for
//!   `resourceVersion=0` ("any version").

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{Api, Query, respond, storage_error};
use crate::error::{ApiError, ApiResult};
use crate::http::negotiate::{self, Format, IncludeObject};
use crate::http::request::Target;
use crate::object;
use crate::registry::Resource;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::storage::cache::Cached;

/// How long a consistent read waits for the cache to catch up.
const CACHE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The selectors of a list or watch.
pub struct Filter {
    pub namespace: String,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn parse(
        resource: &Resource,
        query: &Query,
        namespace: &str,
        name: Option<&str>,
    ) -> ApiResult<Filter> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        let mut fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        for field in fields.fields() {
            let known = matches!(field, "metadata.name" | "metadata.namespace")
                || resource.strategy.field(&Value::Null, field).is_some();
            if !known {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
        }
        if let Some(name) = name {
            fields.0.push(("metadata.name".into(), name.into(), true));
        }
        Ok(Filter {
            namespace: namespace.to_string(),
            labels,
            fields,
        })
    }

    pub fn matches(&self, resource: &Resource, obj: &Value) -> bool {
        if resource.namespaced
            && !self.namespace.is_empty()
            && object::namespace(obj) != self.namespace
        {
            return false;
        }
        self.labels.matches_object(obj)
            && self.fields.matches(|field| match field {
                "metadata.name" => Some(object::name(obj).to_string()),
                "metadata.namespace" => Some(object::namespace(obj).to_string()),
                other => resource.strategy.field(obj, other),
            })
    }
}

/// Where a paginated list goes on.
#[derive(Debug)]
struct Continue {
    revision: i64,
    after: String,
}

impl Continue {
    fn encode(&self) -> String {
        let token = json!({"v": "meta.k8s.io/v1", "rv": self.revision, "start": self.after});
        base64::engine::general_purpose::STANDARD.encode(token.to_string())
    }

    fn decode(token: &str) -> ApiResult<Continue> {
        let bad = || {
            ApiError::bad_request(
                "continue key is not valid: the continue token is not one this server issued",
            )
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|_| bad())?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        Ok(Continue {
            revision: value.get("rv").and_then(Value::as_i64).ok_or_else(bad)?,
            after: value
                .get("start")
                .and_then(Value::as_str)
                .ok_or_else(bad)?
                .to_string(),
        })
    }
}

pub async fn list(
    api: &Api,
    headers: &HeaderMap,
    query: &Query,
    target: &Target,
) -> ApiResult<Response> {
    let resource = target.resource;
    let filter = Filter::parse(resource, query, &target.namespace, None)?;
    let limit: usize = match query.get("limit") {
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::bad_request(format!("limit must be a number, not {l:?}")))?,
        None => 0,
    };
    let token = query.get("continue").map(Continue::decode).transpose()?;
    let prefix = resource.list_prefix(&target.namespace);

    let (items, revision, next) = if limit > 0 || token.is_some() {
        paged(api, resource, &filter, &prefix, limit, token).await?
    } else {
        let cache = api.cache(resource)?;
        if query.get("resourceVersion") != Some("0") {
            let wanted = match query.get("resourceVersion") {
                Some(rv) => rv.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version {rv:?}"))
                })?,
                None => api
                    .storage
                    .current_revision()
                    .await
                    .map_err(|e| storage_error(e, resource, ""))?,
            };
            if !cache.wait_for(wanted, CACHE_WAIT).await {
                return Err(ApiError::timeout(format!(
                    "Too large resource version: {wanted}, current: {}",
                    cache.revision()
                )));
            }
        }
        let (mut objects, revision) = cache.list(&prefix);
        objects.retain(|o| filter.matches(resource, o));
        (objects, revision, None)
    };

    let mut meta = json!({"resourceVersion": revision.to_string()});
    if let Some(next) = &next {
        meta["continue"] = json!(next.encode());
    }
    Ok(match negotiate::format(headers) {
        Format::Table => {
            let include = IncludeObject::parse(query.get("includeObject"));
            let objects = items.iter().map(|o| &***o);
            respond(
                StatusCode::OK,
                &negotiate::table(resource, objects, meta, include, true),
            )
        }
        Format::PartialMetadata => {
            let items: Vec<Value> = items
                .iter()
                .map(|o| negotiate::partial_metadata(o))
                .collect();
            respond(
                StatusCode::OK,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items}),
            )
        }
        Format::Json => json_list(resource, &meta, &items),
    })
}

/// `{"kind":"PodList",…,"items":[…]}`, written from each object's cached
/// JSON rather than by cloning the objects into one document.
fn json_list(resource: &Resource, meta: &Value, items: &[Arc<Cached>]) -> Response {
    let head = json!({"kind": format!("{}List", resource.kind), "apiVersion": resource.api_version(), "metadata": meta});
    let head = head.to_string();
    let size = items.iter().map(|o| o.json().len() + 1).sum::<usize>();
    let mut body = Vec::with_capacity(head.len() + size + 16);
    // `head` is an object: reopen it before its closing brace.
    body.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    body.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item.json());
    }
    body.extend_from_slice(b"]}");
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Reads pages from etcd until `limit` matching objects are found (or the
/// keys run out), all at one revision.
async fn paged(
    api: &Api,
    resource: &Resource,
    filter: &Filter,
    prefix: &str,
    limit: usize,
    token: Option<Continue>,
) -> ApiResult<(Vec<Arc<Cached>>, i64, Option<Continue>)> {
    let (mut revision, mut after) = match token {
        Some(t) => (Some(t.revision), Some(t.after)),
        None => (None, None),
    };
    let mut items = Vec::new();
    let page_size = if limit == 0 { 500 } else { limit.max(1) };
    loop {
        let page = api.store(resource).list(prefix, after.as_deref(), page_size, revision).await.map_err(|e| match e {
            crate::storage::StorageError::Compacted => ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."),
            other => storage_error(other, resource, ""),
        })?;
        revision = Some(page.revision);
        let count = page.items.len();
        for (i, item) in page.items.into_iter().enumerate() {
            after = Some(item.key.clone());
            if filter.matches(resource, &item.value) {
                items.push(Cached::new(item.value));
            }
            if limit > 0 && items.len() == limit {
                let more = i + 1 < count || page.more;
                let next = more.then(|| Continue {
                    revision: revision.unwrap_or(0),
                    after: after.clone().unwrap_or_default(),
                });
                return Ok((items, revision.unwrap_or(0), next));
            }
        }
        if !page.more {
            return Ok((items, revision.unwrap_or(0), None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let token = Continue {
            revision: 42,
            after: "/registry/pods/default/web-1".into(),
        }
        .encode();
        let back = Continue::decode(&token).unwrap();
        assert_eq!(
            (back.revision, back.after.as_str()),
            (42, "/registry/pods/default/web-1")
        );
        assert_eq!(Continue::decode("not base64!").unwrap_err().code, 400);
    }

    #[test]
    fn filters() {
        let pods = crate::registry::find("", "v1", "pods").unwrap();
        let query = Query::parse(Some(
            "labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dn1",
        ));
        let filter = Filter::parse(pods, &query, "default", None).unwrap();
        let pod = |ns: &str, app: &str, node: &str| json!({"metadata": {"namespace": ns, "name": "p", "labels": {"app": app}}, "spec": {"nodeName": node}});
        assert!(filter.matches(pods, &pod("default", "web", "n1")));
        assert!(!filter.matches(pods, &pod("other", "web", "n1")));
        assert!(!filter.matches(pods, &pod("default", "db", "n1")));
        assert!(!filter.matches(pods, &pod("default", "web", "n2")));
        let bad = Query::parse(Some("fieldSelector=spec.nope%3Dx"));
        assert_eq!(
            Filter::parse(pods, &bad, "", None).err().unwrap().message,
            "field label not supported: spec.nope"
        );
    }
}
