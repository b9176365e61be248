//! What every verb that talks to the cluster gets: the connection, the
//! namespace in effect, the server's resource types, and small helpers for
//! raw JSON requests (kubectl works on unstructured objects; so do we).

use serde_json::Value;

use crate::discovery::{Catalog, Resource};
use crate::error::{Result, from_kube, usage};
use crate::kubeconfig::{ConfigFlags, Connection, connect};

pub struct Session {
    pub conn: Connection,
    pub catalog: Catalog,
    /// `-n` was given (kubectl refuses a manifest in another namespace then).
    pub explicit_namespace: bool,
}

impl Session {
    pub async fn open(flags: &ConfigFlags) -> Result<Session> {
        let conn = connect(flags).await?;
        let catalog = Catalog::fetch(&conn).await?;
        Ok(Session {
            conn,
            catalog,
            explicit_namespace: flags.namespace.is_some(),
        })
    }

    pub fn namespace(&self) -> &str {
        &self.conn.namespace
    }

    /// Sends a request with a JSON (or empty) body; returns the JSON answer.
    pub async fn send(
        &self,
        method: http::Method,
        uri: &str,
        accept: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Value> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("Accept", accept);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let req = req.body(body).map_err(|e| usage(e.to_string()))?;
        let text = self
            .conn
            .client
            .request_text(req)
            .await
            .map_err(|e| from_kube(e, &self.conn.server))?;
        serde_json::from_str(&text).map_err(|e| usage(format!("decoding the answer: {e}")))
    }

    pub async fn get_json(&self, uri: &str) -> Result<Value> {
        self.send(http::Method::GET, uri, "application/json", None, vec![])
            .await
    }

    pub async fn patch(&self, uri: &str, content_type: &str, body: &Value) -> Result<Value> {
        self.send(
            http::Method::PATCH,
            uri,
            "application/json",
            Some(content_type),
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    pub async fn post(&self, uri: &str, body: &Value) -> Result<Value> {
        self.send(
            http::Method::POST,
            uri,
            "application/json",
            Some("application/json"),
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    pub async fn delete(&self, uri: &str, body: &Value) -> Result<Value> {
        self.send(
            http::Method::DELETE,
            uri,
            "application/json",
            Some("application/json"),
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    /// GETs `uri` and returns its body as a stream, as it arrives (a watch,
    /// a followed log); `accept` when the default JSON is not wanted.
    pub async fn stream(
        &self,
        uri: &str,
        accept: Option<&str>,
    ) -> Result<impl futures::AsyncBufRead + Unpin + Send + 'static> {
        let mut req = http::Request::get(uri);
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        let req = req.body(Vec::new()).map_err(|e| usage(e.to_string()))?;
        let body = self
            .conn
            .client
            .request_stream(req)
            .await
            .map_err(|e| from_kube(e, &self.conn.server))?;
        Ok(Box::pin(body))
    }

    /// The namespace a namespaced resource's request goes to.
    pub fn ns_for<'a>(&'a self, r: &Resource, all: bool) -> Option<&'a str> {
        (r.namespaced && !all).then(|| self.namespace())
    }
}

/// `a b` → `a%20b` for query values (selectors contain `=`, `,`, `!`).
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `path?k=v&…` skipping empty values.
pub fn with_query(path: &str, query: &[(&str, Option<&str>)]) -> String {
    let parts: Vec<String> = query
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", query_escape(v))))
        .collect();
    if parts.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", parts.join("&"))
    }
}
