//! The worker's side of a join: dial the join port, trust the server only
//! if its chain ends in the CA the token pins, then trade the token for a
//! node certificate.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use super::token::{Token, sha256_hex};
use crate::{Error, Result};

/// What the server gave: the node's credentials and the cluster's pod range.
pub struct Joined {
    pub cert_pem: String,
    pub key_pem: String,
    /// The kubelet API's certificate and key, signed by the cluster CA.
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub ca_pem: String,
    pub pod_subnet: String,
}

// Hand-written: the private key must never reach a log through Debug.
impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Joined")
            .field("pod_subnet", &self.pod_subnet)
            .finish_non_exhaustive()
    }
}

/// Accepts the server only when the last certificate it sends is the CA
/// with the pinned hash and the serving certificate verifies against it.
#[derive(Debug)]
struct Pinned {
    hash: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some((ca, rest)) = intermediates.split_last() else {
            return Err(rustls::Error::General(
                "the server sent no CA certificate: is this a skiff server's join port?".into(),
            ));
        };
        let seen = sha256_hex(ca);
        if seen != self.hash {
            return Err(rustls::Error::General(format!(
                "the server's CA has hash {seen}, the token pins {}: refusing to send the token (wrong server, or someone in between)",
                self.hash
            )));
        }
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, rest, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `https://host:port` → (host, port).
pub fn host_port(url: &str) -> Result<(String, u16)> {
    let bad = || {
        Error::Failed(format!(
            "{url}: the server's API URL, https://<address>:<port>"
        ))
    };
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port.parse().map_err(|_| bad())?))
}

/// Joins the server at `url` (its API URL) as `node`, at address `ip`.
pub async fn join(url: &str, token: &Token, node: &str, ip: &str) -> Result<Joined> {
    let (host, api_port) = host_port(url)?;
    let port = super::join_port(api_port);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Failed(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            hash: token.ca_hash.clone(),
            provider,
        }))
        .with_no_client_auth();
    let name = ServerName::try_from(host.clone())
        .map_err(|_| Error::Failed(format!("{host}: not an address or host name")))?;
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| {
        Error::Failed(format!(
            "{host}:{port} (the join port): no answer within 10 s"
        ))
    })?
    .map_err(Error::io(format!("connect to the join port {host}:{port}")))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| Error::Failed(format!("the server at {host}:{port} is not trusted: {e}")))?;
    let (read, mut write) = tokio::io::split(tls);
    let request = json!({"id": token.id, "secret": token.secret, "node": node, "ip": ip});
    write
        .write_all(format!("{request}\n").as_bytes())
        .await
        .map_err(Error::io("send the join request"))?;
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .await
        .map_err(Error::io("read the server's answer"))?;
    let reply: Value = serde_json::from_str(&line)
        .map_err(|_| Error::Failed("the server's answer is not JSON".into()))?;
    if let Some(e) = reply["error"].as_str() {
        return Err(Error::Failed(format!("the server refused the join: {e}")));
    }
    let field = |k: &str| {
        reply[k]
            .as_str()
            .map(String::from)
            .ok_or_else(|| Error::Failed(format!("the server's answer lacks {k}")))
    };
    Ok(Joined {
        cert_pem: field("cert")?,
        key_pem: field("key")?,
        serving_cert_pem: field("servingCert")?,
        serving_key_pem: field("servingKey")?,
        ca_pem: field("ca")?,
        pod_subnet: field("podSubnet")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            host_port("https://10.0.0.5:6443").unwrap(),
            ("10.0.0.5".into(), 6443)
        );
        assert_eq!(
            host_port("https://cp.lab:16443/").unwrap(),
            ("cp.lab".into(), 16443)
        );
        assert_eq!(
            host_port("https://[fd00::1]:6443").unwrap(),
            ("fd00::1".into(), 6443)
        );
        for bad in ["http://10.0.0.5:6443", "https://10.0.0.5", "10.0.0.5:6443"] {
            assert!(host_port(bad).is_err(), "{bad}");
        }
    }
}
