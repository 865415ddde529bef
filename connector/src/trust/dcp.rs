//! DCP in the connector: the glue between `caap-identity`'s pure DCP functions and HTTP, the
//! database and the clock.
//!
//! * [`Trust`]: who we are (DID, keys, our DID document) and how we check others (resolver,
//!   status lists, replay cache, trusted issuers, the credential types we ask for).
//! * [`DcpAuthenticator`]: the receiver's side of a DSP request: verify the caller's self-issued
//!   token, query the caller's credential service with our own token carrying the caller's access
//!   token, verify the presentation and every credential, and hand the claims to policy.
//! * [`super::fetch::HttpFetch`]: the resolver's and status lists' HTTP GET (no redirects, size limit).
//! * The credential service (presentation queries, credential storage) is in [`super::credentials`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use caap_identity::auth::BoxFuture;
use caap_identity::dcp::{
    self, DcpOutbound, PresentationQueryMessage, PresentationResponseMessage, Refusal, ReplayCache,
    Scope, TokenRules, VerificationContext, VerifierPolicy,
};
use caap_identity::did::DidWebOptions;
use caap_identity::did_doc::{DidDocument, Service};
use caap_identity::keys::{KeySet, RetiredKey};
use caap_identity::resolve::{DidResolve, DidResolver, ResolverOptions};
use caap_identity::status::{HttpStatusLists, StatusListSource};
use caap_identity::trust::TrustedIssuers;
use caap_identity::{AuthFailure, DspAuthenticator, ParticipantKey, VerifiedCaller};
use chrono::{DateTime, Duration, Utc};

use super::fetch::HttpFetch;
use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;
use crate::store::identity::PresentedCredential;

/// The path of the credential service under the DSP listener's root.
pub const CREDENTIAL_SERVICE_PATH: &str = "/dcp";
/// Where a trust anchor's issuer service lives under the DSP listener's root.
pub const ISSUER_PATH: &str = "/issuer";
/// The issuer service base URL of an authority at `public_url`.
pub fn issuer_url(public_url: &str) -> String {
    format!("{public_url}{ISSUER_PATH}")
}

/// How long our self-issued tokens, access tokens and presentations live.
pub const TOKEN_LIFETIME_SECS: i64 = 300;
/// At most this many verified presentations are kept (see [`dcp::VerifiedPresentations`]).
const MAX_VERIFIED_PRESENTATIONS: usize = 10_000;
/// The file next to the key file that lists retired keys still published.
pub const RETIRED_KEYS_FILE: &str = "retired-keys.json";

/// The connector clock for `caap-identity`, which reads none itself.
#[derive(Debug, Clone)]
pub struct ClockNow(pub Arc<dyn Clock>);

impl dcp::Now for ClockNow {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
}

/// `jti` bookkeeping: in memory on SQLite (one process), in the database on PostgreSQL, where
/// replicas must see each other's tokens.
#[derive(Debug)]
pub enum Replay {
    /// One process.
    Memory(dcp::InMemoryReplayCache),
    /// Shared by replicas.
    Database(Store),
}

impl ReplayCache for Replay {
    fn first_use<'a>(
        &'a self,
        key: &'a str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, String>> {
        match self {
            Replay::Memory(m) => m.first_use(key, expires_at, now),
            Replay::Database(store) => Box::pin(async move {
                store
                    .first_jti_use(key, expires_at, now)
                    .await
                    .map_err(|e| e.to_string())
            }),
        }
    }
}

/// Why a DCP endpoint (credential service, issuer service) refuses a request. The HTTP layer maps
/// it to a status and a DCP error body; reasons for refused tokens go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum DcpError {
    /// A token was refused (401), or could not be checked (503).
    #[error("{0}")]
    Refused(Refusal),
    /// The body is not what the endpoint takes (400, or 501 for a presentation definition).
    #[error("{message}")]
    BadRequest {
        /// 400 or 501.
        status: u16,
        /// A short code for the body.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Nothing of that name for this caller, or not an issuer (404).
    #[error("{0}")]
    NotFound(String),
    /// Something broke on our side (500; the cause is logged, not sent).
    #[error("{0}")]
    Internal(String),
}

impl From<Refusal> for DcpError {
    fn from(r: Refusal) -> Self {
        DcpError::Refused(r)
    }
}

impl DcpError {
    /// A 400 with `code`.
    pub fn bad(code: &'static str, message: impl std::fmt::Display) -> Self {
        DcpError::BadRequest {
            status: 400,
            code,
            message: message.to_string(),
        }
    }
}

/// Why the identity could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TrustError(pub String);

/// Who we are and how we check others.
#[derive(Debug)]
pub struct Trust {
    /// Our DID.
    pub did: String,
    /// How DSP callers are authenticated (`dsp.auth.mode`).
    pub auth_mode: crate::config::AuthMode,
    /// Our keys: the signing key (its id is `<did>#key-N`) and the retired ones still published.
    pub keys: KeySet,
    /// Our DID document.
    pub document: Arc<DidDocument>,
    /// DID resolution (ours answered locally).
    pub resolver: Arc<dyn DidResolve>,
    /// Status lists.
    pub status_lists: Arc<dyn StatusListSource>,
    /// Seen jtis.
    pub replay: Arc<Replay>,
    /// What credentials we accept.
    pub policy: VerifierPolicy,
    /// Credential types every caller must present.
    pub required: Vec<String>,
    /// The scopes we ask callers' credential services for.
    pub query_scopes: Vec<String>,
    /// The scopes our access tokens grant to verifiers.
    pub disclosed_scopes: Vec<String>,
    /// The credential service's base URL.
    pub credential_service: String,
    /// HTTP for presentation queries.
    pub http: crate::outbound::Http,
    /// HTTP towards hosts a caller names (its credential service): public addresses only outside development,
    /// short timeouts.
    named_by_callers: HttpFetch,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The store (held credentials, verified callers).
    pub store: Store,
    /// What each caller presented at its last verification (to write only changes).
    seen: Mutex<HashMap<String, Vec<String>>>,
    /// Presentations verified, per caller and access token, within their validity and the status-list
    /// refresh interval: a caller's next messages skip the presentation query.
    presented: dcp::VerifiedPresentations,
    /// Reasons issuers gave for rejecting our credential requests, by our request id.
    rejections: Mutex<HashMap<String, String>>,
}

/// The retired keys listed next to the key file (none when the file does not exist).
pub fn read_retired_keys(config: &Config) -> Result<Vec<RetiredKey>, TrustError> {
    let path = retired_keys_path(config);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            TrustError(format!(
                "{} is not a list of retired keys: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(TrustError(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Where the retired keys are listed.
pub fn retired_keys_path(config: &Config) -> std::path::PathBuf {
    config
        .key_path()
        .parent()
        .map(|p| p.join(RETIRED_KEYS_FILE))
        .unwrap_or_else(|| RETIRED_KEYS_FILE.into())
}

/// `<did>#<fragment>` for a key id written as `<anything>#<fragment>` or `<fragment>`.
pub fn kid_for_did(kid: &str, did: &str) -> String {
    let fragment = kid.rsplit_once('#').map_or(kid, |(_, f)| f);
    let fragment = if fragment.is_empty() {
        "key-1"
    } else {
        fragment
    };
    format!("{did}#{fragment}")
}

/// The key under the id `<did>#<fragment>` (the key file may have been written before the DID was
/// known, e.g. with a port picked at start).
pub fn key_for_did(key: &ParticipantKey, did: &str) -> ParticipantKey {
    let kid = kid_for_did(key.key_id().unwrap_or_default(), did);
    if key.key_id() == Some(kid.as_str()) {
        key.clone()
    } else {
        key.with_key_id(&kid)
    }
}

fn scopes_for(types: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in types {
        let s = Scope::for_type(t);
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

impl Trust {
    /// Sets up our identity and the verifier from the configuration.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &Config,
        did: &str,
        public_url: &str,
        key: ParticipantKey,
        clock: Arc<dyn Clock>,
        store: Store,
        http: crate::outbound::Http,
        fetch: HttpFetch,
    ) -> Result<Trust, TrustError> {
        let now = clock.now();
        let retired: Vec<RetiredKey> = read_retired_keys(config)?
            .into_iter()
            .filter(|r| r.keep_until > now)
            .map(|r| RetiredKey {
                kid: kid_for_did(&r.kid, did),
                ..r
            })
            .collect();
        let keys = KeySet::with_retired(key_for_did(&key, did), retired);
        let published = keys
            .published()
            .map_err(|e| TrustError(format!("the key cannot be published: {e}")))?;
        let credential_service = format!("{public_url}{CREDENTIAL_SERVICE_PATH}");
        let mut services = vec![Service::credential_service(did, &credential_service)];
        if config.authority.enabled {
            services.push(Service::issuer_service(did, &issuer_url(public_url)));
        }
        let document = DidDocument::for_participant(did, &published, services);
        let options = ResolverOptions {
            did_web: DidWebOptions {
                insecure_http_on_loopback: config.identity.insecure_did_web_over_http,
            },
            ttl: Duration::seconds(
                i64::try_from(config.identity.did_cache_secs).unwrap_or(i64::MAX / 2),
            ),
            ..ResolverOptions::default()
        };
        let named_by_callers = fetch.clone();
        let resolver: Arc<dyn DidResolve> =
            Arc::new(DidResolver::new(fetch.clone(), options).with_local(document.clone()));
        let status_lists: Arc<dyn StatusListSource> = Arc::new(HttpStatusLists::new(
            fetch,
            resolver.clone(),
            Duration::seconds(
                i64::try_from(config.identity.status_list_cache_secs).unwrap_or(i64::MAX / 2),
            ),
        ));
        let mut trusted = TrustedIssuers::new();
        for t in &config.identity.trusted_issuers {
            for kind in &t.types {
                trusted = trusted.trust(kind, &t.issuer);
            }
        }
        let mut schemas = caap_identity::trust::CredentialSchemas::new();
        for (id, schema) in caap_identity::schemas::builtin_schemas() {
            schemas = schemas
                .with(&id, &schema)
                .map_err(|e| TrustError(format!("built-in schema {id}: {e}")))?;
        }
        for (i, s) in config.identity.credential_schemas.iter().enumerate() {
            let path = config.data_path(&s.file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                TrustError(format!(
                    "identity.credential_schemas[{i}].file: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            let schema: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                TrustError(format!(
                    "identity.credential_schemas[{i}].file: {} is not JSON: {e}",
                    path.display()
                ))
            })?;
            schemas = schemas
                .with(&s.id, &schema)
                .map_err(|e| TrustError(format!("identity.credential_schemas[{i}]: {e}")))?;
        }
        let mut policy = VerifierPolicy::new(trusted);
        policy.schemas = schemas;
        let replay = Arc::new(if store.backend() == "postgres" {
            Replay::Database(store.clone())
        } else {
            Replay::Memory(dcp::InMemoryReplayCache::default())
        });
        let mut asked = config.identity.required_credentials.clone();
        asked.extend(config.identity.optional_credentials.iter().cloned());
        Ok(Trust {
            auth_mode: config.dsp.auth.mode,
            did: did.to_owned(),
            keys,
            document: Arc::new(document),
            resolver,
            status_lists,
            replay,
            policy,
            required: config.identity.required_credentials.clone(),
            query_scopes: scopes_for(&asked),
            disclosed_scopes: scopes_for(&config.identity.disclosed_credentials),
            credential_service,
            http,
            named_by_callers,
            clock,
            store,
            seen: Mutex::new(HashMap::new()),
            presented: dcp::VerifiedPresentations::new(
                Duration::seconds(
                    i64::try_from(config.identity.status_list_cache_secs).unwrap_or(i64::MAX / 2),
                ),
                MAX_VERIFIED_PRESENTATIONS,
            ),
            rejections: Mutex::new(HashMap::new()),
        })
    }

    /// Remembers why an issuer rejected our request `holder_pid`.
    pub fn note_rejection(&self, holder_pid: &str, reason: String) {
        let mut r = self.rejections.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() > 1000 {
            r.clear();
        }
        r.insert(holder_pid.to_owned(), reason);
    }

    /// Why an issuer rejected our request `holder_pid`, if it said.
    pub fn rejection(&self, holder_pid: &str) -> Option<String> {
        self.rejections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(holder_pid)
            .cloned()
    }

    /// The signing key.
    pub fn key(&self) -> &ParticipantKey {
        self.keys.current()
    }

    /// Our outbound credentials: a self-issued token per request, granting verifiers the
    /// disclosed scopes of our credential service.
    pub fn outbound(&self) -> DcpOutbound {
        DcpOutbound::new(
            &self.did,
            Arc::new(self.key().clone()),
            Arc::new(ClockNow(self.clock.clone())),
            self.disclosed_scopes.clone(),
            Duration::seconds(TOKEN_LIFETIME_SECS),
        )
    }

    /// Verifies the caller of a DSP request (the whole DCP verifier flow).
    pub async fn verify_caller(
        &self,
        authorization: Option<&str>,
    ) -> Result<VerifiedCaller, Refusal> {
        let now = self.clock.now();
        let rules = TokenRules::new(&self.did);
        let token = dcp::verify_self_issued_token(
            authorization,
            &rules,
            now,
            self.resolver.as_ref(),
            self.replay.as_ref(),
        )
        .await?;
        let access = token
            .access_token
            .clone()
            .ok_or(Refusal::MissingTokenClaim)?;
        if let Some(caller) = self.presented.get(&token.issuer, &access, now) {
            return Ok(caller);
        }
        let cs = token
            .did_document
            .credential_service_url()
            .ok_or_else(|| Refusal::NoCredentialService(token.issuer.clone()))?
            .to_owned();
        let ours = dcp::create_self_issued_token(
            &self.did,
            self.key(),
            &token.issuer,
            Some(&access),
            now,
            Duration::seconds(TOKEN_LIFETIME_SECS),
        )
        .map_err(|e| {
            Refusal::CredentialServiceUnavailable(format!("cannot sign our token: {e}"))
        })?;
        let url = dcp::presentation_query_url(&cs);
        let client = self
            .named_by_callers
            .client_for(&url)
            .map_err(|e| Refusal::CredentialServiceUnavailable(format!("{url}: {e}")))?;
        let res = client
            .post(&url)
            .bearer_auth(ours.expose())
            .json(&PresentationQueryMessage::for_scopes(
                self.query_scopes.clone(),
            ))
            .send()
            .await
            .map_err(|e| {
                Refusal::CredentialServiceUnavailable(format!(
                    "{url}: {}",
                    crate::outbound::describe_reqwest(&e)
                ))
            })?;
        let status = res.status();
        let body = res.bytes().await.map_err(|e| {
            Refusal::CredentialServiceUnavailable(format!("{url}: reading the answer: {e}"))
        })?;
        if status.is_server_error() {
            return Err(Refusal::CredentialServiceUnavailable(format!(
                "{url} answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(Refusal::PresentationInvalid(format!(
                "the credential service {url} refused our query with {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            )));
        }
        let response: PresentationResponseMessage = serde_json::from_slice(&body).map_err(|e| {
            Refusal::PresentationInvalid(format!(
                "the credential service's answer is not a PresentationResponseMessage: {e}"
            ))
        })?;
        let ctx = VerificationContext {
            resolver: self.resolver.as_ref(),
            status_lists: self.status_lists.as_ref(),
            now,
        };
        let verified = dcp::verify_presentation_response(
            &response,
            &token.issuer,
            &self.did,
            &self.required,
            &self.policy,
            &ctx,
        )
        .await?;
        self.presented.put(&token.issuer, &access, &verified, now);
        self.remember(&verified.participant_id, &verified.credentials, now)
            .await;
        Ok(verified.into_verified_caller())
    }

    /// Checks that `signer_jwk` (with its `kid`) is an assertion key of `did`'s DID document: an
    /// agreement signed by the provider's DID, not just by some key.
    pub async fn check_signer(
        &self,
        did: &str,
        signer_jwk: &serde_json::Value,
    ) -> Result<(), String> {
        let doc = self
            .resolver
            .resolve(did, self.clock.now())
            .await
            .map_err(|e| format!("cannot resolve the signer's DID {did}: {e}"))?;
        let kid = signer_jwk.get("kid").and_then(serde_json::Value::as_str);
        let key = doc
            .verification_key(
                kid,
                caap_identity::did_doc::Relationship::AssertionMethod,
                caap_identity::did_doc::KeyUsePolicy::Strict,
            )
            .map_err(|e| {
                format!("the agreement's signing key is not an assertion key of {did}: {e}")
            })?;
        let same = ["kty", "crv", "x", "y"]
            .iter()
            .all(|m| key.jwk.get(*m) == signer_jwk.get(*m));
        if same {
            Ok(())
        } else {
            Err(format!(
                "the agreement's signing key differs from {} in the DID document of {did}",
                key.id
            ))
        }
    }

    /// Records what a caller presented (for the revocation monitor) when it changed.
    async fn remember(
        &self,
        participant: &str,
        credentials: &[caap_identity::vc::Credential],
        now: DateTime<Utc>,
    ) {
        let presented: Vec<PresentedCredential> = credentials
            .iter()
            .enumerate()
            .map(|(i, c)| PresentedCredential {
                id: c.id.clone().unwrap_or_else(|| format!("#{i}")),
                types: c.specific_types().map(str::to_owned).collect(),
                issuer: c.issuer.clone(),
                valid_until: c.valid_until,
                status: c.status.clone(),
            })
            .collect();
        let ids: Vec<String> = presented.iter().map(|p| p.id.clone()).collect();
        {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.get(participant) == Some(&ids) {
                return;
            }
        }
        match self
            .store
            .put_verified_caller(participant, &presented, now)
            .await
        {
            Ok(()) => {
                self.seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(participant.to_owned(), ids);
            }
            Err(e) => {
                tracing::warn!(%participant, error = %e, "cannot record the caller's credentials")
            }
        }
    }

    /// Re-checks what a caller last presented: `Some(reason)` when a credential has since been
    /// revoked, suspended or has expired; `None` when all still hold, or when nothing is known.
    pub async fn lost_credentials(&self, participant: &str) -> Option<String> {
        let now = self.clock.now();
        let (presented, _) = match self.store.verified_caller(participant).await {
            Ok(Some(p)) => p,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(%participant, error = %e, "cannot read the caller's credentials");
                return None;
            }
        };
        for c in &presented {
            if let Some(until) = c.valid_until
                && until <= now
            {
                return Some(format!(
                    "the credential {} of {participant} expired at {until}",
                    c.id
                ));
            }
            for entry in &c.status {
                let list = match self
                    .status_lists
                    .status_list(&entry.status_list_credential, now)
                    .await
                {
                    Ok(list) => list,
                    Err(e) => {
                        tracing::warn!(credential = %c.id, error = %e, "status list unavailable; checked again later");
                        continue;
                    }
                };
                match caap_identity::status::check_status(entry, &list, &c.issuer) {
                    Ok(true)
                        if matches!(entry.status_purpose.as_str(), "revocation" | "suspension") =>
                    {
                        let what = if entry.status_purpose == "revocation" {
                            "revoked"
                        } else {
                            "suspended"
                        };
                        return Some(format!(
                            "the {} {} of {participant} was {what} by its issuer {}",
                            c.types.first().map(String::as_str).unwrap_or("credential"),
                            c.id,
                            c.issuer
                        ));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(credential = %c.id, error = %e, "status check failed; checked again later")
                    }
                }
            }
        }
        None
    }
}

/// The DCP [`DspAuthenticator`].
#[derive(Debug, Clone)]
pub struct DcpAuthenticator(pub Arc<Trust>, pub Arc<crate::metrics::Metrics>);

impl DspAuthenticator for DcpAuthenticator {
    fn authenticate<'a>(
        &'a self,
        authorization: Option<&'a str>,
    ) -> BoxFuture<'a, Result<VerifiedCaller, AuthFailure>> {
        Box::pin(async move {
            self.0.verify_caller(authorization).await.map_err(|r| {
                tracing::info!(code = r.code(), reason = %r, "DCP: caller refused");
                self.1.dcp_refusal(r.code());
                AuthFailure::from(r)
            })
        })
    }

    fn advertised_profile(&self) -> Option<(String, String, Vec<String>)> {
        Some((
            "DCP".into(),
            "1.0".into(),
            vec!["vc11-sl2021/jwt".into(), "vc20-bssl/jwt".into()],
        ))
    }
}
