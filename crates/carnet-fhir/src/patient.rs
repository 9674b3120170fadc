//! Patient (FR Core Patient) to and from the roster's administrative data.

use carnet_domain::ins::OID_NIR;
use carnet_domain::roster::RawRosterLine;
use serde_json::Value;

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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
