//! The domain's integration tests: the access policy against its reference model, and the
//! parsers of outside input under proptest. One test binary for the crate.

mod access_policy;
mod parsers_fuzz;
