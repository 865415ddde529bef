//! A small RDF graph and its three serialisations for the DCAT-AP feed: Turtle, RDF/XML and JSON-LD.
//!
//! Hand-written on purpose (a few hundred lines instead of an RDF stack): the feed only ever writes a
//! graph, never reads one, so what is needed is a triple list and correct escaping in each syntax.
//! Every IRI the graph holds is absolute; blank nodes are labelled `_:bN` by the caller.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// `rdf:type`.
pub const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";

/// An RDF term.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Term {
    /// An absolute IRI.
    Iri(String),
    /// A blank node, by its label (without `_:`).
    Blank(String),
    /// A literal, with a datatype IRI or a language tag (at most one).
    Literal {
        /// The lexical form.
        value: String,
        /// The datatype IRI (`xsd:string` when none and no language).
        datatype: Option<String>,
        /// The language tag, e.g. `sv`.
        lang: Option<String>,
    },
}

impl Term {
    /// An IRI.
    pub fn iri(iri: impl Into<String>) -> Term {
        Term::Iri(iri.into())
    }
    /// A plain string literal.
    pub fn text(value: impl Into<String>) -> Term {
        Term::Literal {
            value: value.into(),
            datatype: None,
            lang: None,
        }
    }
    /// A literal with a language tag.
    pub fn lang(value: impl Into<String>, lang: &str) -> Term {
        Term::Literal {
            value: value.into(),
            datatype: None,
            lang: Some(lang.to_owned()),
        }
    }
    /// A typed literal.
    pub fn typed(value: impl Into<String>, datatype: &str) -> Term {
        Term::Literal {
            value: value.into(),
            datatype: Some(datatype.to_owned()),
            lang: None,
        }
    }
}

/// A graph: triples in the order they were added (duplicates are dropped when written).
#[derive(Debug, Clone, Default)]
pub struct Graph {
    triples: Vec<(Term, String, Term)>,
}

/// A subject's predicates with their objects.
type Predicates<'a> = Vec<(&'a str, Vec<&'a Term>)>;

/// The prefixes a serialisation declares: `(prefix, namespace)`.
pub type Prefixes<'a> = &'a [(&'a str, &'a str)];

impl Graph {
    /// Adds a triple.
    pub fn add(&mut self, subject: &Term, predicate: &str, object: Term) {
        self.triples
            .push((subject.clone(), predicate.to_owned(), object));
    }

    /// Adds `subject rdf:type class`.
    pub fn typed(&mut self, subject: &Term, class: &str) {
        self.add(subject, RDF_TYPE, Term::iri(class));
    }

    /// Whether the graph holds no triple.
    pub fn is_empty(&self) -> bool {
        self.triples.is_empty()
    }

    /// Subjects in first-seen order, each with its predicates (in first-seen order) and their objects.
    fn by_subject(&self) -> Vec<(&Term, Predicates<'_>)> {
        let mut order: Vec<&Term> = Vec::new();
        let mut map: BTreeMap<&Term, Predicates<'_>> = BTreeMap::new();
        for (s, p, o) in &self.triples {
            let preds = map.entry(s).or_insert_with(|| {
                order.push(s);
                Vec::new()
            });
            match preds.iter_mut().find(|(q, _)| *q == p.as_str()) {
                Some((_, objects)) => {
                    if !objects.contains(&o) {
                        objects.push(o);
                    }
                }
                None => preds.push((p.as_str(), vec![o])),
            }
        }
        order
            .into_iter()
            .map(|s| (s, map.remove(s).unwrap_or_default()))
            .collect()
    }

    /// Turtle (RDF 1.1).
    pub fn to_turtle(&self, prefixes: Prefixes<'_>) -> String {
        let mut out = String::new();
        for (p, ns) in prefixes {
            let _ = writeln!(out, "@prefix {p}: <{}> .", iri_ref(ns));
        }
        for (s, preds) in self.by_subject() {
            out.push('\n');
            out.push_str(&turtle_term(s, prefixes));
            let n = preds.len();
            for (i, (p, objects)) in preds.into_iter().enumerate() {
                let p = if p == RDF_TYPE {
                    "a".to_owned()
                } else {
                    turtle_iri(p, prefixes)
                };
                let objects: Vec<String> = objects
                    .into_iter()
                    .map(|o| turtle_term(o, prefixes))
                    .collect();
                let end = if i + 1 == n { " ." } else { " ;" };
                let _ = write!(out, "\n    {p} {}{end}", objects.join(", "));
            }
            out.push('\n');
        }
        out
    }

    /// RDF/XML, one `rdf:Description` per subject.
    pub fn to_rdf_xml(&self, prefixes: Prefixes<'_>) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rdf:RDF");
        let _ = write!(
            out,
            "\n    xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\""
        );
        for (p, ns) in prefixes.iter().filter(|(p, _)| *p != "rdf") {
            let _ = write!(out, "\n    xmlns:{p}=\"{}\"", xml_escape(ns));
        }
        out.push_str(">\n");
        for (s, preds) in self.by_subject() {
            let about = match s {
                Term::Blank(b) => format!("rdf:nodeID=\"{}\"", xml_escape(b)),
                Term::Iri(i) => format!("rdf:about=\"{}\"", xml_escape(i)),
                Term::Literal { .. } => continue,
            };
            let _ = writeln!(out, "  <rdf:Description {about}>");
            for (p, objects) in preds {
                let (element, declare) = match qname(p, prefixes) {
                    Some(q) => (q, String::new()),
                    None => {
                        // A predicate outside the declared prefixes: its own namespace on the element.
                        let cut = p.rfind(['#', '/']).map_or(0, |i| i + 1);
                        (
                            format!("ns0:{}", &p[cut..]),
                            format!(" xmlns:ns0=\"{}\"", xml_escape(&p[..cut])),
                        )
                    }
                };
                for o in objects {
                    match o {
                        Term::Iri(i) => {
                            let _ = writeln!(
                                out,
                                "    <{element}{declare} rdf:resource=\"{}\"/>",
                                xml_escape(i)
                            );
                        }
                        Term::Blank(b) => {
                            let _ = writeln!(
                                out,
                                "    <{element}{declare} rdf:nodeID=\"{}\"/>",
                                xml_escape(b)
                            );
                        }
                        Term::Literal {
                            value,
                            datatype,
                            lang,
                        } => {
                            let attr = match (datatype, lang) {
                                (Some(d), _) => format!(" rdf:datatype=\"{}\"", xml_escape(d)),
                                (None, Some(l)) => format!(" xml:lang=\"{}\"", xml_escape(l)),
                                (None, None) => String::new(),
                            };
                            let _ = writeln!(
                                out,
                                "    <{element}{declare}{attr}>{}</{element}>",
                                xml_escape(value)
                            );
                        }
                    }
                }
            }
            out.push_str("  </rdf:Description>\n");
        }
        out.push_str("</rdf:RDF>\n");
        out
    }

    /// JSON-LD 1.1: a `@graph` of node objects, with the prefixes as the `@context`.
    pub fn to_json_ld(&self, prefixes: Prefixes<'_>) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let context: Map<String, Value> = prefixes
            .iter()
            .map(|(p, ns)| ((*p).to_owned(), Value::String((*ns).to_owned())))
            .collect();
        let id = |t: &Term| match t {
            Term::Iri(i) => i.clone(),
            Term::Blank(b) => format!("_:{b}"),
            Term::Literal { value, .. } => value.clone(),
        };
        let mut graph = Vec::new();
        for (s, preds) in self.by_subject() {
            let mut node = Map::new();
            node.insert("@id".into(), id(s).into());
            for (p, objects) in preds {
                if p == RDF_TYPE {
                    let types: Vec<Value> = objects
                        .iter()
                        .map(|o| qname(&id(o), prefixes).unwrap_or_else(|| id(o)).into())
                        .collect();
                    node.insert("@type".into(), types.into());
                    continue;
                }
                let values: Vec<Value> = objects
                    .into_iter()
                    .map(|o| match o {
                        Term::Iri(_) | Term::Blank(_) => json!({"@id": id(o)}),
                        Term::Literal {
                            value,
                            datatype: Some(d),
                            ..
                        } => json!({"@value": value, "@type": d}),
                        Term::Literal {
                            value,
                            lang: Some(l),
                            ..
                        } => json!({"@value": value, "@language": l}),
                        Term::Literal { value, .. } => json!({"@value": value}),
                    })
                    .collect();
                node.insert(
                    qname(p, prefixes).unwrap_or_else(|| p.to_owned()),
                    values.into(),
                );
            }
            graph.push(Value::Object(node));
        }
        json!({"@context": context, "@graph": graph})
    }
}

/// `prefix:local` for an IRI in a declared namespace whose local part is a plain name, else `None`.
fn qname(iri: &str, prefixes: Prefixes<'_>) -> Option<String> {
    prefixes.iter().find_map(|(p, ns)| {
        let local = iri.strip_prefix(ns)?;
        let mut chars = local.chars();
        let first = chars.next()?;
        (first.is_ascii_alphabetic() || first == '_')
            .then_some(())
            .filter(|()| chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map(|()| format!("{p}:{local}"))
    })
}

/// An IRI with the characters an `IRIREF` may not hold percent-encoded.
fn iri_ref(iri: &str) -> String {
    let mut out = String::with_capacity(iri.len());
    for c in iri.chars() {
        if c <= ' ' || "<>\"{}|^`\\".contains(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn turtle_iri(iri: &str, prefixes: Prefixes<'_>) -> String {
    qname(iri, prefixes).unwrap_or_else(|| format!("<{}>", iri_ref(iri)))
}

fn turtle_term(t: &Term, prefixes: Prefixes<'_>) -> String {
    match t {
        Term::Iri(i) => turtle_iri(i, prefixes),
        Term::Blank(b) => format!("_:{b}"),
        Term::Literal {
            value,
            datatype,
            lang,
        } => {
            let mut s = String::with_capacity(value.len() + 2);
            s.push('"');
            for c in value.chars() {
                match c {
                    '"' => s.push_str("\\\""),
                    '\\' => s.push_str("\\\\"),
                    '\n' => s.push_str("\\n"),
                    '\r' => s.push_str("\\r"),
                    '\t' => s.push_str("\\t"),
                    c if c < ' ' => {
                        let _ = write!(s, "\\u{:04X}", c as u32);
                    }
                    c => s.push(c),
                }
            }
            s.push('"');
            match (datatype, lang) {
                (Some(d), _) => format!("{s}^^{}", turtle_iri(d, prefixes)),
                (None, Some(l)) => format!("{s}@{l}"),
                (None, None) => s,
            }
        }
    }
}

/// Text and attribute values for XML (control characters XML 1.0 cannot hold are dropped).
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if c < ' ' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Prefixes<'static> = &[("dct", "http://purl.org/dc/terms/")];

    fn graph() -> Graph {
        let mut g = Graph::default();
        let s = Term::iri("https://x.example/d/1");
        g.typed(&s, "http://www.w3.org/ns/dcat#Dataset");
        g.add(
            &s,
            "http://purl.org/dc/terms/title",
            Term::lang("Luft \"<&>\"\n", "sv"),
        );
        g.add(
            &s,
            "http://purl.org/dc/terms/spatial",
            Term::Blank("b0".into()),
        );
        g
    }

    #[test]
    fn turtle_escapes_literals_and_abbreviates_known_namespaces() {
        let t = graph().to_turtle(P);
        assert!(t.contains("@prefix dct: <http://purl.org/dc/terms/> ."));
        assert!(t.contains("<https://x.example/d/1>\n    a <http://www.w3.org/ns/dcat#Dataset> ;"));
        assert!(t.contains("dct:title \"Luft \\\"<&>\\\"\\n\"@sv ;"));
        assert!(t.contains("dct:spatial _:b0 ."));
    }

    #[test]
    fn rdf_xml_escapes_and_declares_unknown_namespaces() {
        let x = graph().to_rdf_xml(P);
        assert!(x.contains("<rdf:Description rdf:about=\"https://x.example/d/1\">"));
        assert!(
            x.contains(
                "<ns0:type xmlns:ns0=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" rdf:resource="
            ) || x.contains("<rdf:type rdf:resource=\"http://www.w3.org/ns/dcat#Dataset\"/>")
        );
        assert!(x.contains(
            "<dct:title xml:lang=\"sv\">Luft &quot;&lt;&amp;&gt;&quot;&#10;</dct:title>"
        ));
        assert!(x.contains("<dct:spatial rdf:nodeID=\"b0\"/>"));
    }

    #[test]
    fn json_ld_uses_node_objects() {
        let j = graph().to_json_ld(P);
        assert_eq!(
            j["@graph"][0]["@type"][0],
            "http://www.w3.org/ns/dcat#Dataset"
        );
        assert_eq!(j["@graph"][0]["dct:title"][0]["@language"], "sv");
    }
}
