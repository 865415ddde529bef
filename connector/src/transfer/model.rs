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

pub use crate::negotiation::model::{Actor, Awaiting, HistoryItem, Peer, Termination};
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

/// A transfer process this connector takes part in.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// This side's process id.
    pub id: String,
    /// Our role.
    pub role: Role,
    /// The provider's pid, once known.
    pub provider_pid: Option<String>,
    /// The consumer's pid, once known.
    pub consumer_pid: Option<String>,
    /// The counterparty's participant id.
    pub counterparty_id: String,
    /// The counterparty's DSP base or callback address.
    pub counterparty_address: String,
    /// The protocol state; `None` until the request is acknowledged.
    pub state: Option<TransferState>,
    /// The agreement the transfer is under.
    pub agreement_id: String,
    /// The format (e.g. `HttpData-PULL`).
    pub format: String,
    /// Addresses, progress, history.
    pub body: TransferBody,
    /// What this side owes.
    pub pending: Option<TStep>,
    /// Parked for a decision (`manual`).
    pub awaiting: Option<Awaiting>,
    /// Failed attempts at the pending step.
    pub attempts: u32,
    /// The last failure.
    pub last_error: Option<String>,
    /// When the pending step is tried next.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Transfer {
    /// A new transfer with a fresh pid for this side, in `state`, owing nothing yet.
    pub fn new(
        role: Role,
        peer: Peer,
        state: Option<TransferState>,
        (agreement_id, format): (String, String),
        body: TransferBody,
        now: DateTime<Utc>,
    ) -> Self {
        let id = crate::process::new_pid();
        let (provider_pid, consumer_pid) = match role {
            Role::Provider => (Some(id.clone()), peer.pid),
            Role::Consumer => (peer.pid, Some(id.clone())),
        };
        Transfer {
            id,
            role,
            provider_pid,
            consumer_pid,
            counterparty_id: peer.id,
            counterparty_address: peer.address,
            state,
            agreement_id,
            format,
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

    /// Is this a push transfer?
    pub fn is_push(&self) -> bool {
        self.format.to_ascii_uppercase().ends_with("PUSH")
    }
}

crate::process::process_accessors!(Transfer);

impl Process for Transfer {
    type Kind = TransferProcess;
    type Inbound = Inbound;

    crate::process::process_fields!();

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
                self.body.termination = Some(Termination {
                    by: sender.into(),
                    code: m.code.clone(),
                    reason: m.reason_text(),
                });
            }
            Inbound::Termination(m) => {
                self.body.termination = Some(Termination {
                    by: sender.into(),
                    code: m.code.clone(),
                    reason: m.reason_text(),
                });
            }
            Inbound::Completion(_) | Inbound::Request(_) => {}
        }
    }

    fn outgoing(&self) -> Option<&Termination> {
        self.body.outgoing.as_ref()
    }

    fn set_outgoing(&mut self, outgoing: Option<Termination>) {
        self.body.outgoing = outgoing;
    }

    fn set_ended(&mut self, ended: Option<Termination>) {
        self.body.termination = ended;
    }

    fn entry(
        &self,
        at: DateTime<Utc>,
        from: Option<TransferState>,
        event: TransferEvent,
        by: Actor,
    ) -> NewEntry {
        let (provider_pid, consumer_pid) = self.pids();
        NewEntry {
            at,
            kind: EntryKind::TransferState,
            subject: self.id.clone(),
            payload: json!({
                "role": self.role.as_str(),
                "providerPid": provider_pid,
                "consumerPid": consumer_pid,
                "counterparty": self.counterparty_id,
                "agreementId": self.agreement_id,
                "format": self.format,
                "from": from.map(TransferState::as_str),
                "to": self.state.map(TransferState::as_str),
                "message": format!("{event:?}"),
                "by": by,
                "reason": self.body.termination,
                "bytes": self.body.bytes,
            }),
        }
    }
}
