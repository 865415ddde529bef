//! The connector's shared state, [`Connector`]: the store, the clock, who we are, the outbound clients and
//! the narrow services below the process services (catalog, trust, authority). It sits below negotiation,
//! transfer and the processor, which build their services from it (`Connector::negotiations`,
//! `Connector::transfers`), and never imports them: the module graph has no cycle.

use std::sync::Arc;

use caap_identity::{DspAuthenticator, OutboundCredentials};
use caap_policy::PolicyDecider;

use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;

pub use crate::trust::Identity;

/// Everything a request needs, shared by all workers. Cheap to clone.
#[derive(Clone)]
pub struct Connector {
    /// The configuration it was started with.
    pub config: Arc<Config>,
    /// Persistence.
    pub store: Store,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Verifies DSP callers.
    pub authenticator: Arc<dyn DspAuthenticator>,
    /// Authorizes our requests to others.
    pub outbound: Arc<dyn OutboundCredentials>,
    /// Decides policies.
    pub decider: Arc<dyn PolicyDecider>,
    /// Who we are.
    pub identity: Arc<Identity>,
    /// HTTP client for other connectors (protocol messages: a total timeout).
    pub http: crate::outbound::Http,
    /// HTTP client for data flows (no total timeout; connect and read timeouts).
    pub http_streaming: crate::outbound::Http,
    /// Wakes the negotiation processor when work is created (so nothing waits for a poll).
    pub wake: Arc<tokio::sync::Notify>,
    /// The data flows being served, so a suspension stops them at once.
    pub flows: Arc<crate::flows::Flows>,
    /// OAuth2 tokens for protected data sources.
    pub source_tokens: Arc<crate::flows::SourceTokens>,
    /// Signs and checks pull tokens.
    pub pull_tokens: Arc<caap_identity::pull_token::PullTokens>,
    /// NGSI-LD notification endpoints of subscription-fed streams.
    pub notifications: Arc<crate::flows::Notifications>,
    /// Our DID, keys and credential verification (DCP).
    pub trust: Arc<crate::trust::dcp::Trust>,
    /// The trust anchor's service (answers "not a trust anchor" unless `[authority] enabled`).
    pub authority: Arc<crate::authority::Authority>,
    /// Verifies the management API's OIDC access tokens (`[api.oidc]`), if configured.
    pub oidc: Option<Arc<crate::trust::oidc::OidcVerifier>>,
    /// Assets, policies, offers, the DSP catalog and the federated catalog.
    pub catalog: crate::catalog::CatalogService,
    /// Citizen consent (MIM4): records, the per-record release check, withdrawal notices.
    pub consents: Arc<crate::consent::Consents>,
    /// The Prometheus metrics this connector counts.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Per-client rate limits of what anyone may call without credentials (open data).
    pub open_limits: Arc<crate::ratelimit::RateLimiter>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("participant_id", &self.identity.participant_id)
            .field("store", &self.store.backend())
            .finish_non_exhaustive()
    }
}

pub use crate::error::{ServiceError, decode};

impl Connector {
    /// What withdrawal notices are sent and received with.
    pub fn courier(&self) -> crate::consent::notices::Courier {
        crate::consent::notices::Courier {
            consents: self.consents.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            identity: self.identity.clone(),
            http: self.http.clone(),
            outbound: self.outbound.clone(),
            trust: self.trust.clone(),
            dcp: self.config.dsp.auth.mode == crate::config::AuthMode::Dcp,
            data_dir: self.config.data_dir.clone(),
            timeout_secs: self.config.limits.outbound_timeout_secs,
        }
    }
}
