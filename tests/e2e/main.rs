#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "end-to-end test code: a failed step should stop the test loudly"
)]
//! End-to-end tests: real `caap` processes on loopback, driven over HTTP and the command line.
//! One test binary for the connector package (see HOUSE-STYLE §2.7).

mod support;

#[path = "../support/dsp_schema.rs"]
mod dsp_schema;
#[path = "../support/linked_data.rs"]
mod jsonld;

mod bigdata;
mod catalog;
mod catalog_files;
mod cities;
mod cli;
mod consent;
mod dcp_refusals;
mod federation;
mod hostile;
mod identity;
mod input;
mod linked_data;
mod negotiation;
mod oidc;
mod open_data;
mod peer;
mod policy;
mod portal;
mod portal_flow;
mod sim;
mod tls;
mod transfers;
