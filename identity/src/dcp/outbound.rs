//! The sender's side of DCP on a DSP request: an [`OutboundCredentials`] that mints, per request, a
//! self-issued ID token for the receiver, wrapping an access token for our credential service (limited
//! to the scopes the receiver needs). The access token is reused for half its lifetime per receiver, so a
//! verifier may keep the presentation it fetched with it ([`super::VerifiedPresentations`]) instead of
//! querying our credential service on every message; the self-issued token (its `jti`) is new each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use super::token::{create_self_issued_token, issue_access_token};
use crate::auth::{AuthFailure, OutboundCredentials};
use crate::keys::{KeyError, SigningKey};
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
    /// The access token per receiver, and until when it is handed out again.
    access: Arc<Mutex<HashMap<String, Issued>>>,
}

/// An access token and the moment it is no longer handed out.
type Issued = (Secret, DateTime<Utc>);

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
            access: Arc::default(),
        }
    }

    /// The access token for `audience`: the one minted for it earlier while it has more than half its
    /// lifetime left, else a new one.
    fn access_token(&self, audience: &str, now: DateTime<Utc>) -> Result<Secret, KeyError> {
        let mut access = self.access.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, renew_at)) = access.get(audience)
            && *renew_at > now
        {
            return Ok(token.clone());
        }
        let token = issue_access_token(
            &self.own_did,
            self.key.as_ref(),
            audience,
            &self.scopes,
            now,
            self.lifetime,
        )?;
        // Receivers are few (the peers); forgetting the stale ones keeps it so.
        access.retain(|_, (_, renew_at)| *renew_at > now);
        access.insert(
            audience.to_owned(),
            (token.clone(), now + self.lifetime / 2),
        );
        Ok(token)
    }

    /// The SI token for `audience` (without the `Bearer ` prefix).
    pub fn token_for(&self, audience: &str) -> Result<Secret, AuthFailure> {
        let now = self.clock.now();
        let fail = |e: KeyError| AuthFailure::Unavailable(e.to_string());
        let access = self.access_token(audience, now).map_err(fail)?;
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
    use crate::vc::tests::{AUTHORITY, LUND, MALMO, World};

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

    #[derive(Debug)]
    struct Moving(std::sync::Mutex<DateTime<Utc>>);
    impl Now for Moving {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
    }

    /// The access token inside is the same for one receiver for half its lifetime, then a new one.
    #[test]
    fn access_tokens_are_reused_for_half_their_lifetime() {
        let w = World::new(KeyAlgorithm::EdDsa);
        let clock = Arc::new(Moving(std::sync::Mutex::new(t0())));
        let out = DcpOutbound::new(
            MALMO,
            Arc::new(w.key(MALMO).clone()),
            clock.clone(),
            vec![Scope::for_type("MembershipCredential")],
            Duration::minutes(5),
        );
        let access = |audience: &str| {
            let token = out.token_for(audience).unwrap();
            let jws = crate::jose::decode_compact(token.expose()).unwrap();
            jws.claim_str("token").unwrap().to_owned()
        };
        let first = access(LUND);
        *clock.0.lock().unwrap() = t0() + Duration::seconds(149);
        assert_eq!(access(LUND), first);
        assert_ne!(access(AUTHORITY), first);
        *clock.0.lock().unwrap() = t0() + Duration::seconds(150);
        assert_ne!(access(LUND), first);
    }
}
