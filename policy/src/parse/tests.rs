use chrono::TimeZone;
use serde_json::{Value, json};

use super::*;
use crate::AgreementTerms;

fn parse(v: Value) -> Policy {
    match parse_policy(&v) {
        Ok(p) => p,
        Err(e) => panic!("expected {v} to parse, got {e}"),
    }
}

fn errors(v: Value) -> Vec<FieldError> {
    match parse_policy(&v) {
        Ok(p) => panic!("expected {v} to be rejected, got {p:?}"),
        Err(e) => e.errors().to_vec(),
    }
}

/// Asserts exactly one error, at `pointer`, whose message contains every `needle`.
fn one_error(v: Value, pointer: &str, needles: &[&str]) {
    let errs = errors(v);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    assert_eq!(errs[0].pointer, pointer, "{errs:#?}");
    for needle in needles {
        assert!(
            errs[0].message.contains(needle),
            "message {:?} lacks {needle:?}",
            errs[0].message
        );
    }
}

fn dsp_offer() -> Value {
    json!({
        "@id": "urn:offer:1",
        "@type": "Offer",
        "assigner": "did:web:provider.example",
        "permission": [{
            "action": "use",
            "constraint": [
                {"leftOperand": "purpose", "operator": "isA", "rightOperand": "dpv:ResearchAndDevelopment"},
                {"leftOperand": "dateTime", "operator": "lt",
                 "rightOperand": {"@value": "2027-01-01T00:00:00Z", "@type": "xsd:dateTime"}}
            ]
        }]
    })
}

fn expected_offer() -> Policy {
    let mut p = Policy::new(PolicyKind::Offer);
    p.id = Some("urn:offer:1".into());
    p.assigner = Some("did:web:provider.example".into());
    p.permission.push(
        Rule::new(Action::Use)
            .with_constraint(Constraint::atomic(
                LeftOperand::Purpose,
                Operator::IsA,
                RightOperand::reference("dpv:ResearchAndDevelopment"),
            ))
            .with_constraint(Constraint::atomic(
                LeftOperand::DateTime,
                Operator::Lt,
                RightOperand::typed("2027-01-01T00:00:00Z", "xsd:dateTime"),
            )),
    );
    p
}

// ----- accepted forms ----------------------------------------------------------------------------

#[test]
fn parses_the_dsp_compact_form() {
    assert_eq!(parse(dsp_offer()), expected_offer());
}

#[test]
fn parses_the_odrl_prefixed_form() {
    let v = json!({
        "@context": "https://w3id.org/dspace/2024/1/context.json",
        "@id": "urn:offer:1",
        "@type": "odrl:Offer",
        "odrl:assigner": {"@id": "did:web:provider.example"},
        "odrl:permission": {
            "odrl:action": {"@id": "odrl:use"},
            "odrl:constraint": [
                {"odrl:leftOperand": {"@id": "odrl:purpose"}, "odrl:operator": {"@id": "odrl:isA"},
                 "odrl:rightOperand": "dpv:ResearchAndDevelopment"},
                {"odrl:leftOperand": "odrl:dateTime", "odrl:operator": "odrl:lt",
                 "odrl:rightOperand": {"@value": "2027-01-01T00:00:00Z", "@type": "xsd:dateTime"}}
            ]
        },
        "dct:title": "ignored metadata",
        "dspace:timestamp": "2023-01-01T01:00:00Z"
    });
    assert_eq!(parse(v), expected_offer());
}

#[test]
fn parses_full_iris_and_expanded_json_ld_shapes() {
    let ns = "http://www.w3.org/ns/odrl/2/";
    let v = json!({
        "uid": "urn:offer:1",
        "@type": [format!("{ns}Offer")],
        format!("{ns}assigner"): [{"@id": "did:web:provider.example"}],
        format!("{ns}permission"): [{
            format!("{ns}action"): [{"@id": format!("{ns}use")}],
            format!("{ns}constraint"): {"@list": [
                {format!("{ns}leftOperand"): [{"@id": format!("{ns}purpose")}],
                 format!("{ns}operator"): [{"@id": format!("{ns}isA")}],
                 format!("{ns}rightOperand"): [{"@value": "dpv:ResearchAndDevelopment"}]},
                {format!("{ns}leftOperand"): format!("{ns}dateTime"),
                 format!("{ns}operator"): format!("{ns}lt"),
                 format!("{ns}rightOperand"): [{"@value": "2027-01-01T00:00:00Z", "@type": "xsd:dateTime"}]}
            ]}
        }]
    });
    assert_eq!(parse(v), expected_offer());
}

#[test]
fn parses_action_refinements_in_rdf_value_form() {
    let p = parse(json!({
        "@type": "Set",
        "permission": [{
            "target": "http://example.com/document/1234",
            "action": [{
                "rdf:value": {"@id": "odrl:print"},
                "refinement": [{
                    "leftOperand": "resolution", "operator": "lteq",
                    "rightOperand": {"@value": "1200", "@type": "xsd:integer"},
                    "unit": "http://dbpedia.org/resource/Dots_per_inch"
                }]
            }]
        }]
    }));
    let rule = &p.permission[0];
    assert_eq!(rule.action, Action::Print);
    assert_eq!(rule.refinement.len(), 1);
    let Constraint::Atomic { unit, .. } = &rule.refinement[0] else {
        panic!("atomic expected")
    };
    assert_eq!(
        unit.as_deref(),
        Some("http://dbpedia.org/resource/Dots_per_inch")
    );
    assert_eq!(parse(p.to_compact_json()), p);
}

#[test]
fn parses_claims_logical_constraints_duties_remedies_and_obligations() {
    let p = parse(json!({
        "@type": "Agreement",
        "@id": "urn:agreement:1",
        "profile": "https://caap.example/profile",
        "conflict": {"@id": "odrl:prohibit"},
        "target": "urn:dataset:1",
        "assigner": "did:web:city.example",
        "assignee": "did:web:supplier.example",
        "permission": [{
            "@id": "urn:rule:1",
            "action": "read",
            "constraint": [{"andSequence": [
                {"leftOperand": "caap:claim:membership", "operator": "eq", "rightOperand": "gold"},
                {"xone": [
                    {"leftOperand": "count", "operator": "lteq", "rightOperand": 10},
                    {"leftOperand": "recipient", "operator": "isNoneOf", "rightOperand": [{"@id": "did:web:a"}, {"@id": "did:web:b"}]}
                ]}
            ]}],
            "duty": {"action": "delete", "odrl:consequence": [{"action": "inform"}]}
        }],
        "prohibition": [{"action": "odrl:distribute", "odrl:remedy": {"action": "anonymize"}}],
        "obligation": [{"action": "obtainConsent", "assignee": "did:web:supplier.example"}]
    }));
    assert_eq!(p.conflict, Some(ConflictStrategy::Prohibit));
    assert_eq!(p.profile, vec!["https://caap.example/profile".to_owned()]);
    let Constraint::Logical {
        op, constraints, ..
    } = &p.permission[0].constraint[0]
    else {
        panic!("logical expected")
    };
    assert_eq!(*op, LogicalOperator::AndSequence);
    assert!(matches!(
        &constraints[0],
        Constraint::Atomic { left_operand: LeftOperand::Claim(name), .. } if name == "membership"
    ));
    assert_eq!(
        p.permission[0].duty[0].consequence[0].action,
        Action::Inform
    );
    assert_eq!(p.prohibition[0].remedy[0].action, Action::Anonymize);
    assert_eq!(p.obligation[0].action, Action::ObtainConsent);
    assert_eq!(parse(p.to_compact_json()), p);
}

#[test]
fn a_policy_level_action_applies_to_rules_without_one() {
    let p = parse(json!({
        "@type": "Set",
        "action": "read",
        "permission": [{"target": "urn:a"}, {"target": "urn:b", "action": "index"}]
    }));
    assert_eq!(p.permission[0].action, Action::Read);
    assert_eq!(p.permission[1].action, Action::Index);
}

#[test]
fn type_defaults_to_set_and_term_lteq_means_lteq() {
    let p = parse(json!({"permission": {"action": "use", "constraint": {
        "leftOperand": "dateTime", "operator": "term-lteq", "rightOperand": "2030-01-01"}}}));
    assert_eq!(p.kind, PolicyKind::Set);
    assert!(matches!(
        p.permission[0].constraint[0],
        Constraint::Atomic {
            operator: Operator::Lteq,
            ..
        }
    ));
}

// ----- serialisation -----------------------------------------------------------------------------

#[test]
fn compact_json_is_the_dsp_form_and_round_trips() {
    let p = expected_offer();
    let json = p.to_compact_json();
    assert_eq!(
        json,
        json!({
            "@id": "urn:offer:1",
            "@type": "Offer",
            "assigner": "did:web:provider.example",
            "permission": [{
                "action": "use",
                "constraint": [
                    {"leftOperand": "odrl:purpose", "operator": "isA",
                     "rightOperand": {"@id": "dpv:ResearchAndDevelopment"}},
                    {"leftOperand": "odrl:dateTime", "operator": "lt",
                     "rightOperand": {"@value": "2027-01-01T00:00:00Z", "@type": "xsd:dateTime"}}
                ]
            }]
        })
    );
    assert_eq!(parse(json), p);
}

#[test]
fn every_kind_of_right_operand_round_trips() {
    let rights = [
        json!("text"),
        json!(42),
        json!(1.5),
        json!({"@id": "http://example.org/EU"}),
        json!({"@value": "P30D", "@type": "xsd:duration"}),
        json!({"@value": "Stockholm", "@language": "sv"}),
        json!(["SE", {"@id": "urn:x"}, 3]),
        json!([["nested", "list"], "x"]),
    ];
    for right in rights {
        let v = json!({"permission": [{"action": "use", "constraint": [
            {"@id": "urn:c", "leftOperand": "spatial", "operator": "isAnyOf", "rightOperand": right,
             "unit": "urn:unit", "dataType": "xsd:string"}]}]});
        let p = parse(v);
        assert_eq!(parse(p.to_compact_json()), p, "{right}");
    }
    // Only participant claims compare with booleans.
    let flag = parse(json!({"permission": [{"action": "use", "constraint": [
        {"leftOperand": "caap:claim:verified", "operator": "eq", "rightOperand": true}]}]}));
    assert_eq!(parse(flag.to_compact_json()), flag);
    let wire = flag.to_compact_json();
    assert_eq!(
        wire["permission"][0]["constraint"][0]["rightOperand"],
        json!({"@value": "true", "@type": "xsd:boolean"})
    );
    let by_reference = parse(json!({"permission": [{"action": "use", "constraint": [
        {"leftOperand": "payAmount", "operator": "lteq", "rightOperandReference": "urn:budget"}]}]}));
    assert_eq!(parse(by_reference.to_compact_json()), by_reference);
}

#[test]
fn dsp_offer_has_no_target_and_agreement_has_the_parties() {
    let mut p = expected_offer();
    p.target = Some("urn:dataset:1".into());
    p.permission[0].target = Some("urn:dataset:1".into());
    let offer = p.to_dsp_offer_json("urn:offer:9");
    assert_eq!(offer["@id"], "urn:offer:9");
    assert_eq!(offer["@type"], "Offer");
    assert!(offer.get("target").is_none());
    assert!(offer["permission"][0].get("target").is_none());
    assert_eq!(parse(offer.clone()), p.to_catalog_offer("urn:offer:9"));

    let terms = AgreementTerms {
        id: "urn:agreement:1".into(),
        target: "urn:dataset:1".into(),
        assigner: "did:web:provider.example".into(),
        assignee: "did:web:consumer.example".into(),
        timestamp: chrono::Utc
            .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .unwrap(),
    };
    let agreement = parse(offer).to_dsp_agreement_json(&terms);
    assert_eq!(agreement["@type"], "Agreement");
    assert_eq!(agreement["@id"], "urn:agreement:1");
    assert_eq!(agreement["target"], "urn:dataset:1");
    assert_eq!(agreement["assigner"], "did:web:provider.example");
    assert_eq!(agreement["assignee"], "did:web:consumer.example");
    assert_eq!(agreement["timestamp"], "2026-03-01T12:00:00Z");
    let back = parse(agreement);
    assert_eq!(back, p.to_catalog_offer("x").to_agreement(&terms));
    assert_eq!(back.kind, PolicyKind::Agreement);
}

// ----- one test per error class ------------------------------------------------------------------

#[test]
fn rejects_unknown_action() {
    one_error(
        json!({"permission": [{"action": "ex:frobnicate"}]}),
        "/permission/0/action",
        &[
            "unknown action \"ex:frobnicate\"",
            "accepted",
            "use, transfer",
        ],
    );
    one_error(
        json!({"odrl:permission": [{"odrl:action": {"@id": "odrl:teleport"}}]}),
        "/odrl:permission/0/odrl:action/@id",
        &["unknown action \"odrl:teleport\""],
    );
}

#[test]
fn rejects_deprecated_actions_with_the_replacement() {
    one_error(
        json!({"permission": [{"action": "odrl:write"}]}),
        "/permission/0/action",
        &["deprecated", "\"modify\""],
    );
}

#[test]
fn rejects_unknown_operator() {
    one_error(
        json!({"permission": [{"action": "use", "constraint": [
            {"leftOperand": "dateTime", "operator": "equals", "rightOperand": "2020-01-01"}]}]}),
        "/permission/0/constraint/0/operator",
        &["unknown operator \"equals\"", "eq, gt, gteq"],
    );
    one_error(
        json!({"permission": [{"action": "use", "constraint": [
            {"leftOperand": "dateTime", "operator": "and", "rightOperand": "2020-01-01"}]}]}),
        "/permission/0/constraint/0/operator",
        &["logical operator"],
    );
}

#[test]
fn rejects_unknown_left_operand_naming_its_pointer() {
    one_error(
        json!({"permission": [{"action": "use", "constraint": [
            {"leftOperand": "purpose", "operator": "eq", "rightOperand": "dpv:X"},
            {"leftOperand": "partner", "operator": "eq", "rightOperand": "gold"}]}]}),
        "/permission/0/constraint/1/leftOperand",
        &[
            "unknown left operand \"partner\"",
            "dateTime",
            "caap:claim:<name>",
        ],
    );
    one_error(
        json!({"permission": [{"action": "use", "constraint": [
            {"leftOperand": "caap:claim:", "operator": "eq", "rightOperand": "x"}]}]}),
        "/permission/0/constraint/0/leftOperand",
        &["invalid claim left operand"],
    );
    one_error(
        json!({"permission": [{"action": "use", "constraint": [
            {"leftOperand": "odrl:device", "operator": "eq", "rightOperand": "x"}]}]}),
        "/permission/0/constraint/0/leftOperand",
        &["deprecated", "systemDevice"],
    );
}

#[test]
fn rejects_unknown_properties_that_would_drop_conditions() {
    one_error(
        json!({"permission": [{"action": "use", "constraints": [
            {"leftOperand": "purpose", "operator": "eq", "rightOperand": "dpv:X"}]}]}),
        "/permission/0/constraints",
        &[
            "unknown property \"constraints\" on a permission",
            "accepted",
            "constraint",
        ],
    );
    one_error(
        json!({"permission": [{"action": "use", "constraint": [
            {"leftOperand": "purpose", "odrl:operand": "eq", "operator": "eq", "rightOperand": "x"}]}]}),
        "/permission/0/constraint/0/odrl:operand",
        &["unknown property"],
    );
}

#[test]
fn rejects_wrong_json_types() {
    one_error(json!("a policy"), "", &["must be a JSON object"]);
    one_error(
        json!({"permission": ["urn:rule:1"]}),
        "/permission/0",
        &["must be a JSON object", "inline"],
    );
    one_error(
        json!({"permission": [42]}),
        "/permission/0",
        &["found a number"],
    );
    one_error(
        json!({"permission": [{"action": 7}]}),
        "/permission/0/action",
        &["found a number"],
    );
    one_error(
        json!({"permission": [{"action": "use", "target": {"@type": "AssetCollection", "source": "urn:x",
            "refinement": []}}]}),
        "/permission/0/target",
        &["collections"],
    );
    one_error(
        json!({"permission": [{"action": "use", "constraint": [
            {"leftOperand": "count", "operator": "lt", "rightOperand": null}]}]}),
        "/permission/0/constraint/0/rightOperand",
        &["null"],
    );
    one_error(
        json!({"@type": "Offer", "timestamp": 5, "permission": [{"action": "use"}]}),
        "/timestamp",
        &["xsd:dateTime"],
    );
}

#[test]
fn rejects_logical_constraints_without_operands_or_with_two_operators() {
    one_error(
        json!({"permission": [{"action": "use", "constraint": [{"and": []}]}]}),
        "/permission/0/constraint/0/and",
        &["at least one operand"],
    );
    one_error(
        json!({"permission": [{"action": "use", "constraint": [{"or": [
            {"leftOperand": "purpose", "operator": "eq", "rightOperand": "a"}],
            "and": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "b"}]}]}]}),
        "/permission/0/constraint/0",
        &["exactly one of"],
    );
    one_error(
        json!({"permission": [{"action": "use", "constraint": [{"or": [
            {"leftOperand": "purpose", "operator": "eq", "rightOperand": "a"}],
            "leftOperand": "purpose"}]}]}),
        "/permission/0/constraint/0/leftOperand",
        &["cannot appear in a logical"],
    );
}

#[test]
fn rejects_missing_required_fields() {
    one_error(
        json!({"permission": [{"target": "urn:x"}]}),
        "/permission/0/action",
        &["needs an action"],
    );
    let errs = errors(json!({"permission": [{"action": "use", "constraint": [{"@id": "urn:c"}]}]}));
    let pointers: Vec<&str> = errs.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/permission/0/constraint/0/leftOperand",
            "/permission/0/constraint/0/operator",
            "/permission/0/constraint/0/rightOperand"
        ]
    );
    one_error(
        json!({"permission": [{"action": "use", "constraint": [{"leftOperand": "count",
            "operator": "lt", "rightOperand": 3, "rightOperandReference": "urn:x"}]}]}),
        "/permission/0/constraint/0/rightOperandReference",
        &["not both"],
    );
}

#[test]
fn rejects_a_policy_without_rules() {
    one_error(
        json!({"@type": "Offer", "@id": "urn:x"}),
        "",
        &["at least one permission, prohibition or obligation"],
    );
    one_error(
        json!({"@type": "Offer", "permission": [], "prohibition": []}),
        "",
        &["at least one"],
    );
}

#[test]
fn rejects_duties_on_prohibitions_and_remedies_on_permissions() {
    one_error(
        json!({"prohibition": [{"action": "sell", "duty": [{"action": "inform"}]}]}),
        "/prohibition/0/duty",
        &["remedy"],
    );
    one_error(
        json!({"permission": [{"action": "use", "remedy": [{"action": "inform"}]}]}),
        "/permission/0/remedy",
        &["duty"],
    );
    one_error(
        json!({"permission": [{"action": "use"}], "odrl:duty": [{"action": "inform"}]}),
        "/odrl:duty",
        &["obligation"],
    );
}

#[test]
fn rejects_unsupported_constructs() {
    one_error(
        json!({"inheritFrom": "urn:parent", "permission": [{"action": "use"}]}),
        "/inheritFrom",
        &["inheritance is not supported"],
    );
    one_error(
        json!({"@type": "Ticket", "permission": [{"action": "use"}]}),
        "/@type",
        &[
            "unsupported policy type \"Ticket\"",
            "Set, Offer, Agreement, Policy",
        ],
    );
    one_error(
        json!({"permission": [{"@type": "Prohibition", "action": "use"}]}),
        "/permission/0/@type",
        &["must be Permission"],
    );
    one_error(
        json!({"permission": [{"action": ["use", "read"]}]}),
        "/permission/0/action",
        &["single value", "2"],
    );
    one_error(
        json!({"conflict": "perhaps", "permission": [{"action": "use"}]}),
        "/conflict",
        &["perm, prohibit, invalid"],
    );
}

#[test]
fn rejects_duplicate_properties() {
    one_error(
        json!({"permission": [{"action": "use", "odrl:action": "read"}]}),
        "/permission/0/odrl:action",
        &["duplicate", "/permission/0/action"],
    );
    one_error(
        json!({"@id": "urn:a", "uid": "urn:b", "permission": [{"action": "use"}]}),
        "/uid",
        &["duplicate"],
    );
}

#[test]
fn rejects_excessive_nesting_without_overflowing() {
    let mut c = json!({"leftOperand": "purpose", "operator": "eq", "rightOperand": "x"});
    for _ in 0..200 {
        c = json!({"and": [c]});
    }
    let errs = errors(json!({"permission": [{"action": "use", "constraint": [c]}]}));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.contains("levels deep"), "{errs:?}");

    let mut r = json!("x");
    for _ in 0..1_000 {
        r = json!([r, 1]);
    }
    let errs = errors(json!({"permission": [{"action": "use", "constraint": [
        {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": r}]}]}));
    assert!(errs[0].message.contains("levels deep"));
}

#[test]
fn collects_every_error_and_lists_them_in_display() {
    let err = parse_policy(&json!({
        "@type": "Offer",
        "permission": [
            {"action": "fly"},
            {"action": "use", "constraint": [{"leftOperand": "mood", "operator": "about", "rightOperand": "x"}]}
        ],
        "prohibition": {"action": "use", "duty": []}
    }))
    .unwrap_err();
    let pointers: Vec<&str> = err.errors().iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/permission/0/action",
            "/permission/1/constraint/0/leftOperand",
            "/permission/1/constraint/0/operator",
            "/prohibition/duty"
        ]
    );
    let text = err.to_string();
    assert!(text.starts_with("invalid ODRL policy: /permission/0/action: unknown action \"fly\""));
    assert!(text.contains("; /prohibition/duty: "));
    let json = serde_json::to_value(err.errors()).unwrap();
    assert_eq!(json[0]["pointer"], "/permission/0/action");
}

#[test]
fn validate_checks_policies_built_in_code() {
    assert_eq!(expected_offer().validate(), Ok(()));
    let empty = Policy::new(PolicyKind::Offer);
    assert!(empty.validate().is_err());
    let bad_claim = Policy {
        permission: vec![Rule::new(Action::Use).with_constraint(Constraint::atomic(
            LeftOperand::Claim("not a name".into()),
            Operator::Eq,
            RightOperand::string("x"),
        ))],
        ..Policy::default()
    };
    let err = bad_claim.validate().unwrap_err();
    assert_eq!(
        err.errors()[0].pointer,
        "/permission/0/constraint/0/leftOperand"
    );
}

#[test]
fn pointers_escape_slash_and_tilde() {
    let errs = errors(json!({"permission": [{"action": "use", "a/b~c": 1}]}));
    assert_eq!(errs[0].pointer, "/permission/0/a~1b~0c");
}

// ----- robustness --------------------------------------------------------------------------------

/// Every sub-value of a valid policy, replaced by each odd value, must parse or fail with
/// pointers that exist in the document (or whose parent does, for a missing field).
#[test]
fn never_panics_and_pointers_resolve_under_mutation() {
    let base = json!({
        "@id": "urn:p", "@type": "Agreement", "profile": ["urn:profile"], "conflict": "perm",
        "target": "urn:t", "assigner": "urn:a", "assignee": {"@id": "urn:b"},
        "permission": [{
            "@id": "urn:r",
            "action": {"rdf:value": {"@id": "odrl:print"}, "refinement": [
                {"leftOperand": "resolution", "operator": "lteq", "rightOperand": {"@value": "1200", "@type": "xsd:integer"}}]},
            "constraint": [{"or": [
                {"leftOperand": "caap:claim:role", "operator": "isAnyOf", "rightOperand": ["a", "b"]},
                {"leftOperand": "dateTime", "operator": "gt", "rightOperand": "2020-01-01"}]}],
            "duty": [{"action": "compensate", "consequence": [{"action": "inform"}]}]
        }],
        "prohibition": [{"action": "sell", "remedy": {"action": "delete"}}],
        "obligation": {"action": "attribute"}
    });
    let odd = [
        json!(null),
        json!(0),
        json!(-1.5e300),
        json!(""),
        json!("odrl:"),
        json!("caap:claim:x"),
        json!([]),
        json!([null, {}]),
        json!({}),
        json!({"@id": ""}),
        json!({"@list": {}}),
        json!({"@value": [], "@type": 3}),
        json!({"and": {"@set": []}}),
    ];
    let mut pointers = Vec::new();
    collect_pointers(&base, String::new(), &mut pointers);
    let mut checked = 0;
    for ptr in &pointers {
        for replacement in &odd {
            let mut doc = base.clone();
            if ptr.is_empty() {
                doc = replacement.clone();
            } else if let Some(slot) = doc.pointer_mut(ptr) {
                *slot = replacement.clone();
            }
            checked += 1;
            match parse_policy(&doc) {
                Ok(p) => assert_eq!(parse_policy(&p.to_compact_json()), Ok(p)),
                Err(e) => {
                    assert!(!e.errors().is_empty());
                    for fe in e.errors() {
                        let parent = fe.pointer.rsplit_once('/').map_or("", |(p, _)| p);
                        assert!(
                            fe.pointer.is_empty()
                                || doc.pointer(&fe.pointer).is_some()
                                || doc.pointer(parent).is_some(),
                            "pointer {} does not resolve in {doc}",
                            fe.pointer
                        );
                    }
                }
            }
        }
    }
    assert!(checked > 500, "{checked}");
}

fn collect_pointers(v: &Value, ptr: String, out: &mut Vec<String>) {
    out.push(ptr.clone());
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                collect_pointers(
                    v,
                    format!("{ptr}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                collect_pointers(v, format!("{ptr}/{i}"), out);
            }
        }
        _ => {}
    }
}
