//! The holder's contact data in the pages (ID-2, issue 32 journey 5): a new e-mail address
//! replaces the former one only with the code sent to it; the former one is told; a contact
//! code is never a login code.

use crate::common::browser::*;
use crate::common::*;
use serde_json::json;

const NEW: &str = "camille.nouvelle@demo.carnet.invalid";

/// The code of the newest confirmation mail to the new address, once it differs from `seen`.
async fn next_code(b: &Browser, seen: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let body = mail_to(b, NEW, "Votre code pour confirmer vos coordonnées Carnet").await;
        let c = find_after(&body, "Votre code : ", 6);
        if c != seen {
            return c;
        }
        assert!(std::time::Instant::now() < deadline, "no new code");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let i = html.find(&marker).unwrap_or_else(|| panic!("no {name}")) + marker.len();
    html[i..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn a_new_email_takes_effect_with_the_code_sent_to_it_id2() {
    let w = World::start().await;
    let mut b = Browser::new(&w.base);
    assert_eq!(b.login().await, "/");
    let space = b.get("/mon-espace").await;
    assert!(
        space.html.contains("Vos coordonnées") && space.html.contains(CAMILLE),
        "{}",
        space.html
    );
    let p = b
        .post(
            "/mon-espace/coordonnees",
            &[
                ("csrf", &space.csrf()),
                ("quoi", "email"),
                ("valeur", "pas une adresse"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(
        p.html.contains("adresse e-mail n&#39;est pas valide"),
        "{}",
        p.html
    );
    let p = b
        .post(
            "/mon-espace/coordonnees",
            &[("csrf", &space.csrf()), ("quoi", "email"), ("valeur", NEW)],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.html);
    assert!(
        p.html.contains("Un code vient d'être envoyé à") && p.html.contains(NEW),
        "{}",
        p.html
    );
    let body = mail_to(&b, NEW, "Votre code pour confirmer vos coordonnées Carnet").await;
    let code = find_after(&body, "Votre code : ", 6);
    let challenge = hidden(&p.html, "challenge");
    // Nothing changed yet; a contact code opens no session (it is not a login code).
    assert_eq!(
        get_json(&w.c, &w.me("/export"), w.holder()).await["administrative"]["email"],
        CAMILLE
    );
    let r = post(
        &w.c,
        &format!("{}/api/v1/auth/verify", w.base),
        As::Anonymous,
        &json!({"challenge": challenge, "code": code}),
    )
    .await;
    assert_eq!(r.status(), 401);
    // A second code; a wrong one is refused, what was asked kept.
    let p = b
        .post(
            "/mon-espace/coordonnees",
            &[("csrf", &space.csrf()), ("quoi", "email"), ("valeur", NEW)],
        )
        .await;
    let challenge = hidden(&p.html, "challenge");
    let wrong = b
        .post(
            "/mon-espace/coordonnees/code",
            &[
                ("csrf", &space.csrf()),
                ("quoi", "email"),
                ("valeur", NEW),
                ("challenge", &challenge),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(
        wrong.html.contains("Ce code n&#39;est pas le bon"),
        "{}",
        wrong.html
    );
    let code = next_code(&b, &code).await;
    // A code for this address does not confirm another one.
    let other = b
        .post(
            "/mon-espace/coordonnees/code",
            &[
                ("csrf", &space.csrf()),
                ("quoi", "email"),
                ("valeur", "intrus@demo.carnet.invalid"),
                ("challenge", &challenge),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(other.status, 400);
    // A third code, entered right, for the address it was sent to.
    let p = b
        .post(
            "/mon-espace/coordonnees",
            &[("csrf", &space.csrf()), ("quoi", "email"), ("valeur", NEW)],
        )
        .await;
    let challenge = hidden(&p.html, "challenge");
    let fresh = next_code(&b, &code).await;
    let ok = b
        .post(
            "/mon-espace/coordonnees/code",
            &[
                ("csrf", &space.csrf()),
                ("quoi", "email"),
                ("valeur", NEW),
                ("challenge", &challenge),
                ("code", &fresh),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.html);
    let space = b.get("/mon-espace?ok=coordonnees").await;
    assert!(space.html.contains("Vos coordonnées sont enregistrées") && space.html.contains(NEW));
    assert_eq!(
        get_json(&w.c, &w.me("/export"), w.holder()).await["administrative"]["email"],
        NEW
    );
    // The former address is told.
    mail_to(&b, CAMILLE, "Vos coordonnées Carnet ont été changées").await;
    // The postal address is corrected at once.
    let p = b
        .post(
            "/mon-espace/coordonnees/adresse",
            &[
                ("csrf", &space.csrf()),
                ("adresse", "3 rue des Lilas, 69003 Lyon"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(
        get_json(&w.c, &w.me("/export"), w.holder()).await["administrative"]["address"],
        "3 rue des Lilas, 69003 Lyon"
    );
}

/// Issue 32: mails in the holder's language, not both at once. Camille chooses English on the
/// notifications page; the next code comes in English only, subject included; back to French,
/// French only.
#[tokio::test]
async fn messages_come_in_the_language_the_holder_chose() {
    let w = World::start().await;
    let mut b = Browser::new(&w.base);
    b.login().await;
    let p = b.get("/notifications").await;
    assert!(
        p.html
            .contains("id=\"langue-fr\" name=\"langue\" type=\"radio\" value=\"fr\" checked"),
        "{}",
        p.html
    );
    for (language, subject, present, absent) in [
        (
            "en",
            "Your code to confirm your Carnet contact details",
            "Your code",
            "Votre code",
        ),
        (
            "fr",
            "Votre code pour confirmer vos coordonnées Carnet",
            "Votre code",
            "Your code",
        ),
    ] {
        let p = b.get("/notifications").await;
        let saved = b
            .post(
                "/notifications",
                &[("csrf", &p.csrf()), ("email", "1"), ("langue", language)],
            )
            .await;
        assert_eq!(saved.status, 303);
        let p = b.get("/notifications").await;
        assert!(
            p.html.contains(&format!("value=\"{language}\" checked")),
            "{language} not kept"
        );
        let space = b.get("/mon-espace").await;
        let to = format!("camille.{language}@demo.carnet.invalid");
        let sent = b
            .post(
                "/mon-espace/coordonnees",
                &[("csrf", &space.csrf()), ("quoi", "email"), ("valeur", &to)],
            )
            .await;
        assert_eq!(sent.status, 200, "{}", sent.html);
        let body = mail_to(&b, &to, subject).await;
        assert!(
            body.contains(present) && !body.contains(absent),
            "{language}: {body}"
        );
    }
}
