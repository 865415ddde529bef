//! The portal's sessions (in memory: a session is a login, not data), logins in progress, cookies and rate
//! limits. A session holds the citizen's pseudonym, never the identifier the e-ID login gave.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caap_identity::Secret;
use caap_policy::consent::SubjectHash;
use chrono::{DateTime, Duration, Utc};

use crate::clock::Clock;

/// The session cookie's name (`__Host-` on HTTPS, so that no subdomain can set or read it).
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-caap_portal"
    } else {
        "caap_portal"
    }
}

/// The cookie that ties a login in progress to the browser that started it.
pub const LOGIN_COOKIE: &str = "caap_portal_login";

/// At most this many sessions (the oldest idle ones go first when full).
const MAX_SESSIONS: usize = 100_000;
/// At most this many logins in progress.
const MAX_PENDING_LOGINS: usize = 10_000;
/// A login must come back from the provider within this long.
pub const LOGIN_TIMEOUT_SECS: i64 = 600;

/// A fresh random token: 32 bytes from the OS generator, base64url.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A one-time message shown on the next page (after a decision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// The catalog key.
    pub key: &'static str,
    /// The dataset's title, shown in the message.
    pub subject: String,
}

/// One citizen's login.
#[derive(Clone)]
pub struct Session {
    /// The cookie's value (a bearer secret; never logged, never shown).
    id: Secret,
    /// The public handle recorded with every event the session causes.
    pub handle: String,
    /// The citizen's pseudonym.
    pub subject: SubjectHash,
    /// The token every form of this session carries.
    pub csrf: Secret,
    created: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    flash: Option<Flash>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("handle", &self.handle)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The cookie value.
    pub fn cookie_value(&self) -> &str {
        self.id.expose()
    }
}

/// A login sent to the provider and not back yet.
#[derive(Clone)]
pub struct PendingLogin {
    /// The PKCE code verifier.
    pub verifier: Secret,
    /// The nonce the ID token must carry.
    pub nonce: Secret,
    created: DateTime<Utc>,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// Every session and login in progress of one portal.
#[derive(Debug)]
pub struct Sessions {
    clock: Arc<dyn Clock>,
    idle: Duration,
    max: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    logins: Mutex<HashMap<String, PendingLogin>>,
}

impl Sessions {
    /// Sessions ending after `idle` without a request or `max` after login.
    pub fn new(clock: Arc<dyn Clock>, idle: Duration, max: Duration) -> Sessions {
        Sessions {
            clock,
            idle,
            max,
            sessions: Mutex::default(),
            logins: Mutex::default(),
        }
    }

    fn live(&self, s: &Session, now: DateTime<Utc>) -> bool {
        now - s.last_seen < self.idle && now - s.created < self.max
    }

    /// A new session for `subject`.
    pub fn create(&self, subject: SubjectHash) -> Session {
        let now = self.clock.now();
        let session = Session {
            id: Secret::new(random_token()),
            handle: format!("portal-session:{}", &random_token()[..22]),
            subject,
            csrf: Secret::new(random_token()),
            created: now,
            last_seen: now,
            flash: None,
        };
        if let Ok(mut all) = self.sessions.lock() {
            all.retain(|_, s| self.live(s, now));
            if all.len() >= MAX_SESSIONS
                && let Some(oldest) = all
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
            all.insert(session.id.expose().to_owned(), session.clone());
        }
        session
    }

    /// The live session with this cookie value (and marks it seen); an expired one is ended.
    pub fn get(&self, cookie_value: &str) -> Option<Session> {
        let now = self.clock.now();
        let mut all = self.sessions.lock().ok()?;
        let live = self.live(all.get(cookie_value)?, now);
        if !live {
            all.remove(cookie_value);
            return None;
        }
        let s = all.get_mut(cookie_value)?;
        s.last_seen = now;
        Some(s.clone())
    }

    /// Ends the session.
    pub fn end(&self, cookie_value: &str) {
        if let Ok(mut all) = self.sessions.lock() {
            all.remove(cookie_value);
        }
    }

    /// Keeps a message for the session's next page.
    pub fn set_flash(&self, cookie_value: &str, flash: Flash) {
        if let Ok(mut all) = self.sessions.lock()
            && let Some(s) = all.get_mut(cookie_value)
        {
            s.flash = Some(flash);
        }
    }

    /// The message kept for this page, once.
    pub fn take_flash(&self, cookie_value: &str) -> Option<Flash> {
        self.sessions
            .lock()
            .ok()?
            .get_mut(cookie_value)
            .and_then(|s| s.flash.take())
    }

    /// Records a login sent to the provider under its `state`.
    pub fn begin_login(&self, state: &str, verifier: Secret, nonce: Secret) {
        let now = self.clock.now();
        if let Ok(mut all) = self.logins.lock() {
            all.retain(|_, l| now - l.created < Duration::seconds(LOGIN_TIMEOUT_SECS));
            if all.len() >= MAX_PENDING_LOGINS
                && let Some(oldest) = all
                    .iter()
                    .min_by_key(|(_, l)| l.created)
                    .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
            all.insert(
                state.to_owned(),
                PendingLogin {
                    verifier,
                    nonce,
                    created: now,
                },
            );
        }
    }

    /// The login that `state` names, once, if it has not timed out.
    pub fn finish_login(&self, state: &str) -> Option<PendingLogin> {
        let now = self.clock.now();
        let login = self.logins.lock().ok()?.remove(state)?;
        (now - login.created < Duration::seconds(LOGIN_TIMEOUT_SECS)).then_some(login)
    }
}

/// A fixed-window counter per key (client address or session): at most `limit` per minute.
#[derive(Debug)]
pub struct RateLimit {
    clock: Arc<dyn Clock>,
    limit: u32,
    windows: Mutex<HashMap<String, (DateTime<Utc>, u32)>>,
}

impl RateLimit {
    /// At most `per_minute` per key.
    pub fn per_minute(clock: Arc<dyn Clock>, per_minute: u32) -> RateLimit {
        RateLimit {
            clock,
            limit: per_minute,
            windows: Mutex::default(),
        }
    }

    /// Counts one for `key`; false when the key is over its limit in this minute.
    pub fn allow(&self, key: &str) -> bool {
        let now = self.clock.now();
        let Ok(mut windows) = self.windows.lock() else {
            return false;
        };
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now - *start < Duration::minutes(1));
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now - entry.0 >= Duration::minutes(1) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= self.limit
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` on HTTPS; `max_age` in seconds
/// (`Some(0)` deletes the cookie, `None` makes a session cookie).
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn sessions_end_after_the_idle_and_the_absolute_timeout() {
        let clock = Arc::new(ManualClock::at(start()));
        let sessions = Sessions::new(clock.clone(), Duration::minutes(15), Duration::minutes(60));
        let subject = SubjectHash::from_bytes([7; 32]);
        let s = sessions.create(subject);
        assert_ne!(s.cookie_value(), s.csrf.expose());
        // Active every 10 minutes: alive until the absolute timeout.
        for minutes in [10, 20, 30, 40, 50] {
            clock.set(start() + Duration::minutes(minutes));
            assert!(sessions.get(s.cookie_value()).is_some(), "{minutes}");
        }
        clock.set(start() + Duration::minutes(60));
        assert!(sessions.get(s.cookie_value()).is_none());
        // Idle for 15 minutes: gone.
        clock.set(start());
        let s = sessions.create(subject);
        clock.set(start() + Duration::minutes(15));
        assert!(sessions.get(s.cookie_value()).is_none());
        assert!(sessions.get("made-up").is_none());
    }

    #[test]
    fn a_login_is_finished_once_and_within_its_time() {
        let clock = Arc::new(ManualClock::at(start()));
        let sessions = Sessions::new(clock.clone(), Duration::minutes(15), Duration::minutes(60));
        sessions.begin_login("s1", Secret::new("v1"), Secret::new("n1"));
        sessions.begin_login("s2", Secret::new("v2"), Secret::new("n2"));
        assert_eq!(
            sessions
                .finish_login("s1")
                .map(|l| l.verifier.expose().to_owned()),
            Some("v1".into())
        );
        assert!(sessions.finish_login("s1").is_none());
        clock.set(start() + Duration::seconds(LOGIN_TIMEOUT_SECS));
        assert!(sessions.finish_login("s2").is_none());
    }

    #[test]
    fn the_rate_limit_counts_per_key_and_minute() {
        let clock = Arc::new(ManualClock::at(start()));
        let limit = RateLimit::per_minute(clock.clone(), 2);
        assert!(limit.allow("a") && limit.allow("a"));
        assert!(!limit.allow("a"));
        assert!(limit.allow("b"));
        clock.set(start() + Duration::minutes(1));
        assert!(limit.allow("a"));
    }

    #[test]
    fn cookies_are_read_and_written() {
        let header = Some("a=1; caap_portal=xyz ; b=2");
        assert_eq!(cookie(header, "caap_portal"), Some("xyz"));
        assert_eq!(cookie(header, "c"), None);
        assert_eq!(
            set_cookie("__Host-caap_portal", "v", true, None),
            "__Host-caap_portal=v; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(set_cookie("x", "", false, Some(0)).ends_with("; Max-Age=0"));
    }
}
