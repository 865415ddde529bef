//! Bearer JWT access tokens from the city's OpenID Connect provider on the management API
//! (`[api.oidc]`), accepted besides the static admin token by the `http::auth::Admin` extractor.
//!
//! The provider's discovery document (`{issuer}/.well-known/openid-configuration`) names its key set
//! (`jwks_uri`). Both are fetched lazily with the connector's HTTP client and cached: the key set for
//! `jwks_cache_secs`, and again at once when a token names a `kid` the cache does not know (key
//! rotation). No fetch ever follows another within [`MIN_FETCH_INTERVAL_SECS`], so a flood of tokens
//! with made-up `kid`s cannot hammer the provider. When the provider cannot be reached, keys fetched
//! earlier keep being used; without any, the request is answered 503.
//!
//! A token is accepted when its signature verifies (RS256, ES256 or EdDSA, with the key of the JWK set
//! it names), `iss` is the issuer, `aud` contains the audience, `exp` and `nbf` hold with `leeway_secs`,
//! and it carries the required scope and role. Each refusal is an [`OidcError`] whose reason goes to
//! the log; the client only learns "invalid token" (401) or "insufficient scope" (403).

use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;

use caap_identity::jose::{self, DecodedJws};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::config::ApiOidcConfig;

/// No two fetches from the provider within this many seconds.
pub const MIN_FETCH_INTERVAL_SECS: i64 = 10;
/// Largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Timeout of one request to the provider (a management request waits for it).
const FETCH_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// Who an accepted access token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcPrincipal {
    /// The token's `sub`.
    pub subject: String,
    /// The client it was issued to (`client_id`, else `azp`), if the token says.
    pub client_id: Option<String>,
}

/// Why an access token was not accepted. The reason is for the log only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// Not a compact JWS with JSON claims.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// An algorithm other than RS256, ES256 or EdDSA (`none` and HMAC included).
    #[error("algorithm {0:?} is not accepted (RS256, ES256, EdDSA)")]
    Algorithm(String),
    /// The provider's key set has no key for the token.
    #[error("the provider's key set has no key {0}")]
    UnknownKey(String),
    /// The signature does not verify with the named key.
    #[error("signature: {0}")]
    Signature(String),
    /// `iss` is not the configured issuer.
    #[error("issuer {0:?} is not api.oidc.issuer")]
    Issuer(String),
    /// `aud` does not contain the configured audience.
    #[error("audience {0} does not contain api.oidc.audience")]
    Audience(String),
    /// `exp` has passed (beyond the leeway).
    #[error("expired at {0}")]
    Expired(DateTime<Utc>),
    /// `nbf` or `iat` lies in the future (beyond the leeway).
    #[error("not valid before {0}")]
    NotYetValid(DateTime<Utc>),
    /// A required claim is missing or has the wrong type.
    #[error("claim {0}")]
    Claim(String),
    /// The token is valid but lacks `api.oidc.required_scope`.
    #[error("scope {0:?} is missing")]
    MissingScope(String),
    /// The token is valid but lacks `api.oidc.required_role`.
    #[error("role {role:?} is missing from claim {claim}")]
    MissingRole {
        /// The role required.
        role: String,
        /// Where it was looked for.
        claim: String,
    },
    /// The provider's discovery document or key set could not be fetched (and no keys are known).
    #[error("the OIDC provider cannot be used: {0}")]
    Unavailable(String),
}

/// How a refusal is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcRefusal {
    /// 401, `error="invalid_token"`.
    InvalidToken,
    /// 403, `error="insufficient_scope"`.
    InsufficientScope,
    /// 503: retry later.
    Unavailable,
}

impl OidcError {
    /// How the refusal is answered.
    pub fn refusal(&self) -> OidcRefusal {
        match self {
            OidcError::MissingScope(_) | OidcError::MissingRole { .. } => {
                OidcRefusal::InsufficientScope
            }
            OidcError::Unavailable(_) => OidcRefusal::Unavailable,
            _ => OidcRefusal::InvalidToken,
        }
    }
}

/// The provider's keys as last fetched.
#[derive(Debug, Default)]
struct KeyCache {
    discovery: Option<Value>,
    jwks_uri: Option<String>,
    keys: Vec<Map<String, Value>>,
    fetched_at: Option<DateTime<Utc>>,
    last_attempt: Option<DateTime<Utc>>,
}

/// Verifies the management API's OIDC access tokens; one per connector, made at start-up.
#[derive(Debug)]
pub struct OidcVerifier {
    config: ApiOidcConfig,
    http: crate::outbound::Http,
    clock: Arc<dyn Clock>,
    cache: RwLock<KeyCache>,
    /// Held while fetching, so concurrent requests wait for one fetch instead of each making one.
    fetching: tokio::sync::Mutex<()>,
}

impl OidcVerifier {
    /// A verifier for `[api.oidc]`; nothing is fetched until the first token arrives.
    pub fn new(config: ApiOidcConfig, http: crate::outbound::Http, clock: Arc<dyn Clock>) -> Self {
        OidcVerifier {
            config,
            http,
            clock,
            cache: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Verifies `token` and answers who it stands for.
    pub async fn verify(&self, token: &str) -> Result<OidcPrincipal, OidcError> {
        self.verify_with_claims(token)
            .await
            .map(|(principal, _)| principal)
    }

    /// Verifies `token` like [`OidcVerifier::verify`] and also answers all its claims (the citizen
    /// portal reads an ID token's `nonce` and its configured subject claim from them).
    pub async fn verify_with_claims(
        &self,
        token: &str,
    ) -> Result<(OidcPrincipal, Map<String, Value>), OidcError> {
        let jws = jose::decode_compact(token).map_err(|e| OidcError::Malformed(e.to_string()))?;
        let alg = jws.alg().unwrap_or_default().to_owned();
        if !matches!(alg.as_str(), "RS256" | "ES256" | "EdDSA") {
            return Err(OidcError::Algorithm(alg));
        }
        let keys = self.keys_for(&jws, &alg).await?;
        let mut last = OidcError::UnknownKey(describe_kid(jws.kid()));
        for key in keys {
            match jose::verify_with_jwk(&jws, &Value::Object(key)) {
                Ok(()) => {
                    let principal = self.check_claims(&jws.payload, self.clock.now())?;
                    let claims = jws.payload.as_object().cloned().unwrap_or_default();
                    return Ok((principal, claims));
                }
                Err(e) => last = OidcError::Signature(e.to_string()),
            }
        }
        Err(last)
    }

    /// The claim checks, after the signature: issuer, audience, times, subject, then scope and role.
    pub fn check_claims(
        &self,
        claims: &Value,
        now: DateTime<Utc>,
    ) -> Result<OidcPrincipal, OidcError> {
        let claims = claims
            .as_object()
            .ok_or_else(|| OidcError::Malformed("the claims are not a JSON object".into()))?;
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::Claim("`iss` is missing".into()))?;
        if iss.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') {
            return Err(OidcError::Issuer(iss.to_owned()));
        }
        let aud = claims.get("aud").cloned().unwrap_or(Value::Null);
        let audience_ok = match &aud {
            Value::String(a) => *a == self.config.audience,
            Value::Array(all) => all
                .iter()
                .any(|a| a.as_str() == Some(&self.config.audience)),
            _ => false,
        };
        if !audience_ok {
            return Err(OidcError::Audience(aud.to_string()));
        }
        let leeway = Duration::seconds(i64::try_from(self.config.leeway_secs).unwrap_or(300));
        let exp = time_claim(claims, "exp")?
            .ok_or_else(|| OidcError::Claim("`exp` is missing".into()))?;
        if now > exp + leeway {
            return Err(OidcError::Expired(exp));
        }
        for name in ["nbf", "iat"] {
            if let Some(t) = time_claim(claims, name)?
                && t > now + leeway
            {
                return Err(OidcError::NotYetValid(t));
            }
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| OidcError::Claim("`sub` is missing".into()))?
            .to_owned();
        if let Some(scope) = &self.config.required_scope {
            let granted = words(claims.get("scope")).chain(words(claims.get("scp")));
            if !granted.into_iter().any(|s| s == *scope) {
                return Err(OidcError::MissingScope(scope.clone()));
            }
        }
        if let Some(role) = &self.config.required_role {
            let holder = self
                .config
                .roles_claim
                .split('.')
                .try_fold(&Value::Object(claims.clone()), |v, part| v.get(part))
                .cloned();
            if !words(holder.as_ref()).any(|r| r == *role) {
                return Err(OidcError::MissingRole {
                    role: role.clone(),
                    claim: self.config.roles_claim.clone(),
                });
            }
        }
        let client_id = ["client_id", "azp"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .map(str::to_owned);
        Ok(OidcPrincipal { subject, client_id })
    }

    /// The keys that may have signed `jws`: the one its `kid` names, or, without a `kid`, every key
    /// of the algorithm's type. Fetches the key set when the cache is old or does not know the key.
    async fn keys_for(
        &self,
        jws: &DecodedJws,
        alg: &str,
    ) -> Result<Vec<Map<String, Value>>, OidcError> {
        let now = self.clock.now();
        if let Some(keys) = self.cached_keys(jws.kid(), alg, now, false) {
            return Ok(keys);
        }
        let _fetching = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let now = self.clock.now();
        if let Some(keys) = self.cached_keys(jws.kid(), alg, now, false) {
            return Ok(keys);
        }
        let (may_fetch, jwks_uri, have_keys) = {
            let cache = self.cache.read().map_err(|_| poisoned())?;
            let may_fetch = cache
                .last_attempt
                .is_none_or(|t| now - t >= Duration::seconds(MIN_FETCH_INTERVAL_SECS));
            (
                may_fetch,
                cache.jwks_uri.clone(),
                cache.fetched_at.is_some(),
            )
        };
        if may_fetch {
            self.cache.write().map_err(|_| poisoned())?.last_attempt = Some(now);
            match self.fetch_keys(jwks_uri).await {
                Ok((jwks_uri, keys)) => {
                    tracing::debug!(keys = keys.len(), %jwks_uri, "OIDC provider's key set fetched");
                    let mut cache = self.cache.write().map_err(|_| poisoned())?;
                    cache.jwks_uri = Some(jwks_uri);
                    cache.keys = keys;
                    cache.fetched_at = Some(now);
                }
                Err(reason) if have_keys => {
                    tracing::warn!(%reason, "OIDC provider unreachable; using the keys fetched earlier");
                }
                Err(reason) => {
                    tracing::warn!(%reason, "OIDC provider unreachable");
                    return Err(OidcError::Unavailable(reason));
                }
            }
        } else if !have_keys {
            return Err(OidcError::Unavailable(format!(
                "the last attempt to fetch the provider's keys failed less than {MIN_FETCH_INTERVAL_SECS} s ago"
            )));
        }
        self.cached_keys(jws.kid(), alg, now, true)
            .ok_or_else(|| OidcError::UnknownKey(describe_kid(jws.kid())))
    }

    /// Matching keys from the cache: `None` when a fetch is due (too old, or no matching key) unless
    /// `stale_ok`.
    fn cached_keys(
        &self,
        kid: Option<&str>,
        alg: &str,
        now: DateTime<Utc>,
        stale_ok: bool,
    ) -> Option<Vec<Map<String, Value>>> {
        let cache = self.cache.read().ok()?;
        let fetched_at = cache.fetched_at?;
        let max_age = Duration::seconds(i64::try_from(self.config.jwks_cache_secs).ok()?);
        if !stale_ok && now - fetched_at >= max_age {
            return None;
        }
        let keys: Vec<_> = cache
            .keys
            .iter()
            .filter(|k| match kid {
                Some(kid) => k.get("kid").and_then(Value::as_str) == Some(kid),
                None => fits(k, alg),
            })
            .cloned()
            .collect();
        (!keys.is_empty()).then_some(keys)
    }

    /// Discovery (once) and the key set: the `jwks_uri` and the signature keys.
    async fn fetch_keys(
        &self,
        known_jwks_uri: Option<String>,
    ) -> Result<(String, Vec<Map<String, Value>>), String> {
        let jwks_uri = match known_jwks_uri {
            Some(uri) => uri,
            None => self
                .discovery()
                .await
                .map_err(|e| e.to_string())?
                .get("jwks_uri")
                .and_then(Value::as_str)
                .ok_or_else(|| "the provider's discovery document names no jwks_uri".to_owned())?
                .to_owned(),
        };
        let set = self.get_json(&jwks_uri).await?;
        let keys = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{jwks_uri} is not a JWK set (no `keys` array)"))?
            .iter()
            .filter_map(Value::as_object)
            .filter(|k| {
                k.get("use")
                    .and_then(Value::as_str)
                    .is_none_or(|u| u == "sig")
            })
            .filter(|k| !k.contains_key("d"))
            .cloned()
            .collect();
        Ok((jwks_uri, keys))
    }

    /// The provider's discovery document (`{issuer}/.well-known/openid-configuration`), fetched once and
    /// then kept, its `issuer` checked (the portal reads its endpoints from it).
    pub async fn discovery(&self) -> Result<Value, OidcError> {
        if let Some(doc) = &self.cache.read().map_err(|_| poisoned())?.discovery {
            return Ok(doc.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let doc = self.get_json(&url).await.map_err(OidcError::Unavailable)?;
        let issuer = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
        if issuer.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') {
            return Err(OidcError::Unavailable(format!(
                "{url} names the issuer {issuer:?}, not the configured issuer {:?}",
                self.config.issuer
            )));
        }
        self.cache.write().map_err(|_| poisoned())?.discovery = Some(doc.clone());
        Ok(doc)
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut res = self
            .http
            .get(url)
            .timeout(FETCH_TIMEOUT)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", crate::outbound::describe_reqwest(&e)))?;
        if !res.status().is_success() {
            return Err(format!("{url} answered {}", res.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
    }

    /// A verifier whose key set is already known (tests).
    #[cfg(test)]
    fn with_keys(
        config: ApiOidcConfig,
        clock: Arc<dyn Clock>,
        keys: Vec<Map<String, Value>>,
    ) -> Self {
        let v = OidcVerifier::new(config, reqwest::Client::new().into(), clock.clone());
        if let Ok(mut cache) = v.cache.write() {
            cache.jwks_uri = Some("http://127.0.0.1:9/jwks".into());
            cache.keys = keys;
            cache.fetched_at = Some(clock.now());
        }
        v
    }
}

fn poisoned() -> OidcError {
    OidcError::Unavailable("the key cache is unusable (a thread panicked)".into())
}

fn describe_kid(kid: Option<&str>) -> String {
    match kid {
        Some(kid) => format!("{kid:?}"),
        None => "for a token without kid".into(),
    }
}

/// A JWK of the type the algorithm needs (for tokens without `kid`).
fn fits(key: &Map<String, Value>, alg: &str) -> bool {
    let s = |name: &str| key.get(name).and_then(Value::as_str);
    match alg {
        "RS256" => s("kty") == Some("RSA"),
        "ES256" => s("kty") == Some("EC") && s("crv") == Some("P-256"),
        "EdDSA" => s("kty") == Some("OKP") && s("crv") == Some("Ed25519"),
        _ => false,
    }
}

/// A NumericDate claim, if present.
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<DateTime<Utc>>, OidcError> {
    let Some(v) = claims.get(name) else {
        return Ok(None);
    };
    caap_identity::jose::numeric_date(v)
        .map(Some)
        .ok_or_else(|| OidcError::Claim(format!("`{name}` is not a time")))
}

/// The words of a space-separated string claim or the strings of an array claim.
fn words(value: Option<&Value>) -> impl Iterator<Item = String> {
    let items: Vec<String> = match value {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    items.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use caap_identity::ParticipantKey;
    use caap_identity::keys::KeyAlgorithm;
    use josekit::jwk::Jwk;
    use josekit::jws::JwsHeader;
    use serde_json::json;

    const ISSUER: &str = "https://login.malmo.se/realms/city";
    const AUDIENCE: &str = "urn:caap:management-api";

    fn config() -> ApiOidcConfig {
        ApiOidcConfig {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            required_scope: Some("caap:admin".into()),
            required_role: None,
            roles_claim: "roles".into(),
            leeway_secs: 30,
            jwks_cache_secs: 300,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "caap-admin",
            "client_id": "caap-admin",
            "scope": "openid caap:admin",
            "iat": now().timestamp() - 10,
            "exp": now().timestamp() + 600,
        })
    }

    /// An RSA key pair as JWKs (private, public) with a `kid`.
    fn rsa(kid: &str) -> (Jwk, Map<String, Value>) {
        let pair = josekit::jws::RS256.generate_key_pair(2048).unwrap();
        let mut private = pair.to_jwk_private_key();
        private.set_key_id(kid);
        let mut public = pair.to_jwk_public_key();
        public.set_key_id(kid);
        (private, public.as_ref().clone())
    }

    fn sign_rs256(key: &Jwk, kid: Option<&str>, claims: &Value) -> String {
        let mut header = JwsHeader::new();
        header.set_token_type("at+jwt");
        if let Some(kid) = kid {
            header.set_key_id(kid);
        }
        let signer = josekit::jws::RS256.signer_from_jwk(key).unwrap();
        josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, &signer).unwrap()
    }

    fn verifier(config: ApiOidcConfig, keys: Vec<Map<String, Value>>) -> OidcVerifier {
        OidcVerifier::with_keys(config, Arc::new(ManualClock::at(now())), keys)
    }

    #[tokio::test]
    async fn a_token_signed_by_a_known_key_with_the_right_claims_is_accepted() {
        let (private, public) = rsa("k1");
        let v = verifier(config(), vec![public]);
        let token = sign_rs256(&private, Some("k1"), &claims());
        let p = v.verify(&token).await.unwrap();
        assert_eq!(p.subject, "caap-admin");
        assert_eq!(p.client_id.as_deref(), Some("caap-admin"));
        // Without a kid, every key of the algorithm's type is tried.
        assert!(
            v.verify(&sign_rs256(&private, None, &claims()))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn es256_and_eddsa_keys_from_the_set_verify_too() {
        for alg in [KeyAlgorithm::Es256, KeyAlgorithm::EdDsa] {
            let key = ParticipantKey::generate_with(alg, "k-ec").unwrap();
            let mut public = key.public_jwk().unwrap().as_object().unwrap().clone();
            public.insert("kid".into(), json!("k-ec"));
            let v = verifier(config(), vec![public]);
            let token = jose::sign_compact(&key, Some("at+jwt"), &claims()).unwrap();
            let r = v.verify(&token).await;
            assert!(r.is_ok(), "{alg:?}: {r:?}");
        }
    }

    #[tokio::test]
    async fn wrong_signatures_algorithms_and_garbage_are_invalid_tokens() {
        let (private, public) = rsa("k1");
        let (other, _) = rsa("k1");
        let v = verifier(config(), vec![public]);
        let forged = sign_rs256(&other, Some("k1"), &claims());
        let err = v.verify(&forged).await.unwrap_err();
        assert!(matches!(err, OidcError::Signature(_)), "{err}");
        let token = sign_rs256(&private, Some("k1"), &claims());
        let mut parts: Vec<&str> = token.split('.').collect();
        let unsigned = format!(
            "{}.{}.",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                br#"{"alg":"none","kid":"k1"}"#
            ),
            parts[1]
        );
        assert_eq!(
            v.verify(&unsigned).await.unwrap_err(),
            OidcError::Algorithm("none".into())
        );
        parts[1] = "eyJpc3MiOiJ4In0";
        let tampered = parts.join(".");
        assert!(matches!(
            v.verify(&tampered).await.unwrap_err(),
            OidcError::Signature(_)
        ));
        for garbage in ["", "not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"] {
            let err = v.verify(garbage).await.unwrap_err();
            assert_eq!(err.refusal(), OidcRefusal::InvalidToken, "{garbage}: {err}");
        }
    }

    #[tokio::test]
    async fn an_unknown_kid_is_refused_without_fetching_within_ten_seconds() {
        let (_, public) = rsa("k1");
        let (stranger, _) = rsa("k2");
        let v = verifier(config(), vec![public]);
        // The cache is fresh and a fetch was just attempted: no new fetch (there is no provider).
        v.cache.write().unwrap().last_attempt = Some(now());
        let err = v
            .verify(&sign_rs256(&stranger, Some("k2"), &claims()))
            .await
            .unwrap_err();
        assert_eq!(err, OidcError::UnknownKey("\"k2\"".into()));
    }

    #[tokio::test]
    async fn an_unreachable_provider_without_keys_is_unavailable() {
        let mut c = config();
        c.issuer = "http://127.0.0.1:9".into();
        let v = OidcVerifier::new(
            c,
            reqwest::Client::new().into(),
            Arc::new(ManualClock::at(now())),
        );
        let (private, _) = rsa("k1");
        let err = v
            .verify(&sign_rs256(&private, Some("k1"), &claims()))
            .await
            .unwrap_err();
        assert_eq!(err.refusal(), OidcRefusal::Unavailable, "{err}");
        // The next token within 10 s does not try again.
        let err = v
            .verify(&sign_rs256(&private, Some("k1"), &claims()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("less than 10 s ago"), "{err}");
    }

    #[test]
    fn claim_checks_table() {
        let v = verifier(config(), vec![]);
        let with = |patch: Value| {
            let mut c = claims();
            for (k, val) in patch.as_object().unwrap() {
                if val.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = val.clone();
                }
            }
            v.check_claims(&c, now())
        };
        let t = now().timestamp();
        assert!(with(json!({})).is_ok());
        assert!(with(json!({"iss": format!("{ISSUER}/")})).is_ok());
        assert!(with(json!({"aud": ["other", AUDIENCE]})).is_ok());
        assert!(with(json!({"exp": t - 29})).is_ok(), "within the leeway");
        assert!(with(json!({"nbf": t + 29})).is_ok(), "within the leeway");
        assert!(with(json!({"scope": null, "scp": ["caap:admin"]})).is_ok());
        type Expect = fn(&OidcError) -> bool;
        let cases: &[(Value, Expect)] = &[
            (json!({"iss": "https://evil.example"}), |e| {
                matches!(e, OidcError::Issuer(_))
            }),
            (json!({"iss": null}), |e| matches!(e, OidcError::Claim(_))),
            (json!({"aud": "urn:caap:some-other-api"}), |e| {
                matches!(e, OidcError::Audience(_))
            }),
            (json!({"aud": ["a", "b"]}), |e| {
                matches!(e, OidcError::Audience(_))
            }),
            (json!({"aud": null}), |e| {
                matches!(e, OidcError::Audience(_))
            }),
            (json!({"exp": t - 31}), |e| {
                matches!(e, OidcError::Expired(_))
            }),
            (json!({"exp": null}), |e| matches!(e, OidcError::Claim(_))),
            (json!({"exp": "tomorrow"}), |e| {
                matches!(e, OidcError::Claim(_))
            }),
            (json!({"nbf": t + 31}), |e| {
                matches!(e, OidcError::NotYetValid(_))
            }),
            (json!({"iat": t + 3600}), |e| {
                matches!(e, OidcError::NotYetValid(_))
            }),
            (json!({"sub": null}), |e| matches!(e, OidcError::Claim(_))),
            (json!({"scope": "openid caap:read"}), |e| {
                matches!(e, OidcError::MissingScope(_))
            }),
            (json!({"scope": "caap:administrator"}), |e| {
                matches!(e, OidcError::MissingScope(_))
            }),
            (json!({"scope": null}), |e| {
                matches!(e, OidcError::MissingScope(_))
            }),
        ];
        for (patch, expected) in cases {
            let err = with(patch.clone()).unwrap_err();
            assert!(expected(&err), "{patch}: {err}");
        }
        // A wrong issuer is invalid even when the scope is missing too: validity comes first.
        let err = with(json!({"iss": "https://evil.example", "scope": null})).unwrap_err();
        assert_eq!(err.refusal(), OidcRefusal::InvalidToken);
        let err = with(json!({"scope": "caap:read"})).unwrap_err();
        assert_eq!(err.refusal(), OidcRefusal::InsufficientScope);
    }

    #[test]
    fn roles_are_read_from_the_configured_claim() {
        let mut c = config();
        c.required_scope = None;
        c.required_role = Some("caap-admin".into());
        c.roles_claim = "realm_access.roles".into();
        let v = verifier(c, vec![]);
        let mut ok = claims();
        ok["realm_access"] = json!({"roles": ["viewer", "caap-admin"]});
        assert!(v.check_claims(&ok, now()).is_ok());
        let mut no = claims();
        no["realm_access"] = json!({"roles": ["viewer"]});
        let err = v.check_claims(&no, now()).unwrap_err();
        assert_eq!(err.refusal(), OidcRefusal::InsufficientScope);
        assert!(err.to_string().contains("realm_access.roles"), "{err}");
        let mut c = config();
        c.required_role = Some("admin".into());
        let v = verifier(c, vec![]);
        let mut spaced = claims();
        spaced["roles"] = json!("reader admin");
        assert!(v.check_claims(&spaced, now()).is_ok());
        assert!(matches!(
            v.check_claims(&claims(), now()).unwrap_err(),
            OidcError::MissingRole { .. }
        ));
    }
}
