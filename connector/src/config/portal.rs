//! `[portal]`: the citizen portal's listener, its login with the city's e-ID provider (`[portal.oidc]`)
//! and its sessions. Off by default.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, SecretValue, is_loopback_host};

/// The citizen portal (consent), on its own listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    /// Serve the portal.
    #[serde(default)]
    pub enabled: bool,
    /// Address to listen on (usually behind the city's reverse proxy). Port 0 picks a free port.
    #[serde(default = "default_portal_bind")]
    pub bind: SocketAddr,
    /// The URL citizens reach the portal at, e.g. `https://samtycke.malmo.se` (no path). The login's
    /// redirect URI is this URL + `/callback`; with `https` the session cookie is `Secure`. Defaults to
    /// `http://` + the listener's address (for tests and the demo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// A session ends after this many minutes without a request.
    #[serde(default = "default_session_idle_minutes")]
    pub session_idle_minutes: u64,
    /// A session ends this many minutes after login, however active.
    #[serde(default = "default_session_max_minutes")]
    pub session_max_minutes: u64,
    /// Logins started per minute from one client address.
    #[serde(default = "default_login_per_minute")]
    pub login_per_minute: u32,
    /// Grants, refusals, withdrawals and logouts per minute in one session.
    #[serde(default = "default_actions_per_minute")]
    pub actions_per_minute: u32,
    /// The time zone dates are shown in: `Europe/Stockholm` (CET/CEST, the EU summer-time rule) or `UTC`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The city's e-ID provider (OpenID Connect); required when the portal is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<PortalOidcConfig>,
}

/// The city's OpenID Connect provider for citizens' login (authorization code flow with PKCE). In Sweden it
/// usually fronts BankID or Freja e-ID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalOidcConfig {
    /// The provider's issuer URL, exactly as its ID tokens carry it in `iss` (https, or http on loopback).
    pub issuer: String,
    /// The portal's client id at the provider.
    pub client_id: String,
    /// The client secret (the value, `{ env = "NAME" }` or `{ file = "PATH" }`); leave it out for a public
    /// client (PKCE only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretValue>,
    /// The claim that identifies the citizen, e.g. `https://id.oidc.se/claim/personalIdentityNumber`
    /// (from the ID token, else from the userinfo endpoint). Only its keyed hash is kept.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// Scopes asked for (must include `openid`).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Clock skew allowed on the ID token's `exp` and `iat`, in seconds.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            enabled: false,
            bind: default_portal_bind(),
            public_url: None,
            session_idle_minutes: default_session_idle_minutes(),
            session_max_minutes: default_session_max_minutes(),
            login_per_minute: default_login_per_minute(),
            actions_per_minute: default_actions_per_minute(),
            time_zone: default_time_zone(),
            oidc: None,
        }
    }
}

impl PortalConfig {
    /// True when the portal is off and nothing is set (the section is then left out of written configs).
    pub fn is_default(&self) -> bool {
        *self == PortalConfig::default()
    }

    /// Checks the section; `taken` are the other listeners' addresses with their keys.
    pub(super) fn validate(
        &self,
        taken: &[(&str, SocketAddr)],
        bad: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        if !matches!(self.time_zone.as_str(), "Europe/Stockholm" | "UTC") {
            return Err(bad(
                "portal.time_zone",
                format!("`{}` is not Europe/Stockholm or UTC", self.time_zone),
            ));
        }
        if self.session_idle_minutes == 0 || self.session_max_minutes < self.session_idle_minutes {
            return Err(bad(
                "portal.session_max_minutes",
                "must be at least portal.session_idle_minutes, which must be at least 1".into(),
            ));
        }
        if self.login_per_minute == 0 || self.actions_per_minute == 0 {
            return Err(bad(
                "portal.login_per_minute",
                "portal.login_per_minute and portal.actions_per_minute must be at least 1".into(),
            ));
        }
        if let Some(url) = &self.public_url {
            match url::Url::parse(url) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && u.path() == "/"
                        && u.query().is_none()
                        && u.fragment().is_none() => {}
                _ => {
                    return Err(bad(
                        "portal.public_url",
                        format!(
                            "`{url}` is not an http(s) origin without a path, e.g. https://samtycke.malmo.se"
                        ),
                    ));
                }
            }
        }
        if !self.enabled {
            return Ok(());
        }
        for (key, addr) in taken {
            if *addr == self.bind && self.bind.port() != 0 {
                return Err(bad(
                    "portal.bind",
                    format!("{} is also {key}; give the portal its own port", self.bind),
                ));
            }
        }
        let Some(oidc) = &self.oidc else {
            return Err(bad(
                "portal.oidc",
                "is missing: the portal needs the city's e-ID provider ([portal.oidc] issuer, client_id)"
                    .into(),
            ));
        };
        oidc.validate(bad)
    }
}

impl PortalOidcConfig {
    fn validate(&self, bad: &dyn Fn(&str, String) -> ConfigError) -> Result<(), ConfigError> {
        match url::Url::parse(&self.issuer) {
            Ok(u) if u.query().is_some() || u.fragment().is_some() => {
                return Err(bad(
                    "portal.oidc.issuer",
                    "must not have a query or fragment".into(),
                ));
            }
            Ok(u) if u.scheme() == "https" && u.host().is_some() => {}
            Ok(u) if u.scheme() == "http" && is_loopback_host(&u) => {}
            _ => {
                return Err(bad(
                    "portal.oidc.issuer",
                    format!(
                        "`{}` is not an https issuer URL (plain http only on loopback, for tests)",
                        self.issuer
                    ),
                ));
            }
        }
        if self.client_id.trim().is_empty() {
            return Err(bad("portal.oidc.client_id", "must not be empty".into()));
        }
        if self.subject_claim.trim().is_empty() {
            return Err(bad("portal.oidc.subject_claim", "must not be empty".into()));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err(bad("portal.oidc.scopes", "must include openid".into()));
        }
        if let Some(SecretValue::File { file }) = &self.client_secret
            && let Err(e) = caap_catalog::reference::check_file(file)
        {
            return Err(bad("portal.oidc.client_secret", e));
        }
        Ok(())
    }
}

fn default_portal_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8183))
}
fn default_session_idle_minutes() -> u64 {
    15
}
fn default_session_max_minutes() -> u64 {
    8 * 60
}
fn default_login_per_minute() -> u32 {
    20
}
fn default_actions_per_minute() -> u32 {
    30
}
fn default_time_zone() -> String {
    "Europe/Stockholm".into()
}
fn default_subject_claim() -> String {
    "sub".into()
}
fn default_scopes() -> Vec<String> {
    vec!["openid".into()]
}
fn default_leeway_secs() -> u64 {
    60
}
