//! FHIR R4 JSON (FR Core where it applies) and iCalendar mapping of Carnet's domain. Pure: JSON in, domain
//! types out, and back. No I/O.

pub mod eob;
pub mod exchange;
pub mod ical;
pub mod patient;
pub mod practitioner;
pub mod resources;
