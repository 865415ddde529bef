//! What `/metrics` shows: the connector's [`crate::metrics::Metrics`] and the gauges read from the store at
//! scrape time.

use crate::error::ServiceError;
use crate::metrics::{Pool, Snapshot};
use crate::service::Connector;
use crate::store::stats::PROCESS_TABLES;

impl Connector {
    /// The Prometheus text exposition of this connector's metrics now.
    pub async fn metrics_text(&self) -> Result<String, ServiceError> {
        let now = self.clock.now();
        let mut snapshot = Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            database: self.store.backend(),
            ..Snapshot::default()
        };
        for (kind, table) in PROCESS_TABLES {
            for (role, state, n) in self.store.process_counts(table).await? {
                snapshot.processes.push((kind, role, state, n));
            }
            let q = self.store.queue(table, now).await?;
            let lag = q.oldest_due_ms.map_or(0.0, |due| {
                (now.timestamp_millis() - due).max(0) as f64 / 1000.0
            });
            snapshot.queue.push((kind, q.due, lag));
        }
        let pool = self.store.pool_stats();
        snapshot.pool = Some(Pool {
            size: pool.size,
            idle: pool.idle,
            max: pool.max,
        });
        Ok(self.metrics.render(&snapshot))
    }
}
