//! Kubernetes patch semantics over `serde_json::Value`: the three patch
//! types the API server accepts on `PATCH` requests.
//!
//! | Content-Type                                  | Function                  | Sent by |
//! |-----------------------------------------------|---------------------------|---------|
//! | `application/merge-patch+json`                | [`merge_patch`]           | `kubectl patch --type=merge`, `label`, `annotate`, `scale` |
//! | `application/json-patch+json`                 | [`json_patch`]            | `kubectl patch --type=json`, `rollout undo` |
//! | `application/strategic-merge-patch+json`      | [`strategic_merge_patch`] | `kubectl apply`, `patch` (default), `set image`, `rollout restart`, `cordon` |
//!
//! # Where to start
//!
//! * [`merge_patch`] (`src/merge_patch.rs`) is RFC 7386 and the simplest;
//!   read it first.
//! * [`json_patch`] (`src/json_patch.rs`, with JSON Pointer in
//!   `src/pointer.rs`) is RFC 6902.
//! * [`strategic_merge_patch`] (`src/strategic/mod.rs` for maps and
//!   directives, `src/strategic/list.rs` for lists and their order) is
//!   Kubernetes' own format. It needs a schema type, [`TypeRef`], which
//!   [`kubernetes_type`] gives for built-in kinds; the schema itself is a
//!   data table in `src/strategic/schema.rs`.
//! * Every failure is a [`PatchError`] (`src/error.rs`) whose message is
//!   meant for the user and names the operation or field at fault.
//!
//! No function here panics or mutates its inputs; failures return `Err` and
//! leave nothing half-applied. (Like all recursive code over `Value`, these
//! recurse once per nesting level; documents parsed by `serde_json` are
//! limited to 128 levels, which keeps that shallow.)
//!
//! # Extending the schema
//!
//! `src/strategic/schema.rs` has two tables:
//!
//! * `KINDS` maps a group and kind to its root type name. A kind whose only
//!   patch metadata is its `metadata` uses the shared root `"Object"`.
//! * `FIELDS` has one row per field: owner type, JSON field name, the type of
//!   the field's contents (the element type for lists; `NONE` when nothing
//!   inside needs special handling) and the strategy from the Go struct tags:
//!   `Plain` (no tag), `MergePrimitives` (`patchStrategy:"merge"` on a list of
//!   strings), `MergeByKey("k")` (`patchStrategy:"merge" patchMergeKey:"k"`),
//!   `MergeByKeyRetainKeys("k")` (`"merge,retainKeys"`), `RetainKeys` or
//!   `Replace`.
//!
//! To add a kind, add its `KINDS` row, a `metadata` → `ObjectMeta` row for
//! its root type, and rows for every tagged field plus the plain fields on
//! the way to them (e.g. `Deployment.spec` → `DeploymentSpec`,
//! `DeploymentSpec.template` → `PodTemplateSpec`). Take the tags from the
//! type's `types.go` in `k8s.io/api`. The unit tests in
//! `src/strategic/type_ref.rs` catch rows that name an undefined type, rows
//! listed twice, and kinds without `metadata`.

mod error;
mod json_patch;
mod merge_patch;
mod pointer;
mod strategic;
mod value;

pub use error::PatchError;
pub use json_patch::json_patch;
pub use merge_patch::merge_patch;
pub use strategic::{
    FieldPatchMeta, ListKind, TypeRef, kubernetes_type, patch_metadata, strategic_merge_patch,
};
