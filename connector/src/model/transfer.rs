//! A transfer process as caap keeps it: protocol state, what this side owes next, and why it is stuck if it is.
//! The protocol rules are [`caap_contracts::process::apply`]; this is the transfer's own part: its addresses
//! and progress, how a message received changes them, and its ledger entry.

use caap_contracts::Role;
use caap_contracts::ledger::{EntryKind, NewEntry};
use caap_contracts::process::Process;
use caap_contracts::transfer::message::DataAddress;
use caap_contracts::transfer::process::{Inbound, TransferProcess};
use caap_contracts::transfer::state::{TransferEvent, TransferState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use super::Peer;
pub use caap_contracts::process::{Actor, Awaiting, HistoryItem, Termination};
/// What this side owes: a DSP message, or (provider, push) the data itself.
pub use caap_contracts::transfer::process::Step as TStep;

/// The transfer's addresses, progress and history (stored as one JSON column).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferBody {
    /// The dataset (asset id) the agreement covers.
    #[serde(default)]
    pub dataset_id: String,
    /// Push: the consumer's endpoint (and its token). Pull, consumer side: the provider's endpoint and access
    /// token from the start message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_address: Option<DataAddress>,
    /// caap takes no step by itself; every step comes from the management API.
    #[serde(default)]
    pub manual: bool,
    /// The suspension or termination this side is about to send (code and reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing: Option<Termination>,
    /// How it ended or why it is suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination: Option<Termination>,
    /// Bytes delivered so far (push: sent by the provider; pull: served by the provider's data plane).
    #[serde(default)]
    pub bytes: u64,
    /// The last message received and the state it led to, to recognise a repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inbound: Option<String>,
    /// Every transition and decision, oldest first.
    #[serde(default)]
    pub history: Vec<HistoryItem>,
}

impl TransferBody {
    /// Adds a history line, dropping the oldest past [`caap_contracts::process::MAX_HISTORY`].
    pub fn log(&mut self, at: DateTime<Utc>, by: Actor, what: impl Into<String>) {
        caap_contracts::process::log(&mut self.history, at, by, what.into());
    }
}

crate::model::process_struct! {
    /// A transfer process this connector takes part in.
    pub struct Transfer {
        state: TransferState,
        step: TStep,
        body: TransferBody,
        /// The agreement the transfer is under.
        pub agreement_id: String,
        /// The format (e.g. `HttpData-PULL`).
        pub format: String,
    }
}

impl Transfer {
    /// Is this a push transfer?
    pub fn is_push(&self) -> bool {
        self.format.to_ascii_uppercase().ends_with("PUSH")
    }
}

impl Process for Transfer {
    type Kind = TransferProcess;
    type Inbound = Inbound;

    crate::model::process_fields!(outgoing);

    fn step_done(&mut self, step: TStep) {
        match step {
            TStep::Terminate | TStep::Suspend => {
                self.body.termination = self.body.outgoing.take();
            }
            TStep::Start => self.body.termination = None,
            TStep::Request | TStep::Push | TStep::Complete => {}
        }
    }

    fn absorb(&mut self, message: &Inbound, sender: Role) {
        match message {
            Inbound::Start(m) => {
                if m.data_address.is_some() {
                    self.body.data_address = m.data_address.clone();
                }
                self.body.termination = None;
            }
            Inbound::Suspension(m) => {
                self.body.termination = Some(Termination::received(
                    sender,
                    m.code.clone(),
                    m.reason_text(),
                ));
            }
            Inbound::Termination(m) => {
                self.body.termination = Some(Termination::received(
                    sender,
                    m.code.clone(),
                    m.reason_text(),
                ));
            }
            Inbound::Completion(_) | Inbound::Request(_) => {}
        }
    }

    fn entry(
        &self,
        at: DateTime<Utc>,
        from: Option<TransferState>,
        event: TransferEvent,
        by: Actor,
    ) -> NewEntry {
        crate::model::state_entry(
            self,
            EntryKind::TransferState,
            at,
            from.map(TransferState::as_str),
            self.state.map(TransferState::as_str),
            format!("{event:?}"),
            by,
            json!({
                "agreementId": self.agreement_id,
                "format": self.format,
                "reason": self.body.termination,
                "bytes": self.body.bytes,
            }),
        )
    }
}
