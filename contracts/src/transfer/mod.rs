//! Transfer process (DSP 2025-1 §"Transfer Process Protocol"): the state machine and its message bodies.

pub mod message;
pub mod state;
