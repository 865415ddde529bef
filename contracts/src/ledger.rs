//! The transaction ledger (OASC MIM3): an append-only, hash-chained log of what a connector offered, agreed
//! and did: offers, negotiation and transfer state changes, signed agreements and policy decisions (later:
//! consent events).
//!
//! Every entry carries the hash of the entry before it ([`GENESIS_HASH`] for the first) and its own hash,
//! the lowercase hex SHA-256 of the [canonical JSON](crate::canonical::canonical_json) of
//! `{"at","kind","payload","prevHash","seq","subject"}` (see [`entry_hash`]). Changing, removing, inserting
//! or reordering a stored entry therefore breaks the chain at that entry, and [`ChainVerifier`] names it.
//!
//! Everything here is pure: the connector supplies the time ([`NewEntry::at`]), stores what [`append`]
//! returns, and streams stored entries, in `seq` order, through a [`ChainVerifier`].
//!
//! Timestamps are kept to the microsecond ([`append`] truncates), the precision PostgreSQL's `timestamptz`
//! keeps, so an entry read back from the database hashes as it did when it was written.

use std::fmt;
use std::str::FromStr;

use caap_identity::ParticipantKey;
use chrono::{DateTime, SecondsFormat, SubsecRound as _, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::agreement::{
    AgreementSignatureError, sign_agreement, signer_public_jwk, verify_agreement,
};
use crate::canonical::{write_string, write_value};

/// The `prevHash` of the first entry: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a ledger entry records. Serialized in kebab-case (`"agreement-signed"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// An offer was published, changed or withdrawn (subject: the offer id).
    OfferPublished,
    /// A contract negotiation changed state (subject: this connector's process id).
    NegotiationState,
    /// An agreement was signed (provider) or received with a valid signature (consumer); the payload is an
    /// [`AgreementRecord`] (subject: the agreement id).
    AgreementSigned,
    /// A transfer process changed state (subject: this connector's process id).
    TransferState,
    /// A policy decision was taken (subject: what was decided on, e.g. the negotiation).
    PolicyDecision,
    /// A citizen's consent was given or withdrawn (MIM4; not written yet).
    ConsentEvent,
}

impl EntryKind {
    /// Every kind, in declaration order.
    pub const fn all() -> [EntryKind; 6] {
        use EntryKind::*;
        [
            OfferPublished,
            NegotiationState,
            AgreementSigned,
            TransferState,
            PolicyDecision,
            ConsentEvent,
        ]
    }

    /// The serialized name, e.g. `"agreement-signed"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::OfferPublished => "offer-published",
            EntryKind::NegotiationState => "negotiation-state",
            EntryKind::AgreementSigned => "agreement-signed",
            EntryKind::TransferState => "transfer-state",
            EntryKind::PolicyDecision => "policy-decision",
            EntryKind::ConsentEvent => "consent-event",
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`EntryKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ledger entry kind `{0}`")]
pub struct UnknownEntryKind(pub String);

impl FromStr for EntryKind {
    type Err = UnknownEntryKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntryKind::all()
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownEntryKind(s.to_owned()))
    }
}

/// An entry to append: what happened, when, and to what.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    /// When it happened (from the connector's clock).
    pub at: DateTime<Utc>,
    /// What kind of event it is.
    pub kind: EntryKind,
    /// What it is about: a negotiation or transfer process id, an offer id, an agreement id.
    pub subject: String,
    /// The details; for [`EntryKind::AgreementSigned`] an [`AgreementRecord`] ([`AgreementRecord::to_payload`]).
    pub payload: Value,
}

impl NewEntry {
    /// An [`EntryKind::AgreementSigned`] entry about `record`, with the agreement's `@id` as subject (empty
    /// when the agreement has none).
    pub fn agreement_signed(at: DateTime<Utc>, record: &AgreementRecord) -> Self {
        NewEntry {
            at,
            kind: EntryKind::AgreementSigned,
            subject: record.agreement_id().unwrap_or_default().to_owned(),
            payload: record.to_payload(),
        }
    }
}

/// One entry of the ledger, as stored and as exported (one JSON line, camelCase members).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// Position in the ledger: 1-based, gap-free.
    pub seq: u64,
    /// When it happened, to the microsecond (RFC 3339, UTC, six fractional digits).
    #[serde(with = "micros")]
    pub at: DateTime<Utc>,
    /// What kind of event it is.
    pub kind: EntryKind,
    /// What it is about.
    pub subject: String,
    /// The details.
    pub payload: Value,
    /// The previous entry's `hash` ([`GENESIS_HASH`] for entry 1).
    pub prev_hash: String,
    /// This entry's hash: [`entry_hash`] of the fields above.
    pub hash: String,
}

impl LedgerEntry {
    /// The hash this entry should carry, recomputed from its fields.
    pub fn expected_hash(&self) -> String {
        entry_hash(
            self.seq,
            self.at,
            self.kind,
            &self.subject,
            &self.payload,
            &self.prev_hash,
        )
    }
}

/// `at` as it is hashed and exported: RFC 3339, UTC (`Z`), exactly six fractional digits.
pub fn format_at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The hash of an entry: lowercase hex SHA-256 of the canonical JSON of
/// `{"at": format_at(at), "kind", "payload", "prevHash", "seq", "subject"}`.
pub fn entry_hash(
    seq: u64,
    at: DateTime<Utc>,
    kind: EntryKind,
    subject: &str,
    payload: &Value,
    prev_hash: &str,
) -> String {
    // The canonical JSON of that object, written directly (the names are ASCII and already sorted).
    let mut text = String::from("{\"at\":");
    write_string(&format_at(at), &mut text);
    text.push_str(",\"kind\":");
    write_string(kind.as_str(), &mut text);
    text.push_str(",\"payload\":");
    write_value(payload, &mut text);
    text.push_str(",\"prevHash\":");
    write_string(prev_hash, &mut text);
    text.push_str(",\"seq\":");
    text.push_str(&seq.to_string());
    text.push_str(",\"subject\":");
    write_string(subject, &mut text);
    text.push('}');
    hex(&Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// The entry that follows `prev` (`None`: the first entry of the ledger), with its `seq`, `prevHash` and
/// `hash`. `at` is truncated to the microsecond.
pub fn append(prev: Option<&LedgerEntry>, new: NewEntry) -> LedgerEntry {
    append_to(prev.map(|p| (p.seq, p.hash.as_str())), new)
}

/// [`append`] after the entry with `seq` and `hash` (`None`: the first entry): all the chain needs of the
/// previous entry, so a store need not read it whole.
pub fn append_to(head: Option<(u64, &str)>, new: NewEntry) -> LedgerEntry {
    let (seq, prev_hash) = match head {
        Some((seq, hash)) => (seq.saturating_add(1), hash.to_owned()),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let at = new.at.trunc_subsecs(6);
    let hash = entry_hash(seq, at, new.kind, &new.subject, &new.payload, &prev_hash);
    LedgerEntry {
        seq,
        at,
        kind: new.kind,
        subject: new.subject,
        payload: new.payload,
        prev_hash,
        hash,
    }
}

/// The payload of an [`EntryKind::AgreementSigned`] entry:
/// `{"agreement": {...}, "jws": "<compact JWS>", "signerJwk": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgreementRecord {
    /// The agreement, exactly as signed (a JSON-LD ODRL `Agreement`).
    pub agreement: Value,
    /// The provider's signature ([`sign_agreement`]).
    pub jws: String,
    /// The provider's public key (JWK) that verifies `jws` ([`signer_public_jwk`]).
    pub signer_jwk: Value,
}

impl AgreementRecord {
    /// Signs `agreement` with `key` and records the signature and the public key.
    pub fn sign(agreement: Value, key: &ParticipantKey) -> Result<Self, AgreementSignatureError> {
        let jws = sign_agreement(&agreement, key)?;
        let signer_jwk = signer_public_jwk(key)?;
        Ok(AgreementRecord {
            agreement,
            jws,
            signer_jwk,
        })
    }

    /// Checks the signature over the agreement ([`verify_agreement`]).
    pub fn verify(&self) -> Result<(), AgreementSignatureError> {
        verify_agreement(&self.jws, &self.agreement, &self.signer_jwk)
    }

    /// The agreement's `@id`, if it has one.
    pub fn agreement_id(&self) -> Option<&str> {
        self.agreement.get("@id").and_then(Value::as_str)
    }

    /// The record as a ledger payload.
    pub fn to_payload(&self) -> Value {
        serde_json::json!({
            "agreement": self.agreement,
            "jws": self.jws,
            "signerJwk": self.signer_jwk,
        })
    }

    /// Reads a ledger payload.
    pub fn from_payload(payload: &Value) -> Result<Self, serde_json::Error> {
        AgreementRecord::deserialize(payload)
    }
}

/// The first bad entry of a ledger: its `seq` and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {seq}: {reason}")]
pub struct LedgerFault {
    /// The entry's `seq` (for a missing entry: the `seq` that was expected).
    pub seq: u64,
    /// What is wrong, in words for the operator.
    pub reason: String,
}

/// What a verified ledger holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSummary {
    /// How many entries were verified.
    pub entries: u64,
    /// How many of them were agreements whose signature verified.
    pub agreements_verified: u64,
    /// The last entry's hash ([`GENESIS_HASH`] for an empty ledger): the head to compare with a copy.
    pub last_hash: String,
}

/// Checks a ledger entry by entry, in `seq` order from entry 1, so it can be fed page by page.
///
/// For each entry: `seq` is the next one (no gap, no repeat), `prevHash` is the previous entry's hash, the
/// stored `hash` is the recomputed one, and for [`EntryKind::AgreementSigned`] the payload is an
/// [`AgreementRecord`] whose signature verifies. The first fault is returned; the verifier does not advance
/// past it, so stop there.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: u64,
    prev_hash: String,
    agreements_verified: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier::new()
    }
}

impl ChainVerifier {
    /// A verifier expecting entry 1.
    pub fn new() -> Self {
        ChainVerifier {
            next_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            agreements_verified: 0,
        }
    }

    /// Checks the next entry.
    pub fn push(&mut self, entry: &LedgerEntry) -> Result<(), LedgerFault> {
        let expected = self.next_seq;
        if entry.seq != expected {
            let reason = if entry.seq > expected {
                format!(
                    "missing — the ledger goes on with entry {} (entries were removed, or are out of order)",
                    entry.seq
                )
            } else {
                format!(
                    "out of order: entry {} comes where entry {expected} should (an entry was moved, duplicated or renumbered)",
                    entry.seq
                )
            };
            return Err(LedgerFault {
                seq: expected,
                reason,
            });
        }
        let fault = |reason: String| LedgerFault {
            seq: entry.seq,
            reason,
        };
        if entry.prev_hash != self.prev_hash {
            return Err(fault(if expected == 1 {
                "the first entry does not start from the genesis hash — the beginning of the ledger was changed".into()
            } else {
                format!(
                    "prevHash does not match the hash of entry {0} — entry {0} was rewritten, or an entry was removed, inserted or renumbered",
                    expected - 1
                )
            }));
        }
        if entry.hash != entry.expected_hash() {
            return Err(fault(
                "hash mismatch — the row was changed after it was written".into(),
            ));
        }
        if entry.kind == EntryKind::AgreementSigned {
            let record = AgreementRecord::from_payload(&entry.payload).map_err(|e| {
                fault(format!(
                    "the payload of an agreement-signed entry is not an agreement record: {e}"
                ))
            })?;
            record
                .verify()
                .map_err(|e| fault(format!("agreement signature: {e}")))?;
            self.agreements_verified += 1;
        }
        self.next_seq = expected.saturating_add(1);
        self.prev_hash.clone_from(&entry.hash);
        Ok(())
    }

    /// The summary of what was verified.
    pub fn finish(self) -> LedgerSummary {
        LedgerSummary {
            entries: self.next_seq - 1,
            agreements_verified: self.agreements_verified,
            last_hash: self.prev_hash,
        }
    }
}

/// Verifies a whole ledger held in memory (see [`ChainVerifier`]).
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a LedgerEntry>,
) -> Result<LedgerSummary, LedgerFault> {
    let mut verifier = ChainVerifier::new();
    for entry in entries {
        verifier.push(entry)?;
    }
    Ok(verifier.finish())
}

/// `DateTime<Utc>` as RFC 3339 with six fractional digits; any RFC 3339 time is read.
mod micros {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        at: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_at(*at))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
