//! The revision chain of a consent record: each event is one revision whose canonical JSON (RFC 8785 form,
//! `caap-canonical`) is hashed with SHA-256, names its predecessor's hash and the hash of the record's terms,
//! and is signed by the connector (a compact JWS through [`RevisionSigner`]). [`verify_chain`] names the first
//! event that was altered, dropped or reordered.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::record::{ConsentEvent, ConsentTerms, check_event};
use super::state::ConsentState;
use super::{ConsentError, GENESIS_HASH};

/// The `type` member of every revision payload, so a revision signature cannot pass for another document's.
pub const REVISION_TYPE: &str = "caap-consent-revision";

/// One revision of a consent record: an event, its place in the chain, its hash and the connector's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revision {
    /// Position in the history, from 0.
    pub seq: u64,
    /// The previous revision's hash ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// The event.
    pub event: ConsentEvent,
    /// Lowercase hex SHA-256 of the revision's canonical payload.
    pub hash: String,
    /// The connector's compact JWS over that payload.
    pub jws: String,
}

/// The latest revision of a record as someone outside the chain remembers it (a receipt the citizen holds,
/// the store's row count): lets [`verify_chain`] notice events dropped from the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    /// The latest revision's `seq`.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// A signature could not be made or does not hold; the text says why (never key material).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignatureError(pub String);

/// Signs revision payloads and receipts. The connector implements it with its participant key
/// (caap-identity's JWS); the result is a compact JWS over exactly `payload`.
pub trait RevisionSigner {
    /// A compact JWS (attached payload) over `payload`.
    fn sign(&self, payload: &[u8]) -> Result<String, SignatureError>;
}

/// Checks signatures made by a [`RevisionSigner`].
pub trait RevisionVerifier {
    /// `Ok` only if `jws` is a valid signature by a key this verifier trusts, over exactly `payload`.
    fn verify(&self, jws: &str, payload: &[u8]) -> Result<(), SignatureError>;
}

/// The canonical payload of a revision: what is hashed and signed.
pub(crate) fn revision_payload(
    record_id: &str,
    seq: u64,
    prev_hash: &str,
    terms_hash: &str,
    event: &ConsentEvent,
) -> String {
    let value = json!({
        "type": REVISION_TYPE,
        "record": record_id,
        "seq": seq,
        "prev": prev_hash,
        "terms": terms_hash,
        "event": serde_json::to_value(event).unwrap_or(Value::Null),
    });
    caap_canonical::canonical_json(&value)
}

/// Lowercase hex SHA-256 of `text`.
pub(crate) fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a verified chain holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    /// How many events.
    pub events: u64,
    /// The latest revision, if any.
    pub head: Option<Head>,
    /// The state after the history.
    pub state: ConsentState,
}

/// What is wrong with a chain, at the first event found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ChainFaultKind {
    /// The event (or the record's terms) differs from what was hashed and signed.
    Altered,
    /// The event is missing.
    Dropped,
    /// The event is not where it was appended.
    Reordered,
    /// The event is intact but does not follow its predecessor (it belongs to another history).
    BrokenLink,
    /// The history takes a step the consent state machine does not allow.
    IllegalHistory,
}

/// The first fault of a chain: which event and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("consent record {record}: event {seq} is {kind:?}: {detail}")]
pub struct ChainFault {
    /// The record.
    pub record: String,
    /// The event's position in the history.
    pub seq: u64,
    /// What is wrong.
    pub kind: ChainFaultKind,
    /// In words.
    pub detail: String,
}

/// Verifies a record's whole history: every revision in place, its hash over its content and the terms, its
/// link to the one before, its signature, and a legal history. `expected_head` (the latest revision as a receipt
/// or the store remembers it) also catches events dropped from the end.
pub fn verify_chain(
    terms: &ConsentTerms,
    revisions: &[Revision],
    verifier: &dyn RevisionVerifier,
    expected_head: Option<&Head>,
) -> Result<ChainSummary, ChainFault> {
    let fault = |seq: u64, kind: ChainFaultKind, detail: String| ChainFault {
        record: terms.id.clone(),
        seq,
        kind,
        detail,
    };
    let terms_hash = terms.hash();
    let mut state = ConsentState::None;
    let mut prev: Option<&Revision> = None;
    for (i, r) in revisions.iter().enumerate() {
        let at = i as u64;
        if r.seq != at {
            let later = revisions[i..].iter().any(|x| x.seq == at);
            return Err(if r.seq > at && !later {
                fault(
                    at,
                    ChainFaultKind::Dropped,
                    format!("the next event stored is {}", r.seq),
                )
            } else {
                fault(
                    at,
                    ChainFaultKind::Reordered,
                    format!("position {at} holds event {}", r.seq),
                )
            });
        }
        let payload = revision_payload(&terms.id, r.seq, &r.prev_hash, &terms_hash, &r.event);
        if sha256_hex(&payload) != r.hash {
            return Err(fault(
                at,
                ChainFaultKind::Altered,
                "its content or the record's terms differ from what was hashed".into(),
            ));
        }
        let expected_prev = prev.map_or(GENESIS_HASH, |p| p.hash.as_str());
        if r.prev_hash != expected_prev {
            return Err(fault(
                at,
                ChainFaultKind::BrokenLink,
                "it names another predecessor than the event before it".into(),
            ));
        }
        if let Err(e) = verifier.verify(&r.jws, payload.as_bytes()) {
            return Err(fault(
                at,
                ChainFaultKind::Altered,
                format!("the connector's signature does not hold: {e}"),
            ));
        }
        state = check_event(state, prev.map(|p| &p.event), &r.event)
            .map_err(|e| fault(at, ChainFaultKind::IllegalHistory, e.to_string()))?;
        prev = Some(r);
    }
    let len = revisions.len() as u64;
    if let Some(head) = expected_head {
        if head.seq >= len {
            return Err(fault(
                len,
                ChainFaultKind::Dropped,
                format!("the history ends before event {}", head.seq),
            ));
        }
        let stored = revisions.iter().find(|r| r.seq == head.seq);
        if stored.is_some_and(|r| r.hash != head.hash) {
            return Err(fault(
                head.seq,
                ChainFaultKind::Altered,
                "its hash differs from the one remembered".into(),
            ));
        }
    }
    Ok(ChainSummary {
        events: len,
        head: prev.map(|r| Head {
            seq: r.seq,
            hash: r.hash.clone(),
        }),
        state,
    })
}

impl ConsentError {
    pub(crate) fn signing(e: SignatureError) -> Self {
        ConsentError::Signing(e.0)
    }
}
