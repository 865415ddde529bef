//! The citizen portal (OASC MIM4): a citizen logs in with the city's e-ID provider and sees, grants,
//! refuses and withdraws consent, and sees who received their data. It talks to the rest of the connector
//! only through [`backend::PortalBackend`], on its own listener (`[portal]`, started by `server`).
//!
//! - `login`: OpenID Connect authorization code flow with PKCE against `[portal.oidc]`.
//! - `session`: sessions (idle and absolute timeouts), logins in progress, cookies, rate limits.
//! - `i18n` and `messages/*.toml`: Swedish (default) and English; every word in a catalog.
//! - `html`, `pages`: server-rendered pages that escape by construction; no JavaScript.
//! - `handlers`: the routes (adapters: extract the citizen, call [`Portal`], render), the security headers.
//! - `demo_idp` (feature `demo`): a development-only OpenID Connect provider for `caap demo`; the portal
//!   uses it like any city's provider.

pub mod backend;
#[cfg(feature = "demo")]
pub mod demo_idp;
mod handlers;
mod html;
pub mod i18n;
mod login;
mod pages;
mod session;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use caap_policy::consent::SubjectHash;
use chrono::Duration;

pub use handlers::app;

use crate::clock::Clock;
use crate::config::PortalConfig;
use backend::{
    ActionContext, ConsentEventView, ConsentStanding, ConsentView, Decision, DeliveryView,
    NoticeView, PortalBackend, PortalError, SharedDataset,
};
use i18n::Messages;
use session::{Flash, Session, Sessions};

/// Why the portal cannot start. Each message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum PortalStartError {
    /// `[portal.oidc]` is missing or unusable.
    #[error("{0}")]
    Config(String),
}

/// Everything the portal is made from.
pub struct PortalParts {
    /// `[portal]`.
    pub config: PortalConfig,
    /// The city's name, shown on every page.
    pub city: String,
    /// The listener's address (for the public URL's default).
    pub bound: std::net::SocketAddr,
    /// Resolves `{ file = … }` client secrets.
    pub data_dir: std::path::PathBuf,
    /// The consent service; `None` while the connector has none (every page then says the service is
    /// unavailable).
    pub backend: Option<Arc<dyn PortalBackend>>,
    /// The HTTP client towards the e-ID provider.
    pub http: crate::outbound::Http,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PortalParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalParts")
            .field("bound", &self.bound)
            .field("backend", &self.backend.is_some())
            .finish_non_exhaustive()
    }
}

/// The portal: sessions, login, and the consent service behind them.
pub struct Portal {
    city: String,
    public_url: String,
    secure: bool,
    provider_origin: String,
    backend: Option<Arc<dyn PortalBackend>>,
    login: login::Login,
    sessions: Sessions,
    login_limit: session::RateLimit,
    action_limit: session::RateLimit,
    messages: Messages,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal")
            .field("public_url", &self.public_url)
            .field("backend", &self.backend.is_some())
            .finish_non_exhaustive()
    }
}

/// A backend answer, or why there is none.
type Found<T> = Result<T, PortalError>;

impl Portal {
    /// Builds the portal from `[portal]`.
    pub fn new(parts: PortalParts) -> Result<Portal, PortalStartError> {
        let PortalParts {
            config,
            city,
            bound,
            data_dir,
            backend,
            http,
            clock,
        } = parts;
        let oidc = config.oidc.clone().ok_or_else(|| {
            PortalStartError::Config(
                "portal.oidc is missing: the portal needs the city's e-ID provider".into(),
            )
        })?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
            .trim_end_matches('/')
            .to_owned();
        let secure = public_url.starts_with("https://");
        let client_secret = match &oidc.client_secret {
            Some(s) => Some(s.resolve(&data_dir).map_err(|e| {
                PortalStartError::Config(format!("portal.oidc.client_secret: {e}"))
            })?),
            None => None,
        };
        let provider_origin = url::Url::parse(&oidc.issuer)
            .map(|u| u.origin().ascii_serialization())
            .map_err(|e| PortalStartError::Config(format!("portal.oidc.issuer: {e}")))?;
        let messages = Messages::builtin(&config.time_zone)
            .map_err(|e| PortalStartError::Config(e.to_string()))?;
        let login = login::Login::new(
            oidc,
            client_secret,
            format!("{public_url}/callback"),
            http,
            clock.clone(),
        );
        Ok(Portal {
            city,
            secure,
            provider_origin,
            backend,
            login,
            sessions: Sessions::new(
                clock.clone(),
                Duration::minutes(i64::try_from(config.session_idle_minutes).unwrap_or(15)),
                Duration::minutes(i64::try_from(config.session_max_minutes).unwrap_or(480)),
            ),
            login_limit: session::RateLimit::per_minute(clock.clone(), config.login_per_minute),
            action_limit: session::RateLimit::per_minute(clock, config.actions_per_minute),
            messages,
            public_url,
        })
    }

    /// The portal's public URL (what citizens open).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    fn backend(&self) -> Found<&dyn PortalBackend> {
        self.backend.as_deref().ok_or(PortalError::Unavailable)
    }

    /// The overview and the number of requests waiting for an answer.
    async fn overview(&self, s: &Session) -> Found<(Vec<SharedDataset>, usize)> {
        let b = self.backend()?;
        let datasets = b.overview(&s.subject).await?;
        let pending = b
            .consents(&s.subject)
            .await?
            .iter()
            .filter(|c| c.standing == ConsentStanding::Requested)
            .count();
        Ok((datasets, pending))
    }

    async fn consents(&self, s: &Session) -> Found<Vec<ConsentView>> {
        self.backend()?.consents(&s.subject).await
    }

    /// One of the citizen's consents, for its confirmation page.
    async fn consent(&self, s: &Session, record: &str) -> Found<ConsentView> {
        self.consents(s)
            .await?
            .into_iter()
            .find(|c| c.id == record)
            .ok_or(PortalError::NotFound)
    }

    /// Grants, refuses or withdraws, recorded with the session's handle; keeps the message for the next
    /// page.
    async fn decide(
        &self,
        s: &Session,
        record: &str,
        decision: Decision,
    ) -> Found<ConsentEventView> {
        let context = ActionContext {
            session: s.handle.clone(),
            method: "portal".into(),
        };
        let event = self
            .backend()?
            .decide(&s.subject, record, decision, context)
            .await?;
        let key = match decision {
            Decision::Grant => "flash.granted",
            Decision::Refuse => "flash.refused",
            Decision::Withdraw => "flash.withdrawn",
        };
        self.sessions.set_flash(
            s.cookie_value(),
            Flash {
                key,
                subject: event.dataset_title.clone(),
            },
        );
        Ok(event)
    }

    async fn history(&self, s: &Session) -> Found<Vec<ConsentEventView>> {
        self.backend()?.history(&s.subject).await
    }

    /// One event of the citizen's history and its signed receipt.
    async fn receipt(
        &self,
        s: &Session,
        record: &str,
        seq: u64,
    ) -> Found<(ConsentEventView, serde_json::Value)> {
        let b = self.backend()?;
        let receipt = b.receipt(&s.subject, record, seq).await?;
        let event = b
            .history(&s.subject)
            .await?
            .into_iter()
            .find(|e| e.record == record && e.seq == seq)
            .ok_or(PortalError::NotFound)?;
        Ok((event, receipt))
    }

    /// The signed receipt alone (the download).
    async fn receipt_document(
        &self,
        s: &Session,
        record: &str,
        seq: u64,
    ) -> Found<serde_json::Value> {
        self.backend()?.receipt(&s.subject, record, seq).await
    }

    async fn deliveries(&self, s: &Session) -> Found<Vec<DeliveryView>> {
        self.backend()?.deliveries(&s.subject).await
    }

    async fn notices(&self, s: &Session) -> Found<Vec<NoticeView>> {
        self.backend()?.notices(&s.subject).await
    }

    /// Ends a login: the citizen's identifier from the provider, hashed at once; a new session.
    async fn finish_login(&self, state: &str, code: &str) -> Result<Session, LoginFailure> {
        let pending = self
            .sessions
            .finish_login(state)
            .ok_or(LoginFailure::Expired)?;
        let backend = self.backend().map_err(|_| LoginFailure::Unavailable)?;
        let identifier = self
            .login
            .finish(code, &pending.verifier, &pending.nonce)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "portal login failed");
                LoginFailure::Refused
            })?;
        let subject: SubjectHash = backend.pseudonym(identifier.expose());
        drop(identifier);
        let session = self.sessions.create(subject);
        tracing::info!(session = %session.handle, "portal login");
        Ok(session)
    }

    /// Starts a login: the provider's URL and the `state` the browser's login cookie keeps.
    async fn begin_login(&self, ui_locale: &str) -> Result<(String, String), LoginFailure> {
        let a = self.login.authorize(ui_locale).await.map_err(|e| {
            tracing::warn!(error = %e, "portal login could not start");
            LoginFailure::Unavailable
        })?;
        self.sessions.begin_login(&a.state, a.verifier, a.nonce);
        Ok((a.url, a.state))
    }

    /// Ends the session; answers where the browser goes next (the provider's end-session endpoint when
    /// it has one).
    async fn logout(&self, s: &Session, ui_locale: &str) -> String {
        self.sessions.end(s.cookie_value());
        tracing::info!(session = %s.handle, "portal logout");
        let back = format!("{}/", self.public_url);
        self.login
            .end_session_url(&back, ui_locale)
            .await
            .unwrap_or_else(|| "/".into())
    }

    fn session(&self, cookie_value: &str) -> Option<Session> {
        self.sessions.get(cookie_value)
    }

    fn take_flash(&self, s: &Session) -> Option<Flash> {
        self.sessions.take_flash(s.cookie_value())
    }

    /// A form's token matches the session's.
    fn csrf_ok(&self, s: &Session, token: Option<&str>) -> bool {
        token.is_some_and(|t| s.csrf.matches(t))
    }

    fn messages(&self) -> &Messages {
        &self.messages
    }
}

/// Why a login ended without a session (the citizen sees which, in words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoginFailure {
    /// No login in progress for this browser, or it took too long.
    Expired,
    /// The provider refused or its answer did not verify.
    Refused,
    /// The provider or the consent service cannot be reached.
    Unavailable,
}
