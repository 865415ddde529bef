//! What the connector does the same way for every kind of DSP process (negotiations, transfers): the refusal
//! of an inbound message, the loop that applies a message to a stored process (re-reading it when a processor
//! claim changed it meanwhile), and what the DSP endpoints ask of a process service. The process types themselves
//! are [`crate::model`]; the protocol rules [`caap_contracts::process`]; storing is [`crate::store::processes`];
//! sending is [`crate::processor`].

use caap_identity::VerifiedCaller;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ServiceError;
use crate::model::Counterparty;
use crate::store::processes::Stored;
use crate::store::{Store, StoreError};

/// What every process service (negotiations, transfers) works with, shared with the rest of the connector.
/// Each service holds one and reads its fields through it (`Deref`), so the six are declared once.
#[derive(Clone)]
pub struct ProcessContext {
    /// Persistence.
    pub store: Store,
    /// The clock.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// The configuration.
    pub config: std::sync::Arc<crate::config::Config>,
    /// Who we are (agreements are signed with its key; a push transfer's receiver is on its public URL).
    pub identity: std::sync::Arc<crate::trust::Identity>,
    /// Decides contract policies and whether an agreement permits a transfer now.
    pub decider: std::sync::Arc<dyn caap_policy::PolicyDecider>,
    /// Wakes the processor when a step is owed.
    pub wake: std::sync::Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for ProcessContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessContext").finish_non_exhaustive()
    }
}

impl crate::service::Connector {
    /// The context the process services share, from this connector's state.
    pub fn process_context(&self) -> ProcessContext {
        ProcessContext {
            store: self.store.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
            identity: self.identity.clone(),
            decider: self.decider.clone(),
            wake: self.wake.clone(),
        }
    }
}

/// Why an inbound process message was refused. The HTTP layer answers with the protocol's error body.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Unknown process, or not the caller's: 404 (DSP does not tell which).
    NotFound,
    /// Malformed or inconsistent message: 400.
    BadRequest(String),
    /// Not allowed in the current state: 400.
    Illegal(String),
    /// The process kept changing under the message (a busy replica): 409, the sender retries.
    Busy,
    /// Our fault; the cause is logged: 500.
    Internal(String),
}

/// The refusal with the pids to put in the error body.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Why.
    pub refusal: Refusal,
    /// The provider pid to report.
    pub provider_pid: String,
    /// The consumer pid to report.
    pub consumer_pid: String,
}

/// The acknowledgement of an inbound message: the process's ACK body and whether it was created (201) or
/// changed (200).
#[derive(Debug, Clone)]
pub struct Acknowledged<A> {
    /// `true` for a newly created process.
    pub created: bool,
    /// The `ContractNegotiation` or `TransferProcess` body.
    pub ack: A,
}

impl From<ServiceError> for Refusal {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadRequest(m, _) | ServiceError::Invalid(m, _) => Refusal::BadRequest(m),
            ServiceError::NotFound(_) => Refusal::NotFound,
            other => Refusal::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => Refusal::Busy,
            other => Refusal::Internal(other.to_string()),
        }
    }
}

impl From<caap_contracts::process::Refused> for Refusal {
    fn from(e: caap_contracts::process::Refused) -> Self {
        use caap_contracts::process::Refused;
        match e {
            Refused::BadRequest(m) => Refusal::BadRequest(m),
            Refused::Illegal(m) => Refusal::Illegal(m),
        }
    }
}

/// Most times an inbound message is re-applied when the process changed under it (a processor claim).
const CONFLICT_RETRIES: usize = 5;

/// Checks a `callbackAddress`: an http(s) URL with a host.
pub fn check_callback(address: &str) -> Result<(), Refusal> {
    match url::Url::parse(address) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(_) => Err(Refusal::BadRequest(format!(
            "callbackAddress `{address}` must be an http(s) URL with a host"
        ))),
        Err(e) => Err(Refusal::BadRequest(format!(
            "callbackAddress `{address}` is not a URL: {e}"
        ))),
    }
}

/// Applies a message to the stored process `pid` with `apply`, which writes it guarded by the version it read:
/// a process unknown or not the caller's is [`Refusal::NotFound`]; one that changed meanwhile is read again.
pub async fn in_process<P, A>(
    store: &Store,
    caller: &VerifiedCaller,
    pid: &str,
    mut apply: impl AsyncFnMut(P) -> Result<A, Refusal>,
) -> Result<A, Refusal>
where
    P: Stored + Counterparty,
{
    let mut attempt = 0;
    loop {
        let Some(process) = store.process::<P>(pid).await? else {
            return Err(Refusal::NotFound);
        };
        if process.counterparty_id() != caller.participant_id {
            tracing::info!(pid, caller = %caller.participant_id, "process message from a party that is not the counterparty");
            return Err(Refusal::NotFound);
        }
        match apply(process).await {
            Err(Refusal::Busy) if attempt < CONFLICT_RETRIES => attempt += 1,
            other => return other,
        }
    }
}

/// The outcome of an inbound message, logged, with the pids for an error body. `pids` are the ones the
/// message names (provider, consumer); `pid` the one in the URL.
pub fn answer<A>(
    caller: &VerifiedCaller,
    pid: Option<&str>,
    (p, c): (Option<&str>, Option<&str>),
    what: &str,
    result: Result<A, Refusal>,
) -> Result<A, Rejected> {
    result.map_err(|refusal| {
        match &refusal {
            Refusal::Internal(cause) => tracing::error!(pid, %cause, "{what} message failed"),
            other => tracing::info!(pid, refusal = ?other, caller = %caller.participant_id,
                "{what} message refused"),
        }
        Rejected {
            refusal,
            provider_pid: p.or(pid).unwrap_or_default().to_owned(),
            consumer_pid: c.or(pid).unwrap_or_default().to_owned(),
        }
    })
}

/// The kinds of process, as far as the protocol's error bodies care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessKind {
    /// A contract negotiation (`ContractNegotiationError`).
    Negotiation,
    /// A transfer process (`TransferError`).
    Transfer,
}

impl ProcessKind {
    /// How people call it.
    pub const fn noun(self) -> &'static str {
        match self {
            ProcessKind::Negotiation => "negotiation",
            ProcessKind::Transfer => "transfer",
        }
    }
}

/// What the DSP endpoints of a process kind ask of its service.
pub trait ProcessService: 'static {
    /// The protocol.
    const KIND: ProcessKind;
    /// The messages it receives.
    type Inbound;
    /// Its acknowledgement body.
    type Ack: Serialize;
    /// The largest message body accepted.
    fn max_body_bytes(&self) -> usize;
    /// Handles one inbound message (`pid`: ours, from the URL; `None` on the endpoints that start a process).
    fn receive(
        &self,
        caller: &VerifiedCaller,
        pid: Option<&str>,
        message: Self::Inbound,
    ) -> impl Future<Output = Result<Acknowledged<Self::Ack>, Rejected>>;
    /// The acknowledgement body of process `pid`, for its counterparty only.
    fn ack(
        &self,
        caller: &VerifiedCaller,
        pid: &str,
    ) -> impl Future<Output = Result<Self::Ack, Rejected>>;
}

/// The process `pid` if `caller` is its counterparty; a store failure is [`Refusal::Internal`] (logged).
pub async fn counterparty_view<P: Stored + Counterparty>(
    store: &Store,
    caller: &VerifiedCaller,
    pid: &str,
    kind: ProcessKind,
) -> Result<P, Rejected> {
    let result = match store.process::<P>(pid).await {
        Ok(Some(p)) if p.counterparty_id() == caller.participant_id => Ok(p),
        Ok(_) => Err(Refusal::NotFound),
        Err(e) => Err(Refusal::Internal(e.to_string())),
    };
    answer(caller, Some(pid), (None, None), kind.noun(), result)
}

/// The body of a step taken by hand through the management API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StepRequest {
    /// Termination or suspension code (terminate, reject, suspend).
    #[serde(default)]
    pub code: Option<String>,
    /// Termination or suspension reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// Negotiations: the offer to send (offer, counter-offer).
    #[serde(default)]
    pub offer: Option<Value>,
}

/// `impl ProcessService` for a service whose process type `$process` answers with `$ack` (made by `$ack_of`).
macro_rules! process_service {
    ($service:ty, $process:ty, $inbound:ty, $ack:ty, $kind:expr, $ack_of:path) => {
        impl $crate::process::ProcessService for $service {
            const KIND: $crate::process::ProcessKind = $kind;
            type Inbound = $inbound;
            type Ack = $ack;

            fn max_body_bytes(&self) -> usize {
                self.config.limits.max_body_bytes
            }

            async fn receive(
                &self,
                caller: &caap_identity::VerifiedCaller,
                pid: Option<&str>,
                message: $inbound,
            ) -> Result<$crate::process::Acknowledged<$ack>, $crate::process::Rejected> {
                self.receive_message(caller, pid, message).await
            }

            async fn ack(
                &self,
                caller: &caap_identity::VerifiedCaller,
                pid: &str,
            ) -> Result<$ack, $crate::process::Rejected> {
                let p: $process =
                    $crate::process::counterparty_view(&self.store, caller, pid, $kind).await?;
                Ok($ack_of(&p, false).ack)
            }
        }
    };
}

pub(crate) use process_service;
