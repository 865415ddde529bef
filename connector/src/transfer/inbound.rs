//! A DSP transfer-process message in: validate, check the agreement and the transition, decide what this side
//! owes, persist (with the ledger entry) in one transaction, wake the processor.

use caap_contracts::Role;
use caap_contracts::transfer::message::{
    TransferCompletionMessage, TransferProcessAck, TransferRequestMessage, TransferStartMessage,
    TransferSuspensionMessage, TransferTerminationMessage,
};
use caap_contracts::transfer::state::{TransferEvent, TransferState, transition};
use caap_identity::VerifiedCaller;
use chrono::{DateTime, Utc};

use super::model::{Actor, TStep, Termination, Transfer, TransferBody};
use super::state_entry;
use crate::negotiation::inbound::{Refusal, Rejected};
use crate::negotiation::new_pid;
use crate::service::Connector;
use crate::store::negotiations::Effects;

/// The formats caap's data plane serves.
pub const PULL: &str = "HttpData-PULL";
/// Push format.
pub const PUSH: &str = "HttpData-PUSH";

/// A transfer-process message received over DSP.
#[derive(Debug, Clone)]
pub enum TInbound {
    /// `TransferRequestMessage`.
    Request(TransferRequestMessage),
    /// `TransferStartMessage`.
    Start(TransferStartMessage),
    /// `TransferSuspensionMessage`.
    Suspension(TransferSuspensionMessage),
    /// `TransferCompletionMessage`.
    Completion(TransferCompletionMessage),
    /// `TransferTerminationMessage`.
    Termination(TransferTerminationMessage),
}

impl TInbound {
    /// The state-machine event.
    pub fn event(&self) -> TransferEvent {
        match self {
            TInbound::Request(_) => TransferEvent::Request,
            TInbound::Start(_) => TransferEvent::Start,
            TInbound::Suspension(_) => TransferEvent::Suspension,
            TInbound::Completion(_) => TransferEvent::Completion,
            TInbound::Termination(_) => TransferEvent::Termination,
        }
    }

    /// (provider pid, consumer pid) as the message names them.
    pub fn pids(&self) -> (Option<&str>, Option<&str>) {
        match self {
            TInbound::Request(m) => (None, Some(&m.consumer_pid)),
            TInbound::Start(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
            TInbound::Suspension(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
            TInbound::Completion(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
            TInbound::Termination(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
        }
    }

    fn check(&self) -> Result<(), String> {
        match self {
            TInbound::Request(m) => m.check(),
            TInbound::Start(m) => m.check(),
            TInbound::Suspension(m) => m.check(),
            TInbound::Completion(m) => m.check(),
            TInbound::Termination(m) => m.check(),
        }
    }
}

/// The acknowledgement: the process and whether it was created.
#[derive(Debug, Clone)]
pub struct TAcknowledged {
    /// 201 for a new process.
    pub created: bool,
    /// The `TransferProcess` body.
    pub ack: TransferProcessAck,
}

/// The ACK body of a transfer.
pub fn ack_of(t: &Transfer, created: bool) -> TAcknowledged {
    let (p, c) = t.pids();
    TAcknowledged {
        created,
        ack: TransferProcessAck::new(p, c, t.state.unwrap_or(TransferState::Requested)),
    }
}

const CONFLICT_RETRIES: usize = 5;

/// Owes a suspension or termination with a code and reason.
pub fn owe_with_reason(
    t: &mut Transfer,
    step: TStep,
    code: &str,
    reason: String,
    now: DateTime<Utc>,
) {
    t.body.outgoing = Some(Termination {
        by: t.role.into(),
        code: Some(code.to_owned()),
        reason,
    });
    t.owe(step, now);
}

impl Connector {
    /// Handles one inbound transfer message (`pid`: ours, from the URL; `None` on `/transfers/request`).
    pub async fn receive_transfer_message(
        &self,
        caller: &VerifiedCaller,
        pid: Option<&str>,
        message: TInbound,
    ) -> Result<TAcknowledged, Rejected> {
        let (p, c) = message.pids();
        let reject = |refusal| Rejected {
            refusal,
            provider_pid: p.or(pid).unwrap_or_default().to_owned(),
            consumer_pid: c.or(pid).unwrap_or_default().to_owned(),
        };
        let result = match message.check().map_err(Refusal::BadRequest) {
            Err(e) => Err(e),
            Ok(()) => match (pid, &message) {
                (None, TInbound::Request(m)) => self.receive_transfer_request(caller, m).await,
                (None, other) => Err(Refusal::BadRequest(format!(
                    "{:?} cannot start a transfer process",
                    other.event()
                ))),
                (Some(pid), _) => self.receive_in_transfer(caller, pid, &message).await,
            },
        };
        match result {
            Ok(ack) => {
                self.wake.notify_one();
                Ok(ack)
            }
            Err(refusal) => {
                match &refusal {
                    Refusal::Internal(cause) => {
                        tracing::error!(pid, %cause, "transfer message failed")
                    }
                    other => tracing::info!(pid, refusal = ?other, caller = %caller.participant_id,
                        "transfer message refused"),
                }
                Err(reject(refusal))
            }
        }
    }

    async fn receive_transfer_request(
        &self,
        caller: &VerifiedCaller,
        m: &TransferRequestMessage,
    ) -> Result<TAcknowledged, Refusal> {
        if let Some(existing) = self
            .store
            .transfer_by_consumer_pid(&caller.participant_id, &m.consumer_pid)
            .await?
        {
            return Ok(ack_of(&existing, true));
        }
        match url::Url::parse(&m.callback_address) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(Refusal::BadRequest(format!(
                    "callbackAddress `{}` must be an http(s) URL",
                    m.callback_address
                )));
            }
        }
        // A transfer needs a finalized agreement with this consumer.
        let agreement = self.store.agreement(&m.agreement_id).await?;
        let Some(agreement) = agreement
            .filter(|a| a.role == Role::Provider && a.consumer_id == caller.participant_id)
        else {
            return Err(Refusal::BadRequest(format!(
                "agreement `{}` is not a finalized agreement between this provider and {}",
                m.agreement_id, caller.participant_id
            )));
        };
        // The agreement's terms must permit a transfer now (a closed time window refuses it; counts are
        // checked per access).
        let now = self.clock.now();
        if let Ok(policy) = caap_policy::parse_policy(&agreement.body["agreement"]) {
            let ctx = crate::enforce::usage_context(
                &policy,
                &caller.participant_id,
                &agreement.dataset_id,
                now,
                0,
                None,
            )
            .with_claims(caller.claims.clone());
            let decision = self.decider.decide(&policy, &ctx);
            if !decision.permitted {
                return Err(Refusal::BadRequest(format!(
                    "agreement `{}` does not permit a transfer now: {}",
                    m.agreement_id,
                    decision.reasons.join("; ")
                )));
            }
        }
        let push = m.format.eq_ignore_ascii_case(PUSH);
        if !push && !m.format.eq_ignore_ascii_case(PULL) {
            return Err(Refusal::BadRequest(format!(
                "format `{}` is not served; use {PULL} or {PUSH}",
                m.format
            )));
        }
        if push
            && m.data_address
                .as_ref()
                .and_then(|a| a.endpoint.as_ref())
                .is_none()
        {
            return Err(Refusal::BadRequest(format!(
                "{PUSH} needs a dataAddress with the endpoint to push to"
            )));
        }
        let stepwise_import =
            agreement.body.get("stepwise") == Some(&serde_json::Value::Bool(true));
        let manual = stepwise_import
            || match self.store.negotiation(&agreement.negotiation_id).await? {
                Some(n) => n.body.manual,
                None => false,
            };
        let id = new_pid();
        let mut t = Transfer {
            id: id.clone(),
            role: Role::Provider,
            provider_pid: Some(id),
            consumer_pid: Some(m.consumer_pid.clone()),
            counterparty_id: caller.participant_id.clone(),
            counterparty_address: m.callback_address.clone(),
            state: Some(TransferState::Requested),
            agreement_id: m.agreement_id.clone(),
            format: m.format.clone(),
            body: TransferBody {
                dataset_id: agreement.dataset_id.clone(),
                data_address: m.data_address.clone(),
                manual,
                ..TransferBody::default()
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
        t.body
            .log(now, Actor::Consumer, "TransferRequestMessage -> REQUESTED");
        t.body.last_inbound = Some("Request -> REQUESTED".into());
        if manual {
            t.park();
        } else {
            // The policy seam: every access is checked against the agreement when it happens (data plane).
            t.owe(TStep::Start, now);
        }
        let effects = Effects {
            ledger: vec![state_entry(
                &t,
                now,
                None,
                TransferEvent::Request,
                Actor::Consumer,
            )],
            ..Effects::default()
        };
        let saved = self.store.save_transfer(&t, None, &effects).await?;
        tracing::info!(pid = %saved.id, consumer = %caller.participant_id, agreement = %saved.agreement_id,
            format = %saved.format, "transfer requested");
        Ok(ack_of(&saved, true))
    }

    async fn receive_in_transfer(
        &self,
        caller: &VerifiedCaller,
        pid: &str,
        message: &TInbound,
    ) -> Result<TAcknowledged, Refusal> {
        let mut attempt = 0;
        loop {
            let Some(t) = self.store.transfer(pid).await? else {
                return Err(Refusal::NotFound);
            };
            if t.counterparty_id != caller.participant_id {
                return Err(Refusal::NotFound);
            }
            match self.apply_transfer_inbound(t, message).await {
                Err(Refusal::Busy) if attempt < CONFLICT_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    async fn apply_transfer_inbound(
        &self,
        mut t: Transfer,
        message: &TInbound,
    ) -> Result<TAcknowledged, Refusal> {
        let expected = t.version;
        let sender = t.role.counterparty();
        let event = message.event();
        let (p, c) = message.pids();
        let (ours, theirs) = match t.role {
            Role::Provider => (p, c),
            Role::Consumer => (c, p),
        };
        if ours.is_some_and(|o| o != t.id) {
            return Err(Refusal::BadRequest(format!(
                "the {} pid in the body differs from the process in the URL ({})",
                t.role, t.id
            )));
        }
        let known = match t.role {
            Role::Provider => t.consumer_pid.clone(),
            Role::Consumer => t.provider_pid.clone(),
        };
        match (known.as_deref(), theirs) {
            (Some(k), Some(x)) if k != x => {
                return Err(Refusal::BadRequest(format!(
                    "the {sender} pid in the body is `{x}`, but this transfer's is `{k}`"
                )));
            }
            (None, Some(x)) => match t.role {
                Role::Provider => t.consumer_pid = Some(x.to_owned()),
                Role::Consumer => t.provider_pid = Some(x.to_owned()),
            },
            _ => {}
        }
        let now = self.clock.now();
        let from = t.state;
        let mut effects = Effects {
            keep_lease: true,
            ..Effects::default()
        };
        let to = match transition(from, sender, event) {
            Ok(to) => to,
            Err(illegal) => {
                let repeat = t.pending.is_none()
                    && t.state.is_some_and(|s| {
                        t.body.last_inbound.as_deref() == Some(format!("{event:?} -> {s}").as_str())
                    });
                if repeat {
                    return Ok(ack_of(&t, false));
                }
                // Our pending message may have been received already (the counterparty answers it).
                let implied = t.pending.and_then(|step| {
                    let mid = transition(from, t.role, step.event()?).ok()?;
                    let to = transition(Some(mid), sender, event).ok()?;
                    Some((step, mid, to))
                });
                let Some((step, mid, to)) = implied else {
                    return Err(Refusal::Illegal(illegal.to_string()));
                };
                t.state = Some(mid);
                t.body.log(
                    now,
                    t.role.into(),
                    format!("{step:?} -> {mid} (acknowledged by the counterparty's next message)"),
                );
                if let Some(e) = step.event() {
                    effects
                        .ledger
                        .push(state_entry(&t, now, from, e, t.role.into()));
                }
                t.idle();
                to
            }
        };
        let before = t.state;
        match message {
            TInbound::Start(m) => {
                if m.data_address.is_some() {
                    t.body.data_address = m.data_address.clone();
                }
                t.body.termination = None;
            }
            TInbound::Suspension(m) => {
                t.body.termination = Some(Termination {
                    by: sender.into(),
                    code: m.code.clone(),
                    reason: m.reason_text(),
                });
            }
            TInbound::Termination(m) => {
                t.body.termination = Some(Termination {
                    by: sender.into(),
                    code: m.code.clone(),
                    reason: m.reason_text(),
                });
            }
            TInbound::Completion(_) | TInbound::Request(_) => {}
        }
        t.state = Some(to);
        t.body.last_inbound = Some(format!("{event:?} -> {to}"));
        t.body.log(now, sender.into(), format!("{event:?} -> {to}"));
        effects
            .ledger
            .push(state_entry(&t, now, before, event, sender.into()));
        // Whatever we owed is overtaken by the counterparty's message (a suspension stops a push at once).
        t.idle();
        if !to.is_terminal() && t.body.manual {
            t.park();
        } else if to == TransferState::Started && t.role == Role::Provider && t.is_push() {
            // Resumed by the consumer: push again.
            t.owe(TStep::Push, now);
        }
        let saved = self
            .store
            .save_transfer(&t, Some(expected), &effects)
            .await?;
        self.transfer_saved(&saved);
        tracing::info!(pid = %saved.id, role = %saved.role, from = ?before, to = %to, by = %sender,
            "transfer transition");
        Ok(ack_of(&saved, false))
    }
}
