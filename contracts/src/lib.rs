//! Contract negotiation and transfer process for caap, following the Eclipse Dataspace Protocol (DSP) 2025-1.
//!
//! This crate is part of the functional core: it holds the protocol's message and acknowledgement types and the
//! two pure state machines ([`negotiation::state::transition`] and [`transfer::state::transition`]), each one
//! function from (current state, sender, message) to the next state or an [`negotiation::state::IllegalTransition`].
//! Both are kinds of one process shape ([`process`]): [`process::apply`] is the pure rule for a message received
//! (pid reconciliation, repeats, implied acknowledgements, the transition, the ledger entries), and each kind maps
//! the steps a side owes to the messages they send ([`negotiation::process::outgoing`],
//! [`transfer::process::outgoing`]). It does no IO, has no async and reads no clock; the `connector` crate stores processes, sends messages and maps
//! [`Error`] to HTTP.
//!
//! It also holds what lets both sides prove later what was agreed and what happened (OASC MIM3):
//! [`canonical::canonical_json`], the one byte form of a JSON value that is hashed and signed; provider-signed
//! agreements ([`agreement::sign_agreement`], [`agreement::verify_agreement`]: a compact ES256 or EdDSA JWS over the
//! canonical agreement); and the hash-chained transaction ledger ([`ledger::append`] builds entries,
//! [`ledger::ChainVerifier`] checks a stored ledger page by page, agreement signatures included).
//!
//! [`wire::check_message`] holds the rules every DSP message meets on the wire (the schemas' constraints on
//! policies, the ODRL model, absolute IRIs): caap applies them to what it receives as to what it sends.

pub mod agreement;
pub mod canonical;
mod jsonld;
pub mod ledger;
pub mod negotiation;
pub mod process;
pub mod transfer;
pub mod wire;

pub use agreement::{AgreementSignatureError, sign_agreement, signer_public_jwk, verify_agreement};
pub use canonical::canonical_json;
pub use ledger::{
    AgreementRecord, ChainVerifier, EntryKind, GENESIS_HASH, LedgerEntry, LedgerFault,
    LedgerSummary, NewEntry, append, entry_hash, verify_chain,
};

use std::fmt;

/// The errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A contract negotiation message that the current state does not allow (DSP: 400 + `ContractNegotiationError`).
    #[error(transparent)]
    IllegalNegotiationTransition(#[from] negotiation::state::IllegalTransition),
    /// A transfer process message that the current state does not allow (DSP: 400 + `TransferError`).
    #[error(transparent)]
    IllegalTransferTransition(#[from] transfer::state::IllegalTransition),
}

/// Which side of a contract negotiation or transfer process a participant plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The party that wants the data.
    Consumer,
    /// The party that offers the data.
    Provider,
}

impl Role {
    /// Both roles, consumer first.
    pub const fn all() -> [Role; 2] {
        [Role::Consumer, Role::Provider]
    }

    /// The other side.
    pub const fn counterparty(self) -> Role {
        match self {
            Role::Consumer => Role::Provider,
            Role::Provider => Role::Consumer,
        }
    }

    /// `"consumer"` or `"provider"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Consumer => "consumer",
            Role::Provider => "provider",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no state of the machine it was parsed for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {machine} state `{value}`")]
pub struct UnknownState {
    /// `"contract negotiation"` or `"transfer process"`.
    pub machine: &'static str,
    /// The string that was not recognised.
    pub value: String,
}
