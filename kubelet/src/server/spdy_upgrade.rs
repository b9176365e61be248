//! The SPDY/3.1 upgrade handshake of the kubelet's streaming endpoints,
//! as upstream's `httpstream.Handshake` and SPDY response upgrader do it:
//! the client offers sub-protocols in `X-Stream-Protocol-Version` (one
//! header line each, best first), the first of them the server also speaks
//! is chosen — the client's order, not ours — and the 101 names it.
//!
//! kubectl offers `v5.channel.k8s.io` … `channel.k8s.io` for exec and
//! attach (v5 is WebSocket-only upstream, so SPDY agrees on v4), and
//! `portforward.k8s.io` for port-forward.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};

/// The header the sub-protocols are offered and answered in.
pub const PROTOCOL_HEADER: &str = "x-stream-protocol-version";
/// Where a refusal lists what the server would have taken.
pub const ACCEPTED_HEADER: &str = "x-accepted-stream-protocol-versions";

/// The remote-command protocols over SPDY, upstream's kubelet's list.
pub const REMOTECOMMAND: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
/// Port-forward's one protocol over SPDY.
pub const PORTFORWARD: [&str; 1] = ["portforward.k8s.io"];

/// Why a handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("unable to upgrade: missing upgrade headers in request")]
    NotSpdy,
    #[error("unable to upgrade: X-Stream-Protocol-Version is required")]
    NoProtocol,
    #[error(
        "unable to upgrade: unable to negotiate protocol: client supports {client:?}, server accepts {server:?}"
    )]
    NoCommonProtocol {
        client: Vec<String>,
        server: Vec<&'static str>,
    },
}

impl IntoResponse for HandshakeError {
    fn into_response(self) -> Response {
        // Upstream: 400 without the headers, 403 with the server's list
        // when nothing offered is spoken.
        let code = match self {
            HandshakeError::NoCommonProtocol { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut r = (code, self.to_string()).into_response();
        if let HandshakeError::NoCommonProtocol { server, .. } = &self {
            for p in server {
                r.headers_mut()
                    .append(ACCEPTED_HEADER, HeaderValue::from_static(p));
            }
        }
        r
    }
}

/// The protocol to speak: the first one the client offers that is in
/// `ours`. Offers are one per header line; a comma-separated line is read
/// as several too.
pub fn negotiate(
    headers: &HeaderMap,
    ours: &[&'static str],
) -> Result<&'static str, HandshakeError> {
    if !skiff_proto::upgrade::is_spdy(headers) {
        return Err(HandshakeError::NotSpdy);
    }
    let client: Vec<String> = headers
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if client.is_empty() {
        return Err(HandshakeError::NoProtocol);
    }
    client
        .iter()
        .find_map(|c| ours.iter().find(|o| **o == c.as_str()).copied())
        .ok_or_else(|| HandshakeError::NoCommonProtocol {
            client,
            server: ours.to_vec(),
        })
}

/// The 101 that switches to SPDY/3.1 speaking `protocol`.
pub fn switching_protocols(protocol: &'static str) -> Response {
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    h.insert(http::header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    h.insert(PROTOCOL_HEADER, HeaderValue::from_static(protocol));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(upgrade: &str, protocols: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::UPGRADE, upgrade.parse().unwrap());
        for p in protocols {
            h.append(PROTOCOL_HEADER, p.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_clients_first_protocol_we_speak_wins() {
        // What kubectl 1.32 sends on its SPDY fallback: v5 is not spoken
        // over SPDY, so v4.
        let kubectl = [
            "v5.channel.k8s.io",
            "v4.channel.k8s.io",
            "v3.channel.k8s.io",
            "v2.channel.k8s.io",
            "channel.k8s.io",
        ];
        assert_eq!(
            negotiate(&offer("SPDY/3.1", &kubectl), &REMOTECOMMAND),
            Ok("v4.channel.k8s.io")
        );
        // The client's order, not ours (as upstream's negotiateProtocol).
        assert_eq!(
            negotiate(
                &offer("SPDY/3.1", &["v2.channel.k8s.io", "v4.channel.k8s.io"]),
                &REMOTECOMMAND
            ),
            Ok("v2.channel.k8s.io")
        );
        assert_eq!(
            negotiate(
                &offer("spdy/3.1", &["channel.k8s.io, v3.channel.k8s.io"]),
                &REMOTECOMMAND
            ),
            Ok("channel.k8s.io")
        );
        assert_eq!(
            negotiate(&offer("SPDY/3.1", &["portforward.k8s.io"]), &PORTFORWARD),
            Ok("portforward.k8s.io")
        );
    }

    #[test]
    fn refusals_say_why_with_upstreams_codes() {
        assert_eq!(
            negotiate(&offer("websocket", &["v4.channel.k8s.io"]), &REMOTECOMMAND),
            Err(HandshakeError::NotSpdy)
        );
        assert_eq!(
            negotiate(&offer("SPDY/3.1", &[]), &PORTFORWARD),
            Err(HandshakeError::NoProtocol)
        );
        let e = negotiate(&offer("SPDY/3.1", &["v5.channel.k8s.io"]), &PORTFORWARD).unwrap_err();
        assert!(
            e.to_string()
                .contains("client supports [\"v5.channel.k8s.io\"]"),
            "{e}"
        );
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.headers()[ACCEPTED_HEADER], "portforward.k8s.io");
        assert_eq!(
            HandshakeError::NoProtocol.into_response().status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn the_101_names_spdy_and_the_protocol() {
        let r = switching_protocols("v4.channel.k8s.io");
        assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(r.headers()[http::header::UPGRADE], "SPDY/3.1");
        assert_eq!(r.headers()[PROTOCOL_HEADER], "v4.channel.k8s.io");
    }
}
