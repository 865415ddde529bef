//! The caap connector: the imperative shell around caap's domain crates.
//!
//! It owns everything with side effects: typed configuration ([`config`]), the clock
//! ([`clock`]), persistence with SeaORM ([`store`]), the HTTP surfaces with actix-web ([`http`]:
//! the DSP protocol endpoints and the management API), the consumer-side client for other
//! connectors ([`federation`]), start-up and shutdown ([`server`]), set-up of a new connector
//! ([`init`]), HTTPS ([`tls`]), the built-in sensor simulator ([`sim`]) and the multi-city
//! walk-through ([`demo`]). The binary `caap` (`src/main.rs`) is a
//! thin command-line layer over these modules.
//!
//! Business rules live in the domain crates (`caap-catalog`, `caap-contracts`, `caap-policy`,
//! `caap-identity`); this crate wires them to sockets and databases.

pub mod authority;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod dcp;
pub mod demo;
pub mod enforce;
pub mod federation;
pub mod http;
pub mod init;
pub mod ledger;
pub mod negotiation;
pub mod process;
pub mod processor;
pub mod server;
pub mod service;
pub mod sim;
pub mod store;
pub mod tls;
pub mod transfer;
