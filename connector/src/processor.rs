//! The processor: the only place protocol messages are sent from.
//!
//! It claims due work of every process kind from the store with a lease (so replicas on one PostgreSQL never
//! send the same message twice), sends it ([`Work::send`]: [`crate::negotiation::processor`],
//! [`crate::transfer::processor`] say what is particular to each kind) and records the outcome the same way
//! for every kind: on an acknowledgement the step's transition, on a failure the error, the attempt count and
//! the next attempt (exponential back-off with jitter). After `negotiation.max_attempts` failures it gives up:
//! it owes a termination whose reason names the failure, and if even that cannot be delivered it terminates
//! the process locally. At most `negotiation.concurrency` sends run at a time. New work wakes it at once
//! (no polling delay), and so does every finished send while due work may be waiting for a permit; it also
//! looks every `negotiation.poll_interval_ms` for work another replica left behind and sleeps no longer than
//! until the next retry is due.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use caap_contracts::process::{Actor, Kind, Process, acknowledged, terminate_locally};
use chrono::{DateTime, Utc};
use reqwest::header;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::model::Counterparty;
use crate::model::negotiation::Negotiation;
use crate::model::transfer::Transfer;
use crate::outbound::describe_reqwest;
use crate::service::Connector;
use crate::store::StoreError;
use crate::store::processes::{Effects, Stored};

/// How often running transfers are re-evaluated against their agreements.
const MONITOR_EVERY: Duration = Duration::from_secs(1);

/// The file in the data directory that holds the connector's instance id.
pub const INSTANCE_FILE: &str = "instance-id";

/// The connector's stable identity as a lease owner: one per data directory, kept across restarts, so a
/// restarted connector recognizes the leases its crashed predecessor held and takes its work back at once.
/// The instance file is locked while the connector runs; a second process on the same data directory gets
/// a fresh identity of its own (and so never takes over the first one's leases).
#[derive(Debug)]
pub struct Instance {
    id: String,
    /// Held (and locked) while the connector runs.
    _lock: Option<std::fs::File>,
}

impl Instance {
    /// The instance of `data_dir` (created on first use).
    pub fn of(data_dir: &std::path::Path) -> Instance {
        let fresh = || Instance {
            id: uuid::Uuid::new_v4().simple().to_string(),
            _lock: None,
        };
        let path = data_dir.join(INSTANCE_FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path);
        let mut file = match file {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "no instance file: leases of a crashed run wait for their expiry");
                return fresh();
            }
        };
        if file.try_lock().is_err() {
            tracing::warn!(path = %path.display(), "another process runs on this data directory: a fresh instance id");
            return fresh();
        }
        use std::io::{Read, Seek, Write};
        let mut id = String::new();
        let _ = file.read_to_string(&mut id);
        let id = id.trim();
        let valid = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let id = if valid {
            id.to_owned()
        } else {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let written = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(id.as_bytes()))
                .and_then(|()| file.sync_all());
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the instance file");
            }
            id
        };
        Instance {
            id,
            _lock: Some(file),
        }
    }

    /// The stable id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Runs until `stop` turns true.
pub async fn run(connector: Connector, instance: Instance, mut stop: watch::Receiver<bool>) {
    // This run's lease owner (see `Store::claim_due`).
    let owner = format!("{}/{}", instance.id(), uuid::Uuid::new_v4().simple());
    let config = connector.config.negotiation.clone();
    let mut sends = Sends {
        permits: Arc::new(Semaphore::new(config.concurrency)),
        backlog: Arc::new(AtomicBool::new(false)),
        tasks: JoinSet::new(),
    };
    let poll = Duration::from_millis(config.poll_interval_ms);
    tracing::debug!(%owner, "processor started");
    // The policy monitor runs on the same loop, about once a second.
    let mut last_monitor = std::time::Instant::now();
    // The federated catalog's crawls: claimed under leases like the processes, on their own permits.
    let mut crawler = crate::crawler::Crawler::new(&connector, &owner);
    loop {
        if last_monitor.elapsed() >= MONITOR_EVERY {
            last_monitor = std::time::Instant::now();
            Negotiation::housekeeping(&connector).await;
            Transfer::housekeeping(&connector).await;
            crate::consent::notices::housekeeping(connector.courier(), &owner).await;
            crawler.tick(&connector).await;
        }
        let mut claimed_any = false;
        let lease_until = connector.clock.now()
            + chrono::Duration::seconds(
                i64::try_from(connector.config.limits.outbound_timeout_secs).unwrap_or(30) + 30,
            );
        // Sends that finish while the claims run wake the loop for another turn.
        sends.backlog.store(true, Ordering::Release);
        let mut limited = false;
        for (any, full) in [
            sends
                .claim::<Negotiation>(&connector, &owner, lease_until)
                .await,
            sends
                .claim::<Transfer>(&connector, &owner, lease_until)
                .await,
        ] {
            claimed_any |= any;
            limited |= full;
        }
        sends.backlog.store(limited, Ordering::Release);
        let now = connector.clock.now();
        // Work was just claimed: its completion wakes the loop if it owes more, so skip asking the store when
        // the next is due.
        let due = if claimed_any {
            None
        } else {
            [
                connector
                    .store
                    .next_due::<Negotiation>()
                    .await
                    .ok()
                    .flatten(),
                connector.store.next_due::<Transfer>().await.ok().flatten(),
            ]
            .into_iter()
            .flatten()
            .min()
        };
        let wait = match due {
            Some(due) => (due - now).to_std().unwrap_or(Duration::ZERO).min(poll),
            None => poll,
        };
        let wait = if wait.is_zero() && sends.permits.available_permits() == 0 {
            poll
        } else {
            wait.max(Duration::from_millis(2))
        }
        .min(MONITOR_EVERY);
        // A finished send does not turn the loop by itself (it wakes it when it owes a next step or frees
        // a permit work waits for): each turn asks the store for due work, and most sends end with none.
        tokio::select! {
            _ = connector.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
        reap(&mut sends.tasks);
        if *stop.borrow() {
            break;
        }
    }
    crawler.stop();
    // Let messages in flight finish; their leases would expire otherwise and another replica would retry.
    while sends.tasks.join_next().await.is_some() {}
    tracing::debug!(%owner, "processor stopped");
    drop(instance);
}

/// Drops every finished send. A finished task keeps its whole future's memory in the set until it is joined;
/// joining one per wake-up let them pile up under load (memory grew with every negotiation).
fn reap(tasks: &mut JoinSet<()>) -> usize {
    let mut reaped = 0;
    while tasks.try_join_next().is_some() {
        reaped += 1;
    }
    reaped
}

/// The sends in flight: at most `negotiation.concurrency` (the permits) at a time.
struct Sends {
    permits: Arc<Semaphore>,
    /// Set while due work may be waiting for a permit (the last claim took every free one, or none was free):
    /// each finished send then wakes the loop to claim more.
    backlog: Arc<AtomicBool>,
    tasks: JoinSet<()>,
}

impl Sends {
    /// Claims due work of kind `P` for the free permits and spawns its sends. Returns whether it claimed any,
    /// and whether the permits limited it (none free, or every free one taken: more may be due).
    async fn claim<P: Work>(
        &mut self,
        connector: &Connector,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> (bool, bool) {
        let free = self.permits.available_permits() as u64;
        if free == 0 {
            return (false, true);
        }
        let claimed = match connector
            .store
            .claim_due::<P>(owner, lease_until, free)
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(kind = P::NOUN, error = %e, "claiming work failed");
                return (false, false);
            }
        };
        let any = !claimed.is_empty();
        let full = claimed.len() as u64 >= free;
        for p in claimed {
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                break;
            };
            let (c, owner) = (connector.clone(), owner.to_owned());
            let backlog = self.backlog.clone();
            self.tasks.spawn(async move {
                process(&c, p, &owner).await;
                // A send that owes a next step has woken the loop already. Otherwise its permit wakes it only
                // while due work may be waiting for one; most sends end with nothing new to claim.
                drop(permit);
                if backlog.load(Ordering::Acquire) {
                    c.wake.notify_one();
                }
            });
        }
        (any, full)
    }
}

/// How a send ended.
#[derive(Debug)]
pub enum Outcome {
    /// Acknowledged; for an initial request, with the provider's pid; for a push, with the bytes sent.
    Acked {
        /// The provider's pid from the acknowledgement of an initial request.
        provider_pid: Option<String>,
        /// Bytes pushed.
        bytes: u64,
    },
    /// Failed; `permanent` when retrying the same message cannot help (a 4xx other than 404/408/409/429).
    Failed {
        /// Readable.
        error: String,
        /// Retrying cannot help.
        permanent: bool,
    },
    /// This side will not take the step after all (a check before sending failed): it terminates instead.
    Refused {
        /// The termination code.
        code: &'static str,
        /// What is refused, for the history (`agreement`).
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Nothing to send: the counterparty never learnt of the process, so a termination stays local.
    LocalOnly,
}

/// A kind of process the processor works on: how its steps are sent, and what an acknowledgement adds.
pub trait Work: Process + Stored + Counterparty + Send + Sync + 'static {
    /// Its name in logs.
    const NOUN: &'static str;

    /// Sends `step` (a protocol message, or whatever the step is) for the process, which `owner` holds leased.
    fn send(
        c: &Connector,
        p: &Self,
        step: <Self::Kind as Kind>::Step,
        owner: &str,
    ) -> impl Future<Output = Outcome> + Send;

    /// What the acknowledgement of `step` adds once its transition (to `to`; `None` for a step that is no
    /// protocol message) is recorded: an agreement, the next step.
    fn after_ack(
        c: &Connector,
        p: &mut Self,
        to: Option<<Self::Kind as Kind>::State>,
        bytes: u64,
        effects: &mut Effects,
        now: DateTime<Utc>,
    );

    /// After every write of the process by the processor, with what was written with it (committed).
    fn saved(c: &Connector, p: &Self, effects: &Effects) {
        let _ = (c, p, effects);
    }

    /// What the kind checks about once a second besides its due work (the transfers' policy monitor).
    fn housekeeping(c: &Connector) -> impl Future<Output = ()> + Send {
        let _ = c;
        async {}
    }
}

/// Sends one claimed process's step and records the outcome.
pub(crate) async fn process<P: Work>(c: &Connector, claimed: P, owner: &str) {
    let Some(step) = claimed.pending() else {
        return;
    };
    let outcome = P::send(c, &claimed, step, owner).await;
    // First as claimed: the write is guarded by the claim's version, so it only lands if nothing moved the
    // process meanwhile (the usual case, one statement fewer); otherwise it is read again.
    let mut unchanged = Some(claimed.clone());
    for _ in 0..5 {
        // Re-read: an inbound message may have moved the process while we were sending.
        let current = match unchanged.take() {
            Some(p) => p,
            None => match c.store.process::<P>(claimed.id()).await {
                Ok(Some(p)) => p,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(pid = %claimed.id(), error = %e, "reading the {} after a send failed", P::NOUN);
                    return;
                }
            },
        };
        if current.pending() != Some(step) || current.state() != claimed.state() {
            // The counterparty's next message already confirmed (or overtook) ours; free the process for
            // whatever it owes now.
            if let Err(e) = c.store.release_lease::<P>(claimed.id(), owner).await {
                tracing::warn!(pid = %claimed.id(), error = %e, "releasing a lease failed; it expires by itself");
            }
            c.wake.notify_one();
            return;
        }
        let expected = current.version();
        let (next, effects) = record(c, current, step, &outcome);
        match c.store.save(&next, Some(expected), &effects).await {
            Ok(saved) => {
                P::saved(c, &saved, &effects);
                if saved.pending().is_some() {
                    c.wake.notify_one();
                }
                return;
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => {
                tracing::error!(pid = %claimed.id(), error = %e, "recording a send failed; the lease will expire and the step be retried");
                return;
            }
        }
    }
}

/// The process after `outcome`, and what to write with it.
fn record<P: Work>(
    c: &Connector,
    mut p: P,
    step: <P::Kind as Kind>::Step,
    outcome: &Outcome,
) -> (P, Effects) {
    let now = c.clock.now();
    let mut effects = Effects::default();
    let name = <P::Kind as Kind>::step_name(step);
    let terminate = <P::Kind as Kind>::TERMINATE;
    // The termination that follows giving up carries on the failed attempts' count, so the count the
    // process shows at the end is the one its history names (not 0).
    let after_giving_up =
        step == terminate && p.outgoing().and_then(|t| t.code.as_deref()) == Some(GAVE_UP);
    let kept_attempts = *p.schedule().attempts;
    match outcome {
        Outcome::Acked {
            provider_pid,
            bytes,
        } => {
            if let Some(pid) = provider_pid {
                p.learn_pid(pid.clone());
            }
            match acknowledged(&mut p, step, now) {
                Ok(to) => {
                    let to = to.map(|(to, entry)| {
                        effects.ledger.push(entry);
                        tracing::info!(pid = %p.id(), role = %p.role(), %to, "{} transition (acknowledged)", P::NOUN);
                        to
                    });
                    P::after_ack(c, &mut p, to, *bytes, &mut effects, now);
                }
                Err(illegal) => {
                    tracing::error!(pid = %p.id(), %illegal, "acknowledged step no longer fits the state");
                }
            }
        }
        Outcome::LocalOnly => {
            let reason = p
                .outgoing()
                .map_or_else(|| "terminated".to_owned(), |t| t.reason.clone());
            effects.ledger.push(terminate_locally(
                &mut p,
                now,
                Some("delivery-failed".into()),
                format!(
                    "{reason} (terminated locally: the counterparty never acknowledged the request, so it holds no process to terminate)"
                ),
            ));
        }
        Outcome::Refused { code, what, reason } => {
            p.log(now, Actor::Local, format!("{what} refused: {reason}"));
            p.owe_with_reason(terminate, code, reason.clone(), now);
        }
        Outcome::Failed { error, permanent } => {
            let cfg = &c.config.negotiation;
            let limit = if *permanent {
                cfg.max_attempts.min(3)
            } else {
                cfg.max_attempts
            };
            // A termination after giving up counts on from the attempts given up on (at most
            // `max_attempts`), so it has at least as many of its own.
            let limit = if after_giving_up {
                cfg.max_attempts.saturating_mul(2)
            } else {
                limit
            };
            let attempts = {
                let schedule = p.schedule();
                *schedule.attempts += 1;
                *schedule.last_error = Some(error.clone());
                *schedule.attempts
            };
            tracing::warn!(pid = %p.id(), step = name, attempt = attempts, limit, %error, "{} step failed", P::NOUN);
            if attempts < limit {
                c.metrics.retry(P::NOUN);
                let wait = backoff(cfg.retry_base_ms, cfg.retry_max_secs, attempts - 1);
                *p.schedule().next_attempt_at =
                    Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
            } else if step == terminate {
                c.metrics.give_up(P::NOUN);
                let reason = p.outgoing().map(|t| t.reason.clone()).unwrap_or_default();
                let why = format!(
                    "{reason}{}the termination could not be delivered after {attempts} attempts ({error}); terminated locally",
                    if reason.is_empty() { "" } else { "; " },
                );
                effects.ledger.push(terminate_locally(
                    &mut p,
                    now,
                    Some("delivery-failed".into()),
                    why,
                ));
            } else {
                c.metrics.give_up(P::NOUN);
                let reason = format!(
                    "gave up sending the {name} message after {attempts} attempts: {error}"
                );
                p.log(now, Actor::Local, reason.clone());
                p.owe_with_reason(terminate, GAVE_UP, reason, now);
                // Keep the failure and the count visible while the termination is on its way.
                *p.schedule().last_error = Some(error.clone());
                *p.schedule().attempts = attempts;
            }
        }
    }
    if after_giving_up && p.pending().is_none() {
        // Ended (acknowledged or terminated locally): the count stays what the history says.
        let s = p.schedule();
        *s.attempts = (*s.attempts).max(kept_attempts);
    }
    (p, effects)
}

/// The termination code of a process whose step was given up on.
const GAVE_UP: &str = "delivery-failed";

/// What the acknowledgement of an initial request must be: an `A` (called `name`) with a provider pid.
pub(crate) struct Ack<A> {
    /// The type's name, for errors.
    pub name: &'static str,
    /// Its provider pid.
    pub provider_pid: fn(A) -> String,
}

/// POSTs `message` to the counterparty `to` at its `address`; with `ack`, see [`post`].
pub(crate) async fn post_to<A: DeserializeOwned>(
    c: &Connector,
    (to, address): (&str, &str),
    message: &caap_contracts::process::Outgoing,
    ack: Option<Ack<A>>,
) -> Outcome {
    post(c, to, &message.url(address), &message.body, ack).await
}

/// POSTs a protocol message to the counterparty `to`. With `ack`, the acknowledgement must be an `A` whose
/// provider pid is not empty: the answer to an initial request.
pub(crate) async fn post<A: DeserializeOwned>(
    c: &Connector,
    to: &str,
    url: &str,
    body: &Value,
    ack: Option<Ack<A>>,
) -> Outcome {
    let auth = match c.outbound.authorization(Some(to)) {
        Ok(a) => a,
        Err(e) => {
            return Outcome::Failed {
                error: format!("cannot authorize the message: {e}"),
                permanent: false,
            };
        }
    };
    // One attempt: a peer that accepts and never answers costs `limits.attempt_timeout_secs`, not more.
    let attempt = c.config.limits.attempt_timeout_secs;
    let mut req = c
        .http
        .post(url)
        .json(body)
        .timeout(Duration::from_secs(attempt));
    if let Some(a) = &auth {
        req = req.header(header::AUTHORIZATION, a.expose());
    }
    let res = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Outcome::Failed {
                error: format!(
                    "POST {url}: no answer within {attempt} s (limits.attempt_timeout_secs)"
                ),
                permanent: false,
            };
        }
        Err(e) => {
            return Outcome::Failed {
                error: format!("POST {url}: {}", describe_reqwest(&e)),
                permanent: false,
            };
        }
    };
    let status = res.status();
    if status.is_success() {
        let Some(Ack { name, provider_pid }) = ack else {
            return Outcome::Acked {
                provider_pid: None,
                bytes: 0,
            };
        };
        return match res.json::<A>().await.map(provider_pid) {
            Ok(pid) if !pid.is_empty() => Outcome::Acked {
                provider_pid: Some(pid),
                bytes: 0,
            },
            Ok(_) => Outcome::Failed {
                error: format!("POST {url}: the acknowledgement has an empty providerPid"),
                permanent: true,
            },
            Err(e) => Outcome::Failed {
                error: format!("POST {url}: the acknowledgement is not a {name}: {e}"),
                permanent: true,
            },
        };
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

/// The wait before attempt `attempts + 1`: base · 2^attempts, capped, with ±25 % jitter.
pub fn backoff(base_ms: u64, max_secs: u64, attempts: u32) -> Duration {
    let exp = base_ms.saturating_mul(1u64 << attempts.min(20));
    let capped = exp.min(max_secs.saturating_mul(1000));
    let jitter = rand::random_range(0.75..1.25);
    Duration::from_millis((capped as f64 * jitter) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finished_sends_are_all_dropped_at_each_turn() {
        let mut tasks = JoinSet::new();
        for _ in 0..50 {
            tasks.spawn(async {});
        }
        // Without waiting on any one of them: each turn drops whatever has finished by then.
        let mut reaped = 0;
        for _ in 0..10_000 {
            reaped += reap(&mut tasks);
            if reaped == 50 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(reaped, 50);
        assert!(tasks.is_empty());
    }
}
