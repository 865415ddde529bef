//! The data plane: who may access a transfer's data now, and the sources data comes from.
//!
//! * [`token`]: pull tokens. A pull token is a JWT signed with the connector's key through
//!   `caap_identity::pull_token` (ES256, or EdDSA with an Ed25519 key), bound to the transfer, its agreement
//!   and the consumer, valid for [`TOKEN_TTL_SECS`].
//! * This module: the access checks. A token is checked on every access together with the transfer's state,
//!   so it stops working the moment the transfer is suspended, completed or terminated; every access is then
//!   metered against the agreement's policy ([`crate::enforce::metering`]). Also the receiver of push
//!   transfers this connector consumes.
//! * [`sources`]: one [`sources::Source`] per kind of data source (HTTP, NGSI-LD query, NGSI-LD
//!   subscription, file, server-sent events, polled HTTP). Data is streamed chunk by chunk from the source
//!   to the consumer: memory stays flat whatever the size.
//! * [`source_auth`]: OAuth2 tokens for protected sources; [`flows`]: the flows being served, so a
//!   suspension stops them at once.

mod consent;
pub use crate::flows;
pub mod range;
pub mod source_auth;
pub mod sources;
mod token;

use actix_web::web::Bytes;
use caap_contracts::Role;
use caap_contracts::transfer::message::DataAddress;
use caap_contracts::transfer::state::TransferState;
use futures_util::stream::StreamExt;

use super::model::{TStep, Transfer};
use crate::enforce::metering::{Meter, MeterError, Use};
use crate::service::Connector;

/// The data plane service: serves the data of the transfers this connector provides (pull tokens, the
/// access check, metering, consent release, the sources) and takes in the data of those it consumes (pulls
/// from the provider, push receipts). It owns what it needs (shared with the rest of the connector);
/// the data-plane handlers take it and nothing else.
#[derive(Clone)]
pub struct DataPlane {
    /// The configuration (sources, the data directory, limits).
    pub config: std::sync::Arc<crate::config::Config>,
    /// Persistence.
    pub store: crate::store::Store,
    /// The clock.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// Who we are (pull addresses, pull tokens).
    pub identity: std::sync::Arc<crate::trust::Identity>,
    /// Decides usage policies (metering).
    pub decider: std::sync::Arc<dyn caap_policy::PolicyDecider>,
    /// Citizen consent: the per-record release check.
    pub consents: std::sync::Arc<crate::consent::Consents>,
    /// HTTP client for requests to other connectors' data planes (a total timeout).
    pub http: crate::outbound::Http,
    /// HTTP client for data flows (no total timeout).
    pub http_streaming: crate::outbound::Http,
    /// Authorizes our requests to other connectors.
    pub outbound: std::sync::Arc<dyn caap_identity::OutboundCredentials>,
    /// The data flows being served.
    pub flows: std::sync::Arc<flows::Flows>,
    /// OAuth2 tokens for protected sources.
    pub source_tokens: std::sync::Arc<flows::SourceTokens>,
    /// Signs and checks pull tokens.
    pub pull_tokens: std::sync::Arc<caap_identity::pull_token::PullTokens>,
    /// NGSI-LD notification endpoints of subscription-fed streams.
    pub notifications: std::sync::Arc<flows::Notifications>,
    /// Bytes in and out.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane").finish_non_exhaustive()
    }
}

impl Connector {
    /// The data plane service, sharing this connector's state.
    pub fn data_plane(&self) -> DataPlane {
        DataPlane {
            config: self.config.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            identity: self.identity.clone(),
            decider: self.decider.clone(),
            consents: self.consents.clone(),
            http: self.http.clone(),
            http_streaming: self.http_streaming.clone(),
            outbound: self.outbound.clone(),
            flows: self.flows.clone(),
            source_tokens: self.source_tokens.clone(),
            pull_tokens: self.pull_tokens.clone(),
            notifications: self.notifications.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

pub use sources::{Opened, SourceError, file_stream};

/// How long a pull token is valid.
pub const TOKEN_TTL_SECS: i64 = 600;
/// The `endpointType` of caap's pull addresses.
pub const ENDPOINT_TYPE: &str = "https://w3id.org/idsa/v4.1/HTTP";

/// Why a data-plane access was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No such transfer (for this caller): 404.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is broken (e.g. the body stopped mid-way): 400.
    #[error("{0}")]
    BadRequest(String),
    /// No valid token: 401.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token, but the transfer does not allow access now: 403.
    #[error("{0}")]
    Forbidden(String),
    /// The source failed: 502.
    #[error("{0}")]
    Source(#[from] SourceError),
    /// The range asked for starts past the end of the data: 416.
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// Our fault: 500.
    #[error("{0}")]
    Internal(String),
}

impl From<MeterError> for AccessError {
    fn from(e: MeterError) -> Self {
        match e {
            MeterError::Refused(m) => AccessError::Forbidden(m),
            MeterError::Internal(m) => AccessError::Internal(m),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> AccessError {
    AccessError::Internal(e.to_string())
}

impl DataPlane {
    /// The usage meter over this connector's store and decider.
    pub fn meter(&self) -> Meter<'_> {
        Meter {
            store: &self.store,
            decider: self.decider.as_ref(),
        }
    }

    /// Every data access: the agreement must still be there and its policy must permit this use now (time
    /// windows, `count` per period, purpose, recipient). A permitted access is counted; a refused one is
    /// recorded in the ledger with the reason.
    pub async fn check_access(&self, t: &Transfer) -> Result<(), AccessError> {
        let access = Use {
            agreement_id: &t.agreement_id,
            requester: &t.counterparty_id,
            dataset_id: &t.body.dataset_id,
            subject: &t.id,
        };
        Ok(self.meter().check(access, self.clock.now()).await?)
    }

    /// A fresh pull address and token for `caller`, the consumer of a running transfer this connector provides.
    pub async fn refresh_pull_address(
        &self,
        caller: &str,
        transfer_id: &str,
    ) -> Result<DataAddress, AccessError> {
        let t = self
            .store
            .transfer(transfer_id)
            .await
            .map_err(internal)?
            .filter(|t| t.role == Role::Provider && t.counterparty_id == caller)
            .ok_or_else(|| AccessError::NotFound("no such transfer for this caller".into()))?;
        if t.state != Some(TransferState::Started) {
            return Err(AccessError::Forbidden(format!(
                "transfer {} is not STARTED; no token is issued",
                t.id
            )));
        }
        self.pull_address(&t, self.clock.now()).map_err(internal)
    }

    /// Checks a pull token and the transfer it names; returns the transfer if data may flow now.
    pub async fn authorize_pull(
        &self,
        transfer_id: &str,
        authorization: Option<&str>,
    ) -> Result<Transfer, AccessError> {
        let claims = self.check_pull_token(transfer_id, authorization)?;
        let t = self
            .store
            .transfer(transfer_id)
            .await
            .map_err(internal)?
            .filter(|t| t.role == Role::Provider)
            .ok_or_else(|| AccessError::Unauthorized("no such transfer".into()))?;
        if claims.sub != t.counterparty_id {
            return Err(AccessError::Unauthorized(
                "the token was issued to another participant".into(),
            ));
        }
        if let Some(step @ (TStep::Suspend | TStep::Terminate | TStep::Complete)) = t.pending {
            return Err(AccessError::Forbidden(format!(
                "transfer {transfer_id} is being ended ({}); no more data flows",
                step.as_str()
            )));
        }
        // The start message may be acknowledged by the consumer (which then pulls at once) a moment before
        // this side records STARTED: a start in flight counts as started.
        let starting = t.pending == Some(TStep::Start)
            && matches!(
                t.state,
                Some(TransferState::Requested | TransferState::Suspended)
            );
        match t.state {
            Some(TransferState::Started) => {}
            Some(_) if starting => {}
            Some(other) => {
                return Err(AccessError::Forbidden(format!(
                    "transfer {transfer_id} is {other}; data flows only while it is STARTED"
                )));
            }
            None => {
                return Err(AccessError::Forbidden(
                    "the transfer has not started".into(),
                ));
            }
        }
        self.check_access(&t).await?;
        Ok(t)
    }

    /// This connector's receiver for a push transfer it consumes: checks the push token and the state, then
    /// writes `body` to `<data_dir>/received/<transfer>` as it arrives. Returns the bytes received.
    pub async fn receive_push<S, E>(
        &self,
        transfer_id: &str,
        authorization: Option<&str>,
        mut body: S,
    ) -> Result<u64, AccessError>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use tokio::io::AsyncWriteExt;
        let t = self
            .store
            .transfer(transfer_id)
            .await
            .map_err(internal)?
            .filter(|t| t.role == Role::Consumer && t.is_push());
        let expected = t
            .as_ref()
            .and_then(|t| t.body.data_address.as_ref())
            .and_then(|a| a.property("authorization"))
            .map(|a| caap_identity::Secret::new(a.to_owned()));
        let (Some(t), Some(expected)) = (t, expected) else {
            return Err(AccessError::NotFound("no push transfer here".into()));
        };
        if !expected.matches(authorization.unwrap_or_default()) {
            return Err(AccessError::Unauthorized("wrong push token".into()));
        }
        if t.state != Some(TransferState::Started) {
            return Err(AccessError::Forbidden(format!(
                "transfer {} is not STARTED",
                t.id
            )));
        }
        let store = |e: std::io::Error| AccessError::Internal(format!("storing pushed data: {e}"));
        let path = self.received_path(&t.id);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(store)?;
        }
        let mut file = tokio::fs::File::create(&path).await.map_err(store)?;
        let mut bytes = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| AccessError::BadRequest(e.to_string()))?;
            bytes += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(store)?;
        }
        file.flush().await.map_err(store)?;
        self.record_received(&t.id, bytes).await;
        self.metrics.bytes(crate::metrics::Direction::In, bytes);
        tracing::info!(transfer = %t.id, bytes, "push received");
        Ok(bytes)
    }
}
