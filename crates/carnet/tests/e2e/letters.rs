//! Letters by post (LC-2): people without an e-mail address get their information letter as a
//! PDF in a print batch (`carnet admin print-letters`), French, dated in words, addressed for a
//! window envelope — a minor's to the legal representatives; the batch's manifest lists each
//! letter with its SHA-256; a letter without a postal address waits in the outbox.

use crate::common::browser::{Browser, encode};
use crate::common::*;

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

fn is_iso_instant(text: &str) -> bool {
    // 2027-01-17 or 2027-01-17T09:00: never in a letter.
    text.as_bytes().windows(10).any(|w| {
        w[4] == b'-' && w[7] == b'-' && [0, 1, 2, 3, 5, 6, 8, 9].iter().all(|i| w[*i].is_ascii_digit())
    })
}

#[test]
fn letters_for_people_without_email_leave_as_a_print_batch_lc2() {
    let (t, data) = fresh_dir();
    let d = data.to_str().unwrap();
    init_with_roster(
        &data,
        &format!(
            "ins;birth_name;given_names;sex;birth_date;address;email\n\
             {};DUPONT;Hélène;F;1950-02-03;12 rue des Lilas, 69003 Lyon;\n\
             {};DUPONT;Inès;F;2016-06-02;12 rue des Lilas, 69003 Lyon;\n\
             {};SANSADRESSE;Paul;M;1970-01-01;;\n\
             {};COURRIEL;Zoé;F;1990-01-01;;zoe@example.org\n",
            ins_for(71),
            ins_for(72),
            ins_for(73),
            ins_for(74)
        ),
    );
    let out_dir = t.path().join("impression");
    let out = run(
        &[
            "admin",
            "print-letters",
            "--data-dir",
            d,
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 letter(s) in "), "{stdout}");
    assert!(
        stdout.contains("1 letter(s) kept in the outbox: no postal address on file"),
        "{stdout}"
    );
    let batches: Vec<_> = std::fs::read_dir(&out_dir).unwrap().flatten().collect();
    assert_eq!(batches.len(), 1);
    let batch = batches[0].path();
    assert!(
        batch
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("courrier-20"),
        "{batch:?}"
    );
    // The manifest: one line a letter, each PDF's digest as written.
    let manifest = std::fs::read_to_string(batch.join("manifest.csv")).unwrap();
    let lines: Vec<&str> = manifest.lines().collect();
    assert_eq!(lines[0], "file,reference,kind,pages,recipient,sha256");
    assert_eq!(lines.len(), 3, "{manifest}");
    for line in &lines[1..] {
        let fields: Vec<&str> = line.split(',').collect();
        let bytes = std::fs::read(batch.join(fields[0])).unwrap();
        assert!(bytes.starts_with(b"%PDF-"));
        let digest = sha256_hex(&bytes);
        assert_eq!(fields.last().unwrap(), &digest, "{line}");
        assert_eq!(fields[2], "information");
        assert!(uuid::Uuid::parse_str(fields[1]).is_ok(), "{line}");
    }
    assert!(
        manifest.contains("\"Hélène DUPONT / 12 rue des Lilas / 69003 Lyon\""),
        "{manifest}"
    );
    assert!(
        manifest.contains("\"Aux représentants légaux de / Inès DUPONT / 12 rue des Lilas / 69003 Lyon\""),
        "{manifest}"
    );
    assert!(!manifest.contains("COURRIEL"), "an e-mail is not a letter");

    // What the letters say, read by an independent PDF reader.
    let Some(adult) = pdf_text(&batch.join("0001.pdf")) else {
        eprintln!("CARNET_TEST_PYTHON not set (no pypdf): the letters' text is not read");
        return;
    };
    let child = pdf_text(&batch.join("0002.pdf")).unwrap();
    let (adult, child) = if adult.contains("Hélène") {
        (adult, child)
    } else {
        (child, adult)
    };
    // Phrases may break across lines.
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (adult_flat, child_flat) = (flat(&adult), flat(&child));
    assert_eq!(adult.lines().next(), Some("1"), "one page:\n{adult}");
    for expected in [
        "Hélène DUPONT",
        "12 rue des Lilas",
        "69003 Lyon",
        "Objet : Votre espace numérique de santé Carnet",
        "Votre code provisoire d'activation :",
        "M'opposer à la création de mon espace",
        "Le service Carnet",
        "page 1/1",
    ] {
        assert!(adult_flat.contains(expected), "{expected:?} missing in:\n{adult}");
    }
    // Dated in words, twice: the letter's date and the end of the opposition window.
    let dated = MONTHS
        .iter()
        .filter(|m| adult.contains(&format!(" {m} 20")))
        .count();
    assert!(dated >= 1, "no date in words:\n{adult}");
    assert!(adult.contains("\nLe "), "{adult}");
    assert!(!is_iso_instant(&adult), "an ISO date in:\n{adult}");
    assert!(!adult.contains("Your"), "letters are in French only:\n{adult}");
    for expected in [
        "Aux représentants légaux de",
        "Inès DUPONT",
        "Objet : L'espace numérique de santé d'Inès DUPONT",
        "Un espace numérique de santé a été créé pour Inès DUPONT, dont vous êtes le représentant légal",
        "Code provisoire d'activation de son espace :",
        "le numéro de sécurité sociale de l'enfant",
    ] {
        assert!(child_flat.contains(expected), "{expected:?} missing in:\n{child}");
    }
    assert!(!is_iso_instant(&child));
    assert!(
        !child_flat.contains("créé pour vous"),
        "a parent reads about the child:\n{child}"
    );

    // Printed once: the next run finds nothing new (the one without address still waits).
    let again = run(
        &[
            "admin",
            "print-letters",
            "--data-dir",
            d,
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("no letter waiting for the post"), "{stdout}");
}

/// LC-2, LC-3, issue 32 (journey 2): objecting online from the web, with the letter's code,
/// ends with a proof to keep — its reference and date on the page, a PDF to download, the
/// same proof by e-mail — and a wrong code, a stale confirmation or a forged download change
/// nothing and reveal nothing.
#[tokio::test]
async fn a_person_objects_from_the_web_and_keeps_a_proof_lc2_lc3() {
    let t = tempfile::tempdir().unwrap();
    let (demo, code) = start_demo_with_leas_code(&t.path().join("data"));
    let ins = demo_ins('2', "9201", 5);
    let mut b = Browser::new(&demo.base);
    let p = b.get("/activation").await;
    assert!(p.html.contains("href=\"/opposition\""), "{}", p.html);
    let p = b.get("/opposition").await;
    assert_eq!(p.status, 200);
    assert!(p.html.contains("six semaines"), "{}", p.html);
    // A wrong code: said in French, the number kept, nothing recorded.
    let p = b
        .post(
            "/opposition",
            &[("csrf", &p.csrf()), ("ins", &ins), ("code", "AAAABBBBCCCC")],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("ne correspondent pas"), "{}", p.html);
    assert!(p.html.contains(&format!("value=\"{ins}\"")));
    // The right code: what objecting means, then a confirmation.
    let p = b
        .post(
            "/opposition",
            &[("csrf", &p.csrf()), ("ins", &ins), ("code", &code)],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.html);
    assert!(p.html.contains("aucun espace ne sera ouvert"), "{}", p.html);
    let confirmation = p.field("confirmation");
    let stale = b
        .post(
            "/opposition/confirmer",
            &[
                ("csrf", &p.csrf()),
                ("ins", &ins),
                ("code", &code),
                ("confirmation", "0000"),
            ],
        )
        .await;
    assert_eq!(stale.status, 400);
    assert!(stale.html.contains("La confirmation a expiré"), "{}", stale.html);
    let done = b
        .post(
            "/opposition/confirmer",
            &[
                ("csrf", &p.csrf()),
                ("ins", &ins),
                ("code", &code),
                ("confirmation", &confirmation),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(
        done.html.contains("Votre opposition est enregistrée"),
        "{}",
        done.html
    );
    let reference = done.field("reference");
    assert!(reference.starts_with("OPP-"), "{reference}");
    assert!(done.html.contains(&reference));
    assert!(!has_iso_timestamp(&done.html), "{}", done.html);
    assert!(
        MONTHS.iter().any(|m| done.html.contains(&format!(" {m} 20"))),
        "dated in words: {}",
        done.html
    );
    // The proof as a PDF to keep.
    let form = [
        ("csrf", done.csrf()),
        ("ins", done.field("ins")),
        ("reference", reference.clone()),
        ("at", done.field("at")),
        ("tag", done.field("tag")),
    ];
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r =
        b.c.post(format!("{}/opposition/preuve", demo.base))
            .header("cookie", b.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&fields))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"preuve-opposition-OPP"),
        "{disposition}"
    );
    let pdf = r.bytes().await.unwrap();
    let path = t.path().join("preuve.pdf");
    std::fs::write(&path, &pdf).unwrap();
    if let Some(text) = pdf_text(&path) {
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for expected in [
            "Léa DUBOIS",
            "Objet : Preuve de votre opposition à la création de votre espace Carnet",
            "Votre opposition a bien été enregistrée le",
            &reference,
            "Aucun espace ne sera ouvert",
        ] {
            assert!(flat.contains(expected), "{expected:?} missing in:\n{text}");
        }
        assert!(!is_iso_instant(&text), "{text}");
    }
    // A forged download: a missing page, nothing else.
    let mut forged = fields.clone();
    forged[4] = ("tag", "00");
    let p = b.post("/opposition/preuve", &forged).await;
    assert_eq!(p.status, 404);
    // The proof also goes by e-mail, in words.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let outbox = get_json(&b.c, &format!("{}/demo/outbox.json", demo.base), As::Anonymous).await;
        let proof = outbox.as_array().unwrap().iter().find(|m| {
            m["to"] == "lea.dubois@demo.carnet.invalid"
                && m["subject"] == "Preuve de votre opposition à la création de votre espace Carnet"
        });
        if let Some(m) = proof {
            let body = m["body"].as_str().unwrap();
            assert!(body.contains(&reference) && !has_iso_timestamp(body), "{body}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no proof was mailed");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Once recorded, the same code neither objects again nor activates (LC-3).
    let p = b.get("/opposition").await;
    let p = b
        .post(
            "/opposition",
            &[("csrf", &p.csrf()), ("ins", &ins), ("code", &code)],
        )
        .await;
    assert_eq!(p.status, 409);
    assert!(p.html.contains("déjà enregistrée"), "{}", p.html);
}
