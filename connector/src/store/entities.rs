//! SeaORM entities. They never leave the `store` module: the rest of caap sees domain types. The process tables
//! (negotiations, transfers) have no entity: [`super::processes`] builds their statements for the table at hand.

/// Assets, policies and offers, each a JSON document keyed by (kind, id).
pub mod document {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "documents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub body: String,
        pub created_at: i64,
        pub updated_at: i64,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// References between documents (an offer names its assets and policies).
pub mod doc_ref {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "doc_refs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub from_kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub from_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub to_kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub to_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Finalized contract agreements.
pub mod agreement {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "agreements")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub negotiation_id: String,
        pub role: String,
        pub provider_id: String,
        pub consumer_id: String,
        pub dataset_id: String,
        pub body: String,
        pub signed_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The MIM3 transaction ledger: append-only, hash-chained.
pub mod ledger {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ledger")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        pub at_micros: i64,
        pub kind: String,
        pub subject: String,
        pub payload: String,
        pub prev_hash: String,
        pub hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
