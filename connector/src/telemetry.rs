//! The connector's own status: whether it is ready, who it is, which DSP version it speaks, and what
//! `/metrics` shows (its [`crate::metrics::Metrics`] and the gauges read from the store at scrape time).

use std::sync::Arc;

use crate::clock::Clock;
use crate::error::ServiceError;
use crate::metrics::{Metrics, Pool, Snapshot};
use crate::service::{Connector, Identity};
use crate::store::Store;
use crate::store::stats::PROCESS_TABLES;

/// The status service: readiness, identity, metrics. Cheap to clone.
#[derive(Clone)]
pub struct Status {
    store: Store,
    clock: Arc<dyn Clock>,
    /// Who we are.
    pub identity: Arc<Identity>,
    /// The metrics this connector counts.
    pub metrics: Arc<Metrics>,
    /// The DSP endpoints' path under the public URL (`dsp.path`).
    pub dsp_path: String,
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Status")
            .field("participant_id", &self.identity.participant_id)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// The status service, sharing this connector's state.
    pub fn status(&self) -> Status {
        Status {
            store: self.store.clone(),
            clock: self.clock.clone(),
            identity: self.identity.clone(),
            metrics: self.metrics.clone(),
            dsp_path: self.config.dsp.path.clone(),
        }
    }
}

impl Status {
    /// The database backend's name (`sqlite`, `postgres`).
    pub fn database(&self) -> &'static str {
        self.store.backend()
    }

    /// Whether the database answers.
    pub async fn database_ready(&self) -> Result<(), ServiceError> {
        Ok(self.store.ping().await?)
    }

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
