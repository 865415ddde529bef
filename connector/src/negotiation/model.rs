//! A contract negotiation as caap keeps it: protocol state, what this side owes next, and why it is stuck if it is.

use caap_contracts::Role;
use caap_contracts::negotiation::messages::AgreementSignature;
use caap_contracts::negotiation::state::{NegotiationEvent, NegotiationState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The outbound message this side owes the counterparty. A negotiation with a step is picked up by the
/// processor; the step's transition is entered when the counterparty acknowledges the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Consumer: the initial contract request.
    Request,
    /// Consumer: a counter-offer (a contract request within the negotiation).
    CounterOffer,
    /// Provider: an offer (initial or within the negotiation).
    Offer,
    /// Consumer: ACCEPTED.
    Accept,
    /// Provider: the signed agreement.
    Agree,
    /// Consumer: the agreement verification.
    Verify,
    /// Provider: FINALIZED.
    Finalize,
    /// Either: termination (code and reason in [`NegotiationBody::outgoing_termination`]).
    Terminate,
}

impl Step {
    /// Every step.
    pub const ALL: [Step; 8] = [
        Step::Request,
        Step::CounterOffer,
        Step::Offer,
        Step::Accept,
        Step::Agree,
        Step::Verify,
        Step::Finalize,
        Step::Terminate,
    ];

    /// The stored and displayed name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::Request => "request",
            Step::CounterOffer => "counter-offer",
            Step::Offer => "offer",
            Step::Accept => "accept",
            Step::Agree => "agree",
            Step::Verify => "verify",
            Step::Finalize => "finalize",
            Step::Terminate => "terminate",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Step> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The side that may take this step (`None`: either).
    pub const fn role(self) -> Option<Role> {
        match self {
            Step::Request | Step::CounterOffer | Step::Accept | Step::Verify => {
                Some(Role::Consumer)
            }
            Step::Offer | Step::Agree | Step::Finalize => Some(Role::Provider),
            Step::Terminate => None,
        }
    }

    /// The state-machine event of this step, given the state it is sent from.
    pub const fn event(self, from: Option<NegotiationState>) -> NegotiationEvent {
        match self {
            Step::Request => NegotiationEvent::Request {
                counter_offer: false,
            },
            Step::CounterOffer => NegotiationEvent::Request {
                counter_offer: true,
            },
            Step::Offer => NegotiationEvent::Offer {
                counter: from.is_some(),
            },
            Step::Accept => NegotiationEvent::Accepted,
            Step::Agree => NegotiationEvent::Agreement,
            Step::Verify => NegotiationEvent::Verification,
            Step::Finalize => NegotiationEvent::Finalized,
            Step::Terminate => NegotiationEvent::Termination,
        }
    }
}

/// Why a negotiation is parked until someone outside the protocol decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Awaiting {
    /// Provider: the offer needs a human approval (`approve` / `reject`).
    Approval,
    /// The negotiation is driven by hand (`manual`), or caap could not decide alone: any step the protocol
    /// allows may be taken through the management API.
    Decision,
}

impl Awaiting {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Awaiting::Approval => "approval",
            Awaiting::Decision => "decision",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Awaiting> {
        [Awaiting::Approval, Awaiting::Decision]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Who caused something in a negotiation's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Actor {
    /// The consumer's message.
    Consumer,
    /// The provider's message.
    Provider,
    /// This connector, on its own (gave up retrying, a management action).
    Local,
}

impl From<Role> for Actor {
    fn from(r: Role) -> Self {
        match r {
            Role::Consumer => Actor::Consumer,
            Role::Provider => Actor::Provider,
        }
    }
}

/// One line of a negotiation's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub by: Actor,
    /// What (e.g. `ContractRequestMessage (initial) -> REQUESTED`).
    pub what: String,
}

/// How a negotiation was terminated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Termination {
    /// Who terminated it.
    pub by: Actor,
    /// The code, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The reason, readable.
    pub reason: String,
}

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

/// Most history lines kept per negotiation (a guard against a counterparty that loops).
pub const MAX_HISTORY: usize = 200;

impl NegotiationBody {
    /// Adds a history line, dropping the oldest past [`MAX_HISTORY`].
    pub fn log(&mut self, at: DateTime<Utc>, by: Actor, what: impl Into<String>) {
        if self.history.len() >= MAX_HISTORY {
            self.history.remove(0);
        }
        self.history.push(HistoryItem {
            at,
            by,
            what: what.into(),
        });
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

impl Negotiation {
    /// Our pid and the counterparty's, as (provider, consumer), with "" for one not known yet.
    pub fn pids(&self) -> (String, String) {
        (
            self.provider_pid.clone().unwrap_or_default(),
            self.consumer_pid.clone().unwrap_or_default(),
        )
    }

    /// The counterparty's role.
    pub fn counterparty_role(&self) -> Role {
        self.role.counterparty()
    }

    /// Sets the step to send now (clearing failures and any parking).
    pub fn owe(&mut self, step: Step, now: DateTime<Utc>) {
        self.pending = Some(step);
        self.awaiting = None;
        self.attempts = 0;
        self.last_error = None;
        self.next_attempt_at = Some(now);
    }

    /// Parks the negotiation until a decision.
    pub fn park(&mut self, why: Awaiting) {
        self.pending = None;
        self.awaiting = Some(why);
        self.next_attempt_at = None;
    }

    /// Nothing to send, nothing to wait for on our side.
    pub fn idle(&mut self) {
        self.pending = None;
        self.awaiting = None;
        self.attempts = 0;
        self.next_attempt_at = None;
    }
}
