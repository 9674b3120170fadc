//! The access policy (SPEC AC-1..8, DM-5, DM-6, MI-2, LC-5, LC-6): who may do what with which
//! item of a holder's space. Pure: the caller (the gate, in the service layer) gathers the
//! facts, asks [`decide`], traces the decision with its reason, and only then touches storage.
//!
//! Every decision carries a [`Reason`], recorded in the trace; callers never show a denial's
//! reason to the requester (AC-8: a denial looks like "no such item").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::id::HolderId;
use crate::lifecycle::Lifecycle;

/// The 11 categories of the habilitation matrix (AC-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Reports,
    Summaries,
    Imaging,
    Prescriptions,
    Dispensations,
    CarePlans,
    AdministeredTreatments,
    Certificates,
    Reimbursements,
    HolderDocuments,
    Administrative,
}

impl Category {
    pub const ALL: [Category; 11] = [
        Category::Reports,
        Category::Summaries,
        Category::Imaging,
        Category::Prescriptions,
        Category::Dispensations,
        Category::CarePlans,
        Category::AdministeredTreatments,
        Category::Certificates,
        Category::Reimbursements,
        Category::HolderDocuments,
        Category::Administrative,
    ];

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.tag() == s)
    }

    pub const fn tag(self) -> &'static str {
        match self {
            Category::Reports => "reports",
            Category::Summaries => "summaries",
            Category::Imaging => "imaging",
            Category::Prescriptions => "prescriptions",
            Category::Dispensations => "dispensations",
            Category::CarePlans => "care_plans",
            Category::AdministeredTreatments => "administered_treatments",
            Category::Certificates => "certificates",
            Category::Reimbursements => "reimbursements",
            Category::HolderDocuments => "holder_documents",
            Category::Administrative => "administrative",
        }
    }
}

/// A professional's identifier (RPPS number).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProfessionalId(pub String);

impl ProfessionalId {
    /// The RPPS number in a national professional id (IDNPS): 11 digits, or `8` + 11 digits
    /// (type 8 = RPPS, as Pro Santé Connect and the Annuaire Santé write it).
    pub fn from_national_id(national_id: &str) -> Option<Self> {
        let id = national_id.trim();
        let digits = id.bytes().all(|b| b.is_ascii_digit());
        match id.len() {
            11 if digits => Some(Self(id.to_string())),
            12 if digits && id.starts_with('8') => Some(Self(id[1..].to_string())),
            _ => None,
        }
    }
}

/// An establishment's identifier (FINESS number).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrganisationId(pub String);

/// A referenced app's identifier.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AppId(pub String);

/// How a professional works, beyond their profession (AC-1b, AC-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PracticeRole {
    Care,
    /// Regulating doctor of the emergency centre (SAMU / centre 15).
    Regulation,
    /// Occupational or fire-brigade doctor: needs express consent.
    Occupational,
}

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    Holder {
        id: HolderId,
    },
    /// A legal representative (or guardian) acting in the represented person's space.
    Representative {
        id: HolderId,
    },
    Professional {
        id: ProfessionalId,
        profession: String,
        role: PracticeRole,
    },
    Establishment {
        id: OrganisationId,
    },
    /// A referenced app (CA-3), acting for the one space whose holder connected it: the gate
    /// answers like a missing space for any other (`space`; `None` only in tests and tools).
    App {
        id: AppId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        space: Option<HolderId>,
        /// The app was connected by a legal representative: it sees no more than they do
        /// (MI-2: nothing hidden from the representatives).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        by_representative: bool,
    },
    Operator {
        id: String,
    },
    /// MI-5: a carer ("aidant"), another holder the space's holder invited, reading the
    /// categories of their grant (`Grantee::Carer`). Never a legal representative: reads only,
    /// sees nothing masked or hidden from the representatives, and every read is traced and
    /// told to the holder like a professional's ([`decide`]).
    Carer {
        id: HolderId,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
}

/// Who an item's author is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Author {
    Holder,
    Professional { id: ProfessionalId },
    Establishment { id: OrganisationId },
    App { id: AppId },
}

/// What the policy needs to know of the item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFacts {
    pub category: Category,
    pub author: Author,
    /// DM-5: masked by the holder from professionals.
    pub masked: bool,
    /// MI-2: confidential from the legal representatives.
    pub hidden_from_representatives: bool,
    /// DM-6: false while a professional keeps it for an announcement consultation.
    pub visible_to_holder: bool,
}

/// Who the grant is for (AC-3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Grantee {
    Professional {
        id: ProfessionalId,
    },
    Establishment {
        id: OrganisationId,
    },
    App {
        id: AppId,
    },
    /// MI-5: a carer, filed only when they accept the holder's invitation ([`accept_invitation`]).
    Carer {
        id: HolderId,
    },
}

/// An entry of the authorisation directory (AC-3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    /// `None`: the whole space.
    pub categories: Option<Vec<Category>>,
    /// `None`: until revoked.
    pub until: Option<Timestamp>,
    /// AC-1b: occupational and fire-brigade doctors need the holder's express consent.
    pub express: bool,
    /// Why the grantee holds it (AC-1b): the holder's own grant, a declared care
    /// relationship, or a consent a professional recorded.
    #[serde(default)]
    pub basis: GrantBasis,
}

/// Why a grant exists (AC-1b, AC-3), kept with it and shown to the holder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GrantBasis {
    /// The holder (or a representative) granted it in the directory.
    #[default]
    Holder,
    /// The professional declared being in the holder's care team for an episode of care:
    /// presumed authorised while the holder does not object ([`declare_care_team`]).
    CareTeam {
        team: CareTeam,
        episode: String,
        declared_at: Timestamp,
    },
    /// A professional recorded the holder's consent for this one ([`record_consent`]).
    Consent {
        recorded_by: ProfessionalId,
        form: ConsentForm,
        given_at: Timestamp,
    },
}

/// Which care team a professional declares belonging to (AC-1b).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CareTeam {
    /// A practice, a health centre or a multi-professional health house.
    Practice,
    /// A department of a health establishment.
    Establishment,
    /// A coordinated care pathway (primary care team, CPTS, referral by the médecin traitant).
    Coordination,
    /// A medico-social service (home care, nursing home).
    MedicoSocial,
}

/// How the holder gave the consent a professional recorded (AC-1b).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentForm {
    Oral,
    Written,
}

/// How long a declared care relationship opens the record (our choice: a year, then the
/// professional declares it again; the holder may end it at any time).
pub const CARE_TEAM_SECONDS: i64 = 365 * 24 * 3600;

impl Grant {
    fn covers(&self, c: Category, now: Timestamp) -> bool {
        self.until.is_none_or(|u| now < u) && self.categories.as_ref().is_none_or(|cs| cs.contains(&c))
    }

    /// A grant of the holder's own directory, for the whole space, until revoked.
    pub fn by_holder(grantee: Grantee) -> Self {
        Grant {
            grantee,
            categories: None,
            until: None,
            express: false,
            basis: GrantBasis::Holder,
        }
    }
}

/// The holder's authorisation directory (AC-3, AC-4, AC-5): stored sealed, one per space.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessPolicy {
    pub medecin_traitant: Option<ProfessionalId>,
    #[serde(default)]
    pub blocked: Vec<ProfessionalId>,
    #[serde(default)]
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub regulation_consent: bool,
    #[serde(default)]
    pub hide_all: bool,
    /// AC-1b: the holder objects to the presumed authorisation of care teams: declared care
    /// relationships open nothing (at once, those already declared included).
    #[serde(default)]
    pub care_team_objection: bool,
}

impl AccessPolicy {
    /// The facts the policy decides on, for a space in state `lifecycle`.
    pub fn facts(&self, lifecycle: Lifecycle) -> SpaceFacts {
        SpaceFacts {
            lifecycle,
            medecin_traitant: self.medecin_traitant.clone(),
            blocked: self.blocked.clone(),
            grants: self.grants.clone(),
            regulation_consent: self.regulation_consent,
            hide_all: self.hide_all,
            care_team_objection: self.care_team_objection,
        }
    }

    /// Files a grant a professional obtained ([`declare_care_team`], [`record_consent`]):
    /// a grant already in force for the same grantee stays as it is (the holder's limits are
    /// never widened by a declaration); an expired or withdrawn one is replaced. Whether it
    /// changed anything.
    pub fn admit(&mut self, grant: Grant, now: Timestamp) -> bool {
        if in_force(&self.grants, self.care_team_objection, &grant.grantee, None, now).is_some() {
            return false;
        }
        self.grants.retain(|g| g.grantee != grant.grantee);
        self.grants.push(grant);
        true
    }
}

/// Whether an access by `actor` must be traced and told to the holder (AC-6): every access by
/// someone other than the holder is traced; accesses by professionals, establishments and apps
/// are notified at once.
pub fn traced_and_notified(actor: &Actor) -> (bool, bool) {
    match actor {
        Actor::Holder { .. } => (false, false),
        Actor::Representative { .. } | Actor::Operator { .. } => (true, false),
        Actor::Professional { .. }
        | Actor::Establishment { .. }
        | Actor::App { .. }
        | Actor::Carer { .. } => (true, true),
    }
}

/// S-1, MI-1, MI-3, CA-3: may `actor` act in `holder`'s space at all, before any item is
/// decided? A holder only in their own; a legal representative only while they `represent`
/// the holder (a current representation, ended at the child's majority); an app only in the
/// space that connected it; a carer never in their own space as a carer. Professionals,
/// establishments, carers and operators reach a space's items only through [`decide`]. The gate asks this on every call and answers "no such space" (AC-8)
/// when it says no.
pub fn enters(actor: &Actor, holder: HolderId, represents: bool) -> bool {
    match actor {
        Actor::Holder { id } => *id == holder,
        Actor::Representative { id } => *id != holder && represents,
        Actor::App { space, .. } => space.is_none_or(|s| s == holder),
        Actor::Carer { id } => *id != holder,
        Actor::Professional { .. } | Actor::Establishment { .. } | Actor::Operator { .. } => true,
    }
}

/// What the policy needs to know of the holder's space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceFacts {
    pub lifecycle: Lifecycle,
    pub medecin_traitant: Option<ProfessionalId>,
    pub blocked: Vec<ProfessionalId>,
    pub grants: Vec<Grant>,
    /// AC-5: the holder agreed that the emergency regulation centre may consult the record.
    pub regulation_consent: bool,
    /// AC-4: every document hidden from professionals, emergencies included.
    pub hide_all: bool,
    /// AC-1b: declared care relationships open nothing.
    pub care_team_objection: bool,
}

impl SpaceFacts {
    /// The grant in force for `grantee` (covering `category`, if given) at `now`: not expired,
    /// and not a declared care relationship the holder objects to (AC-1b).
    pub fn grant(&self, grantee: &Grantee, category: Option<Category>, now: Timestamp) -> Option<&Grant> {
        in_force(&self.grants, self.care_team_objection, grantee, category, now)
    }
}

/// [`SpaceFacts::grant`] on a directory's grants and objection.
fn in_force<'a>(
    grants: &'a [Grant],
    care_team_objection: bool,
    grantee: &Grantee,
    category: Option<Category>,
    now: Timestamp,
) -> Option<&'a Grant> {
    grants.iter().find(|g| {
        g.grantee == *grantee
            && match category {
                Some(c) => g.covers(c, now),
                None => g.until.is_none_or(|u| now < u),
            }
            && !(care_team_objection && matches!(g.basis, GrantBasis::CareTeam { .. }))
    })
}

/// Why a request happens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// AC-5: a declared emergency, with its stated reason.
    pub emergency: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    // allowed
    Holder,
    Representative,
    MedecinTraitant,
    Author,
    Grant,
    Emergency,
    Regulation,
    /// LC-8: the migration of a former DMP files its documents in the holder's space
    /// ([`decide_legacy_import`]; never an answer of [`decide`]).
    LegacyImport,
    /// RB-1: the insurer's reimbursement feed files lines in the holder's space
    /// ([`decide_insurer_feed`]; never an answer of [`decide`]).
    InsurerFeed,
    /// AC-6, S-5: an operator's support action on the holder's administrative data, with its
    /// stated reason ([`decide_operator_support`]; never an answer of [`decide`]).
    Support,
    /// MI-5: a carer reading within their grant.
    Carer,
    /// Issue 33: a professional who presented the patient's INS sees whose record it is
    /// ([`decide_identity`]; never an answer of [`decide`]).
    InsPresented,
    // denied
    NoSpace,
    SpaceClosed,
    /// LC-5b: the operator suspended the space; nobody reaches it until the suspension is lifted.
    SpaceSuspended,
    NotYetVisible,
    NotTheAuthor,
    HiddenFromRepresentatives,
    Blocked,
    Masked,
    NotHabilitated,
    NoGrant,
    ExpressConsentRequired,
    EmergencyWithoutReason,
    /// An operator's support access without a stated reason.
    SupportWithoutReason,
    OperatorsSeeNoHealthData,
    /// MS-2: the holder starts a conversation only with someone who already wrote to them.
    NoPriorExchange,
    /// MS-2: the professional ended the conversation; the holder cannot answer until they write.
    ConversationEnded,
    /// MS-2: not a party to the conversation (or not someone who takes part in messaging).
    NotAParticipant,
    /// AC-1b: the holder objects to the presumed authorisation of care teams.
    CareTeamObjected,
    /// MI-5: a carer reads; they never add, change or delete anything.
    CarerReadsOnly,
}

impl Reason {
    /// The reason's name, as it is serialised (snake case): a label without allocation.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::Holder => "holder",
            Reason::Representative => "representative",
            Reason::MedecinTraitant => "medecin_traitant",
            Reason::Author => "author",
            Reason::Grant => "grant",
            Reason::Emergency => "emergency",
            Reason::Regulation => "regulation",
            Reason::LegacyImport => "legacy_import",
            Reason::InsurerFeed => "insurer_feed",
            Reason::Support => "support",
            Reason::Carer => "carer",
            Reason::InsPresented => "ins_presented",
            Reason::NoSpace => "no_space",
            Reason::SpaceClosed => "space_closed",
            Reason::SpaceSuspended => "space_suspended",
            Reason::NotYetVisible => "not_yet_visible",
            Reason::NotTheAuthor => "not_the_author",
            Reason::HiddenFromRepresentatives => "hidden_from_representatives",
            Reason::Blocked => "blocked",
            Reason::Masked => "masked",
            Reason::NotHabilitated => "not_habilitated",
            Reason::NoGrant => "no_grant",
            Reason::ExpressConsentRequired => "express_consent_required",
            Reason::EmergencyWithoutReason => "emergency_without_reason",
            Reason::SupportWithoutReason => "support_without_reason",
            Reason::OperatorsSeeNoHealthData => "operators_see_no_health_data",
            Reason::NoPriorExchange => "no_prior_exchange",
            Reason::ConversationEnded => "conversation_ended",
            Reason::NotAParticipant => "not_a_participant",
            Reason::CareTeamObjected => "care_team_objected",
            Reason::CarerReadsOnly => "carer_reads_only",
        }
    }
}

/// The answer of the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    /// The access happened under a declared emergency (traced specially, notified, AC-5).
    pub emergency: bool,
}

impl Decision {
    const fn allow(reason: Reason) -> Self {
        Decision {
            allowed: true,
            reason,
            emergency: false,
        }
    }
    const fn deny(reason: Reason) -> Self {
        Decision {
            allowed: false,
            reason,
            emergency: false,
        }
    }
}

/// Which profession may read which category (AC-1), from a data file operators can change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HabilitationMatrix {
    by_profession: BTreeMap<String, Vec<Category>>,
}

/// The matrix shipped with Carnet (`data/habilitations.csv`).
pub const DEFAULT_HABILITATIONS: &str = include_str!("../data/habilitations.csv");

impl HabilitationMatrix {
    /// Parses `profession,category,category...` lines (`*` = every category; `#` comments).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut by_profession = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split(',').map(str::trim);
            let profession = fields
                .next()
                .filter(|p| !p.is_empty())
                .ok_or(format!("line {}: no profession", n + 1))?;
            let mut cats = Vec::new();
            for f in fields {
                if f == "*" {
                    cats.extend(Category::ALL);
                } else {
                    cats.push(Category::parse(f).ok_or(format!("line {}: unknown category '{f}'", n + 1))?);
                }
            }
            if by_profession.insert(profession.to_string(), cats).is_some() {
                return Err(format!("line {}: profession '{profession}' listed twice", n + 1));
            }
        }
        Ok(Self { by_profession })
    }

    pub fn default_matrix() -> Self {
        Self::parse(DEFAULT_HABILITATIONS).unwrap_or_default()
    }

    pub fn allows(&self, profession: &str, c: Category) -> bool {
        self.by_profession
            .get(profession)
            .is_some_and(|cs| cs.contains(&c))
    }

    pub fn professions(&self) -> impl Iterator<Item = &str> {
        self.by_profession.keys().map(String::as_str)
    }
}

/// Decides whether `actor` may do `action` on `item` of the space described by `space`.
pub fn decide(
    actor: &Actor,
    action: Action,
    item: &ItemFacts,
    space: &SpaceFacts,
    matrix: &HabilitationMatrix,
    ctx: &Context,
    now: Timestamp,
) -> Decision {
    use Decision as D;
    use Reason as R;
    let read_only_archive = matches!(space.lifecycle, Lifecycle::Deceased { .. });
    match &space.lifecycle {
        Lifecycle::Informed { .. } | Lifecycle::Opposed { .. } | Lifecycle::Erased { .. } => {
            return D::deny(R::NoSpace);
        }
        // LC-5b: nobody reaches a suspended space, its holder included.
        Lifecycle::Suspended { .. } | Lifecycle::SuspensionContested { .. } => {
            return D::deny(R::SpaceSuspended);
        }
        Lifecycle::Open { .. }
        | Lifecycle::Activated { .. }
        | Lifecycle::Closed { .. }
        | Lifecycle::Deceased { .. } => {}
    }
    match actor {
        Actor::Operator { .. } => D::deny(R::OperatorsSeeNoHealthData),
        Actor::Holder { .. } | Actor::Representative { .. } => {
            let is_rep = matches!(actor, Actor::Representative { .. });
            // LC-5: a closed space is archived; LC-6: on death, representatives keep reading.
            match space.lifecycle {
                Lifecycle::Closed { .. } => return D::deny(R::SpaceClosed),
                Lifecycle::Deceased { .. } if !is_rep || action != Action::Read => {
                    return D::deny(R::SpaceClosed);
                }
                _ => {}
            }
            if !item.visible_to_holder {
                return D::deny(R::NotYetVisible);
            }
            if is_rep && item.hidden_from_representatives {
                return D::deny(R::HiddenFromRepresentatives);
            }
            // DM-4: the holder deletes or changes what they added; a professional's document
            // can be hidden (masked) but not deleted by the holder.
            if matches!(action, Action::Update | Action::Delete) && item.author != Author::Holder {
                return D::deny(R::NotTheAuthor);
            }
            D::allow(if is_rep { R::Representative } else { R::Holder })
        }
        Actor::Professional { id, profession, role } => {
            if read_only_archive || matches!(space.lifecycle, Lifecycle::Closed { .. }) {
                return D::deny(R::SpaceClosed);
            }
            // AC-4: a blocked professional has no access whatever else says.
            if space.blocked.contains(id) {
                return D::deny(R::Blocked);
            }
            let is_author = item.author == (Author::Professional { id: id.clone() });
            if matches!(action, Action::Update | Action::Delete) {
                return if is_author {
                    D::allow(R::Author)
                } else {
                    D::deny(R::NotTheAuthor)
                };
            }
            // AC-2: the médecin traitant sees everything, masked documents included.
            if space.medecin_traitant.as_ref() == Some(id) {
                return D::allow(R::MedecinTraitant);
            }
            if action == Action::Read && is_author {
                return D::allow(R::Author);
            }
            // DM-5 / AC-4: masked from professionals (one document, or all of them).
            if action == Action::Read && (item.masked || space.hide_all) {
                return D::deny(R::Masked);
            }
            let habilitated = matrix.allows(profession, item.category);
            let grant = space.grant(
                &Grantee::Professional { id: id.clone() },
                Some(item.category),
                now,
            );
            if let Some(reason) = &ctx.emergency {
                if reason.trim().is_empty() {
                    return D::deny(R::EmergencyWithoutReason);
                }
                // AC-5: the regulating doctor opens the record only if the holder agreed in
                // advance; AC-1b: occupational and fire-brigade doctors never through an
                // emergency (only the holder's express consent opens it to them).
                let may_break_glass = match role {
                    PracticeRole::Care => true,
                    PracticeRole::Regulation => space.regulation_consent,
                    PracticeRole::Occupational => false,
                };
                if action == Action::Read && habilitated && may_break_glass {
                    if *role == PracticeRole::Regulation {
                        return Decision {
                            allowed: true,
                            reason: R::Regulation,
                            emergency: true,
                        };
                    }
                    if grant.is_none() {
                        return Decision {
                            allowed: true,
                            reason: R::Emergency,
                            emergency: true,
                        };
                    }
                }
            }
            match grant {
                None => D::deny(R::NoGrant),
                Some(g) if *role == PracticeRole::Occupational && !g.express => {
                    D::deny(R::ExpressConsentRequired)
                }
                Some(_) if action == Action::Create => D::allow(R::Grant),
                Some(_) if habilitated => D::allow(R::Grant),
                Some(_) => D::deny(R::NotHabilitated),
            }
        }
        Actor::Carer { id } => {
            // MI-5: an open space only (a closed one is archived; on death the representatives
            // alone keep reading, LC-6); reads only; nothing kept from the holder (DM-6), hidden
            // from the representatives (MI-2: a carer sees no more than they would) or masked
            // (DM-5, AC-4: what the holder keeps from professionals stays kept from a carer);
            // then the categories of the carer's grant, until its end.
            if read_only_archive || matches!(space.lifecycle, Lifecycle::Closed { .. }) {
                return D::deny(R::SpaceClosed);
            }
            if action != Action::Read {
                return D::deny(R::CarerReadsOnly);
            }
            if !item.visible_to_holder {
                return D::deny(R::NotYetVisible);
            }
            if item.hidden_from_representatives {
                return D::deny(R::HiddenFromRepresentatives);
            }
            if item.masked || space.hide_all {
                return D::deny(R::Masked);
            }
            match space.grant(&Grantee::Carer { id: *id }, Some(item.category), now) {
                Some(_) => D::allow(R::Carer),
                None => D::deny(R::NoGrant),
            }
        }
        Actor::Establishment { id } => system_access(
            Grantee::Establishment { id: id.clone() },
            Author::Establishment { id: id.clone() },
            action,
            item,
            space,
            now,
        ),
        Actor::App {
            id,
            by_representative,
            ..
        } => {
            // An app sees no more than the person who connected it (CA-3): nothing kept from
            // the holder until the announcement consultation (DM-6), and, connected by a
            // legal representative, nothing hidden from the representatives (MI-2).
            if !item.visible_to_holder {
                return D::deny(R::NotYetVisible);
            }
            if *by_representative && item.hidden_from_representatives {
                return D::deny(R::HiddenFromRepresentatives);
            }
            system_access(
                Grantee::App { id: id.clone() },
                Author::App { id: id.clone() },
                action,
                item,
                space,
                now,
            )
        }
    }
}

/// AC-1b: a professional declares a care relationship (which team, for which episode) when
/// opening the record. Members of the care team are presumed authorised once the holder was
/// informed (at the space's opening, LC-1) and did not object: the grant covers the whole
/// record for [`CARE_TEAM_SECONDS`], still bounded by the habilitation matrix ([`decide`]).
/// Refused to occupational and fire-brigade doctors (express consent only) and to the
/// regulating doctor (who has AC-5's own path); a block (AC-4) or the holder's objection
/// opens nothing whatever is declared.
pub fn declare_care_team(
    actor: &Actor,
    space: &SpaceFacts,
    team: CareTeam,
    episode: &str,
    now: Timestamp,
) -> Result<Grant, Reason> {
    let Actor::Professional { id, role, .. } = actor else {
        return Err(Reason::NotAParticipant);
    };
    may_be_granted(id, *role, space)?;
    if space.care_team_objection {
        return Err(Reason::CareTeamObjected);
    }
    Ok(Grant {
        grantee: Grantee::Professional { id: id.clone() },
        categories: None,
        until: Some(now.plus_seconds(CARE_TEAM_SECONDS)),
        express: false,
        basis: GrantBasis::CareTeam {
            team,
            episode: episode.trim().to_string(),
            declared_at: now,
        },
    })
}

/// AC-1b: a professional records the holder's consent for another (or for themselves): the
/// grant covers the whole record until revoked, bounded by the matrix, and keeps who recorded
/// it, how and when. The recorder must be a care professional with no block in this space;
/// the professional it is for (`for_role`, from the directory) must not be blocked, and an
/// occupational or fire-brigade doctor cannot receive it (the holder's express consent, in
/// their own directory, only). The holder's objection to presumed care-team access does not
/// apply: this is a consent.
pub fn record_consent(
    recorder: &Actor,
    for_pro: &ProfessionalId,
    for_role: PracticeRole,
    form: ConsentForm,
    space: &SpaceFacts,
    now: Timestamp,
) -> Result<Grant, Reason> {
    let Actor::Professional { id, role, .. } = recorder else {
        return Err(Reason::NotAParticipant);
    };
    may_be_granted(id, *role, space)?;
    may_be_granted(for_pro, for_role, space)?;
    Ok(Grant {
        grantee: Grantee::Professional { id: for_pro.clone() },
        categories: None,
        until: None,
        express: false,
        basis: GrantBasis::Consent {
            recorded_by: id.clone(),
            form,
            given_at: now,
        },
    })
}

/// The conditions both AC-1b paths share: an open space, a care role, no block.
fn may_be_granted(id: &ProfessionalId, role: PracticeRole, space: &SpaceFacts) -> Result<(), Reason> {
    match space.lifecycle {
        Lifecycle::Open { .. } | Lifecycle::Activated { .. } => {}
        Lifecycle::Closed { .. } | Lifecycle::Deceased { .. } => return Err(Reason::SpaceClosed),
        Lifecycle::Suspended { .. } | Lifecycle::SuspensionContested { .. } => {
            return Err(Reason::SpaceSuspended);
        }
        Lifecycle::Informed { .. } | Lifecycle::Opposed { .. } | Lifecycle::Erased { .. } => {
            return Err(Reason::NoSpace);
        }
    }
    match role {
        PracticeRole::Care => {}
        PracticeRole::Occupational => return Err(Reason::ExpressConsentRequired),
        PracticeRole::Regulation => return Err(Reason::NoGrant),
    }
    if space.blocked.contains(id) {
        return Err(Reason::Blocked);
    }
    Ok(())
}

/// The operator id of the legacy-DMP migration (LC-8), as its traces name it.
pub const LEGACY_IMPORT_OPERATOR: &str = "legacy-import";

/// Who the legacy-DMP migration is in traces (LC-8, AC-6): an operator, so [`decide`] still
/// refuses it any health data; only [`decide_legacy_import`] lets it file documents.
pub fn legacy_import_actor() -> Actor {
    Actor::Operator {
        id: LEGACY_IMPORT_OPERATOR.to_string(),
    }
}

/// LC-8: may the migration file the documents of a holder's former DMP in their space? Yes while
/// the space exists and the holder did not object: informed (the documents wait for the
/// opening, like any deposit), open or activated. An opposed or erased space is no space; a
/// closed or deceased one is an archive that receives nothing new.
pub fn decide_legacy_import(space: &SpaceFacts) -> Decision {
    match space.lifecycle {
        // LC-5b: a suspended space still receives what the insurer files; nobody reads it
        // until the suspension is lifted.
        Lifecycle::Informed { .. }
        | Lifecycle::Open { .. }
        | Lifecycle::Activated { .. }
        | Lifecycle::Suspended { .. }
        | Lifecycle::SuspensionContested { .. } => Decision::allow(Reason::LegacyImport),
        Lifecycle::Opposed { .. } | Lifecycle::Erased { .. } => Decision::deny(Reason::NoSpace),
        Lifecycle::Closed { .. } | Lifecycle::Deceased { .. } => Decision::deny(Reason::SpaceClosed),
    }
}

/// The operator id of the insurer's reimbursement feed (RB-1), as its traces name it.
pub const INSURER_FEED_OPERATOR: &str = "insurer-feed";

/// Who the insurer's reimbursement feed is in traces (RB-1, AC-6): an operator, so [`decide`]
/// refuses it any reading; only [`decide_insurer_feed`] lets it file reimbursement lines.
pub fn insurer_feed_actor() -> Actor {
    Actor::Operator {
        id: INSURER_FEED_OPERATOR.to_string(),
    }
}

/// RB-1: may the insurer's feed file reimbursement lines in a holder's space? Like the legacy
/// import: while the space exists and the holder did not object (informed, open, activated);
/// an opposed or erased space is no space, a closed or deceased one an archive that receives
/// nothing new.
pub fn decide_insurer_feed(space: &SpaceFacts) -> Decision {
    match space.lifecycle {
        // LC-5b: a suspended space still receives what the insurer files; nobody reads it
        // until the suspension is lifted.
        Lifecycle::Informed { .. }
        | Lifecycle::Open { .. }
        | Lifecycle::Activated { .. }
        | Lifecycle::Suspended { .. }
        | Lifecycle::SuspensionContested { .. } => Decision::allow(Reason::InsurerFeed),
        Lifecycle::Opposed { .. } | Lifecycle::Erased { .. } => Decision::deny(Reason::NoSpace),
        Lifecycle::Closed { .. } | Lifecycle::Deceased { .. } => Decision::deny(Reason::SpaceClosed),
    }
}

/// AC-6, S-5: may an operator open one holder's administrative data (identity, contact) for a
/// support action? Only with a stated reason, and never health data ([`decide`] refuses those
/// to operators). Every state of a space that still exists qualifies (a person who objected
/// may call about it too); an erased space is no space. The access is traced with its reason.
pub fn decide_operator_support(space: &SpaceFacts, reason: &str) -> Decision {
    if matches!(space.lifecycle, Lifecycle::Erased { .. }) {
        return Decision::deny(Reason::NoSpace);
    }
    if reason.trim().is_empty() {
        return Decision::deny(Reason::SupportWithoutReason);
    }
    Decision::allow(Reason::Support)
}

/// Whose record it is (ID-1, issue 33): may `actor` see the identity traits of `holder`'s
/// space (names, sex, birth date, INS) that a clinician checks before reading or filing
/// anything? A professional who presented the patient's INS (`presented_ins`: read on the
/// Vitale card or returned by the INSi teleservice, which gives these same traits to any
/// professional; or who corresponds with the patient, MS-2) sees them, whatever the record's directory says, so that a refusal or a
/// block is worded exactly like an absent authorisation (AC-8); so does one the record is open
/// to (médecin traitant, a current grant of any category, a running emergency). Contact data
/// is not part of it. Everyone else is decided as a read of the administrative category.
pub fn decide_identity(
    actor: &Actor,
    space: &SpaceFacts,
    matrix: &HabilitationMatrix,
    presented_ins: bool,
    ctx: &Context,
    now: Timestamp,
) -> Decision {
    use Decision as D;
    use Reason as R;
    let Actor::Professional { id, .. } = actor else {
        let item = ItemFacts {
            category: Category::Administrative,
            author: Author::Holder,
            masked: false,
            hidden_from_representatives: false,
            visible_to_holder: true,
        };
        return decide(actor, Action::Read, &item, space, matrix, ctx, now);
    };
    match space.lifecycle {
        Lifecycle::Informed { .. } | Lifecycle::Opposed { .. } | Lifecycle::Erased { .. } => {
            D::deny(R::NoSpace)
        }
        Lifecycle::Closed { .. } | Lifecycle::Deceased { .. } => D::deny(R::SpaceClosed),
        Lifecycle::Suspended { .. } | Lifecycle::SuspensionContested { .. } => D::deny(R::SpaceSuspended),
        Lifecycle::Open { .. } | Lifecycle::Activated { .. } => {
            if presented_ins {
                D::allow(R::InsPresented)
            } else if space.blocked.contains(id) {
                D::deny(R::Blocked)
            } else if space.medecin_traitant.as_ref() == Some(id) {
                D::allow(R::MedecinTraitant)
            } else if space
                .grant(&Grantee::Professional { id: id.clone() }, None, now)
                .is_some()
            {
                D::allow(R::Grant)
            } else if ctx.emergency.as_deref().is_some_and(|r| !r.trim().is_empty()) {
                Decision {
                    allowed: true,
                    reason: R::Emergency,
                    emergency: true,
                }
            } else {
                D::deny(R::NoGrant)
            }
        }
    }
}

/// What a professional may read in a space, as a whole (issue 33: a refusal must not look
/// like an empty record): the categories [`decide`] opens to them for an ordinary, unmasked
/// item, whether that is through an emergency, and whether they could declare one (AC-5).
/// Says nothing of what the space holds (AC-8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    pub readable: Vec<Category>,
    /// The categories are open through a running emergency access.
    pub emergency: bool,
    /// Nothing is open through a grant, and the policy would open the record in an emergency.
    pub may_declare_emergency: bool,
    /// Documents the holder masked are open too (AC-2: the médecin traitant).
    pub sees_masked: bool,
}

impl Standing {
    /// Every category of the matrix is readable.
    pub fn everything(&self) -> bool {
        self.readable.len() == Category::ALL.len()
    }
}

/// [`Standing`] of `actor` in a space: [`decide`] asked once per category, so it can never
/// disagree with what the lists then show.
pub fn standing(
    actor: &Actor,
    space: &SpaceFacts,
    matrix: &HabilitationMatrix,
    ctx: &Context,
    now: Timestamp,
) -> Standing {
    let item = |category| ItemFacts {
        category,
        author: Author::Holder,
        masked: false,
        hidden_from_representatives: false,
        visible_to_holder: true,
    };
    let mut readable = Vec::new();
    let mut emergency = false;
    for c in Category::ALL {
        let d = decide(actor, Action::Read, &item(c), space, matrix, ctx, now);
        if d.allowed {
            readable.push(c);
            emergency |= d.emergency;
        }
    }
    let declared = Context {
        emergency: Some("?".into()),
    };
    let may_declare_emergency =
        !emergency && ctx.emergency.is_none() && matches!(actor, Actor::Professional { .. }) && {
            let d = decide(
                actor,
                Action::Read,
                &item(Category::Summaries),
                space,
                matrix,
                &declared,
                now,
            );
            d.allowed && d.emergency
        };
    let masked = ItemFacts {
        masked: true,
        ..item(Category::Summaries)
    };
    let sees_masked = decide(actor, Action::Read, &masked, space, matrix, ctx, now).allowed;
    Standing {
        readable,
        emergency,
        may_declare_emergency,
        sees_masked,
    }
}

/// Establishments' systems and apps: only through a grant, within its categories (AC-3, CA-3).
fn system_access(
    grantee: Grantee,
    me: Author,
    action: Action,
    item: &ItemFacts,
    space: &SpaceFacts,
    now: Timestamp,
) -> Decision {
    use Decision as D;
    use Reason as R;
    match space.lifecycle {
        Lifecycle::Closed { .. } | Lifecycle::Deceased { .. } => return D::deny(R::SpaceClosed),
        Lifecycle::Suspended { .. } | Lifecycle::SuspensionContested { .. } => {
            return D::deny(R::SpaceSuspended);
        }
        Lifecycle::Informed { .. } | Lifecycle::Opposed { .. } | Lifecycle::Erased { .. } => {
            return D::deny(R::NoSpace);
        }
        Lifecycle::Open { .. } | Lifecycle::Activated { .. } => {}
    }
    let is_author = item.author == me;
    if matches!(action, Action::Update | Action::Delete) && !is_author {
        return D::deny(R::NotTheAuthor);
    }
    if action == Action::Read && !is_author && (item.masked || space.hide_all) {
        return D::deny(R::Masked);
    }
    if space.grant(&grantee, Some(item.category), now).is_some() {
        D::allow(if is_author { R::Author } else { R::Grant })
    } else {
        D::deny(R::NoGrant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reasons_name_is_its_serialised_form() {
        use Reason::*;
        for r in [
            Holder,
            Representative,
            MedecinTraitant,
            Author,
            Grant,
            Emergency,
            Regulation,
            LegacyImport,
            InsurerFeed,
            Support,
            InsPresented,
            NoSpace,
            SpaceClosed,
            SpaceSuspended,
            NotYetVisible,
            NotTheAuthor,
            HiddenFromRepresentatives,
            Blocked,
            Masked,
            NotHabilitated,
            NoGrant,
            ExpressConsentRequired,
            EmergencyWithoutReason,
            SupportWithoutReason,
            OperatorsSeeNoHealthData,
            NoPriorExchange,
            ConversationEnded,
            NotAParticipant,
            CareTeamObjected,
            Carer,
            CarerReadsOnly,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.name(), "{r:?}");
        }
    }

    fn space(lifecycle: Lifecycle) -> SpaceFacts {
        AccessPolicy::default().facts(lifecycle)
    }

    #[test]
    fn legacy_import_follows_the_lifecycle_lc8() {
        let t = Timestamp::from_unix_seconds(1_767_603_600);
        for (l, allowed, reason) in [
            (Lifecycle::Informed { informed_at: t }, true, Reason::LegacyImport),
            (Lifecycle::Open { since: t }, true, Reason::LegacyImport),
            (Lifecycle::Activated { since: t }, true, Reason::LegacyImport),
            (Lifecycle::Opposed { at: t }, false, Reason::NoSpace),
            (Lifecycle::Erased { at: t }, false, Reason::NoSpace),
            (Lifecycle::Closed { at: t }, false, Reason::SpaceClosed),
            (Lifecycle::Deceased { at: t }, false, Reason::SpaceClosed),
        ] {
            let d = decide_legacy_import(&space(l));
            assert_eq!(
                (d.allowed, d.reason, d.emergency),
                (allowed, reason, false),
                "{l:?}"
            );
        }
    }

    #[test]
    fn the_insurer_feed_follows_the_lifecycle_rb1() {
        let t = Timestamp::from_unix_seconds(1_767_603_600);
        for (l, allowed, reason) in [
            (Lifecycle::Informed { informed_at: t }, true, Reason::InsurerFeed),
            (Lifecycle::Open { since: t }, true, Reason::InsurerFeed),
            (Lifecycle::Activated { since: t }, true, Reason::InsurerFeed),
            (Lifecycle::Opposed { at: t }, false, Reason::NoSpace),
            (Lifecycle::Erased { at: t }, false, Reason::NoSpace),
            (Lifecycle::Closed { at: t }, false, Reason::SpaceClosed),
            (Lifecycle::Deceased { at: t }, false, Reason::SpaceClosed),
        ] {
            let d = decide_insurer_feed(&space(l));
            assert_eq!(
                (d.allowed, d.reason, d.emergency),
                (allowed, reason, false),
                "{l:?}"
            );
        }
        // The feed's actor reads nothing through the policy (AC-1: operators see no health data).
        let item = ItemFacts {
            category: Category::Reimbursements,
            author: Author::Holder,
            masked: false,
            hidden_from_representatives: false,
            visible_to_holder: true,
        };
        let d = decide(
            &insurer_feed_actor(),
            Action::Read,
            &item,
            &space(Lifecycle::Activated { since: t }),
            &HabilitationMatrix::default_matrix(),
            &Context::default(),
            t,
        );
        assert_eq!((d.allowed, d.reason), (false, Reason::OperatorsSeeNoHealthData));
    }

    #[test]
    fn operator_support_needs_a_reason_and_a_space_s5() {
        let t = Timestamp::from_unix_seconds(1_767_603_600);
        let open = space(Lifecycle::Activated { since: t });
        assert_eq!(
            decide_operator_support(&open, "appel du titulaire, ticket 42").reason,
            Reason::Support
        );
        let d = decide_operator_support(&open, "  ");
        assert_eq!((d.allowed, d.reason), (false, Reason::SupportWithoutReason));
        assert!(decide_operator_support(&space(Lifecycle::Opposed { at: t }), "opposition").allowed);
        let d = decide_operator_support(&space(Lifecycle::Erased { at: t }), "x");
        assert_eq!((d.allowed, d.reason), (false, Reason::NoSpace));
    }

    #[test]
    fn the_legacy_actor_still_reads_no_health_data() {
        let t = Timestamp::from_unix_seconds(1_767_603_600);
        let item = ItemFacts {
            category: Category::Reports,
            author: Author::Holder,
            masked: false,
            hidden_from_representatives: false,
            visible_to_holder: true,
        };
        for action in [Action::Read, Action::Create, Action::Update, Action::Delete] {
            let d = decide(
                &legacy_import_actor(),
                action,
                &item,
                &space(Lifecycle::Activated { since: t }),
                &HabilitationMatrix::default_matrix(),
                &Context::default(),
                t,
            );
            assert_eq!((d.allowed, d.reason), (false, Reason::OperatorsSeeNoHealthData));
        }
    }
}
