//! Authentication extractors: the permission a handler needs is visible in its signature.
//!
//! * [`Admin`]: the management API's bearer admin token, or an OIDC access token (see
//!   [`crate::trust::oidc`]), checked by the [`ManagementAccess`] the API app holds.
//! * [`CatalogCaller`], [`ProcessCaller`]: a DSP caller verified by the configured
//!   [`caap_identity::DspAuthenticator`]; refusals answer with the protocol's error bodies.
//!
//! [`authorization`] is the one reader of the `Authorization` header.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use caap_identity::{DspAuthenticator, Secret, VerifiedCaller};

use super::errors::{ApiError, DspCatalogError, DspNegotiationError};
use crate::trust::oidc::OidcVerifier;

/// The request's `Authorization` header, if it is text.
pub fn authorization(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// The cheap check of a DCP request before its body is read: a `Bearer` token shaped like a compact JWS
/// (the full check, which needs the body, comes after).
pub fn dcp_bearer_shaped(req: &HttpRequest) -> Result<(), crate::trust::DcpError> {
    use caap_identity::dcp::Refusal;
    let token = caap_identity::dcp::token::bearer_token(authorization(req))
        .map_err(crate::trust::DcpError::Refused)?;
    if token.split('.').count() != 3 {
        return Err(crate::trust::DcpError::Refused(Refusal::MalformedToken(
            "the bearer token is not a compact JWS".into(),
        )));
    }
    Ok(())
}

fn authenticator(req: &HttpRequest) -> Option<Arc<dyn DspAuthenticator>> {
    req.app_data::<web::Data<dyn DspAuthenticator>>()
        .map(|d| d.clone().into_inner())
}

/// Who may use the management API: the admin token, and (with `[api.oidc]`) the OIDC provider's access
/// tokens.
#[derive(Debug)]
pub struct ManagementAccess {
    admin_token: Secret,
    oidc: Option<Arc<OidcVerifier>>,
}

impl ManagementAccess {
    /// Access with `admin_token`, and OIDC access tokens checked by `oidc`.
    pub fn new(admin_token: Secret, oidc: Option<Arc<OidcVerifier>>) -> Self {
        ManagementAccess { admin_token, oidc }
    }
}

/// A management request with the admin token or (with `[api.oidc]`) a valid access token from the OIDC
/// provider with the required scope and role.
#[derive(Debug)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Admin, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let access = req.app_data::<web::Data<ManagementAccess>>().cloned();
        let token = authorization(req)
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| Secret::new(t.trim()));
        let path = req.path().to_owned();
        Box::pin(async move {
            let (Some(access), Some(token)) = (access, token) else {
                tracing::info!(%path, "management request refused: no bearer token");
                return Err(ApiError::unauthorized());
            };
            if access.admin_token.matches(token.expose()) {
                return Ok(Admin);
            }
            let Some(oidc) = &access.oidc else {
                tracing::info!(%path, "management request refused: bad admin token");
                return Err(ApiError::unauthorized());
            };
            match oidc.verify(token.expose()).await {
                Ok(p) => {
                    tracing::debug!(
                        %path,
                        sub = %p.subject,
                        client_id = p.client_id.as_deref().unwrap_or("-"),
                        "management request by OIDC access token"
                    );
                    Ok(Admin)
                }
                Err(e) => Err(ApiError::oidc_refused(&path, &e)),
            }
        })
    }
}

/// A DSP catalog request from a verified caller.
#[derive(Debug)]
pub struct CatalogCaller(pub VerifiedCaller);

impl FromRequest for CatalogCaller {
    type Error = DspCatalogError;
    type Future = Pin<Box<dyn Future<Output = Result<CatalogCaller, DspCatalogError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authenticator = authenticator(req);
        let header = authorization(req).map(str::to_owned);
        Box::pin(async move {
            let Some(authenticator) = authenticator else {
                return Err(DspCatalogError::not_configured());
            };
            match authenticator.authenticate(header.as_deref()).await {
                Ok(caller) => Ok(CatalogCaller(caller)),
                Err(failure) => Err(DspCatalogError::refused(&failure)),
            }
        })
    }
}

/// A DSP negotiation or transfer request from a verified caller.
#[derive(Debug)]
pub struct ProcessCaller(pub VerifiedCaller);

impl FromRequest for ProcessCaller {
    type Error = DspNegotiationError;
    type Future = Pin<Box<dyn Future<Output = Result<ProcessCaller, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authenticator = authenticator(req);
        let header = authorization(req).map(str::to_owned);
        let pid = req
            .match_info()
            .get("pid")
            .or_else(|| req.match_info().get("tid"))
            .unwrap_or_default()
            .to_owned();
        let path = req.path().to_owned();
        Box::pin(async move {
            let transfer = path.contains("/transfers/") || path.contains("/data/");
            let Some(authenticator) = authenticator else {
                return Err(DspNegotiationError::not_configured(&pid, transfer));
            };
            match authenticator.authenticate(header.as_deref()).await {
                Ok(caller) => Ok(ProcessCaller(caller)),
                Err(failure) => Err(DspNegotiationError::refused(
                    &path, &pid, transfer, &failure,
                )),
            }
        })
    }
}
