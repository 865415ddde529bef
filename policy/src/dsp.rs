//! The DSP 2025-1 JSON-LD context: it defines the compact terms of this crate's policies and every DSP
//! message (catalog, negotiation, transfer) carries it. Defined here, in the one crate that both
//! `caap-catalog` and `caap-contracts` build on, so neither depends on the other for it.

/// The JSON-LD context every DSP 2025-1 message carries.
pub const DSP_CONTEXT: &str = "https://w3id.org/dspace/2025/1/context.jsonld";

/// `["https://w3id.org/dspace/2025/1/context.jsonld"]`, the `@context` value of DSP 2025-1 messages.
pub fn dsp_context() -> Vec<String> {
    vec![DSP_CONTEXT.to_owned()]
}
