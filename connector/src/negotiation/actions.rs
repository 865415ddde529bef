//! The management side of negotiations: start one as consumer, look at them, and take a step by hand
//! (approve, reject, accept, agree, verify, finalize, offer, counter-offer, terminate).

use caap_catalog::page::{self, Cursor, Page};
use caap_contracts::Role;
use caap_contracts::ledger::{EntryKind, NewEntry};
use caap_contracts::negotiation::state::transition;
use serde::Deserialize;
use serde_json::{Value, json};

use super::inbound::terminate_with;
use caap_contracts::process::Process;

use super::NegotiationView;
use super::model::{Actor, Awaiting, Negotiation, NegotiationBody, Peer, Step};
use crate::catalog::CatalogService;
use crate::error::{ServiceError, decode};
pub use crate::process::StepRequest;

/// `POST /api/v1/negotiations`: start a negotiation as consumer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartNegotiation {
    /// The provider's address: its root or DSP base (discovered through `/.well-known/dspace-version`), or,
    /// together with `counterPartyId` and a full `offer`, its DSP base as is.
    pub counter_party_address: String,
    /// An offer id from the provider's catalog; caap fetches the catalog to find its dataset and terms.
    #[serde(default)]
    pub offer_id: Option<String>,
    /// The offer itself (`@id`, `target`, rules), instead of `offerId`.
    #[serde(default)]
    pub offer: Option<Value>,
    /// The provider's participant id (needed with `offer`, learnt from the catalog otherwise).
    #[serde(default)]
    pub counter_party_id: Option<String>,
    /// Take no step automatically: every later step comes from the management API.
    #[serde(default)]
    pub manual: bool,
}

/// The steps the management API can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualStep {
    /// Provider: approve a request waiting for approval (agree).
    Approve,
    /// Provider: reject a request waiting for approval (terminate).
    Reject,
    /// Consumer: accept the provider's offer.
    Accept,
    /// Provider: agree.
    Agree,
    /// Consumer: verify the agreement.
    Verify,
    /// Provider: finalize.
    Finalize,
    /// Provider: send an offer.
    Offer,
    /// Consumer: send a counter-offer.
    CounterOffer,
    /// Either: terminate.
    Terminate,
}

impl ManualStep {
    /// Parses the URL segment.
    pub fn parse(s: &str) -> Option<ManualStep> {
        Some(match s {
            "approve" => ManualStep::Approve,
            "reject" => ManualStep::Reject,
            "accept" => ManualStep::Accept,
            "agree" => ManualStep::Agree,
            "verify" => ManualStep::Verify,
            "finalize" => ManualStep::Finalize,
            "offer" => ManualStep::Offer,
            "counter-offer" => ManualStep::CounterOffer,
            "terminate" => ManualStep::Terminate,
            _ => return None,
        })
    }

    /// The URL segments, for error messages.
    pub const NAMES: &'static str =
        "approve, reject, accept, agree, verify, finalize, offer, counter-offer, terminate";

    fn step(self) -> Step {
        match self {
            ManualStep::Approve | ManualStep::Agree => Step::Agree,
            ManualStep::Reject | ManualStep::Terminate => Step::Terminate,
            ManualStep::Accept => Step::Accept,
            ManualStep::Verify => Step::Verify,
            ManualStep::Finalize => Step::Finalize,
            ManualStep::Offer => Step::Offer,
            ManualStep::CounterOffer => Step::CounterOffer,
        }
    }
}

fn with_target(mut offer: Value, dataset_id: &str) -> Value {
    if let Value::Object(m) = &mut offer {
        m.entry("target").or_insert_with(|| dataset_id.into());
    }
    offer
}

impl super::Negotiations {
    /// Starts a negotiation as consumer. The request goes out from the processor; the answer is the
    /// negotiation as created (state `null` until the provider acknowledges). An offer named by id is
    /// looked up in the provider's catalog through `catalog` (fetched into the federated cache).
    pub async fn start_negotiation(
        &self,
        catalog: &CatalogService,
        body: Value,
    ) -> Result<NegotiationView, ServiceError> {
        let start: StartNegotiation = decode(&body)?;
        crate::error::http_url("/counterPartyAddress", &start.counter_party_address)?;
        let (base, provider_id, offer) = match (&start.offer_id, &start.offer) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::field(
                    "/offer",
                    "give offerId or offer, not both",
                ));
            }
            (None, None) => {
                return Err(ServiceError::field(
                    "/offerId",
                    "name the offer: offerId (from the provider's catalog) or a full offer",
                ));
            }
            (None, Some(offer)) => {
                super::decide::parse("offer", offer)
                    .map_err(|e| ServiceError::field("/offer", e))?;
                match &start.counter_party_id {
                    Some(id) => (
                        start.counter_party_address.trim_end_matches('/').to_owned(),
                        id.clone(),
                        offer.clone(),
                    ),
                    None => {
                        let fetched = catalog.fetch_catalog(&start.counter_party_address).await?;
                        (fetched.dsp_base, fetched.participant_id, offer.clone())
                    }
                }
            }
            (Some(offer_id), None) => {
                let (base, provider, offer, dataset_id) = catalog
                    .remote_offer(&start.counter_party_address, offer_id)
                    .await?;
                (base, provider, with_target(offer, &dataset_id))
            }
        };
        // The offer's ids are the provider's: sent back exactly as its catalog has them.
        let (offer_id, target) =
            super::decide::offer_ids(&offer).map_err(|e| ServiceError::field("/offer", e))?;
        let dataset_id = target.ok_or_else(|| {
            ServiceError::field("/offer/target", "the offer must name its dataset in target")
        })?;
        crate::error::http_url("/counterPartyAddress", &base)?;
        let now = self.clock.now();
        let peer = Peer {
            id: provider_id,
            address: base,
            pid: None,
        };
        let body = NegotiationBody {
            offer,
            manual: start.manual,
            ..NegotiationBody::default()
        };
        let mut n = Negotiation::new(Role::Consumer, peer, None, offer_id, dataset_id, body, now);
        n.owe(Step::Request, now);
        n.body.log(
            now,
            Actor::Local,
            "negotiation started; sending the contract request",
        );
        let saved = self
            .store
            .save_negotiation(&n, None, &Default::default())
            .await?;
        tracing::info!(pid = %saved.id, provider = %saved.counterparty_id, offer = %saved.offer_id, "negotiation started");
        self.wake.notify_one();
        Ok(saved.into())
    }
}

impl super::Negotiations {
    /// A page of negotiations, ordered by id.
    pub async fn negotiation_page(
        &self,
        token: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<NegotiationView>, ServiceError> {
        let cursor = Cursor::from_token(token)?;
        let limit = page::page_size(limit)?;
        let (after, before) = match &cursor {
            Cursor::Start => (None, None),
            Cursor::After(id) => (Some(id.as_str()), None),
            Cursor::Before(id) => (None, Some(id.as_str())),
        };
        let rows = self
            .store
            .negotiations(after, before, u64::from(limit) + 1)
            .await?;
        let page = Page::from_scan(rows, &cursor, limit, |n| n.id.clone());
        Ok(Page {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next,
            previous: page.previous,
        })
    }

    /// One negotiation.
    pub async fn negotiation_view(&self, id: &str) -> Result<NegotiationView, ServiceError> {
        self.store
            .negotiation(id)
            .await?
            .map(NegotiationView::from)
            .ok_or_else(|| ServiceError::NotFound(format!("no negotiation `{id}`")))
    }

    /// A page of agreements, ordered by id (forward only).
    pub async fn agreement_page(
        &self,
        token: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<crate::store::negotiations::AgreementRecord>, ServiceError> {
        let cursor = Cursor::from_token(token)?;
        let limit = page::page_size(limit)?;
        let after = match &cursor {
            Cursor::After(id) => Some(id.as_str()),
            _ => None,
        };
        let rows = self.store.agreements(after, u64::from(limit) + 1).await?;
        let page = Page::from_scan(rows, &cursor, limit, |a| a.id.clone());
        Ok(page)
    }

    /// One agreement.
    pub async fn agreement(
        &self,
        id: &str,
    ) -> Result<crate::store::negotiations::AgreementRecord, ServiceError> {
        self.store
            .agreement(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no agreement `{id}`")))
    }

    /// Takes a step by hand. Refused (409) when a message is still on its way, when the step is not this
    /// side's to take, or when the protocol does not allow it now, with the reason.
    pub async fn negotiation_step(
        &self,
        id: &str,
        action: ManualStep,
        body: Option<Value>,
    ) -> Result<NegotiationView, ServiceError> {
        let request: StepRequest = match body {
            Some(b) if !b.is_null() => decode(&b)?,
            _ => StepRequest::default(),
        };
        let mut n = self
            .store
            .negotiation(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no negotiation `{id}`")))?;
        let expected = n.version;
        let step = action.step();
        if let Some(pending) = n.pending
            && step != Step::Terminate
        {
            return Err(ServiceError::Conflict(format!(
                "a {} message is on its way (attempt {}{}); wait until it is acknowledged or given up, or terminate",
                pending.as_str(),
                n.attempts + 1,
                n.last_error
                    .as_deref()
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            )));
        }
        if matches!(action, ManualStep::Approve | ManualStep::Reject)
            && n.awaiting != Some(Awaiting::Approval)
        {
            return Err(ServiceError::Conflict(format!(
                "negotiation {id} is not waiting for an approval"
            )));
        }
        if let Some(role) = step.role()
            && role != n.role
        {
            return Err(ServiceError::Conflict(format!(
                "only the {role} may {}; this connector is the {} here",
                step.as_str(),
                n.role
            )));
        }
        if let Err(illegal) = transition(n.state, n.role, step.event(n.state)) {
            return Err(ServiceError::Conflict(illegal.to_string()));
        }
        let now = self.clock.now();
        let mut ledger = Vec::new();
        match step {
            Step::Agree => {
                let offer = n.body.offer.clone();
                self.agree(&mut n, &offer, now).map_err(|r| {
                    ServiceError::Internal(format!("the agreement could not be made: {r:?}"))
                })?;
            }
            Step::Terminate => {
                let reason = request.reason.clone().unwrap_or_else(|| match action {
                    ManualStep::Reject => "the provider rejected the request".into(),
                    _ => format!("terminated by the {}", n.role),
                });
                let code = request.code.clone().unwrap_or_else(|| match action {
                    ManualStep::Reject => "rejected".into(),
                    _ => "terminated".into(),
                });
                terminate_with(&mut n, &code, reason, now);
            }
            Step::Verify => {
                let agreement = n.body.agreement.clone().unwrap_or_default();
                self.check_agreement(
                    &n.body.offer,
                    (&n.dataset_id, &n.counterparty_address),
                    &n.counterparty_id,
                    &agreement,
                    n.body.signature.as_ref(),
                    false,
                )
                .map_err(ServiceError::Conflict)?;
                n.owe(Step::Verify, now);
            }
            Step::Offer | Step::CounterOffer => {
                let offer = request
                    .offer
                    .clone()
                    .ok_or_else(|| ServiceError::field("/offer", "give the offer to send"))?;
                super::decide::parse("offer", &offer)
                    .map_err(|e| ServiceError::field("/offer", e))?;
                let offer = with_target(offer, &n.dataset_id);
                if super::decide::offer_ids(&offer).is_err() {
                    return Err(ServiceError::field("/offer/@id", "the offer needs an @id"));
                }
                n.body.offer = offer;
                n.owe(step, now);
            }
            other => n.owe(other, now),
        }
        if matches!(action, ManualStep::Approve | ManualStep::Reject) {
            ledger.push(NewEntry {
                at: now,
                kind: EntryKind::PolicyDecision,
                subject: n.id.clone(),
                payload: json!({
                    "point": "negotiation",
                    "requester": n.counterparty_id,
                    "offerId": n.offer_id,
                    "datasetId": n.dataset_id,
                    "decision": if action == ManualStep::Approve { "approved" } else { "rejected" },
                    "reason": request.reason,
                }),
            });
        }
        n.body.log(
            now,
            Actor::Local,
            format!("{} (management API)", step.as_str()),
        );
        let saved = self
            .store
            .save_negotiation(
                &n,
                Some(expected),
                &crate::store::negotiations::Effects {
                    ledger,
                    keep_lease: true,
                    ..Default::default()
                },
            )
            .await?;
        self.wake.notify_one();
        Ok(saved.into())
    }
}

/// `POST /api/v1/agreements`: an agreement made outside this connector (migrated from another connector, or
/// the DSP TCK's pre-existing agreements), imported on the provider side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImportAgreement {
    /// The agreement id consumers will name in transfer requests.
    pub id: String,
    /// The consumer's participant id.
    pub consumer_id: String,
    /// The dataset (one of this connector's assets).
    pub dataset_id: String,
    /// The ODRL rules granted (e.g. `{"permission": [{"action": "use"}]}`).
    pub policy: Value,
    /// Every transfer under it is steered by hand (the TCK profile).
    #[serde(default)]
    pub stepwise: bool,
}

impl super::Negotiations {
    /// Imports an agreement as provider: it is built from `policy` like a negotiated one, signed with this
    /// connector's key, recorded in the ledger (as an import), and usable for transfers by `consumerId`.
    pub async fn import_agreement(
        &self,
        body: Value,
    ) -> Result<crate::store::negotiations::AgreementRecord, ServiceError> {
        let import: ImportAgreement = decode(&body)?;
        let mut errors = Vec::new();
        caap_catalog::asset::check_id("/id", &import.id, &mut errors);
        if let Some(e) = errors.into_iter().next() {
            return Err(ServiceError::field(&e.pointer, e.message));
        }
        if self
            .store
            .get(crate::store::DocKind::Asset, &import.dataset_id)
            .await?
            .is_none()
        {
            return Err(ServiceError::field(
                "/datasetId",
                format!("no asset `{}`", import.dataset_id),
            ));
        }
        if self.store.agreement(&import.id).await?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "agreement `{}` exists already",
                import.id
            )));
        }
        let policy = super::decide::parse("policy", &import.policy)
            .map_err(|e| ServiceError::field("/policy", e))?;
        let now = self.clock.now();
        let terms = caap_policy::AgreementTerms {
            id: import.id.clone(),
            target: import.dataset_id.clone(),
            assigner: self.identity.participant_id.clone(),
            assignee: import.consumer_id.clone(),
            timestamp: now,
        };
        let agreement = policy.to_dsp_agreement_json(&terms);
        let record =
            caap_contracts::ledger::AgreementRecord::sign(agreement.clone(), &self.identity.key)
                .map_err(|e| {
                    ServiceError::Internal(format!("signing the agreement failed: {e}"))
                })?;
        let mut body = record.to_payload();
        if let Value::Object(m) = &mut body {
            m.insert("imported".into(), Value::Bool(true));
            m.insert("stepwise".into(), Value::Bool(import.stepwise));
        }
        let row = crate::store::negotiations::AgreementRecord {
            id: import.id.clone(),
            negotiation_id: String::new(),
            role: Role::Provider,
            provider_id: self.identity.participant_id.clone(),
            consumer_id: import.consumer_id.clone(),
            dataset_id: import.dataset_id.clone(),
            body,
            signed_at: now,
        };
        self.store
            .import_agreement(
                &row,
                &[caap_contracts::ledger::NewEntry::agreement_signed(
                    now, &record,
                )],
            )
            .await?;
        tracing::info!(agreement = %import.id, consumer = %import.consumer_id, "agreement imported");
        Ok(row)
    }
}
