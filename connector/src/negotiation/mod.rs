//! Contract negotiation (DSP 2025-1), both roles.
//!
//! * [`model`]: the negotiation as caap keeps it (state, the step it owes, why it is parked, history); it
//!   lives in [`crate::model`], below the store.
//! * [`inbound`]: a DSP message in: validate, apply it ([`caap_contracts::process::apply`]), decide the next
//!   step, persist, in one transaction; then wake the processor. No outbound call happens inside a request.
//! * [`actions`]: the management API: start a negotiation as consumer, approve, reject, accept, terminate …
//! * [`processor`]: what is particular to sending a negotiation's steps (the message, the agreement record at
//!   FINALIZED, the signer check before a verification); [`crate::processor`] does the rest for every kind.
//! * [`decide`]: the provider's and the consumer's automatic decisions (offer matching, policy, agreement
//!   checks, signing).

pub mod actions;
pub mod decide;
pub mod inbound;
pub mod processor;

use caap_contracts::negotiation::state::NegotiationState;
use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::model::negotiation as model;
pub use crate::model::new_pid;

/// The contract negotiation service: inbound DSP messages, the provider's and the consumer's decisions, and
/// what the DSP endpoints read. It owns the state it needs (shared with the rest of the connector).
#[derive(Clone)]
pub struct Negotiations {
    /// The store, clock, configuration, identity, policy decider and processor wake-up it shares.
    pub context: crate::process::ProcessContext,
}

impl std::ops::Deref for Negotiations {
    type Target = crate::process::ProcessContext;

    fn deref(&self) -> &Self::Target {
        &self.context
    }
}

impl crate::service::Connector {
    /// The contract negotiation service, sharing this connector's state.
    pub fn negotiations(&self) -> Negotiations {
        Negotiations {
            context: self.process_context(),
        }
    }
}

impl std::fmt::Debug for Negotiations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Negotiations").finish_non_exhaustive()
    }
}
pub use model::{Actor, Awaiting, Negotiation, NegotiationBody, Peer, Step, Termination};

/// A negotiation as the management API and the CLI show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NegotiationView {
    /// Our pid.
    pub id: String,
    /// Our role.
    pub role: &'static str,
    /// The provider's pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_pid: Option<String>,
    /// The consumer's pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_pid: Option<String>,
    /// The counterparty's participant id.
    pub counter_party_id: String,
    /// Its DSP address.
    pub counter_party_address: String,
    /// Protocol state (`null` until the first message is acknowledged).
    pub state: Option<&'static str>,
    /// The offer id.
    pub offer_id: String,
    /// The dataset.
    pub dataset_id: String,
    /// The message this side is sending, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<&'static str>,
    /// What it waits for, if parked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awaiting: Option<&'static str>,
    /// Failed attempts at the pending message.
    pub retry_count: u32,
    /// The last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the pending message is tried next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The agreement id, once there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement_id: Option<String>,
    /// The documents and history.
    #[serde(flatten)]
    pub body: NegotiationBody,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Negotiation> for NegotiationView {
    fn from(n: Negotiation) -> Self {
        NegotiationView {
            role: n.role.as_str(),
            state: n.state.map(NegotiationState::as_str),
            pending: n.pending.map(Step::as_str),
            awaiting: n.awaiting.map(Awaiting::as_str),
            retry_count: n.attempts,
            agreement_id: n
                .body
                .agreement
                .as_ref()
                .and_then(|a| a.get("@id"))
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            id: n.id,
            provider_pid: n.provider_pid,
            consumer_pid: n.consumer_pid,
            counter_party_id: n.counterparty_id,
            counter_party_address: n.counterparty_address,
            offer_id: n.offer_id,
            dataset_id: n.dataset_id,
            last_error: n.last_error,
            next_attempt_at: n.next_attempt_at,
            body: n.body,
            created_at: n.created_at,
            updated_at: n.updated_at,
        }
    }
}
