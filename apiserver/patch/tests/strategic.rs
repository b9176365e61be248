//! Strategic merge patch, with patches shaped like those kubectl sends.

use serde_json::{Value, json};
use skiff_patch::{PatchError, TypeRef, kubernetes_type, strategic_merge_patch};

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "tier": "front"},
            "finalizers": ["a.example.com/x", "b.example.com/y"]
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.25",
                            "args": ["--port", "8080"],
                            "env": [{"name": "MODE", "value": "prod"}],
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}]
                        },
                        {"name": "sidecar", "image": "envoy:1.30"}
                    ],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                    "volumes": [{"name": "data", "emptyDir": {}}]
                }
            }
        },
        "status": {
            "conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True"}
            ]
        }
    })
}

fn apply(original: &Value, patch: Value, group: &str, kind: &str) -> Value {
    match strategic_merge_patch(original, &patch, &kubernetes_type(group, kind)) {
        Ok(result) => result,
        Err(err) => panic!("patch {patch} failed: {err}"),
    }
}

fn apply_err(original: &Value, patch: Value, group: &str, kind: &str) -> PatchError {
    match strategic_merge_patch(original, &patch, &kubernetes_type(group, kind)) {
        Ok(result) => panic!("patch {patch} should fail, got {result}"),
        Err(err) => err,
    }
}

fn containers(v: &Value) -> &Value {
    &v["spec"]["template"]["spec"]["containers"]
}

/// `kubectl set image deployment/web app=nginx:1.27`, both as kubectl sends
/// it (with `$setElementOrder`) and in the short form users type.
#[test]
fn set_image_merges_containers_by_name() {
    let original = deployment();
    let short = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "nginx:1.27"}
    ]}}}});
    let kubectl = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
        "containers": [{"image": "nginx:1.27", "name": "app"}]
    }}}});
    for patch in [short, kubectl] {
        let result = apply(&original, patch, "apps", "Deployment");
        let mut want = original.clone();
        want["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
        assert_eq!(result, want);
    }
}

/// Adding an env var merges into the container and into its env list.
#[test]
fn add_env_var() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "DEBUG", "value": "1"}]}
    ]}}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    let app = &containers(&result)[0];
    assert_eq!(app["image"], json!("nginx:1.25"));
    // Upstream puts elements the patch names that the live list lacks before
    // the live-only ones.
    assert_eq!(
        app["env"],
        json!([{"name": "DEBUG", "value": "1"}, {"name": "MODE", "value": "prod"}])
    );
    assert_eq!(containers(&result)[1]["name"], json!("sidecar"));
}

/// `kubectl apply` adding an env var sends `$setElementOrder/env`, which puts
/// the new variable where the manifest has it.
#[test]
fn add_env_var_with_element_order() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
        "containers": [{
            "$setElementOrder/env": [{"name": "MODE"}, {"name": "DEBUG"}],
            "env": [{"name": "DEBUG", "value": "1"}],
            "name": "app"
        }]
    }}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    assert_eq!(
        containers(&result)[0]["env"],
        json!([{"name": "MODE", "value": "prod"}, {"name": "DEBUG", "value": "1"}])
    );
}

#[test]
fn delete_container_with_patch_delete() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{"$patch": "delete", "name": "sidecar"}]
    }}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    assert_eq!(containers(&result).as_array().map(Vec::len), Some(1));
    assert_eq!(containers(&result)[0]["name"], json!("app"));

    // Deleting an element that is not there is not an error.
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"$patch": "delete", "name": "nope"}
    ]}}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    assert_eq!(containers(&result), containers(&deployment()));
}

#[test]
fn set_element_order_reorders_containers() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]
    }}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    let names: Vec<&Value> = containers(&result)
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(names, [&json!("sidecar"), &json!("app")]);
    // Contents untouched.
    assert_eq!(containers(&result)[1], containers(&deployment())[0]);
}

/// The "merge lists of maps" case of apimachinery's tests, on containers.
#[test]
fn set_element_order_with_additions() {
    let original = json!({"spec": {"containers": [
        {"name": "1"}, {"name": "2", "image": "two"}
    ]}});
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "4"}, {"name": "1"}, {"name": "2"}, {"name": "3"}],
        "containers": [{"name": "4", "image": "four"}, {"name": "3", "image": "three"}]
    }});
    let result = apply(&original, patch, "", "Pod");
    assert_eq!(
        result,
        json!({"spec": {"containers": [
            {"name": "4", "image": "four"},
            {"name": "1"},
            {"name": "2", "image": "two"},
            {"name": "3", "image": "three"}
        ]}})
    );
}

#[test]
fn finalizers_union_and_delete_from_primitive_list() {
    let original = deployment();
    // Union keeps existing values and does not duplicate.
    let patch = json!({"metadata": {"finalizers": ["b.example.com/y", "c.example.com/z"]}});
    let result = apply(&original, patch, "apps", "Deployment");
    assert_eq!(
        result["metadata"]["finalizers"],
        json!(["a.example.com/x", "b.example.com/y", "c.example.com/z"])
    );

    // What kubectl apply sends when a finalizer leaves the manifest.
    let patch = json!({"metadata": {
        "$setElementOrder/finalizers": ["b.example.com/y"],
        "$deleteFromPrimitiveList/finalizers": ["a.example.com/x"]
    }});
    let result = apply(&original, patch, "apps", "Deployment");
    assert_eq!(result["metadata"]["finalizers"], json!(["b.example.com/y"]));

    // Add and delete in one patch.
    let patch = json!({"metadata": {
        "finalizers": ["c.example.com/z"],
        "$deleteFromPrimitiveList/finalizers": ["a.example.com/x", "not-there"]
    }});
    let result = apply(&original, patch, "apps", "Deployment");
    let mut got = result["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    got.sort_by_key(Value::to_string);
    assert_eq!(
        got,
        vec![json!("b.example.com/y"), json!("c.example.com/z")]
    );
}

/// apimachinery's "delete items in lists of scalars" case, on Node podCIDRs.
#[test]
fn pod_cidrs_merge_as_primitives() {
    let node =
        json!({"spec": {"podCIDRs": ["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24", "10.0.4.0/24"]}});
    let patch = json!({"spec": {
        "$setElementOrder/podCIDRs": ["10.0.1.0/24", "10.0.2.0/24"],
        "$deleteFromPrimitiveList/podCIDRs": ["10.0.3.0/24"]
    }});
    let result = apply(&node, patch, "", "Node");
    assert_eq!(
        result["spec"]["podCIDRs"],
        json!(["10.0.1.0/24", "10.0.2.0/24", "10.0.4.0/24"])
    );
    let patch = json!({"spec": {"podCIDRs": ["fd00::/64"]}});
    let result = apply(&node, patch, "", "Node");
    assert_eq!(result["spec"]["podCIDRs"].as_array().map(Vec::len), Some(5));
}

#[test]
fn null_deletes_a_label() {
    let patch = json!({"metadata": {"labels": {"tier": null, "missing": null}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    assert_eq!(result["metadata"]["labels"], json!({"app": "web"}));
    // Nulls inside a new map are dropped rather than stored.
    let patch = json!({"metadata": {"annotations": {"a": "1", "b": null}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    assert_eq!(result["metadata"]["annotations"], json!({"a": "1"}));
}

/// `kubectl apply` switching a volume from emptyDir to configMap.
#[test]
fn retain_keys_switches_volume_source() {
    let with_null = json!({"spec": {"template": {"spec": {
        "$setElementOrder/volumes": [{"name": "data"}],
        "volumes": [{
            "$retainKeys": ["configMap", "name"],
            "configMap": {"name": "settings"},
            "emptyDir": null,
            "name": "data"
        }]
    }}}});
    let without_null = json!({"spec": {"template": {"spec": {"volumes": [{
        "$retainKeys": ["configMap", "name"],
        "configMap": {"name": "settings"},
        "name": "data"
    }]}}}});
    for patch in [with_null, without_null] {
        let result = apply(&deployment(), patch, "apps", "Deployment");
        assert_eq!(
            result["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "data", "configMap": {"name": "settings"}}])
        );
    }
}

/// `kubectl apply` switching a Deployment from RollingUpdate to Recreate.
#[test]
fn retain_keys_on_deployment_strategy() {
    let patch = json!({"spec": {"strategy": {
        "$retainKeys": ["type"],
        "type": "Recreate",
        "rollingUpdate": null
    }}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    assert_eq!(result["spec"]["strategy"], json!({"type": "Recreate"}));

    // A patch that sets a key its own $retainKeys leaves out contradicts
    // itself.
    let patch =
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}});
    let err = apply_err(&deployment(), patch, "apps", "Deployment");
    assert_eq!(
        err.to_string(),
        "strategic merge patch: at spec.strategy: the patch sets \"rollingUpdate\", \
         which its \"$retainKeys\" list does not include"
    );
}

#[test]
fn service_ports_merge_by_port() {
    let service = json!({
        "metadata": {"name": "web"},
        "spec": {
            "type": "ClusterIP",
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
            ]
        }
    });
    let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}});
    let result = apply(&service, patch, "", "Service");
    assert_eq!(
        result["spec"]["ports"],
        json!([
            {"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
        ])
    );
    // Status conditions merge by type.
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let result = apply(&service, patch.clone(), "", "Service");
    let result = apply(
        &result,
        json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
        "",
        "Service",
    );
    assert_eq!(
        result["status"]["conditions"],
        json!([{"type": "Ready", "status": "False"}])
    );
}

/// Lists without a merge strategy are replaced whole.
#[test]
fn lists_without_strategy_are_replaced() {
    let patch = json!({"spec": {"template": {"spec": {
        "tolerations": [{"key": "b", "operator": "Exists"}],
        "containers": [{"name": "app", "args": ["--port", "9090"]}]
    }}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    let spec = &result["spec"]["template"]["spec"];
    assert_eq!(
        spec["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
    assert_eq!(spec["containers"][0]["args"], json!(["--port", "9090"]));
    assert_eq!(
        spec["containers"][0]["ports"],
        json!([{"containerPort": 8080, "protocol": "TCP"}])
    );
}

/// `kubectl cordon` and `uncordon`.
#[test]
fn cordon_node() {
    let node = json!({
        "metadata": {"name": "n1"},
        "spec": {"podCIDR": "10.0.0.0/24", "taints": [{"key": "a", "effect": "NoSchedule"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}
    });
    let cordoned = apply(&node, json!({"spec": {"unschedulable": true}}), "", "Node");
    let mut want = node.clone();
    want["spec"]["unschedulable"] = json!(true);
    assert_eq!(cordoned, want);
    let uncordoned = apply(
        &cordoned,
        json!({"spec": {"unschedulable": null}}),
        "",
        "Node",
    );
    assert_eq!(uncordoned, node);
    // Taints have no merge strategy: replaced.
    let tainted = apply(
        &node,
        json!({"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}}),
        "",
        "Node",
    );
    assert_eq!(
        tainted["spec"]["taints"],
        json!([{"key": "b", "effect": "NoExecute"}])
    );
    // Node status addresses merge by type.
    let with_addr = apply(
        &node,
        json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}}),
        "",
        "Node",
    );
    let moved = apply(
        &with_addr,
        json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.6"}]}}),
        "",
        "Node",
    );
    assert_eq!(
        moved["status"]["addresses"],
        json!([{"type": "InternalIP", "address": "10.0.0.6"}])
    );
}

/// `kubectl rollout restart`.
#[test]
fn rollout_restart_annotation() {
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"
    }}}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    let mut want = deployment();
    want["spec"]["template"]["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"});
    assert_eq!(result, want);
}

#[test]
fn patch_replace_and_delete_directives() {
    // `$patch: replace` in a list: the list becomes the other elements.
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "busybox"},
        {"$patch": "replace"}
    ]}}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    assert_eq!(
        containers(&result),
        &json!([{"name": "only", "image": "busybox"}])
    );

    // `$patch: replace` in a map: the map becomes the other keys.
    let patch = json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    assert_eq!(result["metadata"]["labels"], json!({"only": "this"}));

    // `$patch: delete` in a map empties it, as upstream does.
    let patch = json!({"metadata": {"labels": {"$patch": "delete"}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    assert_eq!(result["metadata"]["labels"], json!({}));

    // ...and on a map that does not exist, adds nothing.
    let patch = json!({"metadata": {"annotations": {"$patch": "delete"}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    assert_eq!(result["metadata"].get("annotations"), None);

    // At the top level.
    let result = apply(
        &deployment(),
        json!({"$patch": "replace", "a": 1}),
        "apps",
        "Deployment",
    );
    assert_eq!(result, json!({"a": 1}));
}

#[test]
fn conditions_and_owner_references_merge_by_key() {
    let pod = json!({
        "metadata": {"ownerReferences": [{"uid": "u1", "kind": "ReplicaSet", "name": "rs1"}]},
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}],
            "podIPs": [{"ip": "10.0.0.1"}]
        }
    });
    let patch = json!({
        "metadata": {"ownerReferences": [{"uid": "u2", "kind": "Node", "name": "n1"}]},
        "status": {
            "$setElementOrder/conditions": [{"type": "Ready"}, {"type": "Initialized"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "podIPs": [{"ip": "fd00::1"}]
        }
    });
    let result = apply(&pod, patch, "", "Pod");
    assert_eq!(
        result["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}])
    );
    assert_eq!(
        result["status"]["podIPs"],
        json!([{"ip": "fd00::1"}, {"ip": "10.0.0.1"}])
    );
    assert_eq!(
        result["metadata"]["ownerReferences"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

/// CronJob reaches the pod spec through `spec.jobTemplate.spec.template`.
#[test]
fn cronjob_job_template_containers_merge() {
    let cronjob = json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]
    }}}}}});
    let patch = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "b", "image": "b:2"}]
    }}}}}});
    let result = apply(&cronjob, patch, "batch", "CronJob");
    assert_eq!(
        result["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}])
    );
}

/// Kinds the schema does not know: maps merge, lists are replaced.
#[test]
fn unknown_kind_merges_maps_and_replaces_lists() {
    let original = json!({"spec": {"items": [{"name": "a"}, {"name": "b"}], "m": {"x": 1}}});
    let patch = json!({"spec": {"items": [{"name": "a", "v": 2}], "m": {"y": 2}}});
    let result = apply(&original, patch, "example.com", "Widget");
    assert_eq!(
        result,
        json!({"spec": {"items": [{"name": "a", "v": 2}], "m": {"x": 1, "y": 2}}})
    );
    let unknown = TypeRef::unknown();
    assert_eq!(
        strategic_merge_patch(&json!({"a": [1]}), &json!({"a": [2]}), &unknown).unwrap(),
        json!({"a": [2]})
    );
}

/// Directives never reach the result, even inside brand-new values.
#[test]
fn directives_never_appear_in_the_result() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}, {"name": "new"}],
        "containers": [{
            "name": "new",
            "image": "new:1",
            "env": [{"name": "A", "value": "1"}, {"name": "GONE", "$patch": "delete"}],
            "$setElementOrder/env": [{"name": "A"}],
            "resources": {"limits": {"cpu": "1", "memory": null}}
        }],
        "volumes": [{"name": "cfg", "$retainKeys": ["configMap", "name"], "configMap": {"name": "c"}}],
        "initContainers": [{"name": "init", "image": "i"}, {"$patch": "replace"}],
        "securityContext": {"$patch": "replace", "runAsUser": 1000}
    }}}});
    let result = apply(&deployment(), patch, "apps", "Deployment");
    let text = result.to_string();
    assert!(!text.contains('$'), "directive leaked: {text}");
    let spec = &result["spec"]["template"]["spec"];
    assert_eq!(
        spec["containers"][2],
        json!({"name": "new", "image": "new:1", "env": [{"name": "A", "value": "1"}],
               "resources": {"limits": {"cpu": "1"}}})
    );
    assert_eq!(
        spec["initContainers"],
        json!([{"name": "init", "image": "i"}])
    );
    assert_eq!(spec["securityContext"], json!({"runAsUser": 1000}));
    assert_eq!(
        spec["volumes"],
        json!([{"name": "cfg", "configMap": {"name": "c"}}, {"name": "data", "emptyDir": {}}])
    );
}

/// PodDisruptionBudget's selector has `patchStrategy:"replace"`.
#[test]
fn replace_strategy_on_a_map() {
    let pdb = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "minAvailable": 1}});
    let patch = json!({"spec": {"selector": {"matchExpressions": []}}});
    let result = apply(&pdb, patch, "policy", "PodDisruptionBudget");
    assert_eq!(result["spec"]["selector"], json!({"matchExpressions": []}));
    assert_eq!(result["spec"]["minAvailable"], json!(1));
}

#[test]
fn invalid_patches_give_clear_errors() {
    let d = deployment();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"metadata": {"labels": {"$patch": "bogus"}}}),
            r#"strategic merge patch: at metadata.labels: invalid "$patch" directive "bogus": in a map it must be "replace" or "delete""#,
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "$patch": "bogus"}]}}}}),
            r#"strategic merge patch: at spec.template.spec.containers[0]: invalid "$patch" directive "bogus": in a list element it must be "delete" or "replace""#,
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            r#"strategic merge patch: at spec.template.spec.containers[0]: the element has no "name" field, which this list needs to match elements (its merge key)"#,
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}}),
            r#"strategic merge patch: at spec.template.spec.containers[0]: the element has no "name" field, which this list needs to match elements (its merge key)"#,
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"name": "x", "$patch": "merge"}]}}}}),
            r#"strategic merge patch: at spec.template.spec.containers[0]: "$patch": "merge" is not supported in list elements; leave "$patch" out to merge"#,
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": ["app"]}}}}),
            r#"strategic merge patch: at spec.template.spec.containers: the list mixes element types (an object and a string), so its elements cannot be matched"#,
        ),
        (
            json!({"metadata": {"finalizers": [{"name": "x"}]}}),
            r#"strategic merge patch: at metadata.finalizers: the list mixes element types (a string and an object), so its elements cannot be matched"#,
        ),
        (
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                "containers": [{"name": "app", "image": "a"}, {"name": "sidecar", "image": "b"}]
            }}}}),
            r#"strategic merge patch: at spec.template.spec.containers: the patch list does not match "$setElementOrder/containers": element 1 ("sidecar") is missing from it or out of its order"#,
        ),
        (
            json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"image": "x"}]}}}}),
            r#"strategic merge patch: at spec.template.spec: entry 0 of "$setElementOrder/containers" has no "name" field, which identifies elements of this list"#,
        ),
        (
            json!({"spec": {"template": {"spec": {"$setElementOrder/containers": "app"}}}}),
            r#"strategic merge patch: at spec.template.spec: "$setElementOrder/containers" must be a list, but it is a string"#,
        ),
        (
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
            r#"strategic merge patch: at metadata: "$deleteFromPrimitiveList/finalizers" must be a list of values, but it is a string"#,
        ),
        (
            json!({"metadata": {"$setElementOrder": []}}),
            r#"strategic merge patch: at metadata: malformed directive "$setElementOrder": expected "$setElementOrder/<field name>""#,
        ),
        (
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            r#"strategic merge patch: at spec.strategy: "$retainKeys" must be a list of field names, but it is a string"#,
        ),
        (
            json!({"$patch": 1}),
            r#"strategic merge patch: at the top level: "$patch" must be the string "replace" or "delete", but it is a number"#,
        ),
        (
            json!([]),
            "strategic merge patch: the patch must be a JSON object, but it is an array",
        ),
    ];
    for (patch, want) in cases {
        let err = apply_err(&d, patch, "apps", "Deployment");
        assert_eq!(err.to_string(), want);
    }
    let err = strategic_merge_patch(&json!("x"), &json!({}), &TypeRef::unknown()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "strategic merge patch: the original object must be a JSON object, but it is a string"
    );
    assert!(!err.is_malformed());
}

#[test]
fn inputs_are_not_modified() {
    let original = deployment();
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "x"}]}}}});
    let (o, p) = (original.clone(), patch.clone());
    let _ = strategic_merge_patch(&original, &patch, &kubernetes_type("apps", "Deployment"));
    assert_eq!((original, patch), (o, p));
}

/// `kubectl apply` after a manifest drops container `a` and adds `d`, while
/// the live object also has `c`, which only the server knows (say, an
/// injected sidecar). Upstream's ordering here depends on how Go's in-place
/// list edits are seen while sorting; the result must match it.
#[test]
fn apply_removes_one_container_and_adds_another() {
    let live = json!({"spec": {"containers": [
        {"name": "a", "image": "a"}, {"name": "b", "image": "b"}, {"name": "c", "image": "c"}
    ]}});
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "d"}],
        "containers": [{"name": "d", "image": "d"}, {"$patch": "delete", "name": "a"}]
    }});
    let result = apply(&live, patch, "", "Pod");
    assert_eq!(
        result,
        json!({"spec": {"containers": [
            {"name": "b", "image": "b"}, {"name": "c", "image": "c"}, {"name": "d", "image": "d"}
        ]}})
    );
}
