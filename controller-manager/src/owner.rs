//! ownerReferences and label selectors: which objects a controller owns,
//! adopts, and releases (upstream's `ControllerRefManager`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::core::{Selector, SelectorExt};

/// The reference to the controller of an object (the owner with `controller: true`).
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Whether `meta`'s controller is the object with `uid`.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// A controller reference to `owner` (`controller` and `blockOwnerDeletion` set).
pub fn controller_ref(api_version: &str, kind: &str, owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether `selector` selects `labels`. An empty or invalid selector selects
/// nothing (a controller never claims everything in a namespace).
pub fn selects(
    selector: Option<&LabelSelector>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(selector) = selector else {
        return false;
    };
    let Ok(selector) = Selector::try_from(selector.clone()) else {
        return false;
    };
    if selector.selects_all() {
        return false;
    }
    let empty = BTreeMap::new();
    selector.matches(labels.unwrap_or(&empty))
}

/// What a controller should do with one candidate object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours and selected: keep.
    Owned,
    /// Not controlled by anyone, selected, owner alive: take it.
    Adopt,
    /// Ours but no longer selected: let it go.
    Release,
    /// Not ours.
    Ignore,
}

/// Upstream `ClaimObject` for one object against an owner.
pub fn claim(
    owner_uid: &str,
    owner_deleting: bool,
    selector: Option<&LabelSelector>,
    meta: &ObjectMeta,
) -> Claim {
    let selected = selects(selector, meta.labels.as_ref());
    match controller_of(meta) {
        Some(r) if r.uid == owner_uid => {
            if selected || owner_deleting {
                Claim::Owned
            } else {
                Claim::Release
            }
        }
        Some(_) => Claim::Ignore,
        None => {
            if selected && !owner_deleting && meta.deletion_timestamp.is_none() {
                Claim::Adopt
            } else {
                Claim::Ignore
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn claims() {
        let selector: LabelSelector =
            serde_json::from_value(json!({"matchLabels": {"app": "web"}})).unwrap();
        let ours = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u1", "controller": true}]);
        let theirs = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "o", "uid": "u2", "controller": true}]);
        let cases = [
            (
                json!({"labels": {"app": "web"}, "ownerReferences": ours}),
                false,
                Claim::Owned,
            ),
            (
                json!({"labels": {"app": "db"}, "ownerReferences": ours}),
                false,
                Claim::Release,
            ),
            (
                json!({"labels": {"app": "db"}, "ownerReferences": ours}),
                true,
                Claim::Owned,
            ),
            (
                json!({"labels": {"app": "web"}, "ownerReferences": theirs}),
                false,
                Claim::Ignore,
            ),
            (json!({"labels": {"app": "web"}}), false, Claim::Adopt),
            (json!({"labels": {"app": "web"}}), true, Claim::Ignore),
            (
                json!({"labels": {"app": "web"}, "deletionTimestamp": "2024-01-01T00:00:00Z"}),
                false,
                Claim::Ignore,
            ),
            (json!({"labels": {"app": "db"}}), false, Claim::Ignore),
        ];
        for (m, deleting, want) in cases {
            assert_eq!(
                claim("u1", deleting, Some(&selector), &meta(m.clone())),
                want,
                "{m}"
            );
        }
    }

    #[test]
    fn empty_selector_selects_nothing() {
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        assert!(!selects(Some(&LabelSelector::default()), Some(&labels)));
        assert!(!selects(None, Some(&labels)));
        let expr: LabelSelector = serde_json::from_value(
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}),
        )
        .unwrap();
        assert!(selects(Some(&expr), Some(&labels)));
    }
}
