//! The space itself, as its holder or a legal representative acting in it may change it: the
//! authorisation directory (AC-3, AC-4), contact data (ID-2), notification preferences, agenda
//! feeds (AG-2), connected apps (CA-3). Reached only through [`Gate::holder_side`], which hands
//! a [`HolderSide`] to those two and to nobody else (S-1): the `Store` methods behind it are
//! `pub(crate)`, so no code outside this crate changes a space without that binding.
//!
//! ```compile_fail
//! // The directory is not reachable on the store itself (only through `Gate::holder_side`).
//! async fn reach(store: &carnet_store::Store, h: carnet_domain::HolderId) {
//!     let _ = store.update_access_policy(h, |p| p.hide_all = false).await;
//! }
//! ```
//!
//! ```compile_fail
//! async fn reach(store: &carnet_store::Store, h: carnet_domain::HolderId) {
//!     let _ = store.access_policy(h).await;
//! }
//! ```
//!
//! ```compile_fail
//! async fn reach(store: &carnet_store::Store, h: carnet_domain::HolderId) {
//!     let _ = store.notification_preferences(h).await;
//! }
//! ```
//!
//! A change by a legal representative is traced in the space's history like any access by
//! someone other than the holder (AC-6), never told to the holder as a notice.

use carnet_domain::HolderId;
use carnet_domain::access::{AccessPolicy, Action, Actor, AppId, Category, Decision, Grantee, Reason};
use uuid::Uuid;

use crate::agenda::Feed;
use crate::catalogue::Service;
use crate::error::StoreError;
use crate::gate::{Access, Gate, GateFacts};
use crate::outbox::NotificationPreferences;
use crate::traces::Withheld;

/// The holder, or a legal representative currently acting in the holder's space (see the
/// module's doc). Made only by [`Gate::holder_side`].
#[derive(Clone, Debug)]
pub struct HolderSide {
    gate: Gate,
    holder: HolderId,
    actor: Actor,
    /// The space's facts the gate read when it made the handle (its state; what a
    /// representative's trace is recorded against).
    space: GateFacts,
}

impl Gate {
    /// S-1: the space `holder` as `actor` may change it, if `actor` is that holder or one of
    /// their current legal representatives (the gate's own binding, `access::enters`); `None`
    /// for anyone else, or a space that does not exist (AC-8).
    pub async fn holder_side(
        &self,
        holder: HolderId,
        actor: &Actor,
    ) -> Result<Option<HolderSide>, StoreError> {
        if !matches!(actor, Actor::Holder { .. } | Actor::Representative { .. }) {
            return Ok(None);
        }
        // LC-5b: a suspended space has no holder's side, whoever asks.
        let space = self.space(holder, actor).await?;
        Ok(space
            .filter(|f| !f.lifecycle.is_suspended())
            .map(|space| HolderSide {
                gate: self.clone(),
                holder,
                actor: actor.clone(),
                space,
            }))
    }

    /// CA-3: whether `holder`'s directory still grants the app `client_id` (a token's
    /// introspection: revoked there, the token dies).
    pub async fn app_granted(&self, holder: HolderId, client_id: &str) -> Result<bool, StoreError> {
        let app = Grantee::App {
            id: AppId(client_id.to_string()),
        };
        let (policy, _) = self.store.access_policy(holder).await?;
        Ok(policy.grants.iter().any(|g| g.grantee == app))
    }
}

impl HolderSide {
    pub fn holder(&self) -> HolderId {
        self.holder
    }

    pub(crate) fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Whether a legal representative (not the holder) is acting.
    pub fn representative(&self) -> bool {
        matches!(self.actor, Actor::Representative { .. })
    }

    /// AC-6: a representative's change to the space is traced (the holder's own is not). LC-5,
    /// LC-6: a representative changes nothing in a space that is not open (after the holder's
    /// death they keep reading only).
    pub(crate) async fn trace_change(
        &self,
        item: &str,
        category: Option<Category>,
    ) -> Result<(), StoreError> {
        if !self.representative() {
            return Ok(());
        }
        if !matches!(
            self.space.lifecycle,
            carnet_domain::Lifecycle::Open { .. } | carnet_domain::Lifecycle::Activated { .. }
        ) {
            return Err(StoreError::Invalid(
                "cet espace est archivé : il se consulte, il ne se modifie plus / this space is archived: it can be read, not changed".into(),
            ));
        }
        let d = Decision {
            allowed: true,
            reason: Reason::Representative,
            emergency: false,
        };
        self.gate
            .trace_decision(
                Access {
                    holder: self.holder,
                    actor: &self.actor,
                    action: Action::Update,
                    item,
                    category,
                    withheld: Withheld::default(),
                },
                d,
                &self.space,
                &Default::default(),
            )
            .await
    }

    /// The space as stored: its lifecycle and its opened administrative data (ID-1, ID-2).
    pub async fn record(&self) -> Result<crate::HolderRecord, StoreError> {
        #[allow(clippy::disallowed_methods)] // handed out by the gate (S-1)
        let record = self.gate.store.holder(self.holder).await;
        record
    }

    /// The authorisation directory and its version (AC-3).
    pub async fn access_policy(&self) -> Result<(AccessPolicy, i64), StoreError> {
        self.gate.store.access_policy(self.holder).await
    }

    /// Changes the directory (AC-3, AC-4), at once (S-4). Carers' grants stay as they were:
    /// they are filed by the carer's acceptance and ended by [`HolderSide::end_carer`] only,
    /// together with their index (MI-5, `carers`).
    pub async fn update_access_policy(
        &self,
        change: impl Fn(&mut AccessPolicy),
    ) -> Result<AccessPolicy, StoreError> {
        self.trace_change("access_policy", None).await?;
        let is_carer = |g: &carnet_domain::access::Grant| matches!(g.grantee, Grantee::Carer { .. });
        self.gate
            .store
            .update_access_policy(self.holder, |p| {
                let carers: Vec<_> = p.grants.iter().filter(|g| is_carer(g)).cloned().collect();
                change(p);
                p.grants.retain(|g| !is_carer(g));
                p.grants.extend(carers);
            })
            .await
    }

    /// ID-2: the corrected administrative data (contact fields).
    pub async fn update_administrative(&self, administrative: &[u8]) -> Result<(), StoreError> {
        self.trace_change("administrative", None).await?;
        self.gate
            .store
            .update_administrative(self.holder, administrative)
            .await
    }

    pub async fn notification_preferences(&self) -> Result<NotificationPreferences, StoreError> {
        self.gate.store.notification_preferences(self.holder).await
    }

    pub async fn set_notification_preferences(
        &self,
        prefs: NotificationPreferences,
    ) -> Result<(), StoreError> {
        self.trace_change("notification_preferences", None).await?;
        self.gate
            .store
            .set_notification_preferences(self.holder, prefs)
            .await
    }

    /// AG-2: the space's calendar feeds.
    pub async fn agenda_feeds(&self) -> Result<Vec<Feed>, StoreError> {
        self.gate.store.agenda_feeds(self.holder).await
    }

    /// A new calendar feed, made by the person logged in (`by`); its secret URL token.
    pub async fn create_agenda_feed(&self, by: HolderId) -> Result<(Feed, String), StoreError> {
        self.trace_change("agenda_feed", None).await?;
        self.gate.store.create_agenda_feed(self.holder, by).await
    }

    pub async fn revoke_agenda_feed(&self, id: Uuid) -> Result<(), StoreError> {
        self.trace_change("agenda_feed", None).await?;
        self.gate.store.revoke_agenda_feed(self.holder, id).await
    }

    /// CA-3: connects a referenced app with the categories ticked (within its convention).
    pub async fn connect_app(
        &self,
        service: &Service,
        ticked: &[Category],
    ) -> Result<Vec<Category>, StoreError> {
        self.trace_change("access_policy", None).await?;
        self.gate.store.connect_app(self.holder, service, ticked).await
    }

    /// CA-3: removes an app's grant and revokes its tokens for this space.
    pub async fn disconnect_app(&self, client_id: &str) -> Result<(), StoreError> {
        self.trace_change("access_policy", None).await?;
        self.gate.store.disconnect_app(self.holder, client_id).await
    }
}
