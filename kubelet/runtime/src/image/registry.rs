//! A small HTTP/1.1 client for registries: one connection per request
//! (a pull makes a handful of requests, each mostly a long download, so
//! pooling would buy little), plain TCP or TLS (rustls, with the system's
//! CA bundle or a given one), redirects followed (registries send blob
//! downloads to storage backends), `Authorization` dropped when a redirect
//! leaves the registry's host.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::error::{ImageError, Result};

/// The CA bundle Debian (and most distributions) keep.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const MAX_REDIRECTS: usize = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A response header or body chunk not arriving within this is a stall.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug, Clone)]
pub struct HttpClient {
    ca_file: PathBuf,
    tls: Arc<std::sync::OnceLock<std::result::Result<Arc<rustls::ClientConfig>, String>>>,
}

impl HttpClient {
    /// A client trusting the CAs in `ca_file` (default: the system bundle)
    /// for HTTPS. The file is read on the first HTTPS request.
    pub fn new(ca_file: Option<&Path>) -> HttpClient {
        HttpClient {
            ca_file: ca_file.map_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE), Path::to_owned),
            tls: Arc::default(),
        }
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        self.tls
            .get_or_init(|| {
                let pem = std::fs::read(&self.ca_file)
                    .map_err(|e| format!("read CA bundle {}: {e}", self.ca_file.display()))?;
                let mut roots = rustls::RootCertStore::empty();
                let certs: Vec<_> = rustls_pemfile::certs(&mut &pem[..])
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| format!("parse {}: {e}", self.ca_file.display()))?;
                let (ok, _bad) = roots.add_parsable_certificates(certs);
                if ok == 0 {
                    return Err(format!(
                        "no usable CA certificate in {}",
                        self.ca_file.display()
                    ));
                }
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
                Ok(Arc::new(config))
            })
            .clone()
            .map_err(|message| ImageError::Registry {
                registry: "tls".into(),
                message,
            })
    }

    /// Sends one request, without following redirects.
    pub async fn send_once(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Response<Incoming>> {
        let err = |message: String| ImageError::Registry {
            registry: uri.authority().map_or_else(String::new, |a| a.to_string()),
            message,
        };
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => return Err(err(format!("unsupported URL scheme {other:?} in {uri}"))),
        };
        let host = uri
            .host()
            .ok_or_else(|| err(format!("no host in {uri}")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|_| err(format!("connect to {host}:{port}: timed out")))?
            .map_err(|e| err(format!("connect to {host}:{port}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = if https {
            let connector = tokio_rustls::TlsConnector::from(self.tls_config()?);
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| err(format!("TLS server name {host}: {e}")))?;
            Box::new(
                connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| err(format!("TLS handshake with {host}:{port}: {e}")))?,
            )
        } else {
            Box::new(tcp)
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| err(format!("HTTP handshake: {e}")))?;
        tokio::spawn(async move {
            // Ends with the response body; errors surface on the body.
            let _ = conn.await;
        });
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = Request::builder().method(method.clone()).uri(path);
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(&host);
        req = req.header(hyper::header::HOST, authority);
        req = req.header(hyper::header::USER_AGENT, "skiff-kubelet/0.1");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req
            .body(String::new())
            .map_err(|e| err(format!("build request: {e}")))?;
        tokio::time::timeout(READ_TIMEOUT, sender.send_request(req))
            .await
            .map_err(|_| err(format!("{method} {uri}: no response in {READ_TIMEOUT:?}")))?
            .map_err(|e| err(format!("{method} {uri}: {e}")))
    }

    /// Sends a request, following redirects. Returns the response and the
    /// URL that gave it.
    pub async fn send(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<(Response<Incoming>, Uri)> {
        let mut uri = uri.clone();
        let mut headers = headers.clone();
        let origin = uri.authority().cloned();
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.send_once(method, &uri, &headers).await?;
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok((resp, uri));
            }
            let location = resp
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| ImageError::Registry {
                    registry: origin.as_ref().map_or_else(String::new, |a| a.to_string()),
                    message: format!("redirect without Location from {uri}"),
                })?;
            uri = resolve(&uri, location)?;
            if uri.authority() != origin.as_ref() {
                // Storage backends get pre-signed URLs, not our credentials.
                headers.remove(hyper::header::AUTHORIZATION);
            }
        }
        Err(ImageError::Registry {
            registry: origin.map_or_else(String::new, |a| a.to_string()),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }
}

/// Resolves a `Location` (absolute, or absolute-path) against `base`.
pub fn resolve(base: &Uri, location: &str) -> Result<Uri> {
    let bad = |e: String| ImageError::format(format!("bad redirect location {location:?}: {e}"));
    if location.starts_with("http://") || location.starts_with("https://") {
        return location
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad(e.to_string()));
    }
    if !location.starts_with('/') {
        return Err(bad("relative paths are not supported".into()));
    }
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base.authority().map_or("", |a| a.as_str());
    format!("{scheme}://{authority}{location}")
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(e.to_string()))
}

/// Reads the next body chunk, with [`READ_TIMEOUT`]; `None` at the end.
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>> {
    loop {
        let frame = tokio::time::timeout(
            READ_TIMEOUT,
            std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)),
        )
        .await
        .map_err(|_| ImageError::Registry {
            registry: String::new(),
            message: format!("download stalled for {READ_TIMEOUT:?}"),
        })?;
        match frame {
            None => return Ok(None),
            Some(Err(e)) => {
                return Err(ImageError::Registry {
                    registry: String::new(),
                    message: format!("reading body: {e}"),
                });
            }
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    return Ok(Some(data));
                }
                // Trailers: skip.
            }
        }
    }
}

/// Reads a whole (small) body, refusing more than `limit` bytes.
pub async fn read_body(body: &mut Incoming, limit: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = next_chunk(body).await? {
        if out.len() + chunk.len() > limit {
            return Err(ImageError::format(format!(
                "response larger than {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A header value, for building requests.
pub fn header_value(s: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(s).map_err(|e| ImageError::format(format!("bad header value: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_resolution() {
        let base: Uri = "http://127.0.0.1:5000/v2/a/blobs/sha256:x".parse().unwrap();
        assert_eq!(
            resolve(&base, "/storage/abc?sig=1").unwrap().to_string(),
            "http://127.0.0.1:5000/storage/abc?sig=1"
        );
        assert_eq!(
            resolve(&base, "https://s3.example/b").unwrap().to_string(),
            "https://s3.example/b"
        );
        assert!(resolve(&base, "relative").is_err());
    }
}
