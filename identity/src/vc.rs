//! Verifiable credentials and presentations secured as JWTs, in the two DCP profiles:
//!
//! * **VC 1.1 JWT** (`vc11-sl2021/jwt`, what the DCP TCK, EDC and FIWARE use): the credential in
//!   the `vc` claim, `iss`/`sub`/`jti`/`nbf`/`exp` mapped from issuer, subject, id and dates;
//!   presentations in the `vp` claim, `iss` = holder.
//! * **VC 2.0 VC-JOSE** (`vc20-bssl/jwt`): the JWS payload *is* the credential (`typ: vc+jwt`),
//!   dates in `validFrom`/`validUntil`; presentations (`typ: vp+jwt`) carry their credentials as
//!   `EnvelopedVerifiableCredential`s (`data:application/vc+jwt,<jws>`).
//!
//! Issuing takes a [`SigningKey`] whose `kid` is a DID URL of the issuer (holder). Verifying
//! resolves the signer's DID, picks the key by `kid` under the right relationship
//! (`assertionMethod` for credentials, `authentication` for presentations), checks the signature
//! and the dates. Status, trust and schema checks build on the parsed [`Credential`]
//! ([`crate::status`], [`crate::trust`]).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::did::split_did_url;
use crate::did_doc::{DidDocError, KeyUsePolicy, Relationship};
use crate::jose::{DecodedJws, JwsError, decode_compact, sign_compact};
use crate::keys::SigningKey;
use crate::resolve::{DidResolve, ResolveError};

/// The VC Data Model 1.1 context.
pub const VC_CONTEXT_V1: &str = "https://www.w3.org/2018/credentials/v1";
/// The VC Data Model 2.0 context.
pub const VC_CONTEXT_V2: &str = "https://www.w3.org/ns/credentials/v2";
/// Media-type prefixes of enveloped credentials caap accepts (ssi still emits `vc-ld+jwt`).
pub const ENVELOPED_VC_PREFIXES: [&str; 4] = [
    "data:application/vc+jwt,",
    "data:application/vc-ld+jwt,",
    "data:application/vc+ld+jwt,",
    "data:application/vc+ld+json+jwt,",
];

/// How a credential or presentation is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CredentialFormat {
    /// VC Data Model 1.1 as a JWT (`vc`/`vp` claims).
    #[serde(rename = "vc11-jwt")]
    Vc11Jwt,
    /// VC Data Model 2.0 secured with VC-JOSE (`typ: vc+jwt` / `vp+jwt`).
    #[serde(rename = "vc20-jose")]
    Vc20Jose,
}

/// Why a credential or presentation was not issued or not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CredentialError {
    /// Not a credential (presentation) JWT of a known shape.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Issuing failed (bad input or the key failed).
    #[error("cannot issue: {0}")]
    Issue(String),
    /// The signing key belongs to another DID than the issuer (holder) claimed.
    #[error("signed by `{signer}`, but the {role} is `{claimed}`")]
    SignerMismatch {
        /// `issuer` or `holder`.
        role: &'static str,
        /// The DID claimed as issuer (holder).
        claimed: String,
        /// The DID of the signing key.
        signer: String,
    },
    /// The signer's DID could not be resolved.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The signer's DID document has no fitting key.
    #[error(transparent)]
    Key(#[from] DidDocError),
    /// The signature does not verify (or its algorithm is refused).
    #[error(transparent)]
    Signature(#[from] JwsError),
    /// Not valid yet.
    #[error("not valid before {0}")]
    NotYetValid(DateTime<Utc>),
    /// Expired.
    #[error("expired at {0}")]
    Expired(DateTime<Utc>),
}

/// Verification settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The time to check dates against.
    pub now: DateTime<Utc>,
    /// Tolerated clock skew.
    pub leeway: Duration,
    /// How strictly keys must be listed under their relationship.
    pub key_use: KeyUsePolicy,
}

impl VerifyOptions {
    /// Options at `now` with 30 s leeway and strict key use.
    pub fn at(now: DateTime<Utc>) -> Self {
        VerifyOptions {
            now,
            leeway: Duration::seconds(30),
            key_use: KeyUsePolicy::Strict,
        }
    }
}

/// A `credentialStatus` entry (`BitstringStatusListEntry` or `StatusList2021Entry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusEntry {
    /// The entry id (e.g. `<list url>#94567`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `BitstringStatusListEntry` (VC 2.0) or `StatusList2021Entry` (VC 1.1).
    #[serde(rename = "type")]
    pub kind: String,
    /// `revocation` or `suspension`.
    pub status_purpose: String,
    /// The bit index (a string on the wire).
    #[serde(with = "index_as_string")]
    pub status_list_index: u64,
    /// The URL of the status list credential.
    pub status_list_credential: String,
}

mod index_as_string {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s.parse().map_err(D::Error::custom),
            serde_json::Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| D::Error::custom("statusListIndex must be a non-negative integer")),
            _ => Err(D::Error::custom("statusListIndex must be a string")),
        }
    }
}

impl StatusEntry {
    /// A Bitstring Status List entry (VC 2.0 and DCP's `vc20-bssl` profile).
    pub fn bitstring(list_url: &str, index: u64, purpose: &str) -> Self {
        StatusEntry {
            id: Some(format!("{list_url}#{index}")),
            kind: "BitstringStatusListEntry".into(),
            status_purpose: purpose.into(),
            status_list_index: index,
            status_list_credential: list_url.into(),
        }
    }
}

/// A `credentialSchema` reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialSchemaRef {
    /// The schema's URL.
    pub id: String,
    /// E.g. `JsonSchema` (2.0) or `JsonSchemaValidator2018` (1.1).
    #[serde(rename = "type")]
    pub kind: String,
}

/// A credential to issue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCredential {
    /// The credential id (a URL or `urn:uuid:…`).
    pub id: Option<String>,
    /// The types besides `VerifiableCredential` (e.g. `MembershipCredential`).
    pub types: Vec<String>,
    /// The issuer DID (the signing key's `kid` must be one of its methods).
    pub issuer: String,
    /// `credentialSubject`; its `id` is the holder DID (holder binding).
    pub subject: Map<String, Value>,
    /// Valid from.
    pub valid_from: DateTime<Utc>,
    /// Valid until.
    pub valid_until: Option<DateTime<Utc>>,
    /// Status list entries.
    pub status: Vec<StatusEntry>,
    /// Schemas the subject must satisfy.
    pub schemas: Vec<CredentialSchemaRef>,
    /// Further `@context` entries after the base context.
    pub contexts: Vec<Value>,
}

impl NewCredential {
    /// A credential of one type for `subject_id`, with the subject's further claims.
    pub fn new(
        issuer: &str,
        kind: &str,
        subject_id: &str,
        claims: Map<String, Value>,
        valid_from: DateTime<Utc>,
    ) -> Self {
        let mut subject = Map::new();
        subject.insert("id".into(), Value::from(subject_id));
        subject.extend(claims);
        NewCredential {
            id: None,
            types: vec![kind.to_owned()],
            issuer: issuer.to_owned(),
            subject,
            valid_from,
            valid_until: None,
            status: Vec::new(),
            schemas: Vec::new(),
            contexts: Vec::new(),
        }
    }
}

/// A credential read from a JWT (after [`verify_credential`], a verified one).
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// How it was secured.
    pub format: CredentialFormat,
    /// Its id.
    pub id: Option<String>,
    /// The issuer DID.
    pub issuer: String,
    /// Its types (including `VerifiableCredential`).
    pub types: Vec<String>,
    /// The (first) `credentialSubject`.
    pub subject: Map<String, Value>,
    /// The subject's `id` (the holder, for holder binding).
    pub subject_id: Option<String>,
    /// Valid from (`nbf`, `issuanceDate`, `validFrom`: the latest of those present).
    pub valid_from: Option<DateTime<Utc>>,
    /// Valid until (`exp`, `expirationDate`, `validUntil`: the earliest of those present).
    pub valid_until: Option<DateTime<Utc>>,
    /// `credentialStatus` entries.
    pub status: Vec<StatusEntry>,
    /// `credentialSchema` references.
    pub schemas: Vec<CredentialSchemaRef>,
    /// The credential JSON (the `vc` claim or the VC 2.0 payload).
    pub document: Value,
}

impl Credential {
    /// True if the credential has type `t`.
    pub fn has_type(&self, t: &str) -> bool {
        self.types.iter().any(|x| x == t)
    }

    /// The types other than `VerifiableCredential`.
    pub fn specific_types(&self) -> impl Iterator<Item = &str> {
        self.types
            .iter()
            .map(String::as_str)
            .filter(|t| *t != "VerifiableCredential")
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(v: &Value, name: &str) -> Result<Option<DateTime<Utc>>, CredentialError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| CredentialError::Malformed(format!("`{name}` is not an RFC 3339 date"))),
        Value::Number(_) => crate::jose::numeric_date(v)
            .map(Some)
            .ok_or_else(|| CredentialError::Malformed(format!("`{name}` is not a NumericDate"))),
        _ => Err(CredentialError::Malformed(format!(
            "`{name}` is not a date"
        ))),
    }
}

fn latest(times: &[Option<DateTime<Utc>>]) -> Option<DateTime<Utc>> {
    times.iter().flatten().max().copied()
}

fn earliest(times: &[Option<DateTime<Utc>>]) -> Option<DateTime<Utc>> {
    times.iter().flatten().min().copied()
}

fn id_of(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("id").and_then(Value::as_str),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn one_or_many<T: serde::de::DeserializeOwned>(
    v: Option<&Value>,
    name: &str,
) -> Result<Vec<T>, CredentialError> {
    let bad = |e: serde_json::Error| CredentialError::Malformed(format!("`{name}`: {e}"));
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(|x| T::deserialize(x).map_err(bad)).collect(),
        Some(x) => Ok(vec![T::deserialize(x).map_err(bad)?]),
    }
}

/// Checks `now` against a validity window, with `leeway`.
pub fn check_dates(
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    leeway: Duration,
) -> Result<(), CredentialError> {
    if let Some(from) = valid_from
        && now + leeway < from
    {
        return Err(CredentialError::NotYetValid(from));
    }
    if let Some(until) = valid_until
        && now - leeway >= until
    {
        return Err(CredentialError::Expired(until));
    }
    Ok(())
}

fn check_issuer_kid(key: &dyn SigningKey, did: &str, role: &str) -> Result<(), CredentialError> {
    match key.key_id() {
        Some(kid) if split_did_url(kid).0 == did && kid.contains('#') => Ok(()),
        kid => Err(CredentialError::Issue(format!(
            "the signing key's kid {kid:?} must be a verification method of the {role} {did}"
        ))),
    }
}

/// Issues `credential` as a JWT in `format`, signed with `key` (whose `kid` must be a DID URL of
/// the issuer).
pub fn issue_credential(
    credential: &NewCredential,
    format: CredentialFormat,
    key: &dyn SigningKey,
) -> Result<String, CredentialError> {
    check_issuer_kid(key, &credential.issuer, "issuer")?;
    let mut types = vec![Value::from("VerifiableCredential")];
    types.extend(credential.types.iter().map(|t| Value::from(t.as_str())));
    let base = match format {
        CredentialFormat::Vc11Jwt => VC_CONTEXT_V1,
        CredentialFormat::Vc20Jose => VC_CONTEXT_V2,
    };
    let mut contexts = vec![Value::from(base)];
    contexts.extend(credential.contexts.iter().cloned());
    let mut vc = Map::new();
    vc.insert("@context".into(), Value::Array(contexts));
    if let Some(id) = &credential.id {
        vc.insert("id".into(), Value::from(id.as_str()));
    }
    vc.insert("type".into(), Value::Array(types));
    vc.insert("issuer".into(), Value::from(credential.issuer.as_str()));
    let (from_name, until_name) = match format {
        CredentialFormat::Vc11Jwt => ("issuanceDate", "expirationDate"),
        CredentialFormat::Vc20Jose => ("validFrom", "validUntil"),
    };
    vc.insert(
        from_name.into(),
        Value::from(rfc3339(credential.valid_from)),
    );
    if let Some(until) = credential.valid_until {
        vc.insert(until_name.into(), Value::from(rfc3339(until)));
    }
    vc.insert(
        "credentialSubject".into(),
        Value::Object(credential.subject.clone()),
    );
    let to_value = |v: &dyn erased::Ser| v.value();
    match credential.status.as_slice() {
        [] => {}
        [one] => {
            vc.insert("credentialStatus".into(), to_value(one)?);
        }
        many => {
            vc.insert("credentialStatus".into(), to_value(&many.to_vec())?);
        }
    }
    match credential.schemas.as_slice() {
        [] => {}
        [one] => {
            vc.insert("credentialSchema".into(), to_value(one)?);
        }
        many => {
            vc.insert("credentialSchema".into(), to_value(&many.to_vec())?);
        }
    }
    let (typ, payload) = match format {
        CredentialFormat::Vc11Jwt => {
            let mut claims = Map::new();
            claims.insert("iss".into(), Value::from(credential.issuer.as_str()));
            if let Some(sub) = credential.subject.get("id") {
                claims.insert("sub".into(), sub.clone());
            }
            if let Some(id) = &credential.id {
                claims.insert("jti".into(), Value::from(id.as_str()));
            }
            claims.insert("nbf".into(), Value::from(credential.valid_from.timestamp()));
            claims.insert("iat".into(), Value::from(credential.valid_from.timestamp()));
            if let Some(until) = credential.valid_until {
                claims.insert("exp".into(), Value::from(until.timestamp()));
            }
            claims.insert("vc".into(), Value::Object(vc));
            ("JWT", Value::Object(claims))
        }
        CredentialFormat::Vc20Jose => ("vc+jwt", Value::Object(vc)),
    };
    sign_compact(key, Some(typ), &payload).map_err(|e| CredentialError::Issue(e.to_string()))
}

mod erased {
    use super::CredentialError;
    /// Serializes to a JSON value with a credential error.
    pub trait Ser {
        fn value(&self) -> Result<serde_json::Value, CredentialError>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn value(&self) -> Result<serde_json::Value, CredentialError> {
            serde_json::to_value(self).map_err(|e| CredentialError::Issue(e.to_string()))
        }
    }
}

/// Reads a credential JWT without checking its signature or dates.
pub fn parse_credential_jwt(jws: &str) -> Result<(DecodedJws, Credential), CredentialError> {
    let decoded = decode_compact(jws)?;
    if decoded
        .typ()
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("vp"))
    {
        return Err(CredentialError::Malformed(
            "this is a presentation, not a credential".into(),
        ));
    }
    let claims = &decoded.payload;
    let credential = if let Some(vc) = claims.get("vc") {
        let vc_obj = vc
            .as_object()
            .ok_or_else(|| CredentialError::Malformed("`vc` is not an object".into()))?;
        let iss = claims.get("iss").and_then(Value::as_str);
        let vc_issuer = vc_obj.get("issuer").and_then(id_of);
        let issuer = match (iss, vc_issuer) {
            (Some(a), Some(b)) if a != b => {
                return Err(CredentialError::Malformed(format!(
                    "`iss` ({a}) and `vc.issuer` ({b}) differ"
                )));
            }
            (Some(a), _) | (None, Some(a)) => a.to_owned(),
            (None, None) => return Err(CredentialError::Malformed("no issuer".into())),
        };
        let mut c = read_vc(
            vc,
            CredentialFormat::Vc11Jwt,
            issuer,
            ("issuanceDate", "expirationDate"),
        )?;
        if let (Some(sub), Some(subject_id)) =
            (claims.get("sub").and_then(Value::as_str), &c.subject_id)
            && sub != subject_id
        {
            return Err(CredentialError::Malformed(format!(
                "`sub` ({sub}) and credentialSubject.id ({subject_id}) differ"
            )));
        }
        if c.subject_id.is_none() {
            c.subject_id = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        }
        if c.id.is_none() {
            c.id = claims.get("jti").and_then(Value::as_str).map(str::to_owned);
        }
        c.valid_from = latest(&[c.valid_from, parse_time(&claims["nbf"], "nbf")?]);
        c.valid_until = earliest(&[c.valid_until, parse_time(&claims["exp"], "exp")?]);
        c
    } else if strings(claims.get("type"))
        .iter()
        .any(|t| t == "VerifiableCredential")
    {
        let issuer = claims
            .get("issuer")
            .and_then(id_of)
            .ok_or_else(|| CredentialError::Malformed("no issuer".into()))?
            .to_owned();
        let mut c = read_vc(
            claims,
            CredentialFormat::Vc20Jose,
            issuer,
            ("validFrom", "validUntil"),
        )?;
        c.valid_from = latest(&[c.valid_from, parse_time(&claims["nbf"], "nbf")?]);
        c.valid_until = earliest(&[c.valid_until, parse_time(&claims["exp"], "exp")?]);
        c
    } else {
        return Err(CredentialError::Malformed(
            "neither a `vc` claim nor a VerifiableCredential payload".into(),
        ));
    };
    Ok((decoded, credential))
}

fn read_vc(
    vc: &Value,
    format: CredentialFormat,
    issuer: String,
    (from, until): (&str, &str),
) -> Result<Credential, CredentialError> {
    let types = strings(vc.get("type"));
    if !types.iter().any(|t| t == "VerifiableCredential") {
        return Err(CredentialError::Malformed(
            "`type` does not include VerifiableCredential".into(),
        ));
    }
    let subject = match vc.get("credentialSubject") {
        Some(Value::Object(o)) => o.clone(),
        Some(Value::Array(a)) => match a.first() {
            Some(Value::Object(o)) => o.clone(),
            _ => {
                return Err(CredentialError::Malformed(
                    "credentialSubject is empty".into(),
                ));
            }
        },
        _ => {
            return Err(CredentialError::Malformed(
                "no credentialSubject object".into(),
            ));
        }
    };
    let subject_id = subject.get("id").and_then(Value::as_str).map(str::to_owned);
    Ok(Credential {
        format,
        id: vc.get("id").and_then(Value::as_str).map(str::to_owned),
        issuer,
        types,
        subject_id,
        subject,
        valid_from: parse_time(vc.get(from).unwrap_or(&Value::Null), from)?,
        valid_until: parse_time(vc.get(until).unwrap_or(&Value::Null), until)?,
        status: one_or_many(vc.get("credentialStatus"), "credentialStatus")?,
        schemas: one_or_many(vc.get("credentialSchema"), "credentialSchema")?,
        document: vc.clone(),
    })
}

/// Verifies a JWS signed by `did` (`role`: issuer/holder) with a key listed under `relationship`.
async fn verify_signed_by(
    decoded: &DecodedJws,
    did: &str,
    role: &'static str,
    relationship: Relationship,
    resolver: &dyn DidResolve,
    options: &VerifyOptions,
) -> Result<(), CredentialError> {
    if let Some(kid) = decoded.kid()
        && kid.starts_with("did:")
        && split_did_url(kid).0 != did
    {
        return Err(CredentialError::SignerMismatch {
            role,
            claimed: did.to_owned(),
            signer: split_did_url(kid).0.to_owned(),
        });
    }
    let doc = resolver.resolve(did, options.now).await?;
    let key = doc.verification_key(decoded.kid(), relationship, options.key_use)?;
    key.verify(decoded)?;
    Ok(())
}

/// Verifies a credential JWT: the signature by an `assertionMethod` key of the issuer's DID and
/// the validity dates. Status, trust and schema are separate checks.
pub async fn verify_credential(
    jws: &str,
    resolver: &dyn DidResolve,
    options: &VerifyOptions,
) -> Result<Credential, CredentialError> {
    let (decoded, credential) = parse_credential_jwt(jws)?;
    verify_parsed_credential(&decoded, credential, resolver, options).await
}

/// [`verify_credential`] for a credential already read with [`parse_credential_jwt`] (so that a
/// caller needing what it says before the verdict does not parse it twice). `decoded` and
/// `credential` must come from one call; crate-private so that no caller can pair them otherwise.
pub(crate) async fn verify_parsed_credential(
    decoded: &DecodedJws,
    credential: Credential,
    resolver: &dyn DidResolve,
    options: &VerifyOptions,
) -> Result<Credential, CredentialError> {
    verify_signed_by(
        decoded,
        &credential.issuer,
        "issuer",
        Relationship::AssertionMethod,
        resolver,
        options,
    )
    .await?;
    check_dates(
        credential.valid_from,
        credential.valid_until,
        options.now,
        options.leeway,
    )?;
    Ok(credential)
}

/// A presentation to sign.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPresentation {
    /// The holder DID (the signing key's `kid` must be one of its methods).
    pub holder: String,
    /// The credentials, as JWTs of the same format.
    pub credentials: Vec<String>,
    /// The verifier's DID, if known.
    pub audience: Option<String>,
    /// A nonce or challenge from the verifier, if any.
    pub nonce: Option<String>,
    /// Issued at.
    pub issued_at: DateTime<Utc>,
    /// Expires at (keep it short: minutes).
    pub expires_at: DateTime<Utc>,
}

/// A presentation read from a JWT (after [`verify_presentation`], a verified one).
#[derive(Debug, Clone, PartialEq)]
pub struct Presentation {
    /// How it was secured.
    pub format: CredentialFormat,
    /// Its id (`jti` or `id`).
    pub id: Option<String>,
    /// The holder DID.
    pub holder: String,
    /// The credential JWTs it carries (envelopes opened).
    pub credentials: Vec<String>,
    /// `aud`.
    pub audience: Vec<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `nbf`.
    pub not_before: Option<DateTime<Utc>>,
    /// `exp`.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Signs a presentation of `presentation.credentials` in `format` with the holder's `key`.
pub fn issue_presentation(
    presentation: &NewPresentation,
    format: CredentialFormat,
    key: &dyn SigningKey,
) -> Result<String, CredentialError> {
    check_issuer_kid(key, &presentation.holder, "holder")?;
    let jti = format!("urn:uuid:{}", random_uuid());
    let (typ, mut payload) = match format {
        CredentialFormat::Vc11Jwt => {
            let vp = json!({
                "@context": [VC_CONTEXT_V1],
                "type": ["VerifiablePresentation"],
                "holder": presentation.holder,
                "verifiableCredential": presentation.credentials,
            });
            (
                "JWT",
                json!({
                    "iss": presentation.holder,
                    "sub": presentation.holder,
                    "jti": jti,
                    "vp": vp,
                }),
            )
        }
        CredentialFormat::Vc20Jose => {
            let envelopes: Vec<Value> = presentation
                .credentials
                .iter()
                .map(|c| {
                    json!({
                        "@context": [VC_CONTEXT_V2],
                        "id": format!("{}{c}", ENVELOPED_VC_PREFIXES[0]),
                        "type": "EnvelopedVerifiableCredential",
                    })
                })
                .collect();
            (
                "vp+jwt",
                json!({
                    "@context": [VC_CONTEXT_V2],
                    "id": jti,
                    "type": ["VerifiablePresentation"],
                    "holder": presentation.holder,
                    "verifiableCredential": envelopes,
                }),
            )
        }
    };
    if let Value::Object(claims) = &mut payload {
        claims.insert("iat".into(), presentation.issued_at.timestamp().into());
        claims.insert("nbf".into(), presentation.issued_at.timestamp().into());
        claims.insert("exp".into(), presentation.expires_at.timestamp().into());
        if let Some(aud) = &presentation.audience {
            claims.insert("aud".into(), Value::from(aud.as_str()));
        }
        if let Some(nonce) = &presentation.nonce {
            claims.insert("nonce".into(), Value::from(nonce.as_str()));
        }
    }
    sign_compact(key, Some(typ), &payload).map_err(|e| CredentialError::Issue(e.to_string()))
}

/// A random UUID v4 string (the crate has no uuid dependency).
pub(crate) fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn open_credential(item: &Value) -> Result<String, CredentialError> {
    match item {
        Value::String(jws) => Ok(jws.clone()),
        Value::Object(o) => {
            let id = o.get("id").and_then(Value::as_str).unwrap_or_default();
            ENVELOPED_VC_PREFIXES
                .iter()
                .find_map(|p| id.strip_prefix(p))
                .map(str::to_owned)
                .ok_or_else(|| {
                    CredentialError::Malformed(
                        "only JWT credentials (strings or EnvelopedVerifiableCredential) are supported"
                            .into(),
                    )
                })
        }
        _ => Err(CredentialError::Malformed(
            "a verifiableCredential entry is neither a JWT nor an envelope".into(),
        )),
    }
}

/// Reads a presentation JWT without checking its signature or dates.
pub fn parse_presentation_jwt(jws: &str) -> Result<(DecodedJws, Presentation), CredentialError> {
    let decoded = decode_compact(jws)?;
    let claims = &decoded.payload;
    let (format, vp, holder) = if let Some(vp) = claims.get("vp") {
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| CredentialError::Malformed("a vp JWT needs `iss`".into()))?;
        if let Some(h) = vp.get("holder").and_then(id_of)
            && h != iss
        {
            return Err(CredentialError::Malformed(format!(
                "`iss` ({iss}) and `vp.holder` ({h}) differ"
            )));
        }
        (CredentialFormat::Vc11Jwt, vp, iss.to_owned())
    } else if strings(claims.get("type"))
        .iter()
        .any(|t| t == "VerifiablePresentation")
    {
        let holder = claims
            .get("holder")
            .and_then(id_of)
            .ok_or_else(|| CredentialError::Malformed("the presentation has no holder".into()))?;
        (CredentialFormat::Vc20Jose, claims, holder.to_owned())
    } else {
        return Err(CredentialError::Malformed(
            "neither a `vp` claim nor a VerifiablePresentation payload".into(),
        ));
    };
    if !strings(vp.get("type"))
        .iter()
        .any(|t| t == "VerifiablePresentation")
    {
        return Err(CredentialError::Malformed(
            "`type` does not include VerifiablePresentation".into(),
        ));
    }
    let credentials = match vp.get("verifiableCredential") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(open_credential)
            .collect::<Result<_, _>>()?,
        Some(one) => vec![open_credential(one)?],
    };
    let presentation = Presentation {
        format,
        id: claims
            .get("jti")
            .or_else(|| vp.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        holder,
        credentials,
        audience: strings(claims.get("aud")),
        nonce: claims
            .get("nonce")
            .and_then(Value::as_str)
            .map(str::to_owned),
        not_before: parse_time(claims.get("nbf").unwrap_or(&Value::Null), "nbf")?,
        expires_at: parse_time(claims.get("exp").unwrap_or(&Value::Null), "exp")?,
    };
    Ok((decoded, presentation))
}

/// Verifies a presentation JWT: the signature by an `authentication` key of the holder's DID and
/// its `nbf`/`exp`. The credentials inside are only opened, not verified.
pub async fn verify_presentation(
    jws: &str,
    resolver: &dyn DidResolve,
    options: &VerifyOptions,
) -> Result<Presentation, CredentialError> {
    let (decoded, presentation) = parse_presentation_jwt(jws)?;
    verify_signed_by(
        &decoded,
        &presentation.holder,
        "holder",
        Relationship::Authentication,
        resolver,
        options,
    )
    .await?;
    check_dates(
        presentation.not_before,
        presentation.expires_at,
        options.now,
        options.leeway,
    )?;
    Ok(presentation)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::did_doc::DidDocument;
    use crate::keys::{KeyAlgorithm, KeySet, ParticipantKey};
    use crate::resolve::StaticDids;
    use crate::testutil::{block_on, t0};

    pub(crate) const AUTHORITY: &str = "did:web:authority.example";
    pub(crate) const MALMO: &str = "did:web:malmo.example";
    pub(crate) const LUND: &str = "did:web:lund.example";

    /// Participants with keys, and a resolver knowing their documents.
    pub(crate) struct World {
        pub keys: std::collections::HashMap<&'static str, ParticipantKey>,
        pub dids: StaticDids,
    }

    impl World {
        pub(crate) fn new(alg: KeyAlgorithm) -> Self {
            let mut keys = std::collections::HashMap::new();
            let mut dids = StaticDids::new();
            for did in [AUTHORITY, MALMO, LUND] {
                let key = ParticipantKey::generate_with(alg, &format!("{did}#key-1")).unwrap();
                dids.insert(DidDocument::for_participant(
                    did,
                    &KeySet::new(key.clone()).published().unwrap(),
                    vec![crate::did_doc::Service::credential_service(
                        did,
                        &format!("https://{}/cs", &did[8..]),
                    )],
                ));
                keys.insert(did, key);
            }
            World { keys, dids }
        }

        pub(crate) fn key(&self, did: &str) -> &ParticipantKey {
            &self.keys[did]
        }

        pub(crate) fn membership(&self, format: CredentialFormat, holder: &str) -> String {
            let mut claims = Map::new();
            claims.insert("memberOf".into(), json!("Nordic Cities Data Space"));
            claims.insert("municipalityCode".into(), json!("1280"));
            claims.insert("country".into(), json!("SE"));
            let mut c = NewCredential::new(AUTHORITY, "MembershipCredential", holder, claims, t0());
            c.valid_until = Some(t0() + Duration::days(365));
            c.id = Some("urn:uuid:1".into());
            issue_credential(&c, format, self.key(AUTHORITY)).unwrap()
        }
    }

    const FORMATS: [CredentialFormat; 2] = [CredentialFormat::Vc11Jwt, CredentialFormat::Vc20Jose];

    #[test]
    fn credentials_issue_and_verify_in_both_formats_and_algorithms() {
        for alg in [KeyAlgorithm::Es256, KeyAlgorithm::EdDsa] {
            let w = World::new(alg);
            for format in FORMATS {
                let jwt = w.membership(format, MALMO);
                let opts = VerifyOptions::at(t0() + Duration::days(1));
                let c = block_on(verify_credential(&jwt, &w.dids, &opts)).unwrap();
                assert_eq!(c.format, format);
                assert_eq!(c.issuer, AUTHORITY);
                assert_eq!(c.subject_id.as_deref(), Some(MALMO));
                assert!(c.has_type("MembershipCredential"));
                assert_eq!(c.subject["municipalityCode"], "1280");
                assert_eq!(c.valid_until, Some(t0() + Duration::days(365)));
                assert_eq!(c.id.as_deref(), Some("urn:uuid:1"));
            }
        }
    }

    #[test]
    fn the_vc_jose_shape_is_the_credential_itself() {
        let w = World::new(KeyAlgorithm::Es256);
        let (d, _) =
            parse_credential_jwt(&w.membership(CredentialFormat::Vc20Jose, MALMO)).unwrap();
        assert_eq!(d.typ(), Some("vc+jwt"));
        assert_eq!(d.payload["@context"][0], VC_CONTEXT_V2);
        assert_eq!(d.payload["validFrom"], "2026-03-01T12:00:00Z");
        let (d, _) = parse_credential_jwt(&w.membership(CredentialFormat::Vc11Jwt, MALMO)).unwrap();
        assert_eq!(d.payload["iss"], AUTHORITY);
        assert_eq!(d.payload["sub"], MALMO);
        assert_eq!(d.payload["vc"]["@context"][0], VC_CONTEXT_V1);
        assert_eq!(d.kid(), Some("did:web:authority.example#key-1"));
    }

    #[test]
    fn credential_dates_are_enforced() {
        let w = World::new(KeyAlgorithm::Es256);
        for format in FORMATS {
            let jwt = w.membership(format, MALMO);
            let early = VerifyOptions::at(t0() - Duration::hours(1));
            assert!(matches!(
                block_on(verify_credential(&jwt, &w.dids, &early)),
                Err(CredentialError::NotYetValid(_))
            ));
            let late = VerifyOptions::at(t0() + Duration::days(366));
            assert!(matches!(
                block_on(verify_credential(&jwt, &w.dids, &late)),
                Err(CredentialError::Expired(_))
            ));
            // Within the leeway is fine.
            let skew = VerifyOptions::at(t0() - Duration::seconds(10));
            assert!(block_on(verify_credential(&jwt, &w.dids, &skew)).is_ok());
        }
    }

    #[test]
    fn a_credential_signed_by_someone_else_is_refused() {
        let w = World::new(KeyAlgorithm::Es256);
        let opts = VerifyOptions::at(t0());
        // Malmö signs a credential claiming the authority issued it, with its own key id.
        let c = NewCredential::new(AUTHORITY, "MembershipCredential", MALMO, Map::new(), t0());
        assert!(issue_credential(&c, CredentialFormat::Vc11Jwt, w.key(MALMO)).is_err());
        let mut forged_key = ParticipantKey::generate(&format!("{AUTHORITY}#key-1")).unwrap();
        let jwt = issue_credential(&c, CredentialFormat::Vc11Jwt, &forged_key).unwrap();
        assert!(matches!(
            block_on(verify_credential(&jwt, &w.dids, &opts)),
            Err(CredentialError::Signature(JwsError::BadSignature))
        ));
        forged_key = ParticipantKey::generate(&format!("{MALMO}#key-1")).unwrap();
        let mut c2 = c.clone();
        c2.issuer = MALMO.into();
        let jwt = issue_credential(&c2, CredentialFormat::Vc20Jose, &forged_key).unwrap();
        // Re-label the payload's issuer: the kid still names Malmö.
        let (d, _) = parse_credential_jwt(&jwt).unwrap();
        assert_eq!(d.payload["issuer"], MALMO);
        // A key not listed under assertionMethod is refused (the authority's retired key here).
        let mut set = KeySet::new(w.key(AUTHORITY).clone());
        set.rotate(
            ParticipantKey::generate(&format!("{AUTHORITY}#key-2")).unwrap(),
            t0(),
            t0(),
        )
        .unwrap();
        let mut dids = w.dids.clone();
        let mut doc = DidDocument::for_participant(AUTHORITY, &set.published().unwrap(), vec![]);
        doc.assertion_method.retain(|m| m.id().ends_with("key-2"));
        dids.insert(doc);
        let jwt = w.membership(CredentialFormat::Vc11Jwt, MALMO);
        assert!(matches!(
            block_on(verify_credential(&jwt, &dids, &opts)),
            Err(CredentialError::Key(DidDocError::NotAuthorised { .. }))
        ));
    }

    #[test]
    fn presentations_issue_and_verify_and_carry_their_credentials() {
        let w = World::new(KeyAlgorithm::Es256);
        for format in FORMATS {
            let vc = w.membership(format, MALMO);
            let p = NewPresentation {
                holder: MALMO.into(),
                credentials: vec![vc.clone()],
                audience: Some(LUND.into()),
                nonce: None,
                issued_at: t0(),
                expires_at: t0() + Duration::minutes(5),
            };
            let vp = issue_presentation(&p, format, w.key(MALMO)).unwrap();
            let got =
                block_on(verify_presentation(&vp, &w.dids, &VerifyOptions::at(t0()))).unwrap();
            assert_eq!(got.holder, MALMO);
            assert_eq!(got.credentials, vec![vc]);
            assert_eq!(got.audience, vec![LUND.to_owned()]);
            assert_eq!(got.format, format);
            let late = VerifyOptions::at(t0() + Duration::minutes(10));
            assert!(matches!(
                block_on(verify_presentation(&vp, &w.dids, &late)),
                Err(CredentialError::Expired(_))
            ));
            // Lund cannot present as Malmö.
            let mut stolen = p.clone();
            stolen.holder = LUND.into();
            let vp = issue_presentation(&stolen, format, w.key(LUND)).unwrap();
            let (_, parsed) = parse_presentation_jwt(&vp).unwrap();
            assert_eq!(parsed.holder, LUND);
            assert!(issue_presentation(&p, format, w.key(LUND)).is_err());
        }
    }

    #[test]
    fn a_presentation_signed_by_another_did_is_refused() {
        let w = World::new(KeyAlgorithm::Es256);
        // Lund's key, but the payload names Malmö as holder.
        let payload = json!({
            "iss": MALMO, "vp": {"type": ["VerifiablePresentation"], "verifiableCredential": []},
            "exp": (t0() + Duration::minutes(5)).timestamp()
        });
        let jws = sign_compact(w.key(LUND), Some("JWT"), &payload).unwrap();
        assert!(matches!(
            block_on(verify_presentation(&jws, &w.dids, &VerifyOptions::at(t0()))),
            Err(CredentialError::SignerMismatch { role: "holder", .. })
        ));
    }

    #[test]
    fn envelopes_with_older_media_types_open() {
        let item = json!({"id": "data:application/vc-ld+jwt,abc.def.ghi", "type": "EnvelopedVerifiableCredential"});
        assert_eq!(open_credential(&item).unwrap(), "abc.def.ghi");
        assert!(open_credential(&json!({"id": "data:text/plain,x"})).is_err());
        assert!(open_credential(&json!({"@context": [], "proof": {}})).is_err());
    }

    #[test]
    fn malformed_credentials_say_why() {
        let w = World::new(KeyAlgorithm::Es256);
        let k = w.key(AUTHORITY);
        for (payload, want) in [
            (json!({"iss": AUTHORITY, "vc": 1}), "`vc` is not an object"),
            (
                json!({"iss": "did:web:x", "vc": {"issuer": AUTHORITY, "type": ["VerifiableCredential"], "credentialSubject": {}}}),
                "differ",
            ),
            (
                json!({"iss": AUTHORITY, "vc": {"type": ["X"], "credentialSubject": {}}}),
                "VerifiableCredential",
            ),
            (
                json!({"iss": AUTHORITY, "vc": {"type": ["VerifiableCredential"]}}),
                "credentialSubject",
            ),
            (json!({"hello": 1}), "neither"),
            (
                json!({"iss": AUTHORITY, "vc": {"type": "VerifiableCredential", "credentialSubject": {}, "expirationDate": "tomorrow"}}),
                "RFC 3339",
            ),
        ] {
            let jws = sign_compact(k, None, &payload).unwrap();
            let err = parse_credential_jwt(&jws).unwrap_err().to_string();
            assert!(err.contains(want), "{err} / {want}");
        }
    }
}
