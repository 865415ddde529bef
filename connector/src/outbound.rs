//! Outbound HTTP, in one place: the clients every outbound call uses (built once at start-up, sharing the
//! trust store of the system bundle plus `[tls] ca_files`), and readable descriptions of failed requests.
//!
//! Three kinds of client, each cheap to clone:
//! * [`Clients::protocol`]: messages to other connectors, credential services, issuers, OIDC providers
//!   (a total timeout);
//! * [`Clients::streaming`]: data flows that may run for hours (no total timeout; connecting and every
//!   read must make progress within the timeout);
//! * [`Clients::fetch`]: DID documents and status lists (a total timeout, no redirects).

use std::time::Duration;

use crate::config::Config;
use crate::tls::TlsError;

const USER_AGENT: &str = concat!("caap/", env!("CARGO_PKG_VERSION"));

/// Why the outbound clients could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// A trust root in `[tls] ca_files` is unusable.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// The TLS library refused the set-up.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// The outbound HTTP clients of one connector.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Protocol messages: a total timeout.
    pub protocol: reqwest::Client,
    /// Data flows: connect and read timeouts, no total timeout.
    pub streaming: reqwest::Client,
    /// DID documents and status lists: a total timeout, no redirects.
    pub fetch: reqwest::Client,
}

impl Clients {
    /// The clients for `config`: `limits.outbound_timeout_secs`, the trust roots of `tls.ca_files`.
    pub fn new(config: &Config) -> Result<Self, OutboundError> {
        let roots = crate::tls::trust_roots(config)?;
        Self::with_roots(
            Duration::from_secs(config.limits.outbound_timeout_secs),
            roots,
        )
    }

    /// The clients with `timeout` and the extra trust `roots` (read once, shared by every client).
    pub fn with_roots(
        timeout: Duration,
        roots: Vec<reqwest::Certificate>,
    ) -> Result<Self, OutboundError> {
        let base = || {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .tcp_nodelay(true)
                .tls_certs_merge(roots.clone())
        };
        let build =
            |b: reqwest::ClientBuilder| b.build().map_err(|e| OutboundError::Client(e.to_string()));
        Ok(Clients {
            protocol: build(base().timeout(timeout))?,
            streaming: build(base().connect_timeout(timeout).read_timeout(timeout))?,
            fetch: build(
                base()
                    .timeout(timeout)
                    .redirect(reqwest::redirect::Policy::none()),
            )?,
        })
    }
}

/// A failed request, readably: timeouts and refused connections by name, and the whole cause chain (so a
/// TLS failure says "certificate verify failed", not "error sending request").
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let detail = describe(e);
    if e.is_timeout() {
        format!("timed out ({detail})")
    } else if e.is_connect() {
        format!("cannot connect ({detail})")
    } else {
        detail
    }
}

/// An error with its causes, so a TLS failure reads as what it is ("certificate verify failed",
/// "self-signed certificate") rather than "error sending request".
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !more.is_empty() && !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    let lower = text.to_lowercase();
    if lower.contains("certificate") && !lower.contains("tls.ca_files") {
        text.push_str(
            " (the peer's TLS certificate is not trusted: add its certificate or CA to tls.ca_files)",
        );
    }
    text
}

/// An HTTP failure towards an OAuth2 token endpoint, for the oauth2 crate.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OAuthHttpError(String);

/// The oauth2 crate's HTTP seam over one of our clients: sends its request and returns the answer whole
/// (used for protected data sources and by the CLI's client-credentials login).
pub async fn oauth2_send(
    http: reqwest::Client,
    req: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, OAuthHttpError> {
    let failed = |e: &dyn std::fmt::Display| OAuthHttpError(e.to_string());
    let (parts, body) = req.into_parts();
    let res = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| failed(&e))?;
    let mut builder = http::Response::builder().status(res.status());
    for (k, v) in res.headers() {
        builder = builder.header(k, v);
    }
    let bytes = res.bytes().await.map_err(|e| failed(&e))?;
    builder.body(bytes.to_vec()).map_err(|e| failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_walks_the_causes() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("error sending request")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("certificate verify failed"));
        let text = describe(&e);
        assert!(
            text.starts_with("error sending request: certificate verify failed"),
            "{text}"
        );
        assert!(text.contains("tls.ca_files"), "{text}");
    }

    #[test]
    fn every_kind_of_client_builds() {
        let clients = Clients::with_roots(Duration::from_secs(5), vec![]).unwrap();
        let _ = (clients.protocol, clients.streaming, clients.fetch);
    }
}
