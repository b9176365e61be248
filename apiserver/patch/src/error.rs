//! The one error type shared by all patch formats.
//!
//! Every message is written for the person who sent the patch: the API server
//! puts the `Display` text straight into a Kubernetes `Status` (HTTP 400 or
//! 422), so each variant says *which* part of the patch is at fault and *why*.

/// Why a patch could not be applied.
///
/// [`PatchError::is_malformed`] tells apart patches that are wrong in
/// themselves (HTTP 400 Bad Request) from well-formed patches that do not fit
/// the object they were applied to (HTTP 422 Unprocessable Entity).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// A JSON Patch document must be an array of operation objects.
    #[error("a JSON patch must be an array of operations, but this one is {found}")]
    JsonPatchNotAnArray {
        /// The JSON type that was sent instead ("an object", "a string", ...).
        found: &'static str,
    },

    /// A JSON Patch operation is malformed: unknown `op`, missing `path`,
    /// `value` or `from`, or a path that is not a JSON Pointer.
    #[error("operation {index}{}: {reason}", op_label(op.as_deref()))]
    InvalidOperation {
        /// Position of the operation in the patch array, from 0.
        index: usize,
        /// The operation name, when the operation had a usable one.
        op: Option<String>,
        /// What is wrong with it.
        reason: String,
    },

    /// A well-formed JSON Patch operation could not be applied to the
    /// document (missing path, array index out of bounds, ...).
    #[error("operation {index} ({op}): {reason}")]
    OperationFailed {
        /// Position of the operation in the patch array, from 0.
        index: usize,
        /// The operation name ("add", "remove", ...).
        op: &'static str,
        /// What went wrong.
        reason: String,
    },

    /// A JSON Patch `test` operation found a different value.
    #[error(
        "operation {index} (test): the value at path {path:?} is not equal to the expected value"
    )]
    TestFailed {
        /// Position of the operation in the patch array, from 0.
        index: usize,
        /// The JSON Pointer that was tested, as sent.
        path: String,
    },

    /// A strategic merge patch and the object it applies to must both be
    /// JSON objects.
    #[error("strategic merge patch: the {what} must be a JSON object, but it is {found}")]
    NotAnObject {
        /// "patch" or "original object".
        what: &'static str,
        /// The JSON type found instead.
        found: &'static str,
    },

    /// A strategic merge patch directive (`$patch`, `$retainKeys`,
    /// `$setElementOrder/...`, `$deleteFromPrimitiveList/...`) is invalid.
    #[error("strategic merge patch: at {path}: {reason}")]
    InvalidDirective {
        /// Where in the object, e.g. `spec.template.spec.containers`.
        path: String,
        /// What is wrong with the directive.
        reason: String,
    },

    /// An element of a list that merges by key lacks that key.
    #[error(
        "strategic merge patch: at {path}: the element has no {key:?} field, \
         which this list needs to match elements (its merge key)"
    )]
    MissingMergeKey {
        /// The element, e.g. `spec.template.spec.containers[1]`.
        path: String,
        /// The merge key of the list, e.g. `name`.
        key: String,
    },

    /// A list cannot be merged because of its contents (mixed element types,
    /// lists of lists, objects in a list that has no merge key).
    #[error("strategic merge patch: at {path}: {reason}")]
    UnmergeableList {
        /// Where the list is.
        path: String,
        /// Why it cannot be merged.
        reason: String,
    },
}

impl PatchError {
    /// True when the patch document itself is malformed, whatever it is
    /// applied to; false when the patch is well formed but does not fit the
    /// object. Kubernetes answers the first with 400 and the second with 422.
    pub fn is_malformed(&self) -> bool {
        match self {
            PatchError::JsonPatchNotAnArray { .. } | PatchError::InvalidOperation { .. } => true,
            PatchError::NotAnObject { what, .. } => *what == "patch",
            PatchError::OperationFailed { .. }
            | PatchError::TestFailed { .. }
            | PatchError::InvalidDirective { .. }
            | PatchError::MissingMergeKey { .. }
            | PatchError::UnmergeableList { .. } => false,
        }
    }
}

/// " (add)" when the operation name is known, "" otherwise.
fn op_label(op: Option<&str>) -> String {
    op.map(|op| format!(" ({op})")).unwrap_or_default()
}
