//! The processes as caap stores them: a contract negotiation ([`negotiation`]) and a transfer process
//! ([`transfer`]), with what every process type shares (pids, the counterparty, the ledger entry of a state
//! change). Plain data below the store: the store writes these types, the services above change them.

pub mod negotiation;
pub mod transfer;

use serde_json::Value;

/// A new `urn:uuid:` process id.
pub fn new_pid() -> String {
    format!("urn:uuid:{}", uuid::Uuid::new_v4())
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

/// Who a process is with.
pub trait Counterparty {
    /// The counterparty's participant id.
    fn counterparty_id(&self) -> &str;
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
                peer: $crate::model::Peer,
                state: Option<$state>,
                $( $field: $fty, )*
                body: $body,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Self {
                let id = $crate::model::new_pid();
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

        impl $crate::model::Counterparty for $name {
            fn counterparty_id(&self) -> &str {
                &self.counterparty_id
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

pub(crate) use {process_fields, process_struct};
