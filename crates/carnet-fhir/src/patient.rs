//! Patient (FR Core Patient) to and from the roster's administrative data.

use carnet_domain::ins::OID_NIR;
use carnet_domain::roster::{Administrative, RawRosterLine, Sex};
use serde_json::{Value, json};

/// FR Core profile of a patient with a qualified INS.
pub const FR_CORE_PATIENT_INS: &str = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-ins";
/// FR Core identifier types (INS-NIR, INS-NIA...).
pub const FR_CORE_ID_TYPES: &str = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203";

/// A holder's administrative data as an FR Core Patient (INS as identifier, IO-1).
pub fn patient_from_admin(id: &str, admin: &Administrative) -> Value {
    let mut names =
        vec![json!({ "use": "official", "family": admin.birth_name, "given": admin.given_names })];
    if let Some(used) = &admin.used_name {
        names.push(json!({ "use": "usual", "family": used }));
    }
    let mut telecom = Vec::new();
    if let Some(e) = &admin.email {
        telecom.push(json!({ "system": "email", "value": e }));
    }
    if let Some(p) = &admin.phone {
        telecom.push(json!({ "system": "phone", "value": p }));
    }
    let birth_date = serde_json::to_value(admin)
        .ok()
        .and_then(|v| v.get("birth_date").cloned())
        .unwrap_or(Value::Null);
    let mut p = json!({
        "resourceType": "Patient",
        "id": id,
        "meta": { "profile": [FR_CORE_PATIENT_INS] },
        "identifier": [{
            "use": "official",
            "type": { "coding": [{ "system": FR_CORE_ID_TYPES, "code": "INS-NIR" }] },
            "system": OID_NIR,
            "value": admin.ins.as_str(),
        }],
        "name": names,
        "gender": match admin.sex { Sex::Female => "female", Sex::Male => "male", Sex::Unknown => "unknown" },
        "birthDate": birth_date,
    });
    if !telecom.is_empty() {
        p["telecom"] = Value::Array(telecom);
    }
    if let Some(a) = &admin.address {
        p["address"] = json!([{ "text": a }]);
    }
    p
}

/// An entry number (1-based) with its roster line or the reason it is unusable.
pub type NumberedLine = (usize, Result<RawRosterLine, String>);

/// The roster lines of a FHIR Bundle of Patient resources (`collection`, `batch`,
/// `transaction` or `searchset`), each with its entry number (1-based) or an error.
pub fn roster_lines_from_bundle(bundle: &Value) -> Result<Vec<NumberedLine>, String> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
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
                i + 1,
                e.get("resource")
                    .ok_or_else(|| "entry without resource".to_string())
                    .and_then(patient_line),
            )
        })
        .collect())
}

fn s(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or("").to_string()
}

/// One Patient resource as a raw roster line (validated later, like a CSV line).
pub fn patient_line(p: &Value) -> Result<RawRosterLine, String> {
    if p.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        return Err("resource is not a Patient".into());
    }
    let ids = p
        .get("identifier")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let ins = ids
        .iter()
        .find(|i| i.get("system").and_then(Value::as_str) == Some(OID_NIR))
        .and_then(|i| i.get("value"))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("identifier: no INS (system {OID_NIR})"))?;
    let names = p
        .get("name")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    // FR Core: "official" carries the birth name, "usual" the used name.
    let by_use = |u: &str| {
        names
            .iter()
            .find(|n| n.get("use").and_then(Value::as_str) == Some(u))
    };
    let official = by_use("official").or_else(|| names.first());
    let given = official
        .and_then(|n| n.get("given"))
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let telecom = p
        .get("telecom")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let contact = |system: &str| {
        telecom
            .iter()
            .find(|t| t.get("system").and_then(Value::as_str) == Some(system))
            .map(|t| s(t.get("value")))
            .unwrap_or_default()
    };
    let address = p
        .get("address")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .map(|a| {
            let mut parts: Vec<String> = a
                .get("line")
                .and_then(Value::as_array)
                .map(|l| l.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            parts.push(
                format!("{} {}", s(a.get("postalCode")), s(a.get("city")))
                    .trim()
                    .to_string(),
            );
            parts.retain(|p| !p.is_empty());
            parts.join(", ")
        })
        .unwrap_or_default();
    Ok(RawRosterLine {
        ins: ins.to_string(),
        birth_name: s(official.and_then(|n| n.get("family"))),
        used_name: s(by_use("usual").and_then(|n| n.get("family"))),
        given_names: given,
        sex: match p.get("gender").and_then(Value::as_str) {
            Some("female") => "F".into(),
            Some("male") => "M".into(),
            _ => "U".into(),
        },
        birth_date: s(p.get("birthDate")),
        birth_place: String::new(),
        address,
        email: contact("email"),
        phone: contact("phone"),
        representative_ins: String::new(),
        card_serial: String::new(),
        representative_kind: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patient_round_trips_through_the_roster_reader() {
        let k = carnet_domain::ins::nir_key("2850275123456").unwrap();
        let admin = RawRosterLine {
            ins: format!("2850275123456{k:02}"),
            birth_name: "MARTIN".into(),
            used_name: "DURAND".into(),
            given_names: "Camille Marie".into(),
            sex: "F".into(),
            birth_date: "1985-02-14".into(),
            email: "c@example.org".into(),
            ..RawRosterLine::default()
        }
        .validate(carnet_domain::Timestamp::from_unix_seconds(1_800_000_000))
        .unwrap()
        .admin;
        let p = patient_from_admin("abc", &admin);
        assert_eq!(p["identifier"][0]["type"]["coding"][0]["code"], "INS-NIR");
        assert_eq!(p["birthDate"], "1985-02-14");
        let back = patient_line(&p).unwrap();
        assert_eq!(back.ins, admin.ins.as_str());
        assert_eq!(back.birth_name, "MARTIN");
        assert_eq!(back.used_name, "DURAND");
        assert_eq!(back.given_names, "Camille Marie");
        assert_eq!(back.email, "c@example.org");
    }

    #[test]
    fn reads_fr_core_patients_and_reports_bad_entries() {
        let b = json!({
            "resourceType": "Bundle", "type": "collection",
            "entry": [
                {"resource": {"resourceType": "Patient",
                    "identifier": [{"system": OID_NIR, "value": "285027512345678"}],
                    "name": [{"use": "official", "family": "MARTIN", "given": ["Camille", "Marie"]},
                             {"use": "usual", "family": "DURAND"}],
                    "gender": "female", "birthDate": "1985-02-14",
                    "telecom": [{"system": "email", "value": "c@example.org"}],
                    "address": [{"line": ["3 rue des Lilas"], "postalCode": "75011", "city": "Paris"}]}},
                {"resource": {"resourceType": "Observation"}},
                {"resource": {"resourceType": "Patient", "identifier": []}}
            ]
        });
        let lines = roster_lines_from_bundle(&b).unwrap();
        let first = lines[0].1.as_ref().unwrap();
        assert_eq!(first.birth_name, "MARTIN");
        assert_eq!(first.used_name, "DURAND");
        assert_eq!(first.given_names, "Camille Marie");
        assert_eq!(first.sex, "F");
        assert_eq!(first.email, "c@example.org");
        assert_eq!(first.address, "3 rue des Lilas, 75011 Paris");
        assert_eq!(lines[1], (2, Err("resource is not a Patient".into())));
        assert!(lines[2].1.as_ref().unwrap_err().starts_with("identifier: no INS"));
        assert!(roster_lines_from_bundle(&json!({"resourceType": "Patient"})).is_err());
    }
}
