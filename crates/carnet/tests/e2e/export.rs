//! ID-3, issue 32 (journey 6): the export holds everything — documents, profile, measurements,
//! messages and their attachments, agenda, reimbursements, authorisations, access history — as
//! JSON, as a readable page in French, and as a streamed ZIP archive whose files are the
//! documents' exact bytes; exporting marks no message read.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::*;

/// Each entry of a ZIP file and the SHA-256 of its bytes, as Python's `zipfile` reads them
/// (an independent reader, which also checks every entry's CRC).
fn zip_entries(path: &std::path::Path) -> Option<Vec<(String, String)>> {
    let python = std::env::var("CARNET_TEST_PYTHON").ok()?;
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, json, zipfile, hashlib\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\n\
             print(json.dumps([[n, hashlib.sha256(z.read(n)).hexdigest()] for n in z.namelist()]))",
        ])
        .arg(path)
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).expect("JSON list"))
}

#[tokio::test]
async fn the_export_holds_everything_in_three_forms_id3() {
    let w = World::start().await;
    let (c, me) = (&w.c, |p: &str| w.me(p));
    // The demo's Camille has documents, messages, agenda, reimbursements and grants; she adds
    // a condition and a weight.
    let r = post(
        c,
        &me("/profile"),
        w.holder(),
        &json!({"section": "conditions", "text": "Diabète de type 2"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let weight = json!([
        {"code": "29463-7", "value": 65.4, "unit": "kg", "at": "2026-11-02T07:30:00Z"},
        {"code": "8480-6", "value": 128, "unit": "mm[Hg]", "at": "2026-11-02T07:31:00Z"},
    ]);
    assert_eq!(
        post(c, &me("/measurements"), w.holder(), &weight).await.status(),
        201
    );
    let unread = || async {
        get_json(c, &me("/conversations"), w.holder()).await["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["unread"].as_i64().unwrap())
            .sum::<i64>()
    };
    let unread_before = unread().await;
    assert!(unread_before > 0, "the demo has an unread message");

    // The JSON: every part of the space.
    let json = get_json(c, &me("/export"), w.holder()).await;
    assert_eq!(json["format"], "carnet-export/2");
    for part in [
        "documents",
        "profile",
        "measurements",
        "reimbursements",
        "conversations",
        "agenda",
        "access_history",
    ] {
        assert!(
            json[part].as_array().is_some_and(|a| !a.is_empty()),
            "{part} is empty or missing"
        );
    }
    assert!(
        json["authorisations"]["medecin_traitant"].is_string(),
        "{}",
        json["authorisations"]
    );
    let conversation = &json["conversations"][0];
    assert!(
        conversation["messages"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let attachments: Vec<&Value> = json["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["messages"].as_array().unwrap())
        .flat_map(|m| m["attachments"].as_array().unwrap())
        .collect();
    assert!(!attachments.is_empty(), "the demo's letter has an attachment");

    // The readable page: French words, no field names, no state codes, no ISO instants.
    let w = &w;
    let page = |path: &'static str| async move {
        let r = get(c, &format!("{}{path}", w.base), w.holder()).await;
        assert_eq!(r.status(), 200, "{path}");
        r.text().await.unwrap()
    };
    let space = page("/mon-espace").await;
    assert!(
        space.contains("href=\"/mon-espace/export\"") && space.contains("href=\"/api/v1/me/export.zip\"")
    );
    let html = page("/mon-espace/export").await;
    let main = &html[html.find("<main").unwrap()..];
    for expected in [
        "Copie de votre espace",
        "Nom de naissance",
        "MARTIN",
        "Documents (",
        "Profil médical",
        "Diabète de type 2",
        "65,4 kg",
        "128 mmHg",
        "Mesures (",
        "Messages (",
        "Agenda (",
        "Remboursements (",
        "Médecin traitant : Dr Claire LEROY",
        "Historique des accès (",
        "Espace ouvert et activé depuis le",
    ] {
        assert!(main.contains(expected), "{expected:?} missing in {main}");
    }
    for raw in [
        "birth_name",
        "given_names",
        "activated",
        "content_base64",
        "\"lifecycle\"",
        "mm[Hg]",
    ] {
        assert!(!main.contains(raw), "{raw:?} shown to a person");
    }
    assert!(!has_iso_timestamp(main), "an ISO instant in the page");

    // The archive, streamed: the readable copy, the JSON, each document's exact bytes.
    let r = get(c, &me("/export.zip"), w.holder()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert!(
        r.headers().get("content-length").is_none(),
        "streamed, not buffered"
    );
    let bytes = r.bytes().await.unwrap();
    let path = w.data.join("export.zip");
    std::fs::write(&path, &bytes).unwrap();
    let Some(entries) = zip_entries(&path) else {
        eprintln!("CARNET_TEST_PYTHON not set: the archive is not read");
        return;
    };
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"carnet-export.json") && names.contains(&"lisez-moi.html"),
        "{names:?}"
    );
    let digest_of = |name: &str| entries.iter().find(|(n, _)| n == name).map(|(_, d)| d.clone());
    let docs = json["documents"].as_array().unwrap();
    let files: Vec<&&str> = names.iter().filter(|n| n.starts_with("documents/")).collect();
    assert_eq!(files.len(), docs.len(), "{names:?}");
    // The archive's JSON names each document's file; the file holds the document's bytes.
    let zip_json: Value = {
        let out = std::process::Command::new(std::env::var("CARNET_TEST_PYTHON").unwrap())
            .args(["-c", "import sys, zipfile\nsys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('carnet-export.json'))"])
            .arg(&path)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    for (in_zip, full) in zip_json["documents"].as_array().unwrap().iter().zip(docs) {
        assert!(
            in_zip.get("content_base64").is_none(),
            "contents are files in the archive"
        );
        let file = in_zip["file"].as_str().unwrap();
        let content = base64::engine::general_purpose::STANDARD
            .decode(full["content_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(digest_of(file), Some(sha256_hex(&content)), "{file}");
        assert_eq!(in_zip["id"], full["id"]);
    }
    let attachment_files = names.iter().filter(|n| n.starts_with("messages/")).count();
    assert_eq!(attachment_files, attachments.len(), "{names:?}");

    // Exporting read nothing on the holder's behalf: the unread message is still unread.
    assert_eq!(unread().await, unread_before);
}
