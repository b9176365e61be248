//! `patches`: `PATCH` in its four types (JSON merge patch, JSON patch,
//! strategic merge patch, server-side apply) on stored objects of every
//! served kind, and the patched object through the rest of the write path.
//!
//! The stored object is a valid object of the kind with a few edits that
//! passed a create (`skiff_apiserver_fuzz::create`). Patches are built to
//! fit it: JSON patches point at its real fields (escaped as RFC 6901 asks)
//! and sometimes at missing or malformed ones; merge patches are edited
//! parts of it with strategic directives (`$patch`, `$retainKeys`,
//! `$setElementOrder/…`, `$deleteFromPrimitiveList/…`) now and then. The
//! result goes through `check_kind`, `check_fields`, the update rules and
//! validation, as `handlers::patch` does; an apply to a missing object is a
//! create of the patch. A second patch is applied on top of a first that
//! succeeded.
//!
//! `skiff_patch` also gets arbitrary documents directly: its functions
//! promise to return errors, never panic, whatever the input.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use skiff_apiserver::object;
use skiff_apiserver_fuzz::{self as fuzz, PatchType};

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let resource = fuzz::resource(u)?;
    let mode = fuzz::field_validation(u)?;
    let kind = fuzz::patch_type(u)?;

    if u.ratio(1, 6)? {
        // The library alone, on any two documents.
        let base = fuzz::value(u, 4)?;
        let patch = fuzz::any_patch(u, kind, &base)?;
        let _ = fuzz::apply_patch(kind, resource, &base, &patch);
        return Ok(());
    }

    let obj = fuzz::object(u, resource, 3)?;
    let current = match fuzz::create(resource, obj, "default", mode) {
        Some(current) => current,
        None => match fuzz::create(resource, fuzz::template(resource), "default", mode) {
            Some(current) => current,
            None => return Ok(()),
        },
    };
    let patch = fuzz::any_patch(u, kind, &current)?;

    if kind == PatchType::Apply && u.ratio(1, 4)? {
        // Server-side apply of an object that does not exist yet creates
        // the patch itself, named as the URL says.
        let mut obj = patch.clone();
        if obj.is_object() {
            object::set(&mut obj, &["metadata", "name"], serde_json::json!("web"));
            fuzz::create(resource, obj, "default", mode);
        }
        return Ok(());
    }

    let sub = fuzz::sub(u, resource)?;
    if let Some(stored) = fuzz::patch(resource, kind, &current, &patch, sub, mode) {
        let kind = fuzz::patch_type(u)?;
        let patch = fuzz::any_patch(u, kind, &stored)?;
        fuzz::patch(resource, kind, &stored, &patch, None, mode);
    }
    Ok(())
}
