//! What the connector does the same way for every kind of DSP process (negotiations, transfers): the refusal
//! of an inbound message, the loop that applies a message to a stored process (re-reading it when a processor
//! claim changed it meanwhile), and the accessors every process type shares. The protocol rules themselves are
//! [`caap_contracts::process`]; storing is [`crate::store::processes`]; sending is [`crate::processor`].

use caap_identity::VerifiedCaller;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::service::ServiceError;
use crate::store::processes::Stored;
use crate::store::{Store, StoreError};

/// A new `urn:uuid:` process id.
pub fn new_pid() -> String {
    format!("urn:uuid:{}", uuid::Uuid::new_v4())
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

/// The other side of a new process: who, where, and its pid if it is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    /// Its participant id.
    pub id: String,
    /// Its DSP base or callback address.
    pub address: String,
    /// Its pid, when it started the process.
    pub pid: Option<String>,
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

/// The ledger entry of a state change of `p`: what every kind records (role, pids, counterparty, from, to,
/// message, by), then the kind's own `details`.
#[allow(clippy::too_many_arguments)]
pub fn state_entry<P: caap_contracts::process::Process + Counterparty>(
    p: &P,
    kind: caap_contracts::ledger::EntryKind,
    at: chrono::DateTime<chrono::Utc>,
    from: Option<&str>,
    to: Option<&str>,
    message: String,
    by: caap_contracts::process::Actor,
    details: Value,
) -> caap_contracts::ledger::NewEntry {
    let (provider_pid, consumer_pid) = p.pids();
    let mut payload = serde_json::json!({
        "role": p.role().as_str(),
        "providerPid": provider_pid.unwrap_or_default(),
        "consumerPid": consumer_pid.unwrap_or_default(),
        "counterparty": p.counterparty_id(),
        "from": from,
        "to": to,
        "message": message,
        "by": by,
    });
    if let (Value::Object(all), Value::Object(own)) = (&mut payload, details) {
        all.extend(own);
    }
    caap_contracts::ledger::NewEntry {
        at,
        kind,
        subject: p.id().to_owned(),
        payload,
    }
}

/// Who a process is with.
pub trait Counterparty {
    /// The counterparty's participant id.
    fn counterparty_id(&self) -> &str;
}

/// Declares a process type: the fields every process has (pids, counterparty, `state`, the schedule, `body`,
/// times, version) and its own, with its constructor, its view and its [`Counterparty`]. `impl Process`
/// takes the common accessors from [`process_fields!`].
macro_rules! process_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            state: $state:ty,
            step: $step:ty,
            body: $body:ty,
            $( $(#[$fmeta:meta])* pub $field:ident: $fty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            /// This side's process id (`providerPid` when we provide, `consumerPid` when we consume).
            pub id: String,
            /// Our role.
            pub role: caap_contracts::Role,
            /// The provider's pid, once known.
            pub provider_pid: Option<String>,
            /// The consumer's pid, once known.
            pub consumer_pid: Option<String>,
            /// The counterparty's participant id.
            pub counterparty_id: String,
            /// Where the counterparty's DSP endpoints are (its DSP base, or the callback address it gave).
            pub counterparty_address: String,
            /// The protocol state both sides agree on; `None` until the first message is acknowledged.
            pub state: Option<$state>,
            $( $(#[$fmeta])* pub $field: $fty, )*
            /// Documents, progress and history.
            pub body: $body,
            /// What this side owes.
            pub pending: Option<$step>,
            /// Parked for a decision.
            pub awaiting: Option<caap_contracts::process::Awaiting>,
            /// Failed attempts at the pending step.
            pub attempts: u32,
            /// The last failure, readable.
            pub last_error: Option<String>,
            /// When the processor tries the pending step next.
            pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
            /// Created.
            pub created_at: chrono::DateTime<chrono::Utc>,
            /// Last changed.
            pub updated_at: chrono::DateTime<chrono::Utc>,
            /// Optimistic-concurrency version, +1 on every write.
            pub version: i64,
        }

        impl $name {
            /// A new process with a fresh pid for this side, in `state`, owing nothing yet.
            pub fn new(
                role: caap_contracts::Role,
                peer: $crate::process::Peer,
                state: Option<$state>,
                $( $field: $fty, )*
                body: $body,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Self {
                let id = $crate::process::new_pid();
                let (provider_pid, consumer_pid) = match role {
                    caap_contracts::Role::Provider => (Some(id.clone()), peer.pid),
                    caap_contracts::Role::Consumer => (peer.pid, Some(id.clone())),
                };
                $name {
                    id,
                    role,
                    provider_pid,
                    consumer_pid,
                    counterparty_id: peer.id,
                    counterparty_address: peer.address,
                    state,
                    $( $field, )*
                    body,
                    pending: None,
                    awaiting: None,
                    attempts: 0,
                    last_error: None,
                    next_attempt_at: None,
                    created_at: now,
                    updated_at: now,
                    version: 0,
                }
            }

            /// (provider pid, consumer pid), "" where unknown.
            pub fn pids(&self) -> (String, String) {
                (
                    self.provider_pid.clone().unwrap_or_default(),
                    self.consumer_pid.clone().unwrap_or_default(),
                )
            }
        }

        impl $crate::process::Counterparty for $name {
            fn counterparty_id(&self) -> &str {
                &self.counterparty_id
            }
        }
    };
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

/// The accessor methods of `impl caap_contracts::process::Process` for a type with the common fields; used
/// inside the impl block.
macro_rules! process_fields {
    ($outgoing:ident) => {
        fn outgoing(&self) -> Option<&caap_contracts::process::Termination> {
            self.body.$outgoing.as_ref()
        }
        fn set_outgoing(&mut self, outgoing: Option<caap_contracts::process::Termination>) {
            self.body.$outgoing = outgoing;
        }
        fn set_ended(&mut self, ended: Option<caap_contracts::process::Termination>) {
            self.body.termination = ended;
        }
        fn id(&self) -> &str {
            &self.id
        }
        fn role(&self) -> caap_contracts::Role {
            self.role
        }
        fn pids(&self) -> (Option<&str>, Option<&str>) {
            (self.provider_pid.as_deref(), self.consumer_pid.as_deref())
        }
        fn learn_pid(&mut self, theirs: String) {
            match self.role {
                caap_contracts::Role::Provider => self.consumer_pid = Some(theirs),
                caap_contracts::Role::Consumer => self.provider_pid = Some(theirs),
            }
        }
        fn state(&self) -> Option<<Self::Kind as caap_contracts::process::Kind>::State> {
            self.state
        }
        fn set_state(&mut self, state: <Self::Kind as caap_contracts::process::Kind>::State) {
            self.state = Some(state);
        }
        fn last_inbound(&self) -> Option<&str> {
            self.body.last_inbound.as_deref()
        }
        fn set_last_inbound(&mut self, value: String) {
            self.body.last_inbound = Some(value);
        }
        fn log(
            &mut self,
            at: chrono::DateTime<chrono::Utc>,
            by: caap_contracts::process::Actor,
            what: String,
        ) {
            caap_contracts::process::log(&mut self.body.history, at, by, what);
        }
        fn schedule(
            &mut self,
        ) -> caap_contracts::process::Schedule<
            '_,
            <Self::Kind as caap_contracts::process::Kind>::Step,
        > {
            caap_contracts::process::Schedule {
                pending: &mut self.pending,
                awaiting: &mut self.awaiting,
                attempts: &mut self.attempts,
                last_error: &mut self.last_error,
                next_attempt_at: &mut self.next_attempt_at,
            }
        }
        fn pending(&self) -> Option<<Self::Kind as caap_contracts::process::Kind>::Step> {
            self.pending
        }
    };
}

pub(crate) use {process_fields, process_service, process_struct};
