//! Sending what a negotiation owes, for [`crate::processor`], which claims the work with a lease.
//!
//! One claimed negotiation: send its message, then record the outcome: on an acknowledgement the step's
//! transition, on a failure the error, the attempt count and the next attempt (exponential back-off with
//! jitter). After `negotiation.max_attempts` failures it gives up: it owes a termination whose reason names
//! the failure, and if even that cannot be delivered it terminates the negotiation locally.

use std::time::Duration;

use caap_contracts::Role;
use caap_contracts::negotiation::message::ContractNegotiationAck;
use caap_contracts::negotiation::messages::{
    ContractAgreementMessage, ContractAgreementVerificationMessage,
    ContractNegotiationEventMessage, ContractNegotiationTerminationMessage, ContractOfferMessage,
    ContractRequestMessage, EventType,
};
use caap_contracts::negotiation::state::{NegotiationState, transition};
use chrono::{DateTime, Utc};
use reqwest::header;
use serde_json::Value;

use super::inbound::{agreement_entry, agreement_record};
use super::model::{Actor, Negotiation, Step, Termination};
use super::state_entry;
use crate::service::Connector;
use crate::store::StoreError;
use crate::store::negotiations::Effects;

/// How a send ended.
#[derive(Debug)]
enum Outcome {
    /// Acknowledged; for an initial request, with the provider's pid.
    Acked(Option<String>),
    /// Failed; `permanent` when retrying the same message cannot help (a 4xx other than 404/408/409/429).
    Failed { error: String, permanent: bool },
    /// Nothing to send (e.g. the counterparty's pid is not known, so a termination stays local).
    LocalOnly,
}

/// `base` + `/` + `path`, whether or not `base` ends with a slash (DSP: a callback may have one).
pub(crate) fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// The message for `step`, and where it goes.
fn message(c: &Connector, n: &Negotiation, step: Step) -> Option<(String, Value)> {
    let provider = n.provider_pid.as_deref();
    let consumer = n.consumer_pid.as_deref();
    let base = &n.counterparty_address;
    let callback = c.identity.dsp_base.as_str();
    let (path, body) = match step {
        Step::Request => (
            "negotiations/request".to_owned(),
            to_value(&ContractRequestMessage::new(
                consumer?,
                None,
                n.body.offer.clone(),
                Some(callback),
            )),
        ),
        Step::CounterOffer => (
            format!("negotiations/{}/request", provider?),
            to_value(&ContractRequestMessage::new(
                consumer?,
                provider,
                n.body.offer.clone(),
                None,
            )),
        ),
        Step::Offer if n.state.is_none() => (
            "negotiations/offers".to_owned(),
            to_value(&ContractOfferMessage::new(
                provider?,
                None,
                n.body.offer.clone(),
                Some(callback),
            )),
        ),
        Step::Offer => (
            format!("negotiations/{}/offers", consumer?),
            to_value(&ContractOfferMessage::new(
                provider?,
                consumer,
                n.body.offer.clone(),
                None,
            )),
        ),
        Step::Accept => (
            format!("negotiations/{}/events", provider?),
            to_value(&ContractNegotiationEventMessage::new(
                provider?,
                consumer?,
                EventType::Accepted,
            )),
        ),
        Step::Agree => (
            format!("negotiations/{}/agreement", consumer?),
            to_value(&ContractAgreementMessage::new(
                provider?,
                consumer?,
                n.body.agreement.clone()?,
                n.body.signature.clone(),
            )),
        ),
        Step::Verify => (
            format!("negotiations/{}/agreement/verification", provider?),
            to_value(&ContractAgreementVerificationMessage::new(
                provider?, consumer?,
            )),
        ),
        Step::Finalize => (
            format!("negotiations/{}/events", consumer?),
            to_value(&ContractNegotiationEventMessage::new(
                provider?,
                consumer?,
                EventType::Finalized,
            )),
        ),
        Step::Terminate => {
            let t = n.body.outgoing_termination.as_ref();
            let theirs = match n.role {
                Role::Provider => consumer?,
                Role::Consumer => provider?,
            };
            (
                format!("negotiations/{theirs}/termination"),
                to_value(&ContractNegotiationTerminationMessage::new(
                    provider?,
                    consumer?,
                    t.and_then(|t| t.code.as_deref()),
                    t.map(|t| t.reason.as_str()).unwrap_or_default(),
                )),
            )
        }
    };
    Some((join(base, &path), body))
}

/// A protocol message as JSON (our own types always serialize).
pub(crate) fn to_value<T: serde::Serialize>(message: &T) -> Value {
    serde_json::to_value(message).unwrap_or_default()
}

async fn send(c: &Connector, n: &Negotiation, step: Step) -> Outcome {
    let Some((url, body)) = message(c, n, step) else {
        return if step == Step::Terminate {
            Outcome::LocalOnly
        } else {
            Outcome::Failed {
                error: format!(
                    "cannot build the {} message: the counterparty's process id is not known yet",
                    step.as_str()
                ),
                permanent: true,
            }
        };
    };
    let auth = match c.outbound.authorization(Some(&n.counterparty_id)) {
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
        if step == Step::Request {
            let ack: Result<ContractNegotiationAck, _> = res.json().await;
            return match ack {
                Ok(ack) if !ack.provider_pid.is_empty() => Outcome::Acked(Some(ack.provider_pid)),
                Ok(_) => Outcome::Failed {
                    error: format!("POST {url}: the acknowledgement has an empty providerPid"),
                    permanent: true,
                },
                Err(e) => Outcome::Failed {
                    error: format!(
                        "POST {url}: the acknowledgement is not a ContractNegotiation: {e}"
                    ),
                    permanent: true,
                },
            };
        }
        return Outcome::Acked(None);
    }
    let text = res.text().await.unwrap_or_default();
    let reason = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("reason").cloned())
        .map(|r| match r {
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        })
        .unwrap_or_else(|| text.chars().take(300).collect());
    let permanent =
        status.is_client_error() && !matches!(status.as_u16(), 404 | 408 | 409 | 425 | 429);
    Outcome::Failed {
        error: format!("POST {url} answered {status}: {reason}"),
        permanent,
    }
}

pub use crate::outbound::describe_reqwest;

/// The wait before attempt `attempts + 1`: base · 2^attempts, capped, with ±25 % jitter.
pub fn backoff(base_ms: u64, max_secs: u64, attempts: u32) -> Duration {
    let exp = base_ms.saturating_mul(1u64 << attempts.min(20));
    let capped = exp.min(max_secs.saturating_mul(1000));
    let jitter = rand::random_range(0.75..1.25);
    Duration::from_millis((capped as f64 * jitter) as u64)
}

/// Sends one claimed negotiation's step and records the outcome.
pub(crate) async fn process(c: &Connector, claimed: Negotiation, owner: &str) {
    let Some(step) = claimed.pending else { return };
    let outcome = send(c, &claimed, step).await;
    for _ in 0..5 {
        // Re-read: an inbound message may have moved the negotiation while we were sending.
        let current = match c.store.negotiation(&claimed.id).await {
            Ok(Some(n)) => n,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(pid = %claimed.id, error = %e, "reading the negotiation after a send failed");
                return;
            }
        };
        if current.pending != Some(step) || current.state != claimed.state {
            // The counterparty's next message already confirmed (or overtook) ours; free the negotiation for
            // whatever it owes now.
            if let Err(e) = c.store.release_negotiation_lease(&claimed.id, owner).await {
                tracing::warn!(pid = %claimed.id, error = %e, "releasing a lease failed; it expires by itself");
            }
            c.wake.notify_one();
            return;
        }
        let expected = current.version;
        let (next, effects) = record(c, current, step, &outcome);
        match c
            .store
            .save_negotiation(&next, Some(expected), &effects)
            .await
        {
            Ok(saved) => {
                if saved.pending.is_some() {
                    c.wake.notify_one();
                }
                return;
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => {
                tracing::error!(pid = %claimed.id, error = %e, "recording a send failed; the lease will expire and the step be retried");
                return;
            }
        }
    }
}

/// The negotiation after `outcome`, and what to write with it.
fn record(
    c: &Connector,
    mut n: Negotiation,
    step: Step,
    outcome: &Outcome,
) -> (Negotiation, Effects) {
    let now = c.clock.now();
    let mut effects = Effects::default();
    let cfg = &c.config.negotiation;
    match outcome {
        Outcome::Acked(provider_pid) => {
            if let Some(p) = provider_pid {
                n.provider_pid = Some(p.clone());
            }
            let from = n.state;
            let event = step.event(from);
            match transition(from, n.role, event) {
                Ok(to) => {
                    n.state = Some(to);
                    if step == Step::Terminate {
                        n.body.termination = n.body.outgoing_termination.take();
                    }
                    n.body.log(now, n.role.into(), format!("{event} -> {to}"));
                    effects
                        .ledger
                        .push(state_entry(&n, now, from, event, n.role.into()));
                    if to == NegotiationState::Finalized {
                        effects.agreement = agreement_record(&n, &c.identity.participant_id, now);
                        effects.ledger.extend(agreement_entry(&n, now));
                    }
                    tracing::info!(pid = %n.id, role = %n.role, to = %to, "negotiation transition (acknowledged)");
                }
                Err(illegal) => {
                    tracing::error!(pid = %n.id, %illegal, "acknowledged step no longer fits the state");
                }
            }
            n.idle();
            n.last_error = None;
        }
        Outcome::LocalOnly => {
            let reason = n
                .body
                .outgoing_termination
                .as_ref()
                .map_or_else(|| "terminated".to_owned(), |t| t.reason.clone());
            local_termination(
                &mut n,
                now,
                &mut effects,
                format!(
                    "{reason} (terminated locally: the counterparty never acknowledged the request, so it holds no process to terminate)"
                ),
            );
        }
        Outcome::Failed { error, permanent } => {
            n.attempts += 1;
            n.last_error = Some(error.clone());
            let limit = if *permanent {
                cfg.max_attempts.min(3)
            } else {
                cfg.max_attempts
            };
            tracing::warn!(pid = %n.id, step = step.as_str(), attempt = n.attempts, limit, %error, "negotiation message failed");
            if n.attempts < limit {
                let wait = backoff(cfg.retry_base_ms, cfg.retry_max_secs, n.attempts - 1);
                n.next_attempt_at =
                    Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
            } else if step == Step::Terminate {
                let reason = n
                    .body
                    .outgoing_termination
                    .as_ref()
                    .map(|t| t.reason.clone())
                    .unwrap_or_default();
                let why = format!(
                    "{reason}{}the termination could not be delivered after {} attempts ({error}); terminated locally",
                    if reason.is_empty() { "" } else { "; " },
                    n.attempts
                );
                local_termination(&mut n, now, &mut effects, why);
            } else {
                let reason = format!(
                    "gave up sending the {} message after {} attempts: {error}",
                    step.as_str(),
                    n.attempts
                );
                n.body.log(now, Actor::Local, reason.clone());
                super::inbound::terminate_with(&mut n, "delivery-failed", reason, now);
                // Keep the failure visible while the termination is on its way.
                n.last_error = Some(error.clone());
            }
        }
    }
    (n, effects)
}

fn local_termination(
    n: &mut Negotiation,
    now: DateTime<Utc>,
    effects: &mut Effects,
    reason: String,
) {
    let from = n.state;
    n.state = Some(NegotiationState::Terminated);
    n.body.outgoing_termination = None;
    n.body.termination = Some(Termination {
        by: Actor::Local,
        code: Some("delivery-failed".into()),
        reason: reason.clone(),
    });
    n.body.log(now, Actor::Local, reason);
    effects.ledger.push(state_entry(
        n,
        now,
        from,
        caap_contracts::negotiation::state::NegotiationEvent::Termination,
        Actor::Local,
    ));
    n.idle();
}
