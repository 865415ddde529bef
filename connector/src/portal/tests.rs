//! The portal's handlers against a small in-memory [`PortalBackend`]: pages in both languages, the
//! security headers, forms refused without the session's token or from another origin, two citizens who
//! each see only their own records, the rate limit, logout.

use std::sync::Arc;

use super::backend::*;
use super::i18n::Lang;
use super::session::Session;
use super::{Portal, PortalParts};
use crate::clock::ManualClock;
use crate::config::{PortalConfig, PortalOidcConfig};
use actix_web::http::StatusCode;
use actix_web::test;

mod memory {
    use super::*;
    include!("../../../tests/support/portal_backend.rs");
}
use memory::{MemoryBackend, at};

struct Fixture {
    portal: Arc<Portal>,
    backend: Arc<MemoryBackend>,
}

fn fixture(configure: impl FnOnce(&mut PortalConfig)) -> Fixture {
    let backend = Arc::new(MemoryBackend::new());
    backend.request(
        "198507099805",
        "rec-anna",
        "Parking permits <zones>",
        "Lund stad",
    );
    backend.request(
        "199001011234",
        "rec-bo",
        "Waste collection",
        "Skåne waste AB",
    );
    let mut config = PortalConfig {
        enabled: true,
        public_url: Some("http://portal.test".into()),
        oidc: Some(PortalOidcConfig {
            // Nothing listens here: these tests never reach the provider.
            issuer: "http://127.0.0.1:9".into(),
            client_id: "caap-portal".into(),
            client_secret: None,
            subject_claim: "sub".into(),
            scopes: vec!["openid".into()],
            leeway_secs: 60,
        }),
        ..PortalConfig::default()
    };
    configure(&mut config);
    let portal = Portal::new(PortalParts {
        config,
        city: "Malmö stad".into(),
        bound: "127.0.0.1:0".parse().unwrap(),
        data_dir: ".".into(),
        backend: Some(backend.clone()),
        http: reqwest::Client::new().into(),
        clock: Arc::new(ManualClock::at(at("2026-12-07T13:00:00Z"))),
    })
    .unwrap();
    Fixture {
        portal: Arc::new(portal),
        backend,
    }
}

impl Fixture {
    fn login(&self, pnr: &str) -> Session {
        self.portal.sessions.create(self.backend.pseudonym(pnr))
    }
}

fn cookie(s: &Session) -> (&'static str, String) {
    ("cookie", format!("caap_portal={}", s.cookie_value()))
}

/// A form post in session `s` with its own token.
fn post(s: &Session, path: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(path)
        .insert_header(cookie(s))
        .set_payload(format!("csrf={}", s.csrf.expose()))
}

fn get(s: &Session, path: &str) -> test::TestRequest {
    test::TestRequest::get().uri(path).insert_header(cookie(s))
}

async fn body_of<B: actix_web::body::MessageBody>(
    res: actix_web::dev::ServiceResponse<B>,
) -> String {
    String::from_utf8(test::read_body(res).await.to_vec()).unwrap()
}

/// No catalog key shows as text (a missing message would).
fn assert_all_words_from_catalogs(portal: &Portal, body: &str) {
    for lang in Lang::ALL {
        for key in portal.messages().keys(lang) {
            assert!(
                !body.contains(&format!(">{key}<")),
                "{key} is shown as text"
            );
        }
    }
}

#[actix_web::test]
async fn a_visitor_sees_the_welcome_page_in_swedish_or_english_with_strict_headers() {
    let f = fixture(|_| {});
    let app = test::init_service(super::app(f.portal.clone())).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:9"),
        "{csp}"
    );
    assert_eq!(res.headers().get("x-frame-options").unwrap(), "DENY");
    assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
    let body = body_of(res).await;
    assert!(body.contains("<html lang=\"sv\">"), "{body}");
    assert!(body.contains("Logga in med e-legitimation"));
    assert!(!body.contains("<script"));
    assert_all_words_from_catalogs(&f.portal, &body);

    let req = test::TestRequest::get()
        .uri("/")
        .insert_header(("accept-language", "en-GB,en;q=0.9,sv;q=0.5"))
        .to_request();
    let body = body_of(test::call_service(&app, req).await).await;
    assert!(body.contains("<html lang=\"en\">") && body.contains("Log in with e-ID"));

    // The switch keeps the choice in a cookie and goes back to a local page only.
    let req = test::TestRequest::get()
        .uri("/language/en?back=%2Fhistory")
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers().get("location").unwrap(), "/history");
    let set = res.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        set.starts_with("caap_portal_lang=en;") && set.contains("HttpOnly"),
        "{set}"
    );
    for evil in [
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example",
        "%2F%5Cevil",
    ] {
        let req = test::TestRequest::get()
            .uri(&format!("/language/sv?back={evil}"))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.headers().get("location").unwrap(), "/", "{evil}");
    }
    let req = test::TestRequest::get()
        .uri("/")
        .insert_header(("accept-language", "sv"))
        .insert_header(("cookie", "caap_portal_lang=en"))
        .to_request();
    let body = body_of(test::call_service(&app, req).await).await;
    assert!(body.contains("<html lang=\"en\">"));

    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/static/portal.css")
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[actix_web::test]
async fn pages_need_a_login_and_unknown_sessions_get_none() {
    let f = fixture(|_| {});
    let app = test::init_service(super::app(f.portal.clone())).await;
    for path in [
        "/requests",
        "/consents",
        "/history",
        "/recipients",
        "/notices",
        "/decide/rec-anna/grant",
    ] {
        for cookie in [None, Some("caap_portal=made-up")] {
            let mut req = test::TestRequest::get().uri(path);
            if let Some(c) = cookie {
                req = req.insert_header(("cookie", c));
            }
            let res = test::call_service(&app, req.to_request()).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
            assert!(body_of(res).await.contains("href=\"/login\""), "{path}");
        }
    }
    let res = test::call_service(&app, test::TestRequest::get().uri("/nowhere").to_request()).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn every_page_renders_in_both_languages_with_landmarks_and_escaped_values() {
    let f = fixture(|_| {});
    let anna = f.login("198507099805");
    let app = test::init_service(super::app(f.portal.clone())).await;
    // Grant, so that every page has something to show.
    let req = post(&anna, "/decide/rec-anna/grant").to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::SEE_OTHER
    );
    for lang in ["sv", "en"] {
        for path in [
            "/",
            "/requests",
            "/consents",
            "/decide/rec-anna/withdraw",
            "/history",
            "/receipts/rec-anna/1",
            "/recipients",
            "/notices",
        ] {
            let req = test::TestRequest::get()
                .uri(path)
                .insert_header((
                    "cookie",
                    format!(
                        "caap_portal={}; caap_portal_lang={lang}",
                        anna.cookie_value()
                    ),
                ))
                .to_request();
            let res = test::call_service(&app, req).await;
            assert_eq!(res.status(), StatusCode::OK, "{path} {lang}");
            let body = body_of(res).await;
            assert!(body.contains(&format!("<html lang=\"{lang}\">")), "{path}");
            for landmark in [
                "<header",
                "<nav",
                "<main id=\"main\"",
                "<footer",
                "<h1>",
                "class=\"skip\"",
            ] {
                assert!(body.contains(landmark), "{path} {lang}: no {landmark}");
            }
            assert!(!body.contains("<zones>"), "{path}: a value was not escaped");
            assert!(
                !body.contains("<script") && !body.contains("style="),
                "{path}"
            );
            assert_all_words_from_catalogs(&f.portal, &body);
        }
    }
    let req = get(&anna, "/recipients").to_request();
    let body = body_of(test::call_service(&app, req).await).await;
    assert!(body.contains("12\u{a0}345"), "Swedish digit grouping");
    assert!(
        body.contains("7 december 2026 kl. 15:00"),
        "Swedish date and local time"
    );
    let req = get(&anna, "/").to_request();
    let body = body_of(test::call_service(&app, req).await).await;
    assert!(
        body.contains("Lund stad får parking-permit zone för planning residents&#39; parking, till och med 30 juni 2027."),
        "{body}"
    );
}

#[actix_web::test]
async fn two_citizens_see_only_their_own_records() {
    let f = fixture(|_| {});
    let (anna, bo) = (f.login("198507099805"), f.login("199001011234"));
    let app = test::init_service(super::app(f.portal.clone())).await;
    let body = body_of(test::call_service(&app, get(&anna, "/requests").to_request()).await).await;
    assert!(body.contains("Parking permits") && !body.contains("Waste collection"));
    let body = body_of(test::call_service(&app, get(&bo, "/requests").to_request()).await).await;
    assert!(body.contains("Waste collection") && !body.contains("Parking permits"));
    // Bo cannot open, decide on or fetch a receipt of Anna's record.
    let res = test::call_service(&app, get(&bo, "/decide/rec-anna/grant").to_request()).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let req = post(&bo, "/decide/rec-anna/grant").to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        f.backend.citizen(&anna.subject).consents[0].standing,
        ConsentStanding::Requested
    );
    let req = post(&anna, "/decide/rec-anna/grant").to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::SEE_OTHER
    );
    let res =
        test::call_service(&app, get(&bo, "/receipts/rec-anna/1/download").to_request()).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body = body_of(test::call_service(&app, get(&bo, "/history").to_request()).await).await;
    assert!(!body.contains("Parking permits"));
    let res = test::call_service(
        &app,
        get(&anna, "/receipts/rec-anna/1/download").to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/ld+json"
    );
    let disposition = res
        .headers()
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    let receipt: serde_json::Value = serde_json::from_str(&body_of(res).await).unwrap();
    assert_eq!(receipt["receipt"]["@type"], "dpv:ConsentReceipt");
}

#[actix_web::test]
async fn forged_forms_are_refused_and_a_real_one_is_recorded_with_its_session() {
    let f = fixture(|_| {});
    let (anna, bo) = (f.login("198507099805"), f.login("199001011234"));
    let app = test::init_service(super::app(f.portal.clone())).await;
    let post = |payload: String, origin: Option<&str>| {
        let mut req = test::TestRequest::post()
            .uri("/decide/rec-anna/grant")
            .insert_header(cookie(&anna))
            .set_payload(payload);
        if let Some(o) = origin {
            req = req.insert_header(("origin", o.to_owned()));
        }
        req.to_request()
    };
    let forged = [
        (String::new(), None),
        ("csrf=".to_owned(), None),
        ("csrf=guess".to_owned(), None),
        // Another session's token.
        (format!("csrf={}", bo.csrf.expose()), None),
        // The right token from another site.
        (
            format!("csrf={}", anna.csrf.expose()),
            Some("https://evil.example"),
        ),
    ];
    for (payload, origin) in forged {
        let res = test::call_service(&app, post(payload.clone(), origin)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{payload} {origin:?}");
    }
    let req = test::TestRequest::post()
        .uri("/decide/rec-anna/grant")
        .insert_header(cookie(&anna))
        .insert_header(("sec-fetch-site", "cross-site"))
        .set_payload(format!("csrf={}", anna.csrf.expose()))
        .to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(f.backend.citizen(&anna.subject).events.is_empty());

    let res = test::call_service(
        &app,
        post(
            format!("csrf={}", anna.csrf.expose()),
            Some("http://portal.test"),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers().get("location").unwrap(), "/consents");
    let events = f.backend.citizen(&anna.subject).events;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].session.as_deref(), Some(anna.handle.as_str()));
    assert_eq!(events[0].method, "portal");
    // The next page says what happened, once.
    let consents = || get(&anna, "/consents").to_request();
    let body = body_of(test::call_service(&app, consents()).await).await;
    assert!(body.contains("role=\"status\""), "{body}");
    let body = body_of(test::call_service(&app, consents()).await).await;
    assert!(!body.contains("role=\"status\""));
    // Granting twice is not offered and not allowed.
    let res = test::call_service(&app, post(format!("csrf={}", anna.csrf.expose()), None)).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

#[actix_web::test]
async fn actions_are_rate_limited_per_session_and_logout_ends_the_session() {
    let f = fixture(|c| c.actions_per_minute = 2);
    let anna = f.login("198507099805");
    let app = test::init_service(super::app(f.portal.clone())).await;
    let withdraw = || post(&anna, "/decide/rec-anna/withdraw").to_request();
    // Not given yet: 409 twice, then the limit.
    assert_eq!(
        test::call_service(&app, withdraw()).await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        test::call_service(&app, withdraw()).await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        test::call_service(&app, withdraw()).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    let f = fixture(|_| {});
    let anna = f.login("198507099805");
    let app = test::init_service(super::app(f.portal.clone())).await;
    let req = post(&anna, "/logout")
        .set_payload("csrf=wrong")
        .to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::FORBIDDEN
    );
    let req = post(&anna, "/logout").to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // The provider is unreachable here, so no end-session endpoint: back to the start page.
    assert_eq!(res.headers().get("location").unwrap(), "/");
    let set = res.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        set.starts_with("caap_portal=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    let req = get(&anna, "/consents").to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn a_callback_without_this_browsers_login_is_refused() {
    let f = fixture(|_| {});
    let app = test::init_service(super::app(f.portal.clone())).await;
    f.portal.sessions.begin_login(
        "state-1",
        caap_identity::Secret::new("verifier"),
        caap_identity::Secret::new("nonce"),
    );
    // No login cookie, or another browser's: no session, and nothing is sent to the provider.
    for cookie in [None, Some("caap_portal_login=state-2")] {
        let mut req = test::TestRequest::get().uri("/callback?code=c&state=state-1");
        if let Some(c) = cookie {
            req = req.insert_header(("cookie", c));
        }
        let res = test::call_service(&app, req.to_request()).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(res.headers().get("set-cookie").is_none());
    }
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/callback?error=access_denied&state=state-1")
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // An unreachable provider: the login cannot start, and the page says so.
    let res = test::call_service(&app, test::TestRequest::get().uri("/login").to_request()).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[actix_web::test]
async fn logins_are_rate_limited_per_client_address() {
    let f = fixture(|c| c.login_per_minute = 1);
    let app = test::init_service(super::app(f.portal.clone())).await;
    let login = || {
        test::TestRequest::get()
            .uri("/login")
            .peer_addr("192.0.2.7:4000".parse().unwrap())
            .to_request()
    };
    assert_eq!(
        test::call_service(&app, login()).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        test::call_service(&app, login()).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
