//! SPDY/3.1 frames, as kubectl's port-forward speaks them (tunnelled in a
//! WebSocket, `SPDY/3.1+portforward.k8s.io`): the framing of the SPDY/3
//! draft (§2.2: control frames with a version and type, data frames with a
//! stream id, both with a flags byte and a 24-bit length) and its header
//! blocks (§2.6.10: pairs of 32-bit-length-prefixed names and values,
//! zlib-compressed with the spec's dictionary, one compression context per
//! direction for the whole connection).
//!
//! [`Codec`] keeps those two contexts: [`Codec::decode`] takes frames off
//! the front of a buffer as they complete, [`Codec::encode`] turns a frame
//! into bytes.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The zlib dictionary of SPDY/3 header blocks (the draft's §2.6.10.1).
const DICTIONARY: &[u8] = include_bytes!("spdy_dictionary.bin");

pub const FLAG_FIN: u8 = 0x01;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status: the stream was refused.
pub const REFUSED_STREAM: u32 = 3;

pub type Headers = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    SynStream {
        id: u32,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        id: u32,
        status: u32,
    },
    Settings,
    Ping {
        id: u32,
    },
    GoAway {
        last: u32,
        status: u32,
    },
    Headers {
        id: u32,
        headers: Headers,
    },
    WindowUpdate {
        id: u32,
        delta: u32,
    },
    Data {
        id: u32,
        flags: u8,
        data: Vec<u8>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpdyError {
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("frame too short for its type")]
    Short,
    #[error("header block: {0}")]
    Headers(String),
}

/// The two zlib contexts of a connection.
pub struct Codec {
    inflate: Decompress,
    deflate: Compress,
}

impl Default for Codec {
    fn default() -> Self {
        Codec::new()
    }
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, SpdyError> {
    let s = b.get(at..at + 4).ok_or(SpdyError::Short)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl Codec {
    pub fn new() -> Codec {
        let mut deflate = Compress::new(Compression::default(), true);
        // A fresh zlib stream takes its dictionary before any data.
        let _ = deflate.set_dictionary(DICTIONARY);
        Codec {
            inflate: Decompress::new(true),
            deflate,
        }
    }

    /// Takes the first whole frame off `buf`, if there is one.
    pub fn decode(&mut self, buf: &mut Vec<u8>) -> Result<Option<Frame>, SpdyError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            return Ok(None);
        }
        let frame: Vec<u8> = buf.drain(..8 + len).collect();
        let flags = frame[4];
        let body = &frame[8..];
        if frame[0] & 0x80 == 0 {
            let id = u32_at(&frame, 0)? & 0x7fff_ffff;
            return Ok(Some(Frame::Data {
                id,
                flags,
                data: body.to_vec(),
            }));
        }
        let version = u16::from_be_bytes([frame[0] & 0x7f, frame[1]]);
        if version != 3 {
            return Err(SpdyError::Version(version));
        }
        let kind = u16::from_be_bytes([frame[2], frame[3]]);
        let id = || u32_at(body, 0).map(|i| i & 0x7fff_ffff);
        Ok(Some(match kind {
            SYN_STREAM => Frame::SynStream {
                id: id()?,
                flags,
                headers: self.headers(body.get(10..).ok_or(SpdyError::Short)?)?,
            },
            SYN_REPLY => Frame::SynReply {
                id: id()?,
                flags,
                headers: self.headers(body.get(4..).ok_or(SpdyError::Short)?)?,
            },
            HEADERS => Frame::Headers {
                id: id()?,
                headers: self.headers(body.get(4..).ok_or(SpdyError::Short)?)?,
            },
            RST_STREAM => Frame::RstStream {
                id: id()?,
                status: u32_at(body, 4)?,
            },
            PING => Frame::Ping {
                id: u32_at(body, 0)?,
            },
            GOAWAY => Frame::GoAway {
                last: id()?,
                status: u32_at(body, 4).unwrap_or(0),
            },
            WINDOW_UPDATE => Frame::WindowUpdate {
                id: id()?,
                delta: u32_at(body, 4)? & 0x7fff_ffff,
            },
            // SETTINGS and the frame types this server has no use for.
            _ => Frame::Settings,
        }))
    }

    /// Inflates one header block (in the connection's context) and reads
    /// its pairs.
    fn headers(&mut self, compressed: &[u8]) -> Result<Headers, SpdyError> {
        let bad = |e: String| SpdyError::Headers(e);
        let mut out = Vec::with_capacity(compressed.len() * 4 + 64);
        let mut input = compressed;
        loop {
            let before_in = self.inflate.total_in();
            let before_out = self.inflate.total_out();
            if out.capacity() == out.len() {
                out.reserve(1024);
            }
            match self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| bad(e.to_string()))?;
                }
                Err(e) => return Err(bad(e.to_string())),
            }
            let used = (self.inflate.total_in() - before_in) as usize;
            input = &input[used..];
            let produced = self.inflate.total_out() - before_out;
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if used == 0 && produced == 0 && input.is_empty() {
                break;
            }
        }
        let mut pairs = Vec::new();
        let count = u32_at(&out, 0)? as usize;
        let mut at = 4;
        for _ in 0..count {
            let mut take = || -> Result<String, SpdyError> {
                let n = u32_at(&out, at)? as usize;
                let s = out.get(at + 4..at + 4 + n).ok_or(SpdyError::Short)?;
                at += 4 + n;
                Ok(String::from_utf8_lossy(s).into_owned())
            };
            let name = take()?;
            let value = take()?;
            pairs.push((name, value));
        }
        Ok(pairs)
    }

    /// Deflates a header block in the connection's context (sync flush, so
    /// the peer can read it whole now).
    fn header_block(&mut self, headers: &Headers) -> Vec<u8> {
        let mut plain = (headers.len() as u32).to_be_bytes().to_vec();
        for (k, v) in headers {
            for s in [k, v] {
                plain.extend_from_slice(&(s.len() as u32).to_be_bytes());
                plain.extend_from_slice(s.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut input = plain.as_slice();
        loop {
            out.reserve(256);
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .unwrap_or(Status::StreamEnd);
            input = &input[(self.deflate.total_in() - before) as usize..];
            // Done once all is in and the flush fitted in the room we gave.
            if input.is_empty() && out.len() < out.capacity() || status == Status::StreamEnd {
                break;
            }
        }
        out
    }

    /// The bytes of `frame`.
    pub fn encode(&mut self, frame: &Frame) -> Vec<u8> {
        let control = |kind: u16, flags: u8, body: Vec<u8>| {
            let mut out = vec![0x80, 3];
            out.extend_from_slice(&kind.to_be_bytes());
            out.push(flags);
            out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
            out.extend(body);
            out
        };
        match frame {
            Frame::SynStream { id, flags, headers } => {
                let mut body = id.to_be_bytes().to_vec();
                body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
                body.extend(self.header_block(headers));
                control(SYN_STREAM, *flags, body)
            }
            Frame::SynReply { id, flags, headers } => {
                let mut body = id.to_be_bytes().to_vec();
                body.extend(self.header_block(headers));
                control(SYN_REPLY, *flags, body)
            }
            Frame::Headers { id, headers } => {
                let mut body = id.to_be_bytes().to_vec();
                body.extend(self.header_block(headers));
                control(HEADERS, 0, body)
            }
            Frame::RstStream { id, status } => {
                let mut body = id.to_be_bytes().to_vec();
                body.extend_from_slice(&status.to_be_bytes());
                control(RST_STREAM, 0, body)
            }
            Frame::Settings => control(SETTINGS, 0, 0u32.to_be_bytes().to_vec()),
            Frame::Ping { id } => control(PING, 0, id.to_be_bytes().to_vec()),
            Frame::GoAway { last, status } => {
                let mut body = last.to_be_bytes().to_vec();
                body.extend_from_slice(&status.to_be_bytes());
                control(GOAWAY, 0, body)
            }
            Frame::WindowUpdate { id, delta } => {
                let mut body = id.to_be_bytes().to_vec();
                body.extend_from_slice(&delta.to_be_bytes());
                control(WINDOW_UPDATE, 0, body)
            }
            Frame::Data { id, flags, data } => {
                let mut out = (id & 0x7fff_ffff).to_be_bytes().to_vec();
                out.push(*flags);
                out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
                out.extend_from_slice(data);
                out
            }
        }
    }
}

/// The value of header `name` (SPDY names are lower-case).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn frames_round_trip_through_two_codecs_sharing_their_contexts() {
        // One side writes, the other reads, across several header blocks:
        // the second block depends on the first's compression context.
        let (mut client, mut server) = (Codec::new(), Codec::new());
        let frames = [
            Frame::SynStream {
                id: 1,
                flags: FLAG_FIN,
                headers: h(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynStream {
                id: 3,
                flags: 0,
                headers: h(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::Data {
                id: 3,
                flags: 0,
                data: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            },
            Frame::Ping { id: 7 },
            Frame::Data {
                id: 3,
                flags: FLAG_FIN,
                data: vec![],
            },
            Frame::RstStream {
                id: 1,
                status: REFUSED_STREAM,
            },
        ];
        let mut wire: Vec<u8> = Vec::new();
        for f in &frames {
            wire.extend(client.encode(f));
        }
        // Byte by byte: nothing is decoded before it is whole.
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for b in wire {
            buf.push(b);
            while let Some(f) = server.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
        // And back, with a reply's (empty) header block.
        let reply = Frame::SynReply {
            id: 3,
            flags: 0,
            headers: vec![],
        };
        let mut bytes = server.encode(&reply);
        assert_eq!(client.decode(&mut bytes).unwrap(), Some(reply));
        assert_eq!(
            header(&h(&[("streamtype", "data")]), "StreamType"),
            Some("data")
        );
    }

    #[test]
    fn other_versions_are_refused() {
        let mut c = Codec::new();
        let mut spdy2 = vec![0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1];
        assert_eq!(c.decode(&mut spdy2), Err(SpdyError::Version(2)));
    }
}
