//! JSON Merge Patch: RFC 7386's examples and what kubectl sends.

use serde_json::{Value, json};
use skiff_patch::merge_patch;

/// RFC 7386 Appendix A, every row: (original, patch, result).
#[test]
fn rfc7386_appendix_a() {
    let cases: Vec<(Value, Value, Value)> = vec![
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        ),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (
            json!({"a": "b", "b": "c"}),
            json!({"a": null}),
            json!({"b": "c"}),
        ),
        (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
        (
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        ),
        (
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
        (json!({"a": "b"}), json!(["c"]), json!(["c"])),
        (json!({"a": "foo"}), json!(null), json!(null)),
        (json!({"a": "foo"}), json!("bar"), json!("bar")),
        (
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        ),
        (
            json!([1, 2]),
            json!({"a": "b", "c": null}),
            json!({"a": "b"}),
        ),
        (
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        ),
    ];
    for (i, (original, patch, want)) in cases.into_iter().enumerate() {
        assert_eq!(merge_patch(&original, &patch), want, "appendix A row {i}");
    }
}

/// The worked example of RFC 7386 section 3.
#[test]
fn rfc7386_section_3_example() {
    let target = json!({
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged"
    });
    let patch = json!({
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": null},
        "tags": ["example"]
    });
    let want = json!({
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890"
    });
    assert_eq!(merge_patch(&target, &patch), want);
}

/// `kubectl label`, `annotate` and `scale` on an object.
#[test]
fn kubectl_label_annotate_scale() {
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web"}]}}}
    });
    let cases = [
        // kubectl label deployment web env=prod
        (
            json!({"metadata": {"labels": {"env": "prod"}}}),
            json!({"app": "web", "tier": "front", "env": "prod"}),
        ),
        // kubectl label deployment web tier-
        (
            json!({"metadata": {"labels": {"tier": null}}}),
            json!({"app": "web"}),
        ),
    ];
    for (patch, labels) in cases {
        let result = merge_patch(&deployment, &patch);
        assert_eq!(result["metadata"]["labels"], labels);
        assert_eq!(result["spec"], deployment["spec"]);
    }

    // kubectl annotate: a new map under an existing object.
    let result = merge_patch(
        &deployment,
        &json!({"metadata": {"annotations": {"note": "hi"}}}),
    );
    assert_eq!(result["metadata"]["annotations"], json!({"note": "hi"}));

    // kubectl scale --replicas=3 (on resources without a scale subresource).
    let result = merge_patch(&deployment, &json!({"spec": {"replicas": 3}}));
    assert_eq!(result["spec"]["replicas"], json!(3));
    assert_eq!(result["spec"]["template"], deployment["spec"]["template"]);
}

/// Lists are replaced whole, never merged; the inputs are left untouched.
#[test]
fn lists_are_replaced_and_inputs_untouched() {
    let target = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
    let patch = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
    let before = (target.clone(), patch.clone());
    assert_eq!(
        merge_patch(&target, &patch),
        json!({"spec": {"containers": [{"name": "a", "image": "x"}]}})
    );
    assert_eq!((target, patch), before);
}
