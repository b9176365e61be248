//! WATCH: a long-lived response of newline-delimited events, from the
//! watch cache.
//!
//! - `resourceVersion` unset or "0": every current object as ADDED, then changes;
//! - `resourceVersion=N`: every change after N, then live; N older than the
//!   history kept → a single ERROR event with a 410 Expired Status, which
//!   tells clients (client-go, kube-rs) to list again;
//! - label and field selectors turn changes into ADDED/DELETED when an
//!   object starts or stops matching;
//! - `allowWatchBookmarks=true`: a BOOKMARK with the current revision every
//!   `bookmark_interval`; `timeoutSeconds` ends the watch (default: a long time,
//!   because `kubectl get -w` exits as soon as the stream ends).

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde_json::json;
use tokio::sync::{broadcast::error::RecvError, mpsc};

use super::list::Filter;
use super::{Api, Query};
use crate::error::{ApiError, ApiResult};
use crate::http::negotiate::{self, Format, IncludeObject};
use crate::http::request::Target;
use crate::registry::Resource;
use crate::storage::cache::{CacheEvent, Cached, EventKind, WatchStartError};

/// How long a watch from a future resourceVersion waits for it.
const FUTURE_WAIT: Duration = Duration::from_secs(3);

/// Encodes events for one watcher.
struct Encoder {
    resource: &'static Resource,
    format: Format,
    include: IncludeObject,
    /// Tables carry their columns with the first event only.
    sent_columns: bool,
}

impl Encoder {
    fn event(&mut self, kind: &str, object: &Cached) -> Bytes {
        let object = match self.format {
            // The common case: the object's JSON, made once for every watcher.
            Format::Json => {
                let json = object.json();
                let mut line = Vec::with_capacity(json.len() + 40);
                line.extend_from_slice(b"{\"type\":\"");
                line.extend_from_slice(kind.as_bytes());
                line.extend_from_slice(b"\",\"object\":");
                line.extend_from_slice(json);
                line.extend_from_slice(b"}\n");
                return Bytes::from(line);
            }
            Format::PartialMetadata => negotiate::partial_metadata(object),
            Format::Table => {
                let rv = object["metadata"]["resourceVersion"].clone();
                let table = negotiate::table(
                    self.resource,
                    [&**object],
                    json!({"resourceVersion": rv}),
                    self.include,
                    !self.sent_columns,
                );
                self.sent_columns = true;
                table
            }
        };
        let mut line = json!({"type": kind, "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    }

    fn bookmark(&self, revision: i64) -> Bytes {
        let object = json!({"kind": self.resource.kind, "apiVersion": self.resource.api_version(), "metadata": {"resourceVersion": revision.to_string()}});
        let mut line = json!({"type": "BOOKMARK", "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    }
}

/// What a watcher with `filter` sees of an event, if anything.
fn visible<'a>(
    resource: &Resource,
    filter: &Filter,
    event: &'a CacheEvent,
) -> Option<(&'static str, &'a Cached)> {
    let now = filter.matches(resource, &event.object);
    let before = event
        .prev
        .as_deref()
        .is_some_and(|p| filter.matches(resource, p));
    match event.kind {
        EventKind::Added => now.then_some(("ADDED", &event.object)),
        EventKind::Deleted => (now || before).then_some(("DELETED", &event.object)),
        EventKind::Modified => match (before, now) {
            (true, true) => Some(("MODIFIED", &event.object)),
            (false, true) => Some(("ADDED", &event.object)),
            (true, false) => Some(("DELETED", &event.object)),
            (false, false) => None,
        },
    }
}

pub async fn watch(
    api: &Api,
    headers: &HeaderMap,
    query: &Query,
    target: &Target,
) -> ApiResult<Response> {
    let resource = target.resource;
    let cache = api.cache(resource)?.clone();
    let filter = Filter::parse(resource, query, &target.namespace, target.name.as_deref())?;
    let after = match query.get("resourceVersion") {
        None | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?,
        ),
    };
    if let Some(wanted) = after
        && !cache.wait_for(wanted, FUTURE_WAIT).await
    {
        return Err(ApiError::timeout(format!(
            "Too large resource version: {wanted}, current: {}",
            cache.revision()
        )));
    }
    let timeout = match query.get("timeoutSeconds") {
        Some(s) => Duration::from_secs(
            s.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {s:?}")))?,
        ),
        None => api.max_watch,
    };
    let bookmarks = query
        .flag("allowWatchBookmarks")
        .then_some(api.bookmark_interval);
    let mut encoder = Encoder {
        resource,
        format: negotiate::format(headers),
        include: IncludeObject::parse(query.get("includeObject")),
        sent_columns: false,
    };

    let (lines, body) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    match cache.subscribe(after) {
        Err(WatchStartError::Expired { asked, oldest }) => {
            let status =
                ApiError::expired(format!("too old resource version: {asked} ({oldest})")).status();
            let mut line = json!({"type": "ERROR", "object": status}).to_string();
            line.push('\n');
            let _ = lines.try_send(Ok(Bytes::from(line)));
        }
        Ok((first, mut live)) => {
            tokio::spawn(async move {
                let send = |bytes: Bytes| lines.send(Ok(bytes));
                for event in &first {
                    if let Some((kind, object)) = visible(resource, &filter, event)
                        && send(encoder.event(kind, object)).await.is_err()
                    {
                        return;
                    }
                }
                let deadline = tokio::time::sleep(timeout);
                tokio::pin!(deadline);
                let mut bookmark =
                    tokio::time::interval(bookmarks.unwrap_or(Duration::from_secs(3600)));
                bookmark.reset();
                loop {
                    let line = tokio::select! {
                        _ = &mut deadline => return,
                        _ = lines.closed() => return,
                        _ = bookmark.tick(), if bookmarks.is_some() => encoder.bookmark(cache.revision()),
                        event = live.recv() => match event {
                            Ok(event) => match visible(resource, &filter, &event) {
                                Some((kind, object)) => encoder.event(kind, object),
                                None => continue,
                            },
                            // Too slow, or the cache started a new history:
                            // end the watch; the client resumes from its
                            // last resourceVersion.
                            Err(RecvError::Lagged(_) | RecvError::Closed) => return,
                        },
                    };
                    if send(line).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
    let stream = tokio_stream::wrappers::ReceiverStream::new(body);
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .map_err(ApiError::internal)?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::time::Instant;

    fn event(kind: EventKind, labels: Value, prev: Option<Value>) -> CacheEvent {
        let object = Cached::new(
            json!({"metadata": {"name": "p", "namespace": "default", "labels": labels}}),
        );
        let prev = prev.map(|p| {
            Cached::new(json!({"metadata": {"name": "p", "namespace": "default", "labels": p}}))
        });
        CacheEvent::for_test(kind, object, prev, 5, Instant::now())
    }

    #[test]
    fn selector_transitions() {
        let pods = crate::registry::find("", "v1", "pods").unwrap();
        let filter = Filter::parse(
            pods,
            &Query::parse(Some("labelSelector=app%3Dweb")),
            "default",
            None,
        )
        .unwrap();
        let kind = |e: &CacheEvent| visible(pods, &filter, e).map(|(k, _)| k);
        assert_eq!(
            kind(&event(EventKind::Added, json!({"app": "web"}), None)),
            Some("ADDED")
        );
        assert_eq!(
            kind(&event(EventKind::Added, json!({"app": "db"}), None)),
            None
        );
        assert_eq!(
            kind(&event(
                EventKind::Modified,
                json!({"app": "web"}),
                Some(json!({"app": "web"}))
            )),
            Some("MODIFIED")
        );
        assert_eq!(
            kind(&event(
                EventKind::Modified,
                json!({"app": "web"}),
                Some(json!({"app": "db"}))
            )),
            Some("ADDED")
        );
        assert_eq!(
            kind(&event(
                EventKind::Modified,
                json!({"app": "db"}),
                Some(json!({"app": "web"}))
            )),
            Some("DELETED")
        );
        assert_eq!(
            kind(&event(
                EventKind::Modified,
                json!({"app": "db"}),
                Some(json!({"app": "db"}))
            )),
            None
        );
        assert_eq!(
            kind(&event(EventKind::Deleted, json!({"app": "web"}), None)),
            Some("DELETED")
        );
    }
}

#[cfg(test)]
mod encoding {
    use super::*;

    /// The bytes written from the cached JSON are the event upstream sends.
    #[test]
    fn json_events_are_whole_lines() {
        let pods = crate::registry::find("", "v1", "pods").unwrap();
        let mut encoder = Encoder {
            resource: pods,
            format: Format::Json,
            include: IncludeObject::Metadata,
            sent_columns: false,
        };
        let pod = Cached::new(json!({"metadata": {"name": "p", "resourceVersion": "7"}}));
        let line = encoder.event("MODIFIED", &pod);
        assert!(line.ends_with(b"\n"));
        let event: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            event,
            json!({"type": "MODIFIED", "object": {"metadata": {"name": "p", "resourceVersion": "7"}}})
        );
    }
}
