//! A record's data-subject field read straight from its bytes: one pass over the JSON value checks that it is
//! well-formed (as `serde_json` parsing it would: strings with valid escapes and paired surrogates, no control
//! characters, numbers in JSON's grammar, nesting at most [`MAX_DEPTH`], nothing after the value) and notes
//! where the members the filter asks about are, without building the value. Lookups then read only those
//! members' bytes. A member named twice counts with its last value, as in a parsed `serde_json` map.

use std::borrow::Cow;

/// The bytes are not one well-formed JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// The deepest nesting read (`serde_json`'s limit: deeper documents were refused when parsed, and still are).
const MAX_DEPTH: usize = 128;

/// The members of a JSON object that hold its records (GeoJSON, NGSI-LD notifications, JSON-LD, paged APIs).
pub const RECORD_LISTS: [&str; 4] = ["features", "data", "@graph", "results"];

/// What the filter needs to know of one JSON value, read in one pass.
#[derive(Debug, Clone, Copy)]
pub struct Outline<'a> {
    /// Whether the value is an object.
    pub object: bool,
    /// The first of [`RECORD_LISTS`] the object holds as an array, if any.
    pub list: Option<&'static str>,
    /// Whether the object's only member is `error` (a live source's status line).
    pub status_only: bool,
    /// The value of the member named by the subject path's first part.
    first: Option<&'a [u8]>,
    /// Its contents when it is a string without escapes (read as it is).
    first_text: Option<&'a [u8]>,
    /// Whether the subject path has more than one part.
    dotted: bool,
    /// The value of `properties` (GeoJSON features name their subject there).
    properties: Option<&'a [u8]>,
}

impl<'a> Outline<'a> {
    /// Reads `bytes` (one JSON value, blanks around it allowed) for the subject path `field`.
    pub fn read(bytes: &'a [u8], field: &str) -> Result<Self, Invalid> {
        // Outside strings only ASCII is JSON; strings are checked to be UTF-8 as they are read.
        let field = field.as_bytes();
        let dot = field.iter().position(|&b| b == b'.');
        let first_part = dot.map_or(field, |dot| &field[..dot]);
        let mut c = Cursor { b: bytes, i: 0 };
        c.blank();
        let mut outline = Outline {
            object: false,
            list: None,
            status_only: false,
            first: None,
            first_text: None,
            dotted: dot.is_some(),
            properties: None,
        };
        if c.peek() == Some(b'{') {
            outline.object = true;
            // Whether each record list's last value is an array; whether `error` and anything else appear.
            let mut lists = [false; RECORD_LISTS.len()];
            let (mut error, mut other) = (false, false);
            // Inlined: a call per member costs about as much as the member's checks.
            c.object(
                0,
                #[inline(always)]
                |key, value, text| {
                    // A key's first byte and length rule most keys out before any comparison.
                    let (head, len) = (key.first(), key.len());
                    if len == first_part.len() && head == first_part.first() && key == first_part {
                        outline.first = Some(value);
                        outline.first_text = text;
                    }
                    let is_array = || value.first() == Some(&b'[');
                    match (head, len) {
                        (Some(b'e'), 5) if key == b"error" => {
                            error = true;
                            return;
                        }
                        (Some(b'p'), 10) if key == b"properties" => {
                            outline.properties = Some(value)
                        }
                        (Some(b'f'), 8) if key == b"features" => lists[0] = is_array(),
                        (Some(b'd'), 4) if key == b"data" => lists[1] = is_array(),
                        (Some(b'@'), 6) if key == b"@graph" => lists[2] = is_array(),
                        (Some(b'r'), 7) if key == b"results" => lists[3] = is_array(),
                        _ => {}
                    }
                    other = true;
                },
            )?;
            outline.status_only = error && !other;
            outline.list = RECORD_LISTS
                .into_iter()
                .zip(lists)
                .find_map(|(name, is_array)| is_array.then_some(name));
        } else {
            c.value(0)?;
        }
        c.blank();
        if c.i != bytes.len() {
            return Err(Invalid);
        }
        Ok(outline)
    }

    /// The data-subject identifier (its UTF-8 bytes): `field` (a dotted path, the one the outline was read
    /// for) looked up in the record and, failing that, in its GeoJSON `properties`; a string as it reads, a
    /// number as written by `serde_json`, and of an NGSI-LD property or relationship (or a JSON-LD value
    /// object) its `value`, `object`, `@value` or `@id`.
    #[inline]
    pub fn subject(&self, field: &str) -> Option<Cow<'a, [u8]>> {
        if let (Some(text), false) = (self.first_text, self.dotted) {
            // A plain string (the usual case) as it reads: the scan checked that it is UTF-8.
            return Some(Cow::Borrowed(text));
        }
        self.subject_otherwise(field).map(|s| match s {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        })
    }

    /// [`Outline::subject`] when it is not a plain string.
    fn subject_otherwise(&self, field: &str) -> Option<Cow<'a, str>> {
        if !self.dotted {
            return self
                .first
                .and_then(scalar)
                .or_else(|| scalar(member(self.properties?, field)?));
        }
        let rest = || field.split('.').skip(1);
        let path = |mut v: &'a [u8], parts: std::iter::Skip<std::str::Split<'_, char>>| {
            for part in parts {
                v = member(v, part)?;
            }
            scalar(v)
        };
        self.first.and_then(|v| path(v, rest())).or_else(|| {
            let first = field.split('.').next().unwrap_or_default();
            path(member(self.properties?, first)?, rest())
        })
    }
}

/// The value of `name` in the object `bytes` (its last occurrence); `None` if it is not an object or lacks it.
fn member<'a>(bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
    members(bytes, [name])[0]
}

/// The values of `names` in the object `bytes` (each its last occurrence).
fn members<'a, const N: usize>(bytes: &'a [u8], names: [&str; N]) -> [Option<&'a [u8]>; N] {
    let mut found = [None; N];
    if bytes.first() != Some(&b'{') {
        return found;
    }
    let mut c = Cursor { b: bytes, i: 0 };
    let read = c.object(0, |key, value, _| {
        for (slot, name) in found.iter_mut().zip(names) {
            if key == name.as_bytes() {
                *slot = Some(value);
            }
        }
    });
    if read.is_err() {
        return [None; N];
    }
    found
}

/// A subject identifier from a value's bytes: a string, a number, or a value object's `value`, `object`,
/// `@value` or `@id` (the first of them present decides).
fn scalar(v: &[u8]) -> Option<Cow<'_, str>> {
    match v.first()? {
        b'"' => {
            let inner = v.get(1..v.len() - 1)?;
            if inner.contains(&b'\\') {
                serde_json::from_slice::<String>(v).ok().map(Cow::Owned)
            } else {
                std::str::from_utf8(inner).ok().map(Cow::Borrowed)
            }
        }
        b'-' | b'0'..=b'9' => serde_json::from_slice::<serde_json::Number>(v)
            .ok()
            .map(|n| Cow::Owned(n.to_string())),
        b'{' => {
            let [value, object, at_value, at_id] = members(v, ["value", "object", "@value", "@id"]);
            value.or(object).or(at_value).or(at_id).and_then(scalar)
        }
        _ => None,
    }
}

/// The bytes of `word` (little-endian) that are a quote, a backslash, a control character or not ASCII (those
/// a string scan stops at): the high bit of each such byte is set, exactly so for the first of them (the bits
/// above it may be set by a borrow).
fn special(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below `n` (n <= 128) sets its high bit in (w - n*ONES) & !w & HIGH.
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH;
    let zero = |w: u64| below(w, 1);
    zero(word ^ (ONES * u64::from(b'"')))
        | zero(word ^ (ONES * u64::from(b'\\')))
        | below(word, 0x20)
        | (word & HIGH)
}

/// Reads JSON from `b` at `i`.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn blank(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Result<(), Invalid> {
        if self.peek() == Some(byte) {
            self.i += 1;
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// One value at the cursor, skipped (and checked).
    fn value(&mut self, depth: usize) -> Result<(), Invalid> {
        match self.peek().ok_or(Invalid)? {
            b'{' => self.object(depth, |_, _, _| {}),
            b'[' => self.array(depth),
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// An object at the cursor; `each` gets every member's name (raw when it has no escapes, else decoded),
    /// the bytes of its value, and the contents of a value that is a string without escapes.
    fn object(
        &mut self,
        depth: usize,
        mut each: impl FnMut(&[u8], &'a [u8], Option<&'a [u8]>),
    ) -> Result<(), Invalid> {
        if self.open(depth, b'{', b'}')? {
            return Ok(());
        }
        loop {
            self.blank();
            let start = self.i;
            let (raw, escaped) = self.string()?;
            self.blank();
            self.eat(b':')?;
            self.blank();
            let at = self.i;
            // Strings, the usual member values, read here rather than through the recursive `value`.
            let mut text = None;
            if self.peek() == Some(b'"') {
                let (contents, escapes) = self.string()?;
                text = (!escapes).then_some(contents);
            } else {
                self.value(depth + 1)?;
            }
            let value = self.b.get(at..self.i).ok_or(Invalid)?;
            if escaped {
                let key: String = self
                    .b
                    .get(start..start + raw.len() + 2)
                    .and_then(|k| serde_json::from_slice(k).ok())
                    .ok_or(Invalid)?;
                each(key.as_bytes(), value, text);
            } else {
                each(raw, value, text);
            }
            if self.after(b'}')? {
                return Ok(());
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), Invalid> {
        if self.open(depth, b'[', b']')? {
            return Ok(());
        }
        loop {
            self.blank();
            self.value(depth + 1)?;
            if self.after(b']')? {
                return Ok(());
            }
        }
    }

    /// Opens an object or array at the cursor (at most [`MAX_DEPTH`] deep); true when it is empty (and read).
    fn open(&mut self, depth: usize, open: u8, close: u8) -> Result<bool, Invalid> {
        if depth >= MAX_DEPTH {
            return Err(Invalid);
        }
        self.eat(open)?;
        self.blank();
        Ok(self.close(close))
    }

    fn close(&mut self, close: u8) -> bool {
        let closes = self.peek() == Some(close);
        if closes {
            self.i += 1;
        }
        closes
    }

    /// After a member or element: true at the end of the object or array, else past the comma.
    fn after(&mut self, close: u8) -> Result<bool, Invalid> {
        self.blank();
        if self.close(close) {
            return Ok(true);
        }
        self.eat(b',')?;
        Ok(false)
    }

    /// A string at the cursor: its raw contents and whether they hold escapes. Inlined: it is most of what a
    /// record's scan does, and a call per string costs about as much as reading a short one.
    #[inline(always)]
    fn string(&mut self) -> Result<(&'a [u8], bool), Invalid> {
        self.eat(b'"')?;
        let start = self.i;
        let (mut escaped, mut ascii) = (false, true);
        loop {
            // Eight bytes at a time, to the first special one.
            while let Some(word) = self.b.get(self.i..self.i + 8) {
                let word = <[u8; 8]>::try_from(word).map_err(|_| Invalid)?;
                let special = special(u64::from_le_bytes(word));
                if special != 0 {
                    self.i += (special.trailing_zeros() / 8) as usize;
                    break;
                }
                self.i += 8;
            }
            match self.peek().ok_or(Invalid)? {
                b'"' => {
                    let raw = self.b.get(start..self.i).ok_or(Invalid)?;
                    if !ascii {
                        std::str::from_utf8(raw).map_err(|_| Invalid)?;
                    }
                    self.i += 1;
                    return Ok((raw, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.i += 1;
                    self.escape()?;
                }
                0..0x20 => return Err(Invalid),
                b => {
                    ascii &= b.is_ascii();
                    self.i += 1;
                }
            }
        }
    }

    /// The escape after a backslash; a `\u` surrogate must come in a pair, as `serde_json` requires.
    fn escape(&mut self) -> Result<(), Invalid> {
        match self.peek().ok_or(Invalid)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.i += 1;
                Ok(())
            }
            b'u' => {
                self.i += 1;
                match self.hex4()? {
                    0xDC00..=0xDFFF => Err(Invalid),
                    0xD800..=0xDBFF => {
                        self.eat(b'\\')?;
                        self.eat(b'u')?;
                        if (0xDC00..=0xDFFF).contains(&self.hex4()?) {
                            Ok(())
                        } else {
                            Err(Invalid)
                        }
                    }
                    _ => Ok(()),
                }
            }
            _ => Err(Invalid),
        }
    }

    fn hex4(&mut self) -> Result<u16, Invalid> {
        let digits = self.b.get(self.i..self.i + 4).ok_or(Invalid)?;
        let mut n = 0u16;
        for &d in digits {
            let v = char::from(d).to_digit(16).ok_or(Invalid)?;
            n = n * 16 + u16::try_from(v).map_err(|_| Invalid)?;
        }
        self.i += 4;
        Ok(n)
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Invalid> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// A number in JSON's grammar: `-`? (`0` | [1-9][0-9]*) (`.` [0-9]+)? ([eE] [+-]? [0-9]+)?.
    fn number(&mut self) -> Result<(), Invalid> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Invalid),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Result<(), Invalid> {
        let from = self.i;
        self.digits();
        if self.i == from { Err(Invalid) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(json: &str) -> Result<Option<String>, Invalid> {
        Outline::read(json.as_bytes(), "refCitizen").map(|o| {
            o.subject("refCitizen")
                .map(|s| String::from_utf8(s.into_owned()).unwrap())
        })
    }

    #[test]
    fn reads_the_subject_as_parsing_the_record_did() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"id":"a","refCitizen":"p1","n":[1,{"refCitizen":"x"}]}"#,
                Some("p1"),
            ),
            // Escapes in keys and values are decoded before comparing.
            (r#"{"ref\u0043itizen":"p\"1\\"}"#, Some("p\"1\\")),
            (
                r#"{"note":"refCitizen\":\"p9","refCitizen":"p\u00e9"}"#,
                Some("pé"),
            ),
            // NGSI-LD properties and relationships, JSON-LD values; the first of them present decides.
            (
                r#"{"refCitizen":{"type":"Property","value":"p1"}}"#,
                Some("p1"),
            ),
            (
                r#"{"refCitizen":{"type":"Relationship","object":"urn:p2"}}"#,
                Some("urn:p2"),
            ),
            (r#"{"refCitizen":{"@id":"p3","@value":"p4"}}"#, Some("p4")),
            (r#"{"refCitizen":{"value":null,"object":"p2"}}"#, None),
            (r#"{"refCitizen":{"value":{"value":"deep"}}}"#, Some("deep")),
            // GeoJSON features name it in `properties`, used when the record itself has none.
            (
                r#"{"type":"Feature","properties":{"refCitizen":"p5"}}"#,
                Some("p5"),
            ),
            (
                r#"{"refCitizen":null,"properties":{"refCitizen":"p5"}}"#,
                Some("p5"),
            ),
            // Numbers as serde_json writes them (a fraction in its shortest form; builds where serde_json keeps
            // numbers as written, `arbitrary_precision`, write `1.50` as is); anything else names no subject.
            (r#"{"refCitizen":1999000001}"#, Some("1999000001")),
            (r#"{"refCitizen":1.5}"#, Some("1.5")),
            (r#"{"refCitizen":true}"#, None),
            (r#"{"refCitizen":["p1"]}"#, None),
            (r#"{"other":"p1","nested":{"refCitizen":"p1"}}"#, None),
            (r#"["p1"]"#, None),
            (r#""p1""#, None),
            // A member named twice counts with its last value.
            (r#"{"refCitizen":"p1","refCitizen":"p2"}"#, Some("p2")),
            (
                r#"{"refCitizen":"p1","refCitizen":{"value":"p2"}}"#,
                Some("p2"),
            ),
            (r#"{"refCitizen":"p1","refCitizen":null}"#, None),
            (r#" {"refCitizen" : "p1" } "#, Some("p1")),
        ];
        for (json, want) in cases {
            assert_eq!(subject(json), Ok(want.map(str::to_owned)), "{json}");
            // The same as looking it up in the parsed value.
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            let parsed = v.to_string();
            assert_eq!(subject(&parsed), Ok(want.map(str::to_owned)), "{parsed}");
        }
    }

    #[test]
    fn a_dotted_path_reads_nested_members() {
        let json = br#"{"owner":{"id":"p1","x":[]},"properties":{"owner":{"id":"p2"}}}"#;
        let o = Outline::read(json, "owner.id").unwrap();
        assert_eq!(o.subject("owner.id").as_deref(), Some(&b"p1"[..]));
        let json = br#"{"properties":{"owner":{"id":"p2"}}}"#;
        let o = Outline::read(json, "owner.id").unwrap();
        assert_eq!(o.subject("owner.id").as_deref(), Some(&b"p2"[..]));
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        let bad = [
            r#"{"refCitizen":"p1"} {"refCitizen":"p2"}"#,
            r#"{"refCitizen":"p1"},{"refCitizen":"p2"}"#,
            r#"{"refCitizen":"p1""#,
            r#"{"refCitizen":"p1",}"#,
            r#"{"refCitizen" "p1"}"#,
            r#"{refCitizen:"p1"}"#,
            "{\"refCitizen\":\"p\u{1}1\"}",
            r#"{"refCitizen":"\ud800"}"#,
            r#"{"refCitizen":"\udc00"}"#,
            r#"{"refCitizen":"\ud800\u0041"}"#,
            r#"{"refCitizen":"\x"}"#,
            r#"{"n":01}"#,
            r#"{"n":1.}"#,
            r#"{"n":-}"#,
            r#"{"n":1e}"#,
            r#"{"n":tru}"#,
            r#"[1,]"#,
            r#"[1 2]"#,
            "",
            "   ",
        ];
        for json in bad {
            assert!(
                serde_json::from_str::<serde_json::Value>(json).is_err(),
                "{json}"
            );
            assert_eq!(subject(json), Err(Invalid), "{json}");
        }
        assert!(Outline::read(b"{\"refCitizen\":\"\xff\"}", "refCitizen").is_err());
        // Past the first eight bytes of a string too (they are read a word at a time).
        assert!(Outline::read(b"{\"refCitizen\":\"abcdefghijklmn\x01op\"}", "refCitizen").is_err());
        assert!(Outline::read(b"{\"refCitizen\":\"abcdefghijklmn\xc3op\"}", "refCitizen").is_err());
        assert!(Outline::read(b"{\"refCitizen\":\"abcdefghijklmn\"x\"}", "refCitizen").is_err());
        assert_eq!(
            subject("{\"refCitizen\":\"Malmö 19990101-0000 Åsa Öberg\"}"),
            Ok(Some("Malmö 19990101-0000 Åsa Öberg".into()))
        );
        assert_eq!(
            subject(r#"{"refCitizen":"abcdefghijklmnopqrstuvwxyz\"0123456789"}"#),
            Ok(Some("abcdefghijklmnopqrstuvwxyz\"0123456789".into()))
        );
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err());
        assert_eq!(subject(&deep), Err(Invalid));
        let fine = r#"{"s":"\ud83d\ude00 \/ \b\f\n\r\t","n":[-0.5e+3,0,1E2,true,false,null,{}]}"#;
        assert!(serde_json::from_str::<serde_json::Value>(fine).is_ok());
        assert_eq!(subject(fine), Ok(None));
    }

    #[test]
    fn a_special_byte_is_found_at_every_place_in_a_word() {
        // A string is read eight bytes at a time, jumping to the first special byte of a word: at each offset,
        // each kind of special byte decides as `serde_json` does.
        for at in 0..20 {
            for special in ["\"", "\\\"", "\\u00e9", "\u{1}", "é", "\u{7f}"] {
                let json = format!(
                    "{{\"refCitizen\":\"{}{special}{}\"}}",
                    "a".repeat(at),
                    "b".repeat(at % 7)
                );
                let parsed = serde_json::from_str::<serde_json::Value>(&json).ok();
                let want = parsed.map(|v| v["refCitizen"].as_str().map(str::to_owned));
                assert_eq!(subject(&json).ok(), want, "{json}");
            }
        }
    }

    #[test]
    fn notes_status_lines_and_record_lists() {
        let o = Outline::read(br#"{"error":"the source answered 500"}"#, "refCitizen").unwrap();
        assert!(o.object && o.status_only && o.list.is_none());
        let o = Outline::read(br#"{"error":"x","refCitizen":"p1"}"#, "refCitizen").unwrap();
        assert!(!o.status_only);
        let o = Outline::read(
            br#"{"type":"Notification","data":[{"refCitizen":"p1"}]}"#,
            "refCitizen",
        )
        .unwrap();
        assert_eq!(o.list, Some("data"));
        let o = Outline::read(br#"{"data":"not a list","results":[]}"#, "refCitizen").unwrap();
        assert_eq!(o.list, Some("results"));
        let o = Outline::read(br#"{"data":[],"data":{}}"#, "refCitizen").unwrap();
        assert_eq!(o.list, None);
        let o = Outline::read(br#"[{"refCitizen":"p1"}]"#, "refCitizen").unwrap();
        assert!(!o.object && o.list.is_none());
    }
}
