//! The server's side of a join: a TLS listener (the API server's serving
//! certificate, followed by the CA so workers can pin it) that answers each
//! worker's one request. Runs in `skiff server`'s supervisor.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

use super::token::Store;
use crate::supervise::say;

/// What a join needs on the server.
pub struct Service {
    pub pki: skiff_apiserver::pki::Pki,
    pub tokens: Store,
    /// The cluster's pod range, for the worker's proxy.
    pub pod_subnet: String,
}

/// The answer to one request line.
pub fn answer(service: &Service, request: &str, now: i64) -> Value {
    let Ok(req) = serde_json::from_str::<Value>(request) else {
        return json!({"error": "the request is not JSON"});
    };
    let (Some(id), Some(secret), Some(node)) = (
        req["id"].as_str(),
        req["secret"].as_str(),
        req["node"].as_str(),
    ) else {
        return json!({"error": "the request needs id, secret and node"});
    };
    let valid_node = !node.is_empty()
        && node.len() <= 63
        && node
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !valid_node {
        return json!({"error": format!("node name {node:?}: lower-case letters, digits, '-' and '.' (a DNS name)")});
    }
    match service.tokens.check(id, secret, now) {
        Err(e) => return json!({"error": format!("server: {e}")}),
        Ok(Err(refusal)) => {
            say(format!(
                "join of node {node} refused (token {id}): {refusal}"
            ));
            return json!({"error": refusal.to_string()});
        }
        Ok(Ok(())) => {}
    }
    // The kubelet's serving certificate names the node and the address
    // the API server reaches it at.
    let Some(ip) = req["ip"]
        .as_str()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
    else {
        return json!({"error": "the request needs the node's ip"});
    };
    let user = format!("system:node:{node}");
    let client = service.pki.issue_client_cert(&user, &["system:nodes"], 365);
    let serving = service
        .pki
        .issue_serving_cert(&user, &[node.to_string(), ip.to_string()], 365);
    match (client, serving) {
        (Ok((cert, key)), Ok((serving_cert, serving_key))) => {
            say(format!("node {node} joined (token {id})"));
            json!({"cert": cert, "key": key, "ca": service.pki.ca_pem(),
                   "servingCert": serving_cert, "servingKey": serving_key,
                   "podSubnet": service.pod_subnet})
        }
        (Err(e), _) | (_, Err(e)) => {
            json!({"error": format!("server: cannot issue a certificate: {e}")})
        }
    }
}

/// Serves joins on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, service: Arc<Service>) {
    let config = match service.pki.pinning_server_config() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            say(format!("the join service cannot start: {e}"));
            return;
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let (acceptor, service) = (acceptor.clone(), service.clone());
        tokio::spawn(async move {
            let one = async {
                let tls = acceptor.accept(tcp).await.ok()?;
                let (read, mut write) = tokio::io::split(tls);
                let mut line = String::new();
                // One line of at most 4 KiB: nobody holds the service with a stream.
                BufReader::new(tokio::io::AsyncReadExt::take(read, 4096))
                    .read_line(&mut line)
                    .await
                    .ok()?;
                let now = k8s_openapi::jiff::Timestamp::now().as_second();
                let reply = answer(&service, &line, now);
                write
                    .write_all(format!("{reply}\n").as_bytes())
                    .await
                    .ok()?;
                write.shutdown().await.ok()
            };
            if tokio::time::timeout(std::time::Duration::from_secs(10), one)
                .await
                .is_err()
            {
                say(format!("a join from {peer} timed out"));
            }
        });
    }
}
