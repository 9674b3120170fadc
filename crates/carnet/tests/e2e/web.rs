//! End-to-end: the web interface (issue 7) of the real binary (`carnet demo`).
//!
//! Without a browser: every page and main form works with plain HTTP GET/POST and cookies (no
//! JavaScript anywhere), every POST is refused (403, nothing changed) without the right
//! anti-CSRF token, every response carries the security headers, and page titles hold no
//! health data. With a browser: `tests/browser/run.mjs` drives a real headless Chromium
//! (playwright-core) through the holder / professional / parent scenario and checks each page
//! with axe-core; skipped with a message when `tests/browser/node_modules` or Chromium is missing
//! (`scripts/test-tools` installs both).

use std::path::Path;
use std::process::Command;

use crate::common::browser::*;
use crate::common::*;
use serde_json::{Value, json};

/// The one script of the pages: passkeys, a progressive enhancement (`web/static/passkey.js`).
const PASSKEY_SCRIPT: &str = "<script src=\"/static/passkey.js\" defer></script>";

/// The text of a page as a person reads it: its `<main>`, tags removed.
fn visible_text(html: &str) -> String {
    let main = html.split("<main").nth(1).unwrap_or(html);
    let main = main.split("</main>").next().unwrap_or(main);
    let mut out = String::new();
    let mut in_tag = false;
    for ch in main.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The id and `masked` flag of Camille's document titled `title`, through the JSON API.
async fn document(b: &Browser, title: &str) -> (String, bool) {
    let v = b.json("/api/v1/me/documents").await;
    let d = v["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["title"] == title)
        .unwrap_or_else(|| panic!("no document {title} in {v}"));
    (
        d["id"].as_str().unwrap().to_string(),
        d["masked"].as_bool().unwrap(),
    )
}

fn assert_security_headers(p: &Page, what: &str) {
    let h = |n: &str| {
        p.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {n} header"))
            .to_string()
    };
    let csp = h("content-security-policy");
    for d in [
        "default-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(d), "{what}: CSP lacks {d}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(h("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(h("x-frame-options"), "DENY", "{what}");
}

/// Every page and main form works with plain HTTP and cookies: no script in any page but the
/// passkey enhancement (external, deferred; the forms never need it), a
/// readable French message that keeps what was typed, the holder's and the professional's
/// journeys end to end.
#[tokio::test]
async fn pages_work_without_javascript() {
    let t = tempfile::tempdir().unwrap();
    let demo = start_demo(&t.path().join("data"));
    let mut b = Browser::new(&demo.base);

    // A visitor: the landing page, then the holder pages redirect to the login.
    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.html.contains("lang=\"fr\"") && home.html.contains("espace numérique de santé"));
    assert_eq!(b.get("/documents").await.location(), "/connexion");

    // A wrong password: a French message, the login kept, never the password.
    let p = b.get("/connexion").await;
    let p = b
        .post(
            "/connexion",
            &[
                ("csrf", &p.csrf()),
                ("login", LOGIN),
                ("password", "wrong-password-1"),
            ],
        )
        .await;
    assert_eq!(p.status, 401);
    assert!(
        p.html.contains("Identifiant ou mot de passe incorrect"),
        "{}",
        p.html
    );
    assert!(p.html.contains(&format!("value=\"{LOGIN}\"")));
    assert!(!p.html.contains("wrong-password-1"));

    assert_eq!(b.login().await, "/");
    let mut pages = Vec::new();
    for path in [
        "/",
        "/documents",
        "/profil",
        "/historique",
        "/autorisations",
        "/notifications",
        "/espace",
        "/messages",
        "/agenda",
        "/remboursements",
    ] {
        let p = b.get(path).await;
        assert_eq!(p.status, 200, "{path}: {}", p.html);
        assert!(
            !p.html.replace(PASSKEY_SCRIPT, "").contains("<script"),
            "{path} has a script other than the passkey enhancement"
        );
        assert!(!p.html.contains("style="), "{path} has an inline style");
        assert!(p.html.contains("<main"), "{path}");
        // What a person reads: French dates, never an ISO timestamp, nor a vaccine "late
        // since 1985" because the record is empty (issue 32).
        let text = visible_text(&p.html);
        assert!(!has_iso_timestamp(&text), "{path} shows an ISO timestamp: {text}");
        assert!(!text.contains("en retard depuis"), "{path}: {text}");
        pages.push(p);
    }
    assert!(pages[0].html.contains("Bonjour Camille"));
    assert!(pages[0].html.contains("3 documents"));
    // What is new also says the unread message and the next events (MS-4, AG-1).
    assert!(pages[0].html.contains("1 message non lu."), "{}", pages[0].html);
    assert!(pages[0].html.contains("Séance de kinésithérapie"));

    // RB-1, RB-2: the reimbursements page (demo lines): totals, a bar chart, the table; the
    // filters are POSTed with the CSRF token, a bad date is a French message, and the
    // selection exports as CSV.
    let rb = &pages[9];
    assert!(rb.html.contains("<h1>Remboursements</h1>"), "{}", rb.html);
    assert!(rb.html.contains("<svg") && rb.html.contains("role=\"img\""));
    assert!(rb.html.contains("<dt>Reste à charge</dt>"));
    assert_eq!(
        rb.html.matches("<tr>").count(),
        31,
        "30 demo lines and the header row"
    );
    assert!(rb.html.contains("aria-current=\"page\">Remboursements</a>"));
    let rb_csrf = rb.csrf();
    let form = |ty: &'static str, from: &'static str| {
        vec![("du", from), ("au", ""), ("professionnel", ""), ("type", ty)]
    };
    let mut fields = form("pharmacy", "");
    fields.push(("csrf", &rb_csrf));
    let f = b.post("/remboursements", &fields).await;
    assert_eq!(f.status, 200);
    assert!(f.html.contains("<td>Pharmacie</td>") && !f.html.contains("<td>Consultation</td>"));
    let mut fields = form("", "2026-02-30");
    fields.push(("csrf", &rb_csrf));
    let f = b.post("/remboursements", &fields).await;
    assert_eq!(f.status, 422);
    assert!(f.html.contains("n&#39;est pas une date valide"), "{}", f.html);
    let mut fields = form("pharmacy", "");
    fields.push(("csrf", &rb_csrf));
    let csv = b.post("/remboursements/export", &fields).await;
    assert_eq!(csv.status, 200);
    assert!(csv.html.starts_with("date_of_care,type_of_care,"), "{}", csv.html);
    assert!(csv.html.lines().skip(1).all(|l| l.contains(",pharmacy,")));
    let f = b.post("/remboursements", &form("", "")).await;
    assert_eq!(f.status, 403, "no CSRF token, nothing shown");

    // Documents: filter (POSTed), open one, mask it, unmask it.
    let csrf = pages[1].csrf();
    let p = b
        .post(
            "/documents/recherche",
            &[("csrf", &csrf), ("classe", "imaging"), ("q", "")],
        )
        .await;
    assert_eq!(p.status, 200);
    assert!(p.html.contains("Échographie abdominale") && !p.html.contains("Ordonnance</a>"));
    let p = b
        .post(
            "/documents/recherche",
            &[("csrf", &csrf), ("classe", "nope"), ("q", "écho")],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("Cette catégorie n&#39;existe pas") && p.html.contains("value=\"écho\""));
    let (id, masked) = document(&b, "Ordonnance").await;
    assert!(!masked);
    let page = b.get(&format!("/documents/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains(&format!("/api/v1/me/documents/{id}/content")));
    let p = b
        .post(
            &format!("/documents/{id}/masquage"),
            &[("csrf", &page.csrf()), ("masque", "1")],
        )
        .await;
    assert_eq!(p.status, 303);
    assert!(document(&b, "Ordonnance").await.1);

    // Add a document of one's own with a multipart form; a bad one keeps the typed title.
    let p = b
        .post_multipart(
            "/documents",
            &[
                ("csrf", &csrf),
                ("titre", "Bilan sanguin"),
                ("classe", "holder_documents"),
            ],
            ("bilan.txt", "text/plain", b"Glycemie 0,9 g/L"),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert!(p.location().starts_with("/documents/"));
    assert!(b.get(p.location()).await.html.contains("Bilan sanguin"));
    let p = b
        .post_multipart(
            "/documents",
            &[
                ("csrf", &csrf),
                ("titre", "Radio du genou"),
                ("classe", "holder_documents"),
            ],
            ("radio.pdf", "application/pdf", b"this is not a PDF"),
        )
        .await;
    assert_eq!(p.status, 400, "{}", p.html);
    assert!(p.html.contains("role=\"alert\"") && p.html.contains("value=\"Radio du genou\""));

    // Profile: an entry and a measurement; the chart is an <img> of the JSON API's SVG.
    let csrf = pages[2].csrf();
    let p = b
        .post(
            "/profil",
            &[
                ("csrf", &csrf),
                ("section", "allergies"),
                ("texte", "Pénicilline"),
                ("date", "2019"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let p = b
        .post(
            "/profil/mesures",
            &[
                ("csrf", &csrf),
                ("mesure", "29463-7"),
                ("valeur", "9999"),
                ("date", ""),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("comprise entre") && p.html.contains("value=\"9999\""));
    // Dates as French people type them (issue 32): a text field, JJ/MM/AAAA; a wrong one in
    // words, kept.
    assert!(
        p.html.contains("id=\"date-m\" name=\"date\" type=\"text\""),
        "{}",
        p.html
    );
    let p = b
        .post(
            "/profil/mesures",
            &[
                ("csrf", &csrf),
                ("mesure", "29463-7"),
                ("valeur", "62"),
                ("date", "31/02/2026"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(
        p.html.contains("sous la forme JJ/MM/AAAA") && p.html.contains("value=\"31/02/2026\""),
        "{}",
        p.html
    );
    let p = b
        .post(
            "/profil/mesures",
            &[
                ("csrf", &csrf),
                ("mesure", "29463-7"),
                ("valeur", "62,4"),
                ("date", "12/05/2026"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let p = b
        .post(
            "/profil/mesures",
            &[
                ("csrf", &csrf),
                ("mesure", "29463-7"),
                ("valeur", "61,8"),
                ("date", ""),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let profile = b.get("/profil").await;
    assert!(profile.html.contains("Pénicilline"));
    assert!(
        profile
            .html
            .contains("<img src=\"/api/v1/me/measurements/29463-7/chart.svg\"")
    );
    let svg = b.get("/api/v1/me/measurements/29463-7/chart.svg").await;
    assert_eq!(svg.status, 200);
    assert!(svg.html.contains("<svg"));

    // Authorisations: an unknown RPPS is refused in French and kept; a known one is granted.
    let csrf = pages[4].csrf();
    let p = b
        .post(
            "/autorisations",
            &[("csrf", &csrf), ("action", "grant"), ("rpps", "123")],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("Un numéro RPPS a 11 chiffres") && p.html.contains("value=\"123\""));
    let p = b
        .post(
            "/autorisations",
            &[("csrf", &csrf), ("action", "grant"), ("rpps", "10000000003")],
        )
        .await;
    assert_eq!(p.status, 303);
    assert!(b.get("/autorisations").await.html.contains("Sophie MOREAU"));
    // Issue 32, journey 7 (AC-3, AC-4): hiding everything and dropping the médecin traitant
    // ask first; a blocked professional is no longer listed as authorised.
    for form in [
        vec![("action", "hide_all"), ("value", "1")],
        vec![("action", "medecin_retirer"), ("value", "")],
    ] {
        let mut f = vec![("csrf", csrf.as_str())];
        f.extend(form.iter().copied());
        let p = b.post("/autorisations", &f).await;
        assert_eq!(p.status, 200, "{}", p.html);
        assert!(
            p.html.contains("name=\"confirme\" value=\"1\"") && p.html.contains("Non, revenir"),
            "{}",
            p.html
        );
    }
    let policy = b.json("/api/v1/me/access").await;
    assert_eq!(
        policy["hide_all"], false,
        "nothing changed before the confirmation: {policy}"
    );
    assert!(!policy["medecin_traitant"].is_null(), "{policy}");
    let p = b
        .post(
            "/autorisations",
            &[
                ("csrf", &csrf),
                ("action", "hide_all"),
                ("value", "1"),
                ("confirme", "1"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    let p = b
        .post(
            "/autorisations",
            &[("csrf", &csrf), ("action", "hide_all"), ("value", "0")],
        )
        .await;
    assert_eq!(p.status, 303, "showing again needs no confirmation");
    let p = b
        .post(
            "/autorisations",
            &[("csrf", &csrf), ("action", "block"), ("rpps", "10000000003")],
        )
        .await;
    assert_eq!(p.status, 303);
    let page = b.get("/autorisations").await;
    let granted = page
        .html
        .split("id=\"gr\"")
        .nth(1)
        .unwrap()
        .split("</section>")
        .next()
        .unwrap();
    let blocked = page
        .html
        .split("id=\"bl\"")
        .nth(1)
        .unwrap()
        .split("</section>")
        .next()
        .unwrap();
    assert!(
        !granted.contains("Sophie MOREAU") && blocked.contains("Sophie MOREAU"),
        "{}",
        page.html
    );
    let p = b
        .post("/notifications", &[("csrf", &csrf), ("email", "1"), ("sms", "1")])
        .await;
    assert_eq!(p.status, 303);
    assert!(
        b.get("/notifications")
            .await
            .html
            .contains("id=\"sms\" name=\"sms\" type=\"checkbox\" value=\"1\" checked")
    );

    // The professional: demo login, lookup by INS (POSTed), documents minus the masked one.
    let mut pro = Browser::new(&demo.base);
    let p = pro.get("/pro").await;
    let p = pro
        .post("/pro/connexion", &[("csrf", &p.csrf()), ("rpps", "10000000002")])
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let p = pro.get("/pro").await;
    assert!(p.html.contains("Dr Julien PETIT"));
    let bad = pro
        .post("/pro", &[("csrf", &p.csrf()), ("ins", "123456789012345")])
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.html.contains("value=\"123456789012345\""));
    let ins = demo_ins('2', "8403", 1);
    let p = pro.post("/pro", &[("csrf", &p.csrf()), ("ins", &ins)]).await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert!(!p.location().contains(&ins));
    let record = pro.get(p.location()).await;
    assert!(record.html.contains("Compte rendu de consultation"));
    assert!(record.html.contains("Échographie abdominale"));
    assert!(
        !record.html.contains(">Ordonnance</a>"),
        "the masked document is shown"
    );

    // The holder sees the access in plain words.
    let h = b.get("/historique").await;
    assert!(
        h.html
            .contains("Dr Julien PETIT (médecin) a consulté vos documents le "),
        "{}",
        h.html
    );
    let home = b.get("/").await;
    assert!(
        home.html
            .contains("Dr Julien PETIT (médecin) a consulté vos documents"),
        "{}",
        home.html
    );
    let lost = b.get("/profile").await;
    assert_eq!(lost.status, 404);
    assert!(lost.html.contains("<h1>Page introuvable</h1>"), "{}", lost.html);

    // The parent switches to a child's space, then logs out.
    let spaces = b.get("/espace").await;
    // Inès's space (the form whose button names her).
    let form = spaces
        .html
        .split("<form")
        .find(|f| f.contains("Ouvrir l&#39;espace d&#39;Inès"))
        .unwrap_or_else(|| panic!("{}", spaces.html));
    let i = form.find("name=\"holder\" value=\"").unwrap() + 21;
    let child = form[i..].split('"').next().unwrap().to_string();
    let p = b
        .post("/espace", &[("csrf", &spaces.csrf()), ("holder", &child)])
        .await;
    assert_eq!(p.status, 303);
    let home = b.get("/").await;
    assert!(
        home.html.contains("vous agissez comme représentant"),
        "{}",
        home.html
    );
    // MI-2 on every page a representative reads: Dr LEROY filed two documents in Inès's
    // space, one of them (a report) hidden from her parents; its traces and notices are not
    // shown to her mother, the other's are.
    assert!(home.html.contains("Inès"), "{}", home.html);
    // Issue 32, journey 11: the child's space says whose it is, never greets the parent as its
    // holder; managing it speaks of "this space", and the parent's password is not on it.
    assert!(
        home.html.contains("<h1>Espace d&#39;Inès MARTIN</h1>"),
        "{}",
        home.html
    );
    assert!(!home.html.contains("Bonjour Camille") && !home.html.contains("Votre espace"));
    let manage = b.get("/mon-espace").await;
    assert_eq!(manage.status, 200);
    assert!(
        manage.html.contains("<title>Gérer cet espace — Carnet</title>"),
        "{}",
        manage.html
    );
    assert!(manage.html.contains("Exporter les données de cet espace"));
    assert!(!manage.html.contains("Exporter mes données") && !manage.html.contains("Mot de passe actuel"));
    for path in ["/", "/historique", "/notifications"] {
        let page = b.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.html.contains("(certificats)"), "{path}: {}", page.html);
        assert!(!page.html.contains("(comptes rendus)"), "{path}: {}", page.html);
    }
    let p = b.post("/deconnexion", &[("csrf", &home.csrf())]).await;
    assert_eq!(p.status, 303);
    assert_eq!(b.get("/documents").await.location(), "/connexion");
}

/// English as a second locale: `Accept-Language`, then the `lang` cookie set by `?lang=`;
/// French by default.
#[tokio::test]
async fn english_pages_by_header_and_cookie() {
    let t = tempfile::tempdir().unwrap();
    let demo = start_demo(&t.path().join("data"));
    let mut b = Browser::new(&demo.base);
    let fr = b.get("/").await;
    assert!(fr.html.contains("<html lang=\"fr\">") && fr.html.contains("Se connecter"));
    assert!(fr.html.contains("href=\"?lang=en\""));
    let rb =
        b.c.get(format!("{}/connexion", b.base))
            .header("accept-language", "en-GB,en;q=0.9,fr;q=0.5");
    let en = b.send(rb).await;
    assert!(en.html.contains("<html lang=\"en\">"), "{}", en.html);
    assert!(en.html.contains("Log in to your health space") && en.html.contains("Password"));
    // The switch: a cookie, a redirect to the same path, no query left.
    let p = b.get("/connexion?lang=en").await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location(), "/connexion");
    assert_eq!(b.jar.get("__Host-carnet_lang").map(String::as_str), Some("en"));
    let p = b.get("/connexion").await;
    assert!(p.html.contains("<html lang=\"en\">") && p.html.contains("Log in to your health space"));
    assert_eq!(b.get("//evil.example?lang=en").await.location(), "/");
    // Logged in, in English: the layout, home, the history sentences, the headings.
    assert_eq!(b.login().await, "/");
    let home = b.get("/").await;
    assert!(home.html.contains("Hello Camille"), "{}", home.html);
    assert!(home.title().starts_with("Home"), "{}", home.title());
    assert!(home.html.contains("Main menu") && home.html.contains("Medical profile"));
    assert!(home.html.contains("Every access to your space is traced"));
    for (path, heading) in [
        ("/documents", "Add a document"),
        ("/historique", "<h1>Access history</h1>"),
        ("/autorisations", "Authorised professionals"),
        ("/notifications", "Latest notifications"),
        ("/profil", "By section"),
        ("/mon-espace", "Export my data"),
        ("/messages", "<h1>Messages</h1>"),
        ("/agenda", "<h1>Health agenda</h1>"),
        ("/activation", "<h1>Activate my space</h1>"),
    ] {
        let p = b.get(path).await;
        assert_eq!(p.status, 200, "{path}");
        assert!(p.html.contains(heading), "{path}: {}", p.html);
        assert!(p.html.contains("<html lang=\"en\">"), "{path}");
    }
    // Back to French with the switch.
    assert_eq!(b.get("/?lang=fr").await.status, 303);
    assert!(b.get("/").await.html.contains("Bonjour Camille"));
}

/// Every profile section has its form; domain errors come back in French with what was typed;
/// the vaccination record has its own page; the space is exported and closed in two steps.
#[tokio::test]
async fn profile_forms_and_space_management() {
    let t = tempfile::tempdir().unwrap();
    let demo = start_demo(&t.path().join("data"));
    let mut b = Browser::new(&demo.base);
    assert_eq!(b.login().await, "/");
    let p = b.get("/profil").await;
    let csrf = p.csrf();
    for form in [
        vec![("rubrique", "blood_group"), ("valeur", "AB-")],
        vec![("rubrique", "organ_donation"), ("valeur", "refuses")],
        vec![
            ("rubrique", "trusted_people"),
            ("nom", "Paul MARTIN"),
            ("role", "trusted"),
            ("telephone", "0600000000"),
        ],
        vec![
            ("rubrique", "questionnaire"),
            ("question", "physical_activity"),
            ("reponse", "Vélo trois fois par semaine"),
        ],
    ] {
        let mut f = form.clone();
        f.push(("csrf", &csrf));
        let p = b.post("/profil/rubrique", &f).await;
        assert_eq!(p.status, 303, "{form:?}: {}", p.html);
    }
    let p = b.get("/profil").await;
    for x in [
        "AB-",
        "refuses",
        "Paul MARTIN (personne de confiance)",
        "Vélo trois fois par semaine",
    ] {
        assert!(p.html.contains(x), "{x}: {}", p.html);
    }
    // Errors: in French, the typed values kept.
    let p = b
        .post(
            "/profil/rubrique",
            &[("csrf", &csrf), ("rubrique", "blood_group"), ("valeur", "Z+")],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("Choisissez un groupe sanguin dans la liste."));
    let p = b
        .post(
            "/profil/rubrique",
            &[
                ("csrf", &csrf),
                ("rubrique", "trusted_people"),
                ("nom", "Jeanne"),
                ("role", "x"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(
        p.html.contains("personne de confiance ou personne à prévenir")
            && p.html.contains("value=\"Jeanne\"")
    );
    let p = b
        .post(
            "/profil",
            &[
                ("csrf", &csrf),
                ("section", "conditions"),
                ("texte", "Diabète"),
                ("code", "E1"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(
        p.html
            .contains("Le code « E1 » n&#39;est pas un code CIM-10 (ICD-10) valide"),
        "{}",
        p.html
    );
    assert!(p.html.contains("value=\"Diabète\"") && p.html.contains("value=\"E1\""));
    let p = b
        .post(
            "/profil",
            &[
                ("csrf", &csrf),
                ("section", "conditions"),
                ("texte", "Diabète de type 2"),
                ("code", "E11"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    // The vaccination record.
    let v = b.get("/profil/vaccinations").await;
    assert_eq!(v.status, 200);
    let p = b
        .post(
            "/profil/vaccinations",
            &[
                ("csrf", &csrf),
                ("texte", "Grippe"),
                ("code", "A01"),
                ("date", "2025-10-15"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(
        p.html.contains("code ATC") && p.html.contains("value=\"Grippe\""),
        "{}",
        p.html
    );
    let p = b
        .post(
            "/profil/vaccinations",
            &[
                ("csrf", &csrf),
                ("texte", "Grippe"),
                ("code", "J07BB02"),
                ("date", "2025-10-15"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let v = b.get("/profil/vaccinations").await;
    assert!(v.html.contains("Grippe") && v.html.contains("J07BB02") && v.html.contains("15/10/2025"));

    // The space: export links, then closing in two steps.
    let m = b.get("/mon-espace").await;
    assert!(m.html.contains("href=\"/mon-espace/export\"") && m.html.contains("href=\"/api/v1/me/export\""));
    let p = b.post("/mon-espace/fermer", &[("csrf", &m.csrf())]).await;
    assert_eq!(p.status, 200);
    assert!(p.html.contains("Confirmez-vous la fermeture"));
    let confirmation = {
        let i = p.html.find("name=\"confirmation\" value=\"").unwrap() + 27;
        p.html[i..].split('"').next().unwrap().to_string()
    };
    let wrong = b
        .post(
            "/mon-espace/fermer/confirmer",
            &[("csrf", &m.csrf()), ("confirmation", "not-the-one")],
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(b.get("/documents").await.status == 200, "still open");
    let p = b
        .post(
            "/mon-espace/fermer/confirmer",
            &[("csrf", &m.csrf()), ("confirmation", &confirmation)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert_eq!(p.location(), "/connexion?ok=ferme");
    assert_eq!(b.get("/documents").await.location(), "/connexion");
}

/// Every POST form is refused without the right anti-CSRF token (403), and nothing changes.
#[tokio::test]
async fn posts_without_the_csrf_token_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let demo = start_demo(&t.path().join("data"));
    let mut b = Browser::new(&demo.base);
    // Anonymous forms: no pre-session cookie, or a token of another browser.
    let fresh = b.post("/connexion", &[("login", LOGIN), ("password", "x")]).await;
    assert_eq!(fresh.status, 403);
    let mut other = Browser::new(&demo.base);
    let foreign = other.get("/connexion").await.csrf();
    b.get("/connexion").await;
    let p = b
        .post(
            "/connexion",
            &[
                ("csrf", &foreign),
                ("login", LOGIN),
                ("password", "demo-carnet-2026"),
            ],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(p.html.contains("Ce formulaire a expiré"));

    assert_eq!(b.login().await, "/");
    let (id, _) = document(&b, "Ordonnance").await;
    let good = b.get(&format!("/documents/{id}")).await.csrf();
    for token in [None, Some("0".repeat(64)), Some(foreign.clone())] {
        let mut form = vec![("masque", "1")];
        if let Some(t) = &token {
            form.push(("csrf", t));
        }
        let p = b.post(&format!("/documents/{id}/masquage"), &form).await;
        assert_eq!(p.status, 403, "{token:?}");
        assert!(
            !document(&b, "Ordonnance").await.1,
            "masked without a valid token"
        );
        let p = b
            .post("/autorisations", &[("action", "block"), ("rpps", "10000000002")])
            .await;
        assert_eq!(p.status, 403);
        let p = b.post("/deconnexion", &form).await;
        assert_eq!(p.status, 403);
    }
    let policy: Value =
        b.c.get(format!("{}/api/v1/me/access", b.base))
            .header("cookie", b.cookie_header())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        policy["blocked"],
        serde_json::json!([]),
        "blocked without a token"
    );
    // The session still works (the logout without a token did nothing); the right token does.
    let p = b
        .post(
            &format!("/documents/{id}/masquage"),
            &[("csrf", &good), ("masque", "1")],
        )
        .await;
    assert_eq!(p.status, 303);
    assert!(document(&b, "Ordonnance").await.1);
    // A token is bound to its session: after a new login, the old one is refused.
    let mut again = Browser::new(&demo.base);
    assert_eq!(again.login().await, "/");
    let p = again
        .post(
            &format!("/documents/{id}/masquage"),
            &[("csrf", &good), ("masque", "0")],
        )
        .await;
    assert_eq!(p.status, 403);
    // Professionals' forms too.
    let mut pro = Browser::new(&demo.base);
    let t = pro.get("/pro").await.csrf();
    assert_eq!(
        pro.post("/pro/connexion", &[("csrf", &t), ("rpps", "10000000002")])
            .await
            .status,
        303
    );
    let p = pro.post("/pro", &[("ins", &demo_ins('2', "8403", 1))]).await;
    assert_eq!(p.status, 403);
}

/// Security headers on every page, static file and error; no health data in page titles.
#[tokio::test]
async fn security_headers_and_titles_without_health_data() {
    let t = tempfile::tempdir().unwrap();
    let demo = start_demo(&t.path().join("data"));
    let mut b = Browser::new(&demo.base);
    for path in [
        "/",
        "/connexion",
        "/pro",
        "/static/carnet.css",
        "/manifest.webmanifest",
        "/static/carnet.svg",
    ] {
        let p = b.get(path).await;
        assert_eq!(p.status, 200, "{path}");
        assert_security_headers(&p, path);
    }
    // A GET on a form-only path (a reload, the language switch after a form) goes back to the
    // form's page; other methods stay 405.
    for (path, back) in [
        ("/documents/recherche", "/documents"),
        ("/connexion/code", "/connexion"),
    ] {
        let p = b.get(path).await;
        assert_eq!(p.status, 303, "{path}");
        assert_eq!(p.headers["location"], back, "{path}");
    }
    let p = b.get("/documents/recherche?lang=en").await;
    assert_eq!(
        (p.status.as_u16(), p.headers["location"].to_str().unwrap()),
        (303, "/documents/recherche")
    );
    let r = reqwest::Client::new()
        .put(format!("{}/documents/recherche", demo.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let manifest: Value = serde_json::from_str(&b.get("/manifest.webmanifest").await.html).unwrap();
    assert_eq!(manifest["lang"], "fr");
    assert_eq!(manifest["start_url"], "/");
    let css = b.get("/static/carnet.css").await;
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    // Logged in: every page, the document page, an error page.
    assert_eq!(b.login().await, "/");
    let (id, _) = document(&b, "Échographie abdominale").await;
    let health_words = [
        "Échographie",
        "Ordonnance",
        "Compte rendu",
        "Camille",
        "MARTIN",
        "PETIT",
        "LEROY",
    ];
    for path in [
        "/".to_string(),
        "/documents".into(),
        format!("/documents/{id}"),
        "/profil".into(),
        "/historique".into(),
        "/autorisations".into(),
        "/notifications".into(),
        "/espace".into(),
        "/documents/00000000-0000-0000-0000-000000000000".into(),
    ] {
        let p = b.get(&path).await;
        assert_security_headers(&p, &path);
        assert_eq!(
            p.headers.get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{path}"
        );
        let title = p.title();
        assert!(title.ends_with(" — Carnet"), "{path}: {title}");
        for w in health_words {
            assert!(!title.contains(w), "{path}: the title {title} holds {w}");
        }
    }
    let missing = b.get("/documents/00000000-0000-0000-0000-000000000000").await;
    assert_eq!(missing.status, 404);
    assert!(missing.html.contains("Introuvable"));
    // A mistyped address: a page in the site's frame that leads back, not a bare 404; the
    // JSON API's unknown paths stay JSON.
    let lost = b.get("/documnets").await;
    assert_eq!(lost.status, 404);
    assert!(
        // This browser chose English earlier in the test.
        lost.html.contains("<h1>Page not found</h1>") && lost.html.contains("href=\"/\""),
        "{}",
        lost.html
    );
    assert!(
        lost.html.contains("<nav"),
        "the frame and the menu of the logged-in holder"
    );
    assert_security_headers(&lost, "404");
    let api = b.get("/api/v1/nothing-here").await;
    assert_eq!(api.status, 404);
    assert!(api.headers["content-type"].to_str().unwrap().contains("json"));
    // The JSON API and the probes keep their own answers.
    assert_eq!(b.get("/healthz").await.status, 200);
    assert!(
        b.get("/api/v1/me").await.headers["content-type"]
            .to_str()
            .unwrap()
            .contains("json")
    );
}

fn chromium() -> Option<String> {
    if let Ok(c) = std::env::var("CHROMIUM") {
        return Some(c);
    }
    Path::new("/usr/bin/chromium")
        .exists()
        .then(|| "/usr/bin/chromium".to_string())
}

/// The scenario in a real headless Chromium with axe-core on every page (tests/browser).
#[tokio::test]
async fn browser_scenario_with_axe_core() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    if !dir.join("node_modules/playwright-core").exists() || !dir.join("node_modules/axe-core").exists() {
        eprintln!("tests/browser not installed (scripts/test-tools): browser scenario skipped");
        return;
    }
    let Some(chromium) = chromium() else {
        eprintln!(
            "no Chromium at /usr/bin/chromium (scripts/test-tools installs it): browser scenario skipped"
        );
        return;
    };
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("node is missing: browser scenario skipped");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    // The demo prints the INS and code of a space to activate (Léa): the scenario activates it.
    let (demo, line) = start_demo_reading(&t.path().join("data"), "provisional code");
    let operator = operator_token(&t.path().join("data"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |w: &str| {
        words
            .iter()
            .position(|x| *x == w)
            .map(|i| words[i + 1].trim_matches(','))
    };
    let activation = format!(
        "{} {}",
        after("INS").unwrap_or_default(),
        after("code").unwrap_or_default()
    );
    assert!(
        activation.split(' ').all(|w| w.len() >= 6),
        "no INS and code in {line}"
    );
    let base = demo.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("run.mjs")
            .arg(&base)
            .current_dir(&dir)
            .env("CHROMIUM", chromium)
            .env("ACTIVATION", activation)
            .env("OPERATOR_TOKEN", operator)
            .output()
            .expect("node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "browser scenario failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("browser scenario passed"));
    assert!(
        stdout.contains("ok a suspended space: told at login"),
        "the suspension journey did not run:\n{stdout}"
    );
    assert!(
        stdout.contains("ok Léa activated her space"),
        "the activation step did not run"
    );
    assert!(
        stdout.contains("(MI-2)"),
        "the confidential-item step did not run"
    );
}

/// MS-1, MS-2 in the web interface: a professional writes from the patient's record (with an
/// attachment), the holder reads and answers, the professional sees the read receipt and the
/// answer, ends the conversation, and the holder can no longer answer.
#[tokio::test]
async fn professional_and_holder_message_each_other_in_the_pages() {
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
    assert!(record.html.contains("Messagerie avec ce patient"));
    let messages_url = format!("{record_url}/messages");
    let p = petit.get(&messages_url).await;
    assert_eq!(p.status, 200, "{}", p.html);
    let p = petit
        .post_files(
            &messages_url,
            &[
                ("csrf", &p.csrf()),
                ("objet", "Résultat de l'IRM"),
                ("texte", "L'IRM est normale."),
            ],
            "pieces",
            ("irm.txt", "text/plain", "Compte rendu : normal.".as_bytes()),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let thread_url = p.location().to_string();
    let p = petit.get(&thread_url).await;
    assert!(
        p.html.contains("Résultat de l&#39;IRM") || p.html.contains("Résultat de l'IRM"),
        "{}",
        p.html
    );
    assert!(p.html.contains("pas encore lu"));
    // Issue 33: the inbox says whose conversation it is and what about, read through the gate.
    let inbox = petit.get("/pro/messages").await;
    assert!(
        inbox.html.contains(&thread_url)
            && inbox.html.contains("<strong>MARTIN</strong> Camille")
            && inbox.html.contains("née le 12/03/1984")
            && inbox.html.contains("« Résultat de l&#39;IRM »"),
        "{}",
        inbox.html
    );

    // Camille reads and answers.
    let mut b = Browser::new(&demo.base);
    assert_eq!(b.login().await, "/");
    let list = b.get("/messages").await;
    assert!(list.html.contains("1 non lu"), "{}", list.html);
    // The inbox's readings are in her history, like any professional's (AC-6).
    let history = b.get("/historique").await;
    assert!(
        history.html.contains("a consulté vos conversations"),
        "{}",
        history.html
    );
    let id = thread_url.rsplit('/').next().unwrap();
    let conv = b.get(&format!("/messages/{id}")).await;
    assert!(conv.html.contains("L&#39;IRM est normale.") || conv.html.contains("L'IRM est normale."));
    assert!(conv.html.contains("irm.txt"));
    let p = b
        .post_files(
            &format!("/messages/{id}"),
            &[("csrf", &conv.csrf()), ("texte", "Merci beaucoup.")],
            "pieces",
            ("vide.txt", "text/plain", b""),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);

    // The professional sees the receipt and the answer, then ends the conversation.
    let p = petit.get(&thread_url).await;
    assert!(
        p.html.contains("Merci beaucoup.") && p.html.contains("— lu "),
        "{}",
        p.html
    );
    let p = petit
        .post(&format!("{thread_url}/clore"), &[("csrf", &p.csrf())])
        .await;
    assert_eq!(p.status, 303);
    let conv = b.get(&format!("/messages/{id}")).await;
    assert!(conv.html.contains("a clos cette conversation"), "{}", conv.html);
    assert!(!conv.html.contains("<h2>Répondre</h2>"));
}

/// Issue 7, operators: the token opens a page of aggregates (spaces by state, directory, jobs'
/// backlogs, the trace log) with nothing about any holder, and a verification of the trace log
/// on demand (AC-7).
#[tokio::test]
async fn operators_page_shows_the_service_state_and_verifies_the_trace_log() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let demo = start_demo(&data);
    let token = std::fs::read_to_string(data.join("operator.token")).unwrap();
    let mut b = Browser::new(&demo.base);
    let p = b.get("/operateur").await;
    assert_eq!(p.status, 200);
    assert!(p.html.contains("Jeton d'opérateur") || p.html.contains("Jeton d&#39;opérateur"));
    let p = b
        .post(
            "/operateur/connexion",
            &[("csrf", &p.csrf()), ("jeton", "wrong-token")],
        )
        .await;
    assert_eq!(p.status, 401);
    assert!(p.html.contains("n'est pas celui") || p.html.contains("n&#39;est pas celui"));
    let p = b
        .post(
            "/operateur/connexion",
            &[("csrf", &p.csrf()), ("jeton", token.trim())],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let p = b.get("/operateur").await;
    assert_eq!(p.status, 200);
    assert!(
        p.html.contains("activés") && p.html.contains("9 professionnels"),
        "{}",
        p.html
    );
    assert!(
        !p.html.contains("Camille") && !p.html.contains("MARTIN"),
        "no holder data"
    );
    assert!(!p.html.replace(PASSKEY_SCRIPT, "").contains("<script"));
    let p = b.post("/operateur/verification", &[("csrf", &p.csrf())]).await;
    assert_eq!(p.status, 200);
    assert!(p.html.contains("aucune anomalie"), "{}", p.html);
    // Without the CSRF token, nothing runs.
    let p = b.post("/operateur/verification", &[("csrf", "forged")]).await;
    assert_eq!(p.status, 403);
    // In English too.
    assert_eq!(b.get("/operateur?lang=en").await.status, 303);
    let p = b.get("/operateur").await;
    assert!(
        p.html.contains("<h1>Operators</h1>") && p.html.contains("activated"),
        "{}",
        p.html
    );
}

/// LC-5b, LC-6 from the operators' page (issue 32 journey 4): an operator finds Lucas's space by
/// its INS, sees its state and nothing of its content, suspends it with a reason (the holder's
/// letter and history carry it), then lifts the suspension. A wrong INS and a missing reason
/// are said in French; nothing happens without the CSRF token.
#[tokio::test]
async fn an_operator_suspends_and_lifts_a_space_from_the_web_lc5b() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let demo = start_demo(&data);
    let token = std::fs::read_to_string(data.join("operator.token")).unwrap();
    let mut b = Browser::new(&demo.base);
    let p = b.get("/operateur").await;
    let p = b
        .post(
            "/operateur/connexion",
            &[("csrf", &p.csrf()), ("jeton", token.trim())],
        )
        .await;
    assert_eq!(p.status, 303);
    let p = b.get("/operateur").await;
    assert!(p.html.contains("Agir sur un espace"));
    let bad = b
        .post(
            "/operateur/espace",
            &[("csrf", &p.csrf()), ("ins", "123456789012345")],
        )
        .await;
    assert!(bad.html.contains("pas un INS valable"), "{}", bad.html);
    let lucas_ins = demo_ins('1', "5709", 4);
    let forged = b
        .post("/operateur/espace", &[("csrf", "forged"), ("ins", &lucas_ins)])
        .await;
    assert_eq!(forged.status, 403);
    let space = b
        .post("/operateur/espace", &[("csrf", &p.csrf()), ("ins", &lucas_ins)])
        .await;
    assert_eq!(space.status, 200, "{}", space.html);
    assert!(space.html.contains("Activé depuis le"), "{}", space.html);
    assert!(
        space.html.contains("confirme-deces"),
        "a death is confirmed first"
    );
    let unconfirmed = b
        .post(
            "/operateur/espace/acte",
            &[
                ("csrf", &space.csrf()),
                ("espace", &space.field("espace")),
                ("acte", "death"),
            ],
        )
        .await;
    assert!(unconfirmed.html.contains("Cochez la case qui atteste le décès"));
    assert!(unconfirmed.html.contains("Activé depuis le"), "nothing recorded");
    assert!(
        space.html.contains("confirme-deces"),
        "a death is confirmed first"
    );
    assert!(
        !space.html.contains("Lucas") && !space.html.contains("BERNARD"),
        "no holder data"
    );
    let holder = space.field("espace");
    let no_reason = b
        .post(
            "/operateur/espace/acte",
            &[
                ("csrf", &space.csrf()),
                ("espace", &holder),
                ("acte", "suspend"),
                ("motif", " "),
            ],
        )
        .await;
    assert_eq!(no_reason.status, 400);
    assert!(no_reason.html.contains("Indiquez le motif"));
    let done = b
        .post(
            "/operateur/espace/acte",
            &[
                ("csrf", &space.csrf()),
                ("espace", &holder),
                ("acte", "suspend"),
                ("motif", "usurpation d'identité signalée"),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(done.html.contains("C&#39;est fait") || done.html.contains("C'est fait"));
    assert!(done.html.contains("Suspendu depuis le") && done.html.contains("Lever la suspension"));
    let letter = crate::common::browser::mail_to(
        &b,
        "lucas.bernard@demo.carnet.invalid",
        "Votre espace Carnet est suspendu",
    )
    .await;
    assert!(letter.contains("usurpation d'identité signalée"), "{letter}");
    let lifted = b
        .post(
            "/operateur/espace/acte",
            &[
                ("csrf", &done.csrf()),
                ("espace", &holder),
                ("acte", "lift_suspension"),
                ("motif", "vérification faite"),
            ],
        )
        .await;
    assert!(lifted.html.contains("Activé depuis le"), "{}", lifted.html);
}

/// LC-4 in the web interface: Léa activates her space with the letter's code (read from the
/// demo outbox), mistakes come back in French with what she typed (not the passwords), then she
/// logs in.
#[tokio::test]
async fn a_holder_activates_her_space_from_the_letter() {
    let t = tempfile::tempdir().unwrap();
    // The demo prints Léa's provisional code (her letter went by e-mail, as in auth.rs).
    let (demo, code) = start_demo_with_leas_code(&t.path().join("data"));
    let ins = demo_ins('2', "9201", 5);
    let mut b = Browser::new(&demo.base);
    let p = b.get("/connexion").await;
    assert!(p.html.contains("href=\"/activation\""));
    let p = b.get("/activation").await;
    assert_eq!(p.status, 200);
    let login = "lea.dubois@demo.carnet.invalid";
    // Two different passwords: a French message, the INS and login kept, no password echoed.
    let p = b
        .post(
            "/activation",
            &[
                ("csrf", &p.csrf()),
                ("ins", &ins),
                ("code", &code),
                ("carte", ""),
                ("identifiant", login),
                ("motdepasse", "un-mot-de-passe-solide-1"),
                ("confirmation", "un-autre-mot-de-passe-2"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("ne sont pas identiques") && p.html.contains(&ins) && !p.html.contains("solide"));
    // A wrong code: refused, nothing activated.
    let p = b
        .post(
            "/activation",
            &[
                ("csrf", &p.csrf()),
                ("ins", &ins),
                ("code", "WRONGCODE1"),
                ("carte", ""),
                ("identifiant", login),
                ("motdepasse", "un-mot-de-passe-solide-1"),
                ("confirmation", "un-mot-de-passe-solide-1"),
            ],
        )
        .await;
    assert_eq!(p.status, 401, "{}", p.html);
    assert!(p.html.contains("ne correspondent pas"));
    let p = b
        .post(
            "/activation",
            &[
                ("csrf", &p.csrf()),
                ("ins", &ins),
                ("code", &code),
                ("carte", ""),
                ("identifiant", login),
                ("motdepasse", "un-mot-de-passe-solide-1"),
                ("confirmation", "un-mot-de-passe-solide-1"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert_eq!(p.location(), "/connexion?ok=active");
    let p = b.get("/connexion?ok=active").await;
    assert!(p.html.contains("Votre espace est activé"));
    // She logs in with what she chose (password accepted: the code step follows).
    let p = b
        .post(
            "/connexion",
            &[
                ("csrf", &p.csrf()),
                ("login", login),
                ("password", "un-mot-de-passe-solide-1"),
            ],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.html);
    assert!(p.html.contains("id=\"code\""), "{}", p.html);
}

/// LC-2, issue 32 (journey 2): a lost or expired provisional code is no dead end. Léa asks for
/// a new one with her INS and birth date; the page answers the same whether or not anything
/// matched (AC-8); the code comes by e-mail, dated in words, replaces the letter's, and opens
/// her space.
#[tokio::test]
async fn a_new_activation_code_is_sent_on_request_lc2() {
    let t = tempfile::tempdir().unwrap();
    let (demo, old) = start_demo_with_leas_code(&t.path().join("data"));
    let ins = demo_ins('2', "9201", 5);
    let mut b = Browser::new(&demo.base);
    let p = b.get("/activation").await;
    assert!(p.html.contains("href=\"/activation/nouveau-code\""), "{}", p.html);
    assert!(!p.html.contains("3 mois"));
    let p = b.get("/activation/nouveau-code").await;
    assert_eq!(p.status, 200);
    let url = "/activation/nouveau-code";
    // Input errors in French, what was typed kept.
    let p = b
        .post(
            url,
            &[("csrf", &p.csrf()), ("ins", "12345"), ("naissance", "17/01/1992")],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(
        p.html.contains("15 chiffres") && p.html.contains("value=\"17/01/1992\""),
        "{}",
        p.html
    );
    let p = b
        .post(url, &[("csrf", &p.csrf()), ("ins", &ins), ("naissance", "1992")])
        .await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("JJ/MM/AAAA"));
    let mails = |c: reqwest::Client, base: String| async move {
        get_json(&c, &format!("{base}/demo/outbox.json"), As::Anonymous)
            .await
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                m["to"] == "lea.dubois@demo.carnet.invalid"
                    && m["subject"] == "Votre nouveau code d'activation Carnet"
            })
            .map(|m| m["body"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // A wrong birth date: the same answer, and nothing sent.
    let wrong = b
        .post(
            url,
            &[("csrf", &p.csrf()), ("ins", &ins), ("naissance", "18/01/1992")],
        )
        .await;
    assert_eq!(wrong.status, 200);
    let right = b
        .post(
            url,
            &[("csrf", &p.csrf()), ("ins", &ins), ("naissance", "17/01/1992")],
        )
        .await;
    assert_eq!(right.status, 200);
    let said = |html: &str| {
        let i = html.find("<main").unwrap();
        html[i..].to_string()
    };
    assert_eq!(
        said(&wrong.html),
        said(&right.html),
        "the same page, matched or not"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let body = loop {
        let got = mails(b.c.clone(), demo.base.clone()).await;
        if let Some(m) = got.first() {
            assert_eq!(got.len(), 1, "only the matching request sent a code");
            break m.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no new code was sent");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let fresh = find_after(&body, "Votre code : ", 12);
    assert!(!has_iso_timestamp(&body), "{body}");
    assert!(
        body.contains("valable jusqu'au ") && body.contains(" 20"),
        "{body}"
    );
    assert_ne!(fresh, old);
    let activate = |code: String| {
        let mut b = Browser::new(&demo.base);
        let ins = ins.clone();
        async move {
            let p = b.get("/activation").await;
            b.post(
                "/activation",
                &[
                    ("csrf", &p.csrf()),
                    ("ins", &ins),
                    ("code", &code),
                    ("carte", ""),
                    ("identifiant", "lea.dubois@demo.carnet.invalid"),
                    ("motdepasse", "un-mot-de-passe-solide-1"),
                    ("confirmation", "un-mot-de-passe-solide-1"),
                ],
            )
            .await
        }
    };
    let p = activate(old).await;
    assert_eq!(p.status, 401, "the letter's code was replaced");
    assert!(
        p.html.contains("nouveau-code") || p.html.contains("demandez-en un nouveau"),
        "{}",
        p.html
    );
    let p = activate(fresh).await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert_eq!(p.location(), "/connexion?ok=active");
}

/// DM-4 in the pages (issue 32, journey 9): the holder deletes a document she added, after a
/// confirmation; she asks Dr LEROY to delete his prescription, sees the request pending, then
/// his refusal. Nothing is deleted without the second POST.
#[tokio::test]
async fn the_holder_deletes_her_document_and_asks_an_author_to_delete_his_dm4() {
    let t = tempfile::tempdir().unwrap();
    let demo = start_demo(&t.path().join("data"));
    let mut b = Browser::new(&demo.base);
    b.login().await;
    let list = b.get("/documents").await;
    let p = b
        .post_multipart(
            "/documents",
            &[
                ("csrf", &list.csrf()),
                ("titre", "Photo de l'ordonnance"),
                ("classe", "holder_documents"),
            ],
            ("photo.txt", "text/plain", b"ordonnance du 3 mars"),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let (own, _) = document(&b, "Photo de l'ordonnance").await;
    let page = b.get(&format!("/documents/{own}")).await;
    assert!(page.html.contains("Supprimer ce document…"), "{}", page.html);
    assert!(!page.html.contains("Demander sa suppression"));
    // The first POST only asks.
    let ask = b
        .post(
            &format!("/documents/{own}/suppression"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(ask.status, 200);
    assert!(ask.html.contains("Supprimer ce document ?") && ask.html.contains("Photo de l&#39;ordonnance"));
    document(&b, "Photo de l'ordonnance").await;
    let p = b
        .post(
            &format!("/documents/{own}/suppression"),
            &[("csrf", &ask.csrf()), ("confirme", "1")],
        )
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location(), "/documents?ok=supprime");
    assert!(
        b.get(p.location())
            .await
            .html
            .contains("Le document a été supprimé.")
    );
    let v = b.json("/api/v1/me/documents").await;
    assert!(
        v["documents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["id"] != own.as_str()),
        "{v}"
    );

    // A professional's document: only a request, with a reason; then the author's answer.
    let (rx, _) = document(&b, "Ordonnance").await;
    let page = b.get(&format!("/documents/{rx}")).await;
    assert!(
        page.html.contains("seul son auteur peut le supprimer"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("Supprimer ce document…"));
    let p = b
        .post(
            &format!("/documents/{rx}/demande-suppression"),
            &[("csrf", &page.csrf()), ("motif", " ")],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("Indiquez le motif"), "{}", p.html);
    let p = b
        .post(
            &format!("/documents/{rx}/demande-suppression"),
            &[("csrf", &page.csrf()), ("motif", "Traitement arrêté")],
        )
        .await;
    assert_eq!(p.status, 303);
    let page = b.get(p.location()).await;
    assert!(
        page.html.contains("Votre demande de suppression est envoyée"),
        "{}",
        page.html
    );
    assert!(page.html.contains("« Traitement arrêté »") && page.html.contains("pas encore répondu"));
    let c = client();
    let leroy = pro_token(&c, &demo.base, "10000000001").await;
    let camille = lookup(&c, &demo.base, &leroy, &camille_ins()).await;
    let r = crate::common::call(
        &c,
        reqwest::Method::PATCH,
        &format!("{}/api/v1/pro/patients/{camille}/documents/{rx}", demo.base),
        As::Bearer(&leroy),
        Some(&serde_json::json!({ "deletion_accepted": false })),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let page = b.get(&format!("/documents/{rx}")).await;
    assert!(
        page.html.contains("l'auteur a refusé de le supprimer"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("Demander sa suppression"));
}

/// The value of the form field `name` in a page.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let i = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[i..].split('"').next().unwrap().to_string()
}

const LUCAS: &str = "lucas.bernard@demo.carnet.invalid";

/// The bodies' codes of the demo outbox's login-code messages to Lucas, newest first.
async fn lucas_codes(c: &reqwest::Client, base: &str) -> Vec<String> {
    let all: Value = get_json(c, &format!("{base}/demo/outbox.json"), As::Anonymous).await;
    all.as_array()
        .unwrap()
        .iter()
        .filter(|m| m["to"] == LUCAS && m["subject"].as_str().unwrap_or("").contains("code de connexion"))
        .map(|m| find_after(m["body"].as_str().unwrap(), "Votre code de connexion : ", 6))
        .collect()
}

/// Lucas's password on the login page, asking to reopen his space (`rouvrir`), to object to
/// the closure of his suspended space (`contester`), or nothing: the page it gives.
async fn lucas_password(b: &mut Browser, intent: Option<&str>) -> Page {
    let p = b.get("/connexion").await;
    let csrf = p.csrf();
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("login", LUCAS),
        ("password", "demo-carnet-2026"),
    ];
    if let Some(name) = intent {
        form.push((name, "1"));
    }
    b.post("/connexion", &form).await
}

/// The code step after `lucas_password`, with the newest code sent after `before` of them.
async fn lucas_code(b: &mut Browser, page: &Page, before: usize, intent: Option<&str>) -> Page {
    let code = loop {
        let codes = lucas_codes(&b.c, &b.base).await;
        if codes.len() > before {
            break codes[0].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let (csrf, challenge) = (page.csrf(), field(&page.html, "challenge"));
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("challenge", challenge.as_str()),
        ("channel", "email"),
        ("code", code.as_str()),
    ];
    if let Some(name) = intent {
        form.push((name, "1"));
    }
    b.post("/connexion/code", &form).await
}

/// LC-5 in the pages (issue 32, journey 4): Lucas closes his space, then logs in: the page says
/// the space is closed and offers to reopen it; with the box ticked, password and code reopen
/// it with everything in it.
#[tokio::test]
async fn a_closed_space_is_reopened_from_the_login_page_lc5() {
    let t = tempfile::tempdir().unwrap();
    let demo = start_demo(&t.path().join("data"));
    let mut b = Browser::new(&demo.base);
    // Lucas logs in and closes his space from "Mon espace".
    let before = lucas_codes(&b.c, &demo.base).await.len();
    let p = lucas_password(&mut b, None).await;
    assert_eq!(p.status, 200, "{}", p.html);
    let p = lucas_code(&mut b, &p, before, None).await;
    assert_eq!(p.status, 303, "{}", p.html);
    let space = b.get("/mon-espace").await;
    let ask = b.post("/mon-espace/fermer", &[("csrf", &space.csrf())]).await;
    assert_eq!(ask.status, 200, "{}", ask.html);
    assert!(
        !ask.html.contains("définitivement"),
        "closing is not final: {}",
        ask.html
    );
    let confirmation = field(&ask.html, "confirmation");
    let p = b
        .post(
            "/mon-espace/fermer/confirmer",
            &[("csrf", &ask.csrf()), ("confirmation", &confirmation)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);

    // The right password: the space is closed, and can be reopened.
    let p = lucas_password(&mut b, None).await;
    assert_eq!(p.status, 409, "{}", p.html);
    assert!(
        p.html.contains("Votre espace est fermé") && p.html.contains("name=\"rouvrir\""),
        "{}",
        p.html
    );
    let before = lucas_codes(&b.c, &demo.base).await.len();
    let p = lucas_password(&mut b, Some("rouvrir")).await;
    assert_eq!(p.status, 200, "{}", p.html);
    assert!(
        p.html.contains("name=\"rouvrir\" value=\"1\""),
        "the code page carries the request"
    );
    let p = lucas_code(&mut b, &p, before, Some("rouvrir")).await;
    assert_eq!(p.status, 303, "{}", p.html);
    let me = b.json("/api/v1/me").await;
    assert_eq!(me["lifecycle"], "activated", "{me}");

    // LC-5: closing with the express request for deletion: said on the login page and by
    // mail, dated in words; reopening before the date cancels it (the store suite plays the
    // job's clock).
    let space = b.get("/mon-espace").await;
    let ask = b.post("/mon-espace/fermer", &[("csrf", &space.csrf())]).await;
    assert!(ask.html.contains("name=\"supprimer\""), "{}", ask.html);
    let confirmation = field(&ask.html, "confirmation");
    let p = b
        .post(
            "/mon-espace/fermer/confirmer",
            &[
                ("csrf", &ask.csrf()),
                ("confirmation", &confirmation),
                ("supprimer", "1"),
            ],
        )
        .await;
    assert_eq!(p.location(), "/connexion?ok=suppression");
    let p = b.get("/connexion?ok=suppression").await;
    assert!(
        p.html.contains("sera supprimé définitivement dans 30 jours"),
        "{}",
        p.html
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let body = loop {
        let all: Value = get_json(&b.c, &format!("{}/demo/outbox.json", demo.base), As::Anonymous).await;
        if let Some(m) = all.as_array().unwrap().iter().find(|m| {
            m["to"] == LUCAS && m["subject"] == "Votre demande de suppression de votre espace Carnet"
        }) {
            break m["body"].as_str().unwrap().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the request was not confirmed by mail"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        body.contains("seront supprimées le ") && !has_iso_timestamp(&body),
        "{body}"
    );
    let before = lucas_codes(&b.c, &demo.base).await.len();
    let p = lucas_password(&mut b, Some("rouvrir")).await;
    let p = lucas_code(&mut b, &p, before, Some("rouvrir")).await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert_eq!(b.json("/api/v1/me").await["lifecycle"], "activated");
}

/// LC-5b in the pages (issue 32, journey 4): the operator suspends Lucas's space with a reason;
/// his session ends and nobody reaches it; he is told by mail (reason, dates in words); the
/// login page says so and offers to object; his password and code record the objection
/// without opening the space; the operator lifts it and he finds everything, the suspension
/// in his history with its reason.
#[tokio::test]
async fn a_suspended_space_is_contested_from_the_login_page_lc5b() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let demo = start_demo(&data);
    let operator = operator_token(&data);
    let mut b = Browser::new(&demo.base);
    let before = lucas_codes(&b.c, &demo.base).await.len();
    let p = lucas_password(&mut b, None).await;
    let p = lucas_code(&mut b, &p, before, None).await;
    assert_eq!(p.status, 303, "{}", p.html);
    let lucas = b.json("/api/v1/me").await["acting_for"]
        .as_str()
        .unwrap()
        .to_string();
    let c = reqwest::Client::new();
    let url = format!("{}/api/v1/operator/holders/{lucas}/events", demo.base);
    let event = |body: Value| c.post(&url).bearer_auth(&operator).json(&body).send();
    let event = |body: Value| {
        let sent = event(body);
        async move { sent.await.unwrap() }
    };
    // Reasoned, or nothing changes.
    let r = event(json!({ "event": "suspend" })).await;
    assert_eq!(r.status(), 422, "{}", r.text().await.unwrap());
    assert_eq!(b.json("/api/v1/me").await["lifecycle"], "activated");
    let r = event(json!({ "event": "suspend", "reason": "usurpation d'identité signalée" })).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["lifecycle"], "suspended");
    // Nobody reaches it, its holder included: the session is over.
    let home = b.get("/mon-espace").await;
    assert_ne!(home.status, 200, "{}", home.html);
    let body = mail_to(&b, LUCAS, "Votre espace Carnet est suspendu").await;
    assert!(
        body.contains("« usurpation d'identité signalée »")
            && body.contains("Sans opposition de votre part avant le ")
            && !has_iso_timestamp(&body),
        "{body}"
    );
    // The login page says it and offers to object; the code step carries the request.
    let p = lucas_password(&mut b, None).await;
    assert_eq!(p.status, 409, "{}", p.html);
    assert!(
        p.html.contains("Votre espace est suspendu depuis le ") && p.html.contains("name=\"contester\""),
        "{}",
        p.html
    );
    assert!(!has_iso_timestamp(&p.html), "{}", p.html);
    let before = lucas_codes(&b.c, &demo.base).await.len();
    let p = lucas_password(&mut b, Some("contester")).await;
    assert_eq!(p.status, 200, "{}", p.html);
    assert!(p.html.contains("name=\"contester\" value=\"1\""), "{}", p.html);
    let p = lucas_code(&mut b, &p, before, Some("contester")).await;
    assert_eq!(p.status, 200, "{}", p.html);
    assert!(p.html.contains("Votre opposition est enregistrée"), "{}", p.html);
    assert_ne!(
        b.get("/mon-espace").await.status,
        200,
        "no session: still suspended"
    );
    let body = mail_to(
        &b,
        LUCAS,
        "Votre opposition à la fermeture de votre espace Carnet",
    )
    .await;
    assert!(body.contains("Votre espace ne sera pas fermé"), "{body}");
    let p = lucas_password(&mut b, None).await;
    assert_eq!(p.status, 409);
    assert!(
        p.html.contains("votre opposition à sa fermeture est enregistrée")
            && !p.html.contains("name=\"contester\""),
        "{}",
        p.html
    );
    // The operator lifts it: Lucas logs in and finds the suspension in his history, with why.
    let r = event(json!({ "event": "lift_suspension", "reason": "vérification faite avec l'assuré" })).await;
    assert_eq!(r.status(), 200);
    mail_to(&b, LUCAS, "Votre espace Carnet est rétabli").await;
    let before = lucas_codes(&b.c, &demo.base).await.len();
    let p = lucas_password(&mut b, None).await;
    let p = lucas_code(&mut b, &p, before, None).await;
    assert_eq!(p.status, 303, "{}", p.html);
    let history = b.get("/historique").await;
    assert!(
        history.html.contains("L&#39;opérateur du service a suspendu votre espace (motif : « usurpation d&#39;identité signalée »)")
            && history.html.contains("a levé la suspension de votre espace"),
        "{}",
        history.html
    );
    // Lifting again is refused: nothing to lift.
    let r = event(json!({ "event": "lift_suspension", "reason": "encore" })).await;
    assert_eq!(r.status(), 409);
}

/// Issue 32, "the home page highlights what matters" (AC-5, AC-6): Dr PETIT reading the
/// documents three times in a row is one line "(3 fois)"; a nurse's emergency access stands
/// out as such, first.
#[tokio::test]
async fn the_home_page_folds_repeated_reads_and_shows_emergencies_first_ac6() {
    let w = World::start().await;
    let petit = w.pro("10000000002").await;
    let camille = w.camille_for(&petit).await;
    for _ in 0..3 {
        let r = get(&w.c, &w.pro_url(&camille, "/documents"), As::Bearer(&petit)).await;
        assert_eq!(r.status(), 200);
    }
    let moreau = w.pro("10000000003").await;
    let r = post(
        &w.c,
        &w.pro_url(&camille, "/emergency"),
        As::Bearer(&moreau),
        &serde_json::json!({ "reason": "malaise à domicile" }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let mut b = Browser::new(&w.base);
    b.login().await;
    let home = b.get("/").await;
    let news = home
        .html
        .split("id=\"news\"")
        .nth(1)
        .unwrap()
        .split("</section>")
        .next()
        .unwrap();
    let first = news.split("<li").nth(1).unwrap_or_default();
    assert!(
        first.contains("class=\"urgent\"") && first.contains("Accès en urgence"),
        "{news}"
    );
    assert!(first.contains("malaise à domicile"), "{news}");
    let petit_lines: Vec<&str> = news
        .split("<li")
        .filter(|l| l.contains("PETIT") && l.contains("vos documents"))
        .collect();
    assert_eq!(petit_lines.len(), 1, "{news}");
    assert!(petit_lines[0].contains("(3 fois)"), "{news}");
}
