//! Joining a worker to a `skiff server`, in one TLS exchange on the join
//! port (the API port + 1, 6444 by default):
//!
//! 1. The worker connects and checks the server's certificate chain: the
//!    last certificate must be the CA whose hash its token pins, and the
//!    serving certificate must be signed by it for the address it dialled
//!    ([`client`]). A wrong hash ends the join before the worker sends
//!    anything.
//! 2. It sends one JSON line: the token's id and secret, its node name and
//!    address.
//! 3. The server ([`service`]) checks the token (known, not expired) and
//!    answers one JSON line: a client certificate for `system:node:<name>`
//!    (group `system:nodes`) and a serving certificate for its kubelet API
//!    (the node's name and address), both signed by the cluster CA, the CA,
//!    and the cluster's pod range — or why it refused.
//!
//! The worker then writes its kubeconfig and runs its kubelet and proxy.

pub mod client;
pub mod service;
pub mod token;

/// The join service's port: the API server's port + 1.
pub fn join_port(api_port: u16) -> u16 {
    api_port.wrapping_add(1)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::client::join;
    use super::service::{Service, serve};
    use super::token::{Store, Token, ca_hash};

    /// A join service on loopback with a fresh CA, as `skiff server` runs it.
    async fn server(dir: &std::path::Path) -> (String, String) {
        let pki =
            skiff_apiserver::pki::Pki::load_or_create(&dir.join("pki"), &["127.0.0.1".into()])
                .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let service = Arc::new(Service {
            pki,
            tokens: Store::new(dir),
            pod_subnet: "10.244.0.0/16".into(),
        });
        tokio::spawn(serve(listener, service));
        // The API URL is one port below the join port.
        (
            format!("https://127.0.0.1:{}", port - 1),
            ca_hash(&dir.join("pki")).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_worker_joins_with_a_token_and_is_refused_otherwise() {
        let d = tempfile::tempdir().unwrap();
        let (url, hash) = server(d.path()).await;
        let store = Store::new(d.path());
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let good = store.create(&hash, Some(3600), now, "").unwrap();

        let joined = join(&url, &good, "w1", "10.9.8.7").await.unwrap();
        assert_eq!(joined.pod_subnet, "10.244.0.0/16");
        assert!(joined.ca_pem.contains("BEGIN CERTIFICATE"));
        // The certificate names the node, in the nodes' group.
        let der = rustls_pemfile::certs(&mut joined.cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&der);
        assert!(text.contains("system:node:w1") && text.contains("system:nodes"));
        // The kubelet's serving certificate: for the node's name and address,
        // signed by the cluster CA (it verifies for that address).
        let serving = rustls_pemfile::certs(&mut joined.serving_cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for ca in rustls_pemfile::certs(&mut joined.ca_pem.as_bytes()) {
            roots.add(ca.unwrap()).unwrap();
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        use rustls::client::danger::ServerCertVerifier as _;
        let at = rustls::pki_types::UnixTime::now();
        let ip = rustls::pki_types::ServerName::try_from("10.9.8.7").unwrap();
        assert!(
            verifier
                .verify_server_cert(&serving, &[], &ip, &[], at)
                .is_ok()
        );
        let other = rustls::pki_types::ServerName::try_from("10.9.8.8").unwrap();
        assert!(
            verifier
                .verify_server_cert(&serving, &[], &other, &[], at)
                .is_err()
        );

        // A token pinning another CA: refused before the secret is sent.
        let other = Token {
            ca_hash: "ab".repeat(32),
            ..good.clone()
        };
        let err = join(&url, &other, "w2", "10.9.8.7")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("refusing to send the token"), "{err}");

        // Expired, revoked, unknown.
        let expired = store.create(&hash, Some(1), now - 10, "").unwrap();
        let err = join(&url, &expired, "w3", "10.9.8.7")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("expired"), "{err}");
        let revoked = store.create(&hash, None, now, "").unwrap();
        assert!(store.delete(&revoked.id).unwrap());
        let err = join(&url, &revoked, "w4", "10.9.8.7")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown or was revoked"), "{err}");
        let wrong_secret = Token {
            secret: "x".repeat(16),
            ..good.clone()
        };
        let err = join(&url, &wrong_secret, "w5", "10.9.8.7")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown or was revoked"), "{err}");
        // A bad node name is refused.
        let err = join(&url, &good, "Not_A_Name", "10.9.8.7")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("node name"), "{err}");
    }
}
