//! The holder's authorisation directory in the pages (issue 32, journey 7; AC-3): finding a
//! professional by name, profession and town, granting some categories until a date, and an
//! establishment by FINESS.

use crate::common::browser::*;
use crate::common::*;

/// Posts the directory page's form.
async fn post(b: &mut Browser, form: Vec<(&'static str, String)>) -> Page {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post("/autorisations", &pairs).await
}

#[tokio::test]
async fn a_professional_is_found_by_name_and_granted_some_categories_until_a_date_ac3() {
    let w = World::start().await;
    let mut b = Browser::new(&w.base);
    assert_eq!(b.login().await, "/");
    let page = b.get("/autorisations").await;
    assert!(
        page.html.contains("action=\"/autorisations/trouver\""),
        "{}",
        page.html
    );

    // Two LEROY in the demo directory: the profession (or the town) tells them apart.
    let all = b.get("/autorisations/trouver?nom=leroy&profession=&ville=").await;
    assert_eq!(all.status, 200);
    assert!(all.html.contains("2 professionnels trouvés"), "{}", all.html);
    assert!(all.html.contains("Dr Claire LEROY") && all.html.contains("Marc LEROY"));
    let kine = b
        .get("/autorisations/trouver?nom=Leroy&profession=masseur_kinesitherapeute&ville=")
        .await;
    assert!(
        kine.html.contains("1 professionnel trouvé") && kine.html.contains("Lyon"),
        "{}",
        kine.html
    );
    assert!(!kine.html.contains("Claire LEROY"));
    let by_town = b
        .get("/autorisations/trouver?nom=du&profession=&ville=saint-etienne")
        .await;
    assert!(
        by_town.html.contains("Dr Anne DURAND") && by_town.html.contains("cardiologie"),
        "{}",
        by_town.html
    );
    let none = b.get("/autorisations/trouver?nom=zzz&profession=&ville=").await;
    assert!(none.html.contains("Aucun professionnel ne correspond"));
    let short = b.get("/autorisations/trouver?nom=l&profession=&ville=").await;
    assert!(short.html.contains("deux premières lettres"));

    // Choosing him: what he may read, and until when.
    assert!(
        kine.html
            .contains("href=\"/autorisations/autoriser?pro=10000000007\"")
    );
    let choose = b.get("/autorisations/autoriser?pro=10000000007").await;
    assert!(
        choose.html.contains("Marc LEROY (masseur-kinésithérapeute)"),
        "{}",
        choose.html
    );
    let base = |portee: &str, until: &str| {
        vec![
            ("csrf", choose.csrf()),
            ("action", "grant".to_string()),
            ("kind", "professional".to_string()),
            ("id", "10000000007".to_string()),
            ("portee", portee.to_string()),
            ("jusquau", until.to_string()),
        ]
    };
    let p = post(&mut b, base("categories", "")).await;
    assert_eq!(p.status, 400);
    assert!(
        p.html.contains("ochez au moins une catégorie") && p.html.contains("Marc LEROY"),
        "{}",
        p.html
    );
    let mut past = base("tout", "01/01/2020");
    past.push(("categories", "imaging".into()));
    let p = post(&mut b, past).await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("a date de fin est passée"), "{}", p.html);
    let mut ok = base("categories", "31/12/2030");
    ok.push(("categories", "imaging".into()));
    ok.push(("categories", "reports".into()));
    let p = post(&mut b, ok).await;
    assert_eq!(p.status, 303, "{}", p.html);
    let page = b.get("/autorisations").await;
    assert!(
        page.html.contains("Marc LEROY (masseur-kinésithérapeute) — RPPS 10000000007 : comptes rendus, imagerie médicale, jusqu'au 31/12/2030")
            || page.html.contains("Marc LEROY (masseur-kinésithérapeute) — RPPS 10000000007 : imagerie médicale, comptes rendus, jusqu'au 31/12/2030"),
        "{}",
        page.html
    );
    // The API sees the same grant: two categories, until the end of that day in France.
    let policy = get_json(&w.c, &w.me("/access"), w.holder()).await;
    let g = policy["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["grantee"]["id"] == "10000000007")
        .expect("the physiotherapist's grant");
    assert_eq!(g["categories"].as_array().unwrap().len(), 2);
    assert_eq!(g["until"], "2030-12-31T23:00:00Z");

    // An establishment by FINESS, named from the directory.
    let choose = b.get("/autorisations/autoriser?etablissement=750000001").await;
    assert!(choose.html.contains("Hôpital de la Démo"), "{}", choose.html);
    let p = post(
        &mut b,
        vec![
            ("csrf", choose.csrf()),
            ("action", "grant".into()),
            ("kind", "establishment".into()),
            ("id", "750000001".into()),
            ("portee", "tout".into()),
            ("jusquau", String::new()),
        ],
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let page = b.get("/autorisations").await;
    assert!(
        page.html
            .contains("Hôpital de la Démo (établissement) — FINESS 750000001 : tout le dossier"),
        "{}",
        page.html
    );
    // A wrong RPPS or FINESS says so.
    let bad = b.get("/autorisations/autoriser?pro=10000000099").await;
    assert!(
        bad.html
            .contains("Aucun professionnel de l&#39;annuaire n&#39;a ce numéro RPPS"),
        "{}",
        bad.html
    );
    let bad = b.get("/autorisations/autoriser?etablissement=12").await;
    assert!(bad.html.contains("9 caractères"), "{}", bad.html);
}
