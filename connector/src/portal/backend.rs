//! What the citizen portal needs from the rest of the connector, as one narrow seam.
//!
//! The portal (this module's parent) renders pages and handles forms; everything it shows or changes about
//! consent goes through [`PortalBackend`], which the consent service implements (`crate::consent`). The
//! portal never sees an identity number after login: it turns the login's subject identifier into a
//! [`SubjectHash`] once ([`PortalBackend::pseudonym`]) and keeps only that in its session.

use std::future::Future;
use std::pin::Pin;

use caap_policy::consent::SubjectHash;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A boxed future, so that the portal can hold the backend as `Arc<dyn PortalBackend>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The lawful basis a dataset about the citizen is shared on (DPV terms, shown in plain language).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LawfulBasis {
    Consent,
    PublicTask,
    Contract,
    LegalObligation,
}

/// One dataset this city holds about the citizen, and everyone it is shared with (transparency: datasets
/// on another basis than consent are listed too, with no grant or withdraw).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedDataset {
    /// The dataset's IRI.
    pub dataset: String,
    pub title: String,
    /// The controller (this city), by name.
    pub controller: String,
    pub lawful_basis: LawfulBasis,
    /// The personal-data categories it holds, as human-readable labels (e.g. "vehicle registration").
    pub categories: Vec<String>,
    pub recipients: Vec<Recipient>,
}

/// One recipient of a dataset: who, why and until when.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    /// The recipient's name ("Lund stad"), or its DID when it has no name.
    pub name: String,
    pub did: String,
    /// The purpose in plain language ("planning residents' parking").
    pub purpose: String,
    /// The purpose's IRI (DPV or the city's own).
    pub purpose_iri: String,
    /// Until when the recipient may keep and use the data (the agreement's retention), if bounded.
    pub until: Option<DateTime<Utc>>,
    /// For consent-based sharing: the id of the consent record that decides it for this citizen.
    pub consent: Option<String>,
}

/// Where one consent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ConsentStanding {
    /// Asked for, not yet answered.
    Requested,
    Given,
    Refused,
    Withdrawn,
    Expired,
}

/// One consent record of the citizen: a (dataset, purpose, recipient) and its current standing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentView {
    /// The consent record's id (what [`PortalBackend::decide`] takes).
    pub id: String,
    pub dataset: String,
    pub dataset_title: String,
    pub recipient: String,
    pub recipient_did: String,
    pub purpose: String,
    pub standing: ConsentStanding,
    /// When the current standing began.
    pub since: DateTime<Utc>,
    /// When a given consent ends by itself, if it does.
    pub until: Option<DateTime<Utc>>,
    /// How long the recipient asks to use the data for, as asked ("P1Y"), for a pending request.
    pub duration: Option<String>,
}

/// What a citizen can do with a consent record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Decision {
    Grant,
    Refuse,
    Withdraw,
}

/// Who did it and from where, recorded with every event the portal causes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionContext {
    /// The portal session's id (an opaque, non-secret handle of the session, not its cookie).
    pub session: String,
    /// "portal" (how the consent was indicated, ISO/IEC TS 27560 "method").
    pub method: String,
}

/// One event in the citizen's consent history.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentEventView {
    pub record: String,
    /// The event's sequence number within its record (what [`PortalBackend::receipt`] takes).
    pub seq: u64,
    pub dataset_title: String,
    pub recipient: String,
    pub purpose: String,
    /// The standing this event put the record in.
    pub standing: ConsentStanding,
    pub at: DateTime<Utc>,
    /// Who indicated it: "the data subject", "the controller", "the system" (expiry), as a key
    /// ("subject" | "controller" | "system").
    pub by: String,
    /// How ("portal", "import", "expiry", …) and, for portal events, the session.
    pub method: String,
    pub session: Option<String>,
}

/// One delivery of the citizen's records to another connector, from the transfer log.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub recipient: String,
    pub recipient_did: String,
    pub dataset_title: String,
    pub purpose: String,
    /// When the records were released (the last release on that day, for a stream).
    pub at: DateTime<Utc>,
    pub records: u64,
}

/// Where one withdrawal notice to one recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum NoticeStanding {
    /// Not yet delivered (first attempt pending, or failing and being retried: see `last_error`).
    Sent,
    Acknowledged,
    DeletionConfirmed,
    /// Given up on after the retries, with the reason.
    Failed,
}

/// One withdrawal notice: the connector telling a recipient that the citizen withdrew.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeView {
    pub id: String,
    pub recipient: String,
    pub recipient_did: String,
    pub dataset_title: String,
    pub standing: NoticeStanding,
    pub created: DateTime<Utc>,
    pub acknowledged: Option<DateTime<Utc>>,
    pub deleted: Option<DateTime<Utc>>,
    pub attempts: u32,
    /// The last delivery error in plain words (never a URL or internal detail), while retrying or failed.
    pub last_error: Option<String>,
}

/// Why a portal action failed, in terms the portal can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalError {
    /// No such record for this citizen (also for another citizen's record: never say which).
    NotFound,
    /// The decision does not apply to the record's standing (e.g. withdrawing a refused consent).
    NotAllowed(String),
    /// Something went wrong inside; logged by the backend with its cause, shown generically.
    Unavailable,
}

/// The consent service as the portal sees it. Every method takes the citizen's pseudonym and returns only
/// that citizen's data.
pub trait PortalBackend: Send + Sync {
    /// The pseudonym of a login's subject identifier (the keyed hash; the identifier is not kept).
    fn pseudonym(&self, subject_identifier: &str) -> SubjectHash;

    /// The datasets about the citizen and with whom they are shared.
    fn overview<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<SharedDataset>, PortalError>>;

    /// The citizen's consent records (pending requests included, with standing `Requested`).
    fn consents<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<ConsentView>, PortalError>>;

    /// Grant, refuse or withdraw one of the citizen's records; answers the event it recorded.
    fn decide<'a>(
        &'a self,
        subject: &'a SubjectHash,
        record: &'a str,
        decision: Decision,
        context: ActionContext,
    ) -> BoxFuture<'a, Result<ConsentEventView, PortalError>>;

    /// Every consent event of the citizen, newest first.
    fn history<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<ConsentEventView>, PortalError>>;

    /// The signed receipt (`dpv:ConsentReceipt`, JSON-LD) of one event of one of the citizen's records.
    fn receipt<'a>(
        &'a self,
        subject: &'a SubjectHash,
        record: &'a str,
        seq: u64,
    ) -> BoxFuture<'a, Result<serde_json::Value, PortalError>>;

    /// Who received the citizen's records, newest first.
    fn deliveries<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<DeliveryView>, PortalError>>;

    /// The withdrawal notices sent on the citizen's behalf, newest first.
    fn notices<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<NoticeView>, PortalError>>;
}
