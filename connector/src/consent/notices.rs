//! Withdrawal notices (GDPR Art. 17(2), 19): when a citizen withdraws consent, every connector that received
//! their records hears of it, with a signed notice, until it answers with a signed acknowledgement and later
//! a signed deletion confirmation.
//!
//! * Provider side: [`Consents::notify_recipients`] creates one notice per recipient from the transfer log
//!   (`consent_deliveries`); [`deliver_due`] (run by the processor about once a second) leases due notices,
//!   POSTs them to the recipient's `<dsp>/consent/notices` with the usual DSP authorization, then asks
//!   `GET <dsp>/consent/notices/{id}` for the deletion confirmation; failures back off exponentially and
//!   end as FAILED after `consent.notice_max_attempts`, each with the reason.
//! * Recipient side: [`receive`] checks the notice (the DSP-authenticated caller is its signer and it is
//!   addressed to us), answers a signed acknowledgement, then deletes the citizen's records from the data
//!   it received (push transfers' files) and signs a deletion confirmation the provider collects.
//!
//! A notice never names the citizen: per transfer it carries a salt (a keyed hash of the transfer id) and
//! the citizen's reference under it (HMAC-SHA-256 of the identifier with the salt, computed when the records
//! were released); the recipient recomputes it over the subject field of the records it holds.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use caap_identity::jose::{decode_compact, sign_compact};
use caap_policy::consent::ConsentRecord;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::records::{Format, RecordFilter};
use super::{Consents, subject_ref, transfer_salt};
use crate::clock::Clock;
use crate::store::Store;
use crate::store::consent::{NoticeRow, ReceivedNotice};
use crate::trust::Identity;

/// The JWS `typ` of notices, acknowledgements and confirmations.
pub const NOTICE_JWS_TYPE: &str = "caap-consent-notice+jws";

/// What sending and receiving notices needs from the connector (built by `Connector::courier`).
#[derive(Clone)]
pub struct Courier {
    /// The consent service.
    pub consents: std::sync::Arc<Consents>,
    /// The store.
    pub store: Store,
    /// The clock.
    pub clock: std::sync::Arc<dyn Clock>,
    /// Who we are (signs notices and answers).
    pub identity: std::sync::Arc<Identity>,
    /// The client for requests to other connectors.
    pub http: crate::outbound::Http,
    /// Authorizes our requests to others.
    pub outbound: std::sync::Arc<dyn caap_identity::auth::OutboundCredentials>,
    /// Checks other participants' keys against their DID documents.
    pub trust: std::sync::Arc<crate::trust::dcp::Trust>,
    /// Whether DSP callers are verified with DCP (then signers' keys are checked against their DIDs).
    pub dcp: bool,
    /// The data directory (received push data is under it).
    pub data_dir: std::path::PathBuf,
    /// The outbound timeout (for leases).
    pub timeout_secs: u64,
}

impl std::fmt::Debug for Courier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Courier").finish_non_exhaustive()
    }
}

/// How notices are retried.
#[derive(Debug, Clone, Copy)]
pub struct NoticePolicy {
    /// First retry after.
    pub retry: TimeDelta,
    /// Longest wait.
    pub max_backoff: TimeDelta,
    /// Attempts before FAILED.
    pub max_attempts: u32,
}

impl NoticePolicy {
    /// From `[consent]`.
    pub fn from_config(c: &crate::config::ConsentConfig) -> Self {
        let secs = |s: u64| TimeDelta::seconds(i64::try_from(s.max(1)).unwrap_or(300));
        NoticePolicy {
            retry: secs(c.notice_retry_secs),
            max_backoff: secs(c.notice_max_backoff_secs),
            max_attempts: c.notice_max_attempts.max(1),
        }
    }

    /// The wait after the `attempts`-th failure.
    pub fn backoff(&self, attempts: u32) -> TimeDelta {
        let factor = 1i32 << attempts.saturating_sub(1).min(16);
        (self.retry * factor).min(self.max_backoff)
    }
}

impl Consents {
    /// Creates a notice to each recipient that received the citizen's records of the withdrawn record's
    /// dataset (one per recipient, naming every transfer that carried them).
    pub(crate) async fn notify_recipients(&self, record: &ConsentRecord) {
        if let Err(e) = self.try_notify(record).await {
            tracing::error!(record = %record.terms().id, error = %e, "cannot create the withdrawal notices");
        }
    }

    async fn try_notify(&self, record: &ConsentRecord) -> Result<(), String> {
        let t = record.terms();
        let subject = t.subject.to_string();
        let deliveries = self
            .store
            .deliveries_of(&subject)
            .await
            .map_err(|e| e.to_string())?;
        let decl = self
            .declaration(&t.processing.dataset)
            .await
            .map_err(|e| e.to_string())?;
        let subject_field = decl.map(|(_, d)| d.subject_field).unwrap_or_default();
        // recipient -> transfer -> reference
        let mut by_recipient: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for d in deliveries {
            if d.dataset == t.processing.dataset && t.processing.recipients.contains(&d.recipient) {
                by_recipient
                    .entry(d.recipient)
                    .or_default()
                    .insert(d.transfer_id, d.subject_ref);
            }
        }
        let now = self.clock.now();
        for (recipient, transfers) in by_recipient {
            let mut address = None;
            let mut entries = Vec::new();
            for (transfer_id, reference) in transfers {
                let Some(tr) = self
                    .store
                    .transfer(&transfer_id)
                    .await
                    .map_err(|e| e.to_string())?
                else {
                    continue;
                };
                address.get_or_insert_with(|| tr.counterparty_address.clone());
                entries.push(json!({
                    "transfer": tr.consumer_pid.clone().unwrap_or_default(),
                    "salt": transfer_salt(self.key(), &transfer_id),
                    "subjectRef": reference,
                }));
            }
            let Some(address) = address else { continue };
            let id = uuid::Uuid::new_v4().to_string();
            let claims = json!({
                "type": "WithdrawalNotice",
                "id": id,
                "iss": self.identity.participant_id,
                "aud": recipient,
                "iat": now.timestamp(),
                "consent": record.iri(),
                "dataset": t.processing.dataset,
                "purpose": t.processing.purpose,
                "reason": "https://w3id.org/dpv#ConsentWithdrawn",
                "subjectField": subject_field,
                "transfers": entries,
                "jwk": self.identity.key.public_jwk().map_err(|e| e.to_string())?,
            });
            let notice = sign_compact(&self.identity.key, Some(NOTICE_JWS_TYPE), &claims)
                .map_err(|e| e.to_string())?;
            let transfers = entries
                .iter()
                .filter_map(|e| e["transfer"].as_str().map(str::to_owned))
                .collect();
            self.store
                .create_notice(&NoticeRow {
                    id,
                    record_id: t.id.clone(),
                    subject: subject.clone(),
                    recipient,
                    address,
                    dataset: t.processing.dataset.clone(),
                    transfers,
                    notice,
                    state: "SENT".into(),
                    attempts: 0,
                    next_at: now,
                    last_error: None,
                    acknowledgement: None,
                    acknowledged_at: None,
                    deletion: None,
                    deleted_at: None,
                    created_at: now,
                })
                .await
                .map_err(|e| e.to_string())?;
        }
        self.wake.notify_one();
        Ok(())
    }
}

/// The processor's consent chores, about once a second: bring the consent index up to date with other
/// replicas, and deliver due withdrawal notices (in the background; rounds do not overlap).
pub async fn housekeeping(c: Courier, owner: &str) {
    if let Err(e) = c.consents.refresh().await {
        tracing::warn!(error = %e, "cannot refresh the consent index; consent-based records are held back");
    }
    if c.consents.delivering.swap(true, Ordering::AcqRel) {
        return;
    }
    let owner = owner.to_owned();
    tokio::spawn(async move {
        deliver_due(&c, &owner).await;
        c.consents.delivering.store(false, Ordering::Release);
    });
}

/// Leases the due notices and makes one attempt at each.
pub async fn deliver_due(c: &Courier, owner: &str) {
    let now = c.clock.now();
    let timeout = i64::try_from(c.timeout_secs).unwrap_or(30);
    let until = now + TimeDelta::seconds(timeout * 2 + 10);
    let due = match c.store.claim_notices(owner, now, until, 16).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot claim withdrawal notices");
            return;
        }
    };
    for mut n in due {
        let outcome = attempt(c, &n).await;
        let now = c.clock.now();
        match outcome {
            Ok(Step::Acknowledged(ack)) => {
                n.state = "ACKNOWLEDGED".into();
                n.acknowledgement = Some(ack);
                n.acknowledged_at = Some(now);
                n.last_error = None;
                n.attempts = 0;
                n.next_at = now + c.consents.notice_policy.retry;
                tracing::info!(notice = %n.id, recipient = %n.recipient, "withdrawal notice acknowledged");
            }
            Ok(Step::Deleted(confirmation)) => {
                n.state = "DELETED".into();
                n.deletion = Some(confirmation);
                n.deleted_at = Some(now);
                n.last_error = None;
                tracing::info!(notice = %n.id, recipient = %n.recipient, "deletion confirmed");
            }
            Ok(Step::NotYet) => {
                n.attempts += 1;
                n.next_at = now + c.consents.notice_policy.backoff(n.attempts);
            }
            Err(reason) => {
                n.attempts += 1;
                n.last_error = Some(reason.clone());
                if n.attempts >= c.consents.notice_policy.max_attempts {
                    n.state = "FAILED".into();
                    tracing::warn!(notice = %n.id, recipient = %n.recipient, %reason, "withdrawal notice failed for good");
                } else {
                    n.next_at = now + c.consents.notice_policy.backoff(n.attempts);
                    tracing::info!(notice = %n.id, recipient = %n.recipient, %reason, attempts = n.attempts, "withdrawal notice not delivered; retrying");
                }
            }
        }
        if let Err(e) = c.store.update_notice(&n, owner).await {
            tracing::warn!(notice = %n.id, error = %e, "cannot record the notice's delivery");
        }
    }
}

enum Step {
    Acknowledged(String),
    Deleted(String),
    NotYet,
}

/// One attempt: deliver (SENT) or collect the deletion confirmation (ACKNOWLEDGED).
async fn attempt(c: &Courier, n: &NoticeRow) -> Result<Step, String> {
    let auth = c
        .outbound
        .authorization(Some(&n.recipient))
        .map_err(|e| format!("cannot authorize the request: {e}"))?;
    let base = n.address.trim_end_matches('/');
    let req = if n.state == "SENT" {
        c.http
            .post(format!("{base}/consent/notices"))
            .json(&json!({"notice": n.notice}))
    } else {
        c.http.get(format!("{base}/consent/notices/{}", n.id))
    };
    let req = match &auth {
        Some(a) => req.header(http::header::AUTHORIZATION, a.expose()),
        None => req,
    };
    let res = req.send().await.map_err(|e| {
        format!(
            "the recipient cannot be reached ({})",
            crate::outbound::describe_reqwest(&e)
        )
    })?;
    let status = res.status();
    if !status.is_success() {
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let reason = body
            .get("detail")
            .or_else(|| body.get("reason"))
            .map(|r| r.to_string())
            .unwrap_or_default();
        return Err(format!("the recipient answered {status} {reason}")
            .trim()
            .to_owned());
    }
    let body: Value = res
        .json()
        .await
        .map_err(|_| "the recipient's answer is not JSON".to_owned())?;
    if n.state == "SENT" {
        let ack = body["acknowledgement"]
            .as_str()
            .ok_or("the answer has no acknowledgement")?;
        check_answer(c, n, ack, "WithdrawalAcknowledgement").await?;
        return Ok(Step::Acknowledged(ack.to_owned()));
    }
    match body["confirmation"].as_str() {
        Some(conf) => {
            check_answer(c, n, conf, "DeletionConfirmation").await?;
            Ok(Step::Deleted(conf.to_owned()))
        }
        None => Ok(Step::NotYet),
    }
}

/// Checks a signed answer: of the expected type, about this notice, by the recipient, with a key of its DID.
async fn check_answer(c: &Courier, n: &NoticeRow, jws: &str, kind: &str) -> Result<(), String> {
    let claims = verify_by_did(c, &n.recipient, jws).await?;
    if claims["type"] != kind || claims["notice"] != n.id.as_str() {
        return Err(format!(
            "the recipient's answer is not a {kind} of this notice"
        ));
    }
    Ok(())
}

/// Verifies a compact JWS by `did`: it holds under the key it names (`jwk` claim), `iss` is `did`, and with
/// DCP that key is an assertion key of `did`'s DID document (with static tokens the authenticated channel
/// vouches for the key). Returns the claims.
pub async fn verify_by_did(c: &Courier, did: &str, jws: &str) -> Result<Value, String> {
    let decoded =
        decode_compact(jws).map_err(|_| "the signature is not a compact JWS".to_owned())?;
    if decoded.payload["iss"] != did {
        return Err("the signed message is not issued by the participant that sent it".into());
    }
    let jwk = decoded.payload["jwk"].clone();
    caap_identity::jose::verify_with_jwk(&decoded, &jwk)
        .map_err(|e| format!("the signature does not hold: {e}"))?;
    if c.dcp {
        c.trust.check_signer(did, &jwk).await?;
    }
    Ok(decoded.payload)
}

/// Signs `claims` with the participant key, naming its public key (`jwk`).
fn sign_claims(c: &Courier, mut claims: Value) -> Result<String, String> {
    claims["jwk"] = c.identity.key.public_jwk().map_err(|e| e.to_string())?;
    sign_compact(&c.identity.key, Some(NOTICE_JWS_TYPE), &claims).map_err(|e| e.to_string())
}

/// A notice as the recipient reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NoticeClaims {
    id: String,
    iss: String,
    aud: String,
    #[serde(default)]
    subject_field: String,
    #[serde(default)]
    transfers: Vec<NoticeTransfer>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NoticeTransfer {
    transfer: String,
    salt: String,
    subject_ref: String,
}

/// Why a received notice is refused (a 400 to the sender).
#[derive(Debug, thiserror::Error)]
pub enum NoticeRefused {
    /// Not a valid notice for us from this caller.
    #[error("{0}")]
    Invalid(String),
    /// Our fault.
    #[error("{0}")]
    Internal(String),
}

/// Recipient side: takes a notice from the DSP-authenticated `caller`, answers a signed acknowledgement,
/// and deletes the citizen's records in the background (the confirmation is then collected by the sender).
pub async fn receive(c: &Courier, caller: &str, notice: &str) -> Result<String, NoticeRefused> {
    let claims_value = verify_by_did(c, caller, notice)
        .await
        .map_err(NoticeRefused::Invalid)?;
    let claims: NoticeClaims = serde_json::from_value(claims_value.clone())
        .map_err(|e| NoticeRefused::Invalid(format!("not a withdrawal notice: {e}")))?;
    if claims.iss != caller || claims.aud != c.identity.participant_id {
        return Err(NoticeRefused::Invalid(
            "the notice is not from the caller to this connector".into(),
        ));
    }
    let now = c.clock.now();
    let row = ReceivedNotice {
        id: claims.id.clone(),
        provider: caller.to_owned(),
        body: claims_value,
        state: "ACKNOWLEDGED".into(),
        received_at: now,
        deleted_at: None,
        records_deleted: 0,
        confirmation: None,
    };
    let fresh = c
        .store
        .put_received_notice(&row)
        .await
        .map_err(|e| NoticeRefused::Internal(e.to_string()))?;
    let ack = sign(
        c,
        json!({
            "type": "WithdrawalAcknowledgement",
            "notice": claims.id,
            "iss": c.identity.participant_id,
            "aud": caller,
            "at": now.timestamp(),
        }),
    )?;
    if fresh {
        tracing::info!(notice = %claims.id, provider = %caller, "withdrawal notice received");
        let c = c.clone();
        tokio::spawn(async move {
            delete_and_confirm(&c, row, claims).await;
        });
    }
    Ok(ack)
}

fn sign(c: &Courier, claims: Value) -> Result<String, NoticeRefused> {
    sign_claims(c, claims).map_err(NoticeRefused::Internal)
}

/// Deletes the notice's citizen's records from every transfer it names, stops nothing else, and signs a
/// deletion confirmation.
async fn delete_and_confirm(c: &Courier, mut row: ReceivedNotice, claims: NoticeClaims) {
    let mut deleted = 0u64;
    for t in &claims.transfers {
        match delete_in_transfer(c, t, &claims.subject_field).await {
            Ok(n) => deleted += n,
            Err(e) => {
                tracing::warn!(notice = %claims.id, transfer = %t.transfer, error = %e, "cannot delete the withdrawn records");
                return;
            }
        }
    }
    let now: DateTime<Utc> = c.clock.now();
    let confirmation = match sign(
        c,
        json!({
            "type": "DeletionConfirmation",
            "notice": claims.id,
            "iss": c.identity.participant_id,
            "aud": row.provider,
            "at": now.timestamp(),
            "recordsDeleted": deleted,
            "transfers": claims.transfers.iter().map(|t| t.transfer.clone()).collect::<Vec<_>>(),
        }),
    ) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(notice = %claims.id, error = %e, "cannot sign the deletion confirmation");
            return;
        }
    };
    row.state = "DELETED".into();
    row.deleted_at = Some(now);
    row.records_deleted = deleted;
    row.confirmation = Some(confirmation);
    match c.store.confirm_received_notice(&row).await {
        Ok(()) => tracing::info!(notice = %row.id, records = deleted, "withdrawn records deleted"),
        Err(e) => tracing::warn!(notice = %row.id, error = %e, "cannot record the deletion"),
    }
}

/// Removes the citizen's records from the data a transfer brought here; returns how many.
async fn delete_in_transfer(c: &Courier, t: &NoticeTransfer, field: &str) -> Result<u64, String> {
    let path = crate::flows::received_path(&c.data_dir, &t.transfer);
    let data = match tokio::fs::read(&path).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.to_string()),
    };
    let format = sniff(&data, field);
    let mut filter = RecordFilter::new(format, field);
    let mut keep = |s: &str| subject_ref(&t.salt, s) != t.subject_ref;
    let mut out = filter.push(&data, &mut keep).map_err(|e| e.to_string())?;
    out.extend(filter.finish(&mut keep).map_err(|e| e.to_string())?);
    let removed = filter.tally().dropped;
    if removed > 0 {
        let tmp = path.with_extension("rewrite");
        tokio::fs::write(&tmp, &out)
            .await
            .map_err(|e| e.to_string())?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(removed)
}

/// The format of received data, from its first bytes.
fn sniff(data: &[u8], _field: &str) -> Format {
    let text = String::from_utf8_lossy(&data[..data.len().min(4096)]);
    let start = text.trim_start();
    if start.starts_with('[') {
        Format::Json
    } else if start.starts_with('{') {
        if start.trim_end().lines().count() > 1 {
            Format::Ndjson
        } else {
            Format::Json
        }
    } else if start.starts_with("data:") || start.starts_with("id:") || start.starts_with("event:")
    {
        Format::EventStream
    } else {
        Format::Csv
    }
}

/// Recipient side: where a received notice stands, with the signed confirmation once deleted.
pub async fn status(c: &Courier, caller: &str, id: &str) -> Result<Option<Value>, String> {
    let found = c
        .store
        .received_notices(Some((caller, id)))
        .await
        .map_err(|e| e.to_string())?;
    Ok(found.into_iter().next().map(|n| {
        let mut v = json!({"id": n.id, "state": n.state});
        if let Some(conf) = n.confirmation {
            v["confirmation"] = Value::from(conf);
        }
        v
    }))
}
