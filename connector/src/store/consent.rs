//! Consent tables (OASC MIM4): consent records and their signed revision chains, the deliveries of each
//! citizen's records to recipients (the transfer log "who received my data" is built from), the withdrawal
//! notices this connector sends (leased work of the processor), and the notices it received as a recipient.
//! Citizens appear only as pseudonyms (the keyed hash, in hex).

use caap_policy::consent::{ConsentRecord, ConsentTerms, Revision};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Value as DbValue};
use serde::Serialize;

use super::identity::{get, json_col};
use super::{Store, StoreError, from_millis, millis};

/// One delivery row: records of one citizen released to one recipient by one transfer on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The transfer (this connector's id for it).
    pub transfer_id: String,
    /// The recipient's participant id.
    pub recipient: String,
    /// The dataset.
    pub dataset: String,
    /// The purpose agreed.
    pub purpose: String,
    /// Records released that day.
    pub records: u64,
    /// The citizen's reference for this transfer's recipient (a keyed hash under the transfer's own key,
    /// what a withdrawal notice names).
    #[serde(skip)]
    pub subject_ref: String,
    /// The last release.
    pub last_at: DateTime<Utc>,
}

/// The state of a withdrawal notice this connector sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeRow {
    /// The notice id.
    pub id: String,
    /// The consent record withdrawn.
    pub record_id: String,
    /// The citizen (pseudonym, hex).
    #[serde(skip)]
    pub subject: String,
    /// The recipient's participant id.
    pub recipient: String,
    /// The recipient's DSP address.
    #[serde(skip)]
    pub address: String,
    /// The dataset.
    pub dataset: String,
    /// The transfers (the recipient's pids) that carried the citizen's records.
    pub transfers: Vec<String>,
    /// The signed notice (compact JWS) as sent.
    #[serde(skip)]
    pub notice: String,
    /// `SENT`, `ACKNOWLEDGED`, `DELETED` or `FAILED`.
    pub state: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_at: DateTime<Utc>,
    /// The last error, in plain words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The recipient's signed acknowledgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledgement: Option<String>,
    /// When it was acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// The recipient's signed deletion confirmation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion: Option<String>,
    /// When deletion was confirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A withdrawal notice this connector received as a recipient.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedNotice {
    /// The notice id (the provider's).
    pub id: String,
    /// The provider that sent it.
    pub provider: String,
    /// The notice's claims.
    pub body: serde_json::Value,
    /// `ACKNOWLEDGED` or `DELETED`.
    pub state: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// When the records were deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Records deleted.
    pub records_deleted: u64,
    /// The signed deletion confirmation.
    #[serde(skip)]
    pub confirmation: Option<String>,
}

fn head_of(r: &ConsentRecord) -> (i64, String) {
    r.revisions().last().map_or_else(
        || (-1, caap_policy::consent::GENESIS_HASH.to_owned()),
        |h| (h.seq as i64, h.hash.clone()),
    )
}

fn state_name(r: &ConsentRecord) -> String {
    serde_json::to_value(r.state())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Store {
    /// Stores a new consent record with its revisions (usually its first event). `Conflict` when the citizen
    /// already has a record for this dataset, purpose and recipient.
    pub async fn create_consent(&self, r: &ConsentRecord) -> Result<(), StoreError> {
        let t = r.terms();
        let (head_seq, head_hash) = head_of(r);
        let now = millis(self.clock.now());
        let txn = self.begin_write().await?;
        let inserted = Self::exec_on(
            &*txn,
            "INSERT INTO consent_records (id, subject, dataset, purpose, recipient, terms, state, head_seq, \
             head_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
             ON CONFLICT DO NOTHING",
            vec![
                t.id.clone().into(),
                t.subject.to_string().into(),
                t.processing.dataset.clone().into(),
                t.processing.purpose.clone().into(),
                t.processing.recipients.join(" ").into(),
                serde_json::to_string(t).unwrap_or_default().into(),
                state_name(r).into(),
                head_seq.into(),
                head_hash.into(),
                now.into(),
            ],
        )
        .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict(
                "a consent record for this citizen, dataset, purpose and recipient exists".into(),
            ));
        }
        for rev in r.revisions() {
            Self::insert_revision(&*txn, &t.id, rev).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    async fn insert_revision<C: ConnectionTrait>(
        db: &C,
        record: &str,
        rev: &Revision,
    ) -> Result<(), StoreError> {
        Self::exec_on(
            db,
            "INSERT INTO consent_revisions (record_id, seq, body) VALUES ($1, $2, $3)",
            vec![
                record.to_owned().into(),
                (rev.seq as i64).into(),
                serde_json::to_string(rev).unwrap_or_default().into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Appends the record's last revision, if the stored head is still the one before it (another replica
    /// appending at the same moment makes this a `Conflict`; nothing is written then).
    pub async fn append_consent(&self, r: &ConsentRecord) -> Result<(), StoreError> {
        let Some(rev) = r.revisions().last() else {
            return Ok(());
        };
        let before = rev.seq as i64 - 1;
        let txn = self.begin_write().await?;
        let moved = Self::exec_on(
            &*txn,
            "UPDATE consent_records SET state = $1, head_seq = $2, head_hash = $3, updated_at = $4 \
             WHERE id = $5 AND head_seq = $6",
            vec![
                state_name(r).into(),
                (rev.seq as i64).into(),
                rev.hash.clone().into(),
                millis(self.clock.now()).into(),
                r.terms().id.clone().into(),
                before.into(),
            ],
        )
        .await?;
        if moved == 0 {
            return Err(StoreError::Conflict(
                "the consent record changed meanwhile; read it again".into(),
            ));
        }
        Self::insert_revision(&*txn, &r.terms().id, rev).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn records_where(
        &self,
        condition: &str,
        values: Vec<DbValue>,
    ) -> Result<Vec<(ConsentRecord, (i64, String))>, StoreError> {
        let rows = self
            .rows(
                &format!(
                    "SELECT id, terms, head_seq, head_hash FROM consent_records WHERE {condition} ORDER BY created_at, id"
                ),
                values,
            )
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = rows
            .iter()
            .map(|r| get(r, "id"))
            .collect::<Result<_, _>>()?;
        let mut revisions: std::collections::HashMap<String, Vec<Revision>> =
            std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let revs = self
                .rows(
                    &format!(
                        "SELECT record_id, body FROM consent_revisions WHERE record_id IN ({}) ORDER BY record_id, seq",
                        marks.join(", ")
                    ),
                    chunk.iter().map(|i| DbValue::from(i.clone())).collect(),
                )
                .await?;
            for r in revs {
                let id: String = get(&r, "record_id")?;
                let rev: Revision = json_col(&r, "body")?;
                revisions.entry(id).or_default().push(rev);
            }
        }
        rows.iter()
            .map(|row| {
                let id: String = get(row, "id")?;
                let terms: ConsentTerms = json_col(row, "terms")?;
                let head = (get(row, "head_seq")?, get(row, "head_hash")?);
                let revs = revisions.remove(&id).unwrap_or_default();
                Ok((ConsentRecord::from_parts(terms, revs), head))
            })
            .collect()
    }

    /// One consent record.
    pub async fn consent(&self, id: &str) -> Result<Option<ConsentRecord>, StoreError> {
        Ok(self
            .records_where("id = $1", vec![id.to_owned().into()])
            .await?
            .into_iter()
            .next()
            .map(|(r, _)| r))
    }

    /// A citizen's consent records.
    pub async fn consents_of(&self, subject: &str) -> Result<Vec<ConsentRecord>, StoreError> {
        Ok(self
            .records_where("subject = $1", vec![subject.to_owned().into()])
            .await?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    /// The consent records of a dataset (every citizen).
    pub async fn consents_of_dataset(
        &self,
        dataset: &str,
    ) -> Result<Vec<ConsentRecord>, StoreError> {
        Ok(self
            .records_where("dataset = $1", vec![dataset.to_owned().into()])
            .await?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    /// The citizen's record for this dataset, purpose and recipient, if any.
    pub async fn consent_for(
        &self,
        subject: &str,
        dataset: &str,
        purpose: &str,
        recipient: &str,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        Ok(self
            .records_where(
                "subject = $1 AND dataset = $2 AND purpose = $3 AND recipient = $4",
                vec![
                    subject.to_owned().into(),
                    dataset.to_owned().into(),
                    purpose.to_owned().into(),
                    recipient.to_owned().into(),
                ],
            )
            .await?
            .into_iter()
            .next()
            .map(|(r, _)| r))
    }

    /// Records changed at or after `since` (for refreshing the in-memory index), with the store's clock.
    pub async fn consents_changed_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<ConsentRecord>, StoreError> {
        Ok(self
            .records_where("updated_at >= $1", vec![millis(since).into()])
            .await?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    /// Every record with the head its row remembers (sequence and hash), for verification.
    pub async fn consents_with_heads(
        &self,
    ) -> Result<Vec<(ConsentRecord, (i64, String))>, StoreError> {
        self.records_where("1 = 1", vec![]).await
    }

    /// Counts the records of each citizen a transfer released today: `(subject, subject_ref, records)` for
    /// each, all in one write transaction (a stream of a thousand citizens is one commit, not a thousand).
    pub async fn add_deliveries(
        &self,
        transfer: &str,
        scope: (&str, &str, &str),
        deliveries: &[(String, String, u64)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (recipient, dataset, purpose) = scope;
        let day = at.timestamp().div_euclid(86_400);
        let txn = self.begin_write().await?;
        for (subject, subject_ref, records) in deliveries {
            Self::exec_on(
                &*txn,
                "INSERT INTO consent_deliveries (transfer_id, subject, day, recipient, dataset, purpose, \
                 subject_ref, records, last_at) VALUES ($1, $2, $3, $4, $5, $6, $9, $7, $8) \
                 ON CONFLICT (transfer_id, subject, day) \
                 DO UPDATE SET records = consent_deliveries.records + $7, last_at = $8",
                vec![
                    transfer.to_owned().into(),
                    subject.clone().into(),
                    day.into(),
                    recipient.to_owned().into(),
                    dataset.to_owned().into(),
                    purpose.to_owned().into(),
                    i64::try_from(*records).unwrap_or(i64::MAX).into(),
                    millis(at).into(),
                    subject_ref.clone().into(),
                ],
            )
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Every delivery of a citizen's records, newest first.
    pub async fn deliveries_of(&self, subject: &str) -> Result<Vec<Delivery>, StoreError> {
        let rows = self
            .rows(
                "SELECT transfer_id, recipient, dataset, purpose, subject_ref, records, last_at FROM consent_deliveries \
                 WHERE subject = $1 ORDER BY last_at DESC, transfer_id",
                vec![subject.to_owned().into()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Delivery {
                    transfer_id: get(r, "transfer_id")?,
                    recipient: get(r, "recipient")?,
                    dataset: get(r, "dataset")?,
                    purpose: get(r, "purpose")?,
                    records: get::<i64>(r, "records")?.max(0) as u64,
                    subject_ref: get(r, "subject_ref")?,
                    last_at: from_millis(get(r, "last_at")?),
                })
            })
            .collect()
    }

    /// The citizens (pseudonyms, hex) whose records a transfer released.
    pub async fn delivery_subjects(&self, transfer: &str) -> Result<Vec<String>, StoreError> {
        let rows = self
            .rows(
                "SELECT DISTINCT subject FROM consent_deliveries WHERE transfer_id = $1",
                vec![transfer.to_owned().into()],
            )
            .await?;
        rows.iter().map(|r| get(r, "subject")).collect()
    }

    /// Stores a new withdrawal notice, due now.
    pub async fn create_notice(&self, n: &NoticeRow) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO consent_notices (id, record_id, subject, recipient, address, dataset, transfers, notice, \
             state, attempts, next_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, \
             $11, $11)",
            vec![
                n.id.clone().into(),
                n.record_id.clone().into(),
                n.subject.clone().into(),
                n.recipient.clone().into(),
                n.address.clone().into(),
                n.dataset.clone().into(),
                serde_json::to_string(&n.transfers).unwrap_or_default().into(),
                n.notice.clone().into(),
                n.state.clone().into(),
                millis(n.next_at).into(),
                millis(n.created_at).into(),
            ],
        )
        .await?;
        Ok(())
    }

    fn notice_row(r: &sea_orm::QueryResult) -> Result<NoticeRow, StoreError> {
        let opt_time = |c: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
            Ok(get::<Option<i64>>(r, c)?.map(from_millis))
        };
        Ok(NoticeRow {
            id: get(r, "id")?,
            record_id: get(r, "record_id")?,
            subject: get(r, "subject")?,
            recipient: get(r, "recipient")?,
            address: get(r, "address")?,
            dataset: get(r, "dataset")?,
            transfers: json_col(r, "transfers")?,
            notice: get(r, "notice")?,
            state: get(r, "state")?,
            attempts: get::<i64>(r, "attempts")?.clamp(0, i64::from(u32::MAX)) as u32,
            next_at: from_millis(get(r, "next_at")?),
            last_error: get(r, "last_error")?,
            acknowledgement: get(r, "ack")?,
            acknowledged_at: opt_time("acked_at")?,
            deletion: get(r, "deletion")?,
            deleted_at: opt_time("deleted_at")?,
            created_at: from_millis(get(r, "created_at")?),
        })
    }

    const NOTICE_COLUMNS: &'static str = "id, record_id, subject, recipient, address, dataset, transfers, notice, \
        state, attempts, next_at, last_error, ack, acked_at, deletion, deleted_at, created_at";

    /// Withdrawal notices, newest first: of one citizen, or all.
    pub async fn notices(&self, subject: Option<&str>) -> Result<Vec<NoticeRow>, StoreError> {
        let (cond, values) = match subject {
            Some(s) => ("WHERE subject = $1", vec![s.to_owned().into()]),
            None => ("", vec![]),
        };
        let rows = self
            .rows(
                &format!(
                    "SELECT {} FROM consent_notices {cond} ORDER BY created_at DESC, id",
                    Self::NOTICE_COLUMNS
                ),
                values,
            )
            .await?;
        rows.iter().map(Self::notice_row).collect()
    }

    /// Leases up to `limit` notices that are due (not yet acknowledged, or acknowledged and waiting for the
    /// deletion confirmation) to `owner` until `until`.
    pub async fn claim_notices(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<NoticeRow>, StoreError> {
        let due = self
            .rows(
                "SELECT id FROM consent_notices WHERE state IN ('SENT', 'ACKNOWLEDGED') AND next_at <= $1 \
                 AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_at LIMIT $2",
                vec![millis(now).into(), (limit as i64).into()],
            )
            .await?;
        let mut claimed = Vec::new();
        for row in due {
            let id: String = get(&row, "id")?;
            let won = self
                .exec(
                    "UPDATE consent_notices SET lease_owner = $1, lease_until = $2 WHERE id = $3 \
                     AND (lease_until IS NULL OR lease_until < $4)",
                    vec![
                        owner.to_owned().into(),
                        millis(until).into(),
                        id.clone().into(),
                        millis(now).into(),
                    ],
                )
                .await?;
            if won == 1 {
                let rows = self
                    .rows(
                        &format!(
                            "SELECT {} FROM consent_notices WHERE id = $1",
                            Self::NOTICE_COLUMNS
                        ),
                        vec![id.into()],
                    )
                    .await?;
                if let Some(r) = rows.first() {
                    claimed.push(Self::notice_row(r)?);
                }
            }
        }
        Ok(claimed)
    }

    /// Records the outcome of an attempt and releases the lease held by `owner`.
    pub async fn update_notice(&self, n: &NoticeRow, owner: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE consent_notices SET state = $1, attempts = $2, next_at = $3, last_error = $4, ack = $5, \
             acked_at = $6, deletion = $7, deleted_at = $8, updated_at = $9, lease_owner = NULL, lease_until = NULL \
             WHERE id = $10 AND lease_owner = $11",
            vec![
                n.state.clone().into(),
                i64::from(n.attempts).into(),
                millis(n.next_at).into(),
                n.last_error.clone().into(),
                n.acknowledgement.clone().into(),
                n.acknowledged_at.map(millis).into(),
                n.deletion.clone().into(),
                n.deleted_at.map(millis).into(),
                millis(self.clock.now()).into(),
                n.id.clone().into(),
                owner.to_owned().into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Stores a notice received as a recipient (a repeat of the same id changes nothing).
    pub async fn put_received_notice(&self, n: &ReceivedNotice) -> Result<bool, StoreError> {
        let inserted = self
            .exec(
                "INSERT INTO received_notices (id, provider, body, state, received_at, deleted_at, records_deleted, \
                 confirmation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                vec![
                    n.id.clone().into(),
                    n.provider.clone().into(),
                    n.body.to_string().into(),
                    n.state.clone().into(),
                    millis(n.received_at).into(),
                    n.deleted_at.map(millis).into(),
                    (n.records_deleted as i64).into(),
                    n.confirmation.clone().into(),
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    /// Records that a received notice's records were deleted.
    pub async fn confirm_received_notice(&self, n: &ReceivedNotice) -> Result<(), StoreError> {
        self.exec(
            "UPDATE received_notices SET state = $1, deleted_at = $2, records_deleted = $3, confirmation = $4 \
             WHERE id = $5",
            vec![
                n.state.clone().into(),
                n.deleted_at.map(millis).into(),
                (n.records_deleted as i64).into(),
                n.confirmation.clone().into(),
                n.id.clone().into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Notices received as a recipient, newest first; of one provider and id when given.
    pub async fn received_notices(
        &self,
        only: Option<(&str, &str)>,
    ) -> Result<Vec<ReceivedNotice>, StoreError> {
        let (cond, values) = match only {
            Some((provider, id)) => (
                "WHERE provider = $1 AND id = $2",
                vec![provider.to_owned().into(), id.to_owned().into()],
            ),
            None => ("", vec![]),
        };
        let rows = self
            .rows(
                &format!(
                    "SELECT id, provider, body, state, received_at, deleted_at, records_deleted, confirmation \
                     FROM received_notices {cond} ORDER BY received_at DESC, id"
                ),
                values,
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ReceivedNotice {
                    id: get(r, "id")?,
                    provider: get(r, "provider")?,
                    body: json_col(r, "body")?,
                    state: get(r, "state")?,
                    received_at: from_millis(get(r, "received_at")?),
                    deleted_at: get::<Option<i64>>(r, "deleted_at")?.map(from_millis),
                    records_deleted: get::<i64>(r, "records_deleted")?.max(0) as u64,
                    confirmation: get(r, "confirmation")?,
                })
            })
            .collect()
    }
}
