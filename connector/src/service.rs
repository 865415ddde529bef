//! Application services: one function per management or protocol operation. HTTP handlers and the
//! CLI call these; they validate with the domain crates and persist through the store.

use std::sync::Arc;

use caap_catalog::asset::Asset;
use caap_catalog::build::{self, CatalogIdentity, CatalogPage, PageRequest};
use caap_catalog::dcat::Dataset;
use caap_catalog::offer::{Offer, ResolvedOffer};
use caap_catalog::page::{self, Cursor, Page};
use caap_catalog::{CatalogFault, FieldError};
use caap_identity::{DspAuthenticator, OutboundCredentials, ParticipantKey, VerifiedCaller};
use caap_policy::{EvaluationContext, PolicyDecider};
use serde::Serialize;
use serde_json::Value;

use crate::clock::Clock;
use crate::config::Config;
use crate::store::{DocKind, DocRef, Store, StoreError, StoredDoc};

/// Who this connector is, resolved at start-up.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Participant id (DID).
    pub participant_id: String,
    /// Display name.
    pub name: String,
    /// Public root URL of the DSP listener.
    pub public_url: String,
    /// DSP base URL (`public_url` + `dsp.path`).
    pub dsp_base: String,
    /// The signing key.
    pub key: ParticipantKey,
}

/// Everything a request needs, shared by all workers. Cheap to clone.
#[derive(Clone)]
pub struct Connector {
    /// The configuration it was started with.
    pub config: Arc<Config>,
    /// Persistence.
    pub store: Store,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Verifies DSP callers.
    pub authenticator: Arc<dyn DspAuthenticator>,
    /// Authorizes our requests to others.
    pub outbound: Arc<dyn OutboundCredentials>,
    /// Decides policies.
    pub decider: Arc<dyn PolicyDecider>,
    /// Who we are.
    pub identity: Arc<Identity>,
    /// HTTP client for other connectors (protocol messages: a total timeout).
    pub http: reqwest::Client,
    /// HTTP client for data flows (no total timeout; connect and read timeouts).
    pub http_streaming: reqwest::Client,
    /// Wakes the negotiation processor when work is created (so nothing waits for a poll).
    pub wake: Arc<tokio::sync::Notify>,
    /// The data flows being served, so a suspension stops them at once.
    pub flows: Arc<crate::transfer::flows::Flows>,
    /// OAuth2 tokens for protected data sources.
    pub source_tokens: Arc<crate::transfer::source_auth::SourceTokens>,
    /// NGSI-LD notification endpoints of subscription-fed streams.
    pub notifications: Arc<crate::transfer::flows::Notifications>,
    /// Our DID, keys and credential verification (DCP).
    pub trust: Arc<crate::dcp::Trust>,
    /// Verifies the management API's OIDC access tokens (`[api.oidc]`), if configured.
    pub oidc: Option<Arc<crate::http::oidc::OidcVerifier>>,
}

impl Connector {
    /// The contract negotiation service, sharing this connector's state.
    pub fn negotiations(&self) -> crate::negotiation::Negotiations {
        crate::negotiation::Negotiations {
            store: self.store.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
            identity: self.identity.clone(),
            decider: self.decider.clone(),
            wake: self.wake.clone(),
        }
    }

    /// The transfer process service, sharing this connector's state.
    pub fn transfers(&self) -> crate::transfer::Transfers {
        crate::transfer::Transfers {
            store: self.store.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
            decider: self.decider.clone(),
            wake: self.wake.clone(),
            flows: self.flows.clone(),
        }
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("participant_id", &self.identity.participant_id)
            .field("store", &self.store.backend())
            .finish_non_exhaustive()
    }
}

/// Why a service call failed; one variant per kind of answer.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input is malformed (syntax, types, unknown fields): 400.
    #[error("{0}")]
    BadRequest(String, Vec<FieldError>),
    /// The input is well-formed but its values are wrong: 422.
    #[error("{0}")]
    Invalid(String, Vec<FieldError>),
    /// No such thing: 404.
    #[error("{0}")]
    NotFound(String),
    /// It exists already, changed meanwhile, or is in use: 409.
    #[error("{0}")]
    Conflict(String),
    /// Another connector failed or answered something unusable: 502.
    #[error("{0}")]
    Upstream(String),
    /// Something broke on our side; the cause is logged, not shown: 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// One field error.
    pub fn field(pointer: &str, message: impl Into<String>) -> Self {
        let e = FieldError::new(pointer, message);
        ServiceError::Invalid(e.to_string(), vec![e])
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ServiceError::NotFound(e.to_string()),
            StoreError::Conflict(_) | StoreError::InUse { .. } => {
                ServiceError::Conflict(e.to_string())
            }
            StoreError::MissingRef { ref pointer, .. } => {
                let fe = FieldError::new(pointer.clone(), e.to_string());
                ServiceError::Invalid(e.to_string(), vec![fe])
            }
            StoreError::Db(_) | StoreError::Corrupt(..) => ServiceError::Internal(e.to_string()),
        }
    }
}

impl From<CatalogFault> for ServiceError {
    fn from(e: CatalogFault) -> Self {
        match e {
            CatalogFault::BadRequest(m) => ServiceError::BadRequest(m, vec![]),
            CatalogFault::NotFound(m) => ServiceError::NotFound(m),
            CatalogFault::Store(m) => ServiceError::Internal(m),
        }
    }
}

/// Deserializes `body` into `T`, naming the path of the first field that does not fit.
pub fn decode<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, ServiceError> {
    serde_path_to_error::deserialize::<_, T>(body).map_err(|e| {
        let path = e.path().to_string();
        let pointer = if path == "." {
            String::new()
        } else {
            format!("/{}", path.replace('.', "/"))
        };
        let fe = FieldError::new(pointer, e.into_inner().to_string());
        ServiceError::BadRequest(format!("the body does not fit: {fe}"), vec![fe])
    })
}

fn invalid(what: &str, errors: Vec<FieldError>) -> Result<(), ServiceError> {
    if errors.is_empty() {
        return Ok(());
    }
    let summary = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Err(ServiceError::Invalid(
        format!("the {what} is not valid: {summary}"),
        errors,
    ))
}

/// A document as the management API shows it, with its version for `If-Match`.
#[derive(Debug, Clone, Serialize)]
pub struct Versioned {
    /// The document.
    pub body: Value,
    /// Its version.
    pub version: i64,
}

impl From<StoredDoc> for Versioned {
    fn from(d: StoredDoc) -> Self {
        Versioned {
            body: d.body,
            version: d.version,
        }
    }
}

/// A policy as stored and shown: the ODRL policy in DSP compact form, with an id and a note.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyDoc {
    /// The id offers refer to.
    pub id: String,
    /// What the policy is for, in plain words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The ODRL 2.2 policy (JSON-LD).
    pub policy: Value,
}

/// Which management kind, with its validation and references.
fn prepare(
    kind: DocKind,
    mut body: Value,
    path_id: Option<&str>,
) -> Result<(String, Value, Vec<DocRef>), ServiceError> {
    let Value::Object(map) = &mut body else {
        return Err(ServiceError::BadRequest(
            "the body must be a JSON object".into(),
            vec![FieldError::new("", "expected a JSON object")],
        ));
    };
    match (path_id, map.get("id")) {
        (Some(p), Some(Value::String(b))) if p != b => {
            return Err(ServiceError::field(
                "/id",
                format!("`{b}` differs from `{p}` in the URL; ids cannot be changed"),
            ));
        }
        (Some(p), None) => {
            map.insert("id".into(), p.into());
        }
        (None, None) => {
            map.insert(
                "id".into(),
                format!("urn:uuid:{}", uuid::Uuid::new_v4()).into(),
            );
        }
        _ => {}
    }
    match kind {
        DocKind::Asset => {
            let asset: Asset = decode(&body)?;
            invalid("asset", asset.validate())?;
            let body =
                serde_json::to_value(&asset).map_err(|e| ServiceError::Internal(e.to_string()))?;
            Ok((asset.id, body, vec![]))
        }
        DocKind::Policy => {
            let mut doc: PolicyDoc = decode(&body)?;
            let mut errors = Vec::new();
            caap_catalog::asset::check_id("/id", &doc.id, &mut errors);
            match caap_policy::parse_policy(&doc.policy) {
                Ok(policy) => doc.policy = policy.to_compact_json(),
                Err(caap_policy::PolicyError::Invalid(list)) => errors.extend(
                    list.into_iter()
                        .map(|e| FieldError::new(format!("/policy{}", e.pointer), e.message)),
                ),
            }
            invalid("policy", errors)?;
            let body =
                serde_json::to_value(&doc).map_err(|e| ServiceError::Internal(e.to_string()))?;
            Ok((doc.id, body, vec![]))
        }
        DocKind::Offer => {
            let offer: Offer = decode(&body)?;
            invalid("offer", offer.validate())?;
            let refs = DocRef::of_offer(&offer);
            let body =
                serde_json::to_value(&offer).map_err(|e| ServiceError::Internal(e.to_string()))?;
            Ok((offer.id, body, refs))
        }
    }
}

impl Connector {
    /// Creates an asset, policy or offer from a JSON body (an `id` is generated if missing).
    pub async fn create(&self, kind: DocKind, body: Value) -> Result<Versioned, ServiceError> {
        let (id, body, refs) = prepare(kind, body, None)?;
        self.check_source_credentials(&body)?;
        let doc = self.store.create(kind, &id, &body, &refs).await?;
        tracing::info!(kind = kind.as_str(), id = %id, "created");
        Ok(doc.into())
    }

    /// Replaces one, optionally only if it is still at `if_match`.
    pub async fn replace(
        &self,
        kind: DocKind,
        id: &str,
        body: Value,
        if_match: Option<i64>,
    ) -> Result<Versioned, ServiceError> {
        let (id, body, refs) = prepare(kind, body, Some(id))?;
        self.check_source_credentials(&body)?;
        let doc = self
            .store
            .replace(kind, &id, &body, &refs, if_match)
            .await?;
        tracing::info!(kind = kind.as_str(), id = %id, version = doc.version, "replaced");
        Ok(doc.into())
    }

    /// Reads one.
    pub async fn get(&self, kind: DocKind, id: &str) -> Result<Versioned, ServiceError> {
        self.store
            .get(kind, id)
            .await?
            .map(Versioned::from)
            .ok_or_else(|| ServiceError::NotFound(format!("no {} `{id}`", kind.as_str())))
    }

    /// Lists a page, ordered by id.
    pub async fn list(
        &self,
        kind: DocKind,
        token: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Value>, ServiceError> {
        let cursor = Cursor::from_token(token)?;
        let limit = page::page_size(limit)?;
        let docs = self.store.scan(kind, &cursor, u64::from(limit) + 1).await?;
        let page = Page::from_scan(docs, &cursor, limit, |d| d.id.clone());
        Ok(Page {
            items: page.items.into_iter().map(|d| d.body).collect(),
            next: page.next,
            previous: page.previous,
        })
    }

    /// Deletes one (refused while an offer still uses it).
    pub async fn delete(&self, kind: DocKind, id: &str) -> Result<(), ServiceError> {
        self.store.delete(kind, id).await?;
        tracing::info!(kind = kind.as_str(), id = %id, "deleted");
        Ok(())
    }

    /// An asset's `dataAddress.credentials` must name configured source credentials.
    fn check_source_credentials(&self, body: &Value) -> Result<(), ServiceError> {
        let Some(name) = body
            .get("dataAddress")
            .and_then(|a| a.get("credentials"))
            .and_then(Value::as_str)
        else {
            return Ok(());
        };
        if self
            .config
            .source_credentials
            .iter()
            .any(|c| c.name == name)
        {
            return Ok(());
        }
        Err(ServiceError::field(
            "/dataAddress/credentials",
            format!("no source credentials `{name}` in the configuration ([[source_credentials]])"),
        ))
    }

    /// The identity the catalog is served under.
    pub fn catalog_identity(&self) -> CatalogIdentity {
        CatalogIdentity {
            participant_id: self.identity.participant_id.clone(),
            catalog_id: format!("{}#catalog", self.identity.participant_id),
            publisher: self.identity.name.clone(),
            dsp_base: self.identity.dsp_base.clone(),
            version_url: format!("{}/.well-known/dspace-version", self.identity.public_url),
        }
    }

    /// May `caller` see offers under this access policy? Unreadable policies hide the offer.
    fn may_see(&self, caller: &VerifiedCaller, offer: &ResolvedOffer) -> bool {
        match caap_policy::parse_policy(&offer.access_policy) {
            Ok(policy) => {
                let ctx = EvaluationContext::new(
                    &caller.participant_id,
                    caap_policy::Action::Use,
                    self.clock.now(),
                )
                .with_claims(caller.claims.clone());
                self.decider.decide(&policy, &ctx).permitted
            }
            Err(e) => {
                tracing::warn!(offer = %offer.offer.id, error = %e, "access policy unreadable; offer hidden");
                false
            }
        }
    }

    /// One page of the catalog as `caller` may see it.
    pub async fn catalog(
        &self,
        caller: &VerifiedCaller,
        request: &PageRequest,
    ) -> Result<CatalogPage, CatalogFault> {
        let ident = self.catalog_identity();
        build::catalog_page(&self.store, &ident, request, |o| self.may_see(caller, o)).await
    }

    /// One dataset as `caller` may see it.
    pub async fn dataset(
        &self,
        caller: &VerifiedCaller,
        id: &str,
    ) -> Result<Dataset, CatalogFault> {
        let ident = self.catalog_identity();
        build::dataset_by_id(&self.store, &ident, id, |o| self.may_see(caller, o)).await
    }
}

impl Connector {
    /// A page of negotiations, ordered by id.
    pub async fn negotiation_page(
        &self,
        token: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<crate::negotiation::NegotiationView>, ServiceError> {
        let cursor = Cursor::from_token(token)?;
        let limit = page::page_size(limit)?;
        let (after, before) = match &cursor {
            Cursor::Start => (None, None),
            Cursor::After(id) => (Some(id.as_str()), None),
            Cursor::Before(id) => (None, Some(id.as_str())),
        };
        let rows = self
            .store
            .negotiations(after, before, u64::from(limit) + 1)
            .await?;
        let page = Page::from_scan(rows, &cursor, limit, |n| n.id.clone());
        Ok(Page {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next,
            previous: page.previous,
        })
    }

    /// A page of agreements, ordered by id (forward only).
    pub async fn agreement_page(
        &self,
        token: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<crate::store::negotiations::AgreementRecord>, ServiceError> {
        let cursor = Cursor::from_token(token)?;
        let limit = page::page_size(limit)?;
        let after = match &cursor {
            Cursor::After(id) => Some(id.as_str()),
            _ => None,
        };
        let rows = self.store.agreements(after, u64::from(limit) + 1).await?;
        let page = Page::from_scan(rows, &cursor, limit, |a| a.id.clone());
        Ok(page)
    }
}
