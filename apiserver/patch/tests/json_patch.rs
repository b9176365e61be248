//! JSON Patch: RFC 6902 Appendix A, error messages, and what kubectl sends.

use serde_json::{Value, json};
use skiff_patch::{PatchError, json_patch};

/// RFC 6902 Appendix A examples that succeed: (name, document, patch, result).
#[test]
fn rfc6902_appendix_a_successes() {
    let cases: Vec<(&str, Value, Value, Value)> = vec![
        (
            "A.1 adding an object member",
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux"}]),
            json!({"baz": "qux", "foo": "bar"}),
        ),
        (
            "A.2 adding an array element",
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
            json!({"foo": ["bar", "qux", "baz"]}),
        ),
        (
            "A.3 removing an object member",
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "remove", "path": "/baz"}]),
            json!({"foo": "bar"}),
        ),
        (
            "A.4 removing an array element",
            json!({"foo": ["bar", "qux", "baz"]}),
            json!([{"op": "remove", "path": "/foo/1"}]),
            json!({"foo": ["bar", "baz"]}),
        ),
        (
            "A.5 replacing a value",
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
            json!({"baz": "boo", "foo": "bar"}),
        ),
        (
            "A.6 moving a value",
            json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
            json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
        ),
        (
            "A.7 moving an array element",
            json!({"foo": ["all", "grass", "cows", "eat"]}),
            json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
            json!({"foo": ["all", "cows", "eat", "grass"]}),
        ),
        (
            "A.8 testing a value: success",
            json!({"baz": "qux", "foo": ["a", 2, "c"]}),
            json!([
                {"op": "test", "path": "/baz", "value": "qux"},
                {"op": "test", "path": "/foo/1", "value": 2}
            ]),
            json!({"baz": "qux", "foo": ["a", 2, "c"]}),
        ),
        (
            "A.10 adding a nested member object",
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}]),
            json!({"foo": "bar", "child": {"grandchild": {}}}),
        ),
        (
            "A.11 ignoring unrecognized elements",
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}]),
            json!({"foo": "bar", "baz": "qux"}),
        ),
        (
            "A.14 ~ escape ordering",
            json!({"/": 9, "~1": 10}),
            json!([{"op": "test", "path": "/~01", "value": 10}]),
            json!({"/": 9, "~1": 10}),
        ),
        (
            "A.16 adding an array value",
            json!({"foo": ["bar"]}),
            json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
            json!({"foo": ["bar", ["abc", "def"]]}),
        ),
    ];
    for (name, doc, patch, want) in cases {
        match json_patch(&doc, &patch) {
            Ok(got) => assert_eq!(got, want, "{name}"),
            Err(err) => panic!("{name}: unexpected error: {err}"),
        }
    }
}

/// RFC 6902 Appendix A examples that must fail, and other failures, with the
/// message the user will read.
#[test]
fn failures_and_their_messages() {
    let cases: Vec<(&str, Value, Value, &str)> = vec![
        (
            "A.9 testing a value: error",
            json!({"baz": "qux"}),
            json!([{"op": "test", "path": "/baz", "value": "bar"}]),
            r#"operation 0 (test): the value at path "/baz" is not equal to the expected value"#,
        ),
        (
            "A.12 adding to a nonexistent target",
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
            r#"operation 0 (add): path "/baz/bat" does not exist (its parent "/baz" is missing)"#,
        ),
        (
            "A.15 comparing strings and numbers",
            json!({"/": 9, "~1": 10}),
            json!([{"op": "test", "path": "/~01", "value": "10"}]),
            r#"operation 0 (test): the value at path "/~01" is not equal to the expected value"#,
        ),
        (
            "replace of a missing path",
            json!({"spec": {}}),
            json!([
                {"op": "test", "path": "/spec", "value": {}},
                {"op": "add", "path": "/spec/paused", "value": false},
                {"op": "replace", "path": "/spec/replicas", "value": 3}
            ]),
            r#"operation 2 (replace): path "/spec/replicas" does not exist"#,
        ),
        (
            "replace under a missing parent",
            json!({}),
            json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]),
            r#"operation 0 (replace): path "/spec/replicas" does not exist (no value at "/spec")"#,
        ),
        (
            "removal of a nonexistent key",
            json!({"foo": "bar"}),
            json!([{"op": "remove", "path": "/baz"}]),
            r#"operation 0 (remove): path "/baz" does not exist"#,
        ),
        (
            "add past the end of an array",
            json!({"foo": ["a", "b"]}),
            json!([{"op": "add", "path": "/foo/3", "value": "c"}]),
            r#"operation 0 (add): path "/foo/3": index 3 is out of bounds (the array has 2 elements; valid indexes are 0 to 2)"#,
        ),
        (
            "remove past the end of an array",
            json!({"foo": ["a"]}),
            json!([{"op": "remove", "path": "/foo/1"}]),
            r#"operation 0 (remove): path "/foo/1": index 1 is out of bounds (the array has 1 element; valid indexes are 0 to 0)"#,
        ),
        (
            "index with a leading zero",
            json!({"foo": ["a", "b"]}),
            json!([{"op": "replace", "path": "/foo/01", "value": "c"}]),
            r#"operation 0 (replace): path "/foo/01": "01" is not a valid array index"#,
        ),
        (
            "dash outside add",
            json!({"foo": ["a"]}),
            json!([{"op": "remove", "path": "/foo/-"}]),
            r#"operation 0 (remove): path "/foo/-": "-" refers to the position after the last element, which only "add" can use"#,
        ),
        (
            "move from a missing path",
            json!({"a": 1}),
            json!([{"op": "move", "from": "/b", "path": "/c"}]),
            r#"operation 0 (move): "from" path "/b" does not exist"#,
        ),
        (
            "copy from a missing path",
            json!({"a": 1}),
            json!([{"op": "copy", "from": "/b", "path": "/c"}]),
            r#"operation 0 (copy): "from" path "/b" does not exist"#,
        ),
        (
            "move into its own child",
            json!({"a": {"b": 1}}),
            json!([{"op": "move", "from": "/a", "path": "/a/b/c"}]),
            r#"operation 0 (move): cannot move "/a" into one of its own children ("/a/b/c")"#,
        ),
        (
            "remove the whole document",
            json!({"a": 1}),
            json!([{"op": "remove", "path": ""}]),
            "operation 0 (remove): the whole document cannot be removed",
        ),
        (
            "the patch is not an array",
            json!({}),
            json!({"op": "add", "path": "/a", "value": 1}),
            "a JSON patch must be an array of operations, but this one is an object",
        ),
        (
            "an operation that is not an object",
            json!({}),
            json!(["add"]),
            "operation 0: an operation must be an object, but this one is a string",
        ),
        (
            "unknown op",
            json!({}),
            json!([{"op": "append", "path": "/a", "value": 1}]),
            r#"operation 0: unknown operation "append"; expected one of add, remove, replace, move, copy, test"#,
        ),
        (
            "missing op",
            json!({}),
            json!([{"path": "/a", "value": 1}]),
            r#"operation 0: the "op" member is missing"#,
        ),
        (
            "missing value",
            json!({}),
            json!([{"op": "add", "path": "/a"}]),
            r#"operation 0 (add): the "value" member is missing"#,
        ),
        (
            "missing path",
            json!({}),
            json!([{"op": "remove"}]),
            r#"operation 0 (remove): the "path" member is missing"#,
        ),
        (
            "missing from",
            json!({}),
            json!([{"op": "copy", "path": "/a"}]),
            r#"operation 0 (copy): the "from" member is missing"#,
        ),
        (
            "path that is not a pointer",
            json!({}),
            json!([{"op": "add", "path": "a", "value": 1}]),
            r#"operation 0 (add): path "a" is not a JSON pointer: it must be empty or start with "/""#,
        ),
        (
            "bad escape",
            json!({}),
            json!([{"op": "add", "path": "/a~2", "value": 1}]),
            r#"operation 0 (add): path "/a~2" is not a JSON pointer: "~" must be followed by "0" or "1""#,
        ),
        (
            "malformed operation after a failing one is reported first",
            json!({}),
            json!([{"op": "remove", "path": "/missing"}, {"op": "bogus"}]),
            r#"operation 1: unknown operation "bogus"; expected one of add, remove, replace, move, copy, test"#,
        ),
    ];
    for (name, doc, patch, want) in cases {
        match json_patch(&doc, &patch) {
            Ok(got) => panic!("{name}: expected an error, got {got}"),
            Err(err) => assert_eq!(err.to_string(), want, "{name}"),
        }
    }
}

#[test]
fn errors_distinguish_malformed_from_unfit() {
    let malformed = json_patch(&json!({}), &json!("nope")).unwrap_err();
    assert!(malformed.is_malformed());
    let unfit = json_patch(&json!({}), &json!([{"op": "remove", "path": "/a"}])).unwrap_err();
    assert!(!unfit.is_malformed());
    assert_eq!(
        unfit,
        PatchError::OperationFailed {
            index: 0,
            op: "remove",
            reason: r#"path "/a" does not exist"#.to_owned()
        }
    );
}

/// `kubectl rollout undo` replaces the pod template with the old one, which
/// carries `"creationTimestamp": null`; nulls inside values are kept.
#[test]
fn rollout_undo_replaces_the_template() {
    let deployment = json!({
        "metadata": {"name": "web", "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    });
    let old_template = json!({
        "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "resources": {}}]}
    });
    let patch = json!([
        {"op": "replace", "path": "/spec/template", "value": old_template},
        {"op": "replace", "path": "/metadata/annotations",
         "value": {"deployment.kubernetes.io/revision": "3"}}
    ]);
    let got = json_patch(&deployment, &patch).unwrap();
    assert_eq!(got["spec"]["template"], old_template);
    assert_eq!(
        got["spec"]["template"]["metadata"]["creationTimestamp"],
        Value::Null
    );
    assert_eq!(got["spec"]["replicas"], json!(2));
    assert_eq!(
        got["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        json!("3")
    );
}

/// A failure half-way leaves nothing applied: the caller gets an error and
/// its target is untouched.
#[test]
fn failure_is_all_or_nothing() {
    let doc = json!({"a": 1});
    let patch = json!([
        {"op": "add", "path": "/b", "value": 2},
        {"op": "remove", "path": "/zzz"}
    ]);
    assert!(json_patch(&doc, &patch).is_err());
    assert_eq!(doc, json!({"a": 1}));
}

#[test]
fn other_operations() {
    let doc = json!({"a": {"b": [1, 2]}, "c": "x"});
    let cases: Vec<(Value, Value)> = vec![
        // Empty patch: unchanged.
        (json!([]), doc.clone()),
        // Replace and add at the root.
        (
            json!([{"op": "replace", "path": "", "value": [1]}]),
            json!([1]),
        ),
        (
            json!([{"op": "add", "path": "", "value": null}]),
            json!(null),
        ),
        // Copy, including an array element, and append with "-".
        (
            json!([{"op": "copy", "from": "/a/b/0", "path": "/a/b/-"}]),
            json!({"a": {"b": [1, 2, 1]}, "c": "x"}),
        ),
        // Move onto itself is a no-op; move to the root.
        (
            json!([{"op": "move", "from": "/c", "path": "/c"}]),
            doc.clone(),
        ),
        (
            json!([{"op": "move", "from": "/a", "path": ""}]),
            json!({"b": [1, 2]}),
        ),
        // Test compares numbers by value and objects regardless of key order.
        (
            json!([{"op": "test", "path": "/a/b/1", "value": 2.0}]),
            doc.clone(),
        ),
        (
            json!([{"op": "test", "path": "", "value": {"c": "x", "a": {"b": [1, 2]}}}]),
            doc.clone(),
        ),
        // Insert at index 0 and at the end by index.
        (
            json!([{"op": "add", "path": "/a/b/0", "value": 0}, {"op": "add", "path": "/a/b/3", "value": 3}]),
            json!({"a": {"b": [0, 1, 2, 3]}, "c": "x"}),
        ),
        // Keys with "/" and "~" in them.
        (
            json!([{"op": "add", "path": "/a~1b~0c", "value": 1}]),
            json!({"a": {"b": [1, 2]}, "c": "x", "a/b~c": 1}),
        ),
        // A null value is a value.
        (
            json!([{"op": "add", "path": "/n", "value": null}]),
            json!({"a": {"b": [1, 2]}, "c": "x", "n": null}),
        ),
    ];
    for (patch, want) in cases {
        assert_eq!(json_patch(&doc, &patch).unwrap(), want, "{patch}");
    }
}
