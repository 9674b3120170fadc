//! `carnet`: the one binary. Subcommands start the server, the demo, run migrations and the
//! operators' maintenance tasks. Errors here are `anyhow`: they end the process with a message
//! that names the problem.

mod bench;
mod config;
mod demo;
mod import;
mod jobs;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use carnet_domain::SystemClock;
use carnet_store::datadir::{self, StoreSettings};
use clap::{Args, Parser, Subcommand};

use crate::config::Config;

/// mimalloc instead of the system allocator: glibc's malloc/free were ~8 % of the server's time
/// under the FHIR load (BENCHMARKS.md), and it returns memory to the system more readily.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "carnet",
    version,
    about = "Carnet — a personal health space (espace numérique de santé) with its shared medical record.",
    long_about = "Carnet — a personal health space (espace numérique de santé) with its shared medical record.\n\n\
Quick start:\n  carnet demo                      start a demo on http://127.0.0.1:8080 with sample data\n  \
carnet serve --data-dir /srv/carnet   run a real instance (SQLite by default)\n\n\
Settings come, in increasing priority, from built-in defaults, a TOML file (--config), environment \
variables CARNET_* (e.g. CARNET_DATABASE_URL, CARNET_S3__BUCKET) and command-line flags. \
See docs/operations.md for PostgreSQL, S3 and scale-out deployments."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Default)]
pub struct GlobalArgs {
    /// TOML configuration file.
    #[arg(long, global = true, env = "CARNET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory: SQLite files, master key, local blobs.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Main database URL (default: SQLite in the data directory), e.g. postgres://carnet@db/carnet.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Key vault database URL (default: SQLite keys.db in the data directory). Keep it apart
    /// from the main database so backups of the data hold no keys.
    #[arg(long, global = true)]
    pub keys_url: Option<String>,
    /// Log format: "pretty" for people, "json" for log collectors.
    #[arg(long, global = true, value_parser = ["pretty", "json"])]
    pub log_format: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080 (port 0 picks a free port).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run a demo server with fresh sample data (default 127.0.0.1:8080, ./carnet-data).
    Demo {
        #[arg(long)]
        listen: Option<String>,
    },
    /// Create and initialise a data directory (master key, databases), then exit.
    Init,
    /// Apply pending database migrations, then exit (the server also does it at start).
    Migrate,
    /// Check the access traces (AC-7, S-5): every holder's hash chain, entry by entry, and the
    /// signed Merkle checkpoints over the chains' heads. Exits with an error if any entry was
    /// edited, removed (the newest ones included) or reordered, or a checkpoint was altered or
    /// removed.
    VerifyTraces {
        /// A checkpoint kept from GET /api/v1/transparency/checkpoint (its JSON, as saved):
        /// the database must still hold it, signed by the same key. Repeatable.
        #[arg(long, value_name = "FILE")]
        published: Vec<PathBuf>,
    },
    /// Import data from the insurer.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Operators' maintenance tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Mint a bearer token for a named actor, for scripts and tests of the API and the FHIR
    /// endpoint. It needs what the server needs (the databases and the master key): run it
    /// where the server's key is; anywhere else it is refused. The token is an ordinary session
    /// (same expiry, revocable by logging out), and what it does is traced as that actor.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Load-test tools (issue 10).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Fill the configured databases with synthetic holders for load tests: N spaces from a
    /// synthetic roster (bulk import; idempotent, so a larger N adds the difference), one in
    /// `--every` activated with documents of several sizes, profile entries, a year of
    /// measurements and a professional's read — all through the gate, traced. Synthetic people
    /// only (INS of department 99, names BENCH…).
    Populate {
        /// Number of spaces.
        #[arg(long, default_value_t = 100_000)]
        holders: u64,
        /// One space in this many gets records (0: none).
        #[arg(long, default_value_t = 20)]
        every: u64,
        /// Documents per space with records (1 KiB, 16 KiB and 200 KiB, cycling).
        #[arg(long, default_value_t = 3)]
        documents: usize,
        /// Spaces filled at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Gives the spaces with records an e-mail address in this domain (`bench{n}@domain`).
        #[arg(long)]
        email_domain: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// A professional of the directory, by RPPS number.
    Professional { rpps: String },
    /// A holder, by INS (their space must be open or activated).
    Holder { ins: String },
}

#[derive(Subcommand, Debug)]
enum ImportCommand {
    /// Create the spaces of insured people from a roster: CSV with a header line (columns ins,
    /// birth_name, used_name, given_names, sex, birth_date, birth_place, address, email, phone,
    /// representative_ins, representative_kind, card_serial) or a FHIR Bundle of Patient (.json).
    /// Idempotent on the INS.
    Roster {
        file: PathBuf,
        /// Write every rejected line, with its reason, to this CSV file.
        #[arg(long)]
        rejects: Option<PathBuf>,
    },
    /// Import the directory of professionals: CSV with a header line (columns rpps, family_name,
    /// given_name, profession, specialty, role = care | regulation | occupational, finess,
    /// organisation_name). Professions are those of the habilitation matrix. Idempotent.
    Professionals { file: PathBuf },
    /// LC-8: file the documents of former DMPs in their holders' spaces, from an XDS-style
    /// manifest: CSV with a header line (columns ins, unique_id, file, mime, title, class,
    /// type_code, event_date, creation_time, author_rpps, author_name, organisation,
    /// confidentiality, sha256, size; `file` relative to the manifest's directory). Spaces whose
    /// holder objected, closed or erased receive nothing. Idempotent on (INS, unique_id).
    Legacy {
        manifest: PathBuf,
        /// Write every rejected line, with its reason, to this CSV file.
        #[arg(long)]
        rejects: Option<PathBuf>,
    },
    /// RB-1: file the insurer's reimbursement feed in the holders' spaces: CSV with a header
    /// line (columns ins, line_id, date_of_care, type_of_care, act_code, act_label,
    /// professional_name, professional_id, amount_paid, amount_reimbursed; comma or semicolon)
    /// or a FHIR Bundle of ExplanationOfBenefit, told by content. Dates of care within the last
    /// 24 months; spaces whose holder objected, closed or erased receive nothing. Idempotent on
    /// (INS, line_id).
    Reimbursements {
        file: PathBuf,
        /// Write every rejected line, with its reason, to this CSV file.
        #[arg(long)]
        rejects: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Generate a new master key and re-wrap every holder's data key with it (data untouched).
    RotateMasterKey,
    /// Re-wrap data keys with the active master key (after changing CARNET_MASTER_KEY to "NEW,OLD").
    RewrapKeys,
    /// Read every stored blob and check its SHA-256.
    VerifyBlobs,
    /// Run one pass of the lifecycle job now (opening spaces whose opposition window ended,
    /// erasing archives older than 10 years, majority). The server runs it on its own.
    RunJobs,
    /// Sign a checkpoint over the access traces' chain heads that moved since the last one
    /// now, and print it (AC-7). The server does it on each run of its jobs.
    CheckpointTraces,
    /// Delete blobs no row references (left by interrupted uploads).
    GcBlobs {
        /// Only blobs older than this many seconds (younger ones may be uploads in flight).
        #[arg(long, default_value_t = 3600)]
        min_age: i64,
    },
    /// Export the letters waiting for the post (LC-2: no e-mail address, or the e-mail failed)
    /// as a print batch: one PDF per letter and a manifest, in a new directory under `--out`;
    /// the letters are then marked sent. Run it daily and hand the directory to the print
    /// service.
    PrintLetters {
        /// Where the batch's directory is created.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Threads for blocking work (blob files and their `fsync`s): tokio's default, 512, let 256
/// clients of the mixed load keep ~80 of them alive, each with its allocator heap — 71 MiB more
/// at the peak than with 32 (measured with the mixed load), for the same throughput. Blocking
/// tasks beyond these wait for a thread.
const BLOCKING_THREADS: usize = 32;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let listen = match &cli.command {
        Command::Serve { listen } | Command::Demo { listen } => listen.clone(),
        _ => None,
    };
    let cfg = Config::load(&cli.global, listen)?;
    init_logging(&cfg);
    match cli.command {
        Command::Serve { .. } => serve(cfg, false).await,
        Command::Demo { .. } => {
            demo::prepare(&cfg)?;
            serve(cfg, true).await
        }
        Command::Init => {
            std::fs::create_dir_all(&cfg.store.data_dir)
                .with_context(|| format!("creating {}", cfg.store.data_dir.display()))?;
            let store = open(&cfg.store).await?;
            store.db().close().await;
            println!("initialised {}", cfg.store.data_dir.display());
            println!(
                "back up {} apart from the data: without it nothing can be read",
                cfg.store.key_file().display()
            );
            Ok(())
        }
        Command::Migrate => {
            let store = open(&cfg.store).await?;
            store.db().close().await;
            println!("database schema is up to date");
            Ok(())
        }
        Command::VerifyTraces { published } => {
            let mut kept = Vec::new();
            for file in &published {
                let text =
                    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
                let c: carnet_store::traces::checkpoint::PublishedCheckpoint = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a checkpoint saved from the API", file.display()))?;
                kept.push(c);
            }
            let store = open(&cfg.store).await?;
            let mut r = store.verify_traces().await?;
            for c in &kept {
                r.problems.extend(store.verify_published_checkpoint(c).await?);
            }
            store.db().close().await;
            for p in &r.problems {
                println!("PROBLEM {p}");
            }
            println!(
                "{} signed checkpoint(s) checked, {} kept checkpoint(s) compared",
                r.checkpoints,
                kept.len()
            );
            println!(
                "{} holder chain(s), {} trace(s) checked, {} problem(s)",
                r.holders,
                r.entries,
                r.problems.len()
            );
            if !r.problems.is_empty() {
                anyhow::bail!(
                    "the access traces were tampered with: {} problem(s)",
                    r.problems.len()
                );
            }
            Ok(())
        }
        Command::Import(ImportCommand::Roster { file, rejects }) => {
            let store = open(&cfg.store).await?;
            let r = import::roster(&store, &file, rejects.as_deref()).await;
            store.db().close().await;
            r.map(|_| ())
        }
        Command::Import(ImportCommand::Professionals { file }) => {
            let store = open(&cfg.store).await?;
            let matrix = carnet_domain::access::HabilitationMatrix::default_matrix();
            let r = import::professionals(&store, &file, &matrix).await;
            store.db().close().await;
            r.map(|_| ())
        }
        Command::Import(ImportCommand::Legacy { manifest, rejects }) => {
            let store = open(&cfg.store).await?;
            let gate = carnet_store::gate::Gate::new(
                store.clone(),
                carnet_domain::access::HabilitationMatrix::default_matrix(),
            );
            let limit = u64::try_from(cfg.document_limit_mib)
                .unwrap_or(u64::MAX)
                .saturating_mul(1024 * 1024);
            let r = import::legacy(&gate, &manifest, rejects.as_deref(), limit).await;
            store.db().close().await;
            r.map(|_| ())
        }
        Command::Import(ImportCommand::Reimbursements { file, rejects }) => {
            let store = open(&cfg.store).await?;
            let gate = carnet_store::gate::Gate::new(
                store.clone(),
                carnet_domain::access::HabilitationMatrix::default_matrix(),
            );
            let r = import::reimbursements(&gate, &file, rejects.as_deref()).await;
            store.db().close().await;
            r.map(|_| ())
        }
        Command::Admin(a) => admin(cfg, a).await,
        Command::Bench(BenchCommand::Populate {
            holders,
            every,
            documents,
            concurrency,
            email_domain,
        }) => {
            let store = open(&cfg.store).await?;
            let r = bench::populate(
                &store,
                &bench::Options {
                    holders,
                    every,
                    documents,
                    concurrency,
                    email_domain,
                },
            )
            .await;
            store.db().close().await;
            r.map(|_| ())
        }
        Command::Token(t) => {
            let store = open(&cfg.store).await?;
            let token = match t {
                TokenCommand::Professional { rpps } => {
                    if store.professional(&rpps).await?.is_none() {
                        anyhow::bail!("no professional {rpps} in the directory");
                    }
                    store.create_pro_session(&rpps).await?
                }
                TokenCommand::Holder { ins } => {
                    let ins = carnet_domain::Ins::parse(&ins).map_err(|e| anyhow::anyhow!("INS: {e}"))?;
                    let holder = store
                        .find_by_ins(&ins)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no space for this INS"))?;
                    match store.lifecycle(holder).await? {
                        carnet_domain::Lifecycle::Open { .. }
                        | carnet_domain::Lifecycle::Activated { .. } => {}
                        other => anyhow::bail!("the space is {}: no session", other.name()),
                    }
                    store.create_session(holder, "carnet-token-cli").await?.0
                }
            };
            store.db().close().await;
            println!("{token}");
            Ok(())
        }
    }
}

async fn open(settings: &StoreSettings) -> Result<carnet_store::Store> {
    datadir::open_store(settings, Arc::new(SystemClock))
        .await
        .with_context(|| format!("cannot open the data directory {}", settings.data_dir.display()))
}

async fn serve(cfg: Config, demo: bool) -> Result<()> {
    let store = open(&cfg.store).await?;
    let demo_logins = if demo {
        if cfg.store.database_url.is_some() {
            demo::ensure_empty(&store).await?;
        }
        Some(demo::seed(&store, &cfg.store.data_dir).await?)
    } else {
        None
    };
    let token = config::operator_token(&cfg)?;
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    // S-21: every link is built from the configured public URL, never from a request's Host;
    // a server on loopback only (a developer's, the demo's, the tests') is its own address.
    let (public_url, aliases) = match &cfg.public_url {
        Some(u) => (u.trim_end_matches('/').to_string(), Vec::new()),
        None => carnet_server::state::local_origins(addr).with_context(|| {
            format!(
                "public_url is required: this server listens on {addr}, which is not a loopback \
                 address, so the URL people reach it at must be configured (CARNET_PUBLIC_URL or \
                 public_url in carnet.toml, e.g. https://carnet.example.fr)"
            )
        })?,
    };
    let settings = carnet_server::ServerSettings {
        body_limit_bytes: cfg.body_limit_mib * 1024 * 1024,
        request_timeout: Duration::from_secs(cfg.request_timeout_seconds),
        document_limit_bytes: cfg.document_limit_mib * 1024 * 1024,
        demo,
        public_url: Some(public_url),
        aliases,
        trusted_proxies: carnet_server::client::parse_trusted(&cfg.trusted_proxies)
            .map_err(anyhow::Error::msg)?,
        messaging_domain: cfg.messaging_domain.clone(),
    };
    store.set_outbox_lease_seconds(cfg.outbox_lease_seconds);
    let jobs = jobs::spawn(store.clone(), Duration::from_secs(cfg.job_interval_seconds));
    let mut state = carnet_server::AppState::new(store, &token, settings);
    let mut providers = std::collections::BTreeMap::new();
    for (name, pc) in &cfg.oidc {
        providers.insert(
            name.clone(),
            carnet_server::oidc::OidcProvider::new(name, pc.clone())?,
        );
    }
    state.parts_mut().oidc = Arc::new(providers);
    let transport = if demo {
        let mailbox = carnet_server::mail::DemoMailbox::default();
        state.parts_mut().mailbox = Some(mailbox.clone());
        carnet_server::mail::Transport::demo(mailbox)
    } else {
        let mut t = carnet_server::mail::Transport::default();
        match &cfg.smtp_url {
            Some(url) => t = t.with_smtp(url, &cfg.mail_from)?,
            None => {
                tracing::warn!("no smtp_url configured: e-mails (login codes included) stay in the outbox")
            }
        }
        if let Some(url) = &cfg.sms_gateway_url {
            t = t.with_sms(carnet_server::mail::SmsGateway::new(
                url,
                cfg.sms_gateway_token.clone(),
            )?);
        }
        t
    };
    let delivery = carnet_server::mail::spawn_delivery(state.store.clone(), transport, state.wake.clone());
    tracing::info!(%addr, engine = ?state.store.db().engine(), "Carnet is listening");
    // This line is read by people and by the end-to-end tests.
    println!("Carnet listening on http://{addr}");
    if let Some(logins) = &demo_logins {
        demo::print_welcome(addr, &token, logins);
    }
    carnet_server::serve(
        listener,
        state,
        carnet_server::shutdown_signal(),
        Duration::from_secs(cfg.shutdown_grace_seconds),
    )
    .await
    .context("server failed")?;
    jobs.abort();
    delivery.abort();
    tracing::info!("stopped");
    Ok(())
}

async fn admin(cfg: Config, cmd: AdminCommand) -> Result<()> {
    match cmd {
        AdminCommand::RotateMasterKey => {
            let r = datadir::rotate_master_key(&cfg.store, Arc::new(SystemClock)).await?;
            println!(
                "master key rotated: {} -> {}; {} data key(s) re-wrapped. Back up the new key file now.",
                r.old_kids.join(","),
                r.new_kid,
                r.rewrapped
            );
        }
        AdminCommand::RewrapKeys => {
            let store = open(&cfg.store).await?;
            let n = store.vault().rewrap_all().await?;
            store.vault().retire_old_master_keys().await.ok();
            println!(
                "{n} data key(s) re-wrapped with master key {}",
                store.vault().ring().active().kid
            );
        }
        AdminCommand::VerifyBlobs => {
            let store = open(&cfg.store).await?;
            let r = store.verify_blobs().await?;
            for p in &r.problems {
                println!("PROBLEM {p}");
            }
            println!("{} blob(s) checked, {} problem(s)", r.checked, r.problems.len());
            if !r.problems.is_empty() {
                anyhow::bail!("blob verification found {} problem(s)", r.problems.len());
            }
        }
        AdminCommand::RunJobs => {
            let store = open(&cfg.store).await?;
            let r = jobs::run_once(&store).await?;
            println!(
                "lifecycle job: {} opened, {} erased, {} came of age",
                r.opened, r.erased, r.came_of_age
            );
        }
        AdminCommand::CheckpointTraces => {
            let store = open(&cfg.store).await?;
            let made = jobs::checkpoint_traces(&store).await?;
            if made.is_empty() {
                println!("no access trace since the last checkpoint: nothing to sign");
            } else {
                for c in &made {
                    println!(
                        "checkpoint {} signed: {} chain head(s), root {}",
                        c.number, c.size, c.root
                    );
                }
            }
            match store.published_checkpoint().await? {
                Some(p) => {
                    println!("latest checkpoint, as published at /api/v1/transparency/checkpoint:");
                    print!("{}", p.signed_note);
                    println!("public key {}", p.public_key);
                }
                None => println!("no checkpoint yet: no access has been traced"),
            }
            store.db().close().await;
        }
        AdminCommand::GcBlobs { min_age } => {
            let store = open(&cfg.store).await?;
            let r = store.collect_orphan_blobs(min_age).await?;
            println!("{} blob(s) examined, {} orphan(s) deleted", r.examined, r.deleted);
        }
        AdminCommand::PrintLetters { out } => {
            let store = open(&cfg.store).await?;
            let r = carnet_server::print::export_batch(&store, &out).await?;
            match &r.dir {
                Some(dir) => println!("{} letter(s) in {}", r.letters, dir.display()),
                None => println!("no letter waiting for the post"),
            }
            if r.without_address > 0 {
                println!(
                    "{} letter(s) kept in the outbox: no postal address on file",
                    r.without_address
                );
            }
        }
    }
    Ok(())
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cfg.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
