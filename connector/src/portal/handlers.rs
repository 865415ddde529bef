//! The portal's routes. Each handler extracts the citizen ([`Citizen`]: the session from its cookie, or a
//! "please log in" page), calls one [`Portal`] method, and renders the page. Forms are checked for the
//! session's CSRF token and the request's origin; logins and actions are rate-limited. Every response
//! carries a strict Content-Security-Policy (no scripts at all, styles from the portal only) and refuses to
//! be framed.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, FromRequest, HttpRequest, HttpResponse, ResponseError, web};

use super::backend::{Decision, PortalError};
use super::i18n::{LANGUAGE_COOKIE, Lang};
use super::pages::{self, Frame};
use super::session::{self, LOGIN_COOKIE, LOGIN_TIMEOUT_SECS, Session};
use super::{LoginFailure, Portal};

/// The portal's one stylesheet, built into the binary.
pub(super) const STYLESHEET: &str = include_str!("assets/portal.css");
/// Largest form accepted (a form carries a token and nothing else).
const MAX_FORM_BYTES: usize = 4096;

/// The portal listener's app.
pub fn app(
    portal: Arc<Portal>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' {}; \
         frame-ancestors 'none'; base-uri 'none'",
        portal.provider_origin
    );
    let mut headers = DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, csp))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::CACHE_CONTROL, "no-store"))
        .add((
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        ))
        .add(("cross-origin-opener-policy", "same-origin"));
    if portal.secure {
        headers = headers.add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"));
    }
    App::new()
        .app_data(web::Data::from(portal))
        .app_data(web::PayloadConfig::new(MAX_FORM_BYTES))
        .wrap(headers)
        .route("/", web::get().to(home))
        .route("/requests", web::get().to(requests))
        .route("/consents", web::get().to(consents))
        .route("/decide/{record}/{decision}", web::get().to(confirm))
        .route("/decide/{record}/{decision}", web::post().to(decide))
        .route("/history", web::get().to(history))
        .route("/receipts/{record}/{seq}", web::get().to(receipt))
        .route(
            "/receipts/{record}/{seq}/download",
            web::get().to(receipt_download),
        )
        .route("/recipients", web::get().to(recipients))
        .route("/notices", web::get().to(notices))
        .route("/login", web::get().to(login))
        .route("/callback", web::get().to(callback))
        .route("/logout", web::post().to(logout))
        .route("/language/{lang}", web::get().to(language))
        .route("/static/portal.css", web::get().to(stylesheet))
        .default_service(web::to(not_found))
}

/// The request's language: the switch's cookie, else `Accept-Language`, else Swedish.
fn lang_of(req: &HttpRequest) -> Lang {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    Lang::choose(
        session::cookie(header(header::COOKIE), LANGUAGE_COOKIE),
        header(header::ACCEPT_LANGUAGE),
    )
}

fn portal_of(req: &HttpRequest) -> Option<web::Data<Portal>> {
    req.app_data::<web::Data<Portal>>().cloned()
}

/// The live session the request's cookie names.
fn session_of(portal: &Portal, req: &HttpRequest) -> Option<Session> {
    let cookies = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok());
    session::cookie(cookies, session::session_cookie_name(portal.secure))
        .and_then(|v| portal.session(v))
}

/// A rendered page with its status.
fn page(status: StatusCode, lang: Lang, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_LANGUAGE, lang.tag()))
        .body(body)
}

/// A page that only says something, as an error a handler or extractor returns.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    lang: Lang,
    body: String,
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "portal page {}", self.status)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        page(self.status, self.lang, self.body.clone())
    }
}

/// Renders a message page (title and text are catalog keys).
fn message(
    portal: &Portal,
    req: &HttpRequest,
    session: Option<&Session>,
    status: StatusCode,
    (title, text): (&'static str, &'static str),
) -> PageError {
    let lang = lang_of(req);
    let frame = Frame {
        m: portal.messages(),
        lang,
        city: &portal.city,
        path: req.path(),
        csrf: session.map(|s| s.csrf.expose()),
        flash: None,
    };
    let login_link = status == StatusCode::UNAUTHORIZED;
    PageError {
        status,
        lang,
        body: pages::message(&frame, title, text, login_link),
    }
}

/// A logged-in citizen: the session the cookie names, the page's language and path.
pub struct Citizen {
    portal: web::Data<Portal>,
    req: HttpRequest,
    session: Session,
    lang: Lang,
}

impl std::fmt::Debug for Citizen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Citizen")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl FromRequest for Citizen {
    type Error = actix_web::Error;
    type Future = Ready<Result<Citizen, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(portal) = portal_of(req) else {
            return ready(Err(actix_web::error::ErrorInternalServerError("")));
        };
        ready(match session_of(&portal, req) {
            Some(session) => Ok(Citizen {
                lang: lang_of(req),
                req: req.clone(),
                session,
                portal,
            }),
            None => Err(message(
                &portal,
                req,
                None,
                StatusCode::UNAUTHORIZED,
                ("error.login_needed.title", "error.login_needed.text"),
            )
            .into()),
        })
    }
}

impl Citizen {
    /// Renders a page with the session's frame (and the flash message, once).
    fn render(&self, body: impl FnOnce(&Frame<'_>) -> String) -> HttpResponse {
        let flash = self.portal.take_flash(&self.session);
        let frame = Frame {
            m: self.portal.messages(),
            lang: self.lang,
            city: &self.portal.city,
            path: self.req.path(),
            csrf: Some(self.session.csrf.expose()),
            flash: flash.map(|f| (f.key, f.subject)),
        };
        page(StatusCode::OK, self.lang, body(&frame))
    }

    /// The page for a backend refusal.
    fn refused(&self, e: PortalError) -> PageError {
        let (status, keys) = match e {
            PortalError::NotFound => (
                StatusCode::NOT_FOUND,
                ("error.not_found.title", "error.not_found.text"),
            ),
            PortalError::NotAllowed(reason) => {
                tracing::info!(session = %self.session.handle, %reason, "portal action not allowed");
                (
                    StatusCode::CONFLICT,
                    ("error.not_allowed.title", "error.not_allowed.text"),
                )
            }
            PortalError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                ("error.unavailable.title", "error.unavailable.text"),
            ),
        };
        message(&self.portal, &self.req, Some(&self.session), status, keys)
    }

    /// The page for a refused form (no or a wrong token, another origin) or too many actions.
    fn forbidden(&self) -> PageError {
        message(
            &self.portal,
            &self.req,
            Some(&self.session),
            StatusCode::FORBIDDEN,
            ("error.forbidden.title", "error.forbidden.text"),
        )
    }

    /// Checks a form post: same origin, the session's token, and the action rate limit.
    fn check_form(&self, body: &[u8]) -> Result<(), PageError> {
        if !same_origin(&self.portal, &self.req) {
            tracing::warn!(session = %self.session.handle, "portal form from another origin refused");
            return Err(self.forbidden());
        }
        let token = url::form_urlencoded::parse(body)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        if !self.portal.csrf_ok(&self.session, token.as_deref()) {
            tracing::warn!(session = %self.session.handle, "portal form without the session's token refused");
            return Err(self.forbidden());
        }
        if !self.portal.action_limit.allow(&self.session.handle) {
            return Err(message(
                &self.portal,
                &self.req,
                Some(&self.session),
                StatusCode::TOO_MANY_REQUESTS,
                ("error.too_many.title", "error.too_many.text"),
            ));
        }
        Ok(())
    }
}

/// The request comes from the portal's own pages: `Origin` (when sent) is the portal's, and the
/// browser's `Sec-Fetch-Site` (when sent) is not cross-site. (Browsers send `Origin: null` under
/// `Referrer-Policy: no-referrer`, so the portal's policy is `same-origin`.)
fn same_origin(portal: &Portal, req: &HttpRequest) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let origin_ok = header("origin").is_none_or(|o| o == portal.public_url);
    let site_ok = header("sec-fetch-site").is_none_or(|s| matches!(s, "same-origin" | "none"));
    origin_ok && site_ok
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

async fn home(portal: web::Data<Portal>, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let lang = lang_of(&req);
    let Some(session) = session_of(&portal, &req) else {
        let frame = Frame {
            m: portal.messages(),
            lang,
            city: &portal.city,
            path: "/",
            csrf: None,
            flash: None,
        };
        return Ok(page(StatusCode::OK, lang, pages::welcome(&frame)));
    };
    let citizen = Citizen {
        portal: portal.clone(),
        req,
        session,
        lang,
    };
    let (datasets, pending) = portal
        .overview(&citizen.session)
        .await
        .map_err(|e| citizen.refused(e))?;
    Ok(citizen.render(|f| pages::overview(f, &datasets, pending)))
}

async fn requests(c: Citizen) -> Result<HttpResponse, PageError> {
    let all = c
        .portal
        .consents(&c.session)
        .await
        .map_err(|e| c.refused(e))?;
    Ok(c.render(|f| pages::requests(f, &all)))
}

async fn consents(c: Citizen) -> Result<HttpResponse, PageError> {
    let all = c
        .portal
        .consents(&c.session)
        .await
        .map_err(|e| c.refused(e))?;
    Ok(c.render(|f| pages::consents(f, &all)))
}

async fn confirm(c: Citizen, path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let (record, decision) = path.into_inner();
    let decision =
        pages::decision_from_segment(&decision).ok_or_else(|| c.refused(PortalError::NotFound))?;
    let consent = c
        .portal
        .consent(&c.session, &record)
        .await
        .map_err(|e| c.refused(e))?;
    if !pages::offered(consent.standing, decision) {
        return Err(c.refused(PortalError::NotAllowed(
            "not offered for this standing".into(),
        )));
    }
    Ok(c.render(|f| pages::confirm(f, &consent, decision)))
}

async fn decide(
    c: Citizen,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    c.check_form(&body)?;
    let (record, decision) = path.into_inner();
    let decision =
        pages::decision_from_segment(&decision).ok_or_else(|| c.refused(PortalError::NotFound))?;
    c.portal
        .decide(&c.session, &record, decision)
        .await
        .map_err(|e| c.refused(e))?;
    Ok(see_other(match decision {
        Decision::Grant => "/consents",
        Decision::Refuse => "/history",
        Decision::Withdraw => "/notices",
    }))
}

async fn history(c: Citizen) -> Result<HttpResponse, PageError> {
    let events = c
        .portal
        .history(&c.session)
        .await
        .map_err(|e| c.refused(e))?;
    Ok(c.render(|f| pages::history(f, &events)))
}

async fn receipt(c: Citizen, path: web::Path<(String, u64)>) -> Result<HttpResponse, PageError> {
    let (record, seq) = path.into_inner();
    let (event, receipt) = c
        .portal
        .receipt(&c.session, &record, seq)
        .await
        .map_err(|e| c.refused(e))?;
    Ok(c.render(|f| pages::receipt(f, &event, &receipt)))
}

async fn receipt_download(
    c: Citizen,
    path: web::Path<(String, u64)>,
) -> Result<HttpResponse, PageError> {
    let (record, seq) = path.into_inner();
    let receipt = c
        .portal
        .receipt_document(&c.session, &record, seq)
        .await
        .map_err(|e| c.refused(e))?;
    let name: String = record
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '-' {
                ch
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let body =
        serde_json::to_vec_pretty(&receipt).map_err(|_| c.refused(PortalError::Unavailable))?;
    Ok(HttpResponse::Ok()
        .content_type("application/ld+json")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"consent-receipt-{name}-{seq}.jsonld\""),
        ))
        .body(body))
}

async fn recipients(c: Citizen) -> Result<HttpResponse, PageError> {
    let deliveries = c
        .portal
        .deliveries(&c.session)
        .await
        .map_err(|e| c.refused(e))?;
    Ok(c.render(|f| pages::recipients(f, &deliveries)))
}

async fn notices(c: Citizen) -> Result<HttpResponse, PageError> {
    let notices = c
        .portal
        .notices(&c.session)
        .await
        .map_err(|e| c.refused(e))?;
    Ok(c.render(|f| pages::notices(f, &notices)))
}

/// Starts a login: to the provider, with the login's `state` in a short-lived cookie of this browser.
async fn login(portal: web::Data<Portal>, req: HttpRequest) -> Result<HttpResponse, PageError> {
    if session_of(&portal, &req).is_some() {
        return Ok(see_other("/"));
    }
    let client = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    if !portal.login_limit.allow(&client) {
        return Err(message(
            &portal,
            &req,
            None,
            StatusCode::TOO_MANY_REQUESTS,
            ("error.too_many.title", "error.too_many.text"),
        ));
    }
    let (url, state) = portal
        .begin_login(lang_of(&req).tag())
        .await
        .map_err(|e| login_failed(&portal, &req, e))?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url))
        .insert_header((
            header::SET_COOKIE,
            session::set_cookie(
                LOGIN_COOKIE,
                &state,
                portal.secure,
                Some(LOGIN_TIMEOUT_SECS),
            ),
        ))
        .finish())
}

fn login_failed(portal: &Portal, req: &HttpRequest, e: LoginFailure) -> PageError {
    let (status, keys) = match e {
        LoginFailure::Expired => (
            StatusCode::BAD_REQUEST,
            ("error.login_expired.title", "error.login_expired.text"),
        ),
        LoginFailure::Refused => (
            StatusCode::FORBIDDEN,
            ("error.login_failed.title", "error.login_failed.text"),
        ),
        LoginFailure::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            ("error.unavailable.title", "error.unavailable.text"),
        ),
    };
    message(portal, req, None, status, keys)
}

#[derive(Debug, serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The provider sends the browser back here: the login's `state` must be this browser's, then the code
/// is exchanged and a session begins.
async fn callback(portal: web::Data<Portal>, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let query = web::Query::<CallbackQuery>::from_query(req.query_string())
        .map_err(|_| login_failed(&portal, &req, LoginFailure::Expired))?
        .into_inner();
    if let Some(error) = &query.error {
        tracing::info!(error = %error.chars().take(64).collect::<String>(), "portal login not completed at the provider");
        return Err(message(
            &portal,
            &req,
            None,
            StatusCode::UNAUTHORIZED,
            ("error.login_cancelled.title", "error.login_cancelled.text"),
        ));
    }
    let cookies = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok());
    let browser_state = session::cookie(cookies, LOGIN_COOKIE);
    let (Some(code), Some(state), Some(browser_state)) = (&query.code, &query.state, browser_state)
    else {
        return Err(login_failed(&portal, &req, LoginFailure::Expired));
    };
    if !caap_identity::Secret::new(browser_state).matches(state) {
        tracing::warn!("portal login refused: the state is not this browser's");
        return Err(login_failed(&portal, &req, LoginFailure::Expired));
    }
    let session = portal
        .finish_login(state, code)
        .await
        .map_err(|e| login_failed(&portal, &req, e))?;
    let name = session::session_cookie_name(portal.secure);
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .append_header((
            header::SET_COOKIE,
            session::set_cookie(name, session.cookie_value(), portal.secure, None),
        ))
        .append_header((
            header::SET_COOKIE,
            session::set_cookie(LOGIN_COOKIE, "", portal.secure, Some(0)),
        ))
        .finish())
}

async fn logout(c: Citizen, body: web::Bytes) -> Result<HttpResponse, PageError> {
    c.check_form(&body)?;
    let next = c.portal.logout(&c.session, c.lang.tag()).await;
    let name = session::session_cookie_name(c.portal.secure);
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, next))
        .insert_header((
            header::SET_COOKIE,
            session::set_cookie(name, "", c.portal.secure, Some(0)),
        ))
        .finish())
}

#[derive(Debug, serde::Deserialize)]
struct LanguageQuery {
    back: Option<String>,
}

/// The language switch: keeps the choice in a cookie for a year and goes back to the page (a local path
/// only).
async fn language(
    portal: web::Data<Portal>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let lang = Lang::from_tag(&path).ok_or_else(|| {
        message(
            &portal,
            &req,
            None,
            StatusCode::NOT_FOUND,
            ("error.not_found.title", "error.not_found.text"),
        )
    })?;
    let back = web::Query::<LanguageQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().back)
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains(['\\', '\r', '\n']))
        .unwrap_or_else(|| "/".into());
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, back))
        .insert_header((
            header::SET_COOKIE,
            session::set_cookie(
                LANGUAGE_COOKIE,
                lang.tag(),
                portal.secure,
                Some(365 * 24 * 3600),
            ),
        ))
        .finish())
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ))
        .body(STYLESHEET)
}

async fn not_found(portal: web::Data<Portal>, req: HttpRequest) -> HttpResponse {
    let session = session_of(&portal, &req);
    message(
        &portal,
        &req,
        session.as_ref(),
        StatusCode::NOT_FOUND,
        ("error.not_found.title", "error.not_found.text"),
    )
    .error_response()
}
