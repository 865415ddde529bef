//! HTTP surfaces (actix-web). Handlers are adapters: extract, authenticate, call one service
//! function, map the result. The DSP listener and the management listener are separate apps on
//! separate ports, built by [`dsp_app`] and [`api_app`], which `main`, the demo and the tests share.

pub mod api;
pub mod auth;
pub mod authority;
pub mod body;
pub mod consent;
pub mod dsp;
pub mod errors;
pub mod guard;
pub mod identity;
pub mod identity_api;
pub mod metrics;
pub mod negotiation;
pub mod open;
pub mod process;
pub mod transfer;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, ResponseError, web};
use tracing::Instrument;

use crate::service::Connector;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The DSP listener's app; `extra` mounts more routes on it (the simulator's `/sim`, when it is on);
/// `limiter` counts requests per client address (one for the listener, shared by its workers).
pub fn dsp_app(
    connector: Connector,
    limiter: Arc<guard::PerAddress>,
    extra: impl FnOnce(&mut web::ServiceConfig),
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let path = connector.config.dsp.path.clone();
    App::new()
        .app_data(body::BodyLimit(connector.config.limits.max_body_bytes))
        .app_data(body_rules(&connector, true))
        .app_data(web::Data::new(connector.catalog.clone()))
        .app_data(web::Data::from(connector.authenticator.clone()))
        .app_data(web::Data::from(connector.trust.clone()))
        .app_data(web::Data::from(connector.authority.clone()))
        .app_data(web::Data::new(connector.negotiations()))
        .app_data(web::Data::new(connector.transfers()))
        .app_data(web::Data::from(connector.consents.clone()))
        .app_data(web::Data::new(connector.status()))
        .app_data(web::Data::new(connector.ledger()))
        .app_data(web::Data::new(connector.courier()))
        .app_data(web::Data::new(connector.data_plane()))
        .app_data(web::Data::new(connector.open_data()))
        .wrap_fn(move |req, srv| guard::guard(&limiter, req, srv))
        .wrap_fn(metrics::measured)
        .wrap_fn(traced)
        .configure(|c| dsp::routes(c, &path))
        .configure(open::routes)
        .route(caap_catalog::CAAP_CONTEXT_PATH, web::get().to(caap_context))
        .configure(identity::routes)
        .configure(authority::routes)
        .configure(extra)
        .default_service(web::to(not_found))
}

/// `GET /caap/v1/context.jsonld`: caap's JSON-LD context (unauthenticated, like the DSP context it
/// extends), the document behind `https://w3id.org/caap/v1/context.jsonld`.
async fn caap_context() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/ld+json")
        .insert_header((
            actix_web::http::header::CACHE_CONTROL,
            "public, max-age=86400",
        ))
        .body(caap_catalog::CAAP_CONTEXT_DOCUMENT)
}

/// The management listener's app; `limiter` as for [`dsp_app`].
pub fn api_app(
    connector: Connector,
    limiter: Arc<guard::PerAddress>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(body::BodyLimit(connector.config.limits.max_body_bytes))
        .app_data(body_rules(&connector, false))
        .app_data(web::Data::new(connector.catalog.clone()))
        .app_data(web::Data::new(auth::ManagementAccess::new(
            connector.config.api.admin_token.clone(),
            connector.oidc.clone(),
        )))
        .app_data(web::Data::from(connector.trust.clone()))
        .app_data(web::Data::from(connector.authority.clone()))
        .app_data(web::Data::new(connector.negotiations()))
        .app_data(web::Data::new(connector.transfers()))
        .app_data(web::Data::from(connector.consents.clone()))
        .app_data(web::Data::new(connector.status()))
        .app_data(web::Data::new(connector.ledger()))
        .app_data(web::Data::new(connector.courier()))
        .app_data(web::Data::new(connector.data_plane()))
        .app_data(web::Data::new(connector.open_data()))
        .app_data(web::PathConfig::default().error_handler(|e, _| {
            errors::ApiError::from(crate::service::ServiceError::BadRequest(
                e.to_string(),
                vec![],
            ))
            .into()
        }))
        .app_data(web::Data::new(api::Documented::from_openapi()))
        .wrap_fn(move |req, srv| guard::guard(&limiter, req, srv))
        .wrap_fn(traced)
        .configure(metrics::routes)
        .configure(open::api_routes)
        .configure(api::routes)
        .default_service(web::to(api_not_found))
}

fn body_rules(connector: &Connector, require_media_type: bool) -> body::BodyRules {
    body::BodyRules {
        timeout: std::time::Duration::from_secs(connector.config.limits.body_read_timeout_secs),
        require_media_type,
    }
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    errors::ApiError::no_route(req.method().as_str(), req.path()).error_response()
}

/// The management API's unknown routes: 405 with `Allow` for a documented path asked with another method
/// (TRACE, PATCH, …), 404 otherwise.
pub(crate) async fn api_not_found(
    req: HttpRequest,
    documented: web::Data<api::Documented>,
) -> HttpResponse {
    let method = req.method().as_str();
    match documented.allowed(req.path()) {
        Some(allowed) if !allowed.iter().any(|m| m == method) => {
            errors::ApiError::no_method(method, req.path(), &allowed)
        }
        _ => not_found(req).await,
    }
}

/// Gives each request an id (kept from `X-Request-Id` if the caller sent a sane one), runs it in a
/// span carrying that id, and echoes the id in the response.
fn traced<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: actix_web::dev::Service<
            ServiceRequest,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
        >,
{
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.path());
    let fut = errors::REQUEST_ID.scope(id.clone(), srv.call(req));
    async move {
        let mut res = fut.await?;
        tracing::debug!(status = res.status().as_u16(), "answered");
        if let Ok(v) = HeaderValue::from_str(&id) {
            res.headers_mut().insert(REQUEST_ID.clone(), v);
        }
        Ok(res)
    }
    .instrument(span)
}
