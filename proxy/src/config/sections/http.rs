//! `[http]`: the body and header-block limits of every request.

use crate::config::error::Problems;
use crate::config::file::*;
use crate::config::runtime::*;
use crate::config::values::*;

/// Pingora refuses a header block over 1 MiB itself (with its own 400).
const HEADER_BLOCK_RANGE: std::ops::RangeInclusive<u64> = 1024..=(1 << 20);

pub(in crate::config) fn http_settings(
    http: Option<(String, HttpFile)>,
    p: &mut Problems,
) -> HttpSettings {
    let (file, h) = http.unwrap_or_default();
    let max_body = size_setting(
        &file,
        "http.max_body",
        h.max_body.as_deref(),
        Some(DEFAULT_MAX_BODY),
        p,
    );
    let block = size_setting(
        &file,
        "http.max_header_block",
        h.max_header_block.as_deref(),
        Some(DEFAULT_MAX_HEADER_BLOCK as u64),
        p,
    );
    let max_header_block = match block {
        Some(n) if HEADER_BLOCK_RANGE.contains(&n) => n as usize,
        _ => {
            p.add(
                &file,
                "http.max_header_block",
                "must be between 1KiB and 1MiB (\"off\" is not accepted)",
            );
            DEFAULT_MAX_HEADER_BLOCK
        }
    };
    HttpSettings {
        max_body,
        max_header_block,
    }
}
