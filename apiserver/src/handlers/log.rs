//! `GET pods/<name>/log`: `kubectl logs`. The API server checks the request
//! against the pod (which container, is it running or did it run), then
//! streams the answer of the pod's node's kubelet
//! (`https://<InternalIP>:<daemonEndpoints.kubeletEndpoint.Port>/containerLogs/…`),
//! authenticating with its kubelet-client certificate.
//!
//! The kubelet's serving certificate is not verified: upstream does the
//! same unless `--kubelet-certificate-authority` is given, and Skiff's
//! kubelets sign their own (see `kubelet/src/server`).

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use futures::StreamExt;
use http::StatusCode;
use http_body_util::BodyExt;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::Value;

use super::{Api, Query, error_target, storage_error};
use crate::error::{ApiError, ApiResult};
use crate::http::request::Target;
use crate::object::{items, str_at};

/// The query parameters passed on to the kubelet (upstream's PodLogOptions).
const PASSED: [&str; 7] = [
    "follow",
    "previous",
    "timestamps",
    "tailLines",
    "limitBytes",
    "sinceSeconds",
    "sinceTime",
];

/// Which container's log, checked against the pod as upstream's
/// `LogLocation` and `ValidateContainerLogStatus` do.
pub fn container_for(pod: &Value, asked: Option<&str>, previous: bool) -> Result<String, ApiError> {
    let name = str_at(pod, &["metadata", "name"]).unwrap_or_default();
    let names: Vec<&str> = items(pod, &["spec", "containers"])
        .iter()
        .filter_map(|c| str_at(c, &["name"]))
        .collect();
    let inits: Vec<&str> = items(pod, &["spec", "initContainers"])
        .iter()
        .filter_map(|c| str_at(c, &["name"]))
        .collect();
    let container = match asked.filter(|c| !c.is_empty()) {
        Some(c) if names.contains(&c) || inits.contains(&c) => c.to_string(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None if names.len() == 1 => names[0].to_string(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    let statuses = items(pod, &["status", "containerStatuses"])
        .iter()
        .chain(items(pod, &["status", "initContainerStatuses"]).iter())
        .find(|s| str_at(s, &["name"]) == Some(container.as_str()))
        .cloned();
    let waiting = |reason: &str| {
        ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
        ))
    };
    let Some(status) = statuses else {
        return Err(waiting("ContainerCreating"));
    };
    if previous {
        if crate::object::get(&status, &["lastState", "terminated"]).is_none() {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
    } else if let Some(reason) = str_at(&status, &["state", "waiting", "reason"]) {
        // A container waiting after it ran (CrashLoopBackOff) still has a log.
        if crate::object::get(&status, &["lastState", "terminated"]).is_none() {
            return Err(waiting(reason));
        }
    }
    Ok(container)
}

/// Where the node's kubelet listens: its InternalIP (else its first
/// address) and `status.daemonEndpoints.kubeletEndpoint.Port`.
pub fn kubelet_address(node: &Value) -> Option<String> {
    let addresses = items(node, &["status", "addresses"]);
    let ip = addresses
        .iter()
        .find(|a| str_at(a, &["type"]) == Some("InternalIP"))
        .or_else(|| addresses.first())
        .and_then(|a| str_at(a, &["address"]))?;
    let port = crate::object::get(
        node,
        &["status", "daemonEndpoints", "kubeletEndpoint", "Port"],
    )
    .and_then(Value::as_i64)
    .filter(|p| *p > 0)?;
    Some(if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    })
}

/// The pod `name` a subresource request is about.
pub async fn pod(api: &Api, target: &Target, name: &str) -> ApiResult<Value> {
    let resource = target.resource;
    Ok(api
        .store(resource)
        .get(&resource.key(&target.namespace, name))
        .await
        .map_err(|e| storage_error(e, resource, name))?
        .ok_or_else(|| ApiError::not_found(error_target(resource, name)))?
        .value)
}

pub async fn log(api: &Api, query: &Query, target: &Target, name: &str) -> ApiResult<Response> {
    let pod = pod(api, target, name).await?;
    let previous = query.flag("previous");
    let container = container_for(&pod, query.get("container"), previous)?;
    let Some(node_name) = str_at(&pod, &["spec", "nodeName"]).filter(|n| !n.is_empty()) else {
        // Upstream answers an unscheduled pod's log with nothing.
        return Ok(plain(StatusCode::OK, Body::empty()));
    };
    let (address, tls) = kubelet_of(api, node_name).await?;
    let passed = {
        let mut passed = form_urlencoded::Serializer::new(String::new());
        for key in PASSED {
            if let Some(v) = query.get(key) {
                passed.append_pair(key, v);
            }
        }
        passed.finish()
    };
    let path = format!(
        "/containerLogs/{}/{name}/{container}?{passed}",
        target.namespace
    );
    fetch(tls, &address, &path).await
}

/// Where node `node_name`'s kubelet listens, and the TLS settings to call
/// it with (our kubelet-client certificate).
pub async fn kubelet_of(
    api: &Api,
    node_name: &str,
) -> ApiResult<(String, Arc<rustls::ClientConfig>)> {
    let nodes = crate::registry::find("", "v1", "nodes").expect("a built-in resource");
    let node = api
        .store(nodes)
        .get(&nodes.key("", node_name))
        .await
        .map_err(|e| storage_error(e, nodes, node_name))?
        .ok_or_else(|| ApiError::not_found(error_target(nodes, node_name)))?
        .value;
    let address = kubelet_address(&node).ok_or_else(|| {
        ApiError::internal(format!(
            "node \"{node_name}\" reports no address and kubelet port"
        ))
    })?;
    let Some(tls) = api.kubelet_client.clone() else {
        return Err(ApiError::service_unavailable(
            "this API server has no kubelet-client certificate (it was started with a serving certificate and no CA key)",
        ));
    };
    Ok((address, tls))
}

/// A TLS connection to the kubelet at `address`; errors name `url` as
/// upstream's do (`Get "https://…": dial tcp …`).
pub async fn dial(
    tls: Arc<rustls::ClientConfig>,
    address: &str,
    url: &str,
) -> ApiResult<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let failed = |e: &dyn std::fmt::Display| ApiError::internal(format!("Get \"{url}\": {e}"));
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect(address),
    )
    .await
    .map_err(|_| failed(&"dial tcp: i/o timeout"))?
    .map_err(|e| failed(&format!("dial tcp {address}: connect: {e}")))?;
    let host = address
        .rsplit_once(':')
        .map_or(address, |(h, _)| h)
        .trim_matches(['[', ']']);
    let server_name = ServerName::try_from(host.to_string())
        .map_err(|e| failed(&format!("server name {host}: {e}")))?;
    tokio_rustls::TlsConnector::from(tls)
        .connect(server_name, tcp)
        .await
        .map_err(|e| failed(&e))
}

/// The kubelet said no: its message, with the status it gave (400 and 404
/// kept, the rest an internal error).
pub fn kubelet_refused(status: StatusCode, body: &[u8]) -> ApiError {
    let message = String::from_utf8_lossy(body).trim().to_string();
    match status {
        StatusCode::BAD_REQUEST => ApiError::bad_request(message),
        StatusCode::NOT_FOUND => ApiError {
            code: 404,
            reason: "NotFound",
            message,
            details: None,
            retry_after: None,
        },
        _ => ApiError::internal(message),
    }
}

/// GET `path` from the kubelet at `address`; its body streamed back.
async fn fetch(tls: Arc<rustls::ClientConfig>, address: &str, path: &str) -> ApiResult<Response> {
    let url = format!("https://{address}{path}");
    let failed = |e: &dyn std::fmt::Display| ApiError::internal(format!("Get \"{url}\": {e}"));
    let stream = dial(tls, address, &url).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| failed(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "kubelet connection");
        }
    });
    let request = http::Request::get(path)
        .header(http::header::HOST, address)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| failed(&e))?;
    let response = sender.send_request(request).await.map_err(|e| failed(&e))?;
    let status = response.status();
    if !status.is_success() {
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(kubelet_refused(status, &body));
    }
    let stream = response
        .into_body()
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other));
    Ok(plain(StatusCode::OK, Body::from_stream(stream)))
}

fn plain(status: StatusCode, body: Body) -> Response {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(body)
        .expect("static headers")
}

/// The TLS client config the API server calls kubelets with: its
/// kubelet-client certificate, and no verification of the kubelet's own
/// (see the module doc).
pub fn kubelet_client_config(
    cert_pem: &str,
    key_pem: &str,
) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyKubelet(provider)))
        .with_client_auth_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts any kubelet serving certificate (signatures are still checked,
/// so the handshake proves the key matches the certificate).
#[derive(Debug)]
struct AnyKubelet(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyKubelet {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(statuses: Value) -> Value {
        json!({
            "metadata": {"name": "web"},
            "spec": {"nodeName": "n1", "containers": [{"name": "app"}, {"name": "side"}],
                     "initContainers": [{"name": "init"}]},
            "status": {"containerStatuses": statuses},
        })
    }

    #[test]
    fn the_container_is_checked_as_upstream_does() {
        let running = json!([{"name": "app", "state": {"running": {}}},
                             {"name": "side", "state": {"waiting": {"reason": "ContainerCreating"}}}]);
        let crashed = json!([{"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                              "lastState": {"terminated": {"exitCode": 1}}}]);
        let one = json!({"metadata": {"name": "solo"}, "spec": {"containers": [{"name": "only"}]},
                         "status": {"containerStatuses": [{"name": "only", "state": {"running": {}}}]}});
        type Case<'a> = (Value, Option<&'a str>, bool, Result<&'a str, &'a str>);
        let cases: Vec<Case> = vec![
            (pod(running.clone()), Some("app"), false, Ok("app")),
            (one, None, false, Ok("only")),
            (
                pod(running.clone()),
                None,
                false,
                Err("a container name must be specified for pod web, choose one of: [app side]"),
            ),
            (
                pod(running.clone()),
                Some("nope"),
                false,
                Err("container nope is not valid for pod web"),
            ),
            (
                pod(running.clone()),
                Some("side"),
                false,
                Err("container \"side\" in pod \"web\" is waiting to start: ContainerCreating"),
            ),
            (
                pod(running),
                Some("app"),
                true,
                Err("previous terminated container \"app\" in pod \"web\" not found"),
            ),
            (pod(crashed.clone()), Some("app"), false, Ok("app")),
            (pod(crashed), Some("app"), true, Ok("app")),
            (
                pod(json!([])),
                Some("init"),
                false,
                Err("container \"init\" in pod \"web\" is waiting to start: ContainerCreating"),
            ),
        ];
        for (pod, asked, previous, want) in cases {
            let got = container_for(&pod, asked, previous).map_err(|e| e.message);
            assert_eq!(
                got.as_deref().map_err(String::as_str),
                want,
                "{asked:?} previous={previous}"
            );
        }
    }

    #[test]
    fn the_kubelet_is_found_on_the_nodes_internal_ip() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}});
        assert_eq!(kubelet_address(&node).as_deref(), Some("10.0.0.5:10250"));
        let v6 = json!({"status": {"addresses": [{"type": "InternalIP", "address": "fd00::5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 4000}}}});
        assert_eq!(kubelet_address(&v6).as_deref(), Some("[fd00::5]:4000"));
        let no_port =
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}});
        assert_eq!(kubelet_address(&no_port), None);
    }
}
