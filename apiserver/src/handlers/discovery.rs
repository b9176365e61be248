//! Discovery: which groups, versions and resources the server has.
//!
//! kubectl 1.32 asks for aggregated discovery (one document for `/api`, one
//! for `/apis`) and recognises it only by the response's Content-Type
//! parameters; otherwise it falls back to the legacy documents, which are
//! served too (`kubectl drain` reads `/api/v1` directly).

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::registry::{self, RESOURCES, Resource};

const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// The aggregated version the client accepts, if any.
fn aggregated(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for media in accept.split(',') {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        if params.contains(&"as=APIGroupDiscoveryList") && params.contains(&"g=apidiscovery.k8s.io")
        {
            if params.contains(&"v=v2") {
                return Some("v2");
            }
            if params.contains(&"v=v2beta1") {
                return Some("v2beta1");
            }
        }
    }
    None
}

fn verbs(r: &Resource) -> Value {
    if r.review.is_some() {
        return json!(["create"]);
    }
    json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ])
}

fn discovery_resource(r: &Resource) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            let (group, version, kind) = s.response_kind().unwrap_or((r.group, r.version, r.kind));
            json!({"subresource": s.name(), "responseKind": {"group": group, "version": version, "kind": kind}, "verbs": s.verbs()})
        })
        .collect();
    let mut resource = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": verbs(r),
    });
    if !r.short_names.is_empty() {
        resource["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        resource["categories"] = json!(r.categories);
    }
    if !subresources.is_empty() {
        resource["subresources"] = json!(subresources);
    }
    resource
}

fn discovery_group(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(discovery_resource)
        .collect();
    let mut metadata = json!({});
    if !group.is_empty() {
        metadata["name"] = json!(group);
    }
    json!({"metadata": metadata, "versions": [{"version": version, "resources": resources, "freshness": "Current"}]})
}

fn aggregated_response(version: &str, items: Vec<Value>) -> Response {
    let content_type = if version == "v2" {
        AGGREGATED_V2
    } else {
        AGGREGATED_V2BETA1
    };
    let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"), "metadata": {}, "items": items});
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        body.to_string(),
    )
        .into_response()
}

/// `/api`.
pub fn core_group(headers: &HeaderMap) -> Response {
    match aggregated(headers) {
        Some(version) => aggregated_response(version, vec![discovery_group("", "v1")]),
        None => super::respond(
            StatusCode::OK,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}),
        ),
    }
}

fn api_group(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

/// `/apis`.
pub fn groups(headers: &HeaderMap) -> Response {
    let groups: Vec<(&str, &str)> = registry::groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .collect();
    match aggregated(headers) {
        Some(version) => aggregated_response(
            version,
            groups.iter().map(|(g, v)| discovery_group(g, v)).collect(),
        ),
        None => {
            let list: Vec<Value> = groups.iter().map(|(g, v)| api_group(g, v)).collect();
            super::respond(
                StatusCode::OK,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list}),
            )
        }
    }
}

/// `/apis/<group>`.
pub fn group(group: &str) -> Response {
    let version = registry::groups()
        .into_iter()
        .find(|(g, _)| *g == group)
        .map_or("v1", |(_, v)| v);
    let mut doc = api_group(group, version);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    super::respond(StatusCode::OK, &doc)
}

/// `/api/v1`, `/apis/<group>/<version>`: an APIResourceList, where each
/// subresource is an entry of its own (`pods/log`).
pub fn resources(group: &str, version: &str) -> Response {
    let mut list = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs(r),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
        for s in r.subresources {
            let mut sub = json!({"name": format!("{}/{}", r.plural, s.name()), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": s.verbs()});
            if let Some((g, v, kind)) = s.response_kind() {
                sub["kind"] = json!(kind);
                if g != group || v != version {
                    sub["group"] = json!(g);
                    sub["version"] = json!(v);
                }
            }
            list.push(sub);
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    super::respond(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": list}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn aggregated_needs_the_content_type() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json".parse().unwrap());
        let response = groups(&headers);
        assert_eq!(response.headers()[header::CONTENT_TYPE], AGGREGATED_V2);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let doc: Value = serde_json::from_slice(&body).unwrap();
        let apps = doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .unwrap();
        let deployments = &apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deployments["shortNames"], json!(["deploy"]));
        assert_eq!(
            deployments["subresources"][1]["responseKind"]["kind"],
            "Scale"
        );

        let legacy = groups(&HeaderMap::new());
        assert_eq!(legacy.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[tokio::test]
    async fn legacy_resource_list_has_eviction() {
        let body = axum::body::to_bytes(resources("", "v1").into_body(), 1 << 20)
            .await
            .unwrap();
        let doc: Value = serde_json::from_slice(&body).unwrap();
        let eviction = doc["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods/eviction")
            .unwrap();
        assert_eq!(
            (
                eviction["group"].as_str(),
                eviction["version"].as_str(),
                eviction["kind"].as_str()
            ),
            (Some("policy"), Some("v1"), Some("Eviction"))
        );
    }
}
