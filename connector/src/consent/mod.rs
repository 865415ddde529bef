//! Citizen consent (OASC MIM4), the connector side of `caap_policy::consent`:
//!
//! * [`Consents`], the consent service: consent records kept in the store as signed revision chains
//!   (each event hashed over its RFC 8785 form, chained and signed with the participant key), an in-memory
//!   [`ConsentIndex`] the data plane asks per record (updated in the same step as an event is stored, and
//!   refreshed every second from the store so that other replicas' events count too), consent requests
//!   for agreements on consent-based data, and the per-citizen views the portal shows.
//! * [`records`]: record-by-record filtering of JSON, NDJSON, event streams and CSV.
//! * [`notices`]: withdrawal notices to every recipient of a withdrawn citizen's records (sent by the
//!   processor with leases and back-off) and, as a recipient, deleting and confirming.
//! * `portal`: the [`crate::portal::backend::PortalBackend`] the citizen portal works through.
//!
//! Citizens are pseudonymous here: only the keyed hash ([`SubjectKey`]) of their identifier is stored.

pub mod notices;
mod portal;
pub mod records;
mod signing;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use caap_catalog::asset::{Asset, PersonalData};
use caap_policy::consent::{
    ConsentEvent, ConsentIndex, ConsentRecord, ConsentStatus, ConsentTerms, DataAgreementTerms,
    Head, Indicator, Notice, Processing, Scope, Standing, SubjectHash, SubjectKey, verify_chain,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::clock::Clock;
use crate::store::consent::Delivery;
use crate::store::{DocKind, Store, StoreError};
use crate::trust::Identity;

pub use signing::{ParticipantSigner, ParticipantVerifier};

/// Why a consent operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsentServiceError {
    /// No such record (for this citizen).
    #[error("no such consent record")]
    NotFound,
    /// The request is not valid; the text says why.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ConsentServiceError> for crate::error::ServiceError {
    fn from(e: ConsentServiceError) -> Self {
        use crate::error::ServiceError;
        match e {
            ConsentServiceError::NotFound => ServiceError::NotFound(e.to_string()),
            ConsentServiceError::Invalid(m) => ServiceError::Invalid(m, vec![]),
            ConsentServiceError::Store(e) => e.into(),
        }
    }
}

impl From<caap_policy::consent::ConsentError> for ConsentServiceError {
    fn from(e: caap_policy::consent::ConsentError) -> Self {
        ConsentServiceError::Invalid(e.to_string())
    }
}

/// The index and when it was last brought up to date with the store.
#[derive(Debug)]
struct IndexState {
    index: ConsentIndex,
    /// The last successful refresh.
    refreshed: DateTime<Utc>,
    /// Changes at or after this moment are read again at the next refresh.
    read_from: DateTime<Utc>,
}

/// How far back a refresh reads again (covers replicas' clocks and commits in flight).
const REFRESH_OVERLAP: TimeDelta = TimeDelta::seconds(10);

/// The consent service.
#[derive(Debug)]
pub struct Consents {
    store: Store,
    clock: Arc<dyn Clock>,
    key: SubjectKey,
    identity: Arc<Identity>,
    index: RwLock<IndexState>,
    withdrawal_url: String,
    stale_after: TimeDelta,
    /// Wakes the processor when a notice is created.
    wake: Arc<tokio::sync::Notify>,
    /// Serialises refreshes.
    refreshing: tokio::sync::Mutex<()>,
    /// Notice delivery settings.
    pub(crate) notice_policy: notices::NoticePolicy,
    /// Keys of external consent operators (MyData import), when enabled.
    pub(crate) mydata_keys: Option<Vec<serde_json::Value>>,
    /// Whether a notice delivery round of this connector is running (rounds do not overlap).
    pub(crate) delivering: std::sync::atomic::AtomicBool,
    /// Told of every withdrawal (the transfers depending on it are ended; see `server`).
    withdrawals: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Withdrawal>>,
}

/// A withdrawal, as the transfers that may depend on it need to hear of it.
#[derive(Debug, Clone)]
pub struct Withdrawal {
    /// The citizen.
    pub subject: SubjectHash,
    /// The scope withdrawn.
    pub dataset: String,
    /// The purpose.
    pub purpose: String,
    /// The recipients.
    pub recipients: Vec<String>,
}

/// A consent record as the city sees it (management API, CLI).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordView {
    /// The record's id.
    pub id: String,
    /// The citizen's pseudonym (hex).
    pub subject: String,
    /// The dataset.
    pub dataset: String,
    /// The purpose.
    pub purpose: String,
    /// The recipients.
    pub recipients: Vec<String>,
    /// Where the consent stands now.
    pub standing: Standing,
    /// Events so far.
    pub events: usize,
    /// The latest event.
    pub updated: Option<DateTime<Utc>>,
}

impl RecordView {
    fn of(r: &ConsentRecord, now: DateTime<Utc>) -> Self {
        let t = r.terms();
        RecordView {
            id: t.id.clone(),
            subject: t.subject.to_string(),
            dataset: t.processing.dataset.clone(),
            purpose: t.processing.purpose.clone(),
            recipients: t.processing.recipients.clone(),
            standing: r.standing(now),
            events: r.revisions().len(),
            updated: r.revisions().last().map(|x| x.event.at),
        }
    }
}

/// The outcome of verifying every consent record.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Records checked.
    pub records: usize,
    /// Events checked.
    pub events: usize,
    /// What is wrong, one line per fault naming the record and the event.
    pub faults: Vec<String>,
}

/// The release decisions of one moment for one scope (see [`Consents::decisions`]). While they are held, the
/// index is not changed: an event stored meanwhile counts from the next batch of records on, so keep them for
/// one batch (a chunk of a stream), not longer.
pub struct Decisions<'a> {
    state: std::sync::RwLockReadGuard<'a, IndexState>,
    /// The scope in the index; `None` when no consent names it or the index is stale.
    scope: Option<Scope>,
    now: DateTime<Utc>,
}

impl std::fmt::Debug for Decisions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decisions")
            .field("scope", &self.scope)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Decisions<'_> {
    /// Whether a record of `subject` is released.
    pub fn releases(&self, subject: &SubjectHash) -> bool {
        self.scope
            .is_some_and(|s| self.state.index.decide(subject, s, self.now) == Standing::Active)
    }

    /// When the decisions are made.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

/// What the data plane needs to filter one transfer's records.
#[derive(Debug, Clone)]
pub struct ReleaseScope {
    /// The dataset.
    pub dataset: String,
    /// The agreed purpose.
    pub purpose: String,
    /// The recipient (the consumer).
    pub recipient: String,
    /// The record field naming the citizen.
    pub subject_field: String,
}

impl Consents {
    /// The consent service over `store`, with the pseudonym key read from (or created at) `key_file`.
    pub async fn open(
        store: Store,
        clock: Arc<dyn Clock>,
        identity: Arc<Identity>,
        config: &crate::config::Config,
        wake: Arc<tokio::sync::Notify>,
    ) -> Result<Consents, String> {
        let key_path = config.data_dir.join(&config.consent.subject_key_file);
        let key = SubjectKey::new(&load_or_create_secret(&key_path)?).map_err(|e| e.to_string())?;
        // Where citizens withdraw: as configured, else the portal (when it runs), else the DSP listener.
        let withdrawal_url = config
            .consent
            .withdrawal_url
            .clone()
            .or_else(|| {
                config.portal.enabled.then(|| {
                    config
                        .portal
                        .public_url
                        .clone()
                        .unwrap_or_else(|| format!("http://{}", config.portal.bind))
                })
            })
            .unwrap_or_else(|| format!("{}/consent", identity.public_url.trim_end_matches('/')));
        let mydata_keys = if config.consent.mydata.enabled {
            let mut keys = Vec::new();
            for f in &config.consent.mydata.trusted_keys {
                let path = config.data_dir.join(f);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    format!(
                        "consent.mydata.trusted_keys: cannot read {}: {e}",
                        path.display()
                    )
                })?;
                keys.push(serde_json::from_str(&text).map_err(|e| {
                    format!(
                        "consent.mydata.trusted_keys: {} is not a JWK: {e}",
                        path.display()
                    )
                })?);
            }
            Some(keys)
        } else {
            None
        };
        let now = clock.now();
        let consents = Consents {
            store,
            clock,
            key,
            identity,
            index: RwLock::new(IndexState {
                index: ConsentIndex::new(),
                refreshed: now,
                read_from: DateTime::<Utc>::MIN_UTC,
            }),
            withdrawal_url,
            stale_after: TimeDelta::seconds(
                i64::try_from(config.consent.stale_after_secs.max(1)).unwrap_or(5),
            ),
            wake,
            refreshing: tokio::sync::Mutex::new(()),
            notice_policy: notices::NoticePolicy::from_config(&config.consent),
            mydata_keys,
            withdrawals: std::sync::OnceLock::new(),
            delivering: std::sync::atomic::AtomicBool::new(false),
        };
        consents.refresh().await.map_err(|e| e.to_string())?;
        Ok(consents)
    }

    /// The pseudonym of a citizen's identifier.
    pub fn pseudonym(&self, subject_identifier: &str) -> SubjectHash {
        self.key.pseudonym(subject_identifier)
    }

    /// The pseudonym key (for deriving per-transfer references).
    pub(crate) fn key(&self) -> &SubjectKey {
        &self.key
    }

    /// Reads the records changed since the last refresh into the index (other replicas' events).
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let _one = self.refreshing.lock().await;
        let now = self.clock.now();
        let from = read_lock(&self.index).read_from;
        let changed = self.store.consents_changed_since(from).await?;
        let mut state = write_lock(&self.index);
        for r in &changed {
            state.index.apply(r);
        }
        state.refreshed = now;
        state.read_from = now - REFRESH_OVERLAP;
        Ok(())
    }

    /// The release decisions for `scope` now: the index read (and held) once for a batch of records, the
    /// time taken and the scope resolved once. Nothing is released when the index is stale.
    pub fn decisions(&self, scope: &ReleaseScope) -> Decisions<'_> {
        let now = self.clock.now();
        let state = read_lock(&self.index);
        let scope = if now - state.refreshed <= self.stale_after {
            state
                .index
                .scope(&scope.dataset, &scope.purpose, &scope.recipient)
        } else {
            None
        };
        Decisions { state, scope, now }
    }

    /// The release decision for one record of `subject` in `scope` now; `false` when the index is stale.
    pub fn releases(&self, scope: &ReleaseScope, subject: &SubjectHash) -> bool {
        self.decisions(scope).releases(subject)
    }

    fn apply(&self, r: &ConsentRecord) {
        write_lock(&self.index).index.apply(r);
    }

    /// The dataset's personal-data declaration, if it holds personal data.
    pub async fn declaration(
        &self,
        dataset: &str,
    ) -> Result<Option<(Asset, PersonalData)>, StoreError> {
        let Some(doc) = self.store.get(DocKind::Asset, dataset).await? else {
            return Ok(None);
        };
        let Ok(asset) = serde_json::from_value::<Asset>(doc.body) else {
            return Ok(None);
        };
        Ok(asset.personal_data.clone().map(|d| (asset, d)))
    }

    /// The scope records of an agreement flow in: `None` when the dataset holds no consent-based personal
    /// data; an error when it does but the agreement does not bind a purpose and recipient (nothing flows).
    pub async fn release_scope(
        &self,
        agreement_id: &str,
        dataset: &str,
    ) -> Result<Option<ReleaseScope>, String> {
        let Some((_, decl)) = self.declaration(dataset).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        if !decl.is_consent_based() {
            return Ok(None);
        }
        let terms = self.agreement_terms(agreement_id, &decl).await?;
        Ok(Some(ReleaseScope {
            dataset: dataset.to_owned(),
            purpose: terms.purpose,
            recipient: terms.recipient,
            subject_field: decl.subject_field.clone(),
        }))
    }

    /// The personal-data terms of an agreement (purpose, recipient, retention).
    pub async fn agreement_terms(
        &self,
        agreement_id: &str,
        decl: &PersonalData,
    ) -> Result<DataAgreementTerms, String> {
        let agreement = self
            .store
            .agreement(agreement_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("agreement {agreement_id} no longer exists"))?;
        let policy = caap_policy::parse_policy(&agreement.body["agreement"])
            .map_err(|e| format!("agreement {agreement_id} is unreadable: {e}"))?;
        DataAgreementTerms::read(&policy, decl).map_err(|errors| {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            format!(
                "the agreement on personal data does not bind its terms: {}",
                text.join("; ")
            )
        })
    }

    /// The consent terms of `subject` for `dataset`'s records used for `purpose` by `recipient`.
    fn terms(
        &self,
        subject: SubjectHash,
        dataset: &str,
        decl: &PersonalData,
        purpose: &str,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> Result<ConsentTerms, ConsentServiceError> {
        let processing = Processing::for_dataset(
            dataset,
            decl,
            purpose,
            &self.identity.participant_id,
            vec![recipient.to_owned()],
            &self.withdrawal_url,
        )?;
        Ok(ConsentTerms {
            id: uuid::Uuid::new_v4().to_string(),
            subject,
            notice: Notice {
                id: format!("{}#notice", self.withdrawal_url),
                date: now.date_naive(),
                language: "sv".into(),
            },
            processing,
        })
    }

    /// Asks `subject` for consent to `dataset`'s records being used for `purpose` by `recipient` (a pending
    /// request the portal shows). An existing record for the same scope is left as it is; returns its id.
    pub async fn request(
        &self,
        subject: SubjectHash,
        dataset: &str,
        purpose: &str,
        recipient: &str,
    ) -> Result<String, ConsentServiceError> {
        let decl = self.personal_declaration(dataset).await?;
        self.request_under(subject, dataset, &decl, purpose, recipient)
            .await
    }

    /// The dataset's personal-data declaration; an error if it holds none.
    async fn personal_declaration(
        &self,
        dataset: &str,
    ) -> Result<PersonalData, ConsentServiceError> {
        let (_, decl) = self.declaration(dataset).await?.ok_or_else(|| {
            ConsentServiceError::Invalid(format!("dataset {dataset} holds no personal data"))
        })?;
        Ok(decl)
    }

    /// [`Consents::request`] with the dataset's declaration already read.
    async fn request_under(
        &self,
        subject: SubjectHash,
        dataset: &str,
        decl: &PersonalData,
        purpose: &str,
        recipient: &str,
    ) -> Result<String, ConsentServiceError> {
        let hex = subject.to_string();
        let purpose = caap_policy::consent::normalize_purpose(purpose);
        if let Some(r) = self
            .store
            .consent_for(&hex, dataset, &purpose, recipient)
            .await?
        {
            return Ok(r.terms().id.clone());
        }
        let now = self.clock.now();
        let terms = self.terms(subject, dataset, decl, &purpose, recipient, now)?;
        let mut record = ConsentRecord::new(terms)?;
        let event = ConsentEvent::new(
            ConsentStatus::Requested,
            Indicator::Party(self.identity.participant_id.clone()),
            now,
            "agreement",
        );
        record.append(event, &self.signer())?;
        match self.store.create_consent(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                // Another replica asked at the same moment: theirs stands.
                if let Some(r) = self
                    .store
                    .consent_for(&hex, dataset, &purpose, recipient)
                    .await?
                {
                    return Ok(r.terms().id.clone());
                }
            }
            Err(e) => return Err(e.into()),
        }
        self.apply(&record);
        Ok(record.terms().id.clone())
    }

    /// Consent requests for every citizen whose records `dataset` holds, after an agreement with `recipient`
    /// for `purpose`: reads the dataset's source once for its subjects. Returns how many were asked.
    pub async fn request_all(
        &self,
        subjects: impl IntoIterator<Item = SubjectHash>,
        dataset: &str,
        purpose: &str,
        recipient: &str,
    ) -> Result<usize, ConsentServiceError> {
        let decl = self.personal_declaration(dataset).await?;
        let mut n = 0;
        for s in subjects {
            self.request_under(s, dataset, &decl, purpose, recipient)
                .await?;
            n += 1;
        }
        Ok(n)
    }

    /// Records the citizen's (or, for `Requested`/`Expired`, the controller's) event on one of `subject`'s
    /// records; a withdrawal also creates a notice to every recipient that received the citizen's records.
    pub async fn record_event(
        &self,
        subject: &SubjectHash,
        record_id: &str,
        status: ConsentStatus,
        method: &str,
        duration: Option<String>,
    ) -> Result<ConsentRecord, ConsentServiceError> {
        for _ in 0..5 {
            let mut record = self
                .store
                .consent(record_id)
                .await?
                .filter(|r| r.terms().subject == *subject)
                .ok_or(ConsentServiceError::NotFound)?;
            let by = if status.is_the_subjects() {
                Indicator::DataSubject
            } else {
                Indicator::Party(self.identity.participant_id.clone())
            };
            let last = record.revisions().last().map(|r| r.event.at);
            let now = self.clock.now().max(last.unwrap_or_default());
            let mut event = ConsentEvent::new(status, by, now, method);
            if let Some(d) = &duration {
                event = event.valid_for(d.clone());
            }
            record.append(event, &self.signer())?;
            match self.store.append_consent(&record).await {
                Ok(()) => {
                    self.apply(&record);
                    if status == ConsentStatus::Withdrawn {
                        self.notify_recipients(&record).await;
                        if let Some(tx) = self.withdrawals.get() {
                            let p = &record.terms().processing;
                            let _ = tx.send(Withdrawal {
                                subject: *subject,
                                dataset: p.dataset.clone(),
                                purpose: p.purpose.clone(),
                                recipients: p.recipients.clone(),
                            });
                        }
                    }
                    return Ok(record);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ConsentServiceError::Invalid(
            "the record kept changing; try again".into(),
        ))
    }

    /// Takes a MyData-style consent record signed by an external consent operator (`consent.mydata`): a
    /// compact JWS whose claims name the citizen (`subject`, hashed at once), `dataset`, `purpose`,
    /// `recipient`, `status` (`given`, `refused` or `withdrawn`), optionally `duration` and `operator`. It must
    /// be signed with one of `consent.mydata.trusted_keys`. Returns the record it changed.
    pub async fn import(&self, jws: &str) -> Result<ConsentRecord, ConsentServiceError> {
        let Some(keys) = &self.mydata_keys else {
            return Err(ConsentServiceError::Invalid(
                "importing consent is off; set consent.mydata.enabled and consent.mydata.trusted_keys".into(),
            ));
        };
        let decoded = caap_identity::jose::decode_compact(jws)
            .map_err(|_| ConsentServiceError::Invalid("the record is not a compact JWS".into()))?;
        if !keys
            .iter()
            .any(|k| caap_identity::jose::verify_with_jwk(&decoded, k).is_ok())
        {
            return Err(ConsentServiceError::Invalid(
                "the record is not signed by a trusted consent operator".into(),
            ));
        }
        let c = &decoded.payload;
        let text = |k: &str| {
            c[k].as_str()
                .filter(|v| !v.trim().is_empty())
                .map(str::to_owned)
                .ok_or_else(|| ConsentServiceError::Invalid(format!("the record names no `{k}`")))
        };
        let (who, dataset, purpose, recipient) = (
            text("subject")?,
            text("dataset")?,
            text("purpose")?,
            text("recipient")?,
        );
        let status = match text("status")?.as_str() {
            "given" => ConsentStatus::Given,
            "refused" => ConsentStatus::Refused,
            "withdrawn" => ConsentStatus::Withdrawn,
            other => {
                return Err(ConsentServiceError::Invalid(format!(
                    "status `{other}` is not one of given, refused, withdrawn"
                )));
            }
        };
        let operator = c["operator"].as_str().unwrap_or("external operator");
        let subject = self.pseudonym(&who);
        let id = self
            .request(subject, &dataset, &purpose, &recipient)
            .await?;
        let duration = c["duration"].as_str().map(str::to_owned);
        self.record_event(
            &subject,
            &id,
            status,
            &format!("mydata:{operator}"),
            duration,
        )
        .await
    }

    /// Where withdrawals are reported (set once, at start).
    pub fn report_withdrawals_to(&self, tx: tokio::sync::mpsc::UnboundedSender<Withdrawal>) {
        let _ = self.withdrawals.set(tx);
    }

    /// Whether `subject`'s records may still flow in the scope of a withdrawal (another record could cover it).
    pub fn still_releases(&self, w: &Withdrawal, recipient: &str, subject: &SubjectHash) -> bool {
        let scope = ReleaseScope {
            dataset: w.dataset.clone(),
            purpose: w.purpose.clone(),
            recipient: recipient.to_owned(),
            subject_field: String::new(),
        };
        self.releases(&scope, subject)
    }

    /// Where citizens withdraw consent.
    pub fn withdrawal_url(&self) -> &str {
        &self.withdrawal_url
    }

    /// The withdrawal notices this connector sent, newest first.
    pub async fn sent_notices(&self) -> Result<Vec<crate::store::consent::NoticeRow>, StoreError> {
        self.store.notices(None).await
    }

    /// The withdrawal notices this connector received as a recipient, newest first.
    pub async fn received_notices(
        &self,
    ) -> Result<Vec<crate::store::consent::ReceivedNotice>, StoreError> {
        self.store.received_notices(None).await
    }

    /// The signer of revisions and receipts: the participant key.
    pub fn signer(&self) -> ParticipantSigner<'_> {
        ParticipantSigner::new(&self.identity.key)
    }

    /// Every record of the city, newest change first (optionally of one dataset).
    pub async fn list(&self, dataset: Option<&str>) -> Result<Vec<RecordView>, StoreError> {
        let now = self.clock.now();
        let records = match dataset {
            Some(d) => self.store.consents_of_dataset(d).await?,
            None => self
                .store
                .consents_with_heads()
                .await?
                .into_iter()
                .map(|(r, _)| r)
                .collect(),
        };
        let mut views: Vec<RecordView> = records.iter().map(|r| RecordView::of(r, now)).collect();
        views.sort_by_key(|v| std::cmp::Reverse(v.updated));
        Ok(views)
    }

    /// One record, as JSON-LD (ISO/IEC TS 27560 in DPV terms), for a data protection officer.
    pub async fn export(&self, id: &str) -> Result<serde_json::Value, ConsentServiceError> {
        let r = self
            .store
            .consent(id)
            .await?
            .ok_or(ConsentServiceError::NotFound)?;
        Ok(r.to_jsonld())
    }

    /// Verifies every record's chain (hashes, links, signatures, a legal history) and that its stored head
    /// matches its last event: an altered, dropped or reordered event is named.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let verifier = ParticipantVerifier::new(&self.identity)?;
        let records = self.store.consents_with_heads().await?;
        let mut report = VerifyReport {
            records: records.len(),
            events: 0,
            faults: Vec::new(),
        };
        for (r, (head_seq, head_hash)) in &records {
            report.events += r.revisions().len();
            let head = u64::try_from(*head_seq).ok().map(|seq| Head {
                seq,
                hash: head_hash.clone(),
            });
            if let Err(fault) = verify_chain(r.terms(), r.revisions(), &verifier, head.as_ref()) {
                report.faults.push(fault.to_string());
            }
        }
        Ok(report)
    }

    /// Deliveries of a citizen's records (the transfer log), newest first.
    pub async fn deliveries(&self, subject: &SubjectHash) -> Result<Vec<Delivery>, StoreError> {
        self.store.deliveries_of(&subject.to_string()).await
    }

    /// Deliveries of the record's dataset to its recipients for the record's citizen (the city's view).
    pub async fn deliveries_of_record(
        &self,
        id: &str,
    ) -> Result<Vec<Delivery>, ConsentServiceError> {
        let r = self
            .store
            .consent(id)
            .await?
            .ok_or(ConsentServiceError::NotFound)?;
        let p = &r.terms().processing;
        Ok(self
            .deliveries(&r.terms().subject)
            .await?
            .into_iter()
            .filter(|d| d.dataset == p.dataset && p.recipients.contains(&d.recipient))
            .collect())
    }

    /// Counts the records of each citizen a transfer released (called as a stream ends, and periodically
    /// for live streams).
    pub async fn record_deliveries(
        &self,
        transfer: &str,
        scope: &ReleaseScope,
        counts: &HashMap<SubjectHash, (u64, String)>,
    ) {
        let deliveries: Vec<(String, String, u64)> = counts
            .iter()
            .filter(|(_, (n, _))| *n > 0)
            .map(|(subject, (n, subject_ref))| (subject.to_string(), subject_ref.clone(), *n))
            .collect();
        if deliveries.is_empty() {
            return;
        }
        let scope = (
            scope.recipient.as_str(),
            scope.dataset.as_str(),
            scope.purpose.as_str(),
        );
        if let Err(e) = self
            .store
            .add_deliveries(transfer, scope, &deliveries, self.clock.now())
            .await
        {
            tracing::warn!(transfer, error = %e, "cannot record the citizens' deliveries");
        }
    }
}

/// A per-transfer matching key: the keyed hash of "transfer:<id>" (revealing it to that transfer's recipient
/// in a withdrawal notice reveals nothing about other transfers or the pseudonym key).
pub fn transfer_salt(key: &SubjectKey, transfer: &str) -> String {
    key.pseudonym(&format!("transfer:{transfer}")).to_string()
}

/// The reference to a citizen within one transfer: HMAC-SHA-256 of the identifier under the transfer's salt
/// (the same keyed hash as pseudonyms, under another key). Empty if the salt is too short to be a key.
pub fn subject_ref(salt: &str, subject_identifier: &str) -> String {
    SubjectKey::new(salt.as_bytes())
        .map(|k| k.pseudonym(subject_identifier).to_string())
        .unwrap_or_default()
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads the pseudonym secret, or creates one (32 random bytes, hex) readable by the owner only.
fn load_or_create_secret(path: &std::path::Path) -> Result<Vec<u8>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().as_bytes().to_vec()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            openssl::rand::rand_bytes(&mut bytes).map_err(|e| e.to_string())?;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            crate::init::write_private(path, &hex)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(hex.into_bytes())
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

impl Consents {
    /// `/.well-known/mim4-configuration`: how this connector takes part in MIM4 (personal data
    /// management): its consent endpoints and what it supports.
    pub fn mim4_configuration(&self) -> serde_json::Value {
        let id = &self.identity;
        serde_json::json!({
            "mim": "MIM4",
            "specification": "https://mims.oascities.org/mims/oasc-mim4-personal-data-management",
            "connector": id.participant_id,
            "name": id.name,
            "dataspaceProtocol": id.dsp_base,
            "consentRecordFormat": caap_policy::consent::RECORD_CONFORMS_TO,
            "consentReceiptFormat": caap_policy::consent::RECEIPT_CONFORMS_TO,
            "withdrawalNotices": format!("{}/consent/notices", id.dsp_base),
            "withdrawalMethod": self.withdrawal_url,
            "enforcement": "per-record, in the data plane (pull, push and live streams)",
            "externalConsentImport": self.mydata_keys.is_some(),
            "pseudonymisation": "HMAC-SHA-256 of the subject identifier under a connector secret",
        })
    }
}
