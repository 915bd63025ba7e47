//! The canonical form of a request path: the one path that routing, identity, limits, the bot
//! filter and the upstream all see. Without it the edge decides on the raw target while the
//! service behind it decodes (`%70remium` → `premium`) or normalises (`/x/../`, `//`) and
//! serves a route the edge never checked.
//!
//! Rules (RFC 3986 §6.2.2 and §5.2.4, plus refusals where upstreams disagree):
//! - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded; every other
//!   escape is kept, its hex digits upper-cased;
//! - dot segments are removed after that decoding (so `%2e%2e` is `..`), and repeated slashes
//!   are merged;
//! - refused: an encoded `/` or `\` (services disagree on whether it separates segments), a
//!   raw `\`, `%00` and every other control character raw or encoded, invalid escapes, encoded
//!   bytes that are not UTF-8 (overlong forms such as `%c0%ae` included), double encoding
//!   (`%25` followed by two hex digits), `..` above the root, and a target that is not a path.
//!
//! A path that needs no change is returned borrowed: the common case allocates nothing.

use std::borrow::Cow;

/// Why a path was refused; the message goes into the 400's JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request target is not an absolute path")]
    NotAPath,
    #[error("invalid percent-encoding in the path")]
    BadEscape,
    #[error("an encoded '/' or '\\' in the path")]
    EncodedSeparator,
    #[error("a backslash in the path")]
    Backslash,
    #[error("a control character in the path")]
    ControlCharacter,
    #[error("encoded bytes in the path that are not UTF-8")]
    NotUtf8,
    #[error("double percent-encoding in the path")]
    DoubleEncoding,
    #[error("the path climbs above the root")]
    AboveRoot,
}

/// A canonical path, and whether a segment carries `;` parameters (which some servers strip
/// before routing: a route must opt in to receive them).
#[derive(Debug, PartialEq, Eq)]
pub struct Canonical<'a> {
    pub path: Cow<'a, str>,
    pub has_params: bool,
}

pub fn canonicalize(raw: &str) -> Result<Canonical<'_>, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAPath);
    }
    let has_params = bytes.contains(&b';');
    if is_canonical(bytes)? {
        return Ok(Canonical {
            path: Cow::Borrowed(raw),
            has_params,
        });
    }
    let decoded = decode_unreserved(bytes)?;
    // "%25%37%30" decodes to "%2570": double encoding spelled with escaped digits. The
    // output must be a fixed point, and an upstream that decodes twice must not see "%70".
    if has_double_encoding(&decoded) {
        return Err(PathError::DoubleEncoding);
    }
    let path = remove_dot_segments(&decoded)?;
    Ok(Canonical {
        path: Cow::Owned(path),
        has_params,
    })
}

/// One pass over the raw bytes: true when nothing needs changing. Refusals that need no
/// decoding (raw backslash, raw control characters) are found here too.
fn is_canonical(bytes: &[u8]) -> Result<bool, PathError> {
    let mut clean = true;
    let mut prev = 0u8;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\\' => return Err(PathError::Backslash),
            0..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
            b'%' => clean = false,
            b'/' if prev == b'/' => clean = false,
            // a "." or ".." segment: the byte after a slash, up to the next slash or the end
            b'.' if prev == b'/' => {
                let rest = &bytes[i..];
                let seg = rest.split(|&c| c == b'/').next().unwrap_or(rest);
                if seg == b"." || seg == b".." {
                    clean = false;
                }
            }
            _ => {}
        }
        prev = b;
    }
    Ok(clean)
}

/// `%25` followed by two hex digits anywhere in `bytes`.
fn has_double_encoding(bytes: &[u8]) -> bool {
    bytes.windows(5).any(|w| {
        w[..3].eq_ignore_ascii_case(b"%25")
            && hex_value(w[3]).is_some()
            && hex_value(w[4]).is_some()
    })
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn escape_at(bytes: &[u8], i: usize) -> Result<u8, PathError> {
    match (bytes.get(i + 1), bytes.get(i + 2)) {
        (Some(&h), Some(&l)) => match (hex_value(h), hex_value(l)) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => Err(PathError::BadEscape),
        },
        _ => Err(PathError::BadEscape),
    }
}

/// Decodes escapes of unreserved characters, keeps (upper-cased) the others, refuses what the
/// module doc lists.
fn decode_unreserved(bytes: &[u8]) -> Result<Vec<u8>, PathError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let v = escape_at(bytes, i)?;
        match v {
            b'/' | b'\\' => return Err(PathError::EncodedSeparator),
            0..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
            b'%' if escape_at(bytes, i + 2).is_ok() => return Err(PathError::DoubleEncoding),
            v if is_unreserved(v) => {
                out.push(v);
                i += 3;
            }
            v if v >= 0x80 => {
                // a run of encoded non-ASCII bytes must be UTF-8 (overlong forms are not)
                let mut run = Vec::new();
                let mut j = i;
                while j < bytes.len() && bytes[j] == b'%' {
                    let b = escape_at(bytes, j)?;
                    if b < 0x80 {
                        break;
                    }
                    run.push(b);
                    j += 3;
                }
                if std::str::from_utf8(&run).is_err() {
                    return Err(PathError::NotUtf8);
                }
                for b in run {
                    out.extend_from_slice(&[
                        b'%',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ]);
                }
                i = j;
            }
            v => {
                out.extend_from_slice(&[b'%', HEX[usize::from(v >> 4)], HEX[usize::from(v & 15)]]);
                i += 3;
            }
        }
    }
    Ok(out)
}

/// RFC 3986 §5.2.4 on an absolute path, merging empty segments; `..` above the root is an
/// error rather than silently dropped, since it is never sent by an honest client.
fn remove_dot_segments(path: &[u8]) -> Result<String, PathError> {
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    for seg in path[1..].split(|&b| b == b'/') {
        trailing_slash = false;
        match seg {
            b"" => trailing_slash = true,
            b"." => trailing_slash = true,
            b".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                trailing_slash = true;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for seg in &segments {
        out.push('/');
        // only ASCII and kept escapes were written, or raw UTF-8 from a &str
        out.push_str(std::str::from_utf8(seg).map_err(|_| PathError::NotUtf8)?);
    }
    if segments.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

/// Puts the request's target in canonical form, in place, so that the upstream receives the
/// path the edge decided on. Returns whether `;` parameters are present. Untouched (and no
/// allocation) when the target already is canonical origin-form. Not inlined, so profiles and
/// `bench/canonical-path.sh` can name its cost.
#[inline(never)]
pub fn apply(
    req: &mut pingora::http::RequestHeader,
) -> Result<bool, crate::proxy::error::EdgeError> {
    // bytes that are not UTF-8 reach the URI only as a lossy copy while the raw bytes would
    // be forwarded: the decision would not be about what the upstream gets
    if !req.raw_path_is_utf8() {
        return Err(PathError::NotUtf8.into());
    }
    let canonical = canonicalize(req.uri.path())?;
    let has_params = canonical.has_params;
    let rewrite = match canonical.path {
        Cow::Owned(path) => Some(path),
        // absolute-form targets are forwarded verbatim unless the URI is set again
        Cow::Borrowed(path)
            if req.raw_path()
                != req
                    .uri
                    .path_and_query()
                    .map_or(&b""[..], |p| p.as_str().as_bytes()) =>
        {
            Some(path.to_string())
        }
        Cow::Borrowed(_) => None,
    };
    if let Some(path) = rewrite {
        let target = match req.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let uri: http::Uri = target
            .parse()
            .map_err(|_| crate::proxy::error::EdgeError::BadRequest("invalid request target"))?;
        req.set_uri(uri);
    }
    Ok(has_params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(raw: &str) -> Result<String, PathError> {
        canonicalize(raw).map(|c| c.path.into_owned())
    }

    #[test]
    fn clean_paths_are_borrowed() {
        for p in [
            "/",
            "/api/v1/movies",
            "/a/b/",
            "/a.b/c..d/.e",
            "/ünï",
            "/a;b",
        ] {
            let c = canonicalize(p).unwrap();
            assert!(matches!(c.path, Cow::Borrowed(_)), "{p}");
            assert_eq!(c.path, p);
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded_and_others_kept() {
        assert_eq!(
            canon("/api/v1/movies/%70remium").unwrap(),
            "/api/v1/movies/premium"
        );
        assert_eq!(
            canon("/api/v1/%6dovies/premium").unwrap(),
            "/api/v1/movies/premium"
        );
        assert_eq!(canon("/%41%7e%2D").unwrap(), "/A~-");
        assert_eq!(canon("/a%20b%3f%3b").unwrap(), "/a%20b%3F%3B");
        assert_eq!(canon("/%D0%BF%d1%80").unwrap(), "/%D0%BF%D1%80");
    }

    #[test]
    fn dot_segments_and_slashes() {
        assert_eq!(canon("/api//v1///movies").unwrap(), "/api/v1/movies");
        assert_eq!(canon("//api").unwrap(), "/api");
        assert_eq!(canon("/api/./v1").unwrap(), "/api/v1");
        assert_eq!(canon("/api/x/../v1").unwrap(), "/api/v1");
        assert_eq!(canon("/api/v1/.").unwrap(), "/api/v1/");
        assert_eq!(canon("/api/v1/x/..").unwrap(), "/api/v1/");
        assert_eq!(canon("/api/%2e/v1").unwrap(), "/api/v1");
        assert_eq!(canon("/api/x/%2E%2e/v1").unwrap(), "/api/v1");
        assert_eq!(canon("/api/v1/").unwrap(), "/api/v1/");
        assert_eq!(canon("/.").unwrap(), "/");
        assert_eq!(canon("/x/..").unwrap(), "/");
    }

    #[test]
    fn refusals() {
        let cases = [
            ("/api/v1/movies%2Fpremium", PathError::EncodedSeparator),
            ("/api/v1/movies%2fpremium", PathError::EncodedSeparator),
            ("/api%5Cv1", PathError::EncodedSeparator),
            ("/api\\v1", PathError::Backslash),
            ("/a%00b", PathError::ControlCharacter),
            ("/a%0d%0ab", PathError::ControlCharacter),
            ("/a%7F", PathError::ControlCharacter),
            ("/a\tb", PathError::ControlCharacter),
            ("/a%zz", PathError::BadEscape),
            ("/a%4", PathError::BadEscape),
            ("/a%", PathError::BadEscape),
            ("/%c0%ae%c0%ae/x", PathError::NotUtf8),
            ("/%e0%80%ae", PathError::NotUtf8),
            ("/%ff", PathError::NotUtf8),
            ("/%252e%252e/x", PathError::DoubleEncoding),
            ("/a%252Fb", PathError::DoubleEncoding),
            ("/api/v1/movies/%25%37%30remium", PathError::DoubleEncoding),
            ("/x/%25%32%66..", PathError::DoubleEncoding),
            ("/x/%252%65", PathError::DoubleEncoding),
            ("/..", PathError::AboveRoot),
            ("/a/../../b", PathError::AboveRoot),
            ("/%2e%2e/etc", PathError::AboveRoot),
            ("*", PathError::NotAPath),
            ("", PathError::NotAPath),
            ("api", PathError::NotAPath),
        ];
        for (raw, want) in cases {
            assert_eq!(canon(raw), Err(want), "{raw}");
        }
    }

    #[test]
    fn a_lone_percent_sign_encoded_is_kept() {
        assert_eq!(canon("/100%25").unwrap(), "/100%25");
        assert_eq!(canon("/100%25off").unwrap(), "/100%25off");
    }

    #[test]
    fn params_are_reported() {
        assert!(canonicalize("/api;jsessionid=1/x").unwrap().has_params);
        assert!(canonicalize("/api/x;a").unwrap().has_params);
        assert!(!canonicalize("/api/x%3Ba").unwrap().has_params);
    }

    #[test]
    fn requests_are_rewritten_in_place() {
        let mut req =
            pingora::http::RequestHeader::build("GET", b"/api/%70remium/./x?a=%2F", None).unwrap();
        assert!(!apply(&mut req).unwrap());
        assert_eq!(
            req.uri.to_string(),
            "/api/premium/x?a=%2F",
            "the query is untouched"
        );
        assert_eq!(req.raw_path(), b"/api/premium/x?a=%2F");
        let mut req = pingora::http::RequestHeader::build("GET", b"/a;b/c", None).unwrap();
        assert!(apply(&mut req).unwrap());
        let mut req = pingora::http::RequestHeader::build("GET", b"/a%2fb", None).unwrap();
        assert!(apply(&mut req).is_err());
    }

    #[test]
    fn absolute_form_targets_go_upstream_in_origin_form() {
        // (Pingora refuses one whose authority differs from Host before any hook runs)
        let mut req =
            pingora::http::RequestHeader::build("GET", b"http://cinema.example/api/./x?q=1", None)
                .unwrap();
        assert!(!apply(&mut req).unwrap());
        assert_eq!(req.raw_path(), b"/api/x?q=1");
        let mut clean =
            pingora::http::RequestHeader::build("GET", b"http://cinema.example/api/x", None)
                .unwrap();
        assert!(!apply(&mut clean).unwrap());
        assert_eq!(
            clean.raw_path(),
            b"/api/x",
            "clean path, absolute form: rewritten"
        );
    }

    #[test]
    fn canonical_output_is_a_fixed_point() {
        for raw in [
            "/a//b/./c/../%64",
            "/%7e/x/",
            "/x/%41%2e%2e/y",
            "/a%20b",
            "/100%25off",
            "/a%25%7A",
        ] {
            let once = canon(raw).unwrap();
            assert_eq!(canon(&once).unwrap(), once, "{raw}");
        }
    }
}
