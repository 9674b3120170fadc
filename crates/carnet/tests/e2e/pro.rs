//! The professional's side (issue 33) in the pages and the API, against the real server:
//! whose record it is and what the gate decided, the first view and search (DM-8), a
//! document's page and filing (DM-3), care-team access and consents (AC-1b), today's patients
//! and the lookup by identity traits.

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

/// Issue 33, AC-3: the patients who authorised a professional, one click away: Camille's
/// médecin traitant and the doctor she granted find her without her INS; a professional she
/// never authorised does not; a block takes her off the list at once. Each listing is an
/// identity check in her history.
#[tokio::test]
async fn the_patients_who_authorised_a_professional_are_listed_ac3() {
    let t = tempfile::tempdir().unwrap();
    let demo = start_demo(&t.path().join("data"));
    let mut leroy = pro_pages(&demo.base, "10000000001").await;
    let home = leroy.get("/pro").await;
    assert!(home.html.contains("href=\"/pro/patients\""), "{}", home.html);
    let list = leroy.get("/pro/patients").await;
    assert_eq!(list.status, 200);
    assert!(
        list.html.contains("<strong>MARTIN</strong> Camille</a>"),
        "{}",
        list.html
    );
    let mut petit = pro_pages(&demo.base, "10000000002").await;
    assert!(
        petit
            .get("/pro/patients")
            .await
            .html
            .contains("<strong>MARTIN</strong> Camille</a>")
    );
    let mut moreau = pro_pages(&demo.base, "10000000003").await;
    let none = moreau.get("/pro/patients").await;
    assert!(!none.html.contains("MARTIN"), "{}", none.html);
    assert!(none.html.contains("Aucun patient ne vous a désigné"));

    // Camille blocks Dr PETIT: she leaves his list on his next look.
    let mut camille = Browser::new(&demo.base);
    camille.login().await;
    let page = camille.get("/autorisations").await;
    let blocked = camille
        .post(
            "/autorisations",
            &[
                ("csrf", &page.csrf()),
                ("action", "block"),
                ("rpps", "10000000002"),
            ],
        )
        .await;
    assert_eq!(blocked.status, 303, "{}", blocked.html);
    assert!(!petit.get("/pro/patients").await.html.contains("MARTIN"));
    assert!(leroy.get("/pro/patients").await.html.contains("MARTIN"));
    // Her history says who checked her identity.
    let history = camille.get("/historique").await;
    assert!(history.html.contains("Claire LEROY"), "{}", history.html);
}

/// A new conversation from the record's messaging page, with an appointment at `rdv`.
async fn send_appointment(b: &mut Browser, record: &str, subject: &str, rdv: &str) -> Page {
    let url = format!("{record}/messages");
    let p = b.get(&url).await;
    b.post_files(
        &url,
        &[
            ("csrf", &p.csrf()),
            ("objet", subject),
            ("texte", "Venez à jeun."),
            ("rdv", rdv),
            ("rdv_lieu", "Cabinet du Dr LEROY, Lyon"),
        ],
        "pieces",
        ("vide.txt", "text/plain", b""),
    )
    .await
}

/// Issue 33 (seeds): a professional sends an appointment through messaging. The médecin
/// traitant's is written in the message and added to the patient's agenda with a reminder the
/// day before; a nurse the patient never authorised writes it in the message only, and is told
/// why; an unreadable date sends nothing.
#[tokio::test]
async fn an_appointment_is_sent_through_messaging() {
    let w = World::start().await;
    let mut leroy = pro_pages(&w.base, "10000000001").await;
    let record = find_camille(&mut leroy).await;
    let bad = send_appointment(&mut leroy, &record, "Bilan sanguin", "demain matin").await;
    assert_eq!(bad.status, 200, "{}", bad.html);
    assert!(
        bad.html.contains("La date du rendez-vous est illisible"),
        "{}",
        bad.html
    );
    let sent = send_appointment(&mut leroy, &record, "Bilan sanguin", "2027-01-12T08:30").await;
    assert_eq!(sent.status, 303, "{}", sent.html);
    assert!(sent.location().ends_with("?rdv=agenda"), "{}", sent.location());
    let thread = leroy.get(sent.location()).await;
    assert!(
        thread.html.contains("le rendez-vous est ajouté à l&#39;agenda du patient")
            && thread.html.contains("Rendez-vous : le 12/01/2027 à 08\u{a0}h\u{a0}30, Cabinet du Dr LEROY, Lyon (ajouté à votre agenda)."),
        "{}",
        thread.html
    );
    let agenda = get_as(&w.c, &format!("{}/api/v1/me/agenda", w.base), &w.camille).await;
    let events = agenda["events"]
        .as_array()
        .or(agenda.as_array())
        .cloned()
        .unwrap_or_default();
    let added = events
        .iter()
        .find(|e| e["title"] == "Bilan sanguin")
        .unwrap_or_else(|| panic!("not in the agenda: {agenda}"));
    assert_eq!(added["kind"], "appointment");
    assert_eq!(added["location"], "Cabinet du Dr LEROY, Lyon");
    assert_eq!(added["reminders"], json!([1440]), "{added}");
    // A nurse Camille never authorised: the date goes in the message only, and she is told.
    let mut moreau = pro_pages(&w.base, "10000000003").await;
    let record = find_camille(&mut moreau).await;
    let sent = send_appointment(&mut moreau, &record, "Pansement", "2027-01-13T10:00").await;
    assert_eq!(sent.status, 303, "{}", sent.html);
    assert!(sent.location().ends_with("?rdv=message"), "{}", sent.location());
    let thread = moreau.get(sent.location()).await;
    assert!(
        thread.html.contains("(à noter dans votre agenda)"),
        "{}",
        thread.html
    );
    let agenda = get_as(&w.c, &format!("{}/api/v1/me/agenda", w.base), &w.camille).await;
    assert!(!agenda.to_string().contains("Pansement"), "{agenda}");
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

/// The professional's record: the medical profile beside the documents, and the emergency
/// access (AC-5) with a required reason.
#[tokio::test]
async fn pro_pages_say_whose_record_and_what_the_gate_decided_issue33() {
    let t = tempfile::tempdir().unwrap();
    let demo = start_demo(&t.path().join("data"));
    let mut b = Browser::new(&demo.base);
    assert_eq!(b.login().await, "/");
    let p = b.get("/profil").await;
    let p = b
        .post(
            "/profil",
            &[
                ("csrf", &p.csrf()),
                ("section", "allergies"),
                ("texte", "Allergie à la pénicilline"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    // Dr PETIT (médecin, authorised in the demo) sees Camille's profile beside her documents,
    // under the identity banner (ID-1), and authors named as who they are (PR-3).
    let mut petit = Browser::new(&demo.base);
    let p = petit.get("/pro").await;
    petit
        .post("/pro/connexion", &[("csrf", &p.csrf()), ("rpps", "10000000002")])
        .await;
    let p = petit.get("/pro").await;
    let ins = demo_ins('2', "8403", 1);
    let p = petit.post("/pro", &[("csrf", &p.csrf()), ("ins", &ins)]).await;
    let record_url = p.location().to_string();
    let record = petit.get(&record_url).await;
    let banner = |html: &str| {
        let i = html.find("class=\"patient\"").expect("an identity banner");
        let j = html[i..].find("</section>").unwrap() + i;
        html[i..j].to_string()
    };
    let id = banner(&record.html);
    for trait_ in [
        "MARTIN",
        "Camille",
        "Féminin",
        "Née le",
        "12/03/1984",
        "INS qualifiée",
    ] {
        assert!(id.contains(trait_), "{trait_}: {id}");
    }
    let spaced: String = ins.chars().filter(|c| c.is_ascii_digit()).collect();
    assert!(id.replace('\u{a0}', "").contains(&spaced), "{id}");
    assert!(
        record
            .html
            .contains("<title>Dossier de Camille MARTIN — Carnet</title>")
    );
    assert!(record.html.contains("Profil médical") && record.html.contains("Compte rendu de consultation"));
    assert!(
        record.html.contains("Allergie à la pénicilline") && record.html.contains("noté par le patient"),
        "{}",
        record.html
    );
    assert!(!record.html.contains("vous-même"), "{}", record.html);
    assert!(record.html.contains("Dr Claire LEROY"), "{}", record.html);
    // The filing form and the messages repeat whose record it is; the form names categories.
    let form = petit.get(&format!("{record_url}/documents/ajout")).await;
    assert_eq!(banner(&form.html), id);
    assert!(form.html.contains(">Catégorie<") && !form.html.contains(">Classe<"));
    assert_eq!(
        banner(&petit.get(&format!("{record_url}/messages")).await.html),
        id
    );

    // Sophie MOREAU (nurse, no grant): the record's address alone shows nothing, like a missing
    // record (AC-8); after the lookup by INS, whose record it is and that it is not open to
    // her — never an empty record — and the emergency form.
    let mut moreau = Browser::new(&demo.base);
    let p = moreau.get("/pro").await;
    moreau
        .post("/pro/connexion", &[("csrf", &p.csrf()), ("rpps", "10000000003")])
        .await;
    assert_eq!(moreau.get(&record_url).await.status, 404);
    let p = moreau.get("/pro").await;
    let p = moreau.post("/pro", &[("csrf", &p.csrf()), ("ins", &ins)]).await;
    assert_eq!(p.location(), record_url);
    let before = moreau.get(&record_url).await;
    assert_eq!(before.status, 200);
    assert_eq!(banner(&before.html), id);
    assert!(
        before.html.contains("Ce dossier ne vous est pas ouvert"),
        "{}",
        before.html
    );
    assert!(before.html.contains("pas parce que le dossier serait vide"));
    assert!(!before.html.contains("Aucun document") && !before.html.contains("class=\"docs\""));
    assert!(before.html.contains("Accès en urgence (bris de glace)"));
    let url = format!("{record_url}/urgence");
    let p = moreau
        .post(&url, &[("csrf", &before.csrf()), ("motif", "  ")])
        .await;
    assert_eq!(p.status, 400);
    assert!(
        p.html.contains("Indiquez le motif de l&#39;urgence"),
        "{}",
        p.html
    );
    let p = moreau.post(&url, &[("motif", "Malaise au domicile")]).await;
    assert_eq!(p.status, 403, "no token, no emergency");
    let p = moreau
        .post(
            &url,
            &[("csrf", &before.csrf()), ("motif", "Malaise au domicile")],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.html);
    let until = "Accès en urgence ouvert jusqu'au ";
    let i = p.html.find(until).expect("until when") + until.len();
    assert!(
        p.html[i..].starts_with(|c: char| c.is_ascii_digit()),
        "{}",
        &p.html[i..]
    );
    // Once open, the form is gone: it says until when instead.
    assert!(!p.html.contains("name=\"motif\""), "{}", p.html);
    // The language switch of that page reloads its path with GET: the record again.
    assert_eq!(moreau.get(&url).await.status, 200);
    let after = moreau.get(&record_url).await;
    assert!(after.html.contains("class=\"docs\""));
    assert!(!after.html.contains("name=\"motif\""));
    // Camille reads it in her history, and was told once, not once per page read (AC-5).
    let h = b.get("/historique").await;
    assert!(
        h.html.contains("en urgence (motif : « Malaise au domicile »)"),
        "{}",
        h.html
    );
    let told = || async {
        outbox(&b.c, &demo.base)
            .await
            .iter()
            .filter(|m| {
                m["subject"].as_str().unwrap_or("").contains("urgence")
                    && m["to"] == "camille.martin@demo.carnet.invalid"
            })
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while told().await == 0 {
        assert!(std::time::Instant::now() < deadline, "the holder was told");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(told().await, 1);
    // Her médecin traitant is told in their web space, with the way to the record.
    let mut leroy = Browser::new(&demo.base);
    let p = leroy.get("/pro").await;
    leroy
        .post("/pro/connexion", &[("csrf", &p.csrf()), ("rpps", "10000000001")])
        .await;
    let home = leroy.get("/pro").await;
    assert!(
        home.html.contains("Vos alertes") && home.html.contains("ouvert en urgence"),
        "{}",
        home.html
    );
    assert!(home.html.contains(&format!("href=\"{record_url}\"")));
    // Who opened whose record, and why (AC-5, issue 33).
    assert!(
        home.html.contains(
            "Sophie MOREAU (infirmier ou infirmière) a ouvert en urgence le dossier de Camille MARTIN"
        ),
        "{}",
        home.html
    );
    assert!(
        home.html.contains("Motif déclaré : « Malaise au domicile »"),
        "{}",
        home.html
    );
    let mt = leroy.get(&record_url).await;
    assert!(
        mt.html.contains("Vous avez accès à l'ensemble du dossier"),
        "{}",
        mt.html
    );
    assert!(!mt.html.contains("name=\"motif\""));
    assert!(mt.html.contains("Dr Claire LEROY (vous)"), "{}", mt.html);
}

/// Issue 7, point 2: a professional files a document from the patient's page, kept from the
/// patient until an announcement consultation (DM-6): it is in the professional's view of the
/// record, not in the patient's list; a file that is not what it says is refused in French, with
/// the title kept.
#[tokio::test]
async fn a_professional_files_a_document_from_the_record_page() {
    let t = tempfile::tempdir().unwrap();
    let demo = start_demo(&t.path().join("data"));
    let mut petit = Browser::new(&demo.base);
    let p = petit.get("/pro").await;
    petit
        .post("/pro/connexion", &[("csrf", &p.csrf()), ("rpps", "10000000002")])
        .await;
    let p = petit.get("/pro").await;
    let ins = demo_ins('2', "8403", 1);
    let p = petit.post("/pro", &[("csrf", &p.csrf()), ("ins", &ins)]).await;
    let record_url = p.location().to_string();
    let record = petit.get(&record_url).await;
    assert!(
        record.html.contains(&format!("{record_url}/documents/ajout")),
        "{}",
        record.html
    );
    let form_url = format!("{record_url}/documents/ajout");
    let f = petit.get(&form_url).await;
    assert_eq!(f.status, 200);
    let p = petit
        .post_multipart(
            &form_url,
            &[
                ("csrf", &f.csrf()),
                ("titre", "IRM du genou droit"),
                ("classe", "imaging"),
            ],
            ("irm.pdf", "application/pdf", b"not a pdf"),
        )
        .await;
    assert_eq!(p.status, 422, "{}", p.html);
    assert!(p.html.contains("role=\"alert\"") && p.html.contains("value=\"IRM du genou droit\""));
    let p = petit
        .post_multipart(
            &form_url,
            &[
                ("csrf", &f.csrf()),
                ("titre", "IRM du genou droit"),
                ("classe", "imaging"),
                ("attente", "1"),
            ],
            (
                "irm.txt",
                "text/plain",
                "Compte rendu d'IRM : lésion méniscale.".as_bytes(),
            ),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let record = petit.get(&record_url).await;
    assert!(
        record.html.contains("IRM du genou droit"),
        "the professional sees it"
    );
    // DM-6: Camille does not see it yet.
    let mut b = Browser::new(&demo.base);
    assert_eq!(b.login().await, "/");
    let docs = b.get("/documents").await;
    assert!(!docs.html.contains("IRM du genou droit"), "held from the patient");
}

/// DM-8, issue 33: the record opens on the first view — current documents of the last two
/// years, ranked and grouped by category with their counts — and the professional searches
/// within it by words, category, author, period and type; mistakes are said in French and
/// a search never shows what the gate keeps from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pro_record_opens_on_the_first_view_and_searches_dm8() {
    let t = tempfile::tempdir().unwrap();
    let demo = start_demo(&t.path().join("data"));
    let mut leroy = Browser::new(&demo.base);
    let p = leroy.get("/pro").await;
    leroy
        .post("/pro/connexion", &[("csrf", &p.csrf()), ("rpps", "10000000001")])
        .await;
    let p = leroy.get("/pro").await;
    let ins = demo_ins('2', "8403", 1);
    let p = leroy.post("/pro", &[("csrf", &p.csrf()), ("ins", &ins)]).await;
    let record = p.location().to_string();
    let first = leroy.get(&record).await;
    let html = &first.html;
    assert!(
        html.contains("Vue d&#39;ensemble") || html.contains("Vue d'ensemble"),
        "{html}"
    );
    assert!(html.contains("3 documents"), "{html}");
    for group in [
        "Comptes rendus <span class=\"muted\">(1)</span>",
        "Imagerie médicale <span class=\"muted\">(1)</span>",
        "Ordonnances <span class=\"muted\">(1)</span>",
    ] {
        assert!(html.contains(group), "{group}: {html}");
    }
    // Reports and results rank above prescriptions (document::first_view_rank).
    assert!(html.find("Comptes rendus").unwrap() < html.find("Ordonnances <span").unwrap());
    let search = |q: &str| format!("{record}?{q}");
    let found = |html: &str| html.matches("<li class=\"doc\">").count();
    let r = leroy.get(&search("mots=%C3%A9chographie")).await;
    assert_eq!(found(&r.html), 1, "{}", r.html);
    assert!(r.html.contains("Échographie abdominale") && r.html.contains("1 document."));
    let r = leroy.get(&search("categorie=prescriptions")).await;
    assert_eq!(found(&r.html), 1);
    assert!(r.html.contains(">Ordonnance<"));
    let r = leroy.get(&search("auteur=moi")).await;
    assert_eq!(found(&r.html), 2, "{}", r.html);
    let r = leroy.get(&search("type=18748-4")).await;
    assert_eq!(found(&r.html), 1);
    // Types are chosen by their French names, the one searched kept selected.
    assert!(
        r.html
            .contains("<option value=\"18748-4\" selected>Compte rendu d&#39;imagerie médicale</option>"),
        "{}",
        r.html
    );
    let r = leroy.get(&search("auteur=patient")).await;
    assert_eq!(found(&r.html), 0);
    assert!(r.html.contains("Aucun document ne correspond à cette recherche"));
    let r = leroy.get(&search("du=01/01/2020&au=31/12/2099")).await;
    assert_eq!(found(&r.html), 3);
    let r = leroy.get(&search("du=31/02/2026")).await;
    assert!(
        r.html.contains("« 31/02/2026 » n&#39;est pas une date"),
        "{}",
        r.html
    );
    assert_eq!(found(&r.html), 0);
    let r = leroy.get(&search("tout=1")).await;
    assert_eq!(found(&r.html), 3);
    assert!(
        r.html.contains("Revenir à la vue d&#39;ensemble") || r.html.contains("Revenir à la vue d'ensemble")
    );
    // The nurse without access searches nothing: the refusal, no list, no count.
    let mut moreau = Browser::new(&demo.base);
    let p = moreau.get("/pro").await;
    moreau
        .post("/pro/connexion", &[("csrf", &p.csrf()), ("rpps", "10000000003")])
        .await;
    let p = moreau.get("/pro").await;
    moreau.post("/pro", &[("csrf", &p.csrf()), ("ins", &ins)]).await;
    let r = moreau.get(&search("mots=ordonnance&tout=1")).await;
    assert_eq!(r.status, 200);
    assert!(r.html.contains("Ce dossier ne vous est pas ouvert"));
    assert_eq!(found(&r.html), 0);
    assert!(
        !r.html.contains("document.") && !r.html.contains("documents."),
        "{}",
        r.html
    );
}

/// Issue 33, DM-3, DM-4: a document opens in a page of its own under the identity banner,
/// its text shown in the page; its author archives and restores it, answers the holder's
/// deletion request and deletes it after a confirmation; another professional reads it with
/// none of these; one without access finds no such page (AC-8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pro_document_page_shows_it_and_lets_its_author_work_on_it() {
    let t = tempfile::tempdir().unwrap();
    let demo = start_demo(&t.path().join("data"));
    let ins = demo_ins('2', "8403", 1);
    let pro = |rpps: &'static str| {
        let base = demo.base.clone();
        let ins = ins.clone();
        async move {
            let mut b = Browser::new(&base);
            let p = b.get("/pro").await;
            b.post("/pro/connexion", &[("csrf", &p.csrf()), ("rpps", rpps)])
                .await;
            let p = b.get("/pro").await;
            let p = b.post("/pro", &[("csrf", &p.csrf()), ("ins", &ins)]).await;
            let record = p.location().to_string();
            (b, record)
        }
    };
    let (mut leroy, record) = pro("10000000001").await;
    let first = leroy.get(&record).await;
    let link = |html: &str, title: &str| {
        let end = html.find(&format!("\">{title}</a>")).expect(title);
        let start = html[..end].rfind("href=\"").unwrap() + 6;
        html[start..end].to_string()
    };
    let report = link(&first.html, "Compte rendu de consultation");
    assert!(report.starts_with(&format!("{record}/documents/")), "{report}");
    let page = leroy.get(&report).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("class=\"patient\""));
    assert!(
        page.html
            .contains("<pre class=\"document\">Consultation du 12 mars</pre>"),
        "{}",
        page.html
    );
    assert!(page.html.contains("Vous en êtes l&#39;auteur") || page.html.contains("Vous en êtes l'auteur"));
    let p = leroy
        .post(&report, &[("csrf", &page.csrf()), ("action", "archiver")])
        .await;
    assert_eq!(p.status, 303);
    let page = leroy.get(p.location()).await;
    assert!(page.html.contains("Le document est archivé."), "{}", page.html);
    assert!(page.html.contains("Ne plus archiver"));
    let p = leroy
        .post(&report, &[("csrf", &page.csrf()), ("action", "desarchiver")])
        .await;
    let page = leroy.get(p.location()).await;
    assert!(page.html.contains("n&#39;est plus archivé") || page.html.contains("n'est plus archivé"));

    // Camille asks for the prescription's deletion; Dr LEROY refuses (legitimate reason).
    let mut camille = Browser::new(&demo.base);
    camille.login().await;
    let docs = camille.get("/documents").await;
    let own = link(&docs.html, "Ordonnance");
    let d = camille.get(&own).await;
    let r = camille
        .post(
            &format!("{own}/demande-suppression"),
            &[("csrf", &d.csrf()), ("motif", "Erreur de patient")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.html);
    let prescription = link(&first.html, "Ordonnance");
    let page = leroy.get(&prescription).await;
    assert!(
        page.html
            .contains("Le patient demande la suppression de ce document")
    );
    assert!(page.html.contains("Erreur de patient"));
    let p = leroy
        .post(
            &prescription,
            &[("csrf", &page.csrf()), ("action", "refuser-suppression")],
        )
        .await;
    let page = leroy.get(p.location()).await;
    assert!(page.html.contains("Votre refus est enregistré"), "{}", page.html);
    assert!(!page.html.contains("Le patient demande la suppression"));

    // Dr PETIT reads Dr LEROY's report, with no author's action.
    let (mut petit, _) = pro("10000000002").await;
    let page = petit.get(&report).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Dr Claire LEROY") && !page.html.contains("name=\"action\""));
    assert_eq!(
        petit
            .post(&report, &[("csrf", &page.csrf()), ("action", "archiver")])
            .await
            .status,
        404
    );
    // Sophie MOREAU (no access) finds no such page, the INS presented or not.
    let (mut moreau, _) = pro("10000000003").await;
    assert_eq!(moreau.get(&report).await.status, 404);

    // Deleted after a confirmation.
    let confirm = leroy.get(&format!("{report}?confirmer=suppression")).await;
    assert!(confirm.html.contains("Oui, supprimer"));
    let p = leroy
        .post(&report, &[("csrf", &confirm.csrf()), ("action", "supprimer")])
        .await;
    assert_eq!(p.status, 303);
    let after = leroy.get(p.location()).await;
    assert!(after.html.contains("Le document a été supprimé du dossier."));
    assert!(!after.html.contains(">Compte rendu de consultation</a>"));
    assert_eq!(leroy.get(&report).await.status, 404);
}
