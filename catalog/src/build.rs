//! Builds the catalog one requester may see, one page at a time.
//!
//! The store is reached through [`CatalogSource`]; who may see an offer is decided by the caller's
//! `visible` function (the connector asks the policy engine with the requester's verified claims).
//! A dataset appears only with the offers its requester may see, and not at all without one.

use std::collections::HashMap;
use std::future::Future;

use crate::asset::Asset;
use crate::dcat::{Catalog, DataService, Dataset, Distribution, IdRef, OpenAccess};
use crate::error::CatalogFault;
use crate::filter::Filter;
use crate::iri::Namespace;
use crate::offer::ResolvedOffer;
use crate::page::{Cursor, Page};
use crate::{DSP_VERSION, policy_context};

/// The store seam the catalog builder reads through. The connector implements it with SeaORM.
pub trait CatalogSource: Sync {
    /// Up to `limit` assets from `cursor`: ascending by id for `Start` and `After`, descending for
    /// `Before`.
    fn assets(
        &self,
        cursor: &Cursor,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Asset>, CatalogFault>> + Send;

    /// One asset by id.
    fn asset(&self, id: &str) -> impl Future<Output = Result<Option<Asset>, CatalogFault>> + Send;

    /// Every offer naming one of these assets, with its policies resolved.
    fn offers_for(
        &self,
        asset_ids: &[String],
    ) -> impl Future<Output = Result<Vec<ResolvedOffer>, CatalogFault>> + Send;
}

/// Who is serving the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogIdentity {
    /// The provider's participant id (DID).
    pub participant_id: String,
    /// The catalog's `@id`.
    pub catalog_id: String,
    /// Display name of the provider, e.g. `Malmö`.
    pub publisher: String,
    /// The DSP base URL, e.g. `https://malmo.example/dsp/2025-1`.
    pub dsp_base: String,
    /// The version document URL, e.g. `https://malmo.example/.well-known/dspace-version`.
    pub version_url: String,
    /// The root of the open-data endpoints (public downloads, the DCAT-AP feed), e.g.
    /// `https://malmo.example/open/v1`.
    pub open_url: String,
}

impl CatalogIdentity {
    /// The `DataService` every distribution points at.
    pub fn data_service(&self) -> DataService {
        DataService {
            id: self.service_id(),
            kind: "DataService".into(),
            endpoint_url: self.dsp_base.clone(),
            endpoint_description: Some(self.version_url.clone()),
        }
    }

    /// The data service's `@id`.
    pub fn service_id(&self) -> String {
        format!("{}#dsp-{DSP_VERSION}", self.participant_id)
    }

    /// Where anyone downloads the data of the public dataset with this handle.
    pub fn download_url(&self, handle: &str) -> String {
        format!(
            "{}/datasets/{}/data",
            self.open_url.trim_end_matches('/'),
            crate::iri::encode_segment(handle)
        )
    }

    /// The namespace the dataset and offer IRIs are minted in (see [`crate::iri`]).
    pub fn namespace(&self) -> Namespace {
        Namespace::new(&self.dsp_base)
    }
}

/// A request for one catalog page.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Where to start.
    pub cursor: Cursor,
    /// At most this many datasets.
    pub limit: u32,
    /// Conditions every dataset must meet.
    pub filter: Filter,
}

/// The result: a catalog plus the tokens for `Link` headers.
#[derive(Debug, Clone)]
pub struct CatalogPage {
    /// The catalog for this page.
    pub catalog: Catalog,
    /// Token of the next page.
    pub next: Option<String>,
    /// Token of the previous page.
    pub previous: Option<String>,
}

/// Turns an asset and the offers its requester may see into a DCAT dataset.
pub fn dataset(
    ident: &CatalogIdentity,
    asset: &Asset,
    offers: &[&ResolvedOffer],
    as_root: bool,
) -> Dataset {
    let service = ident.service_id();
    let ns = ident.namespace();
    let open = offers.iter().any(|o| o.offer.public).then(|| {
        let url = ident.download_url(&asset.id);
        OpenAccess {
            access_url: IdRef { id: url.clone() },
            download_url: IdRef { id: url },
        }
    });
    Dataset {
        context: as_root.then(policy_context),
        id: ns.dataset(&asset.id),
        kind: "Dataset".into(),
        title: Some(asset.title.clone()),
        description: Some(asset.description.clone()).filter(|d| !d.is_empty()),
        keyword: asset.keywords.clone(),
        theme: asset.themes.clone(),
        spatial: asset.spatial.clone(),
        conforms_to: asset.data_model_schema.clone(),
        data_model: asset.data_model.clone(),
        license: asset.license.clone(),
        media_type: asset.media_type.clone(),
        has_policy: offers
            .iter()
            .map(|o| o.catalog_offer(&ns.offer(&o.offer.id)))
            .collect(),
        distribution: asset
            .data_address
            .formats()
            .iter()
            .map(|f| Distribution {
                kind: "Distribution".into(),
                format: (*f).to_owned(),
                access_service: service.clone(),
                open: open.clone(),
            })
            .collect(),
    }
}

/// Scans assets from the request's cursor in batches, keeps those that pass the filter and have at
/// least one offer the requester may see, and stops after one item more than the page holds.
pub async fn catalog_page<S, V>(
    source: &S,
    ident: &CatalogIdentity,
    request: &PageRequest,
    visible: V,
) -> Result<CatalogPage, CatalogFault>
where
    S: CatalogSource,
    V: Fn(&ResolvedOffer) -> bool,
{
    let want = request.limit as usize + 1;
    let batch = request.limit.clamp(32, 500) * 2;
    let mut cursor = request.cursor.clone();
    let mut found: Vec<Dataset> = Vec::new();
    loop {
        let assets = source.assets(&cursor, batch).await?;
        let exhausted = assets.len() < batch as usize;
        let Some(last) = assets.last() else { break };
        let last_id = last.id.clone();
        let candidates: Vec<&Asset> = assets
            .iter()
            .filter(|a| request.filter.matches(a))
            .collect();
        if !candidates.is_empty() {
            let ids: Vec<String> = candidates.iter().map(|a| a.id.clone()).collect();
            let offers = source.offers_for(&ids).await?;
            // Who may see an offer is decided once per offer, and each offer's asset list is read once (not
            // once per dataset of the batch).
            let mut by_asset: HashMap<&str, Vec<&ResolvedOffer>> =
                ids.iter().map(|id| (id.as_str(), Vec::new())).collect();
            for offer in offers.iter().filter(|o| visible(o)) {
                for asset in &offer.offer.assets {
                    if let Some(mine) = by_asset.get_mut(asset.as_str()) {
                        mine.push(offer);
                    }
                }
            }
            for asset in candidates {
                let mine = by_asset
                    .get(asset.id.as_str())
                    .map_or(&[][..], Vec::as_slice);
                if !mine.is_empty() {
                    found.push(dataset(ident, asset, mine, false));
                    if found.len() >= want {
                        break;
                    }
                }
            }
        }
        if found.len() >= want || exhausted {
            break;
        }
        cursor = match cursor {
            Cursor::Before(_) => Cursor::Before(last_id),
            _ => Cursor::After(last_id),
        };
    }
    let ns = ident.namespace();
    let page = Page::from_scan(found, &request.cursor, request.limit, |d| {
        ns.dataset_handle(&d.id).unwrap_or(&d.id).to_owned()
    });
    Ok(CatalogPage {
        catalog: Catalog {
            context: policy_context(),
            id: ident.catalog_id.clone(),
            kind: "Catalog".into(),
            participant_id: ident.participant_id.clone(),
            title: Some(format!("{} data catalog", ident.publisher)),
            publisher: Some(ident.publisher.clone()),
            service: vec![ident.data_service()],
            dataset: page.items,
        },
        next: page.next,
        previous: page.previous,
    })
}

/// One dataset as a response root, or `NotFound` when it does not exist or the requester may not
/// see any of its offers (the two are indistinguishable to the requester on purpose).
pub async fn dataset_by_id<S, V>(
    source: &S,
    ident: &CatalogIdentity,
    id: &str,
    visible: V,
) -> Result<Dataset, CatalogFault>
where
    S: CatalogSource,
    V: Fn(&ResolvedOffer) -> bool,
{
    let not_found = || CatalogFault::NotFound(format!("no dataset `{id}` in this catalog"));
    // The id in the path is the dataset's IRI (percent-decoded) or its handle.
    let handle = ident.namespace().dataset_handle(id).ok_or_else(not_found)?;
    let asset = source.asset(handle).await?.ok_or_else(not_found)?;
    let offers = source.offers_for(std::slice::from_ref(&asset.id)).await?;
    let mine: Vec<&ResolvedOffer> = offers.iter().filter(|o| visible(o)).collect();
    if mine.is_empty() {
        return Err(not_found());
    }
    Ok(dataset(ident, &asset, &mine, true))
}

#[cfg(test)]
mod tests;
