//! The reviews kubectl's `auth` commands send: created, answered, never
//! stored.
//!
//! - `kubectl auth can-i` → authorization.k8s.io/v1 SelfSubjectAccessReview
//!   (and SelfSubjectRulesReview for `--list`);
//! - `kubectl auth whoami` → authentication.k8s.io/v1 SelfSubjectReview.
//!
//! Skiff has no authorizer yet: every authenticated user may do everything
//! (upstream's `--authorization-mode=AlwaysAllow`), and the answers say so
//! rather than pretend to a policy.

use k8s_openapi::api::{authentication, authorization};
use serde_json::{Value, json};

use super::{Resource, Strategy, type_ops};
use crate::authn::UserInfo;
use crate::validation::FieldError;

const REASON: &str =
    "skiff-apiserver allows every authenticated user (no authorizer is configured)";

/// `plural` is the singular name plus an `s`, for every review.
/// A cluster-scoped review whose singular is its plural without the "s".
fn review(group: &'static str, kind: &'static str, plural: &'static str) -> Resource {
    let singular = plural.strip_suffix('s').unwrap_or(plural);
    Resource {
        namespaced: false,
        ..Resource::new(
            group,
            kind,
            plural,
            singular,
            type_ops::<authorization::v1::SelfSubjectAccessReview>(),
        )
    }
}

pub fn resources() -> Vec<Resource> {
    vec![
        Resource {
            strategy: &SelfSubjectReviewStrategy,
            typed: type_ops::<authentication::v1::SelfSubjectReview>(),
            review: Some(who_am_i),
            ..review(
                "authentication.k8s.io",
                "SelfSubjectReview",
                "selfsubjectreviews",
            )
        },
        Resource {
            strategy: &AccessReviewStrategy,
            review: Some(can_i),
            ..review(
                "authorization.k8s.io",
                "SelfSubjectAccessReview",
                "selfsubjectaccessreviews",
            )
        },
        Resource {
            typed: type_ops::<authorization::v1::SelfSubjectRulesReview>(),
            review: Some(rules),
            ..review(
                "authorization.k8s.io",
                "SelfSubjectRulesReview",
                "selfsubjectrulesreviews",
            )
        },
    ]
}

fn who_am_i(obj: &mut Value, user: &UserInfo) {
    let mut info = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        info["uid"] = json!(user.uid);
    }
    obj["status"] = json!({"userInfo": info});
}

fn can_i(obj: &mut Value, _user: &UserInfo) {
    obj["status"] = json!({"allowed": true, "reason": REASON});
}

fn rules(obj: &mut Value, _user: &UserInfo) {
    obj["status"] = json!({
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
        "incomplete": false,
    });
}

struct SelfSubjectReviewStrategy;
impl Strategy for SelfSubjectReviewStrategy {}

struct AccessReviewStrategy;
impl Strategy for AccessReviewStrategy {
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let spec = obj.get("spec");
        let attrs = |name| spec.and_then(|s| s.get(name)).filter(|v| !v.is_null());
        match (attrs("resourceAttributes"), attrs("nonResourceAttributes")) {
            (Some(_), Some(non)) => vec![FieldError::invalid(
                "spec.nonResourceAttributes",
                non.clone(),
                "cannot be specified in combination with resourceAttributes",
            )],
            (None, None) => vec![FieldError::invalid(
                "spec.resourceAttributes",
                Value::Null,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )],
            _ => Vec::new(),
        }
    }
}
