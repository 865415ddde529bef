//! The trust anchor role (`[authority] enabled = true`, `caap authority …`): the federation's
//! issuer. It keeps a member register (who may get which credentials), issues a
//! MembershipCredential and role credentials (`MunicipalityCredential`, `SupplierCredential`, …)
//! over the DCP issuance protocol, delivers them to the holder's credential service, publishes a
//! Bitstring Status List, and revokes.
//!
//! Credentials are VC 2.0 secured with VC-JOSE (DCP profile `vc20-bssl/jwt`), signed with the
//! authority's DID key, each with a `revocation` entry in the authority's status list.

use std::sync::{Arc, Mutex};

use caap_identity::dcp::{self, issuance};
use caap_identity::did::is_did;
use caap_identity::schemas::{
    MEMBERSHIP, ROLES, credentials_supported, role_credential, schema_id,
};
use caap_identity::status::{Bitstring, status_list_credential};
use caap_identity::vc::{
    CredentialFormat, CredentialSchemaRef, NewCredential, StatusEntry, issue_credential,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::config::AuthorityConfig;
use crate::error::ServiceError;
use crate::store::Store;
pub use crate::store::identity::MemberProfile;
use crate::store::identity::{IssuanceRequest, IssuedCredential};
use crate::trust::Identity;
use crate::trust::{DcpError, TOKEN_LIFETIME_SECS, Trust, issuer_url};

/// The URL of the authority's revocation list.
pub fn status_list_url(public_url: &str) -> String {
    format!("{}/status/revocation", issuer_url(public_url))
}

/// The URL of the authority's member directory.
pub fn member_directory_url(public_url: &str) -> String {
    format!("{}/directory", issuer_url(public_url))
}

/// The type of the member directory credential.
pub const MEMBER_DIRECTORY: &str = "MemberDirectoryCredential";

/// A signed status list and when it was made.
type SignedList = (DateTime<Utc>, String);

/// The signed list kept in `slot`, if it was made within the hour.
fn fresh(slot: &Mutex<Option<SignedList>>, now: DateTime<Utc>) -> Option<String> {
    let cached = slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
    cached
        .filter(|(made, _)| now - *made < Duration::hours(1))
        .map(|(_, jwt)| jwt)
}

/// The trust anchor's service: its members, the credentials it issues and their status list. Owns the
/// anchor's state; every operation answers "not a trust anchor" unless `[authority] enabled`.
#[derive(Debug, Clone)]
pub struct Authority {
    config: AuthorityConfig,
    trust: Arc<Trust>,
    store: Store,
    clock: Arc<dyn Clock>,
    http: crate::outbound::Http,
    participant_id: String,
    name: String,
    public_url: String,
    /// One issuance at a time, so two requests never take the same status-list index (the authority runs
    /// as one process).
    issuing: Arc<tokio::sync::Mutex<()>>,
    /// The signed status list and when it was made; dropped on a revocation.
    status_list: Arc<Mutex<Option<SignedList>>>,
    /// The signed member directory and when it was made; dropped when a member changes.
    directory: Arc<Mutex<Option<SignedList>>>,
}

impl Authority {
    /// The authority of the connector `identity`, with `[authority]` `config`, issuing with `trust`'s key.
    pub fn new(config: AuthorityConfig, trust: Arc<Trust>, identity: &Identity) -> Self {
        Authority {
            config,
            store: trust.store.clone(),
            clock: trust.clock.clone(),
            http: trust.http.clone(),
            trust,
            participant_id: identity.participant_id.clone(),
            name: identity.name.clone(),
            public_url: identity.public_url.clone(),
            issuing: Arc::default(),
            status_list: Arc::default(),
            directory: Arc::default(),
        }
    }

    fn authority(&self) -> Result<&AuthorityConfig, ServiceError> {
        if self.config.enabled {
            Ok(&self.config)
        } else {
            Err(ServiceError::NotFound(
                "this connector is not a trust anchor ([authority] enabled = false)".into(),
            ))
        }
    }

    fn issuer_enabled(&self) -> Result<(), DcpError> {
        if self.config.enabled {
            Ok(())
        } else {
            Err(DcpError::NotFound(
                "this connector is not a credential issuer".into(),
            ))
        }
    }

    /// The issuer service's metadata: this authority and what it issues.
    pub fn issuer_metadata(&self) -> Result<issuance::IssuerMetadata, DcpError> {
        self.issuer_enabled()?;
        Ok(issuance::IssuerMetadata::new(
            &self.participant_id,
            credentials_supported(),
        ))
    }

    /// `POST /issuer/credentials`: checks the requester's token and its CredentialRequestMessage,
    /// records the request and answers it in the background. Returns the request's id.
    pub async fn receive_credential_request(
        &self,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<String, DcpError> {
        self.issuer_enabled()?;
        let now = self.clock.now();
        let received = issuance::receive_credential_request(
            authorization,
            body,
            &self.trust.did,
            now,
            self.trust.resolver.as_ref(),
            self.trust.replay.as_ref(),
        )
        .await
        .map_err(|r| match r {
            caap_identity::dcp::Refusal::InvalidMessage(e) => DcpError::bad("invalid_request", e),
            other => DcpError::Refused(other),
        })?;
        let supported = credentials_supported();
        let mut wanted = Vec::new();
        for r in &received.message.credentials {
            let Some(o) = supported
                .iter()
                .find(|o| o.id == r.id || o.credential_type.as_deref() == Some(r.id.as_str()))
            else {
                return Err(DcpError::bad(
                    "invalid_request",
                    format!("`{}` is not in this issuer's credentialsSupported", r.id),
                ));
            };
            wanted.push(o.credential_type.clone().unwrap_or_else(|| o.id.clone()));
        }
        let record = IssuanceRequest {
            id: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            holder: received.requester.issuer.clone(),
            holder_pid: received.message.holder_pid.clone(),
            status: "RECEIVED".into(),
            reason: None,
            created_at: now,
            updated_at: now,
        };
        self.store
            .put_issuance_request(&record)
            .await
            .map_err(|e| DcpError::Internal(format!("recording the issuance request: {e}")))?;
        tracing::info!(holder = %record.holder, request = %record.id, ?wanted, "authority: credential request received");
        let id = record.id.clone();
        self.spawn_issuance(record, wanted);
        Ok(id)
    }

    /// `GET /issuer/requests/{id}`: where a request stands, for its requester only.
    pub async fn issuance_status(
        &self,
        authorization: Option<&str>,
        id: &str,
    ) -> Result<issuance::CredentialStatus, DcpError> {
        self.issuer_enabled()?;
        let token = issuance::authorize_issuance_request(
            authorization,
            &self.trust.did,
            self.clock.now(),
            self.trust.resolver.as_ref(),
            self.trust.replay.as_ref(),
        )
        .await?;
        let r = self
            .store
            .issuance_request(id)
            .await
            .map_err(|e| DcpError::Internal(format!("reading the issuance request: {e}")))?
            .filter(|r| r.holder == token.issuer)
            .ok_or_else(|| DcpError::NotFound("no such request for this holder".into()))?;
        let status = match r.status.as_str() {
            "ISSUED" => issuance::RequestStatus::Issued,
            "REJECTED" => issuance::RequestStatus::Rejected,
            _ => issuance::RequestStatus::Received,
        };
        Ok(issuance::CredentialStatus::new(
            &r.id,
            &r.holder_pid,
            status,
        ))
    }

    /// Adds or replaces a member of the federation.
    pub async fn put_member(&self, member: MemberProfile) -> Result<MemberProfile, ServiceError> {
        self.authority()?;
        if !is_did(&member.holder) {
            return Err(ServiceError::field(
                "/holder",
                format!("`{}` is not a DID", member.holder),
            ));
        }
        for (i, role) in member.roles.iter().enumerate() {
            if role_credential(role).is_none() {
                return Err(ServiceError::field(
                    &format!("/roles/{i}"),
                    format!(
                        "unknown role `{role}`; known roles: {}",
                        ROLES.iter().map(|(r, _)| *r).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        if let Some(address) = &member.dsp_address {
            let mut errors = Vec::new();
            caap_catalog::asset::check_http_url("/dspAddress", address, &mut errors);
            if let Some(e) = errors.into_iter().next() {
                return Err(ServiceError::field("/dspAddress", e.message));
            }
        }
        self.store.put_member(&member, self.clock.now()).await?;
        *self.directory.lock().unwrap_or_else(|p| p.into_inner()) = None;
        tracing::info!(holder = %member.holder, roles = ?member.roles, "authority: member registered");
        Ok(member)
    }

    /// Removes a member from the federation: it leaves the member directory (so other members stop
    /// crawling it); its credentials are revoked separately (`caap authority revoke`).
    pub async fn remove_member(&self, holder: &str) -> Result<(), ServiceError> {
        self.authority()?;
        if !self.store.remove_member(holder).await? {
            return Err(ServiceError::NotFound(format!("no member `{holder}`")));
        }
        *self.directory.lock().unwrap_or_else(|p| p.into_inner()) = None;
        tracing::info!(%holder, "authority: member removed");
        Ok(())
    }

    /// The member directory (ADR 0008): a `MemberDirectoryCredential` signed with the anchor's key, whose
    /// subject lists every member's DID, name, roles and DSP address. Rebuilt when a member changes, and
    /// hourly so its one-day validity never runs out.
    pub async fn member_directory_jwt(&self) -> Result<String, ServiceError> {
        self.authority()?;
        let now = self.clock.now();
        if let Some(jwt) = fresh(&self.directory, now) {
            return Ok(jwt);
        }
        let members: Vec<Value> = self
            .store
            .members()
            .await?
            .into_iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.holder,
                    "name": m.name,
                    "roles": m.roles,
                    "dspAddress": m.dsp_address,
                })
            })
            .collect();
        let url = member_directory_url(&self.public_url);
        let mut claims = Map::new();
        claims.insert("type".into(), Value::from("MemberDirectory"));
        claims.insert("members".into(), Value::Array(members));
        let mut credential = NewCredential::new(
            &self.participant_id,
            MEMBER_DIRECTORY,
            &format!("{url}#members"),
            claims,
            now,
        );
        credential.id = Some(url);
        credential.valid_until = Some(now + Duration::days(1));
        let jwt = issue_credential(&credential, CredentialFormat::Vc20Jose, self.trust.key())
            .map_err(|e| ServiceError::Internal(format!("signing the member directory: {e}")))?;
        *self.directory.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, jwt.clone()));
        Ok(jwt)
    }

    /// The members.
    pub async fn members(&self) -> Result<Vec<MemberProfile>, ServiceError> {
        self.authority()?;
        Ok(self.store.members().await?)
    }

    /// Issued credentials (of one holder, or all).
    pub async fn issued(
        &self,
        holder: Option<&str>,
    ) -> Result<Vec<IssuedCredential>, ServiceError> {
        self.authority()?;
        Ok(self.store.issued_credentials(holder).await?)
    }

    /// Revokes a credential (by id) or every credential of a holder (by DID).
    pub async fn revoke(&self, what: &str, reason: &str) -> Result<u64, ServiceError> {
        self.authority()?;
        let n = self
            .store
            .revoke_issued(what, reason, self.clock.now())
            .await?;
        *self.status_list.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if n == 0 {
            return Err(ServiceError::NotFound(format!(
                "no unrevoked credential with id or holder `{what}`"
            )));
        }
        tracing::info!(%what, %reason, revoked = n, "authority: credentials revoked");
        Ok(n)
    }

    /// The status list credential (a JWT), from the revocations in the database. Verifiers fetch it
    /// often; it is rebuilt after a revocation, and hourly so its one-day validity never runs out.
    pub async fn status_list_jwt(&self) -> Result<String, ServiceError> {
        let config = self.authority()?;
        let now = self.clock.now();
        if let Some(jwt) = fresh(&self.status_list, now) {
            return Ok(jwt);
        }
        let issued = self.store.issued_credentials(None).await?;
        let mut bits = Bitstring::new(config.status_list_size);
        for c in issued.iter().filter(|c| c.revoked_at.is_some()) {
            bits.set(c.status_index, true)
                .map_err(|e| ServiceError::Internal(format!("status list: {e}")))?;
        }
        let list = status_list_credential(
            &self.participant_id,
            &status_list_url(&self.public_url),
            "revocation",
            &bits,
            now,
            Some(now + Duration::days(1)),
        )
        .map_err(|e| ServiceError::Internal(format!("status list: {e}")))?;
        let jwt = issue_credential(&list, CredentialFormat::Vc20Jose, self.trust.key())
            .map_err(|e| ServiceError::Internal(format!("signing the status list: {e}")))?;
        *self.status_list.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, jwt.clone()));
        Ok(jwt)
    }

    /// Issues the credentials `wanted` (types; empty: all) that a member is entitled to: the
    /// membership and one per role. Refuses strangers, and requests for nothing it may have.
    pub async fn issue_to(
        &self,
        holder: &str,
        wanted: &[String],
        request_id: Option<&str>,
    ) -> Result<Vec<(IssuedCredential, String)>, ServiceError> {
        let config = self.authority()?;
        let member = self.store.member(holder).await?.ok_or_else(|| {
            ServiceError::Conflict(format!(
                "{holder} is not a member of this federation; an administrator adds it with \
                 `caap authority members add`"
            ))
        })?;
        let mut types: Vec<&str> = vec![MEMBERSHIP];
        types.extend(member.roles.iter().filter_map(|r| role_credential(r)));
        if !wanted.is_empty() {
            // Issue what was asked for and is allowed; the holder sees what it got.
            let skipped: Vec<&String> = wanted
                .iter()
                .filter(|w| !types.contains(&w.as_str()))
                .collect();
            types.retain(|t| wanted.iter().any(|w| w == t));
            if types.is_empty() {
                return Err(ServiceError::Conflict(format!(
                    "{holder} is not entitled to any of {wanted:?}"
                )));
            }
            if !skipped.is_empty() {
                tracing::info!(%holder, ?skipped, "authority: not entitled to some requested credentials; issuing the rest");
            }
        }
        let now = self.clock.now();
        let valid_until = now + Duration::days(i64::from(config.credential_validity_days));
        let did = &self.participant_id;
        let list_url = status_list_url(&self.public_url);
        // Reading the next free index and recording the credential must not interleave with
        // another issuance.
        let _one_at_a_time = self.issuing.lock().await;
        let mut out = Vec::new();
        for credential_type in types {
            let index = self.store.next_status_index().await?;
            if index >= config.status_list_size as u64 {
                return Err(ServiceError::Internal(format!(
                    "the status list is full ({} entries); raise authority.status_list_size",
                    config.status_list_size
                )));
            }
            let id = format!("urn:uuid:{}", uuid::Uuid::new_v4());
            let claims = subject_claims(&self.name, credential_type, &member, now);
            let mut vc = NewCredential::new(did, credential_type, holder, claims, now);
            vc.id = Some(id.clone());
            vc.valid_until = Some(valid_until);
            vc.status = vec![StatusEntry::bitstring(&list_url, index, "revocation")];
            vc.schemas = vec![CredentialSchemaRef {
                id: schema_id(credential_type),
                kind: "JsonSchema".into(),
            }];
            let jwt = issue_credential(&vc, CredentialFormat::Vc20Jose, self.trust.key())
                .map_err(|e| ServiceError::Internal(format!("signing the credential: {e}")))?;
            let record = IssuedCredential {
                id,
                holder: holder.to_owned(),
                credential_type: credential_type.to_owned(),
                status_index: index,
                request_id: request_id.map(str::to_owned),
                issued_at: now,
                valid_until,
                revoked_at: None,
                revoke_reason: None,
            };
            self.store.put_issued_credential(&record).await?;
            out.push((record, jwt));
        }
        tracing::info!(%holder, credentials = out.len(), "authority: credentials issued");
        Ok(out)
    }

    /// Answers a credential request in the background: issue, then deliver to the holder's
    /// credential service (`POST {cs}/credentials`), and record the outcome on the request.
    pub fn spawn_issuance(&self, request: IssuanceRequest, wanted: Vec<String>) {
        let c = self.clone();
        actix_web::rt::spawn(async move {
            let outcome = c.issue_and_deliver(&request, &wanted).await;
            let now = c.clock.now();
            let (status, reason) = match outcome {
                Ok(()) => ("ISSUED", None),
                Err(Delivery::Rejected(why)) => ("REJECTED", Some(why)),
                Err(Delivery::Failed(why)) => ("RECEIVED", Some(why)),
            };
            if let Some(why) = &reason {
                tracing::warn!(request = %request.id, holder = %request.holder, %status, reason = %why, "authority: issuance did not complete");
            }
            let updated = IssuanceRequest {
                status: status.to_owned(),
                reason,
                updated_at: now,
                ..request
            };
            if let Err(e) = c.store.put_issuance_request(&updated).await {
                tracing::error!(request = %updated.id, error = %e, "cannot record the issuance outcome");
            }
        });
    }

    async fn issue_and_deliver(
        &self,
        request: &IssuanceRequest,
        wanted: &[String],
    ) -> Result<(), Delivery> {
        let issued = match self
            .issue_to(&request.holder, wanted, Some(&request.id))
            .await
        {
            Ok(i) => i,
            Err(ServiceError::Conflict(why)) => {
                // Tell the holder, so it does not wait: a REJECTED CredentialMessage.
                let message = issuance::CredentialMessage::rejected(
                    &request.id,
                    &request.holder_pid,
                    Some(&why),
                );
                let _ = self.deliver(&request.holder, &message).await;
                return Err(Delivery::Rejected(why));
            }
            Err(e) => return Err(Delivery::Failed(e.to_string())),
        };
        let credentials = issued
            .iter()
            .map(|(c, jwt)| {
                issuance::CredentialContainer::jwt(
                    &c.credential_type,
                    jwt,
                    CredentialFormat::Vc20Jose,
                )
            })
            .collect();
        let message =
            issuance::CredentialMessage::issued(&request.id, &request.holder_pid, credentials);
        self.deliver(&request.holder, &message)
            .await
            .map_err(Delivery::Failed)
    }

    /// POSTs a CredentialMessage to the holder's credential service with our SI token.
    async fn deliver(
        &self,
        holder: &str,
        message: &issuance::CredentialMessage,
    ) -> Result<(), String> {
        let now = self.clock.now();
        let doc = self
            .trust
            .resolver
            .resolve(holder, now)
            .await
            .map_err(|e| format!("cannot resolve {holder}: {e}"))?;
        let cs = doc
            .credential_service_url()
            .ok_or_else(|| format!("the DID document of {holder} names no CredentialService"))?;
        let token = dcp::create_self_issued_token(
            &self.participant_id,
            self.trust.key(),
            holder,
            None,
            now,
            Duration::seconds(TOKEN_LIFETIME_SECS),
        )
        .map_err(|e| format!("cannot sign our token: {e}"))?;
        let url = format!("{}/credentials", cs.trim_end_matches('/'));
        let res = self
            .http
            .post(&url)
            .bearer_auth(token.expose())
            .json(message)
            .send()
            .await
            .map_err(|e| format!("{url}: {}", crate::outbound::describe_reqwest(&e)))?;
        if !res.status().is_success() {
            let status = res.status();
            let body = res.text().await.unwrap_or_default();
            return Err(format!(
                "{url} answered {status}: {}",
                &body[..body.len().min(300)]
            ));
        }
        Ok(())
    }
}

enum Delivery {
    Rejected(String),
    Failed(String),
}

/// The subject claims of a credential: the membership names the federation; a role credential
/// carries the role and the member's attributes (e.g. `municipalityCode`, `country`).
fn subject_claims(
    federation: &str,
    credential_type: &str,
    member: &MemberProfile,
    now: DateTime<Utc>,
) -> Map<String, Value> {
    let mut claims = Map::new();
    if credential_type == MEMBERSHIP {
        claims.insert("memberOf".into(), Value::from(federation));
        claims.insert(
            "since".into(),
            Value::from(now.format("%Y-%m-%d").to_string()),
        );
        if let Some(name) = &member.name {
            claims.insert("name".into(), Value::from(name.as_str()));
        }
    } else if let Some((role, _)) = ROLES.iter().find(|(_, t)| *t == credential_type) {
        claims.insert("role".into(), Value::from(*role));
        for (k, v) in &member.attributes {
            claims.insert(k.clone(), v.clone());
        }
    }
    claims
}
