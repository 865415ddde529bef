//! Transfer processes in the store: the same write discipline as negotiations (versions, leases, ledger entries
//! in the same transaction).

use caap_contracts::Role;
use caap_contracts::transfer::state::TransferState;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::transfer;
use super::negotiations::{Effects, append_ledger_in, is_unique_violation, parse_role};
use super::{Store, StoreError, from_millis, millis};
use crate::negotiation::Awaiting;
use crate::transfer::model::{TStep, Transfer};

fn to_transfer(m: transfer::Model) -> Result<Transfer, StoreError> {
    let corrupt =
        |what: &str, e: String| StoreError::Corrupt(format!("transfer {} {what}", m.id), e);
    let state = m
        .state
        .as_deref()
        .map(str::parse::<TransferState>)
        .transpose()
        .map_err(|e| corrupt("state", e.to_string()))?;
    let pending = match m.pending.as_deref() {
        None => None,
        Some(s) => Some(TStep::parse(s).ok_or_else(|| corrupt("pending step", s.into()))?),
    };
    let awaiting = match m.awaiting.as_deref() {
        None => None,
        Some(s) => Some(Awaiting::parse(s).ok_or_else(|| corrupt("awaiting", s.into()))?),
    };
    let body = serde_json::from_str(&m.body).map_err(|e| corrupt("body", e.to_string()))?;
    Ok(Transfer {
        role: parse_role(&m.role)?,
        provider_pid: m.provider_pid,
        consumer_pid: m.consumer_pid,
        counterparty_id: m.counterparty_id,
        counterparty_address: m.counterparty_address,
        state,
        agreement_id: m.agreement_id,
        format: m.format,
        body,
        pending,
        awaiting,
        attempts: u32::try_from(m.attempts).unwrap_or(u32::MAX),
        last_error: m.last_error,
        next_attempt_at: m.next_attempt_at.map(from_millis),
        created_at: from_millis(m.created_at),
        updated_at: from_millis(m.updated_at),
        version: m.version,
        id: m.id,
    })
}

fn to_active(t: &Transfer) -> Result<transfer::ActiveModel, StoreError> {
    let body = serde_json::to_string(&t.body)
        .map_err(|e| StoreError::Corrupt(format!("transfer {}", t.id), e.to_string()))?;
    Ok(transfer::ActiveModel {
        id: Set(t.id.clone()),
        role: Set(t.role.as_str().into()),
        provider_pid: Set(t.provider_pid.clone()),
        consumer_pid: Set(t.consumer_pid.clone()),
        counterparty_id: Set(t.counterparty_id.clone()),
        counterparty_address: Set(t.counterparty_address.clone()),
        state: Set(t.state.map(|s| s.as_str().to_owned())),
        agreement_id: Set(t.agreement_id.clone()),
        format: Set(t.format.clone()),
        body: Set(body),
        pending: Set(t.pending.map(|s| s.as_str().to_owned())),
        awaiting: Set(t.awaiting.map(|s| s.as_str().to_owned())),
        attempts: Set(i64::from(t.attempts)),
        last_error: Set(t.last_error.clone()),
        next_attempt_at: Set(t.next_attempt_at.map(millis)),
        lease_owner: Set(None),
        lease_until: Set(None),
        created_at: Set(millis(t.created_at)),
        updated_at: Set(millis(t.updated_at)),
        version: Set(t.version),
    })
}

/// Most times a write is retried when another replica appended to the ledger at the same moment.
const LEDGER_RACE_RETRIES: usize = 8;

impl Store {
    /// Writes a transfer (insert when `expected_version` is `None`), version-guarded, with its ledger entries.
    pub async fn save_transfer(
        &self,
        t: &Transfer,
        expected_version: Option<i64>,
        effects: &Effects,
    ) -> Result<Transfer, StoreError> {
        let mut attempt = 0;
        loop {
            match self.try_save_transfer(t, expected_version, effects).await {
                Err(e) if is_unique_violation(&e) && attempt < LEDGER_RACE_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    async fn try_save_transfer(
        &self,
        t: &Transfer,
        expected_version: Option<i64>,
        effects: &Effects,
    ) -> Result<Transfer, StoreError> {
        let now = self.clock.now();
        let mut saved = t.clone();
        saved.updated_at = now;
        let txn = self.begin_write().await?;
        match expected_version {
            None => {
                saved.created_at = now;
                saved.version = 1;
                transfer::Entity::insert(to_active(&saved)?)
                    .exec(&txn.txn)
                    .await?;
            }
            Some(v) => {
                saved.version = v + 1;
                let mut active = to_active(&saved)?;
                if effects.keep_lease {
                    active.lease_owner = sea_orm::ActiveValue::NotSet;
                    active.lease_until = sea_orm::ActiveValue::NotSet;
                }
                let result = transfer::Entity::update_many()
                    .set(active)
                    .filter(transfer::Column::Id.eq(saved.id.clone()))
                    .filter(transfer::Column::Version.eq(v))
                    .exec(&txn.txn)
                    .await?;
                if result.rows_affected != 1 {
                    return Err(StoreError::Conflict(format!(
                        "transfer {} changed meanwhile",
                        saved.id
                    )));
                }
            }
        }
        append_ledger_in(&txn.txn, &effects.ledger).await?;
        txn.commit().await?;
        Ok(saved)
    }

    /// One transfer by our pid.
    pub async fn transfer(&self, id: &str) -> Result<Option<Transfer>, StoreError> {
        transfer::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(to_transfer)
            .transpose()
    }

    /// The provider-side transfer a consumer requested with `consumer_pid` (idempotent requests).
    pub async fn transfer_by_consumer_pid(
        &self,
        counterparty_id: &str,
        consumer_pid: &str,
    ) -> Result<Option<Transfer>, StoreError> {
        transfer::Entity::find()
            .filter(transfer::Column::Role.eq(Role::Provider.as_str()))
            .filter(transfer::Column::ConsumerPid.eq(consumer_pid))
            .filter(transfer::Column::CounterpartyId.eq(counterparty_id))
            .one(&self.db)
            .await?
            .map(to_transfer)
            .transpose()
    }

    /// Transfers ordered by id after a cursor id.
    pub async fn transfers(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Transfer>, StoreError> {
        let mut q = transfer::Entity::find().order_by_asc(transfer::Column::Id);
        if let Some(a) = after {
            q = q.filter(transfer::Column::Id.gt(a));
        }
        q.limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_transfer)
            .collect()
    }

    /// Claims up to `limit` due transfers for `owner` (see [`Store::claim_due_negotiations`]).
    pub async fn claim_due_transfers(
        &self,
        owner: &str,
        lease_until: chrono::DateTime<chrono::Utc>,
        limit: u64,
    ) -> Result<Vec<Transfer>, StoreError> {
        let now = millis(self.clock.now());
        let candidates = transfer::Entity::find()
            .filter(transfer::Column::Pending.is_not_null())
            .filter(transfer::Column::Awaiting.is_null())
            .filter(transfer::Column::NextAttemptAt.lte(now))
            .filter(
                Condition::any()
                    .add(transfer::Column::LeaseUntil.is_null())
                    .add(transfer::Column::LeaseUntil.lt(now)),
            )
            .order_by_asc(transfer::Column::NextAttemptAt)
            .limit(limit)
            .all(&self.db)
            .await?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for row in candidates {
            let _gate = self.write_gate().await;
            let result = transfer::Entity::update_many()
                .col_expr(transfer::Column::LeaseOwner, Expr::value(owner))
                .col_expr(
                    transfer::Column::LeaseUntil,
                    Expr::value(millis(lease_until)),
                )
                .col_expr(transfer::Column::Version, Expr::value(row.version + 1))
                .filter(transfer::Column::Id.eq(row.id.clone()))
                .filter(transfer::Column::Version.eq(row.version))
                .exec(&self.db)
                .await?;
            if result.rows_affected == 1 {
                let mut t = to_transfer(row)?;
                t.version += 1;
                claimed.push(t);
            }
        }
        Ok(claimed)
    }

    /// Running transfers this connector provides (for the policy monitor).
    pub async fn running_provided_transfers(&self) -> Result<Vec<Transfer>, StoreError> {
        transfer::Entity::find()
            .filter(transfer::Column::Role.eq(Role::Provider.as_str()))
            .filter(transfer::Column::State.eq(TransferState::Started.as_str()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_transfer)
            .collect()
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

    /// Extends `owner`'s lease on a transfer (a long push renews it while it runs).
    pub async fn renew_transfer_lease(
        &self,
        id: &str,
        owner: &str,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let r = transfer::Entity::update_many()
            .col_expr(transfer::Column::LeaseUntil, Expr::value(millis(until)))
            .filter(transfer::Column::Id.eq(id))
            .filter(transfer::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Gives up `owner`'s lease on a transfer.
    pub async fn release_transfer_lease(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        transfer::Entity::update_many()
            .col_expr(
                transfer::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                transfer::Column::LeaseUntil,
                Expr::value(Option::<i64>::None),
            )
            .filter(transfer::Column::Id.eq(id))
            .filter(transfer::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// When the earliest pending transfer step is due, if any.
    pub async fn next_transfer_due(
        &self,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        let row = transfer::Entity::find()
            .filter(transfer::Column::Pending.is_not_null())
            .filter(transfer::Column::Awaiting.is_null())
            .order_by_asc(transfer::Column::NextAttemptAt)
            .one(&self.db)
            .await?;
        Ok(row.and_then(|r| {
            let due = r.next_attempt_at?;
            Some(from_millis(due.max(r.lease_until.unwrap_or(0))))
        }))
    }
}
