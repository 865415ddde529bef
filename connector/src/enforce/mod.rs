//! Policy enforcement points outside the catalog: what an agreement's policy means at negotiation time, at
//! every data access, and for transfers that are running while time passes.
//!
//! * At **negotiation**, the contract policy is evaluated as if the first use happened now, by the requester,
//!   for the purpose the offer itself names (agreeing to a purpose constraint is the consumer's declaration of
//!   it): a time window that has closed, or a credential claim the requester lacks, terminates the
//!   negotiation with the evaluator's reason.
//! * At **every data access** the agreement's policy is evaluated with the access counted: `count`
//!   constraints count the uses under the agreement, per `timeInterval` period when the rule has one (e.g.
//!   `count lteq 1000` with `timeInterval eq P1D`: at most 1000 a day), else over the agreement's life.
//! * The **monitor** re-evaluates every running transfer (without counting) and suspends the ones their
//!   policy no longer permits, with the reason.
//!
//! This module holds the pure rules (periods, durations, the evaluation context of a use); [`metering`] counts
//! the uses in the store and decides each access.

use caap_policy::{
    Action, Constraint, EvaluationContext, LeftOperand, Operator, Policy, RightOperand,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

pub mod metering;

fn atomic_constraints(policy: &Policy) -> impl Iterator<Item = &Constraint> {
    policy
        .permission
        .iter()
        .flat_map(|r| r.constraint.iter())
        .filter(|c| matches!(c, Constraint::Atomic { .. }))
}

fn text(r: &RightOperand) -> Option<&str> {
    match r {
        RightOperand::String(s) | RightOperand::Reference(s) => Some(s),
        RightOperand::Typed { value, .. } | RightOperand::LangString { value, .. } => Some(value),
        _ => None,
    }
}

/// The purpose a policy's permissions name (`purpose eq|isA X`): what the consumer commits to by agreeing.
pub fn declared_purpose(policy: &Policy) -> Option<String> {
    atomic_constraints(policy).find_map(|c| match c {
        Constraint::Atomic {
            left_operand: LeftOperand::Purpose,
            operator: Operator::Eq | Operator::IsA,
            right_operand: Some(r),
            ..
        } => text(r).map(str::to_owned),
        _ => None,
    })
}

/// The `timeInterval` a policy's permissions name (an ISO 8601 duration such as `P1D`), as written and parsed.
pub fn count_period(policy: &Policy) -> Option<(String, Duration)> {
    atomic_constraints(policy).find_map(|c| match c {
        Constraint::Atomic {
            left_operand: LeftOperand::TimeInterval,
            right_operand: Some(r),
            ..
        } => {
            let t = text(r)?;
            parse_duration(t).map(|d| (t.to_owned(), d))
        }
        _ => None,
    })
}

/// Parses the ISO 8601 durations policies use: `PnW`, `PnDTnHnMnS` (no years or months: they have no fixed
/// length).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = Duration::zero();
    let mut num = String::new();
    for ch in date.chars() {
        match ch {
            '0'..='9' => num.push(ch),
            'W' => total += Duration::weeks(num.parse().ok()?),
            'D' => total += Duration::days(num.parse().ok()?),
            _ => return None,
        }
        if !ch.is_ascii_digit() {
            num.clear();
        }
    }
    if !num.is_empty() {
        return None;
    }
    if let Some(time) = time {
        for ch in time.chars() {
            match ch {
                '0'..='9' => num.push(ch),
                'H' => total += Duration::hours(num.parse().ok()?),
                'M' => total += Duration::minutes(num.parse().ok()?),
                'S' => total += Duration::seconds(num.parse().ok()?),
                _ => return None,
            }
            if !ch.is_ascii_digit() {
                num.clear();
            }
        }
        if !num.is_empty() {
            return None;
        }
    }
    (total > Duration::zero()).then_some(total)
}

/// The start of the counting period that contains `now`, for periods counted from `origin` (the agreement's
/// signing time).
pub fn period_start(origin: DateTime<Utc>, period: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    let elapsed = (now - origin).num_milliseconds().max(0);
    let len = period.num_milliseconds().max(1);
    origin + Duration::milliseconds(elapsed - elapsed % len)
}

/// The context for evaluating an agreement's policy for `participant` at `now`, with `uses` earlier uses in
/// the current period (the use being decided is counted by the evaluator itself).
pub fn usage_context(
    policy: &Policy,
    participant: &str,
    target: &str,
    now: DateTime<Utc>,
    uses: u64,
    first_use: Option<DateTime<Utc>>,
) -> EvaluationContext {
    // An agreement names its dataset by IRI (`caap_catalog::iri`); the store knows it by its handle.
    let target = policy.target.as_deref().unwrap_or(target);
    let mut ctx = EvaluationContext::new(participant, Action::Use, now)
        .with_target(target)
        .with_recipient(participant)
        .with_count(Action::Use, uses);
    if let Some(p) = declared_purpose(policy) {
        ctx = ctx.with_purpose(p);
    }
    if let Some((written, _)) = count_period(policy) {
        ctx = ctx.with_operand(&LeftOperand::TimeInterval, Value::String(written));
    }
    if let Some(f) = first_use {
        ctx = ctx.with_first_use(f);
    }
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("P1D"), Some(Duration::days(1)));
        assert_eq!(parse_duration("PT90M"), Some(Duration::minutes(90)));
        assert_eq!(parse_duration("P1DT2H"), Some(Duration::hours(26)));
        assert_eq!(parse_duration("P2W"), Some(Duration::weeks(2)));
        assert_eq!(parse_duration("P1Y"), None);
        assert_eq!(parse_duration("P"), None);
        assert_eq!(parse_duration("1D"), None);
        assert_eq!(parse_duration("P1"), None);
    }

    #[test]
    fn periods_start_at_multiples_of_the_length() {
        let o = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let d = Duration::days(1);
        assert_eq!(period_start(o, d, o), o);
        assert_eq!(period_start(o, d, o + Duration::hours(30)), o + d);
    }

    #[test]
    fn purpose_and_period_are_read_from_the_permissions() {
        let p = caap_policy::parse_policy(&serde_json::json!({
            "@type": "Set",
            "permission": [{"action": "use", "constraint": [
                {"leftOperand": "purpose", "operator": "eq", "rightOperand": "dpv:PublicBenefit"},
                {"leftOperand": "count", "operator": "lteq", "rightOperand": 1000},
                {"leftOperand": "timeInterval", "operator": "eq", "rightOperand": "P1D"}
            ]}]
        }))
        .unwrap();
        assert_eq!(declared_purpose(&p).as_deref(), Some("dpv:PublicBenefit"));
        assert_eq!(count_period(&p).map(|x| x.1), Some(Duration::days(1)));
    }
}
