//! HTTP GET for DID documents and status lists: no redirects, a size limit, JSON accepted; hosts that are
//! not public refused (outside development), and failures remembered briefly so that a token naming an
//! unreachable host costs one attempt, not one per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use tokio::time::Instant;

use caap_identity::auth::BoxFuture;
use caap_identity::resolve::{FetchError, HttpGet, HttpResponse};
use futures_util::StreamExt;

/// At most this many failures are remembered (the oldest are forgotten first).
const MAX_FAILURES: usize = 4096;

/// HTTP GET for DID documents and status lists: no redirects, a size limit, JSON accepted.
#[derive(Debug, Clone)]
pub struct HttpFetch {
    client: crate::outbound::Http,
    max_bytes: usize,
    private: crate::outbound::PrivateHosts,
    failure_ttl: StdDuration,
    failures: Arc<Mutex<HashMap<String, (Instant, String)>>>,
}

impl HttpFetch {
    /// A fetcher over `client` (see [`crate::outbound::Clients::fetch`]), reading at most `max_bytes`,
    /// refusing IP addresses that are not public unless `private` allows them (names are checked by the
    /// client's resolver), and answering a failed URL's failure again for `failure_ttl` without a request.
    pub fn new(
        client: crate::outbound::Http,
        max_bytes: usize,
        private: crate::outbound::PrivateHosts,
        failure_ttl: StdDuration,
    ) -> Self {
        HttpFetch {
            client,
            max_bytes,
            private,
            failure_ttl,
            failures: Arc::default(),
        }
    }

    /// The client for `url`, a host some caller named (a credential service): refused when its host is an IP
    /// address that is not public (outside development; names are checked by the client's resolver).
    pub fn client_for(
        &self,
        url: &str,
    ) -> Result<&reqwest::Client, crate::outbound::PrivateAddress> {
        self.private.check_url(url)?;
        Ok(&*self.client)
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, String)>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The failure of `url` remembered until after now, if any.
    fn remembered(&self, url: &str) -> Option<FetchError> {
        let failures = self.failures();
        let (until, why) = failures.get(url)?;
        (*until > Instant::now())
            .then(|| FetchError(format!("{why} (failed moments ago; not retried yet)")))
    }

    fn remember(&self, url: &str, why: &str) {
        if self.failure_ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut failures = self.failures();
        failures.retain(|_, (until, _)| *until > now);
        while failures.len() >= MAX_FAILURES {
            let oldest = failures
                .iter()
                .min_by_key(|(_, (until, _))| *until)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => failures.remove(&k),
                None => break,
            };
        }
        failures.insert(url.to_owned(), (now + self.failure_ttl, why.to_owned()));
    }

    async fn fetch(&self, url: &str) -> Result<HttpResponse, FetchError> {
        let res = self
            .client_for(url)
            .map_err(|e| FetchError(e.to_string()))?
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
            if let Some(e) = self.remembered(url) {
                return Err(e);
            }
            let answer = self.fetch(url).await;
            if let Err(e) = &answer {
                self.remember(url, &e.0);
            }
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn a_failure_is_remembered_and_not_retried_at_once() {
        let (port, accepted) = crate::outbound::tests::hung_host().await;
        let client = reqwest::Client::builder()
            .timeout(StdDuration::from_millis(500))
            .build()
            .unwrap();
        let any = crate::outbound::PrivateHosts {
            any: true,
            ..Default::default()
        };
        let fetch = HttpFetch::new(client.into(), 1024, any, StdDuration::from_secs(600));
        let url = format!("http://127.0.0.1:{port}/.well-known/did.json");
        let first = fetch.get(&url).await.unwrap_err();
        assert!(first.0.contains("timed out"), "{}", first.0);
        for _ in 0..5 {
            let again = fetch.get(&url).await.unwrap_err();
            assert!(again.0.contains("not retried yet"), "{}", again.0);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn private_addresses_are_refused_without_a_request() {
        let fetch = HttpFetch::new(
            reqwest::Client::new().into(),
            1024,
            crate::outbound::PrivateHosts::default(),
            StdDuration::ZERO,
        );
        for url in [
            "http://127.0.0.1:9/did.json",
            "https://10.0.0.1/did.json",
            "https://169.254.169.254/latest/meta-data",
        ] {
            let e = fetch.get(url).await.unwrap_err();
            assert!(
                e.0.contains("loopback, private or link-local"),
                "{url}: {}",
                e.0
            );
        }
    }
}
