//! skiff-apiserver must answer any body, path or query with an error, never
//! a panic. These property tests are the short, every-build version of the
//! fuzz targets in `apiserver/fuzz/` (see its README for the long runs):
//!
//! - `write_path`: objects of every served kind, made from a valid object
//!   with random edits, through what a create does (`check_kind`,
//!   `check_namespace`, `check_fields`, `init_metadata`, defaulting,
//!   `prepare_for_create`, validation), what reads do with the result
//!   (table cells, selectable fields, selectors), and an update of it.
//! - `patches`: the four patch types on created objects, the result through
//!   the update path; and the patch functions on any two documents.
//! - `bodies`: bytes and near-valid manifests as JSON, YAML (anchors,
//!   aliases, deep nesting, huge numbers) and protobuf request bodies.
//! - `selectors_and_paths`: label and field selectors, request paths, query
//!   strings and names of any characters.
//!
//! The write path itself is `skiff_apiserver::exercise`, shared with the
//! fuzz crate: the same pure stages the handlers run, up to the storage.
//!
//! The panics these properties found are fixed, and kept as the fixed cases
//! at the end.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value, json};
use skiff_apiserver::exercise::{KEYS, STRINGS, body_in, create, patch, strings, template, update};
use skiff_apiserver::handlers::patch::PatchType;
use skiff_apiserver::handlers::prepare::{self, FieldValidation};
use skiff_apiserver::http::body;
use skiff_apiserver::object;
use skiff_apiserver::registry::{RESOURCES, Resource, Sub};

/// Cases per property. Each case runs a whole write path for one kind; the
/// whole file stays within seconds in a debug build.
const CASES: u32 = 256;

fn config() -> Config {
    Config {
        // Failures are kept as explicit tests at the end, not as files.
        failure_persistence: None,
        ..Config::with_cases(CASES)
    }
}

// ---- generated values ---------------------------------------------------

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(STRINGS).prop_map(String::from),
        // Around the byte limits the code checks (15, 58, 63, 253), in
        // characters of one to four bytes.
        1 => (
            proptest::sample::select(&["", "a", "ab"][..]),
            proptest::sample::select(&["a", "-", "é", "日", "🚀"][..]),
            1usize..300,
        )
            .prop_map(|(prefix, unit, n)| format!("{prefix}{}", unit.repeat(n))),
        2 => any::<String>(),
    ]
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(KEYS).prop_map(String::from),
        1 => arb_string(),
    ]
}

fn arb_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..=3).prop_map(|n| json!(n)),
        proptest::sample::select(
            &[
                65535i64,
                65536,
                i32::MAX as i64,
                i32::MIN as i64,
                i32::MAX as i64 + 1,
                i64::MAX,
                i64::MIN,
            ][..]
        )
        .prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
    ]
}

/// Any JSON value, a few levels deep.
fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        arb_number(),
        arb_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((arb_key(), inner), 0..5)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One step of a path into an object.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone)]
enum Edit {
    Set(Vec<Step>, Value),
    Remove(Vec<Step>),
    /// Appends a copy of an array's entry: what uniqueness checks are for.
    Duplicate(Vec<Step>),
}

fn arb_path() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        prop_oneof![
            3 => arb_key().prop_map(Step::Key),
            1 => (0usize..3).prop_map(Step::Index),
        ],
        0..6,
    )
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (arb_path(), arb_value()).prop_map(|(p, v)| Edit::Set(p, v)),
        1 => arb_path().prop_map(Edit::Remove),
        1 => arb_path().prop_map(Edit::Duplicate),
    ]
}

/// The value at `path`, created as needed: keys make objects, indexes
/// follow arrays (one past the end appends).
fn slot<'a>(v: &'a mut Value, path: &[Step]) -> &'a mut Value {
    let Some((step, rest)) = path.split_first() else {
        return v;
    };
    match step {
        Step::Key(k) => slot(
            object::object_at(v, &[])
                .entry(k.clone())
                .or_insert(Value::Null),
            rest,
        ),
        Step::Index(i) => {
            if !v.is_array() {
                *v = Value::Array(Vec::new());
            }
            let Value::Array(items) = v else {
                unreachable!()
            };
            if *i >= items.len() {
                items.push(Value::Null);
            }
            let at = (*i).min(items.len() - 1);
            slot(&mut items[at], rest)
        }
    }
}

fn apply_edit(obj: &mut Value, edit: &Edit) {
    match edit {
        Edit::Set(path, value) => *slot(obj, path) = value.clone(),
        Edit::Remove(path) => {
            let Some((last, parents)) = path.split_last() else {
                return;
            };
            match (slot(obj, parents), last) {
                (Value::Object(map), Step::Key(k)) => {
                    map.remove(k);
                }
                (Value::Array(items), Step::Index(i)) if *i < items.len() => {
                    items.remove(*i);
                }
                _ => {}
            }
        }
        Edit::Duplicate(path) => {
            if let Value::Array(items) = slot(obj, path)
                && let Some(first) = items.first().cloned()
            {
                items.push(first);
            }
        }
    }
}

fn arb_resource() -> impl Strategy<Value = &'static Resource> {
    (0..RESOURCES.len()).prop_map(|i| &RESOURCES[i])
}

fn arb_mode() -> impl Strategy<Value = FieldValidation> {
    proptest::sample::select(
        &[
            FieldValidation::Ignore,
            FieldValidation::Warn,
            FieldValidation::Strict,
        ][..],
    )
}

fn edited(resource: &Resource, edits: &[Edit]) -> Value {
    let mut obj = template(resource);
    for edit in edits {
        apply_edit(&mut obj, edit);
    }
    obj
}

// ---- the write path, as the handlers run it ---------------------------

fn arb_sub() -> impl Strategy<Value = Option<Sub>> {
    proptest::sample::select(&[None, None, Some(Sub::Status), Some(Sub::Finalize)][..])
}

/// A JSON pointer made of field names, indexes, `-` and broken escapes.
fn arb_pointer() -> impl Strategy<Value = String> {
    prop_oneof![
        9 => proptest::collection::vec(
            prop_oneof![
                3 => proptest::sample::select(KEYS).prop_map(|k| k.replace('~', "~0").replace('/', "~1")),
                1 => (0usize..3).prop_map(|i| i.to_string()),
                1 => proptest::sample::select(&["-", "01", "~", "~2", "18446744073709551616", ""][..])
                    .prop_map(String::from),
            ],
            0..6,
        )
        .prop_map(|steps| steps.iter().map(|s| format!("/{s}")).collect::<String>()),
        1 => arb_string(),
    ]
}

fn arb_json_patch() -> impl Strategy<Value = Value> {
    let op = (
        proptest::sample::select(&["add", "remove", "replace", "move", "copy", "test", "x"][..]),
        arb_pointer(),
        proptest::option::of(arb_pointer()),
        proptest::option::of(arb_value()),
    )
        .prop_map(|(op, path, from, value)| {
            let mut map = Map::new();
            map.insert("op".into(), json!(op));
            map.insert("path".into(), json!(path));
            if let Some(from) = from {
                map.insert("from".into(), json!(from));
            }
            if let Some(value) = value {
                map.insert("value".into(), value);
            }
            Value::Object(map)
        });
    proptest::collection::vec(op, 0..4).prop_map(Value::Array)
}

/// A patch of the kind: edits of the stored object for merge-style patches
/// (applied to a copy of it, or to nothing), operations for JSON patches.
fn arb_patch() -> impl Strategy<Value = (PatchType, bool, Vec<Edit>, Value)> {
    (
        proptest::sample::select(
            &[
                PatchType::Merge,
                PatchType::Json,
                PatchType::Strategic,
                PatchType::Apply,
            ][..],
        ),
        any::<bool>(),
        proptest::collection::vec(arb_edit(), 0..5),
        arb_json_patch(),
    )
}

// ---- the properties -----------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Create, read back and update objects of every kind.
    #[test]
    fn write_path(
        resource in arb_resource(),
        mode in arb_mode(),
        namespace in prop_oneof![4 => Just("default".to_string()), 1 => arb_string()],
        edits in proptest::collection::vec(arb_edit(), 0..6),
        from_stored in any::<bool>(),
        update_edits in proptest::collection::vec(arb_edit(), 0..4),
        sub in arb_sub(),
    ) {
        let obj = edited(resource, &edits);
        if let Some(current) = create(resource, obj, &namespace, mode) {
            let mut sent = if from_stored { current.clone() } else { template(resource) };
            for edit in &update_edits {
                apply_edit(&mut sent, edit);
            }
            let sub = sub.filter(|s| resource.has(*s));
            update(resource, sent, &current, sub, mode);
        }
    }

    /// Patches of each type on created objects, then the update path.
    #[test]
    fn patches(
        resource in arb_resource(),
        edits in proptest::collection::vec(arb_edit(), 0..3),
        (kind, from_stored, patch_edits, json_patch) in arb_patch(),
        sub in arb_sub(),
    ) {
        let current = create(resource, edited(resource, &edits), "default", FieldValidation::Warn)
            .or_else(|| create(resource, template(resource), "default", FieldValidation::Warn));
        prop_assume!(current.is_some());
        let current = current.unwrap();
        let body = if kind == PatchType::Json {
            json_patch
        } else {
            let mut body = if from_stored { current.clone() } else { json!({}) };
            for edit in &patch_edits {
                apply_edit(&mut body, edit);
            }
            body
        };
        let sub = sub.filter(|s| resource.has(*s));
        if let Some(stored) = patch(resource, kind, &current, &body, sub, FieldValidation::Warn) {
            // Applying the same merge patch twice changes nothing more
            // (RFC 7386 is idempotent).
            if kind == PatchType::Merge {
                let once = skiff_patch::merge_patch(&current, &body);
                prop_assert_eq!(skiff_patch::merge_patch(&once, &body), once);
            }
            let _ = stored;
        }
    }

    /// The patch functions on any two documents.
    #[test]
    fn patch_functions(base in arb_value(), doc in arb_value(), ops in arb_json_patch()) {
        let _ = skiff_patch::merge_patch(&base, &doc);
        let _ = skiff_patch::json_patch(&base, &ops);
        let _ = skiff_patch::json_patch(&base, &doc);
        for (group, kind) in [("", "Pod"), ("apps", "Deployment"), ("", "Service"), ("x.io", "Thing")] {
            let _ = skiff_patch::strategic_merge_patch(&base, &doc, &skiff_patch::kubernetes_type(group, kind));
        }
    }

    /// Request bodies as bytes in every content type.
    #[test]
    fn bodies(
        resource in arb_resource(),
        content_type in proptest::sample::select(&[
            "",
            "application/json",
            "application/merge-patch+json",
            "application/yaml",
            "application/apply-patch+yaml",
            "text/plain",
            "application/vnd.kubernetes.protobuf",
        ][..]),
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        body_in(resource, content_type, &bytes);
        let magic = [skiff_proto::kubernetes::MAGIC.as_slice(), &bytes].concat();
        body_in(resource, "application/vnd.kubernetes.protobuf", &magic);
    }

    /// Valid manifests with bytes spliced in: nearly valid bodies.
    #[test]
    fn spliced_manifests(
        resource in arb_resource(),
        yaml in any::<bool>(),
        at in any::<proptest::sample::Index>(),
        cut in 0usize..8,
        insert in prop_oneof![
            proptest::sample::select(&[
                "&a ", "*a", "<<: *a\n", "!!binary ", "1e400", "-99999999999999999999999",
                "[[[[[[[[[[[[", "{", "~", ".nan", "\u{0}", "\n---\n", "\"\\ud800\"",
            ][..]).prop_map(String::from),
            any::<String>(),
        ],
    ) {
        let manifest = if yaml {
            serde_saphyr::to_string(&template(resource)).unwrap()
        } else {
            serde_json::to_string_pretty(&template(resource)).unwrap()
        };
        let at = at.index(manifest.len() + 1);
        let end = (at + cut).min(manifest.len());
        let mut bytes = manifest.as_bytes()[..at].to_vec();
        bytes.extend_from_slice(insert.as_bytes());
        bytes.extend_from_slice(&manifest.as_bytes()[end..]);
        body_in(resource, if yaml { "application/yaml" } else { "application/json" }, &bytes);
    }

    /// Selectors, paths, queries and names with any characters.
    #[test]
    fn selectors_and_paths(resource in arb_resource(), text in prop_oneof![
        any::<String>(),
        "[a-z0-9=!,()<> ./%~\\\\-]{0,40}",
    ]) {
        strings(resource, &text);
    }
}

// ---- fixed cases ----------------------------------------------------------

/// YAML that is small to send but large or deep once read: the decoder's
/// limits must turn these into errors (or bounded values), not panics or
/// runaway memory.
#[test]
fn yaml_bombs_and_odd_numbers() {
    let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9 {
        let (from, to) = (i, i + 1);
        laughs.push_str(&format!(
            "l{to}: &l{to} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n",
            prev = if from == 0 { "a".to_string() } else { format!("l{from}") }
        ));
    }
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_block: String = (0..500).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
    for doc in [
        laughs.as_str(),
        deep.as_str(),
        deep_block.as_str(),
        "metadata: {name: 1e400}",
        "spec: {replicas: 99999999999999999999999999999}",
        "spec: {replicas: -0x8000000000000001}",
        "a: &a {b: *a}",
        "<<: *nope",
        "--- {}\n--- {}\n",
        "!!binary AAAA",
    ] {
        for resource in RESOURCES.iter() {
            body_in(resource, "application/yaml", doc.as_bytes());
            body_in(resource, "application/apply-patch+yaml", doc.as_bytes());
        }
    }
    let deep_json = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    assert!(body::decode("application/json", deep_json.as_bytes()).is_err());
}

/// Found by `write_path`: a `generateName` longer than 58 bytes with a
/// multi-byte character across byte 58 was cut inside the character.
#[test]
fn generate_name_cut_keeps_whole_characters() {
    let prefix = format!("{}é-", "a".repeat(57));
    let name = prepare::generated_name(&prefix);
    assert!(name.starts_with(&"a".repeat(57)), "{name}");
    assert_eq!(name.len(), 57 + 5, "the half character is dropped: {name}");
}

/// Found by `patches`: a JSON patch that replaces the whole document with a
/// scalar gave `check_kind` something that is not an object.
#[test]
fn patch_into_a_scalar_is_a_bad_request() {
    let resource = RESOURCES.iter().find(|r| r.kind == "ConfigMap").unwrap();
    let mut scalar = json!(1);
    let err = prepare::check_kind(resource, &mut scalar).unwrap_err();
    assert!(err.to_string().contains("not a JSON object"), "{err}");
}
