//! Outbound HTTP, in one place: the clients every outbound call uses (built once at start-up, sharing the
//! trust store of the system bundle plus `[tls] ca_files`), and readable descriptions of failed requests.
//!
//! Three kinds of client, each cheap to clone:
//! * [`Clients::protocol`]: messages to other connectors, credential services, issuers, OIDC providers
//!   (a total timeout);
//! * [`Clients::streaming`]: data flows that may run for hours (no total timeout; connecting and every
//!   read must make progress within the timeout);
//! * [`Clients::fetch`]: DID documents and status lists (a short total timeout, no redirects, and, outside
//!   development, only public addresses: a DID or a credential names hosts of the caller's choosing).
//!
//! Every client gives up connecting after `limits.connect_timeout_secs`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
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
    /// DID documents and status lists: a short total timeout, no redirects, public addresses only
    /// (unless [`Settings::private_fetch`]).
    pub fetch: reqwest::Client,
}

/// How the clients time out, and whether fetches may reach private addresses.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Total time of a protocol request; how long a data flow may stay silent.
    pub timeout: Duration,
    /// Total time of a DID document or status-list fetch.
    pub fetch_timeout: Duration,
    /// Connecting, for every client.
    pub connect_timeout: Duration,
    /// DEVELOPMENT ONLY (`identity.insecure_did_web_over_http`): fetches may reach loopback, private and
    /// link-local addresses.
    pub private_fetch: bool,
}

impl Settings {
    /// The settings of `config` (`[limits]`, `identity.insecure_did_web_over_http`).
    pub fn of(config: &Config) -> Self {
        Settings {
            timeout: Duration::from_secs(config.limits.outbound_timeout_secs),
            fetch_timeout: Duration::from_secs(config.limits.attempt_timeout_secs),
            connect_timeout: Duration::from_secs(config.limits.connect_timeout_secs),
            private_fetch: config.identity.insecure_did_web_over_http,
        }
    }
}

impl Clients {
    /// The clients for `config`: its [`Settings`], the trust roots of `tls.ca_files`.
    pub fn new(config: &Config) -> Result<Self, OutboundError> {
        let roots = crate::tls::trust_roots(config)?;
        Self::with_roots(Settings::of(config), roots)
    }

    /// The clients with `settings` and the extra trust `roots` (read once, shared by every client).
    pub fn with_roots(
        settings: Settings,
        roots: Vec<reqwest::Certificate>,
    ) -> Result<Self, OutboundError> {
        let base = || {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .tcp_nodelay(true)
                .connect_timeout(settings.connect_timeout)
                .tls_certs_merge(roots.clone())
        };
        let build =
            |b: reqwest::ClientBuilder| b.build().map_err(|e| OutboundError::Client(e.to_string()));
        let mut fetch = base()
            .timeout(settings.fetch_timeout)
            .redirect(reqwest::redirect::Policy::none());
        if !settings.private_fetch {
            fetch = fetch.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Clients {
            protocol: build(base().timeout(settings.timeout))?,
            streaming: build(base().read_timeout(settings.timeout))?,
            fetch: build(fetch)?,
        })
    }
}

/// True for an address anyone on the internet could reach: not loopback, private, link-local, shared
/// (CGNAT), unspecified, multicast, broadcast, documentation or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// Why a fetch was not even tried: its host is (or resolves only to) a non-public address.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is a loopback, private or link-local address, which is refused (identity.insecure_did_web_over_http allows it for development)"
)]
pub struct PrivateAddress(pub String);

/// `Err` when `url`'s host is an IP address that is not public (names are checked when they are resolved,
/// by the fetch client's resolver).
pub fn refuse_private_literal(url: &str) -> Result<(), PrivateAddress> {
    let host = url::Url::parse(url).ok().and_then(|u| match u.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    });
    match host {
        Some(ip) if !is_public(ip) => Err(PrivateAddress(ip.to_string())),
        _ => Ok(()),
    }
}

/// The fetch client's resolver: the system's, keeping only public addresses (a name that resolves only to
/// others is refused; the connection is never tried).
#[derive(Debug, Clone, Copy)]
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(
                    Box::new(PrivateAddress(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
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

    fn settings(private_fetch: bool) -> Settings {
        Settings {
            timeout: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            private_fetch,
        }
    }

    #[test]
    fn every_kind_of_client_builds() {
        let clients = Clients::with_roots(settings(false), vec![]).unwrap();
        let _ = (clients.protocol, clients.streaming, clients.fetch);
    }

    #[test]
    fn only_public_addresses_are_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        assert!(refuse_private_literal("http://127.0.0.1:8080/did.json").is_err());
        assert!(refuse_private_literal("https://[fe80::1]/did.json").is_err());
        assert!(refuse_private_literal("https://example.com/did.json").is_ok());
    }

    /// A listener that counts the connections it accepts and never answers.
    async fn hung_host() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(socket);
            }
        });
        (port, accepted)
    }

    #[tokio::test]
    async fn fetches_never_connect_to_names_resolving_to_loopback() {
        let (port, accepted) = hung_host().await;
        let clients = Clients::with_roots(settings(false), vec![]).unwrap();
        let e = clients
            .fetch
            .get(format!("http://localhost:{port}/.well-known/did.json"))
            .send()
            .await
            .unwrap_err();
        assert!(
            describe_reqwest(&e).contains("loopback, private or link-local"),
            "{}",
            describe_reqwest(&e)
        );
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_hung_host_is_given_up_on_after_the_fetch_timeout() {
        let (port, accepted) = hung_host().await;
        // Development: loopback allowed, so the request is sent and never answered.
        let clients = Clients::with_roots(settings(true), vec![]).unwrap();
        let e = clients
            .fetch
            .get(format!("http://localhost:{port}/.well-known/did.json"))
            .send()
            .await
            .unwrap_err();
        assert!(e.is_timeout(), "{}", describe_reqwest(&e));
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
