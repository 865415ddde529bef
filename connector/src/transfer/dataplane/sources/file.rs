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
        let (Some(asked), Some(total)) = (cx.range, length) else {
            return Ok(Opened {
                content_type: media_type,
                length,
                stream: file_stream(file),
                range: None,
            });
        };
        // A range: seek to its first byte and read no further than its last.
        let part = asked.within(total).ok_or_else(|| {
            AccessError::RangeNotSatisfiable(format!(
                "the range starts at byte {} of {total}",
                asked.first
            ))
        })?;
        let mut file = file;
        {
            use tokio::io::AsyncSeekExt;
            if let Err(cause) = file.seek(std::io::SeekFrom::Start(part.first)).await {
                return Err(SourceError::File { path, cause }.into());
            }
        }
        use tokio::io::AsyncReadExt;
        Ok(Opened {
            content_type: media_type,
            length: Some(part.len()),
            stream: file_stream(file.take(part.len())),
            range: Some(part),
        })
    }
}

/// A file (or part of one) read as a stream of chunks of [`CHUNK`] bytes (one in memory at a time).
pub fn file_stream<R>(file: R) -> BoxStream<'static, Result<Bytes, std::io::Error>>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
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
