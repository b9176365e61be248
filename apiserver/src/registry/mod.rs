//! The resource table: every kind the API server serves, and how.
//!
//! Adding a resource is one [`Resource`] entry in [`RESOURCES`] plus its
//! [`Strategy`] (defaulting, validation, table columns, selectable fields);
//! the generic handlers do the rest. Kinds with no special behaviour use
//! [`Plain`], which still checks the object against its Kubernetes type and
//! its metadata.

mod apps;
mod core;
mod events;
mod other;
mod reviews;
pub mod table;

use std::sync::LazyLock;

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::validation::{FieldError, NameRule};
pub use table::Column;

/// The subresources a resource may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    Status,
    Scale,
    Binding,
    Eviction,
    Log,
    Exec,
    Attach,
    PortForward,
    Proxy,
    /// `namespaces/<name>/finalize`: how the namespace controller removes
    /// the `kubernetes` finalizer from `spec.finalizers`.
    Finalize,
}

impl Sub {
    pub fn name(self) -> &'static str {
        match self {
            Sub::Status => "status",
            Sub::Scale => "scale",
            Sub::Binding => "binding",
            Sub::Eviction => "eviction",
            Sub::Log => "log",
            Sub::Exec => "exec",
            Sub::Attach => "attach",
            Sub::PortForward => "portforward",
            Sub::Proxy => "proxy",
            Sub::Finalize => "finalize",
        }
    }

    /// The verbs it takes, as discovery lists them.
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Sub::Status | Sub::Scale => &["get", "patch", "update"],
            Sub::Finalize => &["update"],
            Sub::Binding | Sub::Eviction => &["create"],
            Sub::Log => &["get"],
            Sub::Exec | Sub::Attach | Sub::PortForward => &["create", "get"],
            Sub::Proxy => &["create", "delete", "get", "patch", "update"],
        }
    }

    /// (group, version, kind) of what it returns, when not the parent's kind.
    pub fn response_kind(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Sub::Scale => Some(("autoscaling", "v1", "Scale")),
            Sub::Binding => Some(("", "v1", "Binding")),
            Sub::Eviction => Some(("policy", "v1", "Eviction")),
            Sub::Log | Sub::Exec | Sub::Attach | Sub::PortForward | Sub::Proxy => {
                Some(("", "v1", "Pod"))
            }
            Sub::Status | Sub::Finalize => None,
        }
    }

    pub fn parse(name: &str) -> Option<Sub> {
        [
            Sub::Status,
            Sub::Scale,
            Sub::Binding,
            Sub::Eviction,
            Sub::Log,
            Sub::Exec,
            Sub::Attach,
            Sub::PortForward,
            Sub::Proxy,
            Sub::Finalize,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// What makes one kind different from another. Every method has a default
/// that does nothing special.
pub trait Strategy: Send + Sync {
    /// Fills the fields upstream fills when a user leaves them out.
    fn default(&self, _obj: &mut Value) {}

    /// Checks the object beyond its metadata (which the caller checks).
    fn validate(&self, _obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Checks an update; by default the same checks as a create.
    fn validate_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        self.validate(new)
    }

    /// Once, on create, after defaulting (a pod starts Pending, …).
    fn prepare_for_create(&self, _obj: &mut Value) {}

    /// Whether a create keeps the status it was sent although the kind has
    /// a status subresource. Upstream clears it for every such kind but
    /// Node: a kubelet registers its node with capacity, allocatable and
    /// conditions in one POST.
    fn keeps_status_on_create(&self) -> bool {
        false
    }

    /// Table columns, Name (format "name") included where upstream puts it.
    fn columns(&self) -> Vec<Column> {
        vec![table::name_column(), table::age_column()]
    }

    /// One cell per column of [`Strategy::columns`].
    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![table::name(obj), table::age(obj)]
    }

    /// A field usable in field selectors, besides metadata.name and
    /// metadata.namespace (e.g. `spec.nodeName` for pods).
    fn field(&self, _obj: &Value, _path: &str) -> Option<String> {
        None
    }
}

/// A kind with nothing special beyond its type and metadata.
pub struct Plain;
impl Strategy for Plain {}

/// One served resource.
pub struct Resource {
    /// "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Sub],
    pub name_rule: NameRule,
    /// Whether a change of `spec` bumps `metadata.generation`.
    pub tracks_generation: bool,
    pub strategy: &'static dyn Strategy,
    pub typed: TypeOps,
    /// Kept in etcd as another resource's objects, converted on the way in
    /// and out (events.k8s.io/v1 Events are core/v1 Events, as upstream).
    pub stored_as: Option<StoredAs>,
    /// A review (SelfSubjectAccessReview, …): only created, answered with
    /// its status filled in, never stored.
    pub review: Option<Review>,
}

/// Fills in the status of a review for the user who sent it.
pub type Review = fn(&mut Value, &crate::authn::UserInfo);

/// How a resource is stored as another one: where, and the two conversions.
#[derive(Debug, Clone, Copy)]
pub struct StoredAs {
    /// The key prefix of the stored resource, ending in '/'.
    pub prefix: &'static str,
    /// The stored form to the served one.
    pub to_served: fn(&mut Value),
    /// The served form to the stored one.
    pub to_stored: fn(&mut Value),
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Resource({}/{} {})",
            self.group, self.version, self.plural
        )
    }
}

impl Resource {
    /// A namespaced `<group>/v1` resource with nothing special: the plain
    /// strategy, no subresources, short names or categories, DNS-1123
    /// subdomain names. Each group's table starts from it and sets what
    /// differs, so a new field of `Resource` gets its default here once.
    pub fn new(
        group: &'static str,
        kind: &'static str,
        plural: &'static str,
        singular: &'static str,
        typed: TypeOps,
    ) -> Resource {
        Resource {
            group,
            version: "v1",
            kind,
            plural,
            singular,
            namespaced: true,
            short_names: &[],
            categories: &[],
            subresources: &[],
            name_rule: NameRule::Dns1123Subdomain,
            tracks_generation: false,
            strategy: &Plain,
            typed,
            stored_as: None,
            review: None,
        }
    }

    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps` or `pods`: how upstream names the resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The etcd key prefix of its objects, ending in '/'.
    pub fn key_prefix(&self) -> String {
        // Core resources and the built-in groups share one flat namespace of
        // plurals, as in Kubernetes; a resource stored as another uses its keys.
        match self.stored_as {
            Some(stored) => stored.prefix.to_string(),
            None => format!("/registry/{}/", self.plural),
        }
    }

    /// The key of one object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{}{namespace}/{name}", self.key_prefix())
        } else {
            format!("{}{name}", self.key_prefix())
        }
    }

    /// The key prefix of a namespace's objects (or of all, for "").
    pub fn list_prefix(&self, namespace: &str) -> String {
        if self.namespaced && !namespace.is_empty() {
            format!("{}{namespace}/", self.key_prefix())
        } else {
            self.key_prefix()
        }
    }

    /// The object as served, from its stored form.
    pub fn served(&self, mut obj: Value) -> Value {
        if let Some(stored) = self.stored_as {
            (stored.to_served)(&mut obj);
        }
        obj
    }

    /// The object as stored, from its served form.
    pub fn stored<'a>(&self, obj: &'a Value) -> std::borrow::Cow<'a, Value> {
        match self.stored_as {
            Some(stored) => {
                let mut obj = obj.clone();
                (stored.to_stored)(&mut obj);
                std::borrow::Cow::Owned(obj)
            }
            None => std::borrow::Cow::Borrowed(obj),
        }
    }

    pub fn has(&self, sub: Sub) -> bool {
        self.subresources.contains(&sub)
    }
}

/// Operations that need the Rust type of a kind.
#[derive(Clone, Copy)]
pub struct TypeOps {
    /// Decodes the object as its Kubernetes type and encodes it back: an
    /// error is a type mismatch; keys missing in the result are unknown fields.
    pub roundtrip: fn(&Value) -> Result<Value, String>,
    /// Its OpenAPI schema name, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub schema_name: fn() -> String,
    /// Adds its schema (and every schema it refers to) to a generator.
    pub schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

fn roundtrip<T: DeserializeOwned + Serialize>(value: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

pub const fn type_ops<T: DeserializeOwned + Serialize + schemars::JsonSchema>() -> TypeOps {
    TypeOps {
        roundtrip: roundtrip::<T>,
        schema_name: || T::schema_name().into_owned(),
        schema: |generator| generator.subschema_for::<T>(),
    }
}

/// Every resource served, in discovery order.
pub static RESOURCES: LazyLock<Vec<Resource>> = LazyLock::new(|| {
    let mut all = core::resources();
    all.extend(apps::resources());
    all.extend(other::resources());
    all.extend(reviews::resources());
    all
});

/// The groups served, each with its one version, in discovery order ("" first).
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES.iter() {
        if !groups.contains(&(r.group, r.version)) {
            groups.push((r.group, r.version));
        }
    }
    groups
}

/// The resource for `plural` in `group`/`version`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of a kind in `group` (any served version).
pub fn find_kind(group: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for r in RESOURCES.iter() {
            assert!(seen.insert((r.group, r.plural)), "{r:?} twice");
            assert_eq!(r.singular, r.kind.to_lowercase(), "{r:?}");
        }
        assert!(find("apps", "v1", "deployments").is_some());

        assert_eq!(
            find("", "v1", "pods").unwrap().key("default", "web"),
            "/registry/pods/default/web"
        );
        assert_eq!(
            find("", "v1", "nodes").unwrap().key("", "n1"),
            "/registry/nodes/n1"
        );
        assert_eq!(groups()[0], ("", "v1"));
    }
}
