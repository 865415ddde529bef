//! Identity for caap: who a participant is and how a DSP request proves who sent it.
//!
//! * [`secret`]: secrets in types whose `Debug`/`Display` redact them, compared in constant time.
//! * [`keys`]: signing keys (P-256 or Ed25519, as JWK files) behind the [`keys::SigningKey`]
//!   trait, and a [`keys::KeySet`] for rotation.
//! * [`did`], [`did_doc`], [`did_key`]: `did:web` ↔ URL, DID documents (parsing, validation, key
//!   lookup by verification relationship, the connector's own document with its
//!   `CredentialService`), and `did:key` for P-256 and Ed25519.
//! * [`resolve`]: a DID resolver with a TTL cache over an injected [`resolve::HttpGet`].
//! * [`jose`]: compact JWS signing and verification (josekit); [`pull_token`]: the data plane's pull
//!   tokens, signed and checked through it.
//! * [`vc`], [`status`], [`trust`]: verifiable credentials and presentations as JWTs (VC 1.1 JWT
//!   and VC 2.0 VC-JOSE), Bitstring Status Lists, trusted issuers and credential schemas; [`schemas`]:
//!   caap's built-in credential schemas.
//! * [`dcp`]: the Decentralized Claims Protocol 1.0: self-issued ID tokens, access tokens for the
//!   credential service, the presentation query messages, and the verifier's pipeline that turns
//!   a presentation response into claims for policy ([`dcp::verify_presentation_response`]).
//! * [`auth`]: the DSP authentication seam. Inbound requests are verified by a
//!   [`auth::DspAuthenticator`]; outbound requests get their `Authorization` from an
//!   [`auth::OutboundCredentials`]. The foundation's one implementation is a static token table
//!   from the configuration ([`auth::StaticTokens`]); the DCP verifier (self-issued ID tokens and
//!   verifiable presentations) is the second implementation of the same traits.
//!
//! No web framework, no database and no clock here: time comes in as a `now` parameter, HTTP
//! through the small [`resolve::HttpGet`] trait, jti bookkeeping through [`dcp::ReplayCache`].

pub mod auth;
pub mod dcp;
pub mod did;
pub mod did_doc;
pub mod did_key;
pub mod jose;
pub mod keys;
pub mod multibase;
pub mod pull_token;
pub mod resolve;
pub mod schemas;
pub mod secret;
pub mod status;
pub mod trust;
pub mod vc;

#[cfg(test)]
mod interop_ssi;
#[cfg(test)]
pub(crate) mod testutil;

pub use auth::{AuthFailure, DspAuthenticator, OutboundCredentials, StaticTokens, VerifiedCaller};
pub use did::did_web_from_url;
pub use keys::{KeyError, ParticipantKey};
pub use secret::Secret;
