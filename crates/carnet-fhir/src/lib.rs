//! FHIR R4 JSON mapping of Carnet's domain (FR Core where it applies). Pure: JSON in, domain
//! types out, and back. No I/O.

pub mod eob;
pub mod patient;
pub mod practitioner;
pub mod resources;
