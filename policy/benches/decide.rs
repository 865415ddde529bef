//! Decision latency of the ODRL evaluator (issue 6; target in PRODUCT.md: ≤ 5 µs for a
//! typical policy).
//!
//! Two policies: a typical offer with five constraints (a time window, a DPV purpose `isA`,
//! a usage count, a credential claim and a place), and a 50-rule policy (45 permissions for
//! other parties and assets, 5 prohibitions, the matching permission last). Both requests are
//! permitted, so every rule and constraint is evaluated. The baseline in the same run is the
//! `PermitAll` placeholder (one formatted reason, no evaluation).
//!
//! `cargo bench -p caap-policy --bench decide` runs criterion's measurements and then prints
//! decisions per second and p50/p99 latency per policy, with the ratio to the baseline.
//! `--list` only lists the benchmarks.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use caap_policy::{
    Action, EvaluationContext, OdrlEvaluator, PermitAll, Policy, PolicyDecider, parse_policy,
};
use chrono::{TimeZone, Utc};
use criterion::Criterion;
use serde_json::{Value, json};

fn typical_policy() -> Policy {
    parse_policy(&json!({
        "@type": "Offer",
        "@id": "urn:policy:traffic-planning",
        "permission": [{
            "@id": "urn:rule:use",
            "action": "use",
            "constraint": [
                {"leftOperand": "dateTime", "operator": "lt",
                 "rightOperand": {"@value": "2027-06-30T00:00:00Z", "@type": "xsd:dateTime"}},
                {"leftOperand": "purpose", "operator": "isA",
                 "rightOperand": {"@id": "dpv:ResearchAndDevelopment"}},
                {"leftOperand": "count", "operator": "lteq", "rightOperand": 1000},
                {"leftOperand": "caap:claim:role", "operator": "isAnyOf",
                 "rightOperand": ["traffic-planner", "city-staff"]},
                {"leftOperand": "spatial", "operator": "isPartOf",
                 "rightOperand": {"@id": "urn:place:SE"}}
            ]
        }]
    }))
    .expect("typical policy")
}

fn large_policy() -> Policy {
    let mut permissions: Vec<Value> = (0..45)
        .map(|i| {
            json!({
                "@id": format!("urn:rule:p{i}"),
                "action": "use",
                "assignee": format!("did:web:party{i}.example"),
                "target": format!("urn:asset:{i}"),
                "constraint": [
                    {"leftOperand": "dateTime", "operator": "lt",
                     "rightOperand": {"@value": "2027-06-30", "@type": "xsd:date"}},
                    {"leftOperand": "caap:claim:membership", "operator": "eq",
                     "rightOperand": format!("tier-{i}")}
                ]
            })
        })
        .collect();
    permissions.push(json!({
        "@id": "urn:rule:match",
        "action": "read",
        "constraint": [
            {"leftOperand": "purpose", "operator": "isA",
             "rightOperand": {"@id": "dpv:ResearchAndDevelopment"}},
            {"leftOperand": "count", "operator": "lt", "rightOperand": 1000}
        ]
    }));
    let prohibitions: Vec<Value> = (0..5)
        .map(|i| {
            json!({
                "@id": format!("urn:rule:x{i}"),
                "action": "distribute",
                "constraint": [{"leftOperand": "spatial", "operator": "isNoneOf",
                                "rightOperand": ["urn:place:SE", "urn:place:DK"]}]
            })
        })
        .collect();
    parse_policy(&json!({
        "@type": "Set",
        "@id": "urn:policy:large",
        "permission": permissions,
        "prohibition": prohibitions
    }))
    .expect("large policy")
}

fn context() -> EvaluationContext {
    EvaluationContext::new(
        "did:web:lund.example",
        Action::Read,
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap(),
    )
    .with_target("urn:asset:traffic-counts")
    .with_purpose("https://w3id.org/dpv#AcademicResearch")
    .with_count(Action::Read, 412)
    .with_claim("role", json!("traffic-planner"))
    .with_claim("membership", json!("gold"))
    .with_spatial("urn:place:SE-M-Lund")
    .with_membership("urn:place:SE-M-Lund", "urn:place:SE-M")
    .with_membership("urn:place:SE-M", "urn:place:SE")
}

fn benches(c: &mut Criterion) {
    let typical = typical_policy();
    let large = large_policy();
    let ctx = context();
    let evaluator = OdrlEvaluator::new();
    assert!(evaluator.decide(&typical, &ctx).permitted);
    assert!(evaluator.decide(&large, &ctx).permitted);
    let mut group = c.benchmark_group("decide");
    group.bench_function("baseline_permit_all", |b| {
        b.iter(|| PermitAll.decide(black_box(&typical), black_box(&ctx)))
    });
    group.bench_function("typical_5_constraints", |b| {
        b.iter(|| evaluator.decide(black_box(&typical), black_box(&ctx)))
    });
    group.bench_function("large_50_rules", |b| {
        b.iter(|| evaluator.decide(black_box(&large), black_box(&ctx)))
    });
    group.finish();
}

struct Latency {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn latency(policy: &Policy, ctx: &EvaluationContext, decider: &dyn PolicyDecider) -> Latency {
    const N: usize = 100_000;
    for _ in 0..10_000 {
        black_box(decider.decide(black_box(policy), black_box(ctx)));
    }
    let mut samples = Vec::with_capacity(N);
    let total = Instant::now();
    for _ in 0..N {
        let start = Instant::now();
        black_box(decider.decide(black_box(policy), black_box(ctx)));
        samples.push(start.elapsed());
    }
    let elapsed = total.elapsed();
    samples.sort_unstable();
    Latency {
        per_second: N as f64 / elapsed.as_secs_f64(),
        p50: samples[N / 2],
        p99: samples[N * 99 / 100],
    }
}

fn report() {
    let ctx = context();
    let baseline = latency(&typical_policy(), &ctx, &PermitAll);
    println!("\ndecision latency ({} samples each, same run):", 100_000);
    println!(
        "  {:<34} {:>12.0} decisions/s   p50 {:>8.2?}   p99 {:>8.2?}",
        "baseline (PermitAll)", baseline.per_second, baseline.p50, baseline.p99
    );
    for (name, policy) in [
        ("typical policy (5 constraints)", typical_policy()),
        ("large policy (50 rules)", large_policy()),
    ] {
        let l = latency(&policy, &ctx, &OdrlEvaluator::new());
        let target = if name.starts_with("typical") {
            if l.p99 <= Duration::from_micros(5) {
                "  (target ≤ 5 µs: met)"
            } else {
                "  (target ≤ 5 µs: NOT met)"
            }
        } else {
            ""
        };
        println!(
            "  {:<34} {:>12.0} decisions/s   p50 {:>8.2?}   p99 {:>8.2?}   {:.1}× baseline p50{target}",
            name,
            l.per_second,
            l.p50,
            l.p99,
            l.p50.as_secs_f64() / baseline.p50.as_secs_f64().max(1e-12)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--list");
    let measuring = args.iter().any(|a| a == "--bench") && !listing;
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    if measuring {
        report();
    }
}
