//! The seam between policies and the places that enforce them (catalog, negotiation, transfer
//! start, every data access): an [`EvaluationContext`] in, a [`Decision`] that explains itself
//! out, behind the [`PolicyDecider`] trait.
//!
//! Everything an evaluation may depend on arrives in the context, including the current time,
//! so a decision is a pure function of `(policy, context)` and can be re-run, logged and tested.
//! The real decider is [`crate::OdrlEvaluator`]; [`PermitAll`] is the foundation's
//! placeholder.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::model::{Action, LeftOperand, ODRL_NS, Policy};

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
    /// The party that receives the result of the action (what `recipient` tests).
    pub recipient: Option<String>,
    /// Where the action takes place, e.g. an ISO 3166 code or a place IRI (what `spatial`
    /// tests; `isPartOf` uses [`EvaluationContext::memberships`]).
    pub spatial: Option<String>,
    /// Known collection memberships (`odrl:partOf`): member → the collections it belongs to.
    /// Used for party and asset collections and for `isPartOf`/`hasPart`; transitive.
    pub memberships: BTreeMap<String, Vec<String>>,
    /// The deontic state of duties, by the duty's `uid` (unknown duties are `NonSet`).
    pub duty_states: BTreeMap<String, DeonticState>,
    /// Values of other left operands (e.g. `resolution`, `payAmount`, `fileFormat`), keyed by
    /// the left operand's full ODRL IRI, or by a unit/feature IRI that a constraint names in
    /// `unit`.
    pub facts: BTreeMap<String, Value>,
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
            recipient: None,
            spatial: None,
            memberships: BTreeMap::new(),
            duty_states: BTreeMap::new(),
            facts: BTreeMap::new(),
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

    /// Records how many times `action` has been exercised so far (before this request). A
    /// `count` constraint compares the number of exercises *including* the requested one, so
    /// with `count lteq 1000` the request after 1000 recorded uses is refused.
    pub fn with_count(mut self, action: Action, count: u64) -> Self {
        self.counts.insert(action, count);
        self
    }

    /// Records when the policy was first exercised.
    pub fn with_first_use(mut self, first_use: DateTime<Utc>) -> Self {
        self.first_use = Some(first_use);
        self
    }

    /// Sets the recipient of the action's result.
    pub fn with_recipient(mut self, recipient: impl Into<String>) -> Self {
        self.recipient = Some(recipient.into());
        self
    }

    /// Sets where the action takes place.
    pub fn with_spatial(mut self, spatial: impl Into<String>) -> Self {
        self.spatial = Some(spatial.into());
        self
    }

    /// Records that `member` is part of `collection` (a party, asset or place collection).
    pub fn with_membership(
        mut self,
        member: impl Into<String>,
        collection: impl Into<String>,
    ) -> Self {
        self.memberships
            .entry(member.into())
            .or_default()
            .push(collection.into());
        self
    }

    /// Records the deontic state of the duty with `uid`.
    pub fn with_duty_state(mut self, uid: impl Into<String>, state: DeonticState) -> Self {
        self.duty_states.insert(uid.into(), state);
        self
    }

    /// Records the value of a left operand that has no field of its own (e.g. `resolution`).
    pub fn with_operand(mut self, operand: &LeftOperand, value: Value) -> Self {
        let key = match operand {
            LeftOperand::Claim(name) => {
                self.claims.insert(name.clone(), value);
                return self;
            }
            other => format!("{ODRL_NS}{}", other.as_term()),
        };
        self.facts.insert(key, value);
        self
    }

    /// Records a fact by IRI (a left operand's IRI, or a unit/feature IRI).
    pub fn with_fact(mut self, iri: impl Into<String>, value: Value) -> Self {
        self.facts.insert(iri.into(), value);
        self
    }
}

/// The deontic state of a duty, as the state of the world reports it (FORCE
/// `report:deonticState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum DeonticState {
    /// Nothing is known yet: neither fulfilled nor violated.
    #[default]
    NonSet,
    /// The duty has been fulfilled.
    Fulfilled,
    /// The duty has been violated.
    Violated,
}

impl DeonticState {
    /// The FORCE term (`NonSet`, `Fulfilled`, `Violated`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeonticState::NonSet => "NonSet",
            DeonticState::Fulfilled => "Fulfilled",
            DeonticState::Violated => "Violated",
        }
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
