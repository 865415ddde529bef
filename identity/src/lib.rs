//! Identity for caap: who a participant is and how a DSP request proves who sent it.
//!
//! * [`secret`]: secrets in types whose `Debug`/`Display` redact them, compared in constant time.
//! * [`keys`]: the participant's signing key (P-256, as a JWK file) behind a small type.
//! * [`did`]: `did:web` identifiers derived from a connector's public URL.
//! * [`auth`]: the DSP authentication seam. Inbound requests are verified by a
//!   [`auth::DspAuthenticator`]; outbound requests get their `Authorization` from an
//!   [`auth::OutboundCredentials`]. The foundation's one implementation is a static token table
//!   from the configuration ([`auth::StaticTokens`]); the DCP verifier (self-issued ID tokens and
//!   verifiable presentations) is the second implementation of the same traits.
//!
//! No web framework and no database here; key files are read and written by the connector.

pub mod auth;
pub mod did;
pub mod keys;
pub mod secret;

pub use auth::{AuthFailure, DspAuthenticator, OutboundCredentials, StaticTokens, VerifiedCaller};
pub use did::did_web_from_url;
pub use keys::{KeyError, ParticipantKey};
pub use secret::Secret;
