//! The storage suite: authentication.

use super::*;

suite!(
    activation_proves_identity_once_lc4,
    login_codes_are_single_use_short_lived_and_limited_au1,
    sessions_expire_idle_and_absolute_and_revoke_everywhere_au3,
    rate_limits_hold_per_bucket_and_window,
    totp_codes_are_accepted_once_and_only_in_time,
);

pub(super) fn with_serial(mut r: RosterRecord, serial: &str) -> RosterRecord {
    r.card_serial = Some(serial.to_string());
    r
}

pub(super) async fn activation_proves_identity_once_lc4(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let out = store
        .import_roster_batch(&[
            with_serial(record(60, "1970-01-01", true, None), "1234 5678 90"),
            record(61, "1971-01-01", true, None),
        ])
        .await
        .unwrap();
    let RosterOutcome::Created { id, activation_code } = out[0].clone() else {
        panic!()
    };
    let RosterOutcome::Created {
        activation_code: code_b,
        ..
    } = out[1].clone()
    else {
        panic!()
    };
    let ins = carnet_domain::Ins::parse(&ins_for(60)).unwrap();
    let hash = carnet_store::password::hash("un mot de passe solide").unwrap();
    for (code, serial) in [
        ("AAAAAAAAAAAA", "1234567890"),
        (activation_code.as_str(), "999"),
        (code_b.as_str(), "1234567890"),
    ] {
        assert!(matches!(
            store.activate(&ins, code, serial, "zoe@example.org", &hash).await,
            Err(StoreError::Mismatch)
        ));
    }
    assert_eq!(store.lifecycle(id).await.unwrap().name(), "informed");
    let got = store
        .activate(&ins, &activation_code, "1234567890", "Zoe@Example.org", &hash)
        .await
        .unwrap();
    assert_eq!(got, id);
    assert_eq!(store.lifecycle(id).await.unwrap().name(), "activated");
    assert!(
        matches!(
            store
                .activate(&ins, &activation_code, "1234567890", "x@example.org", &hash)
                .await,
            Err(StoreError::Mismatch)
        ),
        "single use"
    );
    let (who, stored) = store
        .credentials_by_login("  ZOE@example.ORG ")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(who, id);
    assert!(carnet_store::password::verify(
        "un mot de passe solide",
        Some(&stored)
    ));
    // Another holder cannot take the same login.
    let other = store.create_holder("activated", b"{}").await.unwrap();
    assert!(matches!(
        store.set_credentials(other, "zoe@example.org", &hash).await,
        Err(StoreError::LoginTaken)
    ));
}

pub(super) async fn claim_code(store: &Store) -> String {
    let msgs = store.claim_messages(100).await.unwrap();
    let m = msgs
        .iter()
        .rev()
        .find(|m| m.kind == "login_code")
        .expect("a login code was queued");
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    v["code"].as_str().unwrap().to_string()
}

pub(super) async fn login_codes_are_single_use_short_lived_and_limited_au1(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let h = store.create_holder("activated", b"{}").await.unwrap();
    let c1 = store
        .create_login_challenge(h, "dev1", Channel::Email)
        .await
        .unwrap();
    let code = claim_code(&store).await;
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert!(matches!(
        store.verify_login_challenge(c1, wrong).await,
        Err(StoreError::Mismatch)
    ));
    assert_eq!(
        store.verify_login_challenge(c1, &code).await.unwrap(),
        (h, "dev1".to_string())
    );
    assert!(
        matches!(
            store.verify_login_challenge(c1, &code).await,
            Err(StoreError::Mismatch)
        ),
        "single use"
    );
    // Expiry: the last second works, the next does not.
    let c2 = store
        .create_login_challenge(h, "dev1", Channel::Email)
        .await
        .unwrap();
    let code2 = claim_code(&store).await;
    clock.advance_seconds(carnet_store::auth::LOGIN_CODE_TTL_SECONDS);
    assert!(
        matches!(
            store.verify_login_challenge(c2, &code2).await,
            Err(StoreError::Mismatch)
        ),
        "expired"
    );
    // Five wrong attempts burn the challenge, even for the right code afterwards.
    let c3 = store
        .create_login_challenge(h, "dev1", Channel::Email)
        .await
        .unwrap();
    let code3 = claim_code(&store).await;
    let wrong3 = if code3 == "000000" { "000001" } else { "000000" };
    for _ in 0..carnet_store::auth::LOGIN_CODE_MAX_ATTEMPTS {
        assert!(store.verify_login_challenge(c3, wrong3).await.is_err());
    }
    assert!(
        matches!(
            store.verify_login_challenge(c3, &code3).await,
            Err(StoreError::Mismatch)
        ),
        "burnt"
    );
    // A code of one challenge does not open another.
    let c4 = store
        .create_login_challenge(h, "dev1", Channel::Email)
        .await
        .unwrap();
    let _ = claim_code(&store).await;
    let c5 = store
        .create_login_challenge(h, "dev1", Channel::Email)
        .await
        .unwrap();
    let code5 = claim_code(&store).await;
    assert!(store.verify_login_challenge(c4, &code5).await.is_err() || code5.is_empty());
    assert!(store.verify_login_challenge(c5, &code5).await.is_ok());
    assert!(matches!(
        store.verify_login_challenge(uuid::Uuid::new_v4(), "123456").await,
        Err(StoreError::Mismatch)
    ));
}

pub(super) async fn sessions_expire_idle_and_absolute_and_revoke_everywhere_au3(env: Env, _e: Engine) {
    use carnet_store::auth::{SESSION_ABSOLUTE_SECONDS, SESSION_IDLE_SECONDS};
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let h = store.create_holder("activated", b"{}").await.unwrap();
    let (t1, s1) = store.create_session(h, "laptop").await.unwrap();
    assert_eq!(store.session(&t1).await.unwrap(), Some(s1.clone()));
    assert_eq!(s1.acting_for, h);
    let new_device = |store: &Store| {
        let store = store.clone();
        async move {
            store
                .outbox_of(h)
                .await
                .unwrap()
                .iter()
                .filter(|m| m.0 == "new_device")
                .count()
        }
    };
    assert_eq!(
        new_device(&store).await,
        1,
        "first login from a device is notified"
    );
    let (_t2, _) = store.create_session(h, "laptop").await.unwrap();
    assert_eq!(new_device(&store).await, 1, "a known device is not");
    // Idle: used every 20 minutes it stays alive until the absolute limit.
    let mut elapsed = 0;
    while elapsed + 20 * 60 < SESSION_ABSOLUTE_SECONDS {
        clock.advance_seconds(20 * 60);
        elapsed += 20 * 60;
        assert!(
            store.session(&t1).await.unwrap().is_some(),
            "alive after {elapsed}s"
        );
    }
    clock.set(Timestamp::from_unix_seconds(T0 + SESSION_ABSOLUTE_SECONDS));
    assert_eq!(store.session(&t1).await.unwrap(), None, "absolute expiry");
    // Idle expiry.
    let (t3, _) = store.create_session(h, "phone").await.unwrap();
    clock.advance_seconds(SESSION_IDLE_SECONDS - 1);
    assert!(store.session(&t3).await.unwrap().is_some());
    clock.advance_seconds(SESSION_IDLE_SECONDS);
    assert_eq!(store.session(&t3).await.unwrap(), None, "idle expiry");
    // Logout everywhere.
    let (a, _) = store.create_session(h, "phone").await.unwrap();
    let (b, _) = store.create_session(h, "tablet").await.unwrap();
    store.revoke_session(&a).await.unwrap();
    assert_eq!(store.session(&a).await.unwrap(), None);
    assert!(store.session(&b).await.unwrap().is_some());
    assert!(store.revoke_all_sessions(h).await.unwrap() >= 1);
    assert_eq!(store.session(&b).await.unwrap(), None);
    assert_eq!(store.session("not-a-token").await.unwrap(), None);
}

pub(super) async fn rate_limits_hold_per_bucket_and_window(env: Env, _e: Engine) {
    use carnet_store::auth::RateDecision;
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    for _ in 0..5 {
        assert_eq!(
            store.hit_rate_limit("login:acct:x", 900, 5).await.unwrap(),
            RateDecision::Allowed
        );
    }
    let RateDecision::Limited { retry_after_seconds } =
        store.hit_rate_limit("login:acct:x", 900, 5).await.unwrap()
    else {
        panic!("sixth hit allowed");
    };
    assert!(retry_after_seconds > 0 && retry_after_seconds <= 900);
    assert_eq!(
        store.hit_rate_limit("login:acct:y", 900, 5).await.unwrap(),
        RateDecision::Allowed,
        "per bucket"
    );
    clock.advance_seconds(900);
    assert_eq!(
        store.hit_rate_limit("login:acct:x", 900, 5).await.unwrap(),
        RateDecision::Allowed,
        "next window"
    );
}

pub(super) async fn totp_codes_are_accepted_once_and_only_in_time(env: Env, _e: Engine) {
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let store = env.open_at(&clock).await;
    let h = store.create_holder("activated", b"{}").await.unwrap();
    let hash = carnet_store::password::hash("un mot de passe solide").unwrap();
    store.set_credentials(h, "totp-user", &hash).await.unwrap();
    let secret = store.begin_totp(h).await.unwrap();
    assert!(
        !store.totp_enabled(h).await.unwrap(),
        "not active before a first code is confirmed"
    );
    let at = |t: i64| Store::totp_code(&secret, t as u64).unwrap();
    assert!(matches!(store.verify_totp(h, "000000").await, Err(StoreError::Mismatch)) || at(T0) == "000000");
    store.verify_totp(h, &at(T0)).await.unwrap();
    assert!(store.totp_enabled(h).await.unwrap());
    assert!(
        matches!(store.verify_totp(h, &at(T0)).await, Err(StoreError::Mismatch)),
        "a code is accepted once"
    );
    // Through a login challenge: the next step's code (within the ±1 step skew) works.
    let c = store.create_totp_challenge(h, "dev").await.unwrap();
    assert_eq!(store.verify_login_challenge(c, &at(T0 + 30)).await.unwrap().0, h);
    // Two minutes later, a code of the old steps is refused; a current one works.
    clock.advance_seconds(120);
    assert!(store.verify_totp(h, &at(T0 + 30)).await.is_err());
    store.verify_totp(h, &at(T0 + 120)).await.unwrap();
    store.disable_totp(h).await.unwrap();
    assert!(!store.totp_enabled(h).await.unwrap());
}
