//! A DSP transfer-process message in: validate, check the agreement, apply it to the transfer
//! ([`caap_contracts::process::apply`]), decide what this side owes, persist (with the ledger entries) in one
//! transaction, wake the processor.

use caap_contracts::Role;
use caap_contracts::process::{Message, Process, apply};
use caap_contracts::transfer::message::{TransferProcessAck, TransferRequestMessage};
pub use caap_contracts::transfer::process::Inbound as TInbound;
use caap_contracts::transfer::state::{TransferEvent, TransferState};
use caap_identity::VerifiedCaller;
use chrono::{DateTime, Utc};

use super::Transfers;
use super::model::{Actor, Awaiting, Peer, TStep, Transfer, TransferBody};
use crate::process::{ProcessKind, Refusal, Rejected, answer, in_process};
use crate::store::processes::Effects;

/// The formats caap's data plane serves.
pub const PULL: &str = "HttpData-PULL";
/// Push format.
pub const PUSH: &str = "HttpData-PUSH";

/// The acknowledgement: the `TransferProcess` body, created (201) or changed (200).
pub type TAcknowledged = crate::process::Acknowledged<TransferProcessAck>;

/// The ACK body of a transfer.
pub fn ack_of(t: &Transfer, created: bool) -> TAcknowledged {
    let (p, c) = t.pids();
    TAcknowledged {
        created,
        ack: TransferProcessAck::new(p, c, t.state.unwrap_or(TransferState::Requested)),
    }
}

/// Owes a suspension or termination with a code and reason.
pub fn owe_with_reason(
    t: &mut Transfer,
    step: TStep,
    code: &str,
    reason: String,
    now: DateTime<Utc>,
) {
    Process::owe_with_reason(t, step, code, reason, now);
}

crate::process::process_service!(
    Transfers,
    Transfer,
    TInbound,
    TransferProcessAck,
    ProcessKind::Transfer,
    ack_of
);

impl Transfers {
    /// Handles one inbound transfer message (`pid`: ours, from the URL; `None` on `/transfers/request`).
    pub async fn receive_message(
        &self,
        caller: &VerifiedCaller,
        pid: Option<&str>,
        message: TInbound,
    ) -> Result<TAcknowledged, Rejected> {
        let result = match message.check().map_err(Refusal::BadRequest) {
            Err(e) => Err(e),
            Ok(()) => match (pid, &message) {
                (None, TInbound::Request(m)) => self.receive_transfer_request(caller, m).await,
                (None, other) => Err(Refusal::BadRequest(format!(
                    "{:?} cannot start a transfer process",
                    other.event()
                ))),
                (Some(pid), _) => {
                    in_process(&self.store, caller, pid, async |t| {
                        self.apply_transfer_inbound(t, &message).await
                    })
                    .await
                }
            },
        };
        if result.is_ok() {
            self.wake.notify_one();
        }
        answer(caller, pid, message.pids(), "transfer", result)
    }

    async fn receive_transfer_request(
        &self,
        caller: &VerifiedCaller,
        m: &TransferRequestMessage,
    ) -> Result<TAcknowledged, Refusal> {
        if let Some(existing) = self
            .store
            .process_by_consumer_pid::<Transfer>(&caller.participant_id, &m.consumer_pid)
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
        let peer = Peer {
            id: caller.participant_id.clone(),
            address: m.callback_address.clone(),
            pid: Some(m.consumer_pid.clone()),
        };
        let body = TransferBody {
            dataset_id: agreement.dataset_id.clone(),
            data_address: m.data_address.clone(),
            manual,
            ..TransferBody::default()
        };
        let mut t = Transfer::new(
            Role::Provider,
            peer,
            Some(TransferState::Requested),
            m.agreement_id.clone(),
            m.format.clone(),
            body,
            now,
        );
        t.body
            .log(now, Actor::Consumer, "TransferRequestMessage -> REQUESTED");
        t.body.last_inbound = Some("Request -> REQUESTED".into());
        if manual {
            t.park(Awaiting::Decision);
        } else {
            // The policy seam: every access is checked against the agreement when it happens (data plane).
            t.owe(TStep::Start, now);
        }
        let effects = Effects {
            ledger: vec![t.entry(now, None, TransferEvent::Request, Actor::Consumer)],
            ..Effects::default()
        };
        let saved = self.store.save(&t, None, &effects).await?;
        tracing::info!(pid = %saved.id, consumer = %caller.participant_id, agreement = %saved.agreement_id,
            format = %saved.format, "transfer requested");
        Ok(ack_of(&saved, true))
    }

    async fn apply_transfer_inbound(
        &self,
        t: Transfer,
        message: &TInbound,
    ) -> Result<TAcknowledged, Refusal> {
        let expected = t.version;
        let now = self.clock.now();
        let (mut t, applied) = apply(t, message, now)?;
        let Some(moved) = applied.moved else {
            return Ok(ack_of(&t, false));
        };
        let effects = Effects {
            ledger: applied.ledger,
            keep_lease: true,
            ..Effects::default()
        };
        // Whatever we owed is overtaken by the counterparty's message (a suspension stops a push at once).
        if !moved.to.is_terminal() && t.body.manual {
            t.park(Awaiting::Decision);
        } else if moved.to == TransferState::Started && t.role == Role::Provider && t.is_push() {
            // Resumed by the consumer: push again.
            t.owe(TStep::Push, now);
        }
        let saved = self.store.save(&t, Some(expected), &effects).await?;
        super::stop_flows_if_ended(&self.flows, &saved);
        tracing::info!(pid = %saved.id, role = %saved.role, from = ?moved.from, to = %moved.to,
            by = %saved.role.counterparty(), "transfer transition");
        Ok(ack_of(&saved, false))
    }
}
