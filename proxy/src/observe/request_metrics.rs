//! Request metrics per route: requests by status code, a latency histogram, upstream errors.
//! Lock-free on the request path: each route holds its counters (looked up once, when the
//! route table is built, and kept across reloads by name), and a request adds to atomics.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Histogram upper bounds, in seconds (Prometheus `le`).
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Kinds of upstream failure, as labels.
#[derive(Clone, Copy)]
pub enum UpstreamError {
    Unreachable,
    Timeout,
    Protocol,
    NoHealthy,
}

const UPSTREAM_ERRORS: [&str; 4] = ["unreachable", "timeout", "protocol", "no_healthy"];

pub struct RouteStats {
    /// Index: status code − 100 (100..=599).
    by_status: Box<[AtomicU64]>,
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
    upstream_errors: [AtomicU64; 4],
}

impl RouteStats {
    fn new() -> RouteStats {
        RouteStats {
            by_status: (100..600).map(|_| AtomicU64::new(0)).collect(),
            buckets: Default::default(),
            sum_us: AtomicU64::new(0),
            upstream_errors: Default::default(),
        }
    }

    pub fn observe(&self, status: u16, elapsed: Duration) {
        if let Some(c) = status
            .checked_sub(100)
            .and_then(|i| self.by_status.get(usize::from(i)))
        {
            c.fetch_add(1, Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    pub fn upstream_error(&self, kind: UpstreamError) {
        self.upstream_errors[kind as usize].fetch_add(1, Relaxed);
    }
}

/// Every route's counters by name, kept across reloads (a route keeps its counters while its
/// name stays); "" holds requests that matched no route. One per process, in `Shared`.
pub struct RouteMetrics {
    routes: RwLock<BTreeMap<String, Arc<RouteStats>>>,
    unrouted: Arc<RouteStats>,
}

impl Default for RouteMetrics {
    fn default() -> Self {
        let unrouted = Arc::new(RouteStats::new());
        RouteMetrics {
            routes: RwLock::new(BTreeMap::from([(String::new(), unrouted.clone())])),
            unrouted,
        }
    }
}

impl RouteMetrics {
    /// The counters of route `name`, created on first use; the same ones after a reload.
    /// Called when a generation is built, never per request.
    pub fn stats_for(&self, name: &str) -> Arc<RouteStats> {
        if let Some(s) = self.routes.read().ok().and_then(|m| m.get(name).cloned()) {
            return s;
        }
        match self.routes.write() {
            Ok(mut m) => m
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(RouteStats::new()))
                .clone(),
            // a poisoned lock only loses metrics, never a request
            Err(_) => Arc::new(RouteStats::new()),
        }
    }

    pub fn unrouted(&self) -> &RouteStats {
        &self.unrouted
    }
}

/// A label value in the Prometheus text format: `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

impl RouteMetrics {
    /// Appends the request metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let Ok(routes) = self.routes.read() else {
            return;
        };
        out.push_str("# HELP edge_requests_total Requests answered, by route and status code.\n# TYPE edge_requests_total counter\n");
        for (route, s) in routes.iter() {
            // route names are checked at load; escaped all the same, as the format requires
            let route = escape_label(route);
            for (i, c) in s.by_status.iter().enumerate() {
                let n = c.load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "edge_requests_total{{route=\"{route}\",code=\"{}\"}} {n}",
                        i + 100
                    );
                }
            }
        }
        out.push_str("# HELP edge_request_duration_seconds Time from the first request byte to the logging phase.\n# TYPE edge_request_duration_seconds histogram\n");
        for (route, s) in routes.iter() {
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += s.buckets[i].load(Relaxed);
                let _ = writeln!(out, "edge_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}");
            }
            cumulative += s.buckets[BUCKETS.len()].load(Relaxed);
            let _ = writeln!(
            out,
            "edge_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {cumulative}"
        );
            let sum = s.sum_us.load(Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "edge_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "edge_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}"
            );
        }
        out.push_str("# HELP edge_upstream_errors_total Failed upstream exchanges, by route and kind.\n# TYPE edge_upstream_errors_total counter\n");
        for (route, s) in routes.iter() {
            for (kind, c) in UPSTREAM_ERRORS.iter().zip(&s.upstream_errors) {
                let n = c.load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "edge_upstream_errors_total{{route=\"{route}\",kind=\"{kind}\"}} {n}"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_status_and_bucket() {
        let metrics = RouteMetrics::default();
        let s = metrics.stats_for("test-route");
        s.observe(200, Duration::from_micros(700));
        s.observe(200, Duration::from_millis(30));
        s.observe(503, Duration::from_secs(20));
        s.observe(42, Duration::ZERO); // out of range: counted in the histogram only
        s.upstream_error(UpstreamError::Timeout);
        assert!(
            Arc::ptr_eq(&s, &metrics.stats_for("test-route")),
            "one set per name"
        );
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains("edge_requests_total{route=\"test-route\",code=\"200\"} 2"));
        assert!(out.contains("edge_requests_total{route=\"test-route\",code=\"503\"} 1"));
        assert!(out
            .contains("edge_request_duration_seconds_bucket{route=\"test-route\",le=\"0.001\"} 2"));
        assert!(out
            .contains("edge_request_duration_seconds_bucket{route=\"test-route\",le=\"0.05\"} 3"));
        assert!(out
            .contains("edge_request_duration_seconds_bucket{route=\"test-route\",le=\"+Inf\"} 4"));
        assert!(out.contains("edge_request_duration_seconds_count{route=\"test-route\"} 4"));
        assert!(out.contains("edge_upstream_errors_total{route=\"test-route\",kind=\"timeout\"} 1"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("movies-api"), "movies-api");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
