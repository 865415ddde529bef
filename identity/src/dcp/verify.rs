//! The verifier's pipeline (DCP §5.4, IDENTITY-NOTES §1.4): a `PresentationResponseMessage` from
//! the caller's credential service becomes [`VerifiedClaims`] for policy, or a [`Refusal`]. And the
//! credential service's side: choosing and presenting stored credentials for a query.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::Refusal;
use super::messages::{PresentationResponseMessage, Scope};
use super::token::AccessGrant;
use crate::auth::VerifiedCaller;
use crate::did_doc::KeyUsePolicy;
use crate::keys::SigningKey;
use crate::resolve::DidResolve;
use crate::status::{StatusError, StatusListSource, check_status};
use crate::trust::{CredentialSchemas, TrustedIssuers};
use crate::vc::{
    Credential, CredentialError, CredentialFormat, NewPresentation, VerifyOptions,
    issue_presentation, parse_credential_jwt, verify_parsed_credential, verify_presentation,
};

/// What the verifier accepts.
#[derive(Debug, Clone, Default)]
pub struct VerifierPolicy {
    /// Trusted issuers per credential type.
    pub trusted_issuers: TrustedIssuers,
    /// Known credential schemas.
    pub schemas: CredentialSchemas,
    /// Tolerated clock skew.
    pub leeway: Duration,
    /// How strictly keys must be listed under their relationship.
    pub key_use: KeyUsePolicy,
}

impl VerifierPolicy {
    /// A policy trusting `trusted_issuers`, no schemas, 30 s leeway, strict key use.
    pub fn new(trusted_issuers: TrustedIssuers) -> Self {
        VerifierPolicy {
            trusted_issuers,
            schemas: CredentialSchemas::new(),
            leeway: Duration::seconds(30),
            key_use: KeyUsePolicy::Strict,
        }
    }
}

/// What the pipeline reads from outside, and when.
#[derive(Debug, Clone, Copy)]
pub struct VerificationContext<'a> {
    /// DID documents.
    pub resolver: &'a dyn DidResolve,
    /// Status lists.
    pub status_lists: &'a dyn StatusListSource,
    /// Now.
    pub now: DateTime<Utc>,
}

/// The caller's verified claims.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    /// The caller's DID.
    pub participant_id: String,
    /// Every verified credential.
    pub credentials: Vec<Credential>,
    /// Claims for policy: `membership` (true with a MembershipCredential), `credentialTypes`,
    /// every credential subject property (e.g. `role`, `municipalityCode`, `country`; an array
    /// when credentials disagree), and `credentials` (type → subject).
    pub claims: BTreeMap<String, Value>,
}

impl VerifiedClaims {
    /// The caller for the DSP seam (`method: "dcp"`).
    pub fn into_verified_caller(self) -> VerifiedCaller {
        VerifiedCaller {
            participant_id: self.participant_id,
            claims: self.claims,
            method: "dcp",
        }
    }
}

/// The credential types the scopes ask for (type scopes only).
pub fn required_types(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .filter_map(|s| Scope::parse(s).credential_type().map(str::to_owned))
        .collect()
}

fn credential_label(c: &Credential, index: usize) -> String {
    c.id.clone().unwrap_or_else(|| format!("#{index}"))
}

/// Verifies the response of the caller's credential service: every presentation signed by the
/// caller (`authentication` key, not expired, addressed to us if it names an audience), every
/// credential signed by its issuer (`assertionMethod`), valid now, not revoked or suspended,
/// about the caller (holder binding), from an issuer trusted for its type, and conforming to its
/// schema; and every `required_types` present (extra credentials are fine). All must pass.
pub async fn verify_presentation_response(
    response: &PresentationResponseMessage,
    caller_did: &str,
    own_did: &str,
    required_types: &[String],
    policy: &VerifierPolicy,
    ctx: &VerificationContext<'_>,
) -> Result<VerifiedClaims, Refusal> {
    if !response.has_valid_type() {
        return Err(Refusal::PresentationInvalid(format!(
            "the response type is {}",
            response.kind
        )));
    }
    if response.presentation.is_empty() {
        return Err(Refusal::EmptyPresentations);
    }
    let options = VerifyOptions {
        now: ctx.now,
        leeway: policy.leeway,
        key_use: policy.key_use,
    };
    let mut credentials = Vec::new();
    for item in &response.presentation {
        let jws = item.as_str().ok_or_else(|| {
            Refusal::PresentationInvalid("only JWT presentations are supported".into())
        })?;
        let vp = verify_presentation(jws, ctx.resolver, &options)
            .await
            .map_err(|e| match e {
                CredentialError::SignerMismatch {
                    claimed, signer, ..
                } => Refusal::PresentationSignerNotHolder {
                    holder: claimed,
                    signer,
                },
                CredentialError::Resolve(r) => Refusal::Resolution(r),
                other => Refusal::PresentationInvalid(other.to_string()),
            })?;
        if vp.holder != caller_did {
            return Err(Refusal::HolderNotCaller {
                caller: caller_did.to_owned(),
                holder: vp.holder,
            });
        }
        if !vp.audience.is_empty() && !vp.audience.iter().any(|a| a == own_did) {
            return Err(Refusal::PresentationWrongAudience(vp.audience));
        }
        for (i, jwt) in vp.credentials.iter().enumerate() {
            let credential =
                verify_one(jwt, i, &vp.holder, vp.format, policy, ctx, &options).await?;
            credentials.push(credential);
        }
    }
    for wanted in required_types {
        if !credentials.iter().any(|c| c.has_type(wanted)) {
            return Err(Refusal::MissingCredential(wanted.clone()));
        }
    }
    let claims = claims_of(&credentials);
    Ok(VerifiedClaims {
        participant_id: caller_did.to_owned(),
        credentials,
        claims,
    })
}

async fn verify_one(
    jwt: &str,
    index: usize,
    holder: &str,
    vp_format: CredentialFormat,
    policy: &VerifierPolicy,
    ctx: &VerificationContext<'_>,
    options: &VerifyOptions,
) -> Result<Credential, Refusal> {
    let refusal = |e: CredentialError, label: &str| match e {
        CredentialError::Expired(at) => Refusal::CredentialExpired {
            id: label.to_owned(),
            at,
        },
        CredentialError::NotYetValid(at) => Refusal::CredentialNotYetValid {
            id: label.to_owned(),
            at,
        },
        CredentialError::Resolve(r) if r.is_unavailable() => Refusal::Resolution(r),
        other => Refusal::CredentialInvalid {
            id: label.to_owned(),
            reason: other.to_string(),
        },
    };
    // Read once: the label for refusals comes from the same parse the verification uses.
    let (decoded, parsed) =
        parse_credential_jwt(jwt).map_err(|e| refusal(e, &format!("#{index}")))?;
    let label = credential_label(&parsed, index);
    let credential = verify_parsed_credential(&decoded, parsed, ctx.resolver, options)
        .await
        .map_err(|e| refusal(e, &label))?;
    if credential.format != vp_format {
        return Err(Refusal::CredentialInvalid {
            id: label,
            reason: "a presentation and its credentials must share one data model".into(),
        });
    }
    if credential.subject_id.as_deref() != Some(holder) {
        return Err(Refusal::HolderNotSubject {
            id: label,
            subject: credential.subject_id.clone(),
            holder: holder.to_owned(),
        });
    }
    if let Some(t) = policy.trusted_issuers.untrusted_type(&credential) {
        return Err(Refusal::UntrustedIssuer {
            credential_type: t.to_owned(),
            issuer: credential.issuer.clone(),
        });
    }
    policy
        .schemas
        .check(&credential)
        .map_err(|e| Refusal::SchemaViolation {
            id: label.clone(),
            reason: e.to_string(),
        })?;
    for entry in &credential.status {
        let unknown = |e: StatusError| Refusal::StatusUnknown {
            id: label.clone(),
            unavailable: matches!(e, StatusError::Unavailable { .. })
                || matches!(&e, StatusError::Credential(CredentialError::Resolve(r)) if r.is_unavailable()),
            reason: e.to_string(),
        };
        let list = ctx
            .status_lists
            .status_list(&entry.status_list_credential, ctx.now)
            .await
            .map_err(unknown)?;
        if check_status(entry, &list, &credential.issuer).map_err(unknown)? {
            // Other purposes (`message`, …) carry information, not a verdict.
            match entry.status_purpose.as_str() {
                "suspension" => return Err(Refusal::CredentialSuspended(label)),
                "revocation" => return Err(Refusal::CredentialRevoked(label)),
                _ => {}
            }
        }
    }
    Ok(credential)
}

/// The claims map for policy, from verified credentials.
pub fn claims_of(credentials: &[Credential]) -> BTreeMap<String, Value> {
    let mut claims: BTreeMap<String, Value> = BTreeMap::new();
    let mut types: Vec<String> = Vec::new();
    let mut by_type = serde_json::Map::new();
    for c in credentials {
        for t in c.specific_types() {
            if !types.iter().any(|x| x == t) {
                types.push(t.to_owned());
            }
            by_type.insert(t.to_owned(), Value::Object(c.subject.clone()));
        }
        for (k, v) in &c.subject {
            if matches!(k.as_str(), "id" | "type") {
                continue;
            }
            match claims.get_mut(k) {
                None => {
                    claims.insert(k.clone(), v.clone());
                }
                Some(existing) if existing == v => {}
                Some(Value::Array(values)) if values.len() > 1 || values.first() != Some(v) => {
                    if !values.contains(v) {
                        values.push(v.clone());
                    }
                }
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, v.clone()]);
                }
            }
        }
    }
    types.sort();
    claims.insert(
        "membership".into(),
        Value::Bool(types.iter().any(|t| t == "MembershipCredential")),
    );
    claims.insert(
        "credentialTypes".into(),
        Value::Array(types.into_iter().map(Value::from).collect()),
    );
    claims.insert("credentials".into(), Value::Object(by_type));
    claims
}

/// A credential held by our credential service.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCredential {
    /// The JWT.
    pub jwt: String,
    /// What it says (parsed, not re-verified).
    pub credential: Credential,
}

impl StoredCredential {
    /// Reads a credential JWT for storage (the issuer's signature is checked on receipt by the
    /// caller, with [`crate::vc::verify_credential`]).
    pub fn from_jwt(jwt: &str) -> Result<Self, CredentialError> {
        let (_, credential) = parse_credential_jwt(jwt)?;
        Ok(StoredCredential {
            jwt: jwt.to_owned(),
            credential,
        })
    }
}

/// The credentials to present for `query_scopes`, limited to what `grant` allows: a credential is
/// chosen when a requested scope selects it (by type or id) and the grant holds a scope selecting
/// it too. Scopes beyond the grant are silently left out (DCP: no escalation).
pub fn select_credentials<'a>(
    query_scopes: &[Scope],
    grant: &AccessGrant,
    stored: &'a [StoredCredential],
    now: DateTime<Utc>,
) -> Vec<&'a StoredCredential> {
    let granted: Vec<Scope> = grant.scopes.iter().map(|s| Scope::parse(s)).collect();
    let selects = |scope: &Scope, c: &Credential| {
        scope.credential_type().is_some_and(|t| c.has_type(t))
            || scope
                .credential_id()
                .is_some_and(|id| c.id.as_deref() == Some(id))
    };
    stored
        .iter()
        .filter(|s| {
            s.credential.valid_until.is_none_or(|u| u > now)
                && query_scopes.iter().any(|q| selects(q, &s.credential))
                && granted.iter().any(|g| selects(g, &s.credential))
        })
        .collect()
}

/// Our credential service's answer: the chosen credentials in one presentation per data model
/// (DCP homogeneity), signed by the holder's key for the verifier `audience`.
pub fn present_credentials(
    holder: &str,
    key: &dyn SigningKey,
    audience: &str,
    chosen: &[&StoredCredential],
    now: DateTime<Utc>,
    lifetime: Duration,
) -> Result<PresentationResponseMessage, CredentialError> {
    let mut presentations = Vec::new();
    for format in [CredentialFormat::Vc11Jwt, CredentialFormat::Vc20Jose] {
        let jwts: Vec<String> = chosen
            .iter()
            .filter(|c| c.credential.format == format)
            .map(|c| c.jwt.clone())
            .collect();
        if jwts.is_empty() {
            continue;
        }
        let vp = NewPresentation {
            holder: holder.to_owned(),
            credentials: jwts,
            audience: Some(audience.to_owned()),
            nonce: None,
            issued_at: now,
            expires_at: now + lifetime,
        };
        presentations.push(issue_presentation(&vp, format, key)?);
    }
    if presentations.is_empty() {
        // An empty presentation still proves the holder answered.
        let vp = NewPresentation {
            holder: holder.to_owned(),
            credentials: Vec::new(),
            audience: Some(audience.to_owned()),
            nonce: None,
            issued_at: now,
            expires_at: now + lifetime,
        };
        presentations.push(issue_presentation(&vp, CredentialFormat::Vc11Jwt, key)?);
    }
    Ok(PresentationResponseMessage::new(presentations))
}
