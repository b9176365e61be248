//! Container probes — startup, liveness, readiness — as the kubelet runs
//! them.
//!
//! Each running container instance gets one [`Tracker`] per probe it
//! declares; the pod's worker asks every sync (once a second) which are
//! [`Tracker::due`], runs those ([`run`]: `exec` through the runtime's
//! ExecSync, `httpGet` and `tcpSocket` from the node to the pod's address)
//! and [`Tracker::record`]s the outcome. Thresholds turn outcomes into a
//! verdict, as upstream's prober does:
//!
//! - readiness: not ready until `successThreshold` successes in a row;
//!   `failureThreshold` failures in a row make it not ready again (the
//!   Endpoints controllers then take the pod out of its Services);
//! - liveness: alive until `failureThreshold` failures in a row; then the
//!   container is killed and restarted per the pod's `restartPolicy`;
//! - startup: until it succeeds, neither of the others runs; failing it
//!   `failureThreshold` times kills the container like liveness does.
//!
//! A new container instance (a restart) starts over with fresh trackers.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, PodSpec, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::runtime::Runtime;

const NANOS: i64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Startup, Kind::Liveness, Kind::Readiness];

    /// As events say it: "Readiness probe failed: …".
    pub fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }

    /// This kind's probe of the container `name` in `spec`.
    pub fn of_spec<'a>(self, spec: &'a PodSpec, name: &str) -> Option<&'a Probe> {
        spec.containers
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| self.of(c))
    }

    pub fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            Kind::Startup => c.startup_probe.as_ref(),
            Kind::Liveness => c.liveness_probe.as_ref(),
            Kind::Readiness => c.readiness_probe.as_ref(),
        }
    }
}

/// A probe's timings, with upstream's defaults for what the spec leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: i64,
    pub period: i64,
    pub timeout: i64,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub fn of(p: &Probe, kind: Kind) -> Timing {
        let positive = |v: Option<i32>, default: i64| v.map_or(default, |v| i64::from(v.max(1)));
        Timing {
            initial_delay: p.initial_delay_seconds.map_or(0, |v| i64::from(v.max(0))),
            period: positive(p.period_seconds, 10),
            timeout: positive(p.timeout_seconds, 1),
            // Validation makes it 1 for liveness and startup; be as strict.
            success_threshold: match kind {
                Kind::Readiness => positive(p.success_threshold, 1) as u32,
                _ => 1,
            },
            failure_threshold: positive(p.failure_threshold, 3) as u32,
        }
    }
}

/// One probe of one container instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracker {
    pub container_id: String,
    started_at: i64,
    last_run: Option<i64>,
    successes: u32,
    failures: u32,
    /// The verdict so far: `None` until a threshold is reached (readiness
    /// then counts as not ready, startup as not started, liveness as alive).
    pub verdict: Option<bool>,
}

impl Tracker {
    /// For the instance `container_id` that started at `started_at` (ns).
    pub fn new(container_id: &str, started_at: i64) -> Tracker {
        Tracker {
            container_id: container_id.into(),
            started_at,
            last_run: None,
            successes: 0,
            failures: 0,
            verdict: None,
        }
    }

    /// Whether the probe should run at `now` (ns): after `initialDelaySeconds`
    /// from the start, then every `periodSeconds`. The worker looks once a
    /// second, so half a second of slack keeps a 10 s period at 10 s rather
    /// than drifting to 11.
    pub fn due(&self, t: &Timing, now: i64) -> bool {
        if now < self.started_at + t.initial_delay * NANOS {
            return false;
        }
        match self.last_run {
            None => true,
            Some(last) => now + NANOS / 2 >= last + t.period * NANOS,
        }
    }

    /// Counts one outcome at `now`; answers the new verdict when it changes.
    pub fn record(&mut self, t: &Timing, ok: bool, now: i64) -> Option<bool> {
        self.last_run = Some(now);
        if ok {
            self.successes += 1;
            self.failures = 0;
            if self.successes >= t.success_threshold && self.verdict != Some(true) {
                self.verdict = Some(true);
                return Some(true);
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.failures >= t.failure_threshold && self.verdict != Some(false) {
                self.verdict = Some(false);
                return Some(false);
            }
        }
        None
    }
}

/// What a probe does, resolved against its container and pod address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Exec(Vec<String>),
    Http {
        host: String,
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    Tcp {
        host: String,
        port: u16,
    },
    /// Handlers the kubelet cannot run (HTTPS, gRPC): they fail with why.
    Unsupported(String),
}

/// A port number, or the name of one of the container's ports.
fn port(p: &IntOrString, c: &Container) -> Result<u16, String> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("invalid port number: {n}")),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name.as_str()))
            .and_then(|cp| u16::try_from(cp.container_port).ok())
            .ok_or_else(|| format!("couldn't find port: {name} in {}", c.name)),
    }
}

/// The probe's handler as a [`Check`]; the host is the pod's IP unless the
/// probe names one.
pub fn check(p: &Probe, c: &Container, pod_ip: &str) -> Check {
    if let Some(exec) = &p.exec {
        return Check::Exec(exec.command.clone().unwrap_or_default());
    }
    if let Some(h) = &p.http_get {
        if h.scheme.as_deref().is_some_and(|s| s != "HTTP") {
            return Check::Unsupported(format!(
                "{} probes are not supported by this kubelet",
                h.scheme.as_deref().unwrap_or_default()
            ));
        }
        return match port(&h.port, c) {
            Ok(port) => Check::Http {
                host: h.host.clone().unwrap_or_else(|| pod_ip.into()),
                port,
                path: match h.path.as_deref() {
                    None | Some("") => "/".into(),
                    Some(p) if p.starts_with('/') => p.into(),
                    Some(p) => format!("/{p}"),
                },
                headers: h
                    .http_headers
                    .iter()
                    .flatten()
                    .map(|x| (x.name.clone(), x.value.clone()))
                    .collect(),
            },
            Err(e) => Check::Unsupported(e),
        };
    }
    if let Some(t) = &p.tcp_socket {
        return match port(&t.port, c) {
            Ok(port) => Check::Tcp {
                host: t.host.clone().unwrap_or_else(|| pod_ip.into()),
                port,
            },
            Err(e) => Check::Unsupported(e),
        };
    }
    if p.grpc.is_some() {
        return Check::Unsupported("gRPC probes are not supported by this kubelet".into());
    }
    Check::Unsupported("the probe has no handler".into())
}

/// One probe run: success, or failure with upstream's wording of why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub message: String,
}

impl Outcome {
    fn fail(message: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            message: message.into(),
        }
    }
    fn pass() -> Outcome {
        Outcome {
            ok: true,
            message: String::new(),
        }
    }
}

fn addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Runs `check` against container `id` within `timeout` seconds.
pub async fn run<R: Runtime>(runtime: &R, id: &str, check: &Check, timeout: i64) -> Outcome {
    let limit = Duration::from_secs(timeout.max(1) as u64);
    match check {
        Check::Unsupported(why) => Outcome::fail(why.clone()),
        Check::Exec(cmd) => match runtime.exec_sync(id, cmd, timeout.max(1)).await {
            Ok(r) if r.exit_code == 0 => Outcome::pass(),
            Ok(r) => {
                let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
                out.push_str(&String::from_utf8_lossy(&r.stderr));
                Outcome::fail(out.trim_end().to_string())
            }
            Err(e) => Outcome::fail(e.to_string()),
        },
        Check::Tcp { host, port } => {
            let target = addr(host, *port);
            match tokio::time::timeout(limit, tokio::net::TcpStream::connect(&target)).await {
                Ok(Ok(_)) => Outcome::pass(),
                Ok(Err(e)) => Outcome::fail(format!("dial tcp {target}: connect: {e}")),
                Err(_) => Outcome::fail(format!("dial tcp {target}: i/o timeout")),
            }
        }
        Check::Http {
            host,
            port,
            path,
            headers,
        } => {
            let target = addr(host, *port);
            let url = format!("http://{target}{path}");
            match tokio::time::timeout(limit, http_get(&target, path, headers)).await {
                Ok(Ok(code)) if (200..400).contains(&code) => Outcome::pass(),
                Ok(Ok(code)) => Outcome::fail(format!("HTTP probe failed with statuscode: {code}")),
                Ok(Err(e)) => Outcome::fail(format!("Get \"{url}\": {e}")),
                Err(_) => Outcome::fail(format!(
                    "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                )),
            }
        }
    }
}

/// A GET that reads only the status line (redirects count as success,
/// as upstream counts 3xx it does not follow off-host).
async fn http_get(target: &str, path: &str, headers: &[(String, String)]) -> Result<u16, String> {
    let mut s = tokio::net::TcpStream::connect(target)
        .await
        .map_err(|e| format!("dial tcp {target}: connect: {e}"))?;
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("host") {
        req.push_str(&format!("Host: {target}\r\n"));
    }
    if !has("user-agent") {
        req.push_str("User-Agent: kube-probe/1.32\r\n");
    }
    if !has("accept") {
        req.push_str("Accept: */*\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < 4096 {
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or_default();
    line.strip_prefix("HTTP/")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("malformed HTTP response {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerPort, ExecAction, GRPCAction, HTTPGetAction, HTTPHeader, TCPSocketAction,
    };

    fn timing(success: u32, failure: u32) -> Timing {
        Timing {
            initial_delay: 5,
            period: 10,
            timeout: 1,
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn defaults_are_upstreams() {
        let t = Timing::of(&Probe::default(), Kind::Readiness);
        assert_eq!(
            t,
            Timing {
                initial_delay: 0,
                period: 10,
                timeout: 1,
                success_threshold: 1,
                failure_threshold: 3
            }
        );
        let p = Probe {
            success_threshold: Some(3),
            period_seconds: Some(0),
            ..Default::default()
        };
        assert_eq!(Timing::of(&p, Kind::Readiness).success_threshold, 3);
        assert_eq!(Timing::of(&p, Kind::Liveness).success_threshold, 1);
        assert_eq!(Timing::of(&p, Kind::Liveness).period, 1);
    }

    #[test]
    fn due_after_the_initial_delay_then_every_period() {
        let t = timing(1, 3);
        let mut tr = Tracker::new("c1", 100 * NANOS);
        for (now, want) in [(100, false), (104, false), (105, true)] {
            assert_eq!(tr.due(&t, now * NANOS), want, "at {now}s");
        }
        tr.record(&t, true, 105 * NANOS);
        for (now, want) in [(106, false), (114, false), (115, true)] {
            assert_eq!(tr.due(&t, now * NANOS), want, "at {now}s");
        }
        // Half a second early still counts: the worker looks once a second.
        assert!(tr.due(&t, 115 * NANOS - NANOS / 2));
    }

    #[test]
    fn thresholds_turn_outcomes_into_verdicts() {
        // (success threshold, failure threshold, outcomes, verdict changes)
        type Case<'a> = (u32, u32, &'a [bool], &'a [Option<bool>]);
        let cases: &[Case] = &[
            (1, 3, &[true], &[Some(true)]),
            (1, 3, &[false, false], &[None, None]),
            (1, 3, &[false, false, false], &[None, None, Some(false)]),
            // A success in between starts the count again.
            (
                1,
                3,
                &[false, false, true, false, false],
                &[None, None, Some(true), None, None],
            ),
            (
                2,
                1,
                &[true, true, false, true, true],
                &[None, Some(true), Some(false), None, Some(true)],
            ),
            // Verdicts are reported once, not on every outcome.
            (
                1,
                1,
                &[true, true, false, false],
                &[Some(true), None, Some(false), None],
            ),
        ];
        for (success, failure, outcomes, want) in cases {
            let t = timing(*success, *failure);
            let mut tr = Tracker::new("c", 0);
            let got: Vec<_> = outcomes
                .iter()
                .enumerate()
                .map(|(i, ok)| tr.record(&t, *ok, i as i64 * 10 * NANOS))
                .collect();
            assert_eq!(&got, want, "s={success} f={failure} {outcomes:?}");
        }
    }

    fn web() -> Container {
        Container {
            name: "web".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn handlers_resolve_against_the_container_and_pod() {
        let http = |port: IntOrString, path: Option<&str>, scheme: Option<&str>| Probe {
            http_get: Some(HTTPGetAction {
                port,
                path: path.map(String::from),
                scheme: scheme.map(String::from),
                http_headers: Some(vec![HTTPHeader {
                    name: "X-Probe".into(),
                    value: "1".into(),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let cases = [
            (
                http(IntOrString::String("http".into()), Some("healthz"), None),
                Check::Http {
                    host: "10.244.0.5".into(),
                    port: 8080,
                    path: "/healthz".into(),
                    headers: vec![("X-Probe".into(), "1".into())],
                },
            ),
            (
                http(IntOrString::Int(80), None, Some("HTTP")),
                Check::Http {
                    host: "10.244.0.5".into(),
                    port: 80,
                    path: "/".into(),
                    headers: vec![("X-Probe".into(), "1".into())],
                },
            ),
            (
                http(IntOrString::String("metrics".into()), None, None),
                Check::Unsupported("couldn't find port: metrics in web".into()),
            ),
            (
                http(IntOrString::Int(443), None, Some("HTTPS")),
                Check::Unsupported("HTTPS probes are not supported by this kubelet".into()),
            ),
            (
                Probe {
                    tcp_socket: Some(TCPSocketAction {
                        port: IntOrString::Int(6379),
                        host: Some("127.0.0.1".into()),
                    }),
                    ..Default::default()
                },
                Check::Tcp {
                    host: "127.0.0.1".into(),
                    port: 6379,
                },
            ),
            (
                Probe {
                    exec: Some(ExecAction {
                        command: Some(vec!["cat".into(), "/tmp/healthy".into()]),
                    }),
                    ..Default::default()
                },
                Check::Exec(vec!["cat".into(), "/tmp/healthy".into()]),
            ),
            (
                Probe {
                    grpc: Some(GRPCAction {
                        port: 9000,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Check::Unsupported("gRPC probes are not supported by this kubelet".into()),
            ),
        ];
        for (probe, want) in cases {
            assert_eq!(check(&probe, &web(), "10.244.0.5"), want, "{probe:?}");
        }
    }

    /// An HTTP server on loopback answering `code` to every request.
    async fn serve(code: u16) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        port
    }

    #[tokio::test]
    async fn http_and_tcp_checks_against_loopback() {
        let rt = crate::runtime::fake::FakeRuntime::default();
        let http = |port| Check::Http {
            host: "127.0.0.1".into(),
            port,
            path: "/healthz".into(),
            headers: vec![],
        };
        let ok = serve(200).await;
        let redirect = serve(302).await;
        let broken = serve(503).await;
        assert!(run(&rt, "c", &http(ok), 1).await.ok);
        assert!(run(&rt, "c", &http(redirect), 1).await.ok);
        let failed = run(&rt, "c", &http(broken), 1).await;
        assert_eq!(failed.message, "HTTP probe failed with statuscode: 503");
        // A port nobody listens on: refused, said as upstream says it.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let refused = run(&rt, "c", &http(closed), 1).await;
        assert!(!refused.ok);
        assert!(
            refused.message.starts_with(&format!(
                "Get \"http://127.0.0.1:{closed}/healthz\": dial tcp 127.0.0.1:{closed}: connect:"
            )),
            "{}",
            refused.message
        );
        let tcp = |port| Check::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        assert!(run(&rt, "c", &tcp(ok), 1).await.ok);
        assert!(!run(&rt, "c", &tcp(closed), 1).await.ok);
    }
}
