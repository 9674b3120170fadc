//! Carnet's pure domain core.
//!
//! Types, rules and the clock every time-dependent rule reads. This crate does no I/O:
//! no files, no network, no database, no system time except through [`clock::SystemClock`],
//! which callers inject. Everything here is deterministic given a clock and property-testable.

pub mod access;
pub mod agenda;
pub mod carer;
pub mod catalogue;
pub mod clock;
pub mod document;
pub mod id;
pub mod ins;
pub mod item;
pub mod lifecycle;
pub mod messaging;
pub mod profession;
pub mod profile;
pub mod reimbursement;
pub mod roster;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use id::{AttachmentId, DocumentId, HolderId};
pub use ins::{Ins, InsError};
pub use item::ItemKind;
pub use lifecycle::{Event, Lifecycle, TransitionError};
pub use profession::Profession;
