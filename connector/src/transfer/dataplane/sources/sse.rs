//! Server-sent events, relayed as they come (back-pressure is the consumer's read); a consumer that
//! reconnects with `Last-Event-ID` resumes where it stopped.

use super::{AccessError, Opened, Source, SourceContext, open_http};

/// An event stream.
#[derive(Debug, Clone)]
pub struct SseSource {
    /// The stream.
    pub url: String,
    /// The consumer's `Last-Event-ID`, passed on.
    pub last_event_id: Option<String>,
}

impl Source for SseSource {
    async fn open(self, cx: &SourceContext<'_>) -> Result<Opened, AccessError> {
        let mut req = cx
            .streaming
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = &self.last_event_id {
            req = req.header("Last-Event-ID", id.as_str());
        }
        let mut opened = open_http(req, &self.url).await?;
        opened.content_type = Some("text/event-stream".into());
        opened.length = None;
        Ok(opened)
    }
}
