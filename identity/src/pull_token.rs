//! Pull tokens: the short-lived access tokens a data plane hands to the consumer of a pull transfer and
//! checks on every access. A pull token is a compact JWS (`typ` `JWT`) signed with the participant's key
//! through [`crate::jose`], the crate's one JWS path, and bound to one transfer, its agreement and its
//! consumer ([`PullClaims`]).
//!
//! The issuer is also the verifier, so only the issuer's own key and algorithm are accepted; `nbf` and
//! `exp` are checked against the caller's `now` (this crate reads no clock).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::jose::{self, VerifierCache};
use crate::keys::{KeyError, ParticipantKey};

/// The audience of every pull token.
pub const AUDIENCE: &str = "caap-data-plane";

/// What a pull token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullClaims {
    /// The issuing participant (the provider).
    pub iss: String,
    /// The consumer it is issued to.
    pub sub: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Not before (seconds since the epoch).
    pub nbf: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// A unique id.
    pub jti: String,
    /// The transfer.
    pub tid: String,
    /// The transfer's agreement.
    pub agr: String,
}

impl PullClaims {
    /// The claims of a token for `transfer_id` (under `agreement_id`), issued by `issuer` to `consumer` at
    /// `now`, valid from `now` for `ttl`.
    pub fn new(
        issuer: &str,
        consumer: &str,
        transfer_id: &str,
        agreement_id: &str,
        jti: String,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Self {
        PullClaims {
            iss: issuer.to_owned(),
            sub: consumer.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: (now + ttl).timestamp(),
            jti,
            tid: transfer_id.to_owned(),
            agr: agreement_id.to_owned(),
        }
    }
}

/// Why a pull token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullTokenError {
    /// Malformed, signed by another key or with another algorithm, or without the claims of a pull token.
    #[error("the token is not one this data plane issued")]
    NotIssuedHere,
    /// Its `nbf` is still ahead.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Its `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// Its audience is not [`AUDIENCE`].
    #[error("the token is not for this data plane")]
    WrongAudience,
}

/// Issues and checks the pull tokens of one participant key. Cheap to share; the verifier for the key is
/// built once.
#[derive(Debug, Clone)]
pub struct PullTokens {
    key: ParticipantKey,
    public_jwk: Value,
    verifiers: VerifierCache,
}

impl PullTokens {
    /// Tokens signed and checked with `key`.
    pub fn new(key: ParticipantKey) -> Result<Self, KeyError> {
        let public_jwk = key.public_jwk()?;
        Ok(PullTokens {
            key,
            public_jwk,
            verifiers: VerifierCache::new(),
        })
    }

    /// A signed token carrying `claims`.
    pub fn issue(&self, claims: &PullClaims) -> Result<String, KeyError> {
        let payload = serde_json::to_value(claims).map_err(|e| KeyError::Crypto(e.to_string()))?;
        jose::sign_compact(&self.key, Some("JWT"), &payload)
    }

    /// The claims of `token` if this key signed it and it is valid at `now` and for this data plane.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<PullClaims, PullTokenError> {
        let jws = jose::decode_compact(token).map_err(|_| PullTokenError::NotIssuedHere)?;
        if jws.alg() != Some(self.key.algorithm().jws_name()) {
            return Err(PullTokenError::NotIssuedHere);
        }
        self.verifiers
            .verify(&jws, &self.public_jwk)
            .map_err(|_| PullTokenError::NotIssuedHere)?;
        let claims: PullClaims =
            serde_json::from_value(jws.payload).map_err(|_| PullTokenError::NotIssuedHere)?;
        let now = now.timestamp();
        if claims.exp <= now {
            return Err(PullTokenError::Expired);
        }
        if claims.nbf > now {
            return Err(PullTokenError::NotYetValid);
        }
        if claims.aud != AUDIENCE {
            return Err(PullTokenError::WrongAudience);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlgorithm;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn claims(now: DateTime<Utc>) -> PullClaims {
        PullClaims::new(
            "did:web:provider",
            "did:web:consumer",
            "t-1",
            "a-1",
            "j-1".into(),
            now,
            Duration::seconds(600),
        )
    }

    fn tokens(alg: KeyAlgorithm) -> PullTokens {
        PullTokens::new(ParticipantKey::generate_with(alg, "did:web:provider#key-1").unwrap())
            .unwrap()
    }

    #[test]
    fn a_token_verifies_with_its_claims_for_both_algorithms() {
        for alg in [KeyAlgorithm::Es256, KeyAlgorithm::EdDsa] {
            let t = tokens(alg);
            let token = t.issue(&claims(at(0))).unwrap();
            assert_eq!(t.verify(&token, at(1)).unwrap(), claims(at(0)));
            let header = jose::decode_compact(&token).unwrap();
            assert_eq!(header.typ(), Some("JWT"));
            assert_eq!(header.kid(), Some("did:web:provider#key-1"));
        }
    }

    #[test]
    fn time_is_checked_at_both_ends() {
        let t = tokens(KeyAlgorithm::Es256);
        let token = t.issue(&claims(at(0))).unwrap();
        assert_eq!(t.verify(&token, at(0)).map(|c| c.tid), Ok("t-1".into()));
        assert_eq!(t.verify(&token, at(-1)), Err(PullTokenError::NotYetValid));
        assert_eq!(t.verify(&token, at(599)).map(|c| c.tid), Ok("t-1".into()));
        assert_eq!(t.verify(&token, at(600)), Err(PullTokenError::Expired));
    }

    #[test]
    fn foreign_tampered_and_odd_tokens_are_refused() {
        let ours = tokens(KeyAlgorithm::Es256);
        let theirs = tokens(KeyAlgorithm::Es256);
        let foreign = theirs.issue(&claims(at(0))).unwrap();
        assert_eq!(
            ours.verify(&foreign, at(1)),
            Err(PullTokenError::NotIssuedHere)
        );
        let token = ours.issue(&claims(at(0))).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut other = claims(at(0));
        other.tid = "t-2".into();
        let payload = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&other).unwrap(),
        );
        parts[1] = &payload;
        assert_eq!(
            ours.verify(&parts.join("."), at(1)),
            Err(PullTokenError::NotIssuedHere)
        );
        assert_eq!(
            ours.verify("not a token", at(1)),
            Err(PullTokenError::NotIssuedHere)
        );
        let mut wrong = claims(at(0));
        wrong.aud = "someone-else".into();
        let token = ours.issue(&wrong).unwrap();
        assert_eq!(
            ours.verify(&token, at(1)),
            Err(PullTokenError::WrongAudience)
        );
        // Signed by our key, but a JWS that is no pull token.
        let other =
            jose::sign_compact(&ours.key, Some("JWT"), &serde_json::json!({"sub": "x"})).unwrap();
        assert_eq!(
            ours.verify(&other, at(1)),
            Err(PullTokenError::NotIssuedHere)
        );
    }
}
