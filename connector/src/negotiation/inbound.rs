//! A DSP contract negotiation message in: validate, check the transition, decide what this side owes next,
//! and persist it all (with its ledger entries) in one transaction. The outbound message is the processor's
//! business; the caller gets its acknowledgement at once.

use caap_contracts::Role;
use caap_contracts::negotiation::message::ContractNegotiationAck;
use caap_contracts::negotiation::messages::{
    ContractAgreementMessage, ContractAgreementVerificationMessage,
    ContractNegotiationEventMessage, ContractNegotiationTerminationMessage, ContractOfferMessage,
    ContractRequestMessage,
};
use caap_contracts::negotiation::state::{NegotiationEvent, NegotiationState, transition};
use caap_identity::VerifiedCaller;
use chrono::{DateTime, Utc};

use super::decide::{Verdict, offer_ids, terms_of};
use super::model::{Actor, Awaiting, Negotiation, NegotiationBody, Step, Termination};
use super::{new_pid, state_entry};
use crate::service::{Connector, ServiceError};
use crate::store::StoreError;
use crate::store::negotiations::{AgreementRecord, Effects};

/// A contract negotiation message received over DSP.
#[derive(Debug, Clone)]
pub enum Inbound {
    /// `ContractRequestMessage`.
    Request(ContractRequestMessage),
    /// `ContractOfferMessage`.
    Offer(ContractOfferMessage),
    /// `ContractAgreementMessage`.
    Agreement(ContractAgreementMessage),
    /// `ContractAgreementVerificationMessage`.
    Verification(ContractAgreementVerificationMessage),
    /// `ContractNegotiationEventMessage`.
    Event(ContractNegotiationEventMessage),
    /// `ContractNegotiationTerminationMessage`.
    Termination(ContractNegotiationTerminationMessage),
}

impl Inbound {
    /// The state-machine event.
    pub fn event(&self) -> NegotiationEvent {
        match self {
            Inbound::Request(m) => m.event(),
            Inbound::Offer(m) => m.event(),
            Inbound::Agreement(_) => NegotiationEvent::Agreement,
            Inbound::Verification(_) => NegotiationEvent::Verification,
            Inbound::Event(m) => m.event(),
            Inbound::Termination(_) => NegotiationEvent::Termination,
        }
    }

    /// The pids the message names, as (provider, consumer).
    pub fn pids(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Inbound::Request(m) => (m.provider_pid.as_deref(), Some(&m.consumer_pid)),
            Inbound::Offer(m) => (Some(&m.provider_pid), m.consumer_pid.as_deref()),
            Inbound::Agreement(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
            Inbound::Verification(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
            Inbound::Event(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
            Inbound::Termination(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
        }
    }

    fn context(&self) -> &[String] {
        match self {
            Inbound::Request(m) => &m.context,
            Inbound::Offer(m) => &m.context,
            Inbound::Agreement(m) => &m.context,
            Inbound::Verification(m) => &m.context,
            Inbound::Event(m) => &m.context,
            Inbound::Termination(m) => &m.context,
        }
    }
}

/// Why an inbound message was refused. The HTTP layer answers with a `ContractNegotiationError`.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Unknown process, or not the caller's: 404 (DSP does not tell which).
    NotFound,
    /// Malformed or inconsistent message: 400.
    BadRequest(String),
    /// Not allowed in the current state: 400.
    Illegal(String),
    /// The negotiation kept changing under the message (a busy replica): 409, the sender retries.
    Busy,
    /// Our fault; the cause is logged: 500.
    Internal(String),
}

/// The refusal with the pids to put in the error body.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Why.
    pub refusal: Refusal,
    /// The provider pid to report.
    pub provider_pid: String,
    /// The consumer pid to report.
    pub consumer_pid: String,
}

/// The acknowledgement: the process and whether it was created (201) or changed (200).
#[derive(Debug, Clone)]
pub struct Acknowledged {
    /// `true` for a newly created process.
    pub created: bool,
    /// The `ContractNegotiation` body.
    pub ack: ContractNegotiationAck,
}

fn ack_of(n: &Negotiation, created: bool) -> Acknowledged {
    let (p, c) = n.pids();
    Acknowledged {
        created,
        ack: ContractNegotiationAck::new(p, c, n.state.unwrap_or(NegotiationState::Requested)),
    }
}

impl From<ServiceError> for Refusal {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadRequest(m, _) | ServiceError::Invalid(m, _) => Refusal::BadRequest(m),
            ServiceError::NotFound(_) => Refusal::NotFound,
            other => Refusal::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => Refusal::Busy,
            other => Refusal::Internal(other.to_string()),
        }
    }
}

/// Most times an inbound message is re-applied when the negotiation changed under it (a processor claim).
const CONFLICT_RETRIES: usize = 5;

fn check_callback(address: &str) -> Result<(), Refusal> {
    match url::Url::parse(address) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(_) => Err(Refusal::BadRequest(format!(
            "callbackAddress `{address}` must be an http(s) URL with a host"
        ))),
        Err(e) => Err(Refusal::BadRequest(format!(
            "callbackAddress `{address}` is not a URL: {e}"
        ))),
    }
}

impl Connector {
    /// Handles one inbound message. `pid` is the process id from the URL (`None` on the initial endpoints
    /// `/negotiations/request` and `/negotiations/offers`).
    pub async fn receive_negotiation_message(
        &self,
        caller: &VerifiedCaller,
        pid: Option<&str>,
        message: Inbound,
    ) -> Result<Acknowledged, Rejected> {
        let (p, c) = message.pids();
        let reject = |refusal| Rejected {
            refusal,
            provider_pid: p.or(pid).unwrap_or_default().to_owned(),
            consumer_pid: c.or(pid).unwrap_or_default().to_owned(),
        };
        let result = match pid {
            None => self.receive_initial(caller, &message).await,
            Some(pid) => self.receive_in_process(caller, pid, &message).await,
        };
        match result {
            Ok(ack) => {
                self.wake.notify_one();
                Ok(ack)
            }
            Err(refusal) => {
                match &refusal {
                    Refusal::Internal(cause) => {
                        tracing::error!(pid, %cause, "negotiation message failed")
                    }
                    other => tracing::info!(pid, refusal = ?other, caller = %caller.participant_id,
                        message = %message.event(), "negotiation message refused"),
                }
                Err(reject(refusal))
            }
        }
    }

    async fn receive_initial(
        &self,
        caller: &VerifiedCaller,
        message: &Inbound,
    ) -> Result<Acknowledged, Refusal> {
        caap_contracts::negotiation::messages::check_context(message.context())
            .map_err(Refusal::BadRequest)?;
        match message {
            Inbound::Request(m) if m.provider_pid.is_none() => {
                m.check().map_err(Refusal::BadRequest)?;
                self.receive_request(caller, m).await
            }
            Inbound::Offer(m) if m.consumer_pid.is_none() => {
                m.check().map_err(Refusal::BadRequest)?;
                self.receive_initial_offer(caller, m).await
            }
            other => Err(Refusal::BadRequest(format!(
                "{} cannot start a negotiation; post it to the negotiation's own path",
                other.event()
            ))),
        }
    }

    /// An initial contract request: the provider side of a new negotiation.
    async fn receive_request(
        &self,
        caller: &VerifiedCaller,
        m: &ContractRequestMessage,
    ) -> Result<Acknowledged, Refusal> {
        let callback = m.callback_address.as_deref().unwrap_or_default();
        check_callback(callback)?;
        if let Some(existing) = self
            .store
            .negotiation_by_consumer_pid(&caller.participant_id, &m.consumer_pid)
            .await?
        {
            // The same consumer sent the same initial request again: answer as the first time.
            return Ok(ack_of(&existing, true));
        }
        let (offer_id, target) = offer_ids(&m.offer).map_err(Refusal::BadRequest)?;
        let Some(offer) = self.current_offer(&offer_id).await? else {
            return Err(Refusal::BadRequest(format!(
                "offer `{offer_id}` is not in this connector's catalog; request an offer id from a \
                 dataset's hasPolicy"
            )));
        };
        let dataset_id = match (target, offer.assets.as_slice()) {
            (Some(t), _) => caap_catalog::iri::Namespace::new(&self.identity.dsp_base)
                .dataset_handle(&t)
                .map(str::to_owned)
                .ok_or_else(|| {
                    Refusal::BadRequest(format!(
                        "offer.target `{t}` is not a dataset of this connector's catalog"
                    ))
                })?,
            (None, [only]) => only.clone(),
            (None, _) => {
                return Err(Refusal::BadRequest(
                    "offer.target must name the dataset: this offer covers several".into(),
                ));
            }
        };
        // Kept (and echoed in offers) with absolute ids: a relative one names this provider's own.
        let mut requested = m.offer.clone();
        caap_catalog::iri::Namespace::new(&self.identity.dsp_base)
            .absolute_offer_ids(&mut requested);
        let now = self.clock.now();
        let id = new_pid();
        let mut n = Negotiation {
            id: id.clone(),
            role: Role::Provider,
            provider_pid: Some(id),
            consumer_pid: Some(m.consumer_pid.clone()),
            counterparty_id: caller.participant_id.clone(),
            counterparty_address: callback.to_owned(),
            state: Some(NegotiationState::Requested),
            offer_id,
            dataset_id,
            body: NegotiationBody {
                offer: requested,
                manual: offer.approval == caap_catalog::offer::Approval::Stepwise,
                ..NegotiationBody::default()
            },
            pending: None,
            awaiting: None,
            attempts: 0,
            last_error: None,
            next_attempt_at: None,
            created_at: now,
            updated_at: now,
            version: 0,
        };
        let event = m.event();
        n.body
            .log(now, Actor::Consumer, format!("{event} -> REQUESTED"));
        n.body.last_inbound = Some(format!("{event} -> REQUESTED"));
        let mut effects = Effects::default();
        effects
            .ledger
            .push(state_entry(&n, now, None, event, Actor::Consumer));
        self.react(caller, &mut n, &mut effects, now, None).await?;
        let saved = self.store.save_negotiation(&n, None, &effects).await?;
        tracing::info!(pid = %saved.id, consumer = %caller.participant_id, offer = %saved.offer_id,
            pending = ?saved.pending, awaiting = ?saved.awaiting, "negotiation requested");
        Ok(ack_of(&saved, true))
    }

    /// An initial, provider-initiated offer: the consumer side of a new negotiation. caap never accepts an
    /// unsolicited offer by itself; it waits for a decision through the management API.
    async fn receive_initial_offer(
        &self,
        caller: &VerifiedCaller,
        m: &ContractOfferMessage,
    ) -> Result<Acknowledged, Refusal> {
        let callback = m.callback_address.as_deref().unwrap_or_default();
        check_callback(callback)?;
        let (offer_id, target) = offer_ids(&m.offer).map_err(Refusal::BadRequest)?;
        let dataset_id = target.ok_or_else(|| {
            Refusal::BadRequest("offer.target must name the dataset offered".into())
        })?;
        let now = self.clock.now();
        let id = new_pid();
        let mut n = Negotiation {
            id: id.clone(),
            role: Role::Consumer,
            provider_pid: Some(m.provider_pid.clone()),
            consumer_pid: Some(id),
            counterparty_id: caller.participant_id.clone(),
            counterparty_address: callback.to_owned(),
            state: Some(NegotiationState::Offered),
            offer_id,
            dataset_id,
            body: NegotiationBody {
                offer: m.offer.clone(),
                manual: true,
                ..NegotiationBody::default()
            },
            pending: None,
            awaiting: Some(Awaiting::Decision),
            attempts: 0,
            last_error: None,
            next_attempt_at: None,
            created_at: now,
            updated_at: now,
            version: 0,
        };
        let event = m.event();
        n.body.log(
            now,
            Actor::Provider,
            format!(
                "{event} -> OFFERED; waiting for a decision (accept, counter-offer or terminate)"
            ),
        );
        n.body.last_inbound = Some(format!("{event} -> OFFERED"));
        let effects = Effects {
            ledger: vec![state_entry(&n, now, None, event, Actor::Provider)],
            ..Effects::default()
        };
        let saved = self.store.save_negotiation(&n, None, &effects).await?;
        Ok(ack_of(&saved, true))
    }

    async fn receive_in_process(
        &self,
        caller: &VerifiedCaller,
        pid: &str,
        message: &Inbound,
    ) -> Result<Acknowledged, Refusal> {
        caap_contracts::negotiation::messages::check_context(message.context())
            .map_err(Refusal::BadRequest)?;
        match message {
            Inbound::Request(m) => m.check().map_err(Refusal::BadRequest)?,
            Inbound::Offer(m) => m.check().map_err(Refusal::BadRequest)?,
            _ => {}
        }
        let mut attempt = 0;
        loop {
            let Some(n) = self.store.negotiation(pid).await? else {
                return Err(Refusal::NotFound);
            };
            if n.counterparty_id != caller.participant_id {
                tracing::info!(pid, caller = %caller.participant_id, "negotiation message from a party that is not the counterparty");
                return Err(Refusal::NotFound);
            }
            match self.apply_inbound(caller, n, message).await {
                Err(Refusal::Busy) if attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn apply_inbound(
        &self,
        caller: &VerifiedCaller,
        mut n: Negotiation,
        message: &Inbound,
    ) -> Result<Acknowledged, Refusal> {
        let expected = n.version;
        let sender = n.counterparty_role();
        let event = message.event();
        let (p, c) = message.pids();
        // The pid in the URL is ours; the body must agree with what we know.
        let (ours, theirs) = match n.role {
            Role::Provider => (p, c),
            Role::Consumer => (c, p),
        };
        if ours.is_some_and(|o| o != n.id) {
            return Err(Refusal::BadRequest(format!(
                "the {} pid in the body differs from the process in the URL ({})",
                n.role, n.id
            )));
        }
        let known_theirs = match n.role {
            Role::Provider => n.consumer_pid.clone(),
            Role::Consumer => n.provider_pid.clone(),
        };
        match (known_theirs.as_deref(), theirs) {
            (Some(k), Some(t)) if k != t => {
                return Err(Refusal::BadRequest(format!(
                    "the {} pid in the body is `{t}`, but this negotiation's is `{k}`",
                    sender
                )));
            }
            (None, Some(t)) => match n.role {
                Role::Provider => n.consumer_pid = Some(t.to_owned()),
                Role::Consumer => n.provider_pid = Some(t.to_owned()),
            },
            _ => {}
        }
        let now = self.clock.now();
        let from = n.state;
        let mut effects = Effects::default();
        let to = match transition(from, sender, event) {
            Ok(to) => to,
            Err(illegal) => {
                // A repeated message (the same one that led to the current state) changes nothing.
                // Not while we owe a message: then the counterparty may already consider the negotiation moved on
                // (our message reached it before we recorded its acknowledgement), and the same message again
                // is an illegal one, not a retry.
                let repeat = n.pending.is_none()
                    && n.state.is_some_and(|now_in| {
                        n.body.last_inbound.as_deref()
                            == Some(format!("{event} -> {now_in}").as_str())
                    })
                    && event
                        != (NegotiationEvent::Request {
                            counter_offer: true,
                        });
                if repeat {
                    return Ok(ack_of(&n, false));
                }
                // The counterparty answered a message of ours whose acknowledgement we have not recorded yet:
                // its answer proves it received ours, so our step took effect.
                let implied = n.pending.and_then(|step| {
                    let mid = transition(from, n.role, step.event(from)).ok()?;
                    let to = transition(Some(mid), sender, event).ok()?;
                    Some((step, mid, to))
                });
                let Some((step, mid, to)) = implied else {
                    return Err(Refusal::Illegal(illegal.to_string()));
                };
                n.state = Some(mid);
                if step == Step::Terminate {
                    n.body.termination = n.body.outgoing_termination.take();
                }
                n.body.log(
                    now,
                    n.role.into(),
                    format!(
                        "{} -> {mid} (acknowledged by the counterparty's next message)",
                        step.event(from)
                    ),
                );
                effects
                    .ledger
                    .push(state_entry(&n, now, from, step.event(from), n.role.into()));
                n.idle();
                to
            }
        };
        effects.keep_lease = true;
        let before = n.state;
        let previous_offer = n.body.offer.clone();
        match message {
            Inbound::Request(m) => n.body.offer = m.offer.clone(),
            Inbound::Offer(m) => n.body.offer = m.offer.clone(),
            Inbound::Agreement(m) => {
                n.body.agreement = Some(m.agreement.clone());
                n.body.signature = m.signature.clone();
            }
            Inbound::Termination(m) => {
                n.body.termination = Some(Termination {
                    by: sender.into(),
                    code: m.code.clone(),
                    reason: m.reason_text(),
                });
            }
            Inbound::Verification(_) | Inbound::Event(_) => {}
        }
        n.state = Some(to);
        n.body.last_inbound = Some(format!("{event} -> {to}"));
        n.body.log(now, sender.into(), format!("{event} -> {to}"));
        effects
            .ledger
            .push(state_entry(&n, now, before, event, sender.into()));
        if to.is_terminal() || n.pending.is_some() {
            // After a termination or finalization nothing is owed; a message that arrives while we still owe
            // one (only possible for terminations) replaces it.
            n.idle();
        }
        self.react(caller, &mut n, &mut effects, now, Some(&previous_offer))
            .await?;
        let saved = self
            .store
            .save_negotiation(&n, Some(expected), &effects)
            .await?;
        tracing::info!(pid = %saved.id, role = %saved.role, from = ?before, to = %to, by = %sender,
            pending = ?saved.pending, awaiting = ?saved.awaiting, "negotiation transition");
        Ok(ack_of(&saved, false))
    }

    /// What this side does after the counterparty's message moved the negotiation to its current state.
    async fn react(
        &self,
        caller: &VerifiedCaller,
        n: &mut Negotiation,
        effects: &mut Effects,
        now: DateTime<Utc>,
        previous_offer: Option<&serde_json::Value>,
    ) -> Result<(), Refusal> {
        use NegotiationState as S;
        let Some(state) = n.state else { return Ok(()) };
        if state == S::Finalized {
            n.idle();
            if n.role == Role::Consumer {
                effects.agreement = agreement_record(n, &self.identity.participant_id, now);
                effects.ledger.extend(agreement_entry(n, now));
            }
            return Ok(());
        }
        if state.is_terminal() {
            n.idle();
            return Ok(());
        }
        if n.body.manual {
            n.park(Awaiting::Decision);
            return Ok(());
        }
        match (n.role, state) {
            (Role::Provider, S::Requested) => {
                let (verdict, entry) = self
                    .judge_request(caller, &n.id, &n.body.offer, &n.dataset_id, now)
                    .await?;
                effects.ledger.push(entry);
                self.apply_verdict(n, verdict, now)?;
            }
            (Role::Provider, S::Accepted) => {
                let offer = n.body.offer.clone();
                self.agree(n, &offer, now)?;
            }
            (Role::Provider, S::Verified) => n.owe(Step::Finalize, now),
            (Role::Consumer, S::Offered) => {
                let same = previous_offer
                    .and_then(|prev| {
                        let a = super::decide::parse("offer", prev).ok()?;
                        let b = super::decide::parse("offer", &n.body.offer).ok()?;
                        Some(terms_of(&a) == terms_of(&b))
                    })
                    .unwrap_or(false);
                if same {
                    n.owe(Step::Accept, now);
                } else {
                    n.park(Awaiting::Decision);
                    n.body.log(
                        now,
                        Actor::Local,
                        "the provider offered other terms than requested: waiting for a decision \
                         (accept, counter-offer or terminate)",
                    );
                }
            }
            (Role::Consumer, S::Agreed) => {
                let offer = n.body.offer.clone();
                let agreement = n.body.agreement.clone().unwrap_or_default();
                // With DCP the provider's DID is verified: its agreement must be signed with one of its
                // DID document's assertion keys, not just any key the message carries.
                let bound = match (&n.body.signature, caller.method) {
                    (Some(sig), "dcp") => {
                        self.trust
                            .check_signer(&n.counterparty_id, &sig.signer_jwk)
                            .await
                    }
                    _ => Ok(()),
                };
                match bound.and_then(|()| {
                    self.check_agreement(
                        &offer,
                        &n.dataset_id,
                        &n.counterparty_id,
                        &agreement,
                        n.body.signature.as_ref(),
                        true,
                    )
                }) {
                    Ok(()) => n.owe(Step::Verify, now),
                    Err(reason) => {
                        n.body
                            .log(now, Actor::Local, format!("agreement refused: {reason}"));
                        terminate_with(n, "agreement-invalid", reason, now);
                    }
                }
            }
            // States where the counterparty owes the next message.
            _ => n.idle(),
        }
        Ok(())
    }

    /// Applies the provider's verdict on a request.
    pub(crate) fn apply_verdict(
        &self,
        n: &mut Negotiation,
        verdict: Verdict,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        match verdict {
            Verdict::Agree => {
                let offer = n.body.offer.clone();
                self.agree(n, &offer, now)?;
            }
            Verdict::Approval => {
                n.park(Awaiting::Approval);
                n.body.log(
                    now,
                    Actor::Local,
                    "waiting for approval (the offer is marked approval = manual)",
                );
            }
            Verdict::Terminate { code, reason } => {
                n.body
                    .log(now, Actor::Local, format!("request refused: {reason}"));
                terminate_with(n, code, reason, now);
            }
        }
        Ok(())
    }

    /// Makes and signs the agreement on `offer`, and owes it.
    pub(crate) fn agree(
        &self,
        n: &mut Negotiation,
        offer: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let (agreement, signature) =
            self.make_agreement(offer, &n.dataset_id, &n.counterparty_id, now)?;
        n.body.agreement = Some(agreement);
        n.body.signature = Some(signature);
        n.owe(Step::Agree, now);
        Ok(())
    }
}

/// Owes a termination with `code` and `reason`.
pub fn terminate_with(n: &mut Negotiation, code: &str, reason: String, now: DateTime<Utc>) {
    n.body.outgoing_termination = Some(Termination {
        by: n.role.into(),
        code: Some(code.to_owned()),
        reason,
    });
    n.owe(Step::Terminate, now);
}

/// The agreement record of a finalized negotiation (`None` if it has no agreement, which cannot happen
/// through the state machine).
pub fn agreement_record(
    n: &Negotiation,
    own_id: &str,
    now: DateTime<Utc>,
) -> Option<AgreementRecord> {
    let agreement = n.body.agreement.clone()?;
    let id = agreement.get("@id")?.as_str()?.to_owned();
    let (provider_id, consumer_id) = match n.role {
        Role::Provider => (own_id.to_owned(), n.counterparty_id.clone()),
        Role::Consumer => (n.counterparty_id.clone(), own_id.to_owned()),
    };
    let body = serde_json::json!({
        "agreement": agreement,
        "jws": n.body.signature.as_ref().map(|s| s.jws.clone()),
        "signerJwk": n.body.signature.as_ref().map(|s| s.signer_jwk.clone()),
    });
    Some(AgreementRecord {
        id,
        negotiation_id: n.id.clone(),
        role: n.role,
        provider_id,
        consumer_id,
        dataset_id: n.dataset_id.clone(),
        body,
        signed_at: now,
    })
}

/// The ledger entry for a finalized agreement: signed ones as `AgreementSigned` (checked by `caap ledger
/// verify`), unsigned ones (accepted only when `negotiation.require_signed_agreements` is off) as a plain record.
pub fn agreement_entry(
    n: &Negotiation,
    now: DateTime<Utc>,
) -> Option<caap_contracts::ledger::NewEntry> {
    use caap_contracts::ledger::{AgreementRecord as Signed, EntryKind, NewEntry};
    let agreement = n.body.agreement.clone()?;
    let id = agreement.get("@id")?.as_str()?.to_owned();
    Some(match &n.body.signature {
        Some(sig) => NewEntry {
            at: now,
            kind: EntryKind::AgreementSigned,
            subject: id,
            payload: serde_json::to_value(Signed {
                agreement,
                jws: sig.jws.clone(),
                signer_jwk: sig.signer_jwk.clone(),
            })
            .ok()?,
        },
        None => NewEntry {
            at: now,
            kind: EntryKind::NegotiationState,
            subject: id,
            payload: serde_json::json!({"unsignedAgreement": agreement, "negotiation": n.id}),
        },
    })
}
