// The consent service as the portal sees it, in memory and per pseudonym: a test double of
// `PortalBackend` for the portal's handler tests (connector/src/portal/tests.rs) and its browser test
// (tests/e2e/portal.rs), which include this file with `include!` inside a module that imports
// `PortalBackend` and its view types. Decisions follow the consent states (grant or refuse a request,
// withdraw a given consent); a withdrawal makes one notice that is not yet acknowledged.

use std::collections::HashMap;
use std::sync::Mutex;

use caap_policy::consent::{SubjectHash, SubjectKey};
use chrono::{DateTime, Utc};

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// One citizen's records in the memory backend.
#[derive(Debug, Default, Clone)]
pub struct Citizen {
    pub consents: Vec<ConsentView>,
    pub events: Vec<ConsentEventView>,
}

/// The consent service, in memory, per pseudonym.
#[derive(Debug)]
pub struct MemoryBackend {
    key: SubjectKey,
    citizens: Mutex<HashMap<SubjectHash, Citizen>>,
}

impl MemoryBackend {
    pub fn new() -> MemoryBackend {
        MemoryBackend {
            key: SubjectKey::new(&[9; 32]).unwrap(),
            citizens: Mutex::default(),
        }
    }

    /// A pending request for the citizen `pnr` from `recipient`.
    pub fn request(&self, pnr: &str, id: &str, title: &str, recipient: &str) {
        let subject = self.key.pseudonym(pnr);
        self.citizens
            .lock()
            .unwrap()
            .entry(subject)
            .or_default()
            .consents
            .push(ConsentView {
                id: id.into(),
                dataset: format!("https://malmo.example/datasets/{id}"),
                dataset_title: title.into(),
                recipient: recipient.into(),
                recipient_did: "did:web:lund.example".into(),
                purpose: "planning residents' parking".into(),
                standing: ConsentStanding::Requested,
                since: at("2026-12-01T09:00:00Z"),
                until: None,
                duration: Some("P1Y".into()),
            });
    }

    pub fn citizen(&self, subject: &SubjectHash) -> Citizen {
        self.citizens
            .lock()
            .unwrap()
            .get(subject)
            .cloned()
            .unwrap_or_default()
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    Box::pin(async move { v })
}

impl PortalBackend for MemoryBackend {
    fn pseudonym(&self, subject_identifier: &str) -> SubjectHash {
        self.key.pseudonym(subject_identifier)
    }

    fn overview<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<SharedDataset>, PortalError>> {
        let c = self.citizen(subject);
        ready(Ok(c
            .consents
            .iter()
            .map(|v| SharedDataset {
                dataset: v.dataset.clone(),
                title: v.dataset_title.clone(),
                controller: "Malmö stad".into(),
                lawful_basis: LawfulBasis::Consent,
                categories: vec!["parking-permit zone".into()],
                recipients: (v.standing == ConsentStanding::Given)
                    .then(|| Recipient {
                        name: v.recipient.clone(),
                        did: v.recipient_did.clone(),
                        purpose: v.purpose.clone(),
                        purpose_iri: "https://w3id.org/dpv#ServiceProvision".into(),
                        until: Some(at("2027-06-30T12:00:00Z")),
                        consent: Some(v.id.clone()),
                    })
                    .into_iter()
                    .collect(),
            })
            .collect()))
    }

    fn consents<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<ConsentView>, PortalError>> {
        ready(Ok(self.citizen(subject).consents))
    }

    fn decide<'a>(
        &'a self,
        subject: &'a SubjectHash,
        record: &'a str,
        decision: Decision,
        context: ActionContext,
    ) -> BoxFuture<'a, Result<ConsentEventView, PortalError>> {
        let mut all = self.citizens.lock().unwrap();
        let Some(c) = all.get_mut(subject) else {
            return ready(Err(PortalError::NotFound));
        };
        let Some(v) = c.consents.iter_mut().find(|v| v.id == record) else {
            return ready(Err(PortalError::NotFound));
        };
        let standing = match (v.standing, decision) {
            (ConsentStanding::Requested, Decision::Grant) => ConsentStanding::Given,
            (ConsentStanding::Requested, Decision::Refuse) => ConsentStanding::Refused,
            (ConsentStanding::Given, Decision::Withdraw) => ConsentStanding::Withdrawn,
            _ => return ready(Err(PortalError::NotAllowed("not from here".into()))),
        };
        v.standing = standing;
        let event = ConsentEventView {
            record: record.into(),
            seq: c.events.iter().filter(|e| e.record == record).count() as u64 + 1,
            dataset_title: v.dataset_title.clone(),
            recipient: v.recipient.clone(),
            purpose: v.purpose.clone(),
            standing,
            at: at("2026-12-07T13:05:00Z"),
            by: "subject".into(),
            method: context.method,
            session: Some(context.session),
        };
        c.events.insert(0, event.clone());
        ready(Ok(event))
    }

    fn history<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<ConsentEventView>, PortalError>> {
        ready(Ok(self.citizen(subject).events))
    }

    fn receipt<'a>(
        &'a self,
        subject: &'a SubjectHash,
        record: &'a str,
        seq: u64,
    ) -> BoxFuture<'a, Result<serde_json::Value, PortalError>> {
        let found = self
            .citizen(subject)
            .events
            .iter()
            .any(|e| e.record == record && e.seq == seq);
        ready(if found {
            Ok(serde_json::json!({
                "receipt": {"@type": "dpv:ConsentReceipt", "dct:identifier": format!("{record}:{seq}"),
                            "dct:publisher": "Malmö stad"},
                "jws": "eyJhbGciOiJFUzI1NiJ9..c2ln"
            }))
        } else {
            Err(PortalError::NotFound)
        })
    }

    fn deliveries<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<DeliveryView>, PortalError>> {
        let c = self.citizen(subject);
        ready(Ok(c
            .consents
            .iter()
            .filter(|v| v.standing == ConsentStanding::Given)
            .map(|v| DeliveryView {
                recipient: v.recipient.clone(),
                recipient_did: v.recipient_did.clone(),
                dataset_title: v.dataset_title.clone(),
                purpose: v.purpose.clone(),
                at: at("2026-12-07T14:00:00Z"),
                records: 12_345,
            })
            .collect()))
    }

    fn notices<'a>(
        &'a self,
        subject: &'a SubjectHash,
    ) -> BoxFuture<'a, Result<Vec<NoticeView>, PortalError>> {
        let c = self.citizen(subject);
        ready(Ok(c
            .consents
            .iter()
            .filter(|v| v.standing == ConsentStanding::Withdrawn)
            .map(|v| NoticeView {
                id: format!("notice-{}", v.id),
                recipient: v.recipient.clone(),
                recipient_did: v.recipient_did.clone(),
                dataset_title: v.dataset_title.clone(),
                standing: NoticeStanding::Sent,
                created: at("2026-12-07T13:06:00Z"),
                acknowledged: None,
                deleted: None,
                attempts: 2,
                last_error: Some("the recipient did not answer".into()),
            })
            .collect()))
    }
}

