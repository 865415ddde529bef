//! Why a DCP request was refused: one variant per rejection case of the DCP TCK (IDENTITY-NOTES
//! §1.5), each with a stable code for logs and metrics.

use chrono::{DateTime, Utc};

use super::issuance::IssuanceMessageError;
use crate::auth::AuthFailure;
use crate::did_doc::DidDocError;
use crate::jose::JwsError;
use crate::resolve::ResolveError;

/// A refused self-issued token, presentation or credential. The message is for the log, never
/// for the caller (who gets 401/403/404 per endpoint).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// No `Authorization` header.
    #[error("no Authorization header")]
    MissingAuthorization,
    /// The header is not `Bearer <token>`.
    #[error("the Authorization header is not `Bearer <token>`")]
    NotBearer,
    /// Not a JWS, or claims of the wrong type.
    #[error("malformed token: {0}")]
    MalformedToken(String),
    /// `iss` ≠ `sub`.
    #[error("`iss` ({iss}) and `sub` ({sub}) differ")]
    IssuerNotSubject {
        /// `iss`.
        iss: String,
        /// `sub`.
        sub: String,
    },
    /// `aud` does not name this participant.
    #[error("the token is for {found:?}, not {expected}")]
    WrongAudience {
        /// Our DID.
        expected: String,
        /// The token's `aud`.
        found: Vec<String>,
    },
    /// The DID document of `sub` has another `id`.
    #[error("the DID document fetched for {0} has another id")]
    SubjectNotDidDocument(String),
    /// The `kid` names a key of another DID than `sub`.
    #[error("the token of {sub} is signed with a key of {signer}")]
    SignedByAnotherDid {
        /// `sub`.
        sub: String,
        /// The DID in `kid`.
        signer: String,
    },
    /// The DID document has no key fit for the purpose.
    #[error("no usable key: {0}")]
    Key(DidDocError),
    /// The signature does not verify.
    #[error("signature: {0}")]
    Signature(JwsError),
    /// The DID could not be resolved.
    #[error("DID resolution: {0}")]
    Resolution(ResolveError),
    /// `nbf` is in the future.
    #[error("the token is not valid before {0}")]
    NotYetValid(DateTime<Utc>),
    /// `exp` has passed.
    #[error("the token expired at {0}")]
    Expired(DateTime<Utc>),
    /// `iat` is in the future.
    #[error("the token claims to be issued at {0}, in the future")]
    IssuedInFuture(DateTime<Utc>),
    /// No `exp`, or a lifetime beyond the accepted maximum.
    #[error("the token must expire, and within {max_seconds} s of its issue")]
    LifetimeTooLong {
        /// The maximum accepted lifetime.
        max_seconds: i64,
    },
    /// No `jti`.
    #[error("the token has no jti")]
    MissingJti,
    /// The `jti` was seen before.
    #[error("the token's jti {0} was already used")]
    ReplayedJti(String),
    /// The replay cache failed.
    #[error("the replay cache is unavailable: {0}")]
    ReplayCacheUnavailable(String),
    /// No `token` claim (the access token for the caller's credential service).
    #[error("the token has no `token` claim")]
    MissingTokenClaim,
    /// The access token in `token` is not one we issued, or not for this caller.
    #[error("the access token is refused: {0}")]
    AccessTokenRefused(String),
    /// The caller's DID document has no `CredentialService`.
    #[error("{0} publishes no CredentialService")]
    NoCredentialService(String),
    /// The credential service could not be queried.
    #[error("the credential service could not be queried: {0}")]
    CredentialServiceUnavailable(String),
    /// The response carries no presentation.
    #[error("the presentation response is empty")]
    EmptyPresentations,
    /// A presentation is malformed, badly signed or expired.
    #[error("presentation refused: {0}")]
    PresentationInvalid(String),
    /// A presentation is signed by a key of another DID than its holder.
    #[error("the presentation of {holder} is signed by {signer}")]
    PresentationSignerNotHolder {
        /// The holder.
        holder: String,
        /// The signing DID.
        signer: String,
    },
    /// The presentation's holder is not the caller.
    #[error("the presentation's holder {holder} is not the caller {caller}")]
    HolderNotCaller {
        /// The caller (SI token `sub`).
        caller: String,
        /// The presentation's holder.
        holder: String,
    },
    /// A presentation is addressed to someone else.
    #[error("the presentation is for {0:?}, not us")]
    PresentationWrongAudience(Vec<String>),
    /// A credential is malformed or its signature does not verify.
    #[error("credential {id} refused: {reason}")]
    CredentialInvalid {
        /// The credential id (or its position).
        id: String,
        /// Why.
        reason: String,
    },
    /// Holder binding: `credentialSubject.id` ≠ the presentation's holder.
    #[error("credential {id} is about {subject:?}, not the holder {holder}")]
    HolderNotSubject {
        /// The credential id.
        id: String,
        /// Its subject.
        subject: Option<String>,
        /// The holder.
        holder: String,
    },
    /// A credential has expired.
    #[error("credential {id} expired at {at}")]
    CredentialExpired {
        /// The credential id.
        id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A credential is not valid yet.
    #[error("credential {id} is not valid before {at}")]
    CredentialNotYetValid {
        /// The credential id.
        id: String,
        /// From when.
        at: DateTime<Utc>,
    },
    /// A credential is revoked.
    #[error("credential {0} is revoked")]
    CredentialRevoked(String),
    /// A credential is suspended.
    #[error("credential {0} is suspended")]
    CredentialSuspended(String),
    /// A credential's status could not be established (fail closed).
    #[error("the status of credential {id} is unknown: {reason}")]
    StatusUnknown {
        /// The credential id.
        id: String,
        /// Why.
        reason: String,
        /// True when the list could not be fetched (not the caller's fault).
        unavailable: bool,
    },
    /// The issuer is not trusted for the credential's type.
    #[error("{issuer} is not a trusted issuer of {credential_type}")]
    UntrustedIssuer {
        /// The type.
        credential_type: String,
        /// The issuer.
        issuer: String,
    },
    /// The credential violates its schema.
    #[error("credential {id} violates its schema: {reason}")]
    SchemaViolation {
        /// The credential id.
        id: String,
        /// Why.
        reason: String,
    },
    /// A requested credential type is missing.
    #[error("no valid {0} was presented")]
    MissingCredential(String),
    /// An issuance message body is malformed or lacks a required member (400).
    #[error("invalid message: {0}")]
    InvalidMessage(IssuanceMessageError),
    /// The token comes from another participant than the issuer we expect.
    #[error("the message comes from {found}, not the expected issuer {expected}")]
    UnexpectedIssuer {
        /// The issuer we asked.
        expected: String,
        /// The token's sender.
        found: String,
    },
    /// A delivered credential was issued by someone else than the participant delivering it.
    #[error("credential {id} is issued by {issuer}, but delivered by {sender}")]
    CredentialNotFromSender {
        /// The credential id (or its position).
        id: String,
        /// Its issuer.
        issuer: String,
        /// The token's sender.
        sender: String,
    },
}

impl Refusal {
    /// A stable short code for logs and metrics (`caap_dcp_refusals_total{code=…}`).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::MissingAuthorization => "missing_authorization",
            Refusal::NotBearer => "not_bearer",
            Refusal::MalformedToken(_) => "malformed_token",
            Refusal::IssuerNotSubject { .. } => "iss_not_sub",
            Refusal::WrongAudience { .. } => "wrong_audience",
            Refusal::SubjectNotDidDocument(_) => "sub_not_did_document",
            Refusal::SignedByAnotherDid { .. } => "signed_by_another_did",
            Refusal::Key(_) => "no_usable_key",
            Refusal::Signature(_) => "bad_signature",
            Refusal::Resolution(_) => "did_resolution",
            Refusal::NotYetValid(_) => "nbf_in_future",
            Refusal::Expired(_) => "expired",
            Refusal::IssuedInFuture(_) => "iat_in_future",
            Refusal::LifetimeTooLong { .. } => "lifetime",
            Refusal::MissingJti => "missing_jti",
            Refusal::ReplayedJti(_) => "jti_replayed",
            Refusal::ReplayCacheUnavailable(_) => "replay_cache_unavailable",
            Refusal::MissingTokenClaim => "missing_token_claim",
            Refusal::AccessTokenRefused(_) => "access_token_refused",
            Refusal::NoCredentialService(_) => "no_credential_service",
            Refusal::CredentialServiceUnavailable(_) => "credential_service_unavailable",
            Refusal::EmptyPresentations => "empty_presentations",
            Refusal::PresentationInvalid(_) => "presentation_invalid",
            Refusal::PresentationSignerNotHolder { .. } => "vp_signer_not_holder",
            Refusal::HolderNotCaller { .. } => "holder_not_caller",
            Refusal::PresentationWrongAudience(_) => "vp_wrong_audience",
            Refusal::CredentialInvalid { .. } => "credential_invalid",
            Refusal::HolderNotSubject { .. } => "holder_not_subject",
            Refusal::CredentialExpired { .. } => "credential_expired",
            Refusal::CredentialNotYetValid { .. } => "credential_not_yet_valid",
            Refusal::CredentialRevoked(_) => "credential_revoked",
            Refusal::CredentialSuspended(_) => "credential_suspended",
            Refusal::StatusUnknown { .. } => "status_unknown",
            Refusal::UntrustedIssuer { .. } => "untrusted_issuer",
            Refusal::SchemaViolation { .. } => "schema_violation",
            Refusal::MissingCredential(_) => "missing_credential",
            Refusal::InvalidMessage(_) => "invalid_message",
            Refusal::UnexpectedIssuer { .. } => "unexpected_issuer",
            Refusal::CredentialNotFromSender { .. } => "credential_not_from_sender",
        }
    }

    /// What a refused caller is told: which part of its request was at fault (the Authorization
    /// header, the self-issued token, the access token inside it, a presentation, a named credential or
    /// the message), without the verifier's internals; the full reason goes to the log.
    pub fn public_message(&self) -> String {
        match self {
            Refusal::MissingAuthorization | Refusal::NotBearer => {
                "the Authorization header must be `Bearer <self-issued token>`".into()
            }
            Refusal::MalformedToken(_)
            | Refusal::IssuerNotSubject { .. }
            | Refusal::WrongAudience { .. }
            | Refusal::SubjectNotDidDocument(_)
            | Refusal::SignedByAnotherDid { .. }
            | Refusal::Key(_)
            | Refusal::Signature(_)
            | Refusal::Resolution(_)
            | Refusal::NotYetValid(_)
            | Refusal::Expired(_)
            | Refusal::IssuedInFuture(_)
            | Refusal::LifetimeTooLong { .. }
            | Refusal::MissingJti
            | Refusal::ReplayedJti(_)
            | Refusal::ReplayCacheUnavailable(_)
            | Refusal::UnexpectedIssuer { .. } => {
                format!("the self-issued token was refused ({})", self.code())
            }
            Refusal::MissingTokenClaim | Refusal::AccessTokenRefused(_) => format!(
                "the access token in the self-issued token was refused ({})",
                self.code()
            ),
            Refusal::NoCredentialService(_) | Refusal::CredentialServiceUnavailable(_) => {
                format!("the caller's credential service failed ({})", self.code())
            }
            Refusal::EmptyPresentations
            | Refusal::PresentationInvalid(_)
            | Refusal::PresentationSignerNotHolder { .. }
            | Refusal::HolderNotCaller { .. }
            | Refusal::PresentationWrongAudience(_)
            | Refusal::MissingCredential(_) => {
                format!("the presentation was refused ({})", self.code())
            }
            Refusal::CredentialInvalid { id, .. }
            | Refusal::HolderNotSubject { id, .. }
            | Refusal::CredentialExpired { id, .. }
            | Refusal::CredentialNotYetValid { id, .. }
            | Refusal::StatusUnknown { id, .. }
            | Refusal::SchemaViolation { id, .. }
            | Refusal::CredentialNotFromSender { id, .. }
            | Refusal::CredentialRevoked(id)
            | Refusal::CredentialSuspended(id) => {
                format!("credential {id} was refused ({})", self.code())
            }
            Refusal::UntrustedIssuer {
                credential_type, ..
            } => format!(
                "a {credential_type} credential was refused ({})",
                self.code()
            ),
            Refusal::InvalidMessage(_) => format!("the message was refused ({})", self.code()),
        }
    }

    /// True when verification could not be completed for reasons on our or a third party's side
    /// (a DID host, a status list or the credential service down): answer 5xx-ish, not 401.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Refusal::Resolution(e) => e.is_unavailable(),
            Refusal::ReplayCacheUnavailable(_) | Refusal::CredentialServiceUnavailable(_) => true,
            Refusal::StatusUnknown { unavailable, .. } => *unavailable,
            _ => false,
        }
    }
}

impl From<Refusal> for AuthFailure {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::MissingAuthorization => AuthFailure::Missing,
            r if r.is_unavailable() => AuthFailure::Unavailable(format!("{} ({r})", r.code())),
            r => AuthFailure::Refused(format!("{} ({r})", r.code())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_message_names_what_was_at_fault() {
        let credential = Refusal::CredentialInvalid {
            id: "urn:uuid:c1".into(),
            reason: "`nbf` is not a NumericDate".into(),
        };
        assert_eq!(
            credential.public_message(),
            "credential urn:uuid:c1 was refused (credential_invalid)"
        );
        let token = Refusal::MalformedToken("`exp` is not a NumericDate".into());
        assert_eq!(
            token.public_message(),
            "the self-issued token was refused (malformed_token)"
        );
        assert!(
            Refusal::AccessTokenRefused("not ours".into())
                .public_message()
                .starts_with("the access token")
        );
        assert!(
            Refusal::EmptyPresentations
                .public_message()
                .starts_with("the presentation")
        );
        // Internals (the reason) stay in the log.
        assert!(!credential.public_message().contains("NumericDate"));
    }
}
