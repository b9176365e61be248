//! Kubernetes' protobuf encoding of request bodies, turned into the JSON form
//! the API server works on.
//!
//! kubectl's typed-client commands (`kubectl create deployment|namespace|
//! configmap|secret|service|job|...`, `kubectl autoscale`, `kubectl auth
//! can-i`) send their body as `application/vnd.kubernetes.protobuf` and do not
//! fall back to JSON. Such a body is the 4 magic bytes `k8s\0` followed by a
//! `runtime.Unknown` envelope: the object's apiVersion and kind, and the
//! object itself encoded with Kubernetes' `generated.proto` messages.
//!
//! [`decode`] reads that envelope, decodes the object with prost-reflect
//! against the descriptors of `proto/k8s/` (compiled by `build.rs`), and
//! writes the JSON that the same client would have sent as JSON: field names
//! are the JSON names, integers are numbers, bytes are base64, and the
//! Kubernetes types with a custom JSON form (Time, MicroTime, Duration,
//! Quantity, IntOrString, RawExtension, FieldsV1) take that form. Which
//! fields appear follows the presence rules in `proto/k8s/README.md`, so
//! `kubectl create deployment` decodes to exactly what `kubectl create
//! deployment --dry-run=client -o json` prints.
//!
//! Only what `proto/k8s/` declares is understood. Anything else is an error
//! that names it (an unknown kind, a field the subset leaves out), never
//! dropped: dropping a field would silently change the object. Bodies come
//! from the network, so malformed input of any kind is an error, never a
//! panic.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost::bytes::Bytes;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, ReflectMessage, Value,
};
use serde_json::{Map, Value as Json};

/// The media type of Kubernetes' protobuf encoding.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The bytes every protobuf-encoded Kubernetes body starts with.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// The descriptor set `build.rs` compiled from `proto/k8s/`.
static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/k8s_descriptors.bin"));

/// The kinds a protobuf body may carry: (apiVersion, kind, message).
const KINDS: &[(&str, &str, &str)] = &[
    ("v1", "ConfigMap", "k8s.io.api.core.v1.ConfigMap"),
    ("v1", "Namespace", "k8s.io.api.core.v1.Namespace"),
    ("v1", "ResourceQuota", "k8s.io.api.core.v1.ResourceQuota"),
    ("v1", "Secret", "k8s.io.api.core.v1.Secret"),
    ("v1", "Service", "k8s.io.api.core.v1.Service"),
    ("v1", "ServiceAccount", "k8s.io.api.core.v1.ServiceAccount"),
    (
        "apps/v1",
        "ControllerRevision",
        "k8s.io.api.apps.v1.ControllerRevision",
    ),
    ("apps/v1", "Deployment", "k8s.io.api.apps.v1.Deployment"),
    (
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        "k8s.io.api.authentication.v1.SelfSubjectReview",
    ),
    (
        "authentication.k8s.io/v1",
        "TokenRequest",
        "k8s.io.api.authentication.v1.TokenRequest",
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        "k8s.io.api.authorization.v1.SelfSubjectAccessReview",
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        "k8s.io.api.authorization.v1.SelfSubjectRulesReview",
    ),
    (
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        "k8s.io.api.autoscaling.v1.HorizontalPodAutoscaler",
    ),
    ("autoscaling/v1", "Scale", "k8s.io.api.autoscaling.v1.Scale"),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "k8s.io.api.autoscaling.v2.HorizontalPodAutoscaler",
    ),
    ("batch/v1", "CronJob", "k8s.io.api.batch.v1.CronJob"),
    ("batch/v1", "Job", "k8s.io.api.batch.v1.Job"),
    (
        "networking.k8s.io/v1",
        "Ingress",
        "k8s.io.api.networking.v1.Ingress",
    ),
    ("policy/v1", "Eviction", "k8s.io.api.policy.v1.Eviction"),
    (
        "policy/v1",
        "PodDisruptionBudget",
        "k8s.io.api.policy.v1.PodDisruptionBudget",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "k8s.io.api.rbac.v1.ClusterRole",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "k8s.io.api.rbac.v1.ClusterRoleBinding",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "Role",
        "k8s.io.api.rbac.v1.Role",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "k8s.io.api.rbac.v1.RoleBinding",
    ),
    (
        "scheduling.k8s.io/v1",
        "PriorityClass",
        "k8s.io.api.scheduling.v1.PriorityClass",
    ),
];

// Messages whose JSON form is not an object of their fields.
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
const EXTRA_VALUE: &str = "k8s.io.api.authentication.v1.ExtraValue";

/// The field option that marks an embedded Go struct (`proto/k8s/skiff/k8sjson.proto`).
const INLINE_OPTION: &str = "skiff.k8sjson.inline";

/// How many RawExtensions holding protobuf objects may nest inside each
/// other. Kubernetes objects nest one at most; the limit only stops a
/// crafted body from recursing without end.
const MAX_EMBEDDED_DEPTH: usize = 4;

/// A decoded object.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeObject {
    /// From the envelope, e.g. `apps/v1`.
    pub api_version: String,
    /// From the envelope, e.g. `Deployment`.
    pub kind: String,
    /// The object in Kubernetes' JSON form, `apiVersion` and `kind` included.
    pub object: Json,
}

/// Why a body could not be decoded. Every message is meant for the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error(
        "the body is not in Kubernetes' protobuf encoding: it does not start with the bytes \"k8s\\0\""
    )]
    NotProtobuf,
    #[error("the protobuf envelope (runtime.Unknown) of the body is malformed: {0}")]
    Envelope(#[source] prost::DecodeError),
    #[error("the protobuf envelope of the body does not name the object's apiVersion and kind")]
    MissingType,
    #[error("the protobuf envelope of the body carries no object")]
    MissingObject,
    #[error(
        "the protobuf body's content encoding {0:?} is not supported; send it uncompressed or as JSON"
    )]
    ContentEncoding(String),
    #[error("the protobuf body holds content of type {0:?}; only protobuf objects are supported")]
    ContentType(String),
    #[error("{kind} in {api_version} is not supported in protobuf requests yet; send JSON")]
    UnknownKind { api_version: String, kind: String },
    #[error("the {message} in the protobuf body is malformed: {source}")]
    Malformed {
        message: String,
        #[source]
        source: prost::DecodeError,
    },
    #[error(
        "field {number} of {message}{} is not supported in protobuf requests yet; send JSON",
        at(.path)
    )]
    UnsupportedField {
        message: String,
        number: u32,
        /// Where in the object, e.g. `spec.template.spec.containers[0]`.
        path: String,
    },
    #[error("invalid {message}{} in the protobuf body: {reason}", at(.path))]
    InvalidValue {
        message: String,
        reason: String,
        path: String,
    },
    /// The compiled-in descriptors did not load: a build problem, not the client's.
    #[error("the Kubernetes protobuf descriptors built into the server are unusable: {0}")]
    Descriptors(String),
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" (at {path})")
    }
}

impl DecodeError {
    /// Puts `segment` in front of the error's path, as the error travels up
    /// from a nested message.
    fn within(mut self, segment: &str) -> Self {
        if let Self::UnsupportedField { path, .. } | Self::InvalidValue { path, .. } = &mut self {
            *path = if path.is_empty() {
                segment.to_owned()
            } else if path.starts_with('[') {
                format!("{segment}{path}")
            } else {
                format!("{segment}.{path}")
            };
        }
        self
    }

    fn invalid(message: &str, reason: impl Into<String>) -> Self {
        Self::InvalidValue {
            message: message.to_owned(),
            reason: reason.into(),
            path: String::new(),
        }
    }
}

/// Decodes a protobuf request body into the object in Kubernetes' JSON form.
pub fn decode(body: &[u8]) -> Result<KubeObject, DecodeError> {
    decode_nested(body, 0)
}

/// The (apiVersion, kind) pairs [`decode`] accepts.
pub fn supported_kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    KINDS
        .iter()
        .map(|&(api_version, kind, _)| (api_version, kind))
}

fn decode_nested(body: &[u8], depth: usize) -> Result<KubeObject, DecodeError> {
    let registry = REGISTRY
        .as_ref()
        .map_err(|e| DecodeError::Descriptors(e.clone()))?;
    let envelope = body.strip_prefix(&MAGIC).ok_or(DecodeError::NotProtobuf)?;
    let unknown = DynamicMessage::decode(registry.unknown.clone(), envelope)
        .map_err(DecodeError::Envelope)?;
    reject_unknown_fields(&unknown)?;

    let type_meta = match unknown.get_field_by_name("typeMeta").as_deref() {
        Some(Value::Message(type_meta)) => type_meta.clone(),
        _ => return Err(DecodeError::MissingType),
    };
    reject_unknown_fields(&type_meta).map_err(|e| e.within("typeMeta"))?;
    let api_version = string_field(&type_meta, "apiVersion");
    let kind = string_field(&type_meta, "kind");
    if api_version.is_empty() || kind.is_empty() {
        return Err(DecodeError::MissingType);
    }
    let content_encoding = string_field(&unknown, "contentEncoding");
    if !content_encoding.is_empty() {
        return Err(DecodeError::ContentEncoding(content_encoding));
    }
    let content_type = string_field(&unknown, "contentType");
    if !content_type.is_empty() && content_type != MEDIA_TYPE {
        return Err(DecodeError::ContentType(content_type));
    }

    let Some(desc) = registry.kinds.get(&(api_version.as_str(), kind.as_str())) else {
        return Err(DecodeError::UnknownKind { api_version, kind });
    };
    // Go clients always write `raw`; without it there is no object (and the
    // body was most likely cut short).
    if !unknown
        .descriptor()
        .get_field_by_name("raw")
        .is_some_and(|raw| unknown.has_field(&raw))
    {
        return Err(DecodeError::MissingObject);
    }
    let raw = bytes_field(&unknown, "raw");
    let message =
        DynamicMessage::decode(desc.clone(), raw).map_err(|source| DecodeError::Malformed {
            message: desc.full_name().to_owned(),
            source,
        })?;
    let converter = Converter { registry, depth };
    let mut object = match converter.message(&message)? {
        Json::Object(fields) => fields,
        _ => Map::new(),
    };
    object.insert("apiVersion".to_owned(), Json::String(api_version.clone()));
    object.insert("kind".to_owned(), Json::String(kind.clone()));
    Ok(KubeObject {
        api_version,
        kind,
        object: Json::Object(object),
    })
}

/// The descriptors, looked up once.
struct Registry {
    unknown: MessageDescriptor,
    kinds: HashMap<(&'static str, &'static str), MessageDescriptor>,
    /// Full names of the fields marked `(skiff.k8sjson.inline)`.
    inline: HashSet<String>,
}

/// Loaded on first use. A failure is kept and reported by every [`decode`]
/// rather than panicking in the server; the tests make sure it loads.
static REGISTRY: LazyLock<Result<Registry, String>> = LazyLock::new(Registry::load);

impl Registry {
    fn load() -> Result<Self, String> {
        let pool = DescriptorPool::decode(DESCRIPTORS).map_err(|e| e.to_string())?;
        let message = |name: &str| {
            pool.get_message_by_name(name)
                .ok_or_else(|| format!("message {name} is missing"))
        };
        let unknown = message(UNKNOWN)?;
        let kinds = KINDS
            .iter()
            .map(|&(api_version, kind, name)| Ok(((api_version, kind), message(name)?)))
            .collect::<Result<_, String>>()?;
        let option = pool
            .get_extension_by_name(INLINE_OPTION)
            .ok_or_else(|| format!("option {INLINE_OPTION} is missing"))?;
        let inline = pool
            .all_messages()
            .flat_map(|message| message.fields().collect::<Vec<_>>())
            .filter(|field| {
                let options = field.options();
                options.has_extension(&option)
                    && options.get_extension(&option).as_bool() == Some(true)
            })
            .map(|field| field.full_name().to_owned())
            .collect();
        Ok(Self {
            unknown,
            kinds,
            inline,
        })
    }
}

/// Turns decoded messages into Kubernetes JSON.
struct Converter<'a> {
    registry: &'a Registry,
    /// How many protobuf RawExtensions this object sits inside.
    depth: usize,
}

impl Converter<'_> {
    fn message(&self, message: &DynamicMessage) -> Result<Json, DecodeError> {
        reject_unknown_fields(message)?;
        let descriptor = message.descriptor();
        let name = descriptor.full_name();
        match name {
            TIME => return time(message, false),
            MICRO_TIME => return time(message, true),
            DURATION => return Ok(Json::String(go_duration(int_field(message, "duration")))),
            QUANTITY => {
                // An empty Quantity is Go's zero quantity.
                let quantity = string_field(message, "string");
                return Ok(Json::String(if quantity.is_empty() {
                    "0".to_owned()
                } else {
                    quantity
                }));
            }
            INT_OR_STRING => return int_or_string(message),
            RAW_EXTENSION | FIELDS_V1 => return self.embedded(message),
            EXTRA_VALUE => return self.field_value(message, "items"),
            _ => {}
        }

        let mut object = Map::new();
        for (field, value) in message.fields() {
            let inline = self.registry.inline.contains(field.full_name());
            let json = self.value(value).map_err(|e| {
                // An inline field has no name in the JSON, nor in a path.
                if inline {
                    e
                } else {
                    e.within(field.json_name())
                }
            })?;
            if inline {
                // An embedded Go struct: its fields belong to this object.
                match json {
                    Json::Object(fields) => object.extend(fields),
                    _ => {
                        return Err(DecodeError::invalid(
                            name,
                            format!("inline field {} is not an object", field.name()),
                        ));
                    }
                }
            } else {
                object.insert(field.json_name().to_owned(), json);
            }
        }
        Ok(Json::Object(object))
    }

    fn value(&self, value: &Value) -> Result<Json, DecodeError> {
        Ok(match value {
            Value::Bool(b) => Json::Bool(*b),
            Value::I32(n) => Json::from(*n),
            Value::I64(n) => Json::from(*n),
            Value::U32(n) => Json::from(*n),
            Value::U64(n) => Json::from(*n),
            Value::F32(x) => float(f64::from(*x))?,
            Value::F64(x) => float(*x)?,
            Value::String(s) => Json::String(s.clone()),
            // Kubernetes' JSON carries bytes ([]byte in Go) as standard base64.
            Value::Bytes(b) => Json::String(BASE64.encode(b)),
            Value::EnumNumber(n) => Json::from(*n),
            Value::Message(m) => self.message(m)?,
            Value::List(items) => Json::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.value(item).map_err(|e| e.within(&format!("[{i}]"))))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(entries) => {
                // Sorted, so the output does not depend on hash order.
                let mut entries: Vec<(String, &Value)> =
                    entries.iter().map(|(k, v)| (map_key(k), v)).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let mut object = Map::new();
                for (key, item) in entries {
                    let json = self
                        .value(item)
                        .map_err(|e| e.within(&format!("[{key}]")))?;
                    object.insert(key, json);
                }
                Json::Object(object)
            }
        })
    }

    /// The JSON of one field, or null when it is not set.
    fn field_value(&self, message: &DynamicMessage, name: &str) -> Result<Json, DecodeError> {
        match message.descriptor().get_field_by_name(name) {
            Some(field) if message.has_field(&field) => self.value(&message.get_field(&field)),
            _ => Ok(Json::Null),
        }
    }

    /// RawExtension and FieldsV1: an object embedded as serialized bytes,
    /// which the JSON form embeds as JSON (null when empty).
    fn embedded(&self, message: &DynamicMessage) -> Result<Json, DecodeError> {
        let descriptor = message.descriptor();
        let name = descriptor.full_name();
        let raw_field = if name == FIELDS_V1 { "Raw" } else { "raw" };
        let raw = bytes_field(message, raw_field);
        if raw.is_empty() {
            return Ok(Json::Null);
        }
        if raw.starts_with(&MAGIC) {
            // An embedded object in protobuf encoding, with its own envelope.
            if self.depth >= MAX_EMBEDDED_DEPTH {
                return Err(DecodeError::invalid(
                    name,
                    "embedded objects nest too deeply",
                ));
            }
            return decode_nested(&raw, self.depth + 1).map(|object| object.object);
        }
        serde_json::from_slice(&raw).map_err(|e| {
            DecodeError::invalid(
                name,
                format!("the embedded object is neither protobuf nor JSON: {e}"),
            )
        })
    }
}

fn reject_unknown_fields(message: &DynamicMessage) -> Result<(), DecodeError> {
    match message.unknown_fields().next() {
        Some(field) => Err(DecodeError::UnsupportedField {
            message: message.descriptor().full_name().to_owned(),
            number: field.number(),
            path: String::new(),
        }),
        None => Ok(()),
    }
}

fn string_field(message: &DynamicMessage, name: &str) -> String {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// A bytes field; the clone shares the decoded buffer rather than copying it.
fn bytes_field(message: &DynamicMessage, name: &str) -> Bytes {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::Bytes(b)) => b.clone(),
        _ => Bytes::new(),
    }
}

fn int_field(message: &DynamicMessage, name: &str) -> i64 {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::I64(n)) => *n,
        Some(Value::I32(n)) => i64::from(*n),
        _ => 0,
    }
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::String(s) => s.clone(),
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
    }
}

fn float(x: f64) -> Result<Json, DecodeError> {
    serde_json::Number::from_f64(x)
        .map(Json::Number)
        .ok_or_else(|| DecodeError::invalid("number", format!("{x} has no JSON form")))
}

/// IntOrString is a bare number or a bare string in JSON.
fn int_or_string(message: &DynamicMessage) -> Result<Json, DecodeError> {
    match int_field(message, "type") {
        0 => Ok(Json::from(int_field(message, "intVal"))),
        1 => Ok(Json::String(string_field(message, "strVal"))),
        other => Err(DecodeError::invalid(
            INT_OR_STRING,
            format!("type {other} is neither 0 (int) nor 1 (string)"),
        )),
    }
}

/// Time and MicroTime: an empty message is Go's zero time, null in JSON;
/// otherwise RFC 3339 in UTC, with whole seconds for Time (Kubernetes drops
/// the nanoseconds of a Time) and exactly six fractional digits for MicroTime.
fn time(message: &DynamicMessage, micro: bool) -> Result<Json, DecodeError> {
    let name = if micro { MICRO_TIME } else { TIME };
    if message.fields().next().is_none() {
        return Ok(Json::Null);
    }
    let mut seconds = int_field(message, "seconds");
    let mut micros = 0;
    if micro {
        // Go truncates to microseconds, then normalizes into [0, 1s).
        let nanos = int_field(message, "nanos") / 1000 * 1000;
        seconds = seconds
            .checked_add(nanos.div_euclid(1_000_000_000))
            .ok_or_else(|| DecodeError::invalid(name, "seconds out of range"))?;
        micros = nanos.rem_euclid(1_000_000_000) / 1000;
    }
    let timestamp = jiff::Timestamp::from_second(seconds)
        .map_err(|_| DecodeError::invalid(name, format!("{seconds} seconds is out of range")))?;
    let t = jiff::tz::Offset::UTC.to_datetime(timestamp);
    // Kubernetes (Go) refuses to write years outside 0..=9999.
    if t.year() < 0 {
        return Err(DecodeError::invalid(
            name,
            format!("year {} is out of range", t.year()),
        ));
    }
    let date = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    Ok(Json::String(if micro {
        format!("{date}.{micros:06}Z")
    } else {
        format!("{date}Z")
    }))
}

/// A duration in nanoseconds as Go's `time.Duration.String` writes it, which
/// is the JSON form of meta/v1 Duration: `0s`, `1.5s`, `5m0s`, `1h0m0s`,
/// `300ms`, `1.2µs`, `-2m3s`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        // Under a second, the largest unit that fits, with a fraction.
        let (unit, scale, digits) = match u {
            0..1_000 => ("ns", 1, 0),
            1_000..1_000_000 => ("µs", 1_000, 3),
            _ => ("ms", 1_000_000, 6),
        };
        return format!("{sign}{}{}{unit}", u / scale, fraction(u % scale, digits));
    }
    let seconds = u / 1_000_000_000;
    let (hours, minutes, secs) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let secs = format!("{secs}{}s", fraction(u % 1_000_000_000, 9));
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{secs}")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{secs}")
    } else {
        format!("{sign}{secs}")
    }
}

/// `.5` for (5, 1), `.25` for (250, 3): the fraction `value / 10^digits`
/// without trailing zeros, or nothing when it is zero.
fn fraction(value: u64, digits: usize) -> String {
    if value == 0 {
        return String::new();
    }
    let padded = format!("{value:0digits$}");
    format!(".{}", padded.trim_end_matches('0'))
}

#[cfg(test)]
mod tests;
