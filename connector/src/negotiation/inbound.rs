//! A DSP contract negotiation message in: validate, apply it to the negotiation
//! ([`caap_contracts::process::apply`]), decide what this side owes next, and persist it all (with its ledger
//! entries) in one transaction. The outbound message is the processor's business, and so is anything that needs
//! another server (resolving the provider's DID to check an agreement's signer): the caller gets its
//! acknowledgement at once, and no outbound call happens inside the request.

use caap_contracts::Role;
use caap_contracts::negotiation::message::ContractNegotiationAck;
use caap_contracts::negotiation::messages::{ContractOfferMessage, ContractRequestMessage};
pub use caap_contracts::negotiation::process::Inbound;
use caap_contracts::negotiation::state::NegotiationState;
use caap_contracts::process::{Message, Process, apply};
use caap_identity::VerifiedCaller;
use chrono::{DateTime, Utc};

use super::Negotiations;
use super::decide::{Verdict, offer_ids};
use super::model::{Actor, Awaiting, Negotiation, NegotiationBody, Peer, Step};
use crate::process::{ProcessKind, answer, check_callback, in_process};
pub use crate::process::{Refusal, Rejected};
use crate::store::negotiations::{AgreementRecord, Effects};

/// The acknowledgement: the `ContractNegotiation` body, created (201) or changed (200).
pub type Acknowledged = crate::process::Acknowledged<ContractNegotiationAck>;

fn ack_of(n: &Negotiation, created: bool) -> Acknowledged {
    let (p, c) = n.pids();
    Acknowledged {
        created,
        ack: ContractNegotiationAck::new(p, c, n.state.unwrap_or(NegotiationState::Requested)),
    }
}

crate::process::process_service!(
    Negotiations,
    Negotiation,
    Inbound,
    ContractNegotiationAck,
    ProcessKind::Negotiation,
    ack_of
);

impl Negotiations {
    /// Handles one inbound message. `pid` is the process id from the URL (`None` on the initial endpoints
    /// `/negotiations/request` and `/negotiations/offers`).
    pub async fn receive_message(
        &self,
        caller: &VerifiedCaller,
        pid: Option<&str>,
        message: Inbound,
    ) -> Result<Acknowledged, Rejected> {
        let result = match message.check().map_err(Refusal::BadRequest) {
            Err(e) => Err(e),
            Ok(()) => match (pid, &message) {
                (None, Inbound::Request(m)) if m.provider_pid.is_none() => {
                    self.receive_request(caller, m).await
                }
                (None, Inbound::Offer(m)) if m.consumer_pid.is_none() => {
                    self.receive_initial_offer(caller, m).await
                }
                (None, other) => Err(Refusal::BadRequest(format!(
                    "{} cannot start a negotiation; post it to the negotiation's own path",
                    other.event()
                ))),
                (Some(pid), _) => {
                    in_process(&self.store, caller, pid, async |n| {
                        self.apply_inbound(caller, n, &message).await
                    })
                    .await
                }
            },
        };
        if result.is_ok() {
            self.wake.notify_one();
        }
        answer(caller, pid, message.pids(), "negotiation", result)
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
            .process_by_consumer_pid::<Negotiation>(&caller.participant_id, &m.consumer_pid)
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
        let body = NegotiationBody {
            offer: requested,
            manual: offer.approval == caap_catalog::offer::Approval::Stepwise,
            ..NegotiationBody::default()
        };
        let (mut n, mut effects) = self.created(
            Role::Provider,
            caller,
            (callback, &m.consumer_pid),
            (offer_id, dataset_id),
            body,
            m.event(),
            now,
        );
        self.react(caller, &mut n, &mut effects, now, None).await?;
        let saved = self.store.save(&n, None, &effects).await?;
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
        let body = NegotiationBody {
            offer: m.offer.clone(),
            manual: true,
            ..NegotiationBody::default()
        };
        let (mut n, effects) = self.created(
            Role::Consumer,
            caller,
            (callback, &m.provider_pid),
            (offer_id, dataset_id),
            body,
            m.event(),
            now,
        );
        n.park(Awaiting::Decision);
        n.body.log(
            now,
            Actor::Local,
            "waiting for a decision (accept, counter-offer or terminate)",
        );
        let saved = self.store.save(&n, None, &effects).await?;
        Ok(ack_of(&saved, true))
    }

    /// A negotiation the counterparty's initial message created, with its history line and ledger entry.
    #[allow(clippy::too_many_arguments)]
    fn created(
        &self,
        role: Role,
        caller: &VerifiedCaller,
        (callback, their_pid): (&str, &str),
        (offer_id, dataset_id): (String, String),
        body: NegotiationBody,
        event: caap_contracts::negotiation::state::NegotiationEvent,
        now: DateTime<Utc>,
    ) -> (Negotiation, Effects) {
        let state = match role {
            Role::Provider => NegotiationState::Requested,
            Role::Consumer => NegotiationState::Offered,
        };
        let peer = Peer {
            id: caller.participant_id.clone(),
            address: callback.to_owned(),
            pid: Some(their_pid.to_owned()),
        };
        let mut n = Negotiation::new(role, peer, Some(state), offer_id, dataset_id, body, now);
        let line = format!("{event} -> {state}");
        n.body.log(now, role.counterparty().into(), line.clone());
        n.body.last_inbound = Some(line);
        let effects = Effects {
            ledger: vec![n.entry(now, None, event, role.counterparty().into())],
            ..Effects::default()
        };
        (n, effects)
    }

    async fn apply_inbound(
        &self,
        caller: &VerifiedCaller,
        n: Negotiation,
        message: &Inbound,
    ) -> Result<Acknowledged, Refusal> {
        let expected = n.version;
        let previous_offer = n.body.offer.clone();
        let now = self.clock.now();
        let (mut n, applied) = apply(n, message, now)?;
        let Some(moved) = applied.moved else {
            return Ok(ack_of(&n, false));
        };
        let mut effects = Effects {
            ledger: applied.ledger,
            keep_lease: true,
            ..Effects::default()
        };
        self.react(caller, &mut n, &mut effects, now, Some(&previous_offer))
            .await?;
        let saved = self.store.save(&n, Some(expected), &effects).await?;
        tracing::info!(pid = %saved.id, role = %saved.role, from = ?moved.from, to = %moved.to,
            by = %saved.role.counterparty(), pending = ?saved.pending, awaiting = ?saved.awaiting,
            "negotiation transition");
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
                        Some(a.same_terms(&b))
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
                // The signature and the terms are checked here; that the signing key is the provider's (its DID
                // document's, with DCP) is checked by the processor before it sends the verification, since
                // that may need the DID document from the provider's server.
                let agreement = n.body.agreement.clone().unwrap_or_default();
                match self.check_agreement(
                    &n.body.offer,
                    (&n.dataset_id, &n.counterparty_address),
                    &n.counterparty_id,
                    &agreement,
                    n.body.signature.as_ref(),
                    true,
                ) {
                    Ok(()) => n.owe(Step::Verify, now),
                    Err(reason) => refuse_agreement(n, reason, now),
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
    n.owe_with_reason(Step::Terminate, code, reason, now);
}

/// The consumer refuses a received agreement: it terminates the negotiation with the reason.
pub fn refuse_agreement(n: &mut Negotiation, reason: String, now: DateTime<Utc>) {
    n.body
        .log(now, Actor::Local, format!("agreement refused: {reason}"));
    terminate_with(n, "agreement-invalid", reason, now);
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
