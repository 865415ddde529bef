//! Identity at run time: who this connector is ([`Identity`]) and how it checks others and is checked by them.
//!
//! * [`dcp`]: [`Trust`], our DID, keys and DID document, and the verifier of DSP callers (self-issued
//!   tokens, verifiable presentations, status lists, trusted issuers); [`DcpAuthenticator`] puts it behind
//!   the `DspAuthenticator` seam.
//! * [`credentials`]: the holder's side: asking a trust anchor for credentials, the credential service
//!   that answers presentation queries, and the credentials we hold.
//! * [`fetch`]: the resolver's and status lists' HTTP GET.
//! * [`oidc`]: the verifier of the management API's OIDC access tokens (an outbound client of the city's
//!   provider).
//!
//! The trust anchor's issuer is in [`crate::authority`], which builds on this module (never the reverse).

pub mod credentials;
pub mod dcp;
pub mod fetch;
pub mod oidc;

pub use dcp::{
    CREDENTIAL_SERVICE_PATH, DcpAuthenticator, DcpError, ISSUER_PATH, TOKEN_LIFETIME_SECS, Trust,
    TrustError, issuer_url,
};
pub use fetch::HttpFetch;

/// Who this connector is, resolved at start-up.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Participant id (DID).
    pub participant_id: String,
    /// Display name.
    pub name: String,
    /// Public root URL of the DSP listener.
    pub public_url: String,
    /// DSP base URL (`public_url` + `dsp.path`).
    pub dsp_base: String,
    /// The signing key.
    pub key: caap_identity::ParticipantKey,
}
