//! Contract negotiations, agreements and the MIM3 ledger in the store.
//!
//! Every change to a negotiation is written together with its ledger entries (and, when it finalizes, its
//! agreement) in one transaction, guarded by the negotiation's version. The processor claims due work with a
//! lease, so several replicas on one PostgreSQL never send the same message twice.

use caap_contracts::Role;
use caap_contracts::ledger::{self, LedgerEntry, NewEntry};
use caap_contracts::negotiation::state::NegotiationState;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, SqlErr,
};
use serde::Serialize;

use super::entities::{agreement, ledger as ledger_row, negotiation};
use super::{Store, StoreError, from_millis, millis};
use crate::negotiation::model::{Awaiting, Negotiation, Step};

/// A finalized agreement as stored and listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgreementRecord {
    /// The agreement id.
    pub id: String,
    /// The negotiation that made it (our pid).
    pub negotiation_id: String,
    /// Our role in it.
    #[serde(serialize_with = "serialize_role")]
    pub role: Role,
    /// The provider (assigner).
    pub provider_id: String,
    /// The consumer (assignee).
    pub consumer_id: String,
    /// The dataset.
    pub dataset_id: String,
    /// The agreement, its signature and the signer's key.
    pub body: serde_json::Value,
    /// When it was finalized.
    pub signed_at: DateTime<Utc>,
}

fn serialize_role<S: serde::Serializer>(role: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(role.as_str())
}

/// What else a negotiation write brings along.
#[derive(Debug, Default)]
pub struct Effects {
    /// Ledger entries, appended in order.
    pub ledger: Vec<NewEntry>,
    /// An agreement to record (at FINALIZED).
    pub agreement: Option<AgreementRecord>,
    /// Leave a processor's lease in place (an inbound message or a management step while a send may be in
    /// flight); the processor's own writes release it.
    pub keep_lease: bool,
}

fn role_str(r: Role) -> &'static str {
    r.as_str()
}

pub(super) fn parse_role(s: &str) -> Result<Role, StoreError> {
    match s {
        "consumer" => Ok(Role::Consumer),
        "provider" => Ok(Role::Provider),
        other => Err(StoreError::Corrupt("negotiation role".into(), other.into())),
    }
}

fn to_negotiation(m: negotiation::Model) -> Result<Negotiation, StoreError> {
    let corrupt =
        |what: &str, e: String| StoreError::Corrupt(format!("negotiation {} {what}", m.id), e);
    let state = m
        .state
        .as_deref()
        .map(str::parse::<NegotiationState>)
        .transpose()
        .map_err(|e| corrupt("state", e.to_string()))?;
    let pending = match m.pending.as_deref() {
        None => None,
        Some(s) => Some(Step::parse(s).ok_or_else(|| corrupt("pending step", s.into()))?),
    };
    let awaiting = match m.awaiting.as_deref() {
        None => None,
        Some(s) => Some(Awaiting::parse(s).ok_or_else(|| corrupt("awaiting", s.into()))?),
    };
    let body = serde_json::from_str(&m.body).map_err(|e| corrupt("body", e.to_string()))?;
    Ok(Negotiation {
        role: parse_role(&m.role)?,
        provider_pid: m.provider_pid,
        consumer_pid: m.consumer_pid,
        counterparty_id: m.counterparty_id,
        counterparty_address: m.counterparty_address,
        state,
        offer_id: m.offer_id,
        dataset_id: m.dataset_id,
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

fn to_active(n: &Negotiation) -> Result<negotiation::ActiveModel, StoreError> {
    let body = serde_json::to_string(&n.body)
        .map_err(|e| StoreError::Corrupt(format!("negotiation {}", n.id), e.to_string()))?;
    Ok(negotiation::ActiveModel {
        id: Set(n.id.clone()),
        role: Set(role_str(n.role).into()),
        provider_pid: Set(n.provider_pid.clone()),
        consumer_pid: Set(n.consumer_pid.clone()),
        counterparty_id: Set(n.counterparty_id.clone()),
        counterparty_address: Set(n.counterparty_address.clone()),
        state: Set(n.state.map(|s| s.as_str().to_owned())),
        offer_id: Set(n.offer_id.clone()),
        dataset_id: Set(n.dataset_id.clone()),
        body: Set(body),
        pending: Set(n.pending.map(|s| s.as_str().to_owned())),
        awaiting: Set(n.awaiting.map(|s| s.as_str().to_owned())),
        attempts: Set(i64::from(n.attempts)),
        last_error: Set(n.last_error.clone()),
        next_attempt_at: Set(n.next_attempt_at.map(millis)),
        lease_owner: Set(None),
        lease_until: Set(None),
        created_at: Set(millis(n.created_at)),
        updated_at: Set(millis(n.updated_at)),
        version: Set(n.version),
    })
}

fn to_entry(m: ledger_row::Model) -> Result<LedgerEntry, StoreError> {
    let corrupt =
        |what: &str, e: String| StoreError::Corrupt(format!("ledger entry {} {what}", m.seq), e);
    Ok(LedgerEntry {
        seq: u64::try_from(m.seq).map_err(|e| corrupt("seq", e.to_string()))?,
        at: DateTime::from_timestamp_micros(m.at_micros)
            .ok_or_else(|| corrupt("time", m.at_micros.to_string()))?,
        kind: m
            .kind
            .parse()
            .map_err(|e: ledger::UnknownEntryKind| corrupt("kind", e.to_string()))?,
        subject: m.subject.clone(),
        payload: serde_json::from_str(&m.payload).map_err(|e| corrupt("payload", e.to_string()))?,
        prev_hash: m.prev_hash.clone(),
        hash: m.hash.clone(),
    })
}

pub(super) fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Db(db) if matches!(db.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))))
}

/// Appends entries after the current head, inside the caller's transaction.
pub(super) async fn append_ledger_in<C: ConnectionTrait>(
    db: &C,
    entries: &[NewEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let head = ledger_row::Entity::find()
        .order_by_desc(ledger_row::Column::Seq)
        .one(db)
        .await?
        .map(to_entry)
        .transpose()?;
    let mut prev = head;
    for new in entries {
        let mut new = new.clone();
        // The stored precision; the hash must survive the round trip.
        new.at = DateTime::from_timestamp_micros(new.at.timestamp_micros()).unwrap_or(new.at);
        let entry = ledger::append(prev.as_ref(), new);
        let row = ledger_row::ActiveModel {
            seq: Set(i64::try_from(entry.seq).unwrap_or(i64::MAX)),
            at_micros: Set(entry.at.timestamp_micros()),
            kind: Set(entry.kind.as_str().into()),
            subject: Set(entry.subject.clone()),
            payload: Set(entry.payload.to_string()),
            prev_hash: Set(entry.prev_hash.clone()),
            hash: Set(entry.hash.clone()),
        };
        ledger_row::Entity::insert(row).exec(db).await?;
        prev = Some(entry);
    }
    Ok(())
}

/// Most times a write is retried when another replica appended to the ledger at the same moment.
const LEDGER_RACE_RETRIES: usize = 8;

impl Store {
    /// Writes a negotiation: inserts it when `expected_version` is `None`, else replaces it only if it is still
    /// at that version (`Conflict` otherwise). The version is bumped, the lease released, and the effects
    /// written in the same transaction. Returns the negotiation as stored.
    pub async fn save_negotiation(
        &self,
        n: &Negotiation,
        expected_version: Option<i64>,
        effects: &Effects,
    ) -> Result<Negotiation, StoreError> {
        let mut attempt = 0;
        loop {
            match self
                .try_save_negotiation(n, expected_version, effects)
                .await
            {
                Err(e) if is_unique_violation(&e) && attempt < LEDGER_RACE_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    async fn try_save_negotiation(
        &self,
        n: &Negotiation,
        expected_version: Option<i64>,
        effects: &Effects,
    ) -> Result<Negotiation, StoreError> {
        let now = self.clock.now();
        let mut saved = n.clone();
        saved.updated_at = now;
        let txn = self.begin_write().await?;
        match expected_version {
            None => {
                saved.created_at = now;
                saved.version = 1;
                negotiation::Entity::insert(to_active(&saved)?)
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
                let result = negotiation::Entity::update_many()
                    .set(active)
                    .filter(negotiation::Column::Id.eq(saved.id.clone()))
                    .filter(negotiation::Column::Version.eq(v))
                    .exec(&txn.txn)
                    .await?;
                if result.rows_affected != 1 {
                    return Err(StoreError::Conflict(format!(
                        "negotiation {} changed meanwhile",
                        saved.id
                    )));
                }
            }
        }
        append_ledger_in(&txn.txn, &effects.ledger).await?;
        if let Some(a) = &effects.agreement {
            let row = agreement::ActiveModel {
                id: Set(a.id.clone()),
                negotiation_id: Set(a.negotiation_id.clone()),
                role: Set(role_str(a.role).into()),
                provider_id: Set(a.provider_id.clone()),
                consumer_id: Set(a.consumer_id.clone()),
                dataset_id: Set(a.dataset_id.clone()),
                body: Set(a.body.to_string()),
                signed_at: Set(millis(a.signed_at)),
            };
            agreement::Entity::insert(row).exec(&txn.txn).await?;
        }
        txn.commit().await?;
        Ok(saved)
    }

    /// Records an imported agreement with its ledger entries, in one transaction.
    pub async fn import_agreement(
        &self,
        a: &AgreementRecord,
        entries: &[NewEntry],
    ) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            let txn = self.begin_write().await?;
            let row = agreement::ActiveModel {
                id: Set(a.id.clone()),
                negotiation_id: Set(a.negotiation_id.clone()),
                role: Set(role_str(a.role).into()),
                provider_id: Set(a.provider_id.clone()),
                consumer_id: Set(a.consumer_id.clone()),
                dataset_id: Set(a.dataset_id.clone()),
                body: Set(a.body.to_string()),
                signed_at: Set(millis(a.signed_at)),
            };
            let result = async {
                agreement::Entity::insert(row).exec(&txn.txn).await?;
                append_ledger_in(&txn.txn, entries).await
            }
            .await;
            let result = match result {
                Ok(()) => txn.commit().await.map_err(StoreError::from),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if is_unique_violation(&e) && attempt < LEDGER_RACE_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    /// Appends ledger entries on their own (e.g. an offer published).
    pub async fn append_ledger(&self, entries: &[NewEntry]) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            let txn = self.begin_write().await?;
            let result = append_ledger_in(&txn.txn, entries).await;
            let result = match result {
                Ok(()) => txn.commit().await.map_err(StoreError::from),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if is_unique_violation(&e) && attempt < LEDGER_RACE_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    /// One negotiation by our pid.
    pub async fn negotiation(&self, id: &str) -> Result<Option<Negotiation>, StoreError> {
        negotiation::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(to_negotiation)
            .transpose()
    }

    /// The provider-side negotiation a consumer started with `consumer_pid` (for idempotent initial requests).
    pub async fn negotiation_by_consumer_pid(
        &self,
        counterparty_id: &str,
        consumer_pid: &str,
    ) -> Result<Option<Negotiation>, StoreError> {
        negotiation::Entity::find()
            .filter(negotiation::Column::Role.eq(role_str(Role::Provider)))
            .filter(negotiation::Column::ConsumerPid.eq(consumer_pid))
            .filter(negotiation::Column::CounterpartyId.eq(counterparty_id))
            .one(&self.db)
            .await?
            .map(to_negotiation)
            .transpose()
    }

    /// Negotiations ordered by id, after or before a cursor id; optionally only those in `state`.
    pub async fn negotiations(
        &self,
        after: Option<&str>,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Negotiation>, StoreError> {
        let mut q = negotiation::Entity::find();
        if let Some(a) = after {
            q = q.filter(negotiation::Column::Id.gt(a));
        }
        if let Some(b) = before {
            q = q
                .filter(negotiation::Column::Id.lt(b))
                .order_by_desc(negotiation::Column::Id);
        } else {
            q = q.order_by_asc(negotiation::Column::Id);
        }
        let mut rows: Vec<Negotiation> = q
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_negotiation)
            .collect::<Result<_, _>>()?;
        if before.is_some() {
            rows.reverse();
        }
        Ok(rows)
    }

    /// Claims up to `limit` negotiations whose step is due, leasing each to `owner` until `lease_until`.
    /// A negotiation leased by another live replica is skipped; a claim bumps the version, so a replica whose
    /// lease expired cannot write its outcome over a newer one.
    pub async fn claim_due_negotiations(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Negotiation>, StoreError> {
        let now = millis(self.clock.now());
        let candidates = negotiation::Entity::find()
            .filter(negotiation::Column::Pending.is_not_null())
            .filter(negotiation::Column::Awaiting.is_null())
            .filter(negotiation::Column::NextAttemptAt.lte(now))
            .filter(
                Condition::any()
                    .add(negotiation::Column::LeaseUntil.is_null())
                    .add(negotiation::Column::LeaseUntil.lt(now)),
            )
            .order_by_asc(negotiation::Column::NextAttemptAt)
            .limit(limit)
            .all(&self.db)
            .await?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for row in candidates {
            let _gate = self.write_gate().await;
            let result = negotiation::Entity::update_many()
                .col_expr(negotiation::Column::LeaseOwner, Expr::value(owner))
                .col_expr(
                    negotiation::Column::LeaseUntil,
                    Expr::value(millis(lease_until)),
                )
                .col_expr(negotiation::Column::Version, Expr::value(row.version + 1))
                .filter(negotiation::Column::Id.eq(row.id.clone()))
                .filter(negotiation::Column::Version.eq(row.version))
                .exec(&self.db)
                .await?;
            if result.rows_affected == 1 {
                let mut n = to_negotiation(row)?;
                n.version += 1;
                claimed.push(n);
            }
        }
        Ok(claimed)
    }

    /// Gives up `owner`'s lease on a negotiation (after a send whose outcome another write overtook).
    pub async fn release_negotiation_lease(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        negotiation::Entity::update_many()
            .col_expr(
                negotiation::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                negotiation::Column::LeaseUntil,
                Expr::value(Option::<i64>::None),
            )
            .filter(negotiation::Column::Id.eq(id))
            .filter(negotiation::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// When the earliest pending step is due (for the processor's sleep), if any.
    pub async fn next_negotiation_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = negotiation::Entity::find()
            .filter(negotiation::Column::Pending.is_not_null())
            .filter(negotiation::Column::Awaiting.is_null())
            .order_by_asc(negotiation::Column::NextAttemptAt)
            .one(&self.db)
            .await?;
        Ok(row.and_then(|r| {
            let due = r.next_attempt_at?;
            Some(from_millis(due.max(r.lease_until.unwrap_or(0))))
        }))
    }

    /// One agreement.
    pub async fn agreement(&self, id: &str) -> Result<Option<AgreementRecord>, StoreError> {
        agreement::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(to_agreement)
            .transpose()
    }

    /// Agreements ordered by id after a cursor id.
    pub async fn agreements(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<AgreementRecord>, StoreError> {
        let mut q = agreement::Entity::find().order_by_asc(agreement::Column::Id);
        if let Some(a) = after {
            q = q.filter(agreement::Column::Id.gt(a));
        }
        q.limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_agreement)
            .collect()
    }

    /// Ledger entries with `seq > after`, oldest first.
    pub async fn ledger(&self, after: u64, limit: u64) -> Result<Vec<LedgerEntry>, StoreError> {
        ledger_row::Entity::find()
            .filter(ledger_row::Column::Seq.gt(i64::try_from(after).unwrap_or(i64::MAX)))
            .order_by_asc(ledger_row::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_entry)
            .collect()
    }

    /// Runs raw SQL (tests use it to tamper with rows the way an attacker with database access would).
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        let _gate = self.write_gate().await;
        Ok(self.db.execute_unprepared(sql).await?.rows_affected())
    }
}

fn to_agreement(m: agreement::Model) -> Result<AgreementRecord, StoreError> {
    Ok(AgreementRecord {
        role: parse_role(&m.role)?,
        body: serde_json::from_str(&m.body)
            .map_err(|e| StoreError::Corrupt(format!("agreement {}", m.id), e.to_string()))?,
        signed_at: from_millis(m.signed_at),
        id: m.id,
        negotiation_id: m.negotiation_id,
        provider_id: m.provider_id,
        consumer_id: m.consumer_id,
        dataset_id: m.dataset_id,
    })
}
