//! The access policy against (1) one readable table of every role x item kind x action, and
//! (2) a reference model written separately, on random facts (property test).
//! Cites AC-1..5, AC-8, DM-4..6, MI-2, LC-5, LC-6, S-7.

use carnet_domain::access::*;
use carnet_domain::{HolderId, Lifecycle, Timestamp};
use proptest::prelude::*;

const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

fn pro(id: &str) -> ProfessionalId {
    ProfessionalId(id.into())
}

fn professional(id: &str, profession: &str, role: PracticeRole) -> Actor {
    Actor::Professional {
        id: pro(id),
        profession: profession.into(),
        role,
    }
}

fn grant(id: &str) -> Grant {
    Grant {
        grantee: Grantee::Professional { id: pro(id) },
        categories: None,
        until: None,
        express: false,
        basis: Default::default(),
    }
}

/// The space of the table: Dr MT is the médecin traitant; Dr G (doctor) and P (pharmacist)
/// and W (occupational doctor, consent not express) have grants; Dr B is blocked although
/// granted; the hospital H and the app A have grants limited to some categories.
fn space() -> SpaceFacts {
    SpaceFacts {
        lifecycle: Lifecycle::Activated {
            since: Timestamp::from_unix_seconds(1),
        },
        medecin_traitant: Some(pro("MT")),
        blocked: vec![pro("B")],
        grants: vec![
            grant("G"),
            grant("P"),
            grant("B"),
            grant("W"),
            Grant {
                grantee: Grantee::Establishment {
                    id: OrganisationId("H".into()),
                },
                categories: Some(vec![Category::Reports, Category::Imaging]),
                until: None,
                express: false,
                basis: Default::default(),
            },
            Grant {
                grantee: Grantee::App {
                    id: AppId("A".into()),
                },
                categories: Some(vec![Category::Prescriptions]),
                until: None,
                express: false,
                basis: Default::default(),
            },
        ],
        regulation_consent: true,
        hide_all: false,
        care_team_objection: false,
    }
}

fn item(kind: &str) -> ItemFacts {
    let by_g = Author::Professional { id: pro("G") };
    let base = ItemFacts {
        category: Category::Reports,
        author: by_g,
        masked: false,
        hidden_from_representatives: false,
        visible_to_holder: true,
    };
    match kind {
        "report" => base,
        "masked" => ItemFacts { masked: true, ..base },
        "confidential" => ItemFacts {
            hidden_from_representatives: true,
            ..base
        },
        "pending" => ItemFacts {
            visible_to_holder: false,
            ..base
        },
        "own" => ItemFacts {
            category: Category::HolderDocuments,
            author: Author::Holder,
            ..base
        },
        "prescription" => ItemFacts {
            category: Category::Prescriptions,
            ..base
        },
        other => panic!("unknown item kind {other}"),
    }
}

fn actor(role: &str) -> (Actor, Context) {
    let none = Context::default();
    let urgent = Context {
        emergency: Some("patient inconscient, détresse respiratoire".into()),
    };
    match role {
        "holder" => (
            Actor::Holder {
                id: HolderId::from_uuid(uuid::Uuid::nil()),
            },
            none,
        ),
        "representative" => (
            Actor::Representative {
                id: HolderId::from_uuid(uuid::Uuid::max()),
            },
            none,
        ),
        "medecin_traitant" => (professional("MT", "medecin", PracticeRole::Care), none),
        "author_doctor_G" => (professional("G", "medecin", PracticeRole::Care), none),
        "granted_pharmacist" => (professional("P", "pharmacien", PracticeRole::Care), none),
        "ungranted_doctor" => (professional("X", "medecin", PracticeRole::Care), none),
        "blocked_doctor" => (professional("B", "medecin", PracticeRole::Care), none),
        "emergency_doctor" => (professional("X", "medecin", PracticeRole::Care), urgent),
        "emergency_no_reason" => (
            professional("X", "medecin", PracticeRole::Care),
            Context {
                emergency: Some("  ".into()),
            },
        ),
        "blocked_in_emergency" => (professional("B", "medecin", PracticeRole::Care), urgent),
        "regulation_doctor" => (professional("R", "medecin", PracticeRole::Regulation), urgent),
        "occupational_doctor" => (professional("W", "medecin", PracticeRole::Occupational), none),
        // AC-1b: an occupational doctor never gets in through an emergency.
        "occupational_urgent" => (professional("W2", "medecin", PracticeRole::Occupational), urgent),
        "hospital" => (
            Actor::Establishment {
                id: OrganisationId("H".into()),
            },
            none,
        ),
        "app" => (
            Actor::App {
                id: AppId("A".into()),
                space: None,
                by_representative: false,
            },
            none,
        ),
        "operator" => (Actor::Operator { id: "op".into() }, none),
        other => panic!("unknown role {other}"),
    }
}

/// Role, item kind, then Read / Create / Update / Delete: Y allowed, N denied.
const TABLE: &str = "
holder               report        Y Y N N
holder               masked        Y Y N N
holder               confidential  Y Y N N
holder               pending       N N N N
holder               own           Y Y Y Y
holder               prescription  Y Y N N
representative       report        Y Y N N
representative       masked        Y Y N N
representative       confidential  N N N N
representative       pending       N N N N
representative       own           Y Y Y Y
representative       prescription  Y Y N N
medecin_traitant     report        Y Y N N
medecin_traitant     masked        Y Y N N
medecin_traitant     confidential  Y Y N N
medecin_traitant     pending       Y Y N N
medecin_traitant     own           Y Y N N
medecin_traitant     prescription  Y Y N N
author_doctor_G      report        Y Y Y Y
author_doctor_G      masked        Y Y Y Y
author_doctor_G      confidential  Y Y Y Y
author_doctor_G      pending       Y Y Y Y
author_doctor_G      own           Y Y N N
author_doctor_G      prescription  Y Y Y Y
granted_pharmacist   report        N Y N N
granted_pharmacist   masked        N Y N N
granted_pharmacist   confidential  N Y N N
granted_pharmacist   pending       N Y N N
granted_pharmacist   own           Y Y N N
granted_pharmacist   prescription  Y Y N N
ungranted_doctor     report        N N N N
ungranted_doctor     masked        N N N N
ungranted_doctor     confidential  N N N N
ungranted_doctor     pending       N N N N
ungranted_doctor     own           N N N N
ungranted_doctor     prescription  N N N N
blocked_doctor       report        N N N N
blocked_doctor       masked        N N N N
blocked_doctor       confidential  N N N N
blocked_doctor       pending       N N N N
blocked_doctor       own           N N N N
blocked_doctor       prescription  N N N N
emergency_doctor     report        Y N N N
emergency_doctor     masked        N N N N
emergency_doctor     confidential  Y N N N
emergency_doctor     pending       Y N N N
emergency_doctor     own           Y N N N
emergency_doctor     prescription  Y N N N
emergency_no_reason  report        N N N N
emergency_no_reason  masked        N N N N
emergency_no_reason  confidential  N N N N
emergency_no_reason  pending       N N N N
emergency_no_reason  own           N N N N
emergency_no_reason  prescription  N N N N
blocked_in_emergency report        N N N N
blocked_in_emergency masked        N N N N
blocked_in_emergency confidential  N N N N
blocked_in_emergency pending       N N N N
blocked_in_emergency own           N N N N
blocked_in_emergency prescription  N N N N
regulation_doctor    report        Y N N N
regulation_doctor    masked        N N N N
regulation_doctor    confidential  Y N N N
regulation_doctor    pending       Y N N N
regulation_doctor    own           Y N N N
regulation_doctor    prescription  Y N N N
occupational_doctor  report        N N N N
occupational_doctor  masked        N N N N
occupational_doctor  confidential  N N N N
occupational_doctor  pending       N N N N
occupational_doctor  own           N N N N
occupational_doctor  prescription  N N N N
occupational_urgent  report        N N N N
occupational_urgent  masked        N N N N
occupational_urgent  confidential  N N N N
occupational_urgent  pending       N N N N
occupational_urgent  own           N N N N
occupational_urgent  prescription  N N N N
hospital             report        Y Y N N
hospital             masked        N Y N N
hospital             confidential  Y Y N N
hospital             pending       Y Y N N
hospital             own           N N N N
hospital             prescription  N N N N
app                  report        N N N N
app                  masked        N N N N
app                  confidential  N N N N
app                  pending       N N N N
app                  own           N N N N
app                  prescription  Y Y N N
operator             report        N N N N
operator             masked        N N N N
operator             confidential  N N N N
operator             pending       N N N N
operator             own           N N N N
operator             prescription  N N N N
";

#[test]
fn the_whole_matrix_of_roles_items_and_actions() {
    let matrix = HabilitationMatrix::default_matrix();
    let space = space();
    let mut failures = Vec::new();
    let mut rows = 0;
    for line in TABLE.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (role, kind) = (f[0], f[1]);
        let (a, ctx) = actor(role);
        let it = item(kind);
        for (action, expected) in [Action::Read, Action::Create, Action::Update, Action::Delete]
            .into_iter()
            .zip(&f[2..])
        {
            let d = decide(&a, action, &it, &space, &matrix, &ctx, NOW);
            if d.allowed != (*expected == "Y") {
                failures.push(format!(
                    "{role} {kind} {action:?}: expected {expected}, got {:?}",
                    d
                ));
            }
            if d.allowed && matches!(role, "emergency_doctor" | "regulation_doctor") {
                assert!(
                    d.emergency,
                    "{role} {kind}: emergency access must be flagged for the trace"
                );
            }
        }
        rows += 1;
    }
    assert_eq!(rows, 16 * 6, "every role x every item kind is listed");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn lifecycle_gates_everyone() {
    let matrix = HabilitationMatrix::default_matrix();
    let it = item("report");
    let t = Timestamp::from_unix_seconds(5);
    for (lifecycle, holder_reads, rep_reads, mt_reads) in [
        (Lifecycle::Informed { informed_at: t }, false, false, false),
        (Lifecycle::Opposed { at: t }, false, false, false),
        (Lifecycle::Open { since: t }, true, true, true),
        (Lifecycle::Activated { since: t }, true, true, true),
        // LC-5: professionals lose access at closure.
        (Lifecycle::Closed { at: t }, false, false, false),
        // LC-6: during the archive after death, the legal representative keeps read access.
        (Lifecycle::Deceased { at: t }, false, true, false),
        (Lifecycle::Erased { at: t }, false, false, false),
        // LC-5b: nobody reaches a suspended space, objected to or not.
        (Lifecycle::Suspended { at: t }, false, false, false),
        (Lifecycle::SuspensionContested { at: t }, false, false, false),
    ] {
        let s = SpaceFacts { lifecycle, ..space() };
        let read = |role: &str| {
            let (a, ctx) = actor(role);
            decide(&a, Action::Read, &it, &s, &matrix, &ctx, NOW).allowed
        };
        assert_eq!(read("holder"), holder_reads, "{lifecycle:?} holder");
        assert_eq!(read("representative"), rep_reads, "{lifecycle:?} representative");
        assert_eq!(
            read("medecin_traitant"),
            mt_reads,
            "{lifecycle:?} médecin traitant"
        );
    }
}

#[test]
fn grants_expire_and_narrow() {
    let matrix = HabilitationMatrix::default_matrix();
    let (a, ctx) = actor("ungranted_doctor");
    let mut s = space();
    s.grants.push(Grant {
        grantee: Grantee::Professional { id: pro("X") },
        categories: Some(vec![Category::Imaging]),
        until: Some(NOW.plus_seconds(60)),
        express: false,
        basis: Default::default(),
    });
    let imaging = ItemFacts {
        category: Category::Imaging,
        ..item("report")
    };
    assert!(decide(&a, Action::Read, &imaging, &s, &matrix, &ctx, NOW).allowed);
    assert!(
        !decide(&a, Action::Read, &item("report"), &s, &matrix, &ctx, NOW).allowed,
        "outside the categories"
    );
    let later = NOW.plus_seconds(60);
    assert_eq!(
        decide(&a, Action::Read, &imaging, &s, &matrix, &ctx, later).reason,
        Reason::NoGrant,
        "expired"
    );
    // AC-4: hiding everything hides from emergencies too; the médecin traitant still sees.
    s.hide_all = true;
    let (e, urgent) = actor("emergency_doctor");
    assert!(!decide(&e, Action::Read, &item("report"), &s, &matrix, &urgent, NOW).allowed);
    let (mt, c) = actor("medecin_traitant");
    assert!(decide(&mt, Action::Read, &item("report"), &s, &matrix, &c, NOW).allowed);
}

/// AC-5: the regulating doctor (SAMU / centre 15) opens the record in an emergency only if the
/// holder agreed in advance; without that consent and without a grant, nothing. AC-1b: an
/// occupational doctor never gets in through an emergency, even with a plain grant.
#[test]
fn regulation_needs_the_holders_consent_and_occupational_doctors_never_break_glass_ac5_ac1b() {
    let matrix = HabilitationMatrix::default_matrix();
    let urgent = Context {
        emergency: Some("arrêt cardiaque".into()),
    };
    let report = item("report");
    let regulator = professional("R", "medecin", PracticeRole::Regulation);
    let mut refused = space();
    refused.regulation_consent = false;
    let d = decide(&regulator, Action::Read, &report, &refused, &matrix, &urgent, NOW);
    assert!(!d.allowed, "{d:?}");
    let d = decide(&regulator, Action::Read, &report, &space(), &matrix, &urgent, NOW);
    assert!(
        d.allowed && d.emergency && d.reason == Reason::Regulation,
        "{d:?}"
    );
    // W holds a grant that is not express: neither it nor an emergency opens the record.
    let occupational = professional("W", "medecin", PracticeRole::Occupational);
    let d = decide(
        &occupational,
        Action::Read,
        &report,
        &space(),
        &matrix,
        &urgent,
        NOW,
    );
    assert!(!d.allowed, "{d:?}");
    let mut express = space();
    express.grants.push(Grant {
        express: true,
        ..grant("W")
    });
    express
        .grants
        .retain(|g| g.express || g.grantee != (Grantee::Professional { id: pro("W") }));
    let d = decide(
        &occupational,
        Action::Read,
        &report,
        &express,
        &matrix,
        &Context::default(),
        NOW,
    );
    assert!(d.allowed && !d.emergency, "{d:?}");
}

/// CA-3 with DM-6 and MI-2: an app granted the whole space sees no more than the person who
/// connected it: nothing the holder cannot see yet, and, when a parent connected it, nothing
/// hidden from the legal representatives.
#[test]
fn an_app_sees_no_more_than_whoever_connected_it_dm6_mi2() {
    let matrix = HabilitationMatrix::default_matrix();
    let mut whole = space();
    whole.grants.push(Grant {
        grantee: Grantee::App {
            id: AppId("Z".into()),
        },
        categories: None,
        until: None,
        express: false,
        basis: Default::default(),
    });
    let app = |by_representative| Actor::App {
        id: AppId("Z".into()),
        space: None,
        by_representative,
    };
    let read = |a: &Actor, kind: &str| {
        decide(
            a,
            Action::Read,
            &item(kind),
            &whole,
            &matrix,
            &Context::default(),
            NOW,
        )
    };
    assert!(read(&app(false), "report").allowed);
    assert!(read(&app(false), "confidential").allowed);
    assert_eq!(read(&app(false), "pending").reason, Reason::NotYetVisible);
    assert!(!read(&app(false), "pending").allowed);
    assert!(read(&app(true), "report").allowed);
    let d = read(&app(true), "confidential");
    assert_eq!((d.allowed, d.reason), (false, Reason::HiddenFromRepresentatives));
    assert!(!read(&app(true), "pending").allowed);
}

/// MI-5: a carer reads the categories of their grant until its end, writes nothing, and sees
/// nothing masked, hidden from the representatives or not yet shown to the holder; traced and
/// told to the holder like a professional.
#[test]
fn a_carer_reads_only_what_the_grant_covers_mi5() {
    let carer = HolderId::from_uuid(uuid::Uuid::from_u128(9));
    let a = Actor::Carer { id: carer };
    let mut s = space();
    s.grants.push(Grant {
        grantee: Grantee::Carer { id: carer },
        categories: Some(vec![Category::Reports]),
        until: Some(NOW.plus_seconds(10)),
        express: false,
        basis: GrantBasis::Holder,
    });
    let m = HabilitationMatrix::default_matrix();
    let ctx = Context::default();
    let report = ItemFacts {
        category: Category::Reports,
        ..item("report")
    };
    let d = decide(&a, Action::Read, &report, &s, &m, &ctx, NOW);
    assert_eq!((d.allowed, d.reason), (true, Reason::Carer));
    for action in [Action::Create, Action::Update, Action::Delete] {
        assert_eq!(
            decide(&a, action, &report, &s, &m, &ctx, NOW).reason,
            Reason::CarerReadsOnly
        );
    }
    let imaging = ItemFacts {
        category: Category::Imaging,
        ..report.clone()
    };
    assert_eq!(
        decide(&a, Action::Read, &imaging, &s, &m, &ctx, NOW).reason,
        Reason::NoGrant
    );
    let masked = ItemFacts {
        masked: true,
        ..report.clone()
    };
    assert_eq!(
        decide(&a, Action::Read, &masked, &s, &m, &ctx, NOW).reason,
        Reason::Masked
    );
    let confidential = ItemFacts {
        hidden_from_representatives: true,
        ..report.clone()
    };
    assert!(!decide(&a, Action::Read, &confidential, &s, &m, &ctx, NOW).allowed);
    // The grant's end, to the second.
    assert!(!decide(&a, Action::Read, &report, &s, &m, &ctx, NOW.plus_seconds(10)).allowed);
    // Another carer, the same categories: nothing.
    let other = Actor::Carer {
        id: HolderId::from_uuid(uuid::Uuid::from_u128(10)),
    };
    assert_eq!(
        decide(&other, Action::Read, &report, &s, &m, &ctx, NOW).reason,
        Reason::NoGrant
    );
    assert_eq!(traced_and_notified(&a), (true, true));
}

/// S-1, MI-1, MI-3, CA-3: who may act in a space at all, before any item is decided.
#[test]
fn who_enters_which_space_s1() {
    let me = HolderId::from_uuid(uuid::Uuid::from_u128(1));
    let other = HolderId::from_uuid(uuid::Uuid::from_u128(2));
    let holder = |id| Actor::Holder { id };
    let rep = |id| Actor::Representative { id };
    assert!(enters(&holder(me), me, false));
    assert!(!enters(&holder(me), other, true));
    // A representative enters only where a current representation ties them.
    assert!(enters(&rep(me), other, true));
    assert!(!enters(&rep(me), other, false));
    assert!(!enters(&rep(me), me, true));
    let app = |space| Actor::App {
        id: AppId("A".into()),
        space,
        by_representative: false,
    };
    assert!(enters(&app(Some(me)), me, false));
    assert!(!enters(&app(Some(me)), other, true));
    // MI-5: a carer is never a carer in their own space; elsewhere the grant decides.
    assert!(!enters(&Actor::Carer { id: me }, me, true));
    assert!(enters(&Actor::Carer { id: me }, other, false));
    for a in [
        professional("X", "medecin", PracticeRole::Care),
        Actor::Establishment {
            id: OrganisationId("H".into()),
        },
        Actor::Operator { id: "op".into() },
    ] {
        assert!(enters(&a, other, false), "{a:?}: the policy decides");
    }
}

#[test]
fn the_shipped_matrix_parses_and_bad_files_are_refused() {
    let m = HabilitationMatrix::default_matrix();
    assert_eq!(m.professions().count(), 19, "19 professions (AC-1)");
    assert!(m.allows("medecin", Category::Reimbursements));
    assert!(!m.allows("opticien_lunetier", Category::Reports));
    assert!(
        HabilitationMatrix::parse("medecin,nonsense")
            .unwrap_err()
            .contains("unknown category")
    );
    assert!(
        HabilitationMatrix::parse("a,reports\na,imaging")
            .unwrap_err()
            .contains("twice")
    );
}

// ---- property test against a reference model ----

/// The rules of SPEC AC, DM-4..6, MI-2, LC-5/6 restated as flat conditions, independently of
/// the implementation's control flow.
fn reference(
    actor: &Actor,
    action: Action,
    item: &ItemFacts,
    space: &SpaceFacts,
    m: &HabilitationMatrix,
    ctx: &Context,
    now: Timestamp,
) -> (bool, bool) {
    let open = matches!(
        space.lifecycle,
        Lifecycle::Open { .. } | Lifecycle::Activated { .. }
    );
    let deceased = matches!(space.lifecycle, Lifecycle::Deceased { .. });
    let writes = matches!(action, Action::Update | Action::Delete);
    // AC-1b: a declared care relationship counts only while the holder does not object.
    let active = |g: &Grant| {
        g.until.is_none_or(|u| now < u)
            && g.categories.as_ref().is_none_or(|c| c.contains(&item.category))
            && !(space.care_team_objection && matches!(g.basis, GrantBasis::CareTeam { .. }))
    };
    match actor {
        Actor::Operator { .. } => (false, false),
        Actor::Holder { .. } => (
            open && item.visible_to_holder && (!writes || item.author == Author::Holder),
            false,
        ),
        Actor::Representative { .. } => (
            (open || (deceased && action == Action::Read))
                && item.visible_to_holder
                && !item.hidden_from_representatives
                && (!writes || item.author == Author::Holder),
            false,
        ),
        Actor::Professional { id, profession, role } => {
            let author = item.author == Author::Professional { id: id.clone() };
            let blocked = space.blocked.contains(id);
            let mt = space.medecin_traitant.as_ref() == Some(id);
            let hidden = item.masked || space.hide_all;
            let hab = m.allows(profession, item.category);
            let g = space
                .grants
                .iter()
                .find(|g| g.grantee == Grantee::Professional { id: id.clone() } && active(g));
            if !open || blocked {
                return (false, false);
            }
            if writes {
                return (author, false);
            }
            if mt || (action == Action::Read && author) {
                return (true, false);
            }
            if action == Action::Read && hidden {
                return (false, false);
            }
            let declared = ctx.emergency.as_deref().map(str::trim);
            if declared == Some("") {
                return (false, false);
            }
            let emergency_read = declared.is_some() && action == Action::Read && hab;
            match role {
                PracticeRole::Regulation if emergency_read && space.regulation_consent => {
                    return (true, true);
                }
                PracticeRole::Care if emergency_read && g.is_none() => return (true, true),
                _ => {}
            }
            let Some(g) = g else { return (false, false) };
            if *role == PracticeRole::Occupational && !g.express {
                return (false, false);
            }
            (action == Action::Create || hab, false)
        }
        // MI-5: a carer reads what their grant covers in an open space, nothing the holder
        // keeps from professionals or representatives, nothing not yet shown to the holder.
        Actor::Carer { id } => (
            open && action == Action::Read
                && item.visible_to_holder
                && !item.hidden_from_representatives
                && !item.masked
                && !space.hide_all
                && space
                    .grants
                    .iter()
                    .any(|g| g.grantee == Grantee::Carer { id: *id } && active(g)),
            false,
        ),
        Actor::Establishment { id } => system_reference(
            Grantee::Establishment { id: id.clone() },
            Author::Establishment { id: id.clone() },
            action,
            item,
            space,
            open,
            &active,
        ),
        Actor::App {
            id,
            by_representative,
            ..
        } => {
            // CA-3, DM-6, MI-2: no more than the person who connected the app sees.
            let (seen, _) = system_reference(
                Grantee::App { id: id.clone() },
                Author::App { id: id.clone() },
                action,
                item,
                space,
                open,
                &active,
            );
            (
                seen && item.visible_to_holder && !(*by_representative && item.hidden_from_representatives),
                false,
            )
        }
    }
}

fn system_reference(
    grantee: Grantee,
    me: Author,
    action: Action,
    item: &ItemFacts,
    space: &SpaceFacts,
    open: bool,
    active: &dyn Fn(&Grant) -> bool,
) -> (bool, bool) {
    let author = item.author == me;
    let writes = matches!(action, Action::Update | Action::Delete);
    let granted = space.grants.iter().any(|g| g.grantee == grantee && active(g));
    let hidden = action == Action::Read && !author && (item.masked || space.hide_all);
    (open && granted && !hidden && (!writes || author), false)
}

fn arb_lifecycle() -> impl Strategy<Value = Lifecycle> {
    let t = Timestamp::from_unix_seconds(10);
    prop::sample::select(vec![
        Lifecycle::Informed { informed_at: t },
        Lifecycle::Opposed { at: t },
        Lifecycle::Open { since: t },
        Lifecycle::Activated { since: t },
        Lifecycle::Closed { at: t },
        Lifecycle::Deceased { at: t },
        Lifecycle::Erased { at: t },
        Lifecycle::Suspended { at: t },
        Lifecycle::SuspensionContested { at: t },
    ])
}

const IDS: [&str; 3] = ["a", "b", "c"];

fn arb_actor() -> impl Strategy<Value = Actor> {
    let id = prop::sample::select(IDS.to_vec());
    let profession = prop::sample::select(vec![
        "medecin",
        "pharmacien",
        "infirmier",
        "opticien_lunetier",
        "unknown",
    ]);
    let role = prop::sample::select(vec![
        PracticeRole::Care,
        PracticeRole::Regulation,
        PracticeRole::Occupational,
    ]);
    prop_oneof![
        Just(Actor::Holder {
            id: HolderId::from_uuid(uuid::Uuid::nil())
        }),
        Just(Actor::Representative {
            id: HolderId::from_uuid(uuid::Uuid::max())
        }),
        (id.clone(), profession, role).prop_map(|(i, p, r)| Actor::Professional {
            id: pro(i),
            profession: p.into(),
            role: r
        }),
        id.clone().prop_map(|i| Actor::Establishment {
            id: OrganisationId(i.into())
        }),
        (id, any::<bool>()).prop_map(|(i, by_representative)| Actor::App {
            id: AppId(i.into()),
            space: None,
            by_representative,
        }),
        Just(Actor::Operator { id: "op".into() }),
        carer_id().prop_map(|id| Actor::Carer { id }),
    ]
}

/// Two carers, one of them also the space's holder (nil): no carer enters their own space.
fn carer_id() -> impl Strategy<Value = HolderId> {
    prop::sample::select(vec![
        HolderId::from_uuid(uuid::Uuid::nil()),
        HolderId::from_uuid(uuid::Uuid::from_u128(7)),
        HolderId::from_uuid(uuid::Uuid::from_u128(8)),
    ])
}

fn arb_author() -> impl Strategy<Value = Author> {
    let id = prop::sample::select(IDS.to_vec());
    prop_oneof![
        Just(Author::Holder),
        id.clone().prop_map(|i| Author::Professional { id: pro(i) }),
        id.clone().prop_map(|i| Author::Establishment {
            id: OrganisationId(i.into())
        }),
        id.prop_map(|i| Author::App { id: AppId(i.into()) }),
    ]
}

fn arb_category() -> impl Strategy<Value = Category> {
    prop::sample::select(Category::ALL.to_vec())
}

fn arb_grant() -> impl Strategy<Value = Grant> {
    let id = prop::sample::select(IDS.to_vec());
    let grantee = prop_oneof![
        id.clone().prop_map(|i| Grantee::Professional { id: pro(i) }),
        id.clone().prop_map(|i| Grantee::Establishment {
            id: OrganisationId(i.into())
        }),
        id.prop_map(|i| Grantee::App { id: AppId(i.into()) }),
        carer_id().prop_map(|id| Grantee::Carer { id }),
    ];
    let basis = prop_oneof![
        Just(GrantBasis::Holder),
        Just(GrantBasis::CareTeam {
            team: CareTeam::Practice,
            episode: "suivi".into(),
            declared_at: NOW,
        }),
        Just(GrantBasis::Consent {
            recorded_by: pro("a"),
            form: ConsentForm::Oral,
            given_at: NOW,
        }),
    ];
    (
        grantee,
        prop::option::of(prop::collection::vec(arb_category(), 0..4)),
        prop::option::of((-100i64..100).prop_map(|d| NOW.plus_seconds(d))),
        any::<bool>(),
        basis,
    )
        .prop_map(|(grantee, categories, until, express, basis)| Grant {
            grantee,
            categories,
            until,
            express,
            basis,
        })
}

fn arb_space() -> impl Strategy<Value = SpaceFacts> {
    (
        arb_lifecycle(),
        prop::option::of(prop::sample::select(IDS.to_vec())),
        prop::collection::vec(prop::sample::select(IDS.to_vec()), 0..2),
        prop::collection::vec(arb_grant(), 0..4),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(lifecycle, mt, blocked, grants, regulation_consent, hide_all, care_team_objection)| {
                SpaceFacts {
                    lifecycle,
                    medecin_traitant: mt.map(pro),
                    blocked: blocked.into_iter().map(pro).collect(),
                    grants,
                    regulation_consent,
                    hide_all,
                    care_team_objection,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    #[test]
    fn decisions_match_the_reference_model(
        actor in arb_actor(),
        action in prop::sample::select(vec![Action::Read, Action::Create, Action::Update, Action::Delete]),
        item in (arb_category(), arb_author(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(category, author, masked, hidden, visible)| ItemFacts {
            category, author, masked, hidden_from_representatives: hidden, visible_to_holder: visible,
        }),
        space in arb_space(),
        emergency in prop::option::of(prop::sample::select(vec!["", " ", "arrêt cardiaque"])),
    ) {
        let m = HabilitationMatrix::default_matrix();
        let ctx = Context { emergency: emergency.map(str::to_string) };
        let d = decide(&actor, action, &item, &space, &m, &ctx, NOW);
        let (allowed, emergency_flag) = reference(&actor, action, &item, &space, &m, &ctx, NOW);
        prop_assert_eq!(d.allowed, allowed, "{:?} {:?} {:?} {:?} {:?} -> {:?}", actor, action, item, space, ctx, d);
        prop_assert_eq!(d.allowed && d.emergency, emergency_flag);
        // A denial never claims an allowing reason and vice versa.
        let allowing = matches!(d.reason, Reason::Holder | Reason::Representative | Reason::MedecinTraitant | Reason::Author | Reason::Grant | Reason::Emergency | Reason::Regulation | Reason::Carer);
        prop_assert_eq!(allowing, d.allowed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    /// Issue 33, ID-1, AC-8: whose record it is. A professional sees the identity traits of
    /// an open space after presenting its INS, or when the record is open to them (médecin
    /// traitant, a current grant of any category, a running emergency), never otherwise;
    /// everyone else exactly as a read of the administrative category.
    #[test]
    fn identity_matches_the_reference_model(
        actor in arb_actor(),
        space in arb_space(),
        presented in any::<bool>(),
        emergency in prop::option::of(prop::sample::select(vec!["", "arrêt cardiaque"])),
    ) {
        let m = HabilitationMatrix::default_matrix();
        let ctx = Context { emergency: emergency.map(str::to_string) };
        let d = decide_identity(&actor, &space, &m, presented, &ctx, NOW);
        let expected = match &actor {
            Actor::Professional { id, .. } => {
                matches!(space.lifecycle, Lifecycle::Open { .. } | Lifecycle::Activated { .. })
                    && (presented
                        || (!space.blocked.contains(id)
                            && (space.medecin_traitant.as_ref() == Some(id)
                                || space.grants.iter().any(|g| g.grantee == Grantee::Professional { id: id.clone() }
                                    && g.until.is_none_or(|u| NOW < u)
                                    && !(space.care_team_objection && matches!(g.basis, GrantBasis::CareTeam { .. })))
                                || ctx.emergency.as_deref().is_some_and(|r| !r.trim().is_empty()))))
            }
            _ => {
                let item = ItemFacts {
                    category: Category::Administrative,
                    author: Author::Holder,
                    masked: false,
                    hidden_from_representatives: false,
                    visible_to_holder: true,
                };
                reference(&actor, Action::Read, &item, &space, &m, &ctx, NOW).0
            }
        };
        prop_assert_eq!(d.allowed, expected, "{:?} {:?} {} {:?} -> {:?}", actor, space, presented, ctx, d);
    }

    /// Issue 33, AC-8: what a professional is told of their access is what the policy then
    /// does, category by category; the emergency form is offered exactly when declaring one
    /// would open the record.
    #[test]
    fn standing_matches_the_reference_model(
        actor in arb_actor(),
        space in arb_space(),
        emergency in prop::option::of(Just("arrêt cardiaque")),
    ) {
        let m = HabilitationMatrix::default_matrix();
        let ctx = Context { emergency: emergency.map(str::to_string) };
        let st = standing(&actor, &space, &m, &ctx, NOW);
        let item = |category| ItemFacts {
            category,
            author: Author::Holder,
            masked: false,
            hidden_from_representatives: false,
            visible_to_holder: true,
        };
        let readable: Vec<Category> = Category::ALL
            .into_iter()
            .filter(|c| reference(&actor, Action::Read, &item(*c), &space, &m, &ctx, NOW).0)
            .collect();
        prop_assert_eq!(&st.readable, &readable);
        let emergency_open = Category::ALL
            .into_iter()
            .any(|c| reference(&actor, Action::Read, &item(c), &space, &m, &ctx, NOW) == (true, true));
        prop_assert_eq!(st.emergency, emergency_open);
        let declared = Context { emergency: Some("chute".into()) };
        let would_open = matches!(actor, Actor::Professional { .. })
            && ctx.emergency.is_none()
            && reference(&actor, Action::Read, &item(Category::Summaries), &space, &m, &declared, NOW) == (true, true);
        prop_assert_eq!(st.may_declare_emergency, would_open);
        let masked = ItemFacts { masked: true, ..item(Category::Summaries) };
        prop_assert_eq!(st.sees_masked, reference(&actor, Action::Read, &masked, &space, &m, &ctx, NOW).0);
    }
}

// ---- AC-1b: care teams and recorded consents ----

/// Who may obtain a grant through AC-1b, restated flatly: a care professional, not blocked, in
/// an open space; a care-team declaration also needs the holder not to object.
fn reference_may_obtain(id: &ProfessionalId, role: PracticeRole, space: &SpaceFacts) -> bool {
    matches!(
        space.lifecycle,
        Lifecycle::Open { .. } | Lifecycle::Activated { .. }
    ) && role == PracticeRole::Care
        && !space.blocked.contains(id)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    /// AC-1b, AC-4, AC-1: a declared care relationship opens what the reference says: never to
    /// a blocked or occupational doctor, never against the holder's objection, always within
    /// the habilitation matrix; and it never narrows nor widens a grant already in force.
    #[test]
    fn care_team_declarations_match_the_reference_ac1b(
        actor in arb_actor(),
        space in arb_space(),
        category in arb_category(),
    ) {
        let m = HabilitationMatrix::default_matrix();
        let r = declare_care_team(&actor, &space, CareTeam::Practice, " suivi post-opératoire ", NOW);
        let Actor::Professional { id, profession, role } = &actor else {
            prop_assert_eq!(r, Err(Reason::NotAParticipant));
            return Ok(());
        };
        let expected = reference_may_obtain(id, *role, &space) && !space.care_team_objection;
        prop_assert_eq!(r.is_ok(), expected, "{:?} {:?} -> {:?}", actor, space, r);
        let Ok(g) = r else { return Ok(()) };
        let episode = match &g.basis {
            GrantBasis::CareTeam { episode, .. } => episode.as_str(),
            _ => "",
        };
        prop_assert_eq!(episode, "suivi post-opératoire");
        prop_assert_eq!(g.until, Some(NOW.plus_seconds(CARE_TEAM_SECONDS)));
        let mut policy = AccessPolicy {
            medecin_traitant: space.medecin_traitant.clone(),
            blocked: space.blocked.clone(),
            grants: space.grants.clone(),
            regulation_consent: space.regulation_consent,
            hide_all: space.hide_all,
            care_team_objection: space.care_team_objection,
        };
        let before = space.grant(&g.grantee, None, NOW).cloned();
        let changed = policy.admit(g.clone(), NOW);
        prop_assert_eq!(changed, before.is_none());
        let after = policy.facts(space.lifecycle);
        prop_assert_eq!(after.grant(&g.grantee, None, NOW).cloned(), Some(before.unwrap_or(g)));
        // A plain item of `category`: readable iff the reference says so on the new facts.
        let item = ItemFacts {
            category,
            author: Author::Holder,
            masked: false,
            hidden_from_representatives: false,
            visible_to_holder: true,
        };
        let d = decide(&actor, Action::Read, &item, &after, &m, &Context::default(), NOW);
        let (allowed, _) = reference(&actor, Action::Read, &item, &after, &m, &Context::default(), NOW);
        prop_assert_eq!(d.allowed, allowed);
        if changed && !after.hide_all && after.medecin_traitant.as_ref() != Some(id) {
            prop_assert_eq!(d.allowed, m.allows(profession, category));
        }
    }

    /// AC-1b: a consent one professional records for another follows the reference: both in
    /// care roles and unblocked, an open space; the holder's objection to presumed care-team
    /// access does not apply; the form and date are kept with the grant.
    #[test]
    fn recorded_consents_match_the_reference_ac1b(
        recorder in arb_actor(),
        target in prop::sample::select(IDS.to_vec()),
        target_role in prop::sample::select(vec![PracticeRole::Care, PracticeRole::Regulation, PracticeRole::Occupational]),
        space in arb_space(),
    ) {
        let target = pro(target);
        let r = record_consent(&recorder, &target, target_role, ConsentForm::Written, &space, NOW);
        let Actor::Professional { id, role, .. } = &recorder else {
            prop_assert_eq!(r, Err(Reason::NotAParticipant));
            return Ok(());
        };
        let expected = reference_may_obtain(id, *role, &space) && reference_may_obtain(&target, target_role, &space);
        prop_assert_eq!(r.is_ok(), expected);
        if let Ok(g) = r {
            prop_assert_eq!(g.grantee, Grantee::Professional { id: target });
            prop_assert_eq!(g.basis, GrantBasis::Consent { recorded_by: id.clone(), form: ConsentForm::Written, given_at: NOW });
            prop_assert!(!g.express);
        }
    }
}

/// AC-1b, AC-4: the holder's objection closes declared care relationships at once, while the
/// holder's own grants and recorded consents stay; an occupational doctor never gets in
/// through either path.
#[test]
fn an_objection_ends_presumed_access_but_not_consents_ac1b() {
    let m = HabilitationMatrix::default_matrix();
    let mut policy = AccessPolicy::default();
    let open = Lifecycle::Open { since: NOW };
    let nurse = professional("N", "infirmier", PracticeRole::Care);
    let doctor = professional("D", "medecin", PracticeRole::Care);
    let declared = declare_care_team(
        &nurse,
        &policy.facts(open),
        CareTeam::Coordination,
        "soins à domicile",
        NOW,
    )
    .expect("presumed authorisation");
    assert!(policy.admit(declared, NOW));
    let consent = record_consent(
        &nurse,
        &pro("D"),
        PracticeRole::Care,
        ConsentForm::Oral,
        &policy.facts(open),
        NOW,
    )
    .expect("consent recorded for a colleague");
    assert!(policy.admit(consent, NOW));
    let report = ItemFacts {
        category: Category::Summaries,
        author: Author::Holder,
        masked: false,
        hidden_from_representatives: false,
        visible_to_holder: true,
    };
    let reads = |p: &AccessPolicy, who: &Actor| {
        decide(
            who,
            Action::Read,
            &report,
            &p.facts(open),
            &m,
            &Context::default(),
            NOW,
        )
        .allowed
    };
    assert!(reads(&policy, &nurse) && reads(&policy, &doctor));
    policy.care_team_objection = true;
    assert!(!reads(&policy, &nurse), "the objection applies at once");
    assert!(reads(&policy, &doctor), "a consent is not a presumption");
    assert_eq!(
        declare_care_team(&doctor, &policy.facts(open), CareTeam::Practice, "x", NOW),
        Err(Reason::CareTeamObjected)
    );
    // A year later the declaration has lapsed even without objection.
    policy.care_team_objection = false;
    let later = NOW.plus_seconds(CARE_TEAM_SECONDS);
    assert!(
        !decide(
            &nurse,
            Action::Read,
            &report,
            &policy.facts(open),
            &m,
            &Context::default(),
            later
        )
        .allowed
    );
    let occupational = professional("W", "medecin", PracticeRole::Occupational);
    assert_eq!(
        declare_care_team(&occupational, &policy.facts(open), CareTeam::Practice, "x", NOW),
        Err(Reason::ExpressConsentRequired)
    );
    assert_eq!(
        record_consent(
            &nurse,
            &pro("W"),
            PracticeRole::Occupational,
            ConsentForm::Written,
            &policy.facts(open),
            NOW
        ),
        Err(Reason::ExpressConsentRequired)
    );
    // AC-4: blocking the nurse ends everything, whatever she declares.
    policy.blocked.push(pro("N"));
    assert!(!reads(&policy, &nurse));
    assert_eq!(
        declare_care_team(&nurse, &policy.facts(open), CareTeam::Practice, "x", NOW),
        Err(Reason::Blocked)
    );
}
