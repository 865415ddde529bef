//! The DSP authentication seam.
//!
//! Every DSP request except version discovery is authenticated. The connector's HTTP layer calls a
//! [`DspAuthenticator`] with the request's `Authorization` header and gets back a
//! [`VerifiedCaller`] (who it is and the claims policy evaluation may use) or an [`AuthFailure`]
//! (logged with its reason; on process endpoints answered with 404 as DSP requires).
//!
//! Outbound, the connector asks an [`OutboundCredentials`] for the `Authorization` value to send
//! to a counterparty.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// A boxed future, so authenticators can be chosen at start-up (`Arc<dyn DspAuthenticator>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A caller whose identity was verified.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedCaller {
    /// The caller's participant id (a DID).
    pub participant_id: String,
    /// Verified claims (from credentials, or from the static table), for policy evaluation.
    pub claims: BTreeMap<String, serde_json::Value>,
    /// How the caller was verified, e.g. `static-token` or `dcp`.
    pub method: &'static str,
}

/// Why a request was refused. The reason goes to the log, never to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No `Authorization` header.
    #[error("the request has no Authorization header")]
    Missing,
    /// The header is there but does not prove anything acceptable.
    #[error("the Authorization header was refused: {0}")]
    Refused(String),
    /// Verification could not be completed (a dependency failed).
    #[error("the caller could not be verified: {0}")]
    Unavailable(String),
}

/// Verifies the caller of a DSP request.
pub trait DspAuthenticator: Send + Sync + std::fmt::Debug {
    /// Verifies `authorization` (the raw header value, if any).
    fn authenticate<'a>(
        &'a self,
        authorization: Option<&'a str>,
    ) -> BoxFuture<'a, Result<VerifiedCaller, AuthFailure>>;

    /// The auth profile advertised in `/.well-known/dspace-version` (`None`: nothing standard).
    fn advertised_profile(&self) -> Option<(String, String, Vec<String>)> {
        None
    }
}

/// Gives the `Authorization` value for requests to a counterparty.
pub trait OutboundCredentials: Send + Sync + std::fmt::Debug {
    /// The header value to send to the participant `audience` (its DID, when known).
    fn authorization(&self, audience: Option<&str>) -> Result<Option<Secret>, AuthFailure>;
}

/// One entry of the static token table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticTokenEntry {
    /// The token the caller presents (as `Authorization: Bearer <token>` or the bare value).
    pub token: Secret,
    /// The participant id the token stands for.
    pub participant: String,
    /// Claims to hand to policy evaluation for this caller (e.g. `{"role": "Municipality"}`).
    #[serde(default)]
    pub claims: BTreeMap<String, serde_json::Value>,
}

/// Authenticates callers by a static token table from the configuration. Used by tests, the demo
/// and the DSP TCK profile; real data spaces use DCP.
#[derive(Debug, Clone, Default)]
pub struct StaticTokens {
    entries: Vec<StaticTokenEntry>,
    outbound: Option<Secret>,
}

impl StaticTokens {
    /// A table of accepted tokens, and the token this connector presents to others.
    pub fn new(entries: Vec<StaticTokenEntry>, outbound: Option<Secret>) -> Self {
        StaticTokens { entries, outbound }
    }

    fn check(&self, header: Option<&str>) -> Result<VerifiedCaller, AuthFailure> {
        let header = header.map(str::trim).filter(|h| !h.is_empty());
        let header = header.ok_or(AuthFailure::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .unwrap_or(header)
            .trim();
        // Compare against every entry so the time taken does not tell which one nearly matched.
        let found =
            self.entries.iter().fold(
                None,
                |hit, e| if e.token.matches(token) { Some(e) } else { hit },
            );
        found
            .map(|e| VerifiedCaller {
                participant_id: e.participant.clone(),
                claims: e.claims.clone(),
                method: "static-token",
            })
            .ok_or_else(|| {
                AuthFailure::Refused("the token is not in the static token table".into())
            })
    }
}

impl DspAuthenticator for StaticTokens {
    fn authenticate<'a>(
        &'a self,
        authorization: Option<&'a str>,
    ) -> BoxFuture<'a, Result<VerifiedCaller, AuthFailure>> {
        Box::pin(std::future::ready(self.check(authorization)))
    }
}

impl OutboundCredentials for StaticTokens {
    fn authorization(&self, _audience: Option<&str>) -> Result<Option<Secret>, AuthFailure> {
        Ok(self
            .outbound
            .as_ref()
            .map(|t| Secret::new(format!("Bearer {}", t.expose()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> StaticTokens {
        StaticTokens::new(
            vec![StaticTokenEntry {
                token: Secret::new("t-lund"),
                participant: "did:web:lund".into(),
                claims: BTreeMap::new(),
            }],
            Some(Secret::new("mine")),
        )
    }

    #[test]
    fn static_tokens_accept_with_or_without_bearer_and_refuse_the_rest() {
        let t = table();
        assert_eq!(
            t.check(Some("Bearer t-lund")).unwrap().participant_id,
            "did:web:lund"
        );
        assert_eq!(t.check(Some("t-lund")).unwrap().method, "static-token");
        assert_eq!(t.check(None), Err(AuthFailure::Missing));
        assert!(matches!(
            t.check(Some("Bearer nope")),
            Err(AuthFailure::Refused(_))
        ));
        assert_eq!(
            t.authorization(None).unwrap().unwrap().expose(),
            "Bearer mine"
        );
    }
}
