//! A connector's catalog written as catalog files (`caap export`): `assets.toml`, `policies.toml` with
//! one ODRL JSON-LD file per policy under `policies/`, and `offers.toml`. Applying them changes
//! nothing. Secrets in data-address URLs are written as `${env:…}` references, never as values.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::plan::Live;
use super::{Kind, refs, source};

/// One file to write, relative to the export folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    /// Path below the export folder.
    pub path: PathBuf,
    /// Its content.
    pub text: String,
}

/// The files for `live`, and the environment variables their secret references name (to be set before
/// applying them elsewhere).
pub fn export(live: &Live, source_name: &str) -> Result<(Vec<ExportFile>, Vec<String>), String> {
    let mut files = Vec::new();
    let mut env = Vec::new();
    for kind in Kind::ALL {
        let mut entries = Vec::new();
        for ((k, id), body) in live {
            if *k != kind {
                continue;
            }
            let body = match kind {
                Kind::Asset => {
                    let (b, names) = refs::externalize(body);
                    env.extend(names);
                    b
                }
                Kind::Policy => {
                    let mut b = body.clone();
                    if let Some(map) = b.as_object_mut()
                        && let Some(odrl) = map.remove("policy")
                    {
                        let name = format!("policies/{}.jsonld", file_name(id));
                        let text =
                            serde_json::to_string_pretty(&odrl).map_err(|e| e.to_string())?;
                        files.push(ExportFile {
                            path: PathBuf::from(&name),
                            text: format!("{text}\n"),
                        });
                        map.insert("policyFile".into(), Value::String(name));
                    }
                    b
                }
                Kind::Offer => body.clone(),
            };
            entries.push(snake_keys(&body));
        }
        let mut table = Map::new();
        table.insert(kind.name().to_owned(), Value::Array(entries));
        let toml_value = toml::Value::try_from(Value::Object(table)).map_err(|e| e.to_string())?;
        let text = toml::to_string_pretty(&toml_value).map_err(|e| e.to_string())?;
        let file = match kind {
            Kind::Policy => "policies.toml",
            Kind::Asset => "assets.toml",
            Kind::Offer => "offers.toml",
        };
        files.push(ExportFile {
            path: PathBuf::from(file),
            text: format!(
                "# Written by `caap export` from {source_name}.\n\
                 # `caap apply -f <this folder>` makes a connector's catalog match these files.\n\n{text}"
            ),
        });
    }
    Ok((files, env))
}

/// A file name for an id (ids may hold `:`).
fn file_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if matches!(c, ':' | '@' | '+' | '~') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

fn snake_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (source::snake(k), snake_keys(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(snake_keys).collect()),
        other => other.clone(),
    }
}
