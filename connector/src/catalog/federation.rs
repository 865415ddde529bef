//! The consumer side of the catalog protocol: fetch another connector's catalog (every page, each
//! staged in the store as it arrives) into the federated cache, by hand or as the crawler's work.

use caap_catalog::DSP_VERSION;
use caap_catalog::dcat::VersionResponse;
use caap_catalog::remote::parse_catalog;
use reqwest::header;
use serde::Serialize;

use super::CatalogService;
use crate::error::ServiceError;
use crate::store::federation::{NewSource, SourceOrigin, new_generation};

/// Most pages followed for one catalog (a guard against a provider that never stops).
pub const MAX_PAGES: usize = 1000;

/// What a fetch brought in.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchedCatalog {
    /// The address given.
    pub counter_party_address: String,
    /// The DSP base the catalog was requested from.
    pub dsp_base: String,
    /// The provider's participant id.
    pub participant_id: String,
    /// The provider's display name.
    pub city: String,
    /// Datasets cached.
    pub datasets: usize,
    /// Pages followed.
    pub pages: usize,
}

fn upstream(address: &str, what: impl std::fmt::Display) -> ServiceError {
    ServiceError::Upstream(format!("{address}: {what}"))
}

/// A connector found by version discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// Its DSP 2025-1 base URL.
    pub base: String,
    /// Its participant DID, when the version document tells it (the audience of our DCP token).
    pub participant_id: Option<String>,
}

impl CatalogService {
    /// Finds the DSP 2025-1 base of a connector, given its root or its DSP base URL, and its DID (from
    /// the `serviceId`, or the `did:web` of the root when `identifierType` says so).
    pub async fn discover(&self, address: &str) -> Result<Discovered, ServiceError> {
        let address = address.trim_end_matches('/');
        let url = crate::error::http_url("/counterPartyAddress", address)?;
        let origin = url.origin().ascii_serialization();
        let mut roots = vec![address.to_owned()];
        if origin != address {
            roots.push(origin);
        }
        let mut last_problem = String::new();
        for root in roots {
            let res = self
                .http
                .get(format!("{root}/.well-known/dspace-version"))
                .send()
                .await;
            let res = match res {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => {
                    last_problem = format!("version discovery at {root} answered {}", r.status());
                    continue;
                }
                Err(e) => {
                    let why = crate::outbound::describe(&e);
                    return Err(upstream(address, format!("cannot reach it: {why}")));
                }
            };
            let versions: VersionResponse = res.json().await.map_err(|e| {
                upstream(address, format!("the version document is not valid: {e}"))
            })?;
            let Some(v) = versions
                .protocol_versions
                .iter()
                .find(|v| v.version == DSP_VERSION)
            else {
                let offered: Vec<_> = versions
                    .protocol_versions
                    .iter()
                    .map(|v| v.version.as_str())
                    .collect();
                return Err(upstream(
                    address,
                    format!(
                        "it speaks DSP {offered:?}, not {DSP_VERSION}; caap stops here as DSP requires"
                    ),
                ));
            };
            let base = format!("{root}{}", v.path.trim_end_matches('/'));
            if root == address || base == address {
                let participant_id = v
                    .service_id
                    .as_deref()
                    .map(|s| s.split('#').next().unwrap_or_default())
                    .filter(|s| s.starts_with("did:"))
                    .map(str::to_owned)
                    .or_else(|| {
                        (v.identifier_type.as_deref() == Some("did:web"))
                            .then(|| caap_identity::did_web_from_url(&root).ok())
                            .flatten()
                    });
                return Ok(Discovered {
                    base,
                    participant_id,
                });
            }
            last_problem = format!("{address} is neither the root nor the DSP base ({base})");
        }
        Err(upstream(
            address,
            format!("no DSP {DSP_VERSION} endpoint found ({last_problem})"),
        ))
    }

    /// Fetches every page of a connector's catalog and replaces what the cache held for it; the source
    /// stays in the cache (a manual source, crawled again on schedule) until removed.
    pub async fn fetch_catalog(&self, address: &str) -> Result<FetchedCatalog, ServiceError> {
        let discovered = self.discover(address).await?;
        // The provider may be a source already (from the directory, under the address it lists):
        // then that source is fetched, not a second one made.
        if let Some(pid) = discovered.participant_id.as_deref()
            && let Some(known) = self.store.source_of_participant(pid).await?
        {
            let key = known.counter_party_address;
            return self.crawl_into(address, &key, discovered).await;
        }
        let next = self.clock.now() + self.crawl.interval();
        self.store
            .put_source(
                &NewSource {
                    address: discovered.base.clone(),
                    participant_id: discovered.participant_id.clone().unwrap_or_default(),
                    city: discovered.participant_id.clone().unwrap_or_default(),
                },
                SourceOrigin::Manual,
                next,
            )
            .await?;
        let key = discovered.base.clone();
        self.crawl_into(address, &key, discovered).await
    }

    /// Crawls a source the processor claimed: discovery, then every page into the store.
    pub async fn crawl_source(&self, address: &str) -> Result<FetchedCatalog, ServiceError> {
        match self.discover(address).await {
            Ok(discovered) => self.crawl_into(address, address, discovered).await,
            Err(e) => {
                self.record_failure(address, None, &e).await;
                Err(e)
            }
        }
    }

    async fn record_failure(&self, key: &str, generation: Option<i64>, e: &ServiceError) {
        let failures = self
            .store
            .catalog_source(key)
            .await
            .ok()
            .flatten()
            .map_or(0, |s| s.failures);
        let next = self.clock.now() + self.crawl.backoff(failures);
        if let Err(e2) = self
            .store
            .fail_crawl(key, generation.unwrap_or(0), &e.to_string(), next)
            .await
        {
            tracing::warn!(source = %key, error = %e2, "recording a failed crawl failed");
        }
    }

    /// Streams the catalog of `discovered` into a new generation of the source `key`, page by page, and
    /// makes it the live one (or records the failure, keeping the last good one).
    async fn crawl_into(
        &self,
        address: &str,
        key: &str,
        discovered: Discovered,
    ) -> Result<FetchedCatalog, ServiceError> {
        let generation = new_generation();
        match self.stream_pages(key, generation, &discovered).await {
            Ok((participant_id, city, pages)) => {
                let next = self.clock.now() + self.crawl.interval();
                let datasets = self
                    .store
                    .commit_crawl(key, generation, &participant_id, &city, next)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::Conflict(format!(
                            "the source {key} was removed while its catalog was fetched"
                        ))
                    })?;
                tracing::info!(source = %key, %participant_id, datasets, pages, "catalog cached");
                Ok(FetchedCatalog {
                    counter_party_address: address.to_owned(),
                    dsp_base: discovered.base,
                    participant_id,
                    city,
                    datasets: usize::try_from(datasets).unwrap_or_default(),
                    pages,
                })
            }
            Err(e) => {
                self.record_failure(key, Some(generation), &e).await;
                Err(e)
            }
        }
    }

    /// Fetches every page, staging each in the store as it arrives (one page in memory at a time).
    /// Returns the provider's id, its name and the pages followed.
    async fn stream_pages(
        &self,
        key: &str,
        generation: i64,
        discovered: &Discovered,
    ) -> Result<(String, String, usize), ServiceError> {
        let Discovered {
            base,
            participant_id: audience,
        } = discovered;
        let auth = self
            .outbound
            .authorization(audience.as_deref())
            .map_err(|e| ServiceError::Internal(format!("cannot authorize the request: {e}")))?;
        let body = caap_catalog::dcat::catalog_request(Vec::new());
        let mut url = format!("{base}/catalog/request");
        let mut participant_id;
        let mut city = None;
        let mut pages = 0;
        loop {
            pages += 1;
            let mut req = self.http.post(&url).json(&body);
            if let Some(a) = &auth {
                req = req.header(header::AUTHORIZATION, a.expose());
            }
            let res = req
                .send()
                .await
                .map_err(|e| upstream(&url, format!("request failed: {e}")))?;
            let status = res.status();
            let next = res
                .headers()
                .get_all(header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link);
            let doc: serde_json::Value = res.json().await.map_err(|e| {
                upstream(
                    &url,
                    format!("answered {status} with a body that is not JSON: {e}"),
                )
            })?;
            if !status.is_success() {
                let reason = doc
                    .get("reason")
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| doc.to_string());
                return Err(upstream(&url, format!("answered {status}: {reason}")));
            }
            let catalog = parse_catalog(&doc).map_err(|e| upstream(&url, e))?;
            participant_id = catalog.participant_id;
            city = city.or(catalog.publisher);
            let name = city.as_deref().unwrap_or(&participant_id);
            let added = self
                .store
                .stage_page(key, name, generation, &catalog.datasets)
                .await?;
            tracing::debug!(page = pages, added, "catalog page staged");
            match next {
                Some(n) if pages < MAX_PAGES => url = n,
                Some(_) => {
                    return Err(upstream(
                        base,
                        format!("more than {MAX_PAGES} catalog pages; refusing to follow further"),
                    ));
                }
                None => break,
            }
        }
        let city = city.unwrap_or_else(|| participant_id.clone());
        Ok((participant_id, city, pages))
    }
}

/// The `rel="next"` target of one `Link` header value.
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_next_link() {
        let v = "<https://a/x?continuationToken=abc&limit=5>; rel=\"next\", <https://a/x?b>; rel=\"previous\"";
        assert_eq!(
            super::next_link(v).as_deref(),
            Some("https://a/x?continuationToken=abc&limit=5")
        );
        assert_eq!(super::next_link("<https://a/x?b>; rel=\"previous\""), None);
    }
}
