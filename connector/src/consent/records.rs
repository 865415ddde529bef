//! Record by record through a data stream: finds each record of a JSON array, NDJSON, server-sent events or
//! CSV stream as it passes, reads its data-subject field, and keeps or drops the record. Used twice: by the
//! provider's data plane to release only consented records ([`super::Consents::filter`]), and by a recipient
//! deleting a withdrawn citizen's records from data it received.
//!
//! Memory stays bounded: a record is held only until it is complete (at most [`MAX_RECORD`] bytes); nothing
//! but the record being read is buffered.

mod scan;

use std::collections::VecDeque;

use actix_web::web::Bytes;
use serde_json::Value;

use scan::{Outline, RECORD_LISTS};

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

/// What the filter asks about each record: keep it? Gets the subject identifier as its UTF-8 bytes, as the
/// record holds it (so a decision cached for an identifier is found without decoding it again); records that
/// name none are dropped without asking.
pub trait Keep {
    /// Whether the record of `subject` (UTF-8) passes.
    fn keep(&mut self, subject: &[u8]) -> bool;
}

impl<F: FnMut(&str) -> bool> Keep for F {
    fn keep(&mut self, subject: &[u8]) -> bool {
        std::str::from_utf8(subject).is_ok_and(self)
    }
}

/// What [`filter_stream`] asks about a stream's records, a chunk at a time: it lends the [`Keep`] for one
/// chunk's records (so clocks, locks and counts are taken once per chunk, not per record), and hears the
/// tally when the stream ends.
pub trait Decide: Send {
    /// Runs `filter` over one chunk's records with the [`Keep`] for them.
    fn chunk<R>(&mut self, filter: impl FnOnce(&mut dyn Keep) -> R) -> R;

    /// The stream ended (finished, failed or dropped) with `tally`; called once.
    fn end(&mut self, tally: Tally);
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
        // One output buffer per chunk, rarely larger than the chunk.
        let mut out = Vec::with_capacity(chunk.len());
        match self.format {
            Format::Json => self.push_json(chunk, keep, &mut out)?,
            Format::Ndjson => {
                let mut output = Output::copied(chunk, out);
                self.push_ndjson(keep, &mut output);
                out = output.written;
            }
            Format::EventStream => self.push_events(chunk, keep, &mut out),
            Format::Csv => self.push_csv(chunk, keep, &mut out)?,
        }
        self.check_size()?;
        Ok(out)
    }

    /// As [`RecordFilter::push`], the output in pieces: NDJSON lines that pass as they came are passed on as
    /// parts of `chunk` (shared, not copied), a run of consecutive ones as one piece.
    pub fn push_shared(
        &mut self,
        chunk: &Bytes,
        keep: &mut dyn Keep,
    ) -> Result<Vec<Bytes>, RecordError> {
        if self.format != Format::Ndjson {
            let out = self.push(chunk, keep)?;
            return Ok(if out.is_empty() {
                Vec::new()
            } else {
                vec![Bytes::from(out)]
            });
        }
        let mut output = Output {
            chunk,
            shared: Some(chunk),
            pieces: Vec::new(),
            written: Vec::new(),
            run: None,
        };
        self.push_ndjson(keep, &mut output);
        self.check_size()?;
        Ok(output.pieces())
    }

    fn check_size(&self) -> Result<(), RecordError> {
        if self.buf.len() > MAX_RECORD {
            return Err(RecordError::TooLarge);
        }
        Ok(())
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
            Format::Ndjson => self.line(&rest, keep).write(&rest, &mut out),
            Format::EventStream => self.event(&rest, keep, &mut out),
            Format::Csv => self.csv_row(&rest, keep, &mut out),
        }
        Ok(out)
    }

    /// Whether the record read from its bytes passes (counted).
    fn decide(&mut self, record: &Outline<'_>, keep: &mut dyn Keep) -> bool {
        let kept = record.subject(&self.field).is_some_and(|s| keep.keep(&s));
        if kept {
            self.tally.kept += 1;
        } else {
            self.tally.dropped += 1;
        }
        kept
    }

    /// Whether a record of a parsed document passes: its subject read from its bytes, as any record's is.
    fn decide_value(&mut self, record: &Value, keep: &mut dyn Keep) -> bool {
        let bytes = serde_json::to_vec(record).unwrap_or_default();
        match Outline::read(&bytes, &self.field) {
            Ok(outline) => self.decide(&outline, keep),
            Err(_) => {
                self.tally.dropped += 1;
                false
            }
        }
    }

    /// Filters a JSON value in place: an array element by element, an object holding a record array
    /// through that array, and otherwise the value as one record (`Null` when dropped).
    fn filter_value(&mut self, v: &mut Value, keep: &mut dyn Keep) {
        match v {
            Value::Array(items) => {
                let taken = std::mem::take(items);
                for item in taken {
                    if self.decide_value(&item, keep) {
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
                    if !self.decide_value(v, keep) {
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
                            let record = Outline::read(&element, &self.field)
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

    /// Splits NDJSON into lines and filters each, straight from the chunk; only an unfinished last line is
    /// kept for the next chunk.
    fn push_ndjson(&mut self, keep: &mut dyn Keep, out: &mut Output<'_>) {
        let chunk = out.chunk;
        let mut from = 0;
        if !self.buf.is_empty() {
            let Some(end) = memchr::memchr(b'\n', chunk) else {
                self.buf.extend_from_slice(chunk);
                return;
            };
            let mut line = std::mem::take(&mut self.buf);
            line.extend_from_slice(&chunk[..end]);
            let kept = self.line(&line, keep);
            kept.write(&line, out.written());
            line.clear();
            self.buf = line;
            from = end + 1;
        }
        let lines = from;
        for end in memchr::memchr_iter(b'\n', &chunk[lines..]) {
            let end = lines + end;
            let line = &chunk[from..end];
            match self.line(line, keep) {
                // The line and its end pass as they came.
                Line::Passes if !line.ends_with(b"\r") => out.pass(from..end + 1),
                kept => kept.write(line, out.written()),
            }
            from = end + 1;
        }
        self.buf.extend_from_slice(&chunk[from..]);
    }

    /// What becomes of one NDJSON line (its end not included).
    fn line(&mut self, line: &[u8], keep: &mut dyn Keep) -> Line {
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        if text.iter().all(u8::is_ascii_whitespace) {
            return Line::Held;
        }
        let Ok(record) = Outline::read(text, &self.field) else {
            // Not JSON: it names no subject, so it does not pass.
            self.tally.dropped += 1;
            return Line::Held;
        };
        // A status line of a live source (`{"error": …}`) names no subject and carries no personal data.
        if record.status_only {
            return Line::Passes;
        }
        // One record on the line (the usual case): kept or dropped whole, its bytes passed on unchanged.
        if record.object && record.list.is_none() {
            return if self.decide(&record, keep) {
                Line::Passes
            } else {
                Line::Held
            };
        }
        // An array or a notification holding records: filtered element by element.
        let Ok(mut v) = serde_json::from_slice::<Value>(text) else {
            self.tally.dropped += 1;
            return Line::Held;
        };
        self.filter_value(&mut v, keep);
        if keeps_something(&v) {
            Line::Rewritten(serde_json::to_vec(&v).unwrap_or_default())
        } else {
            Line::Held
        }
    }

    /// Splits server-sent events on blank lines (CR, LF and CRLF line ends all count) and filters each.
    fn push_events(&mut self, chunk: &[u8], keep: &mut dyn Keep, out: &mut Vec<u8>) {
        // A blank line may span two chunks: search again from the last byte already held.
        let start = self.buf.len().saturating_sub(1);
        self.buf
            .extend(chunk.iter().copied().filter(|&b| b != b'\r'));
        let buf = std::mem::take(&mut self.buf);
        let mut from = 0;
        for end in memchr::memmem::find_iter(&buf[start..], b"\n\n") {
            let end = end + start;
            self.event(&buf[from..end], keep, out);
            from = end + 2;
        }
        self.buf = buf;
        self.buf.drain(..from);
    }

    fn event(&mut self, event: &[u8], keep: &mut dyn Keep, out: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(event);
        let mut data = Vec::new();
        let mut other = Vec::new();
        for l in text.split('\n') {
            if let Some(d) = l.strip_prefix("data:") {
                data.push(d.strip_prefix(' ').unwrap_or(d));
            } else if !l.is_empty() {
                other.push(l);
            }
        }
        if data.iter().all(|d| d.is_empty()) {
            // Comments, retry hints, ids without data: no record.
            if !other.is_empty() {
                out.extend(other.join("\n").as_bytes());
                out.extend(b"\n\n");
            }
            return;
        }
        let data = data.join("\n");
        let Ok(record) = Outline::read(data.as_bytes(), &self.field) else {
            self.tally.dropped += 1;
            return;
        };
        let write = |out: &mut Vec<u8>, data: &str| {
            for l in &other {
                out.extend(l.as_bytes());
                out.push(b'\n');
            }
            for l in data.split('\n') {
                out.extend(b"data: ");
                out.extend(l.as_bytes());
                out.push(b'\n');
            }
            out.push(b'\n');
        };
        // One record (the usual case): kept or dropped whole, its data passed on as it came.
        if record.object && record.list.is_none() {
            if self.decide(&record, keep) {
                write(out, &data);
            }
            return;
        }
        let Ok(mut v) = serde_json::from_str::<Value>(&data) else {
            self.tally.dropped += 1;
            return;
        };
        self.filter_value(&mut v, keep);
        if keeps_something(&v) {
            write(out, &serde_json::to_string(&v).unwrap_or_default());
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
        let kept = subject.is_some_and(|s| keep.keep(s.as_bytes()));
        if kept {
            self.tally.kept += 1;
            out.extend(text.as_bytes());
            out.push(b'\n');
        } else {
            self.tally.dropped += 1;
        }
    }
}

/// What becomes of one NDJSON line.
#[derive(Debug)]
enum Line {
    /// Held back (no consent, no subject, not JSON, or blank).
    Held,
    /// Passed on as it came (a CR before its end dropped).
    Passes,
    /// Passed on filtered: these bytes instead.
    Rewritten(Vec<u8>),
}

impl Line {
    /// Writes what passes of `line` to `out`, with its end.
    fn write(self, line: &[u8], out: &mut Vec<u8>) {
        match self {
            Line::Held => return,
            Line::Passes => out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line)),
            Line::Rewritten(bytes) => out.extend(bytes),
        }
        out.push(b'\n');
    }
}

/// The output of one chunk: bytes written, and runs of the chunk passed on as they came, as parts of it when
/// it is shared (else copied).
struct Output<'c> {
    chunk: &'c [u8],
    shared: Option<&'c Bytes>,
    /// The output so far, in order (when shared).
    pieces: Vec<Bytes>,
    /// Bytes written after `pieces` (and before `run`).
    written: Vec<u8>,
    /// The run of the chunk passing on after `written`.
    run: Option<std::ops::Range<usize>>,
}

impl<'c> Output<'c> {
    /// Output all written into `out`.
    fn copied(chunk: &'c [u8], out: Vec<u8>) -> Self {
        Self {
            chunk,
            shared: None,
            pieces: Vec::new(),
            written: out,
            run: None,
        }
    }

    /// Bytes `range` of the chunk pass on as they came.
    fn pass(&mut self, range: std::ops::Range<usize>) {
        if self.shared.is_none() {
            self.written.extend_from_slice(&self.chunk[range]);
            return;
        }
        match &mut self.run {
            Some(run) if run.end == range.start => run.end = range.end,
            _ => {
                self.end_run();
                self.run = Some(range);
            }
        }
    }

    /// Where the next bytes are written.
    fn written(&mut self) -> &mut Vec<u8> {
        self.end_run();
        &mut self.written
    }

    fn end_run(&mut self) {
        if let (Some(run), Some(shared)) = (self.run.take(), self.shared) {
            if !self.written.is_empty() {
                self.pieces
                    .push(Bytes::from(std::mem::take(&mut self.written)));
            }
            self.pieces.push(shared.slice(run));
        }
    }

    /// The whole output, in order.
    fn pieces(mut self) -> Vec<Bytes> {
        self.end_run();
        if !self.written.is_empty() {
            self.pieces.push(Bytes::from(self.written));
        }
        self.pieces
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

/// Filters a whole stream: each chunk through a [`RecordFilter`], its records decided by `decide` (a chunk at
/// a time), which hears the tally when the stream ends (also when it fails or is dropped).
pub fn filter_stream<D: Decide + 'static>(
    stream: futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>,
    filter: RecordFilter,
    decide: D,
) -> futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>> {
    use futures_util::stream::StreamExt;
    struct State<D: Decide> {
        inner: futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>,
        queue: VecDeque<Result<Bytes, std::io::Error>>,
        ended: bool,
        filter: RecordFilter,
        decide: D,
    }
    impl<D: Decide> Drop for State<D> {
        fn drop(&mut self) {
            self.decide.end(self.filter.tally());
        }
    }
    let state = State {
        inner: stream,
        queue: VecDeque::new(),
        ended: false,
        filter,
        decide,
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
                Some(Ok(chunk)) => {
                    match s.decide.chunk(|keep| s.filter.push_shared(&chunk, keep)) {
                        Ok(pieces) => s.queue.extend(pieces.into_iter().map(Ok)),
                        Err(e) => {
                            s.ended = true;
                            s.queue.push_back(Err(std::io::Error::other(e.to_string())));
                        }
                    }
                }
                Some(Err(e)) => {
                    s.ended = true;
                    s.queue.push_back(Err(e));
                }
                None => {
                    s.ended = true;
                    match s.decide.chunk(|keep| s.filter.finish(keep)) {
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
    fn records_pass_as_they_came_whatever_the_chunking() {
        let nd = "{\"refCitizen\":\"p1\", \"n\": 1.50}\r\n{\"refCitizen\":\"p2\"}\n\n{\"refCitizen\":{\"value\":\"p1\"}}";
        let whole = run(Format::Ndjson, &[nd], &["p1"]);
        assert_eq!(
            whole.0,
            "{\"refCitizen\":\"p1\", \"n\": 1.50}\n{\"refCitizen\":{\"value\":\"p1\"}}\n"
        );
        let bytes: Vec<String> = nd.chars().map(String::from).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(run(Format::Ndjson, &refs, &["p1"]), whole);
        // An event's data over several lines, CRLF line ends: passed on line by line.
        let sse = "id: 1\r\ndata: {\"refCitizen\":\r\ndata: \"p1\"}\r\n\r\nid: 2\ndata: {\"refCitizen\":\"p2\"}\n\n";
        let want = "id: 1\ndata: {\"refCitizen\":\ndata: \"p1\"}\n\n";
        assert_eq!(run(Format::EventStream, &[sse], &["p1"]).0, want);
        let bytes: Vec<String> = sse.chars().map(String::from).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(run(Format::EventStream, &refs, &["p1"]).0, want);
        // A notification in an event is filtered element by element.
        let sse = "data: {\"data\":[{\"refCitizen\":\"p1\"},{\"refCitizen\":\"p2\"}]}\n\n";
        assert_eq!(
            run(Format::EventStream, &[sse], &["p1"]).0,
            "data: {\"data\":[{\"refCitizen\":\"p1\"}]}\n\n"
        );
    }

    #[test]
    fn ndjson_passed_in_shared_runs_is_the_same_output() {
        let nd = "{\"refCitizen\":\"p1\",\"n\":1}\n{\"refCitizen\":\"p1\"}\r\n{\"refCitizen\":\"p2\"}\n\n  \n\
                  {\"error\":\"the source answered 500\"}\n{\"data\":[{\"refCitizen\":\"p1\"},{\"refCitizen\":\"p3\"}]}\n\
                  not json\n{\"refCitizen\":\"p1\"}\n{\"refCitizen\":\"p1\"}\n{\"refCitizen\":\"p1\"";
        let keep_p1 = |s: &str| s == "p1";
        let (want, tally) = run(Format::Ndjson, &[nd], &["p1"]);
        for cut in 0..nd.len() {
            let mut f = RecordFilter::new(Format::Ndjson, "refCitizen");
            let mut keep = keep_p1;
            let mut out = Vec::new();
            for part in [&nd[..cut], &nd[cut..]] {
                let chunk = Bytes::copy_from_slice(part.as_bytes());
                for piece in f.push_shared(&chunk, &mut keep).unwrap() {
                    out.extend_from_slice(&piece);
                }
            }
            out.extend(f.finish(&mut keep).unwrap());
            assert_eq!(String::from_utf8(out).unwrap(), want, "cut at {cut}");
            assert_eq!(f.tally(), tally);
        }
        // Consecutive lines passing as they came are one piece of the chunk, not a copy.
        let chunk = Bytes::from_static(
            b"{\"refCitizen\":\"p1\"}\n{\"refCitizen\":\"p1\"}\n{\"refCitizen\":\"p2\"}\n",
        );
        let mut f = RecordFilter::new(Format::Ndjson, "refCitizen");
        let pieces = f.push_shared(&chunk, &mut { keep_p1 }).unwrap();
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].as_ptr(), chunk.as_ptr());
        assert_eq!(pieces[0].len(), 40);
    }

    #[test]
    fn a_stream_is_decided_a_chunk_at_a_time() {
        use futures_util::StreamExt;
        #[derive(Default)]
        struct Seen {
            chunks: usize,
            ended: Vec<Tally>,
        }
        struct Decider(std::sync::Arc<std::sync::Mutex<Seen>>);
        impl Decide for Decider {
            fn chunk<R>(&mut self, filter: impl FnOnce(&mut dyn Keep) -> R) -> R {
                self.0.lock().unwrap().chunks += 1;
                filter(&mut |s: &str| s == "p1")
            }
            fn end(&mut self, tally: Tally) {
                self.0.lock().unwrap().ended.push(tally);
            }
        }
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
        let chunks = [
            "{\"refCitizen\":\"p1\"}\n{\"refC",
            "itizen\":\"p2\"}\n",
            "{\"refCitizen\":\"p1\"}",
        ];
        let input = futures_util::stream::iter(chunks.map(|c| Ok(Bytes::from(c)))).boxed();
        let filter = RecordFilter::new(Format::Ndjson, "refCitizen");
        let out: Vec<Bytes> = drain(filter_stream(input, filter, Decider(seen.clone())));
        assert_eq!(
            out.concat(),
            b"{\"refCitizen\":\"p1\"}\n{\"refCitizen\":\"p1\"}\n"
        );
        let seen = seen.lock().unwrap();
        // Three chunks and the end of the stream; the tally once.
        assert_eq!(seen.chunks, 4);
        assert_eq!(
            seen.ended,
            [Tally {
                kept: 2,
                dropped: 1
            }]
        );
    }

    /// Runs a filtered stream to its end.
    fn drain(
        stream: futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>,
    ) -> Vec<Bytes> {
        use futures_util::StreamExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(stream.map(Result::unwrap).collect())
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
