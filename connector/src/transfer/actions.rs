//! The management side of transfers: start one as consumer, look at them, take a step by hand, refresh the
//! pull token, and read the data.

use actix_web::web::Bytes;
use caap_contracts::Role;
use caap_contracts::transfer::message::DataAddress;
use caap_contracts::transfer::state::transition;
use serde::Deserialize;
use serde_json::Value;

use super::TransferView;
use super::inbound::{PULL, PUSH, owe_with_reason};
use super::model::{Actor, Peer, TStep, Transfer, TransferBody};
use crate::error::{ServiceError, decode};
use crate::service::Connector;
use crate::transfer::dataplane::DataPlane;
use caap_contracts::process::Process;

use crate::process::StepRequest;

/// `POST /api/v1/transfers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartTransfer {
    /// The finalized agreement (this connector is its consumer).
    pub agreement_id: String,
    /// `HttpData-PULL` (default) or `HttpData-PUSH`.
    #[serde(default)]
    pub format: Option<String>,
    /// Push: where the provider should send the data (default: this connector's own receiver).
    #[serde(default)]
    pub push_to: Option<String>,
    /// Push: the `Authorization` value the provider must present to `pushTo`.
    #[serde(default)]
    pub push_authorization: Option<String>,
    /// The provider's DSP base and participant id, for an agreement this connector does not hold (the DSP
    /// TCK's pre-existing agreements); otherwise taken from the agreement's negotiation.
    #[serde(default)]
    pub counter_party_address: Option<String>,
    /// See `counterPartyAddress`.
    #[serde(default)]
    pub counter_party_id: Option<String>,
    /// Take no step automatically.
    #[serde(default)]
    pub manual: bool,
}

impl super::Transfers {
    /// Starts a transfer as consumer; the request leaves from the processor at once.
    pub async fn start_transfer(&self, body: Value) -> Result<TransferView, ServiceError> {
        let start: StartTransfer = decode(&body)?;
        // Addresses are checked on input, whether or not this format uses them.
        if let Some(url) = &start.push_to {
            crate::error::http_url("/pushTo", url)?;
        }
        let format = start.format.clone().unwrap_or_else(|| PULL.to_owned());
        let push = format.eq_ignore_ascii_case(PUSH);
        if !push && !format.eq_ignore_ascii_case(PULL) {
            return Err(ServiceError::field(
                "/format",
                format!("use {PULL} or {PUSH}, not `{format}`"),
            ));
        }
        let (address, provider, dataset) = match (
            &start.counter_party_address,
            &start.counter_party_id,
        ) {
            (Some(a), Some(p)) => {
                crate::error::http_url("/counterPartyAddress", a)?;
                (a.trim_end_matches('/').to_owned(), p.clone(), String::new())
            }
            (None, None) => {
                let agreement = self
                    .store
                    .agreement(&start.agreement_id)
                    .await?
                    .filter(|a| a.role == Role::Consumer)
                    .ok_or_else(|| {
                        ServiceError::field(
                            "/agreementId",
                            format!(
                                "no finalized agreement `{}` with this connector as consumer; see GET /api/v1/agreements",
                                start.agreement_id
                            ),
                        )
                    })?;
                let negotiation = self
                    .store
                    .negotiation(&agreement.negotiation_id)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::Internal(format!(
                            "agreement {} has no negotiation",
                            agreement.id
                        ))
                    })?;
                (
                    negotiation.counterparty_address,
                    agreement.provider_id,
                    agreement.dataset_id,
                )
            }
            _ => {
                return Err(ServiceError::field(
                    "/counterPartyId",
                    "give counterPartyAddress and counterPartyId together, or neither",
                ));
            }
        };
        let now = self.clock.now();
        let peer = Peer {
            id: provider,
            address,
            pid: None,
        };
        let body = TransferBody {
            dataset_id: dataset,
            manual: start.manual,
            ..TransferBody::default()
        };
        let mut t = Transfer::new(
            Role::Consumer,
            peer,
            None,
            start.agreement_id.clone(),
            format,
            body,
            now,
        );
        let id = &t.id;
        let data_address = if push {
            Some(match &start.push_to {
                Some(url) => {
                    let mut a =
                        DataAddress::new(super::dataplane::ENDPOINT_TYPE, Some(url.clone()));
                    if let Some(auth) = &start.push_authorization {
                        a = a
                            .with_property("authorization", auth.clone())
                            .with_property("authType", "bearer");
                    }
                    a
                }
                None => DataAddress::new(
                    super::dataplane::ENDPOINT_TYPE,
                    Some(format!("{}/push/{id}", self.identity.public_url)),
                )
                .with_property(
                    "authorization",
                    format!("Bearer {}", caap_identity::Secret::random_token().expose()),
                )
                .with_property("authType", "bearer"),
            })
        } else {
            None
        };
        t.body.data_address = data_address;
        t.owe(TStep::Request, now);
        t.body
            .log(now, Actor::Local, "transfer started; sending the request");
        let saved = self
            .store
            .save_transfer(&t, None, &Default::default())
            .await?;
        self.wake.notify_one();
        Ok(saved.into())
    }

    /// One transfer.
    pub async fn transfer_view(&self, id: &str) -> Result<TransferView, ServiceError> {
        self.store
            .transfer(id)
            .await?
            .map(TransferView::from)
            .ok_or_else(|| ServiceError::NotFound(format!("no transfer `{id}`")))
    }

    /// A page of transfers.
    pub async fn transfer_page(
        &self,
        token: Option<&str>,
        limit: Option<u32>,
    ) -> Result<caap_catalog::page::Page<TransferView>, ServiceError> {
        use caap_catalog::page::{self, Cursor, Page};
        let cursor = Cursor::from_token(token)?;
        let limit = page::page_size(limit)?;
        let after = match &cursor {
            Cursor::After(id) => Some(id.as_str()),
            _ => None,
        };
        let rows = self
            .store
            .processes::<Transfer>(after, None, u64::from(limit) + 1)
            .await?;
        let p = Page::from_scan(rows, &cursor, limit, |t| t.id.clone());
        Ok(Page {
            items: p.items.into_iter().map(Into::into).collect(),
            next: p.next,
            previous: p.previous,
        })
    }

    /// Takes a step by hand: `start` (provider's first start, or either side resuming), `suspend`, `resume`,
    /// `complete`, `terminate`.
    pub async fn transfer_step(
        &self,
        id: &str,
        step: &str,
        body: Option<Value>,
    ) -> Result<TransferView, ServiceError> {
        let request: StepRequest = match body {
            Some(b) if !b.is_null() => decode(&b)?,
            _ => StepRequest::default(),
        };
        let step = match step {
            "start" | "resume" => TStep::Start,
            "suspend" => TStep::Suspend,
            "complete" => TStep::Complete,
            "terminate" => TStep::Terminate,
            other => {
                return Err(ServiceError::NotFound(format!(
                    "no step `{other}`; the steps are start, resume, suspend, complete, terminate"
                )));
            }
        };
        let mut tries = 0;
        let saved = loop {
            let mut t = self
                .store
                .transfer(id)
                .await?
                .ok_or_else(|| ServiceError::NotFound(format!("no transfer `{id}`")))?;
            let expected = t.version;
            if let Some(p) = t.pending
                && !matches!(step, TStep::Terminate | TStep::Suspend)
            {
                return Err(ServiceError::Conflict(format!(
                    "a {} step is under way (attempt {}); wait, or suspend or terminate",
                    p.as_str(),
                    t.attempts + 1
                )));
            }
            let Some(event) = step.event() else {
                return Err(ServiceError::Internal("a step without a message".into()));
            };
            if let Err(illegal) = transition(t.state, t.role, event) {
                return Err(ServiceError::Conflict(illegal.to_string()));
            }
            let now = self.clock.now();
            match step {
                TStep::Suspend | TStep::Terminate => {
                    let reason = request
                        .reason
                        .clone()
                        .unwrap_or_else(|| format!("{} by the {}", step.as_str(), t.role));
                    let code = request
                        .code
                        .clone()
                        .unwrap_or_else(|| step.as_str().to_owned());
                    owe_with_reason(&mut t, step, &code, reason, now);
                }
                other => t.owe(other, now),
            }
            t.body.log(
                now,
                Actor::Local,
                format!("{} (management API)", step.as_str()),
            );
            let saved = match self
                .store
                .save_transfer(
                    &t,
                    Some(expected),
                    &crate::store::negotiations::Effects {
                        keep_lease: true,
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(saved) => saved,
                // The flow's byte count (or another writer) moved it meanwhile: read it again and retry.
                Err(crate::store::StoreError::Conflict(_)) if tries < 8 => {
                    tries += 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            break saved;
        };
        self.wake.notify_one();
        Ok(saved.into())
    }
}

impl DataPlane {
    /// Consumer: asks the provider's data plane for a fresh pull token and stores it.
    pub async fn refresh_transfer_token(&self, id: &str) -> Result<TransferView, ServiceError> {
        let t = self
            .store
            .transfer(id)
            .await?
            .filter(|t| t.role == Role::Consumer)
            .ok_or_else(|| ServiceError::NotFound(format!("no consumer transfer `{id}`")))?;
        let endpoint = t
            .body
            .data_address
            .as_ref()
            .and_then(|a| a.endpoint.clone())
            .ok_or_else(|| {
                ServiceError::Conflict("the provider has not sent a pull address (yet)".into())
            })?;
        let url = format!("{endpoint}/token");
        let mut req = self.http.post(&url);
        if let Some(a) = self
            .outbound
            .authorization(Some(&t.counterparty_id))
            .map_err(|e| ServiceError::Internal(e.to_string()))?
        {
            req = req.header(reqwest::header::AUTHORIZATION, a.expose());
        }
        let res = req
            .send()
            .await
            .map_err(|e| provider_unavailable(&url, &e.to_string()))?;
        if !res.status().is_success() {
            return Err(provider_refused(&url, res).await);
        }
        let address: DataAddress = res
            .json()
            .await
            .map_err(|e| ServiceError::Upstream(format!("{url}: not a DataAddress: {e}")))?;
        for _ in 0..5 {
            let Some(mut current) = self.store.transfer(id).await? else {
                break;
            };
            let expected = current.version;
            current.body.data_address = Some(address.clone());
            current
                .body
                .log(self.clock.now(), Actor::Local, "pull token refreshed");
            match self
                .store
                .save_transfer(
                    &current,
                    Some(expected),
                    &crate::store::negotiations::Effects {
                        keep_lease: true,
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(saved) => return Ok(saved.into()),
                Err(crate::store::StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Conflict(
            "the transfer kept changing; retry".into(),
        ))
    }
}

impl DataPlane {
    /// Where a push transfer this connector consumes is stored.
    pub fn received_path(&self, transfer_id: &str) -> std::path::PathBuf {
        crate::flows::received_path(&self.config.data_dir, transfer_id)
    }

    /// Records bytes received by push (best effort: the data is on disk either way).
    pub async fn record_received(&self, transfer_id: &str, bytes: u64) {
        self.record_flow(
            transfer_id,
            bytes,
            Actor::Provider,
            format!("received {bytes} bytes"),
            None,
        )
        .await;
    }

    /// Adds `bytes` a data flow moved to the transfer's count, with `what` in its history; with `error`,
    /// also records why the flow broke off as its last error (best effort, retried on a concurrent write).
    pub async fn record_flow(
        &self,
        transfer_id: &str,
        bytes: u64,
        by: Actor,
        what: String,
        error: Option<String>,
    ) {
        for _ in 0..5 {
            let Ok(Some(mut t)) = self.store.transfer(transfer_id).await else {
                return;
            };
            let expected = t.version;
            t.body.bytes += bytes;
            t.body.log(self.clock.now(), by, what.clone());
            if let Some(e) = &error {
                t.last_error = Some(e.clone());
            }
            let effects = crate::store::negotiations::Effects {
                keep_lease: true,
                ..Default::default()
            };
            match self.store.save_transfer(&t, Some(expected), &effects).await {
                Err(crate::store::StoreError::Conflict(_)) => continue,
                Err(e) => {
                    tracing::warn!(transfer = transfer_id, error = %e, "recording received bytes failed");
                    return;
                }
                Ok(_) => return,
            }
        }
    }

    /// Counts the bytes of a data flow of transfer `id` as they pass (`served` by the provider, `pulled` by
    /// the consumer) and records them when the flow ends; a flow that broke off (the other side crashed, the
    /// source failed) is recorded with the error.
    pub fn counted(
        &self,
        id: &str,
        stream: futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>,
        verb: &'static str,
    ) -> futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>> {
        use futures_util::StreamExt;
        let tally = FlowTally {
            plane: self.clone(),
            id: id.to_owned(),
            verb,
            bytes: 0,
            error: None,
        };
        futures_util::stream::unfold((stream, tally), |(mut stream, mut tally)| async move {
            let item = stream.next().await?;
            match &item {
                Ok(chunk) => tally.bytes += chunk.len() as u64,
                Err(e) => tally.error = Some(e.to_string()),
            }
            Some((item, (stream, tally)))
        })
        .boxed()
    }

    /// Consumer: the data of a transfer. Pull: a stream from the provider's data plane (refreshing an expired
    /// token once), counted, of the `range` asked for where the provider serves ranges. Push: the received
    /// file.
    pub async fn transfer_data(
        &self,
        id: &str,
        last_event_id: Option<&str>,
        range: Option<crate::transfer::dataplane::range::ByteRange>,
    ) -> Result<crate::transfer::dataplane::Opened, ServiceError> {
        use futures_util::{StreamExt, TryStreamExt};
        let t = self
            .store
            .transfer(id)
            .await?
            .filter(|t| t.role == Role::Consumer)
            .ok_or_else(|| ServiceError::NotFound(format!("no consumer transfer `{id}`")))?;
        if t.is_push() {
            let path = self.received_path(id);
            let file = tokio::fs::File::open(&path).await.map_err(|_| {
                ServiceError::Conflict(format!("nothing received for transfer {id} yet"))
            })?;
            let length = file.metadata().await.ok().map(|m| m.len());
            return Ok(crate::transfer::dataplane::Opened {
                content_type: None,
                length,
                stream: crate::transfer::dataplane::file_stream(file),
                range: None,
            });
        }
        if t.state != Some(caap_contracts::transfer::state::TransferState::Started) {
            return Err(ServiceError::Conflict(format!(
                "transfer {id} is {}; data flows only while it is STARTED",
                t.state.map_or("not acknowledged yet", |s| s.as_str())
            )));
        }
        for attempt in 0..2 {
            let t = self
                .store
                .transfer(id)
                .await?
                .ok_or_else(|| ServiceError::NotFound(format!("no transfer `{id}`")))?;
            let address = t.body.data_address.clone().ok_or_else(|| {
                ServiceError::Conflict("the provider has not sent a pull address".into())
            })?;
            let endpoint = address.endpoint.clone().unwrap_or_default();
            let mut req = self.http_streaming.get(&endpoint);
            if let Some(auth) = address.property("authorization") {
                req = req.header(reqwest::header::AUTHORIZATION, auth);
            }
            if let Some(last) = last_event_id {
                req = req.header("Last-Event-ID", last);
            }
            if let Some(r) = range {
                req = req.header(reqwest::header::RANGE, r.header());
            }
            let res = req
                .send()
                .await
                .map_err(|e| provider_unavailable(&endpoint, &e.to_string()))?;
            if res.status() == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                self.refresh_transfer_token(id).await?;
                continue;
            }
            if res.status() == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
                return Err(ServiceError::RangeNotSatisfiable(
                    "the range starts past the end of the data".into(),
                ));
            }
            if !res.status().is_success() {
                return Err(provider_refused(&endpoint, res).await);
            }
            let content_type = res
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let length = res.content_length();
            let part = (res.status() == reqwest::StatusCode::PARTIAL_CONTENT)
                .then(|| res.headers().get(reqwest::header::CONTENT_RANGE))
                .flatten()
                .and_then(|v| v.to_str().ok())
                .and_then(crate::transfer::dataplane::range::ContentRange::parse);
            // This side's suspension or termination ends the relay at once too.
            let stop = self.flows.watch(id);
            let stream = res
                .bytes_stream()
                .map_err(|e| std::io::Error::other(crate::outbound::describe_reqwest(&e)))
                .boxed();
            let stream = crate::transfer::dataplane::flows::until_stopped(stream, stop).boxed();
            return Ok(crate::transfer::dataplane::Opened {
                content_type,
                length,
                stream: self.counted(id, stream, "pulled"),
                range: part,
            });
        }
        Err(ServiceError::Upstream(
            "the provider refused the refreshed token".into(),
        ))
    }
}

/// The provider's data plane could not be reached: the management API hears that, the log has where and why
/// (the pull address may carry the provider's paths and tokens).
fn provider_unavailable(url: &str, cause: &str) -> ServiceError {
    tracing::warn!(%url, %cause, "the provider's data plane cannot be reached");
    ServiceError::Upstream(
        "the provider's data plane cannot be reached; this connector's log has the details".into(),
    )
}

/// The provider's data plane refused: the management API hears its status and the provider's request id (to
/// ask the provider about), never its body; the log has the rest.
async fn provider_refused(url: &str, res: reqwest::Response) -> ServiceError {
    let status = res.status();
    let request_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .unwrap_or("unknown")
        .to_owned();
    let text: String = res
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect();
    tracing::warn!(%url, %status, %request_id, body = %text, "the provider's data plane refused");
    ServiceError::Upstream(format!(
        "the provider's data plane answered {}; the provider's request id is {request_id}",
        status.as_u16()
    ))
}

impl Connector {
    /// Stops the transfer's running flows when it no longer lets data flow (or is about to stop): called after
    /// every write of a transfer.
    pub fn transfer_saved(&self, t: &Transfer) {
        super::stop_flows_if_ended(&self.flows, t);
    }
}

/// What a data flow moved so far; recorded on the transfer when the flow is dropped (at its end, or when
/// either side goes away).
struct FlowTally {
    plane: DataPlane,
    id: String,
    verb: &'static str,
    bytes: u64,
    error: Option<String>,
}

impl Drop for FlowTally {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (plane, id, bytes) = (self.plane.clone(), self.id.clone(), self.bytes);
        let error = self.error.take().map(|e| {
            format!(
                "the data flow broke off after {bytes} bytes {}: {e}",
                self.verb
            )
        });
        if bytes == 0 && error.is_none() {
            return;
        }
        let what = match &error {
            Some(e) => e.clone(),
            None => format!("{} {bytes} bytes", self.verb),
        };
        if let Some(e) = &error {
            tracing::warn!(transfer = %id, bytes, error = %e, "a data flow broke off");
        }
        runtime.spawn(async move {
            plane
                .record_flow(&id, bytes, Actor::Local, what, error)
                .await;
        });
    }
}
