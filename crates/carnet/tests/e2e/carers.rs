//! Carers (MI-5, issue 32 journey 8) in the pages and the JSON API, against the real binary:
//! Camille invites Lucas for her reports; Lucas accepts the code in his own space, reads what
//! the grant covers and nothing else, writes nothing; Camille sees his reads in her history,
//! then ends his access, which takes effect on his very next request.

use serde_json::{Value, json};

use crate::common::browser::{Browser, mail_to};
use crate::common::*;

const LUCAS: &str = "lucas.bernard@demo.carnet.invalid";
const CAMILLE: &str = "camille.martin@demo.carnet.invalid";

/// The code shown once on the holder's page after an invitation (its 12 symbols).
fn shown_code(html: &str) -> String {
    find_after(html, "<p class=\"big-code\">", 12)
}

#[tokio::test]
async fn a_carer_reads_what_the_holder_chose_and_nothing_more_mi5() {
    let t = tempfile::tempdir().unwrap();
    let demo = start_demo(&t.path().join("data"));
    let mut camille = Browser::new(&demo.base);
    camille.login().await;
    let mut lucas = Browser::new(&demo.base);
    lucas.login_as(LUCAS).await;
    let camille_id = camille.json("/api/v1/me").await["logged_in_as"]
        .as_str()
        .unwrap()
        .to_string();
    let lucas_id = lucas.json("/api/v1/me").await["logged_in_as"]
        .as_str()
        .unwrap()
        .to_string();

    // Camille's page: nobody yet; she invites for her reports only. A scope without a ticked
    // category is refused in words and nothing is made.
    let page = camille.get("/aidants").await;
    assert_eq!(page.status, 200);
    assert!(
        page.html.contains("Vous n&#39;avez pas d&#39;aidant.")
            || page.html.contains("Vous n'avez pas d'aidant.")
    );
    let refused = camille
        .post(
            "/aidants",
            &[
                ("csrf", &page.csrf()),
                ("action", "invite"),
                ("portee", "categories"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.html.contains("Cochez au moins une catégorie"),
        "{}",
        refused.html
    );
    assert!(!refused.html.contains("big-code"));
    let made = camille
        .post(
            "/aidants",
            &[
                ("csrf", &page.csrf()),
                ("action", "invite"),
                ("portee", "categories"),
                ("categories", "reports"),
            ],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.html);
    let code = shown_code(&made.html);
    assert_eq!(code.len(), 12, "{code}");
    assert!(made.html.contains("Invitations en attente"));
    assert!(
        !made.html.contains("jusqu&#39;au le") && !made.html.contains("jusqu'au le"),
        "{}",
        made.html
    );

    // Lucas, in his own space: a wrong code says what to check and keeps what he typed.
    let aider = lucas.get("/aider").await;
    assert_eq!(aider.status, 200);
    let wrong = lucas
        .post("/aider", &[("csrf", &aider.csrf()), ("code", "ABCD-EFGH-JKMN")])
        .await;
    assert_eq!(wrong.status, 400);
    assert!(
        wrong
            .html
            .contains("Ce code ne correspond à aucune invitation en cours")
    );
    assert!(wrong.html.contains("value=\"ABCD-EFGH-JKMN\""));
    let ok = lucas
        .post(
            "/aider",
            &[("csrf", &aider.csrf()), ("code", &code.to_lowercase())],
        )
        .await;
    assert_eq!(
        (ok.status.as_u16(), ok.location()),
        (303, "/aider?ok=accepte"),
        "{}",
        ok.html
    );
    let aider = lucas.get("/aider?ok=accepte").await;
    assert!(aider.html.contains("Camille MARTIN"), "{}", aider.html);
    assert!(
        aider.html.contains("Vous pouvez consulter : comptes rendus"),
        "{}",
        aider.html
    );
    let told = mail_to(&camille, CAMILLE, "Votre aidant a accepté votre invitation").await;
    assert!(
        told.contains("Lucas BERNARD a accepté votre invitation"),
        "{told}"
    );

    // Lucas opens her space as a carer: her reports, said as such; nothing to add or mask.
    let switched = lucas
        .post("/espace", &[("csrf", &aider.csrf()), ("holder", &camille_id)])
        .await;
    assert_eq!(
        (switched.status.as_u16(), switched.location()),
        (303, "/documents")
    );
    let docs = lucas.get("/documents").await;
    assert_eq!(docs.status, 200);
    assert!(
        docs.html
            .contains("Vous consultez cet espace en tant qu&#39;aidant")
            || docs.html.contains("Vous consultez cet espace en tant qu'aidant")
    );
    assert!(
        docs.html.contains("Espace de Camille MARTIN"),
        "whose record it is"
    );
    assert!(docs.html.contains("Compte rendu de consultation"));
    assert!(!docs.html.contains(">Ordonnance</a>") && !docs.html.contains("Échographie abdominale"));
    assert!(
        !docs.html.contains("enctype=\"multipart/form-data\""),
        "no form to add a document"
    );
    let report = {
        let i = docs.html.find("href=\"/documents/").unwrap() + 17;
        docs.html[i..].split('"').next().unwrap().to_string()
    };
    let one = lucas.get(&format!("/documents/{report}")).await;
    assert_eq!(one.status, 200);
    assert!(!one.html.contains("masquage") && !one.html.contains("suppression"));
    // The rest of her space leads him back to her documents; a write through a form is refused.
    for path in [
        "/",
        "/autorisations",
        "/historique",
        "/profil",
        "/messages",
        "/mon-espace",
        "/aidants",
    ] {
        let p = lucas.get(path).await;
        assert_eq!((p.status.as_u16(), p.location()), (303, "/documents"), "{path}");
    }
    let mask = lucas
        .post(
            &format!("/documents/{report}/masquage"),
            &[("csrf", &docs.csrf()), ("masque", "1")],
        )
        .await;
    assert_eq!((mask.status.as_u16(), mask.location()), (303, "/documents"));
    // The JSON API, as the same session: the same grant, and no administrative data.
    let me = lucas.json("/api/v1/me").await;
    assert_eq!(me["acting_as"], "carer");
    assert!(me.get("administrative").is_none());
    let listed: Value = lucas.json("/api/v1/me/documents").await;
    let titles: Vec<&str> = listed["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["Compte rendu de consultation"]);
    let directory = lucas
        .c
        .get(format!("{}/api/v1/me/access", demo.base))
        .header("cookie", lucas.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(directory.status(), 404, "the directory is the holder's");
    for path in [
        "/api/v1/me/traces",
        "/api/v1/me/export",
        "/api/v1/me/profile",
        "/api/v1/me/conversations",
    ] {
        let r = lucas
            .c
            .get(format!("{}{path}", demo.base))
            .header("cookie", lucas.cookie_header())
            .send()
            .await
            .unwrap();
        let (status, body) = (r.status().as_u16(), r.text().await.unwrap());
        assert!(
            status == 404
                || (status == 200 && !body.contains("Paracétamol") && !body.contains("administrative")),
            "{path}: {status} {body}"
        );
    }

    // Nothing of her space changes through his session, whatever the route: closing it,
    // her contact, her directory, her profile, her agenda, a message, a document's masking.
    let report_api = {
        let listed: Value = lucas.json("/api/v1/me/documents").await;
        listed["documents"][0]["id"].as_str().unwrap().to_string()
    };
    let writes = [
        (reqwest::Method::POST, "/api/v1/me/close".to_string(), json!({})),
        (
            reqwest::Method::POST,
            "/api/v1/me/close/confirm".to_string(),
            json!({"confirmation": "x", "erase": true}),
        ),
        (
            reqwest::Method::PATCH,
            "/api/v1/me/contact".to_string(),
            json!({"email": "aidant@example.org"}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/me/access/grants".to_string(),
            json!({"kind": "professional", "id": "10000000003"}),
        ),
        (
            reqwest::Method::PUT,
            "/api/v1/me/access/settings".to_string(),
            json!({"hide_all": true}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/me/profile".to_string(),
            json!({"section": "conditions", "text": "Asthme"}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/me/agenda".to_string(),
            json!({"kind": "appointment", "title": "RDV", "start": "2031-01-01T10:00:00Z"}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/me/agenda/feeds".to_string(),
            json!({}),
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/v1/me/documents/{report_api}"),
            json!({"masked": true}),
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/v1/me/documents/{report_api}"),
            json!({}),
        ),
    ];
    for (method, path, body) in writes {
        let r = lucas
            .c
            .request(method.clone(), format!("{}{path}", demo.base))
            .header("cookie", lucas.cookie_header())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_client_error(),
            "{method} {path} as a carer: {}",
            r.status()
        );
    }
    let own = camille.json("/api/v1/me").await;
    assert_eq!(own["lifecycle"], "activated");
    assert!(
        own["administrative"]["email"]
            .as_str()
            .unwrap_or("")
            .contains("camille")
    );
    let directory = camille.json("/api/v1/me/access").await;
    assert_ne!(directory["hide_all"], true, "{directory}");
    assert!(!directory.to_string().contains("10000000003"), "{directory}");

    // Camille sees who read what, and is told.
    let history = camille.get("/historique").await;
    assert!(
        history.html.contains("Lucas BERNARD (aidant)"),
        "{}",
        history.html
    );
    let page = camille.get("/aidants").await;
    assert!(page.html.contains("Lucas BERNARD") && page.html.contains("Peut consulter : comptes rendus"));

    // She ends it: his very next request is back in his own space.
    let ended = camille
        .post(
            "/aidants",
            &[("csrf", &page.csrf()), ("action", "end"), ("carer", &lucas_id)],
        )
        .await;
    assert_eq!(
        (ended.status.as_u16(), ended.location()),
        (303, "/aidants?ok=retire")
    );
    let docs = lucas.get("/documents").await;
    assert_eq!(docs.status, 200);
    assert!(
        !docs.html.contains("Compte rendu de consultation"),
        "{}",
        docs.html
    );
    assert!(!docs.html.contains("en tant qu"));
    assert_eq!(
        lucas.json("/api/v1/me").await["acting_for"].as_str().unwrap(),
        lucas_id
    );
    let told = mail_to(&lucas, LUCAS, "Fin de votre accès d'aidant").await;
    assert!(
        told.contains("Camille MARTIN a retiré votre accès d'aidant"),
        "{told}"
    );
    // The code was single use.
    let again = lucas.get("/aider").await;
    let reuse = lucas
        .post("/aider", &[("csrf", &again.csrf()), ("code", &code)])
        .await;
    assert_eq!(reuse.status, 400);
}
