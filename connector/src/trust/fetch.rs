//! HTTP GET for DID documents and status lists: no redirects, a size limit, JSON accepted.

use std::time::Duration as StdDuration;

use caap_identity::auth::BoxFuture;
use caap_identity::resolve::{FetchError, HttpGet, HttpResponse};
use futures_util::StreamExt;

/// HTTP GET for DID documents and status lists: no redirects, a size limit, JSON accepted.
#[derive(Debug, Clone)]
pub struct HttpFetch {
    client: reqwest::Client,
    max_bytes: usize,
}

impl HttpFetch {
    /// A fetcher over `client` (see [`crate::outbound::Clients::fetch`]), reading at most `max_bytes`.
    pub fn new(client: reqwest::Client, max_bytes: usize) -> Self {
        HttpFetch { client, max_bytes }
    }
}

fn max_age(headers: &reqwest::header::HeaderMap) -> Option<StdDuration> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').find_map(|d| {
        let d = d.trim();
        if d == "no-store" || d == "no-cache" {
            return Some(StdDuration::ZERO);
        }
        d.strip_prefix("max-age=")?
            .parse()
            .ok()
            .map(StdDuration::from_secs)
    })
}

impl HttpGet for HttpFetch {
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<HttpResponse, FetchError>> {
        Box::pin(async move {
            let res = self
                .client
                .get(url)
                .header(
                    reqwest::header::ACCEPT,
                    "application/did+json, application/json, application/vc+jwt, */*;q=0.1",
                )
                .send()
                .await
                .map_err(|e| FetchError(crate::outbound::describe_reqwest(&e)))?;
            let status = res.status().as_u16();
            let max_age = max_age(res.headers());
            let mut body = Vec::new();
            let mut stream = res.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| FetchError(format!("reading the body: {e}")))?;
                if body.len() + chunk.len() > self.max_bytes {
                    return Err(FetchError(format!(
                        "the body is larger than {} bytes",
                        self.max_bytes
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(HttpResponse {
                status,
                body,
                max_age,
            })
        })
    }
}
