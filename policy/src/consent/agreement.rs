//! Offers and agreements on personal data (MIM4): an offer on a personal-data dataset must name its purpose
//! ([`offer_purposes`]), and the agreement records the purpose, the recipient, the retention and, for
//! consent-based data, a duty to delete on withdrawal, all as ODRL in the agreement's policy
//! ([`DataAgreementTerms::apply`], read back and checked by [`DataAgreementTerms::read`]).

use caap_catalog::{IsoDuration, LawfulBasis, PersonalData};
use chrono::{TimeZone, Utc};

use super::record::add_duration;
use super::{normalize_purpose, undeclared_purpose};
use crate::FieldError;
use crate::dpv::same_purpose;
use crate::model::{
    Action, Constraint, Duty, LeftOperand, LogicalOperator, Operator, Policy, RightOperand,
};

/// The `@id` of the duty to delete the data when the data subject withdraws consent.
pub const DELETE_ON_WITHDRAWAL: &str = "urn:caap:duty:delete-on-withdrawal";
/// The `@id` of the duty to delete the data when the retention has passed.
pub const DELETE_AFTER_RETENTION: &str = "urn:caap:duty:delete-after-retention";
/// The event that triggers [`DELETE_ON_WITHDRAWAL`].
pub const CONSENT_WITHDRAWN: &str = "https://w3id.org/dpv#ConsentWithdrawn";
const XSD_DURATION: &str = "http://www.w3.org/2001/XMLSchema#duration";

/// The purposes a constraint names: `purpose eq|isA X`, `purpose isAnyOf [..]`, and those inside `and`
/// (an `or` or `xone` does not name a purpose the data is bound to). With the pointer of each operand.
fn named_purposes(constraint: &Constraint, pointer: String, out: &mut Vec<(String, String)>) {
    match constraint {
        Constraint::Atomic {
            left_operand: LeftOperand::Purpose,
            operator: Operator::Eq | Operator::IsA | Operator::IsAnyOf,
            right_operand: Some(right),
            ..
        } => {
            let pointer = format!("{pointer}/rightOperand");
            match right {
                RightOperand::String(p) | RightOperand::Reference(p) => {
                    out.push((p.clone(), pointer))
                }
                RightOperand::List(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let RightOperand::String(p) | RightOperand::Reference(p) = item {
                            out.push((p.clone(), format!("{pointer}/{i}")));
                        }
                    }
                }
                _ => {}
            }
        }
        Constraint::Logical {
            op: LogicalOperator::And | LogicalOperator::AndSequence,
            constraints,
            ..
        } => {
            for (i, c) in constraints.iter().enumerate() {
                named_purposes(c, format!("{pointer}/and/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The purposes an offer's contract policy binds a personal-data dataset to: every permission must name at
/// least one (a `purpose eq|isA|isAnyOf` constraint), and each must be one of the dataset's declared purposes
/// or narrower. The errors name the field.
pub fn offer_purposes(
    policy: &Policy,
    declaration: &PersonalData,
) -> Result<Vec<String>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut purposes: Vec<String> = Vec::new();
    if policy.permission.is_empty() {
        errors.push(FieldError::new(
            "/permission",
            "an offer on personal data grants a permission bound to a purpose",
        ));
    }
    for (i, rule) in policy.permission.iter().enumerate() {
        let mut named = Vec::new();
        for (j, c) in rule.constraint.iter().enumerate() {
            named_purposes(c, format!("/permission/{i}/constraint/{j}"), &mut named);
        }
        if named.is_empty() {
            errors.push(FieldError::new(
                format!("/permission/{i}/constraint"),
                "an offer on personal data names its purpose: add a constraint `purpose eq dpv:…`",
            ));
        }
        for (purpose, pointer) in named {
            if let Some(e) = undeclared_purpose(declaration, &purpose, pointer) {
                errors.push(e);
            } else if !purposes.iter().any(|p| same_purpose(p, &purpose)) {
                purposes.push(normalize_purpose(&purpose));
            }
        }
    }
    if errors.is_empty() {
        Ok(purposes)
    } else {
        Err(errors)
    }
}

/// What an agreement on personal data records (beyond the DSP agreement's own fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataAgreementTerms {
    /// The purpose agreed, one of the dataset's (`dpv:X`).
    pub purpose: String,
    /// The recipient, the consumer's participant id (the permission's assignee).
    pub recipient: String,
    /// The lawful basis of the dataset.
    pub lawful_basis: LawfulBasis,
    /// How long the recipient may keep the data, an ISO 8601 duration.
    pub retention: String,
}

impl DataAgreementTerms {
    /// The terms for sharing a dataset with `declaration` for `purpose` with `recipient`; the purpose must be
    /// one the dataset serves (or narrower) and the dataset must declare its retention.
    pub fn new(
        declaration: &PersonalData,
        purpose: &str,
        recipient: &str,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        errors.extend(undeclared_purpose(declaration, purpose, "/purpose"));
        if recipient.trim().is_empty() {
            errors.push(FieldError::new("/recipient", "must not be empty"));
        }
        let retention = declaration.retention.clone().unwrap_or_else(|| {
            errors.push(FieldError::new(
                "/personalData/retention",
                "an agreement on personal data states how long the recipient may keep it; declare the \
                 dataset's retention",
            ));
            String::new()
        });
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            purpose: normalize_purpose(purpose),
            recipient: recipient.to_owned(),
            lawful_basis: declaration.lawful_basis,
            retention,
        })
    }

    /// `policy` with these terms written into every permission: `purpose eq` the purpose, the recipient as
    /// assignee, a duty to delete once the retention has passed (`elapsedTime gteq`), and for consent-based
    /// data a duty to delete when consent is withdrawn (`event gt dpv:ConsentWithdrawn`).
    pub fn apply(&self, policy: &Policy) -> Policy {
        let mut out = policy.clone();
        for rule in &mut out.permission {
            rule.assignee = Some(self.recipient.clone());
            rule.constraint.push(Constraint::atomic(
                LeftOperand::Purpose,
                Operator::Eq,
                RightOperand::Reference(self.purpose.clone()),
            ));
            let mut retention = Duty::new(Action::Delete).with_constraint(Constraint::atomic(
                LeftOperand::ElapsedTime,
                Operator::Gteq,
                RightOperand::Typed {
                    value: self.retention.clone(),
                    datatype: XSD_DURATION.into(),
                },
            ));
            retention.uid = Some(DELETE_AFTER_RETENTION.into());
            rule.duty.push(retention);
            if self.lawful_basis.is_consent() {
                let mut withdrawal = Duty::new(Action::Delete).with_constraint(Constraint::atomic(
                    LeftOperand::Event,
                    Operator::Gt,
                    RightOperand::Reference(CONSENT_WITHDRAWN.into()),
                ));
                withdrawal.uid = Some(DELETE_ON_WITHDRAWAL.into());
                rule.duty.push(withdrawal);
            }
        }
        out
    }

    /// Reads the terms back from an agreement's policy and checks them against the dataset's declaration:
    /// every permission binds the same purpose (one of the dataset's) and recipient, carries the duty to
    /// delete after a retention no longer than the declared one and, for consent-based data, the duty to
    /// delete on withdrawal. The errors name the field.
    pub fn read(policy: &Policy, declaration: &PersonalData) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut found: Option<Self> = None;
        if policy.permission.is_empty() {
            errors.push(FieldError::new(
                "/permission",
                "an agreement grants a permission",
            ));
        }
        for (i, rule) in policy.permission.iter().enumerate() {
            let at = |rest: &str| format!("/permission/{i}{rest}");
            let purpose = rule.constraint.iter().find_map(|c| match c {
                Constraint::Atomic {
                    left_operand: LeftOperand::Purpose,
                    operator: Operator::Eq,
                    right_operand: Some(RightOperand::Reference(p) | RightOperand::String(p)),
                    ..
                } => Some(p.clone()),
                _ => None,
            });
            let Some(purpose) = purpose else {
                errors.push(FieldError::new(
                    at("/constraint"),
                    "names no purpose (`purpose eq dpv:…`)",
                ));
                continue;
            };
            errors.extend(undeclared_purpose(declaration, &purpose, at("/constraint")));
            let Some(recipient) = policy.effective_assignee(rule).map(str::to_owned) else {
                errors.push(FieldError::new(at("/assignee"), "names no recipient"));
                continue;
            };
            let retention = duty(rule, DELETE_AFTER_RETENTION).and_then(|d| {
                d.constraint.iter().find_map(|c| match c {
                    Constraint::Atomic {
                        left_operand: LeftOperand::ElapsedTime,
                        operator: Operator::Gteq,
                        right_operand:
                            Some(RightOperand::Typed { value, .. } | RightOperand::String(value)),
                        ..
                    } => Some(value.clone()),
                    _ => None,
                })
            });
            let Some(retention) = retention else {
                errors.push(FieldError::new(
                    at("/duty"),
                    format!("has no duty `{DELETE_AFTER_RETENTION}` to delete after the retention"),
                ));
                continue;
            };
            if !within(&retention, declaration.retention.as_deref()) {
                errors.push(FieldError::new(
                    at("/duty"),
                    format!(
                        "retention `{retention}` is not an ISO 8601 duration within the dataset's ({})",
                        declaration.retention.as_deref().unwrap_or("none declared")
                    ),
                ));
            }
            if declaration.is_consent_based() {
                let withdrawal = duty(rule, DELETE_ON_WITHDRAWAL).is_some_and(|d| {
                    d.constraint.iter().any(|c| {
                        matches!(c, Constraint::Atomic {
                            left_operand: LeftOperand::Event,
                            operator: Operator::Gt,
                            right_operand: Some(RightOperand::Reference(e) | RightOperand::String(e)),
                            ..
                        } if same_purpose(e, CONSENT_WITHDRAWN))
                    })
                });
                if !withdrawal {
                    errors.push(FieldError::new(
                        at("/duty"),
                        format!(
                            "consent-based data needs the duty `{DELETE_ON_WITHDRAWAL}` to delete on withdrawal \
                             (`event gt dpv:ConsentWithdrawn`)"
                        ),
                    ));
                }
            }
            let terms = Self {
                purpose: normalize_purpose(&purpose),
                recipient,
                lawful_basis: declaration.lawful_basis,
                retention,
            };
            match &found {
                Some(first) if *first != terms => errors.push(FieldError::new(
                    at(""),
                    "binds another purpose, recipient or retention than the first permission",
                )),
                Some(_) => {}
                None => found = Some(terms),
            }
        }
        match found {
            Some(terms) if errors.is_empty() => Ok(terms),
            _ => Err(errors),
        }
    }
}

fn duty<'a>(rule: &'a crate::model::Rule, uid: &str) -> Option<&'a Duty> {
    rule.duty
        .iter()
        .find(|d| d.uid.as_deref() == Some(uid) && d.action == Action::Delete)
}

/// Whether `retention` reads and ends no later than `declared` (both counted from one fixed moment).
fn within(retention: &str, declared: Option<&str>) -> bool {
    let start = Utc.timestamp_opt(0, 0).single();
    let end = |d: &str| {
        let d = IsoDuration::parse(d)?;
        add_duration(start?, &d)
    };
    match (end(retention), declared.map(end)) {
        (Some(r), Some(Some(d))) => r <= d,
        _ => false,
    }
}
