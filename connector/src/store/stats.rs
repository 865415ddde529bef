//! What the metrics read from the store at scrape time: processes by state, the processor's queue, the pool.

use sea_orm::{ConnectionTrait, Statement};

use super::{Store, StoreError, millis};

/// The processor's queue of one process kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queue {
    /// Steps due now and not leased.
    pub due: u64,
    /// When the oldest of them fell due (ms since the epoch).
    pub oldest_due_ms: Option<i64>,
}

/// The database pool: connections open, idle, and the maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Open.
    pub size: u32,
    /// Open and idle.
    pub idle: u32,
    /// The maximum.
    pub max: u32,
}

/// The tables of the process kinds, with the kind's name.
pub const PROCESS_TABLES: [(&str, &str); 2] =
    [("negotiation", "negotiations"), ("transfer", "transfers")];

impl Store {
    /// `(role, state, count)` of the processes in `table` (one of [`PROCESS_TABLES`]).
    pub async fn process_counts(
        &self,
        table: &'static str,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let backend = self.db.get_database_backend();
        let sql = format!(
            "SELECT role, COALESCE(state, 'INITIAL') AS state, COUNT(*) AS n FROM {table} GROUP BY role, state"
        );
        let rows = self
            .db
            .query_all_raw(Statement::from_string(backend, sql))
            .await?;
        let corrupt = |e: sea_orm::DbErr| StoreError::Corrupt(table.into(), e.to_string());
        rows.into_iter()
            .map(|r| {
                let n: i64 = r.try_get("", "n").map_err(corrupt)?;
                Ok((
                    r.try_get("", "role").map_err(corrupt)?,
                    r.try_get("", "state").map_err(corrupt)?,
                    u64::try_from(n).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// The due, unleased steps of the processes in `table` at `now`.
    pub async fn queue(
        &self,
        table: &'static str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Queue, StoreError> {
        let backend = self.db.get_database_backend();
        let (p1, p2) = match backend {
            sea_orm::DbBackend::Postgres => ("$1", "$2"),
            _ => ("?1", "?2"),
        };
        let sql = format!(
            "SELECT COUNT(*) AS n, MIN(next_attempt_at) AS oldest FROM {table} \
             WHERE pending IS NOT NULL AND next_attempt_at <= {p1} \
             AND (lease_until IS NULL OR lease_until < {p2})"
        );
        let now = millis(now);
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [now.into(), now.into()],
            ))
            .await?;
        let Some(row) = row else {
            return Ok(Queue::default());
        };
        let corrupt = |e: sea_orm::DbErr| StoreError::Corrupt(table.into(), e.to_string());
        let n: i64 = row.try_get("", "n").map_err(corrupt)?;
        let oldest: Option<i64> = row.try_get("", "oldest").map_err(corrupt)?;
        Ok(Queue {
            due: u64::try_from(n).unwrap_or(0),
            oldest_due_ms: oldest,
        })
    }

    /// The connection pool's state.
    pub fn pool_stats(&self) -> PoolStats {
        use sea_orm::DbBackend;
        match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let p = self.db.get_postgres_connection_pool();
                PoolStats {
                    size: p.size(),
                    idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
                    max: p.options().get_max_connections(),
                }
            }
            _ => {
                let p = self.db.get_sqlite_connection_pool();
                PoolStats {
                    size: p.size(),
                    idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
                    max: p.options().get_max_connections(),
                }
            }
        }
    }
}
