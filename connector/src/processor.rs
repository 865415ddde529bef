//! The processor: the only place protocol messages are sent from.
//!
//! It claims due negotiations and transfers from the store with a lease (so replicas on one PostgreSQL never
//! send the same message twice), and hands each to its sender ([`crate::negotiation::processor`],
//! [`crate::transfer::processor`]), at most `negotiation.concurrency` at a time. New work wakes it at once
//! (no polling delay); it also looks every `negotiation.poll_interval_ms` for work another replica left behind
//! and sleeps no longer than until the next retry is due.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::service::Connector;

/// How often running transfers are re-evaluated against their agreements.
const MONITOR_EVERY: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true.
pub async fn run(connector: Connector, mut stop: watch::Receiver<bool>) {
    let owner = format!("caap-{}", uuid::Uuid::new_v4());
    let config = connector.config.negotiation.clone();
    let permits = Arc::new(Semaphore::new(config.concurrency));
    let mut tasks = JoinSet::new();
    let poll = Duration::from_millis(config.poll_interval_ms);
    tracing::debug!(%owner, "processor started");
    // The policy monitor runs on the same loop, about once a second.
    let mut last_monitor = std::time::Instant::now();
    loop {
        if last_monitor.elapsed() >= MONITOR_EVERY {
            last_monitor = std::time::Instant::now();
            connector.monitor_transfers().await;
        }
        let mut claimed_any = false;
        let lease_until = connector.clock.now()
            + chrono::Duration::seconds(
                i64::try_from(connector.config.limits.outbound_timeout_secs).unwrap_or(30) + 30,
            );
        let free = permits.available_permits() as u64;
        if free > 0 {
            match connector
                .store
                .claim_due_negotiations(&owner, lease_until, free)
                .await
            {
                Ok(claimed) => {
                    claimed_any |= !claimed.is_empty();
                    for n in claimed {
                        let Ok(permit) = permits.clone().acquire_owned().await else {
                            break;
                        };
                        let (c, owner) = (connector.clone(), owner.clone());
                        tasks.spawn(async move {
                            crate::negotiation::processor::process(&c, n, &owner).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming negotiation work failed"),
            }
        }
        let free = permits.available_permits() as u64;
        if free > 0 {
            match connector
                .store
                .claim_due_transfers(&owner, lease_until, free)
                .await
            {
                Ok(claimed) => {
                    claimed_any |= !claimed.is_empty();
                    for t in claimed {
                        let Ok(permit) = permits.clone().acquire_owned().await else {
                            break;
                        };
                        let (c, owner) = (connector.clone(), owner.clone());
                        tasks.spawn(async move {
                            crate::transfer::processor::process(&c, t, &owner).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming transfer work failed"),
            }
        }
        let now = connector.clock.now();
        // Work was just claimed: its completion wakes the loop, so skip asking the store when the next is due.
        let due = if claimed_any {
            None
        } else {
            [
                connector.store.next_negotiation_due().await.ok().flatten(),
                connector.store.next_transfer_due().await.ok().flatten(),
            ]
            .into_iter()
            .flatten()
            .min()
        };
        let wait = match due {
            Some(due) => (due - now).to_std().unwrap_or(Duration::ZERO).min(poll),
            None => poll,
        };
        let wait = if wait.is_zero() && permits.available_permits() == 0 {
            poll
        } else {
            wait.max(Duration::from_millis(2))
        }
        .min(MONITOR_EVERY);
        tokio::select! {
            _ = connector.wake.notified() => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    // Let messages in flight finish; their leases would expire otherwise and another replica would retry.
    while tasks.join_next().await.is_some() {}
    tracing::debug!(%owner, "processor stopped");
}
