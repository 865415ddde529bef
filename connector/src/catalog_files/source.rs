//! Reading catalog files with positions: a TOML document becomes JSON (keys in the management API's
//! camelCase) plus the byte offset of every JSON pointer, and a JSON document gets the line of every
//! pointer, so that an error found in the JSON form can name the line it came from.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Where each JSON pointer of a converted document starts (byte offset into its file).
#[derive(Debug, Clone, Default)]
pub struct Offsets(BTreeMap<String, usize>);

impl Offsets {
    /// The offset of `pointer`, else of its nearest ancestor that has one.
    pub fn of(&self, pointer: &str) -> Option<usize> {
        let mut p = pointer;
        loop {
            if let Some(o) = self.0.get(p) {
                return Some(*o);
            }
            let (parent, _) = p.rsplit_once('/')?;
            p = parent;
        }
    }

    fn set(&mut self, pointer: &str, offset: usize) {
        self.0.insert(pointer.to_owned(), offset);
    }
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// `snake_case` to `camelCase` (keys with `:` or `@`, ODRL terms, stay as they are).
pub fn camel(key: &str) -> String {
    if key.contains([':', '@']) {
        return key.to_owned();
    }
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `camelCase` to `snake_case`.
pub fn snake(key: &str) -> String {
    if key.contains([':', '@']) {
        return key.to_owned();
    }
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Escapes one JSON-pointer segment (RFC 6901).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Converts one entry of a catalog file (a TOML table) to JSON, keys in camelCase; an inline ODRL
/// `policy` keeps its keys as written.
pub fn entry_to_json(entry: &Spanned<DeValue<'_>>, offsets: &mut Offsets) -> Value {
    value_to_json(entry, "", offsets, false)
}

fn map_to_json(
    table: &DeTable<'_>,
    start: usize,
    pointer: &str,
    offsets: &mut Offsets,
    keep_keys: bool,
) -> Value {
    offsets.set(pointer, start);
    let mut map = Map::new();
    for (k, v) in table.iter() {
        let raw: &Cow<'_, str> = k.get_ref();
        let name = if keep_keys {
            raw.to_string()
        } else {
            camel(raw)
        };
        let child = format!("{pointer}/{}", escape(&name));
        // An inline ODRL policy keeps its keys as written.
        let keep = keep_keys || (pointer.is_empty() && name == "policy");
        map.insert(name, value_to_json(v, &child, offsets, keep));
        offsets.set(&child, k.span().start);
    }
    Value::Object(map)
}

fn value_to_json(
    value: &Spanned<DeValue<'_>>,
    pointer: &str,
    offsets: &mut Offsets,
    keep_keys: bool,
) -> Value {
    offsets.set(pointer, value.span().start);
    match value.get_ref() {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            match i64::from_str_radix(&digits, i.radix()) {
                Ok(n) => Value::from(n),
                Err(_) => Value::String(i.as_str().to_owned()),
            }
        }
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.as_str().to_owned())),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| value_to_json(v, &format!("{pointer}/{i}"), offsets, keep_keys))
                .collect(),
        ),
        DeValue::Table(t) => map_to_json(t, value.span().start, pointer, offsets, keep_keys),
    }
}

/// The line of every JSON pointer in a JSON text (which must already have parsed as JSON).
pub fn json_lines(text: &str) -> Offsets {
    let mut offsets = Offsets::default();
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        at: 0,
    };
    scanner.value("", &mut offsets);
    offsets
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn skip_ws(&mut self) {
        while self.at < self.bytes.len() && self.bytes[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn string(&mut self) -> String {
        // At the opening quote.
        let start = self.at;
        self.at += 1;
        while self.at < self.bytes.len() && self.bytes[self.at] != b'"' {
            if self.bytes[self.at] == b'\\' {
                self.at += 1;
            }
            self.at += 1;
        }
        self.at = (self.at + 1).min(self.bytes.len());
        let raw = &self.bytes[start..self.at];
        serde_json::from_slice::<String>(raw).unwrap_or_default()
    }

    fn value(&mut self, pointer: &str, offsets: &mut Offsets) {
        self.skip_ws();
        offsets.set(pointer, self.at);
        match self.bytes.get(self.at) {
            Some(b'{') => {
                self.at += 1;
                loop {
                    self.skip_ws();
                    match self.bytes.get(self.at) {
                        Some(b'"') => {
                            let key_at = self.at;
                            let key = self.string();
                            let child = format!("{pointer}/{}", escape(&key));
                            self.skip_ws();
                            self.at += 1; // ':'
                            self.value(&child, offsets);
                            offsets.set(&child, key_at);
                        }
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return;
                        }
                        _ => return,
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut i = 0;
                loop {
                    self.skip_ws();
                    match self.bytes.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return;
                        }
                        None => return,
                        _ => {
                            self.value(&format!("{pointer}/{i}"), offsets);
                            i += 1;
                        }
                    }
                }
            }
            Some(b'"') => {
                self.string();
            }
            Some(_) => {
                while self.at < self.bytes.len() && !b",]} \t\r\n".contains(&self.bytes[self.at]) {
                    self.at += 1;
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_case_both_ways() {
        assert_eq!(camel("data_model_schema"), "dataModelSchema");
        assert_eq!(snake("dataModelSchema"), "data_model_schema");
        assert_eq!(camel("odrl:leftOperand"), "odrl:leftOperand");
        assert_eq!(snake("@type"), "@type");
    }

    #[test]
    fn toml_and_json_pointers_find_their_lines() {
        let text =
            "[[asset]]\nid = \"a\"\n\n[asset.data_address]\ntype = \"File\"\npath = \"x.csv\"\n";
        let doc = DeTable::parse(text).unwrap();
        let DeValue::Array(entries) = doc.get_ref().get("asset").unwrap().get_ref() else {
            panic!("not an array")
        };
        let mut offsets = Offsets::default();
        let json = entry_to_json(&entries[0], &mut offsets);
        assert_eq!(json["dataAddress"]["path"], "x.csv");
        let line = |p: &str| line_of(text, offsets.of(p).unwrap());
        assert_eq!(line("/id"), 2);
        assert_eq!(line("/dataAddress/path"), 6);
        assert_eq!(line("/dataAddress/path/nested"), 6);

        let json =
            "{\n  \"permission\": [\n    {\"action\": \"use\",\n     \"constraint\": []}\n  ]\n}";
        let offsets = json_lines(json);
        assert_eq!(
            line_of(json, offsets.of("/permission/0/action").unwrap()),
            3
        );
        assert_eq!(
            line_of(json, offsets.of("/permission/0/constraint").unwrap()),
            4
        );
    }
}
