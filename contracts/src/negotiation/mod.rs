//! Contract negotiation (DSP 2025-1 §"Contract Negotiation Protocol"): the state machine, its message bodies,
//! and the negotiation as a process kind.

pub mod message;
pub mod messages;
pub mod process;
pub mod state;
