//! Conformance: the SolidLab ODRL test suite and the W3C ODRL formal-semantics examples in
//! `../shared/vectors/odrl/`, run through [`evaluate_documents`] (the path behind
//! `caap policy evaluate`) and compared with their expected compliance reports.
//!
//! The comparison is structural, by rule IRI: activation state, attempt state, the premise
//! reports' types and satisfaction states (as a multiset; the expected reports' own premise
//! IRIs are arbitrary and sometimes dangle), every expected `ConstraintReport` by constraint IRI
//! (satisfaction, operator, left-operand value), and the deontic state of expected condition
//! reports. The formal-semantics draft's temporary `report:` namespace and its spellings
//! (`Not-Satisfied`, `Not-set`) are mapped onto the FORCE terms.
//!
//! Cases that do not pass are listed in [`SOLIDLAB_UNSUPPORTED`] and [`W3C_UNSUPPORTED`] with
//! the reason; the tests fail if a listed case starts passing or an unlisted one fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::rdf::{Graph, RDF_TYPE, Term, jsonld_to_graph, parse_turtle};
use crate::report::{InputFormat, evaluate_documents};
use crate::vector_tests::shared_dir;

/// SolidLab cases that do not pass, with the reason.
const SOLIDLAB_UNSUPPORTED: &[(&str, &str)] = &[];

/// W3C formal-semantics cases that do not pass, with the reason.
///
/// Note on C/C1/C11, which passes: the draft expects the permission Inactive because the
/// payment duty is not fulfilled yet; caap agrees on Inactive, but because the evaluated party
/// (`billie1`) is not the assignee (`billie`). With a matching party caap would report it
/// Active: a duty whose state is unknown does not block a permission (SolidLab's semantics,
/// test case 059), whereas the draft treats it as a pre-condition.
const W3C_UNSUPPORTED: &[(&str, &str)] = &[
    (
        "B/B1/B12",
        "the expected report contradicts itself: activationState Active with controlState Deny \
         although the refinement (resolution lteq 1200 dpi, requested 1300) is Not-Satisfied; \
         caap reports the permission Inactive (and denies)",
    ),
    (
        "C/C1/C12",
        "the request's evaluatedParty is http://example.com/party/billie1 but the rule's \
         assignee is http://example.com/party/billie; caap checks the assignee (as the SolidLab \
         suite expects), so the permission is Inactive where the draft expects Active",
    ),
    (
        "C/C2/C21",
        "policy C2's duty constraint uses ex:dayOfWeek, which is not an ODRL 2.2 left operand \
         (and ex: is not even declared in the policy's context): the policy fails closed",
    ),
    (
        "C/C2/C22",
        "policy C2's duty constraint uses ex:dayOfWeek (see C21): the policy fails closed",
    ),
    (
        "C/C2/C23",
        "policy C2's duty constraint uses ex:dayOfWeek (see C21): the policy fails closed",
    ),
];

fn local(s: &str) -> &str {
    s.rsplit(['#', '/', ':']).next().unwrap_or(s)
}

fn ident(t: &Term) -> String {
    match t {
        Term::Iri(s) | Term::Blank(s) => s.clone(),
        Term::Literal { value, .. } => value.clone(),
    }
}

fn state(t: &Term) -> String {
    let raw = match t {
        Term::Iri(s) | Term::Blank(s) => local(s).to_owned(),
        Term::Literal { value, .. } => local(value).to_owned(),
    };
    match raw.as_str() {
        "Not-Satisfied" | "NotSatisfied" => "Unsatisfied".to_owned(),
        "Not-set" | "NotSet" | "Nonset" => "NonSet".to_owned(),
        _ => raw,
    }
}

fn props<'g>(g: &'g Graph, s: &Term, name: &str) -> Vec<&'g Term> {
    g.triples
        .iter()
        .filter(|t| &t.s == s && local(&t.p) == name)
        .map(|t| &t.o)
        .collect()
}

fn prop<'g>(g: &'g Graph, s: &Term, name: &str) -> Option<&'g Term> {
    props(g, s, name).into_iter().next()
}

fn types(g: &Graph, s: &Term) -> Vec<String> {
    g.triples
        .iter()
        .filter(|t| &t.s == s && t.p == RDF_TYPE)
        .map(|t| local(&ident(&t.o)).to_owned())
        .collect()
}

fn subjects_with(g: &Graph, name: &str) -> Vec<Term> {
    let mut out: Vec<Term> = Vec::new();
    for t in &g.triples {
        if local(&t.p) == name && !out.contains(&t.s) {
            out.push(t.s.clone());
        }
    }
    out
}

/// Rule reports: nodes with `rule` and `activationState` that are not duty/condition reports.
fn rule_reports(g: &Graph) -> BTreeMap<String, Term> {
    subjects_with(g, "activationState")
        .into_iter()
        .filter(|s| {
            let ty = types(g, s);
            !ty.iter()
                .any(|t| t == "DutyReport" || t == "ConditionReport")
        })
        .filter_map(|s| prop(g, &s, "rule").map(|r| (ident(r), s.clone())))
        .collect()
}

fn premise_kinds(g: &Graph, rule: &Term) -> (Vec<(String, String)>, usize) {
    let refs = props(g, rule, "premiseReport");
    let mut out = Vec::new();
    for r in &refs {
        let ty = types(g, r);
        if let Some(ty) = ty.first() {
            let sat = prop(g, r, "satisfactionState")
                .map(state)
                .unwrap_or_default();
            out.push((ty.clone(), sat));
        }
    }
    out.sort();
    (out, refs.len())
}

fn compare(expected: &Graph, ours: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    let ours_rules = rule_reports(ours);
    let expected_rules = rule_reports(expected);
    if expected_rules.is_empty() {
        problems.push("the expected report has no rule report".to_owned());
    }
    for (rule, e) in &expected_rules {
        let Some(o) = ours_rules.get(rule) else {
            problems.push(format!("no rule report for {rule}"));
            continue;
        };
        for name in ["activationState", "attemptState"] {
            if let Some(ev) = prop(expected, e, name) {
                let ov = prop(ours, o, name).map(state);
                if ov.as_deref() != Some(state(ev).as_str()) {
                    problems.push(format!("{rule}: {name} expected {}, got {ov:?}", state(ev)));
                }
            }
        }
        let (exp, exp_refs) = premise_kinds(expected, e);
        let (got, got_refs) = premise_kinds(ours, o);
        // The formal-semantics reports do not link premises to rules (their constraint reports
        // are checked below by constraint IRI).
        let links_premises = expected
            .triples
            .iter()
            .any(|t| local(&t.p) == "premiseReport");
        if !links_premises {
        } else if exp.len() == exp_refs {
            if exp != got {
                problems.push(format!("{rule}: premises expected {exp:?}, got {got:?}"));
            }
        } else {
            let mut remaining = got.clone();
            for p in &exp {
                match remaining.iter().position(|g| g == p) {
                    Some(i) => {
                        remaining.remove(i);
                    }
                    None => problems.push(format!("{rule}: premise {p:?} missing in {got:?}")),
                }
            }
            if exp_refs != got_refs {
                problems.push(format!(
                    "{rule}: {exp_refs} premises expected, {got_refs} reported"
                ));
            }
        }
    }
    // Constraint reports, by constraint IRI.
    let ours_constraints: BTreeMap<String, Term> = subjects_with(ours, "constraint")
        .into_iter()
        .filter(|s| types(ours, s).iter().any(|t| t == "ConstraintReport"))
        .filter_map(|s| prop(ours, &s, "constraint").map(|c| (ident(c), s.clone())))
        .collect();
    for s in subjects_with(expected, "constraint") {
        if !types(expected, &s).iter().any(|t| t == "ConstraintReport") {
            continue;
        }
        let Some(c) = prop(expected, &s, "constraint").map(ident) else {
            continue;
        };
        let Some(o) = ours_constraints.get(&c) else {
            problems.push(format!("no constraint report for {c}"));
            continue;
        };
        for name in ["satisfactionState", "constraintOperator"] {
            if let Some(ev) = prop(expected, &s, name) {
                let ov = prop(ours, o, name).map(state);
                if ov.as_deref() != Some(state(ev).as_str()) {
                    problems.push(format!("{c}: {name} expected {}, got {ov:?}", state(ev)));
                }
            }
        }
        if let Some(ev) = prop(expected, &s, "constraintLeftOperand") {
            let ov = prop(ours, o, "constraintLeftOperand").map(ident);
            let same = match (
                crate::evaluate::parse_time(&ident(ev)),
                ov.as_deref().and_then(crate::evaluate::parse_time),
            ) {
                (Some(a), Some(b)) => a == b,
                _ => ov.as_deref() == Some(ident(ev).as_str()),
            };
            if !same {
                problems.push(format!(
                    "{c}: left operand expected {}, got {ov:?}",
                    ident(ev)
                ));
            }
        }
    }
    // Condition (duty) reports with a deontic state, by the duty's IRI.
    for s in subjects_with(expected, "deonticState") {
        let Some(duty) = prop(expected, &s, "condition")
            .or_else(|| prop(expected, &s, "rule"))
            .or_else(|| prop(expected, &s, "constraint"))
            .map(ident)
        else {
            continue;
        };
        let ours_duty = subjects_with(ours, "deonticState")
            .into_iter()
            .find(|d| prop(ours, d, "rule").map(ident).as_deref() == Some(duty.as_str()));
        let Some(od) = ours_duty else {
            problems.push(format!("no duty report for {duty}"));
            continue;
        };
        let ev = prop(expected, &s, "deonticState").map(state);
        let ov = prop(ours, &od, "deonticState").map(state);
        if ev != ov {
            problems.push(format!("{duty}: deonticState expected {ev:?}, got {ov:?}"));
        }
    }
    problems
}

fn ours_graph(report: &crate::ComplianceReport) -> Graph {
    jsonld_to_graph(&report.to_json_ld()).unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ttl_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ttl"))
        .collect();
    files.sort();
    files
}

/// Maps each file's typed subjects (policy, request, state) to the file's text.
fn index(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for f in ttl_files(dir) {
        let text = read(&f);
        let g = parse_turtle(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for t in g.triples.iter().filter(|t| t.p == RDF_TYPE) {
            if let Term::Iri(s) = &t.s
                && s.starts_with("urn:")
            {
                out.entry(s.clone()).or_insert_with(|| text.clone());
            }
        }
    }
    out
}

fn check_listed(outcomes: &[(String, Vec<String>)], listed: &[(&str, &str)]) {
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(n, _)| n.as_str())
        .collect();
    let mut listed_names: Vec<&str> = listed.iter().map(|(n, _)| *n).collect();
    listed_names.sort_unstable();
    let mut failed_sorted = failed.clone();
    failed_sorted.sort_unstable();
    for (name, problems) in outcomes {
        if !problems.is_empty() {
            println!("{name}: {}", problems.join(" | "));
        }
    }
    println!(
        "{} cases: {} pass, {} listed as unsupported",
        outcomes.len(),
        outcomes.len() - failed.len(),
        failed.len()
    );
    assert_eq!(failed_sorted, listed_names);
}

#[test]
fn solidlab_odrl_test_suite() {
    let Some(root) = shared_dir("vectors/odrl/solidlab-odrl-test-suite") else {
        return;
    };
    let policies = index(&root.join("policies"));
    let requests = index(&root.join("requests"));
    let states = index(&root.join("sotw"));
    let mut outcomes = Vec::new();
    for case in ttl_files(&root.join("test_cases")) {
        let name = case
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let expected = parse_turtle(&read(&case)).unwrap();
        let tc = subjects_with(&expected, "expectedReport");
        let tc = tc.first().unwrap();
        let get = |p: &str| prop(&expected, tc, p).map(ident).unwrap();
        let (policy, request, sotw) = (get("policy"), get("request"), get("sotw"));
        let problems = match (
            policies.get(&policy),
            requests.get(&request),
            states.get(&sotw),
        ) {
            (Some(p), Some(r), Some(s)) => match evaluate_documents(p, r, s, InputFormat::Turtle) {
                Ok(report) => compare(&expected, &ours_graph(&report)),
                Err(e) => vec![format!("error: {e}")],
            },
            _ => vec![format!("input missing: {policy} {request} {sotw}")],
        };
        outcomes.push((name, problems));
    }
    assert!(outcomes.len() >= 40, "only {} cases", outcomes.len());
    check_listed(&outcomes, SOLIDLAB_UNSUPPORTED);
}

fn json_in(dir: &Path, prefix: &str) -> Option<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    files.sort();
    files.into_iter().next()
}

#[test]
fn w3c_formal_semantics_examples() {
    let Some(root) = shared_dir("vectors/odrl/w3c-formal-semantics") else {
        return;
    };
    let mut outcomes = Vec::new();
    for group in ["A", "B", "C"] {
        let Ok(example_dirs) = std::fs::read_dir(root.join(group)) else {
            continue;
        };
        let mut example_dirs: Vec<PathBuf> = example_dirs
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        example_dirs.sort();
        for example in example_dirs.iter().filter(|p| p.is_dir()) {
            let Some(policy) = json_in(example, "policy") else {
                continue;
            };
            let mut cases: Vec<PathBuf> = std::fs::read_dir(example)
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            cases.sort();
            for case in cases {
                let name = case
                    .strip_prefix(&root)
                    .unwrap_or(&case)
                    .to_string_lossy()
                    .into_owned();
                let (Some(request), Some(expected)) = (
                    json_in(&case, "evaluationrequest"),
                    json_in(&case, "compliancereport"),
                ) else {
                    continue;
                };
                let state = json_in(&case, "state")
                    .map(|p| read(&p))
                    .unwrap_or_default();
                let expected: serde_json::Value = serde_json::from_str(&read(&expected)).unwrap();
                let expected = jsonld_to_graph(&expected).unwrap();
                let problems = match evaluate_documents(
                    &read(&policy),
                    &read(&request),
                    &state,
                    InputFormat::Detect,
                ) {
                    Ok(report) => compare(&expected, &ours_graph(&report)),
                    Err(e) => vec![format!("error: {e}")],
                };
                outcomes.push((name, problems));
            }
        }
    }
    assert!(outcomes.len() >= 9, "only {} cases", outcomes.len());
    check_listed(&outcomes, W3C_UNSUPPORTED);
}
