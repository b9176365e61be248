//! `skiff-kubelet crictl <verb>`: a small debug CLI in the spirit of
//! upstream's `crictl`, to look inside a node through the CRI socket the
//! kubelet serves (`<root-dir>/runtime.sock` by default; `--runtime-endpoint
//! unix:///path` or `CONTAINER_RUNTIME_ENDPOINT` for another).
//!
//! It is a client like the kubelet itself: every call goes through
//! [`crate::runtime::CriClient`], the same client the pod workers use.
//! One file per verb: [`pods`], [`ps`], [`images`], [`pull`], [`exec`],
//! [`logs`], [`inspect`] (`inspect`, `inspectp`, `inspecti`). Each verb is a
//! pure formatting function (tables and JSON from CRI messages, tested with
//! canned responses) plus the calls that feed it. Ids may be given as any
//! unique prefix, as crictl allows ([`resolve`]).

pub mod exec;
pub mod images;
pub mod inspect;
pub mod logs;
pub mod pods;
pub mod ps;
pub mod pull;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use jiff::Timestamp;

use crate::runtime::{CriClient, RuntimeError};

/// The command line: where the runtime is, and the verb.
#[derive(Debug, clap::Args)]
pub struct Crictl {
    /// The CRI socket, `unix:///path` (default: `<root-dir>/runtime.sock`, the socket the
    /// kubelet's embedded runtime serves).
    #[arg(long, short = 'r', env = "CONTAINER_RUNTIME_ENDPOINT", global = true)]
    pub runtime_endpoint: Option<String>,
    /// The kubelet's --root-dir, where its runtime socket is by default.
    #[arg(long, default_value = "/var/lib/skiff-kubelet", global = true)]
    pub root_dir: PathBuf,
    /// How long one call may take (a pull is given no limit).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
pub enum Verb {
    /// List pod sandboxes.
    Pods(pods::Args),
    /// List containers (running ones; -a for all).
    Ps(ps::Args),
    /// List images.
    Images(images::Args),
    /// Pull an image.
    Pull(pull::Args),
    /// Run a command in a running container (ExecSync: no -i/-t).
    Exec(exec::Args),
    /// Print a container's log.
    Logs(logs::Args),
    /// Show the status of containers, as JSON.
    Inspect(inspect::Args),
    /// Show the status of pod sandboxes, as JSON.
    Inspectp(inspect::Args),
    /// Show the status of images, as JSON.
    Inspecti(inspect::Args),
}

/// What went wrong, always naming the socket and the call or object.
#[derive(Debug, thiserror::Error)]
pub enum CrictlError {
    #[error("--runtime-endpoint {0:?}: only unix:// sockets are supported")]
    Endpoint(String),
    #[error("{call} on {endpoint}: {}", describe(source))]
    Call {
        endpoint: String,
        call: &'static str,
        source: RuntimeError,
    },
    #[error("{call} on {endpoint}: no answer within {timeout:?}")]
    Timeout {
        endpoint: String,
        call: &'static str,
        timeout: Duration,
    },
    #[error("{what} {prefix:?}: none on {endpoint} has this id or id prefix")]
    NotFound {
        endpoint: String,
        what: &'static str,
        prefix: String,
    },
    #[error("{what} {prefix:?} is ambiguous on {endpoint}: it starts {}", .ids.join(", "))]
    Ambiguous {
        endpoint: String,
        what: &'static str,
        prefix: String,
        ids: Vec<String>,
    },
    #[error("the log of container {id} ({path}): {source}")]
    LogFile {
        id: String,
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// The runtime's message, with a hint when nothing answers on the socket.
fn describe(e: &RuntimeError) -> String {
    let RuntimeError::Call(status) = e;
    let mut message = status.message().to_string();
    // tonic keeps the connect error (no such file, permission denied) in
    // the source chain.
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = s.source();
    }
    if status.code() == tonic::Code::Unavailable {
        message.push_str(
            " (is the kubelet running? the socket is root's only, mode 0600: run as root)",
        );
    }
    message
}

/// The runtime at one endpoint: the kubelet's CRI client, with every call
/// named and bounded in time for the error messages.
pub struct Cri {
    pub client: CriClient,
    /// `unix:///path`, as the user would write it.
    pub endpoint: String,
    pub timeout: Option<Duration>,
}

impl Cri {
    /// The client for `args`' endpoint (dialled at the first call).
    pub fn new(args: &Crictl) -> Result<Cri, CrictlError> {
        let socket = socket_path(args.runtime_endpoint.as_deref(), &args.root_dir)?;
        Ok(Cri::at(&socket, Some(args.timeout)))
    }

    pub fn at(socket: &std::path::Path, timeout: Option<Duration>) -> Cri {
        Cri {
            client: CriClient::connect_lazy(socket),
            endpoint: format!("unix://{}", socket.display()),
            timeout,
        }
    }

    /// Runs one CRI call named `call`.
    pub async fn call<T>(
        &self,
        call: &'static str,
        f: impl Future<Output = Result<T, RuntimeError>>,
    ) -> Result<T, CrictlError> {
        let result = match self.timeout {
            Some(t) => tokio::time::timeout(t, f)
                .await
                .map_err(|_| CrictlError::Timeout {
                    endpoint: self.endpoint.clone(),
                    call,
                    timeout: t,
                })?,
            None => f.await,
        };
        result.map_err(|source| CrictlError::Call {
            endpoint: self.endpoint.clone(),
            call,
            source,
        })
    }

    /// The one id among `ids` that is `prefix` or starts with it.
    pub fn resolve<'a>(
        &self,
        what: &'static str,
        prefix: &str,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<String, CrictlError> {
        match resolve(prefix, ids) {
            Resolved::One(id) => Ok(id),
            Resolved::None => Err(CrictlError::NotFound {
                endpoint: self.endpoint.clone(),
                what,
                prefix: prefix.into(),
            }),
            Resolved::Many(ids) => Err(CrictlError::Ambiguous {
                endpoint: self.endpoint.clone(),
                what,
                prefix: prefix.into(),
                ids,
            }),
        }
    }

    /// The full id of the container `prefix` names.
    pub async fn container_id(&self, prefix: &str) -> Result<String, CrictlError> {
        use crate::runtime::Runtime;
        let all = self
            .call("ListContainers", self.client.list_containers(""))
            .await?;
        self.resolve("container", prefix, all.iter().map(|c| c.id.as_str()))
    }

    /// The full id of the pod sandbox `prefix` names.
    pub async fn pod_id(&self, prefix: &str) -> Result<String, CrictlError> {
        use crate::runtime::Runtime;
        let all = self
            .call("ListPodSandbox", self.client.list_pod_sandboxes(&[]))
            .await?;
        self.resolve("pod sandbox", prefix, all.iter().map(|p| p.id.as_str()))
    }
}

/// The socket of `--runtime-endpoint` (or `CONTAINER_RUNTIME_ENDPOINT`),
/// else the kubelet's default under `root_dir`.
pub fn socket_path(
    endpoint: Option<&str>,
    root_dir: &std::path::Path,
) -> Result<PathBuf, CrictlError> {
    match endpoint.filter(|e| !e.is_empty()) {
        None => Ok(root_dir.join("runtime.sock")),
        Some(e) => match e.strip_prefix("unix://") {
            Some(path) => Ok(PathBuf::from(path)),
            None if e.contains("://") => Err(CrictlError::Endpoint(e.into())),
            None => Ok(PathBuf::from(e)),
        },
    }
}

/// What a prefix names among ids.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    One(String),
    None,
    Many(Vec<String>),
}

/// An exact id wins; otherwise the ids that start with `prefix` (an empty
/// prefix names nothing).
pub fn resolve<'a>(prefix: &str, ids: impl IntoIterator<Item = &'a str>) -> Resolved {
    if prefix.is_empty() {
        return Resolved::None;
    }
    let mut matches: Vec<String> = Vec::new();
    for id in ids {
        if id == prefix {
            return Resolved::One(id.into());
        }
        if id.starts_with(prefix) && !matches.iter().any(|m| m == id) {
            matches.push(id.into());
        }
    }
    match matches.len() {
        0 => Resolved::None,
        1 => Resolved::One(matches.remove(0)),
        _ => {
            matches.sort();
            Resolved::Many(matches)
        }
    }
}

/// Runs the command line; the exit code is the verb's (exec: the command's).
pub fn run(args: Crictl) -> Result<ExitCode, CrictlError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let cri = Cri::new(&args)?;
        let mut stdout = std::io::stdout().lock();
        let code = dispatch(&cri, &args.verb, &mut stdout).await;
        stdout.flush()?;
        code
    })
}

/// One verb against `cri`, writing to `out` (exec's stderr goes to stderr).
pub async fn dispatch(
    cri: &Cri,
    verb: &Verb,
    out: &mut dyn Write,
) -> Result<ExitCode, CrictlError> {
    let now = Timestamp::now();
    match verb {
        Verb::Pods(a) => pods::run(cri, a, now, out).await?,
        Verb::Ps(a) => ps::run(cri, a, now, out).await?,
        Verb::Images(a) => images::run(cri, a, out).await?,
        Verb::Pull(a) => pull::run(cri, a, out).await?,
        Verb::Exec(a) => return exec::run(cri, a, out, &mut std::io::stderr()).await,
        Verb::Logs(a) => logs::run(cri, a, out).await?,
        Verb::Inspect(a) => inspect::containers(cri, a, out).await?,
        Verb::Inspectp(a) => inspect::pods(cri, a, out).await?,
        Verb::Inspecti(a) => inspect::images(cri, a, out).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A table as crictl prints it (Go's tabwriter with minimum width 20 and
/// padding 3): every column but the last padded to its widest cell + 3,
/// at least 20.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate().take(columns) {
            line.push_str(cell);
            if i + 1 < columns {
                let width = (widths[i] + 3).max(20);
                line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// An id as crictl shows it: without `strip` (`sha256:` for images), the
/// first 13 characters unless `no_trunc`.
pub fn short_id(id: &str, strip: &str, no_trunc: bool) -> String {
    if no_trunc {
        return id.to_string();
    }
    let id = id.strip_prefix(strip).unwrap_or(id);
    id.chars().take(13).collect()
}

/// "2 hours ago": the time since `created_ns` (nanoseconds since the
/// epoch) in the words of Go's `units.HumanDuration`, as crictl prints it.
pub fn ago(created_ns: i64, now: Timestamp) -> String {
    let then = Timestamp::from_nanosecond(i128::from(created_ns)).unwrap_or(Timestamp::UNIX_EPOCH);
    let nanos = (now.as_nanosecond() - then.as_nanosecond()).max(0);
    format!("{} ago", human_duration(nanos))
}

fn human_duration(nanos: i128) -> String {
    let seconds = nanos / 1_000_000_000;
    let minutes = seconds / 60;
    // Go rounds to the nearest hour here.
    let hours = (nanos + 1_800_000_000_000) / 3_600_000_000_000;
    if seconds < 1 {
        "Less than a second".into()
    } else if seconds == 1 {
        "1 second".into()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", seconds / 3600 / 24 / 365)
    }
}

/// A time for JSON output: RFC 3339 with nanoseconds, or `null` for 0.
pub fn rfc3339(nanos: i64) -> serde_json::Value {
    if nanos == 0 {
        return serde_json::Value::Null;
    }
    Timestamp::from_nanosecond(i128::from(nanos))
        .map(|t| serde_json::Value::String(t.to_string()))
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_resolve_to_one_id() {
        let ids = ["abc123", "abd456", "abc999", "x"];
        assert_eq!(
            resolve("abd", ids.iter().copied()),
            Resolved::One("abd456".into())
        );
        assert_eq!(
            resolve("abc", ids.iter().copied()),
            Resolved::Many(vec!["abc123".into(), "abc999".into()])
        );
        assert_eq!(resolve("zz", ids.iter().copied()), Resolved::None);
        assert_eq!(resolve("", ids.iter().copied()), Resolved::None);
        // An exact id wins over longer ones it prefixes.
        assert_eq!(
            resolve("ab", ["ab", "abc"].iter().copied()),
            Resolved::One("ab".into())
        );
    }

    #[tokio::test]
    async fn errors_name_the_socket() {
        let cri = Cri::at(std::path::Path::new("/run/x.sock"), None);
        let e = cri.resolve("container", "ab", ["abc", "abd"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "container \"ab\" is ambiguous on unix:///run/x.sock: it starts abc, abd"
        );
        let e = cri.resolve("pod sandbox", "q", ["abc"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pod sandbox \"q\": none on unix:///run/x.sock has this id or id prefix"
        );
    }

    #[test]
    fn endpoints_are_unix_sockets() {
        let root = std::path::Path::new("/var/lib/skiff-kubelet");
        assert_eq!(socket_path(None, root).unwrap(), root.join("runtime.sock"));
        assert_eq!(
            socket_path(Some("unix:///run/c.sock"), root).unwrap(),
            PathBuf::from("/run/c.sock")
        );
        assert_eq!(
            socket_path(Some("/run/c.sock"), root).unwrap(),
            PathBuf::from("/run/c.sock")
        );
        assert!(socket_path(Some("tcp://1.2.3.4:1"), root).is_err());
    }

    #[test]
    fn tables_pad_like_tabwriter() {
        let t = table(
            &["A", "LONG HEADER", "LAST"],
            &[vec![
                "x".into(),
                "a-cell-longer-than-twenty".into(),
                "z".into(),
            ]],
        );
        assert_eq!(
            t,
            "A                   LONG HEADER                 LAST\n\
             x                   a-cell-longer-than-twenty   z\n"
        );
    }

    #[test]
    fn durations_read_like_crictl() {
        let now: Timestamp = "2026-01-10T12:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap().as_nanosecond() as i64;
        let cases = [
            ("2026-01-10T12:00:00Z", "Less than a second ago"),
            ("2026-01-10T11:59:59Z", "1 second ago"),
            ("2026-01-10T11:59:15Z", "45 seconds ago"),
            ("2026-01-10T11:58:30Z", "About a minute ago"),
            ("2026-01-10T11:30:00Z", "30 minutes ago"),
            ("2026-01-10T10:50:00Z", "About an hour ago"),
            ("2026-01-09T12:00:00Z", "24 hours ago"),
            ("2026-01-05T12:00:00Z", "5 days ago"),
            ("2025-12-10T12:00:00Z", "4 weeks ago"),
            ("2025-06-10T12:00:00Z", "7 months ago"),
            ("2023-01-10T12:00:00Z", "3 years ago"),
            // A clock behind the runtime's: not negative.
            ("2026-01-10T12:00:05Z", "Less than a second ago"),
        ];
        for (then, want) in cases {
            assert_eq!(ago(at(then), now), want, "{then}");
        }
        assert_eq!(
            short_id("sha256:0123456789abcdef", "sha256:", false),
            "0123456789abc"
        );
        assert_eq!(short_id("0123456789abcdef", "", true), "0123456789abcdef");
    }
}
