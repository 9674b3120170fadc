//! IHE MHD against the real binary (issue 33, DM-1, DM-2): a Document Source provides a
//! bundle as MHD writes it (ITI-65: a transaction with a SubmissionSet `List`, a
//! `DocumentReference` with XDS metadata and its `Binary`, absolute Patient references); a
//! Document Consumer finds it (ITI-67) and retrieves the document itself (ITI-68). What is
//! malformed is refused with an OperationOutcome and nothing stored.

use base64::Engine;
use serde_json::{Value, json};

use super::{get, ids};
use crate::common::*;

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n% lettre de liaison\n";
const DOC_UID: &str = "urn:oid:1.2.250.1.999.42.7.1";
const SET_UID: &str = "urn:oid:1.2.250.1.999.42.7.2";

/// A Provide Document Bundle for `patient` (an absolute reference, as MHD sources send it).
fn provide_bundle(patient: &str) -> Value {
    json!({
        "resourceType": "Bundle",
        "meta": {"profile": ["https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive.ProvideBundle"]},
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:3f8a2c1e-1111-4c0a-9d2e-0a0b0c0d0e01",
                "resource": {
                    "resourceType": "List",
                    "meta": {"profile": ["https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive.SubmissionSet"]},
                    "identifier": [
                        {"use": "usual", "system": "urn:ietf:rfc:3986", "value": SET_UID},
                        {"use": "official", "system": "urn:ietf:rfc:3986", "value": "urn:uuid:3f8a2c1e-1111-4c0a-9d2e-0a0b0c0d0e01"}
                    ],
                    "status": "current",
                    "mode": "working",
                    "code": {"coding": [{"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "code": "submissionset"}]},
                    "subject": {"reference": patient},
                    "date": "2026-12-05T16:00:00+01:00",
                    "entry": [{"item": {"reference": "urn:uuid:3f8a2c1e-2222-4c0a-9d2e-0a0b0c0d0e02"}}]
                },
                "request": {"method": "POST", "url": "List"}
            },
            {
                "fullUrl": "urn:uuid:3f8a2c1e-2222-4c0a-9d2e-0a0b0c0d0e02",
                "resource": {
                    "resourceType": "DocumentReference",
                    "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": DOC_UID},
                    "status": "current",
                    "type": {"coding": [{"system": "http://loinc.org", "code": "11490-0", "display": "Lettre de liaison à la sortie"}]},
                    "category": [{"coding": [{"system": "urn:carnet:document-class", "code": "reports"}]}],
                    "subject": {"reference": patient},
                    "date": "2026-12-05T15:30:00+01:00",
                    "description": "Lettre de liaison de sortie",
                    "authenticator": {"display": "Dr Jean DURAND"},
                    "securityLabel": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]}],
                    "content": [{"attachment": {"contentType": "application/pdf", "url": "urn:uuid:3f8a2c1e-3333-4c0a-9d2e-0a0b0c0d0e03"}}],
                    "context": {
                        "event": [{"coding": [{"system": "urn:oid:1.2.250.1.213.2.5", "code": "CHIR", "display": "Chirurgie"}]}],
                        "period": {"start": "2026-12-01", "end": "2026-12-05"},
                        "facilityType": {"coding": [{"system": "urn:oid:1.2.250.1.71.4.2.4", "code": "SA01", "display": "Établissement public de santé"}]},
                        "practiceSetting": {"coding": [{"system": "urn:oid:1.2.250.1.213.1.1.4.4", "code": "ORTHO", "display": "Orthopédie"}]}
                    }
                },
                "request": {"method": "POST", "url": "DocumentReference"}
            },
            {
                "fullUrl": "urn:uuid:3f8a2c1e-3333-4c0a-9d2e-0a0b0c0d0e03",
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "application/pdf",
                    "data": base64::engine::general_purpose::STANDARD.encode(PDF)
                },
                "request": {"method": "POST", "url": "Binary"}
            }
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mhd_document_source_provides_and_a_consumer_finds_and_retrieves_iti65_67_68() {
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let fhir = format!("{base}/fhir");
    let c = client();
    let leroy = pro_token(&c, &base, "10000000001").await;
    let moreau = pro_token(&c, &base, "10000000003").await; // no grant
    let (_, found) = get(
        &c,
        &format!("{fhir}/Patient?identifier={}", camille_ins()),
        &leroy,
    )
    .await;
    let camille = found["entry"][0]["resource"]["id"].as_str().unwrap().to_string();
    let patient = format!("{fhir}/Patient/{camille}");
    let post = |body: Value, token: String| {
        let (c, fhir) = (c.clone(), fhir.clone());
        async move {
            let r = c
                .post(&fhir)
                .bearer_auth(&token)
                .header("content-type", "application/fhir+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let count = || {
        let (c, fhir, leroy, camille) = (c.clone(), fhir.clone(), leroy.clone(), camille.clone());
        async move {
            let (_, b) = get(
                &c,
                &format!("{fhir}/DocumentReference?patient={camille}&_count=200"),
                &leroy,
            )
            .await;
            b["total"].as_u64().unwrap()
        }
    };
    let before = count().await;

    // Malformed bundles: an OperationOutcome naming the problem, and nothing stored.
    let mut orphan = provide_bundle(&patient);
    orphan["entry"][1]["resource"]["content"][0]["attachment"]["url"] = json!("urn:uuid:not-in-this-bundle");
    let mut unlisted = provide_bundle(&patient);
    unlisted["entry"][0]["resource"]["entry"] = json!([]);
    let mut bad_uid = provide_bundle(&patient);
    bad_uid["entry"][1]["resource"]["masterIdentifier"]["value"] = json!("1.2.250.1.999.42.7.1");
    let mut no_set = provide_bundle(&patient);
    no_set["entry"].as_array_mut().unwrap().remove(0);
    let mut wrong_type = provide_bundle(&patient);
    wrong_type["entry"][2]["resource"]["contentType"] = json!("image/png");
    for (what, bundle, words) in [
        (
            "a content url that names nothing",
            orphan,
            "is not a Binary of this bundle",
        ),
        (
            "a SubmissionSet that lists nothing",
            unlisted,
            "lists every DocumentReference",
        ),
        ("a uniqueId that is not a URN", bad_uid, "masterIdentifier.value"),
        ("a Binary without its SubmissionSet", no_set, "SubmissionSet"),
        ("a Binary of another type", wrong_type, "contentType"),
    ] {
        let (status, oo) = post(bundle, leroy.clone()).await;
        assert_eq!(status, 422, "{what}: {oo}");
        assert_eq!(oo["resourceType"], "OperationOutcome", "{what}");
        assert!(
            oo["issue"][0]["diagnostics"].as_str().unwrap().contains(words),
            "{what}: {oo}"
        );
    }
    assert_eq!(count().await, before, "nothing stored");
    // Someone the gate refuses: as if the patient did not exist (AC-8), nothing stored.
    let (status, oo) = post(provide_bundle(&patient), moreau.clone()).await;
    assert_eq!(status, 404, "{oo}");
    assert_eq!(count().await, before);

    // ITI-65: the médecin traitant's system provides it.
    let (status, txr) = post(provide_bundle(&patient), leroy.clone()).await;
    assert_eq!(status, 200, "{txr}");
    assert_eq!(txr["type"], "transaction-response");
    let statuses: Vec<&str> = txr["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["201 Created", "201 Created", "201 Created"]);
    let location = txr["entry"][1]["response"]["location"]
        .as_str()
        .unwrap()
        .to_string();
    let rid = location.strip_prefix("DocumentReference/").unwrap().to_string();
    assert_eq!(txr["entry"][2]["response"]["location"], format!("Binary/{rid}"));
    assert_eq!(count().await, before + 1);

    // Read back with its XDS metadata where MHD puts it.
    let (status, doc) = get(&c, &format!("{fhir}/{location}"), &leroy).await;
    assert_eq!(status, 200);
    assert_eq!(doc["masterIdentifier"]["value"], DOC_UID);
    assert_eq!(doc["context"]["facilityType"]["coding"][0]["code"], "SA01");
    assert_eq!(doc["context"]["practiceSetting"]["coding"][0]["code"], "ORTHO");
    assert_eq!(doc["context"]["event"][0]["coding"][0]["code"], "CHIR");
    assert_eq!(
        doc["context"]["period"],
        json!({"start": "2026-12-01", "end": "2026-12-05"})
    );
    assert_eq!(doc["authenticator"]["display"], "Dr Jean DURAND");
    assert_eq!(doc["description"], "Lettre de liaison de sortie");
    assert_eq!(doc["subject"]["reference"], format!("Patient/{camille}"));

    // ITI-67: found by the patient, the same resource in the searchset.
    let (status, set) = get(
        &c,
        &format!("{fhir}/DocumentReference?patient={camille}&_count=200"),
        &leroy,
    )
    .await;
    assert_eq!(status, 200);
    let hit = set["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["id"] == rid.as_str())
        .unwrap_or_else(|| panic!("{set}"));
    assert_eq!(hit["resource"], doc);
    // By its uniqueId, and by status (current by default; superseded on request).
    let (_, by_uid) = get(
        &c,
        &format!("{fhir}/DocumentReference?patient={camille}&identifier={DOC_UID}"),
        &leroy,
    )
    .await;
    assert_eq!(ids(&by_uid), vec![rid.clone()]);
    let (_, current) = get(
        &c,
        &format!("{fhir}/DocumentReference?patient={camille}&status=current&identifier={DOC_UID}"),
        &leroy,
    )
    .await;
    assert_eq!(ids(&current), vec![rid.clone()]);
    let (_, superseded) = get(
        &c,
        &format!("{fhir}/DocumentReference?patient={camille}&status=superseded"),
        &leroy,
    )
    .await;
    assert!(!ids(&superseded).contains(&rid));
    let (status, oo) = get(
        &c,
        &format!("{fhir}/DocumentReference?patient={camille}&status=lost"),
        &leroy,
    )
    .await;
    assert_eq!(
        (status, oo["resourceType"].as_str()),
        (400, Some("OperationOutcome"))
    );

    // ITI-68: the attachment's url gives the document itself when asked for it.
    let url = doc["content"][0]["attachment"]["url"].as_str().unwrap();
    assert!(url.ends_with(&format!("/Binary/{rid}")), "{url}");
    for accept in ["application/pdf", "application/pdf, */*;q=0.1"] {
        let r = c
            .get(url)
            .bearer_auth(&leroy)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{accept}");
        assert_eq!(r.headers()["content-type"], "application/pdf");
        assert_eq!(r.bytes().await.unwrap().as_ref(), PDF);
    }
    // Asked for FHIR, the Binary resource; refused, as absent as any other.
    let (status, binary) = get(&c, url, &leroy).await;
    assert_eq!((status, binary["resourceType"].as_str()), (200, Some("Binary")));
    let r = c
        .get(url)
        .bearer_auth(&moreau)
        .header("accept", "application/pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
