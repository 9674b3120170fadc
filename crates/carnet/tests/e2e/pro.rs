//! The professional's side (issue 33): care-team access and consents recorded by a
//! professional (AC-1b), in the pages and the API, against the real server.

use crate::common::browser::*;
use crate::common::*;
use serde_json::json;

/// A demo professional logged into the web pages.
async fn pro_pages(base: &str, rpps: &str) -> Browser {
    let mut b = Browser::new(base);
    let p = b.get("/pro").await;
    let r = b
        .post("/pro/connexion", &[("csrf", &p.csrf()), ("rpps", rpps)])
        .await;
    assert_eq!(r.status, 303, "{}", r.html);
    b
}

/// The record's address after a lookup by Camille's INS.
async fn find_camille(b: &mut Browser) -> String {
    let p = b.get("/pro").await;
    let p = b
        .post("/pro", &[("csrf", &p.csrf()), ("ins", &camille_ins())])
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    p.location().to_string()
}

/// AC-1b: a nurse the holder never registered declares the care relationship and reads what
/// her profession may; the holder sees why she may, is told, and objects, which closes it at
/// once; a block reads exactly like the objection (AC-8); a consent recorded for a colleague
/// opens the record to him, never to an occupational doctor.
#[tokio::test]
async fn care_teams_are_presumed_authorised_and_consents_recorded_ac1b() {
    let w = World::start().await;
    let mut camille = Browser::new(&w.base);
    assert_eq!(camille.login().await, "/");
    let mut moreau = pro_pages(&w.base, "10000000003").await;
    let record = find_camille(&mut moreau).await;
    let before = moreau.get(&record).await;
    assert!(
        before.html.contains("Ce dossier ne vous est pas ouvert"),
        "{}",
        before.html
    );
    assert!(
        before.html.contains("Déclarer une prise en charge"),
        "{}",
        before.html
    );
    let declare = format!("{record}/equipe-de-soins");

    // Without telling the patient, nothing is declared; what was typed stays.
    let p = moreau
        .post(
            &declare,
            &[
                ("csrf", &before.csrf()),
                ("equipe", "coordination"),
                ("episode", "Soins infirmiers à domicile"),
            ],
        )
        .await;
    assert_eq!(p.status, 400, "{}", p.html);
    assert!(p.html.contains("le patient doit avoir été informé"), "{}", p.html);
    assert!(p.html.contains("value=\"Soins infirmiers à domicile\""));
    assert!(p.html.contains("Ce dossier ne vous est pas ouvert"));

    let p = moreau
        .post(
            &declare,
            &[
                ("csrf", &before.csrf()),
                ("equipe", "coordination"),
                ("episode", "Soins infirmiers à domicile"),
                ("informe", "1"),
            ],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.html);
    assert!(p.html.contains("Prise en charge déclarée"), "{}", p.html);
    // AC-1: the habilitation matrix still bounds what a nurse reads.
    assert!(p.html.contains("Accès limité"), "{}", p.html);
    assert!(!p.html.contains("Ce dossier ne vous est pas ouvert"));
    assert!(!p.html.contains("name=\"episode\""), "the form is gone once open");

    // Camille sees why Sophie MOREAU may read, and was told (AC-6).
    let a = camille.get("/autorisations").await;
    assert!(
        a.html.contains("Sophie MOREAU")
            && a.html.contains(
                "équipe de soins (parcours de soins coordonné) pour « Soins infirmiers à domicile »"
            ),
        "{}",
        a.html
    );
    let h = camille.get("/historique").await;
    assert!(h.html.contains("a déclaré vous prendre en charge"), "{}", h.html);
    let n = get_json(&w.c, &w.me("/notifications"), w.holder()).await;
    assert!(
        n["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["item"] == "care_team/declared" && t["who"]["family_name"] == "MOREAU"),
        "{n}"
    );

    // Camille objects to care teams: closed at once; declaring again is refused, in words.
    let p = camille
        .post(
            "/autorisations",
            &[("csrf", &a.csrf()), ("action", "care_team"), ("value", "1")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let a = camille.get("/autorisations").await;
    assert!(a.html.contains("sans effet : vous vous opposez"), "{}", a.html);
    let closed = moreau.get(&record).await;
    assert!(
        closed.html.contains("Ce dossier ne vous est pas ouvert"),
        "{}",
        closed.html
    );
    let refused = moreau
        .post(
            &declare,
            &[
                ("csrf", &closed.csrf()),
                ("equipe", "practice"),
                ("episode", "Pansements"),
                ("informe", "1"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    assert!(
        refused.html.contains("Le patient s&#39;oppose à cet accès"),
        "{}",
        refused.html
    );

    // AC-4, AC-8: without the objection but with a block, the very same words.
    let r = put(
        &w.c,
        &w.me("/access/settings"),
        w.holder(),
        &json!({"care_team_objection": false}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = post(
        &w.c,
        &w.me("/access/blocked"),
        w.holder(),
        &json!({"professional": "10000000003"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let blocked = moreau
        .post(
            &declare,
            &[
                ("csrf", &closed.csrf()),
                ("equipe", "practice"),
                ("episode", "Pansements"),
                ("informe", "1"),
            ],
        )
        .await;
    assert_eq!(blocked.status, 403);
    let words = |html: &str| {
        let i = html.find("class=\"alert").expect("an error");
        html[i..i + html[i..].find("</div>").unwrap()].to_string()
    };
    assert_eq!(words(&blocked.html), words(&refused.html));
    let r = delete(&w.c, &w.me("/access/blocked/10000000003"), w.holder()).await;
    assert_eq!(r.status(), 200);

    // Dr LEROY (médecin traitant) records Camille's oral consent for the pharmacist.
    let mut leroy = pro_pages(&w.base, "10000000001").await;
    let page = leroy.get(&record).await;
    assert!(
        !page.html.contains("Déclarer une prise en charge"),
        "she already has access"
    );
    let consent = format!("{record}/consentement");
    let p = leroy
        .post(
            &consent,
            &[
                ("csrf", &page.csrf()),
                ("rpps", "10000000004"),
                ("forme", "oral"),
                ("consenti", "1"),
            ],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.html);
    assert!(p.html.contains("Consentement enregistré"), "{}", p.html);
    let girard = w.pro("10000000004").await;
    let id = w.camille_for(&girard).await;
    let docs = get_json(&w.c, &w.pro_url(&id, "/documents"), As::Bearer(&girard)).await;
    assert!(docs["documents"].is_array(), "{docs}");
    let a = camille.get("/autorisations").await;
    assert!(
        a.html
            .contains("votre consentement oral, recueilli par Dr Claire LEROY le"),
        "{}",
        a.html
    );
    // Not for an occupational doctor (express consent, from Camille only), nor an unknown RPPS.
    for (rpps, words) in [
        ("10000000006", "consentement exprès"),
        ("10000000099", "ucun professionnel de soins de l&#39;annuaire"),
    ] {
        let p = leroy
            .post(
                &consent,
                &[
                    ("csrf", &page.csrf()),
                    ("rpps", rpps),
                    ("forme", "written"),
                    ("consenti", "1"),
                ],
            )
            .await;
        assert_eq!(p.status, 403, "{rpps}: {}", p.html);
        assert!(p.html.contains(words), "{rpps}: {}", p.html);
        assert!(p.html.contains(&format!("value=\"{rpps}\"")), "typed kept");
    }

    // The API: the occupational doctor cannot declare himself in the care team; a
    // professional who never looked the patient up finds no such record (AC-8).
    let noir = w.pro("10000000006").await;
    let id = w.camille_for(&noir).await;
    let blanc = w.pro("10000000005").await;
    for (who, team, status, why) in [
        (
            &noir,
            "practice",
            403,
            "an occupational doctor never joins the care team",
        ),
        (&blanc, "practice", 404, "no lookup, no record"),
        (&girard, "hospital", 400, "an unknown team is refused"),
        (
            &girard,
            "practice",
            200,
            "already authorised by the consent, left as it was",
        ),
    ] {
        let r = post(
            &w.c,
            &w.pro_url(&id, "/care-team"),
            As::Bearer(who),
            &json!({"team": team, "episode": "suivi"}),
        )
        .await;
        assert_eq!(r.status(), status, "{why}");
    }
    let policy = get_json(&w.c, &w.me("/access"), w.holder()).await;
    let g = policy["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["grantee"]["id"] == "10000000004")
        .expect("the pharmacist's grant");
    assert_eq!(g["basis"]["kind"], "consent");
    assert_eq!(g["basis"]["recorded_by"], "10000000001");
    assert_eq!(g["basis"]["form"], "oral");
}

/// DM-3, issue 33: from her own document's page, Dr LEROY files a new version with the date of
/// the act typed as French people type it; the record shows the new one, the former stays in
/// its history; a wrong date is said in words with what was typed kept.
#[tokio::test]
async fn an_author_files_a_new_version_with_its_date_dm3() {
    let w = World::start().await;
    let mut leroy = pro_pages(&w.base, "10000000001").await;
    let record = find_camille(&mut leroy).await;
    let first = leroy.get(&record).await;
    let title = "Compte rendu de consultation";
    let end = first.html.find(&format!("\">{title}</a>")).expect("the report");
    let start = first.html[..end].rfind("href=\"").unwrap() + 6;
    let report = first.html[start..end].to_string();
    let page = leroy.get(&report).await;
    let marker = "href=\"ajout?";
    let i = page.html.find(marker).expect("a new version link") + 6;
    let link = page.html[i..].split('"').next().unwrap().replace("&amp;", "&");
    let form_url = format!("{record}/documents/{link}");
    let form = leroy.get(&form_url).await;
    assert_eq!(form.status, 200);
    assert!(
        form.html.contains("Déposer une nouvelle version du document"),
        "{}",
        form.html
    );
    assert!(
        form.html.contains(&format!("value=\"{title}\"")),
        "prefilled: {}",
        form.html
    );
    let old_id = report.rsplit('/').next().unwrap().to_string();
    assert!(
        form.html
            .contains(&format!("name=\"remplace\" value=\"{old_id}\""))
    );
    let post = format!("{record}/documents/ajout");
    let bad = leroy
        .post_multipart(
            &post,
            &[
                ("csrf", &form.csrf()),
                ("titre", title),
                ("classe", "reports"),
                ("date", "32/13/2026"),
                ("remplace", &old_id),
            ],
            ("cr.txt", "text/plain", b"Consultation du 12 mars, complement"),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.html.contains("sous la forme JJ/MM/AAAA") && bad.html.contains("value=\"32/13/2026\""),
        "{}",
        bad.html
    );
    assert!(
        bad.html
            .contains(&format!("name=\"remplace\" value=\"{old_id}\"")),
        "the version kept"
    );
    let ok = leroy
        .post_multipart(
            &post,
            &[
                ("csrf", &form.csrf()),
                ("titre", title),
                ("classe", "reports"),
                ("date", "12/03/2026"),
                ("remplace", &old_id),
            ],
            ("cr.txt", "text/plain", b"Consultation du 12 mars, complement"),
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.html);
    assert!(ok.location().ends_with("?ok=version"), "{}", ok.location());
    let new_page = leroy.get(ok.location()).await;
    assert!(
        new_page.html.contains("La nouvelle version est déposée"),
        "{}",
        new_page.html
    );
    assert!(new_page.html.contains("complement"));
    // The record lists the new version once; the API shows the former one deprecated.
    let token = w.pro("10000000001").await;
    let id = w.camille_for(&token).await;
    let docs = get_json(
        &w.c,
        &w.pro_url(&id, "/documents?history=true"),
        As::Bearer(&token),
    )
    .await;
    let versions: Vec<&serde_json::Value> = docs["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["title"] == title)
        .collect();
    assert_eq!(versions.len(), 2, "{docs}");
    assert!(
        versions
            .iter()
            .any(|d| d["status"] == "deprecated" && d["id"] == old_id.as_str()),
        "{docs}"
    );
    assert!(
        versions
            .iter()
            .any(|d| d["status"] == "approved" && d["event_date"] == "2026-03-12"),
        "{docs}"
    );
}

/// Issue 33, "My patients": the patients a professional looked up today are one click away
/// on their home page, named (an identity read, traced); another professional sees none.
#[tokio::test]
async fn todays_patients_are_one_click_away() {
    let w = World::start().await;
    let mut petit = pro_pages(&w.base, "10000000002").await;
    let before = petit.get("/pro").await;
    assert!(!before.html.contains("Vos patients du jour"));
    let record = find_camille(&mut petit).await;
    let home = petit.get("/pro").await;
    assert!(home.html.contains("Vos patients du jour"), "{}", home.html);
    assert!(
        home.html.contains(&format!(
            "<a href=\"{record}\"><strong>MARTIN</strong> Camille</a>"
        )),
        "{}",
        home.html
    );
    assert!(home.html.contains("12/03/1984"));
    let mut moreau = pro_pages(&w.base, "10000000003").await;
    let other = moreau.get("/pro").await;
    assert!(!other.html.contains("MARTIN"), "{}", other.html);
}

/// Issue 33: without the INS at hand, a professional finds the record by the four identity
/// traits (case aside), traced and kept like a lookup by INS; a mistyped trait finds nothing,
/// said in French with what was typed kept; the API takes the same traits.
#[tokio::test]
async fn a_patient_is_found_by_identity_traits_when_the_ins_is_not_at_hand() {
    let w = World::start().await;
    let mut petit = pro_pages(&w.base, "10000000002").await;
    let home = petit.get("/pro").await;
    assert!(
        home.html
            .contains("Sans l'INS : rechercher par les traits d'identité")
    );
    async fn by_traits(b: &mut Browser, csrf: &str, name: &str, birth: &str) -> Page {
        b.post(
            "/pro/traits",
            &[
                ("csrf", csrf),
                ("nom", name),
                ("prenom", "camille"),
                ("naissance", birth),
                ("sexe", "female"),
            ],
        )
        .await
    }
    let p = by_traits(&mut petit, &home.csrf(), "MARTIN", "1984").await;
    assert_eq!(p.status, 400);
    assert!(
        p.html.contains("JJ/MM/AAAA") && p.html.contains("value=\"MARTIN\""),
        "{}",
        p.html
    );
    let p = by_traits(&mut petit, &p.csrf(), "MARTINE", "12/03/1984").await;
    assert_eq!(p.status, 404);
    assert!(
        p.html.contains("Aucun dossier ouvert ne correspond à ces traits"),
        "{}",
        p.html
    );
    assert!(p.html.contains("<details open>") && p.html.contains("value=\"MARTINE\""));
    let found = by_traits(&mut petit, &p.csrf(), "martin", "12/03/1984").await;
    assert_eq!(found.status, 303, "{}", found.html);
    let record = find_camille(&mut petit).await;
    assert_eq!(found.location(), record, "the same record as by INS");
    let page = petit.get(&record).await;
    assert!(page.html.contains("MARTIN") && page.html.contains("12/03/1984"));
    // The API: the same four traits, or the INS, not a mix.
    let token = w.pro("10000000003").await;
    let r = post(
        &w.c,
        &format!("{}/api/v1/pro/patients/lookup", w.base),
        As::Bearer(&token),
        &json!({"birth_name": "Martin", "given_name": "Camille", "birth_date": "1984-03-12", "sex": "female"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let by_traits = r.json::<serde_json::Value>().await.unwrap()["patient"].clone();
    assert_eq!(by_traits.as_str(), Some(w.camille_for(&token).await.as_str()));
    let r = post(
        &w.c,
        &format!("{}/api/v1/pro/patients/lookup", w.base),
        As::Bearer(&token),
        &json!({"ins": camille_ins(), "birth_name": "MARTIN"}),
    )
    .await;
    assert_eq!(r.status(), 400);
}
