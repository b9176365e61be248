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
use skiff_apiserver::http::body;
use skiff_apiserver::registry::RESOURCES;
use skiff_apiserver_fuzz as fuzz;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let resource = &RESOURCES[usize::from(first) % RESOURCES.len()];
    fuzz::strings(resource, &String::from_utf8_lossy(rest));
    if let Ok(value) = http::HeaderValue::from_bytes(rest) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, value);
        let _ = body::content_type(&headers);
    }
});
