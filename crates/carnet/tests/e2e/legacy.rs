//! End to end: `carnet import legacy MANIFEST` (SPEC LC-8) on a real data directory, run as the
//! real binary. Documents of former DMPs land in their holders' records through the gate (DM-1,
//! AC-6); bad lines are reported and leave nothing behind; a second run imports nothing.

use std::path::Path;

use crate::common::{fresh_dir, ins_for, run, sha256_hex};
use carnet_domain::access::{
    Action, Actor, Author, Context, HabilitationMatrix, ProfessionalId, Reason, legacy_import_actor,
};
use carnet_domain::{Event, HolderId, Ins};
use carnet_store::documents::DocumentFilter;

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";
const TEXT: &str = "Ordonnance : amoxicilline 1 g, 3 fois par jour, 6 jours.";

fn png() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(&[0, 0, 0, 13]);
    b.extend_from_slice(b"IHDR");
    b.extend_from_slice(&[0; 17]);
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(b"IEND");
    b.extend_from_slice(&[0xAE, 0x42, 0x60, 0x82]);
    b
}

fn cda(ins: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <code code="11490-0" codeSystem="2.16.840.1.113883.6.1" displayName="Lettre de sortie"/>
  <title>Lettre de sortie</title>
  <effectiveTime value="20180704"/>
  <confidentialityCode code="N"/>
  <recordTarget><patientRole><id root="1.2.250.1.213.1.4.8" extension="{ins}"/></patientRole></recordTarget>
  <component><structuredBody/></component>
</ClinicalDocument>"#
    )
}

async fn open_store(data: &Path) -> carnet_store::Store {
    let settings = carnet_store::datadir::StoreSettings::new(data);
    carnet_store::datadir::open_store(&settings, std::sync::Arc::new(carnet_domain::SystemClock))
        .await
        .unwrap()
}

async fn holder(store: &carnet_store::Store, n: u64) -> HolderId {
    store
        .find_by_ins(&Ins::parse(&ins_for(n)).unwrap())
        .await
        .unwrap()
        .unwrap()
}

fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.flatten()
            .map(|e| if e.path().is_dir() { files(&e.path()) } else { 1 })
            .sum()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_import_lc8_files_documents_reports_rejects_and_is_idempotent_dm1_ac6() {
    let (t, data) = fresh_dir();
    let d = data.to_str().unwrap();
    assert!(run(&["init", "--data-dir", d], &[]).status.success());
    // Three spaces from the roster: 1 will be activated, 2 stays informed (its documents wait
    // for the opening), 3 objects (LC-3).
    let roster = t.path().join("roster.csv");
    std::fs::write(
        &roster,
        format!(
            "ins,birth_name,given_names,sex,birth_date\n\
             {},MARTIN,Camille,F,1984-03-12\n\
             {},PETIT,Inès,F,1990-06-02\n\
             {},BERNARD,Lucas,M,1957-09-30\n",
            ins_for(1),
            ins_for(2),
            ins_for(3)
        ),
    )
    .unwrap();
    let out = run(
        &["import", "roster", roster.to_str().unwrap(), "--data-dir", d],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    {
        let store = open_store(&data).await;
        store
            .transition(holder(&store, 1).await, Event::Activate)
            .await
            .unwrap();
        store
            .transition(holder(&store, 3).await, Event::Oppose)
            .await
            .unwrap();
        store.db().close().await;
    }
    let blobs_before = files(&data.join("blobs"));

    // The export of the former DMP: a manifest and its files (in a subdirectory).
    let export = t.path().join("export");
    std::fs::create_dir_all(export.join("docs")).unwrap();
    std::fs::write(export.join("docs/report.pdf"), PDF).unwrap();
    std::fs::write(export.join("docs/prescription.txt"), TEXT).unwrap();
    std::fs::write(export.join("docs/discharge.xml"), cda(&ins_for(1))).unwrap();
    std::fs::write(export.join("docs/xray.png"), png()).unwrap();
    std::fs::write(export.join("docs/fake.pdf"), b"this is no PDF").unwrap();
    let rpps = "10003456789";
    let (i1, i2, i3, i9) = (ins_for(1), ins_for(2), ins_for(3), ins_for(9));
    let lines = [
        // 2..=6: good lines.
        format!(
            "{i1},1.2.250.1.999.1.1,docs/report.pdf,application/pdf,\"Compte rendu opératoire, appendicectomie\",reports,34874-7,2019-03-12,20190312101500,{rpps},Dr Jeanne DURAND,CHU de Nantes,N,{},{}",
            sha256_hex(PDF),
            PDF.len()
        ),
        format!(
            "{i1},1.2.250.1.999.1.2,docs/prescription.txt,text/plain,Ordonnance,prescriptions,,,2020-01-15,{rpps},Dr Jeanne DURAND,,,,"
        ),
        format!(
            "{i1},1.2.250.1.999.1.3,docs/discharge.xml,text/xml,Lettre de sortie,reports,,,,8{rpps},Dr Jeanne DURAND,CHU de Nantes,,,"
        ),
        format!(
            "{i1},1.2.250.1.999.1.4,./docs/xray.png,image/png,Radiographie thoracique,imaging,,,2021-11-02T08:30:00Z,{rpps},Dr Paul ROUX,Cabinet de radiologie,R,,{}",
            png().len()
        ),
        format!(
            "{i2},1.2.250.1.999.2.1,docs/prescription.txt,text/plain,Ordonnance,prescriptions,,,,{rpps},Dr Jeanne DURAND,,,,"
        ),
        // 7..=13: bad lines.
        format!("{i1},1.2.250.1.999.1.5,docs/fake.pdf,application/pdf,Faux PDF,reports,,,,{rpps},Dr X,,,,"),
        format!(
            "{i1},1.2.250.1.999.1.6,docs/prescription.txt,text/plain,Ordonnance,prescriptions,,,,{rpps},Dr X,,,{},",
            sha256_hex(b"something else")
        ),
        format!(
            "{i9},1.2.250.1.999.9.1,docs/prescription.txt,text/plain,Ordonnance,prescriptions,,,,{rpps},Dr X,,,,"
        ),
        format!(
            "{i3},1.2.250.1.999.3.1,docs/prescription.txt,text/plain,Ordonnance,prescriptions,,,,{rpps},Dr X,,,,"
        ),
        format!("{i1},1.2.250.1.999.1.7,docs/missing.pdf,application/pdf,Absent,reports,,,,{rpps},Dr X,,,,"),
        format!(
            "{i1},1.2.250.1.999.1.8,docs/report.pdf,application/pdf,Mauvaise classe,surgery,,,,{rpps},Dr X,,,,"
        ),
        format!("{i1},1.2.250.1.999.1.9,../outside.pdf,application/pdf,Dehors,reports,,,,{rpps},Dr X,,,,"),
    ];
    let manifest = export.join("manifest.csv");
    std::fs::write(
        &manifest,
        format!(
            "ins,unique_id,file,mime,title,class,type_code,event_date,creation_time,author_rpps,author_name,organisation,confidentiality,sha256,size\n{}\n",
            lines.join("\n")
        ),
    )
    .unwrap();
    let rejects = t.path().join("rejects.csv");
    let args = [
        "import",
        "legacy",
        manifest.to_str().unwrap(),
        "--data-dir",
        d,
        "--rejects",
        rejects.to_str().unwrap(),
    ];
    let out = run(&args, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rejects do not fail the command: {stderr}");
    assert!(
        stdout.contains("legacy import: 5 documents imported, 0 already present, 7 rejected"),
        "{stdout}\n{stderr}"
    );
    for expected in [
        "line 7: 'docs/fake.pdf': ",
        "line 8: sha256: the content of 'docs/prescription.txt' does not match",
        "line 9: ins: no space has this INS",
        "line 10: ins: the holder objected",
        "line 11: file: cannot read 'docs/missing.pdf'",
        "line 12: class: 'surgery' is not one of reports,",
        "line 13: file: '../outside.pdf' is not a path inside the manifest's directory",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    let r = std::fs::read_to_string(&rejects).unwrap();
    let r: Vec<&str> = r.lines().collect();
    assert_eq!(r.len(), 8, "{r:?}");
    assert_eq!(r[0], "line,reason");
    assert!(r[1].starts_with("7,\"") && r[7].starts_with("13,\""), "{r:?}");
    // Bad lines left nothing behind: five blobs, one per imported document.
    assert_eq!(files(&data.join("blobs")), blobs_before + 5);

    // Again: nothing new.
    let out = run(&args, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("legacy import: 0 documents imported, 5 already present, 7 rejected"),
        "{stdout}"
    );
    assert_eq!(files(&data.join("blobs")), blobs_before + 5);

    // The traces still verify.
    let out = run(&["verify-traces", "--data-dir", d], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // The holder finds the documents of their former DMP in their record, written by their
    // original authors, with their content; the migration is in the access history (AC-6).
    let store = open_store(&data).await;
    let gate = carnet_store::gate::Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let h1 = holder(&store, 1).await;
    let me = Actor::Holder { id: h1 };
    let none = Context::default();
    let page = gate
        .list_documents(
            h1,
            &me,
            &DocumentFilter {
                limit: 100,
                ..DocumentFilter::default()
            },
            &none,
        )
        .await
        .unwrap();
    assert_eq!(page.total, 4);
    let by_uid = |uid: &str| {
        page.documents
            .iter()
            .find(|v| v.meta.legacy_unique_id.as_deref() == Some(uid))
            .unwrap_or_else(|| panic!("{uid} not listed"))
            .clone()
    };
    let report = by_uid("1.2.250.1.999.1.1");
    assert_eq!(
        report.meta.author,
        Author::Professional {
            id: ProfessionalId(rpps.into())
        }
    );
    assert_eq!(report.meta.author_name, "Dr Jeanne DURAND");
    assert_eq!(report.meta.organisation.as_deref(), Some("CHU de Nantes"));
    assert_eq!(report.meta.title, "Compte rendu opératoire, appendicectomie");
    assert_eq!(report.meta.event_date.as_deref(), Some("2019-03-12"));
    assert_eq!(report.meta.type_code.as_deref(), Some("34874-7"));
    assert_eq!(report.meta.uploaded_at.to_rfc3339(), "2019-03-12T10:15:00Z");
    let (_, bytes) = gate.read_document(h1, &me, report.id, &none).await.unwrap();
    assert_eq!(bytes.as_ref(), PDF);
    let letter = by_uid("1.2.250.1.999.1.3");
    assert_eq!(
        letter.meta.type_code.as_deref(),
        Some("11490-0"),
        "read from the CDA header"
    );
    assert_eq!(letter.meta.event_date.as_deref(), Some("2018-07-04"));
    let xray = by_uid("1.2.250.1.999.1.4");
    assert_eq!(xray.meta.confidentiality, "R");
    assert_eq!(xray.meta.author_name, "Dr Paul ROUX");
    let (_, bytes) = gate.read_document(h1, &me, xray.id, &none).await.unwrap();
    assert_eq!(bytes.as_ref(), png().as_slice());
    let traces = store.traces_of(h1, None, 100).await.unwrap();
    let imports: Vec<_> = traces
        .iter()
        .filter(|t| t.entry.actor == legacy_import_actor())
        .collect();
    assert_eq!(
        imports.len(),
        4,
        "one trace per imported document, none on the re-run"
    );
    assert!(imports.iter().all(|t| t.entry.allowed
        && t.entry.action == Action::Create
        && t.entry.reason == Reason::LegacyImport));
    // The informed space got its document too; the opposed one nothing.
    let h2 = holder(&store, 2).await;
    let traces2 = store.traces_of(h2, None, 100).await.unwrap();
    assert_eq!(traces2.len(), 1);
    let h3 = holder(&store, 3).await;
    assert!(store.traces_of(h3, None, 100).await.unwrap().is_empty());
    store.db().close().await;

    // An unreadable manifest, or one without the required columns, fails the command.
    let out = run(
        &[
            "import",
            "legacy",
            t.path().join("nope.csv").to_str().unwrap(),
            "--data-dir",
            d,
        ],
        &[],
    );
    assert!(!out.status.success());
    std::fs::write(&manifest, "ins,file\nx,y\n").unwrap();
    let out = run(
        &["import", "legacy", manifest.to_str().unwrap(), "--data-dir", d],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no column \"unique_id\""));
}
