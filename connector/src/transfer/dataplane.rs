//! The data plane: access tokens for pull transfers, the sources data comes from, and streaming.
//!
//! A pull token is a JWT signed with the connector's key (ES256, or EdDSA with an Ed25519 key), bound to the transfer, its agreement and the
//! consumer, valid for [`TOKEN_TTL_SECS`]. It is checked on every access together with the transfer's state,
//! so it stops working the moment the transfer is suspended, completed or terminated. Data is streamed chunk
//! by chunk from the source to the consumer: memory stays flat whatever the size.

use std::time::{Duration, SystemTime};

use actix_web::web::Bytes;
use caap_catalog::asset::{Asset, DataAddress as Source, StreamSource};
use caap_contracts::Role;
use caap_contracts::transfer::message::DataAddress;
use caap_contracts::transfer::state::TransferState;
use caap_identity::keys::KeyAlgorithm;
use chrono::{DateTime, Utc};
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use josekit::jws::{ES256, EdDSA, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use serde_json::Value;

use super::model::Transfer;
use crate::service::{Connector, ServiceError};
use crate::store::DocKind;

/// How long a pull token is valid.
pub const TOKEN_TTL_SECS: i64 = 600;
/// The `endpointType` of caap's pull addresses.
pub const ENDPOINT_TYPE: &str = "https://w3id.org/idsa/v4.1/HTTP";
const AUDIENCE: &str = "caap-data-plane";
/// Bytes read from a file per chunk (each read is a trip to tokio's blocking pool: fewer, larger reads).
const CHUNK: usize = 512 * 1024;

/// A source opened for streaming.
pub struct Opened {
    /// Its media type, if known.
    pub content_type: Option<String>,
    /// Its length, if known.
    pub length: Option<u64>,
    /// The bytes.
    pub stream: BoxStream<'static, Result<Bytes, std::io::Error>>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("content_type", &self.content_type)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

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
    Source(String),
    /// Our fault: 500.
    #[error("{0}")]
    Internal(String),
}

fn system_time(t: DateTime<Utc>) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0))
}

impl Connector {
    /// A fresh pull token for a transfer this connector provides.
    pub fn issue_pull_token(
        &self,
        t: &Transfer,
        now: DateTime<Utc>,
    ) -> Result<String, ServiceError> {
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        if let Some(kid) = self.identity.key.key_id() {
            header.set_key_id(kid);
        }
        let mut payload = JwtPayload::new();
        payload.set_issuer(&self.identity.participant_id);
        payload.set_subject(&t.counterparty_id);
        payload.set_audience(vec![AUDIENCE]);
        payload.set_issued_at(&system_time(now));
        payload.set_expires_at(&system_time(
            now + chrono::Duration::seconds(TOKEN_TTL_SECS),
        ));
        payload.set_jwt_id(uuid::Uuid::new_v4().to_string());
        let claims = [
            ("tid", Value::String(t.id.clone())),
            ("agr", Value::String(t.agreement_id.clone())),
        ];
        for (k, v) in claims {
            payload
                .set_claim(k, Some(v))
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
        }
        let key = self.identity.key.jwk();
        let signer: Box<dyn josekit::jws::JwsSigner> = match self.identity.key.algorithm() {
            KeyAlgorithm::Es256 => Box::new(ES256.signer_from_jwk(key).map_err(token_signer)?),
            KeyAlgorithm::EdDsa => Box::new(EdDSA.signer_from_jwk(key).map_err(token_signer)?),
        };
        jwt::encode_with_signer(&payload, &header, signer.as_ref())
            .map_err(|e| ServiceError::Internal(format!("token signing: {e}")))
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
            .map_err(|e| AccessError::Internal(e.to_string()))?
            .filter(|t| t.role == Role::Provider && t.counterparty_id == caller)
            .ok_or_else(|| AccessError::NotFound("no such transfer for this caller".into()))?;
        if t.state != Some(TransferState::Started) {
            return Err(AccessError::Forbidden(format!(
                "transfer {} is not STARTED; no token is issued",
                t.id
            )));
        }
        self.pull_address(&t, self.clock.now())
            .map_err(|e| AccessError::Internal(e.to_string()))
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
            .map_err(|e| AccessError::Internal(e.to_string()))?
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
        tracing::info!(transfer = %t.id, bytes, "push received");
        Ok(bytes)
    }

    /// The pull address for a transfer: this connector's data plane and a fresh token.
    pub fn pull_address(
        &self,
        t: &Transfer,
        now: DateTime<Utc>,
    ) -> Result<DataAddress, ServiceError> {
        let token = self.issue_pull_token(t, now)?;
        Ok(DataAddress::new(
            ENDPOINT_TYPE,
            Some(format!("{}/data/{}", self.identity.public_url, t.id)),
        )
        .with_property("authorization", format!("Bearer {token}"))
        .with_property("authType", "bearer"))
    }

    /// Checks a pull token and the transfer it names; returns the transfer if data may flow now.
    pub async fn authorize_pull(
        &self,
        transfer_id: &str,
        authorization: Option<&str>,
    ) -> Result<Transfer, AccessError> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                AccessError::Unauthorized(
                    "present the transfer's token as `Authorization: Bearer …`".into(),
                )
            })?;
        let public = self
            .identity
            .key
            .jwk()
            .to_public_key()
            .map_err(|e| AccessError::Internal(e.to_string()))?;
        let internal = |e: josekit::JoseError| AccessError::Internal(e.to_string());
        let verifier: Box<dyn josekit::jws::JwsVerifier> = match self.identity.key.algorithm() {
            KeyAlgorithm::Es256 => Box::new(ES256.verifier_from_jwk(&public).map_err(internal)?),
            KeyAlgorithm::EdDsa => Box::new(EdDSA.verifier_from_jwk(&public).map_err(internal)?),
        };
        let (payload, _) = jwt::decode_with_verifier(token, verifier.as_ref()).map_err(|_| {
            AccessError::Unauthorized("the token is not one this data plane issued".into())
        })?;
        let now = self.clock.now();
        let expired = payload
            .claim("exp")
            .and_then(caap_identity::jose::numeric_date)
            .is_none_or(|exp| exp <= now);
        if expired {
            return Err(AccessError::Unauthorized(
                "the token has expired; refresh it (caap transfer refresh, or POST /api/v1/transfers/{id}/refresh)".into(),
            ));
        }
        if payload.audience().is_none_or(|a| !a.contains(&AUDIENCE)) {
            return Err(AccessError::Unauthorized(
                "the token is not for this data plane".into(),
            ));
        }
        let tid = payload
            .claim("tid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if tid != transfer_id {
            return Err(AccessError::Unauthorized(
                "the token is for another transfer".into(),
            ));
        }
        let t = self
            .store
            .transfer(transfer_id)
            .await
            .map_err(|e| AccessError::Internal(e.to_string()))?
            .filter(|t| t.role == Role::Provider)
            .ok_or_else(|| AccessError::Unauthorized("no such transfer".into()))?;
        if payload.subject() != Some(t.counterparty_id.as_str()) {
            return Err(AccessError::Unauthorized(
                "the token was issued to another participant".into(),
            ));
        }
        if let Some(
            step @ (super::model::TStep::Suspend
            | super::model::TStep::Terminate
            | super::model::TStep::Complete),
        ) = t.pending
        {
            return Err(AccessError::Forbidden(format!(
                "transfer {transfer_id} is being ended ({}); no more data flows",
                step.as_str()
            )));
        }
        // The start message may be acknowledged by the consumer (which then pulls at once) a moment before
        // this side records STARTED: a start in flight counts as started.
        let starting = t.pending == Some(super::model::TStep::Start)
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

    /// Every data access: the agreement must still be there and its policy must permit this use now (time
    /// windows, `count` per period, purpose, recipient). A permitted access is counted; a refused one is
    /// recorded in the ledger with the reason.
    pub async fn check_access(&self, t: &Transfer) -> Result<(), AccessError> {
        let now = self.clock.now();
        let (policy, period_start, _, first_use) = self.usage_of(t, now).await?;
        // Reserve this use first (one atomic increment), then decide with the uses before it: of two
        // concurrent accesses at 999 of 1000, exactly one is permitted. A refused access gives its use back.
        let counted = crate::enforce::count_period(&policy).is_some();
        let uses = if counted {
            self.store
                .record_agreement_use(&t.agreement_id, period_start, now)
                .await
                .map_err(|e| AccessError::Internal(e.to_string()))?
                .saturating_sub(1)
        } else {
            0
        };
        let ctx = crate::enforce::usage_context(
            &policy,
            &t.counterparty_id,
            &t.body.dataset_id,
            now,
            uses,
            first_use,
        );
        let decision = self.decider.decide(&policy, &ctx);
        if !decision.permitted {
            if counted
                && let Err(e) = self
                    .store
                    .release_agreement_use(&t.agreement_id, period_start)
                    .await
            {
                tracing::warn!(error = %e, "giving back a refused access's use failed");
            }
            let reason = decision.reasons.join("; ");
            let entry = caap_contracts::ledger::NewEntry {
                at: now,
                kind: caap_contracts::ledger::EntryKind::PolicyDecision,
                subject: t.id.clone(),
                payload: serde_json::json!({"point": "data-access", "agreementId": t.agreement_id,
                    "requester": t.counterparty_id, "decision": "deny", "reason": reason, "uses": uses}),
            };
            if let Err(e) = self.store.append_ledger(&[entry]).await {
                tracing::warn!(error = %e, "recording a refused access failed");
            }
            tracing::info!(transfer = %t.id, %reason, "data access refused by the agreement's policy");
            return Err(AccessError::Forbidden(format!(
                "the agreement's policy does not permit this access now: {reason}"
            )));
        }
        if !counted {
            self.store
                .record_agreement_use(&t.agreement_id, period_start, now)
                .await
                .map_err(|e| AccessError::Internal(e.to_string()))?;
        }
        Ok(())
    }

    /// The agreement's policy, the current counting period and the uses in it.
    pub(crate) async fn usage_of(
        &self,
        t: &Transfer,
        now: DateTime<Utc>,
    ) -> Result<
        (
            caap_policy::Policy,
            DateTime<Utc>,
            u64,
            Option<DateTime<Utc>>,
        ),
        AccessError,
    > {
        let agreement = self
            .store
            .agreement(&t.agreement_id)
            .await
            .map_err(|e| AccessError::Internal(e.to_string()))?
            .ok_or_else(|| {
                AccessError::Forbidden(format!("agreement {} no longer exists", t.agreement_id))
            })?;
        let policy = caap_policy::parse_policy(&agreement.body["agreement"]).map_err(|e| {
            AccessError::Internal(format!("agreement {} is unreadable: {e}", agreement.id))
        })?;
        let period_start = match crate::enforce::count_period(&policy) {
            Some((_, period)) => crate::enforce::period_start(agreement.signed_at, period, now),
            None => agreement.signed_at,
        };
        let (uses, first_use) = self
            .store
            .agreement_usage(&t.agreement_id, period_start)
            .await
            .map_err(|e| AccessError::Internal(e.to_string()))?;
        Ok((policy, period_start, uses, first_use))
    }

    /// Opens the data source of a dataset for streaming.
    pub async fn open_source(
        &self,
        dataset_id: &str,
        last_event_id: Option<&str>,
    ) -> Result<Opened, AccessError> {
        let doc = self
            .store
            .get(DocKind::Asset, dataset_id)
            .await
            .map_err(|e| AccessError::Internal(e.to_string()))?
            .ok_or_else(|| {
                AccessError::Forbidden(format!("dataset {dataset_id} is no longer published"))
            })?;
        let asset: Asset =
            serde_json::from_value(doc.body).map_err(|e| AccessError::Internal(e.to_string()))?;
        match asset.data_address {
            Source::HttpApi {
                url,
                method,
                credentials,
            } => {
                let method = reqwest::Method::from_bytes(method.as_bytes())
                    .map_err(|e| AccessError::Internal(format!("method {method}: {e}")))?;
                let Some(name) = credentials else {
                    return self
                        .open_http(self.http_streaming.request(method, &url), &url)
                        .await;
                };
                // A protected source: a token from the cache or the authorization server; one that the
                // source refuses is forgotten and fetched anew once.
                for attempt in 0..2 {
                    let auth = self.source_authorization(&name).await?;
                    let req = self
                        .http_streaming
                        .request(method.clone(), &url)
                        .header(reqwest::header::AUTHORIZATION, auth);
                    match self.open_http(req, &url).await {
                        Err(AccessError::Source(m)) if attempt == 0 && m.contains("401") => {
                            self.source_tokens.forget(&name);
                        }
                        other => return other,
                    }
                }
                Err(AccessError::Source(format!(
                    "the source {url} refused a fresh token"
                )))
            }
            Source::NgsiLdQuery {
                broker_url,
                entity_type,
                query,
                tenant,
            } => {
                let url = format!("{}/ngsi-ld/v1/entities", broker_url.trim_end_matches('/'));
                let mut req = self
                    .http_streaming
                    .get(&url)
                    .query(&[("type", entity_type.as_str())])
                    .header("accept", "application/ld+json");
                if let Some(q) = &query {
                    req = req.query(&[("q", q.as_str())]);
                }
                if let Some(t) = &tenant {
                    req = req.header("NGSILD-Tenant", t.as_str());
                }
                self.open_http(req, &url).await
            }
            Source::File { path, media_type } => self.open_file(&path, media_type).await,
            Source::LiveStream {
                source: StreamSource::Sse,
                url,
                ..
            } => {
                // Server-sent events are relayed as they come (back-pressure is the consumer's read); a
                // consumer that reconnects with Last-Event-ID resumes where it stopped.
                let mut req = self
                    .http_streaming
                    .get(&url)
                    .header(reqwest::header::ACCEPT, "text/event-stream");
                if let Some(id) = last_event_id {
                    req = req.header("Last-Event-ID", id);
                }
                let mut opened = self.open_http(req, &url).await?;
                opened.content_type = Some("text/event-stream".into());
                opened.length = None;
                Ok(opened)
            }
            Source::LiveStream {
                source: StreamSource::HttpPoll,
                url,
                interval_secs,
            } => Ok(self.poll_stream(url, interval_secs.unwrap_or(5))),
            Source::LiveStream {
                source: StreamSource::NgsiLdSubscription,
                url,
                interval_secs,
            } => {
                let entity_type = asset.data_model.clone().ok_or_else(|| {
                    AccessError::Internal(format!(
                        "dataset {dataset_id} streams an NGSI-LD subscription but names no dataModel (entity type)"
                    ))
                })?;
                self.subscription_stream(&url, &entity_type, interval_secs)
                    .await
            }
        }
    }

    async fn open_http(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Opened, AccessError> {
        let res = req
            .send()
            .await
            .map_err(|e| AccessError::Source(format!("the source {url} cannot be reached: {e}")))?;
        if !res.status().is_success() {
            return Err(AccessError::Source(format!(
                "the source {url} answered {}",
                res.status()
            )));
        }
        let content_type = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let length = res.content_length();
        Ok(Opened {
            content_type,
            length,
            stream: res.bytes_stream().map_err(std::io::Error::other).boxed(),
        })
    }

    /// A non-finite stream fed by an NGSI-LD subscription at the broker `broker` (its base, before
    /// `/ngsi-ld/v1`): the broker notifies this connector's `/notify/{id}` endpoint, each notification becomes one
    /// NDJSON line, and the subscription is deleted when the stream ends.
    async fn subscription_stream(
        &self,
        broker: &str,
        entity_type: &str,
        interval_secs: Option<u32>,
    ) -> Result<Opened, AccessError> {
        let (id, rx) = self.notifications.open();
        let subscriptions = format!("{}/ngsi-ld/v1/subscriptions", broker.trim_end_matches('/'));
        let mut body = serde_json::json!({
            "@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"],
            "type": "Subscription",
            "entities": [{"type": entity_type}],
            "notification": {"endpoint": {"uri": format!("{}/notify/{id}", self.identity.public_url),
                "accept": "application/json"}},
        });
        if let Some(i) = interval_secs {
            body["timeInterval"] = Value::from(i);
        }
        let res = self
            .http
            .post(&subscriptions)
            .header(reqwest::header::CONTENT_TYPE, "application/ld+json")
            .body(body.to_string())
            .send()
            .await;
        let res = match res {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                self.notifications.close(&id);
                return Err(AccessError::Source(format!(
                    "the broker {subscriptions} refused the subscription: {}",
                    r.status()
                )));
            }
            Err(e) => {
                self.notifications.close(&id);
                return Err(AccessError::Source(format!(
                    "the broker {subscriptions} cannot be reached: {e}"
                )));
            }
        };
        let location = res
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| {
                if l.starts_with("http") {
                    l.to_owned()
                } else {
                    let origin = url::Url::parse(&subscriptions)
                        .map(|u| u.origin().ascii_serialization())
                        .unwrap_or_default();
                    format!("{origin}{l}")
                }
            });
        let guard = SubscriptionGuard {
            notifications: self.notifications.clone(),
            id,
            location,
            http: self.http.clone(),
        };
        let stream = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
            let line = rx.recv().await?;
            Some((Ok(line), (rx, guard)))
        });
        Ok(Opened {
            content_type: Some("application/x-ndjson".into()),
            length: None,
            stream: stream.boxed(),
        })
    }

    /// A non-finite stream of a polled source: every `interval` seconds the source is fetched and, when its
    /// content changed, emitted as one line of NDJSON. Source failures are emitted as error lines and the
    /// polling goes on.
    fn poll_stream(&self, url: String, interval: u32) -> Opened {
        let http = self.http.clone();
        let every = Duration::from_secs(u64::from(interval.max(1)));
        let state = (http, url, None::<Value>, true);
        let stream =
            futures_util::stream::unfold(state, move |(http, url, last, first)| async move {
                if !first {
                    tokio::time::sleep(every).await;
                }
                let line = match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                        // Unchanged: an empty chunk, filtered out below.
                        Ok(v) if Some(&v) == last.as_ref() => {
                            return Some((Ok(Bytes::new()), (http, url, last, false)));
                        }
                        Ok(v) => {
                            let mut line = serde_json::to_vec(&v).unwrap_or_default();
                            line.push(b'\n');
                            return Some((Ok(Bytes::from(line)), (http, url, Some(v), false)));
                        }
                        Err(e) => {
                            serde_json::json!({"error": format!("the source sent no JSON: {e}")})
                        }
                    },
                    Ok(r) => {
                        serde_json::json!({"error": format!("the source answered {}", r.status())})
                    }
                    Err(e) => {
                        serde_json::json!({"error": format!("the source cannot be reached: {e}")})
                    }
                };
                let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
                bytes.push(b'\n');
                Some((Ok(Bytes::from(bytes)), (http, url, last, false)))
            })
            .filter(|chunk: &Result<Bytes, std::io::Error>| {
                std::future::ready(!matches!(chunk, Ok(b) if b.is_empty()))
            });
        Opened {
            content_type: Some("application/x-ndjson".into()),
            length: None,
            stream: stream.boxed(),
        }
    }

    async fn open_file(
        &self,
        path: &str,
        media_type: Option<String>,
    ) -> Result<Opened, AccessError> {
        let base = self.config.data_dir.join("files");
        let full = base.join(path);
        let canonical = tokio::fs::canonicalize(&full)
            .await
            .map_err(|e| AccessError::Source(format!("file {path}: {e}")))?;
        let base = tokio::fs::canonicalize(&base)
            .await
            .map_err(|e| AccessError::Internal(format!("the files directory: {e}")))?;
        if !canonical.starts_with(&base) {
            return Err(AccessError::Forbidden(format!(
                "file {path} is outside the files directory"
            )));
        }
        let file = tokio::fs::File::open(&canonical)
            .await
            .map_err(|e| AccessError::Source(format!("file {path}: {e}")))?;
        let length = file.metadata().await.ok().map(|m| m.len());
        Ok(Opened {
            content_type: media_type,
            length,
            stream: file_stream(file),
        })
    }
}

/// Ends a subscription when its stream is dropped: closes the notification endpoint and deletes the
/// subscription at the broker.
struct SubscriptionGuard {
    notifications: std::sync::Arc<super::flows::Notifications>,
    id: String,
    location: Option<String>,
    http: reqwest::Client,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.notifications.close(&self.id);
        if let (Some(location), Ok(handle)) =
            (self.location.take(), tokio::runtime::Handle::try_current())
        {
            let http = self.http.clone();
            handle.spawn(async move {
                if let Err(e) = http.delete(&location).send().await {
                    tracing::warn!(subscription = %location, error = %e, "deleting an NGSI-LD subscription failed");
                }
            });
        }
    }
}

/// A file read as a stream of chunks of [`CHUNK`] bytes (one in memory at a time).
pub fn file_stream(file: tokio::fs::File) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    futures_util::stream::try_unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; CHUNK];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), file)))
    })
    .boxed()
}

fn token_signer(e: josekit::JoseError) -> ServiceError {
    ServiceError::Internal(format!("token signer: {e}"))
}
