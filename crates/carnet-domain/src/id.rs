//! Identifiers. Every id is a UUIDv7 drawn from the injected clock plus 74 random bits: ids
//! sort by creation time (good B-tree locality, no hotspot on distributed engines when the key
//! leads with the holder) and reveal no counts, unlike sequences (`/Patient/1041` tells how many
//! patients exist).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;

/// Draws a new UUIDv7 for the instant `now`.
pub fn new_v7(now: Timestamp) -> Uuid {
    let secs = u64::try_from(now.unix_seconds()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, now.subsec_nanos());
    Uuid::new_v7(ts)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid identifier")]
pub struct InvalidId;

macro_rules! typed_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new(now: Timestamp) -> Self {
                Self(new_v7(now))
            }
            pub const fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Uuid::try_parse(s).map(Self).map_err(|_| InvalidId)
            }
        }
    };
}

typed_id!(
    /// The id of a holder's space (not the INS, which is personal data and never an URL part).
    HolderId
);
typed_id!(
    /// The id of a stored attachment (document content, message attachment).
    AttachmentId
);

typed_id!(
    /// The id of one version of a document of the shared medical record (DM-1).
    DocumentId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v7_time_ordered_and_parse_back() {
        let a = HolderId::new(Timestamp::from_unix_seconds(1_000));
        let b = HolderId::new(Timestamp::from_unix_seconds(2_000));
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b, "later ids sort after earlier ones");
        assert_eq!(a.to_string().parse::<HolderId>(), Ok(a));
        assert_eq!("42".parse::<HolderId>(), Err(InvalidId));
    }

    #[test]
    fn ids_of_the_same_millisecond_differ() {
        let t = Timestamp::from_unix_seconds(1_000);
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| HolderId::new(t)).collect();
        assert_eq!(ids.len(), 1000);
    }
}
