//! Transfer process (DSP 2025-1 §"Transfer Process Protocol"): the state machine, its message bodies, and the
//! transfer as a process kind.

pub mod message;
pub mod process;
pub mod state;
