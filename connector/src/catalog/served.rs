//! The DSP catalog as served, kept per catalog revision.
//!
//! A page of the catalog depends on the documents (assets, policies, offers), the request (cursor, page
//! size, filter) and which offers the caller may see; who may see an offer depends only on its access
//! policy. So a request reads the store's catalog revision (one row), decides each distinct access policy
//! once for its caller (time and claims are the request's own: nothing about the caller is kept), and looks
//! the page up by (cursor, size, filter, the access policies it may pass). A page not yet kept is built and
//! its JSON kept for the next caller with the same view. Everything kept belongs to one revision: a change to
//! any document, by this process or another one on the same database, raises the revision in the change's
//! transaction, and the next request that reads the new revision drops what was kept. A page kept under a
//! revision was built from documents read after that revision was read, so it is never older than its label.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use caap_catalog::CatalogFault;
use caap_catalog::asset::Asset;
use caap_catalog::build::CatalogSource;
use caap_catalog::filter::Filter;
use caap_catalog::offer::ResolvedOffer;
use caap_catalog::page::Cursor;
use caap_policy::Policy;

use crate::store::Store;

/// Pages kept at most (of one revision).
const MAX_PAGES: usize = 512;
/// Bytes of page JSON kept at most.
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// One catalog page, serialized.
#[derive(Debug)]
pub struct ServedPage {
    /// The catalog's JSON.
    pub body: Arc<[u8]>,
    /// Token of the next page.
    pub next: Option<String>,
    /// Token of the previous page.
    pub previous: Option<String>,
}

/// What is read of the documents once per revision: every offer with its policies, the distinct access
/// policies (parsed), and which offers cover each asset.
#[derive(Debug)]
pub(crate) struct Snapshot {
    revision: i64,
    /// Every offer, with the index of its access policy in `access`.
    offers: Vec<(ResolvedOffer, usize)>,
    /// The distinct access policies by id; `None` for one that does not parse (its offers are hidden).
    access: Vec<Option<Policy>>,
    /// Asset id to the indexes of the offers that cover it.
    by_asset: HashMap<String, Vec<usize>>,
}

impl Snapshot {
    async fn load(store: &Store, revision: i64) -> Result<Snapshot, CatalogFault> {
        let offers = store.all_offers().await?;
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut access = Vec::new();
        let mut indexes = Vec::with_capacity(offers.len());
        let mut by_asset: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, o) in offers.iter().enumerate() {
            let index = *ids
                .entry(o.offer.access_policy.as_str())
                .or_insert_with(|| {
                    access.push(match caap_policy::parse_policy(&o.access_policy) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            tracing::warn!(policy = %o.offer.access_policy, error = %e,
                            "access policy unreadable; its offers are hidden");
                            None
                        }
                    });
                    access.len() - 1
                });
            indexes.push(index);
            for asset in &o.offer.assets {
                by_asset.entry(asset.clone()).or_default().push(i);
            }
        }
        Ok(Snapshot {
            revision,
            offers: offers.into_iter().zip(indexes).collect(),
            access,
            by_asset,
        })
    }

    /// The distinct access policies, in the order a [`View`] lists their decisions.
    pub(crate) fn access_policies(&self) -> impl Iterator<Item = Option<&Policy>> {
        self.access.iter().map(Option::as_ref)
    }
}

/// The pages kept of one revision, and its snapshot.
#[derive(Debug, Default)]
struct Kept {
    snapshot: Option<Arc<Snapshot>>,
    pages: HashMap<PageKey, Arc<ServedPage>>,
    bytes: usize,
}

/// What a page depends on besides the documents.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PageKey {
    cursor: Option<String>,
    limit: u32,
    filter: Filter,
    /// For each access policy of the snapshot, whether the caller passes it.
    view: Vec<bool>,
}

/// The catalog pages served, per revision. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub(crate) struct Served(Arc<Mutex<Kept>>);

impl Served {
    /// The snapshot of `revision`, read from the store if the one kept is of another revision (then the pages
    /// kept go too).
    pub(crate) async fn snapshot(
        &self,
        store: &Store,
        revision: i64,
    ) -> Result<Arc<Snapshot>, CatalogFault> {
        if let Some(s) = self.lock().snapshot.as_ref()
            && s.revision == revision
        {
            return Ok(s.clone());
        }
        let fresh = Arc::new(Snapshot::load(store, revision).await?);
        let mut kept = self.lock();
        if kept
            .snapshot
            .as_ref()
            .is_none_or(|s| s.revision != revision)
        {
            *kept = Kept {
                snapshot: Some(fresh.clone()),
                ..Kept::default()
            };
        }
        Ok(fresh)
    }

    /// The page for this request and view: kept, or built with `build` and kept.
    pub(crate) async fn page<B, F>(
        &self,
        snapshot: &Arc<Snapshot>,
        cursor: &Cursor,
        limit: u32,
        filter: &Filter,
        view: Vec<bool>,
        build: B,
    ) -> Result<Arc<ServedPage>, CatalogFault>
    where
        B: FnOnce(Vec<bool>) -> F,
        F: Future<Output = Result<ServedPage, CatalogFault>>,
    {
        let key = PageKey {
            cursor: cursor.token(),
            limit,
            filter: filter.clone(),
            view,
        };
        if let Some(page) = self.lock().pages.get(&key) {
            return Ok(page.clone());
        }
        let page = Arc::new(build(key.view.clone()).await?);
        let mut kept = self.lock();
        if kept
            .snapshot
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, snapshot))
        {
            let size = page.body.len();
            while !kept.pages.is_empty()
                && (kept.pages.len() >= MAX_PAGES || kept.bytes + size > MAX_BYTES)
            {
                let Some(old) = kept.pages.keys().next().cloned() else {
                    break;
                };
                if let Some(gone) = kept.pages.remove(&old) {
                    kept.bytes -= gone.body.len();
                }
            }
            if size <= MAX_BYTES {
                kept.bytes += size;
                kept.pages.insert(key, page.clone());
            }
        }
        Ok(page)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A panic while holding the lock cannot leave a half-made entry: every change is one assignment.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The catalog builder's source over a snapshot: assets from the store, offers from the snapshot.
pub(crate) struct SnapshotSource<'a> {
    pub(crate) store: &'a Store,
    pub(crate) snapshot: &'a Snapshot,
    /// The caller's view (see [`PageKey::view`]): only the offers it passes are given to the builder.
    pub(crate) view: &'a [bool],
}

impl CatalogSource for SnapshotSource<'_> {
    async fn assets(&self, cursor: &Cursor, limit: u32) -> Result<Vec<Asset>, CatalogFault> {
        self.store.assets(cursor, limit).await
    }

    async fn asset(&self, id: &str) -> Result<Option<Asset>, CatalogFault> {
        self.store.asset(id).await
    }

    /// The offers covering these assets that the caller may see (the others are of no use to the builder).
    async fn offers_for(&self, asset_ids: &[String]) -> Result<Vec<ResolvedOffer>, CatalogFault> {
        let mut found: Vec<usize> = asset_ids
            .iter()
            .filter_map(|a| self.snapshot.by_asset.get(a))
            .flatten()
            .copied()
            .collect();
        found.sort_unstable();
        found.dedup();
        Ok(found
            .into_iter()
            .filter_map(|i| self.snapshot.offers.get(i))
            .filter(|(_, access)| self.view.get(*access) == Some(&true))
            .map(|(offer, _)| offer.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    use caap_catalog::build::PageRequest;
    use caap_identity::VerifiedCaller;
    use caap_identity::auth::StaticTokens;
    use serde_json::{Value, json};

    use crate::catalog::{CatalogParts, CatalogService, catalog_identity};
    use crate::clock::SystemClock;
    use crate::store::tests::{backends, open};
    use crate::store::{DocKind, DocRef};

    fn service(store: Store) -> CatalogService {
        CatalogService::new(CatalogParts {
            store,
            clock: Arc::new(SystemClock),
            decider: Arc::new(caap_policy::OdrlEvaluator::new()),
            identity: catalog_identity("did:web:p", "P", "http://p", "http://p/dsp"),
            source_credentials: vec![],
            http: reqwest::Client::new().into(),
            outbound: Arc::new(StaticTokens::new(vec![], None)),
            federation: Default::default(),
        })
    }

    fn caller(membership: Option<&str>) -> VerifiedCaller {
        VerifiedCaller {
            participant_id: "did:web:c".into(),
            claims: membership
                .map(|m| BTreeMap::from([("membership".to_owned(), Value::from(m))]))
                .unwrap_or_default(),
            method: "static-token",
        }
    }

    async fn put_asset(store: &Store, id: &str) {
        let body = json!({"id": id, "title": id,
            "dataAddress": {"type": "HttpApi", "url": "http://127.0.0.1:9/x"}});
        store.create(DocKind::Asset, id, &body, &[]).await.unwrap();
    }

    async fn put_offer(store: &Store, id: &str, assets: &[&str], access: &str) {
        let body =
            json!({"id": id, "assets": assets, "accessPolicy": access, "contractPolicy": "anyone"});
        let offer: caap_catalog::offer::Offer = serde_json::from_value(body.clone()).unwrap();
        let refs = DocRef::of_offer(&offer);
        if store.get(DocKind::Offer, id).await.unwrap().is_some() {
            store
                .replace(DocKind::Offer, id, &body, &refs, None)
                .await
                .unwrap();
        } else {
            store
                .create(DocKind::Offer, id, &body, &refs)
                .await
                .unwrap();
        }
    }

    async fn titles(s: &CatalogService, who: &VerifiedCaller) -> (Arc<ServedPage>, Vec<String>) {
        let request = PageRequest {
            cursor: Cursor::Start,
            limit: 50,
            filter: Filter::default(),
        };
        let page = s.catalog(who, &request).await.unwrap();
        let body: Value = serde_json::from_slice(&page.body).unwrap();
        let titles = body["dataset"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["dct:title"].as_str().unwrap().to_owned())
            .collect();
        (page, titles)
    }

    /// Pages are kept, and a change made through another store on the same database (another replica) is
    /// served by the next request; what a caller sees follows its own claims, never another caller's.
    #[tokio::test]
    async fn kept_pages_follow_changes_from_any_replica_and_each_callers_view() {
        for b in backends("served").await {
            let (one, two) = (open(&b).await, open(&b).await);
            for (id, constraint) in [
                ("anyone", json!([])),
                (
                    "members",
                    json!([{"leftOperand": "caap:claim:membership", "operator": "eq", "rightOperand": "gold"}]),
                ),
            ] {
                let body = json!({"id": id, "policy": {"@type": "Set",
                    "permission": [{"action": "use", "constraint": constraint}]}});
                one.create(DocKind::Policy, id, &body, &[]).await.unwrap();
            }
            put_asset(&one, "a1").await;
            put_offer(&one, "o1", &["a1"], "anyone").await;
            let served = service(one.clone());
            let (plain, gold) = (caller(None), caller(Some("gold")));

            let (first, seen) = titles(&served, &plain).await;
            assert_eq!(seen, ["a1"]);
            let (again, _) = titles(&served, &plain).await;
            assert!(Arc::ptr_eq(&first, &again), "the page is kept");

            // Another replica adds a dataset to the offer: served at once.
            put_asset(&two, "a2").await;
            put_offer(&two, "o1", &["a1", "a2"], "anyone").await;
            assert_eq!(titles(&served, &plain).await.1, ["a1", "a2"]);

            // A members-only offer: a member sees it, the next plain caller does not.
            put_asset(&two, "a3").await;
            put_offer(&two, "o2", &["a3"], "members").await;
            assert_eq!(titles(&served, &gold).await.1, ["a1", "a2", "a3"]);
            assert_eq!(titles(&served, &plain).await.1, ["a1", "a2"]);

            // Withdrawn on the other replica: gone for the member too.
            two.delete(DocKind::Offer, "o2").await.unwrap();
            assert_eq!(titles(&served, &gold).await.1, ["a1", "a2"]);
            // A dataset's change shows as well.
            let changed = json!({"id": "a1", "title": "a1 renamed",
                "dataAddress": {"type": "HttpApi", "url": "http://127.0.0.1:9/x"}});
            two.replace(DocKind::Asset, "a1", &changed, &[], None)
                .await
                .unwrap();
            assert_eq!(titles(&served, &plain).await.1, ["a1 renamed", "a2"]);
        }
    }
}
