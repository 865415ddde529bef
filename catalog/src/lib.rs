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
pub mod dcat_ap;
pub mod error;
pub mod filter;
pub mod iri;
pub mod offer;
pub mod page;
pub mod rdf;
pub mod reference;
pub mod remote;
pub mod samples;
pub mod search;

pub use asset::{Asset, DataAddress, IsoDuration, LawfulBasis, PersonalData};
pub use error::{CatalogFault, FieldError};
pub use offer::Offer;

/// The DSP 2025-1 JSON-LD context, caap's own context and the `@context` values built from them, defined in
/// `caap-canonical` (which every domain crate shares).
pub use caap_canonical::dsp::{
    CAAP_CONTEXT, CAAP_CONTEXT_DOCUMENT, CAAP_CONTEXT_PATH, DSP_CONTEXT, dsp_context,
    policy_context,
};
/// The DSP version this build speaks.
pub const DSP_VERSION: &str = "2025-1";
