//! What a client asked to get back (`Accept`), and how to send it.
//!
//! `kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io`:
//! the server renders the table, so columns come from the resource's
//! strategy. Metadata-only clients (kube-rs `metadata_api`) ask for
//! `as=PartialObjectMetadata(List)`. Everything else gets JSON (protobuf is
//! accepted as an answer format by every client that asks for it, since they
//! all offer JSON too).

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::registry::Resource;
use crate::registry::table::column_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Table,
    PartialMetadata,
}

/// The first representation the client accepts that the server offers.
pub fn format(headers: &HeaderMap) -> Format {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for media in accept.split(',') {
        let mut parts = media.split(';').map(str::trim);
        let base = parts.next().unwrap_or("");
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |k: &str| params.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        match (param("as"), param("g")) {
            (Some("Table"), Some("meta.k8s.io")) => return Format::Table,
            (Some("PartialObjectMetadata" | "PartialObjectMetadataList"), Some("meta.k8s.io")) => {
                return Format::PartialMetadata;
            }
            (Some(_), _) => continue, // a representation not offered: try the next
            (None, _)
                if base == "application/json"
                    || base == "*/*"
                    || base.is_empty()
                    || base == "application/vnd.kubernetes.protobuf"
                    || base == "application/yaml" =>
            {
                return Format::Json;
            }
            _ => {}
        }
    }
    Format::Json
}

/// What a table row carries besides its cells (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(value: Option<&str>) -> IncludeObject {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// A `meta.k8s.io/v1` Table of `objects`. Watches send the column
/// definitions with their first event only, as upstream does.
pub fn table<'a>(
    resource: &Resource,
    objects: impl IntoIterator<Item = &'a Value>,
    list_meta: Value,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let columns = if with_columns {
        resource
            .strategy
            .columns()
            .iter()
            .map(column_json)
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objects
        .into_iter()
        .map(|obj| {
            let mut row = json!({"cells": resource.strategy.cells(obj)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(obj),
                IncludeObject::Object => row["object"] = obj.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// A JSON answer.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Format {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().unwrap());
        format(&headers)
    }

    #[test]
    fn what_kubectl_sends() {
        assert_eq!(
            accept(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
            ),
            Format::Table
        );
        assert_eq!(accept("application/json"), Format::Json);
        assert_eq!(
            accept("application/vnd.kubernetes.protobuf,application/json"),
            Format::Json
        );
        assert_eq!(accept("application/json, */*"), Format::Json);
        assert_eq!(
            accept(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
            ),
            Format::PartialMetadata
        );
        assert_eq!(format(&HeaderMap::new()), Format::Json);
    }
}
