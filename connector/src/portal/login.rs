//! Login with the city's e-ID provider: OpenID Connect authorization code flow with PKCE (the `oauth2`
//! crate), endpoints from the provider's discovery document, the ID token verified with the provider's keys
//! (`trust::oidc::OidcVerifier`: signature, issuer, audience = our client id, expiry) and its nonce. The
//! citizen's identifier comes from the configured claim (ID token, else userinfo) and leaves this module
//! only as the backend's pseudonym.

use std::sync::Arc;

use caap_identity::Secret;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{ApiOidcConfig, PortalOidcConfig};
use crate::trust::oidc::OidcVerifier;

/// The token response's `id_token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type NewClient = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenField, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;

type CodeClient = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenField, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Why a login did not succeed. The reason is for the log; the citizen sees that the login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The provider cannot be reached or its discovery document is unusable.
    #[error("the e-ID provider cannot be used: {0}")]
    Provider(String),
    /// The provider answered the token request with an error, or the answer was unusable.
    #[error("the code exchange failed: {0}")]
    Exchange(String),
    /// The ID token did not verify.
    #[error("the ID token was refused: {0}")]
    IdToken(String),
    /// Neither the ID token nor userinfo carries the configured subject claim.
    #[error("the login carries no claim {0}")]
    NoSubject(String),
}

/// Where to send the browser, and what to keep until it comes back.
#[derive(Debug)]
pub struct Authorization {
    /// The provider's authorization URL with our request.
    pub url: String,
    /// `state`, also kept in the browser's login cookie.
    pub state: String,
    /// The PKCE verifier.
    pub verifier: Secret,
    /// The nonce.
    pub nonce: Secret,
}

/// The portal's client at the city's e-ID provider.
#[derive(Debug)]
pub struct Login {
    config: PortalOidcConfig,
    client_secret: Option<Secret>,
    redirect_uri: String,
    verifier: OidcVerifier,
    http: crate::outbound::Http,
}

impl Login {
    /// A client for `[portal.oidc]`, sending the browser back to `redirect_uri`; `client_secret` already
    /// resolved. Nothing is fetched until the first login.
    pub fn new(
        config: PortalOidcConfig,
        client_secret: Option<Secret>,
        redirect_uri: String,
        http: crate::outbound::Http,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Login {
        let verifier = OidcVerifier::new(
            ApiOidcConfig {
                issuer: config.issuer.clone(),
                audience: config.client_id.clone(),
                required_scope: None,
                required_role: None,
                roles_claim: "roles".into(),
                leeway_secs: config.leeway_secs,
                jwks_cache_secs: 3600,
            },
            http.clone(),
            clock,
        );
        Login {
            config,
            client_secret,
            redirect_uri,
            verifier,
            http,
        }
    }

    async fn endpoint(&self, name: &str) -> Result<Option<String>, LoginError> {
        let doc = self
            .verifier
            .discovery()
            .await
            .map_err(|e| LoginError::Provider(e.to_string()))?;
        Ok(doc.get(name).and_then(Value::as_str).map(str::to_owned))
    }

    async fn client(&self) -> Result<CodeClient, LoginError> {
        let required = |name: &'static str, value: Option<String>| {
            value.ok_or_else(|| LoginError::Provider(format!("its discovery names no {name}")))
        };
        let auth = required(
            "authorization_endpoint",
            self.endpoint("authorization_endpoint").await?,
        )?;
        let token = required("token_endpoint", self.endpoint("token_endpoint").await?)?;
        let bad = |e: url::ParseError| LoginError::Provider(e.to_string());
        let mut client = NewClient::new(ClientId::new(self.config.client_id.clone()))
            .set_auth_uri(AuthUrl::new(auth).map_err(bad)?)
            .set_token_uri(TokenUrl::new(token).map_err(bad)?)
            .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).map_err(bad)?);
        if let Some(secret) = &self.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        Ok(client)
    }

    /// A new authorization request (PKCE S256, state, nonce), in the citizen's language.
    pub async fn authorize(&self, ui_locale: &str) -> Result<Authorization, LoginError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = super::session::random_token();
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge)
            .add_extra_param("nonce", nonce.clone())
            .add_extra_param("ui_locales", ui_locale.to_owned());
        for scope in &self.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state) = request.url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            verifier: Secret::new(verifier.secret().clone()),
            nonce: Secret::new(nonce),
        })
    }

    /// Exchanges the code, verifies the ID token and its nonce, and answers the citizen's identifier (the
    /// configured claim). The caller hashes it at once.
    pub async fn finish(
        &self,
        code: &str,
        verifier: &Secret,
        nonce: &Secret,
    ) -> Result<Secret, LoginError> {
        let client = self.client().await?;
        let http = self.http.clone();
        let send = move |req: oauth2::HttpRequest| {
            crate::outbound::oauth2_send(reqwest::Client::clone(&http), req)
        };
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_owned()))
            .request_async(&send)
            .await
            .map_err(|e| LoginError::Exchange(describe_token_error(&e)))?;
        let id_token = response
            .extra_fields()
            .id_token
            .as_deref()
            .ok_or_else(|| LoginError::Exchange("the answer has no id_token".into()))?;
        let (principal, claims) = self
            .verifier
            .verify_with_claims(id_token)
            .await
            .map_err(|e| LoginError::IdToken(e.to_string()))?;
        let nonce_ok = claims
            .get("nonce")
            .and_then(Value::as_str)
            .is_some_and(|n| nonce.matches(n));
        if !nonce_ok {
            return Err(LoginError::IdToken("the nonce does not match".into()));
        }
        let claim = &self.config.subject_claim;
        if let Some(id) = claim_text(claims.get(claim)) {
            return Ok(id);
        }
        // Providers that follow OIDC Core §5.4 put scope claims in userinfo only.
        let Some(userinfo_url) = self.endpoint("userinfo_endpoint").await? else {
            return Err(LoginError::NoSubject(claim.clone()));
        };
        let userinfo = self
            .userinfo(&userinfo_url, response.access_token().secret())
            .await?;
        if userinfo.get("sub").and_then(Value::as_str) != Some(principal.subject.as_str()) {
            return Err(LoginError::IdToken(
                "userinfo names another subject than the ID token".into(),
            ));
        }
        claim_text(userinfo.get(claim)).ok_or_else(|| LoginError::NoSubject(claim.clone()))
    }

    async fn userinfo(&self, url: &str, access_token: &str) -> Result<Value, LoginError> {
        let res = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                LoginError::Provider(format!(
                    "userinfo: {}",
                    crate::outbound::describe_reqwest(&e)
                ))
            })?;
        if !res.status().is_success() {
            return Err(LoginError::Provider(format!(
                "userinfo answered {}",
                res.status()
            )));
        }
        res.json()
            .await
            .map_err(|e| LoginError::Provider(format!("userinfo is not JSON: {e}")))
    }

    /// The provider's end-session URL for logging out, with our way back, when it has one.
    pub async fn end_session_url(&self, back_to: &str, ui_locale: &str) -> Option<String> {
        let endpoint = self.endpoint("end_session_endpoint").await.ok()??;
        let mut url = url::Url::parse(&endpoint).ok()?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.config.client_id)
            .append_pair("post_logout_redirect_uri", back_to)
            .append_pair("ui_locales", ui_locale);
        Some(url.to_string())
    }
}

/// A claim as text (identity numbers are sometimes numbers in JSON).
fn claim_text(value: Option<&Value>) -> Option<Secret> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(Secret::new(s.clone())),
        Value::Number(n) => Some(Secret::new(n.to_string())),
        _ => None,
    }
}

fn describe_token_error<RE: std::error::Error + 'static>(
    e: &oauth2::RequestTokenError<RE, BasicErrorResponse>,
) -> String {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => {
            format!("the provider answered {}", r.error())
        }
        oauth2::RequestTokenError::Request(e) => format!("the request failed: {e}"),
        oauth2::RequestTokenError::Parse(e, _) => {
            format!("the answer is not a token response: {e}")
        }
        oauth2::RequestTokenError::Other(e) => e.clone(),
    }
}
