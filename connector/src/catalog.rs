//! The catalog service: assets, policies and offers (the documents a provider publishes), the DSP
//! catalog built from them for each caller, and the federated catalog (other connectors' catalogs,
//! fetched by [`federation`] into a cache, and searched). It owns what it needs (the store handle,
//! the policy decider, who we are in the catalog); HTTP handlers take it and nothing else.

pub mod federation;
mod remote;
mod served;

use std::sync::Arc;

use caap_catalog::asset::Asset;
use caap_catalog::build::{self, CatalogIdentity, CatalogPage, PageRequest};
use caap_catalog::dcat::Dataset;
use caap_catalog::offer::Offer;
use caap_catalog::page::{self, Cursor, Page};
use caap_catalog::search::CachedDataset;
use caap_catalog::{CatalogFault, FieldError};
use caap_identity::{OutboundCredentials, VerifiedCaller};
use caap_policy::{EvaluationContext, PolicyDecider};
use serde::Serialize;
use serde_json::Value;

use crate::clock::Clock;
use crate::config::FederationConfig;
use crate::error::{ServiceError, decode};
/// The kinds of document the catalog manages.
pub use crate::store::DocKind;
use crate::store::federation::{DirectoryStatus, SearchError};
pub use crate::store::federation::{FederatedQuery, SearchPage, SourceOrigin};
use crate::store::{CatalogSourceInfo, DocRef, Store, StoredDoc};
pub use served::ServedPage;

/// Assets, policies, offers, the DSP catalog and the federated catalog. Cheap to clone.
#[derive(Clone)]
pub struct CatalogService {
    store: Store,
    clock: Arc<dyn Clock>,
    decider: Arc<dyn PolicyDecider>,
    identity: Arc<CatalogIdentity>,
    /// The names of the configured source credentials assets may refer to.
    source_credentials: Arc<[String]>,
    /// For other connectors' catalogs (protocol messages: a total timeout).
    http: crate::outbound::Http,
    outbound: Arc<dyn OutboundCredentials>,
    /// How often sources are crawled, and the back-off after a failure.
    crawl: Arc<FederationConfig>,
    /// The DSP catalog's pages, kept per catalog revision.
    served: served::Served,
}

impl std::fmt::Debug for CatalogService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogService")
            .field("participant_id", &self.identity.participant_id)
            .finish_non_exhaustive()
    }
}

/// What the catalog service is built from.
pub struct CatalogParts {
    /// Persistence.
    pub store: Store,
    /// The clock (access policies are decided at a time).
    pub clock: Arc<dyn Clock>,
    /// Decides access policies.
    pub decider: Arc<dyn PolicyDecider>,
    /// Who we are in the catalog.
    pub identity: CatalogIdentity,
    /// The names of the configured `[[source_credentials]]`.
    pub source_credentials: Vec<String>,
    /// HTTP client for other connectors.
    pub http: crate::outbound::Http,
    /// Authorizes our catalog requests to others.
    pub outbound: Arc<dyn OutboundCredentials>,
    /// `[federation]`: the crawl schedule.
    pub federation: FederationConfig,
}

/// The identity a connector's catalog is served under.
pub fn catalog_identity(
    participant_id: &str,
    publisher: &str,
    public_url: &str,
    dsp_base: &str,
) -> CatalogIdentity {
    CatalogIdentity {
        participant_id: participant_id.to_owned(),
        catalog_id: format!("{participant_id}#catalog"),
        publisher: publisher.to_owned(),
        dsp_base: dsp_base.to_owned(),
        version_url: format!("{public_url}/.well-known/dspace-version"),
        open_url: format!("{public_url}/open/v1"),
    }
}

impl std::fmt::Debug for CatalogParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogParts")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl CatalogService {
    /// The service over its parts.
    pub fn new(parts: CatalogParts) -> Self {
        CatalogService {
            store: parts.store,
            clock: parts.clock,
            decider: parts.decider,
            identity: Arc::new(parts.identity),
            source_credentials: parts.source_credentials.into(),
            http: parts.http,
            outbound: parts.outbound,
            crawl: Arc::new(parts.federation),
            served: served::Served::default(),
        }
    }

    /// The connectors whose catalogs are in the cache.
    pub async fn sources(&self) -> Result<Vec<CatalogSourceInfo>, ServiceError> {
        Ok(self.store.catalog_sources().await?)
    }

    /// The last reading of the member directory (`None` without one, or before the first).
    pub async fn directory_status(&self) -> Result<Option<DirectoryStatus>, ServiceError> {
        match &self.crawl.directory {
            Some(url) => Ok(self.store.directory_status(url).await?),
            None => Ok(None),
        }
    }

    /// Removes a source and its datasets from the cache (a directory member comes back with the next
    /// reading of the directory while it is still a member).
    pub async fn remove_source(&self, address: &str) -> Result<(), ServiceError> {
        if self.store.remove_source(address).await? {
            tracing::info!(source = %address, "catalog source removed");
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "no catalog source `{address}`"
            )))
        }
    }

    /// Every cached dataset of other connectors.
    pub async fn cached_datasets(&self) -> Result<Vec<CachedDataset>, ServiceError> {
        Ok(self.store.cached_datasets().await?)
    }

    /// Searches the federated catalog in the store: one page of ranked hits, the total and the facets.
    pub async fn search(&self, query: &FederatedQuery) -> Result<SearchPage, ServiceError> {
        let limit = page::page_size(query.limit)?;
        if let Some(a) = &query.access
            && !["open", "negotiable"].contains(&a.to_ascii_lowercase().as_str())
        {
            return Err(ServiceError::BadRequest(
                "/access: one of open, negotiable".into(),
                vec![FieldError::new("/access", "one of open, negotiable")],
            ));
        }
        self.store
            .search_federated(query, limit)
            .await
            .map_err(|e| match e {
                SearchError::Invalid { pointer, message } => ServiceError::BadRequest(
                    format!("{pointer}: {message}"),
                    vec![FieldError::new(pointer, message)],
                ),
                SearchError::Store(e) => e.into(),
            })
    }
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

impl CatalogService {
    /// Creates an asset, policy or offer from a JSON body (an `id` is generated if missing).
    pub async fn create(&self, kind: DocKind, body: Value) -> Result<Versioned, ServiceError> {
        let (id, body, refs) = prepare(kind, body, None)?;
        self.check_source_credentials(&body)?;
        self.check_public(kind, &id, &body).await?;
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
        self.check_public(kind, &id, &body).await?;
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
        if self.source_credentials.iter().any(|c| c == name) {
            return Ok(());
        }
        Err(ServiceError::field(
            "/dataAddress/credentials",
            format!("no source credentials `{name}` in the configuration ([[source_credentials]])"),
        ))
    }

    /// An offer on personal data names its purpose: every permission of its contract policy binds one of the
    /// datasets' declared purposes (`purpose eq dpv:…`), so that agreements record it.
    async fn check_purposes(&self, offer: &Offer) -> Result<(), ServiceError> {
        let Some(doc) = self
            .store
            .get(DocKind::Policy, &offer.contract_policy)
            .await?
        else {
            return Ok(());
        };
        let Some(policy) = doc
            .body
            .get("policy")
            .and_then(|p| caap_policy::parse_policy(p).ok())
        else {
            return Ok(());
        };
        for asset in self.store.get_many(DocKind::Asset, &offer.assets).await? {
            let asset: Asset = decode(&asset.body)?;
            let Some(decl) = &asset.personal_data else {
                continue;
            };
            if let Err(errors) = caap_policy::consent::offer_purposes(&policy, decl) {
                let why: Vec<String> = errors.iter().map(ToString::to_string).collect();
                return Err(ServiceError::field(
                    "/contractPolicy",
                    format!(
                        "dataset `{}` holds personal data, so the contract policy `{}` must bind a purpose it \
                         declares: {}",
                        asset.id,
                        offer.contract_policy,
                        why.join("; ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Open data stays free of personal data: a public offer's contract policy must let anyone use the data
    /// and none of its datasets may declare personal data; a dataset under a public offer may not start to.
    async fn check_public(
        &self,
        kind: DocKind,
        id: &str,
        body: &Value,
    ) -> Result<(), ServiceError> {
        match kind {
            DocKind::Offer => {
                let offer: Offer = decode(body)?;
                self.check_purposes(&offer).await?;
                if !offer.public {
                    return Ok(());
                }
                if let Some(doc) = self
                    .store
                    .get(DocKind::Policy, &offer.contract_policy)
                    .await?
                    && let Some(odrl) = doc.body.get("policy")
                    && !caap_policy::parse_policy(odrl).is_ok_and(|p| p.permits_anyone())
                {
                    return Err(ServiceError::field(
                        "/public",
                        format!(
                            "a public offer's contract policy must let anyone use the data (a permission \
                             without constraints; duties such as attribution are fine), and `{}` does not",
                            offer.contract_policy
                        ),
                    ));
                }
                for asset in self.store.get_many(DocKind::Asset, &offer.assets).await? {
                    let asset: Asset = decode(&asset.body)?;
                    if let Some(reason) = caap_catalog::offer::public_refusal(&asset) {
                        return Err(ServiceError::field("/public", reason));
                    }
                }
                Ok(())
            }
            DocKind::Asset if body.get("personalData").is_some() => {
                let offers =
                    build::CatalogSource::offers_for(&self.store, &[id.to_owned()]).await?;
                match offers.iter().find(|o| o.offer.public) {
                    Some(o) => Err(ServiceError::field(
                        "/personalData",
                        format!(
                            "the public offer `{}` covers dataset `{id}`, and datasets with personal data can \
                             never be public; take it out of that offer first",
                            o.offer.id
                        ),
                    )),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// The identity the catalog is served under.
    pub fn identity(&self) -> &CatalogIdentity {
        &self.identity
    }

    /// The catalog as `caller` may see it: the current snapshot of the offers, and for each of its access
    /// policies whether `caller` passes it (decided now, with the caller's claims).
    async fn view(
        &self,
        caller: &VerifiedCaller,
    ) -> Result<(Arc<served::Snapshot>, Vec<bool>), CatalogFault> {
        let revision = self.store.catalog_revision().await?;
        let snapshot = self.served.snapshot(&self.store, revision).await?;
        let ctx = EvaluationContext::new(
            &caller.participant_id,
            caap_policy::Action::Use,
            self.clock.now(),
        )
        .with_claims(caller.claims.clone());
        let view = snapshot
            .access_policies()
            .map(|p| p.is_some_and(|p| self.decider.decide(p, &ctx).permitted))
            .collect();
        Ok((snapshot, view))
    }

    /// One page of the catalog as `caller` may see it, as JSON (kept for the next caller with the same view
    /// until the catalog changes; see [`served`]).
    pub async fn catalog(
        &self,
        caller: &VerifiedCaller,
        request: &PageRequest,
    ) -> Result<Arc<ServedPage>, CatalogFault> {
        let (snapshot, view) = self.view(caller).await?;
        let kept: &served::Snapshot = &snapshot;
        let build = |view: Vec<bool>| async move {
            let source = served::SnapshotSource {
                store: &self.store,
                snapshot: kept,
                view: &view,
            };
            // The source gives only the offers the caller may see.
            let page: CatalogPage =
                build::catalog_page(&source, &self.identity, request, |_| true).await?;
            let body = serde_json::to_vec(&page.catalog)
                .map_err(|e| CatalogFault::Store(format!("catalog page: {e}")))?;
            Ok(ServedPage {
                body: body.into(),
                next: page.next,
                previous: page.previous,
            })
        };
        self.served
            .page(
                &snapshot,
                &request.cursor,
                request.limit,
                &request.filter,
                view.clone(),
                build,
            )
            .await
    }

    /// One dataset as `caller` may see it.
    pub async fn dataset(
        &self,
        caller: &VerifiedCaller,
        id: &str,
    ) -> Result<Dataset, CatalogFault> {
        let (snapshot, view) = self.view(caller).await?;
        let source = served::SnapshotSource {
            store: &self.store,
            snapshot: &snapshot,
            view: &view,
        };
        build::dataset_by_id(&source, &self.identity, id, |_| true).await
    }
}
