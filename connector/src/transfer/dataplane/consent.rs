//! The data plane's per-record consent check: a transfer of a consent-based dataset releases only the
//! records whose citizen has an active consent for the agreement's purpose and recipient, decided at each
//! record as it passes (so a withdrawal counts from the next record on), and counts what it released per
//! citizen for the transfer log.

use std::collections::HashMap;
use std::sync::Arc;

use caap_policy::consent::SubjectHash;
use chrono::{DateTime, TimeDelta, Utc};

use super::DataPlane;
use crate::consent::records::{Decide, Format, Keep, RecordFilter, Tally, filter_stream};
use crate::consent::{Consents, Decisions, ReleaseScope, subject_ref, transfer_salt};
use crate::service::Connector;

use super::{AccessError, Opened};

/// Counts per citizen: records released and the citizen's reference in this transfer.
type Counts = HashMap<SubjectHash, (u64, String)>;

/// How many citizens' pseudonyms one flow keeps at most.
const PSEUDONYM_CACHE: usize = 100_000;

/// How often a live stream's counts are written to the transfer log.
const FLUSH_EVERY: TimeDelta = TimeDelta::seconds(5);

impl DataPlane {
    /// `opened` as the transfer `transfer_id` under `agreement_id` may receive it: unchanged for data that is
    /// not consent-based; filtered per record otherwise. Refused when the data cannot be filtered (a format
    /// without records) or the agreement does not bind a purpose and recipient.
    pub async fn release(
        &self,
        transfer_id: &str,
        agreement_id: &str,
        dataset_id: &str,
        opened: Opened,
    ) -> Result<Opened, AccessError> {
        let scope = self
            .consents
            .release_scope(agreement_id, dataset_id)
            .await
            .map_err(|e| {
                tracing::warn!(transfer = transfer_id, error = %e, "consent-based data not released");
                AccessError::Forbidden(
                    "the agreement does not bind the purpose and recipient consent-based data needs".into(),
                )
            })?;
        let Some(scope) = scope else {
            return Ok(opened);
        };
        if opened.range.is_some() {
            return Err(AccessError::BadRequest(
                "consent-filtered data is served whole, not in byte ranges".into(),
            ));
        }
        let Some(format) = Format::of(opened.content_type.as_deref()) else {
            tracing::warn!(transfer = transfer_id, content_type = ?opened.content_type, "consent-based data in a format without records");
            return Err(AccessError::Forbidden(
                "the dataset holds personal data in a format caap cannot check per citizen".into(),
            ));
        };
        let filter = RecordFilter::new(format, &scope.subject_field);
        let release = Release {
            salt: transfer_salt(self.consents.key(), transfer_id),
            consents: self.consents.clone(),
            scope,
            transfer: transfer_id.to_owned(),
            last_flush: self.clock.now(),
            chunk: 0,
            citizens: Citizens::default(),
        };
        Ok(Opened {
            content_type: opened.content_type,
            // The length changes with what is held back.
            length: None,
            stream: filter_stream(opened.stream, filter, release),
            range: None,
        })
    }
}

/// The per-record consent check of one flow, decided a chunk at a time: one clock reading and one look at
/// the consent index per chunk, the released records counted per citizen in the flow and written to the
/// transfer log every [`FLUSH_EVERY`] and at the end.
struct Release {
    consents: Arc<Consents>,
    scope: ReleaseScope,
    transfer: String,
    /// The transfer's key for citizen references.
    salt: String,
    last_flush: DateTime<Utc>,
    /// The chunk being decided (counted from 1).
    chunk: u64,
    citizens: Citizens,
}

/// The citizens of one flow: their pseudonyms (citizens repeat in a flow, so each is hashed once, within
/// [`PSEUDONYM_CACHE`]) and how many of their records were released since the last flush. Found by the
/// identifier's bytes as the record holds them: a short one (most identity numbers) as two words and its
/// length, so a record's lookup reads no other memory and decodes nothing.
#[derive(Default)]
struct Citizens {
    /// Identifiers of at most 16 bytes to their place in `seen`. Looked up per record, so with a fast hasher
    /// (randomly seeded per process; the table is bounded by [`PSEUDONYM_CACHE`]) rather than SipHash; the
    /// pseudonym is the keyed HMAC as everywhere.
    short: HashMap<ShortKey, usize, foldhash::fast::RandomState>,
    /// Longer identifiers to their place in `seen`.
    long: HashMap<Box<[u8]>, usize, foldhash::fast::RandomState>,
    /// The citizen of the last record (records of one citizen often come together).
    last: Option<(ShortKey, usize)>,
    seen: Vec<Citizen>,
    /// Counts of citizens no longer kept (the cache was full), not yet written.
    spilled: Counts,
}

/// An identifier of at most 16 bytes: its first and last eight bytes (overlapping, or the first padded with
/// zeros) and its length, which together are the identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ShortKey {
    head: u64,
    tail: u64,
    len: usize,
}

impl std::hash::Hash for ShortKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // One word to the (seeded) hasher rather than three: equal keys still hash alike.
        state.write_u64(self.head ^ self.tail.rotate_left(29) ^ (self.len as u64).rotate_left(58));
    }
}

impl ShortKey {
    fn of(identifier: &[u8]) -> Option<ShortKey> {
        let word = |b: &[u8]| {
            <[u8; 8]>::try_from(b).map_or_else(
                |_| b.iter().rev().fold(0, |w, &x| (w << 8) | u64::from(x)),
                u64::from_le_bytes,
            )
        };
        let len = identifier.len();
        match len {
            0..=8 => Some(ShortKey {
                head: word(identifier),
                tail: 0,
                len,
            }),
            9..=16 => Some(ShortKey {
                head: word(identifier.get(..8)?),
                tail: word(identifier.get(len - 8..)?),
                len,
            }),
            _ => None,
        }
    }
}

struct Citizen {
    subject: SubjectHash,
    /// The chunk `releases` was decided for: a citizen's records within one chunk share one decision.
    decided: u64,
    releases: bool,
    released: u64,
    /// The citizen's reference in this transfer, made at the first record released.
    reference: Option<String>,
}

impl Citizens {
    /// The citizen whose records name `identifier` (UTF-8; `None` if it is not), pseudonymized by
    /// `pseudonym` when first seen.
    fn of(
        &mut self,
        identifier: &[u8],
        pseudonym: impl FnOnce(&str) -> SubjectHash,
    ) -> Option<&mut Citizen> {
        let short = ShortKey::of(identifier);
        let found = match (short, self.last) {
            (Some(key), Some((last, place))) if key == last => Some(place),
            (Some(key), _) => self.short.get(&key).copied(),
            (None, _) => self.long.get(identifier).copied(),
        };
        let place = match found {
            Some(place) => place,
            None => {
                let text = std::str::from_utf8(identifier).ok()?;
                if self.seen.len() >= PSEUDONYM_CACHE {
                    let counts = self.take();
                    self.spilled = counts;
                    self.short.clear();
                    self.long.clear();
                    self.seen.clear();
                }
                let place = self.seen.len();
                match short {
                    Some(key) => self.short.insert(key, place),
                    None => self.long.insert(identifier.into(), place),
                };
                self.seen.push(Citizen {
                    subject: pseudonym(text),
                    decided: 0,
                    releases: false,
                    released: 0,
                    reference: None,
                });
                place
            }
        };
        self.last = short.map(|key| (key, place));
        self.seen.get_mut(place)
    }

    /// The counts since the last call.
    fn take(&mut self) -> Counts {
        let mut counts = std::mem::take(&mut self.spilled);
        for c in &mut self.seen {
            if c.released > 0 {
                let reference = c.reference.clone().unwrap_or_default();
                counts.entry(c.subject).or_insert((0, reference)).0 += c.released;
                c.released = 0;
            }
        }
        counts
    }
}

/// The [`Keep`] of one chunk: each record's citizen found (or pseudonymized once), decided once per chunk
/// under the chunk's [`Decisions`], and counted when released.
struct ChunkKeep<'c> {
    consents: &'c Consents,
    citizens: &'c mut Citizens,
    decisions: &'c Decisions<'c>,
    salt: &'c str,
    chunk: u64,
}

impl Keep for ChunkKeep<'_> {
    fn keep(&mut self, identifier: &[u8]) -> bool {
        let consents = self.consents;
        let Some(citizen) = self.citizens.of(identifier, |s| consents.pseudonym(s)) else {
            return false;
        };
        if citizen.decided != self.chunk {
            citizen.decided = self.chunk;
            citizen.releases = self.decisions.releases(&citizen.subject);
        }
        let released = citizen.releases;
        if released {
            citizen.released += 1;
            if citizen.reference.is_none() {
                let text = std::str::from_utf8(identifier).unwrap_or_default();
                citizen.reference = Some(subject_ref(self.salt, text));
            }
        }
        released
    }
}

impl Decide for Release {
    fn chunk<R>(&mut self, filter: impl FnOnce(&mut dyn Keep) -> R) -> R {
        let decisions = self.consents.decisions(&self.scope);
        let now = decisions.now();
        self.chunk += 1;
        let out = filter(&mut ChunkKeep {
            consents: &self.consents,
            citizens: &mut self.citizens,
            decisions: &decisions,
            salt: &self.salt,
            chunk: self.chunk,
        });
        drop(decisions);
        if now - self.last_flush >= FLUSH_EVERY {
            self.last_flush = now;
            self.flush();
        }
        out
    }

    fn end(&mut self, tally: Tally) {
        tracing::info!(transfer = %self.transfer, released = tally.kept, held_back = tally.dropped, "consent-filtered flow ended");
        self.flush();
    }
}

impl Release {
    /// Writes the counts since the last flush to the transfer log (in the background).
    fn flush(&mut self) {
        let counts = self.citizens.take();
        if counts.is_empty() {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let (consents, transfer, scope) = (
                self.consents.clone(),
                self.transfer.clone(),
                self.scope.clone(),
            );
            handle.spawn(async move {
                consents.record_deliveries(&transfer, &scope, &counts).await;
            });
        }
    }
}

/// How long the source of a dataset is read for its citizens, at most.
const SCAN_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

impl DataPlane {
    /// Consent requests for every citizen whose records the dataset of `agreement_id` (which this connector
    /// provides) holds: reads the dataset's source once for the subject field, and asks each citizen (an
    /// existing record for the same scope is left as it is). Returns how many citizens were found. Data that
    /// is not consent-based needs no requests (0).
    pub async fn request_consents_for(&self, agreement_id: &str) -> Result<usize, AccessError> {
        use caap_catalog::asset::DataAddress;
        use futures_util::StreamExt;
        let agreement = self
            .store
            .agreement(agreement_id)
            .await
            .map_err(|e| AccessError::Internal(e.to_string()))?
            .filter(|a| a.provider_id == self.identity.participant_id)
            .ok_or_else(|| AccessError::NotFound("no such agreement as provider".into()))?;
        let dataset = agreement.dataset_id.clone();
        let scope = self
            .consents
            .release_scope(agreement_id, &dataset)
            .await
            .map_err(AccessError::Forbidden)?;
        let Some(scope) = scope else { return Ok(0) };
        if let Ok(Some((asset, _))) = self.consents.declaration(&dataset).await
            && matches!(asset.data_address, DataAddress::LiveStream { .. })
        {
            return Err(AccessError::BadRequest(
                "a live stream's citizens are not known in advance; ask them one by one".into(),
            ));
        }
        let opened = self.open_source(&dataset, None, None).await?;
        let Some(format) = Format::of(opened.content_type.as_deref()) else {
            return Err(AccessError::Forbidden(
                "the dataset holds personal data in a format caap cannot read per citizen".into(),
            ));
        };
        let mut filter = RecordFilter::new(format, &scope.subject_field);
        let mut found = std::collections::HashSet::new();
        let consents = self.consents.clone();
        let mut keep = |s: &str| {
            found.insert(consents.pseudonym(s));
            false
        };
        let mut stream = opened.stream;
        let read = tokio::time::timeout(SCAN_LIMIT, async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| AccessError::Internal(e.to_string()))?;
                filter
                    .push(&chunk, &mut keep)
                    .map_err(|e| AccessError::BadRequest(e.to_string()))?;
            }
            filter
                .finish(&mut keep)
                .map_err(|e| AccessError::BadRequest(e.to_string()))?;
            Ok::<_, AccessError>(())
        })
        .await;
        match read {
            Ok(r) => r?,
            Err(_) => {
                return Err(AccessError::BadRequest(
                    "the source did not end within 60 s; ask its citizens one by one".into(),
                ));
            }
        }
        let n = self
            .consents
            .request_all(found, &dataset, &scope.purpose, &scope.recipient)
            .await
            .map_err(|e| AccessError::Internal(e.to_string()))?;
        tracing::info!(
            agreement = agreement_id,
            citizens = n,
            "consent requested from every citizen the dataset holds"
        );
        Ok(n)
    }
}

impl Connector {
    /// Ends the running transfers that depended on a withdrawn consent: those that released the citizen's
    /// records in the withdrawn scope and no record of any citizen whose consent still holds. A transfer that
    /// also carries other consenting citizens goes on (the citizen's records are held back record by record).
    pub async fn end_transfers_without_consent(&self, w: &crate::consent::Withdrawal) {
        let deliveries = match self.consents.deliveries(&w.subject).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the transfer log after a withdrawal");
                return;
            }
        };
        let mut seen = std::collections::HashSet::new();
        for d in deliveries {
            if d.dataset != w.dataset
                || !w.recipients.contains(&d.recipient)
                || !seen.insert(d.transfer_id.clone())
            {
                continue;
            }
            let subjects = match self.store.delivery_subjects(&d.transfer_id).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(transfer = %d.transfer_id, error = %e, "cannot read the transfer's deliveries");
                    continue;
                }
            };
            let others_consent = subjects.iter().any(|s| {
                caap_policy::consent::SubjectHash::from_hex(s)
                    .is_some_and(|h| self.consents.still_releases(w, &d.recipient, &h))
            });
            if others_consent {
                continue;
            }
            let Ok(Some(t)) = self.store.transfer(&d.transfer_id).await else {
                continue;
            };
            if t.state.is_some_and(|s| s.is_terminal()) {
                continue;
            }
            let reason = "the citizen consent this transfer depended on was withdrawn";
            match self
                .transfers()
                .transfer_step(
                    &t.id,
                    "terminate",
                    Some(serde_json::json!({"code": "consent-withdrawn", "reason": reason})),
                )
                .await
            {
                Ok(_) => {
                    tracing::info!(transfer = %t.id, "transfer ended: its consent was withdrawn")
                }
                Err(e) => {
                    tracing::warn!(transfer = %t.id, error = %e, "cannot end the transfer after a withdrawal")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Identifiers of every length up to 20 bytes, some sharing their first or last eight bytes.
    fn identifiers() -> Vec<Vec<u8>> {
        let mut ids = vec![Vec::new()];
        for len in 1..=20 {
            ids.push(b"19990101000000000000ABCDEFGH"[..len].to_vec());
            ids.push(b"X9990101000000000000ABCDEFGH"[..len].to_vec());
            let mut zero_end = b"19990101000000000000"[..len].to_vec();
            zero_end[len - 1] = 0;
            ids.push(zero_end);
        }
        ids
    }

    #[test]
    fn short_keys_are_equal_exactly_when_identifiers_are() {
        let ids = identifiers();
        for a in &ids {
            for b in &ids {
                let (ka, kb) = (ShortKey::of(a), ShortKey::of(b));
                assert_eq!(ka.is_some(), a.len() <= 16);
                if let (Some(ka), Some(kb)) = (ka, kb) {
                    assert_eq!(ka == kb, a == b, "{a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn each_identifier_is_one_citizen_pseudonymized_once() {
        let key = caap_policy::consent::SubjectKey::new(&[7; 32]).unwrap();
        let mut citizens = Citizens::default();
        let mut hashed = 0;
        let ids = identifiers();
        // In order, repeated, and each twice in a row (the last record's citizen is remembered).
        for id in ids.iter().chain(&ids).flat_map(|id| [id, id]) {
            let citizen = citizens
                .of(id, |s| {
                    hashed += 1;
                    key.pseudonym(s)
                })
                .unwrap();
            assert_eq!(
                citizen.subject,
                key.pseudonym(std::str::from_utf8(id).unwrap())
            );
            citizen.released += 1;
        }
        assert_eq!(hashed, ids.len());
        assert!(citizens.seen.iter().all(|c| c.released == 4));
        // Not UTF-8: no citizen.
        assert!(citizens.of(b"\xff", |s| key.pseudonym(s)).is_none());
    }
}
