//! OpenAPI v3: `/openapi/v3` (an index) and one document per group-version.
//!
//! `kubectl apply` (default `--validate=strict`) needs a PATCH operation per
//! kind carrying `x-kubernetes-group-version-kind` and a `fieldValidation`
//! parameter: then it leaves validation to the server. `kubectl explain`
//! reads the schemas (with upstream's descriptions, from k8s-openapi) of the
//! kind whose `x-kubernetes-group-version-kind` matches.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::{Map, Value, json};

use crate::registry::{self, RESOURCES, Resource, Sub};

struct Document {
    hash: String,
    body: String,
}

/// Every document, keyed by its path below `/openapi/v3/` (`api/v1`, `apis/apps/v1`).
static DOCUMENTS: LazyLock<BTreeMap<String, Document>> = LazyLock::new(|| {
    registry::groups()
        .into_iter()
        .map(|(group, version)| {
            let path = if group.is_empty() {
                format!("api/{version}")
            } else {
                format!("apis/{group}/{version}")
            };
            let body = document(group, version).to_string();
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            body.hash(&mut hasher);
            (
                path,
                Document {
                    hash: format!("{:016X}", hasher.finish()),
                    body,
                },
            )
        })
        .collect()
});

/// `/openapi/v3`.
pub fn index() -> Response {
    let paths: Map<String, Value> = DOCUMENTS
        .iter()
        .map(|(path, doc)| {
            (
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash)}),
            )
        })
        .collect();
    super::respond(StatusCode::OK, &json!({"paths": paths}))
}

/// `/openapi/v3/<path>`.
pub fn get(path: &str) -> Option<Response> {
    let doc = DOCUMENTS.get(path.trim_matches('/'))?;
    // The URL carries the hash, so the document can be cached for good.
    Some(
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "public, immutable, max-age=31536000"),
            ],
            doc.body.clone(),
        )
            .into_response(),
    )
}

fn gvk(r: &Resource, kind: &str) -> Value {
    json!([{"group": r.group, "version": r.version, "kind": kind}])
}

fn query_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn write_params() -> Vec<Value> {
    vec![
        query_param(
            "dryRun",
            "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
        ),
        query_param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        query_param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
        ),
    ]
}

fn list_params() -> Vec<Value> {
    [
        "allowWatchBookmarks",
        "continue",
        "fieldSelector",
        "labelSelector",
        "limit",
        "resourceVersion",
        "resourceVersionMatch",
        "sendInitialEvents",
        "timeoutSeconds",
        "watch",
    ]
    .iter()
    .map(|p| query_param(p, ""))
    .collect()
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn ok(schema: Value) -> Value {
    json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}, "401": {"description": "Unauthorized"}})
}

fn operation(
    r: &Resource,
    action: &str,
    kind: &str,
    id: String,
    params: Vec<Value>,
    response: Value,
    body: Option<Value>,
) -> Value {
    let mut op = json!({
        "operationId": id,
        "tags": [if r.group.is_empty() { "core_v1".to_string() } else { format!("{}_{}", r.group.replace('.', "_"), r.version) }],
        "parameters": params,
        "responses": ok(response),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(r, kind)[0],
    });
    if let Some(body) = body {
        op["requestBody"] = body;
    }
    op
}

fn camel(kind: &str) -> String {
    kind.to_string()
}

/// The paths of one resource, upstream's shape.
fn paths_of(r: &Resource, schema: &str, paths: &mut Map<String, Value>) {
    let root = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let collection = if r.namespaced {
        format!("{root}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{root}/{}", r.plural)
    };
    let item = format!("{collection}/{{name}}");
    let list_schema = format!("{schema}List");
    let kind = camel(r.kind);
    let object_body = json!({"content": {"*/*": {"schema": reference(schema)}}, "required": true});
    let patch_body = json!({"content": {
        "application/apply-patch+yaml": {"schema": reference("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")},
        "application/json-patch+json": {"schema": reference("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")},
        "application/merge-patch+json": {"schema": reference("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")},
        "application/strategic-merge-patch+json": {"schema": reference("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")},
    }, "required": true});
    let mut patch_params = write_params();
    patch_params.push(query_param("force", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people."));
    if r.review.is_some() {
        let post = operation(
            r,
            "post",
            r.kind,
            format!("create{kind}"),
            write_params(),
            reference(schema),
            Some(object_body),
        );
        paths.insert(collection, json!({"post": post}));
        return;
    }
    let mut coll = json!({
        "get": operation(r, "list", r.kind, format!("list{kind}"), list_params(), reference(&list_schema), None),
        "post": operation(r, "post", r.kind, format!("create{kind}"), write_params(), reference(schema), Some(object_body.clone())),
        "delete": operation(r, "deletecollection", r.kind, format!("deleteCollection{kind}"), list_params(), reference("io.k8s.apimachinery.pkg.apis.meta.v1.Status"), None),
    });
    let name_param = json!({"name": "name", "in": "path", "required": true, "description": format!("name of the {}", r.kind), "schema": {"type": "string", "uniqueItems": true}});
    let ns_param = json!({"name": "namespace", "in": "path", "required": true, "description": "object name and auth scope, such as for teams and projects", "schema": {"type": "string", "uniqueItems": true}});
    let mut item_ops = json!({
        "get": operation(r, "get", r.kind, format!("read{kind}"), vec![], reference(schema), None),
        "put": operation(r, "put", r.kind, format!("replace{kind}"), write_params(), reference(schema), Some(object_body.clone())),
        "patch": operation(r, "patch", r.kind, format!("patch{kind}"), patch_params.clone(), reference(schema), Some(patch_body.clone())),
        "delete": operation(r, "delete", r.kind, format!("delete{kind}"), vec![query_param("gracePeriodSeconds", ""), query_param("propagationPolicy", "")], reference("io.k8s.apimachinery.pkg.apis.meta.v1.Status"), None),
    });
    let mut shared = vec![name_param.clone()];
    if r.namespaced {
        shared.push(ns_param.clone());
        coll["parameters"] = json!([ns_param.clone()]);
    }
    item_ops["parameters"] = json!(shared);
    paths.insert(collection, coll);
    paths.insert(item.clone(), item_ops);
    if r.namespaced {
        let all = format!("{root}/{}", r.plural);
        paths.insert(all, json!({"get": operation(r, "list", r.kind, format!("list{kind}ForAllNamespaces"), list_params(), reference(&list_schema), None)}));
    }
    for sub in r.subresources {
        let (target_schema, target_kind) = match sub {
            Sub::Status => (schema.to_string(), r.kind),
            Sub::Scale => ("io.k8s.api.autoscaling.v1.Scale".to_string(), "Scale"),
            _ => continue,
        };
        let path = format!("{item}/{}", sub.name());
        let suffix = if *sub == Sub::Status {
            "Status"
        } else {
            "Scale"
        };
        let mut ops = json!({
            "get": operation(r, "get", target_kind, format!("read{kind}{suffix}"), vec![], reference(&target_schema), None),
            "put": operation(r, "put", target_kind, format!("replace{kind}{suffix}"), write_params(), reference(&target_schema), Some(json!({"content": {"*/*": {"schema": reference(&target_schema)}}, "required": true}))),
            "patch": operation(r, "patch", target_kind, format!("patch{kind}{suffix}"), patch_params.clone(), reference(&target_schema), Some(patch_body.clone())),
        });
        ops["parameters"] = json!(shared);
        paths.insert(path, ops);
    }
}

/// Marks the fields that merge in strategic merge patches, as upstream's
/// schemas do: kubectl computes the patches it sends from these, and without
/// them treats every list as atomic (so a server-defaulted field in a list
/// makes every re-apply a change).
fn publish_patch_metadata(schemas: &mut Map<String, Value>) {
    for meta in skiff_patch::patch_metadata() {
        for (name, schema) in schemas.iter_mut() {
            if name.rsplit('.').next() != Some(meta.owner) {
                continue;
            }
            let Some(property) = schema
                .get_mut("properties")
                .and_then(|p| p.get_mut(meta.field))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            property.insert("x-kubernetes-patch-strategy".into(), json!(meta.strategy));
            if let Some(key) = meta.merge_key {
                property.insert("x-kubernetes-patch-merge-key".into(), json!(key));
            }
        }
    }
}

fn document(group: &str, version: &str) -> Value {
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    let mut paths = Map::new();
    let mut kinds: Vec<(&Resource, String)> = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        (r.typed.schema)(&mut generator);
        let name = (r.typed.schema_name)();
        paths_of(r, &name, &mut paths);
        kinds.push((r, name));
    }
    if kinds.iter().any(|(r, _)| r.has(Sub::Scale)) {
        generator.subschema_for::<k8s_openapi::api::autoscaling::v1::Scale>();
    }
    generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>();
    generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta>();
    let mut schemas = generator.take_definitions(true);
    schemas.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(),
        json!({"type": "object", "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body."}),
    );
    publish_patch_metadata(&mut schemas);
    for (r, name) in &kinds {
        if let Some(schema) = schemas.get_mut(name).and_then(Value::as_object_mut) {
            schema.insert("x-kubernetes-group-version-kind".into(), gvk(r, r.kind));
        }
        let list = json!({
            "description": format!("{}List is a list of {}.", r.kind, r.kind),
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
                "items": {"type": "array", "items": reference(name), "description": format!("List of {}.", r.plural)},
                "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
                "metadata": reference("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"),
            },
            "required": ["items"],
            "x-kubernetes-group-version-kind": gvk(r, &format!("{}List", r.kind)),
        });
        schemas.insert(format!("{name}List"), list);
    }
    let title = "Kubernetes";
    json!({
        "openapi": "3.0.0",
        "info": {"title": title, "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_can_rely_on_the_server() {
        let doc: Value = serde_json::from_str(&DOCUMENTS["apis/apps/v1"].body).unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        let schema = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            schema["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        // What `kubectl explain deployment.spec` walks into.
        assert!(doc["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]["description"].is_string());
        assert!(
            doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
                .is_object()
        );
        // What kubectl computes strategic merge patches from.
        let containers =
            &doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(
            (
                containers["x-kubernetes-patch-strategy"].as_str(),
                containers["x-kubernetes-patch-merge-key"].as_str()
            ),
            (Some("merge"), Some("name"))
        );
        let core: Value = serde_json::from_str(&DOCUMENTS["api/v1"].body).unwrap();
        assert!(core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/status"].is_object());

        assert!(core["paths"]["/api/v1/nodes/{name}"].is_object());
    }

    #[tokio::test]
    async fn index_points_at_documents() {
        let body = axum::body::to_bytes(index().into_body(), 1 << 20)
            .await
            .unwrap();
        let index: Value = serde_json::from_slice(&body).unwrap();
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
        assert!(get("apis/apps/v1").is_some());
        assert!(get("apis/nope/v1").is_none());
    }
}
