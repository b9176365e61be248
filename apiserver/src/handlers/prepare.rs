//! What every write does to an object before it is stored: check its kind
//! and namespace, look for unknown fields (`fieldValidation`), set the
//! metadata the server owns, default and validate it.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::object::{self, str_at};
use crate::registry::{Resource, Sub};
use crate::validation::{FieldError, validate_object_meta};

use super::Query;

/// `fieldValidation`: what to do with fields the type does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn from_query(query: &Query) -> Self {
        match query.get("fieldValidation") {
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            // Upstream's default since 1.27.
            _ => FieldValidation::Warn,
        }
    }
}

/// `Deployment in version "v1" cannot be handled as a Deployment: …`
fn cannot_handle(resource: &Resource, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}: {why}",
        kind = resource.kind,
        version = resource.version
    ))
}

/// Sets kind and apiVersion, refusing ones that name another type.
pub fn check_kind(resource: &Resource, obj: &mut Value) -> ApiResult<()> {
    let api_version = resource.api_version();
    // A patch can turn the object into anything (`[{"op":"replace","path":"",
    // "value":1}]`); upstream's decoder then refuses it the same way.
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "the object in the data is not a JSON object; expected a {}",
            resource.kind
        )));
    }
    match str_at(obj, &["apiVersion"]) {
        Some(v) if !v.is_empty() && v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
        _ => {}
    }
    match str_at(obj, &["kind"]) {
        Some(k) if !k.is_empty() && k != resource.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                resource.kind
            )));
        }
        _ => {}
    }
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(resource.kind);
    Ok(())
}

/// Sets the namespace from the URL, refusing a different one in the body.
pub fn check_namespace(resource: &Resource, obj: &mut Value, namespace: &str) -> ApiResult<()> {
    if !resource.namespaced {
        return Ok(());
    }
    match str_at(obj, &["metadata", "namespace"]) {
        Some(ns) if !ns.is_empty() && ns != namespace => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            object::set(obj, &["metadata", "namespace"], json!(namespace));
            Ok(())
        }
    }
}

/// Decodes the object as its type: a type mismatch is a 400; unknown fields
/// are an error, a warning or nothing, per `fieldValidation`. Returns the
/// warnings to send.
pub fn check_fields(
    resource: &Resource,
    obj: &Value,
    mode: FieldValidation,
) -> ApiResult<Vec<String>> {
    let typed = (resource.typed.roundtrip)(obj).map_err(|e| cannot_handle(resource, e))?;
    if mode == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let mut unknown = Vec::new();
    unknown_fields(obj, &typed, "", &mut unknown);
    strict_errors(resource, "unknown field", &unknown, mode)
}

/// Fields a JSON body sent twice (see `body::duplicate_fields`): an error,
/// a warning each, or nothing, per `fieldValidation`, as unknown fields are.
pub fn check_duplicates(
    resource: &Resource,
    duplicates: &[String],
    mode: FieldValidation,
) -> ApiResult<Vec<String>> {
    strict_errors(resource, "duplicate field", duplicates, mode)
}

/// `fields` as upstream's strict decoder reports them (`unknown field
/// "spec.x"`): one 400 for Strict, a warning each for Warn, nothing for
/// Ignore.
fn strict_errors(
    resource: &Resource,
    what: &str,
    fields: &[String],
    mode: FieldValidation,
) -> ApiResult<Vec<String>> {
    if mode == FieldValidation::Ignore || fields.is_empty() {
        return Ok(Vec::new());
    }
    let listed: Vec<String> = fields.iter().map(|f| format!("{what} \"{f}\"")).collect();
    match mode {
        FieldValidation::Strict => Err(cannot_handle(
            resource,
            format!("strict decoding error: {}", listed.join(", ")),
        )),
        _ => Ok(listed),
    }
}

/// Paths present (and not null) in `sent` but not in `typed`, the same
/// object after a trip through its type.
fn unknown_fields(sent: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (sent, typed) {
        (Value::Object(sent), Value::Object(typed)) => {
            for (key, value) in sent {
                if value.is_null() {
                    continue;
                }
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match typed.get(key) {
                    Some(t) => unknown_fields(value, t, &here, out),
                    None => out.push(here),
                }
            }
        }
        (Value::Array(sent), Value::Array(typed)) => {
            for (i, (s, t)) in sent.iter().zip(typed).enumerate() {
                unknown_fields(s, t, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// `generateName` + 5 characters, as upstream picks them (no vowels, no
/// look-alike digits).
pub fn generated_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    // Upstream cuts the prefix to 58 bytes (63 minus the suffix). A cut in
    // the middle of a character would panic, so it moves back to the last
    // character boundary; the name then fails validation as usual.
    let mut cut = prefix.len().min(58);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    let prefix = &prefix[..cut];
    format!("{prefix}{suffix}")
}

pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::random();
    // A random (version 4, variant 1) UUID: the version is the high nibble
    // of byte 6, the variant the top two bits of byte 8.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Now, as metadata timestamps are written (RFC 3339, whole seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The metadata a create sets: name (from generateName), uid, creation
/// time, generation; and what a client may not set on create.
pub fn init_metadata(resource: &Resource, obj: &mut Value) -> ApiResult<()> {
    let meta = object::object_at(obj, &["metadata"]);
    if let Some(rv) = meta
        .get("resourceVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
    {
        let _ = rv;
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty()
        && let Some(prefix) = meta
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
    {
        meta.insert("name".into(), json!(generated_name(prefix)));
    }
    meta.insert("uid".into(), json!(new_uid()));
    meta.insert("creationTimestamp".into(), json!(now()));
    for server_owned in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(server_owned);
    }
    if resource.tracks_generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    drop_empty(meta);
    Ok(())
}

/// Empty label and annotation maps are left out, as upstream stores them.
fn drop_empty(meta: &mut Map<String, Value>) {
    for key in ["labels", "annotations", "finalizers", "ownerReferences"] {
        let empty = match meta.get(key) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            meta.remove(key);
        }
    }
}

/// The metadata an update may not change: copied from the stored object.
pub fn keep_server_metadata(new: &mut Value, old: &Value) {
    for key in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "name",
        "namespace",
        "generateName",
    ] {
        match object::get(old, &["metadata", key]) {
            Some(v) => object::set(new, &["metadata", key], v.clone()),
            None => {
                object::remove(new, &["metadata", key]);
            }
        }
    }
    drop_empty(object::object_at(new, &["metadata"]));
}

/// Validates metadata and the kind's own rules; 422 listing every problem.
pub fn validate(resource: &Resource, obj: &Value, old: Option<&Value>) -> ApiResult<()> {
    let mut errors: Vec<FieldError> =
        validate_object_meta(obj.get("metadata"), resource.namespaced, resource.name_rule);
    errors.extend(match old {
        Some(old) => resource.strategy.validate_update(obj, old),
        None => resource.strategy.validate(obj),
    });
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        resource.kind,
        resource.group,
        object::name(obj),
        &errors,
    ))
}

/// The pure half of a create, up to admission and storage: the object's
/// kind, namespace and fields checked, the server's metadata set, status
/// dropped (it has its own subresource), defaulted and validated. Returns
/// the object and the warnings for `fieldValidation=Warn`.
pub fn for_create(
    resource: &Resource,
    mut obj: Value,
    namespace: &str,
    mode: FieldValidation,
) -> ApiResult<(Value, Vec<String>)> {
    check_kind(resource, &mut obj)?;
    check_namespace(resource, &mut obj, namespace)?;
    let warnings = check_fields(resource, &obj, mode)?;
    init_metadata(resource, &mut obj)?;
    if resource.has(Sub::Status)
        && !resource.strategy.keeps_status_on_create()
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    resource.strategy.default(&mut obj);
    resource.strategy.prepare_for_create(&mut obj);
    validate(resource, &obj, None)?;
    Ok((obj, warnings))
}

/// The checks of an update's body before the stored object is read: kind,
/// namespace, the name on the URL, fields.
pub fn for_update(
    resource: &Resource,
    mut obj: Value,
    namespace: &str,
    name: &str,
    mode: FieldValidation,
) -> ApiResult<(Value, Vec<String>)> {
    check_kind(resource, &mut obj)?;
    check_namespace(resource, &mut obj, namespace)?;
    match str_at(&obj, &["metadata", "name"]) {
        Some(n) if !n.is_empty() && n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        _ => object::set(&mut obj, &["metadata", "name"], json!(name)),
    }
    let warnings = check_fields(resource, &obj, mode)?;
    Ok((obj, warnings))
}

/// The checks of an object a patch produced from the stored one: it is
/// still an object of the kind, with the same name and namespace, and its
/// fields are the type's.
pub fn check_patched(
    resource: &Resource,
    patched: &mut Value,
    namespace: &str,
    name: &str,
    mode: FieldValidation,
) -> ApiResult<Vec<String>> {
    check_kind(resource, patched)?;
    if object::name(patched) != name
        || (resource.namespaced && object::namespace(patched) != namespace)
    {
        return Err(ApiError::bad_request(
            "a patch may not change the name or namespace of an object",
        ));
    }
    check_fields(resource, patched, mode)
}

/// What an update of `current` with `sent` stores: the main resource cannot
/// change status (when the kind has a status subresource) and the status
/// subresource can change only status; the server's metadata stays.
pub fn updated(resource: &Resource, sub: Option<Sub>, sent: &Value, current: &Value) -> Value {
    let mut new = if sub == Some(Sub::Finalize) {
        // Only the namespace's spec.finalizers change.
        let mut new = current.clone();
        match object::get(sent, &["spec", "finalizers"]) {
            Some(finalizers) => object::set(&mut new, &["spec", "finalizers"], finalizers.clone()),
            None => {
                object::remove(&mut new, &["spec", "finalizers"]);
            }
        }
        new
    } else if sub == Some(Sub::Status) {
        let mut new = current.clone();
        match sent.get("status") {
            Some(status) if !status.is_null() => new["status"] = status.clone(),
            _ => {
                object::remove(&mut new, &["status"]);
            }
        }
        new
    } else {
        let mut new = sent.clone();
        if resource.has(Sub::Status) {
            match current.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    object::remove(&mut new, &["status"]);
                }
            }
        }
        new
    };
    keep_server_metadata(&mut new, current);
    if sub.is_none() {
        resource.strategy.default(&mut new);
        if resource.tracks_generation && spec_changed(&new, current) {
            let generation = object::i64_at(current, &["metadata", "generation"]).unwrap_or(1);
            object::set(&mut new, &["metadata", "generation"], json!(generation + 1));
        }
    }
    new
}

/// Whether the spec (everything but metadata and status) changed: what
/// bumps `metadata.generation`.
pub fn spec_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            for key in ["metadata", "status", "apiVersion", "kind"] {
                map.remove(key);
            }
        }
        v
    };
    strip(new) != strip(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_found() {
        let deployments = crate::registry::find("apps", "v1", "deployments").unwrap();
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "creationTimestamp": null}, "spec": {"replica": 3, "selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": [{"name": "a", "image": "b", "imagePolicy": "x"}]}}}});
        let warnings = check_fields(deployments, &obj, FieldValidation::Warn).unwrap();
        assert_eq!(
            warnings,
            vec![
                "unknown field \"spec.replica\"",
                "unknown field \"spec.template.spec.containers[0].imagePolicy\""
            ]
        );
        let err = check_fields(deployments, &obj, FieldValidation::Strict).unwrap_err();
        assert_eq!(
            err.message,
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replica\", unknown field \"spec.template.spec.containers[0].imagePolicy\""
        );
        assert!(
            check_fields(deployments, &obj, FieldValidation::Ignore)
                .unwrap()
                .is_empty()
        );
        let wrong_type = json!({"metadata": {"name": "x"}, "spec": {"replicas": "three"}});
        let err = check_fields(deployments, &wrong_type, FieldValidation::Ignore).unwrap_err();
        assert!(
            err.message.starts_with(
                "Deployment in version \"v1\" cannot be handled as a Deployment: invalid type"
            ),
            "{}",
            err.message
        );
    }

    #[test]
    fn names_and_uids() {
        let name = generated_name("web-");
        assert_eq!(name.len(), 9);
        assert!(name.starts_with("web-"));
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(
            uid.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert_eq!(&uid[14..15], "4");
        assert!(matches!(&uid[19..20], "8" | "9" | "a" | "b"), "{uid}");
        assert!(now().ends_with('Z'));
    }

    #[test]
    fn generation_follows_spec() {
        let old = json!({"metadata": {"generation": 1, "labels": {"a": "b"}}, "spec": {"replicas": 1}, "status": {"x": 1}});
        let relabelled = json!({"metadata": {"generation": 1, "labels": {"a": "c"}}, "spec": {"replicas": 1}, "status": {"x": 2}});
        assert!(!spec_changed(&relabelled, &old));
        let scaled = json!({"metadata": {}, "spec": {"replicas": 2}});
        assert!(spec_changed(&scaled, &old));
    }
}
