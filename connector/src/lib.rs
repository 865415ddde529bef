//! The caap connector: the imperative shell around caap's domain crates.
//!
//! It owns everything with side effects: typed configuration ([`config`]), the clock
//! ([`clock`]), persistence with SeaORM ([`store`]), the HTTP surfaces with actix-web ([`http`]:
//! the DSP protocol endpoints and the management API), the catalog service ([`catalog`]: documents, the DSP catalog, other
//! connectors' catalogs), start-up and shutdown ([`server`]), set-up of a new connector
//! ([`init`]) and HTTPS ([`tls`]). With the `demo` feature (on by default, off in release builds for
//! servers) it also holds the built-in sensor simulator (`sim`) and the multi-city walk-through
//! (`demo`). The binary `caap` (`src/main.rs`) is a thin command-line layer over these modules.
//!
//! Business rules live in the domain crates (`caap-catalog`, `caap-contracts`, `caap-policy`,
//! `caap-identity`); this crate wires them to sockets and databases.

pub mod authority;
pub mod catalog;
pub mod catalog_files;
pub mod clock;
pub mod config;
pub mod consent;
#[cfg(feature = "demo")]
pub mod demo;
pub mod enforce;
pub mod error;
pub mod flows;
pub mod http;
pub mod init;
pub mod ledger;
pub mod metrics;
pub mod model;
pub mod negotiation;
pub mod open;
pub mod outbound;
pub mod portal;
pub mod process;
pub mod processor;
pub mod ratelimit;
pub mod server;
pub mod service;
#[cfg(feature = "demo")]
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod transfer;
pub mod trust;
