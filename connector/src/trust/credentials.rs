//! The holder's side of DCP issuance: ask an authority for credentials
//! (`caap credentials request --authority URL`), and store what it delivers to our credential
//! service's storage API (`POST /dcp/credentials`).

use std::time::Duration as StdDuration;

use caap_identity::dcp::{self, Refusal, issuance};
use chrono::Duration;
use serde::Serialize;

use super::dcp::{DcpError, TOKEN_LIFETIME_SECS, Trust};
use crate::error::ServiceError;
use crate::store::identity::HeldCredential;

/// What came of a credential request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestOutcome {
    /// The authority's DID.
    pub authority: String,
    /// The request's id at the authority (`issuerPid`).
    pub request_id: String,
    /// `ISSUED`, `REJECTED`, or `RECEIVED` (still pending when we stopped waiting).
    pub status: String,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The credentials now held from that authority.
    pub credentials: Vec<HeldCredential>,
}

fn upstream(what: impl std::fmt::Display) -> ServiceError {
    ServiceError::Upstream(what.to_string())
}

/// The stable id a held credential is stored under: its `id`, or a digest of the JWT.
fn held_id(id: Option<&str>, jwt: &str) -> String {
    match id {
        Some(id) => id.to_owned(),
        None => {
            let digest = openssl::sha::sha256(jwt.as_bytes());
            format!(
                "urn:caap:credential:{}",
                digest
                    .iter()
                    .take(16)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )
        }
    }
}

impl Trust {
    /// Asks the authority at `authority` (its root URL or DID) for credentials over the DCP
    /// issuance protocol and waits up to `wait` for their delivery.
    pub async fn request_credentials(
        &self,
        authority: &str,
        types: &[String],
        wait: StdDuration,
    ) -> Result<RequestOutcome, ServiceError> {
        let did = if authority.starts_with("did:") {
            authority.to_owned()
        } else {
            caap_identity::did_web_from_url(authority.trim_end_matches('/'))
                .map_err(|e| ServiceError::field("/authority", format!("`{authority}`: {e}")))?
        };
        let now = self.clock.now();
        let doc = self
            .resolver
            .resolve(&did, now)
            .await
            .map_err(|e| upstream(format!("cannot resolve the authority {did}: {e}")))?;
        let issuer = doc
            .service_of_type("IssuerService")
            .and_then(|s| s.endpoint_url())
            .ok_or_else(|| {
                upstream(format!(
                    "the DID document of {did} names no IssuerService: is it a caap authority?"
                ))
            })?
            .trim_end_matches('/')
            .to_owned();
        let token = || {
            dcp::create_self_issued_token(
                &self.did,
                self.key(),
                &did,
                None,
                self.clock.now(),
                Duration::seconds(TOKEN_LIFETIME_SECS),
            )
            .map_err(|e| ServiceError::Internal(format!("cannot sign our token: {e}")))
        };
        let url = format!("{issuer}/metadata");
        let res = self
            .http
            .get(&url)
            .bearer_auth(token()?.expose())
            .send()
            .await
            .map_err(|e| upstream(format!("{url}: {}", crate::outbound::describe_reqwest(&e))))?;
        if !res.status().is_success() {
            return Err(upstream(format!("{url} answered {}", res.status())));
        }
        let metadata: issuance::IssuerMetadata = res
            .json()
            .await
            .map_err(|e| upstream(format!("{url}: not IssuerMetadata: {e}")))?;
        let wanted: Vec<&str> = metadata
            .credentials_supported
            .iter()
            .filter(|o| {
                types.is_empty()
                    || types
                        .iter()
                        .any(|t| Some(t.as_str()) == o.credential_type.as_deref())
            })
            .map(|o| o.id.as_str())
            .collect();
        if wanted.is_empty() {
            return Err(ServiceError::field(
                "/types",
                format!(
                    "{did} offers none of {types:?}; it offers {:?}",
                    metadata
                        .credentials_supported
                        .iter()
                        .filter_map(|o| o.credential_type.as_deref())
                        .collect::<Vec<_>>()
                ),
            ));
        }
        let holder_pid = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let message = issuance::CredentialRequestMessage::new(&holder_pid, &wanted);
        let url = format!("{issuer}/credentials");
        let res = self
            .http
            .post(&url)
            .bearer_auth(token()?.expose())
            .json(&message)
            .send()
            .await
            .map_err(|e| upstream(format!("{url}: {}", crate::outbound::describe_reqwest(&e))))?;
        let status = res.status();
        let location = res
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if !status.is_success() {
            let body = res.text().await.unwrap_or_default();
            return Err(upstream(format!(
                "{url} refused the request with {status}: {}",
                &body[..body.len().min(300)]
            )));
        }
        let location = location
            .ok_or_else(|| upstream(format!("{url} answered {status} without a Location")))?;
        let status_url = if location.starts_with("http") {
            location
        } else {
            let base = url::Url::parse(&issuer).map_err(|e| upstream(e.to_string()))?;
            base.join(&location)
                .map_err(|e| upstream(format!("bad Location {location}: {e}")))?
                .to_string()
        };
        let request_id = status_url.rsplit('/').next().unwrap_or_default().to_owned();
        tracing::info!(authority = %did, request = %request_id, "credentials requested");
        let deadline = tokio::time::Instant::now() + wait;
        let mut outcome = RequestOutcome {
            authority: did.clone(),
            request_id,
            status: "RECEIVED".into(),
            reason: None,
            credentials: Vec::new(),
        };
        loop {
            let res = self
                .http
                .get(&status_url)
                .bearer_auth(token()?.expose())
                .send()
                .await
                .map_err(|e| {
                    upstream(format!(
                        "{status_url}: {}",
                        crate::outbound::describe_reqwest(&e)
                    ))
                })?;
            if res.status().is_success() {
                let s: issuance::CredentialStatus = res
                    .json()
                    .await
                    .map_err(|e| upstream(format!("{status_url}: not a CredentialStatus: {e}")))?;
                outcome.status = match s.status {
                    issuance::RequestStatus::Issued => "ISSUED",
                    issuance::RequestStatus::Rejected => "REJECTED",
                    issuance::RequestStatus::Received => "RECEIVED",
                }
                .into();
                if outcome.status == "REJECTED" {
                    outcome.reason = Some(
                        self.rejection(&holder_pid)
                            .unwrap_or_else(|| "the authority gave no reason".into()),
                    );
                }
            }
            let held: Vec<HeldCredential> = self
                .store
                .held_credentials()
                .await?
                .into_iter()
                .filter(|h| h.issuer == did && h.received_at >= now - Duration::seconds(1))
                .collect();
            let done = match outcome.status.as_str() {
                "REJECTED" => true,
                "ISSUED" => !held.is_empty(),
                _ => false,
            };
            outcome.credentials = held;
            if done || tokio::time::Instant::now() >= deadline {
                return Ok(outcome);
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
    }

    /// The credential service's Resolution API: a verifier asks for our credentials with its
    /// self-issued token carrying the access token we gave it; it gets those both its query and
    /// its grant select, in one presentation per data model.
    pub async fn answer_presentation_query(
        &self,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<dcp::PresentationResponseMessage, DcpError> {
        let now = self.clock.now();
        let grant = dcp::authorize_presentation_query(
            authorization,
            &self.document,
            now,
            self.resolver.as_ref(),
            self.replay.as_ref(),
        )
        .await?;
        let (_, scopes) =
            dcp::PresentationQueryMessage::parse(body).map_err(|e| DcpError::BadRequest {
                status: e.http_status(),
                code: "invalid_query",
                message: e.to_string(),
            })?;
        let held = self
            .store
            .held_credentials()
            .await
            .map_err(|e| DcpError::Internal(format!("reading the held credentials: {e}")))?;
        let stored: Vec<dcp::StoredCredential> = held
            .iter()
            .filter_map(|h| match dcp::StoredCredential::from_jwt(&h.jwt) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(credential = %h.id, error = %e, "a held credential cannot be read; skipped");
                    None
                }
            })
            .collect();
        let chosen = dcp::select_credentials(&scopes, &grant, &stored, now);
        tracing::debug!(verifier = %grant.bearer, presented = chosen.len(), "presentation query answered");
        dcp::present_credentials(
            &self.did,
            self.key(),
            &grant.bearer,
            &chosen,
            now,
            Duration::seconds(TOKEN_LIFETIME_SECS),
        )
        .map_err(|e| DcpError::Internal(format!("signing the presentation: {e}")))
    }

    /// The credentials this connector holds.
    pub async fn held_credentials(&self) -> Result<Vec<HeldCredential>, ServiceError> {
        Ok(self.store.held_credentials().await?)
    }

    /// Forgets a held credential.
    pub async fn forget_credential(&self, id: &str) -> Result<(), ServiceError> {
        if self.store.delete_held_credential(id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("no held credential `{id}`")))
        }
    }

    /// The storage API: an issuer delivers a CredentialMessage. The issuer's token must be
    /// addressed to us, the issuer trusted for every type, each credential signed by it and about
    /// us. Returns the stored credentials.
    pub async fn store_delivery(
        &self,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<HeldCredential>, DcpError> {
        let message = issuance::CredentialMessage::parse(body)
            .map_err(|e| DcpError::bad("invalid_message", e))?;
        let message = &message;
        let now = self.clock.now();
        let options = caap_identity::vc::VerifyOptions::at(now);
        let delivery = issuance::accept_credential_message(
            authorization,
            message,
            &self.did,
            self.resolver.as_ref(),
            self.replay.as_ref(),
            None,
            &options,
        )
        .await?;
        let credentials = match delivery {
            issuance::CredentialDelivery::Rejected {
                issuer,
                holder_pid,
                reason,
            } => {
                tracing::warn!(%issuer, ?holder_pid, ?reason, "an issuer rejected our credential request");
                if let Some(pid) = holder_pid {
                    self.note_rejection(&pid, reason.unwrap_or_else(|| "no reason given".into()));
                }
                return Ok(Vec::new());
            }
            issuance::CredentialDelivery::Issued { credentials, .. } => credentials,
        };
        let mut stored = Vec::new();
        for c in credentials {
            if let Some(t) = self.policy.trusted_issuers.untrusted_type(&c.credential) {
                return Err(Refusal::UntrustedIssuer {
                    credential_type: t.to_owned(),
                    issuer: c.credential.issuer.clone(),
                }
                .into());
            }
            let held = HeldCredential {
                id: held_id(c.credential.id.as_deref(), &c.jwt),
                types: c.credential.specific_types().map(str::to_owned).collect(),
                issuer: c.credential.issuer.clone(),
                format: issuance::format_name(c.credential.format).into(),
                jwt: c.jwt.clone(),
                valid_until: c.credential.valid_until,
                received_at: now,
            };
            stored.push(held);
        }
        for h in &stored {
            self.store
                .put_held_credential(h)
                .await
                .map_err(|e| DcpError::Internal(format!("cannot store the credential: {e}")))?;
            tracing::info!(credential = %h.id, types = ?h.types, issuer = %h.issuer, "credential received and stored");
        }
        Ok(stored)
    }
}
