//! The compact JSON form of a policy (DSP 2025-1 style) and the DSP catalog-offer and
//! agreement bodies built from it.
//!
//! Terms defined by the DSP 2025-1 ODRL profile context (`action`, `constraint`, `duty`, `leftOperand`,
//! `operator`, `rightOperand`, `permission`, the action `use`, the operators, …) are written bare;
//! ODRL properties that context does not define (`refinement`, `remedy`, `consequence`, `unit`,
//! `dataType`, `rightOperandReference`, `conflict`), every other action (`odrl:distribute`) and every
//! ODRL left operand (`odrl:count`, `odrl:purpose`) are written `odrl:`-prefixed so that a JSON-LD
//! processor expands them to their `http://www.w3.org/ns/odrl/2/` IRIs instead of dropping them or
//! leaving relative IRIs. Right operands follow [`crate::typing`] (typed literals, never a bare number). Lists are always arrays and empty lists are left out. An action with
//! refinements becomes `{"rdf:value": {"@id": "odrl:…"}, "odrl:refinement": […]}` with `rdf:value`
//! as a full IRI; note that the DSP JSON schema only allows a string there.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::model::{Action, Constraint, Duty, LeftOperand, Policy, PolicyKind, RightOperand, Rule};

const RDF_VALUE_IRI: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#value";

/// What a DSP contract agreement adds to the policy that was offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementTerms {
    /// The agreement's `@id`.
    pub id: String,
    /// The dataset the agreement is about.
    pub target: String,
    /// The provider's participant id.
    pub assigner: String,
    /// The consumer's participant id.
    pub assignee: String,
    /// When the agreement was made (a parameter: this crate never reads the clock).
    pub timestamp: DateTime<Utc>,
}

impl Policy {
    /// The policy in the compact form: bare terms, arrays, no `@context` (the enclosing DSP
    /// message carries it). [`crate::parse_policy`] reads it back to an equal policy.
    pub fn to_compact_json(&self) -> Value {
        let mut m = Map::new();
        put_opt(&mut m, "@id", &self.id);
        m.insert("@type".into(), self.kind.as_str().into());
        if !self.profile.is_empty() {
            m.insert(
                "profile".into(),
                Value::Array(self.profile.iter().cloned().map(Value::String).collect()),
            );
        }
        if let Some(conflict) = self.conflict {
            m.insert(
                "odrl:conflict".into(),
                id_object(&format!("odrl:{conflict}")),
            );
        }
        put_opt(&mut m, "target", &self.target);
        put_opt(&mut m, "assigner", &self.assigner);
        put_opt(&mut m, "assignee", &self.assignee);
        put_list(&mut m, "permission", &self.permission, rule_json);
        put_list(&mut m, "prohibition", &self.prohibition, rule_json);
        put_list(&mut m, "obligation", &self.obligation, duty_json);
        Value::Object(m)
    }

    /// This policy as an offer in a DSP catalog: `@type` `Offer`, the given `@id`, and no
    /// `target` anywhere on the policy or its rules (in a catalog the dataset is the target).
    pub fn to_catalog_offer(&self, offer_id: impl Into<String>) -> Policy {
        let mut offer = self.clone();
        offer.id = Some(offer_id.into());
        offer.kind = PolicyKind::Offer;
        offer.target = None;
        for rule in offer
            .permission
            .iter_mut()
            .chain(offer.prohibition.iter_mut())
        {
            rule.target = None;
        }
        offer
    }

    /// The compact JSON of [`Policy::to_catalog_offer`], ready for a dataset's `hasPolicy`.
    pub fn to_dsp_offer_json(&self, offer_id: impl Into<String>) -> Value {
        self.to_catalog_offer(offer_id).to_compact_json()
    }

    /// This policy as the agreement made on it: `@type` `Agreement` with the agreement's `@id`,
    /// `target`, `assigner` and `assignee`. Rule-level parties and targets are kept as offered.
    pub fn to_agreement(&self, terms: &AgreementTerms) -> Policy {
        let mut agreement = self.clone();
        agreement.id = Some(terms.id.clone());
        agreement.kind = PolicyKind::Agreement;
        agreement.target = Some(terms.target.clone());
        agreement.assigner = Some(terms.assigner.clone());
        agreement.assignee = Some(terms.assignee.clone());
        agreement
    }

    /// The body of a DSP 2025-1 `ContractAgreementMessage.agreement`: the compact JSON of
    /// [`Policy::to_agreement`] plus `timestamp` (UTC, whole seconds).
    pub fn to_dsp_agreement_json(&self, terms: &AgreementTerms) -> Value {
        let mut value = self.to_agreement(terms).to_compact_json();
        if let Value::Object(m) = &mut value {
            m.insert(
                "timestamp".into(),
                terms
                    .timestamp
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
                    .into(),
            );
        }
        value
    }
}

fn rule_json(rule: &Rule) -> Value {
    let mut m = Map::new();
    put_opt(&mut m, "@id", &rule.uid);
    m.insert("action".into(), action_json(rule.action, &rule.refinement));
    put_opt(&mut m, "target", &rule.target);
    put_opt(&mut m, "assigner", &rule.assigner);
    put_opt(&mut m, "assignee", &rule.assignee);
    put_list(&mut m, "constraint", &rule.constraint, constraint_json);
    put_list(&mut m, "duty", &rule.duty, duty_json);
    put_list(&mut m, "odrl:remedy", &rule.remedy, duty_json);
    Value::Object(m)
}

fn duty_json(duty: &Duty) -> Value {
    let mut m = Map::new();
    put_opt(&mut m, "@id", &duty.uid);
    m.insert("action".into(), action_json(duty.action, &duty.refinement));
    put_opt(&mut m, "target", &duty.target);
    put_opt(&mut m, "assigner", &duty.assigner);
    put_opt(&mut m, "assignee", &duty.assignee);
    put_list(&mut m, "constraint", &duty.constraint, constraint_json);
    put_list(&mut m, "odrl:consequence", &duty.consequence, duty_json);
    Value::Object(m)
}

fn action_json(action: Action, refinement: &[Constraint]) -> Value {
    if refinement.is_empty() {
        return action_term(action).into();
    }
    let mut m = Map::new();
    m.insert(RDF_VALUE_IRI.into(), id_object(&format!("odrl:{action}")));
    put_list(&mut m, "odrl:refinement", refinement, constraint_json);
    Value::Object(m)
}

/// The action as the wire form writes it: `use` bare (the DSP profile defines it), others `odrl:`-prefixed.
fn action_term(action: Action) -> String {
    match action {
        Action::Use => action.as_str().to_owned(),
        other => format!("odrl:{}", other.as_str()),
    }
}

/// The left operand as the wire form writes it: ODRL terms `odrl:`-prefixed (the DSP profile defines
/// none), participant claims as their `caap:claim:` IRI.
fn left_operand_term(left: &LeftOperand) -> String {
    match left.vocab_term() {
        Some(term) => format!("odrl:{term}"),
        None => left.as_term(),
    }
}

fn constraint_json(constraint: &Constraint) -> Value {
    let mut m = Map::new();
    match constraint {
        Constraint::Atomic {
            uid,
            left_operand,
            operator,
            right_operand,
            right_operand_reference,
            unit,
            data_type,
        } => {
            put_opt(&mut m, "@id", uid);
            m.insert("leftOperand".into(), left_operand_term(left_operand).into());
            m.insert("operator".into(), operator.as_str().into());
            if let Some(right) = right_operand {
                m.insert("rightOperand".into(), right_operand_json(right));
            }
            put_opt(
                &mut m,
                "odrl:rightOperandReference",
                right_operand_reference,
            );
            put_opt(&mut m, "odrl:unit", unit);
            put_opt(&mut m, "odrl:dataType", data_type);
        }
        Constraint::Logical {
            uid,
            op,
            constraints,
        } => {
            put_opt(&mut m, "@id", uid);
            m.insert(
                op.as_str().into(),
                Value::Array(constraints.iter().map(constraint_json).collect()),
            );
        }
    }
    Value::Object(m)
}

fn right_operand_json(right: &RightOperand) -> Value {
    match right {
        RightOperand::String(s) if s.starts_with("dpv:") => id_object(s),
        RightOperand::String(s) => s.clone().into(),
        RightOperand::Number(n) => right_operand_json(&crate::typing::number_literal(n)),
        RightOperand::Boolean(b) => {
            right_operand_json(&RightOperand::typed(b.to_string(), "xsd:boolean"))
        }
        RightOperand::Reference(iri) => id_object(iri),
        RightOperand::Typed { value, datatype } => {
            let mut m = Map::new();
            m.insert("@value".into(), value.clone().into());
            m.insert("@type".into(), datatype.clone().into());
            Value::Object(m)
        }
        RightOperand::LangString { value, language } => {
            let mut m = Map::new();
            m.insert("@value".into(), value.clone().into());
            m.insert("@language".into(), language.clone().into());
            Value::Object(m)
        }
        RightOperand::List(items) => Value::Array(items.iter().map(right_operand_json).collect()),
    }
}

fn id_object(iri: &str) -> Value {
    let mut m = Map::new();
    m.insert("@id".into(), iri.into());
    Value::Object(m)
}

fn put_opt(m: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        m.insert(key.into(), v.clone().into());
    }
}

fn put_list<T>(m: &mut Map<String, Value>, key: &str, items: &[T], f: fn(&T) -> Value) {
    if !items.is_empty() {
        m.insert(key.into(), Value::Array(items.iter().map(f).collect()));
    }
}
