//! The per-record decision of the data plane: does this record's subject have an active consent for this
//! dataset, purpose and recipient, now? [`ConsentIndex`] keeps one [`ConsentSummary`] per (subject pseudonym,
//! scope) in a hash table keyed by the pseudonym's first bytes (a keyed hash, so uniformly spread and not
//! steerable from outside), and answers in one lookup; a transfer resolves its scope (dataset, purpose,
//! recipient) once and filters every record through a [`ConsentFilter`]. The connector updates the index in the
//! same step as it appends an event, so a withdrawal counts from the next record on.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use chrono::{DateTime, Utc};

use super::normalize_purpose;
use super::record::{ConsentRecord, ConsentSummary, Standing};
use super::subject::{SubjectHash, SubjectKey};
use crate::EvaluationContext;

/// A (dataset, purpose, recipient) the index knows, resolved once per transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope(u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    subject: SubjectHash,
    scope: Scope,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // A keyed hash's bytes are uniform: its first eight, mixed with the scope, are the table hash.
        state.write_u64(
            self.subject.prefix_u64() ^ u64::from(self.scope.0).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
    }
}

/// Passes the one `u64` a [`Key`] writes through unchanged.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `Key`; a plain FNV-1a keeps it a correct hasher anyway.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Every consent's current summary by subject pseudonym, dataset, purpose and recipient.
#[derive(Debug, Default, Clone)]
pub struct ConsentIndex {
    scopes: HashMap<(String, String, String), Scope>,
    entries: HashMap<Key, ConsentSummary, BuildHasherDefault<KeyHasher>>,
}

impl ConsentIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty index with room for `entries` (subject, scope) pairs.
    pub fn with_capacity(entries: usize) -> Self {
        Self {
            scopes: HashMap::new(),
            entries: HashMap::with_capacity_and_hasher(entries, BuildHasherDefault::default()),
        }
    }

    /// How many (subject, scope) pairs it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The scope of `dataset`, `purpose` (any DPV spelling) and `recipient`, if any consent names it.
    pub fn scope(&self, dataset: &str, purpose: &str, recipient: &str) -> Option<Scope> {
        self.scopes
            .get(&(
                dataset.to_owned(),
                normalize_purpose(purpose),
                recipient.to_owned(),
            ))
            .copied()
    }

    fn scope_or_insert(&mut self, dataset: &str, purpose: &str, recipient: &str) -> Scope {
        let next = Scope(u32::try_from(self.scopes.len()).unwrap_or(u32::MAX));
        *self
            .scopes
            .entry((
                dataset.to_owned(),
                normalize_purpose(purpose),
                recipient.to_owned(),
            ))
            .or_insert(next)
    }

    /// Sets the summary for one subject, dataset, purpose and recipient.
    pub fn set(
        &mut self,
        subject: SubjectHash,
        dataset: &str,
        purpose: &str,
        recipient: &str,
        summary: ConsentSummary,
    ) {
        let scope = self.scope_or_insert(dataset, purpose, recipient);
        self.entries.insert(Key { subject, scope }, summary);
    }

    /// Takes `record`'s current summary for each of its recipients. Call it after every event appended; the
    /// latest record applied decides for the keys it covers (keep one record per subject, dataset and
    /// purpose, and let its history carry re-grants).
    pub fn apply(&mut self, record: &ConsentRecord) {
        let summary = record.summary();
        let terms = record.terms();
        let p = &terms.processing;
        for recipient in &p.recipients {
            self.set(terms.subject, &p.dataset, &p.purpose, recipient, summary);
        }
    }

    /// Whether `subject`'s records in `scope` are released at `now`, and if not, why.
    pub fn decide(&self, subject: &SubjectHash, scope: Scope, now: DateTime<Utc>) -> Standing {
        self.entries
            .get(&Key {
                subject: *subject,
                scope,
            })
            .map_or(Standing::NoConsent, |s| s.standing(now))
    }

    /// The filter for one access: `dataset`'s records for `purpose` by `recipient` at `now`.
    pub fn filter(
        &self,
        dataset: &str,
        purpose: &str,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> ConsentFilter<'_> {
        ConsentFilter {
            index: self,
            scope: self.scope(dataset, purpose, recipient),
            now,
        }
    }

    /// The filter for the access a policy decision was about: the context's target, declared purpose,
    /// recipient (the requesting participant when none is set) and time. Without a target or a purpose it
    /// releases nothing.
    pub fn filter_for(&self, ctx: &EvaluationContext) -> ConsentFilter<'_> {
        let recipient = ctx.recipient.as_deref().unwrap_or(&ctx.participant_id);
        let scope = match (&ctx.target, &ctx.purpose) {
            (Some(dataset), Some(purpose)) => self.scope(dataset, purpose, recipient),
            _ => None,
        };
        ConsentFilter {
            index: self,
            scope,
            now: ctx.now,
        }
    }
}

/// The per-record decision of one access (see [`ConsentIndex::filter`]).
#[derive(Debug, Clone, Copy)]
pub struct ConsentFilter<'a> {
    index: &'a ConsentIndex,
    scope: Option<Scope>,
    now: DateTime<Utc>,
}

impl ConsentFilter<'_> {
    /// Whether a record of `subject` is released, and if not, why.
    pub fn decide(&self, subject: &SubjectHash) -> Standing {
        match self.scope {
            Some(scope) => self.index.decide(subject, scope, self.now),
            None => Standing::NoConsent,
        }
    }

    /// Whether a record of `subject` is released.
    pub fn releases(&self, subject: &SubjectHash) -> bool {
        self.decide(subject) == Standing::Active
    }

    /// Whether a record whose data-subject field reads `subject_identifier` is released (pseudonymized with
    /// `key` first; the identifier is not kept).
    pub fn releases_identifier(&self, key: &SubjectKey, subject_identifier: &str) -> bool {
        self.releases(&key.pseudonym(subject_identifier))
    }
}
