//! The ODRL 2.2 evaluator: a policy and an [`EvaluationContext`] in, an [`Evaluation`] out
//! (every rule's premises with their satisfaction and the reason for each failure), and from it
//! a [`Decision`] whose reason can be sent as a DSP termination reason.
//!
//! # Semantics
//! - A **rule's premises** are its action (the requested action must be the rule's action or
//!   lie below it in the `includedIn` hierarchy), its party (when the rule has an assignee:
//!   the requester is the assignee or a member of it, see [`EvaluationContext::memberships`]),
//!   its target (when both the rule and the request name one: the same asset or a member of
//!   the rule's asset collection), the refinements of its action, and its constraints.
//! - A **permission is active** when every premise is satisfied and none of its active duties
//!   is violated (a duty whose state is not yet known does not block: it falls due with the
//!   use, as the SolidLab ODRL test suite expects).
//! - A **prohibition is active** when no premise is *unsatisfied*: a constraint that cannot be
//!   evaluated (no value for its left operand, an operator that does not apply to the value)
//!   counts as satisfied for a prohibition and as unsatisfied for a permission: both fail
//!   closed.
//! - The **decision**: permitted when a permission is active and no prohibition is; when both
//!   are, the policy's conflict strategy decides (`perm` permits, `prohibit` denies, `invalid`
//!   — ODRL's default — voids the policy and denies). A violated active policy obligation
//!   denies.
//! - **Left operands** read from the context: `dateTime` (now), `elapsedTime` (now minus first
//!   use), `count` (recorded exercises of actions the rule's action includes, plus this one),
//!   `purpose` (DPV purposes, `isA` over the embedded DPV hierarchy), `recipient`, `spatial`,
//!   `caap:claim:<name>` (verified claims), and any other operand from
//!   [`EvaluationContext::facts`] (by the operand's IRI, or by the constraint's `unit`).
//! - **Operators**: `eq`, `neq`, `lt`, `lteq`, `gt`, `gteq` compare numbers, date-times
//!   (`xsd:date` is midnight UTC; a date-time without a zone is UTC), durations and, for
//!   equality, strings/IRIs; `isA` is subsumption (DPV purposes) or equality; `isPartOf` and
//!   `hasPart` use the memberships and list containment; `isAnyOf`, `isAllOf`, `isNoneOf` are set
//!   operators over the right operand's list.

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::decision::{Decision, DeonticState, EvaluationContext, PolicyDecider};
use crate::dpv;
use crate::model::{
    Action, ConflictStrategy, Constraint, Duty, LeftOperand, LogicalOperator, ODRL_NS, Operator,
    Policy, RightOperand, Rule,
};

/// The ODRL evaluator, the real [`PolicyDecider`]. Stateless and cheap to copy; construct it
/// with [`OdrlEvaluator::new`] (or `Default`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OdrlEvaluator;

impl OdrlEvaluator {
    /// The evaluator.
    pub fn new() -> Self {
        OdrlEvaluator
    }

    /// Evaluates every rule of `policy` against `ctx`, keeping the details (for a compliance
    /// report or an explanation).
    pub fn evaluate<'a>(&self, policy: &'a Policy, ctx: &'a EvaluationContext) -> Evaluation<'a> {
        evaluate_with(policy, ctx, &Hints::default())
    }
}

impl PolicyDecider for OdrlEvaluator {
    fn decide(&self, policy: &Policy, ctx: &EvaluationContext) -> Decision {
        // Permits are decided on the fast path; a denial is re-evaluated in detail so that
        // its reason can name the premises that failed.
        let fast = evaluate_mode(policy, ctx, &Hints::default(), false);
        if fast.permitted() {
            fast.decision()
        } else {
            self.evaluate(policy, ctx).decision()
        }
    }
}

/// Evaluation options the public API does not expose (used by the document path).
#[derive(Debug, Default)]
pub(crate) struct Hints {
    /// Rules (`(is_permission, index)`) whose document named no action: any action matches
    /// and no action premise is reported.
    pub(crate) any_action: Vec<(bool, usize)>,
}

/// Whether a premise holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Satisfaction {
    /// It holds.
    Satisfied,
    /// It does not hold.
    Unsatisfied,
    /// It could not be evaluated (no value, or an operator that does not apply); permissions
    /// treat it as unsatisfied and prohibitions as satisfied.
    Unknown,
}

impl Satisfaction {
    fn from_bool(b: bool) -> Self {
        if b {
            Satisfaction::Satisfied
        } else {
            Satisfaction::Unsatisfied
        }
    }

    /// The FORCE term; `Unknown` is reported as `Unsatisfied` (with the reason).
    pub fn as_str(self) -> &'static str {
        match self {
            Satisfaction::Satisfied => "Satisfied",
            Satisfaction::Unsatisfied | Satisfaction::Unknown => "Unsatisfied",
        }
    }
}

/// What a premise is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PremiseKind {
    /// The rule's action versus the requested action.
    Action,
    /// The rule's assignee versus the requester.
    Party,
    /// The rule's target versus the requested asset.
    Target,
    /// A refinement of the rule's action.
    Refinement,
    /// One of the rule's constraints.
    Constraint,
}

/// The evaluation of one premise.
#[derive(Debug, Clone)]
pub struct Premise<'a> {
    /// What it is about.
    pub kind: PremiseKind,
    /// Whether it holds.
    pub satisfaction: Satisfaction,
    /// Why it does not hold (set when it is not satisfied).
    pub reason: Option<String>,
    /// For constraint and refinement premises, the constraint's evaluation.
    pub constraint: Option<ConstraintEval<'a>>,
}

/// The evaluation of one constraint (atomic or logical).
#[derive(Debug, Clone)]
pub struct ConstraintEval<'a> {
    /// The constraint.
    pub constraint: &'a Constraint,
    /// Whether it holds.
    pub satisfaction: Satisfaction,
    /// The value the left operand had (for atomic constraints), as text.
    pub left_value: Option<String>,
    /// Why it does not hold.
    pub reason: Option<String>,
    /// The operands of a logical constraint, in order (for `andSequence`, only those evaluated).
    pub operands: Vec<ConstraintEval<'a>>,
}

/// The evaluation of one permission or prohibition.
#[derive(Debug, Clone)]
pub struct RuleEval<'a> {
    /// The rule.
    pub rule: &'a Rule,
    /// Whether it is a permission (else a prohibition).
    pub is_permission: bool,
    /// Its premises: action, party, target, refinements, constraints (those that apply).
    pub premises: Vec<Premise<'a>>,
    /// Its duties (permissions) or remedies (prohibitions).
    pub duties: Vec<DutyEval<'a>>,
    /// Whether the rule is active for the request.
    pub active: bool,
}

/// The evaluation of one duty.
#[derive(Debug, Clone)]
pub struct DutyEval<'a> {
    /// The duty.
    pub duty: &'a Duty,
    /// Its constraints.
    pub premises: Vec<Premise<'a>>,
    /// Whether it applies (its constraints hold; undecidable constraints count as holding).
    pub active: bool,
    /// Its state according to the context.
    pub state: DeonticState,
}

/// A policy evaluated against a context. [`Evaluation::decision`] summarises it.
#[derive(Debug, Clone)]
pub struct Evaluation<'a> {
    /// The policy.
    pub policy: &'a Policy,
    /// The context.
    pub context: &'a EvaluationContext,
    /// The permissions, in policy order.
    pub permissions: Vec<RuleEval<'a>>,
    /// The prohibitions, in policy order.
    pub prohibitions: Vec<RuleEval<'a>>,
    /// The policy-level obligations.
    pub obligations: Vec<DutyEval<'a>>,
}

pub(crate) fn evaluate_with<'a>(
    policy: &'a Policy,
    ctx: &'a EvaluationContext,
    hints: &Hints,
) -> Evaluation<'a> {
    evaluate_mode(policy, ctx, hints, true)
}

/// Evaluates; without `detail`, rules stop at their first failing premise and no reason or
/// left-operand text is built (the fast path of [`PolicyDecider::decide`] for permits).
pub(crate) fn evaluate_mode<'a>(
    policy: &'a Policy,
    ctx: &'a EvaluationContext,
    hints: &Hints,
    detail: bool,
) -> Evaluation<'a> {
    let env = Env {
        policy,
        ctx,
        detail,
    };
    let permissions = policy
        .permission
        .iter()
        .enumerate()
        .map(|(i, r)| env.rule(r, true, hints.any_action.contains(&(true, i))))
        .collect();
    let prohibitions = policy
        .prohibition
        .iter()
        .enumerate()
        .map(|(i, r)| env.rule(r, false, hints.any_action.contains(&(false, i))))
        .collect();
    let obligations = policy.obligation.iter().map(|d| env.duty(d)).collect();
    Evaluation {
        policy,
        context: ctx,
        permissions,
        prohibitions,
        obligations,
    }
}

impl Evaluation<'_> {
    /// Whether the request is permitted (see the module documentation for the rules).
    pub fn permitted(&self) -> bool {
        self.verdict().0
    }

    /// The decision with a human-readable reason (suitable as a DSP termination reason).
    pub fn decision(&self) -> Decision {
        let (permitted, reason) = self.verdict();
        Decision {
            permitted,
            reasons: vec![reason],
        }
    }

    fn request_phrase(&self) -> String {
        let ctx = self.context;
        let mut s = format!("{} by {}", ctx.action, ctx.participant_id);
        if let Some(target) = &ctx.target {
            s.push_str(&format!(" on {target}"));
        }
        s
    }

    fn verdict(&self) -> (bool, String) {
        let policy_id = self.policy.id.as_deref().unwrap_or("(no id)");
        if let Some(d) = self
            .obligations
            .iter()
            .find(|d| d.active && d.state == DeonticState::Violated)
        {
            return (
                false,
                format!(
                    "denied under policy {policy_id}: the obligation to {} ({}) is violated",
                    d.duty.action,
                    d.duty.uid.as_deref().unwrap_or("no id")
                ),
            );
        }
        let permit = self.permissions.iter().find(|r| r.active);
        let prohibit = self.prohibitions.iter().find(|r| r.active);
        match (permit, prohibit) {
            (Some(p), None) => (
                true,
                format!(
                    "permitted under policy {policy_id}: {} allows {}",
                    rule_name(p),
                    self.request_phrase()
                ),
            ),
            (None, Some(p)) => (
                false,
                format!(
                    "denied under policy {policy_id}: {} forbids {}{}",
                    rule_name(p),
                    self.request_phrase(),
                    prohibition_detail(p)
                ),
            ),
            (Some(perm), Some(proh)) => match self.policy.conflict {
                Some(ConflictStrategy::Perm) => (
                    true,
                    format!(
                        "permitted under policy {policy_id}: {} and {} conflict, and the policy's \
                         conflict strategy 'perm' lets the permission win",
                        rule_name(perm),
                        rule_name(proh)
                    ),
                ),
                Some(ConflictStrategy::Prohibit) => (
                    false,
                    format!(
                        "denied under policy {policy_id}: {} forbids {} and the policy's conflict \
                         strategy 'prohibit' lets it win over {}{}",
                        rule_name(proh),
                        self.request_phrase(),
                        rule_name(perm),
                        prohibition_detail(proh)
                    ),
                ),
                Some(ConflictStrategy::Invalid) | None => (
                    false,
                    format!(
                        "denied: policy {policy_id} is void for this request because {} and {} \
                         conflict (conflict strategy 'invalid'{})",
                        rule_name(perm),
                        rule_name(proh),
                        if self.policy.conflict.is_none() {
                            ", ODRL's default"
                        } else {
                            ""
                        }
                    ),
                ),
            },
            (None, None) => {
                if self.permissions.is_empty() {
                    return (
                        false,
                        format!(
                            "denied under policy {policy_id}: the policy grants no permission, so \
                             {} is not allowed",
                            self.request_phrase()
                        ),
                    );
                }
                let why: Vec<String> = self
                    .permissions
                    .iter()
                    .take(3)
                    .map(|r| format!("{}: {}", rule_name(r), inactive_reason(r)))
                    .collect();
                let more = self.permissions.len().saturating_sub(3);
                let mut reason = format!(
                    "denied under policy {policy_id}: no permission allows {}; {}",
                    self.request_phrase(),
                    why.join("; ")
                );
                if more > 0 {
                    reason.push_str(&format!(" (and {more} more permissions do not apply)"));
                }
                (false, reason)
            }
        }
    }
}

fn rule_name(r: &RuleEval<'_>) -> String {
    let kind = if r.is_permission {
        "permission"
    } else {
        "prohibition"
    };
    match &r.rule.uid {
        Some(uid) => format!("the {kind} {uid} ({})", r.rule.action),
        None => format!("the {kind} to {}", r.rule.action),
    }
}

fn prohibition_detail(r: &RuleEval<'_>) -> String {
    let unknown: Vec<&str> = r
        .premises
        .iter()
        .filter(|p| p.satisfaction == Satisfaction::Unknown)
        .filter_map(|p| p.reason.as_deref())
        .collect();
    if unknown.is_empty() {
        String::new()
    } else {
        format!(
            " (applied because it cannot be ruled out: {})",
            unknown.join("; ")
        )
    }
}

fn inactive_reason(r: &RuleEval<'_>) -> String {
    if let Some(p) = r
        .premises
        .iter()
        .find(|p| p.satisfaction != Satisfaction::Satisfied)
    {
        return p
            .reason
            .clone()
            .unwrap_or_else(|| "a premise is not satisfied".to_owned());
    }
    if let Some(d) = r
        .duties
        .iter()
        .find(|d| d.active && d.state == DeonticState::Violated)
    {
        return format!(
            "its duty to {} ({}) has been violated",
            d.duty.action,
            d.duty.uid.as_deref().unwrap_or("no id")
        );
    }
    "it does not apply".to_owned()
}

struct Env<'a> {
    policy: &'a Policy,
    ctx: &'a EvaluationContext,
    detail: bool,
}

impl<'a> Env<'a> {
    fn rule(&self, rule: &'a Rule, is_permission: bool, any_action: bool) -> RuleEval<'a> {
        let ctx = self.ctx;
        let mut premises = Vec::with_capacity(3 + rule.refinement.len() + rule.constraint.len());
        if !any_action {
            let ok = rule.action.includes(ctx.action);
            premises.push(Premise {
                kind: PremiseKind::Action,
                satisfaction: Satisfaction::from_bool(ok),
                reason: (!ok && self.detail).then(|| {
                    format!(
                        "the requested action {} is not {} or an action it includes",
                        ctx.action, rule.action
                    )
                }),
                constraint: None,
            });
        }
        if self.stop(&premises, is_permission) {
            return self.inactive(rule, is_permission, premises);
        }
        if let Some(assignee) = self.policy.effective_assignee(rule) {
            let ok = self.is_member(&ctx.participant_id, assignee);
            premises.push(Premise {
                kind: PremiseKind::Party,
                satisfaction: Satisfaction::from_bool(ok),
                reason: (!ok && self.detail).then(|| {
                    format!(
                        "the requester {} is not the assignee {assignee} nor a member of it",
                        ctx.participant_id
                    )
                }),
                constraint: None,
            });
        }
        if self.stop(&premises, is_permission) {
            return self.inactive(rule, is_permission, premises);
        }
        if let Some(target) = self.policy.effective_target(rule)
            && let Some(requested) = &ctx.target
        {
            let ok = self.is_member(requested, target);
            premises.push(Premise {
                kind: PremiseKind::Target,
                satisfaction: Satisfaction::from_bool(ok),
                reason: (!ok && self.detail).then(|| {
                    format!("the requested asset {requested} is not {target} nor part of it")
                }),
                constraint: None,
            });
        }
        for c in &rule.refinement {
            if self.stop(&premises, is_permission) {
                return self.inactive(rule, is_permission, premises);
            }
            let eval = self.constraint(c, rule.action, 0);
            premises.push(premise(
                PremiseKind::Refinement,
                eval,
                "the action refinement",
            ));
        }
        for c in &rule.constraint {
            if self.stop(&premises, is_permission) {
                return self.inactive(rule, is_permission, premises);
            }
            let eval = self.constraint(c, rule.action, 0);
            premises.push(premise(PremiseKind::Constraint, eval, "the constraint"));
        }
        if self.stop(&premises, is_permission) {
            return self.inactive(rule, is_permission, premises);
        }
        let duties: Vec<DutyEval<'a>> = if is_permission {
            rule.duty.iter().map(|d| self.duty(d)).collect()
        } else {
            rule.remedy.iter().map(|d| self.duty(d)).collect()
        };
        let active = if is_permission {
            premises
                .iter()
                .all(|p| p.satisfaction == Satisfaction::Satisfied)
                && !duties
                    .iter()
                    .any(|d| d.active && d.state == DeonticState::Violated)
        } else {
            premises
                .iter()
                .all(|p| p.satisfaction != Satisfaction::Unsatisfied)
        };
        RuleEval {
            rule,
            is_permission,
            premises,
            duties,
            active,
        }
    }

    /// On the fast path, whether the last premise already makes the rule inactive.
    fn stop(&self, premises: &[Premise<'a>], is_permission: bool) -> bool {
        !self.detail
            && premises.last().is_some_and(|p| {
                p.satisfaction == Satisfaction::Unsatisfied
                    || (p.satisfaction == Satisfaction::Unknown && is_permission)
            })
    }

    fn inactive(
        &self,
        rule: &'a Rule,
        is_permission: bool,
        premises: Vec<Premise<'a>>,
    ) -> RuleEval<'a> {
        RuleEval {
            rule,
            is_permission,
            premises,
            duties: Vec::new(),
            active: false,
        }
    }

    fn duty(&self, duty: &'a Duty) -> DutyEval<'a> {
        let premises: Vec<Premise<'a>> = duty
            .constraint
            .iter()
            .map(|c| {
                premise(
                    PremiseKind::Constraint,
                    self.constraint(c, duty.action, 0),
                    "the duty's constraint",
                )
            })
            .collect();
        let active = premises
            .iter()
            .all(|p| p.satisfaction != Satisfaction::Unsatisfied);
        let state = duty
            .uid
            .as_ref()
            .and_then(|uid| self.ctx.duty_states.get(uid))
            .copied()
            .unwrap_or_default();
        DutyEval {
            duty,
            premises,
            active,
            state,
        }
    }

    /// Whether `member` is `collection` or (transitively) part of it.
    fn is_member(&self, member: &str, collection: &str) -> bool {
        if member == collection {
            return true;
        }
        let mut stack: Vec<&str> = vec![member];
        let mut steps = 0;
        while let Some(m) = stack.pop() {
            steps += 1;
            if steps > 1024 {
                return false;
            }
            if let Some(parents) = self.ctx.memberships.get(m) {
                for p in parents {
                    if p == collection {
                        return true;
                    }
                    stack.push(p);
                }
            }
        }
        false
    }

    fn constraint(&self, c: &'a Constraint, action: Action, depth: usize) -> ConstraintEval<'a> {
        match c {
            Constraint::Atomic {
                left_operand,
                operator,
                right_operand,
                right_operand_reference,
                unit,
                ..
            } => {
                let Some(right) = right_operand else {
                    let reference = right_operand_reference.as_deref().unwrap_or("(none)");
                    return unknown(
                        c,
                        None,
                        format!(
                            "{} cannot be evaluated: its value is given by reference \
                             ({reference}), which caap does not dereference",
                            quoted(c)
                        ),
                    );
                };
                let left = match self.left_value(left_operand, unit.as_deref(), action) {
                    Ok(v) => v,
                    Err(why) => {
                        return unknown(
                            c,
                            None,
                            format!("{} cannot be evaluated: {why}", quoted(c)),
                        );
                    }
                };
                let left_text = self.detail.then(|| left.to_string());
                match self.apply(*operator, &left, right, left_operand) {
                    Ok(true) => ConstraintEval {
                        constraint: c,
                        satisfaction: Satisfaction::Satisfied,
                        left_value: left_text,
                        reason: None,
                        operands: Vec::new(),
                    },
                    Ok(false) => {
                        let reason = left_text.as_ref().map(|text| {
                            format!(
                                "{} is not satisfied: {} is {text}",
                                quoted(c),
                                subject(left_operand)
                            )
                        });
                        ConstraintEval {
                            constraint: c,
                            satisfaction: Satisfaction::Unsatisfied,
                            left_value: left_text,
                            reason,
                            operands: Vec::new(),
                        }
                    }
                    Err(why) => {
                        let mut e = unknown(
                            c,
                            left_text,
                            format!("{} cannot be evaluated: {why}", quoted(c)),
                        );
                        if !self.detail {
                            e.reason = None;
                        }
                        e
                    }
                }
            }
            Constraint::Logical {
                op, constraints, ..
            } => {
                if depth > crate::parse::MAX_DEPTH {
                    return unknown(c, None, "logical constraints nest too deeply".to_owned());
                }
                let mut operands = Vec::with_capacity(constraints.len());
                for inner in constraints {
                    let e = self.constraint(inner, action, depth + 1);
                    let stop = *op == LogicalOperator::AndSequence
                        && e.satisfaction != Satisfaction::Satisfied;
                    operands.push(e);
                    if stop {
                        break;
                    }
                }
                let count =
                    |s: Satisfaction| operands.iter().filter(|e| e.satisfaction == s).count();
                let (yes, no, unk) = (
                    count(Satisfaction::Satisfied),
                    count(Satisfaction::Unsatisfied),
                    count(Satisfaction::Unknown),
                );
                let satisfaction = match op {
                    LogicalOperator::And | LogicalOperator::AndSequence => {
                        if no > 0 {
                            Satisfaction::Unsatisfied
                        } else if unk > 0 || operands.len() < constraints.len() {
                            Satisfaction::Unknown
                        } else {
                            Satisfaction::Satisfied
                        }
                    }
                    LogicalOperator::Or => {
                        if yes > 0 {
                            Satisfaction::Satisfied
                        } else if unk > 0 {
                            Satisfaction::Unknown
                        } else {
                            Satisfaction::Unsatisfied
                        }
                    }
                    LogicalOperator::Xone => {
                        if yes > 1 {
                            Satisfaction::Unsatisfied
                        } else if unk > 0 {
                            Satisfaction::Unknown
                        } else {
                            Satisfaction::from_bool(yes == 1)
                        }
                    }
                };
                let reason = (self.detail && satisfaction != Satisfaction::Satisfied).then(|| {
                    let failing: Vec<&str> = operands
                        .iter()
                        .filter_map(|e| e.reason.as_deref())
                        .collect();
                    match op {
                        LogicalOperator::Xone if yes > 1 => format!(
                            "{} is not satisfied: {yes} of its constraints hold, exactly one must",
                            quoted(c)
                        ),
                        LogicalOperator::Xone if yes == 0 && unk == 0 => format!(
                            "{} is not satisfied: none of its constraints holds ({})",
                            quoted(c),
                            failing.join("; ")
                        ),
                        _ => format!("{} is not satisfied ({})", quoted(c), failing.join("; ")),
                    }
                });
                ConstraintEval {
                    constraint: c,
                    satisfaction,
                    left_value: None,
                    reason,
                    operands,
                }
            }
        }
    }

    fn left_value(
        &self,
        left: &LeftOperand,
        unit: Option<&str>,
        action: Action,
    ) -> Result<Val<'a>, String> {
        let ctx = self.ctx;
        let missing = |what: &str| format!("the request carries no {what}");
        match left {
            LeftOperand::DateTime => Ok(Val::Time(ctx.now)),
            LeftOperand::ElapsedTime => {
                let first = ctx.first_use.unwrap_or(ctx.now);
                Ok(Val::Dur((ctx.now - first).num_milliseconds()))
            }
            LeftOperand::Count => {
                let used: u64 = ctx
                    .counts
                    .iter()
                    .filter(|(a, _)| action.includes(**a))
                    .map(|(_, n)| *n)
                    .sum();
                Ok(Val::Num(used.saturating_add(1) as f64))
            }
            LeftOperand::Purpose => ctx
                .purpose
                .as_deref()
                .map(|p| Val::Str(Cow::Borrowed(p)))
                .ok_or_else(|| missing("purpose")),
            LeftOperand::Recipient => ctx
                .recipient
                .as_deref()
                .map(|p| Val::Str(Cow::Borrowed(p)))
                .ok_or_else(|| missing("recipient")),
            LeftOperand::Spatial => ctx
                .spatial
                .as_deref()
                .map(|p| Val::Str(Cow::Borrowed(p)))
                .ok_or_else(|| missing("location (spatial)")),
            LeftOperand::Claim(name) => claim(&ctx.claims, name)
                .map(json_val)
                .ok_or_else(|| format!("the requester has no verified claim \"{name}\"")),
            other => {
                let key = format!("{ODRL_NS}{}", other.as_term());
                ctx.facts
                    .get(&key)
                    .or_else(|| unit.and_then(|u| ctx.facts.get(u)))
                    .map(json_val)
                    .ok_or_else(|| {
                        format!(
                            "the evaluation context carries no value for the left operand {}",
                            other.as_term()
                        )
                    })
            }
        }
    }

    fn apply(
        &self,
        op: Operator,
        left: &Val<'a>,
        right: &'a RightOperand,
        lo: &LeftOperand,
    ) -> Result<bool, String> {
        let right = right_val(right);
        let purpose = matches!(lo, LeftOperand::Purpose);
        match op {
            Operator::Eq | Operator::Neq => {
                let eq = match left {
                    Val::List(items) => {
                        let mut any = false;
                        for i in items {
                            any |= self.equal(i, &right, purpose)?;
                        }
                        any
                    }
                    _ => self.equal(left, &right, purpose)?,
                };
                Ok(if op == Operator::Eq { eq } else { !eq })
            }
            Operator::Lt | Operator::Lteq | Operator::Gt | Operator::Gteq => {
                let ord = order(left, &right).ok_or_else(|| {
                    format!(
                        "'{}' needs two numbers, date-times or durations, not {left} and {right}",
                        op.as_str()
                    )
                })?;
                Ok(match op {
                    Operator::Lt => ord == Ordering::Less,
                    Operator::Lteq => ord != Ordering::Greater,
                    Operator::Gt => ord == Ordering::Greater,
                    _ => ord != Ordering::Less,
                })
            }
            Operator::IsA => {
                let lefts = left.items();
                let rights = right.items();
                for l in &lefts {
                    for r in &rights {
                        if let (Some(a), Some(b)) = (l.text(), r.text())
                            && dpv::purpose_is_a(a, b)
                        {
                            return Ok(true);
                        }
                    }
                }
                Ok(false)
            }
            Operator::IsPartOf => {
                // Every left value is one of the right values, or part of one.
                let rights = right.items();
                for l in left.items() {
                    let mut found = false;
                    for r in &rights {
                        if self.equal(&l, r, purpose)? || self.part_of(&l, r) {
                            found = true;
                            break;
                        }
                    }
                    if !found {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Operator::HasPart => {
                // Every right value is one of the left values, or part of one.
                let lefts = left.items();
                for r in right.items() {
                    let mut found = false;
                    for l in &lefts {
                        if self.equal(l, &r, purpose)? || self.part_of(&r, l) {
                            found = true;
                            break;
                        }
                    }
                    if !found {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Operator::IsAnyOf | Operator::IsNoneOf => {
                let rights = right.items();
                let mut any = false;
                for l in left.items() {
                    for r in &rights {
                        any |= self.equal(&l, r, purpose)?;
                    }
                }
                Ok(if op == Operator::IsAnyOf { any } else { !any })
            }
            Operator::IsAllOf => {
                let lefts = left.items();
                for r in right.items() {
                    let mut found = false;
                    for l in &lefts {
                        found |= self.equal(l, &r, purpose)?;
                    }
                    if !found {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    fn part_of(&self, member: &Val<'_>, collection: &Val<'_>) -> bool {
        match (member.text(), collection.text()) {
            (Some(m), Some(c)) => self.is_member(m, c),
            _ => false,
        }
    }

    fn equal(&self, a: &Val<'_>, b: &Val<'_>, purpose: bool) -> Result<bool, String> {
        if let Some(ord) = order(a, b) {
            return Ok(ord == Ordering::Equal);
        }
        match (a, b) {
            (Val::Str(x), Val::Str(y)) => Ok(if purpose {
                dpv::same_purpose(x, y)
            } else {
                x == y || dpv::same_purpose(x, y)
            }),
            (Val::Bool(x), Val::Bool(y)) => Ok(x == y),
            (Val::Bool(x), Val::Str(y)) | (Val::Str(y), Val::Bool(x)) => {
                Ok(y.parse::<bool>().is_ok_and(|y| y == *x))
            }
            (Val::List(_), _) | (_, Val::List(_)) => {
                Err("'eq' compares single values; use isAnyOf, isAllOf or hasPart for lists".into())
            }
            _ => Ok(false),
        }
    }
}

fn premise<'a>(kind: PremiseKind, eval: ConstraintEval<'a>, _what: &str) -> Premise<'a> {
    Premise {
        kind,
        satisfaction: eval.satisfaction,
        reason: eval.reason.clone(),
        constraint: Some(eval),
    }
}

fn unknown<'a>(c: &'a Constraint, left: Option<String>, reason: String) -> ConstraintEval<'a> {
    ConstraintEval {
        constraint: c,
        satisfaction: Satisfaction::Unknown,
        left_value: left,
        reason: Some(reason),
        operands: Vec::new(),
    }
}

fn quoted(c: &Constraint) -> String {
    match c {
        Constraint::Atomic {
            uid,
            left_operand,
            operator,
            right_operand,
            ..
        } => {
            let right = right_operand
                .as_ref()
                .map(|r| right_val(r).to_string())
                .unwrap_or_default();
            let id = uid
                .as_deref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default();
            format!("the constraint \"{left_operand} {operator} {right}\"{id}")
        }
        Constraint::Logical { uid, op, .. } => {
            let id = uid
                .as_deref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default();
            format!("the '{op}' constraint \"{}\"{id}", c.describe())
        }
    }
}

fn subject(left: &LeftOperand) -> String {
    match left {
        LeftOperand::DateTime => "the current time".to_owned(),
        LeftOperand::ElapsedTime => "the time since first use (ms)".to_owned(),
        LeftOperand::Count => "the number of uses including this one".to_owned(),
        LeftOperand::Claim(name) => format!("the verified claim \"{name}\""),
        other => format!("the {}", other.as_term()),
    }
}

/// Walks a dotted claim name into nested JSON objects.
fn claim<'v>(
    claims: &'v std::collections::BTreeMap<String, Value>,
    name: &str,
) -> Option<&'v Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

// ----- values ----------------------------------------------------------------------------------

/// A value in a comparison.
#[derive(Debug, Clone)]
enum Val<'a> {
    Num(f64),
    Time(DateTime<Utc>),
    /// Milliseconds.
    Dur(i64),
    Bool(bool),
    Str(Cow<'a, str>),
    List(Vec<Val<'a>>),
}

impl<'a> Val<'a> {
    fn items(&self) -> Vec<Val<'a>> {
        match self {
            Val::List(items) => items.clone(),
            other => vec![other.clone()],
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl std::fmt::Display for Val<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Num(n) => write!(f, "{n}"),
            Val::Time(t) => write!(
                f,
                "{}",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
            Val::Dur(ms) => write!(f, "{}", format_duration(*ms)),
            Val::Bool(b) => write!(f, "{b}"),
            Val::Str(s) => f.write_str(s),
            Val::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

fn format_duration(ms: i64) -> String {
    let secs = ms / 1000;
    let (d, rem) = (secs / 86_400, secs % 86_400);
    let (h, rem) = (rem / 3600, rem % 3600);
    let (m, s) = (rem / 60, rem % 60);
    let mut out = String::from("P");
    if d != 0 {
        out.push_str(&format!("{d}D"));
    }
    out.push('T');
    out.push_str(&format!("{h}H{m}M{s}S"));
    out
}

fn json_val(v: &Value) -> Val<'_> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .map_or(Val::Str(Cow::Owned(n.to_string())), Val::Num),
        Value::Bool(b) => Val::Bool(*b),
        Value::String(s) => Val::Str(Cow::Borrowed(s)),
        Value::Array(items) => Val::List(items.iter().map(json_val).collect()),
        Value::Object(m) => match (m.get("@value"), m.get("@type").and_then(Value::as_str)) {
            (Some(Value::String(s)), Some(dt)) => typed(s, dt),
            (Some(inner), _) => json_val(inner),
            _ => match m.get("@id").and_then(Value::as_str) {
                Some(id) => Val::Str(Cow::Borrowed(id)),
                None => Val::Str(Cow::Owned(v.to_string())),
            },
        },
        Value::Null => Val::Str(Cow::Borrowed("null")),
    }
}

fn right_val(r: &RightOperand) -> Val<'_> {
    match r {
        RightOperand::String(s) | RightOperand::Reference(s) => Val::Str(Cow::Borrowed(s)),
        RightOperand::LangString { value, .. } => Val::Str(Cow::Borrowed(value)),
        RightOperand::Number(n) => n
            .as_f64()
            .map_or(Val::Str(Cow::Owned(n.to_string())), Val::Num),
        RightOperand::Boolean(b) => Val::Bool(*b),
        RightOperand::Typed { value, datatype } => typed(value, datatype),
        RightOperand::List(items) => Val::List(items.iter().map(right_val).collect()),
    }
}

fn typed<'a>(value: &'a str, datatype: &str) -> Val<'a> {
    let local = datatype
        .strip_prefix("xsd:")
        .or_else(|| datatype.strip_prefix(crate::rdf::XSD_NS))
        .unwrap_or(datatype);
    let parsed = match local {
        "dateTime" | "dateTimeStamp" | "date" => parse_time(value).map(Val::Time),
        "duration" | "dayTimeDuration" | "yearMonthDuration" => parse_duration(value).map(Val::Dur),
        "integer" | "decimal" | "double" | "float" | "int" | "long" | "short" | "byte"
        | "nonNegativeInteger" | "positiveInteger" | "nonPositiveInteger" | "negativeInteger"
        | "unsignedInt" | "unsignedLong" => value.trim().parse::<f64>().ok().map(Val::Num),
        "boolean" => match value.trim() {
            "true" | "1" => Some(Val::Bool(true)),
            "false" | "0" => Some(Val::Bool(false)),
            _ => None,
        },
        _ => None,
    };
    parsed.unwrap_or(Val::Str(Cow::Borrowed(value)))
}

/// Orders two values when they are comparable (coercing strings to the other side's kind).
fn order(a: &Val<'_>, b: &Val<'_>) -> Option<Ordering> {
    match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Time(x), Val::Time(y)) => Some(x.cmp(y)),
        (Val::Dur(x), Val::Dur(y)) => Some(x.cmp(y)),
        (Val::Num(x), Val::Str(s)) => s.trim().parse::<f64>().ok().and_then(|y| x.partial_cmp(&y)),
        (Val::Str(s), Val::Num(y)) => s.trim().parse::<f64>().ok().and_then(|x| x.partial_cmp(y)),
        (Val::Time(x), Val::Str(s)) => parse_time(s).map(|y| x.cmp(&y)),
        (Val::Str(s), Val::Time(y)) => parse_time(s).map(|x| x.cmp(y)),
        (Val::Dur(x), Val::Str(s)) => parse_duration(s).map(|y| x.cmp(&y)),
        (Val::Str(s), Val::Dur(y)) => parse_duration(s).map(|x| x.cmp(y)),
        _ => None,
    }
}

/// Parses an `xsd:dateTime` (a missing zone is UTC; a space instead of `T` is tolerated) or an
/// `xsd:date` (midnight UTC).
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let normalized = s.replacen(' ', "T", 1);
    if let Ok(t) = DateTime::parse_from_rfc3339(&normalized) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&normalized, fmt) {
            return Some(t.and_utc());
        }
    }
    let date = s.strip_suffix('Z').unwrap_or(s);
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Parses an `xsd:duration` (`P1Y2M3DT4H5M6.5S`) into milliseconds; a year is 365 days and a
/// month 30 days.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let s = s.strip_prefix('P')?;
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut total: f64 = 0.0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for ch in part.chars() {
            if ch.is_ascii_digit() || ch == '.' {
                num.push(ch);
            } else {
                let factor = units.iter().find(|(u, _)| *u == ch)?.1;
                let n: f64 = num.parse().ok()?;
                total += n * factor;
                any = true;
                num.clear();
            }
        }
        num.is_empty().then_some(())
    };
    const DAY: f64 = 86_400_000.0;
    take(
        date,
        &[
            ('Y', 365.0 * DAY),
            ('M', 30.0 * DAY),
            ('W', 7.0 * DAY),
            ('D', DAY),
        ],
    )?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        take(t, &[('H', 3_600_000.0), ('M', 60_000.0), ('S', 1000.0)])?;
    }
    if !any {
        return None;
    }
    let ms = total.round() as i64;
    Some(if neg { -ms } else { ms })
}

/// A duration as a [`TimeDelta`] (for building contexts from documents).
pub(crate) fn duration_delta(s: &str) -> Option<TimeDelta> {
    parse_duration(s).and_then(TimeDelta::try_milliseconds)
}

#[cfg(test)]
mod tests;
