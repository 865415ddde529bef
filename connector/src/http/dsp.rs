//! DSP 2025-1 endpoints: version discovery and the catalog protocol (provider side).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use caap_catalog::build::PageRequest;
use caap_catalog::dcat::{AuthProfile, CatalogRequestMessage, ProtocolVersion, VersionResponse};
use caap_catalog::filter::Filter;
use caap_catalog::page::{self, Cursor};
use caap_catalog::{CatalogFault, DSP_VERSION};
use serde::Deserialize;

use super::auth::CatalogCaller;
use super::body::read_json_limited;
use super::errors::DspCatalogError;
use crate::catalog::CatalogService;
use crate::telemetry::Status;
use caap_identity::DspAuthenticator;

/// Routes under the DSP listener's root.
pub fn routes(cfg: &mut web::ServiceConfig, dsp_path: &str) {
    cfg.route("/.well-known/dspace-version", web::get().to(version))
        .route(
            "/.well-known/mim4-configuration",
            web::get().to(super::consent::mim4_configuration),
        )
        .configure(super::transfer::data_routes)
        .service(
            web::scope(dsp_path)
                .route("/catalog/request", web::post().to(catalog_request))
                .route("/catalog/datasets/{id}", web::get().to(dataset))
                .configure(super::negotiation::routes)
                .configure(super::transfer::routes)
                .configure(super::consent::dsp_routes),
        );
}

/// `GET /.well-known/dspace-version`: unauthenticated, unversioned.
async fn version(
    status: web::Data<Status>,
    catalog: web::Data<CatalogService>,
    authenticator: web::Data<dyn DspAuthenticator>,
) -> HttpResponse {
    let auth = authenticator
        .advertised_profile()
        .map(|(protocol, version, profile)| AuthProfile {
            protocol,
            version,
            profile,
        });
    HttpResponse::Ok().json(VersionResponse {
        protocol_versions: vec![ProtocolVersion {
            version: DSP_VERSION.into(),
            path: status.dsp_path.clone(),
            binding: "HTTPS".into(),
            service_id: Some(catalog.identity().service_id()),
            identifier_type: status
                .identity
                .participant_id
                .starts_with("did:web:")
                .then(|| "did:web".to_owned()),
            auth,
        }],
    })
}

/// Query parameters of a catalog request (paging is in the query, as in the `Link` headers).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CatalogQuery {
    continuation_token: Option<String>,
    limit: Option<u32>,
}

/// `POST <base>/catalog/request`.
async fn catalog_request(
    req: HttpRequest,
    payload: web::Payload,
    CatalogCaller(caller): CatalogCaller,
    catalog: web::Data<CatalogService>,
) -> Result<HttpResponse, DspCatalogError> {
    let query = web::Query::<CatalogQuery>::from_query(req.query_string())
        .map_err(|e| {
            DspCatalogError::from(CatalogFault::BadRequest(format!(
                "bad query: {e}; known parameters are continuationToken and limit"
            )))
        })?
        .into_inner();
    let body = read_json_limited(&req, payload).await?;
    let message: CatalogRequestMessage = crate::service::decode(&body)
        .map_err(|e| DspCatalogError::from(CatalogFault::BadRequest(e.to_string())))?;
    message
        .check()
        .map_err(|m| DspCatalogError::from(CatalogFault::BadRequest(m)))?;
    let request = PageRequest {
        cursor: Cursor::from_token(query.continuation_token.as_deref())?,
        limit: page::page_size(query.limit)?,
        filter: Filter::parse(message.filter.as_deref())?,
    };
    let page = catalog.catalog(&caller, &request).await?;
    let link = |token: &str, rel: &str| {
        format!(
            "<{}/catalog/request?continuationToken={token}&limit={}>; rel=\"{rel}\"",
            catalog.identity().dsp_base,
            request.limit
        )
    };
    let links: Vec<String> = [
        (page.next.as_deref(), "next"),
        (page.previous.as_deref(), "previous"),
    ]
    .into_iter()
    .filter_map(|(t, rel)| t.map(|t| link(t, rel)))
    .collect();
    let mut res = HttpResponse::Ok();
    if !links.is_empty() {
        res.insert_header((header::LINK, links.join(", ")));
    }
    Ok(res
        .content_type("application/json")
        .body(web::Bytes::from_owner(page.body.clone())))
}

/// `GET <base>/catalog/datasets/{id}`.
async fn dataset(
    id: web::Path<String>,
    CatalogCaller(caller): CatalogCaller,
    catalog: web::Data<CatalogService>,
) -> Result<HttpResponse, DspCatalogError> {
    let dataset = catalog.dataset(&caller, &id).await?;
    Ok(HttpResponse::Ok().json(dataset))
}
