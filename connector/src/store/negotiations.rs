//! Agreements and the MIM3 ledger in the store (negotiations themselves are written by
//! [`super::processes`], with their ledger entries and agreement in the same transaction).

use caap_contracts::Role;
use caap_contracts::ledger::{self, LedgerEntry, NewEntry};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, SqlErr,
};
use serde::Serialize;

use super::entities::{agreement, ledger as ledger_row};
use super::{Store, StoreError, from_millis, millis};
use crate::model::negotiation::Negotiation;

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

pub use super::processes::Effects;

fn agreement_row(a: &AgreementRecord) -> agreement::ActiveModel {
    agreement::ActiveModel {
        id: Set(a.id.clone()),
        negotiation_id: Set(a.negotiation_id.clone()),
        role: Set(a.role.as_str().into()),
        provider_id: Set(a.provider_id.clone()),
        consumer_id: Set(a.consumer_id.clone()),
        dataset_id: Set(a.dataset_id.clone()),
        body: Set(a.body.to_string()),
        signed_at: Set(millis(a.signed_at)),
    }
}

/// Records an agreement inside the caller's transaction.
pub(super) async fn insert_agreement_in<C: ConnectionTrait>(
    db: &C,
    a: &AgreementRecord,
) -> Result<(), StoreError> {
    agreement::Entity::insert(agreement_row(a)).exec(db).await?;
    Ok(())
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

/// The ledger's last entry (its `seq` and hash; only those, the chain needs nothing else of it).
pub(super) async fn ledger_head_in<C: ConnectionTrait>(
    db: &C,
) -> Result<Option<super::ledger_head::LedgerHead>, StoreError> {
    let head: Option<(i64, String)> = ledger_row::Entity::find()
        .select_only()
        .column(ledger_row::Column::Seq)
        .column(ledger_row::Column::Hash)
        .order_by_desc(ledger_row::Column::Seq)
        .into_tuple()
        .one(db)
        .await?;
    head.map(|(seq, hash)| {
        u64::try_from(seq)
            .map(|seq| super::ledger_head::LedgerHead { seq, hash })
            .map_err(|e| StoreError::Corrupt(format!("ledger entry {seq} seq"), e.to_string()))
    })
    .transpose()
}

/// Appends entries after the current head, inside the caller's transaction; once it commits, the store's
/// seal (if any) signs the new head (`ledger_head`).
pub(super) async fn append_ledger_in(
    txn: &mut super::WriteTxn,
    entries: &[NewEntry],
) -> Result<(), StoreError> {
    let db = &txn.txn;
    if entries.is_empty() {
        return Ok(());
    }
    let mut prev = ledger_head_in(db).await?.map(|h| (h.seq, h.hash));
    for new in entries {
        let mut new = new.clone();
        // The stored precision; the hash must survive the round trip.
        new.at = DateTime::from_timestamp_micros(new.at.timestamp_micros()).unwrap_or(new.at);
        let entry = ledger::append_to(prev.as_ref().map(|(s, h)| (*s, h.as_str())), new);
        let row = ledger_row::ActiveModel {
            seq: Set(i64::try_from(entry.seq).unwrap_or(i64::MAX)),
            at_micros: Set(entry.at.timestamp_micros()),
            kind: Set(entry.kind.as_str().into()),
            subject: Set(entry.subject.clone()),
            payload: Set(entry.payload.to_string()),
            prev_hash: Set(entry.prev_hash),
            hash: Set(entry.hash.clone()),
        };
        ledger_row::Entity::insert(row).exec(db).await?;
        prev = Some((entry.seq, entry.hash));
    }
    txn.appended = true;
    Ok(())
}

use super::processes::{LEDGER_RACE_RETRIES, ledger_race_pause};

impl Store {
    /// Writes a negotiation (see [`Store::save`]).
    pub async fn save_negotiation(
        &self,
        n: &Negotiation,
        expected_version: Option<i64>,
        effects: &Effects,
    ) -> Result<Negotiation, StoreError> {
        self.save(n, expected_version, effects).await
    }

    /// Records an imported agreement with its ledger entries, in one transaction.
    pub async fn import_agreement(
        &self,
        a: &AgreementRecord,
        entries: &[NewEntry],
    ) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            let mut txn = self.begin_write().await?;
            let result = async {
                insert_agreement_in(&txn.txn, a).await?;
                append_ledger_in(&mut txn, entries).await
            }
            .await;
            let result = match result {
                Ok(()) => txn.commit().await.map_err(StoreError::from),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if is_unique_violation(&e) && attempt < LEDGER_RACE_RETRIES => {
                    attempt += 1;
                    ledger_race_pause(attempt).await;
                }
                other => return other,
            }
        }
    }

    /// Appends ledger entries on their own (e.g. an offer published).
    pub async fn append_ledger(&self, entries: &[NewEntry]) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            let mut txn = self.begin_write().await?;
            let result = append_ledger_in(&mut txn, entries).await;
            let result = match result {
                Ok(()) => txn.commit().await.map_err(StoreError::from),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if is_unique_violation(&e) && attempt < LEDGER_RACE_RETRIES => {
                    attempt += 1;
                    ledger_race_pause(attempt).await;
                }
                other => return other,
            }
        }
    }

    /// One negotiation by our pid.
    pub async fn negotiation(&self, id: &str) -> Result<Option<Negotiation>, StoreError> {
        self.process(id).await
    }

    /// Negotiations ordered by id, after or before a cursor id.
    pub async fn negotiations(
        &self,
        after: Option<&str>,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Negotiation>, StoreError> {
        self.processes(after, before, limit).await
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
        role: super::processes::parse_role(&m.role)?,
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
