//! Compliance reports: a policy, a request and a state of the world as documents (JSON-LD or
//! Turtle) in, a report in the FORCE compliance-report vocabulary
//! (`https://w3id.org/force/compliance-report#`) out. This is what `caap policy evaluate`
//! prints, and the path the W3C formal-semantics examples and the SolidLab ODRL test suite run
//! through.
//!
//! # Documents
//! - **Policy**: one ODRL policy (`Set`, `Offer`, `Agreement`, `Policy`). JSON goes through
//!   [`crate::parse_policy`] (strict, failing closed); Turtle is read into a graph, the policy
//!   node's description is rebuilt as JSON and then parsed the same way. Collections
//!   (`odrl:PartyCollection`, `odrl:AssetCollection` with `odrl:source`) are referenced by IRI;
//!   their members come from `odrl:partOf` facts. A rule without an action (the SolidLab suite
//!   has "everybody may do everything") matches any action and gets no action premise.
//! - **Request**: an `odrl:Request` whose (first) permission names `assignee`, `action` and
//!   `target` (its `eq` constraints add facts, e.g. `purpose eq dpv:X`), or a formal-semantics
//!   `sotw:EvaluationRequest` (`evaluatedParty`, `evaluatedAction`, `evaluatedTarget`,
//!   `requestParameters` with `value` and `describesFeature`; the feature
//!   `sotw:CurrentXSDDateTime` is the current time, an ODRL left operand IRI or a `unit` IRI
//!   gives that operand's value).
//! - **State of the world**: the current time (`<…currentTime> dct:issued "…"^^xsd:dateTime`,
//!   or an `odrl:dateTime` fact, or the request's time parameter), `odrl:partOf` memberships,
//!   duty states (`report:DutyReport` nodes with `report:rule` and `report:deonticState`;
//!   formal-semantics `sotw:context` nodes with `sotw:conditionId` mark that duty fulfilled),
//!   verified claims (`<party> <caap:claim:name> value`), and facts: any triple whose
//!   predicate is an ODRL left operand (`odrl:purpose`, `odrl:spatial`, `odrl:recipient`,
//!   `odrl:count` — previous uses —, `odrl:elapsedTime`, `odrl:resolution`, …).
//!
//! Nothing is fetched and the clock is not read: a state without a current time is an error.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::decision::{Decision, DeonticState, EvaluationContext};
use crate::evaluate::{
    ConstraintEval, DutyEval, Evaluation, Hints, Premise, PremiseKind, RuleEval, Satisfaction,
    duration_delta, evaluate_with, parse_time,
};
use crate::model::{
    Action, Constraint, DEPRECATED_ACTIONS, LeftOperand, ODRL_NS, Policy, RightOperand, strip_odrl,
};
use crate::rdf::{
    Graph, RDF_TYPE, Term, XSD_NS, jsonld_to_graph, literal_value, parse_turtle, term_to_json,
};
use crate::{FieldError, PolicyError, parse_policy};

/// The FORCE compliance-report namespace.
pub const REPORT_NS: &str = "https://w3id.org/force/compliance-report#";
const SOTW_NS: &str = "https://w3id.org/force/sotw#";
const DCT_ISSUED: &str = "http://purl.org/dc/terms/issued";
const RDFS_COMMENT: &str = "rdfs:comment";

/// How a document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// JSON-LD (or plain JSON in the ODRL compact form).
    JsonLd,
    /// Turtle.
    Turtle,
    /// JSON-LD when the text starts with `{` or `[`, otherwise Turtle.
    #[default]
    Detect,
}

impl std::str::FromStr for InputFormat {
    type Err = String;

    /// `jsonld`/`json-ld`/`json`, `turtle`/`ttl`, `detect`/`auto`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "jsonld" | "json-ld" | "json" => Ok(InputFormat::JsonLd),
            "turtle" | "ttl" => Ok(InputFormat::Turtle),
            "detect" | "auto" => Ok(InputFormat::Detect),
            other => Err(format!(
                "unknown format \"{other}\"; accepted: jsonld, turtle, detect"
            )),
        }
    }
}

/// Activation of a rule (FORCE `report:activationState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ActivationState {
    /// The rule applies to the request.
    Active,
    /// It does not.
    Inactive,
}

impl ActivationState {
    fn of(b: bool) -> Self {
        if b {
            ActivationState::Active
        } else {
            ActivationState::Inactive
        }
    }

    /// The FORCE term.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivationState::Active => "Active",
            ActivationState::Inactive => "Inactive",
        }
    }
}

/// The kind of a rule report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RuleReportKind {
    /// `report:PermissionReport`.
    Permission,
    /// `report:ProhibitionReport`.
    Prohibition,
    /// `report:ObligationReport` (a policy-level duty).
    Obligation,
}

/// The kind of a premise report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PremiseReportKind {
    /// `report:ActionReport`.
    Action,
    /// `report:PartyReport`.
    Party,
    /// `report:TargetReport`.
    Target,
    /// `report:ConstraintReport` (constraints and action refinements).
    Constraint,
}

/// One premise of a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PremiseReport {
    /// What it is about.
    pub kind: PremiseReportKind,
    /// `Satisfied` or `Unsatisfied` (a premise that could not be evaluated is reported
    /// `Unsatisfied` with the reason).
    pub satisfaction: &'static str,
    /// The constraint's `uid`, for constraint premises.
    pub constraint: Option<String>,
    /// The left operand's value at evaluation time.
    pub left_operand_value: Option<String>,
    /// The operator (`odrl:lt` …) of an atomic constraint.
    pub operator: Option<String>,
    /// The right operand of an atomic constraint.
    pub right_operand: Option<Value>,
    /// The operator (`odrl:and` …) of a logical constraint.
    pub logical_operator: Option<String>,
    /// The operands of a logical constraint.
    pub premises: Vec<PremiseReport>,
    /// Why it is not satisfied.
    pub reason: Option<String>,
}

/// A duty of a rule (a condition) or a policy obligation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DutyReport {
    /// The duty's `uid`.
    pub rule: Option<String>,
    /// Whether the duty applies (its constraints hold).
    pub activation: ActivationState,
    /// Its deontic state.
    pub deontic_state: DeonticState,
    /// Its constraints.
    pub premises: Vec<PremiseReport>,
}

/// The report for one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleReport {
    /// Permission, prohibition or obligation.
    pub kind: RuleReportKind,
    /// The rule's `uid`.
    pub rule: Option<String>,
    /// The request's rule it was evaluated against.
    pub rule_request: Option<String>,
    /// Whether it is active.
    pub activation: ActivationState,
    /// Always `Attempted`: every rule is evaluated against the request.
    pub attempt: &'static str,
    /// Its premises (action, party, target, refinements, constraints).
    pub premises: Vec<PremiseReport>,
    /// Its duties (`report:conditionReport`).
    pub conditions: Vec<DutyReport>,
    /// Why it is inactive (or, for a prohibition, why it applies).
    pub reason: Option<String>,
}

/// A compliance report: the decision and, per rule, the states the FORCE vocabulary defines.
/// Serialises as JSON-LD (see [`ComplianceReport::to_json_ld`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ComplianceReport {
    /// The policy's `uid`.
    pub policy: Option<String>,
    /// The request's `uid`.
    pub request: Option<String>,
    /// The evaluation time (the state of the world's current time), when one was given.
    pub created: Option<DateTime<Utc>>,
    /// The decision, with its reason.
    pub decision: Decision,
    /// Permissions, then prohibitions, then obligations, in policy order.
    pub rules: Vec<RuleReport>,
}

impl Serialize for ComplianceReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json_ld().serialize(serializer)
    }
}

impl ComplianceReport {
    /// Whether the request is permitted.
    pub fn permitted(&self) -> bool {
        self.decision.permitted
    }

    /// The report as JSON-LD in the FORCE compliance-report vocabulary; caap's explanations are
    /// `rdfs:comment`s.
    pub fn to_json_ld(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "@context".into(),
            json!({
                "report": REPORT_NS,
                "odrl": ODRL_NS,
                "xsd": XSD_NS,
                "dct": "http://purl.org/dc/terms/",
                "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
            }),
        );
        m.insert("@type".into(), "report:PolicyReport".into());
        if let Some(created) = self.created {
            m.insert(
                "dct:created".into(),
                json!({
                    "@value": created.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                    "@type": "xsd:dateTime"
                }),
            );
        }
        if let Some(p) = &self.policy {
            m.insert("report:policy".into(), id(p));
        }
        if let Some(r) = &self.request {
            m.insert("report:policyRequest".into(), id(r));
        }
        m.insert(
            "report:decision".into(),
            Value::from(if self.decision.permitted {
                "permitted"
            } else {
                "denied"
            }),
        );
        m.insert(RDFS_COMMENT.into(), self.decision.reasons.join("; ").into());
        m.insert(
            "report:ruleReport".into(),
            Value::Array(self.rules.iter().map(rule_json).collect()),
        );
        Value::Object(m)
    }
}

fn id(iri: &str) -> Value {
    json!({ "@id": iri })
}

fn term(t: &str) -> Value {
    json!({ "@id": format!("report:{t}") })
}

fn rule_json(r: &RuleReport) -> Value {
    let mut m = Map::new();
    let ty = match r.kind {
        RuleReportKind::Permission => "report:PermissionReport",
        RuleReportKind::Prohibition => "report:ProhibitionReport",
        RuleReportKind::Obligation => "report:ObligationReport",
    };
    m.insert("@type".into(), ty.into());
    if let Some(rule) = &r.rule {
        m.insert("report:rule".into(), id(rule));
    }
    if let Some(req) = &r.rule_request {
        m.insert("report:ruleRequest".into(), id(req));
    }
    m.insert("report:attemptState".into(), term(r.attempt));
    m.insert("report:activationState".into(), term(r.activation.as_str()));
    if !r.premises.is_empty() {
        m.insert(
            "report:premiseReport".into(),
            Value::Array(r.premises.iter().map(premise_json).collect()),
        );
    }
    if !r.conditions.is_empty() {
        m.insert(
            "report:conditionReport".into(),
            Value::Array(r.conditions.iter().map(duty_json).collect()),
        );
    }
    if let Some(reason) = &r.reason {
        m.insert(RDFS_COMMENT.into(), reason.clone().into());
    }
    Value::Object(m)
}

fn duty_json(d: &DutyReport) -> Value {
    let mut m = Map::new();
    m.insert("@type".into(), "report:DutyReport".into());
    if let Some(rule) = &d.rule {
        m.insert("report:rule".into(), id(rule));
    }
    m.insert("report:attemptState".into(), term("Attempted"));
    m.insert("report:activationState".into(), term(d.activation.as_str()));
    m.insert("report:deonticState".into(), term(d.deontic_state.as_str()));
    let performance = match d.deontic_state {
        DeonticState::Fulfilled => "Performed",
        DeonticState::Violated => "Unperformed",
        DeonticState::NonSet => "Unknown",
    };
    m.insert("report:performanceState".into(), term(performance));
    if !d.premises.is_empty() {
        m.insert(
            "report:premiseReport".into(),
            Value::Array(d.premises.iter().map(premise_json).collect()),
        );
    }
    Value::Object(m)
}

fn premise_json(p: &PremiseReport) -> Value {
    let mut m = Map::new();
    let ty = match p.kind {
        PremiseReportKind::Action => "report:ActionReport",
        PremiseReportKind::Party => "report:PartyReport",
        PremiseReportKind::Target => "report:TargetReport",
        PremiseReportKind::Constraint => "report:ConstraintReport",
    };
    m.insert("@type".into(), ty.into());
    if let Some(c) = &p.constraint {
        m.insert("report:constraint".into(), id(c));
    }
    if let Some(v) = &p.left_operand_value {
        m.insert("report:constraintLeftOperand".into(), v.clone().into());
    }
    if let Some(op) = &p.operator {
        m.insert("report:constraintOperator".into(), id(op));
    }
    if let Some(r) = &p.right_operand {
        m.insert("report:constraintRightOperand".into(), r.clone());
    }
    if let Some(op) = &p.logical_operator {
        m.insert("report:constraintLogicalOperand".into(), id(op));
    }
    if !p.premises.is_empty() {
        m.insert(
            "report:premiseReport".into(),
            Value::Array(p.premises.iter().map(premise_json).collect()),
        );
    }
    m.insert("report:satisfactionState".into(), term(p.satisfaction));
    if let Some(reason) = &p.reason {
        m.insert(RDFS_COMMENT.into(), reason.clone().into());
    }
    Value::Object(m)
}

// ----- building the report from an evaluation ----------------------------------------------

impl ComplianceReport {
    /// The report for an evaluation (request and rule-request ids are optional labels).
    pub fn from_evaluation(
        eval: &Evaluation<'_>,
        request: Option<&str>,
        rule_request: Option<&str>,
    ) -> Self {
        let mut rules = Vec::new();
        for (kind, list) in [
            (RuleReportKind::Permission, &eval.permissions),
            (RuleReportKind::Prohibition, &eval.prohibitions),
        ] {
            for r in list {
                rules.push(rule_report(kind, r, rule_request));
            }
        }
        for d in &eval.obligations {
            let duty = duty_report(d);
            rules.push(RuleReport {
                kind: RuleReportKind::Obligation,
                rule: d.duty.uid.clone(),
                rule_request: None,
                activation: ActivationState::of(d.active),
                attempt: "Attempted",
                premises: duty.premises.clone(),
                conditions: Vec::new(),
                reason: (d.state == DeonticState::Violated)
                    .then(|| format!("the obligation to {} is violated", d.duty.action)),
            });
        }
        ComplianceReport {
            policy: eval.policy.id.clone(),
            request: request.map(str::to_owned),
            created: Some(eval.context.now),
            decision: eval.decision(),
            rules,
        }
    }
}

fn rule_report(kind: RuleReportKind, r: &RuleEval<'_>, rule_request: Option<&str>) -> RuleReport {
    let reason = if r.is_permission && !r.active {
        r.premises
            .iter()
            .find(|p| p.satisfaction != Satisfaction::Satisfied)
            .and_then(|p| p.reason.clone())
            .or_else(|| Some("an active duty has been violated".to_owned()))
    } else if !r.is_permission && r.active {
        let unknown: Vec<&str> = r
            .premises
            .iter()
            .filter(|p| p.satisfaction == Satisfaction::Unknown)
            .filter_map(|p| p.reason.as_deref())
            .collect();
        (!unknown.is_empty()).then(|| {
            format!(
                "applied because it cannot be ruled out (fail closed): {}",
                unknown.join("; ")
            )
        })
    } else if !r.is_permission {
        r.premises
            .iter()
            .find(|p| p.satisfaction == Satisfaction::Unsatisfied)
            .and_then(|p| p.reason.clone())
    } else {
        None
    };
    RuleReport {
        kind,
        rule: r.rule.uid.clone(),
        rule_request: rule_request.map(str::to_owned),
        activation: ActivationState::of(r.active),
        attempt: "Attempted",
        premises: r.premises.iter().map(premise_report).collect(),
        conditions: r.duties.iter().map(duty_report).collect(),
        reason,
    }
}

fn duty_report(d: &DutyEval<'_>) -> DutyReport {
    DutyReport {
        rule: d.duty.uid.clone(),
        activation: ActivationState::of(d.active),
        deontic_state: d.state,
        premises: d.premises.iter().map(premise_report).collect(),
    }
}

fn premise_report(p: &Premise<'_>) -> PremiseReport {
    let kind = match p.kind {
        PremiseKind::Action => PremiseReportKind::Action,
        PremiseKind::Party => PremiseReportKind::Party,
        PremiseKind::Target => PremiseReportKind::Target,
        PremiseKind::Refinement | PremiseKind::Constraint => PremiseReportKind::Constraint,
    };
    match &p.constraint {
        Some(c) => constraint_report(c),
        None => PremiseReport {
            kind,
            satisfaction: p.satisfaction.as_str(),
            constraint: None,
            left_operand_value: None,
            operator: None,
            right_operand: None,
            logical_operator: None,
            premises: Vec::new(),
            reason: p.reason.clone(),
        },
    }
}

fn constraint_report(c: &ConstraintEval<'_>) -> PremiseReport {
    let (uid, operator, right, logical) = match c.constraint {
        Constraint::Atomic {
            uid,
            operator,
            right_operand,
            ..
        } => (
            uid.clone(),
            Some(operator.iri()),
            right_operand.as_ref().map(right_json),
            None,
        ),
        Constraint::Logical { uid, op, .. } => (uid.clone(), None, None, Some(op.iri())),
    };
    PremiseReport {
        kind: PremiseReportKind::Constraint,
        satisfaction: c.satisfaction.as_str(),
        constraint: uid,
        left_operand_value: c.left_value.clone(),
        operator,
        right_operand: right,
        logical_operator: logical,
        premises: c.operands.iter().map(constraint_report).collect(),
        reason: c.reason.clone(),
    }
}

fn right_json(r: &RightOperand) -> Value {
    match r {
        RightOperand::String(s) => Value::String(s.clone()),
        RightOperand::Number(n) => Value::Number(n.clone()),
        RightOperand::Boolean(b) => Value::Bool(*b),
        RightOperand::Reference(iri) => id(iri),
        RightOperand::Typed { value, datatype } => json!({"@value": value, "@type": datatype}),
        RightOperand::LangString { value, language } => {
            json!({"@value": value, "@language": language})
        }
        RightOperand::List(items) => {
            json!({"@list": items.iter().map(right_json).collect::<Vec<_>>()})
        }
    }
}

// ----- documents ------------------------------------------------------------------------------

fn invalid(what: &str, message: impl std::fmt::Display) -> PolicyError {
    PolicyError::Invalid(vec![FieldError::new("", format!("{what}: {message}"))])
}

enum Doc {
    Json(Value),
    Graph(Graph),
}

fn read_doc(what: &str, text: &str, format: InputFormat) -> Result<Doc, PolicyError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let json = match format {
        InputFormat::JsonLd => true,
        InputFormat::Turtle => false,
        InputFormat::Detect => trimmed.starts_with('{') || trimmed.starts_with('['),
    };
    if json {
        serde_json::from_str(trimmed)
            .map(Doc::Json)
            .map_err(|e| invalid(what, format!("not valid JSON: {e}")))
    } else {
        parse_turtle(trimmed)
            .map(Doc::Graph)
            .map_err(|e| invalid(what, e))
    }
}

fn to_graph(what: &str, doc: &Doc) -> Result<Graph, PolicyError> {
    match doc {
        Doc::Graph(g) => Ok(g.clone()),
        Doc::Json(v) => jsonld_to_graph(v).map_err(|e| invalid(what, e)),
    }
}

const POLICY_CLASSES: &[&str] = &["Set", "Offer", "Agreement", "Policy"];

/// Reads a policy document (JSON or Turtle), strictly.
fn load_policy(text: &str, format: InputFormat) -> Result<(Policy, Hints, Graph), PolicyError> {
    let doc = read_doc("policy", text, format)?;
    match &doc {
        Doc::Json(v) if v.is_object() && v.get("@graph").is_none() => {
            let policy = parse_policy(v)?;
            let graph = jsonld_to_graph(v).unwrap_or_default();
            Ok((policy, Hints::default(), graph))
        }
        _ => {
            let graph = to_graph("policy", &doc)?;
            let nodes: Vec<&Term> = {
                let mut seen: Vec<&Term> = Vec::new();
                for t in &graph.triples {
                    if t.p == RDF_TYPE
                        && t.o
                            .as_iri()
                            .and_then(strip_odrl_ns)
                            .is_some_and(|c| POLICY_CLASSES.contains(&c))
                        && !seen.contains(&&t.s)
                    {
                        seen.push(&t.s);
                    }
                }
                seen
            };
            let node = match nodes.as_slice() {
                [one] => *one,
                [] => {
                    return Err(invalid(
                        "policy",
                        "no node typed odrl:Set, odrl:Offer, odrl:Agreement or odrl:Policy",
                    ));
                }
                many => {
                    return Err(invalid(
                        "policy",
                        format!(
                            "{} policies in one document; caap evaluates one at a time",
                            many.len()
                        ),
                    ));
                }
            };
            let mut builder = PolicyJson {
                graph: &graph,
                any_action: Vec::new(),
            };
            let json = builder.policy(node);
            let hints = Hints {
                any_action: builder.any_action,
            };
            let policy = parse_policy(&json)?;
            Ok((policy, hints, graph))
        }
    }
}

fn strip_odrl_ns(iri: &str) -> Option<&str> {
    iri.strip_prefix(ODRL_NS)
}

/// Rebuilds the JSON description of a policy node from a graph, for [`parse_policy`].
struct PolicyJson<'g> {
    graph: &'g Graph,
    any_action: Vec<(bool, usize)>,
}

impl PolicyJson<'_> {
    fn policy(&mut self, node: &Term) -> Value {
        let mut m = self.node(node, 0);
        for (key, is_permission) in [("permission", true), ("prohibition", false)] {
            let full = format!("{ODRL_NS}{key}");
            if let Some(Value::Array(rules)) = m.get(&full) {
                for (i, rule) in rules.iter().enumerate() {
                    let has_action = rule
                        .as_object()
                        .is_some_and(|r| r.contains_key(&format!("{ODRL_NS}action")));
                    let policy_action = m.contains_key(&format!("{ODRL_NS}action"));
                    if !has_action && !policy_action {
                        self.any_action.push((is_permission, i));
                    }
                }
            }
            if let Some(Value::Array(rules)) = m.get_mut(&full) {
                for (i, rule) in rules.iter_mut().enumerate() {
                    if self.any_action.contains(&(is_permission, i))
                        && let Some(r) = rule.as_object_mut()
                    {
                        r.insert(format!("{ODRL_NS}action"), Value::String("use".into()));
                    }
                }
            }
        }
        Value::Object(m)
    }

    fn node(&self, node: &Term, depth: usize) -> Map<String, Value> {
        let mut m = Map::new();
        let mut props: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut has_uid = false;
        for t in self.graph.about(node) {
            let key = if t.p == RDF_TYPE {
                "@type".to_owned()
            } else {
                t.p.clone()
            };
            if key == format!("{ODRL_NS}uid") {
                has_uid = true;
            }
            let value = self.value(&key, &t.o, depth);
            props.entry(key).or_default().push(value);
        }
        if !has_uid && let Some(n) = node.as_node() {
            m.insert("@id".into(), Value::String(n.to_owned()));
        }
        for (k, mut vs) in props {
            let v = if vs.len() == 1
                && k != format!("{ODRL_NS}permission")
                && k != format!("{ODRL_NS}prohibition")
            {
                vs.pop().unwrap_or(Value::Null)
            } else {
                Value::Array(vs)
            };
            m.insert(k, v);
        }
        m
    }

    fn value(&self, key: &str, o: &Term, depth: usize) -> Value {
        if key == "@type" {
            return o
                .as_node()
                .map_or(Value::Null, |s| Value::String(s.to_owned()));
        }
        if matches!(o, Term::Literal { .. }) {
            return term_to_json(o);
        }
        if self.graph.is_list(o)
            && let Some(items) = self.graph.list(o)
        {
            let vals: Vec<Value> = items
                .iter()
                .map(|i| self.value(key, i, depth + 1))
                .collect();
            return json!({ "@list": vals });
        }
        let local = key.strip_prefix(ODRL_NS).unwrap_or("");
        let embed = matches!(
            local,
            "permission"
                | "prohibition"
                | "obligation"
                | "duty"
                | "remedy"
                | "consequence"
                | "constraint"
                | "refinement"
                | "and"
                | "or"
                | "xone"
                | "andSequence"
        ) || key == crate::rdf::RDF_NS.to_owned() + "value"
            || (local == "action" && self.graph.about(o).next().is_some());
        let party_or_asset = matches!(local, "target" | "assignee" | "assigner");
        if party_or_asset
            && self.graph.about(o).any(|t| {
                let p = t.p.strip_prefix(ODRL_NS).unwrap_or("");
                t.p != RDF_TYPE && p != "source" && p != "uid"
            })
        {
            // A collection with refinements: hand it to the parser, which refuses it.
            return Value::Object(self.node(o, depth + 1));
        }
        if embed && depth < crate::parse::MAX_DEPTH && self.graph.about(o).next().is_some() {
            return Value::Object(self.node(o, depth + 1));
        }
        o.as_node()
            .map_or(Value::Null, |s| Value::String(s.to_owned()))
    }
}

/// What a request document says.
#[derive(Debug, Default)]
struct RequestFacts {
    id: Option<String>,
    rule_request: Option<String>,
    party: Option<String>,
    action: Option<Action>,
    target: Option<String>,
    now: Option<DateTime<Utc>>,
    facts: Vec<(String, Term)>,
}

fn action_of(iri: &str) -> Result<Action, PolicyError> {
    if let Some(a) = Action::from_term(iri) {
        return Ok(a);
    }
    let bare = strip_odrl(iri).unwrap_or(iri);
    match DEPRECATED_ACTIONS.iter().find(|(t, _)| *t == bare) {
        Some((_, Some(instead))) => Action::from_term(instead)
            .ok_or_else(|| invalid("request", format!("unknown action {iri}"))),
        _ => Err(invalid(
            "request",
            format!("the requested action {iri} is not an ODRL 2.2 action"),
        )),
    }
}

fn load_request(graph: &Graph) -> Result<RequestFacts, PolicyError> {
    let odrl = |t: &str| format!("{ODRL_NS}{t}");
    let sotw = |t: &str| format!("{SOTW_NS}{t}");
    let mut out = RequestFacts::default();
    let request_node = graph
        .triples
        .iter()
        .find(|t| {
            t.p == RDF_TYPE
                && (t.o.as_iri() == Some(&odrl("Request"))
                    || t.o.as_iri() == Some(&sotw("EvaluationRequest")))
        })
        .map(|t| t.s.clone())
        .or_else(|| {
            graph
                .triples
                .iter()
                .find(|t| t.p == sotw("evaluatedAction"))
                .map(|t| t.s.clone())
        })
        .ok_or_else(|| {
            invalid(
                "request",
                "no odrl:Request or sotw:EvaluationRequest (with evaluatedAction) found",
            )
        })?;
    out.id = graph
        .object(&request_node, &odrl("uid"))
        .and_then(Term::as_node)
        .or(request_node.as_iri())
        .map(str::to_owned);
    if let Some(rule) = graph
        .object(&request_node, &odrl("permission"))
        .or_else(|| graph.object(&request_node, &odrl("prohibition")))
    {
        out.rule_request = rule.as_iri().map(str::to_owned);
        out.party = graph
            .object(rule, &odrl("assignee"))
            .and_then(Term::as_node)
            .map(str::to_owned);
        out.target = graph
            .object(rule, &odrl("target"))
            .and_then(Term::as_node)
            .map(str::to_owned);
        let action = graph
            .object(rule, &odrl("action"))
            .ok_or_else(|| invalid("request", "the request's rule names no odrl:action"))?;
        let action = graph
            .object(action, &format!("{}value", crate::rdf::RDF_NS))
            .unwrap_or(action);
        out.action = Some(action_of(action.as_iri().unwrap_or_default())?);
        for c in graph.objects(rule, &odrl("constraint")) {
            let (Some(lo), Some(op), Some(ro)) = (
                graph.object(c, &odrl("leftOperand")).and_then(Term::as_iri),
                graph.object(c, &odrl("operator")).and_then(Term::as_iri),
                graph.object(c, &odrl("rightOperand")),
            ) else {
                continue;
            };
            if strip_odrl_ns(op) == Some("eq") {
                out.facts.push((lo.to_owned(), ro.clone()));
            }
        }
    } else {
        let action = graph
            .object(&request_node, &sotw("evaluatedAction"))
            .and_then(Term::as_iri)
            .ok_or_else(|| invalid("request", "sotw:evaluatedAction is missing"))?;
        out.action = Some(action_of(action)?);
        out.party = graph
            .object(&request_node, &sotw("evaluatedParty"))
            .and_then(Term::as_node)
            .map(str::to_owned);
        out.target = graph
            .object(&request_node, &sotw("evaluatedTarget"))
            .and_then(Term::as_node)
            .map(str::to_owned);
        for param in graph.objects(&request_node, &sotw("requestParameter")) {
            let (Some(value), Some(feature)) = (
                graph.object(param, &sotw("value")),
                graph
                    .object(param, &sotw("describesFeature"))
                    .and_then(Term::as_iri),
            ) else {
                continue;
            };
            // `{"@id": "1000", "@type": "xsd:integer"}` is a typed value written as a node.
            let value = match value {
                Term::Iri(lexical) => match graph
                    .object(value, RDF_TYPE)
                    .and_then(Term::as_iri)
                    .filter(|t| t.starts_with(XSD_NS))
                {
                    Some(dt) => Term::Literal {
                        value: lexical.clone(),
                        datatype: Some(dt.to_owned()),
                        lang: None,
                    },
                    None => value.clone(),
                },
                other => other.clone(),
            };
            if is_current_time_feature(feature) {
                out.now = literal_value(&value).and_then(|(v, _)| parse_time(v));
            } else {
                out.facts.push((feature.to_owned(), value));
            }
        }
    }
    Ok(out)
}

fn is_current_time_feature(iri: &str) -> bool {
    let local = local_name(iri);
    matches!(local, "CurrentXSDDateTime" | "currentTime" | "CurrentTime")
}

fn local_name(iri: &str) -> &str {
    iri.rsplit(['#', '/', ':']).next().unwrap_or(iri)
}

fn term_json(t: &Term) -> Value {
    match t {
        Term::Literal {
            value,
            datatype: None,
            ..
        } => Value::String(value.clone()),
        Term::Literal { .. } => term_to_json(t),
        Term::Iri(s) | Term::Blank(s) => Value::String(s.clone()),
    }
}

/// Applies one fact (a left-operand IRI or a feature IRI with a value) to the context.
fn apply_fact(
    mut ctx: EvaluationContext,
    key: &str,
    value: &Term,
    action: Action,
    now_set: &mut bool,
) -> EvaluationContext {
    let text = match value {
        Term::Literal { value, .. } => value.as_str(),
        Term::Iri(s) | Term::Blank(s) => s.as_str(),
    };
    if let Some(name) = key.strip_prefix(crate::model::CLAIM_PREFIX) {
        ctx.claims.insert(name.to_owned(), term_json(value));
        return ctx;
    }
    match strip_odrl_ns(key).and_then(LeftOperand::from_term) {
        Some(LeftOperand::DateTime) => {
            if let Some(t) = parse_time(text) {
                ctx.now = t;
                *now_set = true;
            }
        }
        Some(LeftOperand::Purpose) => ctx.purpose = Some(text.to_owned()),
        Some(LeftOperand::Recipient) => ctx.recipient = Some(text.to_owned()),
        Some(LeftOperand::Spatial) => ctx.spatial = Some(text.to_owned()),
        Some(LeftOperand::Count) => {
            if let Ok(n) = text.trim().parse::<u64>() {
                ctx.counts.insert(action, n);
            }
        }
        Some(LeftOperand::ElapsedTime) => {
            if let Some(d) = duration_delta(text) {
                ctx.first_use = Some(ctx.now - d);
            }
        }
        _ => {
            ctx.facts.insert(key.to_owned(), term_json(value));
        }
    }
    ctx
}

/// Reads one policy document (JSON-LD or Turtle, `Detect` decides) into the model, failing closed on
/// anything caap cannot evaluate, with messages naming the field or line.
pub fn read_policy(text: &str, format: InputFormat) -> Result<Policy, PolicyError> {
    load_policy(text, format).map(|(policy, _, _)| policy)
}

/// Evaluates a policy against a request and a state of the world, all given as documents, and
/// returns the compliance report. `format` applies to all three (`Detect` decides per
/// document). An empty `state` is allowed when the request carries the current time.
///
/// Errors (unreadable documents, a policy caap cannot evaluate, a request without an action,
/// no current time) are [`PolicyError::Invalid`] with messages naming the document.
pub fn evaluate_documents(
    policy: &str,
    request: &str,
    state: &str,
    format: InputFormat,
) -> Result<ComplianceReport, PolicyError> {
    let (policy, hints, policy_graph) = load_policy(policy, format)?;
    let request_graph = to_graph("request", &read_doc("request", request, format)?)?;
    let state_graph = if state.trim().is_empty() {
        Graph::default()
    } else {
        to_graph(
            "state of the world",
            &read_doc("state of the world", state, format)?,
        )?
    };
    let req = load_request(&request_graph)?;
    let action = req.action.unwrap_or(Action::Use);

    // The current time: the request's parameter, else the state's.
    let mut now = req.now;
    if now.is_none() {
        now = state_graph
            .triples
            .iter()
            .filter(|t| t.p == DCT_ISSUED && t.s.as_iri().is_some_and(is_current_time_feature))
            .find_map(|t| literal_value(&t.o).and_then(|(v, _)| parse_time(v)));
    }
    let mut now_set = now.is_some();
    let mut ctx = EvaluationContext::new(
        req.party.clone().unwrap_or_else(|| "(no party)".to_owned()),
        action,
        now.unwrap_or_default(),
    );
    if let Some(t) = &req.target {
        ctx = ctx.with_target(t.clone());
    }

    let part_of = format!("{ODRL_NS}partOf");
    for g in [&policy_graph, &request_graph, &state_graph] {
        for t in g.triples.iter().filter(|t| t.p == part_of) {
            if let (Some(m), Some(c)) = (t.s.as_node(), t.o.as_node()) {
                ctx = ctx.with_membership(m, c);
            }
        }
    }

    // Duty states: FORCE duty reports, and formal-semantics contexts naming a condition.
    let rule_p = format!("{REPORT_NS}rule");
    let deontic_p = format!("{REPORT_NS}deonticState");
    for t in state_graph.triples.iter().filter(|t| t.p == deontic_p) {
        let (Some(duty), Some(state)) = (
            state_graph.object(&t.s, &rule_p).and_then(Term::as_node),
            t.o.as_iri(),
        ) else {
            continue;
        };
        let state = match local_name(state) {
            "Fulfilled" => DeonticState::Fulfilled,
            "Violated" => DeonticState::Violated,
            _ => DeonticState::NonSet,
        };
        ctx = ctx.with_duty_state(duty, state);
    }
    for t in &state_graph.triples {
        if t.p.starts_with(SOTW_NS)
            && local_name(&t.p).eq_ignore_ascii_case("conditionId")
            && let Some(duty) = t.o.as_node()
        {
            ctx = ctx.with_duty_state(duty, DeonticState::Fulfilled);
        }
    }

    // Facts: the request's, then the state's (left operands and claims).
    for (key, value) in &req.facts {
        ctx = apply_fact(ctx, key, value, action, &mut now_set);
    }
    for t in &state_graph.triples {
        let is_operand = strip_odrl_ns(&t.p)
            .and_then(LeftOperand::from_term)
            .is_some();
        if is_operand || t.p.starts_with(crate::model::CLAIM_PREFIX) {
            ctx = apply_fact(ctx, &t.p, &t.o, action, &mut now_set);
        }
    }
    let time_free = !uses_time(&policy);
    if !now_set && !time_free {
        return Err(invalid(
            "state of the world",
            "no current time: give it as <…currentTime> dct:issued \"…\"^^xsd:dateTime, an \
             odrl:dateTime fact, or a request parameter describing sotw:CurrentXSDDateTime \
             (caap never reads the clock)",
        ));
    }

    let eval = evaluate_with(&policy, &ctx, &hints);
    let mut report =
        ComplianceReport::from_evaluation(&eval, req.id.as_deref(), req.rule_request.as_deref());
    if !now_set {
        report.created = None;
    }
    Ok(report)
}

/// Whether any constraint of the policy depends on the current time.
fn uses_time(policy: &Policy) -> bool {
    fn constraint(c: &Constraint) -> bool {
        match c {
            Constraint::Atomic { left_operand, .. } => matches!(
                left_operand,
                LeftOperand::DateTime | LeftOperand::ElapsedTime | LeftOperand::DelayPeriod
            ),
            Constraint::Logical { constraints, .. } => constraints.iter().any(constraint),
        }
    }
    fn duty(d: &crate::model::Duty) -> bool {
        d.constraint.iter().chain(&d.refinement).any(constraint) || d.consequence.iter().any(duty)
    }
    policy
        .permission
        .iter()
        .chain(&policy.prohibition)
        .any(|r| {
            r.constraint.iter().chain(&r.refinement).any(constraint)
                || r.duty.iter().chain(&r.remedy).any(duty)
        })
        || policy.obligation.iter().any(duty)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY_TTL: &str = r#"
        @prefix odrl: <http://www.w3.org/ns/odrl/2/> .
        @prefix dpv: <https://w3id.org/dpv#> .
        @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
        <urn:policy:1> a odrl:Offer ; odrl:permission [
            odrl:action odrl:use ; odrl:target <urn:asset:traffic> ;
            odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isA ;
                              odrl:rightOperand dpv:ResearchAndDevelopment ] ,
                            [ odrl:leftOperand <caap:claim:municipality> ; odrl:operator odrl:eq ;
                              odrl:rightOperand "1281" ] ,
                            [ odrl:leftOperand odrl:dateTime ; odrl:operator odrl:lt ;
                              odrl:rightOperand "2027-01-01"^^xsd:date ] ] ."#;

    const REQUEST_JSON: &str = r#"{
        "@context": "http://www.w3.org/ns/odrl.jsonld",
        "@type": "Request", "uid": "urn:request:1",
        "permission": [{"@id": "urn:request:1:r", "assignee": "did:web:lund.example",
            "action": "read", "target": "urn:asset:traffic",
            "constraint": [{"leftOperand": "purpose", "operator": "eq",
                            "rightOperand": {"@id": "dpv:AcademicResearch"}}]}]
    }"#;

    fn state(municipality: &str, time: &str) -> String {
        format!(
            r#"@prefix dct: <http://purl.org/dc/terms/> .
            @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
            <http://example.com/request/currentTime> dct:issued "{time}"^^xsd:dateTime .
            <did:web:lund.example> <caap:claim:municipality> "{municipality}" ."#
        )
    }

    #[test]
    fn mixed_formats_give_a_force_report() {
        let report = evaluate_documents(
            POLICY_TTL,
            REQUEST_JSON,
            &state("1281", "2026-05-01T10:00:00Z"),
            InputFormat::Detect,
        )
        .unwrap();
        assert!(report.permitted(), "{:?}", report.decision);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["@type"], "report:PolicyReport");
        assert_eq!(json["report:policy"]["@id"], "urn:policy:1");
        assert_eq!(json["report:policyRequest"]["@id"], "urn:request:1");
        let rule = &json["report:ruleReport"][0];
        assert_eq!(rule["@type"], "report:PermissionReport");
        assert_eq!(rule["report:activationState"]["@id"], "report:Active");
        assert_eq!(rule["report:attemptState"]["@id"], "report:Attempted");
        let premises = rule["report:premiseReport"].as_array().unwrap();
        assert_eq!(premises.len(), 5, "action, target and three constraints");
        assert!(
            premises
                .iter()
                .all(|p| p["report:satisfactionState"]["@id"] == "report:Satisfied")
        );

        let denied = evaluate_documents(
            POLICY_TTL,
            REQUEST_JSON,
            &state("1280", "2026-05-01T10:00:00Z"),
            InputFormat::Detect,
        )
        .unwrap();
        assert!(!denied.permitted());
        assert!(
            denied.decision.reasons[0].contains("municipality"),
            "{:?}",
            denied.decision
        );
        let json = denied.to_json_ld();
        assert_eq!(
            json["report:ruleReport"][0]["report:activationState"]["@id"],
            "report:Inactive"
        );
    }

    #[test]
    fn unreadable_or_incomplete_documents_are_clear_errors() {
        let s = state("1281", "2026-05-01T10:00:00Z");
        let e = evaluate_documents("{ not json", REQUEST_JSON, &s, InputFormat::Detect);
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("policy: not valid JSON")
        );
        let e = evaluate_documents("<a> <b> .", REQUEST_JSON, &s, InputFormat::Detect);
        assert!(e.unwrap_err().to_string().contains("line 1"));
        let e = evaluate_documents(POLICY_TTL, "{}", &s, InputFormat::Detect);
        assert!(e.unwrap_err().to_string().contains("no odrl:Request"));
        let e = evaluate_documents(POLICY_TTL, REQUEST_JSON, "", InputFormat::Detect);
        assert!(e.unwrap_err().to_string().contains("no current time"));
        let bad_operand = POLICY_TTL.replace("odrl:purpose", "<http://example.org/mood>");
        let e = evaluate_documents(&bad_operand, REQUEST_JSON, &s, InputFormat::Turtle);
        assert!(e.unwrap_err().to_string().contains("unknown left operand"));
        assert_eq!("ttl".parse::<InputFormat>(), Ok(InputFormat::Turtle));
        assert_eq!("JSON-LD".parse::<InputFormat>(), Ok(InputFormat::JsonLd));
        assert!("xml".parse::<InputFormat>().is_err());
    }
}
