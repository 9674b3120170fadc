//! The integration tests of the store, on SQLite and on PostgreSQL (with
//! `CARNET_TEST_DATABASE_URL`): the storage suite, the blob stores, the gate as built against
//! the policy. One test binary for the crate: add a module here rather than a new file.
#![allow(clippy::disallowed_methods)] // the storage tests read holder rows as stored, the clock and the environment

mod blob_suite;
mod gate_property;
mod sharding;
mod storage_suite;
mod support;
