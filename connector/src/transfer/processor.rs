//! Sending what a transfer owes (a DSP message, or for push transfers the data): what is particular to transfers
//! for [`crate::processor`], which claims the work with a lease, sends it and records the outcome the same way
//! for every process kind.

use caap_contracts::Role;
use caap_contracts::process::Process;
use caap_contracts::transfer::message::TransferProcessAck;
use caap_contracts::transfer::process::{Documents, outgoing};
use caap_contracts::transfer::state::TransferState;
use chrono::{DateTime, Utc};
use reqwest::header;

use super::model::{Actor, TStep, Transfer};
use crate::outbound::describe_reqwest;
use crate::processor::{Ack, Outcome, Work, post_to};
use crate::service::Connector;
use crate::store::processes::Effects;
use crate::transfer::dataplane::AccessError;

impl Work for Transfer {
    const NOUN: &'static str = "transfer";

    async fn send(c: &Connector, t: &Transfer, step: TStep, owner: &str) -> Outcome {
        if step == TStep::Push {
            return push_leased(c, t, owner).await;
        }
        // The provider's first start carries the pull address with a fresh token; a resume too (the old token
        // may have expired). Push transfers carry none.
        let start_address = if step == TStep::Start && t.role == Role::Provider && !t.is_push() {
            match c.data_plane().pull_address(t, c.clock.now()) {
                Ok(a) => Some(a),
                Err(e) => {
                    return Outcome::Failed {
                        error: e.to_string(),
                        permanent: true,
                    };
                }
            }
        } else {
            None
        };
        let docs = Documents {
            agreement_id: &t.agreement_id,
            format: &t.format,
            callback: &c.identity.dsp_base,
            request_address: t.body.data_address.as_ref(),
            start_address: start_address.as_ref(),
            reason: t.body.outgoing.as_ref(),
        };
        let pids = (t.provider_pid.as_deref(), t.consumer_pid.as_deref());
        let message = match outgoing(step, t.role, pids, &docs) {
            Ok(Some(m)) => m,
            Ok(None) => return Outcome::LocalOnly,
            Err(error) => {
                return Outcome::Failed {
                    error,
                    permanent: true,
                };
            }
        };
        let ack = (step == TStep::Request).then_some(Ack {
            name: "TransferProcess",
            provider_pid: |a: TransferProcessAck| a.provider_pid,
        });
        let to = (&*t.counterparty_id, &*t.counterparty_address);
        post_to(c, to, &message, ack).await
    }

    fn after_ack(
        _c: &Connector,
        t: &mut Transfer,
        to: Option<TransferState>,
        bytes: u64,
        _effects: &mut Effects,
        now: DateTime<Utc>,
    ) {
        match to {
            None => {
                // The push went through: a finite transfer is complete.
                t.body.bytes += bytes;
                t.body
                    .log(now, Actor::Local, format!("pushed {bytes} bytes"));
                t.owe(TStep::Complete, now);
            }
            Some(TransferState::Started)
                if t.role == Role::Provider && t.is_push() && !t.body.manual =>
            {
                t.owe(TStep::Push, now);
            }
            Some(_) => {}
        }
    }

    fn saved(c: &Connector, t: &Transfer, _effects: &Effects) {
        c.transfer_saved(t);
    }

    async fn housekeeping(c: &Connector) {
        c.monitor_transfers().await;
    }
}

/// A push may outlast the lease: renew it while the data flows, so no replica starts the push again.
async fn push_leased(c: &Connector, t: &Transfer, owner: &str) -> Outcome {
    let renewer = {
        let (c, id, owner) = (c.clone(), t.id.clone(), owner.to_owned());
        tokio::spawn(async move {
            let secs = c.config.limits.outbound_timeout_secs;
            let every = std::time::Duration::from_secs((secs / 2).max(1));
            loop {
                tokio::time::sleep(every).await;
                let until = c.clock.now()
                    + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(30) + 30);
                if let Err(e) = c.store.renew_lease::<Transfer>(&id, &owner, until).await {
                    tracing::warn!(pid = %id, error = %e, "renewing a push lease failed");
                }
            }
        })
    };
    let outcome = push(c, t).await;
    renewer.abort();
    outcome
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
    let plane = c.data_plane();
    if let Err(e) = plane.check_access(t).await {
        return Outcome::Failed {
            error: e.to_string(),
            permanent: true,
        };
    }
    let opened = match plane.open_source(&t.body.dataset_id, None, None).await {
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
    let opened = match plane
        .release(&t.id, &t.agreement_id, &t.body.dataset_id, opened)
        .await
    {
        Ok(o) => o,
        Err(e) => {
            return Outcome::Failed {
                error: e.to_string(),
                permanent: true,
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
        Ok(r) if r.status().is_success() => Outcome::Acked {
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
