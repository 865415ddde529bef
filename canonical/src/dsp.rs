//! The DSP 2025-1 JSON-LD context: it defines the compact terms of caap's policies and every DSP message
//! (catalog, negotiation, transfer) carries it. Defined in this leaf crate, which `caap-catalog`,
//! `caap-contracts` and `caap-policy` all build on, so none of them depends on another for it.

/// The JSON-LD context every DSP 2025-1 message carries.
pub const DSP_CONTEXT: &str = "https://w3id.org/dspace/2025/1/context.jsonld";

/// caap's own JSON-LD context: the terms caap adds to DSP messages (the agreement signature, the `dpv:`
/// prefix of purposes, the `caap:` prefix of participant-claim left operands). Every caap connector serves
/// [`CAAP_CONTEXT_DOCUMENT`] at [`CAAP_CONTEXT_PATH`] on its DSP listener.
pub const CAAP_CONTEXT: &str = "https://w3id.org/caap/v1/context.jsonld";
/// Where a caap connector serves its context, relative to the DSP listener's root.
pub const CAAP_CONTEXT_PATH: &str = "/caap/v1/context.jsonld";
/// The document at [`CAAP_CONTEXT`].
pub const CAAP_CONTEXT_DOCUMENT: &str = include_str!("caap-v1.context.jsonld");

/// `["https://w3id.org/dspace/2025/1/context.jsonld"]`, the `@context` value of DSP 2025-1 messages that
/// carry no policy (acknowledgements, errors, transfer messages, process events).
pub fn dsp_context() -> Vec<String> {
    vec![DSP_CONTEXT.to_owned()]
}

/// `["https://w3id.org/dspace/2025/1/context.jsonld", "https://w3id.org/caap/v1/context.jsonld"]`, the
/// `@context` of the messages that carry policies or caap's terms (catalog, dataset, contract request, offer
/// and agreement): the DSP context, then caap's, which only adds terms (`dpv:`, `caap:`, the agreement
/// signature), so the DSP context's protected definitions stand and the schema's "contains" check holds.
pub fn policy_context() -> Vec<String> {
    vec![DSP_CONTEXT.to_owned(), CAAP_CONTEXT.to_owned()]
}

/// True for an absolute IRI (RFC 3987): a scheme (a letter, then letters, digits, `+`, `-`, `.`), a colon
/// and something after it. `readings-csv` and `a/b` are relative; `urn:uuid:1`, `did:web:x` and
/// `https://x/y` are absolute.
pub fn is_absolute(id: &str) -> bool {
    match id.split_once(':') {
        Some((scheme, rest)) => {
            !rest.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}
