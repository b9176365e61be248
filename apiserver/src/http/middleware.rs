//! What every request goes through: authentication, the in-flight limit,
//! and counting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::serve::{PeerUser, Trusted};
use crate::authn::{TokenFile, UserInfo, bearer_token};
use crate::error::ApiError;

/// Paths anyone may read, as upstream's `system:public-info-viewer` allows.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/version")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

pub struct Auth {
    pub tokens: Option<TokenFile>,
}

/// Client certificate, then bearer token; neither → 401.
pub async fn authenticate(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    let trusted = request.extensions().get::<Trusted>().is_some_and(|t| t.0);
    let from_cert = request
        .extensions()
        .get::<PeerUser>()
        .and_then(|p| p.0.clone());
    let from_token = || {
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        auth.tokens.as_ref()?.user(bearer_token(header)?)
    };
    let user = if trusted {
        Some(UserInfo {
            name: "system:admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        })
    } else {
        from_cert.or_else(from_token)
    };
    match user {
        Some(user) => {
            request.extensions_mut().insert(user);
        }
        None if is_public(request.uri().path()) => {}
        None => return ApiError::unauthorized().into_response(),
    }
    next.run(request).await
}

/// Requests that may run for minutes: they do not count against the limit.
fn is_long_running(request: &Request) -> bool {
    let query = request.uri().query().unwrap_or("");
    let path = request.uri().path();
    query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1" || p == "follow=true")
        || path.contains("/watch/")
        || ["/exec", "/attach", "/portforward", "/proxy"]
            .iter()
            .any(|s| path.ends_with(s) || path.contains(&format!("{s}/")))
}

pub struct Limits {
    pub inflight: Semaphore,
    pub requests: AtomicU64,
    pub rejected: AtomicU64,
    pub watches: AtomicU64,
}

/// At most `--max-requests-inflight` short requests at once; the rest get
/// 429 with `Retry-After: 1`, which client-go honours by retrying.
pub async fn limit(State(limits): State<Arc<Limits>>, request: Request, next: Next) -> Response {
    limits.requests.fetch_add(1, Relaxed);
    if is_long_running(&request) {
        limits.watches.fetch_add(1, Relaxed);
        return next.run(request).await;
    }
    let Ok(_permit) = limits.inflight.try_acquire() else {
        limits.rejected.fetch_add(1, Relaxed);
        return ApiError::too_many_requests("Too many requests, please try again later.", 1)
            .into_response();
    };
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_running() {
        let req = |uri: &str| {
            Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert!(is_long_running(&req(
            "/api/v1/pods?watch=true&resourceVersion=5"
        )));
        assert!(is_long_running(&req(
            "/api/v1/namespaces/x/pods/p/exec?command=sh"
        )));
        assert!(is_long_running(&req(
            "/api/v1/namespaces/x/pods/p/log?follow=true"
        )));
        assert!(!is_long_running(&req("/api/v1/pods?limit=500")));
        assert!(is_public("/healthz"));
        assert!(!is_public("/api/v1/pods"));
    }
}
