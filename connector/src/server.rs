//! Start-up and shutdown: open the store, load the identity, bind both listeners, serve until told
//! to stop. Several connectors can run in one process (the demo and the tests do).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::HttpServer;
use actix_web::dev::ServerHandle;
use caap_identity::{
    DspAuthenticator, OutboundCredentials, ParticipantKey, StaticTokens, did_web_from_url,
};

use crate::clock::{Clock, SystemClock};
use crate::config::{AuthMode, Config};
use crate::http::errors::Listener;
use crate::http::guard::PerAddress;
use crate::service::{Connector, Identity};
use crate::store::Store;

/// Why a connector could not start. Each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A port could not be bound.
    #[error("cannot listen on {addr} ({key}): {source}; free the port or change {key}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The config key.
        key: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The key file is missing or unreadable.
    #[error("cannot use the key file {path}: {message}; run `caap init` to create one")]
    Key {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The TLS certificate, key or trust roots are unusable.
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The outbound HTTP clients cannot be built.
    #[error("{0}")]
    Outbound(#[from] crate::outbound::OutboundError),
    /// The database could not be opened or migrated.
    #[error("cannot open the database: {0}; check database.url")]
    Store(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A started connector.
#[derive(Debug)]
pub struct Running {
    /// The shared state (for in-process callers such as the demo).
    pub connector: Connector,
    /// Where the DSP listener listens.
    pub dsp_addr: SocketAddr,
    /// Where the management API listens.
    pub api_addr: SocketAddr,
    /// Where the citizen portal listens (`[portal] enabled`), and its public URL.
    pub portal: Option<(SocketAddr, String)>,
    dsp: ServerHandle,
    api: ServerHandle,
    portal_server: Option<ServerHandle>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    processor: tokio::task::JoinHandle<()>,
    stop_processor: tokio::sync::watch::Sender<bool>,
}

fn bind(addr: SocketAddr, key: &'static str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, key, source })
}

fn workers(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(4)
    }
}

/// Starts a connector from its configuration (must run inside a tokio/actix runtime).
pub async fn start(config: Config) -> Result<Running, StartError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dsp_listener = bind(config.dsp.bind, "dsp.bind")?;
    let api_listener = bind(config.api.bind, "api.bind")?;
    let dsp_addr = dsp_listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?;
    let api_addr = api_listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?;

    let tls_acceptor = crate::tls::acceptor(&config)?;
    // The outbound clients read the system's trust store on their first call, not here (see `outbound`).
    let clients = crate::outbound::Clients::new(&config)?;
    let key_path = config.key_path();
    let key_json = std::fs::read_to_string(&key_path).map_err(|e| StartError::Key {
        path: key_path.display().to_string(),
        message: e.to_string(),
    })?;
    let key = ParticipantKey::from_jwk_json(&key_json).map_err(|e| StartError::Key {
        path: key_path.display().to_string(),
        message: e.to_string(),
    })?;
    let public_url = config
        .participant
        .public_url
        .clone()
        .unwrap_or_else(|| {
            let scheme = if tls_acceptor.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{dsp_addr}")
        })
        .trim_end_matches('/')
        .to_owned();
    let participant_id = match &config.participant.id {
        Some(id) => id.clone(),
        None => did_web_from_url(&public_url).map_err(|e| StartError::Other(e.to_string()))?,
    };
    let identity = Identity {
        dsp_base: format!("{public_url}{}", config.dsp.path),
        participant_id,
        name: config.participant.name.clone(),
        public_url,
        key,
    };
    let store = Store::open_with(
        &config.database_url(),
        config.database.max_connections,
        config.database.sqlite_cache_kib,
        clock.clone(),
    )
    .await
    .map_err(|e| StartError::Store(e.to_string()))?
    .with_ledger_seal(crate::store::ledger_head::LedgerSeal::new(
        identity.key.clone(),
        Some(config.data_dir.join(crate::store::ledger_head::HEAD_FILE)),
    ));
    let http = clients.protocol.clone();
    let http_streaming = clients.streaming.clone();
    let fetch = crate::trust::HttpFetch::new(
        clients.fetch.clone(),
        1024 * 1024,
        crate::outbound::PrivateHosts::of(&config),
        std::time::Duration::from_secs(config.limits.failure_cache_secs),
    );
    let trust = Arc::new(
        crate::trust::dcp::Trust::new(
            &config,
            &identity.participant_id,
            &identity.public_url,
            identity.key.clone(),
            clock.clone(),
            store.clone(),
            http.clone(),
            fetch,
        )
        .map_err(|e| StartError::Key {
            path: key_path.display().to_string(),
            message: e.to_string(),
        })?,
    );
    // Agreements and pull tokens are signed with the same key, under its DID URL.
    let identity = Identity {
        key: trust.key().clone(),
        ..identity
    };
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let (authenticator, outbound): (Arc<dyn DspAuthenticator>, Arc<dyn OutboundCredentials>) =
        match config.dsp.auth.mode {
            AuthMode::StaticToken => {
                tracing::warn!(
                    "dsp.auth.mode = static-token: DSP callers are checked against a token table, not \
                     credentials (for the DSP TCK and tests only)"
                );
                let tokens = Arc::new(StaticTokens::new(
                    config.dsp.auth.tokens.clone(),
                    config.dsp.auth.outbound_token.clone(),
                ));
                (tokens.clone(), tokens)
            }
            AuthMode::Dcp => (
                Arc::new(crate::trust::dcp::DcpAuthenticator(
                    trust.clone(),
                    metrics.clone(),
                )),
                Arc::new(trust.outbound()),
            ),
        };
    if config.identity.insecure_did_web_over_http {
        tracing::warn!(
            "identity.insecure_did_web_over_http = true: did:web DIDs on loopback are resolved over plain \
             HTTP. DEVELOPMENT ONLY: anyone on the path could swap the keys"
        );
    }
    if config.dsp.auth.mode == AuthMode::Dcp && config.identity.trusted_issuers.is_empty() {
        tracing::warn!(
            "no identity.trusted_issuers: every caller will be refused; add the federation authority's DID"
        );
    }
    let oidc = config.api.oidc.clone().map(|c| {
        tracing::info!(issuer = %c.issuer, audience = %c.audience, "the management API also accepts OIDC access tokens");
        Arc::new(crate::trust::oidc::OidcVerifier::new(
            c,
            http.clone(),
            clock.clone(),
        ))
    });
    let pull_tokens =
        caap_identity::pull_token::PullTokens::new(identity.key.clone()).map_err(|e| {
            StartError::Key {
                path: key_path.display().to_string(),
                message: e.to_string(),
            }
        })?;
    let authority = Arc::new(crate::authority::Authority::new(
        config.authority.clone(),
        trust.clone(),
        &identity,
    ));
    let dsp_workers = workers(config.dsp.workers);
    let api_workers = workers(config.api.workers);
    let decider: Arc<dyn caap_policy::PolicyDecider> = Arc::new(crate::metrics::CountedDecider {
        inner: caap_policy::OdrlEvaluator::new(),
        metrics: metrics.clone(),
    });
    let catalog = crate::catalog::CatalogService::new(crate::catalog::CatalogParts {
        store: store.clone(),
        clock: clock.clone(),
        decider: decider.clone(),
        identity: crate::catalog::catalog_identity(
            &identity.participant_id,
            &identity.name,
            &identity.public_url,
            &identity.dsp_base,
        ),
        source_credentials: config
            .source_credentials
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        http: http.clone(),
        outbound: outbound.clone(),
        federation: config.federation.clone(),
    });
    let identity = Arc::new(identity);
    let wake = Arc::new(tokio::sync::Notify::new());
    let consents = crate::consent::Consents::open(
        store.clone(),
        clock.clone(),
        identity.clone(),
        &config,
        wake.clone(),
    )
    .await
    .map_err(|e| StartError::Other(format!("consent: {e}")))?;
    let config_open = config.open_data.clone();
    let connector = Connector {
        config: Arc::new(config),
        store,
        clock,
        authenticator,
        outbound,
        decider,
        identity,
        http,
        http_streaming,
        wake,
        flows: Arc::default(),
        source_tokens: Arc::default(),
        pull_tokens: Arc::new(pull_tokens),
        authority,
        notifications: Arc::default(),
        trust,
        oidc,
        catalog,
        consents: Arc::new(consents),
        open_limits: Arc::new(crate::ratelimit::RateLimiter::new(
            config_open.requests_per_minute,
            config_open.burst,
        )),
        metrics,
    };
    // Withdrawals end the transfers that depended on them (the consent service reports, the transfers act).
    let (withdrawn_tx, mut withdrawn_rx) = tokio::sync::mpsc::unbounded_channel();
    connector.consents.report_withdrawals_to(withdrawn_tx);
    {
        let c = connector.clone();
        actix_web::rt::spawn(async move {
            while let Some(w) = withdrawn_rx.recv().await {
                c.end_transfers_without_consent(&w).await;
            }
        });
    }
    let (stop_processor, stop_rx) = tokio::sync::watch::channel(false);
    let processor = actix_web::rt::spawn(crate::processor::run(
        connector.clone(),
        crate::processor::Instance::of(&connector.config.data_dir),
        stop_rx,
    ));

    #[cfg(feature = "demo")]
    let simulator = connector.config.simulator.enabled.then(|| {
        crate::sim::Simulator::new(
            connector.clock.clone(),
            connector.config.simulator.interval_ms,
            connector.http.clone(),
        )
    });
    let c = connector.clone();
    let per_address = connector.config.limits.max_requests_per_address;
    let limiter = PerAddress::new(per_address, Listener::Dsp);
    let dsp = HttpServer::new(move || {
        #[cfg(feature = "demo")]
        let extra = crate::sim::mount(simulator.clone());
        #[cfg(not(feature = "demo"))]
        let extra = |_: &mut actix_web::web::ServiceConfig| {};
        crate::http::dsp_app(c.clone(), limiter.clone(), extra)
    })
    .workers(dsp_workers)
    .disable_signals()
    .tcp_nodelay(true)
    .shutdown_timeout(10);
    let dsp = match tls_acceptor {
        Some(acceptor) => dsp.listen_openssl(dsp_listener, acceptor),
        None => dsp.listen(dsp_listener),
    };
    let dsp = dsp
        .map_err(|source| StartError::Bind {
            addr: dsp_addr,
            key: "dsp.bind",
            source,
        })?
        .run();
    let c = connector.clone();
    let limiter = PerAddress::new(per_address, Listener::Management);
    let api = HttpServer::new(move || crate::http::api_app(c.clone(), limiter.clone()))
        .workers(api_workers)
        .disable_signals()
        .tcp_nodelay(true)
        .shutdown_timeout(10)
        .listen(api_listener)
        .map_err(|source| StartError::Bind {
            addr: api_addr,
            key: "api.bind",
            source,
        })?
        .run();
    let (dsp_handle, api_handle) = (dsp.handle(), api.handle());
    let mut tasks = vec![actix_web::rt::spawn(dsp), actix_web::rt::spawn(api)];
    let (portal, portal_server) = match start_portal(&connector, portal_backend(&connector))? {
        Some((addr, url, server)) => {
            let handle = server.handle();
            tasks.push(actix_web::rt::spawn(server));
            (Some((addr, url)), Some(handle))
        }
        None => (None, None),
    };
    Ok(Running {
        connector,
        dsp_addr,
        api_addr,
        portal,
        portal_server,
        dsp: dsp_handle,
        api: api_handle,
        tasks,
        processor,
        stop_processor,
    })
}

impl Running {
    /// The management API's base URL.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// The DSP listener's root URL on this machine (`https://` when `[tls]` has a certificate).
    pub fn dsp_url(&self) -> String {
        let scheme = if self.connector.config.tls.serves_https() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.dsp_addr)
    }

    /// Stops both listeners, letting requests in flight finish, then closes the database.
    pub async fn stop(self) {
        let portal = async {
            if let Some(p) = &self.portal_server {
                p.stop(true).await;
            }
        };
        tokio::join!(self.dsp.stop(true), self.api.stop(true), portal);
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = self.stop_processor.send(true);
        let _ = self.processor.await;
        if let Err(e) = self.connector.store.close().await {
            tracing::warn!(error = %e, "closing the database failed");
        }
    }
}

/// The consent service as the citizen portal's backend (without one the portal would log citizens in but
/// say on every page that the service is unavailable).
fn portal_backend(connector: &Connector) -> Option<Arc<dyn crate::portal::backend::PortalBackend>> {
    Some(connector.consents.clone())
}

/// The citizen portal's listener, when `[portal] enabled`: its address, public URL and server.
fn start_portal(
    connector: &Connector,
    backend: Option<Arc<dyn crate::portal::backend::PortalBackend>>,
) -> Result<Option<(SocketAddr, String, actix_web::dev::Server)>, StartError> {
    let config = &connector.config.portal;
    if !config.enabled {
        return Ok(None);
    }
    let listener = bind(config.bind, "portal.bind")?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?;
    if backend.is_none() {
        tracing::warn!("the citizen portal has no consent service behind it: its pages say so");
    }
    let portal = Arc::new(
        crate::portal::Portal::new(crate::portal::PortalParts {
            config: config.clone(),
            city: connector.identity.name.clone(),
            bound: addr,
            data_dir: connector.config.data_dir.clone(),
            backend,
            http: connector.http.clone(),
            clock: connector.clock.clone(),
        })
        .map_err(|e| StartError::Other(e.to_string()))?,
    );
    let url = portal.public_url().to_owned();
    let server = HttpServer::new(move || crate::portal::app(portal.clone()))
        .workers(1)
        .disable_signals()
        .tcp_nodelay(true)
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(|source| StartError::Bind {
            addr,
            key: "portal.bind",
            source,
        })?
        .run();
    Ok(Some((addr, url, server)))
}

/// Resolves when the process is asked to stop (SIGTERM or Ctrl-C).
pub async fn shutdown_signal() {
    listen_for_shutdown().await
}

/// Starts listening for SIGTERM (and Ctrl-C) at once, before the returned future is first polled: a
/// process that says it is ready and is then told to stop at once still stops cleanly.
pub fn listen_for_shutdown() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
