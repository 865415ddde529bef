//! The contract negotiation as a [`crate::process::Kind`]: the steps a side may owe, the messages it receives,
//! and the message each step sends.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::messages::{
    AgreementSignature, ContractAgreementMessage, ContractAgreementVerificationMessage,
    ContractNegotiationEventMessage, ContractNegotiationTerminationMessage, ContractOfferMessage,
    ContractRequestMessage, EventType,
};
use super::state::{NegotiationEvent, NegotiationState, transition};
use crate::Role;
use crate::process::{Kind, Message, Outgoing, Termination};

/// The contract negotiation process kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractNegotiation;

impl Kind for ContractNegotiation {
    const NOUN: &'static str = "negotiation";
    type State = NegotiationState;
    type Event = NegotiationEvent;
    type Step = Step;
    const TERMINATED: NegotiationState = NegotiationState::Terminated;
    const TERMINATION: NegotiationEvent = NegotiationEvent::Termination;
    const TERMINATE: Step = Step::Terminate;

    fn step_name(step: Step) -> &'static str {
        step.as_str()
    }

    fn transition(
        from: Option<NegotiationState>,
        sender: Role,
        event: NegotiationEvent,
    ) -> Result<NegotiationState, String> {
        transition(from, sender, event).map_err(|illegal| illegal.to_string())
    }

    fn is_terminal(state: NegotiationState) -> bool {
        state.is_terminal()
    }

    fn step_event(step: Step, from: Option<NegotiationState>) -> Option<NegotiationEvent> {
        Some(step.event(from))
    }

    fn label(event: NegotiationEvent) -> String {
        event.to_string()
    }

    fn repeatable(event: NegotiationEvent) -> bool {
        event
            != (NegotiationEvent::Request {
                counter_offer: true,
            })
    }
}

/// The outbound message a side owes the counterparty. A negotiation with a step is picked up by the
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
    /// Either: termination (code and reason in the process's outgoing termination).
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

/// A contract negotiation message received.
#[derive(Debug, Clone)]
pub enum Inbound {
    /// `ContractRequestMessage`.
    Request(ContractRequestMessage),
    /// `ContractOfferMessage`.
    Offer(ContractOfferMessage),
    /// `ContractAgreementMessage`.
    Agreement(ContractAgreementMessage),
    /// `ContractAgreementVerificationMessage`.
    Verification(ContractAgreementVerificationMessage),
    /// `ContractNegotiationEventMessage`.
    Event(ContractNegotiationEventMessage),
    /// `ContractNegotiationTerminationMessage`.
    Termination(ContractNegotiationTerminationMessage),
}

impl Message<ContractNegotiation> for Inbound {
    fn event(&self) -> NegotiationEvent {
        match self {
            Inbound::Request(m) => m.event(),
            Inbound::Offer(m) => m.event(),
            Inbound::Agreement(_) => NegotiationEvent::Agreement,
            Inbound::Verification(_) => NegotiationEvent::Verification,
            Inbound::Event(m) => m.event(),
            Inbound::Termination(_) => NegotiationEvent::Termination,
        }
    }

    fn pids(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Inbound::Request(m) => (m.provider_pid.as_deref(), Some(&m.consumer_pid)),
            Inbound::Offer(m) => (Some(&m.provider_pid), m.consumer_pid.as_deref()),
            Inbound::Agreement(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
            Inbound::Verification(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
            Inbound::Event(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
            Inbound::Termination(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
        }
    }
}

crate::process::inbound_from!(Inbound {
    Request(ContractRequestMessage),
    Offer(ContractOfferMessage),
    Agreement(ContractAgreementMessage),
    Verification(ContractAgreementVerificationMessage),
    Event(ContractNegotiationEventMessage),
    Termination(ContractNegotiationTerminationMessage),
});

impl Inbound {
    /// Checks the JSON-LD context and the message's own rules.
    ///
    /// # Errors
    ///
    /// The reason, for a 400.
    pub fn check(&self) -> Result<(), String> {
        let context = match self {
            Inbound::Request(m) => &m.context,
            Inbound::Offer(m) => &m.context,
            Inbound::Agreement(m) => &m.context,
            Inbound::Verification(m) => &m.context,
            Inbound::Event(m) => &m.context,
            Inbound::Termination(m) => &m.context,
        };
        super::messages::check_context(context)?;
        match self {
            Inbound::Request(m) => m.check(),
            Inbound::Offer(m) => m.check(),
            _ => Ok(()),
        }
    }
}

/// What a negotiation's outbound messages carry.
#[derive(Debug, Clone, Copy)]
pub struct Documents<'a> {
    /// The offer on the table.
    pub offer: &'a Value,
    /// The agreement, once made.
    pub agreement: Option<&'a Value>,
    /// Its signature.
    pub signature: Option<&'a AgreementSignature>,
    /// The termination to send.
    pub termination: Option<&'a Termination>,
    /// Where the counterparty answers us: our DSP base (sent with the initial request or offer).
    pub callback: &'a str,
}

/// The message `step` sends from `state`, for a negotiation where this side is `role` and the pids are
/// `(provider, consumer)`. `None` when a pid it needs is not known yet (or, for an agreement, there is none).
pub fn outgoing(
    step: Step,
    role: Role,
    state: Option<NegotiationState>,
    (provider, consumer): (Option<&str>, Option<&str>),
    docs: &Documents<'_>,
) -> Option<Outgoing> {
    let offer = docs.offer.clone();
    Some(match step {
        Step::Request => Outgoing::new(
            "negotiations/request".to_owned(),
            &ContractRequestMessage::new(consumer?, None, offer, Some(docs.callback)),
        ),
        Step::CounterOffer => Outgoing::new(
            format!("negotiations/{}/request", provider?),
            &ContractRequestMessage::new(consumer?, provider, offer, None),
        ),
        Step::Offer if state.is_none() => Outgoing::new(
            "negotiations/offers".to_owned(),
            &ContractOfferMessage::new(provider?, None, offer, Some(docs.callback)),
        ),
        Step::Offer => Outgoing::new(
            format!("negotiations/{}/offers", consumer?),
            &ContractOfferMessage::new(provider?, consumer, offer, None),
        ),
        Step::Accept => Outgoing::new(
            format!("negotiations/{}/events", provider?),
            &ContractNegotiationEventMessage::new(provider?, consumer?, EventType::Accepted),
        ),
        Step::Agree => Outgoing::new(
            format!("negotiations/{}/agreement", consumer?),
            &ContractAgreementMessage::new(
                provider?,
                consumer?,
                docs.agreement?.clone(),
                docs.signature.cloned(),
            ),
        ),
        Step::Verify => Outgoing::new(
            format!("negotiations/{}/agreement/verification", provider?),
            &ContractAgreementVerificationMessage::new(provider?, consumer?),
        ),
        Step::Finalize => Outgoing::new(
            format!("negotiations/{}/events", consumer?),
            &ContractNegotiationEventMessage::new(provider?, consumer?, EventType::Finalized),
        ),
        Step::Terminate => {
            let t = docs.termination;
            let theirs = match role {
                Role::Provider => consumer?,
                Role::Consumer => provider?,
            };
            Outgoing::new(
                format!("negotiations/{theirs}/termination"),
                &ContractNegotiationTerminationMessage::new(
                    provider?,
                    consumer?,
                    t.and_then(|t| t.code.as_deref()),
                    t.map(|t| t.reason.as_str()).unwrap_or_default(),
                ),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_step_maps_to_its_message_and_path() {
        let offer = json!({"@id": "o"});
        let agreement = json!({"@id": "a"});
        let termination = Termination {
            by: crate::process::Actor::Provider,
            code: Some("c1".into()),
            reason: "r".into(),
        };
        let docs = Documents {
            offer: &offer,
            agreement: Some(&agreement),
            signature: None,
            termination: Some(&termination),
            callback: "http://me/dsp",
        };
        let both = (Some("p"), Some("c"));
        let consumer_only = (None, Some("c"));
        let s = Some(NegotiationState::Requested);
        // (step, role, state, pids, path, @type)
        let table = [
            (
                Step::Request,
                Role::Consumer,
                None,
                consumer_only,
                "negotiations/request",
                "ContractRequestMessage",
            ),
            (
                Step::CounterOffer,
                Role::Consumer,
                s,
                both,
                "negotiations/p/request",
                "ContractRequestMessage",
            ),
            (
                Step::Offer,
                Role::Provider,
                None,
                (Some("p"), None),
                "negotiations/offers",
                "ContractOfferMessage",
            ),
            (
                Step::Offer,
                Role::Provider,
                s,
                both,
                "negotiations/c/offers",
                "ContractOfferMessage",
            ),
            (
                Step::Accept,
                Role::Consumer,
                s,
                both,
                "negotiations/p/events",
                "ContractNegotiationEventMessage",
            ),
            (
                Step::Agree,
                Role::Provider,
                s,
                both,
                "negotiations/c/agreement",
                "ContractAgreementMessage",
            ),
            (
                Step::Verify,
                Role::Consumer,
                s,
                both,
                "negotiations/p/agreement/verification",
                "ContractAgreementVerificationMessage",
            ),
            (
                Step::Finalize,
                Role::Provider,
                s,
                both,
                "negotiations/c/events",
                "ContractNegotiationEventMessage",
            ),
            (
                Step::Terminate,
                Role::Provider,
                s,
                both,
                "negotiations/c/termination",
                "ContractNegotiationTerminationMessage",
            ),
            (
                Step::Terminate,
                Role::Consumer,
                s,
                both,
                "negotiations/p/termination",
                "ContractNegotiationTerminationMessage",
            ),
        ];
        for (step, role, state, pids, path, kind) in table {
            let out = outgoing(step, role, state, pids, &docs).unwrap();
            assert_eq!(out.path, path, "{step:?} {role}");
            assert_eq!(out.body["@type"], kind, "{step:?} {role}");
        }
        let request = outgoing(Step::Request, Role::Consumer, None, consumer_only, &docs).unwrap();
        assert_eq!(request.body["callbackAddress"], "http://me/dsp");
        assert_eq!(
            request.url("http://them/dsp/"),
            "http://them/dsp/negotiations/request"
        );
        // Without the counterparty's pid there is nothing to address the message to.
        assert!(outgoing(Step::Terminate, Role::Consumer, None, consumer_only, &docs).is_none());
    }
}
