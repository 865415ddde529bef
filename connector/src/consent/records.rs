//! Record by record through a data stream: finds each record of a JSON array, NDJSON, server-sent events or
//! CSV stream as it passes, reads its data-subject field, and keeps or drops the record. Used twice: by the
//! provider's data plane to release only consented records ([`super::Consents::filter`]), and by a recipient
//! deleting a withdrawn citizen's records from data it received.
//!
//! Memory stays bounded: a record is held only until it is complete (at most [`MAX_RECORD`] bytes); nothing
//! but the record being read is buffered.

use std::collections::VecDeque;

use actix_web::web::Bytes;
use serde_json::Value;

/// The members of a JSON object that hold its records (GeoJSON, NGSI-LD notifications, JSON-LD, paged APIs).
const RECORD_LISTS: [&str; 4] = ["features", "data", "@graph", "results"];

/// The record array an object holds, by name, if any.
fn record_list(m: &serde_json::Map<String, Value>) -> Option<&'static str> {
    RECORD_LISTS
        .into_iter()
        .find(|k| m.get(*k).is_some_and(Value::is_array))
}

/// The largest single record the filter reads (a larger one ends the stream with an error).
pub const MAX_RECORD: usize = 16 * 1024 * 1024;

/// The record formats caap can filter per data subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON document: a top-level array of records, or an object holding one (`features`, `data`,
    /// `@graph`, `results`), or one record.
    Json,
    /// One JSON value per line (NDJSON, JSON Lines); a line holding an array or an NGSI-LD notification
    /// (`data: [...]`) is filtered element by element.
    Ndjson,
    /// Server-sent events whose `data:` is JSON (as NDJSON lines are).
    EventStream,
    /// CSV with a header row naming the subject column.
    Csv,
}

impl Format {
    /// The format of a media type, if caap can filter it.
    pub fn of(content_type: Option<&str>) -> Option<Format> {
        let essence = content_type?
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines" => Some(Format::Ndjson),
            "text/event-stream" => Some(Format::EventStream),
            "text/csv" => Some(Format::Csv),
            e if e == "application/json" || e.ends_with("+json") => Some(Format::Json),
            _ => None,
        }
    }
}

/// Why a stream could not be filtered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The stream is not in the format it declared.
    #[error("the data is not {0}")]
    Malformed(&'static str),
    /// One record is larger than [`MAX_RECORD`].
    #[error("a record is larger than {MAX_RECORD} bytes")]
    TooLarge,
}

/// The data-subject identifier of a JSON record: `field` (a dotted path), looked up in the record and in its
/// GeoJSON `properties`; an NGSI-LD property or relationship gives its `value` or `object`.
pub fn subject_of<'a>(record: &'a Value, field: &str) -> Option<std::borrow::Cow<'a, str>> {
    let lookup = |root: &'a Value| {
        field
            .split('.')
            .try_fold(root, |v, part| v.get(part))
            .and_then(scalar)
    };
    lookup(record).or_else(|| record.get("properties").and_then(lookup))
}

fn scalar(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(s.as_str().into()),
        Value::Number(n) => Some(n.to_string().into()),
        Value::Object(m) => ["value", "object", "@value", "@id"]
            .iter()
            .find_map(|k| m.get(*k))
            .and_then(scalar),
        _ => None,
    }
}

/// What the filter asks about each record: keep it? Gets the subject identifier (`None` when the record
/// names none: such records are dropped without asking).
pub trait Keep: Send {
    /// Whether the record of `subject` passes.
    fn keep(&mut self, subject: &str) -> bool;
}

impl<F: FnMut(&str) -> bool + Send> Keep for F {
    fn keep(&mut self, subject: &str) -> bool {
        self(subject)
    }
}

/// Counts what passed and what was dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Records kept.
    pub kept: u64,
    /// Records dropped (no consent, or no subject).
    pub dropped: u64,
}

/// A push parser that turns incoming chunks into the filtered output.
#[derive(Debug)]
pub struct RecordFilter {
    format: Format,
    field: String,
    /// Bytes of the record (or line, event, JSON document) being read.
    buf: Vec<u8>,
    /// For [`Format::Json`]: where the top-level document is.
    json: JsonState,
    /// For [`Format::Csv`]: the subject column, once the header is read.
    csv_column: Option<usize>,
    csv_header_done: bool,
    tally: Tally,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonState {
    /// Before the first non-blank byte.
    Start,
    /// Inside a top-level array: reading elements.
    Array {
        depth: u32,
        in_string: bool,
        escaped: bool,
        wrote_one: bool,
    },
    /// The top-level array has ended.
    Done,
    /// The document is not an array: buffered whole and filtered at the end.
    Whole,
}

impl RecordFilter {
    /// A filter for `format` whose records name their subject in `field`.
    pub fn new(format: Format, field: &str) -> Self {
        Self {
            format,
            field: field.to_owned(),
            buf: Vec::new(),
            json: JsonState::Start,
            csv_column: None,
            csv_header_done: false,
            tally: Tally::default(),
        }
    }

    /// What passed and what was dropped so far.
    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// Takes the next chunk; returns the output it completes (possibly empty).
    pub fn push(&mut self, chunk: &[u8], keep: &mut dyn Keep) -> Result<Vec<u8>, RecordError> {
        let mut out = Vec::new();
        match self.format {
            Format::Json => self.push_json(chunk, keep, &mut out)?,
            Format::Ndjson => self.push_lines(chunk, b"\n", keep, &mut out)?,
            Format::EventStream => self.push_lines(chunk, b"\n\n", keep, &mut out)?,
            Format::Csv => self.push_csv(chunk, keep, &mut out)?,
        }
        if self.buf.len() > MAX_RECORD {
            return Err(RecordError::TooLarge);
        }
        Ok(out)
    }

    /// Ends the stream; returns the output of what was still buffered.
    pub fn finish(&mut self, keep: &mut dyn Keep) -> Result<Vec<u8>, RecordError> {
        let mut out = Vec::new();
        let rest = std::mem::take(&mut self.buf);
        match self.format {
            Format::Json => match self.json {
                JsonState::Whole | JsonState::Start
                    if !rest.iter().all(u8::is_ascii_whitespace) =>
                {
                    let mut doc: Value = serde_json::from_slice(&rest)
                        .map_err(|_| RecordError::Malformed("JSON"))?;
                    self.filter_value(&mut doc, keep);
                    out.extend(serde_json::to_vec(&doc).unwrap_or_default());
                }
                JsonState::Array { .. } => {
                    return Err(RecordError::Malformed("a complete JSON array"));
                }
                _ => {}
            },
            Format::Ndjson => self.line(&rest, keep, &mut out, b"\n"),
            Format::EventStream => self.event(&rest, keep, &mut out),
            Format::Csv => self.csv_row(&rest, keep, &mut out),
        }
        Ok(out)
    }

    fn decide(&mut self, record: &Value, keep: &mut dyn Keep) -> bool {
        let kept = subject_of(record, &self.field).is_some_and(|s| keep.keep(&s));
        if kept {
            self.tally.kept += 1;
        } else {
            self.tally.dropped += 1;
        }
        kept
    }

    /// Filters a JSON value in place: an array element by element, an object holding a record array
    /// through that array, and otherwise the value as one record (`Null` when dropped).
    fn filter_value(&mut self, v: &mut Value, keep: &mut dyn Keep) {
        match v {
            Value::Array(items) => {
                let taken = std::mem::take(items);
                for item in taken {
                    if self.decide(&item, keep) {
                        items.push(item);
                    }
                }
            }
            Value::Object(m) => match record_list(m) {
                Some(k) => {
                    if let Some(inner) = m.get_mut(k) {
                        self.filter_value(inner, keep);
                    }
                }
                None => {
                    if !self.decide(v, keep) {
                        *v = Value::Null;
                    }
                }
            },
            _ => *v = Value::Null,
        }
    }

    fn push_json(
        &mut self,
        chunk: &[u8],
        keep: &mut dyn Keep,
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        for &b in chunk {
            match &mut self.json {
                JsonState::Start => {
                    if b.is_ascii_whitespace() {
                        continue;
                    }
                    if b == b'[' {
                        out.push(b'[');
                        self.json = JsonState::Array {
                            depth: 0,
                            in_string: false,
                            escaped: false,
                            wrote_one: false,
                        };
                    } else {
                        self.json = JsonState::Whole;
                        self.buf.push(b);
                    }
                }
                JsonState::Whole => self.buf.push(b),
                JsonState::Done => {
                    if !b.is_ascii_whitespace() {
                        return Err(RecordError::Malformed("one JSON array"));
                    }
                }
                JsonState::Array {
                    depth,
                    in_string,
                    escaped,
                    wrote_one,
                } => {
                    if *in_string {
                        self.buf.push(b);
                        if *escaped {
                            *escaped = false;
                        } else if b == b'\\' {
                            *escaped = true;
                        } else if b == b'"' {
                            *in_string = false;
                        }
                        continue;
                    }
                    let end_of_element = *depth == 0 && (b == b',' || b == b']');
                    if end_of_element {
                        let element = std::mem::take(&mut self.buf);
                        let blank = element.iter().all(u8::is_ascii_whitespace);
                        if !blank {
                            let record: Value = serde_json::from_slice(&element)
                                .map_err(|_| RecordError::Malformed("a JSON array of records"))?;
                            let mut wrote = *wrote_one;
                            if self.decide(&record, keep) {
                                if wrote {
                                    out.push(b',');
                                }
                                out.extend_from_slice(element.trim_ascii());
                                wrote = true;
                            }
                            if let JsonState::Array { wrote_one, .. } = &mut self.json {
                                *wrote_one = wrote;
                            }
                        } else if b == b',' {
                            return Err(RecordError::Malformed("a JSON array of records"));
                        }
                        if b == b']' {
                            out.push(b']');
                            self.json = JsonState::Done;
                        }
                        continue;
                    }
                    match b {
                        b'"' => *in_string = true,
                        b'[' | b'{' => *depth += 1,
                        b']' | b'}' => {
                            *depth = depth
                                .checked_sub(1)
                                .ok_or(RecordError::Malformed("balanced JSON"))?;
                        }
                        _ => {}
                    }
                    self.buf.push(b);
                }
            }
        }
        Ok(())
    }

    /// Splits on `sep` (a newline for NDJSON, a blank line for events) and filters each piece.
    fn push_lines(
        &mut self,
        chunk: &[u8],
        sep: &[u8],
        keep: &mut dyn Keep,
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        // Events may be separated by CRLF CRLF; normalise CR away (SSE allows CR, LF and CRLF).
        let start = self.buf.len().saturating_sub(sep.len());
        self.buf.extend(
            chunk
                .iter()
                .copied()
                .filter(|&b| b != b'\r' || sep.len() == 1),
        );
        let mut from = 0;
        let mut search = start;
        while let Some(pos) = find(&self.buf[search..], sep).map(|p| p + search) {
            let piece = self.buf[from..pos].to_vec();
            if sep.len() == 1 {
                self.line(&piece, keep, out, sep);
            } else {
                self.event(&piece, keep, out);
            }
            from = pos + sep.len();
            search = from;
        }
        self.buf.drain(..from);
        Ok(())
    }

    fn line(&mut self, line: &[u8], keep: &mut dyn Keep, out: &mut Vec<u8>, sep: &[u8]) {
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        if text.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Ok(mut v) = serde_json::from_slice::<Value>(text) else {
            // Not JSON: it names no subject, so it does not pass.
            self.tally.dropped += 1;
            return;
        };
        // A status line of a live source (`{"error": …}`) names no subject and carries no personal data.
        if v.as_object()
            .is_some_and(|m| m.len() == 1 && m.contains_key("error"))
        {
            out.extend_from_slice(text);
            out.extend_from_slice(sep);
            return;
        }
        // One record on the line (the usual case): kept or dropped whole, its bytes passed on unchanged.
        let holds_list = v.as_object().and_then(record_list).is_some();
        if v.is_object() && !holds_list {
            if self.decide(&v, keep) {
                out.extend_from_slice(text);
                out.extend_from_slice(sep);
            }
            return;
        }
        self.filter_value(&mut v, keep);
        if keeps_something(&v) {
            out.extend(serde_json::to_vec(&v).unwrap_or_default());
            out.extend_from_slice(sep);
        }
    }

    fn event(&mut self, event: &[u8], keep: &mut dyn Keep, out: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(event);
        let mut data = String::new();
        let mut other = Vec::new();
        for l in text.split('\n') {
            if let Some(d) = l.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            } else if !l.is_empty() {
                other.push(l);
            }
        }
        if data.is_empty() {
            // Comments, retry hints, ids without data: no record.
            if !other.is_empty() {
                out.extend(other.join("\n").as_bytes());
                out.extend(b"\n\n");
            }
            return;
        }
        let Ok(mut v) = serde_json::from_str::<Value>(&data) else {
            self.tally.dropped += 1;
            return;
        };
        self.filter_value(&mut v, keep);
        if keeps_something(&v) {
            for l in &other {
                out.extend(l.as_bytes());
                out.push(b'\n');
            }
            out.extend(b"data: ");
            out.extend(serde_json::to_vec(&v).unwrap_or_default());
            out.extend(b"\n\n");
        }
    }

    fn push_csv(
        &mut self,
        chunk: &[u8],
        keep: &mut dyn Keep,
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        self.buf.extend_from_slice(chunk);
        let mut from = 0;
        let mut quoted = false;
        let mut rows = Vec::new();
        for (i, &b) in self.buf.iter().enumerate() {
            if b == b'"' {
                quoted = !quoted;
            } else if b == b'\n' && !quoted {
                rows.push((from, i));
                from = i + 1;
            }
        }
        let taken: Vec<Vec<u8>> = rows.iter().map(|&(a, z)| self.buf[a..z].to_vec()).collect();
        self.buf.drain(..from);
        for row in taken {
            self.csv_row(&row, keep, out);
        }
        Ok(())
    }

    fn csv_row(&mut self, row: &[u8], keep: &mut dyn Keep, out: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(row.strip_suffix(b"\r").unwrap_or(row)).into_owned();
        if text.is_empty() {
            return;
        }
        let cells = csv_cells(&text);
        if !self.csv_header_done {
            self.csv_header_done = true;
            self.csv_column = cells.iter().position(|c| *c == self.field);
            out.extend(text.as_bytes());
            out.push(b'\n');
            return;
        }
        let subject = self
            .csv_column
            .and_then(|i| cells.get(i))
            .filter(|s| !s.is_empty());
        let kept = subject.is_some_and(|s| keep.keep(s));
        if kept {
            self.tally.kept += 1;
            out.extend(text.as_bytes());
            out.push(b'\n');
        } else {
            self.tally.dropped += 1;
        }
    }
}

fn keeps_something(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(items) => !items.is_empty(),
        Value::Object(m) => record_list(m)
            .and_then(|k| m.get(k).and_then(Value::as_array))
            .is_none_or(|items| !items.is_empty()),
        _ => true,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The cells of one CSV row (RFC 4180 quoting).
fn csv_cells(row: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(std::mem::take(&mut cell)),
            c => cell.push(c),
        }
    }
    cells.push(cell);
    cells
}

/// Filters a whole stream: each chunk through a [`RecordFilter`] with `keep`, and `on_end` called with the
/// tally when the stream ends (also when it fails).
pub fn filter_stream<K, E>(
    stream: futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>,
    filter: RecordFilter,
    keep: K,
    on_end: E,
) -> futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>
where
    K: Keep + 'static,
    E: FnMut(Tally) + Send + 'static,
{
    use futures_util::stream::StreamExt;
    struct State<K, E: FnMut(Tally)> {
        inner: futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>,
        queue: VecDeque<Result<Bytes, std::io::Error>>,
        ended: bool,
        filter: RecordFilter,
        keep: K,
        on_end: Option<E>,
    }
    impl<K, E: FnMut(Tally)> Drop for State<K, E> {
        fn drop(&mut self) {
            if let Some(mut f) = self.on_end.take() {
                f(self.filter.tally());
            }
        }
    }
    let state = State {
        inner: stream,
        queue: VecDeque::new(),
        ended: false,
        filter,
        keep,
        on_end: Some(on_end),
    };
    futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(item) = s.queue.pop_front() {
                return Some((item, s));
            }
            if s.ended {
                return None;
            }
            match s.inner.next().await {
                Some(Ok(chunk)) => match s.filter.push(&chunk, &mut s.keep) {
                    Ok(out) if out.is_empty() => {}
                    Ok(out) => s.queue.push_back(Ok(Bytes::from(out))),
                    Err(e) => {
                        s.ended = true;
                        s.queue.push_back(Err(std::io::Error::other(e.to_string())));
                    }
                },
                Some(Err(e)) => {
                    s.ended = true;
                    s.queue.push_back(Err(e));
                }
                None => {
                    s.ended = true;
                    match s.filter.finish(&mut s.keep) {
                        Ok(out) if out.is_empty() => {}
                        Ok(out) => s.queue.push_back(Ok(Bytes::from(out))),
                        Err(e) => s.queue.push_back(Err(std::io::Error::other(e.to_string()))),
                    }
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(format: Format, input: &[&str], allowed: &[&str]) -> (String, Tally) {
        let mut f = RecordFilter::new(format, "refCitizen");
        let mut keep = |s: &str| allowed.contains(&s);
        let mut out = Vec::new();
        for chunk in input {
            out.extend(f.push(chunk.as_bytes(), &mut keep).unwrap());
        }
        out.extend(f.finish(&mut keep).unwrap());
        (String::from_utf8(out).unwrap(), f.tally())
    }

    #[test]
    fn a_json_array_keeps_only_allowed_subjects_whatever_the_chunking() {
        let doc = r#" [ {"id":"a","refCitizen":"p1","note":"x, ] \" {"}, {"id":"b","refCitizen":"p2"},
            {"id":"c","refCitizen":{"type":"Property","value":"p1"}}, {"id":"d"} ] "#;
        let whole = run(Format::Json, &[doc], &["p1"]);
        let v: Value = serde_json::from_str(&whole.0).unwrap();
        let ids: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(
            whole.1,
            Tally {
                kept: 2,
                dropped: 2
            }
        );
        // Byte by byte gives the same.
        let bytes: Vec<String> = doc.chars().map(String::from).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(run(Format::Json, &refs, &["p1"]).0, whole.0);
        assert_eq!(run(Format::Json, &["[]"], &["p1"]).0, "[]");
        assert_eq!(run(Format::Json, &[doc], &[]).0, "[]");
    }

    #[test]
    fn objects_holding_records_and_single_records_are_filtered() {
        let geo = r#"{"type":"FeatureCollection","features":[{"properties":{"refCitizen":"p1"}},{"properties":{"refCitizen":"p2"}}]}"#;
        let (out, t) = run(Format::Json, &[geo], &["p2"]);
        assert!(out.contains("p2") && !out.contains("p1"), "{out}");
        assert_eq!(
            t,
            Tally {
                kept: 1,
                dropped: 1
            }
        );
        let (out, _) = run(Format::Json, &[r#"{"refCitizen":"p1"}"#], &["p2"]);
        assert_eq!(out, "null");
    }

    #[test]
    fn ndjson_events_and_csv_are_filtered_per_record() {
        let nd = "{\"refCitizen\":\"p1\",\"n\":1}\n{\"refCitizen\":\"p2\"}\n{\"error\":\"the source answered 500\"}\n{\"data\":[{\"refCitizen\":\"p1\"},{\"refCitizen\":\"p3\"}]}\n";
        let (out, t) = run(Format::Ndjson, &[&nd[..20], &nd[20..]], &["p1"]);
        assert_eq!(
            out,
            "{\"refCitizen\":\"p1\",\"n\":1}\n{\"error\":\"the source answered 500\"}\n{\"data\":[{\"refCitizen\":\"p1\"}]}\n"
        );
        assert_eq!(
            t,
            Tally {
                kept: 2,
                dropped: 2
            }
        );
        let sse = "id: 1\ndata: {\"refCitizen\":\"p1\"}\n\nid: 2\ndata: {\"refCitizen\":\"p2\"}\n\n: keep-alive\n\n";
        let (out, _) = run(Format::EventStream, &[sse], &["p1"]);
        assert_eq!(
            out,
            "id: 1\ndata: {\"refCitizen\":\"p1\"}\n\n: keep-alive\n\n"
        );
        let csv = "zone,refCitizen\r\nA,p1\r\n\"B, north\",p2\r\nC,\"p1\"\n";
        let (out, t) = run(Format::Csv, &[csv], &["p1"]);
        assert_eq!(out, "zone,refCitizen\nA,p1\nC,\"p1\"\n");
        assert_eq!(
            t,
            Tally {
                kept: 2,
                dropped: 1
            }
        );
        // Without the subject column nothing passes.
        let (out, _) = run(Format::Csv, &["zone\nA\n"], &["p1"]);
        assert_eq!(out, "zone\n");
    }

    #[test]
    fn broken_data_is_refused_not_passed() {
        let mut f = RecordFilter::new(Format::Json, "refCitizen");
        let mut keep = |_: &str| true;
        assert!(f.push(b"[{\"refCitizen\":\"p1\"} {", &mut keep).is_ok());
        assert!(f.finish(&mut keep).is_err());
        let mut f = RecordFilter::new(Format::Json, "refCitizen");
        assert!(f.push(b"[1,,2]", &mut keep).is_err());
        assert_eq!(
            Format::of(Some("application/geo+json; charset=utf-8")),
            Some(Format::Json)
        );
        assert_eq!(Format::of(Some("application/octet-stream")), None);
        assert_eq!(Format::of(None), None);
    }
}
