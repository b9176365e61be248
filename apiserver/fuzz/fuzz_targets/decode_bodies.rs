//! `decode_bodies`: request bodies as bytes, in every encoding the API
//! server reads, through decoding and on into the write path.
//!
//! Each input picks a mode and a resource, the rest is the body:
//!
//! - any bytes with any `Content-Type` (JSON, the patch types, YAML and
//!   its aliases, protobuf, an unknown one) through `http::body::decode`,
//!   `decode_object` and `protobuf::decode_body`;
//! - the bytes spliced into a valid JSON or YAML manifest of the resource,
//!   so that most bodies are nearly valid and reach the later steps (YAML
//!   anchors, aliases, deep nesting and huge numbers come from mutation and
//!   from `dict/bodies.dict`);
//! - the bytes as the `raw` object of a well-formed protobuf envelope
//!   (`k8s\0` + `runtime.Unknown`) naming one of the kinds
//!   `skiff_proto::kubernetes` decodes, so the fuzzer works on the object
//!   decoders instead of rediscovering the envelope; and as a whole body
//!   after the magic bytes.
//!
//! A body that decodes to an object is created (see
//! `skiff_apiserver_fuzz::create`), and a body with a patch content type is
//! also applied as that patch to a stored object of the resource.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use skiff_apiserver::registry::RESOURCES;
use skiff_apiserver_fuzz as fuzz;
use skiff_proto::kubernetes;

const CONTENT_TYPES: &[&str] = &[
    "",
    "application/json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/yaml",
    "application/apply-patch+yaml",
    "application/x-yaml",
    "text/yaml",
    "text/plain",
    kubernetes::MEDIA_TYPE,
];

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let mode = u.int_in_range(0u8..=4)?;
    let resource = fuzz::resource(u)?;
    match mode {
        0 => {
            let content_type = *u.choose(CONTENT_TYPES)?;
            let bytes = u.bytes(u.len())?;
            fuzz::body_in(resource, content_type, bytes);
        }
        1 | 2 => {
            let manifest = if mode == 1 {
                serde_json::to_string_pretty(&fuzz::template(resource)).unwrap_or_default()
            } else {
                serde_saphyr::to_string(&fuzz::template(resource)).unwrap_or_default()
            };
            let at = u.int_in_range(0..=manifest.len())?;
            let cut = u.int_in_range(0..=manifest.len() - at)?;
            let insert = u.bytes(u.len())?;
            let mut bytes = manifest.as_bytes()[..at].to_vec();
            bytes.extend_from_slice(insert);
            bytes.extend_from_slice(&manifest.as_bytes()[at + cut..]);
            let content_type = if mode == 1 {
                "application/json"
            } else {
                "application/yaml"
            };
            fuzz::body_in(resource, content_type, &bytes);
        }
        3 => {
            let kinds: Vec<(&str, &str)> = kubernetes::supported_kinds().collect();
            let (api_version, kind) = *u.choose(&kinds)?;
            let raw = u.bytes(u.len())?;
            let bytes = envelope(api_version, kind, raw);
            let _ = kubernetes::decode(&bytes);
            // The resource the URL names is usually the body's kind.
            let resource = RESOURCES
                .iter()
                .find(|r| r.api_version() == api_version && r.kind == kind)
                .unwrap_or(resource);
            fuzz::body_in(resource, kubernetes::MEDIA_TYPE, &bytes);
        }
        _ => {
            let bytes = [kubernetes::MAGIC.as_slice(), u.bytes(u.len())?].concat();
            let _ = kubernetes::decode(&bytes);
            fuzz::body_in(resource, kubernetes::MEDIA_TYPE, &bytes);
        }
    }
    Ok(())
}

/// `k8s\0` and a `runtime.Unknown` holding `raw` as the object of the kind.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    field(&mut type_meta, 1, api_version.as_bytes());
    field(&mut type_meta, 2, kind.as_bytes());
    let mut unknown = Vec::new();
    field(&mut unknown, 1, &type_meta);
    field(&mut unknown, 2, raw);
    field(&mut unknown, 3, b"");
    field(&mut unknown, 4, b"");
    [kubernetes::MAGIC.as_slice(), &unknown].concat()
}

/// A length-delimited protobuf field.
fn field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    varint(out, (number << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
