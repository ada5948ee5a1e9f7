//! The little of gRPC's wire format the gate reads and writes itself: one length-prefixed
//! message per unary request, and trailers-only refusals.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode};

/// gRPC status codes the gate produces.
pub mod code {
    pub const OK: i32 = 0;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// Why a request body is not one readable gRPC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("the request is not a gRPC message (shorter than its 5-byte prefix)")]
    Short,
    #[error(
        "the request's gRPC length prefix does not match its body (a unary call carries exactly one message)"
    )]
    Length,
    #[error("the request is compressed with {0:?}, which the gate does not read (gzip or none)")]
    Encoding(String),
    #[error("the request's gzip data is corrupt")]
    Corrupt,
    #[error("the request decompresses to more than the gate's limit of {0} bytes")]
    TooLarge(usize),
}

/// The message of a unary request body, and whether it is compressed.
pub fn unframe(body: &[u8]) -> Result<(bool, &[u8]), FrameError> {
    let (prefix, message) = body.split_at_checked(5).ok_or(FrameError::Short)?;
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if message.len() != len {
        return Err(FrameError::Length);
    }
    Ok((prefix[0] != 0, message))
}

/// The uncompressed message of a unary request body. The SDKs and the CLI gzip their
/// requests (`grpc-encoding: gzip`); the gate reads the message but forwards the original
/// bytes. Decompression stops at `limit` bytes, so a small bomb cannot take memory.
pub fn message<'a>(
    body: &'a [u8],
    encoding: Option<&str>,
    limit: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, FrameError> {
    use std::io::Read;
    let (compressed, message) = unframe(body)?;
    if !compressed {
        return Ok(std::borrow::Cow::Borrowed(message));
    }
    match encoding {
        Some("gzip") => {
            let mut out = Vec::with_capacity(message.len().saturating_mul(4).min(limit));
            // Every gzip member, as grpc-go's decompressor reads them: with only the first
            // one, a second member could carry fields the gate never saw but Temporal merges
            // into the message it acts on.
            let mut reader = flate2::read::MultiGzDecoder::new(message).take(limit as u64 + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|_| FrameError::Corrupt)?;
            if out.len() > limit {
                return Err(FrameError::TooLarge(limit));
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        other => Err(FrameError::Encoding(
            other.unwrap_or("none").chars().take(32).collect(),
        )),
    }
}

/// A trailers-only response carrying `code` and `message` (percent-encoded as gRPC requires).
pub fn status(code: i32, message: &str) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::OK;
    let h = res.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", HeaderValue::from(code));
    if let Ok(v) = HeaderValue::from_str(&percent_encode(message)) {
        h.insert("grpc-message", v);
    }
    res
}

/// gRPC's grpc-message encoding: printable ASCII except `%` as is, everything else `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `grpc-status` in a header map (response headers of a trailers-only answer, or trailers).
pub fn status_of(headers: &http::HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&(message.len() as u32).to_be_bytes());
        out.extend_from_slice(message);
        out
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn frames() {
        assert_eq!(
            unframe(&[0, 0, 0, 0, 2, 8, 1]).unwrap(),
            (false, &[8u8, 1][..])
        );
        assert_eq!(unframe(&[0, 0, 0, 0, 0]).unwrap(), (false, &[] as &[u8]));
        assert_eq!(unframe(&[1, 0, 0, 0, 1, 7]).unwrap(), (true, &[7u8][..]));
        assert_eq!(unframe(&[0, 0, 0]), Err(FrameError::Short));
        assert_eq!(unframe(&[0, 0, 0, 0, 3, 1]), Err(FrameError::Length));
        // Two messages in one unary request are refused, not half-read.
        assert_eq!(
            unframe(&[0, 0, 0, 0, 1, 7, 0, 0, 0, 0, 1, 7]),
            Err(FrameError::Length)
        );
    }

    #[test]
    fn gzip_messages_are_read_within_the_limit() {
        let plain = b"namespace default".repeat(10);
        let body = framed(1, &gzip(&plain));
        assert_eq!(
            message(&body, Some("gzip"), 1024).unwrap().as_ref(),
            &plain[..]
        );
        assert_eq!(
            message(&framed(0, &plain), None, 1024).unwrap().as_ref(),
            &plain[..]
        );
        assert_eq!(
            message(&body, Some("br"), 1024),
            Err(FrameError::Encoding("br".into()))
        );
        assert_eq!(
            message(&body, None, 1024),
            Err(FrameError::Encoding("none".into()))
        );
        assert_eq!(
            message(&framed(1, b"not gzip"), Some("gzip"), 1024),
            Err(FrameError::Corrupt)
        );
        // Two members: both are read (Temporal reads both).
        let mut two = gzip(b"ab");
        two.extend(gzip(b"cd"));
        assert_eq!(
            message(&framed(1, &two), Some("gzip"), 1024)
                .unwrap()
                .as_ref(),
            b"abcd"
        );
        // A bomb: 10 MiB of zeros in a few KiB stops at the limit.
        let bomb = framed(1, &gzip(&vec![0u8; 10 << 20]));
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(
            message(&bomb, Some("gzip"), 1 << 20),
            Err(FrameError::TooLarge(1 << 20))
        );
    }

    #[test]
    fn refusals_are_trailers_only_and_encoded() {
        let r = status(code::PERMISSION_DENIED, "100% not allowed: é");
        assert_eq!(status_of(r.headers()), Some(7));
        assert_eq!(r.headers()["grpc-message"], "100%25 not allowed: %C3%A9");
        assert_eq!(r.headers()["content-type"], "application/grpc");
    }
}
