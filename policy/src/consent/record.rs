//! Consent records per ISO/IEC TS 27560, in DPV terms: the terms (header and processing), fixed for the
//! life of a record, and an append-only history of status events, each a signed, hash-chained
//! [`Revision`].

use caap_catalog::{IsoDuration, PersonalData};
use chrono::{DateTime, Months, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::chain::{Revision, RevisionSigner, revision_payload, sha256_hex};
use super::state::{ConsentState, ConsentStatus, IllegalTransition, transition};
use super::subject::SubjectHash;
use super::{ConsentError, GENESIS_HASH, normalize_purpose, undeclared_purpose};
use crate::FieldError;

/// `dct:conformsTo` of a consent record.
pub const RECORD_CONFORMS_TO: &str = "https://w3id.org/dpv/schema/dpv-27560#record";

/// What a consent is about, fixed when the record is created: the ISO/IEC TS 27560 header (identifier,
/// data subject, notice) and processing. A change of terms is a new record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentTerms {
    /// The record's identifier (`dct:identifier`), e.g. a UUID; letters, digits and `._~:@+-`.
    pub id: String,
    /// The data subject, pseudonymous (`dpv:hasDataSubject`).
    pub subject: SubjectHash,
    /// The notice the data subject was shown (`dpv:hasNotice`).
    pub notice: Notice,
    /// The processing consented to (`dpv:hasProcess`).
    pub processing: Processing,
}

/// The consent notice (`dpv:ConsentNotice`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notice {
    /// The notice's IRI (`@id`), where its text can be read.
    pub id: String,
    /// The notice's date (`dct:date`).
    pub date: NaiveDate,
    /// The notice's language (`dct:language`), e.g. `sv` or `en`.
    pub language: String,
}

/// The processing a consent covers (`dpv:Process`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Processing {
    /// The dataset (asset id) whose records the consent releases.
    pub dataset: String,
    /// The purpose (`dpv:hasPurpose`), a DPV purpose, written `dpv:X`.
    pub purpose: String,
    /// The personal-data categories (`dpv:hasPersonalData`), e.g. `pd:Location`.
    pub personal_data: Vec<String>,
    /// The data controller (`dpv:hasDataController`): the city, by its participant id.
    pub controller: String,
    /// The recipients (`dpv:hasRecipient`), by participant id.
    pub recipients: Vec<String>,
    /// Where the data is stored (`dpv:StorageLocation`), e.g. `loc:SE`.
    pub storage_locations: Vec<String>,
    /// How long recipients may keep it (`dpv:StorageDuration`), an ISO 8601 duration.
    pub retention: String,
    /// The jurisdiction (`dpv:hasJurisdiction`), e.g. `loc:SE`.
    pub jurisdiction: String,
    /// Where the consent is withdrawn (`dpv:WithdrawConsent` `dpv:isExercisedAt`): the portal's URL.
    pub withdrawal_method: String,
}

impl Processing {
    /// The processing of `dataset`'s records for `purpose` by `recipients`, from the dataset's personal-data
    /// declaration. The purpose must be one the declaration allows (or narrower); the declaration must be
    /// consent-based and state its retention and jurisdiction.
    pub fn for_dataset(
        dataset: &str,
        declaration: &PersonalData,
        purpose: &str,
        controller: &str,
        recipients: Vec<String>,
        withdrawal_method: &str,
    ) -> Result<Self, ConsentError> {
        let mut errors = Vec::new();
        if !declaration.is_consent_based() {
            errors.push(FieldError::new(
                "/personalData/lawfulBasis",
                format!(
                    "the dataset is shared on the basis {}, not consent: citizens see it but do not grant it",
                    declaration.lawful_basis
                ),
            ));
        }
        errors.extend(undeclared_purpose(declaration, purpose, "/purpose"));
        let missing = |field: &str| {
            FieldError::new(
                format!("/personalData/{field}"),
                "a consent record states it; declare it on the dataset",
            )
        };
        let retention = declaration.retention.clone().unwrap_or_else(|| {
            errors.push(missing("retention"));
            String::new()
        });
        let jurisdiction = declaration.jurisdiction.clone().unwrap_or_else(|| {
            errors.push(missing("jurisdiction"));
            String::new()
        });
        if !errors.is_empty() {
            return Err(ConsentError::Invalid(errors));
        }
        Ok(Self {
            dataset: dataset.to_owned(),
            purpose: normalize_purpose(purpose),
            personal_data: declaration.categories.clone(),
            controller: controller.to_owned(),
            recipients,
            storage_locations: declaration.storage_locations.clone(),
            retention,
            jurisdiction,
            withdrawal_method: withdrawal_method.to_owned(),
        })
    }
}

impl ConsentTerms {
    /// Every problem with these terms, each naming its field. Empty means valid.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut check = |pointer: &str, value: &str| {
            if value.trim().is_empty() {
                errors.push(FieldError::new(pointer, "must not be empty"));
            } else if value.len() > 500 || value.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    pointer,
                    "at most 500 bytes, without control characters",
                ));
            }
        };
        let p = &self.processing;
        check("/notice/id", &self.notice.id);
        check("/notice/language", &self.notice.language);
        check("/processing/dataset", &p.dataset);
        check("/processing/purpose", &p.purpose);
        check("/processing/controller", &p.controller);
        check("/processing/jurisdiction", &p.jurisdiction);
        check("/processing/withdrawalMethod", &p.withdrawal_method);
        for (field, list) in [
            ("personalData", &p.personal_data),
            ("recipients", &p.recipients),
            ("storageLocations", &p.storage_locations),
        ] {
            for (i, v) in list.iter().enumerate() {
                check(&format!("/processing/{field}/{i}"), v);
            }
        }
        let mut ids = Vec::new();
        caap_catalog::asset::check_id("/id", &self.id, &mut ids);
        errors.extend(
            ids.into_iter()
                .map(|e| FieldError::new(e.pointer, e.message)),
        );
        if p.recipients.is_empty() {
            errors.push(FieldError::new(
                "/processing/recipients",
                "name at least one recipient",
            ));
        }
        if p.personal_data.is_empty() {
            errors.push(FieldError::new(
                "/processing/personalData",
                "name at least one personal-data category",
            ));
        }
        if IsoDuration::parse(&p.retention).is_none_or(|d| d.is_zero()) {
            errors.push(FieldError::new(
                "/processing/retention",
                "an ISO 8601 duration longer than zero, e.g. P6M",
            ));
        }
        errors
    }

    /// The lowercase hex SHA-256 of the terms' canonical JSON; every revision carries it.
    pub fn hash(&self) -> String {
        sha256_hex(&caap_canonical::canonical_json(
            &serde_json::to_value(self).unwrap_or_default(),
        ))
    }
}

/// Who indicated a status (`dpv:isIndicatedBy`): the data subject, or a party by its participant id (the
/// recipient that asked, the controller's connector that recorded an expiry).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Indicator {
    /// `dpv:DataSubject`: the citizen, e.g. through the portal.
    DataSubject,
    /// A party, by participant id.
    Party(String),
}

const DATA_SUBJECT: &str = "dpv:DataSubject";

impl Indicator {
    /// `dpv:DataSubject` or the party's id.
    pub fn as_str(&self) -> &str {
        match self {
            Indicator::DataSubject => DATA_SUBJECT,
            Indicator::Party(id) => id,
        }
    }
}

impl Serialize for Indicator {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Indicator {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(if text == DATA_SUBJECT {
            Indicator::DataSubject
        } else {
            Indicator::Party(text)
        })
    }
}

/// One status event: what, who indicated it, when and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentEvent {
    /// The status (`@type`).
    pub status: ConsentStatus,
    /// Who indicated it (`dpv:isIndicatedBy`).
    pub indicated_by: Indicator,
    /// When (`dpv:isIndicatedAtTime`), a parameter: this crate never reads the clock.
    pub at: DateTime<Utc>,
    /// How (`dpv:hasIndicationMethod`), e.g. `caap portal after e-ID login`.
    pub method: String,
    /// For a given or renewed consent: how long it holds from `at`, an ISO 8601 duration
    /// (`dpv:hasDuration`); without it, until withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

impl ConsentEvent {
    /// An event without a duration.
    pub fn new(
        status: ConsentStatus,
        indicated_by: Indicator,
        at: DateTime<Utc>,
        method: impl Into<String>,
    ) -> Self {
        Self {
            status,
            indicated_by,
            at,
            method: method.into(),
            duration: None,
        }
    }

    /// Sets how long a given or renewed consent holds (builder style).
    pub fn valid_for(mut self, duration: impl Into<String>) -> Self {
        self.duration = Some(duration.into());
        self
    }

    /// When a given or renewed consent stops holding (`None`: until withdrawn, or not a grant).
    pub fn valid_until(&self) -> Option<DateTime<Utc>> {
        add_duration(self.at, &IsoDuration::parse(self.duration.as_deref()?)?)
    }
}

/// `at` plus `d`, calendar components first (`P1M` after 31 January is the end of February); `None` when
/// out of range.
pub(crate) fn add_duration(at: DateTime<Utc>, d: &IsoDuration) -> Option<DateTime<Utc>> {
    let months = u64::from(d.years) * 12 + u64::from(d.months);
    let at = at.checked_add_months(Months::new(u32::try_from(months).ok()?))?;
    let seconds = (i64::from(d.weeks) * 7 + i64::from(d.days)) * 86_400
        + i64::from(d.hours) * 3_600
        + i64::from(d.minutes) * 60
        + i64::from(d.seconds);
    at.checked_add_signed(TimeDelta::try_seconds(seconds)?)
}

/// A consent record: its terms and its revisions (one per event), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentRecord {
    terms: ConsentTerms,
    revisions: Vec<Revision>,
}

/// Whether a record releases data at a moment, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Standing {
    /// Given and valid: records flow.
    Active,
    /// No consent at all for this subject, dataset, purpose and recipient.
    NoConsent,
    /// Requested, not answered.
    Requested,
    /// Refused.
    Refused,
    /// Withdrawn.
    Withdrawn,
    /// Expired (by an event, or its validity ran out).
    Expired,
    /// Given with a time after the moment asked about.
    NotYetGiven,
}

/// What decides a record's [`Standing`] at any moment: its state and, when given, from when and until when
/// (`None`: until withdrawn). This is what the consent index keeps per subject, dataset, purpose and recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentSummary {
    /// The state after the history.
    pub state: ConsentState,
    /// For a given consent: when the current grant began and when it ends.
    pub window: Option<(DateTime<Utc>, Option<DateTime<Utc>>)>,
}

impl ConsentSummary {
    /// Whether data is released at `now`, and if not, why.
    pub fn standing(&self, now: DateTime<Utc>) -> Standing {
        match (self.state, self.window) {
            (ConsentState::None, _) => Standing::NoConsent,
            (ConsentState::Requested, _) => Standing::Requested,
            (ConsentState::Refused, _) => Standing::Refused,
            (ConsentState::Withdrawn, _) => Standing::Withdrawn,
            (ConsentState::Expired, _) => Standing::Expired,
            (ConsentState::Given, None) => Standing::NoConsent,
            (ConsentState::Given, Some((from, _))) if now < from => Standing::NotYetGiven,
            (ConsentState::Given, Some((_, Some(until)))) if now >= until => Standing::Expired,
            (ConsentState::Given, Some(_)) => Standing::Active,
        }
    }
}

impl ConsentRecord {
    /// A new record with no events yet; the terms are validated.
    pub fn new(terms: ConsentTerms) -> Result<Self, ConsentError> {
        let errors = terms.validate();
        if !errors.is_empty() {
            return Err(ConsentError::Invalid(errors));
        }
        Ok(Self {
            terms,
            revisions: Vec::new(),
        })
    }

    /// A record as stored, unchecked: verify it with [`super::verify_chain`] before trusting it.
    pub fn from_parts(terms: ConsentTerms, revisions: Vec<Revision>) -> Self {
        Self { terms, revisions }
    }

    /// The terms.
    pub fn terms(&self) -> &ConsentTerms {
        &self.terms
    }

    /// The revisions, oldest first.
    pub fn revisions(&self) -> &[Revision] {
        &self.revisions
    }

    /// The state after the whole history (the history is legal: [`ConsentRecord::append`] and the chain
    /// verifier see to it; an illegal step is skipped here).
    pub fn state(&self) -> ConsentState {
        self.revisions.iter().fold(ConsentState::None, |s, r| {
            transition(s, r.event.status).unwrap_or(s)
        })
    }

    /// The state after the history and, when given, the window the current grant holds in.
    pub fn summary(&self) -> ConsentSummary {
        let state = self.state();
        let window = (state == ConsentState::Given)
            .then(|| {
                self.revisions
                    .iter()
                    .rev()
                    .map(|r| &r.event)
                    .find(|e| matches!(e.status, ConsentStatus::Given | ConsentStatus::Renewed))
            })
            .flatten()
            .map(|g| (g.at, g.valid_until()));
        ConsentSummary { state, window }
    }

    /// Whether the record releases data at `now`, and if not, why.
    pub fn standing(&self, now: DateTime<Utc>) -> Standing {
        self.summary().standing(now)
    }

    /// Appends `event` as a new revision signed by `signer`, after checking that the state allows it, that
    /// the right party indicates it, that it is not older than the last event and that its duration (if
    /// any) reads. Nothing changes on an error.
    pub fn append(
        &mut self,
        event: ConsentEvent,
        signer: &dyn RevisionSigner,
    ) -> Result<&Revision, ConsentError> {
        check_event(
            self.state(),
            self.revisions.last().map(|r| &r.event),
            &event,
        )?;
        let seq = self.revisions.len() as u64;
        let prev_hash = self
            .revisions
            .last()
            .map_or_else(|| GENESIS_HASH.to_owned(), |r| r.hash.clone());
        let payload = revision_payload(&self.terms.id, seq, &prev_hash, &self.terms.hash(), &event);
        let hash = sha256_hex(&payload);
        let jws = signer
            .sign(payload.as_bytes())
            .map_err(ConsentError::signing)?;
        let at = self.revisions.len();
        self.revisions.push(Revision {
            seq,
            prev_hash,
            event,
            hash,
            jws,
        });
        Ok(&self.revisions[at])
    }
}

/// Checks `event` against the state and the previous event (the rules of [`ConsentRecord::append`]).
pub(crate) fn check_event(
    state: ConsentState,
    previous: Option<&ConsentEvent>,
    event: &ConsentEvent,
) -> Result<ConsentState, ConsentError> {
    let next = transition(state, event.status).map_err(ConsentError::from)?;
    let by_subject = event.indicated_by == Indicator::DataSubject;
    if event.status.is_the_subjects() != by_subject {
        return Err(ConsentError::WrongIndicator {
            status: event.status,
            indicated_by: event.indicated_by.as_str().to_owned(),
        });
    }
    if let Some(prev) = previous
        && event.at < prev.at
    {
        return Err(ConsentError::OutOfOrder {
            at: event.at,
            previous: prev.at,
        });
    }
    let method = event.method.trim();
    if method.is_empty() || method.len() > 200 || method.chars().any(char::is_control) {
        return Err(ConsentError::Invalid(vec![FieldError::new(
            "/method",
            "say how the status was indicated (1 to 200 bytes, no control characters)",
        )]));
    }
    if let Some(d) = &event.duration {
        let grant = matches!(event.status, ConsentStatus::Given | ConsentStatus::Renewed);
        if !grant
            || IsoDuration::parse(d).is_none_or(|d| d.is_zero())
            || event.valid_until().is_none()
        {
            return Err(ConsentError::Invalid(vec![FieldError::new(
                "/duration",
                "only a given or renewed consent has a duration, an ISO 8601 duration longer than zero",
            )]));
        }
    }
    Ok(next)
}

impl From<IllegalTransition> for ConsentError {
    fn from(e: IllegalTransition) -> Self {
        ConsentError::IllegalTransition(e)
    }
}
