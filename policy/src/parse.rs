//! Parsing ODRL 2.2 policies from JSON (`serde_json::Value`), failing closed.
//!
//! Accepted spellings, which may be mixed freely:
//! - property names bare (`"action"`, the DSP 2025-1 compact form), `odrl:`-prefixed
//!   (`"odrl:action"`) or as full IRIs (`"http://www.w3.org/ns/odrl/2/action"`); `uid` is `@id`;
//! - terms (actions, operators, left operands, policy types, conflict strategies) bare (`"use"`),
//!   prefixed (`"odrl:use"`), as full IRIs, or wrapped as `{"@id": "odrl:use"}`;
//! - an action with refinements as `{"rdf:value": {"@id": "odrl:print"}, "refinement": [...]}`;
//! - a single value where an array is allowed, a one-element array where a single value is
//!   expected, and `{"@list": [...]}` / `{"@set": [...]}` for arrays;
//! - a policy-level `action`, which applies to every top-level rule that names none.
//!
//! Rejected, each with a [`FieldError`] naming the JSON pointer of the field:
//! - actions, operators and left operands outside the ODRL 2.2 vocabulary (and the
//!   `caap:claim:<name>` extension), deprecated ODRL 2.1 terms, policy types other than
//!   `Set`, `Offer`, `Agreement` and `Policy`;
//! - unknown properties that are bare or in the ODRL namespace (a typo such as `"constraints"`
//!   would otherwise silently drop conditions). Properties in other namespaces (`dct:title`,
//!   `dspace:timestamp`, …) are metadata and are ignored, as is `@context`. The DSP agreement's
//!   bare `timestamp` is accepted and left to the contracts crate;
//! - constructs caap cannot honour safely: `inheritFrom` (the parent cannot be fetched here),
//!   asset or party collections with refinements, rules and constraints given by reference;
//! - wrong JSON types, missing `action`/`leftOperand`/`operator`/`rightOperand`, logical
//!   constraints with no operand or with more than one operator, duties on prohibitions,
//!   remedies on permissions, and a policy without any rule.
//!
//! Every error found is reported, not only the first. No input makes the parser panic; nesting
//! deeper than [`MAX_DEPTH`] is an error rather than a stack overflow.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::model::{
    Action, CLAIM_PREFIX, ConflictStrategy, Constraint, DEPRECATED_ACTIONS,
    DEPRECATED_LEFT_OPERANDS, Duty, LeftOperand, LogicalOperator, Operator, Policy, PolicyKind,
    RightOperand, Rule, strip_odrl,
};
use crate::{FieldError, PolicyError};

/// How deeply constraints and duties may nest (logical constraints, refinements, consequences).
pub const MAX_DEPTH: usize = 32;

const RDF_VALUE_IRI: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#value";

const POLICY_KEYS: &[&str] = &[
    "@id",
    "@type",
    "profile",
    "conflict",
    "permission",
    "prohibition",
    "obligation",
    "target",
    "assigner",
    "assignee",
    "action",
    "timestamp",
];
const PERMISSION_KEYS: &[&str] = &[
    "@id",
    "@type",
    "action",
    "target",
    "assigner",
    "assignee",
    "constraint",
    "duty",
];
const PROHIBITION_KEYS: &[&str] = &[
    "@id",
    "@type",
    "action",
    "target",
    "assigner",
    "assignee",
    "constraint",
    "remedy",
];
const DUTY_KEYS: &[&str] = &[
    "@id",
    "@type",
    "action",
    "target",
    "assigner",
    "assignee",
    "constraint",
    "consequence",
];
const ACTION_KEYS: &[&str] = &["@id", "@type", "rdf:value", "refinement"];
const ATOMIC_KEYS: &[&str] = &[
    "leftOperand",
    "operator",
    "rightOperand",
    "rightOperandReference",
    "unit",
    "dataType",
];
const CONSTRAINT_KEYS: &[&str] = &[
    "@id",
    "@type",
    "leftOperand",
    "operator",
    "rightOperand",
    "rightOperandReference",
    "unit",
    "dataType",
    "and",
    "or",
    "xone",
    "andSequence",
];

/// Parses and validates an ODRL policy. See the [module documentation](self) for what is
/// accepted; all problems found are returned together in [`PolicyError::Invalid`].
pub fn parse_policy(value: &Value) -> Result<Policy, PolicyError> {
    let mut parser = Parser::default();
    let policy = parser.policy(value);
    match policy {
        Some(policy) if parser.errors.is_empty() => Ok(policy),
        _ => {
            if parser.errors.is_empty() {
                parser.error("", "the policy is invalid");
            }
            Err(PolicyError::Invalid(parser.errors))
        }
    }
}

impl Policy {
    /// Checks a policy built in code against the same rules [`parse_policy`] applies (at least one
    /// rule, valid claim names, non-empty values, …), by parsing its compact form.
    pub fn validate(&self) -> Result<(), PolicyError> {
        parse_policy(&self.to_compact_json()).map(|_| ())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RuleKind {
    Permission,
    Prohibition,
}

impl RuleKind {
    fn name(self) -> &'static str {
        match self {
            RuleKind::Permission => "permission",
            RuleKind::Prohibition => "prohibition",
        }
    }
}

/// The recognised properties of one JSON object: canonical term → (pointer, value).
struct Fields<'a> {
    map: BTreeMap<String, (String, &'a Value)>,
}

impl<'a> Fields<'a> {
    fn get(&self, term: &str) -> Option<(&str, &'a Value)> {
        self.map.get(term).map(|(ptr, v)| (ptr.as_str(), *v))
    }
}

#[derive(Default)]
struct Parser {
    errors: Vec<FieldError>,
}

type ActionWithRefinement = (Action, Vec<Constraint>);

impl Parser {
    fn error(&mut self, pointer: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(pointer, message));
    }

    // ----- policy, rules, duties -------------------------------------------------------------

    fn policy(&mut self, value: &Value) -> Option<Policy> {
        let Some(obj) = value.as_object() else {
            self.error(
                "",
                format!("a policy must be a JSON object, found {}", kind_of(value)),
            );
            return None;
        };
        let f = self.fields(obj, "", "policy", POLICY_KEYS);
        let mut policy = Policy::new(PolicyKind::Set);
        policy.id = self.opt_iri(&f, "@id");
        if let Some((ptr, v)) = f.get("@type") {
            policy.kind = self.policy_kind(v, ptr).unwrap_or_default();
        }
        if let Some((ptr, v)) = f.get("profile") {
            for (v, ptr) in self.many(v, ptr) {
                if let Some(iri) = self.iri(v, &ptr) {
                    policy.profile.push(iri);
                }
            }
        }
        if let Some((ptr, v)) = f.get("conflict") {
            policy.conflict = self.conflict(v, ptr);
        }
        policy.target = self.opt_iri(&f, "target");
        policy.assigner = self.opt_iri(&f, "assigner");
        policy.assignee = self.opt_iri(&f, "assignee");
        if let Some((ptr, v)) = f.get("timestamp")
            && !v.is_string()
        {
            self.error(
                ptr,
                format!(
                    "timestamp must be an xsd:dateTime string, found {}",
                    kind_of(v)
                ),
            );
        }
        let default_action = match f.get("action") {
            Some((ptr, v)) => self.action(v, ptr, 0),
            None => None,
        };

        let mut declared = 0;
        for kind in [RuleKind::Permission, RuleKind::Prohibition] {
            if let Some((ptr, v)) = f.get(kind.name()) {
                for (v, ptr) in self.many(v, ptr) {
                    declared += 1;
                    if let Some(rule) = self.rule(v, &ptr, kind, default_action.as_ref()) {
                        match kind {
                            RuleKind::Permission => policy.permission.push(rule),
                            RuleKind::Prohibition => policy.prohibition.push(rule),
                        }
                    }
                }
            }
        }
        if let Some((ptr, v)) = f.get("obligation") {
            for (v, ptr) in self.many(v, ptr) {
                declared += 1;
                if let Some(duty) = self.duty(v, &ptr, "obligation", default_action.as_ref(), 0) {
                    policy.obligation.push(duty);
                }
            }
        }
        if declared == 0 {
            self.error(
                "",
                "a policy needs at least one permission, prohibition or obligation",
            );
        }
        Some(policy)
    }

    fn rule(
        &mut self,
        value: &Value,
        ptr: &str,
        kind: RuleKind,
        default_action: Option<&ActionWithRefinement>,
    ) -> Option<Rule> {
        let what = kind.name();
        let obj = self.object(value, ptr, what)?;
        let keys = match kind {
            RuleKind::Permission => PERMISSION_KEYS,
            RuleKind::Prohibition => PROHIBITION_KEYS,
        };
        let f = self.fields(obj, ptr, what, keys);
        let expected_type = match kind {
            RuleKind::Permission => "Permission",
            RuleKind::Prohibition => "Prohibition",
        };
        self.check_type(&f, &[expected_type], what);
        let action = self.rule_action(&f, ptr, what, default_action, 0);
        let mut rule = Rule::new(Action::Use);
        rule.uid = self.opt_iri(&f, "@id");
        rule.target = self.opt_iri(&f, "target");
        rule.assigner = self.opt_iri(&f, "assigner");
        rule.assignee = self.opt_iri(&f, "assignee");
        rule.constraint = self.constraints(f.get("constraint"), 1);
        if let Some((ptr, v)) = f.get("duty") {
            rule.duty = self.duties(v, ptr, "duty", 1);
        }
        if let Some((ptr, v)) = f.get("remedy") {
            rule.remedy = self.duties(v, ptr, "remedy", 1);
        }
        let (action, refinement) = action?;
        rule.action = action;
        rule.refinement = refinement;
        Some(rule)
    }

    fn duties(&mut self, value: &Value, ptr: &str, what: &str, depth: usize) -> Vec<Duty> {
        let mut out = Vec::new();
        for (v, ptr) in self.many(value, ptr) {
            if let Some(duty) = self.duty(v, &ptr, what, None, depth) {
                out.push(duty);
            }
        }
        out
    }

    fn duty(
        &mut self,
        value: &Value,
        ptr: &str,
        what: &str,
        default_action: Option<&ActionWithRefinement>,
        depth: usize,
    ) -> Option<Duty> {
        if !self.depth_ok(ptr, depth) {
            return None;
        }
        let obj = self.object(value, ptr, what)?;
        let f = self.fields(obj, ptr, what, DUTY_KEYS);
        self.check_type(&f, &["Duty"], what);
        let action = self.rule_action(&f, ptr, what, default_action, depth);
        let mut duty = Duty::new(Action::Use);
        duty.uid = self.opt_iri(&f, "@id");
        duty.target = self.opt_iri(&f, "target");
        duty.assigner = self.opt_iri(&f, "assigner");
        duty.assignee = self.opt_iri(&f, "assignee");
        duty.constraint = self.constraints(f.get("constraint"), depth + 1);
        if let Some((ptr, v)) = f.get("consequence") {
            duty.consequence = self.duties(v, ptr, "consequence", depth + 1);
        }
        let (action, refinement) = action?;
        duty.action = action;
        duty.refinement = refinement;
        Some(duty)
    }

    fn rule_action(
        &mut self,
        f: &Fields<'_>,
        ptr: &str,
        what: &str,
        default_action: Option<&ActionWithRefinement>,
        depth: usize,
    ) -> Option<ActionWithRefinement> {
        match f.get("action") {
            Some((ptr, v)) => self.action(v, ptr, depth),
            None => match default_action {
                Some(action) => Some(action.clone()),
                None => {
                    self.error(
                        &child(ptr, "action"),
                        format!("a {what} needs an action, e.g. \"action\": \"use\""),
                    );
                    None
                }
            },
        }
    }

    fn action(&mut self, value: &Value, ptr: &str, depth: usize) -> Option<ActionWithRefinement> {
        let (value, ptr) = self.single(value, ptr)?;
        match value {
            Value::String(term) => self.lookup_action(term, &ptr).map(|a| (a, Vec::new())),
            Value::Object(obj) => {
                let f = self.fields(obj, &ptr, "action", ACTION_KEYS);
                self.check_type(&f, &["Action"], "action");
                let refinement = self.constraints(f.get("refinement"), depth + 1);
                let term = match (f.get("rdf:value"), f.get("@id")) {
                    (Some((vptr, v)), _) => self.term(v, vptr, "an action"),
                    (None, Some((iptr, v))) => self.term(v, iptr, "an action"),
                    (None, None) => {
                        self.error(
                            &ptr,
                            "an action object needs \"@id\" or \"rdf:value\" naming the action",
                        );
                        None
                    }
                };
                let (term, tptr) = term?;
                let action = self.lookup_action(&term, &tptr)?;
                Some((action, refinement))
            }
            other => {
                self.error(
                    &ptr,
                    format!(
                        "an action must be a term string or an object, found {}",
                        kind_of(other)
                    ),
                );
                None
            }
        }
    }

    // ----- constraints -----------------------------------------------------------------------

    fn constraints(&mut self, field: Option<(&str, &Value)>, depth: usize) -> Vec<Constraint> {
        let Some((ptr, value)) = field else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (v, ptr) in self.many(value, ptr) {
            if let Some(c) = self.constraint(v, &ptr, depth) {
                out.push(c);
            }
        }
        out
    }

    fn constraint(&mut self, value: &Value, ptr: &str, depth: usize) -> Option<Constraint> {
        if !self.depth_ok(ptr, depth) {
            return None;
        }
        let obj = self.object(value, ptr, "constraint")?;
        let f = self.fields(obj, ptr, "constraint", CONSTRAINT_KEYS);
        self.check_type(&f, &["Constraint", "LogicalConstraint"], "constraint");
        let uid = self.opt_iri(&f, "@id");

        let logical: Vec<(LogicalOperator, &str, &Value)> = LogicalOperator::ALL
            .iter()
            .filter_map(|op| f.get(op.as_str()).map(|(p, v)| (*op, p, v)))
            .collect();
        if logical.len() > 1 {
            let names: Vec<&str> = logical.iter().map(|(op, _, _)| op.as_str()).collect();
            self.error(
                ptr,
                format!(
                    "a logical constraint has exactly one of and, or, xone, andSequence; found {}",
                    names.join(", ")
                ),
            );
            return None;
        }
        if let Some(&(op, op_ptr, operands)) = logical.first() {
            let mut clean = true;
            for key in ATOMIC_KEYS {
                if let Some((p, _)) = f.get(key) {
                    self.error(
                        p,
                        format!("\"{key}\" cannot appear in a logical ({op}) constraint"),
                    );
                    clean = false;
                }
            }
            let items = self.many(operands, op_ptr);
            if items.is_empty() {
                self.error(
                    op_ptr,
                    format!("a logical ({op}) constraint needs at least one operand"),
                );
                return None;
            }
            let mut constraints = Vec::with_capacity(items.len());
            for (v, p) in items {
                if let Some(c) = self.constraint(v, &p, depth + 1) {
                    constraints.push(c);
                } else {
                    clean = false;
                }
            }
            return clean.then_some(Constraint::Logical {
                uid,
                op,
                constraints,
            });
        }

        let left_operand = match f.get("leftOperand") {
            Some((p, v)) => self
                .term(v, p, "a left operand")
                .and_then(|(t, tp)| self.lookup_left_operand(&t, &tp)),
            None => {
                self.error(
                    &child(ptr, "leftOperand"),
                    "a constraint needs a leftOperand (or one of and, or, xone, andSequence)",
                );
                None
            }
        };
        let operator = match f.get("operator") {
            Some((p, v)) => self
                .term(v, p, "an operator")
                .and_then(|(t, tp)| self.lookup_operator(&t, &tp)),
            None => {
                self.error(
                    &child(ptr, "operator"),
                    format!(
                        "a constraint needs an operator, one of: {}",
                        Operator::TERMS.join(", ")
                    ),
                );
                None
            }
        };
        let right_operand = match f.get("rightOperand") {
            Some((p, v)) => self.right_operand(v, p, depth + 1).and_then(|r| {
                let left = left_operand.as_ref()?;
                match crate::typing::type_right_operand(left, r) {
                    Ok(r) => Some(r),
                    Err(message) => {
                        self.error(p, message);
                        None
                    }
                }
            }),
            None => None,
        };
        let right_operand_reference = self.opt_iri(&f, "rightOperandReference");
        match (f.get("rightOperand"), f.get("rightOperandReference")) {
            (None, None) => self.error(
                &child(ptr, "rightOperand"),
                "a constraint needs a rightOperand (or a rightOperandReference)",
            ),
            (Some(_), Some((p, _))) => self.error(
                p,
                "a constraint has either a rightOperand or a rightOperandReference, not both",
            ),
            _ => {}
        }
        let unit = self.opt_iri(&f, "unit");
        let data_type = self.opt_iri(&f, "dataType");
        Some(Constraint::Atomic {
            uid,
            left_operand: left_operand?,
            operator: operator?,
            right_operand,
            right_operand_reference,
            unit,
            data_type,
        })
    }

    fn right_operand(&mut self, value: &Value, ptr: &str, depth: usize) -> Option<RightOperand> {
        if !self.depth_ok(ptr, depth) {
            return None;
        }
        match value {
            Value::String(s) => Some(RightOperand::String(s.clone())),
            Value::Number(n) => Some(RightOperand::Number(n.clone())),
            Value::Bool(b) => Some(RightOperand::Boolean(*b)),
            Value::Null => {
                self.error(ptr, "a rightOperand cannot be null");
                None
            }
            Value::Array(items) => self.right_operand_list(items, ptr, depth),
            Value::Object(obj) => {
                if let Some(list) = obj.get("@list").or_else(|| obj.get("@set")) {
                    let key = if obj.contains_key("@list") {
                        "@list"
                    } else {
                        "@set"
                    };
                    let p = child(ptr, key);
                    return match list {
                        Value::Array(items) => self.right_operand_list(items, &p, depth),
                        other => self.right_operand(other, &p, depth + 1),
                    };
                }
                let string_of = |key: &str| obj.get(key).map(|v| (child(ptr, key), v));
                match (obj.get("@value"), obj.get("@id")) {
                    (Some(_), Some(_)) => {
                        self.error(ptr, "a rightOperand has \"@value\" or \"@id\", not both");
                        None
                    }
                    (None, Some(id)) => match id {
                        Value::String(iri) if !iri.is_empty() => {
                            Some(RightOperand::Reference(iri.clone()))
                        }
                        other => {
                            self.error(
                                &child(ptr, "@id"),
                                format!(
                                    "\"@id\" must be a non-empty string, found {}",
                                    kind_of(other)
                                ),
                            );
                            None
                        }
                    },
                    (Some(v), None) => {
                        let value = match v {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            Value::Bool(b) => b.to_string(),
                            other => {
                                self.error(
                                    &child(ptr, "@value"),
                                    format!(
                                        "\"@value\" must be a string, number or boolean, found {}",
                                        kind_of(other)
                                    ),
                                );
                                return None;
                            }
                        };
                        let datatype = string_of("@type");
                        let language = string_of("@language");
                        match (datatype, language) {
                            (Some(_), Some((p, _))) => {
                                self.error(
                                    &p,
                                    "a literal has \"@type\" or \"@language\", not both",
                                );
                                None
                            }
                            (Some((_, Value::String(t))), None) if !t.is_empty() => {
                                Some(RightOperand::Typed {
                                    value,
                                    datatype: t.clone(),
                                })
                            }
                            (None, Some((_, Value::String(l)))) if !l.is_empty() => {
                                Some(RightOperand::LangString {
                                    value,
                                    language: l.clone(),
                                })
                            }
                            (Some((p, _)), None) | (None, Some((p, _))) => {
                                self.error(&p, "must be a non-empty string");
                                None
                            }
                            (None, None) => Some(RightOperand::String(value)),
                        }
                    }
                    (None, None) => {
                        self.error(
                            ptr,
                            "a rightOperand object must be {\"@value\": …, \"@type\": …}, \
                             {\"@id\": …} or {\"@list\": […]}",
                        );
                        None
                    }
                }
            }
        }
    }

    fn right_operand_list(
        &mut self,
        items: &[Value],
        ptr: &str,
        depth: usize,
    ) -> Option<RightOperand> {
        if items.is_empty() {
            self.error(ptr, "a rightOperand list must not be empty");
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, v) in items.iter().enumerate() {
            match self.right_operand(v, &index(ptr, i), depth + 1) {
                Some(r) => out.push(r),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        // In JSON-LD an array of one value is that value.
        if out.len() == 1 {
            return out.pop();
        }
        Some(RightOperand::List(out))
    }

    // ----- vocabulary look-ups ---------------------------------------------------------------

    fn lookup_action(&mut self, term: &str, ptr: &str) -> Option<Action> {
        if let Some(action) = Action::from_term(term) {
            return Some(action);
        }
        let deprecated =
            strip_odrl(term).and_then(|bare| DEPRECATED_ACTIONS.iter().find(|(t, _)| *t == bare));
        let message = match deprecated {
            Some((_, Some(instead))) => {
                format!("action \"{term}\" is deprecated in ODRL 2.2; write \"{instead}\" instead")
            }
            Some((_, None)) => {
                format!("action \"{term}\" is deprecated in ODRL 2.2 and is not supported")
            }
            None => format!(
                "unknown action \"{term}\"; accepted (bare, odrl:-prefixed or as a full ODRL \
                 IRI): {}",
                Action::TERMS.join(", ")
            ),
        };
        self.error(ptr, message);
        None
    }

    fn lookup_left_operand(&mut self, term: &str, ptr: &str) -> Option<LeftOperand> {
        if let Some(lo) = LeftOperand::from_term(term) {
            return Some(lo);
        }
        let deprecated = strip_odrl(term)
            .and_then(|bare| DEPRECATED_LEFT_OPERANDS.iter().find(|(t, _)| *t == bare));
        let message = if term.starts_with(CLAIM_PREFIX) {
            format!(
                "invalid claim left operand \"{term}\": write {CLAIM_PREFIX}<name>, where <name> \
                 starts with a letter and uses letters, digits, '_', '-' and '.' between \
                 non-empty segments"
            )
        } else {
            match deprecated {
                Some((_, Some(instead))) => format!(
                    "left operand \"{term}\" is deprecated in ODRL 2.2; write \"{instead}\" instead"
                ),
                Some((_, None)) => format!(
                    "left operand \"{term}\" is deprecated in ODRL 2.2 and is not supported"
                ),
                None => format!(
                    "unknown left operand \"{term}\"; accepted: the ODRL 2.2 left operands \
                     (bare, odrl:-prefixed or as a full ODRL IRI: {}) or a credential claim \
                     written {CLAIM_PREFIX}<name>",
                    LeftOperand::TERMS.join(", ")
                ),
            }
        };
        self.error(ptr, message);
        None
    }

    fn lookup_operator(&mut self, term: &str, ptr: &str) -> Option<Operator> {
        if let Some(op) = Operator::from_term(term) {
            return Some(op);
        }
        // The DSP 2025-1 schema's spelling of lteq (the anchor in the ODRL vocabulary document).
        if strip_odrl(term) == Some("term-lteq") {
            return Some(Operator::Lteq);
        }
        let message = match strip_odrl(term).and_then(LogicalOperator::from_term) {
            Some(op) => format!(
                "\"{term}\" is a logical operator; write a logical constraint \
                 {{\"{op}\": [constraint, …]}} instead"
            ),
            None => format!(
                "unknown operator \"{term}\"; accepted (bare, odrl:-prefixed or as a full ODRL \
                 IRI): {}",
                Operator::TERMS.join(", ")
            ),
        };
        self.error(ptr, message);
        None
    }

    fn policy_kind(&mut self, value: &Value, ptr: &str) -> Option<PolicyKind> {
        let (term, tptr) = self.term(value, ptr, "a policy type")?;
        let kind = PolicyKind::from_term(&term);
        if kind.is_none() {
            self.error(
                &tptr,
                format!(
                    "unsupported policy type \"{term}\"; accepted: {}",
                    PolicyKind::TERMS.join(", ")
                ),
            );
        }
        kind
    }

    fn conflict(&mut self, value: &Value, ptr: &str) -> Option<ConflictStrategy> {
        let (term, tptr) = self.term(value, ptr, "a conflict strategy")?;
        let strategy = ConflictStrategy::from_term(&term);
        if strategy.is_none() {
            self.error(
                &tptr,
                format!(
                    "unknown conflict strategy \"{term}\"; accepted: {}",
                    ConflictStrategy::TERMS.join(", ")
                ),
            );
        }
        strategy
    }

    // ----- JSON shapes -----------------------------------------------------------------------

    /// Collects an object's properties under their canonical terms, reporting unknown and
    /// duplicate ones.
    fn fields<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        ptr: &str,
        what: &str,
        allowed: &[&str],
    ) -> Fields<'a> {
        let mut map: BTreeMap<String, (String, &'a Value)> = BTreeMap::new();
        for (key, value) in obj {
            let Some(term) = canonical_key(key) else {
                continue; // another vocabulary's property: metadata, ignored
            };
            let field_ptr = child(ptr, key);
            if term == "@context" {
                continue;
            }
            if !allowed.contains(&term.as_str()) {
                let message = unknown_property_message(key, &term, what, allowed);
                self.error(&field_ptr, message);
                continue;
            }
            if let Some((first, _)) = map.get(&term) {
                let message = format!("duplicate property: this and {first} both mean \"{term}\"");
                self.error(&field_ptr, message);
                continue;
            }
            map.insert(term, (field_ptr, value));
        }
        Fields { map }
    }

    fn check_type(&mut self, f: &Fields<'_>, expected: &[&str], what: &str) {
        let Some((ptr, value)) = f.get("@type") else {
            return;
        };
        for (v, p) in self.many(value, ptr) {
            let ok = v
                .as_str()
                .and_then(strip_odrl)
                .is_some_and(|t| expected.contains(&t));
            if !ok {
                self.error(
                    &p,
                    format!(
                        "the @type of a {what} must be {}, found {}",
                        expected.join(" or "),
                        v
                    ),
                );
            }
        }
    }

    fn object<'a>(
        &mut self,
        value: &'a Value,
        ptr: &str,
        what: &str,
    ) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(obj) => Some(obj),
            Value::String(_) => {
                self.error(
                    ptr,
                    format!(
                        "a {what} must be a JSON object; references to a {what} defined \
                         elsewhere are not supported, write it inline"
                    ),
                );
                None
            }
            other => {
                self.error(
                    ptr,
                    format!("a {what} must be a JSON object, found {}", kind_of(other)),
                );
                None
            }
        }
    }

    /// A value that must be single: a one-element array is unwrapped.
    fn single<'a>(&mut self, value: &'a Value, ptr: &str) -> Option<(&'a Value, String)> {
        match value {
            Value::Array(items) => match items.as_slice() {
                [one] => Some((one, index(ptr, 0))),
                [] => {
                    self.error(ptr, "expected a value, found an empty array");
                    None
                }
                more => {
                    self.error(
                        ptr,
                        format!("expected a single value, found an array of {}", more.len()),
                    );
                    None
                }
            },
            other => Some((other, ptr.to_owned())),
        }
    }

    /// A value that may be repeated: an array, `{"@list": […]}`, `{"@set": […]}` or one value.
    fn many<'a>(&mut self, value: &'a Value, ptr: &str) -> Vec<(&'a Value, String)> {
        match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (v, index(ptr, i)))
                .collect(),
            Value::Object(obj) if obj.len() == 1 => match obj.iter().next() {
                Some((key, inner)) if key == "@list" || key == "@set" => {
                    let p = child(ptr, key);
                    match inner {
                        Value::Array(items) => items
                            .iter()
                            .enumerate()
                            .map(|(i, v)| (v, index(&p, i)))
                            .collect(),
                        other => vec![(other, p)],
                    }
                }
                _ => vec![(value, ptr.to_owned())],
            },
            other => vec![(other, ptr.to_owned())],
        }
    }

    /// A term: a string, or `{"@id": string}` (one-element arrays unwrapped).
    fn term(&mut self, value: &Value, ptr: &str, what: &str) -> Option<(String, String)> {
        let (value, ptr) = self.single(value, ptr)?;
        match value {
            Value::String(s) if !s.is_empty() => Some((s.clone(), ptr)),
            Value::Object(obj) => match obj.get("@id") {
                Some(Value::String(s)) if !s.is_empty() => Some((s.clone(), child(&ptr, "@id"))),
                _ => {
                    self.error(
                        &ptr,
                        format!("{what} must be a term string or {{\"@id\": \"…\"}}"),
                    );
                    None
                }
            },
            other => {
                self.error(
                    &ptr,
                    format!(
                        "{what} must be a non-empty term string or {{\"@id\": \"…\"}}, found {}",
                        kind_of(other)
                    ),
                );
                None
            }
        }
    }

    fn opt_iri(&mut self, f: &Fields<'_>, term: &str) -> Option<String> {
        let (ptr, value) = f.get(term)?;
        self.iri(value, ptr)
    }

    /// An IRI: a non-empty string or `{"@id": "…"}` (optionally with `@type`).
    fn iri(&mut self, value: &Value, ptr: &str) -> Option<String> {
        let (value, ptr) = self.single(value, ptr)?;
        match value {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::String(_) => {
                self.error(&ptr, "must not be empty");
                None
            }
            Value::Object(obj) => {
                let extra: Vec<&str> = obj
                    .keys()
                    .map(String::as_str)
                    .filter(|k| !matches!(*k, "@id" | "@type" | "@context"))
                    .collect();
                match obj.get("@id") {
                    Some(Value::String(s)) if !s.is_empty() && extra.is_empty() => Some(s.clone()),
                    _ if !extra.is_empty() => {
                        self.error(
                            &ptr,
                            format!(
                                "only an IRI or {{\"@id\": \"…\"}} is supported here; found the \
                                 properties {} (asset and party collections with refinements \
                                 are not supported)",
                                extra.join(", ")
                            ),
                        );
                        None
                    }
                    _ => {
                        self.error(&ptr, "expected {\"@id\": \"<non-empty IRI>\"}");
                        None
                    }
                }
            }
            other => {
                self.error(
                    &ptr,
                    format!(
                        "expected an IRI string or {{\"@id\": \"…\"}}, found {}",
                        kind_of(other)
                    ),
                );
                None
            }
        }
    }

    fn depth_ok(&mut self, ptr: &str, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            self.error(
                ptr,
                format!("nested more than {MAX_DEPTH} levels deep; not accepted"),
            );
            return false;
        }
        true
    }
}

/// The canonical term of a property name, or `None` for a property in another vocabulary.
fn canonical_key(key: &str) -> Option<String> {
    if key == RDF_VALUE_IRI || key == "rdf:value" {
        return Some("rdf:value".to_owned());
    }
    if key.starts_with('@') {
        return Some(key.to_owned());
    }
    match strip_odrl(key)? {
        "uid" => Some("@id".to_owned()),
        term => Some(term.to_owned()),
    }
}

fn unknown_property_message(key: &str, term: &str, what: &str, allowed: &[&str]) -> String {
    let hint = match (what, term) {
        (_, "inheritFrom") => Some(
            "policy inheritance is not supported: the parent policy cannot be fetched here, so \
             write its rules into this policy"
                .to_owned(),
        ),
        ("prohibition", "duty") => Some(
            "a prohibition has no duties; use \"remedy\" for what is owed if it is violated"
                .to_owned(),
        ),
        ("permission", "remedy") => Some(
            "a permission has no remedy; use \"duty\" for what its exercise requires".to_owned(),
        ),
        ("policy", "duty") => Some(
            "duties belong to a permission; policy-level duties are written \"obligation\""
                .to_owned(),
        ),
        _ => None,
    };
    match hint {
        Some(hint) => format!("unsupported property \"{key}\" on a {what}: {hint}"),
        None => format!(
            "unknown property \"{key}\" on a {what}; accepted: {} (properties in namespaces \
             other than ODRL's are ignored)",
            allowed.join(", ")
        ),
    }
}

/// The JSON pointer of `key` inside `ptr` (RFC 6901 escaping).
fn child(ptr: &str, key: &str) -> String {
    format!("{ptr}/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn index(ptr: &str, i: usize) -> String {
    format!("{ptr}/{i}")
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
