//! The DSP 2025-1 JSON-LD context: it defines the compact terms of caap's policies and every DSP message
//! (catalog, negotiation, transfer) carries it. Defined in this leaf crate, which `caap-catalog`,
//! `caap-contracts` and `caap-policy` all build on, so none of them depends on another for it.

/// The JSON-LD context every DSP 2025-1 message carries.
pub const DSP_CONTEXT: &str = "https://w3id.org/dspace/2025/1/context.jsonld";

/// `["https://w3id.org/dspace/2025/1/context.jsonld"]`, the `@context` value of DSP 2025-1 messages.
pub fn dsp_context() -> Vec<String> {
    vec![DSP_CONTEXT.to_owned()]
}
