//! The policy monitor: re-evaluates running transfers this connector provides and suspends the ones their
//! agreement no longer permits (a time window closed, an agreement withdrawn), telling the consumer why.
//! With DCP it also re-checks the credentials each consumer last presented: a revoked, suspended or expired
//! credential terminates its running transfers.
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
        let mut lost: std::collections::HashMap<String, Option<String>> =
            std::collections::HashMap::new();
        for t in running.into_iter().filter(|t| t.pending.is_none()) {
            let now = self.clock.now();
            if self.config.dsp.auth.mode == crate::config::AuthMode::Dcp {
                if !lost.contains_key(&t.counterparty_id) {
                    let l = self.trust.lost_credentials(&t.counterparty_id).await;
                    lost.insert(t.counterparty_id.clone(), l);
                }
                if let Some(Some(why)) = lost.get(&t.counterparty_id) {
                    if self
                        .end_transfer(t, TStep::Terminate, "credential", why, now)
                        .await
                    {
                        suspended += 1;
                    }
                    continue;
                }
            }
            let reason = match self.data_plane().meter().usage(&t.agreement_id, now).await {
                Ok(usage) => {
                    let ctx = crate::enforce::usage_context(
                        &usage.policy,
                        &t.counterparty_id,
                        &t.body.dataset_id,
                        now,
                        0,
                        usage.first_use,
                    );
                    let decision = self.decider.decide(&usage.policy, &ctx);
                    if decision.permitted {
                        continue;
                    }
                    decision.reasons.join("; ")
                }
                Err(e) => e.to_string(),
            };
            let why = format!("the agreement's policy no longer permits this transfer: {reason}");
            if self
                .end_transfer(t, TStep::Suspend, "policy", &why, now)
                .await
            {
                suspended += 1;
            }
        }
        if suspended > 0 {
            self.wake.notify_one();
        }
        suspended
    }

    /// Owes a suspension or termination with its reason, recorded as a policy decision.
    async fn end_transfer(
        &self,
        mut t: super::model::Transfer,
        step: TStep,
        code: &str,
        why: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let expected = t.version;
        owe_with_reason(&mut t, step, code, why.to_owned(), now);
        t.body.log(now, Actor::Local, why.to_owned());
        let decision = if step == TStep::Terminate {
            "terminate"
        } else {
            "suspend"
        };
        let effects = Effects {
            ledger: vec![NewEntry {
                at: now,
                kind: EntryKind::PolicyDecision,
                subject: t.id.clone(),
                payload: serde_json::json!({"point": "monitor", "agreementId": t.agreement_id,
                    "requester": t.counterparty_id, "decision": decision, "reason": why}),
            }],
            keep_lease: true,
            ..Effects::default()
        };
        match self.store.save_transfer(&t, Some(expected), &effects).await {
            Ok(saved) => {
                self.transfer_saved(&saved);
                tracing::info!(transfer = %t.id, %why, %decision, "policy monitor ends a transfer");
                true
            }
            Err(e) => {
                tracing::debug!(transfer = %t.id, error = %e, "policy monitor: the transfer changed; next pass");
                false
            }
        }
    }
}
