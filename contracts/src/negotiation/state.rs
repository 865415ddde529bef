//! The contract negotiation state machine of DSP 2025-1, as one pure function: [`transition`].
//!
//! The table follows the specification's state diagram, with the tolerances the DSP TCK expects:
//!
//! ```text
//! (start)   --C: request (initial)-->      REQUESTED    (start) --P: offer (initial)--> OFFERED
//! REQUESTED --P: offer (counter)-->        OFFERED      REQUESTED --P: agreement--> AGREED
//! OFFERED   --C: request (counter-offer)-> REQUESTED    OFFERED   --C: ACCEPTED-->  ACCEPTED
//! ACCEPTED  --P: agreement-->              AGREED
//! AGREED    --C: verification-->           VERIFIED
//! VERIFIED  --P: FINALIZED-->              FINALIZED
//! any non-terminal state --C or P: termination--> TERMINATED
//! FINALIZED, TERMINATED: terminal, every message is illegal
//! ```
//!
//! The diagram lets only one side terminate from ACCEPTED, AGREED and VERIFIED; the prose and the TCK let
//! either side terminate from any non-terminal state, and so do we. A second counter-offer while REQUESTED
//! is illegal (TCK CN:03-04), and so is a message from the wrong side (a consumer's FINALIZED, a provider's
//! ACCEPTED).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::Role;
use crate::UnknownState;

/// The state of a contract negotiation. Serialized as the DSP term (`"REQUESTED"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum NegotiationState {
    /// The consumer sent a contract request (initial or counter-offer) and the provider acknowledged it.
    Requested,
    /// The provider sent an offer and the consumer acknowledged it.
    Offered,
    /// The consumer accepted the provider's latest offer.
    Accepted,
    /// The provider sent an agreement.
    Agreed,
    /// The consumer verified the agreement.
    Verified,
    /// The provider finalized the agreement: terminal, the data may be transferred.
    Finalized,
    /// One side terminated the negotiation: terminal.
    Terminated,
}

impl NegotiationState {
    /// Every state, in the order of the happy path, then `TERMINATED`.
    pub const fn all() -> [NegotiationState; 7] {
        use NegotiationState::*;
        [
            Requested, Offered, Accepted, Agreed, Verified, Finalized, Terminated,
        ]
    }

    /// `FINALIZED` and `TERMINATED` are terminal: no message is allowed after them.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            NegotiationState::Finalized | NegotiationState::Terminated
        )
    }

    /// The DSP term, as on the wire: `"REQUESTED"`, `"OFFERED"`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            NegotiationState::Requested => "REQUESTED",
            NegotiationState::Offered => "OFFERED",
            NegotiationState::Accepted => "ACCEPTED",
            NegotiationState::Agreed => "AGREED",
            NegotiationState::Verified => "VERIFIED",
            NegotiationState::Finalized => "FINALIZED",
            NegotiationState::Terminated => "TERMINATED",
        }
    }
}

impl fmt::Display for NegotiationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NegotiationState {
    type Err = UnknownState;

    /// Parses the DSP term (`"REQUESTED"`, …), exactly as [`as_str`](Self::as_str) writes it.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::all()
            .into_iter()
            .find(|state| state.as_str() == value)
            .ok_or_else(|| UnknownState {
                machine: "contract negotiation",
                value: value.to_owned(),
            })
    }
}

/// A contract negotiation message, as far as the state machine cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NegotiationEvent {
    /// `ContractRequestMessage`. `counter_offer: false` is the initial request that creates the negotiation
    /// (`POST /negotiations/request`, with `callbackAddress`); `true` is a counter-offer within an existing
    /// negotiation (`POST /negotiations/:providerPid/request`, with `providerPid`).
    Request {
        /// Sent within an existing negotiation.
        counter_offer: bool,
    },
    /// `ContractOfferMessage`. `counter: false` is the initial, provider-initiated offer that creates the
    /// negotiation (`POST /negotiations/offers`); `true` is an offer within an existing negotiation
    /// (`POST <cb>/negotiations/:consumerPid/offers`).
    Offer {
        /// Sent within an existing negotiation.
        counter: bool,
    },
    /// `ContractNegotiationEventMessage` with `eventType: ACCEPTED`.
    Accepted,
    /// `ContractAgreementMessage`.
    Agreement,
    /// `ContractAgreementVerificationMessage`.
    Verification,
    /// `ContractNegotiationEventMessage` with `eventType: FINALIZED`.
    Finalized,
    /// `ContractNegotiationTerminationMessage`.
    Termination,
}

impl NegotiationEvent {
    /// Every event, each `bool` variant both ways.
    pub const fn all() -> [NegotiationEvent; 9] {
        use NegotiationEvent::*;
        [
            Request {
                counter_offer: false,
            },
            Request {
                counter_offer: true,
            },
            Offer { counter: false },
            Offer { counter: true },
            Accepted,
            Agreement,
            Verification,
            Finalized,
            Termination,
        ]
    }
}

impl fmt::Display for NegotiationEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NegotiationEvent::Request {
                counter_offer: false,
            } => "ContractRequestMessage (initial)",
            NegotiationEvent::Request {
                counter_offer: true,
            } => "ContractRequestMessage (counter-offer)",
            NegotiationEvent::Offer { counter: false } => "ContractOfferMessage (initial)",
            NegotiationEvent::Offer { counter: true } => {
                "ContractOfferMessage (within the negotiation)"
            }
            NegotiationEvent::Accepted => "ContractNegotiationEventMessage ACCEPTED",
            NegotiationEvent::Agreement => "ContractAgreementMessage",
            NegotiationEvent::Verification => "ContractAgreementVerificationMessage",
            NegotiationEvent::Finalized => "ContractNegotiationEventMessage FINALIZED",
            NegotiationEvent::Termination => "ContractNegotiationTerminationMessage",
        })
    }
}

/// The state a negotiation enters when `sender` sends `event` and the counterparty acknowledges it.
///
/// `current` is `None` for a message that would create the negotiation. Pure: the caller records the
/// message and persists the new state.
///
/// # Errors
///
/// [`IllegalTransition`] when the message is not allowed from `current` or not from that `sender`; DSP
/// answers it with 400 and a `ContractNegotiationError`, and the state does not change.
pub fn transition(
    current: Option<NegotiationState>,
    sender: Role,
    event: NegotiationEvent,
) -> Result<NegotiationState, IllegalTransition> {
    next(current, sender, event).ok_or(IllegalTransition {
        from: current,
        sender,
        event,
    })
}

/// Every message that is legal from `current`, with its sender and the state it leads to.
pub fn allowed_from(
    current: Option<NegotiationState>,
) -> Vec<(Role, NegotiationEvent, NegotiationState)> {
    NegotiationEvent::all()
        .into_iter()
        .flat_map(|event| Role::all().map(|sender| (sender, event)))
        .filter_map(|(sender, event)| next(current, sender, event).map(|to| (sender, event, to)))
        .collect()
}

/// The transition table. Everything not listed is illegal.
const fn next(
    current: Option<NegotiationState>,
    sender: Role,
    event: NegotiationEvent,
) -> Option<NegotiationState> {
    use NegotiationEvent as E;
    use NegotiationState as S;
    use Role::{Consumer, Provider};
    match (current, sender, event) {
        (
            None,
            Consumer,
            E::Request {
                counter_offer: false,
            },
        ) => Some(S::Requested),
        (None, Provider, E::Offer { counter: false }) => Some(S::Offered),
        (Some(from), _, E::Termination) if !from.is_terminal() => Some(S::Terminated),
        (Some(S::Requested), Provider, E::Offer { counter: true }) => Some(S::Offered),
        (Some(S::Requested), Provider, E::Agreement) => Some(S::Agreed),
        (
            Some(S::Offered),
            Consumer,
            E::Request {
                counter_offer: true,
            },
        ) => Some(S::Requested),
        (Some(S::Offered), Consumer, E::Accepted) => Some(S::Accepted),
        (Some(S::Accepted), Provider, E::Agreement) => Some(S::Agreed),
        (Some(S::Agreed), Consumer, E::Verification) => Some(S::Verified),
        (Some(S::Verified), Provider, E::Finalized) => Some(S::Finalized),
        _ => None,
    }
}

/// A contract negotiation message that the current state does not allow from its sender.
///
/// Its `Display` is the human-readable reason, naming what *is* allowed from `from`; it fits the
/// `reason` of a `ContractNegotiationError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    /// The state the negotiation was in; `None` when there was no negotiation yet.
    pub from: Option<NegotiationState>,
    /// The message that was received.
    pub event: NegotiationEvent,
    /// Who sent it.
    pub sender: Role,
}

impl IllegalTransition {
    /// Every message that would have been legal instead, with its sender and the state it leads to.
    pub fn allowed(&self) -> Vec<(Role, NegotiationEvent, NegotiationState)> {
        allowed_from(self.from)
    }
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} may not send a {} ", self.sender, self.event)?;
        match self.from {
            None => f.write_str("to start a contract negotiation; ")?,
            Some(from) if from.is_terminal() => {
                return write!(
                    f,
                    "to a contract negotiation in {from}: it is a terminal state, no message is allowed"
                );
            }
            Some(from) => write!(f, "to a contract negotiation in {from}; ")?,
        }
        match self.from {
            None => f.write_str("a negotiation starts with")?,
            Some(from) => write!(f, "allowed from {from}:")?,
        }
        let allowed = self.allowed();
        let mut first = true;
        for (index, &(sender, event, to)) in allowed.iter().enumerate() {
            // Print "consumer or provider" once when both sides may send the same message.
            if index > 0 && allowed[index - 1].1 == event && allowed[index - 1].2 == to {
                continue;
            }
            let both = allowed
                .get(index + 1)
                .is_some_and(|&(_, e, t)| e == event && t == to);
            let who = if both {
                "consumer or provider"
            } else {
                sender.as_str()
            };
            write!(f, "{} {who} {event} -> {to}", if first { "" } else { ";" })?;
            first = false;
        }
        Ok(())
    }
}

impl std::error::Error for IllegalTransition {}

#[cfg(test)]
mod tests {
    use super::NegotiationEvent as E;
    use super::NegotiationState::*;
    use super::*;

    const REQUEST: E = E::Request {
        counter_offer: false,
    };
    const COUNTER_REQUEST: E = E::Request {
        counter_offer: true,
    };
    const OFFER: E = E::Offer { counter: false };
    const COUNTER_OFFER: E = E::Offer { counter: true };
    /// Illegal.
    const NO: Option<NegotiationState> = None;

    /// (from, event, result when the consumer sends it, result when the provider sends it).
    type Row = (
        Option<NegotiationState>,
        NegotiationEvent,
        Option<NegotiationState>,
        Option<NegotiationState>,
    );
    /// (name, the legal messages that lead there, the message that must be rejected).
    type TckCase = (
        &'static str,
        &'static [(Role, NegotiationEvent)],
        (Role, NegotiationEvent),
    );

    /// Every (state, event) with the expected result for the consumer and for the provider as sender.
    /// Derived from the DSP 2025-1 state diagram plus the TCK tolerances (see the module documentation).
    #[rustfmt::skip]
    const TABLE: &[Row] = &[
        // from             event             consumer sends    provider sends
        (None,              REQUEST,          Some(Requested),  NO),
        (None,              COUNTER_REQUEST,  NO,               NO),
        (None,              OFFER,            NO,               Some(Offered)),
        (None,              COUNTER_OFFER,    NO,               NO),
        (None,              E::Accepted,      NO,               NO),
        (None,              E::Agreement,     NO,               NO),
        (None,              E::Verification,  NO,               NO),
        (None,              E::Finalized,     NO,               NO),
        (None,              E::Termination,   NO,               NO),

        (Some(Requested),   REQUEST,          NO,               NO),
        (Some(Requested),   COUNTER_REQUEST,  NO,               NO), // CN:03-04
        (Some(Requested),   OFFER,            NO,               NO),
        (Some(Requested),   COUNTER_OFFER,    NO,               Some(Offered)),
        (Some(Requested),   E::Accepted,      NO,               NO),
        (Some(Requested),   E::Agreement,     NO,               Some(Agreed)),
        (Some(Requested),   E::Verification,  NO,               NO),
        (Some(Requested),   E::Finalized,     NO,               NO), // CN_C:03-01
        (Some(Requested),   E::Termination,   Some(Terminated), Some(Terminated)),

        (Some(Offered),     REQUEST,          NO,               NO),
        (Some(Offered),     COUNTER_REQUEST,  Some(Requested),  NO),
        (Some(Offered),     OFFER,            NO,               NO),
        (Some(Offered),     COUNTER_OFFER,    NO,               NO),
        (Some(Offered),     E::Accepted,      Some(Accepted),   NO),
        (Some(Offered),     E::Agreement,     NO,               NO), // CN_C:03-02
        (Some(Offered),     E::Verification,  NO,               NO), // CN:03-02
        (Some(Offered),     E::Finalized,     NO,               NO), // CN_C:03-03
        (Some(Offered),     E::Termination,   Some(Terminated), Some(Terminated)),

        (Some(Accepted),    REQUEST,          NO,               NO),
        (Some(Accepted),    COUNTER_REQUEST,  NO,               NO),
        (Some(Accepted),    OFFER,            NO,               NO),
        (Some(Accepted),    COUNTER_OFFER,    NO,               NO), // CN_C:03-05
        (Some(Accepted),    E::Accepted,      NO,               NO),
        (Some(Accepted),    E::Agreement,     NO,               Some(Agreed)),
        (Some(Accepted),    E::Verification,  NO,               NO), // CN:03-03
        (Some(Accepted),    E::Finalized,     NO,               NO), // CN_C:03-04
        (Some(Accepted),    E::Termination,   Some(Terminated), Some(Terminated)), // C: TCK CN_C:02-05 tolerance

        (Some(Agreed),      REQUEST,          NO,               NO),
        (Some(Agreed),      COUNTER_REQUEST,  NO,               NO),
        (Some(Agreed),      OFFER,            NO,               NO),
        (Some(Agreed),      COUNTER_OFFER,    NO,               NO),
        (Some(Agreed),      E::Accepted,      NO,               NO),
        (Some(Agreed),      E::Agreement,     NO,               NO),
        (Some(Agreed),      E::Verification,  Some(Verified),   NO),
        (Some(Agreed),      E::Finalized,     NO,               NO), // CN_C:03-06
        (Some(Agreed),      E::Termination,   Some(Terminated), Some(Terminated)), // P: tolerance

        (Some(Verified),    REQUEST,          NO,               NO),
        (Some(Verified),    COUNTER_REQUEST,  NO,               NO),
        (Some(Verified),    OFFER,            NO,               NO),
        (Some(Verified),    COUNTER_OFFER,    NO,               NO),
        (Some(Verified),    E::Accepted,      NO,               NO),
        (Some(Verified),    E::Agreement,     NO,               NO),
        (Some(Verified),    E::Verification,  NO,               NO),
        (Some(Verified),    E::Finalized,     NO,               Some(Finalized)),
        (Some(Verified),    E::Termination,   Some(Terminated), Some(Terminated)), // C: TCK CN:02-07 tolerance

        (Some(Finalized),   REQUEST,          NO,               NO),
        (Some(Finalized),   COUNTER_REQUEST,  NO,               NO),
        (Some(Finalized),   OFFER,            NO,               NO),
        (Some(Finalized),   COUNTER_OFFER,    NO,               NO),
        (Some(Finalized),   E::Accepted,      NO,               NO),
        (Some(Finalized),   E::Agreement,     NO,               NO),
        (Some(Finalized),   E::Verification,  NO,               NO),
        (Some(Finalized),   E::Finalized,     NO,               NO),
        (Some(Finalized),   E::Termination,   NO,               NO), // CN:03-01

        (Some(Terminated),  REQUEST,          NO,               NO),
        (Some(Terminated),  COUNTER_REQUEST,  NO,               NO),
        (Some(Terminated),  OFFER,            NO,               NO),
        (Some(Terminated),  COUNTER_OFFER,    NO,               NO),
        (Some(Terminated),  E::Accepted,      NO,               NO),
        (Some(Terminated),  E::Agreement,     NO,               NO),
        (Some(Terminated),  E::Verification,  NO,               NO),
        (Some(Terminated),  E::Finalized,     NO,               NO),
        (Some(Terminated),  E::Termination,   NO,               NO),
    ];

    fn cells() -> Vec<(
        Option<NegotiationState>,
        Role,
        NegotiationEvent,
        Option<NegotiationState>,
    )> {
        TABLE
            .iter()
            .flat_map(|&(from, event, consumer, provider)| {
                [
                    (from, Role::Consumer, event, consumer),
                    (from, Role::Provider, event, provider),
                ]
            })
            .collect()
    }

    #[test]
    fn table_covers_every_combination_exactly_once() {
        let starts = std::iter::once(None).chain(NegotiationState::all().map(Some));
        let expected: Vec<_> = starts
            .flat_map(|from| NegotiationEvent::all().map(move |event| (from, event)))
            .flat_map(|(from, event)| Role::all().map(move |sender| (from, sender, event)))
            .collect();
        let listed: Vec<_> = cells()
            .into_iter()
            .map(|(from, sender, event, _)| (from, sender, event))
            .collect();
        assert_eq!(listed.len(), 8 * 2 * 9);
        assert_eq!(
            listed, expected,
            "the table must list every (state, sender, event) in the canonical order"
        );
    }

    #[test]
    fn transition_matches_the_table() {
        for (from, sender, event, expected) in cells() {
            let got = transition(from, sender, event);
            match expected {
                Some(to) => assert_eq!(got, Ok(to), "{from:?} --{sender} {event}-->"),
                None => assert_eq!(
                    got,
                    Err(IllegalTransition {
                        from,
                        event,
                        sender
                    }),
                    "{from:?} --{sender} {event}--> must be illegal"
                ),
            }
        }
    }

    /// The TCK's negative scenarios: each replays the legal messages (all must pass) and then sends the
    /// message the connector under test must reject with a 4xx.
    #[rustfmt::skip]
    const TCK: &[TckCase] = &[
        ("CN:03-01 request, agreement, verification, finalized, then consumer terminates",
            &[(Role::Consumer, REQUEST), (Role::Provider, E::Agreement), (Role::Consumer, E::Verification), (Role::Provider, E::Finalized)],
            (Role::Consumer, E::Termination)),
        ("CN:03-02 request, offer, then consumer verifies",
            &[(Role::Consumer, REQUEST), (Role::Provider, COUNTER_OFFER)],
            (Role::Consumer, E::Verification)),
        ("CN:03-03 request, offer, accepted, then consumer verifies",
            &[(Role::Consumer, REQUEST), (Role::Provider, COUNTER_OFFER), (Role::Consumer, E::Accepted)],
            (Role::Consumer, E::Verification)),
        ("CN:03-04 request, offer, counter-offer, then a second counter-offer",
            &[(Role::Consumer, REQUEST), (Role::Provider, COUNTER_OFFER), (Role::Consumer, COUNTER_REQUEST)],
            (Role::Consumer, COUNTER_REQUEST)),
        ("CN_C:03-01 request, then provider finalizes",
            &[(Role::Consumer, REQUEST)],
            (Role::Provider, E::Finalized)),
        ("CN_C:03-02 request, offer, then provider agrees",
            &[(Role::Consumer, REQUEST), (Role::Provider, COUNTER_OFFER)],
            (Role::Provider, E::Agreement)),
        ("CN_C:03-03 request, offer, then provider finalizes",
            &[(Role::Consumer, REQUEST), (Role::Provider, COUNTER_OFFER)],
            (Role::Provider, E::Finalized)),
        ("CN_C:03-04 request, offer, accepted, then provider finalizes",
            &[(Role::Consumer, REQUEST), (Role::Provider, COUNTER_OFFER), (Role::Consumer, E::Accepted)],
            (Role::Provider, E::Finalized)),
        ("CN_C:03-05 request, offer, accepted, then provider offers again",
            &[(Role::Consumer, REQUEST), (Role::Provider, COUNTER_OFFER), (Role::Consumer, E::Accepted)],
            (Role::Provider, COUNTER_OFFER)),
        ("CN_C:03-06 request, offer, accepted, agreement, then provider finalizes",
            &[(Role::Consumer, REQUEST), (Role::Provider, COUNTER_OFFER), (Role::Consumer, E::Accepted), (Role::Provider, E::Agreement)],
            (Role::Provider, E::Finalized)),
    ];

    #[test]
    fn tck_negative_scenarios() {
        for &(name, path, (sender, event)) in TCK {
            let mut state = None;
            for &(by, message) in path {
                match transition(state, by, message) {
                    Ok(next) => state = Some(next),
                    Err(error) => panic!("{name}: the legal step failed: {error}"),
                }
            }
            let error = transition(state, sender, event).expect_err(name);
            assert_eq!(
                error,
                IllegalTransition {
                    from: state,
                    event,
                    sender
                },
                "{name}"
            );
        }
    }

    /// The TCK's tolerated terminations that the diagram alone would not allow.
    #[test]
    fn tck_tolerated_terminations() {
        for (name, from, sender) in [
            (
                "CN:02-03 consumer terminates in AGREED",
                Agreed,
                Role::Consumer,
            ),
            (
                "CN_C:02-05 provider terminates in ACCEPTED",
                Accepted,
                Role::Provider,
            ),
            (
                "CN:02-07 consumer terminates in VERIFIED",
                Verified,
                Role::Consumer,
            ),
            (
                "CN_C:02-06 provider terminates in VERIFIED",
                Verified,
                Role::Provider,
            ),
        ] {
            assert_eq!(
                transition(Some(from), sender, E::Termination),
                Ok(Terminated),
                "{name}"
            );
        }
    }

    #[test]
    fn message_names_what_is_allowed() {
        let error = transition(Some(Requested), Role::Provider, E::Finalized).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a provider may not send a ContractNegotiationEventMessage FINALIZED to a contract negotiation in \
             REQUESTED; allowed from REQUESTED: provider ContractOfferMessage (within the negotiation) -> OFFERED; \
             provider ContractAgreementMessage -> AGREED; consumer or provider \
             ContractNegotiationTerminationMessage -> TERMINATED"
        );
        let error = transition(None, Role::Provider, E::Agreement).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a provider may not send a ContractAgreementMessage to start a contract negotiation; a negotiation \
             starts with consumer ContractRequestMessage (initial) -> REQUESTED; provider ContractOfferMessage \
             (initial) -> OFFERED"
        );
        let error = transition(Some(Finalized), Role::Consumer, E::Termination).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a consumer may not send a ContractNegotiationTerminationMessage to a contract negotiation in \
             FINALIZED: it is a terminal state, no message is allowed"
        );
    }

    #[test]
    fn states_serialize_as_dsp_terms() {
        for state in NegotiationState::all() {
            let json = serde_json::to_value(state).unwrap();
            assert_eq!(json, serde_json::Value::String(state.as_str().to_owned()));
            assert_eq!(
                serde_json::from_value::<NegotiationState>(json).unwrap(),
                state
            );
            assert_eq!(state.as_str().parse::<NegotiationState>(), Ok(state));
        }
        assert!(serde_json::from_str::<NegotiationState>("\"requested\"").is_err());
        assert!("dspace:REQUESTED".parse::<NegotiationState>().is_err());
    }

    #[test]
    fn terminal_states() {
        let terminal: Vec<_> = NegotiationState::all()
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, [Finalized, Terminated]);
        for state in terminal {
            assert!(allowed_from(Some(state)).is_empty());
        }
    }
}
