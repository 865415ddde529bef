//! Sending what a transfer owes (a DSP message, or for push transfers the data), for [`crate::processor`].

use caap_contracts::Role;
use caap_contracts::transfer::message::{
    TransferCompletionMessage, TransferProcessAck, TransferRequestMessage, TransferStartMessage,
    TransferSuspensionMessage, TransferTerminationMessage,
};
use caap_contracts::transfer::state::{TransferEvent, TransferState, transition};
use chrono::{DateTime, Utc};
use reqwest::header;
use serde_json::Value;

use super::model::{Actor, TStep, Termination, Transfer};
use super::state_entry;
use crate::negotiation::processor::{backoff, describe_reqwest, join, to_value};
use crate::service::Connector;
use crate::store::StoreError;
use crate::store::negotiations::Effects;
use crate::transfer::dataplane::AccessError;

#[derive(Debug)]
enum Outcome {
    /// Acknowledged (request: with the provider's pid); push: with the bytes sent.
    Done {
        provider_pid: Option<String>,
        bytes: u64,
    },
    /// Failed; `permanent` when retrying the same thing cannot help.
    Failed { error: String, permanent: bool },
    /// Nothing to send: the counterparty never learnt of the process.
    LocalOnly,
}

fn reason_of(t: &Transfer) -> (Option<String>, String) {
    t.body
        .outgoing
        .as_ref()
        .map(|o| (o.code.clone(), o.reason.clone()))
        .unwrap_or_default()
}

/// The message for `step` and where it goes (`None`: the counterparty's pid is not known).
fn message(c: &Connector, t: &Transfer, step: TStep) -> Result<Option<(String, Value)>, String> {
    let (p, cpid) = (t.provider_pid.as_deref(), t.consumer_pid.as_deref());
    let theirs = match t.role {
        Role::Provider => cpid,
        Role::Consumer => p,
    };
    let (Some(theirs), Some(p_), Some(c_)) = (theirs, p, cpid) else {
        return Ok(match step {
            TStep::Request => Some((
                join(&t.counterparty_address, "transfers/request"),
                to_value(&TransferRequestMessage::new(
                    cpid.unwrap_or_default(),
                    t.agreement_id.clone(),
                    t.format.clone(),
                    c.identity.dsp_base.clone(),
                    t.body.data_address.clone(),
                )),
            )),
            _ => None,
        });
    };
    let (code, reason) = reason_of(t);
    let (path, body) = match step {
        TStep::Request => return Err("the request was acknowledged already".into()),
        TStep::Push => return Err("a push is no DSP message".into()),
        TStep::Start => {
            // The provider's first start carries the pull address with a fresh token; a resume too (the old
            // token may have expired). Push transfers carry none.
            let address = if t.role == Role::Provider && !t.is_push() {
                Some(
                    c.pull_address(t, c.clock.now())
                        .map_err(|e| e.to_string())?,
                )
            } else {
                None
            };
            (
                "start",
                to_value(&TransferStartMessage::new(p_, c_, address)),
            )
        }
        TStep::Suspend => (
            "suspension",
            to_value(&TransferSuspensionMessage::new(
                p_,
                c_,
                code.as_deref(),
                &reason,
            )),
        ),
        TStep::Complete => (
            "completion",
            to_value(&TransferCompletionMessage::new(p_, c_)),
        ),
        TStep::Terminate => (
            "termination",
            to_value(&TransferTerminationMessage::new(
                p_,
                c_,
                code.as_deref(),
                &reason,
            )),
        ),
    };
    Ok(Some((
        join(
            &t.counterparty_address,
            &format!("transfers/{theirs}/{path}"),
        ),
        body,
    )))
}

async fn send(c: &Connector, t: &Transfer, step: TStep) -> Outcome {
    if step == TStep::Push {
        return push(c, t).await;
    }
    let (url, body) = match message(c, t, step) {
        Ok(Some(m)) => m,
        Ok(None) => return Outcome::LocalOnly,
        Err(error) => {
            return Outcome::Failed {
                error,
                permanent: true,
            };
        }
    };
    let auth = match c.outbound.authorization(Some(&t.counterparty_id)) {
        Ok(a) => a,
        Err(e) => {
            return Outcome::Failed {
                error: format!("cannot authorize the message: {e}"),
                permanent: false,
            };
        }
    };
    let mut req = c.http.post(&url).json(&body);
    if let Some(a) = &auth {
        req = req.header(header::AUTHORIZATION, a.expose());
    }
    let res = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Failed {
                error: format!("POST {url}: {}", describe_reqwest(&e)),
                permanent: false,
            };
        }
    };
    let status = res.status();
    if status.is_success() {
        if step == TStep::Request {
            return match res.json::<TransferProcessAck>().await {
                Ok(ack) if !ack.provider_pid.is_empty() => Outcome::Done {
                    provider_pid: Some(ack.provider_pid),
                    bytes: 0,
                },
                Ok(_) => Outcome::Failed {
                    error: format!("POST {url}: the acknowledgement has an empty providerPid"),
                    permanent: true,
                },
                Err(e) => Outcome::Failed {
                    error: format!("POST {url}: the acknowledgement is not a TransferProcess: {e}"),
                    permanent: true,
                },
            };
        }
        return Outcome::Done {
            provider_pid: None,
            bytes: 0,
        };
    }
    let text = res.text().await.unwrap_or_default();
    let permanent =
        status.is_client_error() && !matches!(status.as_u16(), 404 | 408 | 409 | 425 | 429);
    Outcome::Failed {
        error: format!(
            "POST {url} answered {status}: {}",
            text.chars().take(300).collect::<String>()
        ),
        permanent,
    }
}

/// Push: stream the dataset to the consumer's endpoint, with the token it gave.
async fn push(c: &Connector, t: &Transfer) -> Outcome {
    let Some(address) = &t.body.data_address else {
        return Outcome::Failed {
            error: "no push endpoint".into(),
            permanent: true,
        };
    };
    let Some(endpoint) = address.endpoint.clone() else {
        return Outcome::Failed {
            error: "the push address has no endpoint".into(),
            permanent: true,
        };
    };
    if let Err(e) = c.check_access(t).await {
        return Outcome::Failed {
            error: e.to_string(),
            permanent: true,
        };
    }
    let opened = match c.open_source(&t.body.dataset_id, None).await {
        Ok(o) => o,
        Err(e) => {
            // The counterparty hears no URL, path or variable name; the log has them.
            let error = match &e {
                AccessError::Source(s) => {
                    tracing::warn!(transfer = %t.id, cause = %s, "data source failed");
                    s.public()
                }
                _ => e.to_string(),
            };
            return Outcome::Failed {
                error,
                permanent: false,
            };
        }
    };
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = {
        let counter = counter.clone();
        futures_util::StreamExt::inspect(opened.stream, move |chunk| {
            if let Ok(b) = chunk {
                counter.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let mut req = c
        .http_streaming
        .post(&endpoint)
        .header("x-caap-transfer", t.id.as_str())
        .body(reqwest::Body::wrap_stream(counted));
    if let Some(ct) = &opened.content_type {
        req = req.header(header::CONTENT_TYPE, ct.as_str());
    }
    if let Some(len) = opened.length {
        req = req.header(header::CONTENT_LENGTH, len);
    }
    if let Some(auth) = address.property("authorization") {
        let value = if auth.contains(' ') {
            auth.to_owned()
        } else {
            format!("Bearer {auth}")
        };
        req = req.header(header::AUTHORIZATION, value);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Outcome::Done {
            provider_pid: None,
            bytes: counter.load(std::sync::atomic::Ordering::Relaxed),
        },
        Ok(r) => Outcome::Failed {
            error: format!("pushing to {endpoint}: it answered {}", r.status()),
            permanent: r.status().is_client_error() && r.status().as_u16() != 429,
        },
        Err(e) => Outcome::Failed {
            error: format!("pushing to {endpoint}: {}", describe_reqwest(&e)),
            permanent: false,
        },
    }
}

/// Sends one claimed transfer's step and records the outcome.
pub(crate) async fn process(c: &Connector, claimed: Transfer, owner: &str) {
    let Some(step) = claimed.pending else { return };
    // A push may outlast the lease: renew it while the data flows, so no replica starts the push again.
    let renewer = (step == TStep::Push).then(|| {
        let (c, id, owner) = (c.clone(), claimed.id.clone(), owner.to_owned());
        tokio::spawn(async move {
            let secs = c.config.limits.outbound_timeout_secs;
            let every = std::time::Duration::from_secs((secs / 2).max(1));
            loop {
                tokio::time::sleep(every).await;
                let until = c.clock.now()
                    + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(30) + 30);
                if let Err(e) = c.store.renew_transfer_lease(&id, &owner, until).await {
                    tracing::warn!(pid = %id, error = %e, "renewing a push lease failed");
                }
            }
        })
    });
    let outcome = send(c, &claimed, step).await;
    if let Some(r) = renewer {
        r.abort();
    }
    for _ in 0..5 {
        let current = match c.store.transfer(&claimed.id).await {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(pid = %claimed.id, error = %e, "reading the transfer after a send failed");
                return;
            }
        };
        if current.pending != Some(step) || current.state != claimed.state {
            if let Err(e) = c.store.release_transfer_lease(&claimed.id, owner).await {
                tracing::warn!(pid = %claimed.id, error = %e, "releasing a lease failed; it expires by itself");
            }
            c.wake.notify_one();
            return;
        }
        let expected = current.version;
        let (next, effects) = record(c, current, step, &outcome);
        match c.store.save_transfer(&next, Some(expected), &effects).await {
            Ok(saved) => {
                c.transfer_saved(&saved);
                if saved.pending.is_some() {
                    c.wake.notify_one();
                }
                return;
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => {
                tracing::error!(pid = %claimed.id, error = %e, "recording a transfer step failed; it will be retried");
                return;
            }
        }
    }
}

fn record(c: &Connector, mut t: Transfer, step: TStep, outcome: &Outcome) -> (Transfer, Effects) {
    let now = c.clock.now();
    let mut effects = Effects::default();
    let cfg = &c.config.negotiation;
    match outcome {
        Outcome::Done {
            provider_pid,
            bytes,
        } => {
            if let Some(p) = provider_pid {
                t.provider_pid = Some(p.clone());
            }
            t.idle();
            t.last_error = None;
            match step.event() {
                None => {
                    // The push went through: a finite transfer is complete.
                    t.body.bytes += bytes;
                    t.body
                        .log(now, Actor::Local, format!("pushed {bytes} bytes"));
                    t.owe(TStep::Complete, now);
                }
                Some(event) => {
                    let from = t.state;
                    match transition(from, t.role, event) {
                        Ok(to) => {
                            t.state = Some(to);
                            if matches!(step, TStep::Terminate | TStep::Suspend) {
                                t.body.termination = t.body.outgoing.take();
                            } else if step == TStep::Start {
                                t.body.termination = None;
                            }
                            t.body.log(now, t.role.into(), format!("{event:?} -> {to}"));
                            effects
                                .ledger
                                .push(state_entry(&t, now, from, event, t.role.into()));
                            if to == TransferState::Started
                                && t.role == Role::Provider
                                && t.is_push()
                                && !t.body.manual
                            {
                                t.owe(TStep::Push, now);
                            }
                        }
                        Err(illegal) => {
                            tracing::error!(pid = %t.id, %illegal, "acknowledged transfer step no longer fits the state");
                        }
                    }
                }
            }
        }
        Outcome::LocalOnly => {
            let (code, reason) = reason_of(&t);
            local_end(
                &mut t,
                now,
                &mut effects,
                code,
                format!(
                    "{reason} (ended locally: the counterparty never acknowledged the request)"
                ),
            );
        }
        Outcome::Failed { error, permanent } => {
            t.attempts += 1;
            t.last_error = Some(error.clone());
            let limit = if *permanent {
                cfg.max_attempts.min(3)
            } else {
                cfg.max_attempts
            };
            tracing::warn!(pid = %t.id, step = step.as_str(), attempt = t.attempts, limit, %error, "transfer step failed");
            if t.attempts < limit {
                let wait = backoff(cfg.retry_base_ms, cfg.retry_max_secs, t.attempts - 1);
                t.next_attempt_at =
                    Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
            } else if step == TStep::Terminate {
                let (code, reason) = reason_of(&t);
                let why = format!(
                    "{reason}; the termination could not be delivered after {} attempts ({error}); terminated locally",
                    t.attempts
                );
                local_end(&mut t, now, &mut effects, code, why);
            } else {
                let reason = format!(
                    "gave up on the {} step after {} attempts: {error}",
                    step.as_str(),
                    t.attempts
                );
                t.body.log(now, Actor::Local, reason.clone());
                super::inbound::owe_with_reason(
                    &mut t,
                    TStep::Terminate,
                    "delivery-failed",
                    reason,
                    now,
                );
                t.last_error = Some(error.clone());
            }
        }
    }
    (t, effects)
}

fn local_end(
    t: &mut Transfer,
    now: DateTime<Utc>,
    effects: &mut Effects,
    code: Option<String>,
    reason: String,
) {
    let from = t.state;
    t.state = Some(TransferState::Terminated);
    t.body.outgoing = None;
    t.body.termination = Some(Termination {
        by: Actor::Local,
        code,
        reason: reason.clone(),
    });
    t.body.log(now, Actor::Local, reason);
    effects.ledger.push(state_entry(
        t,
        now,
        from,
        TransferEvent::Termination,
        Actor::Local,
    ));
    t.idle();
}
