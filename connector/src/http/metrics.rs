//! `GET /metrics` on the management listener (Prometheus text exposition, unauthenticated like `/health`:
//! the listener is private and the metrics hold no personal data or secret), and [`measured`], the DSP
//! listener's middleware that times every request by endpoint (its route pattern) and status.

use std::time::Instant;

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{HttpResponse, web};

use super::errors::ApiError;
use crate::telemetry::Status;

/// The route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

async fn metrics(status: web::Data<Status>) -> Result<HttpResponse, ApiError> {
    let text = status.metrics_text().await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

/// Times a DSP-listener request and counts it under its route pattern (`unmatched` when no route took it,
/// so that probing random paths cannot grow the metrics without bound).
pub fn measured<S, B>(
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
    let metrics = req
        .app_data::<web::Data<Status>>()
        .map(|s| s.metrics.clone());
    let started = Instant::now();
    let fut = srv.call(req);
    async move {
        let res = fut.await?;
        if let Some(metrics) = metrics {
            let endpoint = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned());
            metrics.dsp_request(
                &endpoint,
                res.status().as_u16(),
                started.elapsed().as_secs_f64(),
            );
        }
        Ok(res)
    }
}
