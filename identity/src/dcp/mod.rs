//! The Decentralized Claims Protocol 1.0 (Eclipse DCP), as pure functions over injected traits:
//!
//! * [`token`]: self-issued ID tokens (create, verify with every TCK refusal), the
//!   [`ReplayCache`] for `jti`s, and access tokens for our credential service.
//! * [`messages`]: `PresentationQueryMessage` / `PresentationResponseMessage` and scopes.
//! * [`verify`]: the verifier's pipeline ([`verify_presentation_response`]) and the credential
//!   service's selection and presentation of stored credentials.
//! * [`issuance`]: credential issuance messages, the issuer's check of a credential request and
//!   the holder's check of delivered credentials ([`accept_credential_message`]).
//! * [`outbound`]: [`DcpOutbound`], the sender's `OutboundCredentials` (SI token + access token).
//! * [`cache`]: [`VerifiedPresentations`], the verifier's memory of presentations it verified, per
//!   caller and access token, within their validity.
//! * [`Refusal`]: why, one variant per TCK case, with a stable code.
//!
//! The connector's DCP `DspAuthenticator` glues HTTP to these: verify the caller's SI token,
//! find its `CredentialService` in the DID document, sign our own SI token carrying the caller's
//! `token`, `POST {cs}/presentations/query`, and verify the response.

pub mod cache;
pub mod issuance;
pub mod messages;
pub mod outbound;
pub mod refusal;
pub mod token;
pub mod verify;

#[cfg(test)]
mod tests;

pub use cache::VerifiedPresentations;
pub use issuance::{
    CredentialContainer, CredentialDelivery, CredentialMessage, CredentialObject,
    CredentialOfferMessage, CredentialRef, CredentialRequestMessage, CredentialStatus,
    IssuanceMessageError, IssuanceOutcome, IssuerMetadata, ReceivedRequest, RequestStatus,
    accept_credential_message, authorize_issuance_request, receive_credential_request,
};
pub use messages::{
    DCP_CONTEXT, PresentationQueryMessage, PresentationResponseMessage, QueryError, Scope,
};
pub use outbound::{DcpOutbound, Now};
pub use refusal::Refusal;
pub use token::{
    AccessGrant, InMemoryReplayCache, ReplayCache, TokenRules, VerifiedToken,
    authorize_presentation_query, bearer_token, create_self_issued_token, issue_access_token,
    verify_access_token, verify_self_issued_token,
};
pub use verify::{
    StoredCredential, VerificationContext, VerifiedClaims, VerifierPolicy, claims_of,
    present_credentials, required_types, select_credentials, verify_presentation_response,
};

/// The presentation query URL of a credential service base URL (`{cs}/presentations/query`).
pub fn presentation_query_url(credential_service: &str) -> String {
    format!(
        "{}/presentations/query",
        credential_service.trim_end_matches('/')
    )
}
