//! A polled HTTP resource as a non-finite stream: every `interval_secs` seconds the source is fetched and,
//! when its content changed, emitted as one line of NDJSON. Source failures are emitted as error lines and
//! the polling goes on.

use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::stream::StreamExt;
use serde_json::Value;

use super::{AccessError, Opened, Source, SourceContext};

/// A JSON resource polled at an interval.
#[derive(Debug, Clone)]
pub struct PolledHttp {
    /// The resource.
    pub url: String,
    /// Seconds between two fetches (at least 1).
    pub interval_secs: u32,
}

impl Source for PolledHttp {
    async fn open(self, cx: &SourceContext<'_>) -> Result<Opened, AccessError> {
        let http = cx.protocol.clone();
        let every = Duration::from_secs(u64::from(self.interval_secs.max(1)));
        let state = (http, self.url, None::<Value>, true);
        let stream =
            futures_util::stream::unfold(state, move |(http, url, last, first)| async move {
                if !first {
                    tokio::time::sleep(every).await;
                }
                let line = match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                        // Unchanged: an empty chunk, filtered out below.
                        Ok(v) if Some(&v) == last.as_ref() => {
                            return Some((Ok(Bytes::new()), (http, url, last, false)));
                        }
                        Ok(v) => {
                            let mut line = serde_json::to_vec(&v).unwrap_or_default();
                            line.push(b'\n');
                            return Some((Ok(Bytes::from(line)), (http, url, Some(v), false)));
                        }
                        Err(e) => {
                            serde_json::json!({"error": format!("the source sent no JSON: {e}")})
                        }
                    },
                    Ok(r) => {
                        serde_json::json!({"error": format!("the source answered {}", r.status())})
                    }
                    Err(e) => {
                        serde_json::json!({"error": format!("the source cannot be reached: {e}")})
                    }
                };
                let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
                bytes.push(b'\n');
                Some((Ok(Bytes::from(bytes)), (http, url, last, false)))
            })
            .filter(|chunk: &Result<Bytes, std::io::Error>| {
                std::future::ready(!matches!(chunk, Ok(b) if b.is_empty()))
            });
        Ok(Opened {
            content_type: Some("application/x-ndjson".into()),
            length: None,
            stream: stream.boxed(),
            range: None,
        })
    }
}
