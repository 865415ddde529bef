//! Values kept out of the files: a data address string may contain `${env:NAME}` (an environment
//! variable of the connector process) or `${file:PATH}` (a file's content, trimmed; an absolute path
//! or one relative to the connector's data directory); a whole value may also be written
//! `{ env = "NAME" }` or `{ file = "PATH" }`. Secrets (API keys in a source URL, a password in its user
//! info) must be written this way: a literal one is a validation error. `caap apply` sends references
//! as written; the connector stores them so and resolves them only in its data plane
//! ([`resolve`], when it opens the source). Nothing here prints a resolved value.

use std::path::Path;

use serde_json::Value;

/// Query parameters and user info that carry secrets.
const SECRET_PARAMS: &[&str] = &[
    "key",
    "apikey",
    "api_key",
    "api-key",
    "token",
    "access_token",
    "accesstoken",
    "auth",
    "secret",
    "client_secret",
    "password",
    "passwd",
    "pwd",
    "sig",
    "signature",
    "subscription-key",
];

/// The data address fields that hold URLs.
const URL_FIELDS: &[&str] = &["url", "brokerUrl"];

/// Where referenced values come from besides files.
pub trait Resolver {
    /// The value of environment variable `name`, if set.
    fn env(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy)]
pub struct ProcessEnv;

impl Resolver for ProcessEnv {
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Resolver for F {
    fn env(&self, name: &str) -> Option<String> {
        self(name)
    }
}

use caap_catalog::reference::{Part, Reference as Ref, check_file, parse};

pub use caap_catalog::reference::has_refs;

fn resolve_ref(r: &Ref, base: &Path, resolver: &dyn Resolver) -> Result<String, String> {
    match r {
        Ref::Env(name) => resolver
            .env(name)
            .ok_or_else(|| format!("{r}: the environment variable {name} is not set")),
        Ref::File(p) => {
            check_file(p).map_err(|e| format!("{r}: {e}"))?;
            let path = base.join(p);
            std::fs::read_to_string(&path)
                .map(|s| s.trim().to_owned())
                .map_err(|e| format!("{r}: cannot read {}: {e}", path.display()))
        }
    }
}

/// `s` with its references resolved.
pub fn resolve(s: &str, base: &Path, resolver: &dyn Resolver) -> Result<String, String> {
    let mut out = String::new();
    for part in parse(s)? {
        match part {
            Part::Text(t) => out.push_str(&t),
            Part::Ref(r) => out.push_str(&resolve_ref(&r, base, resolver)?),
        }
    }
    Ok(out)
}

/// Rewrites whole-value references (`{ env = "NAME" }`, `{ file = "PATH" }`) in an asset body's data
/// address to their `${…}` form.
pub fn inline_tables(body: &mut Value) {
    if let Some(Value::Object(addr)) = body.get_mut("dataAddress") {
        for v in addr.values_mut() {
            let reference = match v.as_object() {
                Some(m) if m.len() == 1 => match m.iter().next() {
                    Some((k, Value::String(name))) if k == "env" || k == "file" => {
                        Some(format!("${{{k}:{name}}}"))
                    }
                    _ => None,
                },
                _ => None,
            };
            if let Some(r) = reference {
                *v = Value::String(r);
            }
        }
    }
}

/// The data address strings of an asset body, with their JSON pointers.
pub fn address_strings(body: &Value) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    if let Some(Value::Object(addr)) = body.get("dataAddress") {
        for (k, v) in addr {
            if let Value::String(s) = v {
                out.push((format!("/dataAddress/{k}"), s.as_str()));
            }
        }
    }
    out
}

/// Problems with the references of an asset body, and literal secrets it carries, as (pointer, message).
pub fn check(body: &Value) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (pointer, s) in address_strings(body) {
        if let Err(e) = parse(s) {
            problems.push((pointer.clone(), e));
            continue;
        }
        if !URL_FIELDS
            .iter()
            .any(|f| pointer.ends_with(&format!("/{f}")))
        {
            continue;
        }
        rewrite_url(s, |what| {
            if !has_refs(what.value) {
                problems.push((
                    pointer.clone(),
                    format!(
                        "the {} is a secret written into the file; reference it instead, e.g. ${{env:{}}} \
                         or ${{file:secrets/…}}",
                        what.name,
                        suggest_env(body, what.name)
                    ),
                ));
            }
            None
        });
    }
    problems
}

fn suggest_env(body: &Value, name: &str) -> String {
    let id = body.get("id").and_then(Value::as_str).unwrap_or("source");
    let mut out: String = format!("{id}_{name}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    out
}

/// `body` with every reference in its data address resolved.
pub fn resolve_body(body: &Value, base: &Path, resolver: &dyn Resolver) -> Result<Value, String> {
    let mut out = body.clone();
    if let Some(Value::Object(addr)) = out.get_mut("dataAddress") {
        for v in addr.values_mut() {
            if let Value::String(s) = v
                && has_refs(s)
            {
                *s = resolve(s, base, resolver)?;
            }
        }
    }
    Ok(out)
}

/// A live body as it may be shown: secrets in its data address URLs replaced by `***`.
pub fn redact(body: &Value) -> Value {
    replace_secrets(body, |_, _| "***".to_owned()).0
}

/// A live body as it may be written to a file: each secret in its data address URLs replaced by a
/// `${env:…}` reference; with the names of those variables.
pub fn externalize(body: &Value) -> (Value, Vec<String>) {
    replace_secrets(body, |b, name| format!("${{env:{}}}", suggest_env(b, name)))
}

fn replace_secrets(body: &Value, with: impl Fn(&Value, &str) -> String) -> (Value, Vec<String>) {
    let mut out = body.clone();
    let mut names = Vec::new();
    let original = body.clone();
    if let Some(Value::Object(addr)) = out.get_mut("dataAddress") {
        for field in URL_FIELDS {
            if let Some(Value::String(s)) = addr.get_mut(*field) {
                *s = rewrite_url(s, |what| {
                    // A reference is not the secret: it stays as written.
                    if has_refs(what.value) {
                        return None;
                    }
                    let replacement = with(&original, what.name);
                    if let Some(env) = replacement
                        .strip_prefix("${env:")
                        .and_then(|r| r.strip_suffix('}'))
                    {
                        names.push(env.to_owned());
                    }
                    Some(replacement)
                });
            }
        }
    }
    (out, names)
}

/// A secret-bearing piece of a URL.
struct SecretPart<'a> {
    /// `password` or the query parameter's name.
    name: &'a str,
    value: &'a str,
}

/// Calls `f` on the user-info password and every secret-named query parameter of `url`; replaces each
/// with what `f` returns (`None` keeps it).
fn rewrite_url(url: &str, mut f: impl FnMut(SecretPart<'_>) -> Option<String>) -> String {
    let mut out = String::with_capacity(url.len());
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..authority_end];
    out.push_str(&url[..start]);
    match authority
        .rfind('@')
        .and_then(|at| authority[..at].find(':').map(|colon| (colon, at)))
    {
        Some((colon, at)) => {
            let password = &authority[colon + 1..at];
            out.push_str(&authority[..=colon]);
            match f(SecretPart {
                name: "password",
                value: password,
            }) {
                Some(r) => out.push_str(&r),
                None => out.push_str(password),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let rest = &url[authority_end..];
    let (before_fragment, fragment) = match rest.find('#') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                        match f(SecretPart { name: k, value: v }) {
                            Some(r) => format!("{k}={r}"),
                            None => pair.to_owned(),
                        }
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
        None => out.push_str(before_fragment),
    }
    out.push_str(fragment);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "s3cret".to_owned())
    }

    #[test]
    fn references_resolve() {
        let base = Path::new(".");
        assert_eq!(
            resolve("https://x/p?key=${env:KEY}", base, &env).unwrap(),
            "https://x/p?key=s3cret"
        );
        let e = resolve("${env:NOPE}/x", base, &env).unwrap_err();
        assert!(e.contains("NOPE") && !e.contains("s3cret"), "{e}");
        assert!(resolve("${vault:x}", base, &env).is_err());
        // No climbing out of the folder.
        assert!(resolve("https://x/?k=${file:../k}", base, &env).is_err());
    }

    #[test]
    fn whole_value_references_are_tables_too() {
        let mut body = json!({"dataAddress": {"type": "HttpApi", "url": {"env": "LUND_URL"},
            "credentials": "c", "method": {"file": "m.txt"}}});
        inline_tables(&mut body);
        assert_eq!(body["dataAddress"]["url"], "${env:LUND_URL}");
        assert_eq!(body["dataAddress"]["method"], "${file:m.txt}");
    }

    #[test]
    fn literal_secrets_are_refused_and_never_shown() {
        let literal = json!({"id": "lund-parking", "dataAddress": {"type": "HttpApi",
            "url": "https://user:pw@api.lund.se/p?apikey=abc&city=lund"}});
        let problems = check(&literal);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[1].1.contains("LUND_PARKING_APIKEY"),
            "{problems:?}"
        );
        let referenced = json!({"id": "a", "dataAddress": {"type": "HttpApi",
            "url": "https://api.lund.se/p?apikey=${env:LUND_KEY}&city=lund"}});
        assert_eq!(check(&referenced), vec![]);
        assert_eq!(
            redact(&literal)["dataAddress"]["url"],
            "https://user:***@api.lund.se/p?apikey=***&city=lund"
        );
        let (exported, names) = externalize(&literal);
        assert_eq!(
            exported["dataAddress"]["url"],
            "https://user:${env:LUND_PARKING_PASSWORD}@api.lund.se/p?apikey=${env:LUND_PARKING_APIKEY}&city=lund"
        );
        assert_eq!(names, ["LUND_PARKING_PASSWORD", "LUND_PARKING_APIKEY"]);
    }
}
