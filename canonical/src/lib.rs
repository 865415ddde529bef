//! The JSON wire basics every domain crate shares, in one leaf crate: the DSP 2025-1 JSON-LD context ([`dsp`]),
//! and canonical JSON: one byte-exact text for a JSON value, for hashing and signing (the MIM3 ledger and signed
//! agreements in `caap-contracts`, the MIM4 consent-record chain in `caap-policy`). It sits in its own leaf crate
//! so that both can use it without `caap-policy` depending on `caap-contracts` (and through it on the key
//! material of `caap-identity`).
//!
//! The form follows RFC 8785 (JSON Canonicalization Scheme) in everything that decides the bytes of
//! caap's own data: object members sorted by the UTF-16 code units of their names, no whitespace, strings
//! escaped as ECMAScript's `JSON.stringify` does (only `"`, `\`, and control characters; `\b \t \n \f \r`
//! short forms, other controls as `\u00xx` in lowercase hex; everything else, `/` and non-ASCII included,
//! as is). Numbers are written as `serde_json` writes them, which is where this can differ from JCS: a float
//! with an integral value keeps its `.0` (`1.0`, not `1`), and the switch to exponent notation happens at
//! other magnitudes. Integers, which is what caap's documents carry, are identical (documents without floats are
//! byte-for-byte RFC 8785). The result is stable through a JSON round trip (this crate turns on
//! `serde_json/float_roundtrip`), which is what hashing and signing need.
//!
//! The member order of a `serde_json::Map` is never trusted: another crate of the build may turn on
//! `serde_json/preserve_order` (feature unification), so members are sorted here every time.

pub mod dsp;

use std::fmt::Write as _;

use serde_json::Value;

/// The canonical text of `value`: sorted members, no whitespace (see the module documentation).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

/// Appends the canonical text of `value` to `out`.
pub fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => {
            // Writing into a String cannot fail.
            let _ = write!(out, "{number}");
        }
        Value::String(string) => write_string(string, out),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (index, (name, member)) in sorted.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(name, out);
                out.push(':');
                write_value(member, out);
            }
            out.push('}');
        }
    }
}

/// Appends `string` as a JSON string literal, escaped as JCS (and `serde_json`) do.
pub fn write_string(string: &str, out: &mut String) {
    out.push('"');
    for c in string.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn members_are_sorted_and_whitespace_dropped() {
        let value = json!({
            "b": [3, 2, {"z": null, "a": true}],
            "a": {"d": false, "c": "x"},
            "": 0
        });
        assert_eq!(
            canonical_json(&value),
            r#"{"":0,"a":{"c":"x","d":false},"b":[3,2,{"a":true,"z":null}]}"#
        );
    }

    #[test]
    fn parsing_the_output_gives_the_same_value() {
        let value = json!({
            "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
            "permission": [{"action": "use", "constraint": [{"leftOperand": "purpose", "rightOperand": 0.25}]}],
            "n": -12, "big": u64::MAX, "e": 1.5e300, "s": "a\"b\\c\u{1}\u{7f}/é😀"
        });
        let text = canonical_json(&value);
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
        assert_eq!(canonical_json(&back), text, "idempotent");
    }

    #[test]
    fn member_order_in_the_input_does_not_matter() {
        let one: Value =
            serde_json::from_str(r#"{"x":1,"y":{"q":[1,{"k":2,"j":3}],"p":"s"}}"#).unwrap();
        let two: Value =
            serde_json::from_str(r#"{ "y" : { "p":"s", "q":[1,{"j":3,"k":2}] }, "x" : 1 }"#)
                .unwrap();
        assert_eq!(canonical_json(&one), canonical_json(&two));
        // Array order does matter.
        let three: Value =
            serde_json::from_str(r#"{"x":1,"y":{"q":[{"k":2,"j":3},1],"p":"s"}}"#).unwrap();
        assert_ne!(canonical_json(&one), canonical_json(&three));
    }

    #[test]
    fn unicode_names_sort_by_utf16_code_units() {
        // RFC 8785 §3.2.3's example. By code point (and UTF-8 bytes) U+FB33 would sort before U+1F600; by
        // UTF-16 code units 😀 (the surrogate pair D83D DE00) sorts before U+FB33.
        let value = json!({
            "\u{20ac}": "Euro Sign",
            "\r": "Carriage Return",
            "\u{fb33}": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\u{1f600}": "Emoji: Grinning Face",
            "\u{80}": "Control",
            "\u{f6}": "Latin Small Letter O With Diaeresis"
        });
        assert_eq!(
            canonical_json(&value),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
    }

    #[test]
    fn strings_are_escaped_like_serde_json_and_jcs() {
        let samples = [
            "plain",
            "quote \" backslash \\ slash /",
            "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f}\u{7f}",
            "é€😀\u{2028}\u{2029}",
        ];
        for sample in samples {
            let mut ours = String::new();
            write_string(sample, &mut ours);
            assert_eq!(ours, serde_json::to_string(sample).unwrap(), "{sample:?}");
        }
        assert_eq!(canonical_json(&json!("\u{1f}")), "\"\\u001f\"");
    }

    #[test]
    fn numbers_are_written_as_serde_json_writes_them() {
        assert_eq!(
            canonical_json(&json!([0, -1, 1.0, 0.5, 1e21, u64::MAX, i64::MIN])),
            format!("[0,-1,1.0,0.5,1e+21,{},{}]", u64::MAX, i64::MIN)
        );
        // A 17-significant-digit float reads back to the same bits (float_roundtrip).
        let x = 0.1_f64 + 0.2_f64;
        let text = canonical_json(&json!({ "x": x }));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["x"].as_f64().unwrap().to_bits(), x.to_bits());
        assert_eq!(canonical_json(&back), text);
    }

    #[test]
    fn scalars_and_empty_containers() {
        assert_eq!(canonical_json(&json!(null)), "null");
        assert_eq!(canonical_json(&json!(true)), "true");
        assert_eq!(canonical_json(&json!(false)), "false");
        assert_eq!(canonical_json(&json!({})), "{}");
        assert_eq!(canonical_json(&json!([])), "[]");
        assert_eq!(canonical_json(&json!([[], {}, [{}]])), "[[],{},[{}]]");
    }
}
