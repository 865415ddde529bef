//! DCP 1.0 credential issuance (§6): the messages between a holder's credential service and an
//! issuer service, and the two decisions around them.
//!
//! * Issuer side: [`receive_credential_request`] checks the requester's self-issued token
//!   (`aud` = the issuer, no `token` claim needed) and the `CredentialRequestMessage`.
//! * Holder side: [`accept_credential_message`] checks the issuer's self-issued token (`aud` = us)
//!   and every delivered credential: signed by the sender, about us, in the announced format.
//!
//! Message models keep unknown-but-valid values as strings (e.g. `format`), so every message that
//! validates against the DCP schemas parses and round-trips; the checks say what caap accepts.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Refusal;
use super::messages::{DCP_CONTEXT, is_type};
use super::token::{ReplayCache, TokenRules, VerifiedToken, verify_self_issued_token};
use super::verify::StoredCredential;
use crate::resolve::DidResolve;
use crate::vc::{CredentialError, CredentialFormat, VerifyOptions, verify_credential};

/// The `format` of a VC 1.1 credential secured as a JWT (as EDC IdentityHub names it).
pub const FORMAT_VC11_JWT: &str = "VC1_0_JWT";
/// The `format` of a VC 2.0 credential secured with VC-JOSE (as EDC IdentityHub names it).
pub const FORMAT_VC20_JOSE: &str = "VC2_0_JOSE";
/// The generic `format` of the DCP examples for any JWT-secured credential.
pub const FORMAT_JWT: &str = "jwt";

fn dcp_context() -> Value {
    Value::Array(vec![Value::from(DCP_CONTEXT)])
}

fn credential_object_type() -> String {
    "CredentialObject".into()
}

/// Why an issuance message was not accepted: the field at fault is named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuanceMessageError {
    /// Not JSON, or not an object.
    #[error("not a JSON object: {0}")]
    NotJson(String),
    /// `@context` does not include the DCP context.
    #[error("`@context` must include {DCP_CONTEXT}")]
    MissingContext,
    /// `type` names another message.
    #[error("`type` is {found:?}, expected {expected}")]
    WrongType {
        /// The message type expected.
        expected: &'static str,
        /// What `type` says.
        found: Option<String>,
    },
    /// A required member is missing (or null).
    #[error("`{0}` is required")]
    MissingField(&'static str),
    /// A member has the wrong shape or value.
    #[error("`{field}` is invalid: {reason}")]
    InvalidField {
        /// The member.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl IssuanceMessageError {
    /// The HTTP status to answer with (always 400).
    pub fn http_status(&self) -> u16 {
        400
    }
}

/// The JSON shape a required member must have.
#[derive(Debug, Clone, Copy)]
enum Shape {
    String,
    Array,
}

/// Checks the envelope (`@context`, `type`) and the required members, then deserializes.
fn parse_message<T: DeserializeOwned>(
    body: &[u8],
    kind: &'static str,
    required: &[(&'static str, Shape)],
) -> Result<T, IssuanceMessageError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| IssuanceMessageError::NotJson(e.to_string()))?;
    check_envelope(&value, kind, required)?;
    serde_json::from_value(value).map_err(|e| IssuanceMessageError::InvalidField {
        field: kind,
        reason: e.to_string(),
    })
}

fn check_envelope(
    value: &Value,
    kind: &'static str,
    required: &[(&'static str, Shape)],
) -> Result<(), IssuanceMessageError> {
    let object = value
        .as_object()
        .ok_or_else(|| IssuanceMessageError::NotJson("the body is not an object".into()))?;
    let has_context = match object.get("@context") {
        Some(Value::Array(items)) => items.iter().any(|c| c == DCP_CONTEXT),
        Some(Value::String(c)) => c == DCP_CONTEXT,
        _ => false,
    };
    if !has_context {
        return Err(IssuanceMessageError::MissingContext);
    }
    let found = object.get("type").and_then(Value::as_str);
    if !found.is_some_and(|t| is_type(t, kind)) {
        return Err(IssuanceMessageError::WrongType {
            expected: kind,
            found: found.map(str::to_owned),
        });
    }
    for (field, shape) in required {
        let ok = match (object.get(*field), shape) {
            (None | Some(Value::Null), _) => return Err(IssuanceMessageError::MissingField(field)),
            (Some(Value::String(s)), Shape::String) => !s.is_empty(),
            (Some(Value::Array(_)), Shape::Array) => true,
            _ => false,
        };
        if !ok {
            let reason = match shape {
                Shape::String => "expected a non-empty string",
                Shape::Array => "expected an array",
            };
            return Err(IssuanceMessageError::InvalidField {
                field,
                reason: reason.into(),
            });
        }
    }
    Ok(())
}

/// One requested credential: an `id` from the issuer's `credentialsSupported`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRef {
    /// The `CredentialObject` id.
    pub id: String,
}

/// `CredentialRequestMessage` (holder → issuer, `POST {issuer}/credentials`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialRequestMessage {
    /// `@context`.
    #[serde(rename = "@context", default = "dcp_context")]
    pub context: Value,
    /// `CredentialRequestMessage`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The holder's id for this request (it correlates the later `CredentialMessage`).
    pub holder_pid: String,
    /// The credentials asked for.
    pub credentials: Vec<CredentialRef>,
}

impl CredentialRequestMessage {
    /// The message type.
    pub const TYPE: &'static str = "CredentialRequestMessage";

    /// A request for the `CredentialObject` ids `ids`.
    pub fn new(holder_pid: &str, ids: &[&str]) -> Self {
        CredentialRequestMessage {
            context: dcp_context(),
            kind: Self::TYPE.into(),
            holder_pid: holder_pid.to_owned(),
            credentials: ids
                .iter()
                .map(|id| CredentialRef {
                    id: (*id).to_owned(),
                })
                .collect(),
        }
    }

    /// Parses and checks a request body: `holderPid` (non-empty) and `credentials` are required.
    pub fn parse(body: &[u8]) -> Result<Self, IssuanceMessageError> {
        let msg: Self = parse_message(
            body,
            Self::TYPE,
            &[("holderPid", Shape::String), ("credentials", Shape::Array)],
        )?;
        if msg.credentials.iter().any(|c| c.id.is_empty()) {
            return Err(IssuanceMessageError::InvalidField {
                field: "credentials",
                reason: "every entry needs an `id`".into(),
            });
        }
        Ok(msg)
    }
}

/// `ISSUED` or `REJECTED`, in a [`CredentialMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IssuanceOutcome {
    /// The credentials are delivered.
    Issued,
    /// The request was turned down.
    Rejected,
}

/// One delivered credential in a [`CredentialMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialContainer {
    /// The credential type (e.g. `MembershipCredential`).
    pub credential_type: String,
    /// The credential: for JWT formats, the compact JWS.
    pub payload: String,
    /// Its format: [`FORMAT_VC11_JWT`], [`FORMAT_VC20_JOSE`] or [`FORMAT_JWT`] are accepted.
    pub format: String,
}

impl CredentialContainer {
    /// A container for a credential JWT of `format`.
    pub fn jwt(credential_type: &str, jwt: &str, format: CredentialFormat) -> Self {
        CredentialContainer {
            credential_type: credential_type.to_owned(),
            payload: jwt.to_owned(),
            format: format_name(format).to_owned(),
        }
    }

    /// The data models this container's `format` allows, or `None` when caap cannot read it
    /// (e.g. `json-ld` with embedded proofs).
    pub fn accepted_formats(&self) -> Option<&'static [CredentialFormat]> {
        match self.format.as_str() {
            FORMAT_VC11_JWT => Some(&[CredentialFormat::Vc11Jwt]),
            FORMAT_VC20_JOSE => Some(&[CredentialFormat::Vc20Jose]),
            f if f.eq_ignore_ascii_case(FORMAT_JWT) => {
                Some(&[CredentialFormat::Vc11Jwt, CredentialFormat::Vc20Jose])
            }
            _ => None,
        }
    }
}

/// The `format` caap writes for a data model.
pub fn format_name(format: CredentialFormat) -> &'static str {
    match format {
        CredentialFormat::Vc11Jwt => FORMAT_VC11_JWT,
        CredentialFormat::Vc20Jose => FORMAT_VC20_JOSE,
    }
}

/// `CredentialMessage` (issuer → holder, `POST {cs}/credentials`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialMessage {
    /// `@context`.
    #[serde(rename = "@context", default = "dcp_context")]
    pub context: Value,
    /// `CredentialMessage`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The issuer's id for the request.
    pub issuer_pid: String,
    /// The holder's id for the request (from its `CredentialRequestMessage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_pid: Option<String>,
    /// `ISSUED` or `REJECTED`.
    pub status: IssuanceOutcome,
    /// Why, when `REJECTED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    /// The credentials, when `ISSUED`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<CredentialContainer>,
}

impl CredentialMessage {
    /// The message type.
    pub const TYPE: &'static str = "CredentialMessage";

    /// An `ISSUED` message delivering `credentials`.
    pub fn issued(
        issuer_pid: &str,
        holder_pid: &str,
        credentials: Vec<CredentialContainer>,
    ) -> Self {
        CredentialMessage {
            context: dcp_context(),
            kind: Self::TYPE.into(),
            issuer_pid: issuer_pid.to_owned(),
            holder_pid: Some(holder_pid.to_owned()),
            status: IssuanceOutcome::Issued,
            rejection_reason: None,
            credentials,
        }
    }

    /// A `REJECTED` message.
    pub fn rejected(issuer_pid: &str, holder_pid: &str, reason: Option<&str>) -> Self {
        CredentialMessage {
            rejection_reason: reason.map(str::to_owned),
            status: IssuanceOutcome::Rejected,
            credentials: Vec::new(),
            ..Self::issued(issuer_pid, holder_pid, Vec::new())
        }
    }

    /// Parses and checks a body: `issuerPid` and `status` (`ISSUED` | `REJECTED`) are required.
    pub fn parse(body: &[u8]) -> Result<Self, IssuanceMessageError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| IssuanceMessageError::NotJson(e.to_string()))?;
        check_envelope(
            &value,
            Self::TYPE,
            &[("issuerPid", Shape::String), ("status", Shape::String)],
        )?;
        let status = value.get("status").and_then(Value::as_str);
        if !matches!(status, Some("ISSUED" | "REJECTED")) {
            return Err(IssuanceMessageError::InvalidField {
                field: "status",
                reason: format!("{status:?} is neither ISSUED nor REJECTED"),
            });
        }
        if let Some(items) = value.get("credentials") {
            let items = items
                .as_array()
                .ok_or_else(|| IssuanceMessageError::InvalidField {
                    field: "credentials",
                    reason: "expected an array".into(),
                })?;
            for item in items {
                for field in ["credentialType", "payload", "format"] {
                    if !item.get(field).is_some_and(Value::is_string) {
                        return Err(IssuanceMessageError::InvalidField {
                            field: "credentials",
                            reason: format!("every entry needs a string `{field}`"),
                        });
                    }
                }
            }
        }
        serde_json::from_value(value).map_err(|e| IssuanceMessageError::InvalidField {
            field: Self::TYPE,
            reason: e.to_string(),
        })
    }
}

/// `CredentialObject`: a credential an issuer offers or supports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialObject {
    /// `@context`, when the object stands alone.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// Its id (what a `CredentialRequestMessage` names).
    pub id: String,
    /// `CredentialObject` (added when a sparse offer leaves it out).
    #[serde(rename = "type", default = "credential_object_type")]
    pub kind: String,
    /// The credential type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_type: Option<String>,
    /// The URL of the credential's schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_schema: Option<String>,
    /// Why it is offered: `reissue`, `proof-key-revocation`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_reason: Option<String>,
    /// DID methods the holder may bind it to (e.g. `did:web`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_methods: Option<Vec<String>>,
    /// The DCP profile (e.g. `vc20-bssl/jwt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// A DIF Presentation Exchange definition the holder must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuance_policy: Option<Value>,
}

impl CredentialObject {
    /// A supported credential: id, type, schema, profile, binding by `did:web`.
    pub fn supported(id: &str, credential_type: &str, schema: &str, profile: &str) -> Self {
        CredentialObject {
            context: None,
            id: id.to_owned(),
            kind: credential_object_type(),
            credential_type: Some(credential_type.to_owned()),
            credential_schema: Some(schema.to_owned()),
            offer_reason: Some("reissue".into()),
            binding_methods: Some(vec!["did:web".into()]),
            profile: Some(profile.to_owned()),
            issuance_policy: None,
        }
    }
}

/// `CredentialOfferMessage` (issuer → holder, `POST {cs}/offers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialOfferMessage {
    /// `@context`.
    #[serde(rename = "@context", default = "dcp_context")]
    pub context: Value,
    /// `CredentialOfferMessage`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The issuer's DID.
    pub issuer: String,
    /// What is offered (possibly sparse: only ids).
    pub credentials: Vec<CredentialObject>,
}

impl CredentialOfferMessage {
    /// The message type.
    pub const TYPE: &'static str = "CredentialOfferMessage";

    /// An offer of `credentials` by `issuer`.
    pub fn new(issuer: &str, credentials: Vec<CredentialObject>) -> Self {
        CredentialOfferMessage {
            context: dcp_context(),
            kind: Self::TYPE.into(),
            issuer: issuer.to_owned(),
            credentials,
        }
    }

    /// Parses and checks a body: `issuer` and `credentials` (each with an `id`) are required.
    pub fn parse(body: &[u8]) -> Result<Self, IssuanceMessageError> {
        parse_message(
            body,
            Self::TYPE,
            &[("issuer", Shape::String), ("credentials", Shape::Array)],
        )
    }
}

/// `IssuerMetadata` (`GET {issuer}/metadata`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuerMetadata {
    /// `@context`.
    #[serde(rename = "@context", default = "dcp_context")]
    pub context: Value,
    /// `IssuerMetadata`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The issuer's DID.
    pub issuer: String,
    /// What it issues.
    pub credentials_supported: Vec<CredentialObject>,
}

impl IssuerMetadata {
    /// The message type.
    pub const TYPE: &'static str = "IssuerMetadata";

    /// The metadata of `issuer`.
    pub fn new(issuer: &str, credentials_supported: Vec<CredentialObject>) -> Self {
        IssuerMetadata {
            context: dcp_context(),
            kind: Self::TYPE.into(),
            issuer: issuer.to_owned(),
            credentials_supported,
        }
    }

    /// Parses and checks a body: `issuer` and `credentialsSupported` are required.
    pub fn parse(body: &[u8]) -> Result<Self, IssuanceMessageError> {
        parse_message(
            body,
            Self::TYPE,
            &[
                ("issuer", Shape::String),
                ("credentialsSupported", Shape::Array),
            ],
        )
    }
}

/// The state of an issuance request, in a [`CredentialStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestStatus {
    /// Received, not decided yet.
    Received,
    /// Turned down.
    Rejected,
    /// Issued.
    Issued,
}

/// `CredentialStatus` (`GET {issuer}/requests/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialStatus {
    /// `@context`.
    #[serde(rename = "@context", default = "dcp_context")]
    pub context: Value,
    /// `CredentialStatus`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The issuer's id for the request.
    pub issuer_pid: String,
    /// The holder's id for the request.
    pub holder_pid: String,
    /// Where it stands.
    pub status: RequestStatus,
}

impl CredentialStatus {
    /// The message type.
    pub const TYPE: &'static str = "CredentialStatus";

    /// The status of a request.
    pub fn new(issuer_pid: &str, holder_pid: &str, status: RequestStatus) -> Self {
        CredentialStatus {
            context: dcp_context(),
            kind: Self::TYPE.into(),
            issuer_pid: issuer_pid.to_owned(),
            holder_pid: holder_pid.to_owned(),
            status,
        }
    }

    /// Parses and checks a body.
    pub fn parse(body: &[u8]) -> Result<Self, IssuanceMessageError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| IssuanceMessageError::NotJson(e.to_string()))?;
        check_envelope(
            &value,
            Self::TYPE,
            &[
                ("issuerPid", Shape::String),
                ("holderPid", Shape::String),
                ("status", Shape::String),
            ],
        )?;
        serde_json::from_value(value).map_err(|e| IssuanceMessageError::InvalidField {
            field: "status",
            reason: e.to_string(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Issuer side

/// The token rules for issuance traffic: DCP defaults, but the `token` claim is not needed (it
/// only carries access to a credential service for presentation queries).
fn issuance_rules(own_did: &str, options: Option<&VerifyOptions>) -> TokenRules {
    let mut rules = TokenRules::new(own_did);
    rules.require_token_claim = false;
    if let Some(options) = options {
        rules.leeway = options.leeway;
        rules.key_use = options.key_use;
    }
    rules
}

/// Checks the requester's self-issued token on an issuer endpoint (`POST /credentials`,
/// `GET /requests/{id}`): `Bearer`, `aud` = `issuer_did`, `iss` = `sub` = the requester, its
/// signature, times and a fresh `jti`. The requester is [`VerifiedToken::issuer`].
pub async fn authorize_issuance_request(
    authorization: Option<&str>,
    issuer_did: &str,
    now: DateTime<Utc>,
    resolver: &dyn DidResolve,
    replay: &dyn ReplayCache,
) -> Result<VerifiedToken, Refusal> {
    let rules = issuance_rules(issuer_did, None);
    verify_self_issued_token(authorization, &rules, now, resolver, replay).await
}

/// A credential request the issuer may act on.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// The requester (its DID is [`VerifiedToken::issuer`]).
    pub requester: VerifiedToken,
    /// The request.
    pub message: CredentialRequestMessage,
}

/// The issuer's `POST /credentials`: the token first ([`authorize_issuance_request`]), then the
/// body, which must be a `CredentialRequestMessage` with a `holderPid` (DCP TCK is_6_4_12).
pub async fn receive_credential_request(
    authorization: Option<&str>,
    body: &[u8],
    issuer_did: &str,
    now: DateTime<Utc>,
    resolver: &dyn DidResolve,
    replay: &dyn ReplayCache,
) -> Result<ReceivedRequest, Refusal> {
    let requester =
        authorize_issuance_request(authorization, issuer_did, now, resolver, replay).await?;
    let message = CredentialRequestMessage::parse(body).map_err(Refusal::InvalidMessage)?;
    Ok(ReceivedRequest { requester, message })
}

// ---------------------------------------------------------------------------------------------
// Holder side

/// What a verified `CredentialMessage` delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum CredentialDelivery {
    /// `ISSUED`: every credential verified, ready to store.
    Issued {
        /// The issuer (the token's sender).
        issuer: String,
        /// The holder's request id, if the message carries it.
        holder_pid: Option<String>,
        /// The credentials.
        credentials: Vec<StoredCredential>,
    },
    /// `REJECTED`: the issuer turned the request down (a valid message, not an error).
    Rejected {
        /// The issuer.
        issuer: String,
        /// The holder's request id, if the message carries it.
        holder_pid: Option<String>,
        /// The issuer's reason, if given.
        reason: Option<String>,
    },
}

/// The credential service's `POST /credentials` (Storage API): the issuer's self-issued token
/// (`aud` = `own_did`, from `expected_issuer` when given), then the message: when `ISSUED`, every
/// credential must verify with its issuer's DID (`assertionMethod`, valid at `options.now`), be
/// issued by the token's sender, be about `own_did` (holder binding) and match its announced
/// `format` and `credentialType`. All must pass; nothing is stored otherwise.
pub async fn accept_credential_message(
    authorization: Option<&str>,
    message: &CredentialMessage,
    own_did: &str,
    resolver: &dyn DidResolve,
    replay: &dyn ReplayCache,
    expected_issuer: Option<&str>,
    options: &VerifyOptions,
) -> Result<CredentialDelivery, Refusal> {
    let rules = issuance_rules(own_did, Some(options));
    let token =
        verify_self_issued_token(authorization, &rules, options.now, resolver, replay).await?;
    let sender = token.issuer;
    if let Some(expected) = expected_issuer
        && expected != sender
    {
        return Err(Refusal::UnexpectedIssuer {
            expected: expected.to_owned(),
            found: sender,
        });
    }
    if !is_type(&message.kind, CredentialMessage::TYPE) {
        return Err(Refusal::InvalidMessage(IssuanceMessageError::WrongType {
            expected: CredentialMessage::TYPE,
            found: Some(message.kind.clone()),
        }));
    }
    let holder_pid = message.holder_pid.clone();
    if message.status == IssuanceOutcome::Rejected {
        return Ok(CredentialDelivery::Rejected {
            issuer: sender,
            holder_pid,
            reason: message.rejection_reason.clone(),
        });
    }
    if message.credentials.is_empty() {
        return Err(Refusal::InvalidMessage(IssuanceMessageError::MissingField(
            "credentials",
        )));
    }
    let mut credentials = Vec::with_capacity(message.credentials.len());
    for (index, container) in message.credentials.iter().enumerate() {
        credentials
            .push(verify_delivered(container, index, &sender, own_did, resolver, options).await?);
    }
    Ok(CredentialDelivery::Issued {
        issuer: sender,
        holder_pid,
        credentials,
    })
}

async fn verify_delivered(
    container: &CredentialContainer,
    index: usize,
    sender: &str,
    own_did: &str,
    resolver: &dyn DidResolve,
    options: &VerifyOptions,
) -> Result<StoredCredential, Refusal> {
    let label = format!("#{index} ({})", container.credential_type);
    let invalid = |reason: String| Refusal::CredentialInvalid {
        id: label.clone(),
        reason,
    };
    let formats = container
        .accepted_formats()
        .ok_or_else(|| invalid(format!("format {:?} is not supported", container.format)))?;
    let credential = verify_credential(&container.payload, resolver, options)
        .await
        .map_err(|e| match e {
            CredentialError::Expired(at) => Refusal::CredentialExpired {
                id: label.clone(),
                at,
            },
            CredentialError::NotYetValid(at) => Refusal::CredentialNotYetValid {
                id: label.clone(),
                at,
            },
            CredentialError::Resolve(r) if r.is_unavailable() => Refusal::Resolution(r),
            other => invalid(other.to_string()),
        })?;
    let label = credential.id.clone().unwrap_or(label);
    if credential.issuer != sender {
        return Err(Refusal::CredentialNotFromSender {
            id: label,
            issuer: credential.issuer,
            sender: sender.to_owned(),
        });
    }
    if credential.subject_id.as_deref() != Some(own_did) {
        return Err(Refusal::HolderNotSubject {
            id: label,
            subject: credential.subject_id,
            holder: own_did.to_owned(),
        });
    }
    if !formats.contains(&credential.format) {
        return Err(Refusal::CredentialInvalid {
            id: label,
            reason: format!(
                "announced as {}, but it is {:?}",
                container.format, credential.format
            ),
        });
    }
    if !credential.has_type(&container.credential_type) {
        return Err(Refusal::CredentialInvalid {
            id: label,
            reason: format!("announced as a {}", container.credential_type),
        });
    }
    Ok(StoredCredential {
        jwt: container.payload.clone(),
        credential,
    })
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use serde_json::{Map, json};

    use super::*;
    use crate::dcp::token::{InMemoryReplayCache, create_self_issued_token};
    use crate::jose::sign_compact;
    use crate::keys::KeyAlgorithm;
    use crate::secret::Secret;
    use crate::testutil::{block_on, shared_file, t0};
    use crate::vc::tests::{AUTHORITY, LUND, MALMO, World};
    use crate::vc::{NewCredential, issue_credential};

    /// The authority issues; Malmö holds (and requests).
    const ISSUER: &str = AUTHORITY;
    const HOLDER: &str = MALMO;
    const EXAMPLES: &str = "vectors/identity/dcp/issuance/example";

    fn world() -> World {
        World::new(KeyAlgorithm::Es256)
    }

    fn bearer(w: &World, signer: &str, claims: &Value) -> String {
        format!(
            "Bearer {}",
            sign_compact(w.key(signer), Some("JWT"), claims).unwrap()
        )
    }

    /// Claims of a token from `from` to `to`, without a `token` claim.
    fn claims(from: &str, to: &str) -> Value {
        json!({
            "iss": from, "sub": from, "aud": to, "jti": "jti-1",
            "iat": t0().timestamp(), "nbf": t0().timestamp(),
            "exp": (t0() + Duration::minutes(5)).timestamp(),
        })
    }

    fn request_body() -> Vec<u8> {
        serde_json::to_vec(&CredentialRequestMessage::new(
            "holder-req-1",
            &["membership-credential"],
        ))
        .unwrap()
    }

    fn receive(w: &World, header: Option<&str>, body: &[u8]) -> Result<ReceivedRequest, Refusal> {
        let replay = InMemoryReplayCache::default();
        block_on(receive_credential_request(
            header,
            body,
            ISSUER,
            t0(),
            &w.dids,
            &replay,
        ))
    }

    // -----------------------------------------------------------------------------------------
    // Models

    fn examples() -> Option<Vec<(String, Value)>> {
        let mut out = Vec::new();
        for name in [
            "credential-message.json",
            "credential-message-rejected.json",
            "credential-object.json",
            "credential-offer-message.json",
            "credential-request-message.json",
            "credential-status.json",
            "issuer-metadata.json",
        ] {
            let text = shared_file(&format!("{EXAMPLES}/{name}"))?;
            out.push((name.to_owned(), serde_json::from_str(&text).unwrap()));
        }
        Some(out)
    }

    fn round_trip<T: Serialize + DeserializeOwned>(v: &Value) -> Value {
        serde_json::to_value(serde_json::from_value::<T>(v.clone()).unwrap()).unwrap()
    }

    #[test]
    fn the_dcp_issuance_examples_parse_and_round_trip() {
        let Some(examples) = examples() else { return };
        for (name, original) in examples {
            let body = original.to_string();
            let back = match name.as_str() {
                "credential-message.json" | "credential-message-rejected.json" => {
                    CredentialMessage::parse(body.as_bytes()).unwrap();
                    round_trip::<CredentialMessage>(&original)
                }
                "credential-object.json" => round_trip::<CredentialObject>(&original),
                "credential-offer-message.json" => {
                    CredentialOfferMessage::parse(body.as_bytes()).unwrap();
                    round_trip::<CredentialOfferMessage>(&original)
                }
                "credential-request-message.json" => {
                    let m = CredentialRequestMessage::parse(body.as_bytes()).unwrap();
                    assert_eq!(m.holder_pid, "holderPid");
                    assert_eq!(m.credentials.len(), 2);
                    round_trip::<CredentialRequestMessage>(&original)
                }
                "credential-status.json" => {
                    let m = CredentialStatus::parse(body.as_bytes()).unwrap();
                    assert_eq!(m.status, RequestStatus::Received);
                    round_trip::<CredentialStatus>(&original)
                }
                "issuer-metadata.json" => {
                    let m = IssuerMetadata::parse(body.as_bytes()).unwrap();
                    assert_eq!(m.issuer, "did:web:issuer-url");
                    round_trip::<IssuerMetadata>(&original)
                }
                other => panic!("no model for {other}"),
            };
            assert_eq!(back, original, "{name}");
        }
        let rejected: CredentialMessage = serde_json::from_str(
            &shared_file(&format!("{EXAMPLES}/credential-message-rejected.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(rejected.status, IssuanceOutcome::Rejected);
        assert_eq!(
            rejected.rejection_reason.as_deref(),
            Some("final approval not granted")
        );
    }

    /// The issuance schemas with their `$ref`s resolved offline: the sibling schemas by their
    /// `$id`, the shared context schema under the URL the schemas use (its own `$id` still says
    /// `v08`), and the DIF presentation definition (not shipped) as a stand-in object schema.
    fn schemas() -> Option<Vec<(&'static str, jsonschema::Validator)>> {
        const PE: &str = "https://identity.foundation/presentation-exchange/schemas/presentation-definition.json";
        let mut documents = vec![
            (
                "https://w3id.org/dspace-dcp/v1.0/common/context-schema.json".to_owned(),
                serde_json::from_str::<Value>(&shared_file(
                    "vectors/identity/dcp/common/context-schema.json",
                )?)
                .unwrap(),
            ),
            (PE.to_owned(), json!({"type": "object"})),
        ];
        let names = [
            "credential-message",
            "credential-object",
            "credential-offer-message",
            "credential-request-message",
            "credential-status",
            "issuer-metadata",
        ];
        let mut mine = Vec::new();
        for name in names {
            let text = shared_file(&format!("vectors/identity/dcp/issuance/{name}-schema.json"))?;
            let schema: Value = serde_json::from_str(&text).unwrap();
            let id = schema["$id"].as_str().unwrap().to_owned();
            mine.push((name, schema.clone()));
            documents.push((id, schema));
        }
        let registry = jsonschema::Registry::new()
            .extend(documents)
            .and_then(|b| b.prepare())
            .unwrap();
        Some(
            mine.into_iter()
                .map(|(name, schema)| {
                    let v = jsonschema::options()
                        .with_registry(&registry)
                        .offline()
                        .build(&schema)
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    (name, v)
                })
                .collect(),
        )
    }

    fn assert_valid(validator: &jsonschema::Validator, name: &str, instance: &Value) {
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {instance}: {errors:?}");
    }

    #[test]
    fn our_issuance_messages_validate_against_the_dcp_schemas() {
        let Some(schemas) = schemas() else { return };
        let Some(examples) = examples() else { return };
        let w = world();
        let jwt = w.membership(CredentialFormat::Vc11Jwt, HOLDER);
        let supported = CredentialObject::supported(
            "membership-credential",
            "MembershipCredential",
            "https://authority.example/schemas/membership.json",
            "vc11-sl2021/jwt",
        );
        let mut standalone = serde_json::to_value(&supported).unwrap();
        standalone["@context"] = dcp_context();
        let ours: Vec<(&str, Value)> = vec![
            (
                "credential-message",
                serde_json::to_value(CredentialMessage::issued(
                    "issuer-1",
                    "holder-1",
                    vec![CredentialContainer::jwt(
                        "MembershipCredential",
                        &jwt,
                        CredentialFormat::Vc11Jwt,
                    )],
                ))
                .unwrap(),
            ),
            (
                "credential-message",
                serde_json::to_value(CredentialMessage::rejected(
                    "issuer-1",
                    "holder-1",
                    Some("not a member"),
                ))
                .unwrap(),
            ),
            ("credential-object", standalone),
            (
                "credential-offer-message",
                serde_json::to_value(CredentialOfferMessage::new(ISSUER, vec![supported.clone()]))
                    .unwrap(),
            ),
            (
                "credential-request-message",
                serde_json::from_slice(&request_body()).unwrap(),
            ),
            (
                "credential-status",
                serde_json::to_value(CredentialStatus::new(
                    "issuer-1",
                    "holder-1",
                    RequestStatus::Issued,
                ))
                .unwrap(),
            ),
            (
                "issuer-metadata",
                serde_json::to_value(IssuerMetadata::new(ISSUER, vec![supported])).unwrap(),
            ),
        ];
        let by_name = |n: &str| &schemas.iter().find(|(s, _)| *s == n).unwrap().1;
        for (name, instance) in &ours {
            assert_valid(by_name(name), name, instance);
        }
        // The shipped examples validate too (the registry resolves every $ref).
        for (file, instance) in &examples {
            let name = file.trim_end_matches(".json").trim_end_matches("-rejected");
            assert_valid(by_name(name), file, instance);
        }
        // And the schemas do reject: a request without holderPid.
        let mut bad: Value = serde_json::from_slice(&request_body()).unwrap();
        bad.as_object_mut().unwrap().remove("holderPid");
        assert!(!by_name("credential-request-message").is_valid(&bad));
    }

    #[test]
    fn parse_errors_name_the_field() {
        let body = |v: Value| v.to_string().into_bytes();
        let ctx = json!([DCP_CONTEXT]);
        let missing = CredentialRequestMessage::parse(&body(
            json!({"@context": ctx, "type": "CredentialRequestMessage", "credentials": [{"id": "a"}]}),
        ));
        assert_eq!(
            missing.unwrap_err(),
            IssuanceMessageError::MissingField("holderPid")
        );
        let empty = CredentialRequestMessage::parse(&body(
            json!({"@context": ctx, "type": "CredentialRequestMessage", "holderPid": "", "credentials": []}),
        ));
        assert!(matches!(
            empty.unwrap_err(),
            IssuanceMessageError::InvalidField {
                field: "holderPid",
                ..
            }
        ));
        let no_ctx = CredentialRequestMessage::parse(&body(
            json!({"type": "CredentialRequestMessage", "holderPid": "h", "credentials": []}),
        ));
        assert_eq!(no_ctx.unwrap_err(), IssuanceMessageError::MissingContext);
        let wrong = CredentialRequestMessage::parse(&body(
            json!({"@context": ctx, "type": "CredentialMessage", "holderPid": "h", "credentials": []}),
        ));
        assert!(matches!(
            wrong.unwrap_err(),
            IssuanceMessageError::WrongType { .. }
        ));
        let status = CredentialMessage::parse(&body(
            json!({"@context": ctx, "type": "CredentialMessage", "issuerPid": "i", "status": "MAYBE"}),
        ));
        assert!(matches!(
            status.unwrap_err(),
            IssuanceMessageError::InvalidField {
                field: "status",
                ..
            }
        ));
        let container = CredentialMessage::parse(&body(json!({
            "@context": ctx, "type": "CredentialMessage", "issuerPid": "i", "status": "ISSUED",
            "credentials": [{"credentialType": "X", "format": "jwt"}]
        })));
        assert!(matches!(
            container.unwrap_err(),
            IssuanceMessageError::InvalidField {
                field: "credentials",
                ..
            }
        ));
        assert!(matches!(
            CredentialStatus::parse(b"[1]").unwrap_err(),
            IssuanceMessageError::NotJson(_)
        ));
        assert_eq!(
            Refusal::InvalidMessage(IssuanceMessageError::MissingField("holderPid")).code(),
            "invalid_message"
        );
    }

    // -----------------------------------------------------------------------------------------
    // Issuer side (DCP TCK is_6_4_x)

    /// is_6_4_1_credentialRequest: a token without a `token` claim is fine here.
    #[test]
    fn credential_request_valid_is_accepted() {
        let w = world();
        let token = create_self_issued_token(
            HOLDER,
            w.key(HOLDER),
            ISSUER,
            None,
            t0(),
            Duration::minutes(5),
        )
        .unwrap();
        let header = format!("Bearer {}", token.expose());
        let r = receive(&w, Some(&header), &request_body()).unwrap();
        assert_eq!(r.requester.issuer, HOLDER);
        assert!(r.requester.access_token.is_none());
        assert_eq!(r.message.holder_pid, "holder-req-1");
        assert_eq!(r.message.credentials[0].id, "membership-credential");
    }

    #[test]
    fn credential_request_token_refusals() {
        let w = world();
        let body = request_body();
        let good = bearer(&w, HOLDER, &claims(HOLDER, ISSUER));
        let raw = good.trim_start_matches("Bearer ").to_owned();
        let with = |name: &str, value: Value| {
            let mut c = claims(HOLDER, ISSUER);
            c[name] = value;
            bearer(&w, HOLDER, &c)
        };
        let cases: Vec<(&str, Option<String>, &str)> = vec![
            ("no header", None, "missing_authorization"),
            ("no Bearer prefix", Some(raw), "not_bearer"),
            (
                "wrong aud",
                Some(with("aud", json!(LUND))),
                "wrong_audience",
            ),
            ("iss != sub", Some(with("iss", json!(LUND))), "iss_not_sub"),
            (
                "expired",
                Some(with(
                    "exp",
                    json!((t0() - Duration::minutes(1)).timestamp()),
                )),
                "expired",
            ),
            (
                "nbf in the future",
                Some(with(
                    "nbf",
                    json!((t0() + Duration::minutes(2)).timestamp()),
                )),
                "nbf_in_future",
            ),
            (
                "iat in the future",
                Some(with(
                    "iat",
                    json!((t0() + Duration::minutes(2)).timestamp()),
                )),
                "iat_in_future",
            ),
            (
                "signed with a wrong key",
                Some(bearer(&w, LUND, &claims(HOLDER, ISSUER))),
                "signed_by_another_did",
            ),
        ];
        for (what, header, code) in cases {
            let err = receive(&w, header.as_deref(), &body).unwrap_err();
            assert_eq!(err.code(), code, "{what}: {err}");
        }
    }

    /// is_6_4_11: the same jti twice.
    #[test]
    fn credential_request_replayed_jti_is_refused() {
        let w = world();
        let header = bearer(&w, HOLDER, &claims(HOLDER, ISSUER));
        let replay = InMemoryReplayCache::default();
        let run = || {
            block_on(receive_credential_request(
                Some(&header),
                &request_body(),
                ISSUER,
                t0(),
                &w.dids,
                &replay,
            ))
        };
        assert!(run().is_ok());
        assert!(matches!(run().unwrap_err(), Refusal::ReplayedJti(_)));
    }

    /// is_6_4_12_credentialRequest_missingHolderPid (and an unreadable body).
    #[test]
    fn credential_request_without_holder_pid_is_refused() {
        let w = world();
        let mut body: Value = serde_json::from_slice(&request_body()).unwrap();
        body.as_object_mut().unwrap().remove("holderPid");
        let header = bearer(&w, HOLDER, &claims(HOLDER, ISSUER));
        let err = receive(&w, Some(&header), body.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            err,
            Refusal::InvalidMessage(IssuanceMessageError::MissingField("holderPid"))
        );
        let mut c = claims(HOLDER, ISSUER);
        c["jti"] = json!("jti-2");
        let err = receive(&w, Some(&bearer(&w, HOLDER, &c)), b"not json").unwrap_err();
        assert!(matches!(
            err,
            Refusal::InvalidMessage(IssuanceMessageError::NotJson(_))
        ));
    }

    // -----------------------------------------------------------------------------------------
    // Holder side (DCP TCK cs_06_05_01)

    fn credential(w: &World, issuer: &str, subject: &str, format: CredentialFormat) -> String {
        let mut claims = Map::new();
        claims.insert("memberOf".into(), json!("Nordic Cities"));
        let mut c = NewCredential::new(
            issuer,
            "MembershipCredential",
            subject,
            claims,
            t0() - Duration::days(1),
        );
        c.valid_until = Some(t0() + Duration::days(30));
        c.id = Some(format!("urn:uuid:membership-{subject}"));
        issue_credential(&c, format, w.key(issuer)).unwrap()
    }

    fn issued(containers: Vec<CredentialContainer>) -> CredentialMessage {
        CredentialMessage::issued("issuer-1", "holder-req-1", containers)
    }

    fn membership(jwt: &str, format: CredentialFormat) -> CredentialContainer {
        CredentialContainer::jwt("MembershipCredential", jwt, format)
    }

    fn accept_with(
        w: &World,
        header: Option<&str>,
        message: &CredentialMessage,
        expected_issuer: Option<&str>,
    ) -> Result<CredentialDelivery, Refusal> {
        let replay = InMemoryReplayCache::default();
        block_on(accept_credential_message(
            header,
            message,
            HOLDER,
            &w.dids,
            &replay,
            expected_issuer,
            &VerifyOptions::at(t0()),
        ))
    }

    fn accept(w: &World, message: &CredentialMessage) -> Result<CredentialDelivery, Refusal> {
        let header = bearer(w, ISSUER, &claims(ISSUER, HOLDER));
        accept_with(w, Some(&header), message, Some(ISSUER))
    }

    /// cs_06_05_01_credentialMessage, in both data models, and with the generic `jwt` format.
    #[test]
    fn credential_message_valid_is_accepted() {
        let w = world();
        for format in [CredentialFormat::Vc11Jwt, CredentialFormat::Vc20Jose] {
            let jwt = credential(&w, ISSUER, HOLDER, format);
            let mut generic = membership(&jwt, format);
            generic.format = FORMAT_JWT.into();
            for container in [membership(&jwt, format), generic] {
                let delivery = accept(&w, &issued(vec![container])).unwrap();
                let CredentialDelivery::Issued {
                    issuer,
                    holder_pid,
                    credentials,
                } = delivery
                else {
                    panic!("not issued")
                };
                assert_eq!(issuer, ISSUER);
                assert_eq!(holder_pid.as_deref(), Some("holder-req-1"));
                assert_eq!(credentials.len(), 1);
                assert_eq!(credentials[0].jwt, jwt);
                assert_eq!(credentials[0].credential.format, format);
                assert!(credentials[0].credential.has_type("MembershipCredential"));
            }
        }
    }

    #[test]
    fn credential_message_rejected_is_an_outcome_not_an_error() {
        let w = world();
        let message = CredentialMessage::rejected("issuer-1", "holder-req-1", Some("not a member"));
        assert_eq!(
            accept(&w, &message).unwrap(),
            CredentialDelivery::Rejected {
                issuer: ISSUER.into(),
                holder_pid: Some("holder-req-1".into()),
                reason: Some("not a member".into()),
            }
        );
    }

    #[test]
    fn credential_message_token_refusals() {
        let w = world();
        let jwt = credential(&w, ISSUER, HOLDER, CredentialFormat::Vc11Jwt);
        let message = issued(vec![membership(&jwt, CredentialFormat::Vc11Jwt)]);
        let good = bearer(&w, ISSUER, &claims(ISSUER, HOLDER));
        let with = |name: &str, value: Value| {
            let mut c = claims(ISSUER, HOLDER);
            c[name] = value;
            bearer(&w, ISSUER, &c)
        };
        let cases: Vec<(&str, Option<String>, &str)> = vec![
            ("no header", None, "missing_authorization"),
            (
                "no Bearer prefix",
                Some(good.trim_start_matches("Bearer ").to_owned()),
                "not_bearer",
            ),
            (
                "wrong aud",
                Some(with("aud", json!(LUND))),
                "wrong_audience",
            ),
            ("iss != sub", Some(with("sub", json!(LUND))), "iss_not_sub"),
            (
                "expired",
                Some(with(
                    "exp",
                    json!((t0() - Duration::minutes(1)).timestamp()),
                )),
                "expired",
            ),
            (
                "nbf in the future",
                Some(with(
                    "nbf",
                    json!((t0() + Duration::minutes(2)).timestamp()),
                )),
                "nbf_in_future",
            ),
        ];
        for (what, header, code) in cases {
            let err = accept_with(&w, header.as_deref(), &message, Some(ISSUER)).unwrap_err();
            assert_eq!(err.code(), code, "{what}: {err}");
        }
        // A well-formed token from someone else than the issuer we asked.
        let lund = bearer(&w, LUND, &claims(LUND, HOLDER));
        let err = accept_with(&w, Some(&lund), &message, Some(ISSUER)).unwrap_err();
        assert_eq!(
            err,
            Refusal::UnexpectedIssuer {
                expected: ISSUER.into(),
                found: LUND.into()
            }
        );
    }

    /// cs_06_05_01_credentialMessage_jtiAlreadyUsed
    #[test]
    fn credential_message_replayed_jti_is_refused() {
        let w = world();
        let jwt = credential(&w, ISSUER, HOLDER, CredentialFormat::Vc11Jwt);
        let message = issued(vec![membership(&jwt, CredentialFormat::Vc11Jwt)]);
        let header = bearer(&w, ISSUER, &claims(ISSUER, HOLDER));
        let replay = InMemoryReplayCache::default();
        let run = || {
            block_on(accept_credential_message(
                Some(&header),
                &message,
                HOLDER,
                &w.dids,
                &replay,
                None,
                &VerifyOptions::at(t0()),
            ))
        };
        assert!(run().is_ok());
        assert!(matches!(run().unwrap_err(), Refusal::ReplayedJti(_)));
    }

    #[test]
    fn credential_for_another_holder_is_refused() {
        let w = world();
        let jwt = credential(&w, ISSUER, LUND, CredentialFormat::Vc20Jose);
        let err = accept(
            &w,
            &issued(vec![membership(&jwt, CredentialFormat::Vc20Jose)]),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Refusal::HolderNotSubject { subject, holder, .. }
                if subject.as_deref() == Some(LUND) && holder == HOLDER),
            "{err}"
        );
    }

    #[test]
    fn credential_signed_by_another_issuer_is_refused() {
        let w = world();
        // Issued (validly) by Lund, but delivered by the authority.
        let jwt = credential(&w, LUND, HOLDER, CredentialFormat::Vc11Jwt);
        let err = accept(
            &w,
            &issued(vec![membership(&jwt, CredentialFormat::Vc11Jwt)]),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Refusal::CredentialNotFromSender { issuer, sender, .. }
                if issuer == LUND && sender == ISSUER),
            "{err}"
        );
        // Claiming the authority as issuer, but signed with Lund's key.
        let payload = json!({
            "iss": ISSUER, "sub": HOLDER, "nbf": t0().timestamp(),
            "exp": (t0() + Duration::days(1)).timestamp(),
            "vc": {
                "@context": ["https://www.w3.org/2018/credentials/v1"],
                "type": ["VerifiableCredential", "MembershipCredential"],
                "issuer": ISSUER,
                "credentialSubject": {"id": HOLDER},
            }
        });
        let forged = sign_compact(w.key(LUND), Some("JWT"), &payload).unwrap();
        let err = accept(
            &w,
            &issued(vec![membership(&forged, CredentialFormat::Vc11Jwt)]),
        )
        .unwrap_err();
        assert_eq!(err.code(), "credential_invalid", "{err}");
    }

    #[test]
    fn credential_in_another_format_than_announced_is_refused() {
        let w = world();
        let jwt = credential(&w, ISSUER, HOLDER, CredentialFormat::Vc11Jwt);
        for format in [FORMAT_VC20_JOSE, "json-ld", "VC1_0_LD"] {
            let mut container = membership(&jwt, CredentialFormat::Vc11Jwt);
            container.format = format.into();
            let err = accept(&w, &issued(vec![container])).unwrap_err();
            assert_eq!(err.code(), "credential_invalid", "{format}: {err}");
        }
        let mut container = membership(&jwt, CredentialFormat::Vc11Jwt);
        container.credential_type = "MunicipalityCredential".into();
        assert_eq!(
            accept(&w, &issued(vec![container])).unwrap_err().code(),
            "credential_invalid"
        );
    }

    #[test]
    fn an_issued_message_without_credentials_is_refused() {
        let w = world();
        assert_eq!(
            accept(&w, &issued(vec![])).unwrap_err(),
            Refusal::InvalidMessage(IssuanceMessageError::MissingField("credentials"))
        );
        let token = create_self_issued_token(
            ISSUER,
            w.key(ISSUER),
            HOLDER,
            Some(&Secret::new("ignored")),
            t0(),
            Duration::minutes(5),
        )
        .unwrap();
        // A `token` claim does no harm.
        let jwt = credential(&w, ISSUER, HOLDER, CredentialFormat::Vc11Jwt);
        let header = format!("Bearer {}", token.expose());
        assert!(
            accept_with(
                &w,
                Some(&header),
                &issued(vec![membership(&jwt, CredentialFormat::Vc11Jwt)]),
                None
            )
            .is_ok()
        );
    }
}
