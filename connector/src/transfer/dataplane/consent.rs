//! The data plane's per-record consent check: a transfer of a consent-based dataset releases only the
//! records whose citizen has an active consent for the agreement's purpose and recipient, decided at each
//! record as it passes (so a withdrawal counts from the next record on), and counts what it released per
//! citizen for the transfer log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use caap_policy::consent::SubjectHash;
use chrono::TimeDelta;

use super::DataPlane;
use crate::consent::records::{Format, RecordFilter, filter_stream};
use crate::consent::{Consents, ReleaseScope, subject_ref, transfer_salt};
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
        let consents = self.consents.clone();
        let salt = transfer_salt(consents.key(), transfer_id);
        let counts: Arc<Mutex<Counts>> = Arc::default();
        let keep = {
            let consents = consents.clone();
            let scope = scope.clone();
            let counts = counts.clone();
            let transfer = transfer_id.to_owned();
            let mut last_flush = self.clock.now();
            let clock = self.clock.clone();
            // Citizens repeat in a flow: their pseudonyms are kept for it (bounded) rather than hashed again.
            let mut pseudonyms: HashMap<String, SubjectHash> = HashMap::new();
            move |identifier: &str| {
                let subject = match pseudonyms.get(identifier) {
                    Some(s) => *s,
                    None => {
                        if pseudonyms.len() >= PSEUDONYM_CACHE {
                            pseudonyms.clear();
                        }
                        let s = consents.pseudonym(identifier);
                        pseudonyms.insert(identifier.to_owned(), s);
                        s
                    }
                };
                let released = consents.releases(&scope, &subject);
                if released {
                    let mut map = counts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    map.entry(subject)
                        .or_insert_with(|| (0, subject_ref(&salt, identifier)))
                        .0 += 1;
                    let now = clock.now();
                    if now - last_flush >= FLUSH_EVERY {
                        last_flush = now;
                        let taken = std::mem::take(&mut *map);
                        spawn_flush(consents.clone(), transfer.clone(), scope.clone(), taken);
                    }
                }
                released
            }
        };
        let on_end = {
            let transfer = transfer_id.to_owned();
            move |tally: crate::consent::records::Tally| {
                let taken = std::mem::take(
                    &mut *counts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                tracing::info!(transfer = %transfer, released = tally.kept, held_back = tally.dropped, "consent-filtered flow ended");
                spawn_flush(consents.clone(), transfer.clone(), scope.clone(), taken);
            }
        };
        Ok(Opened {
            content_type: opened.content_type,
            // The length changes with what is held back.
            length: None,
            stream: filter_stream(opened.stream, filter, keep, on_end),
            range: None,
        })
    }
}

fn spawn_flush(consents: Arc<Consents>, transfer: String, scope: ReleaseScope, counts: Counts) {
    if counts.is_empty() {
        return;
    }
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            consents.record_deliveries(&transfer, &scope, &counts).await;
        });
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
