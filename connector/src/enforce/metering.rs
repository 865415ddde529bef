//! Usage metering at every data access: the agreement's policy is decided with the use counted (one atomic
//! increment reserves it first, so of two concurrent accesses at 999 of 1000 exactly one is permitted; a
//! refused access gives its use back and is recorded in the ledger with the reason).

use caap_contracts::ledger::{EntryKind, NewEntry};
use caap_policy::{Policy, PolicyDecider};
use chrono::{DateTime, Utc};

use crate::store::Store;

/// One data access: the agreement it happens under and who asks for what.
#[derive(Debug, Clone, Copy)]
pub struct Use<'a> {
    /// The agreement.
    pub agreement_id: &'a str,
    /// The requester (the agreement's consumer).
    pub requester: &'a str,
    /// The dataset.
    pub dataset_id: &'a str,
    /// What the ledger records the access under (the transfer).
    pub subject: &'a str,
}

/// An agreement's policy and its uses in the current counting period.
#[derive(Debug, Clone)]
pub struct Usage {
    /// The agreement's policy.
    pub policy: Policy,
    /// Where the current counting period starts.
    pub period_start: DateTime<Utc>,
    /// The uses in it.
    pub uses: u64,
    /// The first use ever, if any.
    pub first_use: Option<DateTime<Utc>>,
}

/// Why an access is not metered through.
#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    /// The agreement is gone or its policy does not permit this use now: 403.
    #[error("{0}")]
    Refused(String),
    /// Our fault (the store, an unreadable agreement): 500.
    #[error("{0}")]
    Internal(String),
}

fn internal(e: impl std::fmt::Display) -> MeterError {
    MeterError::Internal(e.to_string())
}

/// The meter: the store it counts in and the decider it asks.
#[derive(Clone, Copy)]
pub struct Meter<'a> {
    /// Where uses are counted.
    pub store: &'a Store,
    /// Decides the agreement's policy.
    pub decider: &'a dyn PolicyDecider,
}

impl std::fmt::Debug for Meter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter").finish_non_exhaustive()
    }
}

impl Meter<'_> {
    /// Decides one access at `now` and counts it if permitted; a refusal is recorded in the ledger.
    pub async fn check(&self, access: Use<'_>, now: DateTime<Utc>) -> Result<(), MeterError> {
        let usage = self.usage(access.agreement_id, now).await?;
        // Reserve this use first (one atomic increment), then decide with the uses before it.
        let counted = super::count_period(&usage.policy).is_some();
        let uses = if counted {
            self.store
                .record_agreement_use(access.agreement_id, usage.period_start, now)
                .await
                .map_err(internal)?
                .saturating_sub(1)
        } else {
            0
        };
        let ctx = super::usage_context(
            &usage.policy,
            access.requester,
            access.dataset_id,
            now,
            uses,
            usage.first_use,
        );
        let decision = self.decider.decide(&usage.policy, &ctx);
        if !decision.permitted {
            if counted
                && let Err(e) = self
                    .store
                    .release_agreement_use(access.agreement_id, usage.period_start)
                    .await
            {
                tracing::warn!(error = %e, "giving back a refused access's use failed");
            }
            let reason = decision.reasons.join("; ");
            let entry = NewEntry {
                at: now,
                kind: EntryKind::PolicyDecision,
                subject: access.subject.to_owned(),
                payload: serde_json::json!({"point": "data-access", "agreementId": access.agreement_id,
                    "requester": access.requester, "decision": "deny", "reason": reason, "uses": uses}),
            };
            if let Err(e) = self.store.append_ledger(&[entry]).await {
                tracing::warn!(error = %e, "recording a refused access failed");
            }
            tracing::info!(transfer = %access.subject, %reason, "data access refused by the agreement's policy");
            return Err(MeterError::Refused(format!(
                "the agreement's policy does not permit this access now: {reason}"
            )));
        }
        if !counted {
            self.store
                .record_agreement_use(access.agreement_id, usage.period_start, now)
                .await
                .map_err(internal)?;
        }
        Ok(())
    }

    /// The agreement's policy, the current counting period and the uses in it.
    pub async fn usage(&self, agreement_id: &str, now: DateTime<Utc>) -> Result<Usage, MeterError> {
        let agreement = self
            .store
            .agreement(agreement_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                MeterError::Refused(format!("agreement {agreement_id} no longer exists"))
            })?;
        let policy = caap_policy::parse_policy(&agreement.body["agreement"]).map_err(|e| {
            MeterError::Internal(format!("agreement {} is unreadable: {e}", agreement.id))
        })?;
        let period_start = match super::count_period(&policy) {
            Some((_, period)) => super::period_start(agreement.signed_at, period, now),
            None => agreement.signed_at,
        };
        let (uses, first_use) = self
            .store
            .agreement_usage(agreement_id, period_start)
            .await
            .map_err(internal)?;
        Ok(Usage {
            policy,
            period_start,
            uses,
            first_use,
        })
    }
}
