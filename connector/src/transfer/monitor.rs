//! The policy monitor: re-evaluates running transfers this connector provides and suspends the ones their
//! agreement no longer permits (a time window closed, an agreement withdrawn), telling the consumer why.
//! Count limits are not its business: they refuse single accesses (the quota comes back with the next period).

use caap_contracts::ledger::{EntryKind, NewEntry};

use super::inbound::owe_with_reason;
use super::model::{Actor, TStep};
use crate::service::Connector;
use crate::store::negotiations::Effects;

impl Connector {
    /// One pass over the running transfers. Returns how many were suspended.
    pub async fn monitor_transfers(&self) -> usize {
        let running = match self.store.running_provided_transfers().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "policy monitor: listing running transfers failed");
                return 0;
            }
        };
        let mut suspended = 0;
        for t in running.into_iter().filter(|t| t.pending.is_none()) {
            let now = self.clock.now();
            let reason = match self.usage_of(&t, now).await {
                Ok((policy, _, _, first_use)) => {
                    let ctx = crate::enforce::usage_context(
                        &policy,
                        &t.counterparty_id,
                        &t.body.dataset_id,
                        now,
                        0,
                        first_use,
                    );
                    let decision = self.decider.decide(&policy, &ctx);
                    if decision.permitted {
                        continue;
                    }
                    decision.reasons.join("; ")
                }
                Err(e) => e.to_string(),
            };
            let mut t = t;
            let expected = t.version;
            let why = format!("the agreement's policy no longer permits this transfer: {reason}");
            owe_with_reason(&mut t, TStep::Suspend, "policy", why.clone(), now);
            t.body.log(now, Actor::Local, why.clone());
            let effects = Effects {
                ledger: vec![NewEntry {
                    at: now,
                    kind: EntryKind::PolicyDecision,
                    subject: t.id.clone(),
                    payload: serde_json::json!({"point": "monitor", "agreementId": t.agreement_id,
                        "requester": t.counterparty_id, "decision": "suspend", "reason": why}),
                }],
                keep_lease: true,
                ..Effects::default()
            };
            match self.store.save_transfer(&t, Some(expected), &effects).await {
                Ok(saved) => {
                    self.transfer_saved(&saved);
                    tracing::info!(transfer = %t.id, %reason, "policy monitor suspends a transfer");
                    suspended += 1;
                }
                Err(e) => {
                    tracing::debug!(transfer = %t.id, error = %e, "policy monitor: the transfer changed; next pass")
                }
            }
        }
        if suspended > 0 {
            self.wake.notify_one();
        }
        suspended
    }
}
