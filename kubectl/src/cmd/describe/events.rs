//! The `Events:` section: core/v1 Events (which also carry every
//! events.k8s.io/v1 Event: the API server stores one kind) whose
//! `involvedObject` is the object, as kubectl's `searchEvents` and
//! `DescribeEvents` find and print them.

use serde_json::Value;

use super::writer::{Writer, s};
use crate::session::{Session, with_query};

/// What an Event must name to be about the object.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub name: String,
    pub namespace: String,
    /// None: any kind (kubectl leaves it out for pods).
    pub kind: Option<String>,
    pub uid: Option<String>,
}

impl Reference {
    /// The reference kubectl builds for `obj` (kind and uid included).
    pub fn to(obj: &Value) -> Reference {
        let md = &obj["metadata"];
        Reference {
            name: s(&md["name"]).to_string(),
            namespace: s(&md["namespace"]).to_string(),
            kind: Some(s(&obj["kind"]).to_string()).filter(|k| !k.is_empty()),
            uid: Some(s(&md["uid"]).to_string()).filter(|u| !u.is_empty()),
        }
    }

    /// `involvedObject.name=…,involvedObject.namespace=…,…` (sorted keys).
    pub fn field_selector(&self) -> String {
        let mut parts = vec![];
        if let Some(k) = &self.kind {
            parts.push(format!("involvedObject.kind={k}"));
        }
        parts.push(format!("involvedObject.name={}", self.name));
        parts.push(format!("involvedObject.namespace={}", self.namespace));
        if let Some(u) = &self.uid {
            parts.push(format!("involvedObject.uid={u}"));
        }
        parts.join(",")
    }

    pub fn matches(&self, event: &Value) -> bool {
        let o = &event["involvedObject"];
        s(&o["name"]) == self.name
            && s(&o["namespace"]) == self.namespace
            && self.kind.as_deref().is_none_or(|k| s(&o["kind"]) == k)
            && self.uid.as_deref().is_none_or(|u| s(&o["uid"]) == u)
    }
}

/// The Events about `r`; none when they cannot be read (kubectl ignores
/// that error too). A server that refuses the field selector is asked
/// for all Events, filtered here.
pub async fn search(session: &Session, r: &Reference) -> Vec<Value> {
    let path = if r.namespace.is_empty() {
        "/api/v1/events".to_string()
    } else {
        format!("/api/v1/namespaces/{}/events", r.namespace)
    };
    let selector = r.field_selector();
    let list = match session
        .get_json(&with_query(&path, &[("fieldSelector", Some(&selector))]))
        .await
    {
        Ok(list) => list,
        Err(_) => match session.get_json(&path).await {
            Ok(list) => list,
            Err(_) => return vec![],
        },
    };
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| r.matches(e))
        .cloned()
        .collect()
}

/// Go's `duration.HumanDuration` of `secs`: every age and LAST SEEN
/// skiffctl prints (describe, events, tree).
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let minutes = s / 60;
    if minutes < 10 {
        return if s % 60 == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{}s", s % 60)
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = s / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// How long ago `ts` (RFC 3339) was, or `<unknown>` without one.
pub fn since(ts: &Value, now: jiff::Timestamp) -> String {
    match ts.as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => human_duration(now.as_second() - t.as_second()),
        None => "<unknown>".into(),
    }
}

/// The Age cell: `5s`, or `3s (x4 over 2m)` for a repeated Event.
pub fn interval(e: &Value, now: jiff::Timestamp) -> String {
    let first = if e["eventTime"].as_str().is_some_and(|t| !t.is_empty()) {
        since(&e["eventTime"], now)
    } else {
        since(&e["firstTimestamp"], now)
    };
    let count = e["count"].as_i64().unwrap_or(0);
    if e["series"].is_object() {
        format!(
            "{} (x{} over {first})",
            since(&e["series"]["lastObservedTime"], now),
            e["series"]["count"].as_i64().unwrap_or(0)
        )
    } else if count > 1 {
        format!(
            "{} (x{count} over {first})",
            since(&e["lastTimestamp"], now)
        )
    } else {
        first
    }
}

/// `Events:  <none>` or the `Type Reason Age From Message` table, oldest
/// last-seen first.
pub fn describe(w: &mut Writer, events: &[Value]) {
    describe_at(w, events, jiff::Timestamp::now());
}

pub fn describe_at(w: &mut Writer, events: &[Value], now: jiff::Timestamp) {
    if events.is_empty() {
        w.write(0, "Events:\t<none>\n");
        return;
    }
    let mut sorted: Vec<&Value> = events.iter().collect();
    let last = |e: &Value| {
        e["lastTimestamp"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_nanosecond())
            .unwrap_or(i128::MIN)
    };
    sorted.sort_by_key(|e| last(e));
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    w.write(1, "----\t------\t----\t----\t-------\n");
    for e in sorted {
        let mut source = s(&e["source"]["component"]);
        if source.is_empty() {
            source = s(&e["reportingComponent"]);
        }
        w.write(
            1,
            format!(
                "{}\t{}\t{}\t{source}\t{}\n",
                s(&e["type"]),
                s(&e["reason"]),
                interval(e, now),
                s(&e["message"]).trim()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_like_go() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (200, "3m20s"),
            (720, "12m"),
            (5 * 3600 + 60, "5h1m"),
            (700, "11m"),
            (3 * 3600 + 60, "3h1m"),
            (10 * 3600, "10h"),
            (3 * 86400 + 3600, "3d1h"),
            (40 * 86400, "40d"),
            (800 * 86400, "2y70d"),
            (3000 * 86400, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn events_table_and_none() {
        let now: jiff::Timestamp = "2024-01-01T00:10:00Z".parse().unwrap();
        let mut w = Writer::new();
        describe_at(&mut w, &[], now);
        assert_eq!(w.finish(), "Events:  <none>\n");
        let events = [
            json!({"type": "Normal", "reason": "ScalingReplicaSet",
                   "eventTime": "2024-01-01T00:09:50.000000Z",
                   "reportingComponent": "deployment-controller",
                   "message": "Scaled up replica set web-1 from 0 to 2 "}),
            json!({"type": "Warning", "reason": "Failed", "source": {"component": "kubelet"},
                   "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:09:00Z",
                   "count": 4, "message": "x"}),
        ];
        let mut w = Writer::new();
        describe_at(&mut w, &events, now);
        assert_eq!(
            w.finish(),
            "Events:\n  Type     Reason             Age                From                   Message\n  ----     ------             ----               ----                   -------\n  Normal   ScalingReplicaSet  10s                deployment-controller  Scaled up replica set web-1 from 0 to 2\n  Warning  Failed             60s (x4 over 10m)  kubelet                x\n"
        );
    }

    #[test]
    fn references_match_and_select() {
        let obj = json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "default", "uid": "u1"}});
        let r = Reference::to(&obj);
        assert_eq!(
            r.field_selector(),
            "involvedObject.kind=Deployment,involvedObject.name=web,involvedObject.namespace=default,involvedObject.uid=u1"
        );
        let about = json!({"involvedObject": {"kind": "Deployment", "name": "web", "namespace": "default", "uid": "u1"}});
        let other = json!({"involvedObject": {"kind": "Deployment", "name": "web", "namespace": "default", "uid": "u2"}});
        assert!(r.matches(&about));
        assert!(!r.matches(&other));
    }
}
