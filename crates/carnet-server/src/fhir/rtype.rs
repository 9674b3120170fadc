//! The resource types of the endpoint, parsed once from the path: every handler matches on
//! the enum, so a type is handled or refused in one place and never by comparing strings.

use std::fmt;

use super::*;

/// A FHIR resource type this server knows (its CapabilityStatement).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum ResourceType {
    Patient,
    DocumentReference,
    Binary,
    Provenance,
    Observation,
    Condition,
    AllergyIntolerance,
    MedicationStatement,
    Immunization,
    Procedure,
    FamilyMemberHistory,
    QuestionnaireResponse,
    RelatedPerson,
    Consent,
    Communication,
    Appointment,
    ExplanationOfBenefit,
    AuditEvent,
    Practitioner,
    PractitionerRole,
}

use ResourceType as T;

impl ResourceType {
    pub(super) const ALL: [ResourceType; 20] = [
        T::Patient,
        T::DocumentReference,
        T::Binary,
        T::Provenance,
        T::Observation,
        T::Condition,
        T::AllergyIntolerance,
        T::MedicationStatement,
        T::Immunization,
        T::Procedure,
        T::FamilyMemberHistory,
        T::QuestionnaireResponse,
        T::RelatedPerson,
        T::Consent,
        T::Communication,
        T::Appointment,
        T::ExplanationOfBenefit,
        T::AuditEvent,
        T::Practitioner,
        T::PractitionerRole,
    ];

    /// What `_revinclude=T:patient` may bring along a Patient search.
    pub(super) const REVINCLUDABLE: [ResourceType; 16] = [
        T::DocumentReference,
        T::Provenance,
        T::Observation,
        T::Condition,
        T::AllergyIntolerance,
        T::MedicationStatement,
        T::Immunization,
        T::Procedure,
        T::FamilyMemberHistory,
        T::QuestionnaireResponse,
        T::RelatedPerson,
        T::Consent,
        T::Communication,
        T::Appointment,
        T::ExplanationOfBenefit,
        T::AuditEvent,
    ];

    pub(super) fn as_str(self) -> &'static str {
        match self {
            T::Patient => "Patient",
            T::DocumentReference => "DocumentReference",
            T::Binary => "Binary",
            T::Provenance => "Provenance",
            T::Observation => "Observation",
            T::Condition => "Condition",
            T::AllergyIntolerance => "AllergyIntolerance",
            T::MedicationStatement => "MedicationStatement",
            T::Immunization => "Immunization",
            T::Procedure => "Procedure",
            T::FamilyMemberHistory => "FamilyMemberHistory",
            T::QuestionnaireResponse => "QuestionnaireResponse",
            T::RelatedPerson => "RelatedPerson",
            T::Consent => "Consent",
            T::Communication => "Communication",
            T::Appointment => "Appointment",
            T::ExplanationOfBenefit => "ExplanationOfBenefit",
            T::AuditEvent => "AuditEvent",
            T::Practitioner => "Practitioner",
            T::PractitionerRole => "PractitionerRole",
        }
    }

    /// The type named in a path; `None` for any other (case matters, as in FHIR).
    pub(super) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The type named in a path, or the answer to a path naming another type.
    pub(super) fn of_path(s: &str) -> Result<Self, FhirError> {
        Self::parse(s).ok_or_else(|| {
            FhirError::new(
                StatusCode::NOT_FOUND,
                "not-supported",
                format!("resource type {s} is not supported"),
            )
        })
    }

    /// The search parameters a search of this type supports, with their FHIR types: the one
    /// list the search checks against and the CapabilityStatement publishes. (`_count`,
    /// `_page`, `_summary`, `_elements`, `_include`, `_revinclude`, `_format`, `_pretty` hold
    /// for every type: [`Params::COMMON`].)
    pub(super) fn search_params(self) -> &'static [(&'static str, &'static str)] {
        const PATIENT: (&str, &str) = ("patient", "reference");
        const SUBJECT: (&str, &str) = ("subject", "reference");
        const DATE: (&str, &str) = ("date", "date");
        const SORT: (&str, &str) = ("_sort", "special");
        const UPDATED: (&str, &str) = ("_lastUpdated", "date");
        match self {
            T::Patient => &[("identifier", "token"), ("_id", "token")],
            T::DocumentReference => &[
                PATIENT,
                SUBJECT,
                ("category", "token"),
                ("type", "token"),
                ("status", "token"),
                ("identifier", "token"),
                ("patient.identifier", "token"),
                DATE,
                SORT,
                UPDATED,
            ],
            T::Observation => &[PATIENT, SUBJECT, ("code", "token"), DATE, SORT],
            T::AuditEvent => &[PATIENT, SUBJECT, DATE],
            T::Appointment => &[PATIENT, SUBJECT, ("actor", "reference"), DATE, SORT],
            T::ExplanationOfBenefit => &[PATIENT, SUBJECT, DATE, SORT, UPDATED],
            T::Binary | T::Practitioner | T::PractitionerRole => &[],
            // Provenance, Communication and the profile's types.
            _ => &[PATIENT, SUBJECT],
        }
    }

    /// The names of [`ResourceType::search_params`].
    pub(super) fn search_names(self) -> Vec<&'static str> {
        self.search_params().iter().map(|(n, _)| *n).collect()
    }

    /// The types a profile entry is exchanged as (`resources::resource_type`), the directory's
    /// Consents included.
    pub(super) fn is_profile(self) -> bool {
        matches!(
            self,
            T::Condition
                | T::AllergyIntolerance
                | T::MedicationStatement
                | T::Immunization
                | T::Procedure
                | T::FamilyMemberHistory
                | T::QuestionnaireResponse
                | T::RelatedPerson
                | T::Consent
        )
    }

    /// The profile types a client creates and updates as resources (the others are written
    /// through the profile's own API or, for Consent, the directory).
    pub(super) fn is_writable_profile(self) -> bool {
        matches!(
            self,
            T::Condition | T::AllergyIntolerance | T::MedicationStatement | T::Immunization | T::Procedure
        )
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_name() {
        for t in ResourceType::ALL {
            assert_eq!(ResourceType::parse(t.as_str()), Some(t));
        }
        assert_eq!(ResourceType::parse("patient"), None);
        assert_eq!(ResourceType::parse("Organization"), None);
        assert!(ResourceType::REVINCLUDABLE.iter().all(|t| *t != T::Patient));
        assert!(
            ResourceType::ALL
                .iter()
                .filter(|t| t.is_writable_profile())
                .all(|t| t.is_profile())
        );
    }
}
