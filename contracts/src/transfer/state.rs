//! The transfer process state machine of DSP 2025-1, as one pure function: [`transition`].
//!
//! ```text
//! (start)   --C: request-->                REQUESTED
//! REQUESTED --P: start-->                  STARTED      (the first start comes from the provider only)
//! STARTED   --C or P: completion-->        COMPLETED
//! STARTED   --C or P: suspension-->        SUSPENDED
//! SUSPENDED --C or P: start-->             STARTED      (resuming)
//! any non-terminal state --C or P: termination--> TERMINATED
//! COMPLETED, TERMINATED: terminal, every message is illegal
//! ```
//!
//! Illegal, and checked by the DSP TCK: completion or suspension in REQUESTED (TP:03-01, TP:03-02), completion
//! in SUSPENDED (TP:03-03), and any start, suspension or completion after TERMINATED (TP:03-04..06).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::Role;
use crate::UnknownState;

/// The state of a transfer process. Serialized as the DSP term (`"REQUESTED"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TransferState {
    /// The consumer requested the transfer and the provider acknowledged it.
    Requested,
    /// The transfer is running (first started by the provider, or resumed by either side).
    Started,
    /// One side suspended the transfer; either side may resume it.
    Suspended,
    /// One side completed the transfer: terminal.
    Completed,
    /// One side terminated the transfer: terminal.
    Terminated,
}

impl TransferState {
    /// Every state.
    pub const fn all() -> [TransferState; 5] {
        use TransferState::*;
        [Requested, Started, Suspended, Completed, Terminated]
    }

    /// `COMPLETED` and `TERMINATED` are terminal: no message is allowed after them.
    pub const fn is_terminal(self) -> bool {
        matches!(self, TransferState::Completed | TransferState::Terminated)
    }

    /// The DSP term, as on the wire: `"REQUESTED"`, `"STARTED"`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            TransferState::Requested => "REQUESTED",
            TransferState::Started => "STARTED",
            TransferState::Suspended => "SUSPENDED",
            TransferState::Completed => "COMPLETED",
            TransferState::Terminated => "TERMINATED",
        }
    }
}

impl fmt::Display for TransferState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TransferState {
    type Err = UnknownState;

    /// Parses the DSP term (`"REQUESTED"`, …), exactly as [`as_str`](Self::as_str) writes it.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::all()
            .into_iter()
            .find(|state| state.as_str() == value)
            .ok_or_else(|| UnknownState {
                machine: "transfer process",
                value: value.to_owned(),
            })
    }
}

/// A transfer process message, as far as the state machine cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferEvent {
    /// `TransferRequestMessage`: creates the transfer process.
    Request,
    /// `TransferStartMessage`: the provider's first start, or either side resuming after a suspension.
    Start,
    /// `TransferSuspensionMessage`.
    Suspension,
    /// `TransferCompletionMessage`.
    Completion,
    /// `TransferTerminationMessage`.
    Termination,
}

impl TransferEvent {
    /// Every event.
    pub const fn all() -> [TransferEvent; 5] {
        use TransferEvent::*;
        [Request, Start, Suspension, Completion, Termination]
    }
}

impl fmt::Display for TransferEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransferEvent::Request => "TransferRequestMessage",
            TransferEvent::Start => "TransferStartMessage",
            TransferEvent::Suspension => "TransferSuspensionMessage",
            TransferEvent::Completion => "TransferCompletionMessage",
            TransferEvent::Termination => "TransferTerminationMessage",
        })
    }
}

/// The state a transfer process enters when `sender` sends `event` and the counterparty acknowledges it.
///
/// `current` is `None` for the message that would create the process. Pure: the caller records the
/// message and persists the new state.
///
/// # Errors
///
/// [`IllegalTransition`] when the message is not allowed from `current` or not from that `sender`; DSP
/// answers it with 400 and a `TransferError`, and the state does not change.
pub fn transition(
    current: Option<TransferState>,
    sender: Role,
    event: TransferEvent,
) -> Result<TransferState, IllegalTransition> {
    next(current, sender, event).ok_or(IllegalTransition {
        from: current,
        sender,
        event,
    })
}

/// Every message that is legal from `current`, with its sender and the state it leads to.
pub fn allowed_from(current: Option<TransferState>) -> Vec<(Role, TransferEvent, TransferState)> {
    TransferEvent::all()
        .into_iter()
        .flat_map(|event| Role::all().map(|sender| (sender, event)))
        .filter_map(|(sender, event)| next(current, sender, event).map(|to| (sender, event, to)))
        .collect()
}

/// The transition table. Everything not listed is illegal.
const fn next(
    current: Option<TransferState>,
    sender: Role,
    event: TransferEvent,
) -> Option<TransferState> {
    use Role::{Consumer, Provider};
    use TransferEvent as E;
    use TransferState as S;
    match (current, sender, event) {
        (None, Consumer, E::Request) => Some(S::Requested),
        (Some(from), _, E::Termination) if !from.is_terminal() => Some(S::Terminated),
        (Some(S::Requested), Provider, E::Start) => Some(S::Started),
        (Some(S::Started), _, E::Completion) => Some(S::Completed),
        (Some(S::Started), _, E::Suspension) => Some(S::Suspended),
        (Some(S::Suspended), _, E::Start) => Some(S::Started),
        _ => None,
    }
}

/// A transfer process message that the current state does not allow from its sender.
///
/// Its `Display` is the human-readable reason, naming what *is* allowed from `from`; it fits the
/// `reason` of a `TransferError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    /// The state the transfer process was in; `None` when there was no process yet.
    pub from: Option<TransferState>,
    /// The message that was received.
    pub event: TransferEvent,
    /// Who sent it.
    pub sender: Role,
}

impl IllegalTransition {
    /// Every message that would have been legal instead, with its sender and the state it leads to.
    pub fn allowed(&self) -> Vec<(Role, TransferEvent, TransferState)> {
        allowed_from(self.from)
    }
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} may not send a {} ", self.sender, self.event)?;
        match self.from {
            None => f.write_str("to start a transfer process; a transfer process starts with")?,
            Some(from) if from.is_terminal() => {
                return write!(
                    f,
                    "to a transfer process in {from}: it is a terminal state, no message is allowed"
                );
            }
            Some(from) => write!(f, "to a transfer process in {from}; allowed from {from}:")?,
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
    use super::TransferEvent as E;
    use super::TransferState::*;
    use super::*;

    /// Illegal.
    const NO: Option<TransferState> = None;

    /// (from, event, result when the consumer sends it, result when the provider sends it).
    type Row = (
        Option<TransferState>,
        TransferEvent,
        Option<TransferState>,
        Option<TransferState>,
    );
    /// (name, the legal messages that lead there, the message that must be rejected).
    type TckCase = (
        &'static str,
        &'static [(Role, TransferEvent)],
        (Role, TransferEvent),
    );

    /// Every (state, event) with the expected result for the consumer and for the provider as sender.
    /// Derived from the DSP 2025-1 state diagram (see the module documentation).
    #[rustfmt::skip]
    const TABLE: &[Row] = &[
        // from             event            consumer sends    provider sends
        (None,              E::Request,      Some(Requested),  NO),
        (None,              E::Start,        NO,               NO),
        (None,              E::Suspension,   NO,               NO),
        (None,              E::Completion,   NO,               NO),
        (None,              E::Termination,  NO,               NO),

        (Some(Requested),   E::Request,      NO,               NO),
        (Some(Requested),   E::Start,        NO,               Some(Started)), // first start: provider only
        (Some(Requested),   E::Suspension,   NO,               NO), // TP:03-02
        (Some(Requested),   E::Completion,   NO,               NO), // TP:03-01
        (Some(Requested),   E::Termination,  Some(Terminated), Some(Terminated)),

        (Some(Started),     E::Request,      NO,               NO),
        (Some(Started),     E::Start,        NO,               NO),
        (Some(Started),     E::Suspension,   Some(Suspended),  Some(Suspended)),
        (Some(Started),     E::Completion,   Some(Completed),  Some(Completed)),
        (Some(Started),     E::Termination,  Some(Terminated), Some(Terminated)),

        (Some(Suspended),   E::Request,      NO,               NO),
        (Some(Suspended),   E::Start,        Some(Started),    Some(Started)), // resume: either side
        (Some(Suspended),   E::Suspension,   NO,               NO),
        (Some(Suspended),   E::Completion,   NO,               NO), // TP:03-03
        (Some(Suspended),   E::Termination,  Some(Terminated), Some(Terminated)),

        (Some(Completed),   E::Request,      NO,               NO),
        (Some(Completed),   E::Start,        NO,               NO),
        (Some(Completed),   E::Suspension,   NO,               NO),
        (Some(Completed),   E::Completion,   NO,               NO),
        (Some(Completed),   E::Termination,  NO,               NO),

        (Some(Terminated),  E::Request,      NO,               NO),
        (Some(Terminated),  E::Start,        NO,               NO), // TP:03-04
        (Some(Terminated),  E::Suspension,   NO,               NO), // TP:03-05
        (Some(Terminated),  E::Completion,   NO,               NO), // TP:03-06
        (Some(Terminated),  E::Termination,  NO,               NO),
    ];

    fn cells() -> Vec<(
        Option<TransferState>,
        Role,
        TransferEvent,
        Option<TransferState>,
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
        let starts = std::iter::once(None).chain(TransferState::all().map(Some));
        let expected: Vec<_> = starts
            .flat_map(|from| TransferEvent::all().map(move |event| (from, event)))
            .flat_map(|(from, event)| Role::all().map(move |sender| (from, sender, event)))
            .collect();
        let listed: Vec<_> = cells()
            .into_iter()
            .map(|(from, sender, event, _)| (from, sender, event))
            .collect();
        assert_eq!(listed.len(), 6 * 2 * 5);
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

    /// The TCK's provider-side negative scenarios (TCK = consumer, connector under test = provider): each
    /// replays the legal messages (all must pass) and then sends the message that must get a 4xx.
    #[rustfmt::skip]
    const TCK: &[TckCase] = &[
        ("TP:03-01 request, then consumer completes",
            &[(Role::Consumer, E::Request)],
            (Role::Consumer, E::Completion)),
        ("TP:03-02 request, then consumer suspends",
            &[(Role::Consumer, E::Request)],
            (Role::Consumer, E::Suspension)),
        ("TP:03-03 request, provider starts, consumer suspends, then consumer completes",
            &[(Role::Consumer, E::Request), (Role::Provider, E::Start), (Role::Consumer, E::Suspension)],
            (Role::Consumer, E::Completion)),
        ("TP:03-04 request, provider starts, consumer terminates, then consumer starts",
            &[(Role::Consumer, E::Request), (Role::Provider, E::Start), (Role::Consumer, E::Termination)],
            (Role::Consumer, E::Start)),
        ("TP:03-05 request, provider starts, consumer terminates, then consumer suspends",
            &[(Role::Consumer, E::Request), (Role::Provider, E::Start), (Role::Consumer, E::Termination)],
            (Role::Consumer, E::Suspension)),
        ("TP:03-06 request, provider starts, consumer terminates, then consumer completes",
            &[(Role::Consumer, E::Request), (Role::Provider, E::Start), (Role::Consumer, E::Termination)],
            (Role::Consumer, E::Completion)),
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

    #[test]
    fn message_names_what_is_allowed() {
        let error = transition(Some(Requested), Role::Consumer, E::Completion).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a consumer may not send a TransferCompletionMessage to a transfer process in REQUESTED; allowed from \
             REQUESTED: provider TransferStartMessage -> STARTED; consumer or provider TransferTerminationMessage \
             -> TERMINATED"
        );
        let error = transition(None, Role::Provider, E::Request).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a provider may not send a TransferRequestMessage to start a transfer process; a transfer process \
             starts with consumer TransferRequestMessage -> REQUESTED"
        );
        let error = transition(Some(Terminated), Role::Consumer, E::Start).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a consumer may not send a TransferStartMessage to a transfer process in TERMINATED: it is a terminal \
             state, no message is allowed"
        );
    }

    #[test]
    fn states_serialize_as_dsp_terms() {
        for state in TransferState::all() {
            let json = serde_json::to_value(state).unwrap();
            assert_eq!(json, serde_json::Value::String(state.as_str().to_owned()));
            assert_eq!(
                serde_json::from_value::<TransferState>(json).unwrap(),
                state
            );
            assert_eq!(state.as_str().parse::<TransferState>(), Ok(state));
        }
        assert!(serde_json::from_str::<TransferState>("\"started\"").is_err());
    }

    #[test]
    fn terminal_states() {
        let terminal: Vec<_> = TransferState::all()
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, [Completed, Terminated]);
        for state in terminal {
            assert!(allowed_from(Some(state)).is_empty());
        }
    }
}
