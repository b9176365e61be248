//! events.k8s.io/v1 Events, stored as core/v1 Events.
//!
//! Upstream keeps one kind of Event in etcd (`/registry/events/…`) and
//! serves it in both groups, so an Event a controller writes through
//! events.k8s.io (as kube-rs's `Recorder` does) is the one `kubectl get
//! events` and `kubectl describe` list through core/v1, and the other way
//! round. The two versions differ only in field names:
//!
//! | events.k8s.io/v1 | core/v1 |
//! | --- | --- |
//! | `regarding` | `involvedObject` |
//! | `note` | `message` |
//! | `reportingController` | `reportingComponent` |
//! | `deprecatedSource` | `source` |
//! | `deprecatedFirstTimestamp` | `firstTimestamp` |
//! | `deprecatedLastTimestamp` | `lastTimestamp` |
//! | `deprecatedCount` | `count` |
//!
//! and `reason`, `type`, `action`, `related`, `reportingInstance`,
//! `eventTime` and `series` keep their names.

use serde_json::Value;

use super::table::Column;
use super::{StoredAs, Strategy};
use crate::validation::FieldError;

/// (events.k8s.io/v1 name, core/v1 name).
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

pub const AS_CORE_EVENT: StoredAs = StoredAs {
    prefix: "/registry/events/",
    to_served: to_events_v1,
    to_stored: to_core_v1,
};

fn rename(obj: &mut Value, api_version: &str, from_core: bool) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    for (v1, core) in RENAMED {
        let (from, to) = if from_core { (core, v1) } else { (v1, core) };
        match map.remove(*from) {
            Some(value) => {
                map.insert(to.to_string(), value);
            }
            // A field of the other version's name with no counterpart here
            // would be ambiguous; it cannot be set through this version.
            None => {
                map.remove(*to);
            }
        }
    }
    map.insert("apiVersion".into(), Value::String(api_version.into()));
    map.insert("kind".into(), Value::String("Event".into()));
}

/// core/v1 → events.k8s.io/v1.
pub fn to_events_v1(obj: &mut Value) {
    // A core Event with a count but no series: upstream leaves the count in
    // deprecatedCount and needs nothing else.
    rename(obj, "events.k8s.io/v1", true);
}

/// events.k8s.io/v1 → core/v1.
pub fn to_core_v1(obj: &mut Value) {
    rename(obj, "v1", false);
}

/// The core Event strategy, seen through the conversion: same table (as
/// upstream, where one printer serves both), same selectable fields under
/// their events.k8s.io names, and the events.k8s.io validation of writes.
pub struct EventsV1Strategy;

fn as_core(obj: &Value) -> Value {
    let mut core = obj.clone();
    to_core_v1(&mut core);
    core
}

impl Strategy for EventsV1Strategy {
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        // Upstream requires these of events.k8s.io writes (the core group
        // accepts older, sparser events).
        let mut errors = Vec::new();
        let missing = |field: &str| {
            obj.get(field)
                .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
        };
        if missing("eventTime") {
            errors.push(FieldError::required("eventTime", ""));
        }
        if missing("reportingController") {
            errors.push(FieldError::required("reportingController", ""));
        }
        if missing("reportingInstance") {
            errors.push(FieldError::required("reportingInstance", ""));
        }
        if missing("action") {
            errors.push(FieldError::required("action", ""));
        }
        if missing("reason") {
            errors.push(FieldError::required("reason", ""));
        }
        if let Some(kind) = obj.get("type").and_then(Value::as_str)
            && !matches!(kind, "Normal" | "Warning")
        {
            errors.push(FieldError::not_supported(
                "type",
                Value::String(kind.into()),
                &["Normal", "Warning"],
            ));
        }
        errors
    }

    fn columns(&self) -> Vec<Column> {
        super::core::EventStrategy.columns()
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        super::core::EventStrategy.cells(&as_core(obj))
    }

    fn field(&self, obj: &Value, path: &str) -> Option<String> {
        let core_path = match path.split_once('.') {
            Some(("regarding", rest)) => format!("involvedObject.{rest}"),
            _ => match path {
                "reportingController" => "reportingComponent".into(),
                "reason" | "type" => path.into(),
                _ => return None,
            },
        };
        super::core::EventStrategy.field(&as_core(obj), &core_path)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn converts_both_ways_without_loss() {
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "eventTime": "2026-11-22T10:00:00.000000Z",
            "regarding": {"kind": "Deployment", "name": "web", "namespace": "default"},
            "reason": "ScalingReplicaSet", "type": "Normal", "action": "Scale",
            "note": "Scaled up replica set web-abc to 3",
            "reportingController": "deployment-controller", "reportingInstance": "cm-1",
            "series": {"count": 2, "lastObservedTime": "2026-11-22T10:00:05.000000Z"},
        });
        let mut core = v1.clone();
        to_core_v1(&mut core);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["message"], "Scaled up replica set web-abc to 3");
        assert_eq!(core["reportingComponent"], "deployment-controller");
        assert_eq!(core["series"]["count"], 2);
        assert!(core.get("regarding").is_none() && core.get("note").is_none());
        let mut back = core.clone();
        to_events_v1(&mut back);
        assert_eq!(back, v1);
    }

    #[test]
    fn core_events_read_through_events_v1() {
        let mut core = json!({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "p.1"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "pulled",
            "source": {"component": "kubelet"}, "count": 3,
            "firstTimestamp": "2026-11-22T10:00:00Z", "lastTimestamp": "2026-11-22T10:01:00Z",
        });
        to_events_v1(&mut core);
        assert_eq!(core["deprecatedSource"]["component"], "kubelet");
        assert_eq!(core["deprecatedCount"], 3);
        assert_eq!(core["deprecatedLastTimestamp"], "2026-11-22T10:01:00Z");
        assert_eq!(core["note"], "pulled");
        let strategy = EventsV1Strategy;
        assert_eq!(
            strategy.field(&core, "regarding.name").as_deref(),
            Some("p")
        );
        assert_eq!(
            strategy.field(&core, "regarding.kind").as_deref(),
            Some("Pod")
        );
        assert_eq!(strategy.field(&core, "involvedObject.name"), None);
    }

    #[test]
    fn writes_need_what_upstream_requires() {
        let errors = EventsV1Strategy.validate(&json!({"type": "Odd"}));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "eventTime",
                "reportingController",
                "reportingInstance",
                "action",
                "reason",
                "type"
            ]
        );
    }
}
