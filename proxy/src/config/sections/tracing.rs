//! `[tracing]`: OpenTelemetry export.

use crate::config::error::Problems;
use crate::config::runtime::*;
use crate::config::values::*;

pub(in crate::config) fn tracing_spec(
    file: &str,
    t: crate::config::file::TracingFile,
    p: &mut Problems,
) -> Option<TracingSpec> {
    let before = p.0.len();
    let protocol: OtlpProtocol = choice(file, "tracing.protocol", t.protocol.as_deref(), p);
    http_url(file, "tracing.endpoint", &t.endpoint, p);
    let sampling = t.sampling.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sampling) {
        p.add(file, "tracing.sampling", "must be between 0.0 and 1.0");
    }
    let max_queue = t.max_queue.unwrap_or(2048);
    let max_batch = t.max_batch.unwrap_or(512);
    if max_batch == 0 || max_batch > max_queue {
        p.add(
            file,
            "tracing.max_batch",
            format!("must be between 1 and max_queue ({max_queue})"),
        );
    }
    let spec = TracingSpec {
        endpoint: t.endpoint,
        protocol,
        service_name: t.service_name.unwrap_or_else(|| "edge".into()),
        sampling,
        trust_incoming: cidrs(file, "tracing.trust_incoming", &t.trust_incoming, p),
        max_queue,
        max_batch,
        batch_delay: duration(
            file,
            "tracing.batch_delay",
            t.batch_delay.as_deref(),
            "1s",
            false,
            p,
        ),
        export_timeout: duration(
            file,
            "tracing.export_timeout",
            t.export_timeout.as_deref(),
            "5s",
            false,
            p,
        ),
    };
    (p.0.len() == before).then_some(spec)
}
