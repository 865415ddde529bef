//! A contract negotiation as caap keeps it: protocol state, what this side owes next, and why it is stuck if it is.
//! The protocol rules are [`caap_contracts::process::apply`]; this is the negotiation's own part: its documents,
//! how a message received changes them, and its ledger entry.

pub use super::Peer;
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

crate::model::process_struct! {
    /// A contract negotiation this connector takes part in.
    pub struct Negotiation {
        state: NegotiationState,
        step: Step,
        body: NegotiationBody,
        /// The offer id from the catalog.
        pub offer_id: String,
        /// The dataset the negotiation is about.
        pub dataset_id: String,
    }
}

impl Process for Negotiation {
    type Kind = ContractNegotiation;
    type Inbound = Inbound;

    crate::model::process_fields!(outgoing_termination);

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
                self.body.termination = Some(Termination::received(
                    sender,
                    m.code.clone(),
                    m.reason_text(),
                ));
            }
            Inbound::Verification(_) | Inbound::Event(_) => {}
        }
    }

    fn entry(
        &self,
        at: DateTime<Utc>,
        from: Option<NegotiationState>,
        event: NegotiationEvent,
        by: Actor,
    ) -> NewEntry {
        crate::model::state_entry(
            self,
            EntryKind::NegotiationState,
            at,
            from.map(NegotiationState::as_str),
            self.state.map(NegotiationState::as_str),
            event.to_string(),
            by,
            json!({
                "datasetId": self.dataset_id,
                "offerId": self.offer_id,
                "termination": self.body.termination,
            }),
        )
    }
}
