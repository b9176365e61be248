//! One hop of an HTTP/1.1 upgrade (the WebSocket or SPDY/3.1 connection
//! `kubectl exec`, `attach` and `port-forward` open):
//! the request's upgrade headers are sent on over a connection the caller
//! made (TLS to a kubelet, TCP to the runtime's streaming server); when the
//! far side switches protocols, its 101 is what the caller answers with,
//! and the two upgraded connections are spliced byte for byte.
//!
//! This is how upstream's API server and kubelet pass exec through
//! (`UpgradeAwareHandler`): neither looks inside the stream, so the
//! protocol is agreed by the far end. The API server passes WebSocket and
//! SPDY/3.1 upgrades on alike to the kubelet; the kubelet passes WebSocket
//! on to the runtime and answers SPDY/3.1 itself (the runtime's streaming
//! server speaks WebSocket only).

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Request headers carried to the next hop.
const SENT: [&str; 6] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
];

/// 101 headers carried back to the client.
const RETURNED: [&str; 5] = [
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
];

/// The far side's answer.
#[derive(Debug)]
pub enum Forwarded {
    /// It switched; answer 101 with these headers (the splice is running).
    Switched(HeaderMap),
    /// It did not; its status, content type and (first 64 KiB of) body.
    Refused {
        status: StatusCode,
        content_type: Option<http::HeaderValue>,
        body: Bytes,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("{0}")]
    Request(#[from] http::Error),
}

/// The 101 to answer with once the far side has switched.
pub fn switching_protocols<B: Default>(headers: HeaderMap) -> http::Response<B> {
    let mut r = http::Response::new(B::default());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *r.headers_mut() = headers;
    r
}

/// Is this request an upgrade to WebSocket?
pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers.get_all(http::header::UPGRADE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.eq_ignore_ascii_case("websocket"))
    })
}

/// Is this request an upgrade to SPDY/3.1 (what kubectl 1.27–1.29 speak
/// for exec, attach and port-forward, and kubectl 1.30+ falls back to)?
pub fn is_spdy(headers: &HeaderMap) -> bool {
    headers.get_all(http::header::UPGRADE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("SPDY/3.1"))
    })
}

/// Sends the upgrade `method path_and_query` (with `headers`' upgrade
/// headers) over `io`, and on a 101 splices `io` with `incoming` (the
/// client's connection, once our own 101 has gone out).
pub async fn forward<IO>(
    io: IO,
    method: &Method,
    path_and_query: &str,
    host: &str,
    headers: &HeaderMap,
    incoming: OnUpgrade,
) -> Result<Forwarded, UpgradeError>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upgrade: connection to the next hop");
        }
    });
    let mut request = http::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(http::header::HOST, host);
    for name in SENT {
        for value in headers.get_all(name) {
            request = request.header(name, value);
        }
    }
    let response = sender
        .send_request(request.body(http_body_util::Empty::<Bytes>::new())?)
        .await?;
    let status = response.status();
    if status != StatusCode::SWITCHING_PROTOCOLS {
        let content_type = response.headers().get(http::header::CONTENT_TYPE).cloned();
        let limited = http_body_util::Limited::new(response.into_body(), 64 << 10);
        let body = limited
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Ok(Forwarded::Refused {
            status,
            content_type,
            body,
        });
    }
    let mut back = HeaderMap::new();
    for name in RETURNED {
        for value in response.headers().get_all(name) {
            back.append(name, value.clone());
        }
    }
    let upstream = hyper::upgrade::on(response);
    tokio::spawn(async move {
        let (up, down) = match (upstream.await, incoming.await) {
            (Ok(up), Ok(down)) => (up, down),
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!(error = %e, "upgrade: a side never switched");
                return;
            }
        };
        let (mut up, mut down) = (TokioIo::new(up), TokioIo::new(down));
        if let Err(e) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
            tracing::debug!(error = %e, "upgrade: splice ended");
        }
    });
    Ok(Forwarded::Switched(back))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_and_spdy_upgrades_are_told_apart() {
        let mut h = HeaderMap::new();
        assert!(!is_websocket(&h) && !is_spdy(&h));
        h.insert(http::header::UPGRADE, "SPDY/3.1".parse().unwrap());
        assert!(!is_websocket(&h) && is_spdy(&h));
        h.insert(http::header::UPGRADE, "WebSocket".parse().unwrap());
        assert!(is_websocket(&h) && !is_spdy(&h));
        h.insert(http::header::UPGRADE, "SPDY/3".parse().unwrap());
        assert!(!is_spdy(&h), "only 3.1 is spoken");
    }
}
