//! Reading requests: JSON bodies with a size limit, a time limit, a media-type check, text the database can
//! store, and errors that say where it broke; and query strings.

use std::time::Duration;

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

/// How each app reads bodies besides their size: how long a body may take to arrive
/// (`limits.body_read_timeout_secs`), and whether a missing `Content-Type` is refused (the DSP listener:
/// its POSTs must say they are JSON in UTF-8).
#[derive(Debug, Clone, Copy)]
pub struct BodyRules {
    /// The whole body must have arrived within this.
    pub timeout: Duration,
    /// Refuse a body without a `Content-Type`.
    pub require_media_type: bool,
}

impl Default for BodyRules {
    fn default() -> Self {
        BodyRules {
            timeout: Duration::from_secs(10),
            require_media_type: false,
        }
    }
}

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
    let body = read_body(req, payload, limit).await?;
    let value = serde_json::from_slice(&body).map_err(|e| BodyError::Syntax(e.to_string()))?;
    refuse_unstorable(&value)?;
    Ok(value)
}

/// Reads the whole body of a JSON request (at most `limit` bytes, a JSON media type, not empty) without
/// parsing it, for message types that parse themselves. Text the database cannot store is refused here too.
pub async fn read_json_bytes(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    let body = read_body(req, payload, limit).await?;
    // A NUL can only arrive escaped (JSON forbids raw control characters in strings); parse only then.
    if body.windows(6).any(|w| w == b"\\u0000")
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body)
    {
        refuse_unstorable(&value)?;
    }
    Ok(body)
}

/// Checks the media type, then reads the body within the size and time limits.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    let rules = req.app_data::<BodyRules>().copied().unwrap_or_default();
    check_media_type(req, rules.require_media_type)?;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
            if body.len() + chunk.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let body = tokio::time::timeout(rules.timeout, read)
        .await
        .map_err(|_| BodyError::Timeout(rules.timeout.as_secs()))??;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Syntax(
            "the body is empty; send a JSON object".into(),
        ));
    }
    Ok(body.freeze())
}

/// A JSON media type (`application/json` or `…+json`) in UTF-8 (no other `charset`); without a
/// `Content-Type`, refused when `required`.
fn check_media_type(req: &HttpRequest, required: bool) -> Result<(), BodyError> {
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else {
        return if required {
            Err(BodyError::MediaType("no Content-Type".into()))
        } else {
            Ok(())
        };
    };
    let ct = ct.to_str().unwrap_or_default();
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let json = essence == "application/json" || essence.ends_with("+json");
    let utf8 = parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    });
    if json && utf8 {
        Ok(())
    } else {
        Err(BodyError::MediaType(format!("`{ct}`")))
    }
}

/// Refuses a JSON value with text the database cannot store (a NUL character, which PostgreSQL's text
/// and jsonb refuse), naming the field by JSON pointer.
pub fn refuse_unstorable(value: &serde_json::Value) -> Result<(), BodyError> {
    match unstorable_at(value, &mut String::new()) {
        Some(pointer) => Err(BodyError::Unstorable(pointer)),
        None => Ok(()),
    }
}

fn unstorable_at(value: &serde_json::Value, at: &mut String) -> Option<String> {
    use serde_json::Value;
    let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
    match value {
        Value::String(s) if s.contains('\0') => Some(pointer_or_root(at)),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = at.len();
            at.push_str(&format!("/{i}"));
            let found = unstorable_at(item, at);
            at.truncate(len);
            found
        }),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let len = at.len();
            at.push('/');
            at.push_str(&escape(key));
            let found = if key.contains('\0') {
                Some(at.clone())
            } else {
                unstorable_at(item, at)
            };
            at.truncate(len);
            found
        }),
        _ => None,
    }
}

fn pointer_or_root(at: &str) -> String {
    if at.is_empty() {
        "/".to_owned()
    } else {
        at.to_owned()
    }
}

/// The first piece of a request target (the path, or a query parameter) that cannot be stored: not UTF-8
/// once percent-decoded, or with a NUL character. Names the parameter; `None` when all is well.
pub fn unstorable_target(path: &str, query: &str) -> Option<String> {
    let bad = |text: &str| {
        let decoded = percent_decode(text);
        decoded.contains(&0) || std::str::from_utf8(&decoded).is_err()
    };
    if bad(path) {
        return Some("the path".to_owned());
    }
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let plus = |t: &str| t.replace('+', " ");
        (bad(&plus(name)) || bad(&plus(value))).then(|| {
            let mut name = percent_decode(name);
            name.retain(|b| *b != 0);
            format!(
                "the query parameter `{}`",
                String::from_utf8_lossy(&name).escape_debug()
            )
        })
    })
}

/// `%XX` decoded (a `%` not followed by two hex digits is kept as it is).
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or_default());
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_characters_are_named_by_pointer() {
        assert!(refuse_unstorable(&json!({"a": ["x", {"b": "ok"}]})).is_ok());
        let at = |v: serde_json::Value| match refuse_unstorable(&v) {
            Err(BodyError::Unstorable(p)) => p,
            other => panic!("{other:?}"),
        };
        assert_eq!(at(json!({"consumerPid": "a\u{0}b"})), "/consumerPid");
        assert_eq!(at(json!({"a": [1, {"b/c": "\u{0}"}]})), "/a/1/b~1c");
        assert_eq!(at(json!({"k\u{0}": 1})), "/k\u{0}");
        assert_eq!(at(json!("\u{0}")), "/");
    }

    #[test]
    fn targets_with_nul_or_broken_utf8_are_named() {
        assert_eq!(
            unstorable_target("/dsp/negotiations/a%20b", "limit=5&x"),
            None
        );
        assert_eq!(
            unstorable_target("/dsp/negotiations/a%00b", "").as_deref(),
            Some("the path")
        );
        assert_eq!(
            unstorable_target("/api/v1/assets/%FF", "").as_deref(),
            Some("the path")
        );
        assert_eq!(
            unstorable_target("/api/v1/assets", "limit=5&cursor=a%00").as_deref(),
            Some("the query parameter `cursor`")
        );
        assert_eq!(percent_decode("a%2fb%zz%4"), b"a/b%zz%4");
    }
}
