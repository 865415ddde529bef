//! Open data: public offers' datasets, readable by anyone over plain HTTP(S) without credentials or a
//! negotiation, and the DCAT-AP 3.0 feed open-data portals harvest ([`feed`]).
//!
//! A dataset is public while a public offer names it ([`caap_catalog::offer::Offer::public`]; the catalog
//! service refuses public offers on datasets with personal data). A download streams the dataset's source
//! exactly as a transfer's pull does (the same [`crate::transfer::dataplane::sources`], live streams
//! included), after the client's rate limit ([`crate::ratelimit`]); each one is counted per dataset and UTC
//! day, anonymously (nothing about the client is stored).

pub mod feed;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use caap_catalog::asset::Asset;
use caap_catalog::build::CatalogSource;

use crate::error::ServiceError;
use crate::metrics::Direction;
use crate::service::Connector;
use crate::store::open_data::DownloadCount;
use crate::transfer::dataplane::{AccessError, DataPlane, Opened};

/// Why an open-data request was refused.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The client has used up its rate: 429, try again after the duration.
    #[error("too many requests from this address; try again in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// No public dataset by that id: 404.
    #[error("{0}")]
    NotFound(String),
    /// The source failed, or ours: as for a transfer's pull.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The store failed: 500.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<crate::store::StoreError> for OpenError {
    fn from(e: crate::store::StoreError) -> Self {
        OpenError::Service(e.into())
    }
}

impl From<caap_catalog::CatalogFault> for OpenError {
    fn from(e: caap_catalog::CatalogFault) -> Self {
        OpenError::Service(e.into())
    }
}

/// The open-data service over a connector. Cheap to build per request.
#[derive(Debug, Clone)]
pub struct OpenData {
    /// Where a public dataset's data comes from (the same sources as a transfer's).
    plane: DataPlane,
    /// What is published.
    catalog: crate::catalog::CatalogService,
    /// Per-client rate limits.
    limits: std::sync::Arc<crate::ratelimit::RateLimiter>,
}

impl Connector {
    /// The open-data service, sharing this connector's state.
    pub fn open_data(&self) -> OpenData {
        OpenData {
            plane: self.data_plane(),
            catalog: self.catalog.clone(),
            limits: self.open_limits.clone(),
        }
    }
}

impl OpenData {
    /// Takes one of `client`'s requests from its rate limit.
    pub fn admit(&self, client: IpAddr) -> Result<(), OpenError> {
        self.limits
            .check(client, Instant::now())
            .map_err(OpenError::RateLimited)
    }

    /// The asset with this id (or dataset IRI), if a public offer names it.
    pub async fn public_asset(&self, id: &str) -> Result<Option<Asset>, OpenError> {
        let store = &self.plane.store;
        let ns = self.catalog.identity().namespace();
        let Some(handle) = ns.dataset_handle(id) else {
            return Ok(None);
        };
        let Some(asset) = store.asset(handle).await? else {
            return Ok(None);
        };
        let offers = store.offers_for(std::slice::from_ref(&asset.id)).await?;
        Ok(offers
            .iter()
            .any(|o| o.offer.public && caap_catalog::offer::public_refusal(&asset).is_none())
            .then_some(asset))
    }

    /// A download of a public dataset by `client`: rate-limited, counted, then streamed from its source.
    /// `last_event_id` resumes a live stream (server-sent events) where the client left it.
    pub async fn download(
        &self,
        id: &str,
        client: IpAddr,
        last_event_id: Option<&str>,
    ) -> Result<Opened, OpenError> {
        let metrics = &self.plane.metrics;
        // Refusals are counted without the id the client sent (no label per made-up id).
        if let Err(e) = self.admit(client) {
            metrics.public_download("", "rate_limited");
            return Err(e);
        }
        let Some(asset) = self.public_asset(id).await? else {
            metrics.public_download("", "not_found");
            return Err(OpenError::NotFound(format!(
                "no public dataset `{id}` here; the DSP catalog lists what can be negotiated"
            )));
        };
        let day = self.plane.clock.now().format("%Y-%m-%d").to_string();
        self.plane
            .store
            .count_open_download(&asset.id, &day)
            .await?;
        let mut opened = self
            .plane
            .open_source(&asset.id, last_event_id, None)
            .await?;
        metrics.public_download(&asset.id, "served");
        tracing::info!(dataset = %asset.id, "public download");
        opened.stream = crate::metrics::counted(opened.stream, metrics.clone(), Direction::Out);
        Ok(opened)
    }

    /// Downloads per dataset and day over the last `days` days (1 to 366), today included.
    pub async fn downloads(&self, days: u32) -> Result<Vec<DownloadCount>, ServiceError> {
        if !(1..=366).contains(&days) {
            return Err(ServiceError::BadRequest(
                "days must be between 1 and 366".into(),
                vec![],
            ));
        }
        let since = self.plane.clock.now() - chrono::Duration::days(i64::from(days) - 1);
        Ok(self
            .plane
            .store
            .open_downloads(&since.format("%Y-%m-%d").to_string())
            .await?)
    }
}
