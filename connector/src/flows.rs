//! The data plane's state shared by the whole connector: the data flows it is serving right now, so that a
//! suspension, completion or termination stops them at once (every served stream watches its transfer's stop
//! signal), the NGSI-LD notification endpoints of subscription-fed streams, and the token cache for protected
//! sources. Plain state below the services: [`crate::transfer::dataplane`] uses it.

use std::collections::HashMap;
use std::sync::Mutex;

use caap_identity::Secret;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// Running flows by transfer id.
#[derive(Debug, Default)]
pub struct Flows {
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
}

impl Flows {
    /// A stop signal for a new flow of `transfer_id` (several flows of one transfer share it).
    pub fn watch(&self, transfer_id: &str) -> watch::Receiver<bool> {
        let Ok(mut running) = self.running.lock() else {
            // A poisoned lock: hand out a signal that is already stopped rather than an unstoppable flow.
            let (tx, rx) = watch::channel(true);
            drop(tx);
            return rx;
        };
        running.retain(|_, tx| !tx.is_closed());
        running
            .entry(transfer_id.to_owned())
            .or_insert_with(|| watch::channel(false).0)
            .subscribe()
    }

    /// Stops every flow of `transfer_id` now.
    pub fn stop(&self, transfer_id: &str) {
        if let Ok(mut running) = self.running.lock()
            && let Some(tx) = running.remove(transfer_id)
        {
            let _ = tx.send(true);
        }
    }
}

/// Ends `stream` as soon as `stop` turns true (or its sender is gone).
pub fn until_stopped<S, T>(
    stream: S,
    mut stop: watch::Receiver<bool>,
) -> impl futures_util::Stream<Item = T> + Send + 'static
where
    S: futures_util::Stream<Item = T> + Send + Unpin + 'static,
    T: Send + 'static,
{
    let stopped = async move {
        loop {
            if *stop.borrow() {
                return;
            }
            if stop.changed().await.is_err() {
                return;
            }
        }
    };
    futures_util::StreamExt::take_until(stream, Box::pin(stopped))
}

/// NGSI-LD notification endpoints opened for subscription-fed streams, by their random id.
#[derive(Debug, Default)]
pub struct Notifications {
    open: Mutex<HashMap<String, tokio::sync::mpsc::Sender<actix_web::web::Bytes>>>,
}

impl Notifications {
    /// Opens an endpoint id with a bounded queue (a slow consumer slows the broker's deliveries down).
    pub fn open(&self) -> (String, tokio::sync::mpsc::Receiver<actix_web::web::Bytes>) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        if let Ok(mut open) = self.open.lock() {
            open.insert(id.clone(), tx);
        }
        (id, rx)
    }

    /// The queue of an open endpoint.
    pub fn sender(&self, id: &str) -> Option<tokio::sync::mpsc::Sender<actix_web::web::Bytes>> {
        self.open.lock().ok()?.get(id).cloned()
    }

    /// Closes an endpoint.
    pub fn close(&self, id: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(id);
        }
    }
}

/// Cached source tokens by credential name.
#[derive(Debug, Default)]
pub struct SourceTokens {
    cache: Mutex<HashMap<String, (Secret, DateTime<Utc>)>>,
}

impl SourceTokens {
    /// The token cached for the credentials `name`, if it is still valid at `now`.
    pub(crate) fn cached(&self, name: &str, now: DateTime<Utc>) -> Option<Secret> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(name)
            .filter(|(_, until)| *until > now)
            .map(|(t, _)| t.clone())
    }

    /// Caches a token for the credentials `name` until `until`.
    pub(crate) fn store(&self, name: &str, token: Secret, until: DateTime<Utc>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(name.to_owned(), (token, until));
        }
    }

    /// Forgets a token the source refused.
    pub fn forget(&self, name: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(name);
        }
    }
}

/// Where the data of a push transfer this connector consumes is stored, under `data_dir`.
pub fn received_path(data_dir: &std::path::Path, transfer_id: &str) -> std::path::PathBuf {
    let safe: String = transfer_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    data_dir.join("received").join(safe)
}
