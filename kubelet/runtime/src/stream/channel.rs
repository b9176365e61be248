//! The remote-command channel protocol `kubectl exec` speaks over
//! WebSocket: every binary message starts with a channel byte — 0 stdin,
//! 1 stdout, 2 stderr, 3 the final status (JSON), 4 terminal resize (JSON
//! `{"Width":80,"Height":24}`) — and, in `v5.channel.k8s.io` only, 255
//! "close this channel" (`[255, 0]` is stdin's EOF).
//!
//! Pure: negotiation, decoding and the status documents are table-tested
//! here; [`super::session`] moves the bytes.

/// What we speak, best first. kubectl 1.30+ offers only v5; v4 is what
/// older WebSocket clients (kube-rs among them) offer.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// The protocol to answer with, from the client's `Sec-WebSocket-Protocol`
/// values (each may hold a comma-separated list): ours in our order.
pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    let offered: Vec<&str> = offered
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    PROTOCOLS.into_iter().find(|p| offered.contains(p))
}

/// One message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Stdin(Vec<u8>),
    /// The client's stdin reached its end (v5 only).
    StdinClosed,
    Resize {
        width: u16,
        height: u16,
    },
    /// A channel a client may close or write that means nothing to us.
    Ignored,
}

/// Decodes one binary message; an error says what was wrong with it.
pub fn decode(message: &[u8]) -> Result<Inbound, String> {
    let Some((&channel, data)) = message.split_first() else {
        // An empty message is allowed (a keep-alive some clients send).
        return Ok(Inbound::Ignored);
    };
    match channel {
        STDIN => Ok(Inbound::Stdin(data.to_vec())),
        RESIZE => {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Size {
                width: u16,
                height: u16,
            }
            let size: Size = serde_json::from_slice(data)
                .map_err(|e| format!("resize message {:?}: {e}", String::from_utf8_lossy(data)))?;
            Ok(Inbound::Resize {
                width: size.width,
                height: size.height,
            })
        }
        CLOSE => match data.first() {
            Some(&STDIN) => Ok(Inbound::StdinClosed),
            Some(_) => Ok(Inbound::Ignored),
            None => Err("close message without a channel".into()),
        },
        other => Err(format!("channel {other} is not one a client writes")),
    }
}

/// `data` on `channel`, as one message.
pub fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    out
}

/// The status message that ends the session: Success for exit code 0,
/// else the `NonZeroExitCode` Failure kubectl turns into its own exit code
/// (`command terminated with exit code 7`).
pub fn exit_status(code: i32) -> Vec<u8> {
    let status = if code == 0 {
        serde_json::json!({"metadata": {}, "status": "Success"})
    } else {
        serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command [...], exit code {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        })
    };
    frame(ERROR, status.to_string().as_bytes())
}

/// A status for a session that could not run the command at all; kubectl
/// prints `error: <message>` and exits 1.
pub fn failure(message: &str) -> Vec<u8> {
    let status = serde_json::json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": 500,
    });
    frame(ERROR, status.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_v5_and_reads_lists() {
        let cases: [(&[&str], Option<&str>); 6] = [
            (&["v5.channel.k8s.io"], Some("v5.channel.k8s.io")),
            (&["v4.channel.k8s.io"], Some("v4.channel.k8s.io")),
            (
                &["v4.channel.k8s.io, v5.channel.k8s.io"],
                Some("v5.channel.k8s.io"),
            ),
            (
                &["channel.k8s.io", "v4.channel.k8s.io"],
                Some("v4.channel.k8s.io"),
            ),
            (&["channel.k8s.io", "base64.channel.k8s.io"], None),
            (&[], None),
        ];
        for (offered, want) in cases {
            assert_eq!(negotiate(offered.iter().copied()), want, "{offered:?}");
        }
    }

    #[test]
    fn client_messages_decode_by_channel() {
        assert_eq!(decode(b"\x00hi\n"), Ok(Inbound::Stdin(b"hi\n".to_vec())));
        assert_eq!(decode(&[255, 0]), Ok(Inbound::StdinClosed));
        assert_eq!(decode(&[255, 4]), Ok(Inbound::Ignored));
        assert_eq!(decode(&[]), Ok(Inbound::Ignored));
        assert_eq!(
            decode(b"\x04{\"Width\":80,\"Height\":24}"),
            Ok(Inbound::Resize {
                width: 80,
                height: 24
            })
        );
        assert!(
            decode(b"\x04{\"Width\":-1}")
                .unwrap_err()
                .contains("resize")
        );
        assert!(decode(&[255]).is_err());
        assert!(decode(b"\x01out").unwrap_err().contains("channel 1"));
    }

    #[test]
    fn exit_codes_are_carried_as_kubectl_reads_them() {
        let ok: serde_json::Value = serde_json::from_slice(&exit_status(0)[1..]).unwrap();
        assert_eq!(ok["status"], "Success");
        let failed = exit_status(7);
        assert_eq!(failed[0], ERROR);
        let failed: serde_json::Value = serde_json::from_slice(&failed[1..]).unwrap();
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(failed["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(failed["details"]["causes"][0]["message"], "7");
        let broken: serde_json::Value = serde_json::from_slice(&failure("no sh")[1..]).unwrap();
        assert_eq!(broken["message"], "no sh");
        assert_eq!(frame(STDOUT, b"x"), b"\x01x");
    }
}
