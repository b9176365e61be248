//! Property tests: no input makes any patch function panic, and a few
//! algebraic facts hold.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use skiff_patch::{TypeRef, json_patch, kubernetes_type, merge_patch, strategic_merge_patch};

/// Object keys: a few plain ones that collide often, the field names the
/// schema cares about, and every directive, so that generated patches hit
/// the interesting paths instead of only adding fresh keys.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "a", "b", "name", "spec", "template", "containers", "env", "metadata",
            "finalizers", "volumes", "ports", "port", "containerPort", "type",
            "conditions", "strategy", "podCIDRs", "jobTemplate", "status", "uid",
        ])
        .prop_map(str::to_owned),
        2 => prop::sample::select(vec![
            "$patch", "$retainKeys", "$setElementOrder/containers", "$setElementOrder/finalizers",
            "$setElementOrder/a", "$deleteFromPrimitiveList/finalizers",
            "$deleteFromPrimitiveList/a", "$setElementOrder", "$deleteFromPrimitiveList/",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z~/$]{0,6}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..5).prop_map(|n| json!(n)),
        Just(json!(1.0)),
        prop::sample::select(vec!["a", "b", "name", "delete", "replace", "merge", "x"])
            .prop_map(|s| json!(s)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// JSON Pointers built from the same keys plus array indexes, some invalid.
fn pointer() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        key().prop_map(|k| k.replace('~', "~0").replace('/', "~1")),
        (0usize..4).prop_map(|i| i.to_string()),
        prop::sample::select(vec!["-", "01", "~2", "~", ""]).prop_map(str::to_owned),
    ];
    prop::collection::vec(token, 0..4)
        .prop_map(|tokens| tokens.iter().map(|t| format!("/{t}")).collect::<String>())
}

fn operation() -> impl Strategy<Value = Value> {
    let op = prop::sample::select(vec![
        "add", "remove", "replace", "move", "copy", "test", "nope",
    ]);
    (op, pointer(), pointer(), json_value(), any::<u8>()).prop_map(
        |(op, path, from, value, drop)| {
            let mut obj = Map::new();
            // Now and then leave a member out to exercise the malformed paths.
            if drop % 7 != 0 {
                obj.insert("op".into(), json!(op));
            }
            if drop % 5 != 1 {
                obj.insert("path".into(), json!(path));
            }
            if drop % 3 != 2 {
                obj.insert("from".into(), json!(from));
            }
            if drop % 11 != 3 {
                obj.insert("value".into(), value);
            }
            Value::Object(obj)
        },
    )
}

fn type_ref() -> impl Strategy<Value = TypeRef> {
    prop::sample::select(vec![
        ("apps", "Deployment"),
        ("", "Pod"),
        ("", "Node"),
        ("", "Service"),
        ("batch", "CronJob"),
        ("policy", "PodDisruptionBudget"),
        ("example.com", "Unknown"),
    ])
    .prop_map(|(group, kind)| kubernetes_type(group, kind))
}

/// A container-like list element: a name from a small set (so elements
/// collide), sometimes a `$patch`, sometimes a missing name.
fn container() -> impl Strategy<Value = Value> {
    let name = prop::option::weighted(0.9, prop::sample::select(vec!["a", "b", "c"]));
    let directive = prop::option::weighted(
        0.3,
        prop::sample::select(vec!["delete", "replace", "merge", "bogus"]),
    );
    (name, directive, json_value()).prop_map(|(name, directive, image)| {
        let mut element = Map::new();
        if let Some(name) = name {
            element.insert("name".into(), json!(name));
        }
        if let Some(directive) = directive {
            element.insert("$patch".into(), json!(directive));
        }
        element.insert("image".into(), image);
        Value::Object(element)
    })
}

/// A Deployment-shaped document or patch whose pod spec has containers,
/// optionally with `$setElementOrder/containers`.
fn deployment_like(patch: bool) -> impl Strategy<Value = Value> {
    let names = prop::collection::vec(
        prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(|n| json!({"name": n})),
        0..5,
    );
    (
        prop::collection::vec(container(), 0..5),
        prop::option::of(names),
        prop::collection::vec(prop::sample::select(vec!["x", "y", "z"]), 0..4),
    )
        .prop_map(move |(containers, order, finalizers)| {
            let containers: Vec<Value> = if patch {
                containers
            } else {
                containers.iter().map(strip_directives).collect()
            };
            let mut pod_spec = Map::new();
            pod_spec.insert("containers".into(), Value::Array(containers));
            let mut meta = Map::new();
            meta.insert("finalizers".into(), json!(finalizers));
            if patch {
                if let Some(order) = order {
                    pod_spec.insert("$setElementOrder/containers".into(), Value::Array(order));
                }
                meta.insert("$deleteFromPrimitiveList/finalizers".into(), json!(["x"]));
            }
            json!({"metadata": meta, "spec": {"template": {"spec": pod_spec}}})
        })
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn merge_patch_never_panics(target in json_value(), patch in json_value()) {
        let _ = merge_patch(&target, &patch);
    }

    /// Applying a patch without nulls a second time changes nothing.
    #[test]
    fn merge_patch_is_idempotent(target in json_value(), patch in json_value()) {
        let patch = without_nulls(&patch);
        let once = merge_patch(&target, &patch);
        prop_assert_eq!(merge_patch(&once, &patch), once);
    }

    /// The same with the patch shaped like the target itself.
    #[test]
    fn merge_patch_with_itself_is_idempotent(target in json_value()) {
        let patch = without_nulls(&target);
        let once = merge_patch(&target, &patch);
        prop_assert_eq!(merge_patch(&once, &patch), once);
    }

    #[test]
    fn json_patch_never_panics(target in json_value(), patch in json_value()) {
        let _ = json_patch(&target, &patch);
    }

    #[test]
    fn json_patch_operations_never_panic(
        target in json_value(),
        ops in prop::collection::vec(operation(), 0..6),
    ) {
        let _ = json_patch(&target, &Value::Array(ops));
    }

    #[test]
    fn empty_json_patch_is_identity(target in json_value()) {
        prop_assert_eq!(json_patch(&target, &json!([])), Ok(target));
    }

    #[test]
    fn strategic_merge_patch_never_panics(
        target in json_value(),
        patch in json_value(),
        ty in type_ref(),
    ) {
        let _ = strategic_merge_patch(&target, &patch, &ty);
    }

    /// With object documents, the interesting case, and directives removed
    /// from every successful result.
    #[test]
    fn strategic_results_have_no_directives(
        target in prop::collection::vec((key(), json_value()), 0..6),
        patch in prop::collection::vec((key(), json_value()), 0..6),
        ty in type_ref(),
    ) {
        let target = Value::Object(target.into_iter().filter(|(k, _)| !k.starts_with('$')).collect());
        let target = strip_directives(&target);
        let patch = Value::Object(patch.into_iter().collect());
        if let Ok(result) = strategic_merge_patch(&target, &patch, &ty) {
            prop_assert!(!has_directive(&result), "directive in {}", result);
        }
    }

    /// Container lists that collide by name, with directives in the patch.
    #[test]
    fn strategic_container_merges_never_panic(
        original in deployment_like(false),
        patch in deployment_like(true),
    ) {
        let ty = kubernetes_type("apps", "Deployment");
        if let Ok(result) = strategic_merge_patch(&original, &patch, &ty) {
            prop_assert!(!has_directive(&result), "directive in {}", result);
            let finalizers = &result["metadata"]["finalizers"];
            prop_assert!(!finalizers.as_array().into_iter().flatten().any(|f| f == "x"));
        }
    }

    /// Without directives or nulls, and for a kind the schema does not know,
    /// a strategic merge patch is a JSON merge patch.
    #[test]
    fn strategic_without_schema_is_merge_patch(
        target in prop::collection::vec((key(), json_value()), 0..6),
        patch in prop::collection::vec((key(), json_value()), 0..6),
    ) {
        let target = strip_directives(&Value::Object(target.into_iter().collect()));
        // Nulls are left out: merge patch keeps them inside lists, while
        // strategic merge drops them from maps wherever they are (as
        // upstream's discardNullValuesFromPatch does).
        let patch = without_nulls(&strip_directives(&Value::Object(patch.into_iter().collect())));
        let strategic = strategic_merge_patch(&target, &patch, &TypeRef::unknown());
        prop_assert_eq!(strategic, Ok(merge_patch(&target, &patch)));
    }
}

fn is_directive(key: &str) -> bool {
    key == "$patch"
        || key == "$retainKeys"
        || key.starts_with("$setElementOrder")
        || key.starts_with("$deleteFromPrimitiveList")
}

fn has_directive(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.iter().any(|(k, v)| is_directive(k) || has_directive(v)),
        Value::Array(items) => items.iter().any(has_directive),
        _ => false,
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !is_directive(k))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}
