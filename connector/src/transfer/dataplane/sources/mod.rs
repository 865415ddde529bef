//! The sources a dataset's data comes from, one module per kind behind one trait, [`Source`]: plain HTTP
//! ([`http`]), an NGSI-LD query ([`ngsi_query`]), an NGSI-LD subscription ([`ngsi_subscription`]), a file
//! ([`file`]), server-sent events ([`sse`]) and a polled HTTP resource ([`poll`]).

pub mod file;
pub mod http;
pub mod ngsi_query;
pub mod ngsi_subscription;
pub mod poll;
pub mod sse;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::web::Bytes;
use caap_catalog::asset::{Asset, DataAddress as Address, StreamSource};
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};

use super::AccessError;
use super::DataPlane;
use super::flows::Notifications;
use super::source_auth::SourceAuth;
use crate::catalog_files::refs::{has_refs, resolve};
use crate::catalog_files::{ProcessEnv, Resolver};
use crate::store::DocKind;

pub use file::file_stream;

/// A source opened for streaming.
pub struct Opened {
    /// Its media type, if known.
    pub content_type: Option<String>,
    /// Its length, if known.
    pub length: Option<u64>,
    /// The bytes.
    pub stream: BoxStream<'static, Result<Bytes, std::io::Error>>,
    /// The part of the whole it holds, when the source served a range (`None`: the whole).
    pub range: Option<super::range::ContentRange>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("content_type", &self.content_type)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// How a source failed (a 502 towards the consumer).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source cannot be reached.
    #[error("the source {url} cannot be reached: {cause}")]
    Unreachable {
        /// The source.
        url: String,
        /// Why.
        cause: String,
    },
    /// The source answered with an error status.
    #[error("the source {url} answered {status}")]
    Status {
        /// The source.
        url: String,
        /// Its answer.
        status: reqwest::StatusCode,
    },
    /// A protected source refused a token just fetched.
    #[error("the source {url} refused a fresh token")]
    FreshTokenRefused {
        /// The source.
        url: String,
    },
    /// The authorization server of a protected source failed.
    #[error("source credentials `{name}`: {what}: {cause}")]
    Credentials {
        /// The credentials' name.
        name: String,
        /// What failed.
        what: &'static str,
        /// Why.
        cause: String,
    },
    /// A file source cannot be opened.
    #[error("file {path}: {cause}")]
    File {
        /// The path under the files directory.
        path: String,
        /// Why.
        cause: std::io::Error,
    },
    /// A `${env:…}` or `${file:…}` reference of the data address does not resolve in this process.
    #[error("the data address of dataset {dataset}: {cause}")]
    Reference {
        /// The dataset.
        dataset: String,
        /// Which reference, and why.
        cause: String,
    },
    /// The NGSI-LD broker refused or did not answer a subscription.
    #[error("the broker {url} {problem}")]
    Subscription {
        /// The broker's subscriptions endpoint.
        url: String,
        /// What happened.
        problem: String,
    },
}

/// Resolved data-address strings with their reference forms.
type Resolved = Vec<(String, String)>;

impl SourceError {
    /// The error with each resolved string put back in its reference form (so that no secret reaches
    /// the log).
    fn hiding(self, resolved: &Resolved) -> SourceError {
        let hide = |mut s: String| {
            for (value, reference) in resolved {
                s = s.replace(value.as_str(), reference);
            }
            s
        };
        match self {
            SourceError::Unreachable { url, cause } => SourceError::Unreachable {
                url: hide(url),
                cause: hide(cause),
            },
            SourceError::Status { url, status } => SourceError::Status {
                url: hide(url),
                status,
            },
            SourceError::FreshTokenRefused { url } => {
                SourceError::FreshTokenRefused { url: hide(url) }
            }
            SourceError::Subscription { url, problem } => SourceError::Subscription {
                url: hide(url),
                problem: hide(problem),
            },
            other => other,
        }
    }

    /// What the consumer is told: no URL, path, credential or variable name (the provider's log has
    /// the full message).
    pub fn public(&self) -> String {
        let what = match self {
            SourceError::Unreachable { .. } => "cannot be reached".to_owned(),
            SourceError::Status { status, .. } => format!("answered {status}"),
            SourceError::FreshTokenRefused { .. } | SourceError::Credentials { .. } => {
                "refused the provider's credentials".to_owned()
            }
            SourceError::Reference { .. } => "is not configured correctly".to_owned(),
            SourceError::File { .. } => "cannot be read".to_owned(),
            SourceError::Subscription { .. } => "refused the subscription".to_owned(),
        };
        format!("the dataset's source {what}; the provider's log has the details")
    }

    /// Did the source answer 401 (its token may just have expired)?
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, SourceError::Status { status, .. } if *status == reqwest::StatusCode::UNAUTHORIZED)
    }
}

/// What a source may use to open itself.
pub struct SourceContext<'a> {
    /// The client for data flows (connect and read timeouts).
    pub streaming: &'a reqwest::Client,
    /// The client for short requests (subscriptions, polls).
    pub protocol: &'a reqwest::Client,
    /// The directory file sources are under.
    pub files: PathBuf,
    /// This connector's public root URL (where brokers send notifications).
    pub public_url: &'a str,
    /// The notification endpoints of subscription-fed streams.
    pub notifications: &'a Arc<Notifications>,
    /// Tokens for protected sources.
    pub auth: SourceAuth<'a>,
    /// The range the consumer asked for (served by sources that can).
    pub range: Option<super::range::ByteRange>,
}

impl std::fmt::Debug for SourceContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceContext")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// One kind of data source.
pub trait Source {
    /// Opens the source for streaming.
    fn open(
        self,
        cx: &SourceContext<'_>,
    ) -> impl std::future::Future<Output = Result<Opened, AccessError>>;
}

/// Sends `req` to the source `url` and streams the answer's body.
pub(crate) async fn open_http(
    req: reqwest::RequestBuilder,
    url: &str,
) -> Result<Opened, AccessError> {
    let res = req.send().await.map_err(|e| SourceError::Unreachable {
        url: url.to_owned(),
        cause: e.to_string(),
    })?;
    if !res.status().is_success() {
        return Err(SourceError::Status {
            url: url.to_owned(),
            status: res.status(),
        }
        .into());
    }
    let content_type = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let length = res.content_length();
    // A source that honoured a range answers 206 with the part it holds.
    let range = (res.status() == reqwest::StatusCode::PARTIAL_CONTENT)
        .then(|| res.headers().get(reqwest::header::CONTENT_RANGE))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(super::range::ContentRange::parse);
    Ok(Opened {
        content_type,
        length,
        stream: res.bytes_stream().map_err(std::io::Error::other).boxed(),
        range,
    })
}

/// Resolves the `${env:NAME}` and `${file:PATH}` references of a data-address string from this
/// connector process: its environment, and files given as absolute paths or relative to `data_dir`.
pub fn resolve_references(
    value: String,
    data_dir: &Path,
    env: &dyn Resolver,
) -> Result<String, String> {
    if !has_refs(&value) {
        return Ok(value);
    }
    resolve(&value, data_dir, env)
}

impl DataPlane {
    /// The data address with its references resolved ([`resolve_references`]), just before the source
    /// is opened: the catalog stores them as written, so no secret sits in the database.
    /// Also returns each resolved string with its reference form.
    fn resolve_references(&self, address: Address) -> Result<(Address, Resolved), String> {
        let dir = &self.config.data_dir;
        let mut resolved = Vec::new();
        let mut r = |v: String| {
            let out = resolve_references(v.clone(), dir, &ProcessEnv)?;
            if out != v {
                resolved.push((out.clone(), v));
            }
            Ok::<_, String>(out)
        };
        let address = match address {
            Address::HttpApi {
                url,
                method,
                credentials,
            } => Address::HttpApi {
                url: r(url)?,
                method,
                credentials,
            },
            Address::NgsiLdQuery {
                broker_url,
                entity_type,
                query,
                tenant,
            } => Address::NgsiLdQuery {
                broker_url: r(broker_url)?,
                entity_type,
                query,
                tenant,
            },
            Address::LiveStream {
                source,
                url,
                interval_secs,
            } => Address::LiveStream {
                source,
                url: r(url)?,
                interval_secs,
            },
            file @ Address::File { .. } => file,
        };
        Ok((address, resolved))
    }

    /// What the data sources of this connector may use.
    pub fn source_context(&self) -> SourceContext<'_> {
        SourceContext {
            streaming: &self.http_streaming,
            protocol: &self.http,
            files: self.config.data_dir.join("files"),
            public_url: &self.identity.public_url,
            notifications: &self.notifications,
            auth: SourceAuth {
                tokens: &self.source_tokens,
                credentials: &self.config.source_credentials,
                clock: self.clock.as_ref(),
                http: &self.http,
                data_dir: &self.config.data_dir,
            },
            range: None,
        }
    }

    /// Opens the data source of a dataset for streaming.
    pub async fn open_source(
        &self,
        dataset_id: &str,
        last_event_id: Option<&str>,
        range: Option<super::range::ByteRange>,
    ) -> Result<Opened, AccessError> {
        let doc = self
            .store
            .get(DocKind::Asset, dataset_id)
            .await
            .map_err(|e| AccessError::Internal(e.to_string()))?
            .ok_or_else(|| {
                AccessError::Forbidden(format!("dataset {dataset_id} is no longer published"))
            })?;
        let asset: Asset =
            serde_json::from_value(doc.body).map_err(|e| AccessError::Internal(e.to_string()))?;
        let cx = SourceContext {
            range,
            ..self.source_context()
        };
        let (address, resolved) = self
            .resolve_references(asset.data_address)
            .map_err(|cause| SourceError::Reference {
                dataset: dataset_id.to_owned(),
                cause,
            })?;
        // The source's errors (for the log) show the references, not what they resolved to.
        let opened = async {
            match address {
                Address::HttpApi {
                    url,
                    method,
                    credentials,
                } => {
                    http::HttpSource {
                        url,
                        method,
                        credentials,
                    }
                    .open(&cx)
                    .await
                }
                Address::NgsiLdQuery {
                    broker_url,
                    entity_type,
                    query,
                    tenant,
                } => {
                    ngsi_query::NgsiLdQuery {
                        broker_url,
                        entity_type,
                        query,
                        tenant,
                    }
                    .open(&cx)
                    .await
                }
                Address::File { path, media_type } => {
                    file::FileSource { path, media_type }.open(&cx).await
                }
                Address::LiveStream {
                    source: StreamSource::Sse,
                    url,
                    ..
                } => {
                    sse::SseSource {
                        url,
                        last_event_id: last_event_id.map(str::to_owned),
                    }
                    .open(&cx)
                    .await
                }
                Address::LiveStream {
                    source: StreamSource::HttpPoll,
                    url,
                    interval_secs,
                } => {
                    poll::PolledHttp {
                        url,
                        interval_secs: interval_secs.unwrap_or(5),
                    }
                    .open(&cx)
                    .await
                }
                Address::LiveStream {
                    source: StreamSource::NgsiLdSubscription,
                    url,
                    interval_secs,
                } => {
                    let entity_type = asset.data_model.clone().ok_or_else(|| {
                        AccessError::Internal(format!(
                            "dataset {dataset_id} streams an NGSI-LD subscription but names no dataModel (entity type)"
                        ))
                    })?;
                    ngsi_subscription::NgsiLdSubscription {
                        broker: url,
                        entity_type,
                        interval_secs,
                    }
                    .open(&cx)
                    .await
                }
            }
        }
        .await;
        opened.map_err(|e| match e {
            AccessError::Source(e) => AccessError::Source(e.hiding(&resolved)),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_from_the_process_and_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("secrets/key"), "s3cret\n").unwrap();
        let env = |n: &str| (n == "CITY_KEY").then(|| "k1".to_owned());
        let got = resolve_references(
            "https://a.example/p?k=${env:CITY_KEY}&f=${file:secrets/key}".into(),
            dir.path(),
            &env,
        )
        .unwrap();
        assert_eq!(got, "https://a.example/p?k=k1&f=s3cret");
        // Plain values are left alone; missing ones say which reference (for the provider's log).
        assert_eq!(
            resolve_references("https://a.example/$x".into(), dir.path(), &env).unwrap(),
            "https://a.example/$x"
        );
        let missing =
            resolve_references("https://a.example/?k=${env:OTHER}".into(), dir.path(), &env)
                .unwrap_err();
        assert!(missing.contains("OTHER"), "{missing}");
        // No climbing out of the data directory.
        assert!(
            resolve_references("https://a.example/?k=${file:../x}".into(), dir.path(), &env)
                .is_err()
        );
        // The consumer hears neither the reference nor the URL.
        let e = SourceError::Reference {
            dataset: "d".into(),
            cause: missing,
        };
        assert!(!e.public().contains("OTHER") && !e.public().contains("a.example"));
        let status = SourceError::Status {
            url: "https://a.example/?k=k1".into(),
            status: reqwest::StatusCode::BAD_GATEWAY,
        };
        assert!(!status.public().contains("k1"), "{}", status.public());
        // The log's message shows the reference, not the key.
        let resolved = vec![(
            "https://a.example/?k=k1".to_owned(),
            "https://a.example/?k=${env:CITY_KEY}".to_owned(),
        )];
        assert_eq!(
            status.hiding(&resolved).to_string(),
            "the source https://a.example/?k=${env:CITY_KEY} answered 502 Bad Gateway"
        );
    }

    #[test]
    fn only_a_401_answer_is_a_refused_token() {
        let status = |s: u16| SourceError::Status {
            url: "http://source.example/401".into(),
            status: reqwest::StatusCode::from_u16(s).unwrap(),
        };
        assert!(status(401).is_unauthorized());
        assert!(!status(403).is_unauthorized());
        assert!(!status(500).is_unauthorized());
        // A message that merely mentions 401 (here in the URL) is not a refusal.
        let unreachable = SourceError::Unreachable {
            url: "http://source.example/401".into(),
            cause: "connection refused".into(),
        };
        assert!(!unreachable.is_unauthorized());
        assert_eq!(
            status(401).to_string(),
            "the source http://source.example/401 answered 401 Unauthorized"
        );
    }
}
