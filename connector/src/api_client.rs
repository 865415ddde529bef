//! How the CLI reaches a running connector's management API: its address (`--api-url` or the config's
//! `api.bind`) and its credentials: the config's admin token, or an access token from the city's OIDC
//! provider got with OAuth2 client credentials (RFC 6749 §4.4). Every authenticated request of the
//! CLI is built by [`Api::request`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use caap_connector::config::Config;
use caap_identity::Secret;
use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};

/// OAuth2 client credentials for the management API, instead of the config's admin token. The
/// client secret is never a flag (it would show in `ps`): it comes from `CAAP_OIDC_CLIENT_SECRET` or
/// a file.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct OidcArgs {
    /// Authenticate to the management API with OAuth2 client credentials from this token endpoint
    /// (the city's OIDC provider) instead of the config's admin token.
    #[arg(long, env = "CAAP_OIDC_TOKEN_URL", global = true)]
    token_url: Option<String>,
    /// The OAuth2 client id (with --token-url).
    #[arg(long, env = "CAAP_OIDC_CLIENT_ID", global = true)]
    client_id: Option<String>,
    /// A file holding the client secret (else the environment variable CAAP_OIDC_CLIENT_SECRET).
    #[arg(long, env = "CAAP_OIDC_CLIENT_SECRET_FILE", global = true)]
    client_secret_file: Option<PathBuf>,
    /// Scopes to ask for, space-separated (e.g. caap:admin).
    #[arg(long, env = "CAAP_OIDC_SCOPE", global = true)]
    scope: Option<String>,
    /// The management API's audience (the connector's api.oidc.audience), sent as the `resource`
    /// parameter (RFC 8707) so the provider issues a JWT for it.
    #[arg(long, env = "CAAP_OIDC_AUDIENCE", global = true)]
    audience: Option<String>,
}

/// A running connector's management API, as the CLI reaches it.
#[derive(Debug)]
pub(crate) struct Api {
    /// `--api-url`, when it is not the config's `api.bind`.
    pub url: Option<String>,
    oidc: OidcArgs,
    http: reqwest::Client,
    token: tokio::sync::Mutex<Option<(Secret, Instant)>>,
}

impl Api {
    /// The API at `url` (or the config's), with the credentials `oidc` names (or the admin token).
    pub fn new(url: Option<String>, oidc: OidcArgs) -> Api {
        Api {
            url,
            oidc,
            // (The API's listener closes idle connections after 5 s; a command that polls must not reuse
            // one.)
            http: caap_connector::outbound::client_builder()
                .build()
                .unwrap_or_default(),
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// The management API's base URL: `--api-url`, else the config's `api.bind` (loopback for 0.0.0.0).
    pub fn base(&self, config: &Config) -> String {
        crate::api_base(config, self.url.as_deref())
    }

    /// An authenticated request to `path` under the API's base.
    pub async fn request(
        &self,
        config: &Config,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let url = format!("{}{path}", self.base(config));
        let token = match &self.oidc.token_url {
            None => config.api.admin_token.clone(),
            Some(token_url) => self.access_token(token_url).await?,
        };
        Ok(self.http.request(method, url).bearer_auth(token.expose()))
    }

    /// Whether the CLI uses client credentials (for error hints).
    pub fn uses_oidc(&self) -> bool {
        self.oidc.token_url.is_some()
    }

    /// An access token: the one fetched before while it is valid, else a new one.
    async fn access_token(&self, token_url: &str) -> anyhow::Result<Secret> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch_token(token_url).await?;
        // Renew a little before the provider says it expires.
        let until = Instant::now() + lifetime - (lifetime / 10).min(Duration::from_secs(30));
        *cached = Some((token.clone(), until));
        Ok(token)
    }

    async fn fetch_token(&self, token_url: &str) -> anyhow::Result<(Secret, Duration)> {
        let Some(client_id) = self.oidc.client_id.clone() else {
            bail!("--token-url (CAAP_OIDC_TOKEN_URL) needs --client-id (CAAP_OIDC_CLIENT_ID)");
        };
        let secret = match &self.oidc.client_secret_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the client secret file {}", path.display()))?
                .trim()
                .to_owned(),
            None => std::env::var("CAAP_OIDC_CLIENT_SECRET").map_err(|_| {
                anyhow::anyhow!(
                    "--token-url needs the client secret in the environment variable CAAP_OIDC_CLIENT_SECRET \
                     or in a file named by --client-secret-file (CAAP_OIDC_CLIENT_SECRET_FILE)"
                )
            })?,
        };
        let url = TokenUrl::new(token_url.to_owned())
            .with_context(|| format!("--token-url {token_url} is not a URL"))?;
        // The client-credentials grant needs no authorization endpoint; the crate's type wants one.
        let auth_url = AuthUrl::new(token_url.to_owned())
            .with_context(|| format!("--token-url {token_url} is not a URL"))?;
        let client = BasicClient::new(ClientId::new(client_id.clone()))
            .set_client_secret(ClientSecret::new(secret))
            .set_auth_uri(auth_url)
            .set_token_uri(url);
        let http = self.http.clone();
        let send = move |req: oauth2::HttpRequest| {
            caap_connector::outbound::oauth2_send(http.clone(), req)
        };
        let mut request = client.exchange_client_credentials();
        for s in self.oidc.scope.iter().flat_map(|s| s.split_whitespace()) {
            request = request.add_scope(Scope::new(s.to_owned()));
        }
        if let Some(audience) = &self.oidc.audience {
            request = request.add_extra_param("resource", audience.clone());
        }
        let response = request.request_async(&send).await.map_err(|e| {
            let why = match &e {
                RequestTokenError::ServerResponse(r) => {
                    let code = r.error().to_string();
                    let hint = match code.as_str() {
                        "invalid_client" => {
                            "; check the client id (CAAP_OIDC_CLIENT_ID) and secret (CAAP_OIDC_CLIENT_SECRET or --client-secret-file)"
                        }
                        "invalid_scope" => "; check --scope (CAAP_OIDC_SCOPE)",
                        "invalid_target" => "; check --audience (CAAP_OIDC_AUDIENCE)",
                        _ => "",
                    };
                    match r.error_description() {
                        Some(d) => format!("the provider answered {code} ({d}){hint}"),
                        None => format!("the provider answered {code}{hint}"),
                    }
                }
                RequestTokenError::Request(e) => format!("cannot reach it: {e}"),
                RequestTokenError::Parse(e, _) => format!("its answer is not a token response: {e}"),
                RequestTokenError::Other(e) => e.clone(),
            };
            anyhow::anyhow!(
                "cannot get an access token for client `{client_id}` from {token_url}: {why}"
            )
        })?;
        let lifetime = response
            .expires_in()
            .unwrap_or(Duration::from_secs(300))
            .max(Duration::from_secs(1));
        Ok((
            Secret::new(response.access_token().secret().clone()),
            lifetime,
        ))
    }
}
