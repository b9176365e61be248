//! `write_path`: objects of every served kind through everything a create
//! and then an update do to them before they are stored, and what reads do
//! with the result.
//!
//! Each input picks a resource from `registry::RESOURCES` and edits a valid
//! object of its kind at random places (see `skiff_apiserver_fuzz::object`),
//! so the typed check passes often enough for defaulting, validation and the
//! table cells to see odd but well-typed objects. A created object is then
//! replaced by an edited copy of itself or by another object (`PUT`, also on
//! the `status` and `finalize` subresources), which drives `validate_update`,
//! `spec_changed` and `keep_server_metadata`.
//!
//! Now and then the strategies also get an object that failed the typed
//! check: the server never hands them one today, but they read fields with
//! `get` and `as_str` and should not depend on that.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use skiff_apiserver::registry::Resource;
use skiff_apiserver_fuzz as fuzz;

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let resource = fuzz::resource(u)?;
    let mode = fuzz::field_validation(u)?;
    // The namespace comes from the URL, where it is any percent-decoded segment.
    let namespace = if u.ratio(7, 8)? {
        "default".to_string()
    } else {
        fuzz::string(u)?
    };
    let obj = fuzz::object(u, resource, 6)?;
    if u.ratio(1, 8)? {
        unchecked(resource, &obj);
    }
    let Some(current) = fuzz::create(resource, obj, &namespace, mode) else {
        return Ok(());
    };
    // kubectl edit / replace send the stored object back with changes.
    let mut sent = if u.ratio(3, 4)? {
        current.clone()
    } else {
        fuzz::object(u, resource, 6)?
    };
    for _ in 0..u.int_in_range(0..=4)? {
        fuzz::edit(u, &mut sent, 0)?;
    }
    let sub = fuzz::sub(u, resource)?;
    if let Some(stored) = fuzz::update(resource, sent, &current, sub, mode) {
        // A second update from there: the generation goes on counting.
        let mut again = stored.clone();
        fuzz::edit(u, &mut again, 0)?;
        fuzz::update(resource, again, &stored, None, mode);
    }
    Ok(())
}

/// The strategies on an object that skipped the typed check.
fn unchecked(resource: &Resource, obj: &Value) {
    if !obj.is_object() {
        return;
    }
    let mut obj = obj.clone();
    resource.strategy.default(&mut obj);
    resource.strategy.prepare_for_create(&mut obj);
    let _ = resource.strategy.validate(&obj);
    let template = fuzz::template(resource);
    let _ = resource.strategy.validate_update(&obj, &template);
    let _ = resource.strategy.validate_update(&template, &obj);
    fuzz::read_back(resource, &obj);
}
