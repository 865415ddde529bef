//! Typed configuration: a TOML file plus `CAAP_*` environment overrides, loaded once at start,
//! validated, and passed in (never a global). Unknown keys are refused by name.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use caap_identity::Secret;
use caap_identity::auth::StaticTokenEntry;
use serde::{Deserialize, Serialize};

mod federation;
mod keys;
mod open_data;

pub use federation::FederationConfig;
mod portal;

pub use keys::{ConfigKey, EnvKind};
pub use open_data::OpenDataConfig;
pub use portal::{PortalConfig, PortalOidcConfig};

/// The whole configuration of one connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Who this connector is.
    pub participant: ParticipantConfig,
    /// The Dataspace Protocol listener (reached by other connectors).
    #[serde(default)]
    pub dsp: DspConfig,
    /// The management API listener (reached by the city's own staff and tools).
    pub api: ApiConfig,
    /// Where state is kept.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Keys and identity files.
    #[serde(default)]
    pub identity: IdentityConfig,
    /// Request limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Contract negotiations: retries, leases, agreement signatures.
    #[serde(default)]
    pub negotiation: NegotiationConfig,
    /// OAuth2 client credentials for protected data sources, referred to by name from assets'
    /// `dataAddress.credentials`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_credentials: Vec<SourceCredential>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Open data: public downloads and the DCAT-AP feed.
    #[serde(default)]
    pub open_data: OpenDataConfig,
    /// HTTPS on the DSP listener and extra trust roots for requests to other connectors.
    #[serde(default, skip_serializing_if = "TlsConfig::is_empty")]
    pub tls: TlsConfig,
    /// The built-in sensor simulator (demo and tests).
    #[serde(default)]
    pub simulator: SimulatorConfig,
    /// The trust anchor role: this connector issues and revokes the federation's credentials.
    #[serde(default, skip_serializing_if = "AuthorityConfig::is_disabled")]
    pub authority: AuthorityConfig,
    /// Citizen consent (OASC MIM4): pseudonyms, withdrawal notices, external consent sources.
    #[serde(default)]
    pub consent: ConsentConfig,
    /// The federation's member directory and the catalog crawler.
    #[serde(default, skip_serializing_if = "FederationConfig::is_default")]
    pub federation: FederationConfig,
    /// The citizen portal (consent), on its own listener.
    #[serde(default, skip_serializing_if = "PortalConfig::is_default")]
    pub portal: PortalConfig,
    /// Directory for the SQLite database, keys and files; relative paths elsewhere in this file are
    /// resolved against the directory the config file is in.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
}

/// Who this connector is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantConfig {
    /// Display name, e.g. `Malmö stad`.
    pub name: String,
    /// The public root URL other connectors reach the DSP listener at, e.g.
    /// `https://caap.malmo.se`. Defaults to the DSP listener's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Participant id (a DID). Defaults to the `did:web` of `public_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// The DSP listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DspConfig {
    /// Address to listen on. Port 0 picks a free port.
    #[serde(default = "default_dsp_bind")]
    pub bind: SocketAddr,
    /// Path of the DSP 2025-1 base under the root, e.g. `/dsp`.
    #[serde(default = "default_dsp_path")]
    pub path: String,
    /// Worker threads (0: one per core, at most 4).
    #[serde(default)]
    pub workers: usize,
    /// How DSP callers are authenticated.
    #[serde(default)]
    pub auth: DspAuthConfig,
}

/// How DSP callers are authenticated (`dsp.auth.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(into = "String")]
pub enum AuthMode {
    /// `dcp`: DIDs, self-issued tokens and verifiable credentials.
    #[default]
    Dcp,
    /// `static-token`: a token table, for the DSP TCK and tests only.
    StaticToken,
}

impl AuthMode {
    /// The name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Dcp => "dcp",
            AuthMode::StaticToken => "static-token",
        }
    }
}

impl std::fmt::Display for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for AuthMode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "dcp" => Ok(AuthMode::Dcp),
            "static-token" => Ok(AuthMode::StaticToken),
            other => Err(format!(
                "`{other}` is not supported; use dcp (the default) or static-token"
            )),
        }
    }
}

/// Read as an enum (so the key walk of `config::keys` sees its variants) from the mode's name, with the
/// message of [`AuthMode::try_from`] for an unknown one.
impl<'de> Deserialize<'de> for AuthMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ModeVisitor;
        impl<'de> serde::de::Visitor<'de> for ModeVisitor {
            type Value = AuthMode;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("dcp or static-token")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<AuthMode, E> {
                AuthMode::try_from(s.to_owned()).map_err(E::custom)
            }
            fn visit_enum<A: serde::de::EnumAccess<'de>>(
                self,
                data: A,
            ) -> Result<AuthMode, A::Error> {
                use serde::de::VariantAccess;
                let (name, variant): (String, _) = data.variant()?;
                variant.unit_variant()?;
                AuthMode::try_from(name).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_enum("AuthMode", &["dcp", "static-token"], ModeVisitor)
    }
}

impl From<AuthMode> for String {
    fn from(m: AuthMode) -> String {
        m.as_str().to_owned()
    }
}

/// DSP authentication: `dcp` (the default: DIDs, self-issued tokens and verifiable credentials), or
/// `static-token` (a token table, for the DSP TCK and tests only: refused unless the DSP listener
/// binds a loopback address).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DspAuthConfig {
    /// `dcp` or `static-token`.
    #[serde(default)]
    pub mode: AuthMode,
    /// Accepted tokens and the participants they stand for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<StaticTokenEntry>,
    /// The token this connector presents to other connectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_token: Option<Secret>,
}

/// The management API listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on; keep it private. Port 0 picks a free port.
    #[serde(default = "default_api_bind")]
    pub bind: SocketAddr,
    /// The bearer token administrators present (`Authorization: Bearer …`). At least 16 bytes.
    pub admin_token: Secret,
    /// Also accept JWT access tokens from an OpenID Connect provider (besides the admin token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<ApiOidcConfig>,
    /// Worker threads (0: one per core, at most 4). The federated search's work runs on them.
    #[serde(default)]
    pub workers: usize,
}

/// Bearer JWT access tokens from the city's OpenID Connect provider on the management API
/// (`[api.oidc]`). The provider's keys are found through its discovery document
/// (`{issuer}/.well-known/openid-configuration`, `jwks_uri`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiOidcConfig {
    /// The provider's issuer URL, exactly as its tokens carry it in `iss` (https, or http on loopback).
    pub issuer: String,
    /// The audience the management API's tokens must carry in `aud` (e.g. its resource indicator).
    pub audience: String,
    /// A scope the token's `scope` claim (space-separated) must contain, e.g. `caap:admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_scope: Option<String>,
    /// A role the claim `roles_claim` (an array or a space-separated string) must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_role: Option<String>,
    /// The claim holding the roles; dots reach into objects (`realm_access.roles`).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[serde(default = "default_oidc_leeway_secs")]
    pub leeway_secs: u64,
    /// How long the provider's key set is used before it is fetched again, in seconds (an unknown
    /// `kid` fetches it at once, at most every 10 seconds).
    #[serde(default = "default_jwks_cache_secs")]
    pub jwks_cache_secs: u64,
}

/// Where state is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (default: `caap.db` in the data directory) or `postgres://USER:PASS@HOST/DB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret>,
    /// Connection pool size.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// SQLite only: each pooled connection's page cache, in KiB (SQLite's `cache_size`). Reads it misses
    /// come from the operating system's file cache; the pool holds up to `max_connections` of these.
    #[serde(default = "default_sqlite_cache_kib")]
    pub sqlite_cache_kib: u32,
}

/// Identity: keys, credentials, and what callers must prove (DCP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The participant's private signing key (JWK), relative to the data directory.
    #[serde(default = "default_key_file")]
    pub key_file: PathBuf,
    /// Credential types every DSP caller must present (DCP scopes are asked for them).
    #[serde(default = "default_required_credentials")]
    pub required_credentials: Vec<String>,
    /// Credential types asked for as well but not required (their claims feed policies, e.g. the
    /// `role` or `municipalityCode` of a MunicipalityCredential).
    #[serde(default = "default_optional_credentials")]
    pub optional_credentials: Vec<String>,
    /// Credential types this connector lets verifiers read from its credential service.
    #[serde(default = "default_disclosed_credentials")]
    pub disclosed_credentials: Vec<String>,
    /// Issuers trusted for credentials: an issuer DID and the credential types it is trusted for
    /// (`["*"]`: every type).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_issuers: Vec<TrustedIssuerConfig>,
    /// Extra JSON Schemas for credential subjects (caap's own credential types have built-in
    /// ones): a credential naming one of these ids in `credentialSchema` must conform.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credential_schemas: Vec<CredentialSchemaConfig>,
    /// How long fetched DID documents are used before they are fetched again.
    #[serde(default = "default_did_cache_secs")]
    pub did_cache_secs: u64,
    /// How long a fetched status list is used before it is fetched again (how fast a revocation
    /// is noticed, at worst).
    #[serde(default = "default_status_list_cache_secs")]
    pub status_list_cache_secs: u64,
    /// DEVELOPMENT ONLY: resolve `did:web` DIDs of loopback hosts over plain `http://`. Logged
    /// loudly at start; never in a real data space.
    #[serde(default)]
    pub insecure_did_web_over_http: bool,
    /// Host names (or IP addresses) whose DID documents, status lists and credential services may be on
    /// loopback, private or link-local addresses: a data space on a private network. Other such hosts are
    /// refused (a DID or a credential names hosts of the caller's choosing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_private_hosts: Vec<String>,
}

/// Citizen consent (OASC MIM4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentConfig {
    /// The secret citizens' identifiers are hashed with (HMAC-SHA-256), relative to the data directory;
    /// created at the first start. Keep it with the database's backups: without it no citizen can be
    /// matched to their records again.
    #[serde(default = "default_subject_key_file")]
    pub subject_key_file: PathBuf,
    /// Where citizens withdraw consent, written into every consent record (ISO/IEC TS 27560 "withdrawal
    /// method"); the portal's URL. Default: the DSP listener's public URL + `/consent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawal_url: Option<String>,
    /// Seconds before the first retry of a withdrawal notice that could not be delivered; doubled after
    /// each failure up to `notice_max_backoff_secs`.
    #[serde(default = "default_notice_retry_secs")]
    pub notice_retry_secs: u64,
    /// The longest wait between two delivery attempts of a notice, in seconds.
    #[serde(default = "default_notice_max_backoff_secs")]
    pub notice_max_backoff_secs: u64,
    /// Attempts after which a notice is marked FAILED (the city sees it and can send it again).
    #[serde(default = "default_notice_max_attempts")]
    pub notice_max_attempts: u32,
    /// Seconds after which the data plane releases no consent-based record when it could not read other
    /// replicas' consent changes (the index is refreshed every second).
    #[serde(default = "default_consent_stale_secs")]
    pub stale_after_secs: u64,
    /// Accept MyData-style consent records signed by an external consent operator.
    #[serde(default, skip_serializing_if = "MyDataConfig::is_disabled")]
    pub mydata: MyDataConfig,
}

impl Default for ConsentConfig {
    fn default() -> Self {
        ConsentConfig {
            subject_key_file: default_subject_key_file(),
            withdrawal_url: None,
            notice_retry_secs: default_notice_retry_secs(),
            notice_max_backoff_secs: default_notice_max_backoff_secs(),
            notice_max_attempts: default_notice_max_attempts(),
            stale_after_secs: default_consent_stale_secs(),
            mydata: MyDataConfig::default(),
        }
    }
}

/// MyData-style consent from an external operator, as an alternative source of consent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MyDataConfig {
    /// Accept imported consent records (`POST /api/v1/consents/import`).
    #[serde(default)]
    pub enabled: bool,
    /// The operators' public keys (JWK files, relative to the data directory) a record must be signed with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_keys: Vec<PathBuf>,
}

impl MyDataConfig {
    /// True when imports are off.
    pub fn is_disabled(&self) -> bool {
        !self.enabled
    }
}

fn default_subject_key_file() -> PathBuf {
    PathBuf::from("consent-subject.key")
}
fn default_notice_retry_secs() -> u64 {
    2
}
fn default_notice_max_backoff_secs() -> u64 {
    300
}
fn default_notice_max_attempts() -> u32 {
    40
}
fn default_consent_stale_secs() -> u64 {
    5
}

/// The trust anchor role (`caap authority init` writes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityConfig {
    /// Serve the issuer service, the status list and the member register.
    #[serde(default)]
    pub enabled: bool,
    /// How long issued credentials are valid, in days.
    #[serde(default = "default_credential_validity_days")]
    pub credential_validity_days: u32,
    /// Entries in the revocation list (at least 131072, so a list does not reveal how many
    /// credentials exist).
    #[serde(default = "default_status_list_size")]
    pub status_list_size: usize,
}

impl AuthorityConfig {
    /// True when the role is off (the section is then left out of written configs).
    pub fn is_disabled(&self) -> bool {
        !self.enabled
    }
}

impl Default for AuthorityConfig {
    fn default() -> Self {
        AuthorityConfig {
            enabled: false,
            credential_validity_days: default_credential_validity_days(),
            status_list_size: default_status_list_size(),
        }
    }
}

fn default_credential_validity_days() -> u32 {
    365
}
fn default_status_list_size() -> usize {
    131_072
}

/// A credential schema from a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialSchemaConfig {
    /// The schema id credentials name in `credentialSchema.id`.
    pub id: String,
    /// The JSON Schema file, relative to the data directory.
    pub file: PathBuf,
}

/// An issuer trusted for some credential types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerConfig {
    /// The issuer's DID, e.g. the federation authority's `did:web`.
    pub issuer: String,
    /// Credential types it is trusted for (`*`: all).
    #[serde(default = "default_all_types")]
    pub types: Vec<String>,
}

/// Request limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Timeout of requests to other connectors, in seconds (and how long a data flow may stay silent).
    #[serde(default = "default_outbound_timeout")]
    pub outbound_timeout_secs: u64,
    /// How long one attempt at a DSP message, a DID document or a status list may take, in seconds: a peer
    /// that accepts and never answers is given up on after `negotiation.max_attempts` of them.
    #[serde(default = "default_attempt_timeout")]
    pub attempt_timeout_secs: u64,
    /// How long connecting to another host may take, in seconds (every outbound call).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// How long a failed DID document or status-list fetch is remembered (answered again without a
    /// request), in seconds.
    #[serde(default = "default_failure_cache_secs")]
    pub failure_cache_secs: u64,
    /// How long reading a request body may take, in seconds (a slower client gets 408).
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout_secs: u64,
    /// Requests in progress at once from one client address, per listener (more get 429 at once,
    /// before their body is read).
    #[serde(default = "default_max_requests_per_address")]
    pub max_requests_per_address: usize,
}

/// OAuth2 client credentials (RFC 6749 §4.4) for a protected data source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceCredential {
    /// The name assets use (`dataAddress.credentials`).
    pub name: String,
    /// The authorization server's token endpoint.
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// The client secret (never logged): the value, `{ env = "NAME" }` or `{ file = "PATH" }`.
    pub client_secret: SecretValue,
    /// Scopes to ask for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

/// A secret of the configuration: written in it, or read by the connector when it needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SecretValue {
    /// `{ env = "NAME" }`: an environment variable of the connector process.
    Env {
        /// The variable.
        env: String,
    },
    /// `{ file = "PATH" }`: a file's content, trimmed (an absolute path, or one relative to the data
    /// directory; no `..`).
    File {
        /// The file.
        file: PathBuf,
    },
    /// The value itself.
    Value(Secret),
}

impl SecretValue {
    /// The secret, read now. The error names the variable or file (for the log, never for a peer).
    pub fn resolve(&self, data_dir: &Path) -> Result<Secret, String> {
        match self {
            SecretValue::Value(s) => Ok(s.clone()),
            SecretValue::Env { env } => std::env::var(env)
                .map(Secret::new)
                .map_err(|_| format!("the environment variable {env} is not set")),
            SecretValue::File { file } => {
                caap_catalog::reference::check_file(file)?;
                std::fs::read_to_string(data_dir.join(file))
                    .map(|s| Secret::new(s.trim()))
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))
            }
        }
    }
}

/// How negotiations send their messages: retries with exponential back-off, leases between replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NegotiationConfig {
    /// Attempts at one message before the negotiation is terminated with the reason (at least 1).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The first retry waits this long; each further one twice as long (with jitter).
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// No retry waits longer than this.
    #[serde(default = "default_retry_max_secs")]
    pub retry_max_secs: u64,
    /// Messages sent at the same time.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// How often the processor looks for work another replica left (new work wakes it at once).
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// Refuse agreements without a valid provider signature (consumer side).
    #[serde(default = "default_true")]
    pub require_signed_agreements: bool,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `caap_connector=debug,info`.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// `text` or `json`.
    #[serde(default = "default_log_format")]
    pub format: String,
}

/// HTTPS. With `cert_file` and `key_file` the DSP listener (protocol and data plane) serves HTTPS;
/// `ca_files` are trusted, besides the system's roots, on every request to another connector or
/// source. Plain HTTP stays available when no certificate is configured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The DSP listener's certificate (PEM, leaf first, then any intermediates), relative to the
    /// data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM), relative to the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Extra trust roots (PEM files, each may hold several certificates), relative to the data
    /// directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_files: Vec<PathBuf>,
}

impl TlsConfig {
    /// Nothing configured.
    pub fn is_empty(&self) -> bool {
        self.cert_file.is_none() && self.key_file.is_none() && self.ca_files.is_empty()
    }
    /// The DSP listener serves HTTPS.
    pub fn serves_https(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }
}

/// The built-in sensor simulator, mounted under `/sim` on the DSP listener. Off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Serve the simulator.
    #[serde(default)]
    pub enabled: bool,
    /// One reading per station every this many milliseconds (streams and the `dateObserved` step).
    #[serde(default = "default_sim_interval_ms")]
    pub interval_ms: u64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            enabled: false,
            interval_ms: default_sim_interval_ms(),
        }
    }
}

fn default_sim_interval_ms() -> u64 {
    1000
}
fn default_data_dir() -> PathBuf {
    PathBuf::from(".")
}
fn default_dsp_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8181))
}
fn default_api_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8182))
}
fn default_dsp_path() -> String {
    "/dsp".into()
}
fn default_required_credentials() -> Vec<String> {
    vec!["MembershipCredential".into()]
}
fn default_optional_credentials() -> Vec<String> {
    vec!["MunicipalityCredential".into(), "SupplierCredential".into()]
}
fn default_disclosed_credentials() -> Vec<String> {
    vec![
        "MembershipCredential".into(),
        "MunicipalityCredential".into(),
        "SupplierCredential".into(),
    ]
}
fn default_all_types() -> Vec<String> {
    vec!["*".into()]
}
fn default_roles_claim() -> String {
    "roles".into()
}
fn default_oidc_leeway_secs() -> u64 {
    30
}
fn default_jwks_cache_secs() -> u64 {
    300
}
fn default_did_cache_secs() -> u64 {
    300
}
fn default_status_list_cache_secs() -> u64 {
    60
}
fn default_max_connections() -> u32 {
    8
}
fn default_sqlite_cache_kib() -> u32 {
    crate::store::DEFAULT_SQLITE_CACHE_KIB
}
fn default_key_file() -> PathBuf {
    PathBuf::from("keys/participant.jwk")
}
fn default_max_body() -> usize {
    1024 * 1024
}
fn default_outbound_timeout() -> u64 {
    30
}
fn default_attempt_timeout() -> u64 {
    5
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_failure_cache_secs() -> u64 {
    10
}
fn default_body_read_timeout() -> u64 {
    10
}
fn default_max_requests_per_address() -> usize {
    128
}
fn default_max_attempts() -> u32 {
    8
}
fn default_retry_base_ms() -> u64 {
    250
}
fn default_retry_max_secs() -> u64 {
    60
}
fn default_concurrency() -> usize {
    64
}
fn default_poll_ms() -> u64 {
    1000
}
fn default_true() -> bool {
    true
}
fn default_log_level() -> String {
    "info".into()
}
fn default_log_format() -> String {
    "text".into()
}

impl Default for DspConfig {
    fn default() -> Self {
        DspConfig {
            bind: default_dsp_bind(),
            path: default_dsp_path(),
            workers: 0,
            auth: DspAuthConfig::default(),
        }
    }
}
impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: default_max_connections(),
            sqlite_cache_kib: default_sqlite_cache_kib(),
        }
    }
}
impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            key_file: default_key_file(),
            required_credentials: default_required_credentials(),
            optional_credentials: default_optional_credentials(),
            disclosed_credentials: default_disclosed_credentials(),
            trusted_issuers: Vec::new(),
            credential_schemas: Vec::new(),
            did_cache_secs: default_did_cache_secs(),
            status_list_cache_secs: default_status_list_cache_secs(),
            insecure_did_web_over_http: false,
            allowed_private_hosts: Vec::new(),
        }
    }
}
impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: default_max_body(),
            outbound_timeout_secs: default_outbound_timeout(),
            attempt_timeout_secs: default_attempt_timeout(),
            connect_timeout_secs: default_connect_timeout(),
            failure_cache_secs: default_failure_cache_secs(),
            body_read_timeout_secs: default_body_read_timeout(),
            max_requests_per_address: default_max_requests_per_address(),
        }
    }
}
impl Default for NegotiationConfig {
    fn default() -> Self {
        NegotiationConfig {
            max_attempts: default_max_attempts(),
            retry_base_ms: default_retry_base_ms(),
            retry_max_secs: default_retry_max_secs(),
            concurrency: default_concurrency(),
            poll_interval_ms: default_poll_ms(),
            require_signed_agreements: true,
        }
    }
}
impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_log_level(),
            format: default_log_format(),
        }
    }
}

/// A configuration problem, saying where and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed.
    #[error("{path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where and why.
        message: String,
    },
    /// A key is unknown, missing or has the wrong type.
    #[error("{origin}: key `{key}`: {message}")]
    Key {
        /// The file or environment.
        origin: String,
        /// The dotted key, e.g. `dsp.bind`.
        key: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// An environment variable is not understood.
    #[error("environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// `CAAP_*` variables that are not configuration keys (they steer tests and tools).
const ENV_NOT_CONFIG: &[&str] = &["CAAP_CONFIG", "CAAP_SHARED_DIR", "CAAP_REQUIRE_SHARED"];
/// `CAAP_OIDC_*` are the CLI's OAuth2 client credentials towards the management API.
const ENV_NOT_CONFIG_PREFIXES: &[&str] =
    &["CAAP_TEST_", "CAAP_BENCH_", "CAAP_ADMIN_", "CAAP_OIDC_"];

/// Every configuration key, each overridable by `CAAP_` + the dotted key in upper case with `.`
/// written as `_` (found from [`Config`]'s types, so no key is ever missing).
pub fn override_keys() -> Result<Vec<ConfigKey>, ConfigError> {
    keys::keys_of::<Config>().map_err(|e| ConfigError::Key {
        origin: "environment".into(),
        key: "(top level)".into(),
        message: format!("the configuration's keys could not be listed: {e}"),
    })
}

/// An environment variable's text as the TOML value of a key of `kind`.
fn env_value(name: &str, kind: EnvKind, value: String) -> Result<toml::Value, ConfigError> {
    let bad = |message: String| ConfigError::Env {
        name: name.to_owned(),
        message,
    };
    Ok(match kind {
        EnvKind::Text => toml::Value::String(value),
        EnvKind::Integer => toml::Value::Integer(
            value
                .trim()
                .parse()
                .map_err(|_| bad(format!("`{value}` is not a whole number")))?,
        ),
        EnvKind::Float => toml::Value::Float(
            value
                .trim()
                .parse()
                .map_err(|_| bad(format!("`{value}` is not a number")))?,
        ),
        EnvKind::Boolean => toml::Value::Boolean(match value.trim() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(bad(format!("`{value}` is not true or false"))),
        }),
        EnvKind::List => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| toml::Value::String(v.to_owned()))
                .collect(),
        ),
        EnvKind::Toml => format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .ok_or_else(|| {
                bad(format!(
                    "`{value}` is not a TOML value, e.g. [{{ issuer = \"did:web:trust.example\", types = [\"*\"] }}]"
                ))
            })?,
    })
}

impl Config {
    /// Loads `path`, applies `CAAP_*` overrides from `env`, and validates.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::parse(&text, &path.display().to_string(), env)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if config.data_dir.is_relative() {
            config.data_dir = base.join(&config.data_dir);
        }
        Ok(config)
    }

    /// Parses TOML text from `origin` (a file name, for messages) with environment overrides.
    pub fn parse(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: PathBuf::from(origin),
                    message: e.to_string(),
                })?;
        let mut from_env = BTreeSet::new();
        let mut known: Option<Vec<ConfigKey>> = None;
        for (name, value) in env {
            if !name.starts_with("CAAP_")
                || ENV_NOT_CONFIG.contains(&name.as_str())
                || ENV_NOT_CONFIG_PREFIXES.iter().any(|p| name.starts_with(p))
            {
                continue;
            }
            let known = match &mut known {
                Some(k) => k,
                None => known.insert(override_keys()?),
            };
            let Some(key) = known.iter().find(|k| k.env_name() == name) else {
                return Err(ConfigError::Env {
                    message: format!(
                        "not a caap setting; the known overrides are {}",
                        known
                            .iter()
                            .map(ConfigKey::env_name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    name,
                });
            };
            set_path(&mut table, &key.key, env_value(&name, key.kind, value)?);
            from_env.insert(key.key.clone());
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let origin = if from_env.iter().any(|k| {
                    key.strip_prefix(k.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
                }) {
                    "environment".to_owned()
                } else {
                    origin.to_owned()
                };
                ConfigError::Key {
                    origin,
                    key: if key == "." {
                        "(top level)".into()
                    } else {
                        key
                    },
                    message: e.into_inner().to_string(),
                }
            })?;
        config.validate(origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Key {
            origin: origin.to_owned(),
            key: key.to_owned(),
            message,
        };
        if self.participant.name.trim().is_empty() {
            return Err(bad("participant.name", "must not be empty".into()));
        }
        if let Some((key, message)) = self.open_data.problem() {
            return Err(bad(key, message));
        }
        if let Some(problem) = self.federation.problems().into_iter().next() {
            return Err(bad("federation", problem));
        }
        if let Some(url) = &self.participant.public_url {
            let mut errors = Vec::new();
            caap_catalog::asset::check_http_url("", url, &mut errors);
            if let Some(e) = errors.first() {
                return Err(bad("participant.public_url", e.message.clone()));
            }
        }
        if let Some(id) = &self.participant.id
            && !id.starts_with("did:")
            && !id.starts_with("urn:")
        {
            return Err(bad(
                "participant.id",
                format!(
                    "`{id}` is not a DID (did:web:…) or URN; leave it out to derive a did:web from public_url"
                ),
            ));
        }
        if !self.dsp.path.starts_with('/')
            || self.dsp.path.ends_with('/') && self.dsp.path.len() > 1
        {
            return Err(bad(
                "dsp.path",
                format!(
                    "`{}` must start with `/` and not end with one, e.g. /dsp",
                    self.dsp.path
                ),
            ));
        }
        match self.dsp.auth.mode {
            AuthMode::Dcp => {}
            AuthMode::StaticToken if self.dsp.bind.ip().is_loopback() => {}
            AuthMode::StaticToken => {
                return Err(bad(
                    "dsp.auth.mode",
                    format!(
                        "static-token is for the DSP TCK and tests only and needs a loopback dsp.bind, not {}; \
                         use dcp (the default)",
                        self.dsp.bind
                    ),
                ));
            }
        }
        if self.authority.status_list_size < 1024
            || !self.authority.status_list_size.is_multiple_of(8)
        {
            return Err(bad(
                "authority.status_list_size",
                "must be a multiple of 8 and at least 1024 (131072 keeps the list from revealing how many credentials exist)".into(),
            ));
        }
        if self.authority.credential_validity_days == 0 {
            return Err(bad(
                "authority.credential_validity_days",
                "must be at least 1".into(),
            ));
        }
        for (i, t) in self.identity.trusted_issuers.iter().enumerate() {
            if !t.issuer.starts_with("did:") {
                return Err(bad(
                    &format!("identity.trusted_issuers[{i}].issuer"),
                    format!("`{}` is not a DID", t.issuer),
                ));
            }
            if t.types.is_empty() {
                return Err(bad(
                    &format!("identity.trusted_issuers[{i}].types"),
                    "name at least one credential type, or \"*\" for all".into(),
                ));
            }
        }
        if self.identity.insecure_did_web_over_http && !self.dsp.bind.ip().is_loopback() {
            return Err(bad(
                "identity.insecure_did_web_over_http",
                format!(
                    "is a development setting for loopback only; dsp.bind is {}",
                    self.dsp.bind
                ),
            ));
        }
        for (i, t) in self.dsp.auth.tokens.iter().enumerate() {
            if t.token.expose().len() < 16 {
                return Err(bad(
                    &format!("dsp.auth.tokens[{i}].token"),
                    "must be at least 16 characters".into(),
                ));
            }
        }
        for (i, c) in self.source_credentials.iter().enumerate() {
            let mut errors = Vec::new();
            caap_catalog::asset::check_http_url("", &c.token_url, &mut errors);
            if let Some(e) = errors.first() {
                return Err(bad(
                    &format!("source_credentials[{i}].token_url"),
                    e.message.clone(),
                ));
            }
            if let SecretValue::File { file } = &c.client_secret
                && let Err(e) = caap_catalog::reference::check_file(file)
            {
                return Err(bad(&format!("source_credentials[{i}].client_secret"), e));
            }
            if self.source_credentials[..i]
                .iter()
                .any(|o| o.name == c.name)
            {
                return Err(bad(
                    &format!("source_credentials[{i}].name"),
                    format!("`{}` is used twice", c.name),
                ));
            }
        }
        if self.negotiation.max_attempts == 0 {
            return Err(bad("negotiation.max_attempts", "must be at least 1".into()));
        }
        if self.negotiation.concurrency == 0 {
            return Err(bad("negotiation.concurrency", "must be at least 1".into()));
        }
        if self.negotiation.poll_interval_ms < 10 {
            return Err(bad(
                "negotiation.poll_interval_ms",
                "must be at least 10 (new work wakes the processor at once anyway)".into(),
            ));
        }
        if self.api.admin_token.expose().len() < 16 {
            return Err(bad(
                "api.admin_token",
                "must be at least 16 characters; `caap init` generates one".into(),
            ));
        }
        if let Some(oidc) = &self.api.oidc {
            oidc.validate(&bad)?;
        }
        if self.dsp.bind == self.api.bind && self.dsp.bind.port() != 0 {
            return Err(bad(
                "api.bind",
                format!(
                    "{} is also dsp.bind; give the management API its own port",
                    self.api.bind
                ),
            ));
        }
        if let Some(url) = &self.database.url {
            let u = url.expose();
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://"))
            {
                return Err(bad(
                    "database.url",
                    "must start with sqlite: or postgres://".into(),
                ));
            }
        }
        if self.database.max_connections == 0 {
            return Err(bad("database.max_connections", "must be at least 1".into()));
        }
        if self.limits.max_body_bytes < 1024 {
            return Err(bad("limits.max_body_bytes", "must be at least 1024".into()));
        }
        for (key, value) in [
            (
                "limits.outbound_timeout_secs",
                self.limits.outbound_timeout_secs,
            ),
            (
                "limits.attempt_timeout_secs",
                self.limits.attempt_timeout_secs,
            ),
            (
                "limits.connect_timeout_secs",
                self.limits.connect_timeout_secs,
            ),
            (
                "limits.body_read_timeout_secs",
                self.limits.body_read_timeout_secs,
            ),
        ] {
            if value == 0 {
                return Err(bad(key, "must be at least 1".into()));
            }
        }
        if self.limits.max_requests_per_address == 0 {
            return Err(bad(
                "limits.max_requests_per_address",
                "must be at least 1".into(),
            ));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(bad("log.format", "must be text or json".into()));
        }
        match (&self.tls.cert_file, &self.tls.key_file) {
            (Some(_), None) => {
                return Err(bad(
                    "tls.key_file",
                    "is missing: tls.cert_file needs its private key (`caap init --tls` makes both)"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "tls.cert_file",
                    "is missing: tls.key_file needs its certificate (`caap init --tls` makes both)"
                        .into(),
                ));
            }
            _ => {}
        }
        if self.simulator.enabled && !cfg!(feature = "demo") {
            return Err(bad(
                "simulator.enabled",
                "this caap is a server build without the simulator (the `demo` feature); leave it off"
                    .into(),
            ));
        }
        if self.simulator.interval_ms < 10 {
            return Err(bad("simulator.interval_ms", "must be at least 10".into()));
        }
        self.portal.validate(
            &[("dsp.bind", self.dsp.bind), ("api.bind", self.api.bind)],
            &bad,
        )?;
        Ok(())
    }

    /// The database URL: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> Secret {
        self.database.url.clone().unwrap_or_else(|| {
            Secret::new(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("caap.db").display()
            ))
        })
    }

    /// The key file's path.
    pub fn key_path(&self) -> PathBuf {
        if self.identity.key_file.is_absolute() {
            self.identity.key_file.clone()
        } else {
            self.data_dir.join(&self.identity.key_file)
        }
    }

    /// A path from the config (e.g. `tls.cert_file`), resolved against the data directory.
    pub fn data_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.data_dir.join(path)
        }
    }

    /// The configuration as TOML, for `caap init`.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }
}

impl ApiOidcConfig {
    fn validate(&self, bad: &dyn Fn(&str, String) -> ConfigError) -> Result<(), ConfigError> {
        match url::Url::parse(&self.issuer) {
            Ok(u) if u.scheme() == "https" && u.host().is_some() => {}
            Ok(u) if u.scheme() == "http" && is_loopback_host(&u) => {}
            Ok(u) if u.scheme() == "http" => {
                return Err(bad(
                    "api.oidc.issuer",
                    format!(
                        "`{}` must be https (plain http only on loopback, for tests)",
                        self.issuer
                    ),
                ));
            }
            _ => {
                return Err(bad(
                    "api.oidc.issuer",
                    format!(
                        "`{}` is not an issuer URL, e.g. https://login.malmo.se/realms/city",
                        self.issuer
                    ),
                ));
            }
        }
        if self.issuer.contains(['?', '#']) {
            return Err(bad(
                "api.oidc.issuer",
                "must not have a query or fragment".into(),
            ));
        }
        if self.audience.trim().is_empty() {
            return Err(bad(
                "api.oidc.audience",
                "must not be empty: name the audience the provider puts in the management API's tokens"
                    .into(),
            ));
        }
        if let Some(scope) = &self.required_scope
            && (scope.is_empty() || scope.contains(char::is_whitespace))
        {
            return Err(bad(
                "api.oidc.required_scope",
                format!("`{scope}` must be one scope, without spaces"),
            ));
        }
        if self.required_role.as_deref().is_some_and(str::is_empty) {
            return Err(bad(
                "api.oidc.required_role",
                "must not be empty; leave it out to require no role".into(),
            ));
        }
        if self.roles_claim.is_empty() || self.roles_claim.split('.').any(str::is_empty) {
            return Err(bad(
                "api.oidc.roles_claim",
                format!(
                    "`{}` is not a claim name (dots reach into objects, e.g. realm_access.roles)",
                    self.roles_claim
                ),
            ));
        }
        if self.leeway_secs > 300 {
            return Err(bad(
                "api.oidc.leeway_secs",
                "must be at most 300 (five minutes of clock skew)".into(),
            ));
        }
        if self.jwks_cache_secs < 10 {
            return Err(bad(
                "api.oidc.jwks_cache_secs",
                "must be at least 10".into(),
            ));
        }
        Ok(())
    }
}

fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn set_path(table: &mut toml::Table, dotted: &str, value: toml::Value) {
    let mut parts = dotted.split('.').peekable();
    let mut current = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_owned(), value);
            return;
        }
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else {
            return;
        };
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_secret_is_a_value_a_variable_or_a_file() {
        #[derive(Deserialize)]
        struct One {
            client_secret: SecretValue,
        }
        let parse = |t: &str| toml::from_str::<One>(t).unwrap().client_secret;
        assert_eq!(
            parse("client_secret = \"s3cret\""),
            SecretValue::Value(Secret::new("s3cret"))
        );
        assert_eq!(
            parse("client_secret = { env = \"CAAP_TEST_NO_SUCH_VARIABLE\" }"),
            SecretValue::Env {
                env: "CAAP_TEST_NO_SUCH_VARIABLE".into()
            }
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("client-secret"), "from-a-file\n").unwrap();
        let file = parse("client_secret = { file = \"client-secret\" }");
        assert_eq!(file.resolve(dir.path()).unwrap().expose(), "from-a-file");
        let missing = parse("client_secret = { env = \"CAAP_TEST_NO_SUCH_VARIABLE\" }")
            .resolve(dir.path())
            .unwrap_err();
        assert!(missing.contains("CAAP_TEST_NO_SUCH_VARIABLE"), "{missing}");
        assert!(
            parse("client_secret = { file = \"../up\" }")
                .resolve(dir.path())
                .is_err()
        );
    }

    const MIN: &str = r#"
[participant]
name = "Lund"
[api]
admin_token = "0123456789abcdef0123"
"#;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::parse(
            text,
            "test.toml",
            env.iter().map(|(a, b)| (a.to_string(), b.to_string())),
        )
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MIN, &[]).unwrap();
        assert_eq!(c.dsp.bind.port(), 8181);
        assert_eq!(c.dsp.path, "/dsp");
        assert!(c.database_url().expose().starts_with("sqlite://"));
    }

    #[test]
    fn dcp_is_the_default_and_static_tokens_stay_on_loopback() {
        let c = parse(MIN, &[]).unwrap();
        assert_eq!(c.dsp.auth.mode, AuthMode::Dcp);
        assert_eq!(c.identity.required_credentials, ["MembershipCredential"]);
        assert!(!c.identity.insecure_did_web_over_http);
        parse(MIN, &[("CAAP_DSP_AUTH_MODE", "static-token")]).unwrap();
        let err = parse(
            MIN,
            &[
                ("CAAP_DSP_AUTH_MODE", "static-token"),
                ("CAAP_DSP_BIND", "0.0.0.0:8181"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("dsp.auth.mode") && err.contains("loopback"),
            "{err}"
        );
        let err = parse(
            MIN,
            &[
                ("CAAP_IDENTITY_INSECURE_DID_WEB_OVER_HTTP", "true"),
                ("CAAP_DSP_BIND", "10.0.0.5:8181"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("insecure_did_web_over_http"), "{err}");
        let err = parse(
            &format!("{MIN}\n[[identity.trusted_issuers]]\nissuer = \"authority.example\"\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("identity.trusted_issuers[0].issuer"), "{err}");
        let err = parse(
            &format!("{MIN}\n[authority]\nstatus_list_size = 100\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("authority.status_list_size"), "{err}");
        let err = parse(MIN, &[("CAAP_DSP_AUTH_MODE", "oauth")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("dcp") && err.contains("oauth"), "{err}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse(&format!("{MIN}\n[dsp]\nbnd = \"x\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("dsp") && err.contains("bnd"), "{err}");
        let err = parse(&format!("colour = 1\n{MIN}"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn wrong_types_and_values_say_what_to_fix() {
        let err = parse(&format!("{MIN}\n[dsp]\nbind = 8181\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("dsp.bind"), "{err}");
        let err = parse("[participant]\nname='x'\n[api]\nadmin_token='short'\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("api.admin_token") && err.contains("16"),
            "{err}"
        );
        let err = parse("[participant]\nname='x'\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("api"), "{err}");
        let err = parse("[participant\n", &[]).unwrap_err().to_string();
        assert!(err.contains("not valid TOML"), "{err}");
    }

    #[test]
    fn environment_overrides_win_and_unknown_ones_are_refused() {
        let c = parse(
            MIN,
            &[
                ("CAAP_DSP_BIND", "127.0.0.1:0"),
                ("CAAP_DATABASE_URL", "postgres://u@h/db"),
                ("CAAP_LIMITS_MAX_BODY_BYTES", "4096"),
                ("CAAP_SHARED_DIR", "/x"),
                ("PATH", "/bin"),
            ],
        )
        .unwrap();
        assert_eq!(c.dsp.bind.port(), 0);
        assert_eq!(c.limits.max_body_bytes, 4096);
        assert_eq!(c.database_url().expose(), "postgres://u@h/db");
        let err = parse(MIN, &[("CAAP_DSP_BINDD", "x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("CAAP_DSP_BINDD"), "{err}");
        let err = parse(MIN, &[("CAAP_DSP_BIND", "nope")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("environment") && err.contains("dsp.bind"),
            "{err}"
        );
        let err = parse(MIN, &[("CAAP_DSP_WORKERS", "two")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("whole number"), "{err}");
    }

    #[test]
    fn tls_and_simulator_keys() {
        let c = parse(MIN, &[]).unwrap();
        assert!(!c.tls.serves_https() && !c.simulator.enabled);
        assert!(!c.to_toml().unwrap().contains("[tls]"));
        let c = parse(
            &format!(
                "{MIN}\n[tls]\ncert_file = \"keys/tls.crt\"\nkey_file = \"keys/tls.key\"\nca_files = [\"peer.pem\"]\n[simulator]\nenabled = true\ninterval_ms = 50\n"
            ),
            &[],
        )
        .unwrap();
        assert!(c.tls.serves_https() && c.simulator.enabled);
        assert_eq!(c.simulator.interval_ms, 50);
        let c = parse(
            MIN,
            &[
                ("CAAP_TLS_CA_FILES", "a.pem, b.pem"),
                ("CAAP_SIMULATOR_ENABLED", "true"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.tls.ca_files,
            [PathBuf::from("a.pem"), PathBuf::from("b.pem")]
        );
        assert!(c.simulator.enabled);
        let err = parse(&format!("{MIN}\n[tls]\ncert_file = \"x.crt\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.key_file"), "{err}");
        let err = parse(MIN, &[("CAAP_SIMULATOR_ENABLED", "yes")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("CAAP_SIMULATOR_ENABLED"), "{err}");
        let err = parse(&format!("{MIN}\n[simulator]\ninterval_ms = 1\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("simulator.interval_ms"), "{err}");
    }

    #[test]
    fn oidc_keys_are_optional_defaulted_and_checked() {
        let c = parse(MIN, &[]).unwrap();
        assert!(c.api.oidc.is_none());
        assert!(!c.to_toml().unwrap().contains("oidc"));
        let c = parse(
            &format!(
                "{MIN}\n[api.oidc]\nissuer = \"https://login.malmo.se/realms/city\"\naudience = \"urn:caap:management-api\"\nrequired_scope = \"caap:admin\"\n"
            ),
            &[],
        )
        .unwrap();
        let oidc = c.api.oidc.unwrap();
        assert_eq!(oidc.required_scope.as_deref(), Some("caap:admin"));
        assert_eq!(
            (
                oidc.roles_claim.as_str(),
                oidc.leeway_secs,
                oidc.jwks_cache_secs
            ),
            ("roles", 30, 300)
        );
        let c = parse(
            MIN,
            &[
                ("CAAP_API_OIDC_ISSUER", "http://127.0.0.1:4000"),
                ("CAAP_API_OIDC_AUDIENCE", "caap"),
                ("CAAP_API_OIDC_LEEWAY_SECS", "5"),
                ("CAAP_OIDC_CLIENT_ID", "the CLI's, not a config key"),
            ],
        )
        .unwrap();
        assert_eq!(c.api.oidc.unwrap().leeway_secs, 5);
        for (env, key) in [
            (
                &[
                    ("CAAP_API_OIDC_ISSUER", "http://idp.malmo.se"),
                    ("CAAP_API_OIDC_AUDIENCE", "caap"),
                ][..],
                "api.oidc.issuer",
            ),
            (
                &[
                    ("CAAP_API_OIDC_ISSUER", "not a url"),
                    ("CAAP_API_OIDC_AUDIENCE", "caap"),
                ][..],
                "api.oidc.issuer",
            ),
            (
                &[
                    ("CAAP_API_OIDC_ISSUER", "https://idp"),
                    ("CAAP_API_OIDC_AUDIENCE", " "),
                ][..],
                "api.oidc.audience",
            ),
            (
                &[
                    ("CAAP_API_OIDC_ISSUER", "https://idp"),
                    ("CAAP_API_OIDC_AUDIENCE", "caap"),
                    ("CAAP_API_OIDC_REQUIRED_SCOPE", "a b"),
                ][..],
                "api.oidc.required_scope",
            ),
            (
                &[
                    ("CAAP_API_OIDC_ISSUER", "https://idp"),
                    ("CAAP_API_OIDC_AUDIENCE", "caap"),
                    ("CAAP_API_OIDC_ROLES_CLAIM", "realm_access."),
                ][..],
                "api.oidc.roles_claim",
            ),
            (
                &[
                    ("CAAP_API_OIDC_ISSUER", "https://idp"),
                    ("CAAP_API_OIDC_AUDIENCE", "caap"),
                    ("CAAP_API_OIDC_JWKS_CACHE_SECS", "1"),
                ][..],
                "api.oidc.jwks_cache_secs",
            ),
            (&[("CAAP_API_OIDC_ISSUER", "https://idp")][..], "audience"),
        ] {
            let err = parse(MIN, env).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    /// A config with every field set to a valid value other than its default. Written as struct
    /// literals, so a new field does not compile until it is added here (and then tested below).
    fn every_key_set() -> Config {
        Config {
            participant: ParticipantConfig {
                name: "Lund kommun".into(),
                public_url: Some("https://caap.lund.se".into()),
                id: Some("did:web:caap.lund.se".into()),
            },
            dsp: DspConfig {
                bind: "127.0.0.1:9181".parse().unwrap(),
                path: "/protocol".into(),
                workers: 3,
                auth: DspAuthConfig {
                    mode: AuthMode::StaticToken,
                    tokens: vec![StaticTokenEntry {
                        token: Secret::new("tokentokentoken-1"),
                        participant: "did:web:malmo.example".into(),
                        claims: [("role".to_owned(), serde_json::json!("Municipality"))].into(),
                    }],
                    outbound_token: Some(Secret::new("outbound-token-0001")),
                },
            },
            api: ApiConfig {
                bind: "127.0.0.1:9182".parse().unwrap(),
                admin_token: Secret::new("admin-token-0123456789"),
                oidc: Some(ApiOidcConfig {
                    issuer: "https://login.lund.se/realms/city".into(),
                    audience: "urn:caap:management-api".into(),
                    required_scope: Some("caap:admin".into()),
                    required_role: Some("caap-admin".into()),
                    roles_claim: "realm_access.roles".into(),
                    leeway_secs: 7,
                    jwks_cache_secs: 77,
                }),
                workers: 2,
            },
            database: DatabaseConfig {
                url: Some(Secret::new("postgres://caap@db.lund.se/caap")),
                max_connections: 3,
                sqlite_cache_kib: 1024,
            },
            identity: IdentityConfig {
                key_file: "keys/other.jwk".into(),
                required_credentials: vec!["A".into(), "B".into()],
                optional_credentials: vec!["C".into()],
                disclosed_credentials: vec!["D".into()],
                trusted_issuers: vec![TrustedIssuerConfig {
                    issuer: "did:web:trust.example".into(),
                    types: vec!["MembershipCredential".into()],
                }],
                credential_schemas: vec![CredentialSchemaConfig {
                    id: "https://schemas.example/a".into(),
                    file: "schemas/a.json".into(),
                }],
                did_cache_secs: 11,
                status_list_cache_secs: 12,
                insecure_did_web_over_http: true,
                allowed_private_hosts: vec!["connector.intranet".into()],
            },
            limits: LimitsConfig {
                max_body_bytes: 2048,
                outbound_timeout_secs: 5,
                attempt_timeout_secs: 4,
                connect_timeout_secs: 3,
                failure_cache_secs: 7,
                body_read_timeout_secs: 6,
                max_requests_per_address: 9,
            },
            negotiation: NegotiationConfig {
                max_attempts: 2,
                retry_base_ms: 20,
                retry_max_secs: 2,
                concurrency: 4,
                poll_interval_ms: 200,
                require_signed_agreements: false,
            },
            source_credentials: vec![SourceCredential {
                name: "sensors".into(),
                token_url: "https://auth.lund.se/token".into(),
                client_id: "caap".into(),
                client_secret: SecretValue::Value(Secret::new("client-secret")),
                scopes: vec!["read".into()],
            }],
            log: LogConfig {
                level: "debug".into(),
                format: "json".into(),
            },
            open_data: OpenDataConfig {
                requests_per_minute: 120,
                burst: 10,
                contact_email: Some("opendata@lund.se".into()),
                homepage: Some("https://lund.se".into()),
                feed_page_size: 50,
            },
            tls: TlsConfig {
                cert_file: Some("keys/tls.crt".into()),
                key_file: Some("keys/tls.key".into()),
                ca_files: vec!["a.pem".into(), "b.pem".into()],
            },
            simulator: SimulatorConfig {
                enabled: true,
                interval_ms: 50,
            },
            authority: AuthorityConfig {
                enabled: true,
                credential_validity_days: 30,
                status_list_size: 2048,
            },
            consent: ConsentConfig {
                subject_key_file: "keys/subject.key".into(),
                withdrawal_url: Some("https://portal.malmo.se/samtycke".into()),
                notice_retry_secs: 3,
                notice_max_backoff_secs: 60,
                notice_max_attempts: 9,
                stale_after_secs: 4,
                mydata: MyDataConfig {
                    enabled: true,
                    trusted_keys: vec!["keys/operator.jwk".into()],
                },
            },
            federation: FederationConfig {
                directory: Some("https://anchor.example/issuer/directory".into()),
                anchor: Some("did:web:anchor.example".into()),
                crawl: false,
                interval_secs: 600,
                jitter_secs: 30,
                concurrency: 8,
                retry_base_secs: 10,
                retry_max_secs: 1800,
                directory_interval_secs: 120,
                lease_secs: 300,
            },
            portal: PortalConfig {
                enabled: true,
                bind: "127.0.0.1:9443".parse().unwrap(),
                public_url: Some("https://samtycke.lund.se".into()),
                session_idle_minutes: 10,
                session_max_minutes: 120,
                login_per_minute: 5,
                actions_per_minute: 12,
                time_zone: "UTC".into(),
                oidc: Some(PortalOidcConfig {
                    issuer: "https://login.lund.se".into(),
                    client_id: "caap-portal".into(),
                    client_secret: Some(SecretValue::Value(Secret::new("portal-secret"))),
                    subject_claim: "https://id.oidc.se/claim/personalIdentityNumber".into(),
                    scopes: vec![
                        "openid".into(),
                        "https://id.oidc.se/scope/naturalPersonNumber".into(),
                    ],
                    leeway_secs: 30,
                }),
            },
            data_dir: "/var/lib/caap".into(),
        }
    }

    /// The value at a dotted key, if present.
    fn at<'a>(value: &'a toml::Value, key: &str) -> Option<&'a toml::Value> {
        key.split('.').try_fold(value, |v, part| v.get(part))
    }

    /// The dotted keys of the leaves of a TOML value (lists count as leaves).
    fn leaves(value: &toml::Value, prefix: &str, out: &mut Vec<String>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(v, &key, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }

    /// The environment spelling of a TOML value for a key of `kind`.
    fn env_text(kind: EnvKind, value: &toml::Value) -> String {
        match (kind, value) {
            (EnvKind::Text, toml::Value::String(s)) => s.clone(),
            (EnvKind::List, toml::Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            (EnvKind::Toml, v) => v.to_string(),
            (_, v) => v.to_string(),
        }
    }

    #[test]
    fn the_derived_keys_are_every_key_of_the_config() {
        let keys = override_keys().unwrap();
        let mut derived: Vec<String> = keys.iter().map(|k| k.key.clone()).collect();
        let mut written = Vec::new();
        leaves(
            &toml::Value::try_from(every_key_set()).unwrap(),
            "",
            &mut written,
        );
        derived.sort();
        written.sort();
        assert_eq!(derived, written);
        let names: BTreeSet<String> = keys.iter().map(ConfigKey::env_name).collect();
        assert_eq!(
            names.len(),
            keys.len(),
            "two keys share an environment variable"
        );
        let kind = |key: &str| keys.iter().find(|k| k.key == key).unwrap().kind;
        assert_eq!(kind("dsp.bind"), EnvKind::Text);
        assert_eq!(kind("dsp.workers"), EnvKind::Integer);
        assert_eq!(kind("identity.did_cache_secs"), EnvKind::Integer);
        assert_eq!(kind("authority.enabled"), EnvKind::Boolean);
        assert_eq!(kind("tls.ca_files"), EnvKind::List);
        assert_eq!(kind("identity.trusted_issuers"), EnvKind::Toml);
        assert_eq!(kind("api.oidc.leeway_secs"), EnvKind::Integer);
    }

    #[test]
    fn every_key_can_be_set_from_the_environment() {
        let want = every_key_set();
        let wanted = toml::Value::try_from(&want).unwrap();
        let defaults = toml::Value::try_from(parse(MIN, &[]).unwrap()).unwrap();
        let mut env = Vec::new();
        for key in override_keys().unwrap() {
            let value = at(&wanted, &key.key).unwrap_or_else(|| panic!("{} not set", key.key));
            assert_ne!(
                at(&defaults, &key.key),
                Some(value),
                "{}: pick a value other than the default, so the override shows",
                key.key
            );
            env.push((key.env_name(), env_text(key.kind, value)));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(parse(MIN, &env).unwrap(), want);
        let one = |name: &str, value: &str| parse(MIN, &[(name, value)]).unwrap();
        assert_eq!(
            one("CAAP_IDENTITY_DID_CACHE_SECS", "9")
                .identity
                .did_cache_secs,
            9
        );
        assert_eq!(
            one("CAAP_AUTHORITY_STATUS_LIST_SIZE", "4096")
                .authority
                .status_list_size,
            4096
        );
        let issuers = |value: &str| {
            parse(MIN, &[("CAAP_IDENTITY_TRUSTED_ISSUERS", value)])
                .unwrap_err()
                .to_string()
        };
        let err = issuers("[{ issuer = \"x\" }]");
        assert!(err.contains("identity.trusted_issuers[0].issuer"), "{err}");
        let err = issuers("[{ issuer = ");
        assert!(
            err.contains("CAAP_IDENTITY_TRUSTED_ISSUERS") && err.contains("TOML"),
            "{err}"
        );
        let err = issuers("[{ issuer = 1 }]");
        assert!(
            err.starts_with("environment: key `identity.trusted_issuers[0].issuer`"),
            "{err}"
        );
    }
}
