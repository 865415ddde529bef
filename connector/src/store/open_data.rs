//! Open data in the store: anonymous downloads of public datasets, counted per dataset and (UTC) day. Nothing
//! about the client is kept.

use sea_orm::{ConnectionTrait, Statement};
use serde::Serialize;

use super::{Store, StoreError};

/// Downloads of one public dataset on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadCount {
    /// The dataset (asset) id.
    pub dataset_id: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// How many downloads started that day.
    pub downloads: u64,
}

impl Store {
    /// Counts one download of `dataset_id` on `day` (`YYYY-MM-DD`), in one atomic statement.
    pub async fn count_open_download(&self, dataset_id: &str, day: &str) -> Result<(), StoreError> {
        let backend = self.db.get_database_backend();
        let sql = match backend {
            sea_orm::DbBackend::Postgres => {
                "INSERT INTO open_downloads (dataset_id, day, downloads) VALUES ($1, $2, 1) \
                 ON CONFLICT (dataset_id, day) DO UPDATE SET downloads = open_downloads.downloads + 1"
            }
            _ => {
                "INSERT INTO open_downloads (dataset_id, day, downloads) VALUES (?1, ?2, 1) \
                 ON CONFLICT (dataset_id, day) DO UPDATE SET downloads = open_downloads.downloads + 1"
            }
        };
        let _gate = self.write_gate().await;
        self.db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [dataset_id.into(), day.into()],
            ))
            .await?;
        Ok(())
    }

    /// The download counts from day `since` (`YYYY-MM-DD`, inclusive) on, by day then dataset.
    pub async fn open_downloads(&self, since: &str) -> Result<Vec<DownloadCount>, StoreError> {
        let backend = self.db.get_database_backend();
        let sql = match backend {
            sea_orm::DbBackend::Postgres => {
                "SELECT dataset_id, day, downloads FROM open_downloads WHERE day >= $1 \
                 ORDER BY day, dataset_id"
            }
            _ => {
                "SELECT dataset_id, day, downloads FROM open_downloads WHERE day >= ?1 \
                 ORDER BY day, dataset_id"
            }
        };
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, [since.into()]))
            .await?;
        let corrupt =
            |e: sea_orm::DbErr| StoreError::Corrupt("open_downloads".into(), e.to_string());
        rows.into_iter()
            .map(|r| {
                let downloads: i64 = r.try_get("", "downloads").map_err(corrupt)?;
                Ok(DownloadCount {
                    dataset_id: r.try_get("", "dataset_id").map_err(corrupt)?,
                    day: r.try_get("", "day").map_err(corrupt)?,
                    downloads: u64::try_from(downloads).unwrap_or(0),
                })
            })
            .collect()
    }
}
