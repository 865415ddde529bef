//! Offers: which assets, under which access policy and which contract policy.

use serde::{Deserialize, Serialize};

use crate::asset::check_id;
use crate::error::FieldError;

/// Most assets one offer may name.
pub const MAX_OFFER_ASSETS: usize = 1000;

/// An offer ties assets to two ODRL policies (by policy id):
/// the access policy decides who may *see* the assets in the catalog, the contract policy is what
/// an agreement on them grants. In the DSP catalog each offer becomes an `odrl:Offer` in the
/// dataset's `hasPolicy`, with the offer's id and the contract policy's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Offer {
    /// Stable id; the `@id` of the ODRL offer in the catalog.
    pub id: String,
    /// Ids of the assets this offer covers.
    pub assets: Vec<String>,
    /// Id of the policy that decides who sees these assets.
    pub access_policy: String,
    /// Id of the policy an agreement grants.
    pub contract_policy: String,
    /// How the provider decides on requests for this offer (default `automatic`).
    #[serde(default, skip_serializing_if = "Approval::is_automatic")]
    pub approval: Approval,
    /// Open data: anyone may download the offer's datasets over plain HTTP(S), without credentials or a
    /// negotiation (`dcat:downloadURL` in the catalog and the DCAT-AP feed). The contract policy must let
    /// anyone use the data (duties such as attribution allowed), and no dataset may hold personal data
    /// ([`public_refusal`]). The offer stays in the DSP catalog, where connectors negotiate as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
}

/// Why `asset` can never be in a public offer, or `None` when it may: datasets that hold personal data
/// (a `personalData` declaration) are never open data, whatever their lawful basis.
pub fn public_refusal(asset: &crate::asset::Asset) -> Option<String> {
    asset.personal_data.as_ref().map(|_| {
        format!(
            "dataset `{}` declares personal data (personalData), and datasets with personal data can never be \
             public; offer it under a negotiated policy instead",
            asset.id
        )
    })
}

/// How a provider decides on contract requests for an offer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// A request that matches the offer and satisfies its contract policy is agreed at once; otherwise it is
    /// terminated with the reason.
    #[default]
    Automatic,
    /// A request that matches and satisfies the policy waits for `approve` or `reject` through the
    /// management API; after approval the negotiation runs on by itself.
    Manual,
    /// Every provider step (offer, agree, finalize, terminate) is taken through the management API; nothing
    /// happens by itself. For negotiating by hand and for the DSP TCK profile.
    Stepwise,
}

impl Approval {
    /// The default.
    pub fn is_automatic(&self) -> bool {
        *self == Approval::Automatic
    }
}

impl Offer {
    /// Every problem with this offer's own fields (references are checked by the store).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check_id("/id", &self.id, &mut errors);
        if self.assets.is_empty() {
            errors.push(FieldError::new("/assets", "name at least one asset id"));
        }
        if self.assets.len() > MAX_OFFER_ASSETS {
            errors.push(FieldError::new(
                "/assets",
                format!("at most {MAX_OFFER_ASSETS} assets per offer"),
            ));
        }
        for (i, a) in self.assets.iter().enumerate() {
            check_id(&format!("/assets/{i}"), a, &mut errors);
            if self.assets[..i].contains(a) {
                errors.push(FieldError::new(
                    format!("/assets/{i}"),
                    format!("asset `{a}` is listed twice"),
                ));
            }
        }
        check_id("/accessPolicy", &self.access_policy, &mut errors);
        check_id("/contractPolicy", &self.contract_policy, &mut errors);
        errors
    }
}

/// An offer with its two policies resolved, as the catalog builder needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedOffer {
    /// The offer.
    pub offer: Offer,
    /// The access policy, ODRL compact JSON-LD as stored.
    pub access_policy: serde_json::Value,
    /// The contract policy, ODRL compact JSON-LD as stored.
    pub contract_policy: serde_json::Value,
}

impl ResolvedOffer {
    /// The `odrl:Offer` shown in a catalog: the contract policy's rules under the offer's IRI (`iri`, see
    /// [`crate::iri`]), without `target` (DSP 2025-1 forbids it inside a catalog) and without a `@context`.
    pub fn catalog_offer(&self, iri: &str) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        body.insert("@id".into(), iri.into());
        body.insert("@type".into(), "Offer".into());
        if let serde_json::Value::Object(policy) = &self.contract_policy {
            for (k, v) in policy {
                match k.as_str() {
                    "@id" | "@type" | "@context" | "uid" | "target" | "assigner" | "assignee" => {}
                    _ => {
                        body.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        serde_json::Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn catalog_offer_drops_target_and_keeps_rules() {
        let r = ResolvedOffer {
            offer: Offer {
                id: "o1".into(),
                assets: vec!["a".into()],
                access_policy: "p".into(),
                contract_policy: "p".into(),
                approval: Default::default(),
                public: false,
            },
            access_policy: json!({}),
            contract_policy: json!({"@id":"p","@type":"Set","target":"a",
                "permission":[{"action":"use"}]}),
        };
        assert_eq!(
            r.catalog_offer("urn:uuid:o1"),
            json!({"@id":"urn:uuid:o1","@type":"Offer","permission":[{"action":"use"}]})
        );
    }

    #[test]
    fn duplicate_and_missing_assets_are_named() {
        let o = Offer {
            id: "o".into(),
            assets: vec!["a".into(), "a".into()],
            access_policy: "p".into(),
            contract_policy: String::new(),
            approval: Default::default(),
            public: false,
        };
        let p: Vec<_> = o.validate().into_iter().map(|e| e.pointer).collect();
        assert_eq!(p, ["/assets/1", "/contractPolicy"]);
    }
}
