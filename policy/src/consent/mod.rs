//! Citizen consent (OASC MIM4) as an input to decisions: pure types and functions, no IO, no clock.
//!
//! * [`subject`]: citizens are pseudonymous: a [`SubjectKey`] (the connector's secret, redacted) turns a subject
//!   identifier into a [`SubjectHash`] (HMAC-SHA-256); the identifier itself is never kept.
//! * [`record`] and [`state`]: consent records per ISO/IEC TS 27560 in DPV terms: [`ConsentTerms`] (header and
//!   processing) and an append-only history of [`ConsentEvent`]s (requested, given, refused, withdrawn,
//!   expired, renewed: who, when, how), checked by the state machine [`transition`].
//! * [`chain`]: each event is a [`Revision`] hashed with SHA-256 over its canonical JSON (RFC 8785 form, from
//!   `caap-canonical`), chained to its predecessor and signed through [`RevisionSigner`]; [`verify_chain`]
//!   names the first altered, dropped or reordered event.
//! * [`jsonld`]: the record as JSON-LD for a data protection officer and a signed `dpv:ConsentReceipt` per event.
//! * [`index`]: the per-record decision of the data plane: [`ConsentIndex`] answers "active consent for this
//!   subject, dataset, purpose and recipient, now?" in one hash lookup; [`ConsentIndex::filter_for`] takes the
//!   access's [`crate::EvaluationContext`].
//! * [`agreement`]: offers on personal data name a purpose ([`offer_purposes`]); agreements record purpose,
//!   recipient, retention and the ODRL duty to delete on withdrawal ([`DataAgreementTerms`]).

pub mod agreement;
pub mod chain;
pub mod index;
pub mod jsonld;
pub mod record;
pub mod state;
pub mod subject;

#[cfg(test)]
mod tests;

pub use agreement::{
    DELETE_AFTER_RETENTION, DELETE_ON_WITHDRAWAL, DataAgreementTerms, offer_purposes,
};
pub use chain::{
    ChainFault, ChainFaultKind, ChainSummary, Head, Revision, RevisionSigner, RevisionVerifier,
    SignatureError, verify_chain,
};
pub use index::{ConsentFilter, ConsentIndex, Scope};
pub use jsonld::{RECEIPT_CONFORMS_TO, SignedReceipt, consent_context};
pub use record::{
    ConsentEvent, ConsentRecord, ConsentSummary, ConsentTerms, Indicator, Notice, Processing,
    RECORD_CONFORMS_TO, Standing,
};
pub use state::{ConsentState, ConsentStatus, IllegalTransition, transition};
pub use subject::{SubjectHash, SubjectKey};

use chrono::{DateTime, Utc};

use crate::FieldError;
use crate::dpv::dpv_local;

/// The `prevHash` of a record's first revision.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why a consent operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    /// The terms or an event are invalid (bad request); every problem names its field.
    #[error("invalid consent: {}", crate::list(.0))]
    Invalid(Vec<FieldError>),
    /// The record's state does not allow the event (conflict).
    #[error(transparent)]
    IllegalTransition(IllegalTransition),
    /// The event was indicated by the wrong party: only the data subject gives, refuses, withdraws or renews;
    /// only a party requests or records an expiry (bad request).
    #[error("{status} is indicated by {}, not by {indicated_by}", if status.is_the_subjects() { "the data subject" } else { "a party" })]
    WrongIndicator {
        /// The status.
        status: ConsentStatus,
        /// Who was said to indicate it.
        indicated_by: String,
    },
    /// The event is older than the record's last event (bad request).
    #[error("the event at {at} is older than the record's last event at {previous}")]
    OutOfOrder {
        /// The event's time.
        at: DateTime<Utc>,
        /// The last event's time.
        previous: DateTime<Utc>,
    },
    /// The connector's secret for subject pseudonyms is too short (configuration).
    #[error("the subject pseudonym secret has {len} bytes; at least {min} are needed")]
    WeakSubjectKey {
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// Signing the revision failed (internal).
    #[error("signing the consent revision failed: {0}")]
    Signing(String),
}

/// The error at `pointer` when `purpose` is neither one of the dataset's declared purposes nor narrower than
/// one.
pub(crate) fn undeclared_purpose(
    declaration: &caap_catalog::PersonalData,
    purpose: &str,
    pointer: impl Into<String>,
) -> Option<FieldError> {
    let declared = declaration
        .purposes
        .iter()
        .any(|d| crate::dpv::purpose_is_a(purpose, d));
    (!declared).then(|| {
        FieldError::new(
            pointer,
            format!(
                "`{purpose}` is not among the dataset's purposes ({})",
                declaration.purposes.join(", ")
            ),
        )
    })
}

/// A purpose in one spelling: `dpv:X` for any DPV namespace, anything else as it is.
pub fn normalize_purpose(purpose: &str) -> String {
    match dpv_local(purpose) {
        Some(local) => format!("dpv:{local}"),
        None => purpose.to_owned(),
    }
}
