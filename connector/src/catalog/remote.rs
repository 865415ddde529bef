//! Offers in other connectors' catalogs: what a consumer negotiates for when it names an offer by id.

use reqwest::header;
use serde_json::Value;

use super::CatalogService;
use crate::error::ServiceError;

impl CatalogService {
    /// Finds `offer_id` in the catalog of the provider at `address`: fetches the catalog (into the federated
    /// cache), then the dataset that carries the offer, for its full terms. Returns the provider's DSP base,
    /// its participant id, the offer as its catalog lists it, and the dataset's id.
    pub async fn remote_offer(
        &self,
        address: &str,
        offer_id: &str,
    ) -> Result<(String, String, Value, String), ServiceError> {
        let fetched = self.fetch_catalog(address).await?;
        let cached = self.store.cached_datasets_of(&fetched.dsp_base).await?;
        // The offer's id as the provider's catalog has it, or its handle at a caap provider (resolved against
        // the provider's namespace).
        let resolved =
            caap_catalog::iri::Namespace::new(&fetched.dsp_base).absolute_offer(offer_id);
        let Some(dataset) = cached
            .iter()
            .filter(|d| d.counter_party_address == fetched.dsp_base)
            .find(|d| {
                d.dataset
                    .offer_ids
                    .iter()
                    .any(|o| o == offer_id || *o == resolved)
            })
        else {
            return Err(ServiceError::field(
                "/offerId",
                format!(
                    "the catalog of {} has no offer `{offer_id}` visible to this connector",
                    fetched.participant_id
                ),
            ));
        };
        // The id as the provider's catalog lists it.
        let offer_id = if dataset.dataset.offer_ids.iter().any(|o| o == offer_id) {
            offer_id
        } else {
            resolved.as_str()
        };
        let url = format!(
            "{}/catalog/datasets/{}",
            fetched.dsp_base,
            caap_catalog::iri::encode_segment(&dataset.dataset.id)
        );
        let mut req = self.http.get(&url);
        if let Some(a) = self
            .outbound
            .authorization(Some(&fetched.participant_id))
            .map_err(|e| ServiceError::Internal(format!("cannot authorize the request: {e}")))?
        {
            req = req.header(header::AUTHORIZATION, a.expose());
        }
        let res = req
            .send()
            .await
            .map_err(|e| ServiceError::Upstream(format!("{url}: {e}")))?;
        if !res.status().is_success() {
            return Err(ServiceError::Upstream(format!(
                "{url} answered {}",
                res.status()
            )));
        }
        let dataset_json: Value = res
            .json()
            .await
            .map_err(|e| ServiceError::Upstream(format!("{url}: not JSON: {e}")))?;
        let offer = dataset_json
            .get("hasPolicy")
            .and_then(Value::as_array)
            .and_then(|offers| {
                offers
                    .iter()
                    .find(|o| o.get("@id").and_then(Value::as_str) == Some(offer_id))
            })
            .cloned()
            .ok_or_else(|| {
                ServiceError::Upstream(format!("{url} does not list offer {offer_id} any more"))
            })?;
        Ok((
            fetched.dsp_base,
            fetched.participant_id,
            offer,
            dataset.dataset.id.clone(),
        ))
    }
}
