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
