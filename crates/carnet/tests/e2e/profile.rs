//! End-to-end: the medical profile through the real binary (`carnet demo`): entries with codes
//! checked (PR-1), who wrote what (PR-3), measurements one by one and in batches with their
//! checks, SVG charts (PR-4), the summary page, professionals within their rights (AC-1..3,
//! AC-8), and nothing in clear in the database files.

use crate::common::*;
use serde_json::{Value, json};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn medical_profile_and_measurements_through_the_gate_pr1_pr4() {
    let w = World::start().await;
    let c = &w.c;
    let me = |path: &str| w.me(path);

    // PR-1: the holder writes coded entries; bad codes and shapes are refused with the reason.
    let r = post(c, &me("/profile"), w.holder(), &json!({"section": "conditions", "text": "Diabète de type 2", "code": {"system": "icd10", "code": "E11"}, "date": "2019-03"})).await;
    assert_eq!(r.status(), 201);
    let mine: Value = r.json().await.unwrap();
    assert_eq!(mine["author"]["kind"], "holder");
    for (bad, why) in [
        (
            json!({"section": "conditions", "text": "Asthme", "code": {"system": "snomed_ct", "code": "195967002"}}),
            "SNOMED",
        ),
        (json!({"section": "blood_group", "value": "C+"}), "blood group"),
        (
            json!({"section": "treatments", "text": "x", "code": {"system": "icd10", "code": "E11"}}),
            "do not belong",
        ),
        (
            json!({"section": "vaccinations", "text": "Grippe", "date": "2025-13-01"}),
            "date",
        ),
    ] {
        let r = post(c, &me("/profile"), w.holder(), &bad).await;
        assert_eq!(r.status(), 422, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().contains(why), "{v}");
    }
    let r = post(
        c,
        &me("/profile"),
        w.holder(),
        &json!({"section": "allergies", "text": "x", "colour": "red"}),
    )
    .await;
    assert!(r.status().is_client_error());
    let r = post(
        c,
        &me("/profile"),
        w.holder(),
        &json!({"section": "blood_group", "value": "O+"}),
    )
    .await;
    assert_eq!(r.status(), 201);

    // Measurements: a batch from a device; one impossible value refuses the whole batch.
    let mut batch: Vec<Value> = (0..50)
        .map(|i| json!({"code": "29463-7", "value": 70.0 + f64::from(i % 5) / 2.0, "unit": "kg", "at": format!("2025-11-{:02}T07:30:00Z", 1 + i % 28)}))
        .collect();
    batch[3]["value"] = json!(700.0);
    let r = post(c, &me("/measurements"), w.holder(), &batch).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("measurements[3]"));
    batch[3]["value"] = json!(71.0);
    let r = post(c, &me("/measurements"), w.holder(), &batch).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["stored"], 50);
    let r = post(
        c,
        &me("/measurements"),
        w.holder(),
        &json!({"code": "8480-6", "value": 128, "unit": "mm[Hg]", "at": "2025-11-20T08:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let series: Value = get_json(
        c,
        &me("/measurements?code=29463-7&from=2025-11-01&to=2025-11-15"),
        w.holder(),
    )
    .await;
    let pts = series["points"].as_array().unwrap();
    assert!(
        !pts.is_empty() && pts.iter().all(|p| p["at"].as_str().unwrap() < "2025-11-15"),
        "{series}"
    );
    let r = get(c, &me("/measurements/29463-7/chart.svg"), w.holder()).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("image/svg+xml")
    );
    let svg = r.text().await.unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Poids") && svg.contains("<polyline"));
    let r = get(c, &me("/measurements/1234-5/chart.svg"), w.holder()).await;
    assert_eq!(r.status(), 400);

    // PR-3: the médecin traitant reads the profile and adds what their profession may.
    let leroy = w.pro("10000000001").await;
    let camille = w.camille_for(&leroy).await;
    let pro = |path: &str| w.pro_url(&camille, path);
    let v: Value = get_json(c, &pro("/profile"), As::Bearer(&leroy)).await;
    assert!(
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"] == "Diabète de type 2"),
        "{v}"
    );
    let r = post(c, &pro("/profile"), As::Bearer(&leroy), &json!({"section": "allergies", "text": "Pénicilline", "code": {"system": "snomed_ct", "code": "91936005"}})).await;
    assert_eq!(r.status(), 201);
    let allergy: Value = r.json().await.unwrap();
    assert!(
        allergy["author_name"].as_str().unwrap().contains("LEROY"),
        "{allergy}"
    );
    // The holder sees who wrote it, cannot delete it (404), edits only their own.
    let id = allergy["id"].as_str().unwrap();
    let r = delete(c, &me(&format!("/profile/{id}")), w.holder()).await;
    assert_eq!(r.status(), 404);
    let mine_id = mine["id"].as_str().unwrap();
    let r = put(c, &me(&format!("/profile/{mine_id}?version=1")), w.holder(), &json!({"section": "conditions", "text": "Diabète de type 2", "code": {"system": "icd10", "code": "E11.9"}, "note": "HbA1c 7 %"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 2);
    let r = put(
        c,
        &me(&format!("/profile/{mine_id}?version=1")),
        w.holder(),
        &json!({"section": "conditions", "text": "Diabète"}),
    )
    .await;
    assert_eq!(r.status(), 409, "stale version");
    // A nurse without a grant sees nothing of it (AC-8: like an empty profile) and cannot write.
    let moreau = w.pro("10000000003").await;
    let v: Value = get_json(c, &pro("/profile"), As::Bearer(&moreau)).await;
    assert!(v["entries"].as_array().unwrap().is_empty(), "{v}");
    let r = post(
        c,
        &pro("/measurements"),
        As::Bearer(&moreau),
        &json!({"code": "8867-4", "value": 80, "unit": "/min", "at": "2025-11-20T08:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 404);

    // The summary page, as the holder and as the doctor.
    let html = get(c, &me("/summary.html"), w.holder())
        .await
        .text()
        .await
        .unwrap();
    for want in [
        "Synthèse médicale",
        "Diabète de type 2",
        "Pénicilline",
        "O+",
        "Poids",
        "Pression artérielle systolique",
        "LEROY",
    ] {
        assert!(html.contains(want), "{want} missing from the summary");
    }
    // French formats: no ISO date, decimal commas.
    let iso_date = html.as_bytes().windows(10).any(|w| {
        w[4] == b'-' && w[7] == b'-' && [0, 1, 2, 3, 5, 6, 8, 9].iter().all(|i| w[*i].is_ascii_digit())
    });
    assert!(!iso_date, "an ISO date in the summary: {html}");
    let html = get(c, &pro("/summary.html"), As::Bearer(&leroy))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Diabète de type 2"));
    // Every professional read was traced for the holder.
    let traces: Value = get_json(c, &me("/traces?who=10000000001"), w.holder()).await;
    assert!(
        traces["traces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["item"] == "profile")
    );

    // ID-3: the export carries the profile, the measurements and the documents with their
    // content, all read through the gate as the holder.
    let export: Value = get_json(c, &me("/export"), w.holder()).await;
    let profile = export["profile"].as_array().unwrap();
    assert!(
        profile
            .iter()
            .any(|e| e["text"] == "Pénicilline" && e["author_name"].as_str().unwrap().contains("LEROY"))
    );
    assert_eq!(export["measurements"].as_array().unwrap().len(), 51);
    let docs = export["documents"].as_array().unwrap();
    assert!(
        !docs.is_empty()
            && docs
                .iter()
                .all(|d| d["content_base64"].as_str().is_some_and(|b| !b.is_empty()))
    );
    let html = get(c, &format!("{}/mon-espace/export", w.base), w.holder())
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Diabète de type 2") && html.contains("Ordonnance"),
        "{html}"
    );

    // Nothing of it in clear in the database files.
    for f in [
        "carnet.db",
        "carnet.db-wal",
        "carnet-audit.db",
        "carnet-audit.db-wal",
    ] {
        if let Ok(raw) = std::fs::read(w.data.join(f)) {
            for word in [
                "Diabète".as_bytes(),
                "Pénicilline".as_bytes(),
                b"HbA1c",
                b"29463-7",
            ] {
                assert!(
                    !contains(&raw, word),
                    "{} in clear in {f}",
                    String::from_utf8_lossy(word)
                );
            }
        }
    }
}

/// Issue 32, journey 10 (PR-1): a mistyped measurement is deleted by its author — the holder
/// in the JSON API and on the page, a professional through FHIR `DELETE Observation/{id}` —
/// and by nobody else; a correction is then a new measurement. A professional's deletion and
/// every refusal are in the holder's history (AC-6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_measurement_is_deleted_by_its_author_pr1() {
    let w = World::start().await;
    let c = &w.c;
    let weights = |points: &Value| -> Vec<(String, f64)> {
        points["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_string(),
                    p["value"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let series = w.me("/measurements?code=29463-7");
    let before = weights(&get_json(c, &series, w.holder()).await).len();
    let r = post(
        c,
        &w.me("/measurements"),
        w.holder(),
        &weight(57.2, "2026-01-05T07:00:00Z"),
    )
    .await;
    assert_eq!(r.status(), 201);
    let typo = weights(&get_json(c, &series, w.holder()).await)
        .into_iter()
        .find(|(_, v)| *v == 57.2)
        .expect("the typo is stored")
        .0;

    // Dr LEROY may read it but not delete it (its author is the holder).
    let leroy = w.pro("10000000001").await;
    let camille = w.camille_for(&leroy).await;
    let r = delete(
        c,
        &w.pro_url(&camille, &format!("/measurements/{typo}")),
        As::Bearer(&leroy),
    )
    .await;
    assert_eq!(r.status(), 404);
    // The holder deletes it; a second time it is gone.
    let r = delete(c, &w.me(&format!("/measurements/{typo}")), w.holder()).await;
    assert_eq!(r.status(), 204);
    let r = delete(c, &w.me(&format!("/measurements/{typo}")), w.holder()).await;
    assert_eq!(r.status(), 404);
    let now = weights(&get_json(c, &series, w.holder()).await);
    assert_eq!(now.len(), before);
    assert!(now.iter().all(|(id, _)| *id != typo));

    // A professional's measurement: through FHIR, by him only.
    let r = post(
        c,
        &w.pro_url(&camille, "/measurements"),
        As::Bearer(&leroy),
        &weight(75.2, "2026-01-06T07:00:00Z"),
    )
    .await;
    assert_eq!(r.status(), 201);
    let his = weights(&get_json(c, &series, w.holder()).await)
        .into_iter()
        .find(|(_, v)| *v == 75.2)
        .unwrap()
        .0;
    let r = delete(c, &w.me(&format!("/measurements/{his}")), w.holder()).await;
    assert_eq!(r.status(), 404, "not the holder's to delete");
    let fhir_id = format!("{}{}", camille.replace('-', ""), his.replace('-', ""));
    let r = delete(
        c,
        &format!("{}/fhir/Observation/{fhir_id}", w.base),
        As::Bearer(&leroy),
    )
    .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let r = get(
        c,
        &format!("{}/fhir/Observation/{fhir_id}", w.base),
        As::Bearer(&leroy),
    )
    .await;
    assert_eq!(r.status(), 404);

    // The page: the holder's own measurements can be deleted there too.
    let mut b = crate::common::browser::Browser::new(&w.base);
    b.login().await;
    let r = post(
        c,
        &w.me("/measurements"),
        w.holder(),
        &weight(7.25, "2026-01-07T07:00:00Z"),
    )
    .await;
    assert_eq!(r.status(), 201);
    let page = b.get("/profil").await;
    assert!(
        page.html
            .contains("Corriger une mesure de poids saisie par erreur"),
        "{}",
        page.html
    );
    assert!(page.html.contains("7,25 kg"), "French decimals: {}", page.html);
    let small = weights(&get_json(c, &series, w.holder()).await)
        .into_iter()
        .find(|(_, v)| *v == 7.25)
        .unwrap()
        .0;
    let p = b
        .post(
            &format!("/profil/mesures/{small}/supprimer"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(p.status, 303);
    assert!(
        b.get(p.location())
            .await
            .html
            .contains("La mesure a été supprimée.")
    );
    assert!(
        weights(&get_json(c, &series, w.holder()).await)
            .iter()
            .all(|(id, _)| *id != small)
    );

    // AC-6: Dr LEROY's deletion and the refusals are in the history.
    let traces = get_json(c, &w.me("/traces?limit=200"), w.holder()).await;
    let deleted = traces["traces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["action"] == "delete" && t["item"].as_str().unwrap_or("").starts_with("measurement/"))
        .count();
    assert!(deleted >= 2, "{traces}");
}

/// A weight in kilograms at `at`, as the JSON API takes it.
fn weight(kg: f64, at: &str) -> Value {
    json!({ "code": "29463-7", "value": kg, "unit": "kg", "at": at })
}

/// Issue 32 (journey 10): what the holder wrote in her profile can be corrected (words and
/// date, with a stale version refused in words) or deleted from the page; what a professional
/// wrote offers neither.
#[tokio::test]
async fn the_holder_corrects_and_deletes_her_profile_entries_in_the_page() {
    let w = World::start().await;
    let mut b = crate::common::browser::Browser::new(&w.base);
    b.login().await;
    let r = post(
        &w.c,
        &w.me("/profile"),
        w.holder(),
        &json!({"section": "conditions", "text": "Astme", "date": "2019"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let leroy = w.pro("10000000001").await;
    let camille = w.camille_for(&leroy).await;
    let r = post(
        &w.c,
        &w.pro_url(&camille, "/profile"),
        As::Bearer(&leroy),
        &json!({"section": "allergies", "text": "Pénicilline"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let page = b.get("/profil").await;
    assert!(
        page.html.contains(&format!("action=\"/profil/{id}/corriger\"")),
        "{}",
        page.html
    );
    assert_eq!(
        page.html.matches("Corriger ou supprimer<").count(),
        1,
        "only her own entry"
    );
    let version = page.field("version");
    let fix = |text: &'static str, date: &'static str, version: String| {
        vec![
            ("texte", text.to_string()),
            ("date", date.to_string()),
            ("version", version),
        ]
    };
    let post_fix = |f: Vec<(&'static str, String)>, csrf: String| {
        let mut fields = vec![("csrf", csrf)];
        fields.extend(f);
        fields
    };
    let path = format!("/profil/{id}/corriger");
    // Emptied: refused in words, what was typed kept, the correction left open.
    let fields = post_fix(fix("", "2019", version.clone()), page.csrf());
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post(&path, &pairs).await;
    assert_eq!(p.status, 400);
    assert!(
        p.html.contains("information corrigée, ou supprimez-la"),
        "{}",
        p.html
    );
    assert!(p.html.contains("<details class=\"corrections\" open>"));
    // Corrected: the words and the date as typed in French.
    let fields = post_fix(fix("Asthme", "05/2019", version.clone()), p.csrf());
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post(&path, &pairs).await;
    assert_eq!(p.status, 303, "{}", p.html);
    let page = b.get(p.location()).await;
    assert!(page.html.contains("Asthme — 05/2019"), "{}", page.html);
    // The summary, in the site's frame, with the way back.
    assert!(page.html.contains("href=\"/profil/synthese\""));
    let summary = b.get("/profil/synthese").await;
    assert_eq!(summary.status, 200);
    assert!(
        summary.html.contains("<h1>Synthèse médicale</h1>")
            && summary.html.contains("Asthme — 05/2019")
            && summary.html.contains("href=\"/profil\">← Profil médical</a>")
            && summary.html.contains("Se déconnecter"),
        "{}",
        summary.html
    );
    assert!(page.html.contains("information a été corrigée"), "{}", page.html);
    assert!(!page.html.contains("Astme"));
    // The former version again: modified meanwhile, said so.
    let fields = post_fix(fix("Asthme sévère", "", version), page.csrf());
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post(&path, &pairs).await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("modifiée entre-temps"), "{}", p.html);
    // Deleted.
    let p = b
        .post(&format!("/profil/{id}/supprimer"), &[("csrf", &p.csrf())])
        .await;
    assert_eq!(p.status, 303);
    let page = b.get("/profil").await;
    assert!(!page.html.contains("Asthme") && page.html.contains("Pénicilline"));
}
