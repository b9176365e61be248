//! The worker's side of an eviction: the eviction manager
//! ([`crate::eviction`]) marks a pod in [`Evictions`]; the pod's worker sees
//! the mark at its next turn (within a second), kills the containers at
//! once (hard thresholds give no grace, as upstream), posts the status
//! upstream gives an evicted pod — phase `Failed`, reason `Evicted`, the
//! manager's message, a `DisruptionTarget` condition — records an
//! `Evicted` event, and removes the containers, sandbox and volumes. The
//! pod stays in the API, Failed, until someone deletes it; its controller
//! makes a replacement. A worker that finds a pod Failed/Evicted (after a
//! kubelet restart, or when the status update comes back through the
//! watch) never starts it again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::{Value, json};

use super::observed;
use super::status::{self, Notes};
use super::worker::{PodContext, event, name, teardown};
use crate::runtime::Runtime;

pub const REASON: &str = "Evicted";

/// Pods the eviction manager has chosen, by uid, with the status message.
#[derive(Debug, Default)]
pub struct Evictions {
    marked: Mutex<HashMap<String, (String, Instant)>>,
}

impl Evictions {
    pub fn mark(&self, uid: &str, message: String) {
        if let Ok(mut m) = self.marked.lock() {
            m.insert(uid.to_string(), (message, Instant::now()));
        }
    }

    /// The message for `uid`, once: the worker takes it and acts.
    pub fn take(&self, uid: &str) -> Option<String> {
        self.marked.lock().ok()?.remove(uid).map(|(m, _)| m)
    }

    /// Whether an eviction is still waiting for its worker; marks older
    /// than `timeout` (a pod whose worker is gone) are dropped, as upstream
    /// stops waiting for a pod's clean-up after 30 s.
    pub fn pending(&self, timeout: Duration) -> bool {
        let Ok(mut m) = self.marked.lock() else {
            return false;
        };
        m.retain(|_, (_, at)| at.elapsed() < timeout);
        !m.is_empty()
    }
}

/// Failed with reason Evicted: never started again.
pub fn is_evicted(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| {
        s.phase.as_deref() == Some("Failed") && s.reason.as_deref() == Some(REASON)
    })
}

/// The status of an evicted pod, from the one its containers give.
pub fn evicted_status(mut status: Value, message: &str, now: Timestamp) -> Value {
    status["phase"] = json!("Failed");
    status["reason"] = json!(REASON);
    status["message"] = json!(message);
    let mut conditions: Vec<Value> = status["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["type"] != "DisruptionTarget")
        .collect();
    for c in conditions.iter_mut() {
        if c["type"] == "Ready" || c["type"] == "ContainersReady" {
            if c["status"] != "False" {
                c["lastTransitionTime"] = json!(now.to_string());
            }
            c["status"] = json!("False");
            c["reason"] = json!("PodFailed");
        }
    }
    conditions.push(json!({
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "TerminationByKubelet",
        "message": message,
        "lastTransitionTime": now.to_string(),
    }));
    status["conditions"] = Value::Array(conditions);
    status
}

/// Evicts `pod` now (see the module's doc).
pub async fn evict<R: Runtime>(ctx: &PodContext<R>, pod: &Pod, uid: &str, message: &str) {
    tracing::warn!(pod = %name(pod), %message, "evicting");
    if let Ok(o) = observed::observe(ctx.runtime.as_ref(), uid).await {
        for c in o.containers.iter().filter(|c| c.running()) {
            if let Err(e) = ctx.runtime.stop_container(&c.id, 0).await {
                tracing::warn!(pod = %name(pod), error = %e, "cannot kill a container");
            }
        }
    }
    let observed = observed::observe(ctx.runtime.as_ref(), uid)
        .await
        .unwrap_or_default();
    let now = Timestamp::now();
    let built = status::status(pod, &observed, &Notes::default(), &ctx.host_ip, now);
    let value = evicted_status(
        serde_json::to_value(&built).unwrap_or_default(),
        message,
        now,
    );
    let api: Api<Pod> = Api::namespaced(
        ctx.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
    );
    if let Err(e) = api
        .patch_status(
            pod.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": value })),
        )
        .await
    {
        tracing::warn!(pod = %name(pod), error = %e, "cannot post the evicted status");
    }
    event(ctx, pod, EventType::Warning, REASON, message.to_string()).await;
    teardown(ctx, uid, 0, Some(pod)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evicted_status_is_failed_with_a_disruption_target() {
        let now: Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        let before = json!({
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-07T09:00:00Z"},
                {"type": "PodScheduled", "status": "True"}
            ],
            "containerStatuses": [{"name": "c"}]
        });
        let s = evicted_status(before, "The node was low on resource: memory. ", now);
        assert_eq!(s["phase"], "Failed");
        assert_eq!(s["reason"], "Evicted");
        assert_eq!(s["message"], "The node was low on resource: memory. ");
        let cond = |t: &str| {
            s["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == t)
                .cloned()
                .unwrap()
        };
        assert_eq!(cond("Ready")["status"], "False");
        assert_eq!(cond("Ready")["lastTransitionTime"], "2026-12-07T10:00:00Z");
        assert_eq!(cond("PodScheduled")["status"], "True");
        assert_eq!(cond("DisruptionTarget")["reason"], "TerminationByKubelet");
        assert_eq!(s["containerStatuses"][0]["name"], "c");
        let pod: Pod =
            serde_json::from_value(json!({"metadata": {"name": "p"}, "status": s})).unwrap();
        assert!(is_evicted(&pod));
    }

    #[test]
    fn marks_are_taken_once_and_expire() {
        let e = Evictions::default();
        assert!(!e.pending(Duration::from_secs(30)));
        e.mark("u1", "m".into());
        assert!(e.pending(Duration::from_secs(30)));
        assert_eq!(e.take("u1").as_deref(), Some("m"));
        assert_eq!(e.take("u1"), None);
        e.mark("u2", "m".into());
        assert!(
            !e.pending(Duration::ZERO),
            "a mark nobody took is dropped after the timeout"
        );
    }
}
