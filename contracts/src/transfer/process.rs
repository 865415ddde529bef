//! The transfer process as a [`crate::process::Kind`]: the steps a side may owe, the messages it receives, and
//! the message each step sends.

use serde::{Deserialize, Serialize};

use super::message::{
    DataAddress, TransferCompletionMessage, TransferRequestMessage, TransferStartMessage,
    TransferSuspensionMessage, TransferTerminationMessage,
};
use super::state::{TransferEvent, TransferState, transition};
use crate::Role;
use crate::process::{Kind, Message, Outgoing, Termination};

/// The transfer process kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferProcess;

impl Kind for TransferProcess {
    const NOUN: &'static str = "transfer";
    type State = TransferState;
    type Event = TransferEvent;
    type Step = Step;
    const TERMINATED: TransferState = TransferState::Terminated;
    const TERMINATION: TransferEvent = TransferEvent::Termination;
    const TERMINATE: Step = Step::Terminate;

    fn step_name(step: Step) -> &'static str {
        step.as_str()
    }

    fn transition(
        from: Option<TransferState>,
        sender: Role,
        event: TransferEvent,
    ) -> Result<TransferState, String> {
        transition(from, sender, event).map_err(|illegal| illegal.to_string())
    }

    fn is_terminal(state: TransferState) -> bool {
        state.is_terminal()
    }

    fn step_event(step: Step, _from: Option<TransferState>) -> Option<TransferEvent> {
        step.event()
    }

    fn label(event: TransferEvent) -> String {
        // The short name (`Start -> STARTED`): what stored processes hold in their last message received.
        format!("{event:?}")
    }
}

/// What a side owes: a DSP message, or (provider, push) the data itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
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

impl Step {
    /// Every step.
    pub const ALL: [Step; 6] = [
        Step::Request,
        Step::Start,
        Step::Push,
        Step::Suspend,
        Step::Complete,
        Step::Terminate,
    ];

    /// The stored and displayed name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::Request => "request",
            Step::Start => "start",
            Step::Push => "push",
            Step::Suspend => "suspend",
            Step::Complete => "complete",
            Step::Terminate => "terminate",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Step> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The state-machine event of this step (`None` for the push, which is no protocol message).
    pub const fn event(self) -> Option<TransferEvent> {
        Some(match self {
            Step::Request => TransferEvent::Request,
            Step::Start => TransferEvent::Start,
            Step::Push => return None,
            Step::Suspend => TransferEvent::Suspension,
            Step::Complete => TransferEvent::Completion,
            Step::Terminate => TransferEvent::Termination,
        })
    }
}

/// A transfer-process message received.
#[derive(Debug, Clone)]
pub enum Inbound {
    /// `TransferRequestMessage`.
    Request(TransferRequestMessage),
    /// `TransferStartMessage`.
    Start(TransferStartMessage),
    /// `TransferSuspensionMessage`.
    Suspension(TransferSuspensionMessage),
    /// `TransferCompletionMessage`.
    Completion(TransferCompletionMessage),
    /// `TransferTerminationMessage`.
    Termination(TransferTerminationMessage),
}

impl Message<TransferProcess> for Inbound {
    fn event(&self) -> TransferEvent {
        match self {
            Inbound::Request(_) => TransferEvent::Request,
            Inbound::Start(_) => TransferEvent::Start,
            Inbound::Suspension(_) => TransferEvent::Suspension,
            Inbound::Completion(_) => TransferEvent::Completion,
            Inbound::Termination(_) => TransferEvent::Termination,
        }
    }

    fn pids(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Inbound::Request(m) => (None, Some(&m.consumer_pid)),
            Inbound::Start(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
            Inbound::Suspension(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
            Inbound::Completion(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
            Inbound::Termination(m) => (Some(&m.provider_pid), Some(&m.consumer_pid)),
        }
    }
}

crate::process::inbound_from!(Inbound {
    Request(TransferRequestMessage),
    Start(TransferStartMessage),
    Suspension(TransferSuspensionMessage),
    Completion(TransferCompletionMessage),
    Termination(TransferTerminationMessage),
});

impl Inbound {
    /// Checks the message's own rules (its JSON-LD context).
    ///
    /// # Errors
    ///
    /// The reason, for a 400.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Inbound::Request(m) => m.check(),
            Inbound::Start(m) => m.check(),
            Inbound::Suspension(m) => m.check(),
            Inbound::Completion(m) => m.check(),
            Inbound::Termination(m) => m.check(),
        }
    }
}

/// What a transfer's outbound messages carry.
#[derive(Debug, Clone, Copy)]
pub struct Documents<'a> {
    /// The agreement the transfer is under.
    pub agreement_id: &'a str,
    /// The format (`HttpData-PULL`, …).
    pub format: &'a str,
    /// Where the counterparty answers us: our DSP base (sent with the request).
    pub callback: &'a str,
    /// The request's data address (push: where to push to).
    pub request_address: Option<&'a DataAddress>,
    /// The start's data address (the provider's pull address with a fresh token), made by the caller.
    pub start_address: Option<&'a DataAddress>,
    /// The suspension or termination to send.
    pub reason: Option<&'a Termination>,
}

/// The message `step` sends for a transfer where this side is `role` and the pids are `(provider,
/// consumer)`. `Ok(None)`: the counterparty's pid is not known (it never acknowledged the request), so there is
/// no one to tell.
///
/// # Errors
///
/// A step that sends no message here (a push; a request already acknowledged).
pub fn outgoing(
    step: Step,
    role: Role,
    (provider, consumer): (Option<&str>, Option<&str>),
    docs: &Documents<'_>,
) -> Result<Option<Outgoing>, String> {
    let theirs = match role {
        Role::Provider => consumer,
        Role::Consumer => provider,
    };
    let (Some(theirs), Some(p), Some(c)) = (theirs, provider, consumer) else {
        return Ok((step == Step::Request).then(|| {
            Outgoing::new(
                "transfers/request".to_owned(),
                &TransferRequestMessage::new(
                    consumer.unwrap_or_default(),
                    docs.agreement_id,
                    docs.format,
                    docs.callback,
                    docs.request_address.cloned(),
                ),
            )
        }));
    };
    let code = docs.reason.and_then(|r| r.code.as_deref());
    let reason = docs.reason.map(|r| r.reason.as_str()).unwrap_or_default();
    let path = |last: &str| format!("transfers/{theirs}/{last}");
    Ok(Some(match step {
        Step::Request => return Err("the request was acknowledged already".into()),
        Step::Push => return Err("a push is no DSP message".into()),
        Step::Start => Outgoing::new(
            path("start"),
            &TransferStartMessage::new(p, c, docs.start_address.cloned()),
        ),
        Step::Suspend => Outgoing::new(
            path("suspension"),
            &TransferSuspensionMessage::new(p, c, code, reason),
        ),
        Step::Complete => Outgoing::new(path("completion"), &TransferCompletionMessage::new(p, c)),
        Step::Terminate => Outgoing::new(
            path("termination"),
            &TransferTerminationMessage::new(p, c, code, reason),
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Actor;

    #[test]
    fn every_step_maps_to_its_message_and_path() {
        let reason = Termination {
            by: Actor::Consumer,
            code: Some("c1".into()),
            reason: "r".into(),
        };
        let docs = Documents {
            agreement_id: "a",
            format: "HttpData-PULL",
            callback: "http://me/dsp",
            request_address: None,
            start_address: None,
            reason: Some(&reason),
        };
        let both = (Some("p"), Some("c"));
        // (step, role, path, @type)
        let table = [
            (
                Step::Start,
                Role::Provider,
                "transfers/c/start",
                "TransferStartMessage",
            ),
            (
                Step::Start,
                Role::Consumer,
                "transfers/p/start",
                "TransferStartMessage",
            ),
            (
                Step::Suspend,
                Role::Consumer,
                "transfers/p/suspension",
                "TransferSuspensionMessage",
            ),
            (
                Step::Complete,
                Role::Provider,
                "transfers/c/completion",
                "TransferCompletionMessage",
            ),
            (
                Step::Terminate,
                Role::Provider,
                "transfers/c/termination",
                "TransferTerminationMessage",
            ),
        ];
        for (step, role, path, kind) in table {
            let out = outgoing(step, role, both, &docs).unwrap().unwrap();
            assert_eq!(out.path, path, "{step:?} {role}");
            assert_eq!(out.body["@type"], kind, "{step:?} {role}");
        }
        let request = outgoing(Step::Request, Role::Consumer, (None, Some("c")), &docs)
            .unwrap()
            .unwrap();
        assert_eq!(request.path, "transfers/request");
        assert_eq!(request.body["agreementId"], "a");
        // The provider never acknowledged: no one to tell about a termination.
        assert_eq!(
            outgoing(Step::Terminate, Role::Consumer, (None, Some("c")), &docs),
            Ok(None)
        );
        assert!(outgoing(Step::Push, Role::Provider, both, &docs).is_err());
        assert!(outgoing(Step::Request, Role::Consumer, both, &docs).is_err());
    }
}
