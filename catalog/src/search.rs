//! The federated catalog cache: other connectors' datasets with where they came from (searched in the
//! connector's store).

use serde::{Deserialize, Serialize};

use crate::remote::RemoteDataset;

/// A dataset in the federated cache, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedDataset {
    /// The provider's DSP address the catalog was fetched from.
    pub counter_party_address: String,
    /// The provider's participant id.
    pub participant_id: String,
    /// The provider's display name (usually the city).
    pub city: String,
    /// The dataset.
    pub dataset: RemoteDataset,
}
