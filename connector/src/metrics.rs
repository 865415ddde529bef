//! Prometheus metrics: a small registry of counters and histograms that the rest of the connector bumps
//! (`Connector::metrics`), written out in the text exposition format (version 0.0.4) at the management
//! listener's `/metrics`, together with gauges read at scrape time (processes by state, the processor's queue,
//! the database pool). A leaf module: it knows no other part of the connector, and there is one registry per
//! connector (several run in one process), no global.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the latency histograms' buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// One histogram series: counts per bucket, their sum and their count.
#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, n) in LATENCY_BUCKETS.iter().zip(self.buckets.iter_mut()) {
            if seconds <= *bound {
                *n += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// A direction of data through the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Served by this connector (pull, public download).
    Out,
    /// Received by this connector (push receiver).
    In,
}

/// The connector's counters and histograms. Every method is cheap and never fails.
#[derive(Debug, Default)]
pub struct Metrics {
    dsp_requests: Mutex<BTreeMap<(String, u16), Histogram>>,
    retries: Mutex<BTreeMap<&'static str, u64>>,
    give_ups: Mutex<BTreeMap<&'static str, u64>>,
    bytes_out: AtomicU64,
    bytes_in: AtomicU64,
    dcp_refusals: Mutex<BTreeMap<String, u64>>,
    policy_decisions: Mutex<BTreeMap<&'static str, u64>>,
    public_downloads: Mutex<BTreeMap<(String, &'static str), u64>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K, by: u64) {
    if let Ok(mut m) = map.lock() {
        *m.entry(key).or_default() += by;
    }
}

impl Metrics {
    /// A DSP-listener request to `endpoint` (its route pattern) answered `status` after `seconds`.
    pub fn dsp_request(&self, endpoint: &str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.dsp_requests.lock() {
            m.entry((endpoint.to_owned(), status))
                .or_default()
                .observe(seconds);
        }
    }

    /// A failed send of a `kind` process's message that will be retried.
    pub fn retry(&self, kind: &'static str) {
        bump(&self.retries, kind, 1);
    }

    /// A `kind` process whose message could not be delivered after every attempt.
    pub fn give_up(&self, kind: &'static str) {
        bump(&self.give_ups, kind, 1);
    }

    /// Bytes through the data plane.
    pub fn bytes(&self, direction: Direction, n: u64) {
        let counter = match direction {
            Direction::Out => &self.bytes_out,
            Direction::In => &self.bytes_in,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A DSP caller refused by the DCP verifier with `code`.
    pub fn dcp_refusal(&self, code: &str) {
        bump(&self.dcp_refusals, code.to_owned(), 1);
    }

    /// A policy decision.
    pub fn policy_decision(&self, permitted: bool) {
        bump(
            &self.policy_decisions,
            if permitted { "permit" } else { "deny" },
            1,
        );
    }

    /// A public download of `dataset`: `served`, `rate_limited` or `not_found`.
    pub fn public_download(&self, dataset: &str, outcome: &'static str) {
        bump(&self.public_downloads, (dataset.to_owned(), outcome), 1);
    }
}

/// A policy decider that counts its decisions by outcome.
#[derive(Debug)]
pub struct CountedDecider<D> {
    /// The decider that decides.
    pub inner: D,
    /// Where the outcomes are counted.
    pub metrics: std::sync::Arc<Metrics>,
}

impl<D: caap_policy::PolicyDecider> caap_policy::PolicyDecider for CountedDecider<D> {
    fn decide(
        &self,
        policy: &caap_policy::Policy,
        ctx: &caap_policy::EvaluationContext,
    ) -> caap_policy::Decision {
        let decision = self.inner.decide(policy, ctx);
        self.metrics.policy_decision(decision.permitted);
        decision
    }
}

/// A byte stream.
pub type ByteStream =
    futures_util::stream::BoxStream<'static, Result<actix_web::web::Bytes, std::io::Error>>;

/// `stream`, with every chunk's length added to the data-plane byte counter for `direction`.
pub fn counted(
    stream: ByteStream,
    metrics: std::sync::Arc<Metrics>,
    direction: Direction,
) -> ByteStream {
    use futures_util::StreamExt;
    stream
        .inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                metrics.bytes(direction, bytes.len() as u64);
            }
        })
        .boxed()
}

/// What is read at scrape time rather than counted.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `(kind, role, state, count)` of every process.
    pub processes: Vec<(&'static str, String, String, u64)>,
    /// `(kind, due steps, seconds the oldest due step has waited)`.
    pub queue: Vec<(&'static str, u64, f64)>,
    /// The database backend and its pool: connections open and idle, and the maximum.
    pub pool: Option<Pool>,
    /// The version and the database backend, for `caap_build_info`.
    pub version: &'static str,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
}

/// A database connection pool's state.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pool {
    /// Connections open.
    pub size: u32,
    /// Of them idle.
    pub idle: u32,
    /// The configured maximum.
    pub max: u32,
}

/// A label value as the exposition format wants it (`\`, `"` and newlines escaped).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counters<K>(
    out: &mut String,
    name: &str,
    help: &str,
    map: &Mutex<BTreeMap<K, u64>>,
    labels: impl Fn(&K) -> String,
) {
    header(out, name, "counter", help);
    if let Ok(m) = map.lock() {
        for (k, v) in m.iter() {
            let _ = writeln!(out, "{name}{{{}}} {v}", labels(k));
        }
    }
}

impl Metrics {
    /// The text exposition of every metric, counters and histograms from this registry and gauges from
    /// `snapshot`.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "caap_build_info",
            "gauge",
            "The running caap's version and database backend (always 1).",
        );
        let _ = writeln!(
            out,
            "caap_build_info{{version=\"{}\",database=\"{}\"}} 1",
            label(snapshot.version),
            label(snapshot.database)
        );

        let name = "caap_dsp_request_duration_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "DSP-listener requests (protocol, data plane, open data) by endpoint (route) and status.",
        );
        if let Ok(m) = self.dsp_requests.lock() {
            for ((endpoint, status), h) in m.iter() {
                let l = format!("endpoint=\"{}\",status=\"{status}\"", label(endpoint));
                for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets.iter()) {
                    let _ = writeln!(out, "{name}_bucket{{{l},le=\"{bound}\"}} {n}");
                }
                let _ = writeln!(out, "{name}_bucket{{{l},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{name}_sum{{{l}}} {}", h.sum);
                let _ = writeln!(out, "{name}_count{{{l}}} {}", h.count);
            }
        }

        header(
            &mut out,
            "caap_processes",
            "gauge",
            "Contract negotiations and transfer processes by kind, role and state.",
        );
        for (kind, role, state, n) in &snapshot.processes {
            let _ = writeln!(
                out,
                "caap_processes{{kind=\"{kind}\",role=\"{}\",state=\"{}\"}} {n}",
                label(role),
                label(state)
            );
        }
        header(
            &mut out,
            "caap_processor_queue_depth",
            "gauge",
            "Process steps due to be sent now, by kind.",
        );
        for (kind, depth, _) in &snapshot.queue {
            let _ = writeln!(out, "caap_processor_queue_depth{{kind=\"{kind}\"}} {depth}");
        }
        header(
            &mut out,
            "caap_processor_lag_seconds",
            "gauge",
            "How long the oldest due process step has waited, by kind (0 when none is due).",
        );
        for (kind, _, lag) in &snapshot.queue {
            let _ = writeln!(out, "caap_processor_lag_seconds{{kind=\"{kind}\"}} {lag}");
        }
        counters(
            &mut out,
            "caap_processor_retries_total",
            "Failed sends of a process message that were scheduled again, by kind.",
            &self.retries,
            |k| format!("kind=\"{k}\""),
        );
        counters(
            &mut out,
            "caap_processor_give_ups_total",
            "Process messages given up after every attempt, by kind.",
            &self.give_ups,
            |k| format!("kind=\"{k}\""),
        );

        header(
            &mut out,
            "caap_dataplane_bytes_total",
            "counter",
            "Bytes through the data plane: out (pulls and public downloads served), in (pushes received).",
        );
        let _ = writeln!(
            out,
            "caap_dataplane_bytes_total{{direction=\"out\"}} {}",
            self.bytes_out.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "caap_dataplane_bytes_total{{direction=\"in\"}} {}",
            self.bytes_in.load(Ordering::Relaxed)
        );
        counters(
            &mut out,
            "caap_dcp_refusals_total",
            "DSP callers refused by the DCP verifier, by refusal code.",
            &self.dcp_refusals,
            |k| format!("code=\"{}\"", label(k)),
        );
        counters(
            &mut out,
            "caap_policy_decisions_total",
            "ODRL policy decisions (catalog visibility, negotiations, data accesses) by outcome.",
            &self.policy_decisions,
            |k| format!("outcome=\"{k}\""),
        );
        counters(
            &mut out,
            "caap_public_downloads_total",
            "Public (open-data) download requests by dataset and outcome.",
            &self.public_downloads,
            |(d, o)| format!("dataset=\"{}\",outcome=\"{o}\"", label(d)),
        );

        if let Some(pool) = snapshot.pool {
            for (name, help, v) in [
                (
                    "caap_db_pool_connections",
                    "Database connections open.",
                    pool.size,
                ),
                (
                    "caap_db_pool_idle_connections",
                    "Database connections open and idle.",
                    pool.idle,
                ),
                (
                    "caap_db_pool_max_connections",
                    "The database pool's maximum (database.max_connections).",
                    pool.max,
                ),
            ] {
                header(&mut out, name, "gauge", help);
                let _ = writeln!(out, "{name} {v}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        m.dsp_request("/dsp/{pid}", 200, 0.003);
        m.dsp_request("/dsp/{pid}", 200, 0.3);
        m.public_download("a\"b", "served");
        let text = m.render(&Snapshot::default());
        assert!(text.contains(
            "caap_dsp_request_duration_seconds_bucket{endpoint=\"/dsp/{pid}\",status=\"200\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "caap_dsp_request_duration_seconds_bucket{endpoint=\"/dsp/{pid}\",status=\"200\",le=\"+Inf\"} 2"
        ));
        assert!(
            text.contains("caap_public_downloads_total{dataset=\"a\\\"b\",outcome=\"served\"} 1")
        );
    }
}
