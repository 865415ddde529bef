//! The sender's side of DCP on a DSP request: an [`OutboundCredentials`] that mints, per request,
//! an access token for our credential service (limited to the scopes the receiver needs) wrapped
//! in a self-issued ID token for the receiver.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::token::{create_self_issued_token, issue_access_token};
use crate::auth::{AuthFailure, OutboundCredentials};
use crate::keys::SigningKey;
use crate::secret::Secret;

/// The time, from the connector's clock (the crate reads none itself).
pub trait Now: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// DCP outbound credentials: `Authorization: Bearer <SI token>` with `aud` = the receiver's DID
/// and `token` = an access token to our credential service for the receiver and `scopes`.
#[derive(Debug, Clone)]
pub struct DcpOutbound {
    own_did: String,
    key: Arc<dyn SigningKey>,
    clock: Arc<dyn Now>,
    scopes: Vec<String>,
    lifetime: Duration,
}

impl DcpOutbound {
    /// Tokens for `own_did`, signed with `key`, granting `scopes` (e.g.
    /// `Scope::for_type("MembershipCredential")`), valid for `lifetime` (keep it short: 5 min).
    pub fn new(
        own_did: &str,
        key: Arc<dyn SigningKey>,
        clock: Arc<dyn Now>,
        scopes: Vec<String>,
        lifetime: Duration,
    ) -> Self {
        DcpOutbound {
            own_did: own_did.to_owned(),
            key,
            clock,
            scopes,
            lifetime,
        }
    }

    /// The SI token for `audience` (without the `Bearer ` prefix).
    pub fn token_for(&self, audience: &str) -> Result<Secret, AuthFailure> {
        let now = self.clock.now();
        let fail = |e: crate::keys::KeyError| AuthFailure::Unavailable(e.to_string());
        let access = issue_access_token(
            &self.own_did,
            self.key.as_ref(),
            audience,
            &self.scopes,
            now,
            self.lifetime,
        )
        .map_err(fail)?;
        create_self_issued_token(
            &self.own_did,
            self.key.as_ref(),
            audience,
            Some(&access),
            now,
            self.lifetime,
        )
        .map_err(fail)
    }
}

impl OutboundCredentials for DcpOutbound {
    fn authorization(&self, audience: Option<&str>) -> Result<Option<Secret>, AuthFailure> {
        let audience = audience.ok_or_else(|| {
            AuthFailure::Refused("DCP needs the counterparty's DID as the token audience".into())
        })?;
        let token = self.token_for(audience)?;
        Ok(Some(Secret::new(format!("Bearer {}", token.expose()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcp::{InMemoryReplayCache, Scope, TokenRules, verify_self_issued_token};
    use crate::keys::KeyAlgorithm;
    use crate::testutil::{block_on, t0};
    use crate::vc::tests::{LUND, MALMO, World};

    #[derive(Debug)]
    struct Fixed(DateTime<Utc>);
    impl Now for Fixed {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    #[test]
    fn outbound_headers_verify_at_the_receiver() {
        let w = World::new(KeyAlgorithm::EdDsa);
        let out = DcpOutbound::new(
            MALMO,
            Arc::new(w.key(MALMO).clone()),
            Arc::new(Fixed(t0())),
            vec![Scope::for_type("MembershipCredential")],
            Duration::minutes(5),
        );
        let header = out.authorization(Some(LUND)).unwrap().unwrap();
        assert!(!format!("{header:?}").contains("Bearer"));
        let replay = InMemoryReplayCache::default();
        let v = block_on(verify_self_issued_token(
            Some(header.expose()),
            &TokenRules::new(LUND),
            t0(),
            &w.dids,
            &replay,
        ))
        .unwrap();
        assert_eq!(v.issuer, MALMO);
        assert!(v.access_token.is_some());
        assert!(out.authorization(None).is_err());
        // Two requests, two jtis.
        assert_ne!(out.token_for(LUND).unwrap(), out.token_for(LUND).unwrap());
    }
}
