//! Container lifecycle hooks: `postStart` runs right after the container
//! starts (a failure kills it, to be restarted per the pod's policy) and
//! `preStop` before it is stopped (deletion, a failed liveness probe), within
//! the grace period — as upstream's kubelet runs them. The handlers are the
//! probes' ([`super::probe`]: exec, httpGet, tcpSocket) plus `sleep`.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Probe};

use super::probe::{self, Check, Outcome};
use crate::runtime::Runtime;

/// Which hook: for messages and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    PostStart,
    PreStop,
}

impl Which {
    pub fn of(self, c: &Container) -> Option<&LifecycleHandler> {
        let l = c.lifecycle.as_ref()?;
        match self {
            Which::PostStart => l.post_start.as_ref(),
            Which::PreStop => l.pre_stop.as_ref(),
        }
    }

    /// The event reason of a failure, as upstream's.
    pub fn failed_reason(self) -> &'static str {
        match self {
            Which::PostStart => "FailedPostStartHook",
            Which::PreStop => "FailedPreStopHook",
        }
    }
}

/// What a hook does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    Check(Check),
    Sleep(Duration),
}

/// The handler resolved against the container and the pod's address.
pub fn hook(h: &LifecycleHandler, c: &Container, pod_ip: &str) -> Hook {
    if let Some(s) = &h.sleep {
        return Hook::Sleep(Duration::from_secs(s.seconds.max(0) as u64));
    }
    let as_probe = Probe {
        exec: h.exec.clone(),
        http_get: h.http_get.clone(),
        tcp_socket: h.tcp_socket.clone(),
        ..Default::default()
    };
    Hook::Check(probe::check(&as_probe, c, pod_ip))
}

/// The handler's kind as upstream's messages name it.
fn kind(h: &Hook) -> String {
    match h {
        Hook::Sleep(_) => "Sleep".into(),
        Hook::Check(Check::Exec(cmd)) => format!("Exec lifecycle hook ({cmd:?})"),
        Hook::Check(Check::Http { .. }) => "HTTP lifecycle hook".into(),
        Hook::Check(Check::Tcp { .. }) => "TCP lifecycle hook".into(),
        Hook::Check(Check::Unsupported(_)) => "Lifecycle hook".into(),
    }
}

/// Runs `h` in container `id` for at most `limit`; a failure's message
/// names the hook, the container and the pod, as upstream's does.
pub async fn run<R: Runtime>(
    runtime: &R,
    id: &str,
    h: &Hook,
    limit: Duration,
    container: &str,
    pod: &str,
) -> Outcome {
    let outcome = match h {
        Hook::Sleep(d) => {
            tokio::time::sleep((*d).min(limit)).await;
            Outcome {
                ok: true,
                message: String::new(),
            }
        }
        Hook::Check(check) => {
            let secs = limit.as_secs().max(1) as i64;
            match tokio::time::timeout(limit.max(Duration::from_secs(1)), async {
                probe::run(runtime, id, check, secs).await
            })
            .await
            {
                Ok(o) => o,
                Err(_) => Outcome {
                    ok: false,
                    message: format!("timed out after {}s", limit.as_secs()),
                },
            }
        }
    };
    if outcome.ok {
        return outcome;
    }
    Outcome {
        ok: false,
        message: format!(
            "{} for Container \"{container}\" in Pod \"{pod}\" failed - error: {}",
            kind(h),
            outcome.message
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ExecAction, HTTPGetAction, SleepAction};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn handlers_become_hooks() {
        let c = Container {
            name: "web".into(),
            ..Default::default()
        };
        let exec = LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(vec!["/bin/sh".into(), "-c".into(), "nginx -s quit".into()]),
            }),
            ..Default::default()
        };
        assert_eq!(
            hook(&exec, &c, "10.244.0.9"),
            Hook::Check(Check::Exec(vec![
                "/bin/sh".into(),
                "-c".into(),
                "nginx -s quit".into()
            ]))
        );
        let sleep = LifecycleHandler {
            sleep: Some(SleepAction { seconds: 5 }),
            ..Default::default()
        };
        assert_eq!(
            hook(&sleep, &c, "10.244.0.9"),
            Hook::Sleep(Duration::from_secs(5))
        );
        let http = LifecycleHandler {
            http_get: Some(HTTPGetAction {
                port: IntOrString::Int(8080),
                path: Some("/shutdown".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            hook(&http, &c, "10.244.0.9"),
            Hook::Check(Check::Http {
                host: "10.244.0.9".into(),
                port: 8080,
                path: "/shutdown".into(),
                headers: vec![]
            })
        );
    }

    #[tokio::test]
    async fn failures_are_worded_as_upstreams() {
        let rt = crate::runtime::fake::FakeRuntime::default();
        let h = Hook::Check(Check::Unsupported("no handler".into()));
        let o = run(
            &rt,
            "c1",
            &h,
            Duration::from_secs(1),
            "web",
            "web-1_default(u1)",
        )
        .await;
        assert!(!o.ok);
        assert_eq!(
            o.message,
            "Lifecycle hook for Container \"web\" in Pod \"web-1_default(u1)\" failed - error: no handler"
        );
        // A sleep longer than the limit is cut short, and succeeds.
        let start = std::time::Instant::now();
        let o = run(
            &rt,
            "c1",
            &Hook::Sleep(Duration::from_secs(60)),
            Duration::from_millis(50),
            "web",
            "p",
        )
        .await;
        assert!(o.ok && start.elapsed() < Duration::from_secs(30));
    }
}
