//! The storage suite: carers (MI-5) — invitation, acceptance, reads by the grant, the end.

use carnet_domain::carer::{INVITATION_SECONDS, Invitation};

use super::*;

suite!(a_carer_is_invited_accepts_reads_by_the_grant_and_is_ended_mi5);

fn kinds(outbox: Vec<(String, String, i64, Option<i64>)>) -> Vec<String> {
    outbox.into_iter().map(|m| m.0).collect()
}

pub(super) async fn a_carer_is_invited_accepts_reads_by_the_grant_and_is_ended_mi5(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let holder = store.create_holder("activated", ADMIN).await.unwrap();
    let carer = store
        .create_holder(
            "activated",
            br#"{"given_names":["Lucas"],"birth_name":"BERNARD"}"#,
        )
        .await
        .unwrap();
    let other = store.create_holder("activated", b"{}").await.unwrap();
    let side = own_side(&store, holder).await;
    let now = clock.now();
    let report = ItemFacts {
        category: Category::Reports,
        ..prescription()
    };
    let read = |who: HolderId, facts: ItemFacts| {
        let gate = gate.clone();
        async move {
            gate.check(
                holder,
                &Actor::Carer { id: who },
                Action::Read,
                "documents",
                &facts,
                &Context::default(),
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(read(carer, report.clone()).await.reason, Reason::NoGrant);

    // The holder invites for reports, 30 days; the code waits, sealed, until accepted.
    let until = now.plus_seconds(30 * 86_400);
    let invitation = Invitation::new(Some(vec![Category::Reports]), Some(until), now).unwrap();
    let (code, expires) = side.invite_carer(&invitation).await.unwrap();
    assert_eq!(expires, now.plus_seconds(INVITATION_SECONDS));
    assert_eq!(side.carer_invitations().await.unwrap().len(), 1);

    // Accepted as typed (lower case, spaces): the grant is filed, the code consumed.
    let typed = code.to_lowercase().replace('-', " ");
    assert_eq!(gate.accept_carer_invitation(carer, &typed).await.unwrap(), holder);
    assert!(matches!(
        gate.accept_carer_invitation(other, &code).await,
        Err(StoreError::Mismatch)
    ));
    assert!(side.carer_invitations().await.unwrap().is_empty());
    assert!(store.helps(carer, holder).await.unwrap());
    assert!(!store.helps(other, holder).await.unwrap());
    let helped = store.helped_by(carer).await.unwrap();
    assert_eq!(
        (helped.len(), helped[0].holder, helped[0].until),
        (1, holder, Some(until))
    );
    let grant = gate.carer_grant(holder, carer).await.unwrap().unwrap();
    assert_eq!(grant.categories, Some(vec![Category::Reports]));
    assert!(kinds(store.outbox_of(holder).await.unwrap()).contains(&"carer_accepted".to_string()));

    // Reads by the grant: reports yes (traced and told like a professional's), the rest no,
    // nothing written, nobody else through it.
    let d = read(carer, report.clone()).await;
    assert_eq!((d.allowed, d.reason), (true, Reason::Carer));
    assert!(notices(&store, holder).await.contains(&"access".to_string()));
    assert_eq!(read(carer, prescription()).await.reason, Reason::NoGrant);
    assert_eq!(read(other, report.clone()).await.reason, Reason::NoGrant);
    let write = gate
        .check(
            holder,
            &Actor::Carer { id: carer },
            Action::Create,
            "document",
            &report,
            &Context::default(),
        )
        .await
        .unwrap();
    assert_eq!(write.reason, Reason::CarerReadsOnly);
    assert!(
        gate.holder_side(holder, &Actor::Carer { id: carer })
            .await
            .unwrap()
            .is_none()
    );
    assert!(gate.carer_grant(carer, carer).await.unwrap().is_none());

    // The directory's general update neither drops nor adds a carer (only acceptance and end do).
    side.update_access_policy(|p| {
        p.grants.clear();
        p.grants.push(Grant::by_holder(Grantee::Carer { id: other }));
    })
    .await
    .unwrap();
    assert!(read(carer, report.clone()).await.allowed);
    assert!(!read(other, report.clone()).await.allowed);

    // The grant's end, to the second.
    clock.set(until);
    assert!(!read(carer, report.clone()).await.allowed);
    assert!(store.helped_by(carer).await.unwrap().is_empty());
    assert!(!store.helps(carer, holder).await.unwrap());
    clock.set(now.plus_seconds(60));

    // The holder ends it: grant and index go together, the carer is told.
    assert!(side.end_carer(carer).await.unwrap());
    assert!(!side.end_carer(carer).await.unwrap());
    assert!(!read(carer, report.clone()).await.allowed);
    assert!(store.helped_by(carer).await.unwrap().is_empty());
    assert!(kinds(store.outbox_of(carer).await.unwrap()).contains(&"carer_ended".to_string()));

    // A code works a week; nobody accepts their own; a carer may stop, the holder is told.
    let all = Invitation::new(None, None, clock.now()).unwrap();
    let (own, _) = side.invite_carer(&all).await.unwrap();
    assert!(matches!(
        gate.accept_carer_invitation(holder, &own).await,
        Err(StoreError::Invalid(m)) if m.contains("propre espace")
    ));
    let (late, _) = side.invite_carer(&all).await.unwrap();
    clock.advance_seconds(INVITATION_SECONDS);
    assert!(matches!(
        gate.accept_carer_invitation(carer, &late).await,
        Err(StoreError::Invalid(m)) if m.contains("expiré")
    ));
    assert!(side.carer_invitations().await.unwrap().is_empty());
    let (fresh, _) = side
        .invite_carer(&Invitation::new(None, None, clock.now()).unwrap())
        .await
        .unwrap();
    gate.accept_carer_invitation(carer, &fresh).await.unwrap();
    assert!(read(carer, prescription()).await.allowed);
    assert!(store.stop_helping(carer, holder).await.unwrap());
    assert!(!read(carer, prescription()).await.allowed);
    assert!(kinds(store.outbox_of(holder).await.unwrap()).contains(&"carer_withdrew".to_string()));

    // A closed space takes no carer.
    let (closing, _) = side
        .invite_carer(&Invitation::new(None, None, clock.now()).unwrap())
        .await
        .unwrap();
    store
        .transition(holder, carnet_domain::Event::Close)
        .await
        .unwrap();
    assert!(matches!(
        gate.accept_carer_invitation(carer, &closing).await,
        Err(StoreError::Invalid(_))
    ));
}
