//! The medical profile (SPEC PR-1..4): sections, entries, code systems with their checks, and
//! measurements with units and plausible ranges. Pure: the store seals and the gate decides.
//!
//! Codes are checked for form and, where the system has one, their check digit (SNOMED CT's
//! Verhoeff digit and partition, LOINC's mod-10 digit); measurements accept only the LOINC codes
//! of [`MEASURES`], in one of their UCUM units, within a plausible range. A code that fails is an
//! error the caller sees (a 422), never stored.

use serde::{Deserialize, Serialize};

use crate::access::Category;
use crate::clock::Timestamp;

/// Sections of the profile (PR-1, PR-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Conditions,
    Treatments,
    Allergies,
    Hospitalisations,
    FamilyHistory,
    Disabilities,
    Vaccinations,
    BloodGroup,
    AdvanceDirectives,
    TrustedPeople,
    OrganDonation,
    Lifestyle,
    Questionnaire,
}

impl Section {
    pub const ALL: [Section; 13] = [
        Section::Conditions,
        Section::Treatments,
        Section::Allergies,
        Section::Hospitalisations,
        Section::FamilyHistory,
        Section::Disabilities,
        Section::Vaccinations,
        Section::BloodGroup,
        Section::AdvanceDirectives,
        Section::TrustedPeople,
        Section::OrganDonation,
        Section::Lifestyle,
        Section::Questionnaire,
    ];

    pub fn tag(self) -> &'static str {
        match self {
            Section::Conditions => "conditions",
            Section::Treatments => "treatments",
            Section::Allergies => "allergies",
            Section::Hospitalisations => "hospitalisations",
            Section::FamilyHistory => "family_history",
            Section::Disabilities => "disabilities",
            Section::Vaccinations => "vaccinations",
            Section::BloodGroup => "blood_group",
            Section::AdvanceDirectives => "advance_directives",
            Section::TrustedPeople => "trusted_people",
            Section::OrganDonation => "organ_donation",
            Section::Lifestyle => "lifestyle",
            Section::Questionnaire => "questionnaire",
        }
    }

    pub fn parse(s: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|x| x.tag() == s)
    }

    /// French label, for people.
    pub fn label_fr(self) -> &'static str {
        match self {
            Section::Conditions => "Maladies et sujets de santé",
            Section::Treatments => "Traitements",
            Section::Allergies => "Allergies",
            Section::Hospitalisations => "Hospitalisations et opérations",
            Section::FamilyHistory => "Antécédents familiaux",
            Section::Disabilities => "Handicaps",
            Section::Vaccinations => "Vaccinations",
            Section::BloodGroup => "Groupe sanguin",
            Section::AdvanceDirectives => "Directives anticipées",
            Section::TrustedPeople => "Personne de confiance et personnes à prévenir",
            Section::OrganDonation => "Don d'organes",
            Section::Lifestyle => "Mode de vie",
            Section::Questionnaire => "Questionnaire de santé",
        }
    }

    /// The habilitation category a professional needs to read or add this section (AC-1,
    /// PR-3). Our choice, as the decree's matrix is about documents: treatments follow
    /// prescriptions, vaccinations administered treatments, everything else the summaries
    /// ("synthèses") every profession that treats may read.
    pub fn category(self) -> Category {
        match self {
            Section::Treatments => Category::Prescriptions,
            Section::Vaccinations => Category::AdministeredTreatments,
            _ => Category::Summaries,
        }
    }

    /// Sections holding one value per author (a new one replaces the previous): the blood
    /// group and the organ-donation position.
    pub fn single_valued(self) -> bool {
        matches!(self, Section::BloodGroup | Section::OrganDonation)
    }

    /// The code systems an entry of this section may carry (none: free text or a value).
    pub fn code_systems(self) -> &'static [CodeSystem] {
        use CodeSystem::*;
        match self {
            Section::Conditions | Section::FamilyHistory => &[Icd10, SnomedCt],
            Section::Treatments => &[Atc, Cis],
            Section::Allergies => &[SnomedCt, Atc],
            Section::Hospitalisations => &[Ccam, Icd10, SnomedCt],
            Section::Disabilities | Section::Lifestyle => &[SnomedCt, Icd10],
            Section::Vaccinations => &[Atc, Cis],
            Section::Questionnaire => &[Questionnaire],
            Section::BloodGroup
            | Section::AdvanceDirectives
            | Section::TrustedPeople
            | Section::OrganDonation => &[],
        }
    }
}

/// Code systems of the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeSystem {
    /// CIM-10 (ICD-10), as used in France.
    Icd10,
    SnomedCt,
    /// ATC (WHO) classification of drugs.
    Atc,
    /// Code identifiant de spécialité (French drug product code, 8 digits).
    Cis,
    /// Classification commune des actes médicaux (French procedures).
    Ccam,
    Loinc,
    /// The questions of Carnet's health questionnaire (PR-2), [`QUESTIONS`].
    Questionnaire,
}

impl CodeSystem {
    /// The FHIR system URI.
    pub fn uri(self) -> &'static str {
        match self {
            CodeSystem::Icd10 => "http://hl7.org/fhir/sid/icd-10",
            CodeSystem::SnomedCt => "http://snomed.info/sct",
            CodeSystem::Atc => "http://www.whocc.no/atc",
            CodeSystem::Cis => "urn:oid:1.2.250.1.213.2.3.1",
            CodeSystem::Ccam => "urn:oid:1.2.250.1.213.2.5",
            CodeSystem::Loinc => "http://loinc.org",
            CodeSystem::Questionnaire => "urn:carnet:health-questionnaire",
        }
    }

    /// Checks a code's form and check digit; the error says what is wrong.
    pub fn check(self, code: &str) -> Result<(), EntryError> {
        let ok = match self {
            CodeSystem::Icd10 => icd10_ok(code),
            CodeSystem::SnomedCt => snomed_ok(code),
            CodeSystem::Atc => atc_ok(code),
            CodeSystem::Cis => {
                code.len() == 8 && code.starts_with('6') && code.bytes().all(|b| b.is_ascii_digit())
            }
            CodeSystem::Ccam => {
                code.len() == 7
                    && code[..4].bytes().all(|b| b.is_ascii_uppercase())
                    && code[4..].bytes().all(|b| b.is_ascii_digit())
            }
            CodeSystem::Loinc => loinc_ok(code),
            CodeSystem::Questionnaire => QUESTIONS.iter().any(|(id, _)| *id == code),
        };
        if ok {
            Ok(())
        } else {
            Err(EntryError::Code {
                code: code.to_string(),
                system: self,
            })
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CodeSystem::Icd10 => "CIM-10 (ICD-10)",
            CodeSystem::SnomedCt => "SNOMED CT",
            CodeSystem::Atc => "ATC",
            CodeSystem::Cis => "CIS",
            CodeSystem::Ccam => "CCAM",
            CodeSystem::Loinc => "LOINC",
            CodeSystem::Questionnaire => "health questionnaire",
        }
    }
}

fn icd10_ok(code: &str) -> bool {
    let b = code.as_bytes();
    if b.len() < 3 || !b[0].is_ascii_uppercase() || !b[1].is_ascii_digit() || !b[2].is_ascii_digit() {
        return false;
    }
    let rest = &code[3..];
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    rest.len() <= 4
        && rest.bytes().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        && (code.len() == 3 || !rest.is_empty())
}

fn atc_ok(code: &str) -> bool {
    // Levels: A, A10, A10B, A10BA, A10BA02. First letter: an ATC anatomical group.
    let b = code.as_bytes();
    let shape = |i: usize, f: fn(&u8) -> bool| b.get(i).is_none_or(f);
    matches!(b.len(), 1 | 3 | 4 | 5 | 7)
        && b"ABCDGHJLMNPRSV".contains(&b[0])
        && shape(1, u8::is_ascii_digit)
        && shape(2, u8::is_ascii_digit)
        && shape(3, u8::is_ascii_uppercase)
        && shape(4, u8::is_ascii_uppercase)
        && shape(5, u8::is_ascii_digit)
        && shape(6, u8::is_ascii_digit)
}

/// LOINC: digits, a dash, a mod-10 check digit (Luhn over the digits before the dash).
fn loinc_ok(code: &str) -> bool {
    let Some((num, check)) = code.split_once('-') else {
        return false;
    };
    if num.is_empty() || num.len() > 7 || check.len() != 1 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Some(check) = check.bytes().next().filter(u8::is_ascii_digit) else {
        return false;
    };
    // Luhn: double every second digit from the right, starting with the rightmost.
    let sum: u32 = num
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10 == u32::from(check - b'0')
}

/// SNOMED CT identifier: 6 to 18 digits, no leading zero, a concept partition ("00" core,
/// "10" extension) and a valid Verhoeff check digit.
fn snomed_ok(code: &str) -> bool {
    let n = code.len();
    if !(6..=18).contains(&n) || !code.bytes().all(|b| b.is_ascii_digit()) || code.starts_with('0') {
        return false;
    }
    let partition = &code[n - 3..n - 1];
    (partition == "00" || partition == "10") && verhoeff_ok(code)
}

fn verhoeff_ok(num: &str) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut c = 0u8;
    for (i, b) in num.bytes().rev().enumerate() {
        c = D[c as usize][P[i % 8][(b - b'0') as usize] as usize];
    }
    c == 0
}

/// The health questionnaire (PR-2): question ids and their French text.
pub const QUESTIONS: [(&str, &str); 8] = [
    (
        "current_treatments",
        "Prenez-vous actuellement des médicaments ? Lesquels ?",
    ),
    (
        "recent_operations",
        "Avez-vous été opéré(e) ou hospitalisé(e) ces cinq dernières années ?",
    ),
    ("chronic_conditions", "Avez-vous une maladie chronique ?"),
    ("allergies", "Avez-vous des allergies connues ?"),
    (
        "family_history",
        "Des maladies graves sont-elles survenues dans votre famille proche ?",
    ),
    ("smoking", "Fumez-vous ? Depuis quand, combien ?"),
    ("alcohol", "Quelle est votre consommation d'alcool ?"),
    ("physical_activity", "Quelle activité physique pratiquez-vous ?"),
];

/// A code of an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coding {
    pub system: CodeSystem,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// A person of the "trusted person and people to notify" section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    /// `trusted` (personne de confiance, at most one active) or `notify`.
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// What a writer sends for one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    pub section: Section,
    /// The label in words (required unless a code or value says it all).
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Coding>,
    /// Onset / date given / date of the operation: YYYY, YYYY-MM or YYYY-MM-DD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    /// A value from the section's list (blood group, organ donation) or a questionnaire answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub const BLOOD_GROUPS: [&str; 8] = ["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"];
/// Organ donation position: in France consent is presumed; a refusal is registered.
pub const ORGAN_DONATION: [&str; 3] = ["accepts", "refuses", "undecided"];

const TEXT_MAX: usize = 500;
const NOTE_MAX: usize = 4000;

fn partial_date_ok(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let num = |p: &str, len: usize| p.len() == len && p.bytes().all(|b| b.is_ascii_digit());
    let in_range = |p: &str, lo: u32, hi: u32| p.parse::<u32>().is_ok_and(|v| (lo..=hi).contains(&v));
    match parts.as_slice() {
        [y] => num(y, 4) && in_range(y, 1850, 2200),
        [y, m] => num(y, 4) && num(m, 2) && in_range(y, 1850, 2200) && in_range(m, 1, 12),
        [y, m, d] => {
            num(y, 4)
                && num(m, 2)
                && num(d, 2)
                && in_range(y, 1850, 2200)
                && in_range(m, 1, 12)
                && in_range(d, 1, 31)
        }
        _ => false,
    }
}

/// Why a profile entry is refused (PR-1, PR-3). `Display` is the API's English message, field
/// first; the web pages say it in French (`carnet-server`'s `web/i18n.rs`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EntryError {
    #[error("text: at most {TEXT_MAX} characters")]
    TextTooLong,
    #[error("note: at most {NOTE_MAX} characters")]
    NoteTooLong,
    #[error("{field}: '{value}' is not YYYY, YYYY-MM or YYYY-MM-DD")]
    Date { field: &'static str, value: String },
    #[error("end_date: before date")]
    EndBeforeStart,
    #[error("code: {} codes do not belong in {}", system.name(), section.tag())]
    CodeOutOfSection { system: CodeSystem, section: Section },
    #[error("code: '{code}' is not a valid {} code", system.name())]
    Code { code: String, system: CodeSystem },
    #[error("code: a vaccine's ATC code starts with J07")]
    VaccineNotJ07,
    #[error("value: the blood group is one of {}", BLOOD_GROUPS.join(", "))]
    BloodGroup,
    #[error("value: one of {}", ORGAN_DONATION.join(", "))]
    OrganDonation,
    #[error("code: the question answered (system health_questionnaire)")]
    QuestionMissing,
    #[error("value: the answer")]
    AnswerMissing,
    #[error("contact: the person (name, role trusted or notify)")]
    ContactMissing,
    #[error("contact.name: missing")]
    ContactName,
    #[error("contact.role: trusted or notify")]
    ContactRole,
    #[error("text: a label or a code is required")]
    LabelOrCode,
    #[error("contact: only in trusted_people")]
    ContactOutsideTrustedPeople,
}

impl EntryInput {
    /// Checks the entry against its section's rules; the error names the field.
    pub fn validate(mut self) -> Result<EntryInput, EntryError> {
        self.text = self.text.trim().to_string();
        if self.text.chars().count() > TEXT_MAX {
            return Err(EntryError::TextTooLong);
        }
        if self.note.as_ref().is_some_and(|n| n.chars().count() > NOTE_MAX) {
            return Err(EntryError::NoteTooLong);
        }
        for (name, d) in [("date", &self.date), ("end_date", &self.end_date)] {
            if let Some(d) = d
                && !partial_date_ok(d)
            {
                return Err(EntryError::Date {
                    field: name,
                    value: d.clone(),
                });
            }
        }
        if let (Some(a), Some(b)) = (&self.date, &self.end_date)
            && b < a
        {
            return Err(EntryError::EndBeforeStart);
        }
        if let Some(c) = &self.code {
            if !self.section.code_systems().contains(&c.system) {
                return Err(EntryError::CodeOutOfSection {
                    system: c.system,
                    section: self.section,
                });
            }
            c.system.check(c.code.trim())?;
            if self.section == Section::Vaccinations
                && c.system == CodeSystem::Atc
                && !c.code.starts_with("J07")
            {
                return Err(EntryError::VaccineNotJ07);
            }
        }
        let value = self.value.as_deref().map(str::trim);
        match self.section {
            Section::BloodGroup => {
                if !value.is_some_and(|v| BLOOD_GROUPS.contains(&v)) {
                    return Err(EntryError::BloodGroup);
                }
            }
            Section::OrganDonation => {
                if !value.is_some_and(|v| ORGAN_DONATION.contains(&v)) {
                    return Err(EntryError::OrganDonation);
                }
            }
            Section::Questionnaire => {
                if self.code.is_none() {
                    return Err(EntryError::QuestionMissing);
                }
                if value.is_none_or(str::is_empty) {
                    return Err(EntryError::AnswerMissing);
                }
            }
            Section::TrustedPeople => {
                let Some(c) = &self.contact else {
                    return Err(EntryError::ContactMissing);
                };
                if c.name.trim().is_empty() {
                    return Err(EntryError::ContactName);
                }
                if c.role != "trusted" && c.role != "notify" {
                    return Err(EntryError::ContactRole);
                }
            }
            _ => {
                if self.text.is_empty() && self.code.is_none() {
                    return Err(EntryError::LabelOrCode);
                }
            }
        }
        if self.contact.is_some() && self.section != Section::TrustedPeople {
            return Err(EntryError::ContactOutsideTrustedPeople);
        }
        Ok(self)
    }
}

/// A kind of measurement (PR-1, PR-4): LOINC code, units (UCUM) with their factor to the
/// canonical unit (the first), and the plausible range in the canonical unit.
#[derive(Clone, Copy, Debug)]
pub struct Measure {
    pub loinc: &'static str,
    pub key: &'static str,
    pub label_fr: &'static str,
    pub label_en: &'static str,
    pub units: &'static [(&'static str, f64)],
    pub min: f64,
    pub max: f64,
}

impl Measure {
    /// The canonical unit, as UCUM writes it (`mm[Hg]`, `Cel`): for data, never for people.
    pub fn unit(&self) -> &'static str {
        self.units[0].0
    }

    /// The canonical unit as a French reader writes it: "mmHg", "°C", "battements par minute"
    /// (issue 32: never a UCUM code on a page, in a chart or a letter).
    pub fn unit_words(&self) -> &'static str {
        match self.key {
            "bmi" => "kg/m²",
            "systolic" | "diastolic" => "mmHg",
            "heart_rate" => "battements par minute",
            "temperature" => "°C",
            "respiratory_rate" => "respirations par minute",
            "steps" => "pas par jour",
            _ => self.unit(),
        }
    }

    /// The canonical unit as an English reader writes it ("beats per minute").
    pub fn unit_words_en(&self) -> &'static str {
        match self.key {
            "heart_rate" => "beats per minute",
            "respiratory_rate" => "breaths per minute",
            "steps" => "steps per day",
            _ => self.unit_words(),
        }
    }
}

pub const MEASURES: [Measure; 11] = [
    Measure {
        loinc: "29463-7",
        key: "weight",
        label_fr: "Poids",
        label_en: "Weight",
        units: &[("kg", 1.0), ("g", 0.001), ("[lb_av]", 0.453_592_37)],
        min: 0.3,
        max: 500.0,
    },
    Measure {
        loinc: "8302-2",
        key: "height",
        label_fr: "Taille",
        label_en: "Height",
        units: &[("cm", 1.0), ("m", 100.0), ("[in_i]", 2.54)],
        min: 20.0,
        max: 260.0,
    },
    Measure {
        loinc: "39156-5",
        key: "bmi",
        label_fr: "Indice de masse corporelle",
        label_en: "Body mass index",
        units: &[("kg/m2", 1.0)],
        min: 8.0,
        max: 100.0,
    },
    Measure {
        loinc: "8480-6",
        key: "systolic",
        label_fr: "Pression artérielle systolique",
        label_en: "Systolic blood pressure",
        units: &[("mm[Hg]", 1.0)],
        min: 40.0,
        max: 300.0,
    },
    Measure {
        loinc: "8462-4",
        key: "diastolic",
        label_fr: "Pression artérielle diastolique",
        label_en: "Diastolic blood pressure",
        units: &[("mm[Hg]", 1.0)],
        min: 20.0,
        max: 200.0,
    },
    Measure {
        loinc: "8867-4",
        key: "heart_rate",
        label_fr: "Fréquence cardiaque",
        label_en: "Heart rate",
        units: &[("/min", 1.0)],
        min: 20.0,
        max: 300.0,
    },
    Measure {
        loinc: "2339-0",
        key: "glucose",
        label_fr: "Glycémie",
        label_en: "Blood glucose",
        units: &[("g/L", 1.0), ("mg/dL", 0.01), ("mmol/L", 0.180_156)],
        min: 0.1,
        max: 10.0,
    },
    Measure {
        loinc: "8310-5",
        key: "temperature",
        label_fr: "Température",
        label_en: "Temperature",
        units: &[("Cel", 1.0)],
        min: 25.0,
        max: 45.0,
    },
    Measure {
        loinc: "59408-5",
        key: "spo2",
        label_fr: "Saturation en oxygène",
        label_en: "Oxygen saturation",
        units: &[("%", 1.0)],
        min: 50.0,
        max: 100.0,
    },
    Measure {
        loinc: "9279-1",
        key: "respiratory_rate",
        label_fr: "Fréquence respiratoire",
        label_en: "Respiratory rate",
        units: &[("/min", 1.0)],
        min: 4.0,
        max: 80.0,
    },
    Measure {
        loinc: "55423-8",
        key: "steps",
        label_fr: "Nombre de pas",
        label_en: "Steps",
        units: &[("/d", 1.0), ("{steps}/d", 1.0)],
        min: 0.0,
        max: 200_000.0,
    },
];

pub fn measure(loinc: &str) -> Option<&'static Measure> {
    MEASURES.iter().find(|m| m.loinc == loinc)
}

/// What a writer sends for one measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurementInput {
    /// LOINC code of the measure ([`MEASURES`]).
    pub code: String,
    pub value: f64,
    /// UCUM unit, one of the measure's.
    pub unit: String,
    /// When it was measured (RFC 3339).
    pub at: String,
}

/// A validated measurement, in the canonical unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub code: String,
    pub value: f64,
    pub unit: String,
    pub at: Timestamp,
}

/// A profile entry or a measurement refused.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error(transparent)]
    Measurement(#[from] MeasurementError),
}

/// Why a measurement is refused (PR-4); `Display` as for [`EntryError`].
#[derive(Clone, Debug, thiserror::Error)]
pub enum MeasurementError {
    #[error("code: '{code}' is not a supported LOINC measure ({})", MEASURES.iter().map(|m| m.loinc).collect::<Vec<_>>().join(", "))]
    Code { code: String },
    #[error("unit: '{unit}' is not a unit of {} ({})", measure.key, measure.units.iter().map(|(u, _)| *u).collect::<Vec<_>>().join(", "))]
    Unit { unit: String, measure: &'static Measure },
    #[error("value: not a number")]
    NotANumber,
    #[error("value: {value} {unit} is not plausible for {} ({}..{} {})", measure.key, measure.min, measure.max, measure.unit())]
    Implausible {
        value: f64,
        unit: String,
        measure: &'static Measure,
    },
    #[error("at: '{0}' is not an RFC 3339 instant")]
    Instant(String),
    #[error("at: in the future")]
    Future,
    #[error("at: before 1900")]
    Before1900,
}

impl MeasurementInput {
    /// Checks code, unit, range and time (not in the future beyond 5 minutes of clock skew, not
    /// before 1900); converts to the canonical unit.
    pub fn validate(&self, now: Timestamp) -> Result<Measurement, MeasurementError> {
        let m = measure(&self.code).ok_or_else(|| MeasurementError::Code {
            code: self.code.clone(),
        })?;
        let (_, factor) =
            m.units
                .iter()
                .find(|(u, _)| *u == self.unit)
                .ok_or_else(|| MeasurementError::Unit {
                    unit: self.unit.clone(),
                    measure: m,
                })?;
        if !self.value.is_finite() {
            return Err(MeasurementError::NotANumber);
        }
        let value = self.value * factor;
        if !(m.min..=m.max).contains(&value) {
            return Err(MeasurementError::Implausible {
                value: self.value,
                unit: self.unit.clone(),
                measure: m,
            });
        }
        let at = time::OffsetDateTime::parse(&self.at, &time::format_description::well_known::Rfc3339)
            .map_err(|_| MeasurementError::Instant(self.at.clone()))?;
        let at = Timestamp::from_offset_date_time(at);
        if at > now.plus_seconds(300) {
            return Err(MeasurementError::Future);
        }
        if at < Timestamp::from_unix_seconds(-2_208_988_800) {
            return Err(MeasurementError::Before1900);
        }
        // Round to a sensible precision (no binary noise from conversions).
        let value = (value * 1000.0).round() / 1000.0;
        Ok(Measurement {
            code: m.loinc.to_string(),
            value,
            unit: m.unit().to_string(),
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn units_shown_to_people_are_words_not_ucum_codes() {
        for m in MEASURES.iter() {
            let shown = m.unit_words();
            assert!(
                !shown.contains('[') && !shown.contains('{') && shown != "Cel" && !shown.starts_with('/'),
                "{}: {shown}",
                m.key
            );
        }
    }

    #[test]
    fn code_checks() {
        // SNOMED CT: "Asthma" 195967001, "Penicillin allergy" 91936005; a typo fails Verhoeff.
        assert!(snomed_ok("195967001"));
        assert!(snomed_ok("91936005"));
        assert!(!snomed_ok("195967002"));
        assert!(!snomed_ok("12345"));
        // LOINC check digits.
        for ok in ["29463-7", "8302-2", "8480-6", "2339-0", "55423-8", "59408-5"] {
            assert!(loinc_ok(ok), "{ok}");
        }
        assert!(!loinc_ok("29463-8"));
        assert!(!loinc_ok("29463"));
        // ICD-10, ATC, CIS, CCAM.
        for ok in ["E11", "E11.9", "J45.0", "I10"] {
            assert!(icd10_ok(ok), "{ok}");
        }
        for bad in ["E1", "11E", "E11.", "e11"] {
            assert!(!icd10_ok(bad), "{bad}");
        }
        assert!(atc_ok("A10BA02") && atc_ok("J07") && atc_ok("J07BB"));
        assert!(!atc_ok("X10BA02") && !atc_ok("A10B2") && !atc_ok("A1"));
        assert!(CodeSystem::Cis.check("60234100").is_ok());
        assert!(CodeSystem::Cis.check("12345678").is_err());
        assert!(CodeSystem::Ccam.check("HHFA016").is_ok());
        assert!(CodeSystem::Ccam.check("HHF016").is_err());
    }

    fn entry(section: Section) -> EntryInput {
        EntryInput {
            section,
            text: String::new(),
            code: None,
            date: None,
            end_date: None,
            value: None,
            contact: None,
            note: None,
        }
    }

    #[test]
    fn sections_have_their_rules() {
        let mut e = entry(Section::Conditions);
        assert_eq!(e.clone().validate().unwrap_err(), EntryError::LabelOrCode);
        e.code = Some(Coding {
            system: CodeSystem::Icd10,
            code: "E11".into(),
            display: Some("Diabète de type 2".into()),
        });
        assert!(e.clone().validate().is_ok());
        e.code = Some(Coding {
            system: CodeSystem::Atc,
            code: "A10BA02".into(),
            display: None,
        });
        assert_eq!(
            e.clone().validate().unwrap_err().to_string(),
            "code: ATC codes do not belong in conditions"
        );
        let mut b = entry(Section::BloodGroup);
        b.value = Some("AB-".into());
        assert!(b.clone().validate().is_ok());
        b.value = Some("C+".into());
        assert!(b.validate().is_err());
        let mut v = entry(Section::Vaccinations);
        v.code = Some(Coding {
            system: CodeSystem::Atc,
            code: "A10BA02".into(),
            display: None,
        });
        assert_eq!(v.clone().validate().unwrap_err(), EntryError::VaccineNotJ07);
        v.code = Some(Coding {
            system: CodeSystem::Atc,
            code: "J07BB02".into(),
            display: None,
        });
        v.date = Some("2025-10-15".into());
        assert!(v.clone().validate().is_ok());
        v.date = Some("2025-13-15".into());
        assert!(v.validate().is_err());
        let mut t = entry(Section::TrustedPeople);
        assert!(t.clone().validate().is_err());
        t.contact = Some(Contact {
            name: "Jeanne Martin".into(),
            role: "trusted".into(),
            relationship: Some("sœur".into()),
            phone: None,
        });
        assert!(t.validate().is_ok());
        let mut q = entry(Section::Questionnaire);
        q.code = Some(Coding {
            system: CodeSystem::Questionnaire,
            code: "smoking".into(),
            display: None,
        });
        q.value = Some("Non".into());
        assert!(q.clone().validate().is_ok());
        q.code = Some(Coding {
            system: CodeSystem::Questionnaire,
            code: "favourite_colour".into(),
            display: None,
        });
        assert!(q.validate().is_err());
    }

    #[test]
    fn measurements_are_checked_and_converted() {
        let now = Timestamp::from_unix_seconds(1_767_603_600);
        let m = |code: &str, value: f64, unit: &str, at: &str| MeasurementInput {
            code: code.into(),
            value,
            unit: unit.into(),
            at: at.into(),
        };
        let ok = m("29463-7", 72_500.0, "g", "2026-01-05T08:00:00Z")
            .validate(now)
            .unwrap();
        assert_eq!((ok.value, ok.unit.as_str()), (72.5, "kg"));
        let g = m("2339-0", 5.5, "mmol/L", "2026-01-05T08:00:00Z")
            .validate(now)
            .unwrap();
        assert_eq!(g.value, 0.991);
        assert!(
            m("29463-7", 720.0, "kg", "2026-01-05T08:00:00Z")
                .validate(now)
                .unwrap_err()
                .to_string()
                .contains("plausible")
        );
        assert!(
            m("29463-7", 72.0, "mm[Hg]", "2026-01-05T08:00:00Z")
                .validate(now)
                .unwrap_err()
                .to_string()
                .starts_with("unit: 'mm[Hg]' is not a unit of")
        );
        assert!(
            m("12345-6", 72.0, "kg", "2026-01-05T08:00:00Z")
                .validate(now)
                .unwrap_err()
                .to_string()
                .contains("LOINC")
        );
        assert!(
            m("29463-7", f64::NAN, "kg", "2026-01-05T08:00:00Z")
                .validate(now)
                .is_err()
        );
        assert!(
            m("29463-7", 72.0, "kg", "2027-01-05T08:00:00Z")
                .validate(now)
                .unwrap_err()
                .to_string()
                == "at: in the future"
        );
        assert!(m("29463-7", 72.0, "kg", "hier").validate(now).is_err());
    }

    proptest! {
        /// Every accepted measurement lies within its measure's range, in its canonical unit.
        #[test]
        fn accepted_values_are_plausible(i in 0usize..MEASURES.len(), u in 0usize..3, v in -1e6f64..1e6) {
            let m = &MEASURES[i];
            let (unit, _) = m.units[u % m.units.len()];
            let now = Timestamp::from_unix_seconds(1_767_603_600);
            let input = MeasurementInput { code: m.loinc.into(), value: v, unit: unit.into(), at: "2026-01-01T00:00:00Z".into() };
            if let Ok(ok) = input.validate(now) {
                prop_assert!(ok.value >= m.min - 0.001 && ok.value <= m.max + 0.001);
                prop_assert_eq!(ok.unit.as_str(), m.unit());
            }
        }

        /// A single changed digit of a valid LOINC code is caught by its check digit.
        #[test]
        fn loinc_check_digit_catches_a_typo(i in 0usize..MEASURES.len(), pos in 0usize..8, d in 0u8..10) {
            let code = MEASURES[i].loinc;
            let mut b = code.as_bytes().to_vec();
            let p = pos % b.len();
            prop_assume!(b[p].is_ascii_digit() && b[p] != b'0' + d);
            b[p] = b'0' + d;
            let typo = String::from_utf8(b).unwrap();
            prop_assert!(!loinc_ok(&typo), "{}", typo);
        }
    }
}
