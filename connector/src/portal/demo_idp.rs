//! A development-only OpenID Connect provider, used by `caap demo` and nothing else: it logs anyone in as
//! whichever of the demo's synthetic citizens they pick, so it must never front a real portal. It exists so
//! that the demo runs the portal exactly as a city does (`[portal.oidc]` names an issuer; the portal has no
//! demo path) with zero external services.
//!
//! What it does is the part of OpenID Connect the portal uses: a discovery document; an authorization
//! endpoint that shows a server-rendered login page (no JavaScript, Swedish and English from the portal's
//! catalogs) listing the synthetic citizens; the authorization code flow with PKCE S256 verified at the
//! token endpoint; codes used once and short-lived; ID tokens signed ES256 with a key generated at start
//! (published as a JWK set); and userinfo carrying the configured identity-number claim. It listens on
//! loopback only, answers only from loopback, and knows exactly one client and one redirect URI: anything
//! else is refused (a wrong client or redirect URI gets an error page, never a redirect).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caap_identity::ParticipantKey;
use caap_identity::keys::KeyAlgorithm;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::html::Html;
use super::i18n::{Lang, Messages};
use super::session::random_token;
use crate::clock::Clock;
use crate::config::PortalOidcConfig;

/// An authorization code must be exchanged within this long.
const CODE_LIFETIME_SECS: i64 = 60;
/// The login page must be answered within this long.
const LOGIN_LIFETIME_SECS: i64 = 600;
/// ID and access tokens live this long.
const TOKEN_LIFETIME_SECS: i64 = 300;
/// At most this many logins, codes or tokens in progress (the oldest go first).
const MAX_PENDING: usize = 1000;

/// One synthetic citizen the login page offers.
#[derive(Debug, Clone)]
pub struct DemoCitizen {
    /// The name shown on the login page.
    pub name: String,
    /// The (synthetic) personal identity number, released as the subject claim.
    pub identifier: String,
}

/// What the provider is started with.
#[derive(Debug)]
pub struct DemoIdpParts {
    /// The one client it knows (a public client: PKCE, no secret).
    pub client_id: String,
    /// The one redirect URI it sends codes to.
    pub redirect_uri: String,
    /// The claim carrying the identity number (the portal's `subject_claim`).
    pub subject_claim: String,
    /// The citizens the login page lists.
    pub citizens: Vec<DemoCitizen>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

/// Why the provider could not start.
#[derive(Debug, thiserror::Error)]
#[error("the demo's identity provider cannot start: {0}")]
pub struct DemoIdpError(String);

/// A running demo provider.
#[derive(Debug)]
pub struct DemoIdp {
    issuer: String,
    client_id: String,
    subject_claim: String,
    server: ServerHandle,
}

impl DemoIdp {
    /// Starts the provider on a free loopback port (inside a tokio/actix runtime).
    pub fn start(parts: DemoIdpParts) -> Result<DemoIdp, DemoIdpError> {
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .map_err(|e| DemoIdpError(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| DemoIdpError(e.to_string()))?;
        let issuer = format!("http://{addr}");
        let key = ParticipantKey::generate_with(KeyAlgorithm::Es256, "demo-idp-1")
            .map_err(|e| DemoIdpError(e.to_string()))?;
        let mut jwk = key.public_jwk().map_err(|e| DemoIdpError(e.to_string()))?;
        if let Some(o) = jwk.as_object_mut() {
            o.insert("kid".into(), json!("demo-idp-1"));
            o.insert("alg".into(), json!("ES256"));
            o.insert("use".into(), json!("sig"));
        }
        let messages = Messages::builtin("UTC").map_err(|e| DemoIdpError(e.to_string()))?;
        let (client_id, subject_claim) = (parts.client_id.clone(), parts.subject_claim.clone());
        // The login form posts here and is answered with a redirect to the portal: browsers hold that
        // redirect to `form-action` too.
        let portal_origin = url::Url::parse(&parts.redirect_uri)
            .map(|u| u.origin().ascii_serialization())
            .map_err(|e| DemoIdpError(format!("the redirect URI: {e}")))?;
        let csp = format!(
            "default-src 'none'; style-src 'self'; form-action 'self' {portal_origin}; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        let state = web::Data::new(Idp {
            issuer: issuer.clone(),
            parts,
            key,
            jwk,
            messages,
            logins: Mutex::default(),
            codes: Mutex::default(),
            tokens: Mutex::default(),
        });
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(4096))
                .app_data(
                    web::FormConfig::default()
                        .limit(4096)
                        .error_handler(|e, _| {
                            let answer = oauth_error(
                                StatusCode::BAD_REQUEST,
                                "invalid_request",
                                "the form cannot be read",
                            );
                            actix_web::error::InternalError::from_response(e, answer).into()
                        }),
                )
                .wrap(
                    actix_web::middleware::DefaultHeaders::new()
                        .add((header::CONTENT_SECURITY_POLICY, csp.clone()))
                        .add((header::X_FRAME_OPTIONS, "DENY"))
                        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                        .add((header::CACHE_CONTROL, "no-store")),
                )
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/authorize", web::get().to(authorize))
                .route("/authorize", web::post().to(choose))
                .route("/token", web::post().to(token))
                .route("/jwks", web::get().to(jwks))
                .route("/userinfo", web::get().to(userinfo))
                .route("/static/idp.css", web::get().to(stylesheet))
                .default_service(web::to(|| async { HttpResponse::NotFound().finish() }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .map_err(|e| DemoIdpError(e.to_string()))?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(DemoIdp {
            issuer,
            client_id,
            subject_claim,
            server: handle,
        })
    }

    /// The issuer URL (`http://127.0.0.1:PORT`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `[portal.oidc]` for this provider, as a city would write it for its own.
    pub fn portal_oidc(&self) -> PortalOidcConfig {
        PortalOidcConfig {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret: None,
            subject_claim: self.subject_claim.clone(),
            scopes: vec!["openid".into(), "profile".into()],
            leeway_secs: 60,
        }
    }

    /// Stops the provider.
    pub async fn stop(self) {
        self.server.stop(true).await;
    }
}

/// The provider's state.
struct Idp {
    issuer: String,
    parts: DemoIdpParts,
    key: ParticipantKey,
    jwk: Value,
    messages: Messages,
    /// Login pages shown and not yet answered, by their form's handle.
    logins: Mutex<HashMap<String, Pending>>,
    /// Codes issued and not yet exchanged.
    codes: Mutex<HashMap<String, Pending>>,
    /// Access tokens issued: the citizen's index and the expiry.
    tokens: Mutex<HashMap<String, (usize, DateTime<Utc>)>>,
}

/// An authorization request in progress (a login page shown, then a code issued).
#[derive(Debug, Clone)]
struct Pending {
    state: Option<String>,
    nonce: Option<String>,
    challenge: String,
    created: DateTime<Utc>,
    /// The citizen chosen (set when the code is issued).
    citizen: usize,
}

/// Inserts `value` under a fresh random key, dropping the oldest entries when full; answers the key.
fn remember<V>(
    map: &Mutex<HashMap<String, V>>,
    value: V,
    age: impl Fn(&V) -> DateTime<Utc>,
) -> String {
    let key = random_token();
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    while map.len() >= MAX_PENDING {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, v)| age(v))
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        map.remove(&oldest);
    }
    map.insert(key.clone(), value);
    key
}

/// Removes and answers the entry under `key` (a second use finds nothing).
fn take<V>(map: &Mutex<HashMap<String, V>>, key: &str) -> Option<V> {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(key)
}

impl Idp {
    fn now(&self) -> DateTime<Utc> {
        self.parts.clock.now()
    }
}

/// Only loopback peers are served (the listener is on loopback too).
fn from_loopback(req: &HttpRequest) -> bool {
    req.peer_addr().is_some_and(|a| a.ip().is_loopback())
}

fn refused_peer() -> HttpResponse {
    HttpResponse::Forbidden().finish()
}

async fn discovery(idp: web::Data<Idp>, req: HttpRequest) -> HttpResponse {
    if !from_loopback(&req) {
        return refused_peer();
    }
    let i = &idp.issuer;
    HttpResponse::Ok().json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["openid", "profile"],
        "claims_supported": ["sub", "name", idp.parts.subject_claim],
        "ui_locales_supported": ["sv", "en"],
    }))
}

async fn jwks(idp: web::Data<Idp>, req: HttpRequest) -> HttpResponse {
    if !from_loopback(&req) {
        return refused_peer();
    }
    HttpResponse::Ok().json(json!({"keys": [idp.jwk]}))
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(super::handlers::STYLESHEET)
}

/// The authorization request's parameters.
#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    ui_locales: Option<String>,
}

/// The page's language: the request's `ui_locales`, else `Accept-Language`, else Swedish.
fn lang_of(req: &HttpRequest, ui_locales: Option<&str>) -> Lang {
    let first = ui_locales.and_then(|l| l.split_whitespace().next());
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Lang::choose(first, accept)
}

/// The login page: the synthetic citizens, each a form that logs in as them.
async fn authorize(
    idp: web::Data<Idp>,
    req: HttpRequest,
    query: web::Query<AuthorizeQuery>,
) -> HttpResponse {
    if !from_loopback(&req) {
        return refused_peer();
    }
    let q = query.into_inner();
    let lang = lang_of(&req, q.ui_locales.as_deref());
    // A wrong client or redirect URI is never redirected to (RFC 6749 §4.1.2.1).
    if q.client_id.as_deref() != Some(idp.parts.client_id.as_str())
        || q.redirect_uri.as_deref() != Some(idp.parts.redirect_uri.as_str())
    {
        return error_page(&idp, lang, "demo_idp.error.client");
    }
    let s256 = q.code_challenge_method.as_deref() == Some("S256");
    let challenge = q.code_challenge.filter(|c| (43..=128).contains(&c.len()));
    let openid = q
        .scope
        .as_deref()
        .is_some_and(|s| s.split_whitespace().any(|s| s == "openid"));
    let (Some(challenge), true, true, true) = (
        challenge,
        s256,
        openid,
        q.response_type.as_deref() == Some("code"),
    ) else {
        return back_with_error(&idp, q.state.as_deref(), "invalid_request");
    };
    let pending = Pending {
        state: q.state,
        nonce: q.nonce,
        challenge,
        created: idp.now(),
        citizen: 0,
    };
    let handle = remember(&idp.logins, pending, |p| p.created);
    login_page(&idp, lang, &handle)
}

/// Sends the browser back to the client with an OAuth error.
fn back_with_error(idp: &Idp, state: Option<&str>, error: &str) -> HttpResponse {
    let mut url = match url::Url::parse(&idp.parts.redirect_uri) {
        Ok(u) => u,
        Err(_) => return HttpResponse::BadRequest().finish(),
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", error);
        if let Some(state) = state {
            q.append_pair("state", state);
        }
        q.append_pair("iss", &idp.issuer);
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.to_string()))
        .finish()
}

/// The document around the login page and its error page.
fn document(idp: &Idp, lang: Lang, title: &str, body: impl FnOnce(&mut Html)) -> String {
    let m = &idp.messages;
    let mut h = super::pages::document_head(
        lang,
        &format!("{title} – {}", m.t(lang, "demo_idp.site")),
        "/static/idp.css",
    );
    h.open("header", &[("class", Some("banner"))]);
    h.element("p", &[("class", Some("site"))], m.t(lang, "demo_idp.site"));
    h.close("header");
    h.open("main", &[("id", Some("main"))]);
    h.element("h1", &[], title);
    h.open("div", &[("class", Some("callout"))]);
    h.element("p", &[], m.t(lang, "demo_idp.warning"));
    h.close("div");
    body(&mut h);
    h.close("main");
    h.close("body");
    h.close("html");
    h.finish()
}

fn html(status: StatusCode, lang: Lang, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_LANGUAGE, lang.tag()))
        .body(body)
}

fn error_page(idp: &Idp, lang: Lang, text: &'static str) -> HttpResponse {
    let m = &idp.messages;
    let body = document(idp, lang, m.t(lang, "demo_idp.error.title"), |h| {
        h.element("p", &[], m.t(lang, text));
    });
    html(StatusCode::BAD_REQUEST, lang, body)
}

fn login_page(idp: &Idp, lang: Lang, handle: &str) -> HttpResponse {
    let m = &idp.messages;
    let body = document(idp, lang, m.t(lang, "demo_idp.title"), |h| {
        h.element("p", &[], m.t(lang, "demo_idp.intro"));
        h.open("ul", &[("class", Some("demo-citizens"))]);
        for (i, c) in idp.parts.citizens.iter().enumerate() {
            h.open("li", &[]);
            h.open(
                "form",
                &[("method", Some("post")), ("action", Some("/authorize"))],
            );
            h.void(
                "input",
                &[
                    ("type", Some("hidden")),
                    ("name", Some("login")),
                    ("value", Some(handle)),
                ],
            );
            h.void(
                "input",
                &[
                    ("type", Some("hidden")),
                    ("name", Some("citizen")),
                    ("value", Some(&i.to_string())),
                ],
            );
            let label = m.f(
                lang,
                "demo_idp.login_as",
                &[("name", &c.name), ("identifier", &c.identifier)],
            );
            h.element("button", &[("type", Some("submit"))], &label);
            h.close("form");
            h.close("li");
        }
        h.close("ul");
    });
    html(StatusCode::OK, lang, body)
}

/// The login page's answer.
#[derive(Debug, Deserialize)]
struct Choice {
    login: String,
    citizen: usize,
}

/// Logs in as the chosen citizen: a code to the redirect URI.
async fn choose(idp: web::Data<Idp>, req: HttpRequest, form: web::Form<Choice>) -> HttpResponse {
    if !from_loopback(&req) {
        return refused_peer();
    }
    let lang = lang_of(&req, None);
    let Some(mut pending) = take(&idp.logins, &form.login) else {
        return error_page(&idp, lang, "demo_idp.error.expired");
    };
    if idp.now() - pending.created > Duration::seconds(LOGIN_LIFETIME_SECS)
        || form.citizen >= idp.parts.citizens.len()
    {
        return error_page(&idp, lang, "demo_idp.error.expired");
    }
    pending.citizen = form.citizen;
    pending.created = idp.now();
    let state = pending.state.clone();
    let code = remember(&idp.codes, pending, |p| p.created);
    let mut url = match url::Url::parse(&idp.parts.redirect_uri) {
        Ok(u) => u,
        Err(_) => return HttpResponse::BadRequest().finish(),
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(state) = &state {
            q.append_pair("state", state);
        }
        q.append_pair("iss", &idp.issuer);
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.to_string()))
        .finish()
}

/// The token request (RFC 6749 §4.1.3 with RFC 7636's `code_verifier`).
#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    code_verifier: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": error, "error_description": description}))
}

/// The client id of a token request: the form's, or HTTP Basic's user name.
fn client_of(req: &HttpRequest, form: &TokenForm) -> Option<String> {
    if let Some(id) = &form.client_id {
        return Some(id.clone());
    }
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split(':').next()?;
    url::form_urlencoded::parse(user.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .or_else(|| Some(user.to_owned()))
}

/// BASE64URL(SHA-256(verifier)), RFC 7636 §4.6.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()))
}

/// Exchanges a code: once, in time, for the client and redirect URI it was issued to, with the PKCE
/// verifier that matches the challenge.
async fn token(idp: web::Data<Idp>, req: HttpRequest, form: web::Form<TokenForm>) -> HttpResponse {
    if !from_loopback(&req) {
        return refused_peer();
    }
    let form = form.into_inner();
    if client_of(&req, &form).as_deref() != Some(idp.parts.client_id.as_str()) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    if form.grant_type.as_deref() != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code",
        );
    }
    // The code is gone from here on, whatever follows: a second use finds nothing.
    let Some(pending) = form.code.as_deref().and_then(|c| take(&idp.codes, c)) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown, used or expired code",
        );
    };
    let now = idp.now();
    if now - pending.created > Duration::seconds(CODE_LIFETIME_SECS) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the code expired");
    }
    if form.redirect_uri.as_deref() != Some(idp.parts.redirect_uri.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the redirect URI differs from the authorization request's",
        );
    }
    let verifier_ok = form
        .code_verifier
        .as_deref()
        .is_some_and(|v| (43..=128).contains(&v.len()) && s256(v) == pending.challenge);
    if !verifier_ok {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the PKCE verifier does not match the challenge",
        );
    }
    let mut claims = json!({
        "iss": idp.issuer,
        "sub": subject(pending.citizen),
        "aud": idp.parts.client_id,
        "iat": now.timestamp(),
        "auth_time": pending.created.timestamp(),
        "exp": (now + Duration::seconds(TOKEN_LIFETIME_SECS)).timestamp(),
        "acr": "urn:caap:demo:no-assurance",
    });
    if let (Some(nonce), Some(o)) = (&pending.nonce, claims.as_object_mut()) {
        o.insert("nonce".into(), json!(nonce));
    }
    let id_token = match caap_identity::jose::sign_compact(&idp.key, Some("JWT"), &claims) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "the demo identity provider could not sign");
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "cannot sign",
            );
        }
    };
    let expires = now + Duration::seconds(TOKEN_LIFETIME_SECS);
    let access_token = remember(&idp.tokens, (pending.citizen, expires), |(_, e)| *e);
    HttpResponse::Ok()
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECS,
            "id_token": id_token,
            "scope": "openid profile",
        }))
}

/// The ID token's `sub`: a stable pseudonymous handle of the citizen (the identity number is a claim).
fn subject(citizen: usize) -> String {
    format!("demo-citizen-{}", citizen + 1)
}

/// The citizen's claims for a live access token: `sub`, `name` and the identity-number claim.
async fn userinfo(idp: web::Data<Idp>, req: HttpRequest) -> HttpResponse {
    if !from_loopback(&req) {
        return refused_peer();
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let found = bearer.and_then(|t| {
        idp.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(t.trim())
            .copied()
    });
    let Some((citizen, _)) = found.filter(|(_, e)| *e > idp.now()) else {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""))
            .finish();
    };
    let Some(c) = idp.parts.citizens.get(citizen) else {
        return HttpResponse::Unauthorized().finish();
    };
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), json!(subject(citizen)));
    claims.insert("name".into(), json!(c.name));
    claims.insert(idp.parts.subject_claim.clone(), json!(c.identifier));
    HttpResponse::Ok().json(Value::Object(claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "caap-demo-portal";
    const REDIRECT: &str = "http://127.0.0.1:9/callback";
    const CLAIM: &str = "https://id.oidc.se/claim/personalIdentityNumber";

    fn started() -> DemoIdp {
        DemoIdp::start(DemoIdpParts {
            client_id: CLIENT.into(),
            redirect_uri: REDIRECT.into(),
            subject_claim: CLAIM.into(),
            citizens: vec![DemoCitizen {
                name: "Alva".into(),
                identifier: "19990101-0001".into(),
            }],
            clock: Arc::new(crate::clock::SystemClock),
        })
        .unwrap()
    }

    /// An `application/x-www-form-urlencoded` body.
    fn form(pairs: &[(&str, &str)]) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// The authorization request with `challenge` and `redirect`; answers the login page's status and text.
    async fn authorize(idp: &DemoIdp, challenge: &str, redirect: &str) -> (u16, String) {
        let res = client()
            .get(format!("{}/authorize", idp.issuer()))
            .query(&[
                ("response_type", "code"),
                ("client_id", CLIENT),
                ("redirect_uri", redirect),
                ("scope", "openid profile"),
                ("state", "st"),
                ("nonce", "no"),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("ui_locales", "en"),
            ])
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// Logs in as the first citizen through the login page; answers the code.
    async fn code(idp: &DemoIdp, challenge: &str) -> String {
        let (status, page) = authorize(idp, challenge, REDIRECT).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("Alva") && page.contains("<html lang=\"en\">"),
            "{page}"
        );
        let handle = page
            .split("name=\"login\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap();
        let res = client()
            .post(format!("{}/authorize", idp.issuer()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("login", handle), ("citizen", "0")]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let to = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
        assert!(to.as_str().starts_with(REDIRECT), "{to}");
        let q: HashMap<_, _> = to.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "st");
        assert_eq!(q["iss"], idp.issuer());
        q["code"].clone()
    }

    async fn exchange(idp: &DemoIdp, code: &str, verifier: &str, redirect: &str) -> (u16, Value) {
        let res = client()
            .post(format!("{}/token", idp.issuer()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect),
                ("client_id", CLIENT),
                ("code_verifier", verifier),
            ]))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    const VERIFIER: &str = "a-verifier-of-forty-three-characters-or-more-0123";

    #[actix_web::test]
    async fn a_login_yields_a_verifiable_id_token_and_the_claim_in_userinfo() {
        let idp = started();
        let code = code(&idp, &s256(VERIFIER)).await;
        let (status, body) = exchange(&idp, &code, VERIFIER, REDIRECT).await;
        assert_eq!(status, 200, "{body}");
        // The portal's own verifier accepts the ID token through discovery and the JWK set.
        let verifier = crate::trust::oidc::OidcVerifier::new(
            crate::config::ApiOidcConfig {
                issuer: idp.issuer().into(),
                audience: CLIENT.into(),
                required_scope: None,
                required_role: None,
                roles_claim: "roles".into(),
                leeway_secs: 60,
                jwks_cache_secs: 60,
            },
            client().into(),
            Arc::new(crate::clock::SystemClock),
        );
        let (principal, claims) = verifier
            .verify_with_claims(body["id_token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(principal.subject, "demo-citizen-1");
        assert_eq!(claims["nonce"], "no");
        let info: Value = client()
            .get(format!("{}/userinfo", idp.issuer()))
            .bearer_auth(body["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info[CLAIM], "19990101-0001");
        assert_eq!(info["sub"], "demo-citizen-1");
        idp.stop().await;
    }

    #[actix_web::test]
    async fn a_wrong_verifier_a_wrong_redirect_and_a_reused_code_are_refused() {
        let idp = started();
        // PKCE: a verifier that does not match the challenge.
        let c = code(&idp, &s256(VERIFIER)).await;
        let other = "another-verifier-of-forty-three-characters-or-more";
        let (status, body) = exchange(&idp, &c, other, REDIRECT).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        assert!(body.to_string().contains("PKCE"), "{body}");
        // That code is spent even though the exchange failed.
        let (status, _) = exchange(&idp, &c, VERIFIER, REDIRECT).await;
        assert_eq!(status, 400);
        // A redirect URI other than the registered one: an error page, never a redirect.
        let (status, page) = authorize(&idp, &s256(VERIFIER), "http://127.0.0.1:9/elsewhere").await;
        assert_eq!(status, 400);
        assert!(page.contains("is not the demo portal"), "{page}");
        // ... nor at the token endpoint.
        let c = code(&idp, &s256(VERIFIER)).await;
        let (status, body) = exchange(&idp, &c, VERIFIER, "http://127.0.0.1:9/elsewhere").await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        // A code is exchanged once.
        let c = code(&idp, &s256(VERIFIER)).await;
        let (status, body) = exchange(&idp, &c, VERIFIER, REDIRECT).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = exchange(&idp, &c, VERIFIER, REDIRECT).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        // Another client is refused, and so is a request without PKCE.
        let res = client()
            .post(format!("{}/token", idp.issuer()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", "other"),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let res = client()
            .get(format!("{}/authorize", idp.issuer()))
            .query(&[
                ("response_type", "code"),
                ("client_id", CLIENT),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("state", "st"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let to = res.headers()["location"].to_str().unwrap();
        assert!(
            to.contains("error=invalid_request") && to.contains("state=st"),
            "{to}"
        );
        // A form that cannot be read gets a readable refusal.
        let res = client()
            .post(format!("{}/authorize", idp.issuer()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("login", "x"), ("citizen", "the first")]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        idp.stop().await;
    }
}
