//! Schema migrations. Append-only: never edit a released migration, add a new one.
//! The DDL is the common subset of SQLite and PostgreSQL.

use sea_orm_migration::async_trait::async_trait;
use sea_orm_migration::prelude::*;

/// All migrations, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(M0001Initial)]
    }
}

/// Documents (assets, policies, offers), their references, and the federated catalog cache.
#[derive(Debug)]
struct M0001Initial;

impl MigrationName for M0001Initial {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

const UP_0001: &[&str] = &[
    "CREATE TABLE documents (
        kind VARCHAR(16) NOT NULL,
        id VARCHAR(200) NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        version BIGINT NOT NULL,
        PRIMARY KEY (kind, id))",
    "CREATE TABLE doc_refs (
        from_kind VARCHAR(16) NOT NULL,
        from_id VARCHAR(200) NOT NULL,
        to_kind VARCHAR(16) NOT NULL,
        to_id VARCHAR(200) NOT NULL,
        PRIMARY KEY (from_kind, from_id, to_kind, to_id))",
    "CREATE INDEX doc_refs_to ON doc_refs (to_kind, to_id)",
    "CREATE TABLE catalog_sources (
        address VARCHAR(2048) NOT NULL PRIMARY KEY,
        participant_id VARCHAR(2048) NOT NULL,
        city VARCHAR(500) NOT NULL,
        fetched_at BIGINT NOT NULL,
        dataset_count BIGINT NOT NULL)",
    "CREATE TABLE cached_datasets (
        address VARCHAR(2048) NOT NULL,
        dataset_id VARCHAR(2048) NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (address, dataset_id))",
];

const DOWN_0001: &[&str] = &[
    "DROP TABLE cached_datasets",
    "DROP TABLE catalog_sources",
    "DROP INDEX doc_refs_to",
    "DROP TABLE doc_refs",
    "DROP TABLE documents",
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait]
impl MigrationTrait for M0001Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP_0001).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN_0001).await
    }
}
