//! Accepting the URL-shaped HTTP/2 `:authority` that etcdctl 3.4 sends.
//!
//! etcdctl 3.4 (Debian's) dials some calls — `endpoint status` among them —
//! with the endpoint string itself as the target, so their requests carry
//! `:authority: http://127.0.0.1:2379`. grpc-go servers (real etcd) accept
//! that; the `h2` crate under tonic rejects it as malformed and resets the
//! stream, so the command would fail against this store only.
//!
//! [`AuthorityFix`] wraps each client connection. Writes go straight to the
//! socket. Reads are looked at until the first request's HEADERS frame:
//!
//! - if its `:authority` is well-formed (every ordinary client), the rest of
//!   the connection passes through untouched;
//! - if it is a URL, this connection's request headers are decoded (HPACK,
//!   keeping the client's compression state) and re-encoded with the
//!   authority reduced to `host:port`, without compression state of their own.
//!
//! A connection that does not start with the HTTP/2 preface (HTTP/1.1, for
//! `/health` or `/metrics`) passes through at once.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use loona_hpack::Decoder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame payload a server accepts unless it says otherwise.
const MAX_FRAME_PAYLOAD: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Waiting for the connection preface.
    Preface,
    /// Looking at frames until the first request's headers.
    Inspect,
    /// Rewriting every request's headers.
    Rewrite,
    /// Handing bytes over untouched.
    Passthrough,
}

/// A header block being collected across HEADERS and CONTINUATION frames.
struct PendingHeaders {
    stream_id: u32,
    flags: u8,
    priority: Option<[u8; 5]>,
    block: Vec<u8>,
    /// The frames exactly as received, for handing over unchanged.
    original: Vec<u8>,
}

/// A client connection with the `:authority` fix applied to what is read.
pub(crate) struct AuthorityFix<S> {
    io: S,
    mode: Mode,
    /// Bytes read from the socket, not yet looked at.
    raw: BytesMut,
    /// Bytes ready for the HTTP/2 server to read.
    ready: BytesMut,
    pending: Option<PendingHeaders>,
    decoder: Decoder<'static>,
}

impl<S> AuthorityFix<S> {
    pub(crate) fn new(io: S) -> Self {
        AuthorityFix {
            io,
            mode: Mode::Preface,
            raw: BytesMut::new(),
            ready: BytesMut::new(),
            pending: None,
            decoder: Decoder::new(),
        }
    }

    /// Moves what can be decided from `raw` to `ready`.
    fn process(&mut self) {
        loop {
            match self.mode {
                Mode::Passthrough => {
                    let rest = self.raw.split();
                    self.ready.extend_from_slice(&rest);
                    return;
                }
                Mode::Preface => {
                    let seen = self.raw.len().min(PREFACE.len());
                    if self.raw[..seen] != PREFACE[..seen] {
                        self.mode = Mode::Passthrough; // not HTTP/2 with prior knowledge
                        continue;
                    }
                    if seen < PREFACE.len() {
                        return;
                    }
                    let preface = self.raw.split_to(PREFACE.len());
                    self.ready.extend_from_slice(&preface);
                    self.mode = Mode::Inspect;
                }
                Mode::Inspect | Mode::Rewrite => {
                    if self.raw.len() < FRAME_HEADER_LEN {
                        return;
                    }
                    let len =
                        u32::from_be_bytes([0, self.raw[0], self.raw[1], self.raw[2]]) as usize;
                    if self.raw.len() < FRAME_HEADER_LEN + len {
                        return;
                    }
                    let frame = self.raw.split_to(FRAME_HEADER_LEN + len);
                    self.frame(&frame);
                }
            }
        }
    }

    fn frame(&mut self, frame: &[u8]) {
        let kind = frame[3];
        let flags = frame[4];
        let stream_id = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff;
        let payload = &frame[FRAME_HEADER_LEN..];
        match (kind, self.pending.as_mut()) {
            (CONTINUATION, Some(pending)) if pending.stream_id == stream_id => {
                pending.block.extend_from_slice(payload);
                pending.original.extend_from_slice(frame);
                if flags & END_HEADERS != 0 {
                    self.finish_headers();
                }
            }
            (HEADERS, None) => match split_headers_payload(flags, payload) {
                Some((priority, fragment)) => {
                    self.pending = Some(PendingHeaders {
                        stream_id,
                        flags,
                        priority,
                        block: fragment.to_vec(),
                        original: frame.to_vec(),
                    });
                    if flags & END_HEADERS != 0 {
                        self.finish_headers();
                    }
                }
                None => self.give_up(frame),
            },
            (_, None) => self.ready.extend_from_slice(frame),
            // Anything between HEADERS and its last CONTINUATION is a
            // protocol error; let the server see it as it is.
            (_, Some(_)) => self.give_up(frame),
        }
    }

    /// Stops interfering: what was held back goes out unchanged.
    fn give_up(&mut self, frame: &[u8]) {
        if let Some(pending) = self.pending.take() {
            self.ready.extend_from_slice(&pending.original);
        }
        self.ready.extend_from_slice(frame);
        if self.mode == Mode::Inspect {
            self.mode = Mode::Passthrough;
        }
    }

    fn finish_headers(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let headers = match self.decoder.decode(&pending.block) {
            Ok(headers) => headers,
            Err(_) => {
                // Undecodable: the server will say so. Once rewriting, the
                // server's decoder never saw the client's state, so there is
                // no way back; the connection will fail either way.
                self.ready.extend_from_slice(&pending.original);
                self.mode = Mode::Passthrough;
                return;
            }
        };
        if self.mode == Mode::Inspect {
            let needs_fix = headers
                .iter()
                .any(|(name, value)| name == b":authority" && fixed_authority(value).is_some());
            if !needs_fix {
                self.ready.extend_from_slice(&pending.original);
                self.mode = Mode::Passthrough;
                return;
            }
            tracing::debug!(
                "client sent a URL as :authority; rewriting this connection's request headers"
            );
            self.mode = Mode::Rewrite;
        }
        let mut block = Vec::new();
        for (name, value) in &headers {
            let value = match fixed_authority(value) {
                Some(fixed) if name == b":authority" => fixed,
                _ => value.clone(),
            };
            encode_literal(&mut block, name, &value);
        }
        write_header_frames(
            &mut self.ready,
            pending.stream_id,
            pending.flags,
            pending.priority,
            &block,
        );
    }
}

/// `http://host:port[/…]` → `host:port`, when the value is not a valid
/// authority but that part of it is.
fn fixed_authority(value: &[u8]) -> Option<Vec<u8>> {
    if http::uri::Authority::try_from(value).is_ok() {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    let (_, rest) = text.split_once("://")?;
    let host_port = rest.split('/').next()?;
    http::uri::Authority::try_from(host_port).ok()?;
    Some(host_port.as_bytes().to_vec())
}

/// (priority fields, header block fragment) of a HEADERS payload, without padding.
fn split_headers_payload(flags: u8, payload: &[u8]) -> Option<(Option<[u8; 5]>, &[u8])> {
    let mut body = payload;
    let mut padding = 0usize;
    if flags & PADDED != 0 {
        padding = *body.first()? as usize;
        body = &body[1..];
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        priority = Some(body.get(..5)?.try_into().ok()?);
        body = &body[5..];
    }
    let end = body.len().checked_sub(padding)?;
    Some((priority, &body[..end]))
}

/// HPACK "literal header field without indexing, new name", no Huffman:
/// nothing enters the server's dynamic table, so no state has to be kept in
/// step with it.
fn encode_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    for string in [name, value] {
        encode_integer(out, string.len(), 7, 0x00);
        out.extend_from_slice(string);
    }
}

/// HPACK integer with an N-bit prefix (RFC 7541 §5.1). With a 7-bit prefix,
/// 300 is `0x7f` then 300 - 127 = 173 as `0xad 0x01` (173 = 0x2d + 1·128).
fn encode_integer(out: &mut Vec<u8>, value: usize, prefix_bits: u8, first_byte_flags: u8) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        out.push(first_byte_flags | value as u8);
        return;
    }
    out.push(first_byte_flags | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A HEADERS frame and as many CONTINUATION frames as the block needs.
fn write_header_frames(
    out: &mut BytesMut,
    stream_id: u32,
    flags: u8,
    priority: Option<[u8; 5]>,
    block: &[u8],
) {
    let first_room = MAX_FRAME_PAYLOAD - if priority.is_some() { 5 } else { 0 };
    let (first, mut rest) = block.split_at(block.len().min(first_room));
    let mut head_flags = flags & (END_STREAM | PRIORITY);
    if rest.is_empty() {
        head_flags |= END_HEADERS;
    }
    let mut payload = Vec::with_capacity(first.len() + 5);
    if let Some(priority) = priority {
        payload.extend_from_slice(&priority);
    }
    payload.extend_from_slice(first);
    write_frame(out, HEADERS, head_flags, stream_id, &payload);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME_PAYLOAD));
        rest = tail;
        write_frame(
            out,
            CONTINUATION,
            if rest.is_empty() { END_HEADERS } else { 0 },
            stream_id,
            chunk,
        );
    }
}

fn write_frame(out: &mut BytesMut, kind: u8, flags: u8, stream_id: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(payload);
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.mode == Mode::Passthrough && this.raw.is_empty() && this.pending.is_none() {
                return Pin::new(&mut this.io).poll_read(cx, buf);
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // End of stream: hand over whatever was held back.
                if let Some(pending) = this.pending.take() {
                    this.ready.extend_from_slice(&pending.original);
                }
                let rest = this.raw.split();
                this.ready.extend_from_slice(&rest);
                if this.ready.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.mode = Mode::Passthrough;
                continue;
            }
            this.raw.extend_from_slice(read.filled());
            this.process();
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The client listener: TCP with `TCP_NODELAY`, each connection wrapped.
pub(crate) struct ClientListener(pub tokio::net::TcpListener);

impl axum::serve::Listener for ClientListener {
    type Io = AuthorityFix<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    return (AuthorityFix::new(tcp), addr);
                }
                Err(err) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %err, "cannot accept a client connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Frames as a grpc-go client sends them: preface, SETTINGS, then
    /// requests whose headers use the dynamic table (incremental indexing).
    fn client_bytes(authority: &str, requests: u32) -> Vec<u8> {
        let mut encoder = loona_hpack::Encoder::new();
        let mut out = BytesMut::new();
        out.extend_from_slice(PREFACE);
        write_frame(&mut out, 0x4, 0, 0, &[]); // SETTINGS
        for i in 0..requests {
            let stream_id = 1 + 2 * i;
            let headers: Vec<(&[u8], &[u8])> = vec![
                (b":method", b"POST"),
                (b":scheme", b"http"),
                (b":path", b"/etcdserverpb.Maintenance/Status"),
                (b":authority", authority.as_bytes()),
                (b"content-type", b"application/grpc"),
            ];
            let block = encoder.encode(headers);
            write_frame(&mut out, HEADERS, END_HEADERS, stream_id, &block);
            write_frame(&mut out, 0x0, END_STREAM, stream_id, &[0, 0, 0, 0, 0]); // DATA
        }
        out.to_vec()
    }

    async fn read_through(input: Vec<u8>) -> Vec<u8> {
        let mut fix = AuthorityFix::new(std::io::Cursor::new(input));
        let mut out = Vec::new();
        fix.read_to_end(&mut out).await.unwrap();
        out
    }

    /// Decodes the authorities of every HEADERS block in `bytes`.
    fn authorities(bytes: &[u8]) -> Vec<String> {
        let mut decoder = Decoder::new();
        let mut rest = &bytes[PREFACE.len()..];
        let mut found = Vec::new();
        while rest.len() >= FRAME_HEADER_LEN {
            let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
            let (frame, tail) = rest.split_at(FRAME_HEADER_LEN + len);
            if frame[3] == HEADERS {
                let (_, block) =
                    split_headers_payload(frame[4], &frame[FRAME_HEADER_LEN..]).unwrap();
                for (name, value) in decoder.decode(block).unwrap() {
                    if name == b":authority" {
                        found.push(String::from_utf8(value).unwrap());
                    }
                }
            }
            rest = tail;
        }
        found
    }

    #[tokio::test]
    async fn ordinary_connections_pass_through_unchanged() {
        let input = client_bytes("127.0.0.1:2379", 3);
        assert_eq!(read_through(input.clone()).await, input);
        let http1 = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        assert_eq!(read_through(http1.clone()).await, http1);
    }

    #[tokio::test]
    async fn url_authorities_are_rewritten_on_every_request() {
        let input = client_bytes("http://127.0.0.1:2379", 3);
        assert_eq!(authorities(&input), vec!["http://127.0.0.1:2379"; 3]);
        let output = read_through(input).await;
        // The second and third requests refer to the client's dynamic table;
        // they come out right only if the client's state was followed.
        assert_eq!(authorities(&output), vec!["127.0.0.1:2379"; 3]);
    }

    #[tokio::test]
    async fn bytes_arriving_one_at_a_time() {
        let input = client_bytes("http://127.0.0.1:2379", 2);
        let mut builder = tokio_test_reader(&input);
        let mut out = Vec::new();
        builder.read_to_end(&mut out).await.unwrap();
        assert_eq!(authorities(&out), vec!["127.0.0.1:2379"; 2]);
    }

    fn tokio_test_reader(input: &[u8]) -> AuthorityFix<impl AsyncRead + Unpin> {
        // A reader that yields one byte per read, to exercise partial frames.
        struct OneByte(Vec<u8>, usize);
        impl AsyncRead for OneByte {
            fn poll_read(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                if self.1 < self.0.len() {
                    let byte = self.0[self.1];
                    buf.put_slice(&[byte]);
                    self.1 += 1;
                }
                Poll::Ready(Ok(()))
            }
        }
        AuthorityFix::new(OneByte(input.to_vec(), 0))
    }

    #[test]
    fn authority_values() {
        assert_eq!(fixed_authority(b"127.0.0.1:2379"), None);
        assert_eq!(
            fixed_authority(b"http://127.0.0.1:2379"),
            Some(b"127.0.0.1:2379".to_vec())
        );
        assert_eq!(
            fixed_authority(b"http://localhost:2379/"),
            Some(b"localhost:2379".to_vec())
        );
        assert_eq!(fixed_authority(b"not valid at all"), None);
    }

    #[test]
    fn integers() {
        let mut out = Vec::new();
        encode_integer(&mut out, 10, 7, 0);
        encode_integer(&mut out, 300, 7, 0);
        assert_eq!(out, vec![10, 0x7f, 0xad, 0x01]);
    }
}
