//! Field errors and the validators shared by every kind: names, labels,
//! annotations. The texts are upstream's, because kubectl shows them as they
//! are ("The Pod "Bad_Name" is invalid: metadata.name: Invalid value: …").

use std::fmt;

use serde_json::{Map, Value};

/// One problem with one field, like upstream's `field.Error`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The path, e.g. `spec.template.spec.containers[0].image`.
    pub field: String,
    pub kind: ErrorKind,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    Required,
    Invalid(Value),
    NotSupported(Value, Vec<String>),
    Duplicate(Value),
    Forbidden,
    TooLong(usize),
    NotFound(Value),
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Required,
            detail: detail.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Invalid(value),
            detail: detail.into(),
        }
    }

    pub fn not_supported(field: impl Into<String>, value: Value, allowed: &[&str]) -> Self {
        let allowed = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        FieldError {
            field: field.into(),
            kind: ErrorKind::NotSupported(value, allowed),
            detail: String::new(),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: Value) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Duplicate(value),
            detail: String::new(),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Forbidden,
            detail: detail.into(),
        }
    }

    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::TooLong(max),
            detail: String::new(),
        }
    }

    pub fn not_found(field: impl Into<String>, value: Value) -> Self {
        FieldError {
            field: field.into(),
            kind: ErrorKind::NotFound(value),
            detail: String::new(),
        }
    }

    /// An immutable field that was changed.
    pub fn immutable(field: impl Into<String>, value: Value) -> Self {
        Self::invalid(field, value, "field is immutable")
    }

    /// The `reason` of the Status cause.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid(_) => "FieldValueInvalid",
            ErrorKind::NotSupported(..) => "FieldValueNotSupported",
            ErrorKind::Duplicate(_) => "FieldValueDuplicate",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::TooLong(_) => "FieldValueTooLong",
            ErrorKind::NotFound(_) => "FieldValueNotFound",
        }
    }

    /// The message without the field, as in a Status cause.
    pub fn message(&self) -> String {
        let with_detail = |head: String| {
            if self.detail.is_empty() {
                head
            } else {
                format!("{head}: {}", self.detail)
            }
        };
        match &self.kind {
            ErrorKind::Required => with_detail("Required value".into()),
            ErrorKind::Invalid(value) => with_detail(format!("Invalid value: {}", show(value))),
            ErrorKind::NotSupported(value, allowed) => {
                format!(
                    "Unsupported value: {}: supported values: {}",
                    show(value),
                    allowed.join(", ")
                )
            }
            ErrorKind::Duplicate(value) => format!("Duplicate value: {}", show(value)),
            ErrorKind::Forbidden => with_detail("Forbidden".into()),
            ErrorKind::TooLong(max) => format!("Too long: may not be more than {max} bytes"),
            ErrorKind::NotFound(value) => format!("Not found: {}", show(value)),
        }
    }

    /// Prefixes the field path, for errors found in a nested object.
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// Values as upstream prints them: strings quoted, numbers bare.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

// ---- names ------------------------------------------------------------

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|&c| is_label_char(c))
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Labels joined by dots, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.iter().all(|&c| is_label_char(c))
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63 characters (Service names).
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// How a kind's names are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Dns1123Subdomain,
    Dns1123Label,
    Dns1035Label,
    /// Anything without '/' or '%' and not "." or "..": path segment names.
    PathSegment,
}

pub fn validate_name(field: &str, name: &str, rule: NameRule) -> Vec<FieldError> {
    let value = Value::String(name.to_string());
    let (ok, message, max) = match rule {
        NameRule::Dns1123Subdomain => (is_dns1123_subdomain(name), DNS1123_SUBDOMAIN_MSG, 253),
        NameRule::Dns1123Label => (is_dns1123_label(name), DNS1123_LABEL_MSG, 63),
        NameRule::Dns1035Label => (is_dns1035_label(name), DNS1035_LABEL_MSG, 63),
        NameRule::PathSegment => {
            let ok = name != "." && name != ".." && !name.contains('/') && !name.contains('%');
            return if ok {
                vec![]
            } else {
                vec![FieldError::invalid(
                    field,
                    value,
                    "may not contain '/' or '%' or be '.' or '..'",
                )]
            };
        }
    };
    if ok {
        return vec![];
    }
    if name.len() > max {
        return vec![FieldError::invalid(
            field,
            value,
            format!("must be no more than {max} characters"),
        )];
    }
    vec![FieldError::invalid(field, value, message)]
}

// ---- labels and annotations ---------------------------------------------

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `prefix/name` or `name`, as label and annotation keys are.
pub fn validate_qualified_name(field: &str, key: &str) -> Vec<FieldError> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let mut errors = Vec::new();
    if let Some(prefix) = prefix
        && (prefix.is_empty() || !is_dns1123_subdomain(prefix))
    {
        errors.push(FieldError::invalid(field, Value::String(key.into()), "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"));
    }
    if !is_qualified_name_part(name) {
        errors.push(FieldError::invalid(field, Value::String(key.into()), "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
    }
    errors
}

/// Empty, or up to 63 of `[A-Za-z0-9_.-]` starting and ending alphanumeric.
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_qualified_name_part(value)
}

pub fn validate_labels(field: &str, labels: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(labels) = labels else { return errors };
    let Some(map) = labels.as_object() else {
        return vec![FieldError::invalid(
            field,
            labels.clone(),
            "must be a map of strings",
        )];
    };
    for (key, value) in map {
        errors.extend(validate_qualified_name(field, key));
        match value.as_str() {
            Some(v) if is_label_value(v) => {}
            Some(v) => errors.push(FieldError::invalid(field, Value::String(v.into()), "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")),
            None => errors.push(FieldError::invalid(field, value.clone(), "label values must be strings")),
        }
    }
    errors
}

pub fn validate_annotations(field: &str, annotations: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(map) = annotations.and_then(Value::as_object) else {
        return errors;
    };
    let mut total = 0;
    for (key, value) in map {
        errors.extend(validate_qualified_name(field, &key.to_lowercase()));
        total += key.len() + value.as_str().map_or(0, str::len);
    }
    if total > 256 * 1024 {
        errors.push(FieldError::too_long(field, 256 * 1024));
    }
    errors
}

/// Checks `metadata` the way every kind needs: name, namespace, labels,
/// annotations. `generateName` alone is fine before a name is generated.
pub fn validate_object_meta(
    meta: Option<&Value>,
    namespaced: bool,
    rule: NameRule,
) -> Vec<FieldError> {
    let empty = Map::new();
    let meta = meta.and_then(Value::as_object).unwrap_or(&empty);
    let mut errors = Vec::new();
    match meta.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => errors.extend(validate_name("metadata.name", name, rule)),
        _ => errors.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )),
    }
    let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
    if namespaced && namespace.is_empty() {
        errors.push(FieldError::required("metadata.namespace", ""));
    } else if !namespaced && !namespace.is_empty() {
        errors.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    errors.extend(validate_labels("metadata.labels", meta.get("labels")));
    errors.extend(validate_annotations(
        "metadata.annotations",
        meta.get("annotations"),
    ));
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        for ok in ["a", "web", "web-1", "1abc", &"a".repeat(63)] {
            assert!(is_dns1123_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
        assert!(is_dns1123_subdomain("example.com"));
        assert!(!is_dns1123_subdomain("example..com"));
        assert!(!is_dns1035_label("1abc"));
        assert!(is_dns1035_label("abc-1"));
    }

    #[test]
    fn upstream_texts() {
        let errors = validate_name("metadata.name", "Bad_Name", NameRule::Dns1123Subdomain);
        assert_eq!(
            errors[0].to_string(),
            format!("metadata.name: Invalid value: \"Bad_Name\": {DNS1123_SUBDOMAIN_MSG}")
        );
        let errors = validate_labels("metadata.labels", Some(&json!({"app": "bad value"})));
        assert_eq!(errors.len(), 1);
        assert_eq!(
            FieldError::required("spec.containers", "").to_string(),
            "spec.containers: Required value"
        );
        let unsupported = FieldError::not_supported(
            "spec.restartPolicy",
            json!("Sometimes"),
            &["Always", "OnFailure", "Never"],
        );
        assert_eq!(
            unsupported.to_string(),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
        );
    }

    #[test]
    fn object_meta() {
        let meta = json!({"name": "ok", "namespace": "default", "labels": {"app.kubernetes.io/name": "web"}});
        assert!(validate_object_meta(Some(&meta), true, NameRule::Dns1123Subdomain).is_empty());
        let errors = validate_object_meta(
            Some(&json!({"name": "ok"})),
            true,
            NameRule::Dns1123Subdomain,
        );
        assert_eq!(errors[0].field, "metadata.namespace");
        let errors = validate_object_meta(
            Some(&json!({"labels": {"-bad": "x"}})),
            false,
            NameRule::Dns1123Label,
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
    }
}
