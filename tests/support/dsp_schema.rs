//! Validation of JSON against the official DSP 2025-1 JSON Schemas, for tests.
//!
//! Include it from test code with
//! `#[path = "../support/dsp_schema.rs"] mod dsp_schema;` (the path is relative to the including file).
//!
//! The schemas are read from `${CAAP_SHARED_DIR:-<workspace>/../shared}/dsp/2025-1/<protocol>/schemas/`.
//! Their `$id`s (`https://w3id.org/dspace/2025/1/<protocol>/<file>.json`) are registered with the validator,
//! so nothing is fetched over the network. The known upstream defect (three transfer schemas reference
//! `transfer-schema.json#definitions/…`, a JSON pointer without its leading `/`) is corrected in memory.
//! Every schema is compiled once per test process.
//!
//! One official example fails against its schema because of an upstream inconsistency; see
//! [`KNOWN_UPSTREAM_EXAMPLE_FAILURES`].
//!
//! When the folder is missing, [`load`] prints `SKIPPED: <reason>` and returns [`Shared::Skipped`], unless
//! `CAAP_REQUIRE_SHARED=1`, in which case it panics.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::Value;

/// The prefix of every DSP 2025-1 schema `$id`.
const ID_PREFIX: &str = "https://w3id.org/dspace/2025/1/";
/// The protocol folders under `dsp/2025-1/` that hold `schemas/` and `examples/`.
const PROTOCOLS: [&str; 4] = ["catalog", "common", "negotiation", "transfer"];

/// Official examples that do not validate against the official schemas, with the upstream reason.
/// [`DspSchemas::self_check`] still reports them as `Err`; tests compare against this list.
#[allow(dead_code)]
pub const KNOWN_UPSTREAM_EXAMPLE_FAILURES: &[(&str, &str)] = &[(
    "common/examples/dataservice-did-service.json",
    "did-service-schema.json requires every serviceEndpoint to end in /catalog, but a DataService entry points at \
     /.well-known/dspace-version (upstream issue eclipse-dataspace-protocol-base/DataspaceProtocol#251, open)",
)];

/// The outcome of [`load`].
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub enum Shared {
    /// The schemas were found and compiled.
    Found(DspSchemas),
    /// The shared folder is missing; the reason says where it was looked for.
    Skipped(String),
}

/// The compiled DSP 2025-1 schemas, keyed `<protocol>/<file>.json` (e.g. `"catalog/catalog-schema.json"`).
/// Cheap to clone.
#[derive(Clone)]
pub struct DspSchemas {
    inner: Arc<Inner>,
}

struct Inner {
    /// `…/dsp/2025-1`.
    root: PathBuf,
    validators: BTreeMap<String, jsonschema::Validator>,
    /// The `$ref`s corrected in memory, one line each.
    patches: Vec<String>,
}

impl fmt::Debug for DspSchemas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DspSchemas")
            .field("root", &self.inner.root)
            .field("schemas", &self.inner.validators.keys().collect::<Vec<_>>())
            .field("patches", &self.inner.patches)
            .finish()
    }
}

/// Loads (once per process) and compiles the DSP 2025-1 schemas.
///
/// # Panics
///
/// When the folder is missing and `CAAP_REQUIRE_SHARED=1`, and whenever the folder exists but a schema
/// cannot be read, parsed or compiled.
#[allow(dead_code, clippy::panic, clippy::print_stdout)]
pub fn load() -> Shared {
    static CACHE: OnceLock<DspSchemas> = OnceLock::new();
    if let Some(schemas) = CACHE.get() {
        return Shared::Found(schemas.clone());
    }
    let root = shared_dir().join("dsp").join("2025-1");
    if !root.is_dir() {
        let reason = format!(
            "the DSP 2025-1 schemas are not at {} (set CAAP_SHARED_DIR to the folder that holds dsp/2025-1)",
            root.display()
        );
        if std::env::var("CAAP_REQUIRE_SHARED").is_ok_and(|value| value == "1") {
            panic!("CAAP_REQUIRE_SHARED=1 but {reason}");
        }
        println!("SKIPPED: {reason}");
        return Shared::Skipped(reason);
    }
    let schemas = match DspSchemas::compile(&root) {
        Ok(schemas) => schemas,
        Err(error) => panic!(
            "cannot load the DSP schemas from {}: {error}",
            root.display()
        ),
    };
    Shared::Found(CACHE.get_or_init(|| schemas).clone())
}

/// `$CAAP_SHARED_DIR`, or `<workspace>/../shared`.
#[allow(dead_code)]
pub fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAAP_SHARED_DIR").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.contains("[workspace]"))
        })
        .unwrap_or(manifest_dir);
    workspace.join("..").join("shared")
}

#[allow(dead_code)]
impl DspSchemas {
    /// Validates `value` against `schema`, named `<protocol>/<file>.json` (e.g.
    /// `"negotiation/contract-request-message-schema.json"`; `<protocol>/schemas/<file>.json` and the full
    /// `$id` are accepted too). Returns every error, each with the JSON pointer of the offending value.
    pub fn validate(&self, schema: &str, value: &Value) -> Result<(), Vec<String>> {
        let key = schema_key(schema);
        let Some(validator) = self.inner.validators.get(&key) else {
            let known: Vec<&str> = self.inner.validators.keys().map(String::as_str).collect();
            return Err(vec![format!(
                "unknown DSP schema `{schema}`; known: {}",
                known.join(", ")
            )]);
        };
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|error| {
                let path = error.instance_path().to_string();
                format!(
                    "at `{}`: {error}",
                    if path.is_empty() { "/" } else { path.as_str() }
                )
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Like [`validate`](Self::validate), but panics with every error and the pretty-printed JSON.
    #[allow(clippy::panic)]
    pub fn assert_valid(&self, schema: &str, value: &Value) {
        if let Err(errors) = self.validate(schema, value) {
            let pretty = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
            panic!(
                "JSON does not validate against DSP schema `{schema}` ({} error(s)):\n  - {}\n{pretty}",
                errors.len(),
                errors.join("\n  - ")
            );
        }
    }

    /// Validates every official example (`<protocol>/examples/*.json`) against its schema and returns
    /// (`<protocol>/examples/<file>.json`, result) for each, sorted. An example whose schema cannot be
    /// worked out from its name, or that is not valid JSON, gets an `Err` saying so.
    pub fn self_check(&self) -> Vec<(String, Result<(), Vec<String>>)> {
        let mut results = Vec::new();
        for protocol in PROTOCOLS {
            let folder = self.inner.root.join(protocol).join("examples");
            for path in json_files(&folder).unwrap_or_default() {
                let file = file_name(&path);
                let example = format!("{protocol}/examples/{file}");
                let result = match (self.schema_for_example(&example), read_json(&path)) {
                    (None, _) => Err(vec![format!(
                        "no DSP schema matches the example name `{example}`"
                    )]),
                    (_, Err(error)) => Err(vec![error]),
                    (Some(schema), Ok(value)) => self.validate(&schema, &value),
                };
                results.push((example, result));
            }
        }
        results
    }

    /// The schema (`<protocol>/<file>.json`) an official example is meant for, worked out from its name
    /// (`<protocol>/examples/<name>.json`): a `_variant` suffix and a `-full` suffix are dropped,
    /// `nested-<x>` is an `<x>`, and `<anything>-did-service` is a `did-service`.
    pub fn schema_for_example(&self, example: &str) -> Option<String> {
        let (protocol, file) = example.split_once("/examples/")?;
        let stem = file.strip_suffix(".json")?;
        let stem = stem.split_once('_').map_or(stem, |(base, _variant)| base);
        let candidates = [
            Some(stem),
            stem.strip_suffix("-full"),
            stem.strip_prefix("nested-"),
            stem.ends_with("-did-service").then_some("did-service"),
        ];
        candidates
            .into_iter()
            .flatten()
            .map(|name| format!("{protocol}/{name}-schema.json"))
            .find(|key| self.inner.validators.contains_key(key))
    }

    /// Reads an official example, named `<protocol>/examples/<file>.json` as in [`self_check`](Self::self_check).
    pub fn example(&self, example: &str) -> Result<Value, String> {
        read_json(&self.inner.root.join(example))
    }

    /// Every schema name, `<protocol>/<file>.json`, sorted.
    pub fn schemas(&self) -> Vec<&str> {
        self.inner.validators.keys().map(String::as_str).collect()
    }

    /// The `$ref`s that were corrected in memory while loading, one line each.
    pub fn patches(&self) -> &[String] {
        &self.inner.patches
    }

    /// Reads, patches, registers and compiles every schema under `root` (`…/dsp/2025-1`).
    fn compile(root: &Path) -> Result<DspSchemas, String> {
        let mut documents = BTreeMap::new();
        let mut patches = Vec::new();
        for protocol in PROTOCOLS {
            let folder = root.join(protocol).join("schemas");
            for path in json_files(&folder)? {
                let key = format!("{protocol}/{}", file_name(&path));
                let mut schema = read_json(&path)?;
                let id = schema
                    .get("$id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if id != format!("{ID_PREFIX}{key}") {
                    return Err(format!(
                        "{}: `$id` is `{id}`, expected `{ID_PREFIX}{key}`",
                        path.display()
                    ));
                }
                fix_pointer_refs(&mut schema, &key, &mut patches);
                documents.insert(key, schema);
            }
        }
        let registry = jsonschema::Registry::new()
            .extend(
                documents
                    .iter()
                    .map(|(key, schema)| (format!("{ID_PREFIX}{key}"), schema.clone())),
            )
            .and_then(|builder| builder.prepare())
            .map_err(|error| format!("cannot register the schemas: {error}"))?;
        let mut validators = BTreeMap::new();
        for (key, schema) in &documents {
            let validator = jsonschema::options()
                .with_registry(&registry)
                .offline()
                .build(schema)
                .map_err(|error| format!("cannot compile {key}: {error}"))?;
            validators.insert(key.clone(), validator);
        }
        Ok(DspSchemas {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                validators,
                patches,
            }),
        })
    }
}

/// `catalog/catalog-schema.json` from that, from `catalog/schemas/catalog-schema.json` or from the full `$id`.
fn schema_key(schema: &str) -> String {
    let schema = schema.strip_prefix(ID_PREFIX).unwrap_or(schema);
    schema.replacen("/schemas/", "/", 1)
}

/// Corrects `$ref`s whose fragment is a JSON pointer without its leading `/` (`…json#definitions/X`), the
/// upstream defect in three 2025-1 transfer schemas. A fragment with a `/` cannot be a plain-name anchor,
/// so the correction cannot change the meaning of a valid reference.
fn fix_pointer_refs(value: &mut Value, key: &str, patches: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (name, member) in object.iter_mut() {
                if name != "$ref" {
                    fix_pointer_refs(member, key, patches);
                } else if let Value::String(reference) = member
                    && let Some((base, fragment)) = reference.split_once('#')
                    && !fragment.starts_with('/')
                    && fragment.contains('/')
                {
                    let fixed = format!("{base}#/{fragment}");
                    patches.push(format!("{key}: `{reference}` -> `{fixed}`"));
                    *reference = fixed;
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| fix_pointer_refs(item, key, patches)),
        _ => {}
    }
}

/// The `*.json` files directly in `folder`, sorted.
fn json_files(folder: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(folder)
        .map_err(|error| format!("cannot list {}: {error}", folder.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .is_some_and(|extension| extension == "json")
        })
        .collect();
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|error| format!("{} is not valid JSON: {error}", path.display()))
}
