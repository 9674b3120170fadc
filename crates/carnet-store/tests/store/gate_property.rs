//! Property test of the gate as built (issue 4, AC-3..AC-8): random spaces (state, grants,
//! blocks, médecin traitant, hide-all) and random sequences of accesses by random actors go
//! through the real `Gate` on a real store. Each decision must equal the pure policy's
//! (`carnet_domain::access::decide`, itself checked against a separate reference model in
//! `carnet-domain/tests/domain/access_policy.rs`), and the trace must hold exactly one entry per
//! access by someone other than the holder and per denial, in order, with the decision and
//! reason, forming a valid chain; allowed accesses by professionals raise a notice.

use std::sync::Arc;

use carnet_domain::access::*;
use carnet_domain::{Clock, ManualClock, Timestamp};
use carnet_store::datadir::{StoreSettings, open_store};
use carnet_store::db::query::Query;
use carnet_store::gate::Gate;
use proptest::prelude::*;

const T0: i64 = 1_767_603_600;
const IDS: [&str; 3] = ["10000000001", "10000000002", "10000000003"];

fn pro(i: usize) -> ProfessionalId {
    ProfessionalId(IDS[i].into())
}

#[derive(Clone, Debug)]
struct Op {
    actor: usize,
    who: usize,
    profession: &'static str,
    action: Action,
    category: Category,
    masked: bool,
    emergency: bool,
}

fn arb_op() -> impl Strategy<Value = Op> {
    (
        0usize..5,
        0usize..3,
        prop::sample::select(vec!["medecin", "pharmacien", "infirmier"]),
        prop::sample::select(vec![Action::Read, Action::Create, Action::Update]),
        prop::sample::select(Category::ALL.to_vec()),
        any::<bool>(),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(actor, who, profession, action, category, masked, emergency)| Op {
                actor,
                who,
                profession,
                action,
                category,
                masked,
                emergency,
            },
        )
}

#[derive(Clone, Debug)]
struct Space {
    state: &'static str,
    grants: Vec<(usize, Option<Vec<Category>>, bool)>,
    blocked: Vec<usize>,
    medecin_traitant: Option<usize>,
    hide_all: bool,
}

fn arb_space() -> impl Strategy<Value = Space> {
    (
        prop::sample::select(vec!["activated", "activated", "open", "closed", "opposed"]),
        prop::collection::vec(
            (
                0usize..3,
                prop::option::of(prop::collection::vec(
                    prop::sample::select(Category::ALL.to_vec()),
                    1..3,
                )),
                any::<bool>(),
            ),
            0..3,
        ),
        prop::collection::vec(0usize..3, 0..2),
        prop::option::of(0usize..3),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(state, grants, blocked, medecin_traitant, hide_all)| Space {
            state,
            grants,
            blocked,
            medecin_traitant,
            hide_all,
        })
}

fn actor_of(op: &Op, holder: carnet_domain::HolderId) -> Actor {
    match op.actor {
        0 => Actor::Holder { id: holder },
        1 | 2 => Actor::Professional {
            id: pro(op.who),
            profession: op.profession.into(),
            role: PracticeRole::Care,
        },
        3 => Actor::Establishment {
            id: OrganisationId(format!("75000000{}", op.who)),
        },
        _ => Actor::App {
            id: AppId(format!("app-{}", op.who)),
            space: None,
            by_representative: false,
        },
    }
}

fn run_case(space: Space, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
        let store = open_store(&StoreSettings::new(dir.path()), Arc::new(clock.clone()))
            .await
            .unwrap();
        let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
        let h = store.create_holder(space.state, b"{}").await.unwrap();
        let policy = gate
            .holder_side(h, &Actor::Holder { id: h })
            .await
            .unwrap()
            .expect("the holder's own space")
            .update_access_policy(|p| {
                p.grants = space
                    .grants
                    .iter()
                    .map(|(who, cats, app)| Grant {
                        grantee: if *app {
                            Grantee::App {
                                id: AppId(format!("app-{who}")),
                            }
                        } else {
                            Grantee::Professional { id: pro(*who) }
                        },
                        categories: cats.clone(),
                        until: None,
                        express: false,
                        basis: Default::default(),
                    })
                    .collect();
                p.blocked = space.blocked.iter().map(|b| pro(*b)).collect();
                p.medecin_traitant = space.medecin_traitant.map(pro);
                p.hide_all = space.hide_all;
            })
            .await
            .unwrap();
        let lifecycle = store.lifecycle(h).await.unwrap();
        let facts_of_space = policy.facts(lifecycle);
        let matrix = HabilitationMatrix::default_matrix();
        let mut expected = Vec::new();
        let mut notified = false;
        for (n, op) in ops.iter().enumerate() {
            let actor = actor_of(op, h);
            let item = ItemFacts {
                category: op.category,
                author: Author::Holder,
                masked: op.masked,
                hidden_from_representatives: false,
                visible_to_holder: true,
            };
            let ctx = Context {
                emergency: op.emergency.then(|| "malaise grave".to_string()),
            };
            let item_id = format!("document/{n}");
            let d = gate
                .check(h, &actor, op.action, &item_id, &item, &ctx)
                .await
                .unwrap();
            let want = decide(
                &actor,
                op.action,
                &item,
                &facts_of_space,
                &matrix,
                &ctx,
                clock.now(),
            );
            prop_assert_eq!(d, want, "op {:?}", op);
            let is_holder = matches!(actor, Actor::Holder { .. });
            // A state with no space (opposed, erased...) has no chain to trace into (AC-8).
            if (!is_holder || !d.allowed) && d.reason != Reason::NoSpace {
                expected.push((
                    actor.clone(),
                    op.action,
                    item_id.clone(),
                    d.allowed,
                    d.reason,
                    d.emergency,
                ));
            }
            if d.allowed
                && matches!(
                    actor,
                    Actor::Professional { .. } | Actor::Establishment { .. } | Actor::App { .. }
                )
            {
                notified = true;
            }
        }
        let mut traces = store.traces_of(h, None, 1000).await.unwrap();
        traces.reverse();
        let got: Vec<_> = traces
            .iter()
            .map(|t| {
                (
                    t.entry.actor.clone(),
                    t.entry.action,
                    t.entry.item.clone(),
                    t.entry.allowed,
                    t.entry.reason,
                    t.entry.emergency,
                )
            })
            .collect();
        prop_assert_eq!(
            &got,
            &expected,
            "every decision traced, in order, with its reason"
        );
        let report = store.verify_traces().await.unwrap();
        prop_assert!(report.problems.is_empty(), "{:?}", report.problems);
        let queued = store
            .outbox_of(h)
            .await
            .unwrap()
            .iter()
            .any(|m| m.0.contains("access"));
        prop_assert_eq!(queued, notified, "the holder is told of allowed accesses (AC-6)");
        store.db().close().await;
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn every_decision_is_the_policys_and_is_traced(space in arb_space(), ops in prop::collection::vec(arb_op(), 1..16)) {
        run_case(space, ops)?;
    }
}

// ---------------------------------------------------------------------------------------------
// The random walk (issue 30): sequences of changes to one family's spaces — documents filed,
// held, released, masked; grants given, narrowed, ended; professionals blocked; the clock
// moved past a grant's end or the child's 18th birthday — with, after each, every caller's
// view compared with the model: whether they enter the space at all (`access::enters`, with
// the representation as the model knows it) and then `access::decide` on each document. A
// listing's total counts exactly the documents the model lets the caller read (S-2: what
// they may not see never changes it); a read by id, a mask and a stranger's attempt answer
// as the model says, a refusal exactly like a missing document (AC-8).
//
// `CARNET_RANDOM_WALK_CASES` sets the number of sequences (default 64 in the test suite).

use carnet_store::documents::{DocumentChange, DocumentFilter, NewDocument};

/// The 18th birthday of the child of the walk: 40 days after T0.
const MAJORITY_DAYS: i64 = 40;

#[derive(Clone, Debug)]
enum Step {
    /// Dr 0 (médecin traitant of nobody, granted the whole space) files a document.
    File {
        category: Category,
        hidden: bool,
        held: bool,
    },
    /// Dr 0 releases a held document (DM-6).
    Release(usize),
    /// The parent masks / unmasks a document (DM-5), decided as her read.
    Mask(usize, bool),
    /// The child's space grants professional `who` some categories, until `days` from now.
    Grant {
        who: usize,
        categories: Option<Vec<Category>>,
        days: Option<i64>,
    },
    Revoke(usize),
    Block(usize),
    /// The app is connected (by the parent), or its grant withdrawn.
    App(bool),
    /// MI-5: the child invites the stranger as a carer for some categories, until `days` from
    /// now, and the stranger accepts the code; or (`None`) the child ends it.
    Carer(Option<(Option<Vec<Category>>, Option<i64>)>),
    Advance(i64),
}

fn arb_step() -> impl Strategy<Value = Step> {
    let cat = prop::sample::select(vec![
        Category::Reports,
        Category::Prescriptions,
        Category::Imaging,
        Category::HolderDocuments,
    ]);
    prop_oneof![
        4 => (cat.clone(), prop::bool::weighted(0.3), prop::bool::weighted(0.3))
            .prop_map(|(category, hidden, held)| Step::File { category, hidden, held }),
        1 => (0usize..8).prop_map(Step::Release),
        1 => (0usize..8, any::<bool>()).prop_map(|(i, m)| Step::Mask(i, m)),
        2 => (1usize..3, prop::option::of(prop::collection::vec(cat.clone(), 1..3)), prop::option::of(1i64..30))
            .prop_map(|(who, categories, days)| Step::Grant { who, categories, days }),
        1 => (1usize..3).prop_map(Step::Revoke),
        1 => (1usize..3).prop_map(Step::Block),
        1 => any::<bool>().prop_map(Step::App),
        2 => prop::option::of((prop::option::of(prop::collection::vec(cat.clone(), 1..3)), prop::option::of(1i64..30)))
            .prop_map(Step::Carer),
        2 => prop::sample::select(vec![1i64, 7, 20, 45]).prop_map(Step::Advance),
    ]
}

/// What the model knows of one document.
#[derive(Clone, Debug)]
struct DocModel {
    id: carnet_domain::DocumentId,
    category: Category,
    hidden: bool,
    visible_from: Timestamp,
    masked: bool,
}

impl DocModel {
    fn facts(&self, now: Timestamp) -> ItemFacts {
        ItemFacts {
            category: self.category,
            author: Author::Professional { id: pro(0) },
            masked: self.masked,
            hidden_from_representatives: self.hidden,
            visible_to_holder: now >= self.visible_from,
        }
    }
}

struct Walk {
    gate: Gate,
    clock: ManualClock,
    child: carnet_domain::HolderId,
    parent: carnet_domain::HolderId,
    stranger: carnet_domain::HolderId,
    majority: Timestamp,
    docs: Vec<DocModel>,
    /// The child's authorisation directory as the model keeps it (every change is made to
    /// it and, separately, to the store).
    policy: AccessPolicy,
    /// Answers compared with the model (for the record).
    checks: u64,
}

impl Walk {
    fn readers(&self) -> Vec<Actor> {
        let prof = |i: usize, profession: &str| Actor::Professional {
            id: pro(i),
            profession: profession.into(),
            role: PracticeRole::Care,
        };
        vec![
            Actor::Holder { id: self.child },
            Actor::Representative { id: self.parent },
            // A stranger who says she represents the child; and the parent as herself.
            Actor::Representative { id: self.stranger },
            Actor::Holder { id: self.parent },
            prof(0, "medecin"),
            prof(1, "medecin"),
            prof(2, "pharmacien"),
            Actor::App {
                id: AppId("app-walk".into()),
                space: Some(self.child),
                by_representative: true,
            },
            Actor::Operator { id: "support".into() },
            // MI-5: the stranger as the child's carer (when invited), the parent as one (never).
            Actor::Carer { id: self.stranger },
            Actor::Carer { id: self.parent },
        ]
    }

    /// Whether `actor` may read `doc` now, as the model says.
    async fn model_reads(&self, actor: &Actor, doc: &DocModel) -> bool {
        let now = self.clock.now();
        // The model's own rule of who enters the child's space (not the domain's `enters`).
        let enters = match actor {
            Actor::Holder { id } => *id == self.child,
            Actor::Representative { id } => *id == self.parent && now < self.majority,
            Actor::App { space, .. } => *space == Some(self.child),
            Actor::Carer { id } => *id != self.child,
            Actor::Professional { .. } | Actor::Establishment { .. } | Actor::Operator { .. } => true,
        };
        if !enters {
            return false;
        }
        let lifecycle = carnet_domain::Lifecycle::Activated {
            since: Timestamp::from_unix_seconds(T0),
        };
        decide(
            actor,
            Action::Read,
            &doc.facts(now),
            &self.policy.facts(lifecycle),
            &HabilitationMatrix::default_matrix(),
            &Context::default(),
            now,
        )
        .allowed
    }

    async fn compare(&mut self) -> Result<(), TestCaseError> {
        let ctx = Context::default();
        let filter = DocumentFilter {
            limit: 100,
            ..DocumentFilter::default()
        };
        for actor in self.readers() {
            let mut expected = 0;
            for doc in &self.docs {
                let want = self.model_reads(&actor, doc).await;
                expected += usize::from(want);
                let got = self.gate.read_document(self.child, &actor, doc.id, &ctx).await;
                prop_assert_eq!(got.is_ok(), want, "read {:?} by {:?}", doc, actor);
                if let Err(e) = got {
                    prop_assert!(matches!(e, carnet_store::StoreError::NotFound), "{e:?}");
                }
                self.checks += 1;
            }
            let listed = self.gate.list_documents(self.child, &actor, &filter, &ctx).await;
            match listed {
                Ok(page) => {
                    prop_assert_eq!(page.total, expected, "total for {:?}", actor);
                    prop_assert_eq!(page.documents.len(), expected);
                }
                // No space for this caller: a listing is refused exactly like a missing one.
                Err(e) => {
                    prop_assert!(matches!(e, carnet_store::StoreError::NotFound), "{e:?}");
                    prop_assert_eq!(expected, 0, "refused a listing to {:?}", actor);
                }
            }
            self.checks += 1;
            // The history is the holder's and their current representative's to read.
            let history = self
                .gate
                .history(self.child, &actor, None, None, 10)
                .await
                .unwrap();
            let now = self.clock.now();
            let may = match &actor {
                Actor::Holder { id } => *id == self.child,
                Actor::Representative { id } => *id == self.parent && now < self.majority,
                _ => false,
            };
            prop_assert_eq!(history.is_some(), may, "history read by {:?}", actor);
            self.checks += 1;
        }
        Ok(())
    }

    /// One change to the directory, made to the model and to the store.
    async fn change_policy(&mut self, f: impl Fn(&mut AccessPolicy)) {
        f(&mut self.policy);
        let me = Actor::Holder { id: self.child };
        let side = self.gate.holder_side(self.child, &me).await.unwrap().unwrap();
        side.update_access_policy(f).await.unwrap();
    }

    async fn step(&mut self, s: &Step) {
        let ctx = Context::default();
        let now = self.clock.now();
        match s {
            Step::File {
                category,
                hidden,
                held,
            } => {
                let doctor = Actor::Professional {
                    id: pro(0),
                    profession: "medecin".into(),
                    role: PracticeRole::Care,
                };
                let v = self
                    .gate
                    .deposit_document(
                        self.child,
                        &doctor,
                        NewDocument {
                            title: Some(format!("Document {}", self.docs.len())),
                            class: Some(*category),
                            mime: "text/plain".into(),
                            hold_from_holder: *held,
                            hidden_from_representatives: *hidden,
                            author_name: "Dr Zéro".into(),
                            ..NewDocument::default()
                        },
                        b"contenu".to_vec(),
                        &ctx,
                    )
                    .await
                    .unwrap();
                self.docs.push(DocModel {
                    id: v.id,
                    category: *category,
                    hidden: *hidden,
                    visible_from: carnet_domain::document::visible_from(now, *held),
                    masked: false,
                });
            }
            Step::Release(i) => {
                let n = self.docs.len();
                if n == 0 {
                    return;
                }
                let doctor = Actor::Professional {
                    id: pro(0),
                    profession: "medecin".into(),
                    role: PracticeRole::Care,
                };
                let d = &mut self.docs[i % n];
                if self
                    .gate
                    .change_document(self.child, &doctor, d.id, DocumentChange::MakeVisible, &ctx)
                    .await
                    .is_ok()
                    && now < d.visible_from
                {
                    d.visible_from = now;
                }
            }
            Step::Mask(i, m) => {
                let n = self.docs.len();
                if n == 0 {
                    return;
                }
                let parent = Actor::Representative { id: self.parent };
                let doc = self.docs[i % n].clone();
                let want = self.model_reads(&parent, &doc).await;
                let got = self
                    .gate
                    .change_document(self.child, &parent, doc.id, DocumentChange::Mask(*m), &ctx)
                    .await;
                assert_eq!(got.is_ok(), want, "mask {doc:?}: {got:?}");
                if want {
                    self.docs[i % n].masked = *m;
                }
            }
            Step::Grant {
                who,
                categories,
                days,
            } => {
                let until = days.map(|d| now.plus_seconds(d * 86_400));
                self.change_policy(|p| {
                    p.grants
                        .retain(|g| g.grantee != (Grantee::Professional { id: pro(*who) }));
                    p.grants.push(Grant {
                        grantee: Grantee::Professional { id: pro(*who) },
                        categories: categories.clone(),
                        until,
                        express: false,
                        basis: Default::default(),
                    });
                })
                .await;
            }
            Step::Revoke(who) => {
                self.change_policy(|p| {
                    p.grants
                        .retain(|g| g.grantee != (Grantee::Professional { id: pro(*who) }))
                })
                .await;
            }
            Step::Block(who) => {
                self.change_policy(|p| {
                    if !p.blocked.contains(&pro(*who)) {
                        p.blocked.push(pro(*who))
                    }
                })
                .await;
            }
            Step::App(on) => {
                self.change_policy(|p| {
                    p.grants.retain(|g| !matches!(g.grantee, Grantee::App { .. }));
                    if *on {
                        p.grants.push(Grant {
                            grantee: Grantee::App {
                                id: AppId("app-walk".into()),
                            },
                            categories: None,
                            until: None,
                            express: false,
                            basis: Default::default(),
                        });
                    }
                })
                .await;
            }
            Step::Carer(offer) => {
                let me = Actor::Holder { id: self.child };
                let side = self.gate.holder_side(self.child, &me).await.unwrap().unwrap();
                let grantee = Grantee::Carer { id: self.stranger };
                self.policy.grants.retain(|g| g.grantee != grantee);
                match offer {
                    Some((categories, days)) => {
                        let until = days.map(|d| now.plus_seconds(d * 86_400));
                        let invitation =
                            carnet_domain::carer::Invitation::new(categories.clone(), until, now).unwrap();
                        let (code, _) = side.invite_carer(&invitation).await.unwrap();
                        let space = self
                            .gate
                            .accept_carer_invitation(self.stranger, &code)
                            .await
                            .unwrap();
                        assert_eq!(space, self.child);
                        self.policy.grants.push(Grant {
                            grantee,
                            categories: invitation.categories,
                            until,
                            express: false,
                            basis: Default::default(),
                        });
                    }
                    None => {
                        side.end_carer(self.stranger).await.unwrap();
                    }
                }
            }
            Step::Advance(days) => self.clock.advance_seconds(days * 86_400),
        }
    }
}

fn walk_case(
    rt: &tokio::runtime::Runtime,
    store: &carnet_store::Store,
    gate: &Gate,
    clock: &ManualClock,
    steps: Vec<Step>,
) -> Result<u64, TestCaseError> {
    rt.block_on(async {
        clock.set(Timestamp::from_unix_seconds(T0));
        let birth = time::OffsetDateTime::from_unix_timestamp(T0 + MAJORITY_DAYS * 86_400)
            .unwrap()
            .date()
            .replace_year(2008)
            .unwrap();
        let majority = carnet_domain::lifecycle::majority_at(birth);
        let child = store.create_holder("activated", b"{}").await.unwrap();
        let parent = store.create_holder("activated", b"{}").await.unwrap();
        let stranger = store.create_holder("activated", b"{}").await.unwrap();
        // The child's 18th birthday, as the roster import records it (MI-3).
        store
            .db()
            .writer()
            .execute(
                Query::new("UPDATE holders SET majority_at = $1 WHERE id = $2")
                    .binds((majority.as_micros(), child.as_uuid())),
                "test",
            )
            .await
            .map(|_| ())
            .unwrap();
        store.link_representative(child, parent, "parent").await.unwrap();
        let mut w = Walk {
            gate: gate.clone(),
            clock: clock.clone(),
            child,
            parent,
            stranger,
            majority,
            docs: Vec::new(),
            policy: AccessPolicy::default(),
            checks: 0,
        };
        // Dr 0 may file anything (a whole-space grant that never ends).
        w.change_policy(|p| {
            p.grants.push(Grant {
                grantee: Grantee::Professional { id: pro(0) },
                categories: None,
                until: None,
                express: false,
                basis: Default::default(),
            })
        })
        .await;
        for s in &steps {
            w.step(s).await;
            w.compare().await?;
        }
        Ok(w.checks)
    })
}

use crate::support::pg;

/// Runs the walk on SQLite, or on PostgreSQL (`postgres`; skipped without a database).
fn random_walk(postgres: bool) {
    let cases: u32 = std::env::var("CARNET_RANDOM_WALK_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_unix_seconds(T0));
    let Some((store, gate)) = rt.block_on(async {
        let mut settings = StoreSettings::new(dir.path());
        if postgres {
            let base = pg::pg_base()?;
            settings.database_url = Some(pg::pg_schema_url(&base).await);
            settings.keys_url = Some(pg::pg_schema_url(&base).await);
        }
        let store = open_store(&settings, Arc::new(clock.clone())).await.unwrap();
        let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
        Some((store, gate))
    }) else {
        eprintln!("CARNET_TEST_DATABASE_URL not set: the random walk on PostgreSQL is skipped");
        return;
    };
    let started = std::time::Instant::now();
    let checks = std::cell::Cell::new(0u64);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    let result = runner.run(&prop::collection::vec(arb_step(), 1..12), |steps| {
        checks.set(checks.get() + walk_case(&rt, &store, &gate, &clock, steps)?);
        Ok(())
    });
    if let Err(e) = result {
        panic!("the random walk differs from the model: {e}");
    }
    eprintln!(
        "random walk ({}): {cases} sequences, {} answers compared with the model, 0 differences, {:.1} s",
        if postgres { "PostgreSQL" } else { "SQLite" },
        checks.get(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_random_walk_of_a_familys_spaces_matches_the_model_sqlite_s1_s2_mi3() {
    random_walk(false);
}

#[test]
fn a_random_walk_of_a_familys_spaces_matches_the_model_postgres_s1_s2_mi3() {
    random_walk(true);
}
