//! A transfer process as caap keeps it: protocol state, what this side owes next, and why it is stuck if it is.

use caap_contracts::Role;
use caap_contracts::transfer::message::DataAddress;
use caap_contracts::transfer::state::{TransferEvent, TransferState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::negotiation::model::{Actor, HistoryItem, Termination};

/// What this side owes: a DSP message, or (provider, push) the data itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TStep {
    /// Consumer: the transfer request.
    Request,
    /// Provider: start (first start, with the pull address), or either side: resume after a suspension.
    Start,
    /// Provider, push formats: send the data to the consumer's endpoint (not a DSP message).
    Push,
    /// Either: suspension.
    Suspend,
    /// Either: completion.
    Complete,
    /// Either: termination.
    Terminate,
}

impl TStep {
    /// Every step.
    pub const ALL: [TStep; 6] = [
        TStep::Request,
        TStep::Start,
        TStep::Push,
        TStep::Suspend,
        TStep::Complete,
        TStep::Terminate,
    ];

    /// The stored and displayed name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TStep::Request => "request",
            TStep::Start => "start",
            TStep::Push => "push",
            TStep::Suspend => "suspend",
            TStep::Complete => "complete",
            TStep::Terminate => "terminate",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<TStep> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The state-machine event of this step (`None` for the push, which is no protocol message).
    pub const fn event(self) -> Option<TransferEvent> {
        Some(match self {
            TStep::Request => TransferEvent::Request,
            TStep::Start => TransferEvent::Start,
            TStep::Push => return None,
            TStep::Suspend => TransferEvent::Suspension,
            TStep::Complete => TransferEvent::Completion,
            TStep::Terminate => TransferEvent::Termination,
        })
    }
}

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
    /// Adds a history line, dropping the oldest past the negotiation's limit.
    pub fn log(&mut self, at: DateTime<Utc>, by: Actor, what: impl Into<String>) {
        if self.history.len() >= crate::negotiation::model::MAX_HISTORY {
            self.history.remove(0);
        }
        self.history.push(HistoryItem {
            at,
            by,
            what: what.into(),
        });
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
    pub awaiting: Option<crate::negotiation::Awaiting>,
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
    /// (provider pid, consumer pid), "" where unknown.
    pub fn pids(&self) -> (String, String) {
        (
            self.provider_pid.clone().unwrap_or_default(),
            self.consumer_pid.clone().unwrap_or_default(),
        )
    }

    /// Owes `step` now.
    pub fn owe(&mut self, step: TStep, now: DateTime<Utc>) {
        self.pending = Some(step);
        self.awaiting = None;
        self.attempts = 0;
        self.last_error = None;
        self.next_attempt_at = Some(now);
    }

    /// Nothing owed.
    pub fn idle(&mut self) {
        self.pending = None;
        self.awaiting = None;
        self.attempts = 0;
        self.next_attempt_at = None;
    }

    /// Parked until a step is taken by hand.
    pub fn park(&mut self) {
        self.pending = None;
        self.awaiting = Some(crate::negotiation::Awaiting::Decision);
        self.next_attempt_at = None;
    }

    /// Is this a push transfer?
    pub fn is_push(&self) -> bool {
        self.format.to_ascii_uppercase().ends_with("PUSH")
    }
}
