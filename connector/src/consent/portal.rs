//! The consent service as the citizen portal sees it ([`PortalBackend`]): only the logged-in citizen's data.

use std::collections::HashMap;

use caap_catalog::asset::{Asset, LawfulBasis as AssetBasis};
use caap_policy::consent::{ConsentRecord, ConsentState, ConsentStatus, Indicator, SubjectHash};

use super::{ConsentServiceError, Consents};
use crate::portal::backend::{
    ActionContext, BoxFuture, ConsentEventView, ConsentStanding, ConsentView, Decision,
    DeliveryView, LawfulBasis, NoticeStanding, NoticeView, PortalBackend, PortalError, Recipient,
    SharedDataset,
};
use caap_catalog::page::Cursor;

use crate::store::DocKind;

fn unavailable(e: impl std::fmt::Display) -> PortalError {
    tracing::error!(error = %e, "the portal's consent backend failed");
    PortalError::Unavailable
}

fn standing(state: ConsentState) -> ConsentStanding {
    match state {
        ConsentState::None | ConsentState::Requested => ConsentStanding::Requested,
        ConsentState::Given => ConsentStanding::Given,
        ConsentState::Refused => ConsentStanding::Refused,
        ConsentState::Withdrawn => ConsentStanding::Withdrawn,
        ConsentState::Expired => ConsentStanding::Expired,
    }
}

fn status_standing(s: ConsentStatus) -> ConsentStanding {
    match s {
        ConsentStatus::Requested => ConsentStanding::Requested,
        ConsentStatus::Given | ConsentStatus::Renewed => ConsentStanding::Given,
        ConsentStatus::Refused => ConsentStanding::Refused,
        ConsentStatus::Withdrawn => ConsentStanding::Withdrawn,
        ConsentStatus::Expired => ConsentStanding::Expired,
    }
}

/// A purpose in plain words (the DPV term's local name, split at capitals).
pub(crate) fn purpose_label(purpose: &str) -> String {
    let local = purpose.rsplit([':', '#', '/']).next().unwrap_or(purpose);
    let mut out = String::new();
    for (i, c) in local.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl Consents {
    async fn names(&self) -> HashMap<String, String> {
        let mut names: HashMap<String, String> = self
            .store
            .catalog_sources()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.participant_id, s.city))
            .collect();
        names.insert(
            self.identity.participant_id.clone(),
            self.identity.name.clone(),
        );
        names
    }

    async fn assets(&self) -> Result<HashMap<String, Asset>, ConsentServiceError> {
        let mut out = HashMap::new();
        let mut cursor = Cursor::Start;
        loop {
            let page = self.store.scan(DocKind::Asset, &cursor, 500).await?;
            let Some(last) = page.last().map(|d| d.id.clone()) else {
                break;
            };
            for d in page {
                if let Ok(a) = serde_json::from_value::<Asset>(d.body) {
                    out.insert(a.id.clone(), a);
                }
            }
            cursor = Cursor::After(last);
        }
        Ok(out)
    }

    fn view(
        &self,
        r: &ConsentRecord,
        assets: &HashMap<String, Asset>,
        names: &HashMap<String, String>,
    ) -> ConsentView {
        let t = r.terms();
        let p = &t.processing;
        let recipient = p.recipients.first().cloned().unwrap_or_default();
        let last = r.revisions().last();
        let given = r.revisions().iter().rev().find(|x| {
            matches!(
                x.event.status,
                ConsentStatus::Given | ConsentStatus::Renewed
            )
        });
        ConsentView {
            id: t.id.clone(),
            dataset: p.dataset.clone(),
            dataset_title: assets
                .get(&p.dataset)
                .map_or_else(|| p.dataset.clone(), |a| a.title.clone()),
            recipient: names
                .get(&recipient)
                .cloned()
                .unwrap_or_else(|| recipient.clone()),
            recipient_did: recipient,
            purpose: purpose_label(&p.purpose),
            standing: standing(r.state()),
            since: last.map(|x| x.event.at).unwrap_or_default(),
            until: if r.state() == ConsentState::Given {
                given.and_then(|g| g.event.valid_until())
            } else {
                None
            },
            duration: Some(p.retention.clone()),
        }
    }

    fn event_views(
        &self,
        r: &ConsentRecord,
        assets: &HashMap<String, Asset>,
        names: &HashMap<String, String>,
    ) -> Vec<ConsentEventView> {
        let v = self.view(r, assets, names);
        r.revisions()
            .iter()
            .map(|rev| {
                let (method, session) = match rev.event.method.split_once(" session:") {
                    Some((m, s)) => (m.to_owned(), Some(s.to_owned())),
                    None => (rev.event.method.clone(), None),
                };
                ConsentEventView {
                    record: v.id.clone(),
                    seq: rev.seq,
                    dataset_title: v.dataset_title.clone(),
                    recipient: v.recipient.clone(),
                    purpose: v.purpose.clone(),
                    standing: status_standing(rev.event.status),
                    at: rev.event.at,
                    by: match (&rev.event.indicated_by, rev.event.status) {
                        (Indicator::DataSubject, _) => "subject".into(),
                        (_, ConsentStatus::Expired) => "system".into(),
                        _ => "controller".into(),
                    },
                    method,
                    session,
                }
            })
            .collect()
    }

    async fn my_records(&self, subject: &SubjectHash) -> Result<Vec<ConsentRecord>, PortalError> {
        self.store
            .consents_of(&subject.to_string())
            .await
            .map_err(unavailable)
    }
}

impl PortalBackend for Consents {
    fn pseudonym(&self, subject_identifier: &str) -> SubjectHash {
        Consents::pseudonym(self, subject_identifier)
    }

    fn overview<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<SharedDataset>, PortalError>> {
        Box::pin(async move {
            let assets = self.assets().await.map_err(unavailable)?;
            let names = self.names().await;
            let mine = self.my_records(subject).await?;
            let mut out = Vec::new();
            let mut ids: Vec<&String> = assets.keys().collect();
            ids.sort();
            for id in ids {
                let a = &assets[id];
                let Some(decl) = &a.personal_data else {
                    continue;
                };
                let lawful_basis = match decl.lawful_basis {
                    AssetBasis::Consent => LawfulBasis::Consent,
                    AssetBasis::Contract => LawfulBasis::Contract,
                    AssetBasis::LegalObligation => LawfulBasis::LegalObligation,
                    AssetBasis::PublicTask => LawfulBasis::PublicTask,
                };
                let recipients = mine
                    .iter()
                    .filter(|r| r.terms().processing.dataset == a.id)
                    .map(|r| {
                        let v = self.view(r, &assets, &names);
                        Recipient {
                            name: v.recipient,
                            did: v.recipient_did,
                            purpose: v.purpose,
                            purpose_iri: r.terms().processing.purpose.clone(),
                            until: v.until,
                            consent: Some(v.id),
                        }
                    })
                    .collect();
                out.push(SharedDataset {
                    dataset: a.id.clone(),
                    title: a.title.clone(),
                    controller: self.identity.name.clone(),
                    lawful_basis,
                    categories: decl.categories.iter().map(|c| purpose_label(c)).collect(),
                    recipients,
                });
            }
            Ok(out)
        })
    }

    fn consents<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<ConsentView>, PortalError>> {
        Box::pin(async move {
            let assets = self.assets().await.map_err(unavailable)?;
            let names = self.names().await;
            let mut views: Vec<ConsentView> = self
                .my_records(subject)
                .await?
                .iter()
                .map(|r| self.view(r, &assets, &names))
                .collect();
            views.sort_by_key(|v| std::cmp::Reverse(v.since));
            Ok(views)
        })
    }

    fn decide<'a>(
        &'a self,
        subject: &'a SubjectHash,
        record: &'a str,
        decision: Decision,
        context: ActionContext,
    ) -> BoxFuture<'a, Result<ConsentEventView, PortalError>> {
        Box::pin(async move {
            let status = match decision {
                Decision::Grant => ConsentStatus::Given,
                Decision::Refuse => ConsentStatus::Refused,
                Decision::Withdraw => ConsentStatus::Withdrawn,
            };
            let method = format!("{} session:{}", context.method, context.session);
            let r = self
                .record_event(subject, record, status, &method, None)
                .await
                .map_err(|e| match e {
                    ConsentServiceError::NotFound => PortalError::NotFound,
                    ConsentServiceError::Invalid(m) => PortalError::NotAllowed(m),
                    ConsentServiceError::Store(e) => unavailable(e),
                })?;
            let assets = self.assets().await.map_err(unavailable)?;
            let names = self.names().await;
            self.event_views(&r, &assets, &names)
                .pop()
                .ok_or(PortalError::Unavailable)
        })
    }

    fn history<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<ConsentEventView>, PortalError>> {
        Box::pin(async move {
            let assets = self.assets().await.map_err(unavailable)?;
            let names = self.names().await;
            let mut events: Vec<ConsentEventView> = self
                .my_records(subject)
                .await?
                .iter()
                .flat_map(|r| self.event_views(r, &assets, &names))
                .collect();
            events.sort_by(|a, b| b.at.cmp(&a.at).then(b.seq.cmp(&a.seq)));
            Ok(events)
        })
    }

    fn receipt<'a>(
        &'a self,
        subject: &'a SubjectHash,
        record: &'a str,
        seq: u64,
    ) -> BoxFuture<'a, Result<serde_json::Value, PortalError>> {
        Box::pin(async move {
            let r = self
                .store
                .consent(record)
                .await
                .map_err(unavailable)?
                .filter(|r| r.terms().subject == *subject)
                .ok_or(PortalError::NotFound)?;
            let signed = r
                .signed_receipt(seq, &self.signer())
                .map_err(unavailable)?
                .ok_or(PortalError::NotFound)?;
            serde_json::to_value(signed).map_err(unavailable)
        })
    }

    fn deliveries<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<DeliveryView>, PortalError>> {
        Box::pin(async move {
            let assets = self.assets().await.map_err(unavailable)?;
            let names = self.names().await;
            let rows = Consents::deliveries(self, subject)
                .await
                .map_err(unavailable)?;
            Ok(rows
                .into_iter()
                .map(|d| DeliveryView {
                    recipient: names
                        .get(&d.recipient)
                        .cloned()
                        .unwrap_or_else(|| d.recipient.clone()),
                    recipient_did: d.recipient,
                    dataset_title: assets
                        .get(&d.dataset)
                        .map_or_else(|| d.dataset.clone(), |a| a.title.clone()),
                    purpose: purpose_label(&d.purpose),
                    at: d.last_at,
                    records: d.records,
                })
                .collect())
        })
    }

    fn notices<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<NoticeView>, PortalError>> {
        Box::pin(async move {
            let assets = self.assets().await.map_err(unavailable)?;
            let names = self.names().await;
            let rows = self
                .store
                .notices(Some(&subject.to_string()))
                .await
                .map_err(unavailable)?;
            Ok(rows
                .into_iter()
                .map(|n| NoticeView {
                    id: n.id,
                    recipient: names
                        .get(&n.recipient)
                        .cloned()
                        .unwrap_or_else(|| n.recipient.clone()),
                    recipient_did: n.recipient,
                    dataset_title: assets
                        .get(&n.dataset)
                        .map_or_else(|| n.dataset.clone(), |a| a.title.clone()),
                    standing: match n.state.as_str() {
                        "ACKNOWLEDGED" => NoticeStanding::Acknowledged,
                        "DELETED" => NoticeStanding::DeletionConfirmed,
                        "FAILED" => NoticeStanding::Failed,
                        _ => NoticeStanding::Sent,
                    },
                    created: n.created_at,
                    acknowledged: n.acknowledged_at,
                    deleted: n.deleted_at,
                    attempts: n.attempts,
                    last_error: n.last_error,
                })
                .collect())
        })
    }
}
