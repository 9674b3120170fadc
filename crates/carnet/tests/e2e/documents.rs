//! End-to-end: documents of the shared medical record through the real binary (`carnet demo`),
//! as professionals, the holder and a representative. Every request goes through the gate:
//! DM-1 (formats checked against the bytes, S-20 CDA safety, size limit), DM-5 masking with the
//! médecin traitant's exception (AC-2), DM-6 held documents, MI-2 hidden from representatives,
//! AC-5 / S-7 emergency access, AC-8 denials that look like absence, and content encrypted at
//! rest (no plaintext in the database or blob files).

use std::path::Path;

use crate::common::*;
use serde_json::{Value, json};

async fn pro_login(c: &reqwest::Client, base: &str, rpps: &str) -> String {
    let r = post(
        c,
        &format!("{base}/api/v1/pro/demo-login"),
        As::Anonymous,
        &json!({ "rpps": rpps }),
    )
    .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

struct Pro<'a> {
    c: &'a reqwest::Client,
    base: &'a str,
    token: String,
    patient: String,
}

impl Pro<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/pro/patients/{}{path}", self.base, self.patient)
    }
    async fn get(&self, path: &str) -> reqwest::Response {
        self.c
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }
    async fn titles(&self, query: &str) -> Vec<String> {
        let r = self.get(&format!("/documents{query}")).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        titles(&v)
    }
    async fn upload(&self, query: &str, mime: &str, body: Vec<u8>) -> reqwest::Response {
        self.c
            .post(self.url(&format!("/documents{query}")))
            .bearer_auth(&self.token)
            .header("content-type", mime)
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

fn titles(v: &Value) -> Vec<String> {
    let mut t: Vec<String> = v["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\nsecret-marker-Zyrtec-7731\ntrailer << >>\n%%EOF\n";

fn blob_count(data: &Path) -> usize {
    fn walk(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&data.join("blobs"))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_through_the_gate_for_professionals_holder_and_representative() {
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let base = demo.base.clone();
    let c = client();

    // Professionals find Camille's record by INS.
    let leroy_token = pro_login(&c, &base, "10000000001").await; // médecin traitant
    let r = post(
        &c,
        &format!("{base}/api/v1/pro/patients/lookup"),
        As::Bearer(&leroy_token),
        &json!({ "ins": demo_ins('2', "8403", 1) }),
    )
    .await;
    assert_eq!(r.status(), 200);
    let camille = r.json::<Value>().await.unwrap()["patient"]
        .as_str()
        .unwrap()
        .to_string();
    let pro = |token: String| Pro {
        c: &c,
        base: &base,
        token,
        patient: camille.clone(),
    };
    let leroy = pro(leroy_token);
    let petit = pro(pro_login(&c, &base, "10000000002").await); // granted, radiologist
    let moreau = pro(pro_login(&c, &base, "10000000003").await); // nurse, no grant

    let all = leroy.titles("").await;
    assert_eq!(
        all,
        [
            "Compte rendu de consultation",
            "Ordonnance",
            "Échographie abdominale"
        ]
    );
    assert_eq!(petit.titles("").await, all);
    // AC-8: no grant, nothing shown; a document of the record and a made-up id answer alike.
    assert!(moreau.titles("").await.is_empty());
    let listing: Value = leroy
        .get("/documents?class=prescriptions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listing["total"], 1);
    let prescription = listing["documents"][0]["id"].as_str().unwrap().to_string();
    let denied = moreau.get(&format!("/documents/{prescription}/content")).await;
    let missing = moreau
        .get("/documents/0190a0a0-0000-7000-8000-000000000000/content")
        .await;
    assert_eq!((denied.status().as_u16(), missing.status().as_u16()), (404, 404));
    assert_eq!(denied.text().await.unwrap(), missing.text().await.unwrap());

    // DM-1: a real PDF is filed; wrong type, truncated, oversized or unsafe CDA are refused
    // and leave nothing behind.
    let blobs_before = blob_count(&data);
    let r = petit
        .upload(
            "?title=IRM%20du%20genou&class=imaging&type_code=18748-4&filename=irm.pdf",
            "application/pdf",
            PDF.to_vec(),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let irm: Value = r.json().await.unwrap();
    assert_eq!(irm["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(blob_count(&data), blobs_before + 1);
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\0IEND\xaeB`\x82".to_vec();
    let xxe = br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><ClinicalDocument>&e;</ClinicalDocument>"#.to_vec();
    for (mime, body, status) in [
        ("application/pdf", png, 422),
        ("application/pdf", PDF[..30].to_vec(), 422),
        ("text/xml", xxe, 422),
        ("application/zip", b"PK\x03\x04".to_vec(), 422),
    ] {
        let r = petit.upload("?title=x", mime, body).await;
        assert_eq!(r.status(), status, "{mime}");
        let msg: Value = r.json().await.unwrap();
        assert!(!msg["message"].as_str().unwrap().is_empty());
    }
    // Over the 20 MiB limit: 413 at once, from the declared length, before any byte of the body
    // (a raw connection, so the answer is read even though the body is never sent).
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = base.trim_start_matches("http://");
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /api/v1/pro/patients/{camille}/documents?title=big HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {}\r\nContent-Type: application/pdf\r\nContent-Length: {}\r\n\r\n",
            petit.token,
            21 * 1024 * 1024
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 512];
        let n = tcp.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }
    assert_eq!(
        blob_count(&data),
        blobs_before + 1,
        "no orphan blob after refused uploads"
    );
    assert_eq!(petit.titles("").await.len(), 4);

    // The holder sees the new document and downloads it intact.
    let cam = demo_login(&c, &base, "camille.martin@demo.carnet.invalid").await;
    let me = |path: &str| format!("{base}/api/v1/me{path}");
    let list: Value = get(&c, &me("/documents"), As::Cookie(&cam))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 4);
    let id = irm["id"].as_str().unwrap();
    let r = get(
        &c,
        &me(&format!("/documents/{id}/content?disposition=inline")),
        As::Cookie(&cam),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline; filename=\"irm.pdf\"")
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), PDF);

    // DM-5: Camille masks the consultation report: the radiologist no longer sees it, the
    // médecin traitant still does (AC-2).
    let report = list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["title"] == "Compte rendu de consultation")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .patch(me(&format!("/documents/{report}")))
        .header("cookie", &cam)
        .json(&json!({ "masked": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        !petit
            .titles("")
            .await
            .contains(&"Compte rendu de consultation".to_string())
    );
    assert!(
        leroy
            .titles("")
            .await
            .contains(&"Compte rendu de consultation".to_string())
    );
    // DM-4: the holder cannot delete a professional's document.
    let r = delete(&c, &me(&format!("/documents/{report}")), As::Cookie(&cam)).await;
    assert_eq!(r.status(), 404);

    // DM-6: a held document is not shown to the holder until its author lifts the hold.
    let r = petit
        .upload(
            "?title=R%C3%A9sultat%20%C3%A0%20annoncer&class=reports&hold=true",
            "text/plain",
            b"annonce".to_vec(),
        )
        .await;
    assert_eq!(r.status(), 201);
    let held: Value = r.json().await.unwrap();
    assert_eq!(held["visible_to_holder"], false);
    let cam_titles = |c: reqwest::Client, cam: String, url: String| async move {
        let v: Value = get(&c, &url, As::Cookie(&cam)).await.json().await.unwrap();
        titles(&v)
    };
    assert!(
        !cam_titles(c.clone(), cam.clone(), me("/documents"))
            .await
            .contains(&"Résultat à annoncer".to_string())
    );
    let r = c
        .patch(petit.url(&format!("/documents/{}", held["id"].as_str().unwrap())))
        .bearer_auth(&petit.token)
        .json(&json!({ "visible_to_holder": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        cam_titles(c.clone(), cam.clone(), me("/documents"))
            .await
            .contains(&"Résultat à annoncer".to_string())
    );

    // AC-5 / S-7: emergency access needs a reason, opens the record within the nurse's
    // habilitations, and is traced and told to the holder and the médecin traitant.
    let r = post(
        &c,
        &moreau.url("/emergency"),
        As::Bearer(&moreau.token),
        &json!({ "reason": "  " }),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post(
        &c,
        &moreau.url("/emergency"),
        As::Bearer(&moreau.token),
        &json!({ "reason": "malaise à domicile, patiente inconsciente" }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let seen = moreau.titles("").await;
    assert!(seen.contains(&"Ordonnance".to_string()), "{seen:?}");
    assert!(
        !seen.contains(&"IRM du genou".to_string()),
        "imaging is outside a nurse's habilitations"
    );
    let traces: Value = get(&c, &me("/traces?actor=professional"), As::Cookie(&cam))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        traces["traces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["emergency"] == true
                && t["emergency_reason"] == "malaise à domicile, patiente inconsciente")
    );
    let notices: Value = get(&c, &format!("{base}/api/v1/pro/me"), As::Bearer(&leroy.token))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        notices["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "emergency_access" && n["patient"] == camille.as_str())
    );

    // MI-2: Camille, acting for her daughter Inès, gives the radiologist access; a document he
    // marks hidden from representatives stays out of her lists and counts.
    let me_json: Value = get(&c, &me(""), As::Cookie(&cam)).await.json().await.unwrap();
    // Inès (not Hugo: the demo filed documents in her space), found by her INS.
    let r = post(
        &c,
        &format!("{base}/api/v1/pro/patients/lookup"),
        As::Bearer(&petit.token),
        &json!({ "ins": demo_ins('2', "1506", 2) }),
    )
    .await;
    let ines = r.json::<Value>().await.unwrap()["patient"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        me_json["spaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["relation"] == "parent" && s["id"] == ines.as_str()),
        "Camille represents Inès: {me_json}"
    );
    let r = post(&c, &me("/act-for"), As::Cookie(&cam), &json!({ "holder": ines })).await;
    assert_eq!(r.status(), 200);
    let r = post(
        &c,
        &me("/access/grants"),
        As::Cookie(&cam),
        &json!({ "kind": "professional", "id": "10000000002" }),
    )
    .await;
    assert_eq!(r.status(), 200);
    let petit_ines = Pro {
        c: &c,
        base: &base,
        token: petit.token.clone(),
        patient: ines.clone(),
    };
    for (q, title) in [
        ("&hidden_from_representatives=true", "Consultation confidentielle"),
        ("", "Radio du poignet"),
    ] {
        let r = petit_ines
            .upload(
                &format!("?title={}&class=reports{q}", title.replace(' ', "%20")),
                "text/plain",
                b"x".to_vec(),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    let rep_view: Value = get(&c, &me("/documents"), As::Cookie(&cam))
        .await
        .json()
        .await
        .unwrap();
    // The demo's own documents in Inès's space: a certificate, and a consultation Dr LEROY
    // also kept confidential from the parents.
    assert_eq!(
        titles(&rep_view),
        ["Certificat de vaccination", "Radio du poignet"]
    );
    assert_eq!(rep_view["total"], 2);
    // Dr PETIT's two, and the demo's two by Dr LEROY (a professional sees both: MI-2 hides
    // from the parents only).
    assert_eq!(petit_ines.titles("").await.len(), 4);
    // Nor in the access history, the notices or the FHIR AuditEvents she reads: the
    // radiologist's deposit and read of the hidden document leave no visible trace for her,
    // while those of the other document are there.
    let hidden_id = petit_ines.get("/documents").await.json::<Value>().await.unwrap()["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["title"] == "Consultation confidentielle")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        petit_ines
            .get(&format!("/documents/{hidden_id}/content"))
            .await
            .status(),
        200
    );
    for (path, key) in [
        ("/traces?limit=200", "traces"),
        ("/notifications?limit=200", "notifications"),
    ] {
        let v: Value = get(&c, &me(path), As::Cookie(&cam)).await.json().await.unwrap();
        let items = v[key].as_array().unwrap();
        assert!(
            !items.is_empty(),
            "{path}: the visible document's traces are there"
        );
        assert!(
            items
                .iter()
                .all(|t| !t["item"].as_str().unwrap_or("").contains(&hidden_id)),
            "{path} shows the hidden document to a representative: {v}"
        );
    }
    let audit: Value = get(
        &c,
        &format!("{base}/fhir/AuditEvent?_count=200"),
        As::Cookie(&cam),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        !audit.to_string().contains(&hidden_id),
        "AuditEvent leaks the hidden document"
    );

    // At rest, neither the database nor the blobs hold a known plaintext.
    drop(demo);
    let mut files = vec![
        data.join("carnet.db"),
        data.join("carnet.db-wal"),
        data.join("carnet-audit.db"),
        data.join("carnet-audit.db-wal"),
    ];
    fn collect(p: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            if e.path().is_dir() {
                collect(&e.path(), out)
            } else {
                out.push(e.path())
            }
        }
    }
    collect(&data.join("blobs"), &mut files);
    for f in files.iter().filter(|f| f.exists()) {
        let bytes = std::fs::read(f).unwrap();
        for needle in [
            &b"secret-marker-Zyrtec-7731"[..],
            b"IRM du genou",
            b"Consultation confidentielle",
            b"malaise",
        ] {
            assert!(!contains(&bytes, needle), "{} holds plaintext", f.display());
        }
    }
}
