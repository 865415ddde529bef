//! `ServiceError`: why a service call failed, one variant per kind of answer (mapped to HTTP in one
//! place, `http::errors`). It sits below every service so that services can use it without
//! importing each other.

use caap_catalog::{CatalogFault, FieldError};
use serde_json::Value;

use crate::store::StoreError;

/// Why a service call failed; one variant per kind of answer.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input is malformed (syntax, types, unknown fields): 400.
    #[error("{0}")]
    BadRequest(String, Vec<FieldError>),
    /// The input is well-formed but its values are wrong: 422.
    #[error("{0}")]
    Invalid(String, Vec<FieldError>),
    /// No such thing: 404.
    #[error("{0}")]
    NotFound(String),
    /// It exists already, changed meanwhile, or is in use: 409.
    #[error("{0}")]
    Conflict(String),
    /// The byte range asked for starts past the end of the data: 416.
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// Another connector failed or answered something unusable: 502.
    #[error("{0}")]
    Upstream(String),
    /// Something broke on our side; the cause is logged, not shown: 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// One field error.
    pub fn field(pointer: &str, message: impl Into<String>) -> Self {
        let e = FieldError::new(pointer, message);
        ServiceError::Invalid(e.to_string(), vec![e])
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ServiceError::NotFound(e.to_string()),
            StoreError::Conflict(_) | StoreError::InUse { .. } => {
                ServiceError::Conflict(e.to_string())
            }
            StoreError::MissingRef { ref pointer, .. } => {
                let fe = FieldError::new(pointer.clone(), e.to_string());
                ServiceError::Invalid(e.to_string(), vec![fe])
            }
            StoreError::Db(_) | StoreError::Corrupt(..) => ServiceError::Internal(e.to_string()),
        }
    }
}

impl From<CatalogFault> for ServiceError {
    fn from(e: CatalogFault) -> Self {
        match e {
            CatalogFault::BadRequest(m) => ServiceError::BadRequest(m, vec![]),
            CatalogFault::NotFound(m) => ServiceError::NotFound(m),
            CatalogFault::Store(m) => ServiceError::Internal(m),
        }
    }
}

/// The absolute `http://` or `https://` URL in the field at `pointer`, or a 400 naming the field (a
/// counterparty's address, a push target: refused on input, not when the processor first uses it).
pub fn http_url(pointer: &str, value: &str) -> Result<url::Url, ServiceError> {
    let bad = |why: String| {
        let fe = FieldError::new(pointer, why);
        ServiceError::BadRequest(format!("the body does not fit: {fe}"), vec![fe])
    };
    let url = url::Url::parse(value).map_err(|e| bad(format!("`{value}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!(
            "`{value}` is not an http:// or https:// URL with a host"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("an address must not carry credentials".into()));
    }
    Ok(url)
}

/// `value` with every number that has a zero fraction (`30.0`) as the integer it is: to JSON Schema (and so
/// to the OpenAPI description) `30.0` is an integer, so an integer field must take it.
fn whole_numbers(value: &Value) -> std::borrow::Cow<'_, Value> {
    fn has_whole_float(v: &Value) -> bool {
        match v {
            Value::Number(n) => n.is_f64() && n.as_f64().is_some_and(|f| f.fract() == 0.0),
            Value::Array(a) => a.iter().any(has_whole_float),
            Value::Object(o) => o.values().any(has_whole_float),
            _ => false,
        }
    }
    fn convert(v: &mut Value) {
        match v {
            Value::Number(n) => {
                let whole = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15);
                #[allow(clippy::cast_possible_truncation, reason = "whole and within ±2^53")]
                if let Some(f) = whole {
                    *v = Value::from(f as i64);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(convert),
            Value::Object(o) => o.values_mut().for_each(convert),
            _ => {}
        }
    }
    if !has_whole_float(value) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut owned = value.clone();
    convert(&mut owned);
    std::borrow::Cow::Owned(owned)
}

/// Deserializes `body` into `T`, naming the path of the first field that does not fit. A number with a zero
/// fraction counts as an integer.
pub fn decode<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, ServiceError> {
    serde_path_to_error::deserialize::<_, T>(whole_numbers(body).as_ref()).map_err(|e| {
        let path = e.path().to_string();
        let pointer = if path == "." {
            String::new()
        } else {
            format!("/{}", path.replace('.', "/"))
        };
        let fe = FieldError::new(pointer, e.into_inner().to_string());
        ServiceError::BadRequest(format!("the body does not fit: {fe}"), vec![fe])
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_number_with_a_zero_fraction_is_an_integer_to_decode() {
        #[derive(serde::Deserialize)]
        struct Wait {
            secs: u32,
            ratio: f64,
        }
        let w: Wait = super::decode(&json!({"secs": 30.0, "ratio": 2.0})).unwrap();
        assert_eq!((w.secs, w.ratio), (30, 2.0));
        assert!(super::decode::<Wait>(&json!({"secs": 30.5, "ratio": 1})).is_err());
    }
}
