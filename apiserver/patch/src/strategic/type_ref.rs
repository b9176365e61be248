//! How the strategic merge code asks the schema about a field.
//!
//! The data lives in [`super::schema`]; this file holds the shapes of its
//! rows and the look-ups over them. Look-ups are linear scans: the table has
//! about a hundred rows and a patch touches a handful of fields, so a scan
//! costs less than building and keeping a map.

use super::schema::{FIELDS, KINDS};

/// How a field is patched, as its Go struct tags (`patchStrategy`,
/// `patchMergeKey`) declare it upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// No `patchStrategy` tag: a list is replaced whole, an object merges
    /// key by key. Also what every field the table does not list gets.
    Plain,
    /// `patchStrategy:"merge"` on a list of primitives: set union, and
    /// `$deleteFromPrimitiveList/<field>` removes values.
    MergePrimitives,
    /// `patchStrategy:"merge"` with `patchMergeKey:"<key>"`: elements are
    /// matched by the key and merged.
    MergeByKey(&'static str),
    /// `patchStrategy:"merge,retainKeys"` with a merge key: as `MergeByKey`;
    /// the elements' `$retainKeys` lists say which fields they keep.
    MergeByKeyRetainKeys(&'static str),
    /// `patchStrategy:"retainKeys"` on an object field: merged as usual, and
    /// its `$retainKeys` list says which fields it keeps.
    RetainKeys,
    /// `patchStrategy:"replace"`: the field is replaced whole, even when it
    /// is an object.
    Replace,
}

impl Strategy {
    /// True when a list in this field merges with the existing list instead
    /// of replacing it.
    pub(crate) fn merges_lists(self) -> bool {
        matches!(
            self,
            Strategy::MergePrimitives | Strategy::MergeByKey(_) | Strategy::MergeByKeyRetainKeys(_)
        )
    }

    /// The key that identifies list elements, if the field has one.
    pub(crate) fn merge_key(self) -> Option<&'static str> {
        match self {
            Strategy::MergeByKey(key) | Strategy::MergeByKeyRetainKeys(key) => Some(key),
            _ => None,
        }
    }
}

/// One row of the field table: `owner.field` has type `child` (for lists,
/// the element type) and is patched with `strategy`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FieldSchema {
    pub(crate) owner: &'static str,
    pub(crate) field: &'static str,
    /// The type name to use for the field's contents; empty when nothing
    /// inside the field needs special handling.
    pub(crate) child: &'static str,
    pub(crate) strategy: Strategy,
}

/// One row of the kind table: objects of `group`/`kind` have type `root`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KindSchema {
    pub(crate) group: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) root: &'static str,
}

/// A type in the strategic merge schema: where [`crate::strategic_merge_patch`]
/// learns which lists merge by which key.
///
/// Get one for a whole object with [`kubernetes_type`]. The unknown type
/// ([`TypeRef::unknown`]) knows nothing: objects merge recursively and every
/// list is replaced, which is also how every field missing from the schema
/// behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TypeRef {
    /// The Go type name in the schema table; `None` for the unknown type.
    name: Option<&'static str>,
}

impl TypeRef {
    /// The type the schema knows nothing about.
    pub const fn unknown() -> TypeRef {
        TypeRef { name: None }
    }

    /// The type called `name` in the schema (a Go type name such as
    /// `"PodSpec"` or `"ObjectMeta"`), if the schema has any field of it.
    pub fn named(name: &str) -> Option<TypeRef> {
        FIELDS
            .iter()
            .find(|row| row.owner == name)
            .map(|row| TypeRef {
                name: Some(row.owner),
            })
    }

    /// The schema's name for this type; `None` for the unknown type.
    pub fn name(self) -> Option<&'static str> {
        self.name
    }

    /// True unless this is the unknown type.
    pub fn is_known(self) -> bool {
        self.name.is_some()
    }

    /// The type of the field's contents and how the field is patched.
    pub(crate) fn field(self, field: &str) -> (TypeRef, Strategy) {
        let Some(owner) = self.name else {
            return (TypeRef::unknown(), Strategy::Plain);
        };
        match FIELDS
            .iter()
            .find(|row| row.owner == owner && row.field == field)
        {
            Some(row) => {
                let child = TypeRef {
                    name: (!row.child.is_empty()).then_some(row.child),
                };
                (child, row.strategy)
            }
            None => (TypeRef::unknown(), Strategy::Plain),
        }
    }
}

/// How the elements of a list field are told apart, for tracking which
/// manager owns which element (server-side apply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// The list is one value, replaced whole.
    Atomic,
    /// A set of primitives, merged by value.
    Set,
    /// Objects identified by this key field.
    Keyed(&'static str),
}

impl TypeRef {
    /// The type of `field`'s contents and, if it is a list, how its elements
    /// are told apart.
    pub fn child(self, field: &str) -> (TypeRef, ListKind) {
        let (child, strategy) = self.field(field);
        let kind = match strategy {
            Strategy::MergePrimitives => ListKind::Set,
            Strategy::MergeByKey(key) | Strategy::MergeByKeyRetainKeys(key) => ListKind::Keyed(key),
            _ => ListKind::Atomic,
        };
        (child, kind)
    }
}

/// The schema type of a whole object of a built-in kind, e.g.
/// `kubernetes_type("apps", "Deployment")`. The core group is `""` (`"core"`
/// is accepted too). Kinds the schema does not list, custom resources among
/// them, get [`TypeRef::unknown`].
pub fn kubernetes_type(group: &str, kind: &str) -> TypeRef {
    let group = if group == "core" { "" } else { group };
    KINDS
        .iter()
        .find(|row| row.group == group && row.kind == kind)
        .map_or(TypeRef::unknown(), |row| TypeRef {
            name: Some(row.root),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every type named as a child or a root must have rows of its own,
    /// otherwise a typo would silently turn a merge list into a replaced one.
    #[test]
    fn every_referenced_type_is_defined() {
        let owners: HashSet<&str> = FIELDS.iter().map(|row| row.owner).collect();
        for row in FIELDS {
            if !row.child.is_empty() {
                assert!(
                    owners.contains(row.child),
                    "{}.{} refers to undefined type {}",
                    row.owner,
                    row.field,
                    row.child
                );
            }
        }
        for row in KINDS {
            assert!(
                owners.contains(row.root),
                "kind {}/{} refers to undefined type {}",
                row.group,
                row.kind,
                row.root
            );
        }
    }

    #[test]
    fn no_row_is_listed_twice() {
        let mut fields = HashSet::new();
        for row in FIELDS {
            assert!(
                fields.insert((row.owner, row.field)),
                "{}.{} is listed twice",
                row.owner,
                row.field
            );
        }
        let mut kinds = HashSet::new();
        for row in KINDS {
            assert!(
                kinds.insert((row.group, row.kind)),
                "{}/{} is listed twice",
                row.group,
                row.kind
            );
        }
    }

    /// Every kind has an ObjectMeta under `metadata`.
    #[test]
    fn every_kind_has_object_meta() {
        for row in KINDS {
            let (meta, strategy) = kubernetes_type(row.group, row.kind).field("metadata");
            assert_eq!(
                meta.name(),
                Some("ObjectMeta"),
                "{}/{}",
                row.group,
                row.kind
            );
            assert_eq!(strategy, Strategy::Plain);
        }
    }

    #[test]
    fn lookups() {
        let deployment = kubernetes_type("apps", "Deployment");
        let (spec, _) = deployment.field("spec");
        let (template, _) = spec.field("template");
        assert_eq!(template.name(), Some("PodTemplateSpec"));
        let (pod_spec, _) = template.field("spec");
        let (container, strategy) = pod_spec.field("containers");
        assert_eq!(container.name(), Some("Container"));
        assert_eq!(strategy, Strategy::MergeByKey("name"));
        assert_eq!(kubernetes_type("core", "Pod"), kubernetes_type("", "Pod"));
        assert!(!kubernetes_type("example.com", "Widget").is_known());
        assert_eq!(
            TypeRef::named("PodSpec").and_then(TypeRef::name),
            Some("PodSpec")
        );
        assert_eq!(TypeRef::named("NoSuchType"), None);
        assert_eq!(
            TypeRef::unknown().field("containers"),
            (TypeRef::unknown(), Strategy::Plain)
        );
    }
}

/// One field's strategic-merge metadata, as upstream publishes it in its
/// OpenAPI schemas (`x-kubernetes-patch-strategy`,
/// `x-kubernetes-patch-merge-key`); kubectl reads it from there to compute
/// the patches it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldPatchMeta {
    /// The Go type that has the field, e.g. `PodSpec`.
    pub owner: &'static str,
    /// The JSON field name, e.g. `containers`.
    pub field: &'static str,
    /// `merge`, `retainKeys` or `merge,retainKeys`.
    pub strategy: &'static str,
    pub merge_key: Option<&'static str>,
}

/// Every field of the built-in types that has a patch strategy.
pub fn patch_metadata() -> impl Iterator<Item = FieldPatchMeta> {
    FIELDS.iter().filter_map(|f| {
        let strategy = match f.strategy {
            Strategy::MergePrimitives | Strategy::MergeByKey(_) => "merge",
            Strategy::MergeByKeyRetainKeys(_) => "merge,retainKeys",
            Strategy::RetainKeys => "retainKeys",
            Strategy::Replace => "replace",
            Strategy::Plain => return None,
        };
        Some(FieldPatchMeta {
            owner: f.owner,
            field: f.field,
            strategy,
            merge_key: f.strategy.merge_key(),
        })
    })
}
