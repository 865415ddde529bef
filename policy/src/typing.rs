//! What a right operand may be, and its form on the wire.
//!
//! The DSP 2025-1 schema allows a right operand to be a string, an object or an array, so caap never
//! sends a bare JSON number or boolean: a number becomes the typed literal
//! `{"@value": "1000", "@type": "xsd:integer"}` (`xsd:decimal` with a fraction, `xsd:double` with an
//! exponent) and a boolean `{"@value": "true", "@type": "xsd:boolean"}`. Both forms are accepted when
//! read, and both are normalised to the typed literal, which the evaluator still compares as a number.
//! A `dpv:` purpose written as a string becomes the IRI reference `{"@id": "dpv:…"}` (the prefix is
//! declared by caap's JSON-LD context), so that it is a node, not a string, to a JSON-LD processor.
//!
//! Some left operands only make sense with one kind of value; a policy that pairs them with another is
//! refused when it is stored (the management API) and when it arrives (a DSP message), with the same
//! message: `count` takes a whole number ≥ 0, `dateTime` a date, and only participant claims compare
//! with `true` or `false`.

use serde_json::Number;

use crate::model::{LeftOperand, RightOperand};

/// The `xsd:` datatypes of whole numbers.
const INTEGER_TYPES: &[&str] = &[
    "integer",
    "int",
    "long",
    "short",
    "byte",
    "nonNegativeInteger",
    "positiveInteger",
    "nonPositiveInteger",
    "negativeInteger",
    "unsignedInt",
    "unsignedLong",
    "unsignedShort",
    "unsignedByte",
];

/// The `xsd:` datatypes of numbers.
const NUMBER_TYPES: &[&str] = &["decimal", "double", "float"];

fn xsd_local(datatype: &str) -> &str {
    datatype
        .strip_prefix("xsd:")
        .or_else(|| datatype.strip_prefix(crate::rdf::XSD_NS))
        .unwrap_or(datatype)
}

/// The typed literal of a JSON number.
pub(crate) fn number_literal(n: &Number) -> RightOperand {
    let text = n.to_string();
    let datatype = if n.is_i64() || n.is_u64() {
        "xsd:integer"
    } else if text.contains(['e', 'E']) {
        "xsd:double"
    } else {
        "xsd:decimal"
    };
    RightOperand::typed(text, datatype)
}

/// A right operand in its normal (wire) form: numbers and booleans as typed literals, `dpv:` purposes as
/// IRI references. Lists are normalised item by item.
pub fn normalise(right: RightOperand) -> RightOperand {
    match right {
        RightOperand::Number(n) => number_literal(&n),
        RightOperand::Boolean(b) => RightOperand::typed(b.to_string(), "xsd:boolean"),
        RightOperand::String(s) if s.starts_with("dpv:") => RightOperand::Reference(s),
        RightOperand::List(items) => RightOperand::List(items.into_iter().map(normalise).collect()),
        other => other,
    }
}

/// Normalises `right` and checks that `left` can be compared with it; the error says what to write
/// instead.
pub fn type_right_operand(left: &LeftOperand, right: RightOperand) -> Result<RightOperand, String> {
    let right = normalise(right);
    let items: Vec<&RightOperand> = match &right {
        RightOperand::List(items) => items.iter().collect(),
        one => vec![one],
    };
    for item in items {
        check(left, item)?;
    }
    Ok(right)
}

fn check(left: &LeftOperand, right: &RightOperand) -> Result<(), String> {
    let term = left.as_term();
    let typed = match right {
        RightOperand::Typed { value, datatype } => Some((value.as_str(), xsd_local(datatype))),
        _ => None,
    };
    if let Some((_, "boolean")) = typed
        && left.claim_name().is_none()
    {
        return Err(format!(
            "`{term}` does not compare with true or false; only participant claims (caap:claim:…) do"
        ));
    }
    match left {
        LeftOperand::Count => {
            let whole = match (right, typed) {
                (_, Some((value, dt))) if INTEGER_TYPES.contains(&dt) => {
                    value.trim().parse::<u64>().is_ok()
                }
                (RightOperand::String(s), None) => s.trim().parse::<u64>().is_ok(),
                _ => false,
            };
            if !whole {
                return Err(format!(
                    "`{term}` takes a whole number ≥ 0, e.g. 1000 (sent as {{\"@value\": \"1000\", \"@type\": \"xsd:integer\"}})"
                ));
            }
        }
        LeftOperand::DateTime => {
            if let Some((_, dt)) = typed
                && (INTEGER_TYPES.contains(&dt) || NUMBER_TYPES.contains(&dt))
            {
                return Err(format!(
                    "`{term}` takes a date or date-time such as \"2027-01-01T00:00:00Z\", not a number"
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(v: serde_json::Value) -> RightOperand {
        match v {
            serde_json::Value::Number(n) => RightOperand::Number(n),
            serde_json::Value::Bool(b) => RightOperand::Boolean(b),
            serde_json::Value::String(s) => RightOperand::String(s),
            _ => unreachable!(),
        }
    }

    #[test]
    fn numbers_and_booleans_become_typed_literals() {
        let cases = [
            (json!(1000), "1000", "xsd:integer"),
            (json!(-3), "-3", "xsd:integer"),
            (json!(2.5), "2.5", "xsd:decimal"),
            (json!(1e300), "1e+300", "xsd:double"),
            (json!(true), "true", "xsd:boolean"),
        ];
        for (v, value, datatype) in cases {
            assert_eq!(normalise(num(v)), RightOperand::typed(value, datatype));
        }
        assert_eq!(
            normalise(RightOperand::string("dpv:PublicBenefit")),
            RightOperand::reference("dpv:PublicBenefit")
        );
        assert_eq!(
            normalise(RightOperand::string("2027-01-01")),
            RightOperand::string("2027-01-01")
        );
    }

    #[test]
    fn each_left_operand_takes_its_kind_of_value() {
        let claim = LeftOperand::Claim("verified".into());
        let table: &[(&LeftOperand, serde_json::Value, bool)] = &[
            (&LeftOperand::Count, json!(1000), true),
            (&LeftOperand::Count, json!("1000"), true),
            (&LeftOperand::Count, json!(0), true),
            (&LeftOperand::Count, json!(1000.5), false),
            (&LeftOperand::Count, json!(-1), false),
            (&LeftOperand::Count, json!(true), false),
            (&LeftOperand::Count, json!("many"), false),
            (&LeftOperand::DateTime, json!("2027-01-01T00:00:00Z"), true),
            (&LeftOperand::DateTime, json!(1796586981), false),
            (&LeftOperand::DateTime, json!(false), false),
            (&LeftOperand::Purpose, json!(true), false),
            (&LeftOperand::Purpose, json!("dpv:PublicBenefit"), true),
            (&claim, json!(true), true),
            (&claim, json!(3), true),
        ];
        for (left, v, ok) in table {
            let got = type_right_operand(left, num(v.clone()));
            assert_eq!(got.is_ok(), *ok, "{left:?} {v}: {got:?}");
        }
        let typed = RightOperand::typed("12", "http://www.w3.org/2001/XMLSchema#integer");
        assert!(type_right_operand(&LeftOperand::Count, typed).is_ok());
        let list = RightOperand::List(vec![num(json!(1)), num(json!(1.5))]);
        assert!(type_right_operand(&LeftOperand::Count, list).is_err());
    }
}
