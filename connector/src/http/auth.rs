//! Authentication extractors: the permission a handler needs is visible in its signature.
//!
//! * [`Admin`]: the management API's bearer admin token.
//! * [`CatalogCaller`]: a DSP caller verified by the configured [`caap_identity::DspAuthenticator`];
//!   refusals answer with a `CatalogError`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, web};
use caap_identity::{AuthFailure, VerifiedCaller};

use super::errors::{ApiError, DspCatalogError};
use crate::service::Connector;

fn connector(req: &HttpRequest) -> Option<&Connector> {
    req.app_data::<web::Data<Connector>>().map(|d| d.get_ref())
}

/// Proof that the caller holds the admin token.
#[derive(Debug)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ok = connector(req).is_some_and(|c| {
            req.headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|t| c.config.api.admin_token.matches(t.trim()))
        });
        if !ok {
            tracing::info!(path = %req.path(), "management request refused: bad or missing admin token");
        }
        std::future::ready(if ok {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized())
        })
    }
}

/// A verified DSP caller of the catalog protocol.
#[derive(Debug)]
pub struct CatalogCaller(pub VerifiedCaller);

impl FromRequest for CatalogCaller {
    type Error = DspCatalogError;
    type Future = Pin<Box<dyn Future<Output = Result<CatalogCaller, DspCatalogError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let connector = connector(req).cloned();
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let Some(connector) = connector else {
                return Err(DspCatalogError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "not configured",
                ));
            };
            match connector
                .authenticator
                .authenticate(header.as_deref())
                .await
            {
                Ok(caller) => Ok(CatalogCaller(caller)),
                Err(failure) => {
                    tracing::info!(reason = %failure, "DSP catalog request refused");
                    Err(match failure {
                        AuthFailure::Unavailable(_) => DspCatalogError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the caller could not be verified right now; retry later",
                        ),
                        _ => DspCatalogError::new(
                            StatusCode::UNAUTHORIZED,
                            "the request is not authorized; present a valid Authorization header",
                        ),
                    })
                }
            }
        })
    }
}

/// A verified DSP caller of the negotiation or transfer protocols. A refusal answers 404 (DSP: an
/// unauthorized caller must not learn whether a process exists), logged with its reason.
#[derive(Debug)]
pub struct ProcessCaller(pub VerifiedCaller);

impl FromRequest for ProcessCaller {
    type Error = super::errors::DspNegotiationError;
    type Future = Pin<Box<dyn Future<Output = Result<ProcessCaller, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let connector = connector(req).cloned();
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let pid = req
            .match_info()
            .get("pid")
            .or_else(|| req.match_info().get("tid"))
            .unwrap_or_default()
            .to_owned();
        let path = req.path().to_owned();
        Box::pin(async move {
            let transfer = path.contains("/transfers/") || path.contains("/data/");
            let refuse = |status, reason: &str| {
                super::errors::DspNegotiationError::new(status, pid.clone(), pid.clone(), reason)
                    .for_transfer(transfer)
            };
            let Some(connector) = connector else {
                return Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, "not configured"));
            };
            match connector
                .authenticator
                .authenticate(header.as_deref())
                .await
            {
                Ok(caller) => Ok(ProcessCaller(caller)),
                Err(AuthFailure::Unavailable(reason)) => {
                    tracing::warn!(%path, %reason, "DSP caller could not be verified");
                    Err(refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the caller could not be verified right now; retry later",
                    ))
                }
                Err(failure) => {
                    tracing::info!(%path, reason = %failure, "DSP process request refused (answered 404)");
                    Err(refuse(
                        StatusCode::NOT_FOUND,
                        "no such process for this caller",
                    ))
                }
            }
        })
    }
}
