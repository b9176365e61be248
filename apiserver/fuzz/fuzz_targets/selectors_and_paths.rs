//! `selectors_and_paths`: the strings a client puts in a URL. One string of
//! raw bytes (lossily UTF-8) is used as a label selector, a field selector,
//! a request path (alone and below a group-version), a query string, a
//! `Content-Type` header, an object name under every naming rule, a label
//! or annotation key and value, and a timestamp; and, when it parses as
//! JSON, as a `metav1.LabelSelector` object.
//!
//! Parsed selectors are matched against a valid object of the resource
//! picked by the first byte, reading fields through the resource's
//! `strategy.field`, as list and watch filters do.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use skiff_apiserver::handlers::Query;
use skiff_apiserver::handlers::prepare::FieldValidation;
use skiff_apiserver::http::{body, request};
use skiff_apiserver::registry::{RESOURCES, table};
use skiff_apiserver::selectors::{FieldSelector, LabelSelector};
use skiff_apiserver::validation::{self, NameRule};
use skiff_apiserver_fuzz as fuzz;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let resource = &RESOURCES[usize::from(first) % RESOURCES.len()];
    let text = String::from_utf8_lossy(rest);
    let text = text.as_ref();
    let obj = fuzz::template(resource);

    if let Ok(selector) = LabelSelector::parse(text) {
        let _ = selector.matches_object(&obj);
        let _ = selector.matches(Some(&json!({ text: text, "app": "web" })));
    }
    if let Ok(selector) = FieldSelector::parse(text) {
        let _ = selector.fields().count();
        let _ = selector.required("metadata.name");
        let _ = selector.matches(|field| match field {
            "metadata.name" => Some("web".to_string()),
            "metadata.namespace" => Some("default".to_string()),
            other => resource.strategy.field(&obj, other),
        });
    }
    if let Ok(value) = serde_json::from_str::<Value>(text)
        && let Ok(selector) = LabelSelector::from_object(&value)
    {
        let _ = selector.matches_object(&obj);
        let _ = table::label_selector_string(Some(&value));
    }

    let _ = request::route(text);
    for prefix in ["/api/v1/", "/apis/apps/v1/", "/api/v1/namespaces/default/", "/apis/"] {
        let _ = request::route(&format!("{prefix}{text}"));
    }
    let query = Query::parse(Some(text));
    let _ = (FieldValidation::from_query(&query), query.dry_run(), query.flag("watch"));

    if let Ok(value) = http::HeaderValue::from_bytes(rest) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, value);
        let _ = body::content_type(&headers);
    }

    for rule in [
        NameRule::Dns1123Subdomain,
        NameRule::Dns1123Label,
        NameRule::Dns1035Label,
        NameRule::PathSegment,
    ] {
        let _ = validation::validate_name("metadata.name", text, rule);
    }
    let _ = validation::validate_qualified_name("metadata.labels", text);
    let _ = validation::is_label_value(text);
    let _ = validation::validate_labels("metadata.labels", Some(&json!({ text: text })));
    let _ = validation::validate_annotations("metadata.annotations", Some(&json!({ text: text })));
    let _ = validation::validate_object_meta(
        Some(&json!({"name": text, "namespace": text, "generateName": text})),
        resource.namespaced,
        resource.name_rule,
    );
    let _ = table::since(Some(text));
    let _ = skiff_patch::TypeRef::named(text);
});
