//! Transfer process (DSP 2025-1), both roles, and the data plane.
//!
//! The same process engine as [`crate::negotiation`]: [`inbound`] applies a DSP message
//! ([`caap_contracts::process::apply`]) and records it in one transaction, then wakes [`crate::processor`], which
//! alone sends messages (leases, back-off, visible errors; [`processor`] is what is particular to transfers). [`dataplane`] serves pull
//! transfers (a short-lived signed token bound to agreement, transfer and consumer, checked on every access;
//! it stops working the moment the transfer leaves STARTED) and pushes data for push transfers, streaming in
//! both cases (constant memory). [`actions`] is the management side.

pub mod actions;
pub mod dataplane;
pub mod inbound;
pub mod monitor;
pub mod processor;

use caap_contracts::transfer::state::TransferState;
use chrono::{DateTime, Utc};
use dataplane::flows;
use serde::Serialize;

pub use crate::model::transfer as model;
pub use model::{Actor, TStep, Transfer, TransferBody};

/// The transfer process service: inbound DSP messages and what the DSP endpoints read. It owns the state it
/// needs (shared with the rest of the connector).
#[derive(Clone)]
pub struct Transfers {
    /// The store, clock, configuration, identity, policy decider and processor wake-up it shares.
    pub context: crate::process::ProcessContext,
    /// The data flows being served, stopped when a transfer stops.
    pub flows: std::sync::Arc<flows::Flows>,
}

impl std::ops::Deref for Transfers {
    type Target = crate::process::ProcessContext;

    fn deref(&self) -> &Self::Target {
        &self.context
    }
}

impl crate::service::Connector {
    /// The transfer process service, sharing this connector's state.
    pub fn transfers(&self) -> Transfers {
        Transfers {
            context: self.process_context(),
            flows: self.flows.clone(),
        }
    }
}

impl std::fmt::Debug for Transfers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfers").finish_non_exhaustive()
    }
}

/// Stops the transfer's running flows when it no longer lets data flow (or is about to stop): called after
/// every write of a transfer.
pub fn stop_flows_if_ended(flows: &flows::Flows, t: &Transfer) {
    let ending = matches!(
        t.pending,
        Some(TStep::Suspend | TStep::Terminate | TStep::Complete)
    );
    if ending || t.state != Some(TransferState::Started) {
        flows.stop(&t.id);
    }
}

/// A transfer as the management API and the CLI show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferView {
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
    /// The counterparty.
    pub counter_party_id: String,
    /// Its DSP address.
    pub counter_party_address: String,
    /// Protocol state (`null` until acknowledged).
    pub state: Option<&'static str>,
    /// The agreement.
    pub agreement_id: String,
    /// The format.
    pub format: String,
    /// What this side is doing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<&'static str>,
    /// Parked for a step by hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awaiting: Option<&'static str>,
    /// Failed attempts at the pending step.
    pub retry_count: u32,
    /// The last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the pending step is tried next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Addresses (tokens redacted), progress, history.
    #[serde(flatten)]
    pub body: TransferBody,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Transfer> for TransferView {
    fn from(t: Transfer) -> Self {
        let mut body = t.body;
        if let Some(a) = &mut body.data_address {
            for p in &mut a.endpoint_properties {
                if p.name.eq_ignore_ascii_case("authorization") {
                    p.value = "(redacted)".into();
                }
            }
        }
        TransferView {
            role: t.role.as_str(),
            state: t.state.map(TransferState::as_str),
            pending: t.pending.map(TStep::as_str),
            awaiting: t.awaiting.map(|a| a.as_str()),
            retry_count: t.attempts,
            id: t.id,
            provider_pid: t.provider_pid,
            consumer_pid: t.consumer_pid,
            counter_party_id: t.counterparty_id,
            counter_party_address: t.counterparty_address,
            agreement_id: t.agreement_id,
            format: t.format,
            last_error: t.last_error,
            next_attempt_at: t.next_attempt_at,
            body,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}
