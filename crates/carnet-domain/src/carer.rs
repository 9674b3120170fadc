//! MI-5: carers ("aidants"). A holder (or their legal representative) invites another holder to
//! read chosen categories of the space, until a date or until revoked; the invited person
//! accepts with the one-time code the holder handed them, from their own space. Only then is the
//! grant filed ([`accept`]): nobody becomes a carer without agreeing to, and nobody is made one
//! by a holder who merely typed their name. The grant is a directory entry like a
//! professional's (`Grantee::Carer`): revocable at once (S-4), every read decided by
//! [`crate::access::decide`], traced and told to the holder (AC-6). A carer is never a legal
//! representative: they read, and only what the grant covers.

use serde::{Deserialize, Serialize};

use crate::access::{Category, Grant, GrantBasis, Grantee};
use crate::clock::Timestamp;
use crate::id::HolderId;
use crate::lifecycle::Lifecycle;

/// How long an invitation's code can be used (our choice: a week, then the holder invites again).
pub const INVITATION_SECONDS: i64 = 7 * 24 * 3600;

/// What the holder offers the carer, kept sealed with the invitation until it is accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// `None`: every category of the space.
    pub categories: Option<Vec<Category>>,
    /// `None`: until revoked.
    pub until: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// Why an invitation cannot be made or accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no category chosen")]
    NoCategory,
    #[error("the end date has passed")]
    EndPassed,
    #[error("the invitation expired")]
    Expired,
    #[error("one does not help oneself in one's own space")]
    OwnSpace,
    #[error("the space is not open")]
    SpaceNotOpen,
}

impl Invitation {
    /// An invitation for `categories` (`None`: all) until `until` (`None`: until revoked),
    /// made at `now`. Refused without a category or with an end already passed.
    pub fn new(
        categories: Option<Vec<Category>>,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Self, Refusal> {
        let categories = match categories {
            Some(mut cs) => {
                cs.sort();
                cs.dedup();
                if cs.is_empty() {
                    return Err(Refusal::NoCategory);
                }
                (cs.len() < Category::ALL.len()).then_some(cs)
            }
            None => None,
        };
        if until.is_some_and(|u| u <= now) {
            return Err(Refusal::EndPassed);
        }
        Ok(Invitation {
            categories,
            until,
            created_at: now,
        })
    }

    /// The moment the code stops working.
    pub fn expires_at(&self) -> Timestamp {
        self.created_at.plus_seconds(INVITATION_SECONDS)
    }
}

/// `carer` accepts, at `now`, an invitation to `holder`'s space in state `lifecycle`: the grant
/// to file in the space's directory. Refused once the code expired or the grant's end passed,
/// in one's own space, and in a space that is not open (closed, deceased, suspended...).
pub fn accept(
    invitation: &Invitation,
    holder: HolderId,
    carer: HolderId,
    lifecycle: &Lifecycle,
    now: Timestamp,
) -> Result<Grant, Refusal> {
    if carer == holder {
        return Err(Refusal::OwnSpace);
    }
    if now >= invitation.expires_at() {
        return Err(Refusal::Expired);
    }
    if invitation.until.is_some_and(|u| u <= now) {
        return Err(Refusal::EndPassed);
    }
    if !matches!(lifecycle, Lifecycle::Open { .. } | Lifecycle::Activated { .. }) {
        return Err(Refusal::SpaceNotOpen);
    }
    Ok(Grant {
        grantee: Grantee::Carer { id: carer },
        categories: invitation.categories.clone(),
        until: invitation.until,
        express: false,
        basis: GrantBasis::Holder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_unix_seconds(s)
    }

    fn ids() -> (HolderId, HolderId) {
        (HolderId::new(t(1)), HolderId::new(t(2)))
    }

    #[test]
    fn an_invitation_needs_a_category_and_a_future_end() {
        assert_eq!(
            Invitation::new(Some(vec![]), None, t(100)),
            Err(Refusal::NoCategory)
        );
        assert_eq!(
            Invitation::new(None, Some(t(100)), t(100)),
            Err(Refusal::EndPassed)
        );
        let i = Invitation::new(
            Some(vec![Category::Reports, Category::Reports]),
            Some(t(101)),
            t(100),
        )
        .unwrap();
        assert_eq!(i.categories, Some(vec![Category::Reports]));
        // Every category ticked is the whole space.
        let all = Invitation::new(Some(Category::ALL.to_vec()), None, t(100)).unwrap();
        assert_eq!(all.categories, None);
    }

    #[test]
    fn the_code_works_for_a_week_to_the_second() {
        let (holder, carer) = ids();
        let i = Invitation::new(None, None, t(1_000)).unwrap();
        let open = Lifecycle::Activated { since: t(0) };
        let last = t(1_000 + INVITATION_SECONDS - 1);
        let g = accept(&i, holder, carer, &open, last).unwrap();
        assert_eq!(g.grantee, Grantee::Carer { id: carer });
        assert_eq!(g.basis, GrantBasis::Holder);
        assert_eq!(
            accept(&i, holder, carer, &open, t(1_000 + INVITATION_SECONDS)),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn nobody_is_their_own_carer_and_closed_spaces_take_none() {
        let (holder, carer) = ids();
        let i = Invitation::new(None, Some(t(5_000)), t(1_000)).unwrap();
        let open = Lifecycle::Open { since: t(0) };
        assert_eq!(
            accept(&i, holder, holder, &open, t(1_001)),
            Err(Refusal::OwnSpace)
        );
        assert_eq!(
            accept(&i, holder, carer, &Lifecycle::Closed { at: t(0) }, t(1_001)),
            Err(Refusal::SpaceNotOpen)
        );
        assert_eq!(
            accept(&i, holder, carer, &Lifecycle::Suspended { at: t(0) }, t(1_001)),
            Err(Refusal::SpaceNotOpen)
        );
        assert_eq!(
            accept(&i, holder, carer, &open, t(5_000)),
            Err(Refusal::EndPassed)
        );
        assert_eq!(
            accept(&i, holder, carer, &open, t(4_999)).unwrap().until,
            Some(t(5_000))
        );
    }
}
