//! Data-driven tests over the shared test vectors: every ODRL policy JSON under
//! `vectors/odrl/`, and every policy embedded in the DSP example messages under `dsp/`.
//!
//! The shared folder is `$CAAP_SHARED_DIR`, or `<workspace>/../shared` when that is unset. When
//! it is missing the tests print a line starting with `SKIPPED:` and pass, unless
//! `CAAP_REQUIRE_SHARED=1`. Vectors that are expected to fail (constructs outside ODRL 2.2 core,
//! or deliberately broken examples) are listed explicitly with the pointer of the first error.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::model::strip_odrl;
use crate::parse_policy;

/// The shared sub-folder `sub` (e.g. `vectors/odrl`), or `None` (after printing `SKIPPED:`) when
/// it is missing and `CAAP_REQUIRE_SHARED` is not `1`.
pub(crate) fn shared_dir(sub: &str) -> Option<PathBuf> {
    let shared = match std::env::var_os("CAAP_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        // CARGO_MANIFEST_DIR is <workspace>/policy; the shared folder sits beside the workspace.
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."))
            .join("../shared"),
    };
    let dir = shared.join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    let required = std::env::var("CAAP_REQUIRE_SHARED").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "CAAP_REQUIRE_SHARED=1 but the shared folder {} is missing",
        dir.display()
    );
    println!("SKIPPED: shared folder {} not found", dir.display());
    None
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            json_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "json" || e == "jsonld")
        {
            out.push(path);
        }
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether a top-level JSON document is an ODRL policy (rather than an evaluation request,
/// compliance report, state of the world or vocabulary).
fn is_policy(v: &Value) -> bool {
    let Some(obj) = v.as_object() else {
        return false;
    };
    let typed_policy = obj
        .get("@type")
        .and_then(Value::as_str)
        .and_then(strip_odrl)
        .is_some_and(|t| {
            matches!(
                t,
                "Policy"
                    | "Set"
                    | "Offer"
                    | "Agreement"
                    | "Privacy"
                    | "Request"
                    | "Ticket"
                    | "Assertion"
            )
        });
    let has_rules = obj.keys().any(|k| {
        strip_odrl(k).is_some_and(|t| matches!(t, "permission" | "prohibition" | "obligation"))
    });
    typed_policy || has_rules
}

struct Outcome {
    name: String,
    first_error: Option<String>,
}

fn check(name: String, policy: &Value) -> Outcome {
    match parse_policy(policy) {
        Ok(p) => {
            assert_eq!(
                parse_policy(&p.to_compact_json()).as_ref(),
                Ok(&p),
                "{name} does not round-trip"
            );
            assert!(!p.describe().is_empty());
            Outcome {
                name,
                first_error: None,
            }
        }
        Err(e) => {
            println!("{name}: rejected: {e}");
            Outcome {
                name,
                first_error: e.errors().first().map(|fe| fe.pointer.clone()),
            }
        }
    }
}

fn assert_outcomes(outcomes: &[Outcome], expected_failures: &[(&str, &str)], min_parsed: usize) {
    let failures: Vec<(&str, &str)> = outcomes
        .iter()
        .filter_map(|o| o.first_error.as_deref().map(|p| (o.name.as_str(), p)))
        .collect();
    let parsed = outcomes.len() - failures.len();
    println!(
        "{} policies: {parsed} parsed, {} rejected as expected",
        outcomes.len(),
        failures.len()
    );
    assert_eq!(failures, expected_failures);
    assert!(parsed >= min_parsed, "only {parsed} parsed");
}

#[test]
fn odrl_vectors() {
    let Some(root) = shared_dir("vectors/odrl") else {
        return;
    };
    let mut files = Vec::new();
    json_files(&root, &mut files);
    let mut outcomes = Vec::new();
    for path in &files {
        let v = read_json(path);
        if !is_policy(&v) {
            continue;
        }
        let name = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        outcomes.push(check(name, &v));
    }
    println!(
        "{} JSON files under {}, {} of them policies (the Turtle vectors are not JSON and are \
         not read)",
        files.len(),
        root.display(),
        outcomes.len()
    );
    assert_outcomes(
        &outcomes,
        &[
            // A duty constraint on `ex:dayOfWeek`: not an ODRL 2.2 left operand, so it fails closed.
            (
                "w3c-formal-semantics/C/C2/policyC2.json",
                "/permission/0/duty/0/constraint/0/leftOperand",
            ),
        ],
        4,
    );
}

/// Finds the policies embedded in a DSP message: values of `offer`, `agreement` and `hasPolicy`
/// (bare or prefixed), with their JSON pointers.
fn embedded_policies<'a>(v: &'a Value, ptr: &str, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{ptr}/{k}");
                let term = k.rsplit(':').next().unwrap_or(k);
                if matches!(term, "offer" | "agreement" | "hasPolicy") {
                    match v {
                        Value::Array(items) => {
                            for (i, item) in items.iter().enumerate() {
                                out.push((format!("{p}/{i}"), item));
                            }
                        }
                        other => out.push((p.clone(), other)),
                    }
                } else {
                    embedded_policies(v, &p, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                embedded_policies(item, &format!("{ptr}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn dsp_example_policies() {
    let Some(root) = shared_dir("dsp") else {
        return;
    };
    let mut files = Vec::new();
    json_files(&root, &mut files);
    let mut outcomes = Vec::new();
    for path in files
        .iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "examples"))
    {
        let v = read_json(path);
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        let mut found = Vec::new();
        embedded_policies(&v, "", &mut found);
        for (ptr, policy) in found {
            outcomes.push(check(format!("{rel}#{ptr}"), policy));
        }
    }
    assert_outcomes(
        &outcomes,
        &[
            // The duty's action `cc:Attribution` is a Creative Commons term, not an ODRL action.
            (
                "2024-1/catalog/examples/catalog.json#/dcat:dataset/0/odrl:hasPolicy/0",
                "/odrl:permission/0/odrl:duty/odrl:action",
            ),
            // `odrl:operand` is a typo for `odrl:operator` in the 2024-1 examples.
            (
                "2024-1/negotiation/examples/contract-agreement-message.json#/dspace:agreement",
                "/odrl:permission/0/odrl:constraint/0/odrl:operand",
            ),
            (
                "2024-1/negotiation/examples/contract-offer-message.json#/dspace:offer",
                "/odrl:permission/0/odrl:constraint/0/odrl:operand",
            ),
            (
                "2024-1/negotiation/examples/contract-request-message.json#/dspace:offer",
                "/odrl:permission/0/odrl:constraint/0/odrl:operand",
            ),
            // A policy-level `odrl:duty`, `dspace:TRANSPORT`, `odrl:equals`, `oderl:rightOperand`.
            (
                "2024-1/negotiation/examples/contract.agreement.message.http.transfer.json#/dspace:agreement",
                "/odrl:duty",
            ),
            // Placeholder left operands `partner`, `constraint1`, `constraint2`.
            (
                "2025-1/negotiation/examples/contract-agreement-message-full.json#/agreement",
                "/permission/1/constraint/0/and/0/leftOperand",
            ),
        ],
        10,
    );
}
