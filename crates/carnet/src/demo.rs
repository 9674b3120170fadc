//! `carnet demo`: a fresh demo data set at every start, in a directory that is marked as a
//! demo so that the demo never wipes a real installation. All people are fictitious.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use carnet_domain::roster::RawRosterLine;
use carnet_domain::{Clock, Event, Ins, SystemClock};
use carnet_store::Store;
use carnet_store::roster::RosterOutcome;

use crate::config::Config;

const DEMO_MARKER: &str = "DEMO";
/// The password of every demo account (printed at start; demo only).
pub const DEMO_PASSWORD: &str = "demo-carnet-2026";

/// Makes the data directory ready for a fresh demo: creates it, or empties a previous demo.
/// A directory that holds anything else is refused.
pub fn prepare(cfg: &Config) -> Result<()> {
    let dir = &cfg.store.data_dir;
    // On PostgreSQL (to try the deployment's engine) both databases must be given, and must be
    // empty: checked once they are open (`ensure_empty`), never a real one filled with demo data.
    if cfg.store.database_url.is_some() != cfg.store.keys_url.is_some() {
        anyhow::bail!("the demo on PostgreSQL needs both database_url and keys_url (two empty databases)");
    }
    if dir.exists() {
        let is_demo = dir.join(DEMO_MARKER).exists();
        let is_empty = std::fs::read_dir(dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !is_demo && !is_empty {
            anyhow::bail!(
                "{} exists and is not a demo directory: refusing to replace it with demo data \
                 (choose another --data-dir)",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("clearing the previous demo in {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(())
}

/// The demo fills only an empty database: on PostgreSQL, one that holds no space yet.
pub async fn ensure_empty(store: &Store) -> Result<()> {
    let status = store.operations_status().await?;
    if status.spaces_by_state.iter().any(|(_, n)| *n > 0) {
        anyhow::bail!("this database already holds spaces: the demo runs only on an empty one");
    }
    Ok(())
}

/// A valid INS from a fictitious NIR (test range: sex digit 1/2, department 99 = abroad).
fn ins(sex: char, yymm: &str, n: u32) -> String {
    let nir = format!("{sex}{yymm}99{n:06}");
    let key = 97 - nir.parse::<u64>().unwrap_or(0) % 97;
    format!("{nir}{key:02}")
}

/// What the demo prints so a person can log in.
#[derive(Debug, Default)]
pub struct DemoLogins {
    pub accounts: Vec<(String, String)>,
    /// Professionals of the demo directory: RPPS and who they are.
    pub professionals: Vec<(String, String)>,
    pub to_activate: Option<(String, String, String)>,
    /// The referencing workflow's accounts (role, bearer token) and the demo app's client id.
    pub referencing: Vec<(String, String)>,
    pub demo_app: Option<String>,
}

struct Person {
    ins: String,
    birth_name: &'static str,
    given: &'static str,
    sex: &'static str,
    birth: &'static str,
    email: Option<&'static str>,
    parent: Option<usize>,
}

pub async fn seed(store: &Store, dir: &Path) -> Result<DemoLogins> {
    let people = [
        Person {
            ins: ins('2', "8403", 1),
            birth_name: "MARTIN",
            given: "Camille",
            sex: "F",
            birth: "1984-03-12",
            email: Some("camille.martin@demo.carnet.invalid"),
            parent: None,
        },
        Person {
            ins: ins('2', "1506", 2),
            birth_name: "MARTIN",
            given: "Inès",
            sex: "F",
            birth: "2015-06-02",
            email: None,
            parent: Some(0),
        },
        Person {
            ins: ins('1', "1909", 3),
            birth_name: "MARTIN",
            given: "Hugo",
            sex: "M",
            birth: "2019-09-21",
            email: None,
            parent: Some(0),
        },
        Person {
            ins: ins('1', "5709", 4),
            birth_name: "BERNARD",
            given: "Lucas",
            sex: "M",
            birth: "1957-09-30",
            email: Some("lucas.bernard@demo.carnet.invalid"),
            parent: None,
        },
        Person {
            ins: ins('2', "9201", 5),
            birth_name: "DUBOIS",
            given: "Léa",
            sex: "F",
            birth: "1992-01-17",
            email: Some("lea.dubois@demo.carnet.invalid"),
            parent: None,
        },
        Person {
            ins: ins('1', "7004", 6),
            birth_name: "ROUX",
            given: "Marc",
            sex: "M",
            birth: "1970-04-08",
            email: Some("marc.roux@demo.carnet.invalid"),
            parent: None,
        },
        Person {
            ins: ins('2', "6511", 7),
            birth_name: "FOURNIER",
            given: "Anne",
            sex: "F",
            birth: "1965-11-03",
            email: Some("anne.fournier@demo.carnet.invalid"),
            parent: None,
        },
        Person {
            ins: ins('1', "8808", 8),
            birth_name: "GIRARD",
            given: "Paul",
            sex: "M",
            birth: "1988-08-25",
            email: None,
            parent: None,
        },
    ];
    let now = SystemClock.now();
    let records = people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            RawRosterLine {
                ins: p.ins.clone(),
                birth_name: p.birth_name.into(),
                given_names: p.given.into(),
                sex: p.sex.into(),
                birth_date: p.birth.into(),
                email: p.email.unwrap_or("").into(),
                // Fictitious numbers (ARCEP's range for fiction, 06 39 98): SMS show in the
                // demo outbox.
                phone: if p.email.is_some() {
                    format!("+336399800{i:02}")
                } else {
                    String::new()
                },
                address: "1 place de la Démo, 75000 Paris".into(),
                ..RawRosterLine::default()
            }
            .validate(now)
            .map_err(|e| anyhow::anyhow!("demo roster: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let outcomes = store.import_roster_batch(&records).await?;
    let mut ids = Vec::new();
    let mut codes = Vec::new();
    for o in outcomes {
        match o {
            RosterOutcome::Created { id, activation_code } => {
                ids.push(id);
                codes.push(activation_code);
            }
            RosterOutcome::Existing { .. } => anyhow::bail!("demo roster imported twice"),
        }
    }
    let mut logins = DemoLogins::default();
    let hash = carnet_store::password::hash(DEMO_PASSWORD)?;
    // Camille and Lucas: activated, with credentials. Camille represents her two children.
    for i in [0usize, 3] {
        let login = people[i].email.unwrap_or_default().to_string();
        store
            .activate(&Ins::parse(&people[i].ins)?, &codes[i], "", &login, &hash)
            .await?;
        logins.accounts.push((login, DEMO_PASSWORD.to_string()));
    }
    for (i, p) in people.iter().enumerate() {
        if let Some(parent) = p.parent {
            store.link_representative(ids[i], ids[parent], "parent").await?;
            // The children's spaces were activated by their mother (LC-1: she manages them).
            store.transition(ids[i], Event::Activate).await?;
        }
    }
    // Léa: informed, can activate with her code. Marc objected. Anne closed her space.
    logins.to_activate = Some((
        people[4].ins.clone(),
        codes[4].clone(),
        people[4].email.unwrap_or("").into(),
    ));
    store.transition(ids[5], Event::Oppose).await?;
    store.transition(ids[6], Event::Activate).await?;
    store.transition(ids[6], Event::Close).await?;
    // Paul: objected, then asked for a space after all: open, never activated; no e-mail, so
    // his letters go by post.
    store.transition(ids[7], Event::Oppose).await?;
    store.transition(ids[7], Event::RequestSpace).await?;
    seed_professionals(store, ids[0], &mut logins).await?;
    seed_minor_confidential(store, ids[1]).await?;
    seed_reimbursements(store, &[&people[0].ins, &people[3].ins, &people[1].ins]).await?;
    seed_catalogue(store, &mut logins).await?;
    std::fs::write(
        dir.join(DEMO_MARKER),
        b"demo data directory: wiped at every `carnet demo`\n",
    )
    .with_context(|| format!("marking {} as a demo directory", dir.display()))?;
    Ok(logins)
}

/// Demo professionals, Camille's médecin traitant, and a few documents deposited through the
/// gate (so they are traced and notified like real ones).
async fn seed_professionals(
    store: &Store,
    camille: carnet_domain::HolderId,
    logins: &mut DemoLogins,
) -> Result<()> {
    use carnet_domain::access::{Category, Context, PracticeRole, ProfessionalId};
    use carnet_store::directory::Professional;
    use carnet_store::documents::NewDocument;
    let pro = |rpps: &str, family: &str, given: &str, profession: &str, finess: Option<(&str, &str)>| {
        Professional {
            rpps: rpps.into(),
            family_name: family.into(),
            given_name: given.into(),
            profession: profession.into(),
            specialty: None,
            role: PracticeRole::Care,
            finess: finess.map(|f| f.0.to_string()),
            organisation_name: finess.map(|f| f.1.to_string()),
            town: Some("Paris".into()),
        }
    };
    let in_town = |p: Professional, town: &str| Professional {
        town: Some(town.into()),
        ..p
    };
    let pros = vec![
        pro("10000000001", "LEROY", "Claire", "medecin", None),
        pro(
            "10000000002",
            "PETIT",
            "Julien",
            "medecin",
            Some(("750000001", "Hôpital de la Démo")),
        ),
        pro("10000000003", "MOREAU", "Sophie", "infirmier", None),
        pro("10000000004", "GIRARD", "Paul", "pharmacien", None),
        Professional {
            role: PracticeRole::Regulation,
            ..pro("10000000005", "BLANC", "Hélène", "medecin", None)
        },
        Professional {
            role: PracticeRole::Occupational,
            ..pro("10000000006", "NOIR", "Marc", "medecin", None)
        },
        // Found by name, profession and town from the holder's directory (issue 32): two
        // LEROY, told apart by their profession and town.
        in_town(
            pro("10000000007", "LEROY", "Marc", "masseur_kinesitherapeute", None),
            "Lyon",
        ),
        in_town(
            Professional {
                specialty: Some("cardiologie".into()),
                ..pro("10000000008", "DURAND", "Anne", "medecin", None)
            },
            "Saint-Étienne",
        ),
        in_town(pro("10000000009", "FAURE", "Julie", "sage_femme", None), "Lyon"),
    ];
    store.upsert_professionals(&pros).await?;
    logins.professionals = vec![
        (
            "10000000001".into(),
            "Dr Claire LEROY, médecin généraliste (médecin traitant de Camille)".into(),
        ),
        (
            "10000000002".into(),
            "Dr Julien PETIT, radiologue, Hôpital de la Démo (autorisé par Camille)".into(),
        ),
        (
            "10000000003".into(),
            "Sophie MOREAU, infirmière (sans autorisation : déclarez une prise en charge, ou essayez l'accès en urgence)".into(),
        ),
        (
            "10000000004".into(),
            "Paul GIRARD, pharmacien (un patient peut lui écrire le premier)".into(),
        ),
        (
            "10000000005".into(),
            "Dr Hélène BLANC, médecin régulateur du SAMU (Camille n'a pas consenti à sa consultation)".into(),
        ),
        (
            "10000000006".into(),
            "Dr Marc NOIR, médecin du travail (il lui faut le consentement exprès du patient)".into(),
        ),
    ];
    let gate = carnet_store::gate::Gate::new(
        store.clone(),
        carnet_domain::access::HabilitationMatrix::default_matrix(),
    );
    // Camille sets up her directory herself (through the gate's binding, S-1).
    gate.holder_side(camille, &carnet_domain::access::Actor::Holder { id: camille })
        .await?
        .context("Camille's space")?
        .update_access_policy(|p| {
            p.medecin_traitant = Some(ProfessionalId("10000000001".into()));
            p.grants.push(carnet_domain::access::Grant {
                grantee: carnet_domain::access::Grantee::Professional {
                    id: ProfessionalId("10000000002".into()),
                },
                categories: None,
                until: None,
                express: false,
                basis: Default::default(),
            });
        })
        .await?;
    let docs = [
        (
            &pros[0],
            "Compte rendu de consultation",
            Category::Reports,
            "11488-4",
            "Consultation du 12 mars",
        ),
        (
            &pros[1],
            "Échographie abdominale",
            Category::Imaging,
            "18748-4",
            "Examen sans anomalie décelable.",
        ),
        (
            &pros[0],
            "Ordonnance",
            Category::Prescriptions,
            "57833-6",
            "Paracétamol 1 g, 3 fois par jour, 5 jours.",
        ),
    ];
    for (author, title, class, loinc, text) in docs {
        let new = NewDocument {
            title: Some(title.into()),
            class: Some(class),
            type_code: Some(loinc.into()),
            mime: "text/plain".into(),
            filename: Some(format!("{}.txt", title.to_lowercase().replace(' ', "-"))),
            author_name: author.display_name(),
            organisation: author.organisation_name.clone(),
            ..NewDocument::default()
        };
        gate.deposit_document(
            camille,
            &author.actor(),
            new,
            text.as_bytes().to_vec(),
            &Context::default(),
        )
        .await?;
    }
    seed_messages_and_agenda(&gate, camille, &pros).await
}

/// MI-2: in Inès's space (Camille represents her), Dr LEROY (her médecin traitant too) filed a
/// vaccination certificate and a consultation kept confidential from the legal representatives:
/// Camille, switching to Inès's space, sees the first and not the second.
async fn seed_minor_confidential(store: &Store, ines: carnet_domain::HolderId) -> Result<()> {
    use carnet_domain::access::{Category, Context, HabilitationMatrix, ProfessionalId};
    use carnet_store::documents::NewDocument;
    let gate = carnet_store::gate::Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    // Her mother sets it up, as her legal representative (MI-1, through the gate's binding).
    let camille = store
        .representatives(ines)
        .await?
        .first()
        .map(|(r, _)| *r)
        .context("Inès's representative")?;
    gate.holder_side(
        ines,
        &carnet_domain::access::Actor::Representative { id: camille },
    )
    .await?
    .context("Inès's space")?
    .update_access_policy(|p| {
        p.medecin_traitant = Some(ProfessionalId("10000000001".into()));
    })
    .await?;
    let leroy = store
        .professional("10000000001")
        .await?
        .context("demo professional")?;
    for (title, class, hidden, text) in [
        (
            "Certificat de vaccination",
            Category::Certificates,
            false,
            "Vaccinations à jour selon le calendrier vaccinal.",
        ),
        (
            "Entretien confidentiel",
            Category::Reports,
            true,
            "Consultation demandée par la patiente, confidentielle vis-à-vis de ses parents.",
        ),
    ] {
        gate.deposit_document(
            ines,
            &leroy.actor(),
            NewDocument {
                title: Some(title.into()),
                class: Some(class),
                mime: "text/plain".into(),
                filename: Some("document.txt".into()),
                hidden_from_representatives: hidden,
                author_name: leroy.display_name(),
                ..NewDocument::default()
            },
            text.as_bytes().to_vec(),
            &Context::default(),
        )
        .await?;
    }
    Ok(())
}

/// MS-1, AG-1: Dr LEROY wrote to Camille (with an attachment), and a few events in her agenda,
/// one added by Dr PETIT.
async fn seed_messages_and_agenda(
    gate: &carnet_store::gate::Gate,
    camille: carnet_domain::HolderId,
    pros: &[carnet_store::directory::Professional],
) -> Result<()> {
    use carnet_domain::access::{Actor, Context};
    use carnet_domain::agenda::{EventInput, EventKind, Frequency, Recurrence, morning_of, paris_date};
    use carnet_domain::messaging::Counterpart;
    use carnet_store::messaging::{CounterpartInfo, NewAttachment, Outgoing};
    let ctx = Context::default();
    let leroy = &pros[0];
    gate.start_conversation(
        camille,
        &leroy.actor(),
        CounterpartInfo {
            counterpart: Counterpart::Professional {
                id: carnet_domain::access::ProfessionalId(leroy.rpps.clone()),
            },
            name: leroy.display_name(),
            is_pharmacy: false,
        },
        "Résultats de votre prise de sang",
        Outgoing {
            text: "Bonjour Madame Martin,\nVos résultats sont normaux ; je vous les joins. Nous en reparlerons \
         à votre prochaine consultation.\nDr Leroy",
        attachments: vec![NewAttachment {
            filename: "resultats-prise-de-sang.txt".into(),
            content_type: "text/plain".into(),
            content: "Glycémie à jeun : 0,95 g/L (0,70 - 1,10)\nCholestérol total : 1,85 g/L\n"
                .as_bytes()
                .to_vec(),
        }],
        sender_name: &leroy.display_name(),
        },
        &ctx,
    )
    .await?;
    let now = SystemClock.now();
    let at = |days: i64, hour: u8, minute: u8| -> Result<carnet_domain::Timestamp> {
        let d = paris_date(now.plus_seconds(days * 86_400)).context("date")?;
        let nine = morning_of(d).context("date")?;
        Ok(nine.plus_seconds((i64::from(hour) - 9) * 3600 + i64::from(minute) * 60))
    };
    let me = Actor::Holder { id: camille };
    let event =
        |kind, title: &str, start, location: Option<&str>, recurrence, reminders: Vec<u32>| EventInput {
            kind,
            title: title.into(),
            start,
            end: None,
            location: location.map(str::to_string),
            notes: None,
            recurrence,
            reminders,
        };
    gate.add_event(
        camille,
        &me,
        event(
            EventKind::Appointment,
            "Dentiste, Dr Garnier",
            at(10, 14, 30)?,
            Some("12 rue des Lilas, Lyon"),
            None,
            vec![1440],
        ),
        "",
        &ctx,
    )
    .await?;
    gate.add_event(
        camille,
        &me,
        event(
            EventKind::Treatment,
            "Séance de kinésithérapie",
            at(2, 18, 0)?,
            None,
            Some(Recurrence {
                frequency: Frequency::Weekly,
                interval: 1,
                count: Some(6),
                until: None,
            }),
            vec![60],
        ),
        "",
        &ctx,
    )
    .await?;
    let petit = &pros[1];
    gate.add_event(
        camille,
        &petit.actor(),
        event(
            EventKind::Appointment,
            "IRM du genou",
            at(21, 8, 15)?,
            Some("Hôpital de la Démo, imagerie"),
            None,
            vec![1440],
        ),
        &format!("Dr {} {}", petit.given_name, petit.family_name),
        &ctx,
    )
    .await?;
    Ok(())
}

/// RB-1: about 30 reimbursement lines over the last 24 months for Camille, fewer for Lucas and
/// Inès, filed through the gate as the insurer's feed would (traced as the feed).
/// The referencing workflow's three accounts and one referenced app, taken through every step
/// (CA-2), so the catalogue shows something and an app can be tried: "Tensio", a blood-pressure
/// diary whose convention allows measurements and profile (summaries) and care plans, with
/// redirect URIs on the loopback (port 8765).
async fn seed_catalogue(store: &Store, logins: &mut DemoLogins) -> Result<()> {
    use carnet_domain::access::Category;
    use carnet_domain::catalogue::{
        Application, Convention, Declaration, ReferencingRole, RequestedCategory, ServiceCategory, Step,
        default_criteria,
    };
    let criteria = default_criteria();
    let (publisher, pt) = store
        .create_referencing_account(
            ReferencingRole::Publisher,
            "Tensio SAS (éditeur de démonstration)",
        )
        .await?;
    let (commission, ct) = store
        .create_referencing_account(ReferencingRole::Commission, "Commission de référencement (démo)")
        .await?;
    let (minister, mt) = store
        .create_referencing_account(ReferencingRole::DecisionMaker, "Décision ministérielle (démo)")
        .await?;
    let app = Application {
        name: "Tensio — carnet de tension".into(),
        description: "Relevez votre tension et votre pouls à domicile ; Tensio les range dans votre profil \
                      médical et vous rappelle vos rendez-vous de suivi."
            .into(),
        category: ServiceCategory::Prevention,
        redirect_uris: vec![
            "http://127.0.0.1:8765/callback".into(),
            "http://localhost:8765/callback".into(),
        ],
        requested: vec![
            RequestedCategory {
                category: Category::Summaries,
                why: "Enregistrer et afficher vos mesures de tension et de pouls.".into(),
            },
            RequestedCategory {
                category: Category::CarePlans,
                why: "Vous rappeler vos rendez-vous de suivi.".into(),
            },
        ],
        declarations: criteria
            .iter()
            .map(|c| Declaration {
                criterion: c.id.clone(),
                complies: true,
                evidence: "Dossier de démonstration".into(),
            })
            .collect(),
    };
    let svc = store.submit_service(&publisher, app, &criteria).await?;
    for c in &criteria {
        let step = Step::CriterionReviewed {
            criterion: c.id.clone(),
            satisfied: true,
            comment: String::new(),
        };
        store
            .apply_service_step(&commission, &svc.client_id, &step, &criteria)
            .await?;
    }
    let opinion = Step::Opinion {
        favourable: true,
        comment: "Conforme aux référentiels d'interopérabilité, de sécurité et d'éthique.".into(),
    };
    store
        .apply_service_step(&commission, &svc.client_id, &opinion, &criteria)
        .await?;
    let now = store.now();
    let approve = Step::Approved {
        convention: Convention {
            categories: vec![Category::Summaries, Category::CarePlans],
            starts: now.plus_seconds(-86_400),
            ends: now.plus_seconds(3 * 365 * 86_400),
            withdrawal_terms:
                "Retrait possible à tout moment en cas de manquement ; préavis d'un mois sinon.".into(),
        },
    };
    store
        .apply_service_step(&minister, &svc.client_id, &approve, &criteria)
        .await?;
    logins.referencing = vec![
        ("publisher".into(), pt),
        ("commission".into(), ct),
        ("decision_maker".into(), mt),
    ];
    logins.demo_app = Some(svc.client_id);
    Ok(())
}

async fn seed_reimbursements(store: &Store, ins: &[&String]) -> Result<()> {
    use carnet_domain::reimbursement::{RawReimbursementLine, format_amount};
    // (type, act code, label, professional, RPPS/FINESS, paid, reimbursed) in cents.
    const CARE: [(&str, &str, &str, &str, &str, i64, i64); 8] = [
        (
            "consultation",
            "G",
            "Consultation de médecine générale",
            "Dr Claire LEROY",
            "10000000001",
            3000,
            2000,
        ),
        (
            "pharmacy",
            "PH7",
            "Médicaments remboursés à 65 %",
            "Pharmacie de la Démo",
            "750000002",
            2460,
            1599,
        ),
        (
            "biology",
            "B",
            "Analyses de biologie médicale",
            "Laboratoire Démo Analyses",
            "750000003",
            4120,
            2472,
        ),
        (
            "imaging",
            "ZCQK002",
            "Échographie abdominale",
            "Dr Julien PETIT",
            "10000000002",
            5670,
            3969,
        ),
        (
            "paramedical",
            "AMI",
            "Soins infirmiers",
            "Sophie MOREAU",
            "10000000003",
            1580,
            948,
        ),
        (
            "dental",
            "HBJD001",
            "Détartrage",
            "Dr Nadia BENALI",
            "",
            4338,
            3037,
        ),
        (
            "optical",
            "LEN",
            "Verres correcteurs",
            "Optique de la Démo",
            "",
            18000,
            540,
        ),
        (
            "hospital",
            "GHS",
            "Séjour hospitalier (forfait)",
            "Hôpital de la Démo",
            "750000001",
            80000,
            64000,
        ),
    ];
    let gate = carnet_store::gate::Gate::new(
        store.clone(),
        carnet_domain::access::HabilitationMatrix::default_matrix(),
    );
    let now = store.now();
    let mut lines = Vec::new();
    for (p, ins) in ins.iter().enumerate() {
        let count = [30u64, 14, 8][p.min(2)];
        for i in 0..count {
            // Spread over about 23 months, never in the future; a fixed mix of care types.
            let days_ago = 3 + i * 700 / count + (i * 7) % 11;
            let k = ((i * 5 + p as u64 * 3) % 17) as usize;
            let (care, code, label, pro, pro_id, paid, back) = CARE[match k {
                0..=5 => 0,
                6..=9 => 1,
                10..=11 => 2,
                12 => 3,
                13..=14 => 4,
                15 => 5,
                _ => 6 + (i as usize % 2),
            }];
            let date = now.plus_seconds(-(days_ago as i64) * 86_400);
            let line = RawReimbursementLine {
                ins: ins.to_string(),
                line_id: format!("DEMO-{p}-{i:03}"),
                date_of_care: date.to_rfc3339()[..10].to_string(),
                type_of_care: care.into(),
                act_code: code.into(),
                act_label: label.into(),
                professional_name: pro.into(),
                professional_id: pro_id.into(),
                amount_paid: format_amount(paid + (i as i64 % 3) * 150),
                amount_reimbursed: format_amount(back + (i as i64 % 3) * 100),
            }
            .validate(now)
            .map_err(|e| anyhow::anyhow!("demo reimbursements: {e}"))?;
            lines.push((i + 1, line));
        }
    }
    let report = gate.import_reimbursements(lines).await?;
    if !report.rejected.is_empty() {
        anyhow::bail!("demo reimbursements rejected: {:?}", report.rejected);
    }
    Ok(())
}

pub fn print_welcome(addr: SocketAddr, operator_token: &str, logins: &DemoLogins) {
    println!();
    println!("  Carnet demo is running: http://{addr}/");
    println!("  Web interface: http://{addr}/connexion (holders), http://{addr}/pro (professionals)");
    println!();
    println!("  Holder accounts (password + a one-time code shown at http://{addr}/demo/outbox):");
    for (login, password) in &logins.accounts {
        println!("    {login:<40} {password}");
    }
    println!("    (camille.martin represents her children Inès and Hugo)");
    if let Some((ins, code, email)) = &logins.to_activate {
        println!("  To try an activation (LC-4): INS {ins}, provisional code {code} ({email})");
    }
    println!();
    println!("  Log in with the API:");
    println!(
        "    curl -c jar -H 'Content-Type: application/json' -d '{{\"login\":\"{}\",\"password\":\"{}\"}}' http://{addr}/api/v1/auth/login",
        logins.accounts.first().map_or("", |a| a.0.as_str()),
        DEMO_PASSWORD
    );
    println!(
        "    then POST /api/v1/auth/verify {{\"challenge\":\"...\",\"code\":\"......\"}} and GET /api/v1/me"
    );
    println!("  Professionals (demo login: POST /api/v1/pro/demo-login {{\"rpps\":\"...\"}}):");
    for (rpps, who) in &logins.professionals {
        println!("    {rpps}  {who}");
    }
    if let Some(app) = &logins.demo_app {
        println!(
            "  Referenced app \"Tensio\" (CA-3): client_id {app}, redirect http://127.0.0.1:8765/callback;"
        );
        println!(
            "    catalogue at http://{addr}/catalogue, discovery at http://{addr}/.well-known/smart-configuration"
        );
    }
    if !logins.referencing.is_empty() {
        println!("  Referencing workflow accounts (bearer tokens for /api/v1/referencing/...):");
        for (role, token) in &logins.referencing {
            println!("    {role:<16} {token}");
        }
    }
    println!("  Operator API token: {operator_token}");
    println!("  Stop with Ctrl-C.");
    println!();
}
