//! A non-finite stream fed by an NGSI-LD subscription: the broker notifies this connector's
//! `/notify/{id}` endpoint, each notification becomes one NDJSON line, and the subscription is deleted when
//! the stream ends.

use std::sync::Arc;

use futures_util::stream::StreamExt;
use serde_json::Value;

use super::{AccessError, Opened, Source, SourceContext, SourceError};
use crate::transfer::dataplane::flows::Notifications;

/// A subscription to the entities of one type at a broker.
#[derive(Debug, Clone)]
pub struct NgsiLdSubscription {
    /// The broker's base (before `/ngsi-ld/v1`).
    pub broker: String,
    /// The entity type.
    pub entity_type: String,
    /// The broker's `timeInterval`, if any.
    pub interval_secs: Option<u32>,
}

impl Source for NgsiLdSubscription {
    async fn open(self, cx: &SourceContext<'_>) -> Result<Opened, AccessError> {
        let (id, rx) = cx.notifications.open();
        let subscriptions = format!(
            "{}/ngsi-ld/v1/subscriptions",
            self.broker.trim_end_matches('/')
        );
        let mut body = serde_json::json!({
            "@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"],
            "type": "Subscription",
            "entities": [{"type": self.entity_type}],
            "notification": {"endpoint": {"uri": format!("{}/notify/{id}", cx.public_url),
                "accept": "application/json"}},
        });
        if let Some(i) = self.interval_secs {
            body["timeInterval"] = Value::from(i);
        }
        let res = cx
            .protocol
            .post(&subscriptions)
            .header(reqwest::header::CONTENT_TYPE, "application/ld+json")
            .body(body.to_string())
            .send()
            .await;
        let problem = match res {
            Ok(r) if r.status().is_success() => Ok(r),
            Ok(r) => Err(format!("refused the subscription: {}", r.status())),
            Err(e) => Err(format!("cannot be reached: {e}")),
        };
        let res = match problem {
            Ok(r) => r,
            Err(problem) => {
                cx.notifications.close(&id);
                return Err(SourceError::Subscription {
                    url: subscriptions,
                    problem,
                }
                .into());
            }
        };
        let location = res
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| {
                if l.starts_with("http") {
                    l.to_owned()
                } else {
                    let origin = url::Url::parse(&subscriptions)
                        .map(|u| u.origin().ascii_serialization())
                        .unwrap_or_default();
                    format!("{origin}{l}")
                }
            });
        let guard = SubscriptionGuard {
            notifications: cx.notifications.clone(),
            id,
            location,
            http: cx.protocol.clone(),
        };
        let stream = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
            let line = rx.recv().await?;
            Some((Ok(line), (rx, guard)))
        });
        Ok(Opened {
            content_type: Some("application/x-ndjson".into()),
            length: None,
            stream: stream.boxed(),
            range: None,
        })
    }
}

/// Ends a subscription when its stream is dropped: closes the notification endpoint and deletes the
/// subscription at the broker.
struct SubscriptionGuard {
    notifications: Arc<Notifications>,
    id: String,
    location: Option<String>,
    http: reqwest::Client,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.notifications.close(&self.id);
        if let (Some(location), Ok(handle)) =
            (self.location.take(), tokio::runtime::Handle::try_current())
        {
            let http = self.http.clone();
            handle.spawn(async move {
                if let Err(e) = http.delete(&location).send().await {
                    tracing::warn!(subscription = %location, error = %e, "deleting an NGSI-LD subscription failed");
                }
            });
        }
    }
}
