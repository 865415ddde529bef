use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::parse_policy;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn ctx(action: Action) -> EvaluationContext {
    EvaluationContext::new("did:web:lund.example", action, now())
}

fn decide(policy: serde_json::Value, ctx: &EvaluationContext) -> Decision {
    let policy = parse_policy(&policy).unwrap();
    let decision = OdrlEvaluator::new().decide(&policy, ctx);
    // The fast path and the detailed evaluation agree.
    let detailed = OdrlEvaluator::new().evaluate(&policy, ctx);
    assert_eq!(decision.permitted, detailed.permitted());
    assert_eq!(
        evaluate_mode(&policy, ctx, &Hints::default(), false).permitted(),
        decision.permitted
    );
    decision
}

fn one_constraint(left: &str, op: &str, right: serde_json::Value) -> serde_json::Value {
    json!({
        "@type": "Offer", "@id": "urn:p",
        "permission": [{"@id": "urn:r", "action": "use",
            "constraint": [{"leftOperand": left, "operator": op, "rightOperand": right}]}]
    })
}

#[test]
fn time_window_permits_inside_and_explains_outside() {
    let p = one_constraint(
        "dateTime",
        "lt",
        json!({"@value": "2026-07-01", "@type": "xsd:date"}),
    );
    let d = decide(p.clone(), &ctx(Action::Read));
    assert!(d.permitted, "{d}");
    assert!(d.reasons[0].contains("urn:r"), "{d}");
    let late = ctx(Action::Read);
    let late = EvaluationContext {
        now: Utc.with_ymd_and_hms(2026, 8, 1, 0, 0, 0).unwrap(),
        ..late
    };
    let d = decide(p, &late);
    assert!(!d.permitted);
    assert!(
        d.reasons[0].contains("dateTime lt 2026-07-01") && d.reasons[0].contains("2026-08-01"),
        "{d}"
    );
}

#[test]
fn every_comparison_operator() {
    let cases = [
        ("eq", 5, true),
        ("eq", 6, false),
        ("neq", 6, true),
        ("lt", 6, true),
        ("lt", 5, false),
        ("lteq", 5, true),
        ("gt", 4, true),
        ("gt", 5, false),
        ("gteq", 5, true),
    ];
    for (op, right, expected) in cases {
        let p = one_constraint("resolution", op, json!(right));
        let c = ctx(Action::Print).with_operand(&LeftOperand::Resolution, json!(5));
        assert_eq!(decide(p, &c).permitted, expected, "5 {op} {right}");
    }
}

#[test]
fn set_operators_over_claims() {
    let c = ctx(Action::Read).with_claim("roles", json!(["planner", "staff"]));
    let cases = [
        ("isAnyOf", json!(["planner", "admin"]), true),
        ("isAnyOf", json!(["admin", "root"]), false),
        ("isNoneOf", json!(["admin", "root"]), true),
        ("isNoneOf", json!(["staff"]), false),
        ("isAllOf", json!(["planner", "staff"]), true),
        ("isAllOf", json!(["planner", "admin"]), false),
        ("hasPart", json!("staff"), true),
        ("hasPart", json!("admin"), false),
        ("isPartOf", json!(["planner", "staff", "x"]), true),
        ("isPartOf", json!(["planner"]), false),
        ("eq", json!("staff"), true),
    ];
    for (op, right, expected) in cases {
        let p = one_constraint("caap:claim:roles", op, right.clone());
        assert_eq!(decide(p, &c).permitted, expected, "roles {op} {right}");
    }
    let nested = ctx(Action::Read).with_claim("address", json!({"country": "SE"}));
    let p = one_constraint("caap:claim:address.country", "eq", json!("SE"));
    assert!(decide(p, &nested).permitted);
}

#[test]
fn purposes_use_the_dpv_hierarchy() {
    let p = one_constraint(
        "purpose",
        "isA",
        json!({"@id": "dpv:ResearchAndDevelopment"}),
    );
    let academic = ctx(Action::Use).with_purpose("https://w3id.org/dpv#AcademicResearch");
    assert!(decide(p.clone(), &academic).permitted);
    let marketing = ctx(Action::Use).with_purpose("dpv:Marketing");
    let d = decide(p.clone(), &marketing);
    assert!(
        !d.permitted && d.reasons[0].contains("dpv:Marketing"),
        "{d}"
    );
    let none = decide(p, &ctx(Action::Use));
    assert!(
        !none.permitted && none.reasons[0].contains("no purpose"),
        "{none}"
    );
    let eq = one_constraint("purpose", "eq", json!("dpv:Marketing"));
    assert!(
        decide(
            eq,
            &ctx(Action::Use).with_purpose("https://w3id.org/dpv#Marketing")
        )
        .permitted
    );
}

#[test]
fn count_is_inclusive_of_the_request() {
    let p = one_constraint("count", "lteq", json!(1000));
    let c = ctx(Action::Read).with_count(Action::Read, 999);
    assert!(decide(p.clone(), &c).permitted);
    let c = ctx(Action::Read).with_count(Action::Read, 1000);
    let d = decide(p, &c);
    assert!(!d.permitted && d.reasons[0].contains("1001"), "{d}");
}

#[test]
fn elapsed_time_spatial_and_recipient() {
    let p = one_constraint(
        "elapsedTime",
        "lteq",
        json!({"@value": "P30D", "@type": "xsd:duration"}),
    );
    let c = ctx(Action::Use).with_first_use(now() - TimeDelta::days(10));
    assert!(decide(p.clone(), &c).permitted);
    let c = ctx(Action::Use).with_first_use(now() - TimeDelta::days(31));
    assert!(!decide(p, &c).permitted);

    let p = one_constraint("spatial", "isPartOf", json!({"@id": "urn:place:SE"}));
    let c = ctx(Action::Use)
        .with_spatial("urn:place:SE-M-Lund")
        .with_membership("urn:place:SE-M-Lund", "urn:place:SE-M")
        .with_membership("urn:place:SE-M", "urn:place:SE");
    assert!(decide(p.clone(), &c).permitted);
    assert!(!decide(p, &ctx(Action::Use).with_spatial("urn:place:DK")).permitted);

    let p = one_constraint("recipient", "isAnyOf", json!(["did:web:a", "did:web:b"]));
    assert!(decide(p.clone(), &ctx(Action::Use).with_recipient("did:web:b")).permitted);
    assert!(!decide(p, &ctx(Action::Use).with_recipient("did:web:c")).permitted);
}

#[test]
fn logical_constraints() {
    let base = |op: &str| {
        json!({
            "@type": "Set", "@id": "urn:p",
            "permission": [{"action": "use", "constraint": [{op: [
                {"leftOperand": "caap:claim:a", "operator": "eq", "rightOperand": "1"},
                {"leftOperand": "caap:claim:b", "operator": "eq", "rightOperand": "1"}
            ]}]}]
        })
    };
    let c = |a: &str, b: &str| {
        ctx(Action::Use)
            .with_claim("a", json!(a))
            .with_claim("b", json!(b))
    };
    for (op, a, b, expected) in [
        ("and", "1", "1", true),
        ("and", "1", "0", false),
        ("andSequence", "1", "1", true),
        ("andSequence", "0", "1", false),
        ("or", "0", "1", true),
        ("or", "0", "0", false),
        ("xone", "1", "0", true),
        ("xone", "1", "1", false),
        ("xone", "0", "0", false),
    ] {
        assert_eq!(
            decide(base(op), &c(a, b)).permitted,
            expected,
            "{a} {op} {b}"
        );
    }
}

#[test]
fn unknown_values_fail_closed_both_ways() {
    // A permission whose constraint cannot be evaluated does not apply.
    let p = one_constraint("fileFormat", "eq", json!("text/csv"));
    let d = decide(p, &ctx(Action::Use));
    assert!(!d.permitted && d.reasons[0].contains("no value for the left operand fileFormat"));
    // A prohibition whose constraint cannot be evaluated applies.
    let p = json!({"@type": "Set", "@id": "urn:p",
        "permission": [{"action": "use"}],
        "prohibition": [{"@id": "urn:no", "action": "use",
            "constraint": [{"leftOperand": "caap:claim:tier", "operator": "eq", "rightOperand": "x"}]}],
        "odrl:conflict": {"@id": "odrl:prohibit"}});
    let d = decide(p, &ctx(Action::Read));
    assert!(
        !d.permitted && d.reasons[0].contains("cannot be ruled out"),
        "{d}"
    );
    // Ordering strings is not defined.
    let p = one_constraint("caap:claim:level", "lt", json!("b"));
    let d = decide(p, &ctx(Action::Use).with_claim("level", json!("a")));
    assert!(
        !d.permitted && d.reasons[0].contains("cannot be evaluated"),
        "{d}"
    );
}

#[test]
fn parties_targets_and_action_hierarchy() {
    let p = json!({"@type": "Agreement", "@id": "urn:p", "assignee": "did:web:lund.example",
        "target": "urn:asset:1", "permission": [{"action": "use"}]});
    assert!(decide(p.clone(), &ctx(Action::Read).with_target("urn:asset:1")).permitted);
    assert!(!decide(p.clone(), &ctx(Action::Read).with_target("urn:asset:2")).permitted);
    assert!(
        !decide(p.clone(), &ctx(Action::Sell)).permitted,
        "use does not include sell"
    );
    let other = EvaluationContext::new("did:web:malmo.example", Action::Read, now());
    let d = decide(p, &other);
    assert!(
        !d.permitted && d.reasons[0].contains("not the assignee"),
        "{d}"
    );
}

#[test]
fn conflict_strategies() {
    let policy = |conflict: Option<&str>| {
        let mut p = json!({"@type": "Set", "@id": "urn:p",
            "permission": [{"action": "use"}], "prohibition": [{"action": "distribute"}]});
        if let Some(c) = conflict {
            p["odrl:conflict"] = json!({"@id": format!("odrl:{c}")});
        }
        p
    };
    let c = ctx(Action::Distribute);
    assert!(decide(policy(Some("perm")), &c).permitted);
    assert!(!decide(policy(Some("prohibit")), &c).permitted);
    let d = decide(policy(None), &c);
    assert!(!d.permitted && d.reasons[0].contains("void"), "{d}");
    assert!(
        decide(policy(None), &ctx(Action::Read)).permitted,
        "no conflict for read"
    );
}

#[test]
fn duties_block_only_when_violated() {
    let p = json!({"@type": "Set", "@id": "urn:p", "permission": [{"action": "use",
        "duty": [{"@id": "urn:duty", "action": "compensate"}]}],
        "obligation": [{"@id": "urn:ob", "action": "delete"}]});
    assert!(decide(p.clone(), &ctx(Action::Use)).permitted);
    let c = ctx(Action::Use).with_duty_state("urn:duty", DeonticState::Violated);
    assert!(!decide(p.clone(), &c).permitted);
    let c = ctx(Action::Use).with_duty_state("urn:ob", DeonticState::Violated);
    let d = decide(p, &c);
    assert!(!d.permitted && d.reasons[0].contains("obligation"), "{d}");
}

#[test]
fn refinements_are_premises() {
    let p = json!({"@type": "Set", "@id": "urn:p", "permission": [{"action": {
        "rdf:value": {"@id": "odrl:print"},
        "refinement": [{"leftOperand": "resolution", "operator": "lteq", "rightOperand": 1200,
            "unit": "http://dbpedia.org/resource/Dots_per_inch"}]}}]});
    let c = ctx(Action::Print).with_fact("http://dbpedia.org/resource/Dots_per_inch", json!(600));
    assert!(decide(p.clone(), &c).permitted);
    let c = ctx(Action::Print).with_operand(&LeftOperand::Resolution, json!(2400));
    assert!(!decide(p, &c).permitted);
}

#[test]
fn no_permission_at_all_is_denied_and_values_parse() {
    let p = json!({"@type": "Set", "@id": "urn:p", "prohibition": [{"action": "sell"}]});
    let d = decide(p, &ctx(Action::Read));
    assert!(!d.permitted && d.reasons[0].contains("grants no permission"));
    assert_eq!(parse_duration("P1DT1H"), Some(90_000_000));
    assert_eq!(parse_duration("PT0.5S"), Some(500));
    assert_eq!(parse_duration("P"), None);
    assert_eq!(parse_duration("PT"), None);
    assert_eq!(parse_duration("-P1D"), Some(-86_400_000));
    assert!(parse_time("2025-07-23 00:00:00").is_some());
    assert!(parse_time("2018-01-01").is_some());
    assert!(parse_time("yesterday").is_none());
}
