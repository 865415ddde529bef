//! An NGSI-LD query: the entities of one type at a context broker, optionally filtered and per tenant.

use super::{AccessError, Opened, Source, SourceContext, open_http};

/// `GET /ngsi-ld/v1/entities?type=…&q=…` at a broker.
#[derive(Debug, Clone)]
pub struct NgsiLdQuery {
    /// The broker's base (before `/ngsi-ld/v1`).
    pub broker_url: String,
    /// The entity type.
    pub entity_type: String,
    /// An NGSI-LD query (`q`).
    pub query: Option<String>,
    /// The tenant (`NGSILD-Tenant`).
    pub tenant: Option<String>,
}

impl Source for NgsiLdQuery {
    async fn open(self, cx: &SourceContext<'_>) -> Result<Opened, AccessError> {
        let url = format!(
            "{}/ngsi-ld/v1/entities",
            self.broker_url.trim_end_matches('/')
        );
        let mut req = cx
            .streaming
            .get(&url)
            .query(&[("type", self.entity_type.as_str())])
            .header("accept", "application/ld+json");
        if let Some(q) = &self.query {
            req = req.query(&[("q", q.as_str())]);
        }
        if let Some(t) = &self.tenant {
            req = req.header("NGSILD-Tenant", t.as_str());
        }
        open_http(req, &url).await
    }
}
