//! The catalogue of referenced services (CA-1..CA-4), pure: what a publisher's application
//! says, the referencing workflow as a state machine (submitted → reviewed criterion by
//! criterion → commission's opinion → decision → convention → withdrawal or expiry), whether a
//! service is listed at an instant, and SMART on FHIR v2 scopes narrowed to what the convention
//! and the holder allow.
//!
//! Two limits stack for an app (CA-3): the **categories** of data (the convention's, narrowed
//! by what the holder ticks) become the app's grant in the holder's directory, which the gate
//! enforces on every item; the **scopes** (resource types and `c r u d s` rights) are checked
//! before the gate is even asked.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::access::Category;

/// CA-1: the kinds of services the catalogue lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceCategory {
    Telehealth,
    Prevention,
    CarePathway,
    HomeReturn,
    Orientation,
    Information,
}

impl ServiceCategory {
    pub const ALL: [ServiceCategory; 6] = [
        ServiceCategory::Telehealth,
        ServiceCategory::Prevention,
        ServiceCategory::CarePathway,
        ServiceCategory::HomeReturn,
        ServiceCategory::Orientation,
        ServiceCategory::Information,
    ];

    pub const fn tag(self) -> &'static str {
        match self {
            ServiceCategory::Telehealth => "telehealth",
            ServiceCategory::Prevention => "prevention",
            ServiceCategory::CarePathway => "care_pathway",
            ServiceCategory::HomeReturn => "home_return",
            ServiceCategory::Orientation => "orientation",
            ServiceCategory::Information => "information",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.tag() == s)
    }
}

/// The three reference frameworks an application is checked against (CA-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framework {
    Interoperability,
    Security,
    Ethics,
}

/// One criterion of a framework.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Criterion {
    pub framework: Framework,
    pub id: String,
    pub text_fr: String,
    pub text_en: String,
}

/// The criteria shipped with Carnet (`data/referencing-criteria.csv`).
pub const DEFAULT_CRITERIA: &str = include_str!("../data/referencing-criteria.csv");

/// Parses `framework,id,"French","English"` lines (`#` comments).
pub fn parse_criteria(text: &str) -> Result<Vec<Criterion>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .comment(Some(b'#'))
        .flexible(false)
        .from_reader(text.as_bytes());
    let mut out: Vec<Criterion> = Vec::new();
    for (n, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| format!("criterion {}: {e}", n + 1))?;
        let field = |i: usize| rec.get(i).map(str::trim).unwrap_or("");
        let framework = match field(0) {
            "interoperability" => Framework::Interoperability,
            "security" => Framework::Security,
            "ethics" => Framework::Ethics,
            other => return Err(format!("criterion {}: unknown framework '{other}'", n + 1)),
        };
        let id = field(1);
        if id.is_empty() || field(2).is_empty() || field(3).is_empty() {
            return Err(format!("criterion {}: id and both texts are required", n + 1));
        }
        if out.iter().any(|c| c.id == id) {
            return Err(format!("criterion {}: '{id}' listed twice", n + 1));
        }
        out.push(Criterion {
            framework,
            id: id.to_string(),
            text_fr: field(2).to_string(),
            text_en: field(3).to_string(),
        });
    }
    if out.is_empty() {
        return Err("no criteria".into());
    }
    Ok(out)
}

pub fn default_criteria() -> Vec<Criterion> {
    parse_criteria(DEFAULT_CRITERIA).unwrap_or_default()
}

/// A data category the service asks for, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedCategory {
    pub category: Category,
    pub why: String,
}

/// The publisher's declaration against one criterion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    pub criterion: String,
    pub complies: bool,
    #[serde(default)]
    pub evidence: String,
}

/// What a publisher submits (CA-2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub name: String,
    pub description: String,
    pub category: ServiceCategory,
    pub redirect_uris: Vec<String>,
    pub requested: Vec<RequestedCategory>,
    pub declarations: Vec<Declaration>,
}

/// A redirect URI as RFC 9700 wants it: absolute, `https` (or `http` on the loopback for
/// native and test clients, RFC 8252), no fragment, no user info, no wildcard.
pub fn redirect_uri_ok(uri: &str) -> bool {
    if uri.len() > 500 || uri.contains('#') || uri.contains('*') || uri.chars().any(char::is_whitespace) {
        return false;
    }
    let (rest, loopback_only) = if let Some(r) = uri.strip_prefix("https://") {
        (r, false)
    } else if let Some(r) = uri.strip_prefix("http://") {
        (r, true)
    } else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    if host.is_empty() {
        return false;
    }
    !loopback_only || matches!(host, "127.0.0.1" | "::1" | "localhost")
}

/// Checks an application; every problem found, in order.
pub fn check_application(a: &Application, criteria: &[Criterion]) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let name = a.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push("name: 1 to 100 characters".to_string());
    }
    let d = a.description.trim().chars().count();
    if !(10..=2000).contains(&d) {
        errors.push("description: 10 to 2000 characters".to_string());
    }
    if a.redirect_uris.is_empty() || a.redirect_uris.len() > 5 {
        errors.push("redirect_uris: 1 to 5".to_string());
    }
    for u in &a.redirect_uris {
        if !redirect_uri_ok(u) {
            errors.push(format!(
                "redirect_uris: '{u}' must be absolute https (http only on the loopback), without fragment or wildcard"
            ));
        }
    }
    if a.requested.is_empty() {
        errors.push("requested: at least one data category".to_string());
    }
    let mut seen = BTreeSet::new();
    for r in &a.requested {
        if !seen.insert(r.category) {
            errors.push(format!("requested: '{}' twice", r.category.tag()));
        }
        if r.why.trim().is_empty() || r.why.chars().count() > 1000 {
            errors.push(format!(
                "requested: '{}' needs a reason (1 to 1000 characters)",
                r.category.tag()
            ));
        }
    }
    for c in criteria {
        match a.declarations.iter().filter(|d| d.criterion == c.id).count() {
            0 => errors.push(format!("declarations: criterion {} is not declared", c.id)),
            1 => {}
            _ => errors.push(format!("declarations: criterion {} declared twice", c.id)),
        }
    }
    for d in &a.declarations {
        if !criteria.iter().any(|c| c.id == d.criterion) {
            errors.push(format!("declarations: unknown criterion '{}'", d.criterion));
        }
        if d.evidence.chars().count() > 2000 {
            errors.push(format!(
                "declarations: {} evidence over 2000 characters",
                d.criterion
            ));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Who acts in the referencing workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferencingRole {
    Publisher,
    /// A member of the referencing commission: reviews criteria, gives the opinion.
    Commission,
    /// Decides on the commission's opinion (for the minister): approves or refuses, withdraws.
    DecisionMaker,
}

impl ReferencingRole {
    pub const fn tag(self) -> &'static str {
        match self {
            ReferencingRole::Publisher => "publisher",
            ReferencingRole::Commission => "commission",
            ReferencingRole::DecisionMaker => "decision_maker",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Publisher, Self::Commission, Self::DecisionMaker]
            .into_iter()
            .find(|r| r.tag() == s)
    }
}

/// The convention that approval records (CA-2): what the service may reach, for how long, and
/// how it ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Convention {
    pub categories: Vec<Category>,
    pub starts: Timestamp,
    pub ends: Timestamp,
    pub withdrawal_terms: String,
}

/// One step of the workflow, as recorded and shown to the publisher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Submitted {
        application: Application,
    },
    /// The publisher changes the application while no opinion is given (reviews start again).
    Amended {
        application: Application,
    },
    CriterionReviewed {
        criterion: String,
        satisfied: bool,
        comment: String,
    },
    Opinion {
        favourable: bool,
        comment: String,
    },
    Approved {
        convention: Convention,
    },
    Refused {
        reason: String,
    },
    /// CA-4: the referencing ends before its term (by the decision-maker, or the publisher
    /// giving the service up).
    Withdrawn {
        reason: String,
    },
}

/// Where an application stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Submitted, under review by the commission.
    UnderReview,
    /// The commission gave its opinion; the decision is pending.
    Opinion {
        favourable: bool,
    },
    Approved,
    Refused,
    Withdrawn,
}

impl State {
    pub const fn tag(self) -> &'static str {
        match self {
            State::UnderReview => "under_review",
            State::Opinion { favourable: true } => "favourable_opinion",
            State::Opinion { favourable: false } => "unfavourable_opinion",
            State::Approved => "approved",
            State::Refused => "refused",
            State::Withdrawn => "withdrawn",
        }
    }
}

/// A workflow step refused, with a reason a person can read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WorkflowError(pub String);

/// The record a service's steps build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referencing {
    pub state: State,
    pub application: Application,
    /// The commission's review of each criterion (latest per criterion).
    pub reviews: Vec<(String, bool)>,
    pub convention: Option<Convention>,
}

impl Referencing {
    /// The state after the first step, which must be a submission.
    pub fn submit(application: Application, criteria: &[Criterion]) -> Result<Self, WorkflowError> {
        check_application(&application, criteria).map_err(|e| WorkflowError(e.join("; ")))?;
        Ok(Referencing {
            state: State::UnderReview,
            application,
            reviews: Vec::new(),
            convention: None,
        })
    }

    /// Applies `step` taken by `role` (CA-2). Nothing changes on an error.
    pub fn apply(
        &self,
        role: ReferencingRole,
        step: &Step,
        criteria: &[Criterion],
    ) -> Result<Referencing, WorkflowError> {
        use ReferencingRole as R;
        let err = |m: &str| Err(WorkflowError(m.to_string()));
        let mut next = self.clone();
        match (step, self.state) {
            (Step::Submitted { .. }, _) => return err("the application is already submitted"),
            (Step::Amended { application }, State::UnderReview) => {
                if role != R::Publisher {
                    return err("only the publisher amends its application");
                }
                check_application(application, criteria).map_err(|e| WorkflowError(e.join("; ")))?;
                next.application = application.clone();
                next.reviews.clear();
            }
            (Step::Amended { .. }, _) => {
                return err("the application can be amended only while under review");
            }
            (
                Step::CriterionReviewed {
                    criterion, satisfied, ..
                },
                State::UnderReview,
            ) => {
                if role != R::Commission {
                    return err("only the commission reviews criteria");
                }
                if !criteria.iter().any(|c| &c.id == criterion) {
                    return Err(WorkflowError(format!("unknown criterion '{criterion}'")));
                }
                next.reviews.retain(|(c, _)| c != criterion);
                next.reviews.push((criterion.clone(), *satisfied));
            }
            (Step::CriterionReviewed { .. }, _) => return err("the review is over"),
            (Step::Opinion { favourable, comment }, State::UnderReview) => {
                if role != R::Commission {
                    return err("only the commission gives the opinion");
                }
                let missing: Vec<&str> = criteria
                    .iter()
                    .filter(|c| !self.reviews.iter().any(|(r, _)| r == &c.id))
                    .map(|c| c.id.as_str())
                    .collect();
                if !missing.is_empty() {
                    return Err(WorkflowError(format!(
                        "every criterion must be reviewed first (missing: {})",
                        missing.join(", ")
                    )));
                }
                if *favourable && self.reviews.iter().any(|(_, ok)| !ok) {
                    return err("a favourable opinion needs every criterion satisfied");
                }
                if comment.trim().is_empty() {
                    return err("the opinion needs a comment");
                }
                next.state = State::Opinion {
                    favourable: *favourable,
                };
            }
            (Step::Opinion { .. }, _) => return err("the opinion is already given"),
            (Step::Approved { convention }, State::Opinion { favourable }) => {
                if role != R::DecisionMaker {
                    return err("only the decision-maker approves");
                }
                if !favourable {
                    return err("approval needs a favourable opinion of the commission (CA-3)");
                }
                if convention.categories.is_empty() {
                    return err("the convention must allow at least one data category");
                }
                for c in &convention.categories {
                    if !self.application.requested.iter().any(|r| r.category == *c) {
                        return Err(WorkflowError(format!(
                            "the convention may allow only requested categories ('{}' was not)",
                            c.tag()
                        )));
                    }
                }
                if convention.ends <= convention.starts {
                    return err("the convention must end after it starts");
                }
                if convention.withdrawal_terms.trim().is_empty() {
                    return err("the convention states its withdrawal terms");
                }
                next.state = State::Approved;
                next.convention = Some(convention.clone());
            }
            (Step::Refused { reason }, State::Opinion { .. }) => {
                if role != R::DecisionMaker {
                    return err("only the decision-maker refuses");
                }
                if reason.trim().is_empty() {
                    return err("a refusal states its reason");
                }
                next.state = State::Refused;
            }
            (Step::Approved { .. } | Step::Refused { .. }, _) => {
                return err("a decision needs the commission's opinion and comes once");
            }
            (Step::Withdrawn { reason }, State::Approved) => {
                if role == R::Commission {
                    return err("the commission does not withdraw a referencing");
                }
                if reason.trim().is_empty() {
                    return err("a withdrawal states its reason");
                }
                next.state = State::Withdrawn;
            }
            (Step::Withdrawn { .. }, _) => return err("only an approved service can be withdrawn"),
        }
        Ok(next)
    }

    /// CA-1 / CA-4: listed in the catalogue (and able to reach any data) at `now`: approved,
    /// not withdrawn, within its convention's dates.
    pub fn listed(&self, now: Timestamp) -> bool {
        self.state == State::Approved
            && self
                .convention
                .as_ref()
                .is_some_and(|c| c.starts <= now && now < c.ends)
    }
}

// ---------------------------------------------------------------------------------------------
// SMART on FHIR v2 scopes

/// What a scope permits on a resource type (`c r u d s`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Rights {
    pub create: bool,
    pub read: bool,
    pub update: bool,
    pub delete: bool,
    pub search: bool,
}

impl Rights {
    /// `cruds` letters in order (SMART v2), or the v1 suffixes `read`, `write`, `*`.
    pub fn parse(s: &str) -> Option<Rights> {
        match s {
            "read" => {
                return Some(Rights {
                    read: true,
                    search: true,
                    ..Rights::default()
                });
            }
            "write" => {
                return Some(Rights {
                    create: true,
                    update: true,
                    delete: true,
                    ..Rights::default()
                });
            }
            "*" => {
                return Some(Rights {
                    create: true,
                    read: true,
                    update: true,
                    delete: true,
                    search: true,
                });
            }
            _ => {}
        }
        let mut r = Rights::default();
        let mut last = 0;
        for ch in s.chars() {
            let pos = "cruds".find(ch)? + 1;
            if pos <= last {
                return None; // out of order or repeated
            }
            last = pos;
            match ch {
                'c' => r.create = true,
                'r' => r.read = true,
                'u' => r.update = true,
                'd' => r.delete = true,
                _ => r.search = true,
            }
        }
        (last > 0).then_some(r)
    }

    pub fn letters(self) -> String {
        [
            (self.create, 'c'),
            (self.read, 'r'),
            (self.update, 'u'),
            (self.delete, 'd'),
            (self.search, 's'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect()
    }

    /// The rights both sets give.
    pub fn and(self, o: Rights) -> Rights {
        Rights {
            create: self.create && o.create,
            read: self.read && o.read,
            update: self.update && o.update,
            delete: self.delete && o.delete,
            search: self.search && o.search,
        }
    }

    pub fn is_empty(self) -> bool {
        self == Rights::default()
    }
}

/// One scope of an OAuth request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// `patient/Type.cruds` (`Type` may be `*`).
    Patient {
        resource: String,
        rights: Rights,
    },
    /// `launch/patient`: the app learns which patient it acts for.
    LaunchPatient,
    OpenId,
    FhirUser,
    OfflineAccess,
}

impl Scope {
    pub fn text(&self) -> String {
        match self {
            Scope::Patient { resource, rights } => format!("patient/{resource}.{}", rights.letters()),
            Scope::LaunchPatient => "launch/patient".into(),
            Scope::OpenId => "openid".into(),
            Scope::FhirUser => "fhirUser".into(),
            Scope::OfflineAccess => "offline_access".into(),
        }
    }
}

/// The FHIR resource types an app may be granted, and the data categories each may carry.
/// Messages (Communication), traces (AuditEvent) and the directory (Consent) are the holder's
/// own and never go to an app.
pub fn resource_categories(resource: &str) -> &'static [Category] {
    use Category as C;
    match resource {
        "DocumentReference" | "Binary" => &[
            C::Reports,
            C::Summaries,
            C::Imaging,
            C::Prescriptions,
            C::Dispensations,
            C::CarePlans,
            C::AdministeredTreatments,
            C::Certificates,
            C::HolderDocuments,
        ],
        "Observation"
        | "Condition"
        | "AllergyIntolerance"
        | "Procedure"
        | "FamilyMemberHistory"
        | "QuestionnaireResponse"
        | "Device" => &[C::Summaries],
        "MedicationStatement" => &[C::Prescriptions],
        "Immunization" => &[C::AdministeredTreatments],
        "Appointment" => &[C::CarePlans],
        "ExplanationOfBenefit" => &[C::Reimbursements],
        // The holder's identity and contact details (FR Core Patient).
        "Patient" => &[C::Administrative],
        _ => &[],
    }
}

/// Resource types `patient/*` expands to.
pub const APP_RESOURCES: [&str; 14] = [
    "Patient",
    "DocumentReference",
    "Binary",
    "Observation",
    "Condition",
    "AllergyIntolerance",
    "Procedure",
    "FamilyMemberHistory",
    "QuestionnaireResponse",
    "Device",
    "MedicationStatement",
    "Immunization",
    "Appointment",
    "ExplanationOfBenefit",
];

/// Parses a space-separated scope string. Unknown scopes are dropped (RFC 6749 lets the server
/// grant less than asked; the token response says what was granted); `user/` and `system/`
/// scopes are not for apps acting for a patient and are dropped too.
pub fn parse_scopes(s: &str) -> Vec<Scope> {
    let mut out = BTreeSet::new();
    for word in s.split_ascii_whitespace() {
        let scope = match word {
            "launch/patient" => Some(Scope::LaunchPatient),
            "openid" => Some(Scope::OpenId),
            "fhirUser" => Some(Scope::FhirUser),
            "offline_access" => Some(Scope::OfflineAccess),
            _ => word.strip_prefix("patient/").and_then(|rest| {
                // SMART v2 query-narrowed scopes (`?category=...`) are not supported: dropped.
                let (resource, rights) = rest.split_once('.')?;
                let rights = Rights::parse(rights)?;
                (resource == "*" || APP_RESOURCES.contains(&resource)).then(|| Scope::Patient {
                    resource: resource.to_string(),
                    rights,
                })
            }),
        };
        out.extend(scope);
    }
    out.into_iter().collect()
}

/// Narrows requested scopes to the data categories `allowed` (the convention's, ticked by the
/// holder): `patient/*` expands to each type that may carry an allowed category; a type none of
/// whose categories is allowed is dropped. Identity scopes pass through.
pub fn narrow(requested: &[Scope], allowed: &[Category]) -> Vec<Scope> {
    let reachable = |t: &str| resource_categories(t).iter().any(|c| allowed.contains(c));
    let mut by_type: std::collections::BTreeMap<String, Rights> = std::collections::BTreeMap::new();
    let mut out = BTreeSet::new();
    for s in requested {
        match s {
            Scope::Patient { resource, rights } => {
                let types: Vec<&str> = if resource == "*" {
                    APP_RESOURCES.to_vec()
                } else {
                    vec![resource.as_str()]
                };
                for t in types.into_iter().filter(|t| reachable(t)) {
                    let e = by_type.entry(t.to_string()).or_default();
                    *e = Rights {
                        create: e.create || rights.create,
                        read: e.read || rights.read,
                        update: e.update || rights.update,
                        delete: e.delete || rights.delete,
                        search: e.search || rights.search,
                    };
                }
            }
            other => {
                out.insert(other.clone());
            }
        }
    }
    for (resource, rights) in by_type {
        if !rights.is_empty() {
            out.insert(Scope::Patient { resource, rights });
        }
    }
    out.into_iter().collect()
}

/// What the granted `scopes` permit on `resource`.
pub fn rights_on(scopes: &[Scope], resource: &str) -> Rights {
    scopes.iter().fold(Rights::default(), |acc, s| match s {
        Scope::Patient { resource: r, rights } if r == resource || r == "*" => Rights {
            create: acc.create || rights.create,
            read: acc.read || rights.read,
            update: acc.update || rights.update,
            delete: acc.delete || rights.delete,
            search: acc.search || rights.search,
        },
        _ => acc,
    })
}

/// The space-separated text of granted scopes.
pub fn scope_text(scopes: &[Scope]) -> String {
    scopes.iter().map(Scope::text).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn app(requested: &[Category]) -> Application {
        let criteria = default_criteria();
        Application {
            name: "Suivi tension".into(),
            description: "Carnet de suivi de la tension artérielle".into(),
            category: ServiceCategory::Prevention,
            redirect_uris: vec!["https://app.example/callback".into()],
            requested: requested
                .iter()
                .map(|c| RequestedCategory {
                    category: *c,
                    why: "suivi".into(),
                })
                .collect(),
            declarations: criteria
                .iter()
                .map(|c| Declaration {
                    criterion: c.id.clone(),
                    complies: true,
                    evidence: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_shipped_criteria_cover_three_frameworks_ca2() {
        let c = default_criteria();
        assert_eq!(c.len(), 12);
        for f in [
            Framework::Interoperability,
            Framework::Security,
            Framework::Ethics,
        ] {
            assert!(c.iter().any(|x| x.framework == f), "{f:?}");
        }
        assert!(
            c.iter().any(|x| x.text_fr.contains("LOINC, SNOMED CT, UCUM")),
            "quoted commas"
        );
        assert!(parse_criteria("magic,X,a,b").is_err());
        assert!(parse_criteria("ethics,X,a,b\nethics,X,c,d").is_err());
    }

    #[test]
    fn applications_are_checked_ca2() {
        let criteria = default_criteria();
        assert_eq!(check_application(&app(&[Category::Summaries]), &criteria), Ok(()));
        let mut a = app(&[Category::Summaries, Category::Summaries]);
        a.requested[0].why = " ".into();
        a.redirect_uris = vec!["http://app.example/cb".into(), "https://app.example/*".into()];
        a.declarations.pop();
        let errors = check_application(&a, &criteria).unwrap_err();
        assert!(errors.iter().any(|e| e.contains("needs a reason")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("twice")), "{errors:?}");
        assert!(
            errors.iter().any(|e| e.contains("http://app.example")),
            "{errors:?}"
        );
        assert!(errors.iter().any(|e| e.contains("*")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("ETH-4")), "{errors:?}");
    }

    #[test]
    fn redirect_uris_follow_rfc_9700() {
        assert!(redirect_uri_ok("https://app.example/cb?x=1"));
        assert!(redirect_uri_ok("http://127.0.0.1:8765/cb"));
        assert!(redirect_uri_ok("http://localhost/cb"));
        assert!(!redirect_uri_ok("http://app.example/cb"));
        assert!(!redirect_uri_ok("https://app.example/cb#frag"));
        assert!(!redirect_uri_ok("https://user@app.example/cb"));
        assert!(!redirect_uri_ok("javascript:alert(1)"));
        assert!(!redirect_uri_ok("https:///cb"));
    }

    #[test]
    fn the_workflow_goes_from_submission_to_withdrawal_ca2_ca4() {
        use ReferencingRole as R;
        let criteria = default_criteria();
        let mut r = Referencing::submit(app(&[Category::Summaries, Category::Reports]), &criteria).unwrap();
        let opinion = Step::Opinion {
            favourable: true,
            comment: "conforme".into(),
        };
        assert!(
            r.apply(R::Commission, &opinion, &criteria).is_err(),
            "criteria not reviewed"
        );
        for c in &criteria {
            let step = Step::CriterionReviewed {
                criterion: c.id.clone(),
                satisfied: true,
                comment: String::new(),
            };
            assert!(
                r.apply(R::Publisher, &step, &criteria).is_err(),
                "publishers do not review"
            );
            r = r.apply(R::Commission, &step, &criteria).unwrap();
        }
        assert!(r.apply(R::DecisionMaker, &opinion, &criteria).is_err());
        r = r.apply(R::Commission, &opinion, &criteria).unwrap();
        assert_eq!(r.state, State::Opinion { favourable: true });
        let t0 = Timestamp::from_unix_seconds(1_800_000_000);
        let convention = |cats: Vec<Category>| Convention {
            categories: cats,
            starts: t0,
            ends: t0.plus_seconds(3 * 365 * 86_400),
            withdrawal_terms: "préavis d'un mois".into(),
        };
        let too_much = Step::Approved {
            convention: convention(vec![Category::Imaging]),
        };
        assert!(
            r.apply(R::DecisionMaker, &too_much, &criteria).is_err(),
            "not requested"
        );
        let ok = Step::Approved {
            convention: convention(vec![Category::Summaries]),
        };
        assert!(r.apply(R::Commission, &ok, &criteria).is_err());
        r = r.apply(R::DecisionMaker, &ok, &criteria).unwrap();
        assert!(r.listed(t0));
        assert!(!r.listed(t0.plus_seconds(-1)));
        assert!(!r.listed(t0.plus_seconds(3 * 365 * 86_400)), "expired (CA-4)");
        let w = Step::Withdrawn {
            reason: "manquement".into(),
        };
        assert!(r.apply(R::Commission, &w, &criteria).is_err());
        let gone = r.apply(R::DecisionMaker, &w, &criteria).unwrap();
        assert!(!gone.listed(t0.plus_seconds(10)), "withdrawn (CA-4)");
        assert!(gone.apply(R::DecisionMaker, &ok, &criteria).is_err());
    }

    #[test]
    fn an_unfavourable_opinion_cannot_be_approved_ca3() {
        use ReferencingRole as R;
        let criteria = default_criteria();
        let mut r = Referencing::submit(app(&[Category::Summaries]), &criteria).unwrap();
        for (i, c) in criteria.iter().enumerate() {
            let step = Step::CriterionReviewed {
                criterion: c.id.clone(),
                satisfied: i != 0,
                comment: String::new(),
            };
            r = r.apply(R::Commission, &step, &criteria).unwrap();
        }
        let fav = Step::Opinion {
            favourable: true,
            comment: "ok".into(),
        };
        assert!(
            r.apply(R::Commission, &fav, &criteria).is_err(),
            "a criterion failed"
        );
        r = r
            .apply(
                R::Commission,
                &Step::Opinion {
                    favourable: false,
                    comment: "IOP-1".into(),
                },
                &criteria,
            )
            .unwrap();
        let t0 = Timestamp::from_unix_seconds(0);
        let approve = Step::Approved {
            convention: Convention {
                categories: vec![Category::Summaries],
                starts: t0,
                ends: t0.plus_seconds(10),
                withdrawal_terms: "x".into(),
            },
        };
        assert!(r.apply(R::DecisionMaker, &approve, &criteria).is_err());
        let refused = r
            .apply(
                R::DecisionMaker,
                &Step::Refused {
                    reason: "avis".into(),
                },
                &criteria,
            )
            .unwrap();
        assert_eq!(refused.state, State::Refused);
    }

    #[test]
    fn scopes_parse_and_narrow() {
        let s = parse_scopes(
            "launch/patient openid fhirUser offline_access patient/DocumentReference.rs patient/Observation.cru \
             patient/AuditEvent.rs user/*.rs patient/Observation.rc patient/*.read bogus",
        );
        assert!(s.contains(&Scope::LaunchPatient));
        assert!(
            !s.iter().any(|x| x.text().contains("AuditEvent")),
            "never for apps"
        );
        assert!(!s.iter().any(|x| x.text().starts_with("user/")));
        assert!(
            !s.iter().any(|x| x.text() == "patient/Observation.rc"),
            "out of order: dropped"
        );
        let n = narrow(&s, &[Category::Summaries]);
        assert_eq!(rights_on(&n, "Observation").letters(), "crus");
        assert_eq!(
            rights_on(&n, "DocumentReference").letters(),
            "rs",
            "documents may be summaries"
        );
        assert_eq!(rights_on(&n, "Immunization").letters(), "");
        assert_eq!(rights_on(&n, "ExplanationOfBenefit").letters(), "");
        assert!(n.contains(&Scope::OfflineAccess));
        assert_eq!(Rights::parse("cruds").unwrap().letters(), "cruds");
        assert!(Rights::parse("").is_none());
        assert!(Rights::parse("rr").is_none());
    }

    fn category() -> impl Strategy<Value = Category> {
        proptest::sample::select(Category::ALL.to_vec())
    }

    proptest! {
        /// Whatever is asked, a narrowed scope set never reaches a type that carries none of
        /// the allowed categories, and never more rights than asked (CA-3).
        #[test]
        fn narrowing_never_widens(
            allowed in proptest::collection::vec(category(), 0..5),
            asked in proptest::collection::vec(
                (proptest::sample::select(
                    APP_RESOURCES.iter().map(|s| s.to_string()).chain(["*".to_string(), "Consent".to_string()]).collect::<Vec<_>>()),
                 "c?r?u?d?s?"), 0..6),
        ) {
            let text: Vec<String> = asked.iter().map(|(t, r)| format!("patient/{t}.{r}")).collect();
            let requested = parse_scopes(&text.join(" "));
            let n = narrow(&requested, &allowed);
            for t in APP_RESOURCES.iter().chain(["Consent", "AuditEvent", "Communication"].iter()) {
                let got = rights_on(&n, t);
                if !resource_categories(t).iter().any(|c| allowed.contains(c)) {
                    prop_assert_eq!(got, Rights::default(), "{}", t);
                }
                let asked = rights_on(&requested, t);
                prop_assert_eq!(got.and(asked), got, "{}", t);
            }
        }
    }
}
