//! A one-paragraph plain-English summary of a policy, for people (the consent portal, the CLI,
//! logs). It paraphrases; the policy itself stays the authority.

use crate::model::{
    ConflictStrategy, Constraint, Duty, LeftOperand, LogicalOperator, Operator, Policy,
    RightOperand, Rule,
};

impl Policy {
    /// A one-paragraph summary, e.g. "Permits use, when the purpose is
    /// dpv:ResearchAndDevelopment and before 2027-01-01."
    pub fn describe(&self) -> String {
        let mut sentences = Vec::new();
        for rule in &self.permission {
            sentences.push(self.rule_sentence("Permits", rule, &rule.duty, "with the duty to"));
        }
        for rule in &self.prohibition {
            sentences.push(self.rule_sentence(
                "Prohibits",
                rule,
                &rule.remedy,
                "and if this is violated, the remedy is to",
            ));
        }
        for duty in &self.obligation {
            let mut s = String::from("Requires ");
            match duty.assignee.as_deref().or(self.assignee.as_deref()) {
                Some(assignee) => s.push_str(&format!("{assignee} to ")),
                None => s.push_str("the assignee to "),
            }
            s.push_str(&duty_phrase(duty));
            s.push('.');
            sentences.push(s);
        }
        if sentences.is_empty() {
            sentences.push("Grants nothing: the policy has no rules.".to_owned());
        }
        match self.conflict {
            Some(ConflictStrategy::Perm) => {
                sentences.push("Where rules conflict, permissions win.".to_owned());
            }
            Some(ConflictStrategy::Prohibit) => {
                sentences.push("Where rules conflict, prohibitions win.".to_owned());
            }
            Some(ConflictStrategy::Invalid) => {
                sentences.push("A conflict between rules voids the policy.".to_owned());
            }
            None => {}
        }
        sentences.join(" ")
    }

    fn rule_sentence(&self, verb: &str, rule: &Rule, duties: &[Duty], duty_intro: &str) -> String {
        let mut s = format!(
            "{verb} {}",
            action_phrase(rule.action.as_str(), &rule.refinement)
        );
        if let Some(target) = self.effective_target(rule) {
            s.push_str(&format!(" of {target}"));
        }
        if let Some(assignee) = self.effective_assignee(rule) {
            s.push_str(&format!(" by {assignee}"));
        }
        if !rule.constraint.is_empty() {
            s.push_str(&format!(", when {}", conjunction(&rule.constraint)));
        }
        if !duties.is_empty() {
            let phrases: Vec<String> = duties.iter().map(duty_phrase).collect();
            s.push_str(&format!(", {duty_intro} {}", join_and(&phrases)));
        }
        s.push('.');
        s
    }
}

fn duty_phrase(duty: &Duty) -> String {
    let mut s = action_phrase(duty.action.as_str(), &duty.refinement);
    if let Some(target) = &duty.target {
        s.push_str(&format!(" {target}"));
    }
    if !duty.constraint.is_empty() {
        s.push_str(&format!(" when {}", conjunction(&duty.constraint)));
    }
    if !duty.consequence.is_empty() {
        let phrases: Vec<String> = duty.consequence.iter().map(duty_phrase).collect();
        s.push_str(&format!(" (failing that, {})", join_and(&phrases)));
    }
    s
}

fn action_phrase(action: &str, refinement: &[Constraint]) -> String {
    if refinement.is_empty() {
        action.to_owned()
    } else {
        format!("{action} (where {})", conjunction(refinement))
    }
}

fn conjunction(constraints: &[Constraint]) -> String {
    let phrases: Vec<String> = constraints
        .iter()
        .map(|c| constraint_phrase(c, false))
        .collect();
    join_and(&phrases)
}

fn join_and(phrases: &[String]) -> String {
    join_with(phrases, "and")
}

fn join_with(phrases: &[String], word: &str) -> String {
    match phrases {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {word} {last}", init.join(", ")),
    }
}

impl Constraint {
    /// A short plain-English phrase for the constraint, e.g. "before 2027-01-01".
    pub fn describe(&self) -> String {
        constraint_phrase(self, false)
    }
}

fn constraint_phrase(constraint: &Constraint, nested: bool) -> String {
    match constraint {
        Constraint::Atomic {
            left_operand,
            operator,
            right_operand,
            right_operand_reference,
            unit,
            ..
        } => {
            let mut value = match (right_operand, right_operand_reference) {
                (Some(right), _) => value_phrase(right),
                (None, Some(reference)) => format!("the value at {reference}"),
                (None, None) => "(no value)".to_owned(),
            };
            if let Some(unit) = unit {
                value.push(' ');
                value.push_str(short_iri(unit));
            }
            atomic_phrase(left_operand, *operator, &value)
        }
        Constraint::Logical {
            op, constraints, ..
        } => {
            let parts: Vec<String> = constraints
                .iter()
                .map(|c| constraint_phrase(c, true))
                .collect();
            let phrase = match op {
                LogicalOperator::And => join_with(&parts, "and"),
                LogicalOperator::Or => join_with(&parts, "or"),
                LogicalOperator::Xone => format!("exactly one of: {}", parts.join("; ")),
                LogicalOperator::AndSequence => parts.join(", then "),
            };
            if nested && parts.len() > 1 {
                format!("({phrase})")
            } else {
                phrase
            }
        }
    }
}

fn atomic_phrase(left: &LeftOperand, op: Operator, value: &str) -> String {
    match (left, op) {
        (LeftOperand::DateTime, Operator::Lt) => format!("before {value}"),
        (LeftOperand::DateTime, Operator::Lteq) => format!("on or before {value}"),
        (LeftOperand::DateTime, Operator::Gt) => format!("after {value}"),
        (LeftOperand::DateTime, Operator::Gteq) => format!("on or after {value}"),
        (LeftOperand::DateTime, Operator::Eq) => format!("at {value}"),
        (LeftOperand::Count, Operator::Lt) => format!("fewer than {value} times"),
        (LeftOperand::Count, Operator::Lteq) => format!("at most {value} times"),
        (LeftOperand::Count, Operator::Eq) => format!("exactly {value} times"),
        (LeftOperand::ElapsedTime, Operator::Lt | Operator::Lteq | Operator::Eq) => {
            format!("within {value} of first use")
        }
        _ => format!("{} {} {value}", subject(left), operator_phrase(op)),
    }
}

fn subject(left: &LeftOperand) -> String {
    match left {
        LeftOperand::Claim(name) => format!("the requester's credential claim \"{name}\""),
        LeftOperand::Spatial => "the location".to_owned(),
        LeftOperand::SpatialCoordinates => "the location's coordinates".to_owned(),
        LeftOperand::DateTime => "the time".to_owned(),
        LeftOperand::ElapsedTime => "the time since first use".to_owned(),
        LeftOperand::Count => "the number of uses".to_owned(),
        LeftOperand::PayAmount => "the amount".to_owned(),
        LeftOperand::SystemDevice => "the system or device".to_owned(),
        LeftOperand::VirtualLocation => "the network location".to_owned(),
        other => format!("the {}", other.as_term()),
    }
}

fn operator_phrase(op: Operator) -> &'static str {
    match op {
        Operator::Eq => "is",
        Operator::Neq => "is not",
        Operator::Lt => "is less than",
        Operator::Lteq => "is at most",
        Operator::Gt => "is more than",
        Operator::Gteq => "is at least",
        Operator::IsA => "is a kind of",
        Operator::HasPart => "includes",
        Operator::IsPartOf => "is part of",
        Operator::IsAllOf => "is all of",
        Operator::IsAnyOf => "is one of",
        Operator::IsNoneOf => "is none of",
    }
}

fn value_phrase(right: &RightOperand) -> String {
    match right {
        RightOperand::String(s) | RightOperand::Reference(s) => s.clone(),
        RightOperand::Typed { value, .. } | RightOperand::LangString { value, .. } => value.clone(),
        RightOperand::Number(n) => n.to_string(),
        RightOperand::Boolean(b) => b.to_string(),
        RightOperand::List(items) => {
            let parts: Vec<String> = items.iter().map(value_phrase).collect();
            join_with(&parts, "or")
        }
    }
}

/// The last segment of an IRI (`http://dbpedia.org/resource/Euro` → `Euro`).
fn short_iri(iri: &str) -> &str {
    iri.rsplit(['/', '#'])
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(iri)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::parse_policy;

    #[test]
    fn describes_a_purpose_and_time_bound_permission() {
        let policy = parse_policy(&json!({
            "@type": "Offer",
            "permission": [{
                "action": "use",
                "constraint": [
                    {"leftOperand": "purpose", "operator": "eq", "rightOperand": "dpv:ResearchAndDevelopment"},
                    {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "2027-01-01"}
                ]
            }]
        }))
        .unwrap();
        assert_eq!(
            policy.describe(),
            "Permits use, when the purpose is dpv:ResearchAndDevelopment and before 2027-01-01."
        );
    }

    #[test]
    fn describes_duties_prohibitions_claims_and_logic() {
        let policy = parse_policy(&json!({
            "@type": "Agreement",
            "assignee": "did:web:supplier.example",
            "conflict": "prohibit",
            "permission": [{
                "action": "read",
                "constraint": [{"or": [
                    {"leftOperand": "caap:claim:membership", "operator": "eq", "rightOperand": "gold"},
                    {"leftOperand": "spatial", "operator": "isAnyOf", "rightOperand": ["SE", "NO"]}
                ]}],
                "duty": [{"action": "delete", "constraint": [
                    {"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": {"@value": "P30D", "@type": "xsd:duration"}}
                ]}]
            }],
            "prohibition": [{"action": "distribute"}],
            "obligation": [{"action": {"rdf:value": {"@id": "odrl:compensate"}, "refinement": [
                {"leftOperand": "payAmount", "operator": "eq", "rightOperand": {"@value": "5.00", "@type": "xsd:decimal"}, "unit": "http://dbpedia.org/resource/Euro"}
            ]}}]
        }))
        .unwrap();
        assert_eq!(
            policy.describe(),
            "Permits read by did:web:supplier.example, when the requester's credential claim \
             \"membership\" is gold or the location is one of SE or NO, with the duty to delete \
             when within P30D of first use. Prohibits distribute by did:web:supplier.example. \
             Requires did:web:supplier.example to compensate (where the amount is 5.00 Euro). \
             Where rules conflict, prohibitions win."
        );
    }
}
