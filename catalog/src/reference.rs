//! References to values kept out of the catalog: inside a data-address string, `${env:NAME}` (an
//! environment variable of the connector process) or `${file:PATH}` (a file's trimmed content: an
//! absolute path, or one relative to the connector's data directory). The connector stores them as
//! written and resolves them only in its data plane, when it opens the source; this module is their
//! syntax.

use std::path::{Component, Path, PathBuf};

/// One reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `${env:NAME}`.
    Env(String),
    /// `${file:PATH}`.
    File(PathBuf),
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Env(n) => write!(f, "${{env:{n}}}"),
            Reference::File(p) => write!(f, "${{file:{}}}", p.display()),
        }
    }
}

/// A piece of a string that may hold references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// A reference.
    Ref(Reference),
}

/// Whether `s` holds a reference (or something that tries to be one).
pub fn has_refs(s: &str) -> bool {
    s.contains("${")
}

/// `s` split into text and references.
pub fn parse(s: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("`${` without a closing `}`".into());
        };
        let inner = &after[..end];
        let r = match inner.split_once(':') {
            Some(("env", name))
                if !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                Reference::Env(name.to_owned())
            }
            Some(("file", path)) if !path.trim().is_empty() => Reference::File(PathBuf::from(path)),
            _ => {
                return Err(format!(
                    "`${{{inner}}}` is not a reference; write ${{env:NAME}} or ${{file:PATH}}"
                ));
            }
        };
        parts.push(Part::Ref(r));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Ok(parts)
}

/// Why the connector would refuse to read the file `path` of a `${file:…}` reference, if it would:
/// no `..`, no control characters (a relative path stays inside the data directory).
pub fn check_file(path: &Path) -> Result<(), String> {
    let text = path.to_string_lossy();
    if text.chars().any(char::is_control) {
        return Err("a ${file:…} path must not contain control characters".into());
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!(
            "${{file:{text}}} must not contain `..`; give an absolute path or one inside the connector's data directory"
        ));
    }
    Ok(())
}

/// Checks the references of `s` (syntax and file paths); `Ok` with `s` made checkable as a URL: each
/// reference replaced by a placeholder (a whole origin when the string starts with one).
pub fn checkable(s: &str) -> Result<String, String> {
    let mut out = String::new();
    for part in parse(s)? {
        match part {
            Part::Text(t) => out.push_str(&t),
            Part::Ref(r) => {
                if let Reference::File(p) = &r {
                    check_file(p)?;
                }
                out.push_str(if out.is_empty() {
                    "http://reference.invalid"
                } else {
                    "reference"
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse("https://a.example/p?k=${env:KEY}").unwrap(),
            vec![
                Part::Text("https://a.example/p?k=".into()),
                Part::Ref(Reference::Env("KEY".into()))
            ]
        );
        assert!(parse("x${env:BAD-NAME}").is_err());
        assert!(parse("x${vault:k}").is_err());
        assert!(parse("x${env:K").is_err());
        assert_eq!(
            checkable("${env:ROOT}/sim/x").unwrap(),
            "http://reference.invalid/sim/x"
        );
        assert!(checkable("https://a.example/?k=${file:../../etc/shadow}").is_err());
        assert!(checkable("https://a.example/?k=${file:/run/secrets/k}").is_ok());
        assert!(checkable("https://a.example/?k=${file:secrets/k}").is_ok());
    }
}
