//! What two policies grant, compared: an offer against the request for it, an agreement against the offer.
//!
//! The terms of a policy are its rules without what names the parties, the document or the target: the
//! policy's `@id`, type, profile, target, assigner and assignee, and each top-level rule's `@id` and target.
//! Conflict strategy, actions, constraints, duties and rule-level parties stay: they change what is granted.

use crate::model::{Duty, Policy, PolicyKind, Rule};

impl Policy {
    /// This policy's terms: a copy without ids, parties and target (see the module documentation).
    pub fn terms(&self) -> Policy {
        fn rule(r: &Rule) -> Rule {
            Rule {
                uid: None,
                target: None,
                ..r.clone()
            }
        }
        fn duty(d: &Duty) -> Duty {
            Duty {
                uid: None,
                target: None,
                ..d.clone()
            }
        }
        Policy {
            id: None,
            kind: PolicyKind::default(),
            profile: Vec::new(),
            conflict: self.conflict,
            permission: self.permission.iter().map(rule).collect(),
            prohibition: self.prohibition.iter().map(rule).collect(),
            obligation: self.obligation.iter().map(duty).collect(),
            target: None,
            assigner: None,
            assignee: None,
        }
    }

    /// Whether `self` grants what `other` grants: the same [`terms`](Self::terms).
    pub fn same_terms(&self, other: &Policy) -> bool {
        self.terms() == other.terms()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::parse_policy;

    fn offer(extra: Value) -> Value {
        let mut base = json!({
            "@id": "offer-1",
            "@type": "Offer",
            "target": "ds-1",
            "assigner": "did:web:provider",
            "permission": [{
                "action": "use",
                "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"}]
            }]
        });
        if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
            b.extend(e);
        }
        base
    }

    #[test]
    fn terms_ignore_ids_parties_and_target_but_not_rules() {
        let other_rules = json!({"permission": [{"action": "use"}]});
        let other_constraint = json!({"permission": [{
            "action": "use",
            "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "marketing"}]
        }]});
        let prohibition = json!({"prohibition": [{"action": "distribute"}]});
        let rule_id_and_target = json!({"permission": [{
            "@id": "rule-9",
            "target": "ds-2",
            "action": "use",
            "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"}]
        }]});
        // (what changes against the base offer, same terms?)
        let table: [(&str, Value, bool); 9] = [
            ("nothing", json!({}), true),
            ("the id", json!({"@id": "offer-2"}), true),
            ("the type", json!({"@type": "Agreement"}), true),
            ("the target", json!({"target": "ds-9"}), true),
            (
                "the parties",
                json!({"assigner": "did:web:x", "assignee": "did:web:y"}),
                true,
            ),
            ("a rule's id and target", rule_id_and_target, true),
            ("the constraint dropped", other_rules, false),
            ("another constraint value", other_constraint, false),
            ("a prohibition added", prohibition, false),
        ];
        let base = parse_policy(&offer(json!({}))).unwrap();
        for (what, change, same) in table {
            let changed = parse_policy(&offer(change)).unwrap();
            assert_eq!(base.same_terms(&changed), same, "{what}");
            assert_eq!(changed.same_terms(&base), same, "{what}, reversed");
        }
    }
}
