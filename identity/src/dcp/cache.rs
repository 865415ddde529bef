//! What a verifier may remember between one caller's DSP requests: the claims of a presentation it
//! verified, keyed by the caller and a hash of the access token the caller's self-issued token carried.
//!
//! Every request still brings a fresh self-issued token (its signature, audience, lifetime and `jti` are
//! checked each time); only the presentation query and its verification are skipped while the caller
//! sends the same access token ([`super::DcpOutbound`] reuses one for half its lifetime). An entry lives
//! no longer than the earliest of: the access token's `exp`, the `validUntil` of every credential
//! presented, and `max_age` (the connector passes its status-list refresh interval, so a revocation is
//! seen within twice that interval at worst: the list's own age plus the entry's). Failed verifications
//! are never remembered.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::verify::VerifiedClaims;
use crate::auth::VerifiedCaller;
use crate::jose::{decode_compact, numeric_date};
use crate::secret::Secret;

/// The smallest size at which expired entries are swept.
const FIRST_SWEEP: usize = 256;

/// Verified presentations by caller and access token (see the module documentation).
#[derive(Debug)]
pub struct VerifiedPresentations {
    max_age: Duration,
    max_entries: usize,
    entries: Mutex<Entries>,
}

#[derive(Debug)]
struct Entries {
    by_key: HashMap<[u8; 32], Entry>,
    sweep_at: usize,
}

#[derive(Debug)]
struct Entry {
    caller: VerifiedCaller,
    until: DateTime<Utc>,
}

/// The key of `caller`'s presentations under `access_token`: SHA-256 over both (the token itself is
/// not kept).
fn key(caller: &str, access_token: &Secret) -> [u8; 32] {
    let mut h = openssl::sha::Sha256::new();
    h.update(caller.as_bytes());
    h.update(&[0]);
    h.update(access_token.expose().as_bytes());
    h.finish()
}

/// The access token's `exp`, if it is a JWS that has one.
fn token_expiry(access_token: &Secret) -> Option<DateTime<Utc>> {
    let jws = decode_compact(access_token.expose()).ok()?;
    numeric_date(jws.payload.get("exp")?)
}

impl VerifiedPresentations {
    /// A cache keeping an entry at most `max_age` (zero: nothing is kept), with at most `max_entries`
    /// entries (beyond that, new verifications are not kept).
    pub fn new(max_age: Duration, max_entries: usize) -> Self {
        VerifiedPresentations {
            max_age,
            max_entries,
            entries: Mutex::new(Entries {
                by_key: HashMap::new(),
                sweep_at: FIRST_SWEEP,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The caller as verified earlier with the same access token, if that is still valid at `now`.
    pub fn get(
        &self,
        caller: &str,
        access_token: &Secret,
        now: DateTime<Utc>,
    ) -> Option<VerifiedCaller> {
        let entries = self.lock();
        let entry = entries.by_key.get(&key(caller, access_token))?;
        (entry.until > now).then(|| entry.caller.clone())
    }

    /// Remembers `verified`, the claims of `caller`'s presentation fetched with `access_token` at `now`.
    pub fn put(
        &self,
        caller: &str,
        access_token: &Secret,
        verified: &VerifiedClaims,
        now: DateTime<Utc>,
    ) {
        let Some(token_exp) = token_expiry(access_token) else {
            return;
        };
        let until = verified
            .credentials
            .iter()
            .filter_map(|c| c.valid_until)
            .chain([token_exp, now + self.max_age])
            .min()
            .unwrap_or(now);
        if until <= now || verified.participant_id != caller {
            return;
        }
        let mut guard = self.lock();
        let entries = &mut *guard;
        if entries.by_key.len() >= entries.sweep_at {
            entries.by_key.retain(|_, e| e.until > now);
            entries.sweep_at = (entries.by_key.len() * 2).max(FIRST_SWEEP);
            entries.by_key.shrink_to(entries.sweep_at);
        }
        if entries.by_key.len() >= self.max_entries {
            return;
        }
        entries.by_key.insert(
            key(caller, access_token),
            Entry {
                caller: verified.clone().into_verified_caller(),
                until,
            },
        );
    }

    /// How many entries it holds (live or not yet swept).
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::sign_compact;
    use crate::keys::ParticipantKey;
    use crate::testutil::t0;

    const CALLER: &str = "did:web:malmo.example";

    fn access_token(exp: DateTime<Utc>) -> Secret {
        let key = ParticipantKey::generate(&format!("{CALLER}#key-1")).unwrap();
        let claims = serde_json::json!({"iss": CALLER, "jti": "a", "exp": exp.timestamp()});
        Secret::new(sign_compact(&key, Some("at+jwt"), &claims).unwrap())
    }

    fn claims(valid_until: Option<DateTime<Utc>>) -> VerifiedClaims {
        let credential = crate::vc::Credential {
            format: crate::vc::CredentialFormat::Vc11Jwt,
            id: None,
            issuer: "did:web:authority.example".into(),
            types: vec!["VerifiableCredential".into(), "MembershipCredential".into()],
            subject: Default::default(),
            subject_id: Some(CALLER.into()),
            valid_from: None,
            valid_until,
            status: Vec::new(),
            schemas: Vec::new(),
            document: serde_json::Value::Null,
        };
        VerifiedClaims {
            participant_id: CALLER.into(),
            credentials: vec![credential],
            claims: Default::default(),
        }
    }

    #[test]
    fn an_entry_lives_until_the_earliest_expiry() {
        let cache = VerifiedPresentations::new(Duration::seconds(60), 100);
        let at = |s: i64| t0() + Duration::seconds(s);
        let live = |token: &Secret, s: i64| cache.get(CALLER, token, at(s)).is_some();
        let token = access_token(at(300));
        // The credential ends first.
        cache.put(CALLER, &token, &claims(Some(at(10))), t0());
        assert!(live(&token, 9) && !live(&token, 10));
        // max_age ends first.
        cache.put(CALLER, &token, &claims(None), t0());
        assert!(live(&token, 59) && !live(&token, 60));
        // The access token ends first.
        let short = access_token(at(5));
        cache.put(CALLER, &short, &claims(None), t0());
        assert!(live(&short, 4) && !live(&short, 5));
    }

    #[test]
    fn another_token_or_caller_misses() {
        let cache = VerifiedPresentations::new(Duration::seconds(60), 100);
        let token = access_token(t0() + Duration::seconds(300));
        cache.put(CALLER, &token, &claims(None), t0());
        let other = access_token(t0() + Duration::seconds(300));
        assert!(cache.get(CALLER, &other, t0()).is_none());
        assert!(cache.get("did:web:lund.example", &token, t0()).is_none());
        // Not a JWS with an exp: never kept.
        let opaque = Secret::new("opaque");
        cache.put(CALLER, &opaque, &claims(None), t0());
        assert!(cache.get(CALLER, &opaque, t0()).is_none());
        // Claims about someone else are not kept under this caller.
        let mut theirs = claims(None);
        theirs.participant_id = "did:web:lund.example".into();
        cache.put(CALLER, &other, &theirs, t0());
        assert!(cache.get(CALLER, &other, t0()).is_none());
    }

    #[test]
    fn expired_entries_are_swept_and_the_size_is_capped() {
        let cache = VerifiedPresentations::new(Duration::seconds(1), 1000);
        let token_exp = t0() + Duration::days(1);
        let mut now = t0();
        for _ in 0..5000 {
            now += Duration::milliseconds(100);
            cache.put(CALLER, &access_token(token_exp), &claims(None), now);
        }
        assert!(cache.len() <= 2 * FIRST_SWEEP, "{}", cache.len());
        let capped = VerifiedPresentations::new(Duration::seconds(60), 3);
        for _ in 0..10 {
            capped.put(CALLER, &access_token(token_exp), &claims(None), t0());
        }
        assert_eq!(capped.len(), 3);
    }
}
