//! `[redis]`.

use crate::config::error::Problems;
use crate::config::file::*;
use crate::config::runtime::*;
use crate::config::values::*;

pub(in crate::config) fn redis_spec(
    file: &str,
    r: RedisFile,
    p: &mut Problems,
) -> Option<RedisSpec> {
    if r.url.starts_with("rediss://") {
        // the redis client is built without TLS: accepting the URL would leave every limit
        // on local buckets without a word
        p.add(
            file,
            "redis.url",
            "rediss:// (TLS) is not supported yet: use redis:// on a private network or a local TLS tunnel",
        );
        return None;
    }
    if !(r.url.starts_with("redis://") || r.url.starts_with("unix://")) {
        p.add(
            file,
            "redis.url",
            format!("\"{}\" is not a redis:// URL", r.url),
        );
        return None;
    }
    let timeout = duration(
        file,
        "redis.timeout",
        r.timeout.as_deref(),
        "10ms",
        false,
        p,
    );
    Some(RedisSpec {
        url: r.url,
        timeout,
    })
}
