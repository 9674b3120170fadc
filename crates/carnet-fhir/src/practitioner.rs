//! The directory of professionals from a FHIR Bundle of Practitioner, PractitionerRole and
//! Organization resources (as the Annuaire Santé's FHIR API and FR Core shape them), for
//! `carnet import professionals` (SPEC AC-1).
//!
//! - Practitioner: the RPPS number from an identifier whose value is a national id (IDNPS,
//!   `8` + RPPS, system `urn:oid:1.2.250.1.71.4.2.1`) or an 11-digit RPPS (any RPPS system);
//!   the official (else first) name.
//! - PractitionerRole: the profession from `code` (TRE_G15 ProfessionSante code, or the
//!   habilitation matrix's own profession name), the specialty from `specialty` (its display,
//!   else its code), the practice role (`care`, `regulation`, `occupational`) from a coding of
//!   [`PRACTICE_ROLE_SYSTEM`], the organisation from `organization`.
//! - Organization: the FINESS number (IDNST `1` + FINESS, or a 9-character FINESS) and name.
//!
//! A Practitioner with no role takes its profession from `qualification`. The directory keeps
//! one practice per professional: with several roles, the last one in the bundle wins.

use std::collections::HashMap;

use carnet_domain::access::ProfessionalId;
use serde_json::Value;

/// Carnet's coding system for the practice role (AC-1b, AC-5) in `PractitionerRole.code`.
pub const PRACTICE_ROLE_SYSTEM: &str = "urn:carnet:practice-role";
/// OID of national professional ids (IDNPS).
pub const OID_IDNPS: &str = "urn:oid:1.2.250.1.71.4.2.1";
/// OID of national structure ids (IDNST: `1` + FINESS, ...).
pub const OID_IDNST: &str = "urn:oid:1.2.250.1.71.4.2.2";

/// One professional as the directory import wants it (strings as in the CSV file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PractitionerRecord {
    pub rpps: String,
    pub family_name: String,
    pub given_name: String,
    pub profession: String,
    pub specialty: String,
    pub role: String,
    pub finess: String,
    pub organisation_name: String,
    /// The organisation's town (`Organization.address[0].city`), for finding professionals.
    pub town: String,
}

/// TRE_G15 ProfessionSante codes to the habilitation matrix's professions.
fn profession_of_g15(code: &str) -> Option<&'static str> {
    carnet_domain::Profession::from_g15(code).map(carnet_domain::Profession::label)
}

fn codings(v: &Value) -> impl Iterator<Item = &Value> {
    // A CodeableConcept, or a list of them.
    let list: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![v],
        _ => Vec::new(),
    };
    list.into_iter()
        .flat_map(|cc| cc.get("coding").and_then(Value::as_array).into_iter().flatten())
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// The profession named by a CodeableConcept (TRE_G15 code, or a matrix profession name).
fn profession(v: &Value) -> Option<String> {
    codings(v).find_map(|c| {
        let code = str_of(c, "code")?;
        let system = str_of(c, "system").unwrap_or("");
        if system.contains("G15") {
            profession_of_g15(code).map(str::to_string)
        } else if system == PRACTICE_ROLE_SYSTEM {
            None
        } else if code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            Some(code.to_string())
        } else {
            None
        }
    })
}

fn rpps(practitioner: &Value) -> Option<String> {
    practitioner
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| str_of(i, "value"))
        .find_map(ProfessionalId::from_national_id)
        .map(|p| p.0)
}

fn finess(org: &Value) -> Option<String> {
    org.get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|i| {
            let v = str_of(i, "value")?.trim();
            let sys = str_of(i, "system").unwrap_or("");
            let alnum = v.bytes().all(|b| b.is_ascii_alphanumeric());
            match v.len() {
                10 if alnum && v.starts_with('1') && (sys == OID_IDNST || sys.contains("finess")) => {
                    Some(v[1..].to_string())
                }
                9 if alnum
                    && (sys.contains("finess") || sys == OID_IDNST || sys.contains("1.2.250.1.71.4.2.2")) =>
                {
                    Some(v.to_string())
                }
                _ => None,
            }
        })
}

fn name(practitioner: &Value) -> (String, String) {
    let names: Vec<&Value> = practitioner
        .get("name")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let n = names
        .iter()
        .find(|n| str_of(n, "use") == Some("official"))
        .or(names.first());
    let family = n.and_then(|n| str_of(n, "family")).unwrap_or("").to_string();
    let given = n
        .and_then(|n| n.get("given"))
        .and_then(Value::as_array)
        .and_then(|g| g.first())
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    (family, given)
}

/// Each mapped entry: its label (`PractitionerRole/abc`) and the record or why it is refused.
pub type Mapped = Vec<(String, Result<PractitionerRecord, String>)>;

/// Maps a Bundle: one result per PractitionerRole (and per Practitioner without a role), each
/// named by its entry (`PractitionerRole/abc`) for the import's report. Only a document that is
/// not a Bundle is an error as a whole.
pub fn professionals_from_bundle(bundle: &Value) -> Result<Mapped, String> {
    if str_of(bundle, "resourceType") != Some("Bundle") {
        return Err("the file is not a FHIR Bundle (resourceType)".into());
    }
    let resources: Vec<(&Value, &Value)> = bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource").map(|r| (e, r)))
        .collect();
    // References resolve by "Type/id" and by fullUrl.
    let mut by_ref: HashMap<String, &Value> = HashMap::new();
    for (entry, r) in &resources {
        if let (Some(t), Some(id)) = (str_of(r, "resourceType"), str_of(r, "id")) {
            by_ref.insert(format!("{t}/{id}"), r);
        }
        if let Some(u) = str_of(entry, "fullUrl") {
            by_ref.insert(u.to_string(), r);
        }
    }
    let resolve = |r: &Value, k: &str| -> Option<&Value> {
        let reference = r.get(k).and_then(|x| str_of(x, "reference"))?;
        by_ref.get(reference).copied()
    };
    let label = |r: &Value| {
        format!(
            "{}/{}",
            str_of(r, "resourceType").unwrap_or("?"),
            str_of(r, "id").unwrap_or("?")
        )
    };
    let mut out = Vec::new();
    let mut with_role: Vec<*const Value> = Vec::new();
    for (_, r) in resources
        .iter()
        .filter(|(_, r)| str_of(r, "resourceType") == Some("PractitionerRole"))
    {
        let rec = (|| {
            let p = resolve(r, "practitioner").ok_or("practitioner: no such Practitioner in the bundle")?;
            with_role.push(std::ptr::from_ref(p));
            let mut rec = practitioner_record(p)?;
            rec.profession = r
                .get("code")
                .and_then(profession)
                .or_else(|| p.get("qualification").and_then(qualification))
                .ok_or("code: no profession (a TRE_G15 code or a profession of the habilitation matrix)")?;
            rec.role = r
                .get("code")
                .map(codings)
                .into_iter()
                .flatten()
                .find(|c| str_of(c, "system") == Some(PRACTICE_ROLE_SYSTEM))
                .and_then(|c| str_of(c, "code"))
                .unwrap_or("care")
                .to_string();
            rec.specialty = r
                .get("specialty")
                .map(codings)
                .into_iter()
                .flatten()
                .find_map(|c| str_of(c, "display").or_else(|| str_of(c, "code")))
                .unwrap_or("")
                .to_string();
            if let Some(o) = resolve(r, "organization") {
                rec.finess = finess(o).ok_or("organization: no FINESS identifier")?;
                rec.organisation_name = str_of(o, "name").unwrap_or("").to_string();
                rec.town = o
                    .get("address")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(|a| str_of(a, "city"))
                    .unwrap_or("")
                    .to_string();
            } else if r.get("organization").is_some() {
                return Err("organization: no such Organization in the bundle".to_string());
            }
            Ok(rec)
        })();
        out.push((label(r), rec));
    }
    for (_, p) in resources
        .iter()
        .filter(|(_, r)| str_of(r, "resourceType") == Some("Practitioner"))
    {
        if with_role.contains(&std::ptr::from_ref(*p)) {
            continue;
        }
        let rec = practitioner_record(p).and_then(|mut rec| {
            rec.profession = p
                .get("qualification")
                .and_then(qualification)
                .ok_or("qualification: no profession and no PractitionerRole")?;
            rec.role = "care".into();
            Ok(rec)
        });
        out.push((label(p), rec));
    }
    Ok(out)
}

fn qualification(q: &Value) -> Option<String> {
    q.as_array()?
        .iter()
        .find_map(|x| x.get("code").and_then(profession))
}

fn practitioner_record(p: &Value) -> Result<PractitionerRecord, String> {
    let rpps = rpps(p).ok_or("identifier: no RPPS number (IDNPS 8 + RPPS, or 11 digits)")?;
    let (family_name, given_name) = name(p);
    Ok(PractitionerRecord {
        rpps,
        family_name,
        given_name,
        ..PractitionerRecord::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle() -> Value {
        json!({
            "resourceType": "Bundle", "type": "collection",
            "entry": [
                { "fullUrl": "urn:uuid:p1", "resource": {
                    "resourceType": "Practitioner", "id": "p1",
                    "identifier": [{ "system": OID_IDNPS, "value": "810000000042" }],
                    "name": [{ "use": "usual", "family": "Claire D." }, { "use": "official", "family": "DURAND", "given": ["Claire", "Marie"] }]
                }},
                { "resource": {
                    "resourceType": "Organization", "id": "o1",
                    "identifier": [{ "system": OID_IDNST, "value": "1750000001" }],
                    "name": "Hôpital de test",
                    "address": [{ "city": "Paris" }]
                }},
                { "resource": {
                    "resourceType": "PractitionerRole", "id": "r1",
                    "practitioner": { "reference": "urn:uuid:p1" },
                    "organization": { "reference": "Organization/o1" },
                    "code": [{ "coding": [
                        { "system": "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante", "code": "10" },
                        { "system": PRACTICE_ROLE_SYSTEM, "code": "regulation" }
                    ]}],
                    "specialty": [{ "coding": [{ "code": "SM54", "display": "Médecine d'urgence" }] }]
                }},
                { "resource": {
                    "resourceType": "Practitioner", "id": "p2",
                    "identifier": [{ "system": "https://rpps.esante.gouv.fr", "value": "10000000043" }],
                    "name": [{ "family": "PETIT", "given": ["Luc"] }],
                    "qualification": [{ "code": { "coding": [{ "system": "TRE_G15", "code": "21" }] } }]
                }},
                { "resource": {
                    "resourceType": "Practitioner", "id": "p3",
                    "identifier": [{ "value": "ADELI-123" }],
                    "name": [{ "family": "SANS" }]
                }},
                { "resource": {
                    "resourceType": "PractitionerRole", "id": "r2",
                    "practitioner": { "reference": "Practitioner/nope" }
                }}
            ]
        })
    }

    #[test]
    fn roles_practitioners_and_organisations_map_to_directory_lines() {
        let out = professionals_from_bundle(&bundle()).unwrap();
        let by: HashMap<&str, &Result<PractitionerRecord, String>> =
            out.iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_eq!(
            by["PractitionerRole/r1"].as_ref().unwrap(),
            &PractitionerRecord {
                rpps: "10000000042".into(),
                family_name: "DURAND".into(),
                given_name: "Claire".into(),
                profession: "medecin".into(),
                specialty: "Médecine d'urgence".into(),
                role: "regulation".into(),
                finess: "750000001".into(),
                organisation_name: "Hôpital de test".into(),
                town: "Paris".into(),
            }
        );
        let p2 = by["Practitioner/p2"].as_ref().unwrap();
        assert_eq!(
            (p2.rpps.as_str(), p2.profession.as_str(), p2.role.as_str()),
            ("10000000043", "pharmacien", "care")
        );
        assert!(by["Practitioner/p3"].as_ref().unwrap_err().contains("RPPS"));
        assert!(
            by["PractitionerRole/r2"]
                .as_ref()
                .unwrap_err()
                .contains("no such Practitioner")
        );
        // p1 has a role: it is not listed again on its own.
        assert!(!by.contains_key("Practitioner/p1"));
    }

    #[test]
    fn only_bundles_are_read() {
        assert!(professionals_from_bundle(&json!({"resourceType": "Practitioner"})).is_err());
        assert!(
            professionals_from_bundle(&json!({"resourceType": "Bundle"}))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn national_ids() {
        assert_eq!(
            ProfessionalId::from_national_id("810000000001").unwrap().0,
            "10000000001"
        );
        assert!(ProfessionalId::from_national_id("012345678").is_none());
        assert!(ProfessionalId::from_national_id("910000000001").is_none());
    }
}
