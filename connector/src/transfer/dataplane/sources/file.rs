//! A file under `<data_dir>/files`, read in chunks of [`CHUNK`] bytes (one in memory at a time).

use actix_web::web::Bytes;
use futures_util::stream::{BoxStream, StreamExt};

use super::{AccessError, Opened, Source, SourceContext, SourceError};

/// Bytes read from a file per chunk (each read is a trip to tokio's blocking pool: fewer, larger reads).
const CHUNK: usize = 512 * 1024;

/// A file, by its path under the files directory.
#[derive(Debug, Clone)]
pub struct FileSource {
    /// The path, relative to the files directory.
    pub path: String,
    /// Its media type, if the asset names one.
    pub media_type: Option<String>,
}

impl Source for FileSource {
    async fn open(self, cx: &SourceContext<'_>) -> Result<Opened, AccessError> {
        let FileSource { path, media_type } = self;
        let full = cx.files.join(&path);
        let canonical = match tokio::fs::canonicalize(&full).await {
            Ok(c) => c,
            Err(cause) => return Err(SourceError::File { path, cause }.into()),
        };
        let base = tokio::fs::canonicalize(&cx.files)
            .await
            .map_err(|e| AccessError::Internal(format!("the files directory: {e}")))?;
        if !canonical.starts_with(&base) {
            return Err(AccessError::Forbidden(format!(
                "file {path} is outside the files directory"
            )));
        }
        let file = match tokio::fs::File::open(&canonical).await {
            Ok(f) => f,
            Err(cause) => return Err(SourceError::File { path, cause }.into()),
        };
        let length = file.metadata().await.ok().map(|m| m.len());
        Ok(Opened {
            content_type: media_type,
            length,
            stream: file_stream(file),
        })
    }
}

/// A file read as a stream of chunks of [`CHUNK`] bytes (one in memory at a time).
pub fn file_stream(file: tokio::fs::File) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    futures_util::stream::try_unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; CHUNK];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), file)))
    })
    .boxed()
}
