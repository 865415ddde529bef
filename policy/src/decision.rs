//! The seam between policies and the places that enforce them (catalog, negotiation, transfer
//! start, every data access): an [`EvaluationContext`] in, a [`Decision`] that explains itself
//! out, behind the [`PolicyDecider`] trait.
//!
//! Everything an evaluation may depend on arrives in the context, including the current time,
//! so a decision is a pure function of `(policy, context)` and can be re-run, logged and tested.
//! Today the only decider is [`PermitAll`], the foundation's placeholder; the ODRL evaluator
//! (its own issue) implements the same trait and replaces it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::model::{Action, Policy};

/// The facts a policy decision may use. Built with [`EvaluationContext::new`] and the `with_*`
/// methods; new facts can be added later without breaking callers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EvaluationContext {
    /// The requesting participant's id (e.g. its DID), as authenticated.
    pub participant_id: String,
    /// Claims from the requester's verified credentials, by name (what `caap:claim:<name>`
    /// left operands test; a `.` in a name walks into nested objects).
    pub claims: BTreeMap<String, Value>,
    /// The action requested.
    pub action: Action,
    /// The asset requested, if the decision is about one.
    pub target: Option<String>,
    /// The purpose the requester declared (e.g. a DPV purpose IRI).
    pub purpose: Option<String>,
    /// The current time, as a parameter (this crate never reads the clock).
    pub now: DateTime<Utc>,
    /// How many times each action has already been exercised under the policy by this
    /// requester (what `count` constraints test).
    pub counts: BTreeMap<Action, u64>,
    /// When the requester first exercised the policy (what `elapsedTime` is measured from).
    pub first_use: Option<DateTime<Utc>>,
}

impl EvaluationContext {
    /// A context for `participant_id` requesting `action` at `now`, with no claims, purpose or
    /// counts.
    pub fn new(participant_id: impl Into<String>, action: Action, now: DateTime<Utc>) -> Self {
        Self {
            participant_id: participant_id.into(),
            claims: BTreeMap::new(),
            action,
            target: None,
            purpose: None,
            now,
            counts: BTreeMap::new(),
            first_use: None,
        }
    }

    /// Adds one verified claim.
    pub fn with_claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.claims.insert(name.into(), value);
        self
    }

    /// Replaces the verified claims.
    pub fn with_claims(mut self, claims: BTreeMap<String, Value>) -> Self {
        self.claims = claims;
        self
    }

    /// Sets the requested asset.
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the declared purpose.
    pub fn with_purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(purpose.into());
        self
    }

    /// Records how many times `action` has been exercised so far.
    pub fn with_count(mut self, action: Action, count: u64) -> Self {
        self.counts.insert(action, count);
        self
    }

    /// Records when the policy was first exercised.
    pub fn with_first_use(mut self, first_use: DateTime<Utc>) -> Self {
        self.first_use = Some(first_use);
        self
    }
}

/// The outcome of a policy decision, with the reasons for it (which rule, which constraint,
/// why), in the order they were established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the requested action is permitted.
    pub permitted: bool,
    /// Human-readable reasons; never empty for a decision made by a decider.
    pub reasons: Vec<String>,
}

impl Decision {
    /// A permit with one reason.
    pub fn permit(reason: impl Into<String>) -> Self {
        Self {
            permitted: true,
            reasons: vec![reason.into()],
        }
    }

    /// A denial with one reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self {
            permitted: false,
            reasons: vec![reason.into()],
        }
    }

    /// Adds a reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reasons.push(reason.into());
        self
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.permitted {
            "permitted"
        } else {
            "denied"
        };
        write!(f, "{verdict}: {}", self.reasons.join("; "))
    }
}

/// Decides whether a request is allowed under a policy. Implementations are pure: the same
/// policy and context always give the same decision.
pub trait PolicyDecider: Send + Sync {
    /// Decides `ctx` against `policy`.
    fn decide(&self, policy: &Policy, ctx: &EvaluationContext) -> Decision;
}

/// The foundation's placeholder decider: it permits every request **without evaluating the
/// policy**. It exists so the connector can be wired end to end before the ODRL evaluator lands;
/// the policy issue replaces it. Its decision says so in its reason, so logs and audit records
/// never mistake it for a real evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PermitAll;

impl PolicyDecider for PermitAll {
    fn decide(&self, policy: &Policy, ctx: &EvaluationContext) -> Decision {
        let policy_id = policy.id.as_deref().unwrap_or("(no id)");
        Decision::permit(format!(
            "PermitAll placeholder: policy {policy_id} was NOT evaluated; {} by {} is permitted \
             unconditionally until the ODRL evaluator replaces this decider",
            ctx.action, ctx.participant_id
        ))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::{PolicyKind, Rule};

    #[test]
    fn permit_all_permits_and_says_it_is_a_placeholder() {
        let mut policy = Policy::new(PolicyKind::Offer);
        policy.id = Some("urn:policy:1".into());
        policy.permission.push(Rule::new(Action::Use));
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let ctx = EvaluationContext::new("did:web:city.example", Action::Read, now)
            .with_purpose("dpv:ResearchAndDevelopment")
            .with_claim("membership", Value::from("gold"))
            .with_count(Action::Read, 3);
        let decider: &dyn PolicyDecider = &PermitAll;
        let decision = decider.decide(&policy, &ctx);
        assert!(decision.permitted);
        assert_eq!(decision.reasons.len(), 1);
        assert!(decision.reasons[0].starts_with("PermitAll placeholder"));
        assert!(decision.reasons[0].contains("urn:policy:1"));
        assert!(decision.reasons[0].contains("NOT evaluated"));
        let json = serde_json::to_value(&decision).unwrap();
        assert_eq!(json["permitted"], Value::Bool(true));
        assert!(decision.to_string().starts_with("permitted: PermitAll"));
        assert!(!Decision::deny("no").with_reason("really").permitted);
    }
}
