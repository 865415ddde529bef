//! What every DSP process shares, written once: a contract negotiation and a transfer process (and, later, any
//! other long-running exchange with a counterparty, such as a withdrawal notice) are each a [`Kind`] — states,
//! messages, the steps this side may owe — and a [`Process`] as the connector keeps it.
//!
//! [`apply`] is the whole protocol rule for a message received: process-id reconciliation, repeat detection,
//! the implied acknowledgement of a step of ours, the transition, and the ledger entries, as one pure function
//! of the process, the message and the time. [`acknowledged`] is the same for a step of ours that the
//! counterparty acknowledged, and [`terminate_locally`] ends a process the counterparty cannot be told about.
//! The connector stores the result and sends what is owed; nothing here does IO or reads a clock.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::Role;
use crate::ledger::NewEntry;

/// A kind of process: its states, the messages that move it, and the steps this side may owe.
pub trait Kind {
    /// What a process of this kind is called in messages to people (`"negotiation"`, `"transfer"`).
    const NOUN: &'static str;
    /// Its protocol states.
    type State: Copy + Eq + fmt::Display + fmt::Debug + Send + Sync;
    /// The messages of the state machine.
    type Event: Copy + Eq + fmt::Debug + Send + Sync;
    /// What this side may owe the counterparty.
    type Step: Copy + Eq + fmt::Debug + Send + Sync;
    /// The state the process enters when `sender` sends `event` from `from`, or why it may not (the reason
    /// of the protocol's error body).
    fn transition(
        from: Option<Self::State>,
        sender: Role,
        event: Self::Event,
    ) -> Result<Self::State, String>;
    /// No message is allowed after a terminal state.
    fn is_terminal(state: Self::State) -> bool;
    /// The state a termination leads to.
    const TERMINATED: Self::State;
    /// The termination message.
    const TERMINATION: Self::Event;
    /// The message a step sends from `from` (`None`: the step is no protocol message).
    fn step_event(step: Self::Step, from: Option<Self::State>) -> Option<Self::Event>;
    /// The step that sends a termination.
    const TERMINATE: Self::Step;
    /// A step's stored and displayed name.
    fn step_name(step: Self::Step) -> &'static str;
    /// How a message is named in the history and in [`Process::last_inbound`].
    fn label(event: Self::Event) -> String;
    /// Whether a message repeated after it took effect is acknowledged again without change (a counter-offer
    /// is not: a second one is a new proposal).
    fn repeatable(event: Self::Event) -> bool {
        let _ = event;
        true
    }
}

/// A message received, as far as [`apply`] cares.
pub trait Message<K: Kind> {
    /// Its state-machine event.
    fn event(&self) -> K::Event;
    /// The pids it names, as (provider, consumer).
    fn pids(&self) -> (Option<&str>, Option<&str>);
}

/// The scheduling part of a process: what this side owes, and why it is stuck if it is.
#[derive(Debug)]
pub struct Schedule<'a, S> {
    /// The step owed.
    pub pending: &'a mut Option<S>,
    /// Parked for a decision.
    pub awaiting: &'a mut Option<Awaiting>,
    /// Failed attempts at the step.
    pub attempts: &'a mut u32,
    /// The last failure, readable.
    pub last_error: &'a mut Option<String>,
    /// When the step is tried next.
    pub next_attempt_at: &'a mut Option<DateTime<Utc>>,
}

/// A process as the connector keeps it. The accessors are all [`apply`] needs; the kind-specific documents
/// (offer, agreement, data address) stay with the implementation.
pub trait Process {
    /// Its kind.
    type Kind: Kind;
    /// The messages it receives.
    type Inbound: Message<Self::Kind>;
    /// This side's pid.
    fn id(&self) -> &str;
    /// This side's role.
    fn role(&self) -> Role;
    /// (provider pid, consumer pid), where known.
    fn pids(&self) -> (Option<&str>, Option<&str>);
    /// Records the counterparty's pid, learnt from a message or an acknowledgement.
    fn learn_pid(&mut self, theirs: String);
    /// The protocol state.
    fn state(&self) -> Option<<Self::Kind as Kind>::State>;
    /// Sets the protocol state.
    fn set_state(&mut self, state: <Self::Kind as Kind>::State);
    /// The last message received and the state it led to (`<label> -> <state>`).
    fn last_inbound(&self) -> Option<&str>;
    /// Sets [`last_inbound`](Self::last_inbound).
    fn set_last_inbound(&mut self, value: String);
    /// Adds a line to the history.
    fn log(&mut self, at: DateTime<Utc>, by: Actor, what: String);
    /// The scheduling fields.
    fn schedule(&mut self) -> Schedule<'_, <Self::Kind as Kind>::Step>;
    /// The step owed.
    fn pending(&self) -> Option<<Self::Kind as Kind>::Step>;
    /// A step of ours took effect: what it changes in the documents (the termination sent becomes how the
    /// process ended, …).
    fn step_done(&mut self, step: <Self::Kind as Kind>::Step);
    /// What a received message carries goes into the documents (an offer, an agreement, a reason).
    fn absorb(&mut self, message: &Self::Inbound, sender: Role);
    /// The termination (or suspension) this side is about to send, if any.
    fn outgoing(&self) -> Option<&Termination>;
    /// Sets the termination (or suspension) this side is about to send.
    fn set_outgoing(&mut self, outgoing: Option<Termination>);
    /// Sets how the process ended (or why it is suspended).
    fn set_ended(&mut self, ended: Option<Termination>);
    /// The ledger entry for a state change, made after the change.
    fn entry(
        &self,
        at: DateTime<Utc>,
        from: Option<<Self::Kind as Kind>::State>,
        event: <Self::Kind as Kind>::Event,
        by: Actor,
    ) -> NewEntry;

    /// The counterparty's role.
    fn counterparty_role(&self) -> Role {
        self.role().counterparty()
    }

    /// Owes `step` now (clearing failures and any parking).
    fn owe(&mut self, step: <Self::Kind as Kind>::Step, now: DateTime<Utc>) {
        let s = self.schedule();
        *s.pending = Some(step);
        *s.awaiting = None;
        *s.attempts = 0;
        *s.last_error = None;
        *s.next_attempt_at = Some(now);
    }

    /// Owes a termination (or, for a transfer, a suspension) with `code` and `reason`.
    fn owe_with_reason(
        &mut self,
        step: <Self::Kind as Kind>::Step,
        code: &str,
        reason: String,
        now: DateTime<Utc>,
    ) {
        let outgoing = Termination {
            by: self.role().into(),
            code: Some(code.to_owned()),
            reason,
        };
        self.set_outgoing(Some(outgoing));
        self.owe(step, now);
    }

    /// Parks the process until a decision.
    fn park(&mut self, why: Awaiting) {
        let s = self.schedule();
        *s.pending = None;
        *s.awaiting = Some(why);
        *s.next_attempt_at = None;
    }

    /// Nothing to send, nothing to wait for on this side.
    fn idle(&mut self) {
        let s = self.schedule();
        *s.pending = None;
        *s.awaiting = None;
        *s.attempts = 0;
        *s.next_attempt_at = None;
    }
}

/// Why a received message is refused (the protocol's error body with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Malformed or inconsistent with the process (a pid that differs).
    #[error("{0}")]
    BadRequest(String),
    /// Not allowed in the current state.
    #[error("{0}")]
    Illegal(String),
}

/// What a received message did to a process.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied<K: Kind> {
    /// `None`: a repeat of the message that led to the current state; nothing changed.
    pub moved: Option<Moved<K>>,
    /// The ledger entries to write with the process.
    pub ledger: Vec<NewEntry>,
}

/// A state change made by a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved<K: Kind> {
    /// The state before the message (after an implied acknowledgement, if there was one).
    pub from: Option<K::State>,
    /// The state it led to.
    pub to: K::State,
    /// The step of ours that the message acknowledged by answering it.
    pub implied: Option<K::Step>,
}

/// Applies a message the counterparty sent to `process`. Checks the pids the message names against the
/// process (learning the counterparty's), recognises a repeat, takes a pending step of ours as acknowledged
/// when the message answers it, enters the transition, absorbs the message's documents, records the history
/// and the ledger entries, and leaves nothing owed: what this side does next is the caller's decision.
///
/// # Errors
///
/// [`Refused`] when the pids disagree or the message is not allowed now; `process` is unchanged then.
pub fn apply<P: Process>(
    mut process: P,
    message: &P::Inbound,
    now: DateTime<Utc>,
) -> Result<(P, Applied<P::Kind>), Refused> {
    let role = process.role();
    let sender = role.counterparty();
    let event = message.event();
    reconcile(&mut process, message.pids())?;
    let from = process.state();
    let label = <P::Kind as Kind>::label(event);
    let mut ledger = Vec::new();
    let (from, to, implied) = match <P::Kind as Kind>::transition(from, sender, event) {
        Ok(to) => (from, to, None),
        Err(illegal) => {
            // A repeated message (the same one that led to the current state) changes nothing. Not while we
            // owe a message: then the counterparty may already consider the process moved on (our message
            // reached it before we recorded its acknowledgement), and the same message again is an illegal
            // one, not a retry.
            let repeat = process.pending().is_none()
                && <P::Kind as Kind>::repeatable(event)
                && from.is_some_and(|now_in| {
                    process.last_inbound() == Some(format!("{label} -> {now_in}").as_str())
                });
            if repeat {
                return Ok((
                    process,
                    Applied {
                        moved: None,
                        ledger,
                    },
                ));
            }
            // The counterparty answered a message of ours whose acknowledgement we have not recorded yet: its
            // answer proves it received ours, so our step took effect.
            let implied = process.pending().and_then(|step| {
                let ours = <P::Kind as Kind>::step_event(step, from)?;
                let mid = <P::Kind as Kind>::transition(from, role, ours).ok()?;
                let to = <P::Kind as Kind>::transition(Some(mid), sender, event).ok()?;
                Some((step, ours, mid, to))
            });
            let Some((step, ours, mid, to)) = implied else {
                return Err(Refused::Illegal(illegal));
            };
            process.set_state(mid);
            process.step_done(step);
            process.log(
                now,
                role.into(),
                format!(
                    "{} -> {mid} (acknowledged by the counterparty's next message)",
                    <P::Kind as Kind>::label(ours)
                ),
            );
            ledger.push(process.entry(now, from, ours, role.into()));
            process.idle();
            (Some(mid), to, Some(step))
        }
    };
    process.absorb(message, sender);
    process.set_state(to);
    process.set_last_inbound(format!("{label} -> {to}"));
    process.log(now, sender.into(), format!("{label} -> {to}"));
    ledger.push(process.entry(now, from, event, sender.into()));
    // Whatever we owed is overtaken by the counterparty's message.
    process.idle();
    Ok((
        process,
        Applied {
            moved: Some(Moved { from, to, implied }),
            ledger,
        },
    ))
}

/// The pid in the URL is ours; the body must agree with what the process knows. A counterparty pid not
/// known yet is learnt.
fn reconcile<P: Process>(
    process: &mut P,
    (provider, consumer): (Option<&str>, Option<&str>),
) -> Result<(), Refused> {
    let role = process.role();
    let (ours, theirs) = match role {
        Role::Provider => (provider, consumer),
        Role::Consumer => (consumer, provider),
    };
    if ours.is_some_and(|o| o != process.id()) {
        return Err(Refused::BadRequest(format!(
            "the {role} pid in the body differs from the process in the URL ({})",
            process.id()
        )));
    }
    let known = match (role, process.pids()) {
        (Role::Provider, (_, c)) => c,
        (Role::Consumer, (p, _)) => p,
    };
    match (known, theirs) {
        (Some(k), Some(t)) if k != t => Err(Refused::BadRequest(format!(
            "the {} pid in the body is `{t}`, but this {}'s is `{k}`",
            role.counterparty(),
            <P::Kind as Kind>::NOUN
        ))),
        (None, Some(t)) => {
            process.learn_pid(t.to_owned());
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The counterparty acknowledged `step` of ours: enters its transition, records it, and leaves nothing owed.
/// Returns the transition's `(from, to)` and ledger entry; `Ok(None)` for a step that is no protocol message.
///
/// # Errors
///
/// The illegal transition's reason when the step no longer fits the state (the caller logs it; the step is
/// dropped all the same).
#[allow(clippy::type_complexity)]
pub fn acknowledged<P: Process>(
    process: &mut P,
    step: <P::Kind as Kind>::Step,
    now: DateTime<Utc>,
) -> Result<Option<(<P::Kind as Kind>::State, NewEntry)>, String> {
    process.idle();
    *process.schedule().last_error = None;
    let from = process.state();
    let Some(event) = <P::Kind as Kind>::step_event(step, from) else {
        return Ok(None);
    };
    let role = process.role();
    let to = <P::Kind as Kind>::transition(from, role, event)?;
    process.set_state(to);
    process.step_done(step);
    process.log(
        now,
        role.into(),
        format!("{} -> {to}", <P::Kind as Kind>::label(event)),
    );
    Ok(Some((to, process.entry(now, from, event, role.into()))))
}

/// Ends a process on this side alone (the counterparty never learnt of it, or a termination could not be
/// delivered): TERMINATED by [`Actor::Local`] with `code` and `reason`. Returns the ledger entry.
pub fn terminate_locally<P: Process>(
    process: &mut P,
    now: DateTime<Utc>,
    code: Option<String>,
    reason: String,
) -> NewEntry {
    let from = process.state();
    process.set_state(<P::Kind as Kind>::TERMINATED);
    process.set_outgoing(None);
    process.set_ended(Some(Termination {
        by: Actor::Local,
        code,
        reason: reason.clone(),
    }));
    process.log(now, Actor::Local, reason);
    let entry = process.entry(now, from, <P::Kind as Kind>::TERMINATION, Actor::Local);
    process.idle();
    entry
}

/// `From<message> for Inbound` for every variant of a kind's inbound enum.
macro_rules! inbound_from {
    ($inbound:ident { $($variant:ident($message:ty)),* $(,)? }) => {
        $(
            impl From<$message> for $inbound {
                fn from(m: $message) -> Self {
                    $inbound::$variant(m)
                }
            }
        )*
    };
}

pub(crate) use inbound_from;

/// Why a process is parked until someone outside the protocol decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Awaiting {
    /// Provider: the offer needs a human approval (`approve` / `reject`).
    Approval,
    /// The process is driven by hand (`manual`), or caap could not decide alone: any step the protocol
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

/// Who caused something in a process's history.
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

/// One line of a process's history.
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

/// Most history lines kept per process (a guard against a counterparty that loops).
pub const MAX_HISTORY: usize = 200;

/// Adds a history line, dropping the oldest past [`MAX_HISTORY`].
pub fn log(history: &mut Vec<HistoryItem>, at: DateTime<Utc>, by: Actor, what: String) {
    if history.len() >= MAX_HISTORY {
        history.remove(0);
    }
    history.push(HistoryItem { at, by, what });
}

/// How a process was terminated (or suspended), or the termination this side is about to send.
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

impl Termination {
    /// The termination (or suspension) `sender`'s message carries.
    pub fn received(sender: Role, code: Option<String>, reason: String) -> Self {
        Termination {
            by: sender.into(),
            code,
            reason,
        }
    }
}

/// An outbound protocol message: the path under the counterparty's address, and the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Relative to the counterparty's DSP base or callback address (`negotiations/…`, `transfers/…`).
    pub path: String,
    /// The JSON body.
    pub body: serde_json::Value,
}

impl Outgoing {
    pub(crate) fn new<T: Serialize>(path: String, message: &T) -> Self {
        Outgoing {
            path,
            // Our own message types always serialize.
            body: serde_json::to_value(message).unwrap_or_default(),
        }
    }

    /// The full URL under `base`, whether or not `base` ends with a slash (DSP: a callback may have one).
    pub fn url(&self, base: &str) -> String {
        format!("{}/{}", base.trim_end_matches('/'), self.path)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::negotiation::messages::{
        ContractAgreementVerificationMessage, ContractNegotiationEventMessage,
        ContractNegotiationTerminationMessage, ContractRequestMessage, EventType,
    };
    use crate::negotiation::process::{ContractNegotiation, Inbound, Step};
    use crate::negotiation::state::{NegotiationEvent, NegotiationState as S};

    /// The smallest process: what `apply` needs and nothing else.
    #[derive(Debug, Clone, PartialEq)]
    struct P {
        role: Role,
        provider_pid: Option<String>,
        consumer_pid: Option<String>,
        state: Option<S>,
        pending: Option<Step>,
        awaiting: Option<Awaiting>,
        attempts: u32,
        last_error: Option<String>,
        next: Option<DateTime<Utc>>,
        last_inbound: Option<String>,
        history: Vec<HistoryItem>,
        outgoing: Option<Termination>,
        ended: Option<Termination>,
    }

    impl Process for P {
        type Kind = ContractNegotiation;
        type Inbound = Inbound;
        fn id(&self) -> &str {
            match self.role {
                Role::Provider => self.provider_pid.as_deref().unwrap_or_default(),
                Role::Consumer => self.consumer_pid.as_deref().unwrap_or_default(),
            }
        }
        fn role(&self) -> Role {
            self.role
        }
        fn pids(&self) -> (Option<&str>, Option<&str>) {
            (self.provider_pid.as_deref(), self.consumer_pid.as_deref())
        }
        fn learn_pid(&mut self, theirs: String) {
            match self.role {
                Role::Provider => self.consumer_pid = Some(theirs),
                Role::Consumer => self.provider_pid = Some(theirs),
            }
        }
        fn state(&self) -> Option<S> {
            self.state
        }
        fn set_state(&mut self, state: S) {
            self.state = Some(state);
        }
        fn last_inbound(&self) -> Option<&str> {
            self.last_inbound.as_deref()
        }
        fn set_last_inbound(&mut self, value: String) {
            self.last_inbound = Some(value);
        }
        fn log(&mut self, at: DateTime<Utc>, by: Actor, what: String) {
            log(&mut self.history, at, by, what);
        }
        fn schedule(&mut self) -> Schedule<'_, Step> {
            Schedule {
                pending: &mut self.pending,
                awaiting: &mut self.awaiting,
                attempts: &mut self.attempts,
                last_error: &mut self.last_error,
                next_attempt_at: &mut self.next,
            }
        }
        fn pending(&self) -> Option<Step> {
            self.pending
        }
        fn step_done(&mut self, step: Step) {
            if step == Step::Terminate {
                self.ended = self.outgoing.take();
            }
        }
        fn absorb(&mut self, message: &Inbound, sender: Role) {
            if let Inbound::Termination(m) = message {
                self.ended = Some(Termination {
                    by: sender.into(),
                    code: m.code.clone(),
                    reason: m.reason_text(),
                });
            }
        }
        fn outgoing(&self) -> Option<&Termination> {
            self.outgoing.as_ref()
        }
        fn set_outgoing(&mut self, outgoing: Option<Termination>) {
            self.outgoing = outgoing;
        }
        fn set_ended(&mut self, ended: Option<Termination>) {
            self.ended = ended;
        }
        fn entry(
            &self,
            at: DateTime<Utc>,
            from: Option<S>,
            event: NegotiationEvent,
            by: Actor,
        ) -> NewEntry {
            NewEntry {
                at,
                kind: crate::ledger::EntryKind::NegotiationState,
                subject: self.id().to_owned(),
                payload: serde_json::json!({
                    "from": from.map(S::as_str),
                    "to": self.state.map(S::as_str),
                    "message": event.to_string(),
                    "by": by,
                }),
            }
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
    }

    fn provider(state: S, pending: Option<Step>, last_inbound: Option<&str>) -> P {
        P {
            role: Role::Provider,
            provider_pid: Some("p".into()),
            consumer_pid: Some("c".into()),
            state: Some(state),
            pending,
            awaiting: None,
            attempts: 2,
            last_error: None,
            next: None,
            last_inbound: last_inbound.map(str::to_owned),
            history: Vec::new(),
            outgoing: None,
            ended: None,
        }
    }

    fn verification(p: &str, c: &str) -> Inbound {
        Inbound::Verification(ContractAgreementVerificationMessage::new(p, c))
    }

    fn accepted() -> Inbound {
        Inbound::Event(ContractNegotiationEventMessage::new(
            "p",
            "c",
            EventType::Accepted,
        ))
    }

    fn termination() -> Inbound {
        Inbound::Termination(ContractNegotiationTerminationMessage::new(
            "p",
            "c",
            Some("no"),
            "changed my mind",
        ))
    }

    fn counter_offer() -> Inbound {
        Inbound::Request(ContractRequestMessage::new(
            "c",
            Some("p"),
            serde_json::json!({"@id": "o"}),
            None,
        ))
    }

    /// What `apply` answered, compactly: `Ok((from, to, implied, entries))`, `Ok(repeat)` or the refusal kind.
    #[derive(Debug, PartialEq)]
    enum Answer {
        Moved(Option<S>, S, Option<Step>, usize),
        Repeat,
        BadRequest,
        Illegal,
    }

    fn answer(process: P, message: &Inbound) -> Answer {
        match apply(process, message, now()) {
            Ok((
                _,
                Applied {
                    moved: None,
                    ledger,
                },
            )) => {
                assert!(ledger.is_empty());
                Answer::Repeat
            }
            Ok((
                _,
                Applied {
                    moved: Some(m),
                    ledger,
                },
            )) => Answer::Moved(m.from, m.to, m.implied, ledger.len()),
            Err(Refused::BadRequest(_)) => Answer::BadRequest,
            Err(Refused::Illegal(_)) => Answer::Illegal,
        }
    }

    #[test]
    fn apply_table() {
        let verified = "ContractAgreementVerificationMessage -> VERIFIED";
        let table: Vec<(&str, P, Inbound, Answer)> = vec![
            (
                "a legal message moves the state",
                provider(S::Agreed, None, None),
                verification("p", "c"),
                Answer::Moved(Some(S::Agreed), S::Verified, None, 1),
            ),
            (
                "our pid in the body differs from the URL's",
                provider(S::Agreed, None, None),
                verification("other", "c"),
                Answer::BadRequest,
            ),
            (
                "their pid differs from the one we know",
                provider(S::Agreed, None, None),
                verification("p", "other"),
                Answer::BadRequest,
            ),
            (
                "the same message again is a repeat",
                provider(S::Verified, None, Some(verified)),
                verification("p", "c"),
                Answer::Repeat,
            ),
            (
                "not a repeat while we owe a message",
                provider(S::Verified, Some(Step::Finalize), Some(verified)),
                verification("p", "c"),
                Answer::Illegal,
            ),
            (
                "a counter-offer is never a repeat",
                provider(
                    S::Requested,
                    None,
                    Some("ContractRequestMessage (counter-offer) -> REQUESTED"),
                ),
                counter_offer(),
                Answer::Illegal,
            ),
            (
                "an answer to our unacknowledged offer implies its acknowledgement",
                provider(S::Requested, Some(Step::Offer), None),
                accepted(),
                Answer::Moved(Some(S::Offered), S::Accepted, Some(Step::Offer), 2),
            ),
            (
                "an illegal message with nothing owed",
                provider(S::Requested, None, None),
                accepted(),
                Answer::Illegal,
            ),
            (
                "a termination overtakes what we owe",
                provider(S::Verified, Some(Step::Finalize), None),
                termination(),
                Answer::Moved(Some(S::Verified), S::Terminated, None, 1),
            ),
            (
                "nothing after a terminal state",
                provider(S::Finalized, None, None),
                termination(),
                Answer::Illegal,
            ),
        ];
        for (what, process, message, expected) in table {
            assert_eq!(answer(process, &message), expected, "{what}");
        }
    }

    #[test]
    fn apply_records_and_leaves_nothing_owed() {
        let process = provider(S::Verified, Some(Step::Finalize), None);
        let (after, applied) = apply(process, &termination(), now()).unwrap();
        assert_eq!(after.state, Some(S::Terminated));
        assert_eq!((after.pending, after.attempts), (None, 0));
        assert_eq!(
            after.last_inbound.as_deref(),
            Some("ContractNegotiationTerminationMessage -> TERMINATED")
        );
        assert_eq!(after.ended.as_ref().map(|t| t.by), Some(Actor::Consumer));
        assert_eq!(applied.ledger[0].payload["to"], "TERMINATED");
        assert_eq!(after.history.len(), 1);
    }

    #[test]
    fn an_unknown_counterparty_pid_is_learnt() {
        let mut process = provider(S::Agreed, None, None);
        process.consumer_pid = None;
        let (after, _) = apply(process, &verification("p", "c"), now()).unwrap();
        assert_eq!(after.consumer_pid.as_deref(), Some("c"));
    }

    #[test]
    fn an_implied_step_is_recorded_before_the_answer() {
        let mut process = provider(S::Agreed, Some(Step::Verify), None);
        process.role = Role::Consumer;
        let finalized = Inbound::Event(ContractNegotiationEventMessage::new(
            "p",
            "c",
            EventType::Finalized,
        ));
        let (after, applied) = apply(process, &finalized, now()).unwrap();
        assert_eq!(after.state, Some(S::Finalized));
        let states: Vec<_> = applied
            .ledger
            .iter()
            .map(|e| e.payload["to"].clone())
            .collect();
        assert_eq!(states, ["VERIFIED", "FINALIZED"]);
        assert_eq!(applied.ledger[0].payload["by"], "consumer");
        assert_eq!(applied.ledger[1].payload["by"], "provider");
        assert!(
            after.history[0]
                .what
                .contains("acknowledged by the counterparty")
        );
    }

    #[test]
    fn acknowledged_and_local_termination() {
        let mut process = provider(S::Verified, Some(Step::Finalize), None);
        let (to, entry) = acknowledged(&mut process, Step::Finalize, now())
            .unwrap()
            .unwrap();
        assert_eq!((to, process.pending), (S::Finalized, None));
        assert_eq!(entry.payload["from"], "VERIFIED");
        let mut stale = provider(S::Finalized, Some(Step::Finalize), None);
        assert!(acknowledged(&mut stale, Step::Finalize, now()).is_err());
        let mut process = provider(S::Agreed, Some(Step::Terminate), None);
        let entry = terminate_locally(&mut process, now(), Some("x".into()), "why".into());
        assert_eq!(process.state, Some(S::Terminated));
        assert_eq!(process.ended.as_ref().map(|t| t.by), Some(Actor::Local));
        assert_eq!(entry.payload["by"], "local");
    }
}
