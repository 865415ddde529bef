//! The catalog domain of caap: what a city publishes and how it is described.
//!
//! * [`asset`]: an asset is a dataset's metadata (title, keywords, themes, Smart Data Model type, a
//!   personal-data declaration) plus the [`asset::DataAddress`] the data plane reads it from.
//! * [`offer`]: an offer ties assets to an access policy (who may *see* them in the catalog) and a
//!   contract policy (what an agreement grants). Policies are ODRL documents owned by `caap-policy`;
//!   this crate only carries them as validated JSON and never evaluates them.
//! * [`iri`]: the absolute IRIs under which assets (datasets) and offers are published, and back to the
//!   user-chosen handles.
//! * [`dcat`]: the DSP 2025-1 catalog protocol wire types (Catalog, Dataset, Distribution,
//!   DataService, CatalogRequestMessage, CatalogError, the version response) in compact JSON-LD.
//! * [`build`]: turns assets and offers into the catalog one requester is allowed to see, one page at
//!   a time, through the [`build::CatalogSource`] store seam the connector implements.
//! * [`filter`]: the catalog request filters caap supports; anything else is refused.
//! * [`remote`] and [`search`]: the consumer side: parse another connector's catalog (tolerant of
//!   other connectors' JSON-LD styles) and search a federated cache of many cities' catalogs.
//! * [`samples`]: realistic demo datasets (Smart Data Models shapes) that caap generates itself.
//!
//! No IO, no clock, no web or database framework: the connector crate is the imperative shell.

pub mod asset;
pub mod build;
pub mod dcat;
pub mod error;
pub mod filter;
pub mod iri;
pub mod offer;
pub mod page;
pub mod remote;
pub mod samples;
pub mod search;

pub use asset::{Asset, DataAddress, PersonalData};
pub use error::{CatalogFault, FieldError};
pub use offer::Offer;

/// The JSON-LD context every DSP 2025-1 message carries.
pub const DSP_CONTEXT: &str = "https://w3id.org/dspace/2025/1/context.jsonld";
/// The DSP version this build speaks.
pub const DSP_VERSION: &str = "2025-1";

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
