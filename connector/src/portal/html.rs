//! A small HTML writer that escapes by construction: tag and attribute names are `&'static str` written
//! in the code, and every value (text or attribute) goes through [`escape`]. There is no way to add raw
//! markup from a value, so a string from the backend, a catalog or a request can never become markup.

use std::fmt::Write as _;

/// Escapes text for use in element content and in double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An HTML document being written.
#[derive(Debug, Default)]
pub struct Html {
    out: String,
}

impl Html {
    /// An empty document, starting with the doctype.
    pub fn document() -> Html {
        Html {
            out: String::from("<!DOCTYPE html>\n"),
        }
    }

    /// Opens `<tag attr="value" …>`; an attribute with the value `None` is left out, `Some("")` is written
    /// bare (`hidden`, `required`).
    pub fn open(&mut self, tag: &'static str, attrs: &[(&'static str, Option<&str>)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        for (name, value) in attrs {
            match value {
                None => {}
                Some("") => {
                    let _ = write!(self.out, " {name}");
                }
                Some(v) => {
                    let _ = write!(self.out, " {name}=\"{}\"", escape(v));
                }
            }
        }
        self.out.push('>');
        self
    }

    /// Closes `</tag>`.
    pub fn close(&mut self, tag: &'static str) -> &mut Self {
        let _ = write!(self.out, "</{tag}>");
        self
    }

    /// Escaped text.
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.out.push_str(&escape(text));
        self
    }

    /// `<tag attrs>text</tag>`.
    pub fn element(
        &mut self,
        tag: &'static str,
        attrs: &[(&'static str, Option<&str>)],
        text: &str,
    ) -> &mut Self {
        self.open(tag, attrs).text(text).close(tag)
    }

    /// A void element (`<input …>`, `<meta …>`, `<link …>`).
    pub fn void(&mut self, tag: &'static str, attrs: &[(&'static str, Option<&str>)]) -> &mut Self {
        self.open(tag, attrs)
    }

    /// The document.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_in_text_and_attributes() {
        let mut h = Html::default();
        h.element(
            "a",
            &[
                ("href", Some("/x?a=1&b=\"2\"")),
                ("hidden", Some("")),
                ("title", None),
            ],
            "<script>alert('x')</script>",
        );
        assert_eq!(
            h.finish(),
            "<a href=\"/x?a=1&amp;b=&quot;2&quot;\" hidden>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</a>"
        );
    }
}
