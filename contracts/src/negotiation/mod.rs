//! Contract negotiation (DSP 2025-1 §"Contract Negotiation Protocol"): the state machine and its message bodies.

pub mod message;
pub mod messages;
pub mod state;
