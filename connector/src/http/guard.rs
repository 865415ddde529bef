//! What every request passes before its handler (and before anything reads its body): at most
//! `limits.max_requests_per_address` requests in progress from one client address per listener (more are
//! answered 429 at once, so slow clients cannot hold every connection), and a path and query the database can
//! store (no NUL character, UTF-8 once percent-decoded; else 400 naming the part).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use futures_util::future::{Either, Ready, ready};

use super::errors::{Listener, refusal};

/// Requests in progress per client address, on one listener (shared by its workers).
#[derive(Debug)]
pub struct PerAddress {
    max: usize,
    listener: Listener,
    in_progress: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    /// At most `max` requests at once from one address on `listener`.
    pub fn new(max: usize, listener: Listener) -> Arc<Self> {
        Arc::new(PerAddress {
            max: max.max(1),
            listener,
            in_progress: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.in_progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more request from `ip`, or `None` when it has `max` in progress.
    fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<Permit> {
        let mut map = self.lock();
        let n = map.entry(ip).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Permit {
            limiter: self.clone(),
            ip,
        })
    }
}

/// One request in progress; dropping it frees the place.
#[derive(Debug)]
struct Permit {
    limiter: Arc<PerAddress>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut map = self.limiter.lock();
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

type Refused<B> = Ready<Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>;

/// The middleware (for `wrap_fn`): refuses at once what must not reach a handler, else calls it with the
/// request counted against its address until the response is ready.
pub fn guard<S, B>(
    limiter: &Arc<PerAddress>,
    req: ServiceRequest,
    srv: &S,
) -> Either<
    Refused<B>,
    impl std::future::Future<Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>
    + use<S, B>,
>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let refuse = |req: ServiceRequest, status, slug, reason: String| {
        let mut res = refusal(limiter.listener, req.path(), status, slug, reason);
        // Its body is left unread: the connection cannot carry another request.
        res.head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        if status == StatusCode::TOO_MANY_REQUESTS {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Either::Left(ready(Ok(req.into_response(res).map_into_right_body())))
    };
    if let Some(part) = super::body::unstorable_target(req.path(), req.query_string()) {
        return refuse(
            req,
            StatusCode::BAD_REQUEST,
            "unstorable-text",
            format!(
                "{part} contains a NUL character or is not UTF-8 once percent-decoded, which cannot be stored"
            ),
        );
    }
    let permit = match req.peer_addr() {
        Some(peer) => match limiter.enter(peer.ip()) {
            Some(p) => Some(p),
            None => {
                tracing::warn!(peer = %peer.ip(), max = limiter.max, "too many requests in progress from one address");
                return refuse(
                    req,
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-requests",
                    format!(
                        "more than {} requests in progress from this address (limits.max_requests_per_address); retry later",
                        limiter.max
                    ),
                );
            }
        },
        None => None,
    };
    let fut = srv.call(req);
    Either::Right(async move {
        let res = fut.await;
        drop(permit);
        res.map(ServiceResponse::map_into_left_body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_per_address_and_come_back() {
        let limiter = PerAddress::new(2, Listener::Dsp);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = limiter.enter(a).unwrap();
        let _second = limiter.enter(a).unwrap();
        assert!(limiter.enter(a).is_none());
        assert!(limiter.enter(b).is_some());
        drop(first);
        assert!(limiter.enter(a).is_some());
    }
}
