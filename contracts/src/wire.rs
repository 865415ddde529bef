//! The rules a DSP message must meet on the wire, applied to what caap receives exactly as to what it sends.
//!
//! [`check_message`] reads a message body by its `@type` and checks what the DSP 2025-1 schemas require of the
//! policies inside it (an offer's or agreement's `@type` and `@id`, at least one permission or prohibition, an
//! action on every rule and duty, `leftOperand`/`operator`/`rightOperand` on every atomic constraint, a right
//! operand that is a string, an object or an array but never a bare number or boolean, an agreement's
//! `target`/`assigner`/`assignee` and an `xsd:dateTime` `timestamp`), then the ODRL model checks caap's policy
//! parser applies (known terms, `count` a whole number, …). Identifiers: caap publishes only absolute IRIs, but
//! the `@id` and `target` of an offer or agreement name the provider's own resources, so they are read in the
//! provider's namespace: a contract request may name the receiving caap's dataset and offer by handle (it
//! resolves them, see `caap_catalog::iri`), and a provider that publishes relative ids (the DSP TCK does) gets
//! them back exactly as it sent them; a consumer keeps them with the provider's address, never on their own.
//!
//! The first violation is returned with the JSON pointer of the field, for the DSP error body.

use serde_json::Value;

/// A field that breaks a wire rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct WireError {
    /// JSON pointer of the field (`/offer/permission/0/constraint/0/rightOperand`).
    pub pointer: String,
    /// What is wrong and what is expected.
    pub message: String,
}

fn err<T>(pointer: impl Into<String>, message: impl Into<String>) -> Result<T, WireError> {
    Err(WireError {
        pointer: pointer.into(),
        message: message.into(),
    })
}

/// What kind of policy a message carries, and how strictly its ids are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyRole {
    /// A contract request's offer: ids may be relative (the provider's own handles).
    RequestedOffer,
    /// A provider's offer: its ids are the provider's, echoed back to it as sent.
    SentOffer,
    /// An agreement.
    Agreement,
}

/// Checks a DSP message body (any `@type`; types without policies pass).
pub fn check_message(body: &Value) -> Result<(), WireError> {
    match body.get("@type").and_then(Value::as_str) {
        Some("ContractRequestMessage") => {
            check_policy(body.get("offer"), "/offer", PolicyRole::RequestedOffer)
        }
        Some("ContractOfferMessage") => {
            check_policy(body.get("offer"), "/offer", PolicyRole::SentOffer)
        }
        Some("ContractAgreementMessage") => {
            check_policy(body.get("agreement"), "/agreement", PolicyRole::Agreement)
        }
        _ => Ok(()),
    }
}

fn check_policy(policy: Option<&Value>, ptr: &str, role: PolicyRole) -> Result<(), WireError> {
    let Some(Value::Object(p)) = policy else {
        return err(ptr, "must be an ODRL policy object");
    };
    let kind = match role {
        PolicyRole::RequestedOffer | PolicyRole::SentOffer => "Offer",
        PolicyRole::Agreement => "Agreement",
    };
    match p.get("@type") {
        Some(Value::String(t)) if t == kind => {}
        _ => return err(format!("{ptr}/@type"), format!("must be \"{kind}\"")),
    }
    for key in ["@id", "target"] {
        match p.get(key) {
            Some(Value::String(id)) if !id.is_empty() => {}
            None if key == "target" && role == PolicyRole::RequestedOffer => {}
            None if key == "target" && role == PolicyRole::SentOffer => {}
            _ => return err(format!("{ptr}/{key}"), "must be a non-empty string"),
        }
    }
    if role == PolicyRole::Agreement {
        for key in ["assigner", "assignee"] {
            if !matches!(p.get(key), Some(Value::String(s)) if !s.is_empty()) {
                return err(format!("{ptr}/{key}"), "must be a non-empty string");
            }
        }
        match p.get("timestamp") {
            Some(Value::String(t)) if chrono::DateTime::parse_from_rfc3339(t).is_ok() => {}
            _ => {
                return err(
                    format!("{ptr}/timestamp"),
                    "must be an xsd:dateTime such as 2027-01-01T00:00:00Z",
                );
            }
        }
    }
    if !p.contains_key("permission") && !p.contains_key("prohibition") {
        return err(ptr, "needs a permission or a prohibition");
    }
    for list in ["permission", "prohibition", "obligation"] {
        if let Some(v) = p.get(list) {
            rules(v, &format!("{ptr}/{list}"))?;
        }
    }
    caap_policy::parse_policy(&Value::Object(p.clone())).map_err(|e| match e {
        caap_policy::PolicyError::Invalid(list) => match list.into_iter().next() {
            Some(first) => WireError {
                pointer: format!("{ptr}{}", first.pointer),
                message: first.message,
            },
            None => WireError {
                pointer: ptr.to_owned(),
                message: "not an ODRL policy caap can read".into(),
            },
        },
    })?;
    Ok(())
}

fn rules(v: &Value, ptr: &str) -> Result<(), WireError> {
    let Value::Array(items) = v else {
        return err(ptr, "must be an array");
    };
    if items.is_empty() {
        return err(ptr, "must not be empty (leave it out instead)");
    }
    for (i, rule) in items.iter().enumerate() {
        let rp = format!("{ptr}/{i}");
        let Value::Object(r) = rule else {
            return err(rp, "must be an object");
        };
        match r.get("action") {
            Some(Value::String(_)) | Some(Value::Object(_)) => {}
            _ => return err(format!("{rp}/action"), "must be an action such as \"use\""),
        }
        if let Some(c) = r.get("constraint") {
            constraints(c, &format!("{rp}/constraint"))?;
        }
        for nested in ["duty", "consequence", "remedy"] {
            if let Some(d) = r.get(nested) {
                rules(d, &format!("{rp}/{nested}"))?;
            }
        }
    }
    Ok(())
}

fn constraints(v: &Value, ptr: &str) -> Result<(), WireError> {
    let Value::Array(items) = v else {
        return err(ptr, "must be an array");
    };
    for (i, c) in items.iter().enumerate() {
        let cp = format!("{ptr}/{i}");
        let Value::Object(m) = c else {
            return err(cp, "must be an object");
        };
        let logical: Vec<&str> = ["and", "or", "xone", "andSequence"]
            .into_iter()
            .filter(|k| m.contains_key(*k))
            .collect();
        if let [op] = logical.as_slice() {
            constraints(&m[*op], &format!("{cp}/{op}"))?;
            continue;
        }
        for key in ["leftOperand", "operator"] {
            if !matches!(m.get(key), Some(Value::String(_))) {
                return err(format!("{cp}/{key}"), "must be a string");
            }
        }
        match m.get("rightOperand") {
            Some(Value::String(_)) | Some(Value::Object(_)) | Some(Value::Array(_)) => {}
            Some(Value::Number(n)) => {
                return err(
                    format!("{cp}/rightOperand"),
                    format!(
                        "a bare number is not a DSP right operand; send {{\"@value\": \"{n}\", \"@type\": \"xsd:{}\"}}",
                        if n.is_f64() { "decimal" } else { "integer" }
                    ),
                );
            }
            Some(Value::Bool(b)) => {
                return err(
                    format!("{cp}/rightOperand"),
                    format!(
                        "a bare boolean is not a DSP right operand; send {{\"@value\": \"{b}\", \"@type\": \"xsd:boolean\"}}"
                    ),
                );
            }
            Some(Value::Null) | None if m.contains_key("rightOperandReference") => {}
            _ => {
                return err(
                    format!("{cp}/rightOperand"),
                    "must be a string, an object or an array",
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(offer: Value) -> Value {
        json!({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
            "@type": "ContractRequestMessage", "consumerPid": "urn:uuid:c",
            "callbackAddress": "https://c.example/dsp", "offer": offer})
    }

    fn agreement(a: Value) -> Value {
        json!({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
            "@type": "ContractAgreementMessage", "consumerPid": "urn:uuid:c",
            "providerPid": "urn:uuid:p", "agreement": a})
    }

    fn count(right: Value) -> Value {
        json!({"@type": "Offer", "@id": "offer-open", "target": "readings-csv",
            "permission": [{"action": "use", "constraint": [
                {"leftOperand": "count", "operator": "lteq", "rightOperand": right}]}]})
    }

    #[test]
    fn right_operands_follow_the_schema_and_the_model() {
        assert!(
            check_message(&request(count(
                json!({"@value": "1000", "@type": "xsd:integer"})
            )))
            .is_ok()
        );
        assert!(check_message(&request(count(json!("1000")))).is_ok());
        let bare = check_message(&request(count(json!(1000)))).unwrap_err();
        assert_eq!(
            bare.pointer,
            "/offer/permission/0/constraint/0/rightOperand"
        );
        assert!(bare.message.contains("xsd:integer"), "{bare}");
        let boolean = check_message(&request(count(json!(true)))).unwrap_err();
        assert_eq!(
            boolean.pointer,
            "/offer/permission/0/constraint/0/rightOperand"
        );
        // Schema-valid, but a count is a whole number: the model check names the field too.
        let half = check_message(&request(count(
            json!({"@value": "1000.5", "@type": "xsd:decimal"}),
        )))
        .unwrap_err();
        assert_eq!(
            half.pointer,
            "/offer/permission/0/constraint/0/rightOperand"
        );
    }

    #[test]
    fn policies_need_their_members() {
        let cases = [
            (
                json!({"@id": "o", "permission": [{"action": "use"}]}),
                "/offer/@type",
            ),
            (
                json!({"@type": "Offer", "permission": [{"action": "use"}]}),
                "/offer/@id",
            ),
            (json!({"@type": "Offer", "@id": "o"}), "/offer"),
            (
                json!({"@type": "Offer", "@id": "o", "permission": []}),
                "/offer/permission",
            ),
            (
                json!({"@type": "Offer", "@id": "o", "permission": [{}]}),
                "/offer/permission/0/action",
            ),
            (
                json!({"@type": "Offer", "@id": "o", "permission": [{"action": "use",
                    "constraint": [{"operator": "eq", "rightOperand": "x"}]}]}),
                "/offer/permission/0/constraint/0/leftOperand",
            ),
        ];
        for (offer, pointer) in cases {
            let e = check_message(&request(offer.clone())).unwrap_err();
            assert_eq!(e.pointer, pointer, "{offer}: {e}");
        }
    }

    #[test]
    fn ids_are_the_providers_and_agreements_complete() {
        let good = json!({"@type": "Agreement", "@id": "urn:uuid:a",
            "target": "https://p.example/dsp/catalog/datasets/d", "assigner": "did:web:p",
            "assignee": "did:web:c", "timestamp": "2027-01-01T00:00:00Z",
            "permission": [{"action": "use"}]});
        assert!(check_message(&agreement(good.clone())).is_ok());
        // The provider's own ids, as it publishes them (the DSP TCK's are relative): read in its namespace.
        let mut relative = good.clone();
        relative["target"] = json!("readings-csv");
        assert!(check_message(&agreement(relative)).is_ok());
        let mut empty = good.clone();
        empty["target"] = json!("");
        assert_eq!(
            check_message(&agreement(empty)).unwrap_err().pointer,
            "/agreement/target"
        );
        let mut no_time = good.clone();
        no_time["timestamp"] = json!("yesterday");
        assert_eq!(
            check_message(&agreement(no_time)).unwrap_err().pointer,
            "/agreement/timestamp"
        );
        let mut no_assignee = good;
        no_assignee.as_object_mut().unwrap().remove("assignee");
        assert_eq!(
            check_message(&agreement(no_assignee)).unwrap_err().pointer,
            "/agreement/assignee"
        );
        // A provider's offer names the provider's own offer, as it publishes it; it must name one.
        let offer = |id: Value| {
            json!({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
            "@type": "ContractOfferMessage", "providerPid": "urn:uuid:p",
            "callbackAddress": "https://p.example/dsp",
            "offer": {"@type": "Offer", "@id": id, "target": "urn:uuid:d", "permission": [{"action": "use"}]}})
        };
        assert!(check_message(&offer(json!("o"))).is_ok());
        assert_eq!(
            check_message(&offer(json!(""))).unwrap_err().pointer,
            "/offer/@id"
        );
    }

    #[test]
    fn caaps_own_messages_pass() {
        let policy = caap_policy::parse_policy(&json!({"@type": "Set", "permission": [{"action": "distribute",
            "constraint": [{"leftOperand": "count", "operator": "lteq", "rightOperand": 1000},
                           {"leftOperand": "purpose", "operator": "isA", "rightOperand": "dpv:PublicBenefit"}]}]}))
        .unwrap();
        let mut offer = policy.to_dsp_offer_json("https://p.example/dsp/catalog/offers/o");
        offer["target"] = json!("https://p.example/dsp/catalog/datasets/d");
        assert!(check_message(&request(offer)).is_ok());
        let terms = caap_policy::AgreementTerms {
            id: "urn:uuid:a".into(),
            target: "https://p.example/dsp/catalog/datasets/d".into(),
            assigner: "did:web:p".into(),
            assignee: "did:web:c".into(),
            timestamp: chrono::DateTime::from_timestamp(1_796_586_981, 0).unwrap(),
        };
        assert!(check_message(&agreement(policy.to_dsp_agreement_json(&terms))).is_ok());
    }
}
