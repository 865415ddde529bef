//! DCP self-issued ID tokens (DCP 1.0 §4.3): creation and verification, the replay cache their
//! `jti`s go through, and the access tokens a participant puts in the `token` claim so a verifier
//! may query its credential service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use super::Refusal;
use crate::auth::BoxFuture;
use crate::did::split_did_url;
use crate::did_doc::{DidDocument, KeyUsePolicy, Relationship};
use crate::jose::{DecodedJws, decode_compact, sign_compact};
use crate::keys::{KeyError, SigningKey};
use crate::resolve::DidResolve;
use crate::secret::Secret;
use crate::vc::random_uuid;

/// Remembers `jti`s until their token expires.
pub trait ReplayCache: Send + Sync + std::fmt::Debug {
    /// Records `key` (issuer and jti) until `expires_at`. `Ok(true)` the first time, `Ok(false)`
    /// for a replay.
    fn first_use<'a>(
        &'a self,
        key: &'a str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, String>>;
}

/// An in-process [`ReplayCache`] (one connector process; several replicas need a shared one,
/// e.g. a table with a unique key). Expired entries are swept whenever the cache has doubled since the
/// last sweep, so it holds about twice the live tokens at most (it grew with every request before: one
/// entry per token, kept until the cache was full).
#[derive(Debug)]
pub struct InMemoryReplayCache {
    seen: Mutex<Seen>,
    max_entries: usize,
}

/// The jtis and the size at which the next sweep runs.
#[derive(Debug)]
struct Seen {
    until: HashMap<String, DateTime<Utc>>,
    sweep_at: usize,
}

/// The smallest size at which a sweep runs.
const FIRST_SWEEP: usize = 1024;

impl InMemoryReplayCache {
    /// A cache of at most `max_entries` live jtis; when full, new tokens are refused (fail closed)
    /// rather than old entries forgotten.
    pub fn new(max_entries: usize) -> Self {
        InMemoryReplayCache {
            seen: Mutex::new(Seen {
                until: HashMap::new(),
                sweep_at: FIRST_SWEEP,
            }),
            max_entries,
        }
    }

    /// How many jtis it holds (live or not yet swept).
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .until
            .len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for InMemoryReplayCache {
    fn default() -> Self {
        Self::new(1_000_000)
    }
}

impl ReplayCache for InMemoryReplayCache {
    fn first_use<'a>(
        &'a self,
        key: &'a str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, String>> {
        let mut guard = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let seen = &mut *guard;
        let result = if seen.until.get(key).is_some_and(|until| *until > now) {
            Ok(false)
        } else {
            if seen.until.len() >= seen.sweep_at.min(self.max_entries) {
                seen.until.retain(|_, until| *until > now);
                seen.sweep_at = (seen.until.len() * 2).max(FIRST_SWEEP);
                seen.until.shrink_to(seen.sweep_at);
            }
            if seen.until.len() >= self.max_entries {
                Err("the replay cache is full".to_owned())
            } else {
                seen.until.insert(key.to_owned(), expires_at);
                Ok(true)
            }
        };
        Box::pin(std::future::ready(result))
    }
}

impl<T: ReplayCache + ?Sized> ReplayCache for Arc<T> {
    fn first_use<'a>(
        &'a self,
        key: &'a str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, String>> {
        self.as_ref().first_use(key, expires_at, now)
    }
}

/// Creates a self-issued ID token: `iss` = `sub` = `own_did`, `aud` = `audience`, a fresh `jti`,
/// `iat` = `nbf` = `now`, `exp` = `now + lifetime`, and `token` (the access token for our
/// credential service) when given. Send it as `Authorization: Bearer <token>`.
pub fn create_self_issued_token(
    own_did: &str,
    key: &dyn SigningKey,
    audience: &str,
    access_token: Option<&Secret>,
    now: DateTime<Utc>,
    lifetime: Duration,
) -> Result<Secret, KeyError> {
    let mut claims = Map::new();
    claims.insert("iss".into(), Value::from(own_did));
    claims.insert("sub".into(), Value::from(own_did));
    claims.insert("aud".into(), Value::from(audience));
    claims.insert("jti".into(), Value::from(random_uuid()));
    claims.insert("iat".into(), Value::from(now.timestamp()));
    claims.insert("nbf".into(), Value::from(now.timestamp()));
    claims.insert("exp".into(), Value::from((now + lifetime).timestamp()));
    if let Some(token) = access_token {
        claims.insert("token".into(), Value::from(token.expose()));
    }
    sign_compact(key, Some("JWT"), &Value::Object(claims)).map(Secret::new)
}

/// How self-issued tokens are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRules {
    /// Our DID: the `aud` the token must carry.
    pub own_did: String,
    /// Tolerated clock skew for `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Longest accepted `exp - iat` (tokens must be short-lived).
    pub max_lifetime: Duration,
    /// Require the `token` claim (a verifier needs it to query the caller's credential service).
    pub require_token_claim: bool,
    /// The relationship the signing key needs (DCP: `capabilityInvocation`).
    pub relationship: Relationship,
    /// How strictly keys must be listed under it.
    pub key_use: KeyUsePolicy,
}

impl TokenRules {
    /// DCP defaults for `own_did`: 30 s leeway, at most 10 minutes of lifetime, `token` required,
    /// a `capabilityInvocation` key.
    pub fn new(own_did: &str) -> Self {
        TokenRules {
            own_did: own_did.to_owned(),
            leeway: Duration::seconds(30),
            max_lifetime: Duration::minutes(10),
            require_token_claim: true,
            relationship: Relationship::CapabilityInvocation,
            key_use: KeyUsePolicy::Strict,
        }
    }
}

/// A verified self-issued token.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// The caller's DID (`iss` = `sub`).
    pub issuer: String,
    /// The token's `jti`.
    pub jti: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// The `token` claim: the access token to present to the caller's credential service.
    pub access_token: Option<Secret>,
    /// The caller's DID document (for its `CredentialService`).
    pub did_document: Arc<DidDocument>,
}

/// Takes the token out of an `Authorization` header value: exactly `Bearer <token>` (the scheme
/// case-insensitive).
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, Refusal> {
    let header = authorization
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(Refusal::MissingAuthorization)?;
    let (scheme, token) = header.split_once(' ').ok_or(Refusal::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Refusal::NotBearer);
    }
    Ok(token.trim())
}

fn numeric_date(claims: &Value, name: &str) -> Result<Option<DateTime<Utc>>, Refusal> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => crate::jose::numeric_date(v)
            .map(Some)
            .ok_or_else(|| Refusal::MalformedToken(format!("`{name}` is not a NumericDate"))),
    }
}

fn audiences(claims: &Value) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Checks `exp` (required), `nbf`, `iat` and the lifetime of a decoded token.
fn check_times(
    claims: &Value,
    now: DateTime<Utc>,
    leeway: Duration,
    max_lifetime: Duration,
) -> Result<DateTime<Utc>, Refusal> {
    let exp = numeric_date(claims, "exp")?.ok_or(Refusal::LifetimeTooLong {
        max_seconds: max_lifetime.num_seconds(),
    })?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    if now - leeway >= exp {
        return Err(Refusal::Expired(exp));
    }
    if let Some(nbf) = nbf
        && now + leeway < nbf
    {
        return Err(Refusal::NotYetValid(nbf));
    }
    if let Some(iat) = iat
        && now + leeway < iat
    {
        return Err(Refusal::IssuedInFuture(iat));
    }
    // Without iat, the token may live at most max_lifetime from now.
    if exp - iat.unwrap_or(now) > max_lifetime + leeway {
        return Err(Refusal::LifetimeTooLong {
            max_seconds: max_lifetime.num_seconds(),
        });
    }
    Ok(exp)
}

/// Verifies a self-issued ID token from an `Authorization` header, in the DCP order: `Bearer`,
/// `iss` = `sub`, `aud` = us, the `sub` DID resolves to a document with that id, the `kid` is a
/// key of that DID under the required relationship, the signature, `exp`/`nbf`/`iat`, a `jti`,
/// the `token` claim, and last (so a forged token cannot burn a jti) that the `jti` is new.
pub async fn verify_self_issued_token(
    authorization: Option<&str>,
    rules: &TokenRules,
    now: DateTime<Utc>,
    resolver: &dyn DidResolve,
    replay: &dyn ReplayCache,
) -> Result<VerifiedToken, Refusal> {
    let token = bearer_token(authorization)?;
    let jws = decode_compact(token).map_err(|e| Refusal::MalformedToken(e.to_string()))?;
    let claims = &jws.payload;
    let str_claim = |name: &str| claims.get(name).and_then(Value::as_str);
    let iss = str_claim("iss").ok_or_else(|| Refusal::MalformedToken("no `iss`".into()))?;
    let sub = str_claim("sub").ok_or_else(|| Refusal::MalformedToken("no `sub`".into()))?;
    if iss != sub {
        return Err(Refusal::IssuerNotSubject {
            iss: iss.into(),
            sub: sub.into(),
        });
    }
    let aud = audiences(claims);
    if !aud.contains(&rules.own_did) {
        return Err(Refusal::WrongAudience {
            expected: rules.own_did.clone(),
            found: aud,
        });
    }
    let did_document = verify_token_signature(&jws, sub, rules, now, resolver).await?;
    let expires_at = check_times(claims, now, rules.leeway, rules.max_lifetime)?;
    let jti = str_claim("jti")
        .filter(|j| !j.is_empty())
        .ok_or(Refusal::MissingJti)?;
    let access_token = match claims.get("token") {
        Some(Value::String(t)) if !t.is_empty() => Some(Secret::new(t.as_str())),
        Some(Value::String(_)) | None | Some(Value::Null) => None,
        Some(_) => return Err(Refusal::MalformedToken("`token` is not a string".into())),
    };
    if rules.require_token_claim && access_token.is_none() {
        return Err(Refusal::MissingTokenClaim);
    }
    let replay_key = format!("{sub}\u{1f}{jti}");
    let fresh = replay
        .first_use(&replay_key, expires_at + rules.leeway, now)
        .await
        .map_err(Refusal::ReplayCacheUnavailable)?;
    if !fresh {
        return Err(Refusal::ReplayedJti(jti.to_owned()));
    }
    Ok(VerifiedToken {
        issuer: sub.to_owned(),
        jti: jti.to_owned(),
        expires_at,
        access_token,
        did_document,
    })
}

async fn verify_token_signature(
    jws: &DecodedJws,
    sub: &str,
    rules: &TokenRules,
    now: DateTime<Utc>,
    resolver: &dyn DidResolve,
) -> Result<Arc<DidDocument>, Refusal> {
    if let Some(kid) = jws.kid()
        && kid.starts_with("did:")
        && split_did_url(kid).0 != sub
    {
        return Err(Refusal::SignedByAnotherDid {
            sub: sub.to_owned(),
            signer: split_did_url(kid).0.to_owned(),
        });
    }
    let doc = resolver.resolve(sub, now).await.map_err(|e| {
        if e.is_id_mismatch() {
            Refusal::SubjectNotDidDocument(sub.to_owned())
        } else {
            Refusal::Resolution(e)
        }
    })?;
    if doc.id != sub {
        return Err(Refusal::SubjectNotDidDocument(sub.to_owned()));
    }
    let key = doc
        .verification_key(jws.kid(), rules.relationship, rules.key_use)
        .map_err(Refusal::Key)?;
    key.verify(jws).map_err(Refusal::Signature)?;
    Ok(doc)
}

/// What an access token (the `token` claim) allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    /// The verifier the token was given to: only it may use it.
    pub bearer: String,
    /// The scopes it may query (e.g. `org.eclipse.dspace.dcp.vc.type:MembershipCredential:read`).
    pub scopes: Vec<String>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// Issues an access token to our own credential service for `bearer` (the verifier we are about
/// to call), limited to `scopes`: a JWT signed with our key, `iss` = `aud` = us, `sub` = the bearer.
pub fn issue_access_token(
    own_did: &str,
    key: &dyn SigningKey,
    bearer: &str,
    scopes: &[String],
    now: DateTime<Utc>,
    lifetime: Duration,
) -> Result<Secret, KeyError> {
    let claims = serde_json::json!({
        "iss": own_did,
        "aud": own_did,
        "sub": bearer,
        "scope": scopes.join(" "),
        "jti": random_uuid(),
        "iat": now.timestamp(),
        "exp": (now + lifetime).timestamp(),
    });
    sign_compact(key, Some("at+jwt"), &claims).map(Secret::new)
}

/// Verifies an access token we issued ([`issue_access_token`]) against our own DID document.
pub fn verify_access_token(
    token: &Secret,
    own_document: &DidDocument,
    now: DateTime<Utc>,
    leeway: Duration,
) -> Result<AccessGrant, Refusal> {
    let refused = |why: &str| Refusal::AccessTokenRefused(why.to_owned());
    let jws = decode_compact(token.expose()).map_err(|_| refused("not a JWS"))?;
    if jws.typ() != Some("at+jwt") {
        return Err(refused("not an access token"));
    }
    let own = own_document.id.as_str();
    if jws.claim_str("iss") != Some(own) || !audiences(&jws.payload).iter().any(|a| a == own) {
        return Err(refused("not issued by and for us"));
    }
    let key = own_document
        .verification_key(
            jws.kid(),
            Relationship::CapabilityInvocation,
            KeyUsePolicy::Strict,
        )
        .map_err(|e| Refusal::AccessTokenRefused(e.to_string()))?;
    key.verify(&jws).map_err(|_| refused("bad signature"))?;
    let exp = numeric_date(&jws.payload, "exp")?.ok_or_else(|| refused("no exp"))?;
    if now - leeway >= exp {
        return Err(refused("expired"));
    }
    let bearer = jws
        .claim_str("sub")
        .ok_or_else(|| refused("no bearer"))?
        .to_owned();
    let scopes = jws
        .claim_str("scope")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    Ok(AccessGrant {
        bearer,
        scopes,
        expires_at: exp,
    })
}

/// The credential-service side of a presentation query: the verifier's self-issued token
/// (`aud` = us, with `token`) is verified, then the access token inside it, which must have been
/// issued by us to that same verifier. Returns what the verifier may see.
pub async fn authorize_presentation_query(
    authorization: Option<&str>,
    own_document: &DidDocument,
    now: DateTime<Utc>,
    resolver: &dyn DidResolve,
    replay: &dyn ReplayCache,
) -> Result<AccessGrant, Refusal> {
    let rules = TokenRules::new(&own_document.id);
    let token = verify_self_issued_token(authorization, &rules, now, resolver, replay).await?;
    let access = token.access_token.ok_or(Refusal::MissingTokenClaim)?;
    let grant = verify_access_token(&access, own_document, now, rules.leeway)?;
    if grant.bearer != token.issuer {
        return Err(Refusal::AccessTokenRefused(format!(
            "the access token was given to {}, not {}",
            grant.bearer, token.issuer
        )));
    }
    Ok(grant)
}
