//! A small RDF graph and the two readers the compliance report needs: Turtle and a
//! self-contained subset of JSON-LD.
//!
//! - **Turtle** (RDF 1.1): `@prefix`/`PREFIX`, `@base`/`BASE`, IRIs, prefixed names, `a`,
//!   literals (short and long quotes, escapes, `^^datatype`, `@lang`, numbers, booleans),
//!   blank nodes (`_:x` and `[ … ]`), collections `( … )`, and the `;` and `,` abbreviations.
//!   Errors name the line.
//! - **JSON-LD**, without IO: the ODRL context (`http://www.w3.org/ns/odrl.jsonld`) and the
//!   W3C ODRL formal-semantics contexts (evaluation request, state of the world) are built in
//!   and always active, so documents may also leave `@context` out. Inline contexts (prefixes
//!   and term definitions with `@id`/`@type`/scoped `@context`) are honoured. Any other remote
//!   context is refused with a clear message rather than guessed.
//!
//! The graph is a plain list of triples; the documents it holds are small.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::model::ODRL_NS;

/// `rdf:` namespace.
pub(crate) const RDF_NS: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
/// `xsd:` namespace.
pub(crate) const XSD_NS: &str = "http://www.w3.org/2001/XMLSchema#";
/// `rdf:type`.
pub(crate) const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
const RDF_FIRST: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#first";
const RDF_REST: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#rest";
const RDF_NIL: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#nil";
const SOTW_NS: &str = "https://w3id.org/force/sotw#";

/// How deeply JSON-LD objects and Turtle blank nodes may nest.
const MAX_DEPTH: usize = 64;

/// An RDF term.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Term {
    /// An IRI (absolute, or as written when it could not be resolved).
    Iri(String),
    /// A blank node, `_:label`.
    Blank(String),
    /// A literal.
    Literal {
        /// The lexical form.
        value: String,
        /// The datatype IRI (`None` for a plain or language-tagged string).
        datatype: Option<String>,
        /// The language tag.
        lang: Option<String>,
    },
}

impl Term {
    pub(crate) fn iri(s: impl Into<String>) -> Self {
        Term::Iri(s.into())
    }

    fn literal(value: impl Into<String>, datatype: Option<String>) -> Self {
        Term::Literal {
            value: value.into(),
            datatype,
            lang: None,
        }
    }

    /// The IRI or blank-node label.
    pub(crate) fn as_node(&self) -> Option<&str> {
        match self {
            Term::Iri(s) | Term::Blank(s) => Some(s),
            Term::Literal { .. } => None,
        }
    }

    pub(crate) fn as_iri(&self) -> Option<&str> {
        match self {
            Term::Iri(s) => Some(s),
            _ => None,
        }
    }
}

/// One triple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Triple {
    pub(crate) s: Term,
    pub(crate) p: String,
    pub(crate) o: Term,
}

/// A set of triples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Graph {
    pub(crate) triples: Vec<Triple>,
}

impl Graph {
    fn add(&mut self, s: Term, p: impl Into<String>, o: Term) {
        self.triples.push(Triple { s, p: p.into(), o });
    }

    /// The objects of `(s, p, ?)`, in document order.
    pub(crate) fn objects<'a>(&'a self, s: &Term, p: &str) -> impl Iterator<Item = &'a Term> {
        let (s, p) = (s.clone(), p.to_owned());
        self.triples
            .iter()
            .filter(move |t| t.s == s && t.p == p)
            .map(|t| &t.o)
    }

    pub(crate) fn object(&self, s: &Term, p: &str) -> Option<&Term> {
        self.triples
            .iter()
            .find(|t| &t.s == s && t.p == p)
            .map(|t| &t.o)
    }

    /// Whether `s` is typed `class`.
    #[cfg(test)]
    pub(crate) fn has_type(&self, s: &Term, class: &str) -> bool {
        self.objects(s, RDF_TYPE).any(|t| t.as_iri() == Some(class))
    }

    /// The triples about `s`.
    pub(crate) fn about<'a>(&'a self, s: &'a Term) -> impl Iterator<Item = &'a Triple> {
        self.triples.iter().filter(move |t| &t.s == s)
    }

    /// The members of the RDF collection starting at `head`, or `None` if `head` is not one.
    pub(crate) fn list(&self, head: &Term) -> Option<Vec<Term>> {
        let mut out = Vec::new();
        let mut node = head.clone();
        for _ in 0..10_000 {
            if node.as_iri() == Some(RDF_NIL) {
                return Some(out);
            }
            let first = self.object(&node, RDF_FIRST)?;
            out.push(first.clone());
            node = self.object(&node, RDF_REST)?.clone();
        }
        None
    }

    /// Whether `head` starts an RDF collection.
    pub(crate) fn is_list(&self, head: &Term) -> bool {
        head.as_iri() == Some(RDF_NIL) || self.object(head, RDF_FIRST).is_some()
    }
}

// ===== Turtle ==================================================================================

/// Parses a Turtle document.
pub(crate) fn parse_turtle(text: &str) -> Result<Graph, String> {
    let mut p = Turtle {
        src: text.as_bytes(),
        text,
        pos: 0,
        prefixes: HashMap::new(),
        base: None,
        graph: Graph::default(),
        blank: 0,
        depth: 0,
    };
    p.document()?;
    Ok(p.graph)
}

struct Turtle<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    prefixes: HashMap<String, String>,
    base: Option<String>,
    graph: Graph,
    blank: usize,
    depth: usize,
}

impl Turtle<'_> {
    fn err(&self, msg: impl std::fmt::Display) -> String {
        let line = self.src[..self.pos.min(self.src.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        format!("Turtle, line {line}: {msg}")
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() {
                self.pos += 1;
            } else if c == b'#' {
                while let Some(c) = self.peek() {
                    if c == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(format!("expected '{}', found {}", c as char, self.found())))
        }
    }

    fn found(&self) -> String {
        match self.text.get(self.pos..) {
            Some(rest) if !rest.is_empty() => {
                let snippet: String = rest.chars().take(20).collect();
                format!("\"{snippet}\"")
            }
            _ => "the end of the document".to_owned(),
        }
    }

    fn starts_with_keyword(&self, kw: &str) -> bool {
        let rest = &self.src[self.pos..];
        rest.len() > kw.len()
            && rest[..kw.len()].eq_ignore_ascii_case(kw.as_bytes())
            && rest[kw.len()].is_ascii_whitespace()
    }

    fn document(&mut self) -> Result<(), String> {
        loop {
            self.skip_ws();
            if self.pos >= self.src.len() {
                return Ok(());
            }
            if self.peek() == Some(b'@') {
                if self.starts_with_keyword("@prefix") {
                    self.pos += 7;
                    self.prefix_decl()?;
                    self.expect(b'.')?;
                } else if self.starts_with_keyword("@base") {
                    self.pos += 5;
                    self.skip_ws();
                    let iri = self.iri_ref()?;
                    self.base = Some(iri);
                    self.expect(b'.')?;
                } else {
                    return Err(self.err(format!("unknown directive {}", self.found())));
                }
            } else if self.starts_with_keyword("PREFIX") {
                self.pos += 6;
                self.prefix_decl()?;
            } else if self.starts_with_keyword("BASE") {
                self.pos += 4;
                self.skip_ws();
                let iri = self.iri_ref()?;
                self.base = Some(iri);
            } else {
                self.triples()?;
                self.expect(b'.')?;
            }
        }
    }

    fn prefix_decl(&mut self) -> Result<(), String> {
        self.skip_ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == b':' {
                break;
            }
            if c.is_ascii_whitespace() {
                return Err(self.err("expected a prefix name ending in ':'"));
            }
            self.pos += 1;
        }
        let name = self
            .text
            .get(start..self.pos)
            .unwrap_or_default()
            .to_owned();
        if !self.eat(b':') {
            return Err(self.err("expected ':' after the prefix name"));
        }
        self.skip_ws();
        let iri = self.iri_ref()?;
        self.prefixes.insert(name, iri);
        Ok(())
    }

    fn triples(&mut self) -> Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(b'[') {
            let subject = self.blank_property_list()?;
            self.skip_ws();
            if self.peek() != Some(b'.') {
                self.predicate_object_list(&subject)?;
            }
            return Ok(());
        }
        let subject = self.subject()?;
        self.predicate_object_list(&subject)
    }

    fn subject(&mut self) -> Result<Term, String> {
        self.skip_ws();
        match self.peek() {
            Some(b'<') => Ok(Term::Iri(self.iri_ref()?)),
            Some(b'_') => self.blank_label(),
            Some(b'(') => self.collection(),
            _ => Ok(Term::Iri(self.prefixed_name()?)),
        }
    }

    fn predicate_object_list(&mut self, subject: &Term) -> Result<(), String> {
        loop {
            self.skip_ws();
            let predicate = self.verb()?;
            loop {
                let object = self.object()?;
                self.graph.add(subject.clone(), predicate.clone(), object);
                if !self.eat(b',') {
                    break;
                }
            }
            if !self.eat(b';') {
                return Ok(());
            }
            // `;` may repeat, and may end the list.
            while self.eat(b';') {}
            self.skip_ws();
            if matches!(self.peek(), Some(b'.' | b']') | None) {
                return Ok(());
            }
        }
    }

    fn verb(&mut self) -> Result<String, String> {
        self.skip_ws();
        if self.peek() == Some(b'a')
            && self
                .src
                .get(self.pos + 1)
                .is_some_and(|c| c.is_ascii_whitespace() || *c == b'<' || *c == b'[')
        {
            self.pos += 1;
            return Ok(RDF_TYPE.to_owned());
        }
        match self.peek() {
            Some(b'<') => self.iri_ref(),
            _ => self.prefixed_name(),
        }
    }

    fn object(&mut self) -> Result<Term, String> {
        self.skip_ws();
        match self.peek() {
            Some(b'<') => Ok(Term::Iri(self.iri_ref()?)),
            Some(b'_') => self.blank_label(),
            Some(b'[') => self.blank_property_list(),
            Some(b'(') => self.collection(),
            Some(b'"' | b'\'') => self.literal(),
            Some(c) if c.is_ascii_digit() || c == b'+' || c == b'-' || c == b'.' => self.number(),
            _ => {
                if self.starts_with_bool("true") {
                    self.pos += 4;
                    return Ok(Term::literal("true", Some(format!("{XSD_NS}boolean"))));
                }
                if self.starts_with_bool("false") {
                    self.pos += 5;
                    return Ok(Term::literal("false", Some(format!("{XSD_NS}boolean"))));
                }
                Ok(Term::Iri(self.prefixed_name()?))
            }
        }
    }

    fn starts_with_bool(&self, kw: &str) -> bool {
        let rest = &self.src[self.pos..];
        rest.starts_with(kw.as_bytes())
            && rest
                .get(kw.len())
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b':' || *c == b'_'))
    }

    fn new_blank(&mut self) -> Term {
        self.blank += 1;
        Term::Blank(format!("_:gen{}", self.blank))
    }

    fn blank_label(&mut self) -> Result<Term, String> {
        if !self.src[self.pos..].starts_with(b"_:") {
            return Err(self.err(format!("expected a blank node, found {}", self.found())));
        }
        self.pos += 2;
        let start = self.pos;
        while let Some(c) = self.peek() {
            let inner = c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c >= 0x80;
            // A '.' belongs to the label only when more label follows.
            let dot = c == b'.'
                && self
                    .src
                    .get(self.pos + 1)
                    .is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'_' || *n == b'-');
            if !(inner || dot) {
                break;
            }
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("empty blank node label"));
        }
        let label = self.text.get(start..self.pos).unwrap_or_default();
        Ok(Term::Blank(format!("_:{label}")))
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        Ok(())
    }

    fn blank_property_list(&mut self) -> Result<Term, String> {
        self.expect(b'[')?;
        self.enter()?;
        let node = self.new_blank();
        self.skip_ws();
        if self.peek() != Some(b']') {
            self.predicate_object_list(&node)?;
        }
        self.expect(b']')?;
        self.depth -= 1;
        Ok(node)
    }

    fn collection(&mut self) -> Result<Term, String> {
        self.expect(b'(')?;
        self.enter()?;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b')') => {
                    self.pos += 1;
                    break;
                }
                None => return Err(self.err("unterminated collection")),
                _ => items.push(self.object()?),
            }
        }
        self.depth -= 1;
        let mut head = Term::iri(RDF_NIL);
        for item in items.into_iter().rev() {
            let node = self.new_blank();
            self.graph.add(node.clone(), RDF_FIRST, item);
            self.graph.add(node.clone(), RDF_REST, head);
            head = node;
        }
        Ok(head)
    }

    fn iri_ref(&mut self) -> Result<String, String> {
        if self.peek() != Some(b'<') {
            return Err(self.err(format!("expected an IRI <…>, found {}", self.found())));
        }
        self.pos += 1;
        let start = self.pos;
        while let Some(c) = self.peek() {
            match c {
                b'>' => {
                    let raw = self.text.get(start..self.pos).unwrap_or_default();
                    self.pos += 1;
                    let iri = unescape_iri(raw).map_err(|e| self.err(e))?;
                    return Ok(self.resolve(iri));
                }
                b'\n' | b' ' | b'<' | b'"' => break,
                _ => self.pos += 1,
            }
        }
        Err(self.err("unterminated IRI"))
    }

    fn resolve(&self, iri: String) -> String {
        if has_scheme(&iri) {
            return iri;
        }
        match &self.base {
            Some(base) if iri.is_empty() => base.clone(),
            Some(base) if iri.starts_with('#') => {
                let stem = base.split('#').next().unwrap_or(base);
                format!("{stem}{iri}")
            }
            Some(base) => {
                let stem = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
                format!("{stem}/{iri}")
            }
            None => iri,
        }
    }

    fn prefixed_name(&mut self) -> Result<String, String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == b':' {
                break;
            }
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.' || c >= 0x80 {
                self.pos += 1;
            } else {
                return Err(self.err(format!(
                    "expected an IRI, prefixed name or literal, found {}",
                    self.found_at(start)
                )));
            }
        }
        if self.peek() != Some(b':') {
            return Err(self.err(format!(
                "expected a prefixed name, found {}",
                self.found_at(start)
            )));
        }
        let prefix = self
            .text
            .get(start..self.pos)
            .unwrap_or_default()
            .to_owned();
        self.pos += 1;
        let mut local = String::new();
        while let Some(c) = self.peek() {
            if c == b'\\' {
                if let Some(&n) = self.src.get(self.pos + 1) {
                    local.push(n as char);
                    self.pos += 2;
                    continue;
                }
                break;
            }
            let ok_inner =
                c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b':' | b'%') || c >= 0x80;
            if ok_inner {
                let len = utf8_len(c);
                local.push_str(self.text.get(self.pos..self.pos + len).unwrap_or_default());
                self.pos += len;
            } else if c == b'.'
                && self.src.get(self.pos + 1).is_some_and(|n| {
                    n.is_ascii_alphanumeric()
                        || matches!(n, b'_' | b'-' | b':' | b'%')
                        || *n >= 0x80
                })
            {
                local.push('.');
                self.pos += 1;
            } else {
                break;
            }
        }
        match self.prefixes.get(&prefix) {
            Some(ns) => Ok(format!("{ns}{local}")),
            None => Err(self.err(format!("undeclared prefix \"{prefix}:\""))),
        }
    }

    fn found_at(&self, start: usize) -> String {
        let snippet: String = self
            .text
            .get(start..)
            .unwrap_or_default()
            .chars()
            .take(20)
            .collect();
        if snippet.is_empty() {
            "the end of the document".to_owned()
        } else {
            format!("\"{snippet}\"")
        }
    }

    fn literal(&mut self) -> Result<Term, String> {
        let value = self.string()?;
        match self.peek() {
            Some(b'@') => {
                self.pos += 1;
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == b'-' {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                let lang = self.text.get(start..self.pos).unwrap_or_default();
                if lang.is_empty() {
                    return Err(self.err("empty language tag"));
                }
                Ok(Term::Literal {
                    value,
                    datatype: None,
                    lang: Some(lang.to_owned()),
                })
            }
            Some(b'^') if self.src.get(self.pos + 1) == Some(&b'^') => {
                self.pos += 2;
                let dt = match self.peek() {
                    Some(b'<') => self.iri_ref()?,
                    _ => self.prefixed_name()?,
                };
                Ok(Term::literal(value, Some(dt)))
            }
            _ => Ok(Term::literal(value, None)),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let Some(q) = self.peek() else {
            return Err(self.err("expected a string"));
        };
        let long = self.src[self.pos..].starts_with(&[q, q, q]);
        self.pos += if long { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            if c == q {
                if !long {
                    self.pos += 1;
                    return Ok(out);
                }
                if self.src[self.pos..].starts_with(&[q, q, q]) {
                    self.pos += 3;
                    // A long string may end with extra quotes: """a"""" is `a"`.
                    while self.peek() == Some(q) {
                        out.push(q as char);
                        self.pos += 1;
                    }
                    return Ok(out);
                }
                out.push(q as char);
                self.pos += 1;
                continue;
            }
            if !long && (c == b'\n' || c == b'\r') {
                return Err(self.err("line break in a short string"));
            }
            if c == b'\\' {
                self.pos += 1;
                let Some(e) = self.peek() else {
                    return Err(self.err("unterminated escape"));
                };
                self.pos += 1;
                match e {
                    b't' => out.push('\t'),
                    b'b' => out.push('\u{8}'),
                    b'n' => out.push('\n'),
                    b'r' => out.push('\r'),
                    b'f' => out.push('\u{c}'),
                    b'"' => out.push('"'),
                    b'\'' => out.push('\''),
                    b'\\' => out.push('\\'),
                    b'u' | b'U' => {
                        let n = if e == b'u' { 4 } else { 8 };
                        let hex = self.text.get(self.pos..self.pos + n).unwrap_or_default();
                        let ch = u32::from_str_radix(hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| self.err("invalid \\u escape"))?;
                        out.push(ch);
                        self.pos += n;
                    }
                    _ => return Err(self.err(format!("invalid escape \\{}", e as char))),
                }
                continue;
            }
            let len = utf8_len(c);
            out.push_str(self.text.get(self.pos..self.pos + len).unwrap_or_default());
            self.pos += len;
        }
    }

    fn number(&mut self) -> Result<Term, String> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.pos += 1;
        }
        let mut dot = false;
        let mut exp = false;
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                self.pos += 1;
            } else if c == b'.'
                && !dot
                && !exp
                && self.src.get(self.pos + 1).is_some_and(u8::is_ascii_digit)
            {
                dot = true;
                self.pos += 1;
            } else if (c == b'e' || c == b'E') && !exp {
                exp = true;
                self.pos += 1;
                if matches!(self.peek(), Some(b'+' | b'-')) {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
        let lexical = self.text.get(start..self.pos).unwrap_or_default();
        if !lexical.bytes().any(|b| b.is_ascii_digit()) {
            return Err(self.err(format!("expected a number, found {}", self.found_at(start))));
        }
        let dt = if exp {
            "double"
        } else if dot {
            "decimal"
        } else {
            "integer"
        };
        Ok(Term::literal(lexical, Some(format!("{XSD_NS}{dt}"))))
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn unescape_iri(raw: &str) -> Result<String, String> {
    if !raw.contains('\\') {
        return Ok(raw.to_owned());
    }
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let n = match chars.next() {
            Some('u') => 4,
            Some('U') => 8,
            _ => return Err("invalid escape in IRI".to_owned()),
        };
        let hex: String = chars.by_ref().take(n).collect();
        let ch = u32::from_str_radix(&hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or("invalid \\u escape in IRI")?;
        out.push(ch);
    }
    Ok(out)
}

/// Whether `s` starts with a URI scheme (`http:`, `urn:`, `did:`, `caap:` …).
fn has_scheme(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, _)) => {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

// ===== JSON-LD (self-contained subset) =========================================================

/// The ODRL JSON-LD context's URL (and a few spellings of it).
const ODRL_CONTEXTS: &[&str] = &[
    "http://www.w3.org/ns/odrl.jsonld",
    "https://www.w3.org/ns/odrl.jsonld",
    "http://www.w3.org/ns/odrl/2/",
];
/// The W3C ODRL formal-semantics contexts, built in (their terms are always active).
const FS_CONTEXTS: &[&str] = &[
    "https://raw.githubusercontent.com/w3c/odrl/refs/heads/master/formal-semantics/ontology/evaluation_request.json",
    "https://raw.githubusercontent.com/w3c/odrl/refs/heads/master/formal-semantics/ontology/stow.json",
];

/// ODRL properties whose values are IRIs.
const ODRL_ID_TERMS: &[&str] = &[
    "target",
    "assignee",
    "assigner",
    "partOf",
    "source",
    "profile",
    "unit",
    "dataType",
    "rightOperandReference",
    "inheritFrom",
    "hasPolicy",
    "function",
    "relation",
    "output",
];
/// ODRL properties whose values are vocabulary terms (`"use"` is `odrl:use`).
const ODRL_VOCAB_TERMS: &[&str] = &["action", "leftOperand", "operator", "conflict"];
/// ODRL properties (bare keys map into the ODRL namespace).
const ODRL_TERMS: &[&str] = &[
    "policy",
    "permission",
    "prohibition",
    "obligation",
    "duty",
    "remedy",
    "consequence",
    "constraint",
    "refinement",
    "rightOperand",
    "and",
    "or",
    "xone",
    "andSequence",
    "uid",
];

#[derive(Debug, Clone)]
struct TermDef {
    iri: String,
    /// `@id`, `@vocab` or a datatype IRI.
    kind: Option<String>,
    scoped: Option<Value>,
}

#[derive(Debug, Clone, Default)]
struct JsonCtx {
    prefixes: BTreeMap<String, String>,
    terms: BTreeMap<String, TermDef>,
}

impl JsonCtx {
    fn builtin() -> Self {
        let mut ctx = JsonCtx::default();
        for (p, ns) in [
            ("odrl", ODRL_NS),
            ("rdf", RDF_NS),
            ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
            ("xsd", XSD_NS),
            ("dct", "http://purl.org/dc/terms/"),
            ("dc", "http://purl.org/dc/terms/"),
            ("owl", "http://www.w3.org/2002/07/owl#"),
            ("skos", "http://www.w3.org/2004/02/skos/core#"),
            ("foaf", "http://xmlns.com/foaf/0.1/"),
            ("dpv", "https://w3id.org/dpv#"),
            ("sotw", SOTW_NS),
            ("report", crate::report::REPORT_NS),
        ] {
            ctx.prefixes.insert(p.to_owned(), ns.to_owned());
        }
        let mut def = |term: &str, iri: String, kind: Option<&str>| {
            ctx.terms.insert(
                term.to_owned(),
                TermDef {
                    iri,
                    kind: kind.map(str::to_owned),
                    scoped: None,
                },
            );
        };
        for t in ODRL_ID_TERMS {
            def(t, format!("{ODRL_NS}{t}"), Some("@id"));
        }
        for t in ODRL_VOCAB_TERMS {
            def(t, format!("{ODRL_NS}{t}"), Some("@vocab"));
        }
        for t in ODRL_TERMS {
            def(t, format!("{ODRL_NS}{t}"), None);
        }
        def("uid", "@id".to_owned(), None);
        for class in [
            "Policy",
            "Set",
            "Offer",
            "Agreement",
            "Request",
            "Permission",
            "Prohibition",
            "Duty",
            "Constraint",
            "LogicalConstraint",
            "Action",
            "Asset",
            "AssetCollection",
            "Party",
            "PartyCollection",
        ] {
            def(class, format!("{ODRL_NS}{class}"), None);
        }
        // The formal-semantics evaluation request and state-of-the-world contexts.
        def(
            "EvaluationRequest",
            format!("{SOTW_NS}EvaluationRequest"),
            None,
        );
        def(
            "RequestParameter",
            format!("{SOTW_NS}RequestParameter"),
            None,
        );
        def("SotW", format!("{SOTW_NS}SotW"), None);
        for t in ["evaluatedAction", "evaluatedParty", "evaluatedTarget"] {
            def(t, format!("{SOTW_NS}{t}"), Some("@id"));
        }
        def(
            "requestParameters",
            format!("{SOTW_NS}requestParameter"),
            None,
        );
        def(
            "requestParameter",
            format!("{SOTW_NS}requestParameter"),
            None,
        );
        def("value", format!("{SOTW_NS}value"), None);
        def(
            "describesFeature",
            format!("{SOTW_NS}describesFeature"),
            Some("@id"),
        );
        def("context", format!("{SOTW_NS}context"), None);
        def("conditionId", format!("{SOTW_NS}conditionId"), Some("@id"));
        ctx
    }

    fn apply(&mut self, context: &Value) -> Result<(), String> {
        match context {
            Value::Null => Ok(()),
            Value::String(url) => {
                if ODRL_CONTEXTS.contains(&url.as_str()) || FS_CONTEXTS.contains(&url.as_str()) {
                    Ok(())
                } else {
                    Err(format!(
                        "the remote JSON-LD context {url} is not built in and caap does not \
                         fetch contexts; inline it in \"@context\" (built in: the ODRL context and \
                         the ODRL formal-semantics contexts)"
                    ))
                }
            }
            Value::Array(items) => items.iter().try_for_each(|c| self.apply(c)),
            Value::Object(m) => {
                for (key, def) in m {
                    if key.starts_with('@') {
                        continue;
                    }
                    match def {
                        Value::String(iri) => {
                            let iri = self.expand_iri(iri);
                            if iri.ends_with(['/', '#', ':']) {
                                self.prefixes.insert(key.clone(), iri.clone());
                            }
                            self.terms.insert(
                                key.clone(),
                                TermDef {
                                    iri,
                                    kind: None,
                                    scoped: None,
                                },
                            );
                        }
                        Value::Object(d) => {
                            let iri = match d.get("@id").and_then(Value::as_str) {
                                Some(id) => self.expand_iri(id),
                                None => self.expand_key(key).unwrap_or_else(|| key.clone()),
                            };
                            let kind = d.get("@type").and_then(Value::as_str).map(|t| {
                                if t.starts_with('@') {
                                    t.to_owned()
                                } else {
                                    self.expand_iri(t)
                                }
                            });
                            self.terms.insert(
                                key.clone(),
                                TermDef {
                                    iri,
                                    kind,
                                    scoped: d.get("@context").cloned(),
                                },
                            );
                        }
                        Value::Null => {
                            self.terms.remove(key);
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            other => Err(format!("\"@context\" cannot be {other}")),
        }
    }

    /// Expands a compact IRI (`odrl:use`) or returns the value as it is.
    fn expand_iri(&self, s: &str) -> String {
        if let Some((prefix, local)) = s.split_once(':')
            && !local.starts_with("//")
            && let Some(ns) = self.prefixes.get(prefix)
        {
            return format!("{ns}{local}");
        }
        s.to_owned()
    }

    /// A vocabulary-position value: a term, a compact IRI, or a bare ODRL term.
    fn expand_vocab(&self, s: &str) -> String {
        if let Some(def) = self.terms.get(s) {
            return def.iri.clone();
        }
        if s.contains(':') {
            return self.expand_iri(s);
        }
        format!("{ODRL_NS}{s}")
    }

    fn expand_key(&self, key: &str) -> Option<String> {
        if let Some(def) = self.terms.get(key) {
            return Some(def.iri.clone());
        }
        if key.contains(':') {
            let iri = self.expand_iri(key);
            return has_scheme(&iri).then_some(iri);
        }
        None
    }
}

/// Reads a JSON-LD document into a graph (see the module documentation for what is supported).
pub(crate) fn jsonld_to_graph(doc: &Value) -> Result<Graph, String> {
    let mut conv = JsonLd {
        graph: Graph::default(),
        blank: 0,
    };
    let ctx = JsonCtx::builtin();
    match doc {
        Value::Array(items) => {
            for item in items {
                conv.node(item, &ctx, 0)?;
            }
        }
        Value::Object(m) if m.contains_key("@graph") => {
            let mut ctx = ctx;
            if let Some(c) = m.get("@context") {
                ctx.apply(c)?;
            }
            for item in as_array(m.get("@graph")) {
                conv.node(item, &ctx, 0)?;
            }
        }
        other => {
            conv.node(other, &ctx, 0)?;
        }
    }
    Ok(conv.graph)
}

fn as_array(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
        None => Vec::new(),
    }
}

struct JsonLd {
    graph: Graph,
    blank: usize,
}

impl JsonLd {
    fn new_blank(&mut self) -> Term {
        self.blank += 1;
        Term::Blank(format!("_:j{}", self.blank))
    }

    fn node(&mut self, value: &Value, ctx: &JsonCtx, depth: usize) -> Result<Term, String> {
        if depth > MAX_DEPTH {
            return Err(format!("JSON-LD nested more than {MAX_DEPTH} levels deep"));
        }
        let Value::Object(m) = value else {
            return Err(format!("expected a JSON-LD node object, found {value}"));
        };
        let mut local;
        let ctx = match m.get("@context") {
            Some(c) => {
                local = ctx.clone();
                local.apply(c)?;
                &local
            }
            None => ctx,
        };
        let id = m
            .get("@id")
            .or_else(|| {
                m.iter()
                    .find(|(k, _)| ctx.terms.get(k.as_str()).is_some_and(|d| d.iri == "@id"))
                    .map(|(_, v)| v)
            })
            .and_then(Value::as_str);
        let subject = match id {
            Some(id) if id.starts_with("_:") => Term::Blank(id.to_owned()),
            Some(id) => Term::Iri(ctx.expand_iri(id)),
            None => self.new_blank(),
        };
        for (key, v) in m {
            match key.as_str() {
                "@context" | "@id" => {}
                "@type" => {
                    for t in as_array(Some(v)) {
                        if let Some(t) = t.as_str() {
                            let iri = ctx.expand_vocab(t);
                            self.graph.add(subject.clone(), RDF_TYPE, Term::Iri(iri));
                        }
                    }
                }
                _ if key.starts_with('@') => {}
                _ => {
                    let def = ctx.terms.get(key.as_str());
                    let Some(predicate) = ctx.expand_key(key) else {
                        continue; // not mapped to an IRI: JSON-LD drops it
                    };
                    if predicate == "@id" {
                        continue;
                    }
                    let mut scoped;
                    let inner_ctx = match def.and_then(|d| d.scoped.as_ref()) {
                        Some(c) => {
                            scoped = ctx.clone();
                            scoped.apply(c)?;
                            &scoped
                        }
                        None => ctx,
                    };
                    let kind = def.and_then(|d| d.kind.as_deref());
                    for item in as_array(Some(v)) {
                        let object = self.value(item, kind, inner_ctx, depth + 1)?;
                        if let Some(o) = object {
                            self.graph.add(subject.clone(), predicate.clone(), o);
                        }
                    }
                }
            }
        }
        Ok(subject)
    }

    fn value(
        &mut self,
        v: &Value,
        kind: Option<&str>,
        ctx: &JsonCtx,
        depth: usize,
    ) -> Result<Option<Term>, String> {
        Ok(Some(match v {
            Value::Null => return Ok(None),
            Value::Bool(b) => Term::literal(b.to_string(), Some(format!("{XSD_NS}boolean"))),
            Value::Number(n) => {
                let dt = if n.is_f64() { "double" } else { "integer" };
                Term::literal(n.to_string(), Some(format!("{XSD_NS}{dt}")))
            }
            Value::String(s) => match kind {
                Some("@id") => {
                    if s.starts_with("_:") {
                        Term::Blank(s.clone())
                    } else {
                        Term::Iri(ctx.expand_iri(s))
                    }
                }
                Some("@vocab") => Term::Iri(ctx.expand_vocab(s)),
                Some(dt) if !dt.starts_with('@') => Term::literal(s.clone(), Some(dt.to_owned())),
                _ => Term::literal(s.clone(), None),
            },
            Value::Array(items) => {
                // Nested arrays flatten (JSON-LD 1.0 semantics).
                let mut last = None;
                for item in items {
                    last = self.value(item, kind, ctx, depth + 1)?;
                }
                return Ok(last);
            }
            Value::Object(m) => {
                if let Some(val) = m.get("@value") {
                    let lexical = match val {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let datatype = m
                        .get("@type")
                        .and_then(Value::as_str)
                        .map(|t| ctx.expand_iri(t));
                    let lang = m
                        .get("@language")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    let datatype = datatype.or_else(|| match val {
                        Value::Number(n) if n.is_f64() => Some(format!("{XSD_NS}double")),
                        Value::Number(_) => Some(format!("{XSD_NS}integer")),
                        Value::Bool(_) => Some(format!("{XSD_NS}boolean")),
                        _ => None,
                    });
                    return Ok(Some(Term::Literal {
                        value: lexical,
                        datatype,
                        lang,
                    }));
                }
                if let Some(list) = m.get("@list") {
                    let mut items = Vec::new();
                    for item in as_array(Some(list)) {
                        if let Some(t) = self.value(item, kind, ctx, depth + 1)? {
                            items.push(t);
                        }
                    }
                    let mut head = Term::iri(RDF_NIL);
                    for item in items.into_iter().rev() {
                        let node = self.new_blank();
                        self.graph.add(node.clone(), RDF_FIRST, item);
                        self.graph.add(node.clone(), RDF_REST, head);
                        head = node;
                    }
                    return Ok(Some(head));
                }
                if let Some(set) = m.get("@set") {
                    return self.value(set, kind, ctx, depth + 1);
                }
                self.node(v, ctx, depth)?
            }
        }))
    }
}

/// Reads a literal's lexical form, accepting a JSON `@value` object too.
pub(crate) fn literal_value(t: &Term) -> Option<(&str, Option<&str>)> {
    match t {
        Term::Literal {
            value, datatype, ..
        } => Some((value, datatype.as_deref())),
        _ => None,
    }
}

/// A term as a JSON-LD value (for the compact policy JSON built from a graph).
pub(crate) fn term_to_json(t: &Term) -> Value {
    match t {
        Term::Iri(iri) | Term::Blank(iri) => {
            let mut m = Map::new();
            m.insert("@id".into(), Value::String(iri.clone()));
            Value::Object(m)
        }
        Term::Literal {
            value,
            datatype,
            lang,
        } => {
            let mut m = Map::new();
            m.insert("@value".into(), Value::String(value.clone()));
            match (datatype, lang) {
                (Some(dt), _) if dt != &format!("{XSD_NS}string") => {
                    m.insert("@type".into(), Value::String(dt.clone()));
                }
                (_, Some(lang)) => {
                    m.insert("@language".into(), Value::String(lang.clone()));
                }
                _ => return Value::String(value.clone()),
            }
            Value::Object(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turtle_covers_the_common_syntax() {
        let g = parse_turtle(
            r#"@prefix ex: <http://example.org/> .
            PREFIX odrl: <http://www.w3.org/ns/odrl/2/>
            # a comment
            ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:read ; odrl:target ex:x, ex:y ] ;
              ex:n 42 , -1.5, 1e3 ; ex:b true ; ex:s "a \"q\"\n"@en ; ex:l ( 1 ex:z ) ;
              ex:t """long
            "text" """^^<http://www.w3.org/2001/XMLSchema#string> ; .
            _:b1 ex:q 'single' .
            [ ex:r ex:s ] ."#,
        )
        .unwrap();
        let p = Term::iri("http://example.org/p");
        assert!(g.has_type(&p, "http://www.w3.org/ns/odrl/2/Set"));
        let perm = g
            .object(&p, "http://www.w3.org/ns/odrl/2/permission")
            .unwrap()
            .clone();
        assert_eq!(
            g.objects(&perm, "http://www.w3.org/ns/odrl/2/target")
                .count(),
            2
        );
        let l = g.object(&p, "http://example.org/l").unwrap();
        assert_eq!(g.list(l).unwrap().len(), 2);
        assert_eq!(g.objects(&p, "http://example.org/n").count(), 3);
        let s = g.object(&p, "http://example.org/s").unwrap();
        assert!(
            matches!(s, Term::Literal { value, lang: Some(l), .. } if value == "a \"q\"\n" && l == "en")
        );
        assert_eq!(g.triples.len(), 18);
    }

    #[test]
    fn turtle_errors_name_the_line() {
        let e = parse_turtle("@prefix ex: <http://e/> .\nex:a ex:b nope:c .").unwrap_err();
        assert!(e.contains("line 2") && e.contains("nope"), "{e}");
        assert!(parse_turtle("<a> <b> \"x").is_err());
        assert!(parse_turtle("<a> <b> <c>").is_err());
        let deep = format!("<a> <b> {}{} .", "[ <p> ".repeat(100), "]".repeat(100));
        assert!(parse_turtle(&deep).unwrap_err().contains("deep"));
    }

    #[test]
    fn jsonld_builtin_contexts_and_inline_prefixes() {
        let doc: Value = serde_json::json!({
            "@context": ["http://www.w3.org/ns/odrl.jsonld", {"ex": "https://ex.org/"}],
            "@type": "EvaluationRequest",
            "@id": "ex:r1",
            "evaluatedAction": "odrl:distribute",
            "requestParameters": {"value": {"@value": "2017-12-19T15:00:00", "@type": "xsd:dateTime"},
                                  "describesFeature": "sotw:CurrentXSDDateTime"}
        });
        let g = jsonld_to_graph(&doc).unwrap();
        let r = Term::iri("https://ex.org/r1");
        assert!(g.has_type(&r, "https://w3id.org/force/sotw#EvaluationRequest"));
        assert_eq!(
            g.object(&r, "https://w3id.org/force/sotw#evaluatedAction"),
            Some(&Term::iri("http://www.w3.org/ns/odrl/2/distribute"))
        );
        let bad = serde_json::json!({"@context": "https://example.org/ctx.jsonld"});
        assert!(
            jsonld_to_graph(&bad)
                .unwrap_err()
                .contains("does not fetch")
        );
    }
}
