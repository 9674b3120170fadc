//! ExplanationOfBenefit (FHIR R4) and the reimbursement lines of Carnet (SPEC RB-1, IO-1), both
//! ways. Pure.
//!
//! Reading the insurer's feed as a Bundle of ExplanationOfBenefit, each resource gives one
//! [`RawReimbursementLine`] (validated later, exactly like a CSV line):
//!
//! | line field | from |
//! |---|---|
//! | `line_id` | `identifier[0].value` |
//! | `ins` | `patient.identifier` with system `urn:oid:1.2.250.1.213.1.4.8` (NIR) or `.10` (INS-C) |
//! | `date_of_care` | `billablePeriod.start`, else `item[0].servicedDate` / `servicedPeriod.start` |
//! | `type_of_care` | `subType` coded in `urn:carnet:care-type`, else `type` (claim-type: pharmacy, institutional → hospital, oral → dental, vision → optical, professional → consultation) |
//! | `act_code`, `act_label` | `item[0].productOrService` (`coding[0].code`, `coding[0].display` or `text`) |
//! | `professional_name`, `professional_id` | `provider.display`, `provider.identifier.value` (an IDNPS `8…` gives the RPPS) |
//! | `amount_paid` | `total` with category `submitted` |
//! | `amount_reimbursed` | `payment.amount`, else `total` with category `benefit` |
//!
//! Writing, [`explanation_of_benefit`] gives the same shape back (status active, use claim,
//! outcome complete, insurer "Assurance Maladie", amounts in EUR).

use carnet_domain::ins::OID_NIR;
use carnet_domain::reimbursement::{
    CareType, RawReimbursementLine, ReimbursementLine, format_amount, format_date,
};
use carnet_domain::{HolderId, Timestamp};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::resources::item_id;

/// OID of the INS-C (computed identifier), still found in older feeds.
pub const OID_INS_C: &str = "urn:oid:1.2.250.1.213.1.4.10";
/// Our code system for the type of care (`CareType` tags).
pub const CARE_TYPE_SYSTEM: &str = "urn:carnet:care-type";
/// The identifier system of the insurer's line ids.
pub const LINE_ID_SYSTEM: &str = "urn:carnet:insurer-line";
const CLAIM_TYPE: &str = "http://terminology.hl7.org/CodeSystem/claim-type";
const ADJUDICATION: &str = "http://terminology.hl7.org/CodeSystem/adjudication";
const IDNPS: &str = "urn:oid:1.2.250.1.71.4.2.1";
const IDNST: &str = "urn:oid:1.2.250.1.71.4.2.2";

/// An entry number (1-based) with its line or the reason it is unusable.
pub type NumberedLine = (u64, Result<RawReimbursementLine, String>);

/// Whether a JSON document looks like a FHIR Bundle (the feed's format is told by content).
pub fn is_bundle(v: &Value) -> bool {
    v.get("resourceType").and_then(Value::as_str) == Some("Bundle")
}

/// The reimbursement lines of a Bundle of ExplanationOfBenefit, each with its entry number.
pub fn lines_from_bundle(bundle: &Value) -> Result<Vec<NumberedLine>, String> {
    if !is_bundle(bundle) {
        return Err("not a FHIR Bundle (resourceType must be \"Bundle\")".into());
    }
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    Ok(entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (
                i as u64 + 1,
                e.get("resource")
                    .ok_or_else(|| "entry without resource".to_string())
                    .and_then(line_of),
            )
        })
        .collect())
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("").trim().to_string()
}

/// A FHIR decimal as text, exactly as written (`25.00` stays `25.00`).
fn decimal(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn has_code(concept: &Value, system: &str, code: &str) -> bool {
    concept["coding"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["code"] == code && (c["system"].is_null() || c["system"] == system))
    })
}

fn total(eob: &Value, category: &str) -> Option<String> {
    eob["total"]
        .as_array()?
        .iter()
        .find(|t| has_code(&t["category"], ADJUDICATION, category))
        .and_then(|t| decimal(&t["amount"]["value"]))
}

/// One ExplanationOfBenefit as a raw line (validated later, like a CSV line).
pub fn line_of(eob: &Value) -> Result<RawReimbursementLine, String> {
    if eob.get("resourceType").and_then(Value::as_str) != Some("ExplanationOfBenefit") {
        return Err("resource is not an ExplanationOfBenefit".into());
    }
    let line_id = eob["identifier"]
        .as_array()
        .and_then(|ids| ids.iter().find_map(|i| i["value"].as_str()))
        .unwrap_or("")
        .to_string();
    // Reference.identifier is one Identifier; some feeds write a list.
    let pid = &eob["patient"]["identifier"];
    let candidates: Vec<&Value> = match pid {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![pid],
        _ => Vec::new(),
    };
    let ins = candidates
        .iter()
        .find(|i| i["system"] == OID_NIR || i["system"] == OID_INS_C)
        .map(|i| text(&i["value"]))
        .ok_or_else(|| format!("patient.identifier: no INS (system {OID_NIR} or {OID_INS_C})"))?;
    let item = &eob["item"][0];
    let date = [
        &eob["billablePeriod"]["start"],
        &item["servicedDate"],
        &item["servicedPeriod"]["start"],
    ]
    .into_iter()
    .find_map(Value::as_str)
    .map(|d| d.get(..10).unwrap_or(d).to_string())
    .unwrap_or_default();
    let sub_type = eob["subType"]["coding"].as_array().and_then(|cs| {
        cs.iter()
            .find(|c| c["system"] == CARE_TYPE_SYSTEM)
            .and_then(|c| c["code"].as_str())
    });
    let type_of_care = match sub_type {
        Some(t) => t.to_string(),
        None => {
            let claim = eob["type"]["coding"].as_array().and_then(|cs| {
                cs.iter()
                    .find(|c| c["system"] == CLAIM_TYPE)
                    .and_then(|c| c["code"].as_str())
            });
            match claim {
                Some("pharmacy") => "pharmacy",
                Some("institutional") => "hospital",
                Some("oral") => "dental",
                Some("vision") => "optical",
                Some("professional") => "consultation",
                Some(other) => other,
                None => "",
            }
            .to_string()
        }
    };
    let pos = &item["productOrService"];
    let coding = &pos["coding"][0];
    let act_label = [&coding["display"], &pos["text"]]
        .into_iter()
        .find_map(Value::as_str)
        .unwrap_or("")
        .to_string();
    let provider = &eob["provider"];
    let mut professional_id = text(&provider["identifier"]["value"]);
    // A national id: `8` + RPPS for a person, `1` + FINESS for an establishment.
    if (professional_id.len() == 12 && professional_id.starts_with('8'))
        || (professional_id.len() == 10 && professional_id.starts_with('1'))
    {
        professional_id.remove(0);
    }
    let amount_paid = total(eob, "submitted").unwrap_or_default();
    let amount_reimbursed = decimal(&eob["payment"]["amount"]["value"])
        .or_else(|| total(eob, "benefit"))
        .unwrap_or_default();
    Ok(RawReimbursementLine {
        ins,
        line_id,
        date_of_care: date,
        type_of_care,
        act_code: text(&coding["code"]),
        act_label,
        professional_name: text(&provider["display"]),
        professional_id,
        amount_paid,
        amount_reimbursed,
    })
}

/// The claim-type of a type of care.
fn claim_type(c: CareType) -> &'static str {
    match c {
        CareType::Pharmacy => "pharmacy",
        CareType::Hospital => "institutional",
        CareType::Dental => "oral",
        CareType::Optical => "vision",
        CareType::Consultation
        | CareType::Biology
        | CareType::Imaging
        | CareType::Paramedical
        | CareType::Other => "professional",
    }
}

/// A decimal amount in euros (two decimals kept: `25.00`, not `25`).
fn money(cents: i64) -> Value {
    let value: Value = serde_json::from_str(&format_amount(cents)).unwrap_or(Value::Null);
    json!({ "value": value, "currency": "EUR" })
}

fn adjudication(code: &str) -> Value {
    json!({ "coding": [{ "system": ADJUDICATION, "code": code }] })
}

/// An ExplanationOfBenefit for a stored reimbursement line (logical id `HOLDER+ITEM`).
pub fn explanation_of_benefit(
    holder: HolderId,
    id: Uuid,
    line: &ReimbursementLine,
    imported_at: Timestamp,
) -> Value {
    let date = format_date(line.date_of_care);
    let mut provider = json!({
        "display": if line.professional.name.is_empty() { "Professionnel non précisé" } else { line.professional.name.as_str() },
    });
    if let Some(pid) = &line.professional.id {
        let (system, value) = if pid.len() == 11 {
            (IDNPS, format!("8{pid}"))
        } else {
            (IDNST, format!("1{pid}"))
        };
        provider["identifier"] = json!({ "system": system, "value": value });
    }
    let mut coding = json!({ "system": "urn:carnet:act", "display": line.act_label });
    match &line.act_code {
        Some(code) => coding["code"] = json!(code),
        None => coding["code"] = json!(line.care_type.tag()),
    }
    json!({
        "resourceType": "ExplanationOfBenefit",
        "id": item_id(holder, id),
        "meta": { "lastUpdated": imported_at.to_rfc3339() },
        "identifier": [{ "system": LINE_ID_SYSTEM, "value": line.line_id }],
        "status": "active",
        "type": { "coding": [{ "system": CLAIM_TYPE, "code": claim_type(line.care_type) }] },
        "subType": { "coding": [{ "system": CARE_TYPE_SYSTEM, "code": line.care_type.tag(), "display": line.care_type.french() }] },
        "use": "claim",
        "patient": { "reference": format!("Patient/{holder}") },
        "billablePeriod": { "start": date, "end": date },
        "created": imported_at.to_rfc3339(),
        "insurer": { "display": "Assurance Maladie" },
        "provider": provider,
        "outcome": "complete",
        "insurance": [{ "focal": true, "coverage": { "display": "Assurance maladie obligatoire" } }],
        "item": [{
            "sequence": 1,
            "productOrService": { "coding": [coding], "text": line.act_label },
            "servicedDate": date,
            "net": money(line.paid_cents),
            "adjudication": [
                { "category": adjudication("submitted"), "amount": money(line.paid_cents) },
                { "category": adjudication("benefit"), "amount": money(line.reimbursed_cents) },
            ],
        }],
        "total": [
            { "category": adjudication("submitted"), "amount": money(line.paid_cents) },
            { "category": adjudication("benefit"), "amount": money(line.reimbursed_cents) },
        ],
        "payment": { "amount": money(line.reimbursed_cents) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use carnet_domain::reimbursement::Professional;
    use time::macros::date;

    const NOW: Timestamp = Timestamp::from_unix_seconds(1_767_603_600);

    fn ins() -> String {
        let nir = "1850275000001";
        format!("{nir}{:02}", carnet_domain::ins::nir_key(nir).unwrap())
    }

    fn line() -> ReimbursementLine {
        ReimbursementLine {
            line_id: "CPAM-2025-1".into(),
            date_of_care: date!(2025 - 12 - 01),
            care_type: CareType::Pharmacy,
            act_code: Some("PH7".into()),
            act_label: "Médicaments remboursés à 65 %".into(),
            professional: Professional {
                name: "Pharmacie du Port".into(),
                id: Some("330000123".into()),
            },
            paid_cents: 1240,
            reimbursed_cents: 806,
        }
    }

    #[test]
    fn an_eob_says_what_the_line_says_rb1() {
        let holder = HolderId::from_uuid(Uuid::from_u128(7));
        let v = explanation_of_benefit(holder, Uuid::from_u128(9), &line(), NOW);
        assert_eq!(v["type"]["coding"][0]["code"], "pharmacy");
        assert_eq!(v["total"][0]["amount"]["value"].to_string(), "12.40");
        assert_eq!(v["payment"]["amount"]["value"].to_string(), "8.06");
        assert_eq!(v["provider"]["identifier"]["value"], "1330000123");
        assert_eq!(v["billablePeriod"]["start"], "2025-12-01");
        assert_eq!(v["patient"]["reference"], format!("Patient/{holder}"));
    }

    #[test]
    fn an_eob_reads_back_as_the_same_line() {
        let holder = HolderId::from_uuid(Uuid::from_u128(7));
        let mut v = explanation_of_benefit(holder, Uuid::from_u128(9), &line(), NOW);
        v["patient"]["identifier"] = json!({ "system": OID_NIR, "value": ins() });
        let raw = line_of(&v).unwrap();
        assert_eq!(raw.amount_paid, "12.40");
        let back = raw.validate(NOW).unwrap();
        assert_eq!(back.line, line());
    }

    #[test]
    fn a_bundle_gives_numbered_lines_and_names_what_is_missing() {
        let eob = json!({
            "resourceType": "ExplanationOfBenefit",
            "identifier": [{ "value": "L1" }],
            "patient": { "identifier": { "system": OID_INS_C, "value": ins() } },
            "type": { "coding": [{ "system": CLAIM_TYPE, "code": "professional" }] },
            "item": [{ "servicedDate": "2025-11-02", "productOrService": { "text": "Consultation" } }],
            "provider": { "display": "Dr Martin", "identifier": { "value": "810003456789" } },
            "total": [
                { "category": { "coding": [{ "code": "submitted" }] }, "amount": { "value": 30 } },
                { "category": { "coding": [{ "system": ADJUDICATION, "code": "benefit" }] }, "amount": { "value": 21.0 } }
            ]
        });
        let bundle = json!({ "resourceType": "Bundle", "type": "collection", "entry": [
            { "resource": eob },
            { "resource": { "resourceType": "Patient" } },
            { "resource": { "resourceType": "ExplanationOfBenefit", "patient": { "reference": "Patient/x" } } },
            {}
        ]});
        let lines = lines_from_bundle(&bundle).unwrap();
        assert_eq!(lines.len(), 4);
        let first = lines[0].1.clone().unwrap().validate(NOW).unwrap();
        assert_eq!(first.line.care_type, CareType::Consultation);
        assert_eq!((first.line.paid_cents, first.line.reimbursed_cents), (3000, 2100));
        assert_eq!(first.line.professional.id.as_deref(), Some("10003456789"));
        assert_eq!(first.line.act_label, "Consultation");
        assert_eq!(lines[1].1, Err("resource is not an ExplanationOfBenefit".into()));
        assert!(
            lines[2]
                .1
                .as_ref()
                .unwrap_err()
                .starts_with("patient.identifier: no INS")
        );
        assert_eq!(lines[3].1, Err("entry without resource".into()));
        assert!(lines_from_bundle(&json!({"resourceType": "Patient"})).is_err());
    }
}
