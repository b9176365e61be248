//! The API's handlers: one file per verb, all generic over the resource
//! table. `dispatch` turns a request into a verb on a target.

mod attach;
mod binding;
mod create;
mod delete;
pub mod discovery;
mod exec;
mod get;
pub mod internal;
mod list;
mod log;
mod portforward;

pub mod openapi;
pub mod patch;
pub mod prepare;
mod review;
mod scale;
mod update;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use crate::admission::Admission;
use crate::error::{ApiError, ApiResult, Target as ErrorTarget};
use crate::http::request::{self, Route, Target};
use crate::registry::{Resource, Sub};
use crate::storage::cache::{ResourceCache, WatchCache};
use crate::storage::{Storage, StorageError};

/// Everything the handlers share.
pub struct Api {
    pub storage: Storage,
    pub cache: WatchCache,
    pub admission: Admission,
    /// Watches without `timeoutSeconds` end after this long (clients re-watch).
    pub max_watch: Duration,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// TLS with the kubelet-client certificate, for `pods/log` (none when
    /// the server has no CA key to issue one).
    pub kubelet_client: Option<Arc<rustls::ClientConfig>>,
}

pub type SharedApi = Arc<Api>;

pub use log::kubelet_client_config as log_client_config;

/// The query parameters of a request, and who is writing.
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>, String);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let params = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        Query(params, String::new())
    }

    /// The field manager: `fieldManager`, else the user agent's first word
    /// (`kubectl/v1.32.4 (…)` → `kubectl`), as upstream names it.
    pub fn manager(&self) -> &str {
        match self.get("fieldManager") {
            Some(manager) => manager,
            None if !self.1.is_empty() => &self.1,
            None => "unknown",
        }
    }

    pub fn with_user_agent(mut self, agent: &str) -> Query {
        self.1 = agent.split('/').next().unwrap_or("").trim().to_string();
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    pub fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }
}

impl Api {
    /// The storage of `resource`, converting to and from its stored form.
    pub fn store<'a>(&'a self, resource: &'a Resource) -> crate::storage::ResourceStore<'a> {
        crate::storage::ResourceStore {
            storage: &self.storage,
            resource,
        }
    }

    pub fn cache(&self, resource: &Resource) -> ApiResult<&Arc<ResourceCache>> {
        self.cache
            .of(resource)
            .ok_or_else(|| ApiError::internal(format!("no watch cache for {}", resource.plural)))
    }
}

/// Names the object of a target, for error messages.
pub fn error_target<'a>(resource: &'a Resource, name: &'a str) -> ErrorTarget<'a> {
    ErrorTarget {
        resource: resource.plural,
        group: resource.group,
        name,
    }
}

/// The one place storage errors become API errors.
pub fn storage_error(err: StorageError, resource: &Resource, name: &str) -> ApiError {
    let target = error_target(resource, name);
    match err {
        StorageError::NotFound => ApiError::not_found(target),
        StorageError::AlreadyExists => ApiError::already_exists(target),
        StorageError::Conflict => ApiError::conflict(target),
        StorageError::ClaimTaken(claim) => ApiError::invalid(
            resource.kind,
            resource.group,
            name,
            &[crate::validation::FieldError::invalid(
                "spec",
                Value::String(claim.clone()),
                format!("{claim} is already allocated"),
            )],
        ),
        StorageError::Compacted => {
            ApiError::expired("The resourceVersion for the provided list is too old.")
        }
        StorageError::Unavailable(why) => {
            ApiError::service_unavailable(format!("the storage is unavailable: {why}"))
        }
        StorageError::Corrupt { key, why } => {
            ApiError::internal(format!("stored object {key} cannot be decoded: {why}"))
        }
        StorageError::Invalid(err) => *err,
    }
}

/// Answers every `/api` and `/apis` request.
pub async fn dispatch(State(api): State<SharedApi>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let query = Query::parse(parts.uri.query()).with_user_agent(agent);
    let result = match request::route(parts.uri.path()) {
        None => Err(ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: None,
            retry_after: None,
        }),
        Some(Route::CoreGroup) => Ok(discovery::core_group(&parts.headers)),
        Some(Route::Groups) => Ok(discovery::groups(&parts.headers)),
        Some(Route::Group(group)) => Ok(discovery::group(&group)),
        Some(Route::Resources { group, version }) => Ok(discovery::resources(&group, &version)),
        Some(Route::NotFound(message)) => Err(ApiError {
            code: 404,
            reason: "NotFound",
            message,
            details: None,
            retry_after: None,
        }),
        Some(Route::Objects(target)) if target.resource.review.is_some() => {
            let user = parts.extensions.get::<crate::authn::UserInfo>();
            review::review(&parts.method, &parts.headers, &target, user, body).await
        }
        // Exec (and attach, port-forward) upgrade the connection: they need
        // the request's upgrade handle.
        Some(Route::Objects(target)) if target.sub == Some(Sub::Exec) && target.name.is_some() => {
            let name = target.name.clone().unwrap_or_default();
            exec::exec(&api, &mut parts, &query, &target, &name).await
        }
        Some(Route::Objects(target))
            if target.sub == Some(Sub::Attach) && target.name.is_some() =>
        {
            let name = target.name.clone().unwrap_or_default();
            attach::attach(&api, &mut parts, &query, &target, &name).await
        }
        Some(Route::Objects(target))
            if target.sub == Some(Sub::PortForward) && target.name.is_some() =>
        {
            let name = target.name.clone().unwrap_or_default();
            portforward::port_forward(&api, &mut parts, &query, &target, &name).await
        }
        Some(Route::Objects(target)) => {
            objects(&api, &parts.method, &parts.headers, &query, target, body).await
        }
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn objects(
    api: &Api,
    method: &Method,
    headers: &HeaderMap,
    query: &Query,
    target: Target,
    body: Body,
) -> ApiResult<Response> {
    let resource = target.resource;
    let name = target.name.clone();
    match (method.clone(), name, target.sub) {
        (Method::GET, None, None) if query.flag("watch") || target.legacy_watch => {
            watch::watch(api, headers, query, &target).await
        }
        (Method::GET, None, None) => list::list(api, headers, query, &target).await,
        (Method::GET, Some(_), None) if target.legacy_watch => {
            watch::watch(api, headers, query, &target).await
        }
        (Method::GET, Some(name), None | Some(Sub::Status)) => {
            get::get(api, headers, query, &target, &name).await
        }
        (Method::POST, None, None) => create::create(api, headers, query, &target, body).await,
        (Method::PUT, Some(name), None | Some(Sub::Status) | Some(Sub::Finalize)) => {
            update::update(api, headers, query, &target, &name, body).await
        }
        (Method::PATCH, Some(name), None | Some(Sub::Status)) => {
            patch::patch(api, headers, query, &target, &name, body).await
        }
        (Method::DELETE, Some(name), None) => {
            delete::delete(api, query, &target, &name, body).await
        }
        (Method::DELETE, None, None) => delete::delete_collection(api, query, &target, body).await,
        (Method::GET | Method::PUT | Method::PATCH, Some(name), Some(Sub::Scale)) => {
            scale::scale(api, method, headers, query, &target, &name, body).await
        }
        (Method::POST, Some(name), Some(Sub::Binding)) => {
            binding::bind(api, query, &target, &name, body).await
        }
        (Method::POST, Some(name), Some(Sub::Eviction)) => {
            binding::evict(api, query, &target, &name, body).await
        }
        (Method::GET, Some(name), Some(Sub::Log)) => log::log(api, query, &target, &name).await,
        (_, Some(_), Some(Sub::Attach | Sub::PortForward | Sub::Proxy)) => {
            Err(ApiError::service_unavailable(format!(
                "{} of {} is not served by Skiff yet (exec, attach, log and portforward are)",
                target.sub.map_or("", Sub::name),
                resource.plural
            )))
        }
        (method, _, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            resource.qualified()
        ))),
    }
}

/// A JSON answer with a status code.
pub fn respond(status: StatusCode, value: &Value) -> Response {
    crate::http::negotiate::json_response(status, value)
}
