//! `GET /containerLogs/<namespace>/<pod>/<container>`: what `kubectl logs`
//! reads, through the API server's `pods/log`.
//!
//! The runtime writes each container's output in the CRI log format, one
//! line per chunk: `<RFC 3339 time> <stdout|stderr> <P|F> <text>`, where `P`
//! marks a partial line continued by the next and `F` a full one. [`render`]
//! turns such a file back into the program's output with the query's
//! options (pure, table-tested); [`container_logs`] finds the file through
//! the runtime and, with `follow`, keeps reading while the container runs.
//!
//! The shim rotates the file (`<n>.log` → `<n>.log.<YYYYMMDD-HHMMSS>`, see
//! `skiff_runtime::container::shim`). As upstream, what is read — whole,
//! with `--tail` or `--since` — is the current file only; rotated files are
//! for node-level tools. Following survives a rotation: [`LogTail`] reads
//! the renamed file to its end, then the new one.

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
    // Only the current file, as upstream: rotated files are not read.
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the log of container \"{container}\": {e}"),
            );
        }
    };
    let first = render(&String::from_utf8_lossy(&bytes), &opts);
    let running = status.state == cri::ContainerState::ContainerRunning as i32;
    if !opts.follow || !running || opts.limit_bytes.is_some_and(|l| first.len() as u64 >= l) {
        return plain(Body::from(first));
    }
    // Follow: what is already there (after tail/since), then whatever is
    // appended, line by line, until the container stops or the client goes.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    let id = status.id.clone();
    let offset = bytes.len();
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
    offset: usize,
    mut sent: u64,
    opts: &LogOptions,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
) {
    let mut tail = LogTail::open(path, offset as u64).await;
    let mut carry: Vec<u8> = Vec::new();
    let mut last_check = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let bytes = tail.read().await.unwrap_or_default();
        if !bytes.is_empty() {
            carry.extend_from_slice(&bytes);
            // Only complete file lines; the rest waits for its newline.
            if let Some(end) = carry.iter().rposition(|b| *b == b'\n') {
                let ready: Vec<u8> = carry.drain(..=end).collect();
                let mut chunk = render(&String::from_utf8_lossy(&ready), opts);
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

/// What is appended to a container's log file, across rotations: the shim
/// renames the full file `<n>.log` to `<n>.log.<time>` and starts a new
/// `<n>.log`. This keeps the file it reads open (a renamed file stays
/// readable); when the path names another file, it reads the old one to its
/// end, then the new one from its start — as upstream's reader reopens the
/// file when it is created again. Each call must come before a second
/// rotation, or the file between is skipped (at the default 10Mi that is
/// megabytes a second of output).
pub struct LogTail {
    path: std::path::PathBuf,
    file: Option<tokio::fs::File>,
}

impl LogTail {
    /// From byte `offset` of the file now at `path` (none yet: from the
    /// start of the one to come). A file shorter than `offset` was rotated
    /// since the caller read it: read from its start.
    pub async fn open(path: impl Into<std::path::PathBuf>, offset: u64) -> LogTail {
        use tokio::io::AsyncSeekExt;
        let path = path.into();
        let file = match tokio::fs::File::open(&path).await {
            Ok(mut f) => {
                let len = f.metadata().await.map_or(0, |m| m.len());
                let at = if len >= offset { offset } else { 0 };
                f.seek(std::io::SeekFrom::Start(at)).await.ok().map(|_| f)
            }
            Err(_) => None,
        };
        LogTail { path, file }
    }

    /// The bytes appended since the last call (possibly none).
    pub async fn read(&mut self) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::MetadataExt;
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        if let Some(f) = &mut self.file {
            f.read_to_end(&mut out).await?;
        }
        // Between the shim's rename and its new file the path is missing:
        // keep the old file until the new one is there.
        let Ok(now) = tokio::fs::metadata(&self.path).await else {
            return Ok(out);
        };
        let same = match &self.file {
            Some(f) => f
                .metadata()
                .await
                .is_ok_and(|m| (m.dev(), m.ino()) == (now.dev(), now.ino())),
            None => false,
        };
        if !same {
            // Rotated: what was written to the old file before the rename
            // (nothing is after it), then the new file.
            if let Some(f) = &mut self.file {
                f.read_to_end(&mut out).await?;
            }
            let mut f = tokio::fs::File::open(&self.path).await?;
            f.read_to_end(&mut out).await?;
            self.file = Some(f);
        }
        Ok(out)
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
    #[tokio::test]
    async fn the_tail_reads_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("0.log");
        std::fs::write(&log, "a\nb\n").unwrap();
        let mut tail = LogTail::open(&log, 2).await;
        assert_eq!(s(tail.read().await.unwrap()), "b\n");
        assert_eq!(s(tail.read().await.unwrap()), "");
        // A line lands in the file just before it is renamed, then the
        // new file starts: both come, in order.
        let append = |p: &std::path::Path, t: &str| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap();
            f.write_all(t.as_bytes()).unwrap();
        };
        append(&log, "c\n");
        std::fs::rename(&log, dir.path().join("0.log.20260102-030405")).unwrap();
        // Between the rename and the new file: nothing lost, nothing twice.
        assert_eq!(s(tail.read().await.unwrap()), "c\n");
        append(&log, "d\n");
        assert_eq!(s(tail.read().await.unwrap()), "d\n");
        append(&log, "e\n");
        assert_eq!(s(tail.read().await.unwrap()), "e\n");
        // A file that is not there yet is read from its start.
        let mut later = LogTail::open(dir.path().join("1.log"), 0).await;
        assert_eq!(s(later.read().await.unwrap()), "");
        append(&dir.path().join("1.log"), "x\n");
        assert_eq!(s(later.read().await.unwrap()), "x\n");
    }

    #[tokio::test]
    async fn the_tail_follows_the_shims_rotating_log() {
        use skiff_runtime::container::shim::{LogRotation, RotatingLog, rotated_files};
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("0.log");
        let rotation = LogRotation {
            max_size: 150,
            max_files: 2,
        };
        let mut writer = RotatingLog::open(&log, rotation).unwrap();
        let mut tail = LogTail::open(&log, 0).await;
        let mut got = Vec::new();
        for i in 0..40 {
            writer
                .write_line("stdout", &format!("line {i}"), Timestamp::now())
                .unwrap();
            // Read after every other line: a rotation or none between reads.
            if i % 2 == 1 {
                got.extend(tail.read().await.unwrap());
            }
        }
        got.extend(tail.read().await.unwrap());
        // Rotated many times over, and only two files are left…
        assert_eq!(rotated_files(&log).unwrap().len(), 1);
        // …yet the follower saw every line, once, in order.
        let want: String = (0..40).map(|i| format!("line {i}\n")).collect();
        assert_eq!(s(render(&s(got), &LogOptions::default())), want);
    }
}
