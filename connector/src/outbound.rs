//! Outbound HTTP, in one place: the clients every outbound call uses (sharing one trust store, the system
//! bundle plus `[tls] ca_files`, built on the first outbound call rather than at start-up), and readable
//! descriptions of failed requests.
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
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::config::Config;
use crate::tls::TlsError;

const USER_AGENT: &str = concat!("caap/", env!("CARGO_PKG_VERSION"));

/// A connection idle this long is not used again: closed instead. Servers close idle keep-alive
/// connections after a few seconds (Node.js advertises 5 s and closes at 6, actix-web and Apache after 5),
/// and a request sent on one as the server closes it fails with "connection closed before message
/// completed", indistinguishable from a real failure. Measured against the tests' Node.js OIDC provider: 4
/// of 120 token requests sent 5.94–6.06 s after the previous one failed so with the pool's default (90 s),
/// none with 4 s; a citizen's portal login in CI most likely failed this way. Below those servers'
/// timeouts, a burst of messages to one peer still shares its connection.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(4);

/// What every HTTP client of caap's starts from (the connector's three, the CLI's, the demo's citizen
/// browser): caap's user agent and [`IDLE_CONNECTION_TIMEOUT`].
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .pool_idle_timeout(IDLE_CONNECTION_TIMEOUT)
}

/// Why the outbound clients could not be set up.
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
    pub protocol: Http,
    /// Data flows: connect and read timeouts, no total timeout.
    pub streaming: Http,
    /// DID documents and status lists: a short total timeout, no redirects, public addresses only
    /// (unless [`Settings::private`] allows them).
    pub fetch: Http,
}

/// How the clients time out, and which private addresses fetches may reach.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Total time of a protocol request; how long a data flow may stay silent.
    pub timeout: Duration,
    /// Total time of a DID document or status-list fetch.
    pub fetch_timeout: Duration,
    /// Connecting, for every client.
    pub connect_timeout: Duration,
    /// How long a connection may sit idle in a client's pool and still be used again
    /// ([`IDLE_CONNECTION_TIMEOUT`]).
    pub idle_timeout: Duration,
    /// Which non-public addresses fetches may reach.
    pub private: PrivateHosts,
}

/// Which hosts fetches (DID documents, status lists, callers' credential services) may reach on loopback,
/// private or link-local addresses.
#[derive(Debug, Clone, Default)]
pub struct PrivateHosts {
    /// DEVELOPMENT ONLY (`identity.insecure_did_web_over_http`): any.
    pub any: bool,
    /// These host names or addresses (`identity.allowed_private_hosts`), lower case.
    pub allowed: Arc<[String]>,
}

impl PrivateHosts {
    /// The policy of `config`.
    pub fn of(config: &Config) -> Self {
        PrivateHosts {
            any: config.identity.insecure_did_web_over_http,
            allowed: config
                .identity
                .allowed_private_hosts
                .iter()
                .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
                .collect(),
        }
    }

    fn allows(&self, host: &str) -> bool {
        self.any
            || self
                .allowed
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host.trim_matches(['[', ']'])))
    }

    /// `Err` when `url`'s host is an IP address that is not public and not allowed (names are checked when
    /// they are resolved, by the fetch client's resolver).
    pub fn check_url(&self, url: &str) -> Result<(), PrivateAddress> {
        let ip = url::Url::parse(url).ok().and_then(|u| match u.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        });
        match ip {
            Some(ip) if !is_public(ip) && !self.allows(&ip.to_string()) => {
                Err(PrivateAddress(ip.to_string()))
            }
            _ => Ok(()),
        }
    }
}

impl Settings {
    /// The settings of `config` (`[limits]`, `identity.insecure_did_web_over_http`).
    pub fn of(config: &Config) -> Self {
        Settings {
            timeout: Duration::from_secs(config.limits.outbound_timeout_secs),
            fetch_timeout: Duration::from_secs(config.limits.attempt_timeout_secs),
            connect_timeout: Duration::from_secs(config.limits.connect_timeout_secs),
            idle_timeout: IDLE_CONNECTION_TIMEOUT,
            private: PrivateHosts::of(config),
        }
    }
}

impl Clients {
    /// The clients for `config`: its [`Settings`], the trust roots of `tls.ca_files` (read and checked now,
    /// so an unusable file stops the start; the system's trust store is read on the first outbound call).
    pub fn new(config: &Config) -> Result<Self, OutboundError> {
        let roots = crate::tls::trust_roots(config)?;
        check_tls_library()?;
        Ok(Self::with_roots(Settings::of(config), roots))
    }

    /// The clients with `settings` and the extra trust `roots`. The three share one TLS set-up, made when the
    /// first of them is first used: reading the system's CA bundle (twice: OpenSSL's default paths, then
    /// native-tls's probe) is most of what a start would otherwise cost, in time and memory, and a connector
    /// that never calls out never pays it.
    pub fn with_roots(settings: Settings, roots: Vec<native_tls::Certificate>) -> Self {
        let shared = Arc::new(Shared {
            settings,
            roots,
            tls: std::sync::Mutex::new(None),
        });
        let http = |kind| {
            Http(Arc::new(Inner::Lazy {
                client: OnceLock::new(),
                kind,
                shared: shared.clone(),
            }))
        };
        Clients {
            protocol: http(Kind::Protocol),
            streaming: http(Kind::Streaming),
            fetch: http(Kind::Fetch),
        }
    }
}

/// Whether the TLS library can make a client context at all (its configuration loads, the cipher list
/// applies), without reading any trust store: what could fail in the lazy set-up, checked at start.
fn check_tls_library() -> Result<(), OutboundError> {
    let refused = |e: openssl::error::ErrorStack| OutboundError::Client(e.to_string());
    let mut ctx =
        openssl::ssl::SslContext::builder(openssl::ssl::SslMethod::tls()).map_err(refused)?;
    // The cipher list `openssl::ssl::SslConnector` (under native-tls) sets.
    ctx.set_cipher_list("DEFAULT:!aNULL:!eNULL:!MD5:!3DES:!DES:!RC4:!IDEA:!SEED:!aDSS:!SRP:!PSK")
        .map_err(refused)
}

/// One outbound client, cheap to clone, dereferencing to a `reqwest::Client` that is built on its first
/// use (all of a connector's clients then share one TLS set-up). That first use blocks its thread while the
/// system's trust store is read (about 40 ms of CPU, once per connector). Tests and tools wrap a ready client
/// with `From`.
#[derive(Clone)]
pub struct Http(Arc<Inner>);

enum Inner {
    Ready(reqwest::Client),
    Lazy {
        client: OnceLock<reqwest::Client>,
        kind: Kind,
        shared: Arc<Shared>,
    },
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Protocol,
    Streaming,
    Fetch,
}

/// What a connector's clients share: their settings, the extra roots, and the TLS set-up once made.
struct Shared {
    settings: Settings,
    roots: Vec<native_tls::Certificate>,
    tls: std::sync::Mutex<Option<native_tls::TlsConnector>>,
}

impl Shared {
    /// The TLS set-up, made by the first client built (under the lock, so the trust store is read once).
    fn tls(&self) -> Result<native_tls::TlsConnector, OutboundError> {
        let mut tls = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tls) = &*tls {
            return Ok(tls.clone());
        }
        let mut builder = native_tls::TlsConnector::builder();
        for root in &self.roots {
            builder.add_root_certificate(root.clone());
        }
        let built = builder
            .build()
            .map_err(|e| OutboundError::Client(e.to_string()))?;
        Ok(tls.insert(built).clone())
    }

    fn client(&self, kind: Kind) -> Result<reqwest::Client, OutboundError> {
        let settings = &self.settings;
        let mut builder = client_builder()
            .tcp_nodelay(true)
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(settings.idle_timeout)
            .tls_backend_preconfigured(self.tls()?);
        builder = match kind {
            Kind::Protocol => builder.timeout(settings.timeout),
            Kind::Streaming => builder.read_timeout(settings.timeout),
            Kind::Fetch => {
                let fetch = builder
                    .timeout(settings.fetch_timeout)
                    .redirect(reqwest::redirect::Policy::none());
                if settings.private.any {
                    fetch
                } else {
                    fetch.dns_resolver(Arc::new(PublicOnly(settings.private.clone())))
                }
            }
        };
        builder
            .build()
            .map_err(|e| OutboundError::Client(e.to_string()))
    }
}

impl std::ops::Deref for Http {
    type Target = reqwest::Client;

    /// The client, built now if this is its first use.
    fn deref(&self) -> &reqwest::Client {
        match &*self.0 {
            Inner::Ready(client) => client,
            Inner::Lazy {
                client,
                kind,
                shared,
            } => client.get_or_init(|| match shared.client(*kind) {
                Ok(client) => client,
                Err(e) => {
                    // Only when the TLS library runs out of memory: what could fail otherwise
                    // (`tls.ca_files`, the library's configuration) was checked at start.
                    tracing::error!(error = %e, "cannot build an outbound HTTP client; stopping");
                    std::process::abort()
                }
            }),
        }
    }
}

impl From<reqwest::Client> for Http {
    fn from(client: reqwest::Client) -> Self {
        Http(Arc::new(Inner::Ready(client)))
    }
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0 {
            Inner::Ready(_) => f.write_str("Http(ready)"),
            Inner::Lazy { client, kind, .. } => f
                .debug_struct("Http")
                .field("kind", kind)
                .field("built", &client.get().is_some())
                .finish(),
        }
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
    "`{0}` is a loopback, private or link-local address, which is refused (identity.allowed_private_hosts allows named hosts; identity.insecure_did_web_over_http any, for development)"
)]
pub struct PrivateAddress(pub String);

/// The fetch client's resolver: the system's, keeping only public addresses unless the host is allowed (a
/// name that resolves only to others is refused; the connection is never tried).
#[derive(Debug, Clone)]
struct PublicOnly(PrivateHosts);

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allowed = self.0.allows(&host);
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allowed || is_public(a.ip()))
                .collect();
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
pub(crate) mod tests {
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

    fn settings(private: PrivateHosts) -> Settings {
        Settings {
            timeout: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            idle_timeout: IDLE_CONNECTION_TIMEOUT,
            private,
        }
    }

    /// A keep-alive HTTP/1.1 host that answers every request with 204 and counts the connections it accepts.
    async fn keep_alive_host() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let mut seen = Vec::new();
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            let answer =
                                "HTTP/1.1 204 No Content\r\nKeep-Alive: timeout=60\r\n\r\n";
                            if socket.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (port, accepted)
    }

    #[tokio::test]
    async fn an_idle_connection_is_used_again_only_within_the_idle_timeout() {
        let (port, accepted) = keep_alive_host().await;
        let clients = Clients::with_roots(
            Settings {
                idle_timeout: Duration::from_millis(1000),
                ..settings(PrivateHosts::default())
            },
            vec![],
        );
        let url = format!("http://127.0.0.1:{port}/");
        let get = || async { clients.protocol.get(&url).send().await.unwrap().status() };
        let connections = || accepted.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(get().await, 204);
        assert_eq!(get().await, 204);
        assert_eq!(
            connections(),
            1,
            "a connection idle for a moment is used again"
        );
        // Idle longer than the timeout (the host would keep it for 60 s): a new connection.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(get().await, 204);
        assert_eq!(
            connections(),
            2,
            "a connection idle past the timeout is not used again"
        );
    }

    fn allowing(hosts: &[&str]) -> PrivateHosts {
        PrivateHosts {
            any: false,
            allowed: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    #[test]
    fn every_kind_of_client_builds() {
        check_tls_library().unwrap();
        let clients = Clients::with_roots(settings(PrivateHosts::default()), vec![]);
        // Nothing is built (no trust store read) until a client is first used.
        assert!(format!("{clients:?}").contains("built: false"));
        let _ = (&*clients.protocol, &*clients.streaming, &*clients.fetch);
        assert!(!format!("{clients:?}").contains("built: false"));
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
        let none = PrivateHosts::default();
        assert!(none.check_url("http://127.0.0.1:8080/did.json").is_err());
        assert!(none.check_url("https://[fe80::1]/did.json").is_err());
        assert!(none.check_url("https://example.com/did.json").is_ok());
        let some = allowing(&["10.0.0.5", "::1"]);
        assert!(some.check_url("https://10.0.0.5/did.json").is_ok());
        assert!(some.check_url("https://[::1]:8443/did.json").is_ok());
        assert!(some.check_url("https://10.0.0.6/did.json").is_err());
    }

    /// A listener that counts the connections it accepts and never answers.
    pub(crate) async fn hung_host() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
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

    /// A fetch of `localhost:{port}` (the hung host) under `private`: its error and how many connections the
    /// host saw.
    async fn fetch_hung_localhost(private: PrivateHosts) -> (reqwest::Error, usize) {
        let (port, accepted) = hung_host().await;
        let clients = Clients::with_roots(settings(private), vec![]);
        let e = clients
            .fetch
            .get(format!("http://localhost:{port}/.well-known/did.json"))
            .send()
            .await
            .unwrap_err();
        (e, accepted.load(std::sync::atomic::Ordering::SeqCst))
    }

    #[tokio::test]
    async fn fetches_never_connect_to_names_resolving_to_loopback() {
        let (e, accepted) = fetch_hung_localhost(allowing(&["intranet.example"])).await;
        let why = describe_reqwest(&e);
        assert!(why.contains("loopback, private or link-local"), "{why}");
        assert_eq!(accepted, 0);
    }

    #[tokio::test]
    async fn a_hung_host_is_given_up_on_after_the_fetch_timeout() {
        // localhost allowed by name, so the request is sent and never answered.
        let (e, accepted) = fetch_hung_localhost(allowing(&["localhost"])).await;
        assert!(e.is_timeout(), "{}", describe_reqwest(&e));
        assert_eq!(accepted, 1);
    }
}
