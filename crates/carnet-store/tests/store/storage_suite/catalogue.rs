//! The storage suite: catalogue and app tokens.

use super::*;

suite!(app_tokens_follow_consent_convention_and_space_ca3_ca4,);

/// CA-2..CA-4 at the storage level, on both engines: the workflow's compare-and-set, codes used
/// once (a replay revokes what the code gave), refresh rotation (a reuse revokes the family),
/// and tokens that die at once with the grant, the convention (withdrawal or term) and the
/// space (LC-5).
pub(super) async fn app_tokens_follow_consent_convention_and_space_ca3_ca4(env: Env, _e: Engine) {
    use carnet_domain::catalogue::{
        Application, Convention, Declaration, ReferencingRole, RequestedCategory, ServiceCategory, Step,
        default_criteria,
    };
    use carnet_store::catalogue::{CodeGrant, Redeem};
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let criteria = default_criteria();
    let (publisher, _) = store
        .create_referencing_account(ReferencingRole::Publisher, "Éditeur")
        .await
        .unwrap();
    let (commission, _) = store
        .create_referencing_account(ReferencingRole::Commission, "Commission")
        .await
        .unwrap();
    let (minister, token) = store
        .create_referencing_account(ReferencingRole::DecisionMaker, "Décision")
        .await
        .unwrap();
    assert_eq!(
        store.referencing_account(&token).await.unwrap(),
        Some(minister.clone())
    );
    assert_eq!(store.referencing_account("nope").await.unwrap(), None);
    let app = Application {
        name: "Tensio".into(),
        description: "Suivi de la tension artérielle".into(),
        category: ServiceCategory::Prevention,
        redirect_uris: vec!["https://tensio.example/cb".into()],
        requested: vec![RequestedCategory {
            category: Category::Summaries,
            why: "courbes".into(),
        }],
        declarations: criteria
            .iter()
            .map(|c| Declaration {
                criterion: c.id.clone(),
                complies: true,
                evidence: String::new(),
            })
            .collect(),
    };
    let svc = store.submit_service(&publisher, app, &criteria).await.unwrap();
    for c in &criteria {
        let step = Step::CriterionReviewed {
            criterion: c.id.clone(),
            satisfied: true,
            comment: String::new(),
        };
        store
            .apply_service_step(&commission, &svc.client_id, &step, &criteria)
            .await
            .unwrap();
    }
    let opinion = Step::Opinion {
        favourable: true,
        comment: "conforme".into(),
    };
    store
        .apply_service_step(&commission, &svc.client_id, &opinion, &criteria)
        .await
        .unwrap();
    let ends = Timestamp::from_unix_seconds(T0 + 365 * 86_400);
    let approve = Step::Approved {
        convention: Convention {
            categories: vec![Category::Summaries],
            starts: Timestamp::from_unix_seconds(T0),
            ends,
            withdrawal_terms: "un mois".into(),
        },
    };
    let svc = store
        .apply_service_step(&minister, &svc.client_id, &approve, &criteria)
        .await
        .unwrap();
    assert_eq!(
        store.service_steps(&svc.client_id).await.unwrap().len(),
        criteria.len() + 3
    );
    assert_eq!(store.listed_services().await.unwrap().len(), 1, "CA-1");

    let h = store.create_holder("activated", b"{}").await.unwrap();
    assert_eq!(
        own_side(&store, h)
            .await
            .connect_app(&svc, &[Category::Summaries, Category::Imaging])
            .await
            .unwrap(),
        vec![Category::Summaries],
        "CA-3: never beyond the convention"
    );
    let (policy, _) = own_side(&store, h).await.access_policy().await.unwrap();
    let grant = policy
        .grants
        .iter()
        .find(|g| matches!(g.grantee, Grantee::App { .. }))
        .unwrap();
    assert_eq!(grant.until, Some(ends), "the grant ends with the convention");
    let grant_code = |scope: &str| CodeGrant {
        client_id: svc.client_id.clone(),
        holder: h,
        subject: h,
        redirect_uri: "https://tensio.example/cb".into(),
        challenge: "c".repeat(43),
        scope: scope.into(),
    };
    // A code works once; its replay revokes the tokens it gave (RFC 6749 4.1.2).
    let code = store
        .issue_code(&grant_code("patient/Observation.rs offline_access"))
        .await
        .unwrap();
    let (g, family) = store.redeem_code(&code).await.unwrap().unwrap();
    assert_eq!(g.scope, "patient/Observation.rs offline_access");
    let t = store
        .issue_app_tokens(&svc.client_id, h, h, &g.scope, &family, true)
        .await
        .unwrap();
    assert!(store.live_app_token(&t.access_token).await.unwrap().is_some());
    assert_eq!(
        store.redeem_code(&code).await.unwrap().unwrap_err(),
        Redeem::Replayed
    );
    assert!(
        store.live_app_token(&t.access_token).await.unwrap().is_none(),
        "replay revokes"
    );
    // An expired code is refused.
    let late = store
        .issue_code(&grant_code("patient/Observation.rs"))
        .await
        .unwrap();
    clock.advance_seconds(61);
    assert_eq!(
        store.redeem_code(&late).await.unwrap().unwrap_err(),
        Redeem::Invalid
    );

    // Refresh rotation: the old one is used up; reusing it revokes the family (RFC 9700 4.14).
    let code = store
        .issue_code(&grant_code("patient/Observation.rs offline_access"))
        .await
        .unwrap();
    let (g, family) = store.redeem_code(&code).await.unwrap().unwrap();
    let t1 = store
        .issue_app_tokens(&svc.client_id, h, h, &g.scope, &family, true)
        .await
        .unwrap();
    let r1 = t1.refresh_token.clone().unwrap();
    assert_eq!(
        store
            .rotate_refresh_token(&r1, "another-client")
            .await
            .unwrap()
            .unwrap_err(),
        Redeem::Invalid,
        "bound to its client"
    );
    let t2 = store
        .rotate_refresh_token(&r1, &svc.client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(store.live_app_token(&t2.access_token).await.unwrap().is_some());
    assert_eq!(
        store
            .rotate_refresh_token(&r1, &svc.client_id)
            .await
            .unwrap()
            .unwrap_err(),
        Redeem::Replayed
    );
    assert!(
        store.live_app_token(&t2.access_token).await.unwrap().is_none(),
        "family revoked"
    );

    let fresh = |store: Store| {
        let svc = svc.clone();
        async move {
            let code = store
                .issue_code(&CodeGrant {
                    client_id: svc.client_id.clone(),
                    holder: h,
                    subject: h,
                    redirect_uri: "https://tensio.example/cb".into(),
                    challenge: "c".repeat(43),
                    scope: "patient/Observation.rs".into(),
                })
                .await
                .unwrap();
            let (g, family) = store.redeem_code(&code).await.unwrap().unwrap();
            store
                .issue_app_tokens(&svc.client_id, h, h, &g.scope, &family, false)
                .await
                .unwrap()
                .access_token
        }
    };
    // RFC 7009: another client cannot revoke it; its own client can.
    let t = fresh(store.clone()).await;
    store.revoke_app_token(&t, "another-client").await.unwrap();
    assert!(store.live_app_token(&t).await.unwrap().is_some());
    store.revoke_app_token(&t, &svc.client_id).await.unwrap();
    assert!(store.live_app_token(&t).await.unwrap().is_none());
    // CA-3: disconnecting removes the grant and kills the tokens at once.
    let t = fresh(store.clone()).await;
    own_side(&store, h)
        .await
        .disconnect_app(&svc.client_id)
        .await
        .unwrap();
    assert!(store.live_app_token(&t).await.unwrap().is_none());
    assert!(
        !own_side(&store, h)
            .await
            .access_policy()
            .await
            .unwrap()
            .0
            .grants
            .iter()
            .any(|g| matches!(g.grantee, Grantee::App { .. }))
    );
    // LC-5: a closed space's tokens stop; reopened, they are not revived by magic but a new
    // one works.
    own_side(&store, h)
        .await
        .connect_app(&svc, &[Category::Summaries])
        .await
        .unwrap();
    let t = fresh(store.clone()).await;
    store.transition(h, Event::Close).await.unwrap();
    assert!(store.live_app_token(&t).await.unwrap().is_none(), "closed space");
    store.transition(h, Event::Reopen).await.unwrap();
    // CA-4: the convention's term ends every token at once, and the catalogue drops it.
    let t = fresh(store.clone()).await;
    assert!(store.live_app_token(&t).await.unwrap().is_some());
    clock.set(ends);
    assert!(
        store.live_app_token(&t).await.unwrap().is_none(),
        "expired convention"
    );
    assert!(store.listed_services().await.unwrap().is_empty());
    clock.set(Timestamp::from_unix_seconds(T0 + 86_400));
    // CA-4: a withdrawal ends them at once too, and is recorded as a step.
    let t = fresh(store.clone()).await;
    let withdraw = Step::Withdrawn {
        reason: "manquement".into(),
    };
    assert!(matches!(
        store
            .apply_service_step(&commission, &svc.client_id, &withdraw, &criteria)
            .await,
        Err(StoreError::Invalid(_))
    ));
    store
        .apply_service_step(&minister, &svc.client_id, &withdraw, &criteria)
        .await
        .unwrap();
    assert!(store.live_app_token(&t).await.unwrap().is_none(), "withdrawn");
    assert!(store.listed_services().await.unwrap().is_empty());
    let steps = store.service_steps(&svc.client_id).await.unwrap();
    assert!(matches!(steps.last().unwrap().step, Step::Withdrawn { .. }));
    assert_eq!(steps.last().unwrap().role, ReferencingRole::DecisionMaker);
    // A publisher sees only its own services.
    let (other, _) = store
        .create_referencing_account(ReferencingRole::Publisher, "Autre")
        .await
        .unwrap();
    assert!(store.services(Some(&other.id)).await.unwrap().is_empty());
    assert!(matches!(
        store
            .apply_service_step(
                &other,
                &svc.client_id,
                &Step::Withdrawn { reason: "x".into() },
                &criteria
            )
            .await,
        Err(StoreError::NotFound)
    ));
}
