//! The declarative catalog: a city's assets, policies and offers written as TOML files (one or many,
//! in a folder kept in version control), checked all at once before anything is written, compared with
//! what a connector publishes ([`plan`]), and written back from a connector ([`export`]).
//!
//! A catalog file holds `[[asset]]`, `[[policy]]` and `[[offer]]` tables with the management API's
//! fields in snake_case (`data_model`, `[asset.data_address]`, `access_policy`). A policy is inline
//! (`[policy.policy]`, ODRL keys as in JSON-LD) or an ODRL JSON-LD file named by `policy_file`,
//! relative to the catalog file. Secrets in data addresses are references ([`refs`]): `${env:NAME}` or
//! `${file:PATH}` inside a string, or a whole value `{ env = "NAME" }`; never values.
//!
//! Validation reuses the domain crates (`Asset::validate`, `Offer::validate`, the ODRL parser with
//! its JSON-pointer errors) and adds what only a whole catalog can check: unique ids, offers naming
//! assets and policies the files define, personal data never offered under an open policy. Every
//! problem names its file and line. Applying goes through the management API (the `caap` binary).

mod export;
mod plan;
pub mod refs;
mod source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use caap_catalog::asset::Asset;
use caap_catalog::offer::Offer;
use serde_json::Value;
use toml::de::{DeTable, DeValue};

pub use export::{ExportFile, export};
pub use plan::{Change, Live, Op, Plan, plan};
pub use refs::{ProcessEnv, Resolver};

use crate::catalog::PolicyDoc;
use source::{Offsets, line_of};

/// The three kinds of catalog document, in the order they are created (offers need the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// An ODRL policy.
    Policy,
    /// A dataset with its data address.
    Asset,
    /// Assets offered under an access and a contract policy.
    Offer,
}

impl Kind {
    /// Every kind, in creation order.
    pub const ALL: [Kind; 3] = [Kind::Policy, Kind::Asset, Kind::Offer];

    /// `policy`, `asset`, `offer`: the table name in files and the word in plans.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Policy => "policy",
            Kind::Asset => "asset",
            Kind::Offer => "offer",
        }
    }

    /// The management API collection, e.g. `/api/v1/assets`.
    pub fn collection(self) -> &'static str {
        match self {
            Kind::Policy => "/api/v1/policies",
            Kind::Asset => "/api/v1/assets",
            Kind::Offer => "/api/v1/offers",
        }
    }

    fn from_table(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One problem in the catalog files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// A file's text and where each JSON pointer of one entry sits in it.
#[derive(Debug, Clone)]
struct Located {
    file: PathBuf,
    text: Arc<str>,
    offsets: Offsets,
}

impl Located {
    fn line(&self, pointer: &str) -> usize {
        self.offsets
            .of(pointer)
            .map_or(0, |o| line_of(&self.text, o))
    }

    fn problem(&self, pointer: &str, message: impl Into<String>) -> Problem {
        Problem {
            file: self.file.clone(),
            line: self.line(pointer),
            message: message.into(),
        }
    }
}

/// One document the files describe.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its kind.
    pub kind: Kind,
    /// Its id.
    pub id: String,
    /// The body as the connector stores it (normalized like the management API does); data-address
    /// strings may still hold references.
    pub body: Value,
    /// The folder its references are relative to.
    base: PathBuf,
    at: Located,
}

impl Entry {
    /// Where it is written: `file:line`.
    pub fn origin(&self) -> String {
        format!("{}:{}", self.at.file.display(), self.at.line(""))
    }

    /// The body with its references resolved against `resolver` and the folder of its file (the
    /// demo publishes in-process this way; `caap apply` sends the references as written).
    pub fn resolved(&self, resolver: &dyn Resolver) -> Result<Value, Problem> {
        refs::resolve_body(&self.body, &self.base, resolver)
            .map_err(|e| self.at.problem("/dataAddress", e))
    }
}

/// Everything the catalog files describe.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// The documents, in file order.
    pub entries: Vec<Entry>,
    /// Documents with problems (so that references to them are not reported as missing too).
    broken: Vec<(Kind, String)>,
}

impl Desired {
    /// The document of `kind` named `id`.
    pub fn get(&self, kind: Kind, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.kind == kind && e.id == id)
    }

    /// The documents in an order they can be created in: policies, assets, offers.
    pub fn in_creation_order(&self) -> impl Iterator<Item = &Entry> {
        Kind::ALL
            .into_iter()
            .flat_map(|k| self.entries.iter().filter(move |e| e.kind == k))
    }
}

/// Reads and checks the catalog at `path` (a `.toml` file, or a folder whose `.toml` files, in
/// sub-folders too, are read in name order). Every problem of every file is returned at once.
pub fn load(path: &Path) -> Result<Desired, Vec<Problem>> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    if path.is_dir() {
        collect_toml(path, &mut files, &mut problems);
        if files.is_empty() && problems.is_empty() {
            problems.push(Problem {
                file: path.to_owned(),
                line: 0,
                message: "no .toml catalog files in this folder".into(),
            });
        }
    } else {
        files.push(path.to_owned());
    }
    let mut desired = Desired::default();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => load_file(&file, text.into(), &mut desired, &mut problems),
            Err(e) => problems.push(Problem {
                file,
                line: 0,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    check_catalog(&desired, &mut problems);
    if problems.is_empty() {
        Ok(desired)
    } else {
        Err(problems)
    }
}

fn collect_toml(dir: &Path, files: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    let mut paths = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect::<Vec<_>>(),
        Err(e) => {
            problems.push(Problem {
                file: dir.to_owned(),
                line: 0,
                message: format!("cannot read the folder: {e}"),
            });
            return;
        }
    };
    paths.sort();
    for p in paths {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            collect_toml(&p, files, problems);
        } else if p.extension().is_some_and(|e| e == "toml") {
            files.push(p);
        }
    }
}

fn load_file(file: &Path, text: Arc<str>, desired: &mut Desired, problems: &mut Vec<Problem>) {
    let whole = Located {
        file: file.to_owned(),
        text: text.clone(),
        offsets: Offsets::default(),
    };
    let at_offset = |offset: usize, message: String| Problem {
        file: file.to_owned(),
        line: line_of(&text, offset),
        message,
    };
    let (doc, errors) = DeTable::parse_recoverable(&text);
    if !errors.is_empty() {
        for e in errors {
            let offset = e.span().map_or(0, |s| s.start);
            problems.push(at_offset(
                offset,
                format!("not valid TOML: {}", e.message()),
            ));
        }
        return;
    }
    let base = file.parent().unwrap_or(Path::new(".")).to_owned();
    for (key, value) in doc.get_ref().iter() {
        let name: &str = key.get_ref();
        let Some(kind) = Kind::from_table(name) else {
            problems.push(at_offset(
                key.span().start,
                format!(
                    "unknown key `{name}`; a catalog file holds [[asset]], [[policy]] and [[offer]] tables"
                ),
            ));
            continue;
        };
        let DeValue::Array(items) = value.get_ref() else {
            problems.push(at_offset(
                key.span().start,
                format!("write [[{name}]] (one table per {name}), not [{name}] or {name} = …"),
            ));
            continue;
        };
        for item in items.iter() {
            if !matches!(item.get_ref(), DeValue::Table(_)) {
                problems.push(at_offset(
                    item.span().start,
                    format!("each {name} is a table"),
                ));
                continue;
            }
            let mut offsets = Offsets::default();
            let json = source::entry_to_json(item, &mut offsets);
            let at = Located {
                offsets,
                ..whole.clone()
            };
            let id = json.get("id").and_then(Value::as_str).map(str::to_owned);
            match entry(kind, json, at, &base) {
                Ok(e) => desired.entries.push(e),
                Err(mut p) => {
                    problems.append(&mut p);
                    desired.broken.extend(id.map(|id| (kind, id)));
                }
            }
        }
    }
}

/// Deserializes `json` as `T`, collecting every unknown field (each is removed and the rest tried
/// again) and then the first other mismatch, as (pointer, message) with field names in snake_case.
fn decode_all<T: serde::de::DeserializeOwned>(
    mut json: Value,
) -> (Option<T>, Vec<(String, String)>) {
    let mut errors = Vec::new();
    for _ in 0..64 {
        match serde_path_to_error::deserialize::<_, T>(&json) {
            Ok(t) => return (Some(t), errors),
            Err(e) => {
                let mut pointer = String::new();
                for seg in e.path().iter() {
                    match seg {
                        serde_path_to_error::Segment::Seq { index } => {
                            pointer.push_str(&format!("/{index}"));
                        }
                        serde_path_to_error::Segment::Map { key } => {
                            pointer.push_str(&format!("/{}", source::escape(key)));
                        }
                        serde_path_to_error::Segment::Enum { .. }
                        | serde_path_to_error::Segment::Unknown => {}
                    }
                }
                let message = snake_message(&e.inner().to_string());
                let unknown = message
                    .strip_prefix("unknown field `")
                    .and_then(|r| r.split_once('`'))
                    .map(|(name, _)| source::camel(name));
                match unknown {
                    Some(name) if remove_key(&mut json, &pointer, &name) => {
                        let at = if pointer.ends_with(&format!("/{name}")) {
                            pointer.clone()
                        } else {
                            format!("{pointer}/{name}")
                        };
                        errors.push((at, message));
                    }
                    _ => {
                        errors.push((pointer, message));
                        return (None, errors);
                    }
                }
            }
        }
    }
    (None, errors)
}

/// Removes key `name` from the object at `pointer` (or at its parent, when the pointer already names it).
fn remove_key(json: &mut Value, pointer: &str, name: &str) -> bool {
    if let Some(Value::Object(m)) = json.pointer_mut(pointer)
        && m.remove(name).is_some()
    {
        return true;
    }
    if let Some((parent, last)) = pointer.rsplit_once('/')
        && last == name
        && let Some(Value::Object(m)) = json.pointer_mut(parent)
    {
        return m.remove(name).is_some();
    }
    false
}

/// A serde message with the field names between backticks in snake_case, as the files write them.
fn snake_message(message: &str) -> String {
    message
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                source::snake(part)
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// The snake_case form of a JSON pointer, for messages.
fn field(pointer: &str) -> String {
    let f: Vec<String> = pointer
        .trim_start_matches('/')
        .split('/')
        .map(source::snake)
        .collect();
    f.join(".")
}

fn located(
    at: &Located,
    errors: impl IntoIterator<Item = (String, String)>,
    prefix: &str,
) -> Vec<Problem> {
    errors
        .into_iter()
        .map(|(p, m)| {
            let pointer = format!("{prefix}{p}");
            let shown = field(&pointer);
            if shown.is_empty() {
                at.problem(&pointer, m)
            } else {
                at.problem(&pointer, format!("{shown}: {m}"))
            }
        })
        .collect()
}

fn entry(kind: Kind, json: Value, at: Located, base: &Path) -> Result<Entry, Vec<Problem>> {
    let what = kind.name();
    let body = match kind {
        Kind::Asset => {
            let mut json = json;
            refs::inline_tables(&mut json);
            let (asset, errors) = decode_all::<Asset>(json.clone());
            let mut problems = located(&at, errors, "");
            problems.extend(located(&at, refs::check(&json), ""));
            if let Some(asset) = &asset {
                // Fields holding references are checked by the connector once resolved.
                let referenced: Vec<String> = refs::address_strings(&json)
                    .into_iter()
                    .filter(|(_, s)| refs::has_refs(s))
                    .map(|(p, _)| p)
                    .collect();
                let errors = asset
                    .validate()
                    .into_iter()
                    .filter(|e| !referenced.contains(&e.pointer))
                    .map(|e| (e.pointer, e.message));
                problems.extend(located(&at, errors, ""));
            }
            match asset {
                Some(a) if problems.is_empty() => serde_json::to_value(&a),
                _ => return Err(problems),
            }
        }
        Kind::Policy => return policy_entry(json, at, base),
        Kind::Offer => {
            let (offer, errors) = decode_all::<Offer>(json);
            let mut problems = located(&at, errors, "");
            if let Some(o) = &offer {
                problems.extend(located(
                    &at,
                    o.validate().into_iter().map(|e| (e.pointer, e.message)),
                    "",
                ));
            }
            match offer {
                Some(o) if problems.is_empty() => serde_json::to_value(&o),
                _ => return Err(problems),
            }
        }
    };
    let body = body.map_err(|e| vec![at.problem("", format!("this {what}: {e}"))])?;
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(Entry {
        kind,
        id,
        body,
        base: base.to_owned(),
        at,
    })
}

fn policy_entry(mut json: Value, at: Located, base: &Path) -> Result<Entry, Vec<Problem>> {
    let mut problems = Vec::new();
    // A policy file: its ODRL is read from there, and its errors point into it.
    let mut policy_at = None;
    if let Some(map) = json.as_object_mut()
        && let Some(file) = map.remove("policyFile")
    {
        let Some(rel) = file.as_str() else {
            return Err(vec![at.problem("/policyFile", "policy_file: a path")]);
        };
        if map.contains_key("policy") {
            problems.push(at.problem(
                "/policy",
                "give the ODRL policy inline (policy) or as a file (policy_file), not both",
            ));
        }
        let path = base.join(rel);
        match std::fs::read_to_string(&path) {
            Err(e) => problems.push(at.problem(
                "/policyFile",
                format!("policy_file: cannot read {}: {e}", path.display()),
            )),
            Ok(text) => match serde_json::from_str::<Value>(&text) {
                Err(e) => problems.push(Problem {
                    file: path,
                    line: e.line(),
                    message: format!("not valid JSON: {e}"),
                }),
                Ok(odrl) => {
                    map.insert("policy".into(), odrl);
                    policy_at = Some(Located {
                        file: path,
                        offsets: source::json_lines(&text),
                        text: text.into(),
                    });
                }
            },
        }
    } else if json.get("policy").is_none() {
        problems.push(at.problem(
            "",
            "a policy needs its ODRL: inline ([policy.policy]) or policy_file = \"….jsonld\"",
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let (doc, errors) = decode_all::<PolicyDoc>(json);
    problems.extend(located(&at, errors, ""));
    let Some(mut doc) = doc else {
        return Err(problems);
    };
    let mut id_errors = Vec::new();
    caap_catalog::asset::check_id("/id", &doc.id, &mut id_errors);
    problems.extend(located(
        &at,
        id_errors.into_iter().map(|e| (e.pointer, e.message)),
        "",
    ));
    match caap_policy::parse_policy(&doc.policy) {
        Ok(p) => doc.policy = p.to_compact_json(),
        Err(e) => {
            let errors = e
                .errors()
                .iter()
                .map(|fe| (fe.pointer.clone(), fe.message.clone()));
            match &policy_at {
                // In the JSON file the pointer is the file's own.
                Some(pa) => problems.extend(errors.map(|(p, m)| {
                    let shown = if p.is_empty() {
                        "(the policy)".into()
                    } else {
                        p.clone()
                    };
                    pa.problem(&p, format!("{shown}: {m}"))
                })),
                None => problems.extend(located(&at, errors, "/policy")),
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let body = serde_json::to_value(&doc).map_err(|e| vec![at.problem("", e.to_string())])?;
    Ok(Entry {
        kind: Kind::Policy,
        id: doc.id,
        body,
        base: base.to_owned(),
        at,
    })
}

/// Whether a policy lets anyone use the data for anything: a permission without constraints.
fn is_open(policy_body: &Value) -> bool {
    let Some(odrl) = policy_body.get("policy") else {
        return false;
    };
    caap_policy::parse_policy(odrl)
        .is_ok_and(|p| p.permission.iter().any(|r| r.constraint.is_empty()))
}

/// What only the whole catalog can check: unique ids, offers naming what the files define, personal
/// data never under an open contract policy.
fn check_catalog(desired: &Desired, problems: &mut Vec<Problem>) {
    let missing = |kind: Kind, id: &str| {
        desired.get(kind, id).is_none()
            && !desired.broken.iter().any(|(k, i)| *k == kind && i == id)
    };
    let mut seen: BTreeMap<(Kind, &str), &Entry> = BTreeMap::new();
    for e in &desired.entries {
        if let Some(first) = seen.get(&(e.kind, e.id.as_str())) {
            problems.push(e.at.problem(
                "/id",
                format!(
                    "{} `{}` is already defined at {}",
                    e.kind.name(),
                    e.id,
                    first.origin()
                ),
            ));
        } else {
            seen.insert((e.kind, e.id.as_str()), e);
        }
    }
    for offer in desired.entries.iter().filter(|e| e.kind == Kind::Offer) {
        let Ok(o) = serde_json::from_value::<Offer>(offer.body.clone()) else {
            continue;
        };
        for (pointer, id) in [
            ("/accessPolicy", &o.access_policy),
            ("/contractPolicy", &o.contract_policy),
        ] {
            if missing(Kind::Policy, id) {
                problems.push(offer.at.problem(
                    pointer,
                    format!("{}: no policy `{id}` in the catalog files", field(pointer)),
                ));
            }
        }
        let open = desired
            .get(Kind::Policy, &o.contract_policy)
            .is_some_and(|p| is_open(&p.body));
        if o.public
            && let Some(p) = desired.get(Kind::Policy, &o.contract_policy)
            && !p
                .body
                .get("policy")
                .and_then(|odrl| caap_policy::parse_policy(odrl).ok())
                .is_some_and(|p| p.permits_anyone())
        {
            problems.push(offer.at.problem(
                "/public",
                format!(
                    "public: contract policy `{}` does not let anyone use the data; a public offer needs a \
                     permission without constraints (duties such as attribution are fine)",
                    o.contract_policy
                ),
            ));
        }
        for (i, id) in o.assets.iter().enumerate() {
            let pointer = format!("/assets/{i}");
            match desired.get(Kind::Asset, id) {
                None if missing(Kind::Asset, id) => problems.push(offer.at.problem(
                    &pointer,
                    format!("assets: no asset `{id}` in the catalog files"),
                )),
                Some(a) if o.public && a.body.get("personalData").is_some() => {
                    problems.push(offer.at.problem(
                        &pointer,
                        format!(
                            "assets: `{id}` declares personal data, and datasets with personal data can never \
                             be public; remove `public = true` or the dataset from this offer"
                        ),
                    ))
                }
                Some(a) if open && a.body.get("personalData").is_some() => {
                    problems.push(offer.at.problem(
                        &pointer,
                        format!(
                            "assets: `{id}` declares personal data, but contract policy `{}` lets anyone \
                             use it for anything; offer it under a policy with a purpose constraint",
                            o.contract_policy
                        ),
                    ))
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
