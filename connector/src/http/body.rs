//! Reading requests: JSON bodies with a size limit, a media-type check and errors that say where it broke,
//! and query strings.

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;

use super::errors::{ApiError, BodyError};
use crate::error::ServiceError;

/// The query string as `T`, or a 400 that says what does not fit.
pub(crate) fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ServiceError::BadRequest(format!("bad query string: {e}"), vec![]).into())
}

/// The largest request body accepted (`limits.max_body_bytes`), registered with each app so that a
/// handler reading a body needs no configuration ([`read_json_limited`]).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Reads the whole body (at most the app's [`BodyLimit`]; none registered accepts no body) and
/// parses it as JSON.
pub async fn read_json_limited(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<serde_json::Value, BodyError> {
    read_json(req, payload, body_limit(req)).await
}

/// The app's [`BodyLimit`] (none registered: 0, no body accepted).
pub fn body_limit(req: &HttpRequest) -> usize {
    req.app_data::<BodyLimit>().map_or(0, |l| l.0)
}

/// Reads the whole body (at most `limit` bytes) and parses it as JSON.
pub async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<serde_json::Value, BodyError> {
    let body = read_json_bytes(req, payload, limit).await?;
    serde_json::from_slice(&body).map_err(|e| BodyError::Syntax(e.to_string()))
}

/// Reads the whole body of a JSON request (at most `limit` bytes, a JSON media type, not empty) without
/// parsing it, for message types that parse themselves.
pub async fn read_json_bytes(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        let essence = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !(essence == "application/json" || essence.ends_with("+json")) {
            return Err(BodyError::MediaType(ct.to_owned()));
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Syntax(
            "the body is empty; send a JSON object".into(),
        ));
    }
    Ok(body.freeze())
}
