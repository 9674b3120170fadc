//! Fuzzing of the FHIR JSON readers (issue 10, item 5) with proptest: resources and Bundles
//! from outside (profile entries, Patients of the roster, the directory's Practitioners,
//! ExplanationOfBenefit, Appointment) built from FHIR-shaped pieces and noise. Each reader
//! answers `Ok` or a readable `Err`; none panics.
//! `PROPTEST_CASES=100000 cargo test -p carnet-fhir --test parsers_fuzz --release` by hand.

use carnet_fhir::{eob, exchange, patient, practitioner, resources};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const KEYS: &[&str] = &[
    "resourceType",
    "id",
    "code",
    "coding",
    "system",
    "display",
    "text",
    "value",
    "subject",
    "patient",
    "reference",
    "identifier",
    "name",
    "family",
    "given",
    "birthDate",
    "gender",
    "telecom",
    "address",
    "valueQuantity",
    "unit",
    "effectiveDateTime",
    "onsetDateTime",
    "recordedDate",
    "status",
    "clinicalStatus",
    "verificationStatus",
    "category",
    "entry",
    "resource",
    "request",
    "method",
    "url",
    "start",
    "end",
    "participant",
    "actor",
    "billablePeriod",
    "item",
    "productOrService",
    "total",
    "amount",
    "payment",
    "provider",
    "practitioner",
    "organization",
    "qualification",
    "vaccineCode",
    "occurrenceDateTime",
    "medicationCodeableConcept",
    "relationship",
    "condition",
    "reaction",
    "substance",
    "extension",
    "valueString",
    "servicedDate",
    "type",
    "subType",
];

const TYPES: &[&str] = &[
    "Patient",
    "Bundle",
    "Condition",
    "AllergyIntolerance",
    "MedicationStatement",
    "Immunization",
    "Procedure",
    "FamilyMemberHistory",
    "QuestionnaireResponse",
    "Observation",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "ExplanationOfBenefit",
    "Appointment",
    "Binary",
];

const STRINGS: &[&str] = &[
    "Patient/01a20ed5-15d7-7856-a8b4-275e04c0dc9b",
    "http://loinc.org",
    "http://snomed.info/sct",
    "urn:oid:1.2.250.1.213.1.4.8",
    "urn:oid:1.2.250.1.71.4.2.1",
    "284039900000145",
    "810000000001",
    "2026-03-12",
    "2026-03-12T10:15:00+01:00",
    "2026-13-45",
    "8480-6",
    "mm[Hg]",
    "kg",
    "I10",
    "J45",
    "active",
    "final",
    "completed",
    "F",
    "female",
    "EUR",
    "",
    "   ",
    "\u{0}",
    "é",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(STRINGS).prop_map(|s| json!(s)),
        proptest::sample::select(TYPES).prop_map(|s| json!(s)),
        "\\PC{0,20}".prop_map(Value::String),
    ]
}

fn fhirish() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 160, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..8).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// A resource of a given type with FHIR-ish content.
fn resource() -> impl Strategy<Value = Value> {
    (proptest::sample::select(TYPES), fhirish()).prop_map(|(t, mut v)| {
        if let Value::Object(m) = &mut v {
            m.insert("resourceType".into(), json!(t));
            v
        } else {
            json!({"resourceType": t, "x": v})
        }
    })
}

fn bundle() -> impl Strategy<Value = Value> {
    proptest::collection::vec(resource(), 0..6).prop_map(|rs| {
        json!({"resourceType": "Bundle", "type": "collection",
               "entry": rs.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
    })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn resource_readers_never_panic(r in resource(), noise in fhirish()) {
        for v in [&r, &noise] {
            let _ = resources::entry_from_resource(v);
            let _ = patient::patient_line(v);
            let _ = eob::line_of(v);
            let _ = exchange::event_from_appointment(v);
            let _ = eob::is_bundle(v);
        }
    }

    #[test]
    fn bundle_readers_never_panic(b in bundle(), noise in fhirish()) {
        for v in [&b, &noise] {
            let _ = patient::roster_lines_from_bundle(v);
            let _ = practitioner::professionals_from_bundle(v);
            let _ = eob::lines_from_bundle(v);
        }
    }

    #[test]
    fn composite_ids_never_panic(s in "\\PC{0,80}", hex in "[0-9a-f]{60,68}") {
        let _ = resources::split_id(&s);
        if let Some((h, i)) = resources::split_id(&hex) {
            prop_assert_eq!(resources::item_id(h, i), hex);
        }
    }
}
