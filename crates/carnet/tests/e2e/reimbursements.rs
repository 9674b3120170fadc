//! End to end: reimbursements (SPEC RB-1, RB-2) on a real data directory with the real binary.
//! `carnet import reimbursements` files the insurer's feed (CSV, then a FHIR Bundle of
//! ExplanationOfBenefit) through the gate, reports rejects with line numbers and is idempotent;
//! the server lists, filters, sums and exports them for the holder, serves them as
//! ExplanationOfBenefit, and a professional without a grant gets a 404, traced (AC-6, AC-8).

use std::path::Path;

use crate::common::{As, Server, client, fresh_dir, ins_for, post, run};
use carnet_domain::{Event, HolderId, Ins};
use serde_json::{Value, json};

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

/// `YYYY-MM-DD`, `days` before today (UTC).
fn days_ago(days: i64) -> String {
    use carnet_domain::Clock;
    let t = carnet_domain::SystemClock.now().plus_seconds(-days * 86_400);
    t.to_rfc3339()[..10].to_string()
}

fn import(d: &str, file: &Path, rejects: &Path) -> String {
    let out = run(
        &[
            "import",
            "reimbursements",
            file.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
            "--data-dir",
            d,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reimbursement_feed_import_list_filter_export_and_fhir_rb1_rb2_ac6_ac8() {
    let (t, data) = fresh_dir();
    let d = data.to_str().unwrap();
    assert!(run(&["init", "--data-dir", d], &[]).status.success());
    // Spaces: 1 activated, 2 objected (LC-3: no space), 3 closed; 9 has none.
    let roster = t.path().join("roster.csv");
    std::fs::write(
        &roster,
        format!(
            "ins,birth_name,given_names,sex,birth_date\n\
             {},MARTIN,Camille,F,1984-03-12\n{},PETIT,Inès,F,1990-06-02\n{},BERNARD,Lucas,M,1957-09-30\n",
            ins_for(1),
            ins_for(2),
            ins_for(3)
        ),
    )
    .unwrap();
    assert!(
        run(
            &["import", "roster", roster.to_str().unwrap(), "--data-dir", d],
            &[]
        )
        .status
        .success()
    );
    let pros = t.path().join("pros.csv");
    std::fs::write(
        &pros,
        "rpps,family_name,given_name,profession\n10000000077,VIDAL,Anne,medecin\n10000000088,ROUX,Paul,medecin\n",
    )
    .unwrap();
    assert!(
        run(
            &["import", "professionals", pros.to_str().unwrap(), "--data-dir", d],
            &[]
        )
        .status
        .success()
    );
    let camille = {
        let store = open_store(&data).await;
        let camille = holder(&store, 1).await;
        store.transition(camille, Event::Activate).await.unwrap();
        store
            .transition(holder(&store, 2).await, Event::Oppose)
            .await
            .unwrap();
        let lucas = holder(&store, 3).await;
        store.transition(lucas, Event::Activate).await.unwrap();
        store.transition(lucas, Event::Close).await.unwrap();
        store.db().close().await;
        camille
    };

    // The insurer's CSV feed: 5 good lines for Camille (one repeated), then bad ones.
    let (i1, i2, i3, i9) = (ins_for(1), ins_for(2), ins_for(3), ins_for(9));
    let (d10, d40, d70, d200) = (days_ago(10), days_ago(40), days_ago(70), days_ago(200));
    let lines = [
        // 2..=6: good.
        format!("{i1},CPAM-1,{d10},consultation,G,Consultation,Dr Anne VIDAL,10000000077,30.00,21.00"),
        format!("{i1},CPAM-2,{d40},pharmacie,PH7,Médicaments,Pharmacie du Port,330000123,\"12,40\",\"8,06\""),
        format!("{i1},CPAM-3,{d70},biology,B,\"Analyses, bilan\",Laboratoire Sud,,41.20,24.72"),
        format!("{i1},CPAM-4,{d200},consultation,G,Consultation,Dr Anne VIDAL,10000000077,30,20"),
        format!("{i1},CPAM-1,{d10},consultation,G,Consultation,Dr Anne VIDAL,10000000077,30.00,21.00"),
        // 7..=14: rejected.
        format!("{i1},CPAM-5,{d10},consultation,G,Consultation,Dr X,,-3.00,0"),
        format!("{i1},CPAM-6,{d10},consultation,G,Consultation,Dr X,,10.00,12.00"),
        format!(
            "{i1},CPAM-7,{},consultation,G,Consultation,Dr X,,10.00,5.00",
            days_ago(-3)
        ),
        format!(
            "{i1},CPAM-8,{},consultation,G,Consultation,Dr X,,10.00,5.00",
            days_ago(800)
        ),
        format!("{i1},CPAM-9,{d10},massage,,Massage,Dr X,,10.00,5.00"),
        format!("{i9},CPAM-10,{d10},consultation,G,Consultation,Dr X,,10.00,5.00"),
        format!("{i2},CPAM-11,{d10},consultation,G,Consultation,Dr X,,10.00,5.00"),
        format!("{i3},CPAM-12,{d10},consultation,G,Consultation,Dr X,,10.00,5.00"),
    ];
    let feed = t.path().join("feed.csv");
    std::fs::write(
        &feed,
        format!(
            "{}\n{}\n",
            carnet_domain::reimbursement::FEED_COLUMNS.join(","),
            lines.join("\n")
        ),
    )
    .unwrap();
    let rejects = t.path().join("rejects.csv");
    let out = import(d, &feed, &rejects);
    assert!(
        out.contains("13 lines read, 4 imported, 1 already present, 8 rejected"),
        "{out}"
    );
    let rej = std::fs::read_to_string(&rejects).unwrap();
    let rej: Vec<&str> = rej.lines().collect();
    assert_eq!(rej[0], "line,reason");
    for (i, expected) in [
        (1, "7,\"amount_paid: negative\""),
        (
            2,
            "8,\"amount_reimbursed: 12.00 is more than the amount paid (10.00)\"",
        ),
        (3, "9,\"date_of_care:"),
        (4, "10,\"date_of_care:"),
        (5, "11,\"type_of_care: 'massage'"),
        (6, "12,\"ins: no space has this INS\""),
        (7, "13,\"ins: the holder objected"),
        (8, "14,\"ins: the holder objected"),
    ] {
        assert!(rej[i].starts_with(expected), "{} vs {expected}", rej[i]);
    }
    assert!(rej[3].contains("in the future") && rej[4].contains("older than the 24 months"));

    // Idempotent: the same feed again adds nothing.
    let out = import(d, &feed, &rejects);
    assert!(
        out.contains("13 lines read, 0 imported, 5 already present, 8 rejected"),
        "{out}"
    );

    // A FHIR Bundle of ExplanationOfBenefit (told by content): one new line, one known.
    let eob = |id: &str, date: &str, paid: &str, back: &str| {
        json!({"resource": {
            "resourceType": "ExplanationOfBenefit",
            "identifier": [{"system": "urn:carnet:insurer-line", "value": id}],
            "status": "active",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "vision"}]},
            "use": "claim",
            "patient": {"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": i1}},
            "billablePeriod": {"start": date},
            "provider": {"display": "Optique Centrale"},
            "item": [{"sequence": 1, "productOrService": {"coding": [{"code": "LEN", "display": "Verres"}]}}],
            "total": [{"category": {"coding": [{"code": "submitted"}]}, "amount": {"value": serde_json::from_str::<Value>(paid).unwrap(), "currency": "EUR"}}],
            "payment": {"amount": {"value": serde_json::from_str::<Value>(back).unwrap(), "currency": "EUR"}}
        }})
    };
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        eob("EOB-1", &days_ago(100), "180.00", "5.40"),
        eob("CPAM-2", &d40, "12.40", "8.06"),
    ]});
    let fhir_feed = t.path().join("feed.fhir");
    std::fs::write(&fhir_feed, serde_json::to_vec_pretty(&bundle).unwrap()).unwrap();
    let out = import(d, &fhir_feed, &rejects);
    assert!(
        out.contains("2 lines read, 1 imported, 1 already present, 0 rejected"),
        "{out}"
    );

    // Tokens: Camille's session, two doctors (Paul ROUX gets a grant below).
    let token = |args: &[&str]| {
        let mut a = vec!["token"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--data-dir", d]);
        let out = run(&a, &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let cam = format!("__Host-carnet_session={}", token(&["holder", &i1]));
    let vidal = token(&["professional", "10000000077"]);
    let roux = token(&["professional", "10000000088"]);

    let s = Server::start(&data, &[], &[]);
    let c = client();
    let get = |path: &str, auth: &str| {
        let r = c.get(s.url(path));
        if auth.starts_with("__Host") {
            r.header("cookie", auth.to_string())
        } else {
            r.bearer_auth(auth)
        }
    };

    // RB-1, RB-2: the lines, newest first, with totals and months.
    let r = get("/api/v1/me/reimbursements", &cam).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let all: Value = r.json().await.unwrap();
    let ids: Vec<&str> = all["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["CPAM-1", "CPAM-2", "CPAM-3", "EOB-1", "CPAM-4"]);
    assert_eq!(
        all["totals"],
        json!({"lines": 5, "paid_cents": 29_360, "reimbursed_cents": 7_918, "remaining_cents": 21_442})
    );
    assert_eq!(all["lines"][1]["care_type"], "pharmacy");
    assert_eq!(all["lines"][1]["remaining_cents"], 434);
    let months = all["by_month"].as_array().unwrap();
    assert!(
        months.len() >= 6,
        "every month from the oldest line's: {}",
        months.len()
    );
    let summed: i64 = months.iter().map(|m| m["paid_cents"].as_i64().unwrap()).sum();
    assert_eq!(summed, 29_360);

    // Filters: period (bounds included), type, professional; a bad filter is a 400.
    let r = get(&format!("/api/v1/me/reimbursements?from={d40}&to={d10}"), &cam)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["totals"]["lines"], 2);
    let v: Value = get("/api/v1/me/reimbursements?type=consultation", &cam)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["totals"]["lines"].as_u64(), v["totals"]["paid_cents"].as_i64()),
        (Some(2), Some(6000))
    );
    let v: Value = get("/api/v1/me/reimbursements?professional=vidal", &cam)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["totals"]["lines"], 2);
    for (q, why) in [
        ("from=yesterday", "from:"),
        ("type=spa", "type:"),
        ("colour=red", "colour: unknown parameter"),
    ] {
        let r = get(&format!("/api/v1/me/reimbursements?{q}"), &cam)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().contains(why), "{v}");
    }

    // RB-2: the CSV export, with the same filters.
    let r = get("/api/v1/me/reimbursements.csv?type=pharmacy", &cam)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let text = r.text().await.unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(
        rows[0],
        "date_of_care,type_of_care,act_code,act_label,professional_name,professional_id,amount_paid,amount_reimbursed,remaining,line_id"
    );
    assert_eq!(
        rows[1],
        format!("{d40},pharmacy,PH7,Médicaments,Pharmacie du Port,330000123,12.40,8.06,4.34,CPAM-2")
    );
    let all_csv = get("/api/v1/me/reimbursements.csv", &cam)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(all_csv.lines().count(), 6);
    // ID-3: the space's export holds them too.
    let export: Value = get("/api/v1/me/export", &cam)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(export["reimbursements"].as_array().unwrap().len(), 5);
    assert_eq!(export["reimbursements"][0]["line_id"], "CPAM-1");

    // FHIR: ExplanationOfBenefit search (date of care, paging) and read, as the holder.
    let r = get(
        &format!("/fhir/ExplanationOfBenefit?date=ge{d70}&date=le{d10}&_count=2"),
        &cam,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["total"], 3);
    assert_eq!(b["entry"].as_array().unwrap().len(), 2);
    assert!(
        b["link"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["relation"] == "next")
    );
    let eob = &b["entry"][0]["resource"];
    assert_eq!(eob["resourceType"], "ExplanationOfBenefit");
    assert_eq!(eob["patient"]["reference"], format!("Patient/{camille}"));
    assert_eq!(eob["outcome"], "complete");
    assert_eq!(eob["insurer"]["display"], "Assurance Maladie");
    let id = eob["id"].as_str().unwrap().to_string();
    let r = get(&format!("/fhir/ExplanationOfBenefit/{id}"), &cam)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let one: Value = r.json().await.unwrap();
    assert_eq!(&one, eob);
    let pharmacy = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["identifier"][0]["value"] == "CPAM-2")
        .expect("CPAM-2 in the first page");
    assert_eq!(pharmacy["total"][0]["amount"]["value"].to_string(), "12.40");
    assert_eq!(pharmacy["payment"]["amount"]["value"].to_string(), "8.06");
    let r = get("/fhir/metadata", &cam).send().await.unwrap();
    let cap: Value = r.json().await.unwrap();
    assert!(
        cap["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "ExplanationOfBenefit")
    );

    // AC-8: a professional without a grant: the API and FHIR read answer 404, the search is
    // empty, like a space without reimbursements; each attempt is traced as a denial (AC-6).
    let r = get(&format!("/api/v1/pro/patients/{camille}/reimbursements"), &vidal)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = get(&format!("/fhir/ExplanationOfBenefit/{id}"), &vidal)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let oo: Value = r.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let r = get(&format!("/fhir/ExplanationOfBenefit?patient={camille}"), &vidal)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["total"], 0);
    let traces: Value = get("/api/v1/me/traces?limit=200", &cam)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let denials: Vec<&Value> = traces["traces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["actor"]["id"] == "10000000077")
        .collect();
    assert_eq!(denials.len(), 3, "{traces}");
    assert!(
        denials
            .iter()
            .all(|t| t["allowed"] == false && t["reason"] == "no_grant" && t["category"] == "reimbursements")
    );
    // The feed's writes are traced too, as the insurer (not as an access told to the holder).
    let feed_traces: Vec<&Value> = traces["traces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["actor"] == json!({"kind": "operator", "id": "insurer-feed"}))
        .collect();
    assert_eq!(feed_traces.len(), 2, "the CSV and the Bundle; not the re-import");
    assert!(
        feed_traces
            .iter()
            .all(|t| t["reason"] == "insurer_feed" && t["allowed"] == true)
    );

    // With a grant, a doctor (habilitated for reimbursements, AC-1) reads them, traced.
    let r = post(
        &c,
        &s.url("/api/v1/me/access/grants"),
        As::Cookie(&cam),
        &json!({"kind": "professional", "id": "10000000088", "categories": ["reimbursements"]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = get(
        &format!("/api/v1/pro/patients/{camille}/reimbursements?type=optical"),
        &roux,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["lines"][0]["line_id"], "EOB-1");
    let r = get(&format!("/fhir/ExplanationOfBenefit?patient={camille}"), &roux)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["total"], 5);
}
