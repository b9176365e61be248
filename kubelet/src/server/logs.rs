//! `GET /containerLogs/<namespace>/<pod>/<container>`: what `kubectl logs`
//! reads, through the API server's `pods/log`.
//!
//! The runtime writes each container's output in the CRI log format, one
//! line per chunk: `<RFC 3339 time> <stdout|stderr> <P|F> <text>`, where `P`
//! marks a partial line continued by the next and `F` a full one. [`render`]
//! turns such a file back into the program's output with the query's
//! options (pure, table-tested); [`container_logs`] finds the file through
//! the runtime and, with `follow`, keeps reading while the container runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use jiff::Timestamp;
use skiff_proto::cri;

use crate::pods::observed::{CONTAINER_NAME, POD_NAME, POD_NAMESPACE};
use crate::runtime::Runtime;

/// The query's options, as upstream's `PodLogOptions`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<u64>,
    pub limit_bytes: Option<u64>,
    /// Only lines at or after this time (`sinceSeconds` or `sinceTime`).
    pub since: Option<Timestamp>,
}

impl LogOptions {
    /// From the query string; a malformed value is an error naming it.
    pub fn parse(q: &HashMap<String, String>, now: Timestamp) -> Result<LogOptions, String> {
        let flag = |k: &str| q.get(k).is_some_and(|v| v == "true" || v == "1");
        let number = |k: &str| -> Result<Option<u64>, String> {
            q.get(k)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{k}: not a non-negative number: {v:?}"))
                })
                .transpose()
        };
        let since = match (q.get("sinceSeconds"), q.get("sinceTime")) {
            (Some(s), _) => {
                let secs: i64 = s
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("sinceSeconds: must be a positive number: {s:?}"))?;
                Some(now - jiff::SignedDuration::from_secs(secs))
            }
            (None, Some(t)) => Some(
                t.parse::<Timestamp>()
                    .map_err(|e| format!("sinceTime: {t:?}: {e}"))?,
            ),
            (None, None) => None,
        };
        Ok(LogOptions {
            follow: flag("follow"),
            previous: flag("previous"),
            timestamps: flag("timestamps"),
            tail_lines: number("tailLines")?,
            limit_bytes: number("limitBytes")?,
            since,
        })
    }
}

/// One line of a CRI log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriLine<'a> {
    pub time: &'a str,
    pub stream: &'a str,
    pub partial: bool,
    pub text: &'a str,
}

/// Parses one line (without its newline); `None` for what is not CRI format.
pub fn parse_line(line: &str) -> Option<CriLine<'_>> {
    let mut parts = line.splitn(4, ' ');
    let time = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or("");
    if !matches!(stream, "stdout" | "stderr") {
        return None;
    }
    Some(CriLine {
        time,
        stream,
        partial: tag.split(':').next() == Some("P"),
        text,
    })
}

/// The program's output lines (partial chunks joined) with the time of
/// each line's first chunk.
fn whole_lines(file: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut open: Option<(String, String)> = None;
    for raw in file.lines() {
        let Some(l) = parse_line(raw) else { continue };
        let (time, mut text) = open
            .take()
            .unwrap_or_else(|| (l.time.to_string(), String::new()));
        text.push_str(l.text);
        if l.partial {
            open = Some((time, text));
        } else {
            text.push('\n');
            out.push((time, text));
        }
    }
    // A partial line at the end of the file is output as it stands.
    out.extend(open);
    out
}

/// The output `kubectl logs` prints for `file` with `opts` (no following).
pub fn render(file: &str, opts: &LogOptions) -> Vec<u8> {
    let mut lines = whole_lines(file);
    if let Some(since) = opts.since {
        lines.retain(|(t, _)| t.parse::<Timestamp>().is_ok_and(|t| t >= since));
    }
    if let Some(n) = opts.tail_lines {
        let skip = lines.len().saturating_sub(n as usize);
        lines.drain(..skip);
    }
    let mut out = Vec::new();
    for (time, text) in &lines {
        if opts.timestamps {
            out.extend_from_slice(time.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(text.as_bytes());
    }
    if let Some(limit) = opts.limit_bytes {
        out.truncate(limit as usize);
    }
    out
}

/// A plain-text error, which the API server turns into a `Status`.
fn error(code: StatusCode, message: String) -> Response {
    (code, message).into_response()
}

/// The instance whose log is asked for: the newest, or the one before it
/// with `previous`.
pub(crate) async fn find<R: Runtime>(
    runtime: &R,
    namespace: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<cri::ContainerStatus, Response> {
    let internal =
        |e: crate::runtime::RuntimeError| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let sandboxes = runtime
        .list_pod_sandboxes(&[(POD_NAMESPACE, namespace), (POD_NAME, pod)])
        .await
        .map_err(internal)?;
    if sandboxes.is_empty() {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("pod \"{pod}\" in namespace \"{namespace}\" is not running on this node"),
        ));
    }
    let mut instances = Vec::new();
    for sb in &sandboxes {
        for c in runtime.list_containers(&sb.id).await.map_err(internal)? {
            if c.labels.get(CONTAINER_NAME).map(String::as_str) == Some(container) {
                instances.push(c);
            }
        }
    }
    instances.sort_by_key(|c| (c.metadata.as_ref().map_or(0, |m| m.attempt), c.created_at));
    let pick = if previous {
        instances.iter().rev().nth(1)
    } else {
        instances.last()
    };
    let Some(c) = pick else {
        let message = if previous {
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
        } else {
            format!("container \"{container}\" in pod \"{pod}\" is waiting to start")
        };
        return Err(error(StatusCode::BAD_REQUEST, message));
    };
    runtime.container_status(&c.id).await.map_err(internal)
}

/// The handler.
pub async fn container_logs<R: Runtime>(
    State(runtime): State<Arc<R>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let opts = match LogOptions::parse(&query, Timestamp::now()) {
        Ok(o) => o,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let status = match find(
        runtime.as_ref(),
        &namespace,
        &pod,
        &container,
        opts.previous,
    )
    .await
    {
        Ok(s) => s,
        Err(r) => return r,
    };
    let path = status.log_path.clone();
    let text = match tokio::fs::read(&path).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the log of container \"{container}\": {e}"),
            );
        }
    };
    let first = render(&text, &opts);
    let running = status.state == cri::ContainerState::ContainerRunning as i32;
    if !opts.follow || !running || opts.limit_bytes.is_some_and(|l| first.len() as u64 >= l) {
        return plain(Body::from(first));
    }
    // Follow: what is already there (after tail/since), then whatever is
    // appended, line by line, until the container stops or the client goes.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    let id = status.id.clone();
    let offset = text.len();
    let follow_opts = LogOptions {
        tail_lines: None,
        since: None,
        ..opts.clone()
    };
    let sent = first.len() as u64;
    tokio::spawn(async move {
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
        follow(
            runtime.as_ref(),
            &id,
            &path,
            offset,
            sent,
            &follow_opts,
            &tx,
        )
        .await;
    });
    plain(Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ))
}

/// Follows the log file at `path` of container `id` from byte `offset`:
/// every complete line appended is rendered with `opts` (no tail or since:
/// the caller sent what was there) and sent, until the container is no
/// longer running, the receiver goes, or `opts.limit_bytes` is reached
/// (`sent` bytes already count against it). `kubectl logs -f` (through the
/// API server) and `skiff-kubelet crictl logs -f` both read through it.
pub async fn follow<R: Runtime>(
    runtime: &R,
    id: &str,
    path: &str,
    mut offset: usize,
    mut sent: u64,
    opts: &LogOptions,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
) {
    let mut carry = String::new();
    let mut last_check = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let bytes = tokio::fs::read(path).await.unwrap_or_default();
        if bytes.len() > offset {
            carry.push_str(&String::from_utf8_lossy(&bytes[offset..]));
            offset = bytes.len();
            // Only complete file lines; the rest waits for its newline.
            if let Some(end) = carry.rfind('\n') {
                let ready: String = carry.drain(..=end).collect();
                let mut chunk = render(&ready, opts);
                if let Some(limit) = opts.limit_bytes {
                    chunk.truncate(limit.saturating_sub(sent) as usize);
                }
                sent += chunk.len() as u64;
                if !chunk.is_empty() && tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
                if opts.limit_bytes.is_some_and(|l| sent >= l) {
                    return;
                }
            }
        } else if tx.is_closed() {
            return;
        }
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = std::time::Instant::now();
            let still = runtime
                .container_status(id)
                .await
                .is_ok_and(|s| s.state == cri::ContainerState::ContainerRunning as i32);
            if !still {
                return;
            }
        }
    }
}

fn plain(body: Body) -> Response {
    Response::builder()
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(body)
        .expect("static headers")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
2026-11-22T10:00:00.000000001Z stdout F first
2026-11-22T10:00:01.000000000Z stderr P par
2026-11-22T10:00:01.500000000Z stderr F tial
not a CRI line
2026-11-22T10:00:02.000000000Z stdout F third
2026-11-22T10:00:03.000000000Z stdout F
2026-11-22T10:00:04.000000000Z stdout P no newline yet";

    fn s(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn lines_parse_as_the_cri_writes_them() {
        assert_eq!(
            parse_line("2026-11-22T10:00:00Z stdout F hello world"),
            Some(CriLine {
                time: "2026-11-22T10:00:00Z",
                stream: "stdout",
                partial: false,
                text: "hello world"
            })
        );
        assert!(
            parse_line("2026-11-22T10:00:00Z stderr P x")
                .unwrap()
                .partial
        );
        assert_eq!(
            parse_line("2026-11-22T10:00:00Z stdout F").unwrap().text,
            ""
        );
        assert_eq!(parse_line("garbage"), None);
        assert_eq!(parse_line("t other F x"), None);
    }

    #[test]
    fn render_applies_the_options() {
        let at = |t: &str| Some(t.parse::<Timestamp>().unwrap());
        let cases = [
            (
                LogOptions::default(),
                "first\npartial\nthird\n\nno newline yet",
            ),
            (
                LogOptions {
                    tail_lines: Some(2),
                    ..Default::default()
                },
                "\nno newline yet",
            ),
            (
                LogOptions {
                    tail_lines: Some(0),
                    ..Default::default()
                },
                "",
            ),
            (
                LogOptions {
                    since: at("2026-11-22T10:00:01Z"),
                    tail_lines: Some(2),
                    ..Default::default()
                },
                "\nno newline yet",
            ),
            (
                LogOptions {
                    since: at("2026-11-22T10:00:01.2Z"),
                    ..Default::default()
                },
                // "partial" started at 10:00:01, before since.
                "third\n\nno newline yet",
            ),
            (
                LogOptions {
                    timestamps: true,
                    tail_lines: Some(3),
                    ..Default::default()
                },
                "2026-11-22T10:00:02.000000000Z third\n2026-11-22T10:00:03.000000000Z \n2026-11-22T10:00:04.000000000Z no newline yet",
            ),
            (
                LogOptions {
                    limit_bytes: Some(8),
                    ..Default::default()
                },
                "first\npa",
            ),
        ];
        for (opts, want) in cases {
            assert_eq!(s(render(FILE, &opts)), want, "{opts:?}");
        }
    }

    #[test]
    fn options_come_from_the_query() {
        let now: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        let o = LogOptions::parse(
            &q(&[
                ("follow", "true"),
                ("tailLines", "10"),
                ("sinceSeconds", "60"),
                ("timestamps", "true"),
            ]),
            now,
        )
        .unwrap();
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!(o.tail_lines, Some(10));
        assert_eq!(o.since, Some("2026-11-22T09:59:00Z".parse().unwrap()));
        let o = LogOptions::parse(&q(&[("sinceTime", "2026-11-22T09:00:00Z")]), now).unwrap();
        assert_eq!(o.since, Some("2026-11-22T09:00:00Z".parse().unwrap()));
        for bad in [
            q(&[("tailLines", "-1")]),
            q(&[("limitBytes", "x")]),
            q(&[("sinceSeconds", "0")]),
            q(&[("sinceTime", "yesterday")]),
        ] {
            let err = LogOptions::parse(&bad, now).unwrap_err();
            let key = bad.keys().next().unwrap();
            assert!(err.starts_with(key.as_str()), "{err}");
        }
    }
}
