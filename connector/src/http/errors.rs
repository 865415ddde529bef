//! The one place errors become HTTP answers: `application/problem+json` (RFC 9457) on the
//! management API, the protocol's own error bodies on DSP endpoints. A 5xx never carries its cause;
//! the log does, inside the request's span (which has the request id).

use crate::process::{ProcessKind, Refusal, Rejected};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use caap_catalog::dcat::CatalogError;
use caap_catalog::{CatalogFault, FieldError};
use serde::Serialize;

use crate::service::ServiceError;

tokio::task_local! {
    /// The id of the request being answered (set by the request-tracing middleware, `X-Request-Id`).
    pub(crate) static REQUEST_ID: String;
}

/// The id of the request being answered (empty outside a request).
pub fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Which listener an answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The DSP listener: each protocol's error body, by path.
    Dsp,
    /// The management listener: problem+json.
    Management,
}

/// A request refused before its handler ran (too many at once from one address, a target the database cannot
/// store): on the DSP listener the protocol's error body by path (`…/negotiations/…`, `…/transfers/…`,
/// `…/catalog/…`, DCP under `/dcp` and `/issuer`), problem+json everywhere else.
pub fn refusal(
    listener: Listener,
    path: &str,
    status: StatusCode,
    slug: &'static str,
    reason: String,
) -> HttpResponse {
    let has = |segment: &str| path.split('/').any(|s| s == segment);
    if listener == Listener::Dsp {
        let dcp = [
            crate::trust::CREDENTIAL_SERVICE_PATH,
            crate::trust::ISSUER_PATH,
        ]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")));
        if dcp {
            return dcp_error(status, slug, &reason);
        }
        if has("negotiations") || has("transfers") {
            return DspError::new(status, "", "", reason)
                .for_transfer(has("transfers"))
                .error_response();
        }
        if has("catalog") {
            return DspCatalogError::new(status, reason).error_response();
        }
    }
    ApiError::new(status, slug, reason).error_response()
}

/// A problem-details body.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A URN naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this case, and what to do.
    pub detail: String,
    /// Each offending field, by JSON pointer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// A management-API error.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    slug: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    /// The `WWW-Authenticate` challenge of a 401 or 403 (RFC 6750 §3); a 401 without one says `Bearer`.
    challenge: Option<&'static str>,
}

impl ApiError {
    /// A problem with a status, a kind slug and a detail.
    fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            slug,
            detail: detail.into(),
            errors: Vec::new(),
            challenge: None,
        }
    }
    /// 401: no or a wrong admin token.
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the admin token from the config ([api] admin_token) as `Authorization: Bearer <token>`",
        )
    }
    /// 401 for a bearer token that is neither the admin token nor a valid access token of the OIDC
    /// provider. Why is logged, never answered.
    pub fn invalid_token() -> Self {
        ApiError {
            challenge: Some(r#"Bearer error="invalid_token""#),
            ..ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid-token",
                "invalid token: send the admin token or a valid access token from the OIDC provider ([api.oidc]) as `Authorization: Bearer <token>`",
            )
        }
    }
    /// 403 for a valid access token without the scope or role the management API requires.
    pub fn insufficient_scope() -> Self {
        ApiError {
            challenge: Some(r#"Bearer error="insufficient_scope""#),
            ..ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient-scope",
                "the access token is valid but lacks the scope or role the management API requires ([api.oidc] required_scope, required_role)",
            )
        }
    }
    /// 503 when the OIDC provider's keys cannot be fetched right now.
    pub fn oidc_unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "oidc-unavailable",
            "the access token cannot be checked right now (the OIDC provider is unreachable); retry later",
        )
    }
    /// 405 for a method a documented path does not allow, with the `Allow` header (RFC 9110 §15.5.6).
    pub fn no_method(method: &str, path: &str, allowed: &[String]) -> HttpResponse {
        let allow = allowed.join(", ");
        let mut res = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            format!("{path} does not allow {method}; it allows {allow}"),
        )
        .error_response();
        if let Ok(v) = HeaderValue::from_str(&allow) {
            res.headers_mut().insert(header::ALLOW, v);
        }
        res
    }
    /// 404 for an unknown route.
    pub fn no_route(method: &str, path: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no endpoint {method} {path}; see /api/v1/openapi.json"),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.detail)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadRequest(d, errors) => ApiError {
                status: StatusCode::BAD_REQUEST,
                slug: "bad-request",
                detail: d,
                errors,
                challenge: None,
            },
            ServiceError::Invalid(d, errors) => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                slug: "invalid",
                detail: d,
                errors,
                challenge: None,
            },
            ServiceError::NotFound(d) => ApiError::new(StatusCode::NOT_FOUND, "not-found", d),
            ServiceError::Conflict(d) => ApiError::new(StatusCode::CONFLICT, "conflict", d),
            ServiceError::RangeNotSatisfiable(d) => ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range-not-satisfiable",
                d,
            ),
            ServiceError::Upstream(d) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "counterparty-failed", d)
            }
            ServiceError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred; the connector's log has the details under this request's id",
                )
            }
        }
    }
}

/// A notification arrived for a stream whose reader has gone: 410.
#[derive(Debug, thiserror::Error)]
#[error("the stream has ended")]
pub struct StreamEnded;

impl From<StreamEnded> for ApiError {
    fn from(e: StreamEnded) -> Self {
        ApiError::new(StatusCode::GONE, "gone", e.to_string())
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        ApiError::new(e.status(), e.slug(), e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let body = Problem {
            kind: format!("urn:caap:problem:{}", self.slug),
            title,
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
        };
        let mut res = HttpResponse::build(self.status);
        res.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        match self.challenge {
            Some(challenge) => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                ));
            }
            None if self.status == StatusCode::UNAUTHORIZED => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            None => {}
        }
        res.body(serde_json::to_string(&body).unwrap_or_default())
    }
}

/// A DSP catalog-protocol error, answered with a `CatalogError` body.
#[derive(Debug)]
pub struct DspCatalogError {
    status: StatusCode,
    reason: String,
}

impl DspCatalogError {
    /// An error with a status and a reason the caller may read.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        DspCatalogError {
            status,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for DspCatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.reason)
    }
}

impl From<CatalogFault> for DspCatalogError {
    fn from(e: CatalogFault) -> Self {
        match e {
            CatalogFault::BadRequest(m) => DspCatalogError::new(StatusCode::BAD_REQUEST, m),
            CatalogFault::NotFound(m) => DspCatalogError::new(StatusCode::NOT_FOUND, m),
            CatalogFault::Store(cause) => {
                tracing::error!(%cause, "catalog store failed");
                DspCatalogError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; the provider's log has the details",
                )
            }
        }
    }
}

impl From<BodyError> for DspCatalogError {
    fn from(e: BodyError) -> Self {
        DspCatalogError::new(e.status(), e.to_string())
    }
}

impl ResponseError for DspCatalogError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let body = CatalogError::new(self.status.as_u16().to_string(), self.reason.clone());
        HttpResponse::build(self.status)
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ))
            .body(serde_json::to_string(&body).unwrap_or_default())
    }
}

/// Why a request body was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Larger than `limits.max_body_bytes`.
    #[error("the body is larger than {0} bytes (limits.max_body_bytes)")]
    TooLarge(usize),
    /// Not JSON in UTF-8 by its content type.
    #[error("Content-Type must be application/json (or a +json type) in UTF-8, not {0}")]
    MediaType(String),
    /// Text the database cannot store (a NUL character), at this JSON pointer.
    #[error("`{0}` contains a NUL character (U+0000), which cannot be stored; remove it")]
    Unstorable(String),
    /// The body did not arrive in time.
    #[error("the body did not arrive within {0} s (limits.body_read_timeout_secs)")]
    Timeout(u64),
    /// Not parseable JSON.
    #[error("the body is not valid JSON: {0}")]
    Syntax(String),
    /// The connection failed while reading.
    #[error("the body could not be read: {0}")]
    Read(String),
}

impl BodyError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::MediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Syntax(_) | BodyError::Read(_) | BodyError::Unstorable(_) => {
                StatusCode::BAD_REQUEST
            }
        }
    }
    fn slug(&self) -> &'static str {
        match self {
            BodyError::TooLarge(_) => "too-large",
            BodyError::MediaType(_) => "unsupported-media-type",
            BodyError::Timeout(_) => "request-timeout",
            BodyError::Unstorable(_) => "unstorable-text",
            BodyError::Syntax(_) | BodyError::Read(_) => "malformed-json",
        }
    }
}

/// A DSP error of a process protocol: a `ContractNegotiationError` body on the negotiation endpoints, a
/// `TransferError` on the transfer endpoints. A refusal of either kind maps to HTTP here ([`DspError::rejected`]):
/// a failure on our side is a 500 without its cause (the log has it, with the request id).
#[derive(Debug)]
pub struct DspError {
    kind: ProcessKind,
    status: StatusCode,
    provider_pid: String,
    consumer_pid: String,
    reason: String,
}

/// The name of [`DspError`] from when only negotiations used it.
pub type DspNegotiationError = DspError;

impl DspError {
    /// An error of the `kind` protocol with a status, the pids to report, and a reason the caller may read.
    pub fn of(
        kind: ProcessKind,
        status: StatusCode,
        provider_pid: impl Into<String>,
        consumer_pid: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        DspError {
            kind,
            status,
            provider_pid: provider_pid.into(),
            consumer_pid: consumer_pid.into(),
            reason: reason.into(),
        }
    }

    /// A contract-negotiation error.
    pub fn new(
        status: StatusCode,
        provider_pid: impl Into<String>,
        consumer_pid: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::of(
            ProcessKind::Negotiation,
            status,
            provider_pid,
            consumer_pid,
            reason,
        )
    }

    /// The same error on a transfer-process endpoint (a `TransferError` body).
    #[must_use]
    pub fn for_transfer(mut self, transfer: bool) -> Self {
        if transfer {
            self.kind = ProcessKind::Transfer;
        }
        self
    }

    /// A refused process message.
    pub fn rejected(kind: ProcessKind, r: Rejected) -> Self {
        let noun = kind.noun();
        let (status, reason) = match r.refusal {
            Refusal::NotFound => (
                StatusCode::NOT_FOUND,
                format!("no such {noun} for this caller"),
            ),
            Refusal::BadRequest(m) | Refusal::Illegal(m) => (StatusCode::BAD_REQUEST, m),
            Refusal::Busy => (
                StatusCode::CONFLICT,
                format!("the {noun} is changing right now; retry"),
            ),
            Refusal::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; the connector's log has the details".to_owned(),
            ),
        };
        Self::of(kind, status, r.provider_pid, r.consumer_pid, reason)
    }

    /// The pids and the reason.
    pub fn parts(&self) -> (String, String, String) {
        (
            self.provider_pid.clone(),
            self.consumer_pid.clone(),
            self.reason.clone(),
        )
    }
}

impl std::fmt::Display for DspError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.reason)
    }
}

impl ResponseError for DspError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let code = Some(self.status.as_u16().to_string());
        let (p, c, reason) = self.parts();
        let body = match self.kind {
            ProcessKind::Transfer => serde_json::to_string(
                &caap_contracts::transfer::message::TransferError::new(p, c, code, vec![reason]),
            ),
            ProcessKind::Negotiation => serde_json::to_string(
                &caap_contracts::negotiation::message::ContractNegotiationError::new(
                    p,
                    c,
                    code,
                    vec![reason],
                ),
            ),
        };
        HttpResponse::build(self.status)
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ))
            .body(body.unwrap_or_default())
    }
}

impl From<crate::open::OpenError> for ApiError {
    fn from(e: crate::open::OpenError) -> Self {
        use crate::open::OpenError;
        match e {
            OpenError::RateLimited(_) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                e.to_string(),
            ),
            OpenError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not-found", m),
            OpenError::Access(e) => e.into(),
            OpenError::Service(e) => e.into(),
        }
    }
}

impl From<crate::transfer::dataplane::AccessError> for ApiError {
    fn from(e: crate::transfer::dataplane::AccessError) -> Self {
        use crate::transfer::dataplane::AccessError;
        match e {
            AccessError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not-found", m),
            AccessError::BadRequest(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad-request", m),
            AccessError::Unauthorized(m) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
            }
            AccessError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            AccessError::RangeNotSatisfiable(m) => ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range-not-satisfiable",
                m,
            ),
            AccessError::Source(e) => {
                // The consumer hears nothing of the source (no URL, query, path or status); the log has it.
                tracing::warn!(cause = %e, "data source failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "source-unavailable",
                    format!(
                        "the source is unavailable; the provider's log has the details under request id {}",
                        request_id()
                    ),
                )
            }
            AccessError::Internal(cause) => {
                tracing::error!(%cause, "data plane failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the connector's log has the details",
                )
            }
        }
    }
}

// ---- Trust and authority: DSP callers refused, the management API's OIDC tokens, DCP answers. ----

impl ApiError {
    /// The answer to a management request whose OIDC access token was refused; why goes to the log.
    pub fn oidc_refused(path: &str, e: &crate::trust::oidc::OidcError) -> Self {
        use crate::trust::oidc::OidcRefusal;
        match e.refusal() {
            OidcRefusal::InvalidToken => {
                tracing::info!(%path, reason = %e, "management request refused: invalid token");
                ApiError::invalid_token()
            }
            OidcRefusal::InsufficientScope => {
                tracing::info!(%path, reason = %e, "management request refused: insufficient scope");
                ApiError::insufficient_scope()
            }
            OidcRefusal::Unavailable => {
                tracing::warn!(%path, reason = %e, "management request refused: OIDC provider unavailable");
                ApiError::oidc_unavailable()
            }
        }
    }
}

impl DspCatalogError {
    /// 500: the app has no authenticator.
    pub fn not_configured() -> Self {
        DspCatalogError::new(StatusCode::INTERNAL_SERVER_ERROR, "not configured")
    }

    /// A catalog request whose caller was not verified: 503 if it could not be checked now, else 401.
    pub fn refused(failure: &caap_identity::AuthFailure) -> Self {
        tracing::info!(reason = %failure, "DSP catalog request refused");
        match failure {
            caap_identity::AuthFailure::Unavailable(_) => DspCatalogError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the caller could not be verified right now; retry later",
            ),
            _ => DspCatalogError::new(
                StatusCode::UNAUTHORIZED,
                "the request is not authorized; present a valid Authorization header",
            ),
        }
    }
}

impl DspNegotiationError {
    /// 500: the app has no authenticator.
    pub fn not_configured(pid: &str, transfer: bool) -> Self {
        DspNegotiationError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            pid,
            pid,
            "not configured",
        )
        .for_transfer(transfer)
    }

    /// A process request whose caller was not verified: 503 if it could not be checked now, else 404
    /// (an unknown caller learns nothing about which processes exist).
    pub fn refused(
        path: &str,
        pid: &str,
        transfer: bool,
        failure: &caap_identity::AuthFailure,
    ) -> Self {
        let (status, reason) = match failure {
            caap_identity::AuthFailure::Unavailable(reason) => {
                tracing::warn!(%path, %reason, "DSP caller could not be verified");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the caller could not be verified right now; retry later",
                )
            }
            _ => {
                tracing::info!(%path, reason = %failure, "DSP process request refused (answered 404)");
                (StatusCode::NOT_FOUND, "no such process for this caller")
            }
        };
        DspNegotiationError::new(status, pid, pid, reason).for_transfer(transfer)
    }
}

fn dcp_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    res.json(serde_json::json!({"type": "Error", "code": code, "message": message}))
}

/// The answer of a DCP endpoint (credential service, issuer service): the response, or an error body
/// `{"type": "Error", "code", "message"}` with 401 (with a `WWW-Authenticate` challenge), 503, 400/501, 404
/// or 500. Refusals and failures are logged with `endpoint`; a 500 never carries its cause.
pub fn dcp_answer(
    endpoint: &str,
    answer: Result<HttpResponse, crate::trust::DcpError>,
) -> HttpResponse {
    use crate::trust::DcpError;
    match answer {
        Ok(res) => res,
        Err(DcpError::Refused(r)) if r.is_unavailable() => {
            tracing::warn!(%endpoint, code = r.code(), reason = %r, "DCP request could not be verified");
            dcp_error(
                StatusCode::SERVICE_UNAVAILABLE,
                r.code(),
                "the request could not be verified right now; retry later",
            )
        }
        Err(DcpError::Refused(r)) => {
            tracing::info!(%endpoint, code = r.code(), reason = %r, "DCP request refused");
            dcp_error(StatusCode::UNAUTHORIZED, r.code(), &r.public_message())
        }
        Err(DcpError::BadRequest {
            status,
            code,
            message,
        }) => dcp_error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            &message,
        ),
        Err(DcpError::NotFound(message)) => dcp_error(StatusCode::NOT_FOUND, "not_found", &message),
        Err(DcpError::Internal(cause)) => {
            tracing::error!(%endpoint, %cause, "DCP request failed");
            dcp_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }
    }
}
