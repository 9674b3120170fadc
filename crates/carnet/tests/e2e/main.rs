//! The end-to-end tests of Carnet: each module drives the real `carnet` binary over HTTP
//! against real peers (PostgreSQL, SMTP, S3, an OpenID provider, Chromium). One test binary
//! for the crate: add a module here rather than a new file under `tests/`.
#![allow(clippy::disallowed_methods)] // tests read the clock and the environment

mod common;

mod agenda;
mod api_fuzz;
mod auth;
mod authorisations;
mod carers;
mod catalogue;
mod contact;
mod crash;
mod documents;
mod export;
mod faults;
mod fhir;
mod legacy;
mod letters;
mod messaging;
mod notifications;
mod oidc;
mod passkeys;
mod password;
mod populate;
mod pro;
mod profile;
mod reimbursements;
mod server;
mod web;
