//! Transfer processes in the store: what is particular to them (the running ones, for the policy monitor; usage
//! counts per agreement). They are written by [`super::processes`], like every process.

use caap_contracts::Role;
use caap_contracts::transfer::state::TransferState;
use sea_orm::sea_query::{Alias, Expr, ExprTrait};

use super::processes::Effects;
use super::{Store, StoreError, from_millis, millis};
use crate::model::transfer::Transfer;

impl Store {
    /// Writes a transfer (see [`Store::save`]).
    pub async fn save_transfer(
        &self,
        t: &Transfer,
        expected_version: Option<i64>,
        effects: &Effects,
    ) -> Result<Transfer, StoreError> {
        self.save(t, expected_version, effects).await
    }

    /// One transfer by our pid.
    pub async fn transfer(&self, id: &str) -> Result<Option<Transfer>, StoreError> {
        self.process(id).await
    }

    /// Running transfers this connector provides (for the policy monitor).
    pub async fn running_provided_transfers(&self) -> Result<Vec<Transfer>, StoreError> {
        self.processes_where(
            Expr::col(Alias::new("role"))
                .eq(Role::Provider.as_str())
                .and(Expr::col(Alias::new("state")).eq(TransferState::Started.as_str())),
        )
        .await
    }

    /// Uses of an agreement in the period starting at `period_start`, and its first use ever.
    pub async fn agreement_usage(
        &self,
        agreement_id: &str,
        period_start: chrono::DateTime<chrono::Utc>,
    ) -> Result<(u64, Option<chrono::DateTime<chrono::Utc>>), StoreError> {
        use sea_orm::{ConnectionTrait, Statement};
        let backend = self.db.get_database_backend();
        let sql = match backend {
            sea_orm::DbBackend::Postgres => {
                "SELECT CAST(COALESCE(SUM(CASE WHEN period_start = $2 THEN uses ELSE 0 END), 0) AS BIGINT) AS uses, \
                 MIN(first_use) AS first_use FROM agreement_usage WHERE agreement_id = $1"
            }
            _ => {
                "SELECT CAST(COALESCE(SUM(CASE WHEN period_start = ?2 THEN uses ELSE 0 END), 0) AS BIGINT) AS uses, \
                 MIN(first_use) AS first_use FROM agreement_usage WHERE agreement_id = ?1"
            }
        };
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [agreement_id.into(), millis(period_start).into()],
            ))
            .await?;
        let Some(row) = row else { return Ok((0, None)) };
        // PostgreSQL's SUM of BIGINT is NUMERIC: the CAST above keeps it a BIGINT, and a decoding error is an
        // error, never a silent zero (which would lift every count limit).
        let corrupt =
            |e: sea_orm::DbErr| StoreError::Corrupt("agreement_usage".into(), e.to_string());
        let uses: i64 = row.try_get("", "uses").map_err(corrupt)?;
        let first: Option<i64> = row.try_get("", "first_use").map_err(corrupt)?;
        Ok((u64::try_from(uses).unwrap_or(0), first.map(from_millis)))
    }

    /// Counts one use of an agreement in the period starting at `period_start` and returns the uses in
    /// that period including this one (one atomic statement, so concurrent accesses each see their own count).
    pub async fn record_agreement_use(
        &self,
        agreement_id: &str,
        period_start: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        use sea_orm::{ConnectionTrait, Statement};
        let backend = self.db.get_database_backend();
        let sql = match backend {
            sea_orm::DbBackend::Postgres => {
                "INSERT INTO agreement_usage (agreement_id, period_start, uses, first_use) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (agreement_id, period_start) DO UPDATE SET uses = agreement_usage.uses + 1 \
                 RETURNING uses"
            }
            _ => {
                "INSERT INTO agreement_usage (agreement_id, period_start, uses, first_use) VALUES (?1, ?2, 1, ?3) \
                 ON CONFLICT (agreement_id, period_start) DO UPDATE SET uses = agreement_usage.uses + 1 \
                 RETURNING uses"
            }
        };
        let _gate = self.write_gate().await;
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [
                    agreement_id.into(),
                    millis(period_start).into(),
                    millis(now).into(),
                ],
            ))
            .await?;
        let uses: i64 = row
            .map(|r| r.try_get("", "uses"))
            .transpose()
            .map_err(|e| StoreError::Corrupt("agreement_usage".into(), e.to_string()))?
            .unwrap_or(1);
        Ok(u64::try_from(uses).unwrap_or(0))
    }

    /// Takes back a use counted by [`Store::record_agreement_use`] (the access it reserved was refused).
    pub async fn release_agreement_use(
        &self,
        agreement_id: &str,
        period_start: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        use sea_orm::{ConnectionTrait, Statement};
        let backend = self.db.get_database_backend();
        let sql = match backend {
            sea_orm::DbBackend::Postgres => {
                "UPDATE agreement_usage SET uses = uses - 1 WHERE agreement_id = $1 AND period_start = $2 AND uses > 0"
            }
            _ => {
                "UPDATE agreement_usage SET uses = uses - 1 WHERE agreement_id = ?1 AND period_start = ?2 AND uses > 0"
            }
        };
        let _gate = self.write_gate().await;
        self.db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [agreement_id.into(), millis(period_start).into()],
            ))
            .await?;
        Ok(())
    }
}
