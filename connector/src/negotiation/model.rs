//! A contract negotiation as caap keeps it: protocol state, what this side owes next, and why it is stuck if it is.
//! The protocol rules are [`caap_contracts::process::apply`]; this is the negotiation's own part: its documents,
//! how a message received changes them, and its ledger entry.

use caap_contracts::Role;
use caap_contracts::ledger::{EntryKind, NewEntry};
use caap_contracts::negotiation::messages::AgreementSignature;
pub use caap_contracts::negotiation::process::Step;
use caap_contracts::negotiation::process::{ContractNegotiation, Inbound};
use caap_contracts::negotiation::state::{NegotiationEvent, NegotiationState};
use caap_contracts::process::Process;
pub use caap_contracts::process::{Actor, Awaiting, HistoryItem, MAX_HISTORY, Termination};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The negotiation's documents and history (stored as one JSON column).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NegotiationBody {
    /// The latest offer on the table, as on the wire (`@id`, `target`, rules).
    pub offer: Value,
    /// The agreement, once the provider made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Value>,
    /// The provider's signature over the agreement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<AgreementSignature>,
    /// caap takes no step by itself; every step comes from the management API.
    #[serde(default)]
    pub manual: bool,
    /// The termination this side is about to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing_termination: Option<Termination>,
    /// How it ended, when it was terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination: Option<Termination>,
    /// The last message received and the state it led to (`<event> -> <state>`), to recognise a repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inbound: Option<String>,
    /// Every transition and decision, oldest first.
    #[serde(default)]
    pub history: Vec<HistoryItem>,
}

impl NegotiationBody {
    /// Adds a history line, dropping the oldest past [`MAX_HISTORY`].
    pub fn log(&mut self, at: DateTime<Utc>, by: Actor, what: impl Into<String>) {
        caap_contracts::process::log(&mut self.history, at, by, what.into());
    }
}

/// A contract negotiation this connector takes part in.
#[derive(Debug, Clone, PartialEq)]
pub struct Negotiation {
    /// This side's process id (`providerPid` when we provide, `consumerPid` when we consume).
    pub id: String,
    /// Our role.
    pub role: Role,
    /// The provider's pid, once known.
    pub provider_pid: Option<String>,
    /// The consumer's pid, once known.
    pub consumer_pid: Option<String>,
    /// The counterparty's participant id.
    pub counterparty_id: String,
    /// Where the counterparty's DSP endpoints are (its DSP base, or the callback address it gave).
    pub counterparty_address: String,
    /// The protocol state both sides agree on; `None` until the first message is acknowledged.
    pub state: Option<NegotiationState>,
    /// The offer id from the catalog.
    pub offer_id: String,
    /// The dataset the negotiation is about.
    pub dataset_id: String,
    /// Documents and history.
    pub body: NegotiationBody,
    /// The message this side owes.
    pub pending: Option<Step>,
    /// Parked for a decision.
    pub awaiting: Option<Awaiting>,
    /// Failed attempts at the pending step.
    pub attempts: u32,
    /// The last failure, readable.
    pub last_error: Option<String>,
    /// When the processor tries the pending step next.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version, +1 on every write.
    pub version: i64,
}

/// The other side of a new process: who, where, and its pid if it is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    /// Its participant id.
    pub id: String,
    /// Its DSP base or callback address.
    pub address: String,
    /// Its pid, when it started the process.
    pub pid: Option<String>,
}

impl Negotiation {
    /// A new negotiation with a fresh pid for this side, in `state`, owing nothing yet.
    pub fn new(
        role: Role,
        peer: Peer,
        state: Option<NegotiationState>,
        (offer_id, dataset_id): (String, String),
        body: NegotiationBody,
        now: DateTime<Utc>,
    ) -> Self {
        let id = crate::process::new_pid();
        let (provider_pid, consumer_pid) = match role {
            Role::Provider => (Some(id.clone()), peer.pid),
            Role::Consumer => (peer.pid, Some(id.clone())),
        };
        Negotiation {
            id,
            role,
            provider_pid,
            consumer_pid,
            counterparty_id: peer.id,
            counterparty_address: peer.address,
            state,
            offer_id,
            dataset_id,
            body,
            pending: None,
            awaiting: None,
            attempts: 0,
            last_error: None,
            next_attempt_at: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }
}

crate::process::process_accessors!(Negotiation);

impl Process for Negotiation {
    type Kind = ContractNegotiation;
    type Inbound = Inbound;

    crate::process::process_fields!();

    fn step_done(&mut self, step: Step) {
        if step == Step::Terminate {
            self.body.termination = self.body.outgoing_termination.take();
        }
    }

    fn absorb(&mut self, message: &Inbound, sender: Role) {
        match message {
            Inbound::Request(m) => self.body.offer = m.offer.clone(),
            Inbound::Offer(m) => self.body.offer = m.offer.clone(),
            Inbound::Agreement(m) => {
                self.body.agreement = Some(m.agreement.clone());
                self.body.signature = m.signature.clone();
            }
            Inbound::Termination(m) => {
                self.body.termination = Some(Termination {
                    by: sender.into(),
                    code: m.code.clone(),
                    reason: m.reason_text(),
                });
            }
            Inbound::Verification(_) | Inbound::Event(_) => {}
        }
    }

    fn outgoing(&self) -> Option<&Termination> {
        self.body.outgoing_termination.as_ref()
    }

    fn set_outgoing(&mut self, outgoing: Option<Termination>) {
        self.body.outgoing_termination = outgoing;
    }

    fn set_ended(&mut self, ended: Option<Termination>) {
        self.body.termination = ended;
    }

    fn entry(
        &self,
        at: DateTime<Utc>,
        from: Option<NegotiationState>,
        event: NegotiationEvent,
        by: Actor,
    ) -> NewEntry {
        let (provider_pid, consumer_pid) = self.pids();
        NewEntry {
            at,
            kind: EntryKind::NegotiationState,
            subject: self.id.clone(),
            payload: json!({
                "role": self.role.as_str(),
                "providerPid": provider_pid,
                "consumerPid": consumer_pid,
                "counterparty": self.counterparty_id,
                "datasetId": self.dataset_id,
                "offerId": self.offer_id,
                "from": from.map(NegotiationState::as_str),
                "to": self.state.map(NegotiationState::as_str),
                "message": event.to_string(),
                "by": by,
                "termination": self.body.termination,
            }),
        }
    }
}
