//! The consumer side of the catalog protocol: fetch another connector's catalog (every page) into
//! the federated cache.

use caap_catalog::DSP_VERSION;
use caap_catalog::dcat::VersionResponse;
use caap_catalog::remote::{RemoteDataset, parse_catalog};
use reqwest::header;
use serde::Serialize;

use super::CatalogService;
use crate::error::ServiceError;

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

    /// Fetches every page of a connector's catalog and replaces what the cache held for it.
    pub async fn fetch_catalog(&self, address: &str) -> Result<FetchedCatalog, ServiceError> {
        let Discovered {
            base,
            participant_id: audience,
        } = self.discover(address).await?;
        let auth = self
            .outbound
            .authorization(audience.as_deref())
            .map_err(|e| ServiceError::Internal(format!("cannot authorize the request: {e}")))?;
        let body = caap_catalog::dcat::catalog_request(Vec::new());
        let mut url = format!("{base}/catalog/request");
        let mut datasets: Vec<RemoteDataset> = Vec::new();
        let mut ids = std::collections::HashSet::new();
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
            datasets.extend(
                catalog
                    .datasets
                    .into_iter()
                    .filter(|d| ids.insert(d.id.clone())),
            );
            tracing::debug!(
                page = pages,
                datasets = datasets.len(),
                "catalog page fetched"
            );
            match next {
                Some(n) if pages < MAX_PAGES => url = n,
                Some(_) => {
                    return Err(upstream(
                        address,
                        format!("more than {MAX_PAGES} catalog pages; refusing to follow further"),
                    ));
                }
                None => break,
            }
        }
        let city = city.unwrap_or_else(|| participant_id.clone());
        self.store
            .replace_cached_catalog(&base, &participant_id, &city, &datasets)
            .await?;
        tracing::info!(%base, %participant_id, datasets = datasets.len(), pages, "catalog cached");
        Ok(FetchedCatalog {
            counter_party_address: address.to_owned(),
            dsp_base: base,
            participant_id,
            city,
            datasets: datasets.len(),
            pages,
        })
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
