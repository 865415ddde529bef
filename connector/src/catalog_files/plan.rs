//! What `caap apply` would change: the catalog files compared with what a connector publishes.
//! Data-address values are never shown (they may hold secrets): a plan says which fields changed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Desired, Kind, source};

/// What a connector publishes, by kind and id (bodies as `GET /api/v1/{kind}` lists them).
pub type Live = BTreeMap<(Kind, String), Value>;

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create it.
    Create,
    /// Replace it; what differs, in words.
    Update(Vec<String>),
    /// Delete it (`--prune`).
    Delete,
}

/// A change to one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its kind.
    pub kind: Kind,
    /// Its id.
    pub id: String,
    /// What happens.
    pub op: Op,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (sign, what) = match &self.op {
            Op::Create => ("+", String::new()),
            Op::Update(w) => ("~", format!(": {}", w.join(", "))),
            Op::Delete => ("-", String::new()),
        };
        write!(f, "{sign} {} {}{what}", self.kind.name(), self.id)
    }
}

/// The changes in the order they must be made: creates and updates of policies, assets, offers;
/// then deletes of offers, assets, policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The changes.
    pub changes: Vec<Change>,
}

impl Plan {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How many creates, updates and deletes.
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |f: fn(&Op) -> bool| self.changes.iter().filter(|c| f(&c.op)).count();
        (
            n(|o| *o == Op::Create),
            n(|o| matches!(o, Op::Update(_))),
            n(|o| *o == Op::Delete),
        )
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in &self.changes {
            writeln!(f, "{c}")?;
        }
        Ok(())
    }
}

/// The plan that makes `live` match `desired`; with `prune`, what the files no longer name is deleted.
pub fn plan(desired: &Desired, live: &Live, prune: bool) -> Plan {
    let mut changes = Vec::new();
    for kind in Kind::ALL {
        for e in desired.entries.iter().filter(|e| e.kind == kind) {
            match live.get(&(kind, e.id.clone())) {
                None => changes.push(Change {
                    kind,
                    id: e.id.clone(),
                    op: Op::Create,
                }),
                Some(current) => {
                    let mut differs = Vec::new();
                    // References are stored as written, so they compare as text.
                    diff(&e.body, current, "", &mut differs);
                    if !differs.is_empty() {
                        changes.push(Change {
                            kind,
                            id: e.id.clone(),
                            op: Op::Update(describe(&differs, &e.body, current)),
                        });
                    }
                }
            }
        }
    }
    if prune {
        for kind in Kind::ALL.into_iter().rev() {
            for (k, id) in live.keys() {
                if *k == kind && desired.get(kind, id).is_none() {
                    changes.push(Change {
                        kind,
                        id: id.clone(),
                        op: Op::Delete,
                    });
                }
            }
        }
    }
    Plan { changes }
}

/// Collects the pointers where `want` and `have` differ (references compare as written).
fn diff(want: &Value, have: &Value, pointer: &str, out: &mut Vec<String>) {
    match (want, have) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = format!("{pointer}/{}", source::escape(k));
                match b.get(k) {
                    Some(w) => diff(v, w, &p, out),
                    None => out.push(p),
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{pointer}/{}", source::escape(k)));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                diff(v, w, &format!("{pointer}/{i}"), out);
            }
        }
        (a, b) if a == b => {}
        _ => out.push(pointer.to_owned()),
    }
}

/// Changed pointers in words: `title changed`, `data address changed`, `purpose constraint changed`.
fn describe(pointers: &[String], want: &Value, have: &Value) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for p in pointers {
        let w = if p.starts_with("/dataAddress") {
            "data address changed".to_owned()
        } else if let Some(at) = p.find("/constraint/") {
            // The constraint's own pointer: up to its index.
            let rest = &p[at + "/constraint/".len()..];
            let index_end = rest.find('/').map_or(rest.len(), |i| i);
            let constraint = &p[..at + "/constraint/".len() + index_end];
            let operand = [want, have]
                .iter()
                .filter_map(|v| v.pointer(constraint))
                .filter_map(|c| c.get("leftOperand").or_else(|| c.get("odrl:leftOperand")))
                .filter_map(Value::as_str)
                .next()
                .map(|s| s.trim_start_matches("odrl:").to_owned());
            match operand {
                Some(o) => format!("{o} constraint changed"),
                None => "constraints changed".to_owned(),
            }
        } else if p.starts_with("/policy") {
            "ODRL rules changed".to_owned()
        } else {
            let top = p
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default();
            format!("{} changed", source::snake(top))
        };
        if !words.contains(&w) {
            words.push(w);
        }
    }
    words
}
