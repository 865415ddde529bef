//! DID resolution: `did:key` computed locally, `did:web` fetched through an injected [`HttpGet`]
//! (the connector implements it with its HTTP client) and cached for a TTL. Time is a parameter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::auth::BoxFuture;
use crate::did::{DidError, DidWebOptions, did_web_to_url, split_did_url};
use crate::did_doc::{DidDocError, DidDocument};
use crate::did_key::{DidKeyError, did_key_document};

/// What an HTTP GET returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, if the server sent one (it can only shorten the cache TTL).
    pub max_age: Option<std::time::Duration>,
}

/// Why an HTTP GET failed (connection, TLS, timeout, body too large…).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// An HTTP GET, implemented by the connector (reqwest: no redirects to other hosts, a timeout,
/// a body limit, `Accept: application/did+json, application/json`).
pub trait HttpGet: Send + Sync + std::fmt::Debug {
    /// GETs `url`.
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<HttpResponse, FetchError>>;
}

/// Why a DID could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Malformed DID, unsupported method, or an IP / http host refused.
    #[error(transparent)]
    Did(#[from] DidError),
    /// A malformed did:key.
    #[error(transparent)]
    DidKey(#[from] DidKeyError),
    /// The document could not be fetched.
    #[error("fetching the DID document of {did} from {url} failed: {reason}")]
    Fetch {
        /// The DID.
        did: String,
        /// The URL fetched.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered, but not 200.
    #[error("the DID document of {did} at {url} answered HTTP {status}")]
    NotFound {
        /// The DID.
        did: String,
        /// The URL fetched.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The document is not a valid DID document for the DID (its `id` differs, …).
    #[error("the DID document of {did} is refused: {source}")]
    Document {
        /// The DID.
        did: String,
        /// Why.
        source: DidDocError,
    },
}

impl ResolveError {
    /// True when the document was fetched but its `id` is another DID (DCP: `sub` ≠ DID document id).
    pub fn is_id_mismatch(&self) -> bool {
        matches!(
            self,
            ResolveError::Document {
                source: DidDocError::IdMismatch { .. },
                ..
            }
        )
    }

    /// True when the failure is on the network side (worth a retry; not the caller's fault).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ResolveError::Fetch { .. })
            || matches!(self, ResolveError::NotFound { status, .. } if *status >= 500)
    }
}

/// Resolves DIDs to validated documents.
pub trait DidResolve: Send + Sync + std::fmt::Debug {
    /// The document of `did` (a fragment is ignored), as of `now`.
    fn resolve<'a>(
        &'a self,
        did: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Arc<DidDocument>, ResolveError>>;
}

/// Resolver settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolverOptions {
    /// How did:web maps to URLs (the development http-on-loopback flag).
    pub did_web: DidWebOptions,
    /// How long a fetched document is used before it is fetched again.
    pub ttl: Duration,
    /// At most this many documents are cached (the oldest go first).
    pub max_entries: usize,
    /// Documents larger than this are refused.
    pub max_document_bytes: usize,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions {
            did_web: DidWebOptions::default(),
            ttl: Duration::minutes(5),
            max_entries: 1024,
            max_document_bytes: 256 * 1024,
        }
    }
}

#[derive(Debug)]
struct Cached {
    doc: Arc<DidDocument>,
    fetched_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// Documents kept for a TTL, at most `max_entries` of them.
#[derive(Debug, Default)]
struct DocCache(Mutex<HashMap<String, Cached>>);

impl DocCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The document of `did`, if it is still fresh at `now`.
    fn get(&self, did: &str, now: DateTime<Utc>) -> Option<Arc<DidDocument>> {
        self.lock()
            .get(did)
            .filter(|hit| hit.expires_at > now && hit.fetched_at <= now)
            .map(|hit| hit.doc.clone())
    }

    /// Keeps `doc` for `ttl`, evicting expired entries, then the oldest, to stay within
    /// `max_entries`.
    fn insert(
        &self,
        did: &str,
        doc: &Arc<DidDocument>,
        now: DateTime<Utc>,
        ttl: Duration,
        max_entries: usize,
    ) {
        if ttl <= Duration::zero() {
            return;
        }
        let mut cache = self.lock();
        cache.retain(|_, c| c.expires_at > now);
        while cache.len() >= max_entries.max(1) {
            let oldest = cache
                .iter()
                .min_by_key(|(_, c)| c.fetched_at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => cache.remove(&k),
                None => break,
            };
        }
        cache.insert(
            did.to_owned(),
            Cached {
                doc: doc.clone(),
                fetched_at: now,
                expires_at: now + ttl,
            },
        );
    }

    fn remove(&self, did: &str) {
        self.lock().remove(did);
    }
}

/// The caap DID resolver: did:key locally, did:web over [`HttpGet`]; both kept for a TTL (with
/// the keys their verifications parsed, see [`crate::jose::VerifierCache`]), did:key documents
/// apart so that made-up did:keys cannot push fetched documents out. Documents registered with
/// [`DidResolver::with_local`] (the connector's own) are answered without HTTP.
#[derive(Debug)]
pub struct DidResolver<H> {
    http: H,
    options: ResolverOptions,
    local: HashMap<String, Arc<DidDocument>>,
    web: DocCache,
    keys: DocCache,
}

impl<H: HttpGet> DidResolver<H> {
    /// A resolver fetching through `http`.
    pub fn new(http: H, options: ResolverOptions) -> Self {
        DidResolver {
            http,
            options,
            local: HashMap::new(),
            web: DocCache::default(),
            keys: DocCache::default(),
        }
    }

    /// Answers `doc.id` with `doc` without fetching (the connector's own DID, test fixtures).
    pub fn with_local(mut self, doc: DidDocument) -> Self {
        self.local.insert(doc.id.clone(), Arc::new(doc));
        self
    }

    /// Forgets the cached document of `did` (e.g. after a signature failed with it: the peer may
    /// have rotated its key).
    pub fn invalidate(&self, did: &str) {
        let did = split_did_url(did).0;
        self.web.remove(did);
        self.keys.remove(did);
    }

    /// did:key documents are computed, but kept like fetched ones so that their keys, once
    /// parsed, are reused.
    fn resolve_key(&self, did: &str, now: DateTime<Utc>) -> Result<Arc<DidDocument>, ResolveError> {
        if let Some(doc) = self.keys.get(did, now) {
            return Ok(doc);
        }
        let doc = Arc::new(did_key_document(did)?);
        self.keys
            .insert(did, &doc, now, self.options.ttl, self.options.max_entries);
        Ok(doc)
    }

    async fn resolve_web(
        &self,
        did: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<DidDocument>, ResolveError> {
        if let Some(doc) = self.web.get(did, now) {
            return Ok(doc);
        }
        let url = did_web_to_url(did, self.options.did_web)?;
        let response = self.http.get(&url).await.map_err(|e| ResolveError::Fetch {
            did: did.to_owned(),
            url: url.clone(),
            reason: e.0,
        })?;
        if response.status != 200 {
            return Err(ResolveError::NotFound {
                did: did.to_owned(),
                url,
                status: response.status,
            });
        }
        if response.body.len() > self.options.max_document_bytes {
            return Err(ResolveError::Fetch {
                did: did.to_owned(),
                url,
                reason: format!(
                    "the document is larger than {} bytes",
                    self.options.max_document_bytes
                ),
            });
        }
        let doc =
            DidDocument::parse(&response.body, did).map_err(|source| ResolveError::Document {
                did: did.to_owned(),
                source,
            })?;
        let doc = Arc::new(doc);
        let ttl = match response.max_age.and_then(|a| Duration::from_std(a).ok()) {
            Some(max_age) => max_age.min(self.options.ttl),
            None => self.options.ttl,
        };
        self.web
            .insert(did, &doc, now, ttl, self.options.max_entries);
        Ok(doc)
    }
}

impl<H: HttpGet> DidResolve for DidResolver<H> {
    fn resolve<'a>(
        &'a self,
        did: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Arc<DidDocument>, ResolveError>> {
        Box::pin(async move {
            let did = split_did_url(did).0;
            if let Some(doc) = self.local.get(did) {
                return Ok(doc.clone());
            }
            if did.starts_with("did:key:") {
                return self.resolve_key(did, now);
            }
            if did.starts_with("did:web:") {
                return self.resolve_web(did, now).await;
            }
            Err(DidError::UnsupportedMethod(did.to_owned()).into())
        })
    }
}

/// A fixed set of documents (tests, or a closed data space pinned in configuration); did:key is
/// computed.
#[derive(Debug, Clone, Default)]
pub struct StaticDids {
    docs: HashMap<String, Arc<DidDocument>>,
}

impl StaticDids {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a document.
    pub fn insert(&mut self, doc: DidDocument) {
        self.docs.insert(doc.id.clone(), Arc::new(doc));
    }
}

impl DidResolve for StaticDids {
    fn resolve<'a>(
        &'a self,
        did: &'a str,
        _now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Arc<DidDocument>, ResolveError>> {
        let did = split_did_url(did).0;
        let result = if let Some(doc) = self.docs.get(did) {
            Ok(doc.clone())
        } else if did.starts_with("did:key:") {
            did_key_document(did).map(Arc::new).map_err(Into::into)
        } else {
            Err(ResolveError::NotFound {
                did: did.to_owned(),
                url: String::new(),
                status: 404,
            })
        };
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::did_doc::{DidDocument, Service};
    use crate::keys::{KeySet, ParticipantKey};
    use crate::testutil::{block_on, t0};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An in-memory web: URL → (status, body), counting requests.
    #[derive(Debug, Default)]
    pub(crate) struct FakeWeb {
        pub pages: Mutex<HashMap<String, (u16, Vec<u8>)>>,
        pub hits: AtomicUsize,
    }

    impl FakeWeb {
        pub(crate) fn put(&self, url: &str, body: Vec<u8>) {
            self.pages
                .lock()
                .unwrap()
                .insert(url.to_owned(), (200, body));
        }
    }

    impl HttpGet for FakeWeb {
        fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<HttpResponse, FetchError>> {
            self.hits.fetch_add(1, Ordering::SeqCst);
            let page = self.pages.lock().unwrap().get(url).cloned();
            Box::pin(std::future::ready(match page {
                Some((status, body)) => Ok(HttpResponse {
                    status,
                    body,
                    max_age: None,
                }),
                None if url.contains("unreachable") => Err(FetchError("connection refused".into())),
                None => Ok(HttpResponse {
                    status: 404,
                    body: Vec::new(),
                    max_age: None,
                }),
            }))
        }
    }

    impl HttpGet for Arc<FakeWeb> {
        fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<HttpResponse, FetchError>> {
            self.as_ref().get(url)
        }
    }

    fn doc_for(did: &str) -> DidDocument {
        let key = ParticipantKey::generate(&format!("{did}#key-1")).unwrap();
        DidDocument::for_participant(
            did,
            &KeySet::new(key).published().unwrap(),
            vec![Service::credential_service(did, "https://x/cs")],
        )
    }

    #[test]
    fn did_web_is_fetched_once_per_ttl() {
        let web = Arc::new(FakeWeb::default());
        let did = "did:web:malmo.example:caap";
        web.put(
            "https://malmo.example/caap/did.json",
            serde_json::to_vec(&doc_for(did)).unwrap(),
        );
        let resolver = DidResolver::new(web.clone(), ResolverOptions::default());
        let doc = block_on(resolver.resolve(did, t0())).unwrap();
        assert_eq!(doc.id, did);
        block_on(resolver.resolve(&format!("{did}#key-1"), t0() + Duration::minutes(4))).unwrap();
        assert_eq!(web.hits.load(Ordering::SeqCst), 1);
        block_on(resolver.resolve(did, t0() + Duration::minutes(6))).unwrap();
        assert_eq!(web.hits.load(Ordering::SeqCst), 2);
        resolver.invalidate(did);
        block_on(resolver.resolve(did, t0() + Duration::minutes(6))).unwrap();
        assert_eq!(web.hits.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn resolution_errors_are_clear() {
        let web = Arc::new(FakeWeb::default());
        // The document at the URL claims to be another DID.
        web.put(
            "https://lund.example/.well-known/did.json",
            serde_json::to_vec(&doc_for("did:web:evil.example")).unwrap(),
        );
        web.put("https://broken.example/.well-known/did.json", b"{".to_vec());
        let resolver = DidResolver::new(web.clone(), ResolverOptions::default());
        let err = block_on(resolver.resolve("did:web:lund.example", t0())).unwrap_err();
        assert!(err.is_id_mismatch(), "{err}");
        let err = block_on(resolver.resolve("did:web:gone.example", t0())).unwrap_err();
        assert!(
            matches!(err, ResolveError::NotFound { status: 404, .. }),
            "{err}"
        );
        let err = block_on(resolver.resolve("did:web:unreachable.example", t0())).unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        let err = block_on(resolver.resolve("did:web:broken.example", t0())).unwrap_err();
        assert!(matches!(err, ResolveError::Document { .. }), "{err}");
        let err = block_on(resolver.resolve("did:example:123", t0())).unwrap_err();
        assert!(
            matches!(err, ResolveError::Did(DidError::UnsupportedMethod(_))),
            "{err}"
        );
        let err = block_on(resolver.resolve("did:web:127.0.0.1%3A9", t0())).unwrap_err();
        assert!(
            matches!(err, ResolveError::Did(DidError::IpAddressNotAllowed(_))),
            "{err}"
        );
        // Failures are not cached: 3 fetches, 3 hits.
        assert_eq!(web.hits.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn did_key_and_local_documents_need_no_http() {
        let web = Arc::new(FakeWeb::default());
        let own = doc_for("did:web:own.example");
        let resolver = DidResolver::new(web.clone(), ResolverOptions::default()).with_local(own);
        block_on(resolver.resolve("did:web:own.example", t0())).unwrap();
        let key = ParticipantKey::generate("k").unwrap();
        let did = crate::did_key::did_key_from_jwk(&key.public_jwk().unwrap()).unwrap();
        block_on(resolver.resolve(&did, t0())).unwrap();
        assert_eq!(web.hits.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_dev_flag_fetches_loopback_over_http() {
        let web = Arc::new(FakeWeb::default());
        let did = "did:web:localhost%3A4711:holder";
        web.put(
            "http://localhost:4711/holder/did.json",
            serde_json::to_vec(&doc_for(did)).unwrap(),
        );
        let strict = DidResolver::new(web.clone(), ResolverOptions::default());
        assert!(block_on(strict.resolve(did, t0())).is_err());
        let dev = DidResolver::new(
            web.clone(),
            ResolverOptions {
                did_web: DidWebOptions {
                    insecure_http_on_loopback: true,
                },
                ..Default::default()
            },
        );
        assert!(block_on(dev.resolve(did, t0())).is_ok());
    }

    #[test]
    fn verifications_against_a_cached_document_parse_its_key_once() {
        use crate::vc::{
            CredentialFormat, NewCredential, VerifyOptions, issue_credential, verify_credential,
        };
        let web = Arc::new(FakeWeb::default());
        let did = "did:web:authority.example";
        let key = ParticipantKey::generate(&format!("{did}#key-1")).unwrap();
        let doc = DidDocument::for_participant(
            did,
            &KeySet::new(key.clone()).published().unwrap(),
            vec![],
        );
        web.put(
            "https://authority.example/.well-known/did.json",
            serde_json::to_vec(&doc).unwrap(),
        );
        let resolver = DidResolver::new(web.clone(), ResolverOptions::default());
        let issue = |holder: &str| {
            let c = NewCredential::new(
                did,
                "MembershipCredential",
                holder,
                Default::default(),
                t0(),
            );
            issue_credential(&c, CredentialFormat::Vc11Jwt, &key).unwrap()
        };
        let options = VerifyOptions::at(t0());
        for holder in ["did:web:malmo.example", "did:web:lund.example"] {
            block_on(verify_credential(&issue(holder), &resolver, &options)).unwrap();
        }
        assert_eq!(web.hits.load(Ordering::SeqCst), 1);
        let cached = block_on(resolver.resolve(did, t0())).unwrap();
        let verifiers = &cached.verification_method[0].verifiers;
        assert_eq!(
            verifiers.builds(),
            1,
            "the key was converted once for two credentials"
        );
        let jwk = key.public_jwk().unwrap();
        let verifier = verifiers.cached("ES256", &jwk).unwrap();
        block_on(verify_credential(
            &issue("did:web:x.example"),
            &resolver,
            &options,
        ))
        .unwrap();
        assert!(Arc::ptr_eq(
            &verifier,
            &verifiers.cached("ES256", &jwk).unwrap()
        ));
        // The cache is no part of the document: it serializes and compares as before.
        assert_eq!(*cached, doc);
        assert_eq!(
            serde_json::to_value(&*cached).unwrap(),
            serde_json::to_value(&doc).unwrap()
        );
        // A document fetched anew (after invalidation) starts with a fresh cache.
        resolver.invalidate(did);
        let refetched = block_on(resolver.resolve(did, t0())).unwrap();
        assert_eq!(refetched.verification_method[0].verifiers.builds(), 0);
    }

    #[test]
    fn did_key_documents_are_kept_apart_from_fetched_ones() {
        let web = Arc::new(FakeWeb::default());
        let options = ResolverOptions {
            max_entries: 1,
            ..Default::default()
        };
        let did = "did:web:malmo.example";
        web.put(
            "https://malmo.example/.well-known/did.json",
            serde_json::to_vec(&doc_for(did)).unwrap(),
        );
        let resolver = DidResolver::new(web.clone(), options);
        let key = ParticipantKey::generate("k").unwrap();
        let did_key = crate::did_key::did_key_from_jwk(&key.public_jwk().unwrap()).unwrap();
        let web_doc = block_on(resolver.resolve(did, t0())).unwrap();
        let first = block_on(resolver.resolve(&did_key, t0())).unwrap();
        let again = block_on(resolver.resolve(&format!("{did_key}#x"), t0())).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the did:key document is kept");
        assert!(Arc::ptr_eq(
            &web_doc,
            &block_on(resolver.resolve(did, t0())).unwrap()
        ));
        assert_eq!(
            web.hits.load(Ordering::SeqCst),
            1,
            "did:key did not evict it"
        );
        let later = block_on(resolver.resolve(&did_key, t0() + Duration::minutes(6))).unwrap();
        assert!(!Arc::ptr_eq(&first, &later), "and recomputed after the TTL");
    }
}
