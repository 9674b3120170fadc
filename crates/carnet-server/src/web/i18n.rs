//! The interface's words in French (the default) and English, in one place.
//!
//! The locale of a request is chosen by [`choose`]: the `lang` cookie set by the language
//! switch (`?lang=en` or `?lang=fr` on any page: the cookie is set and the browser is sent back
//! to the same path, no health data involved), else `Accept-Language`, else French. The
//! [`layer`] middleware runs each request in a task-local scope holding that locale, so every
//! page and message reads it with [`locale`] and [`t`] without threading it through handlers.

use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use carnet_domain::profile::{ProfileError, Section};

use crate::api::auth::{cookie, set_cookie};

/// The cookie holding the chosen language (`fr` or `en`).
pub const LANG_COOKIE: &str = "__Host-carnet_lang";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locale {
    Fr,
    En,
}

impl Locale {
    pub fn tag(self) -> &'static str {
        match self {
            Locale::Fr => "fr",
            Locale::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Locale> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fr" => Some(Locale::Fr),
            "en" => Some(Locale::En),
            _ => None,
        }
    }
}

tokio::task_local! {
    static LOCALE: Locale;
}

/// The locale of the request being served (French outside a request).
pub fn locale() -> Locale {
    LOCALE.try_with(|l| *l).unwrap_or(Locale::Fr)
}

/// Runs `f` with `l` as the current locale (for tests and benchmarks).
pub async fn with_locale<F: std::future::Future>(l: Locale, f: F) -> F::Output {
    LOCALE.scope(l, f).await
}

/// The language of a request: the cookie, else the best of `Accept-Language`, else French.
pub fn choose(headers: &HeaderMap) -> Locale {
    if let Some(l) = cookie(headers, LANG_COOKIE).and_then(Locale::parse) {
        return l;
    }
    let Some(accept) = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Locale::Fr;
    };
    let mut best: Option<(f32, Locale)> = None;
    for item in accept.split(',').take(20) {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let primary = tag.split('-').next().unwrap_or_default();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if let Some(l) = Locale::parse(primary)
            && q > 0.0
            && best.is_none_or(|(bq, _)| q > bq)
        {
            best = Some((q, l));
        }
    }
    best.map_or(Locale::Fr, |(_, l)| l)
}

/// The middleware: `?lang=xx` sets the cookie and redirects to the same path; otherwise the
/// request runs with its locale.
pub async fn layer(req: Request, next: Next) -> Response {
    if req.method() == Method::GET
        && let Some(l) = req.uri().query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "lang")
                .and_then(|(_, v)| Locale::parse(&v))
        })
    {
        let path = req.uri().path();
        // Only a path of this site (never "//host").
        let to = if path.starts_with('/') && !path.starts_with("//") {
            path
        } else {
            "/"
        };
        let mut r = super::see_other(to);
        if set_cookie(&mut r, LANG_COOKIE, l.tag(), "/", 365 * 24 * 3600).is_err() {
            return super::see_other("/");
        }
        return r;
    }
    let l = choose(req.headers());
    LOCALE.scope(l, next.run(req)).await
}

/// The word for `key` in the current locale (the key itself when unknown, which tests catch).
/// Words of one page, inline: the French, or the English in the English locale (pages whose
/// vocabulary is their own; shared words go through [`t`]).
pub fn fr_en(fr: &'static str, en: &'static str) -> &'static str {
    if locale() == Locale::En { en } else { fr }
}

pub fn t(key: &'static str) -> &'static str {
    let (fr, en) = words(key).unwrap_or((key, key));
    match locale() {
        Locale::Fr => fr,
        Locale::En => en,
    }
}

/// Why a profile entry or measurement was refused, in words a patient understands (PR-1..4).
/// Every kind of refusal is matched here, so a new one cannot reach a page unworded.
pub fn profile_error(e: &ProfileError) -> String {
    use carnet_domain::profile::{EntryError as E, MeasurementError as M};
    let w = |fr: &str, en: &str| fr_en_owned(fr, en);
    match e {
        ProfileError::Entry(e) => match e {
            E::TextTooLong | E::LabelOrCode => w(
                "Saisissez un libellé (500 caractères au plus).",
                "Enter a label (500 characters at most).",
            ),
            E::NoteTooLong => w(
                "La remarque est trop longue (4 000 caractères au plus).",
                "The note is too long (4,000 characters at most).",
            ),
            E::Date { .. } => w(
                "La date doit être une année (2020), un mois (05/2020) ou un jour (17/05/2020).",
                "The date is a year (2020), a month (05/2020) or a day (17/05/2020).",
            ),
            E::EndBeforeStart => w(
                "La date de fin précède la date de début.",
                "The end date is before the start date.",
            ),
            E::CodeOutOfSection { .. } => w(
                "Ce type de code ne convient pas à cette rubrique.",
                "This kind of code does not belong in this section.",
            ),
            E::Code { code, system } => match locale() {
                Locale::Fr => format!(
                    "Le code « {code} » n'est pas un code {} valide : vérifiez-le.",
                    system.name()
                ),
                Locale::En => format!(
                    "The code “{code}” is not a valid {} code: please check it.",
                    system.name()
                ),
            },
            E::VaccineNotJ07 => w(
                "Le code ATC d'un vaccin commence par J07 : vérifiez-le.",
                "A vaccine's ATC code starts with J07: please check it.",
            ),
            E::BloodGroup => w(
                "Choisissez un groupe sanguin dans la liste.",
                "Choose a blood group from the list.",
            ),
            E::OrganDonation => w(
                "Choisissez une des réponses proposées.",
                "Choose one of the answers.",
            ),
            E::QuestionMissing => w("Choisissez la question.", "Choose the question."),
            E::AnswerMissing => w("Saisissez votre réponse.", "Enter your answer."),
            E::ContactMissing | E::ContactName => {
                w("Saisissez le nom de la personne.", "Enter the person's name.")
            }
            E::ContactRole => w(
                "Choisissez : personne de confiance ou personne à prévenir.",
                "Choose: trusted person or person to notify.",
            ),
            E::ContactOutsideTrustedPeople => w(
                "Une personne ne s'ajoute que dans « Personnes de confiance ».",
                "A person is added only under “Trusted people”.",
            ),
        },
        ProfileError::Measurement(e) => match e {
            M::Code { .. } => w(
                "Choisissez une mesure dans la liste.",
                "Choose a measurement from the list.",
            ),
            M::Unit { .. } => w("Choisissez une unité proposée.", "Choose one of the units."),
            M::NotANumber => w(
                "Saisissez la valeur en chiffres, par exemple 72,5.",
                "Enter the value in figures, for example 72.5.",
            ),
            M::Implausible { measure: m, .. } => match locale() {
                Locale::Fr => format!(
                    "La valeur doit être comprise entre {} et {} {}.",
                    decimal(m.min),
                    decimal(m.max),
                    m.unit_words()
                ),
                Locale::En => format!("The value is between {} and {} {}.", m.min, m.max, m.unit()),
            },
            M::Instant(_) => w(
                "La date et l'heure de la mesure ne sont pas lisibles.",
                "The measurement's date and time cannot be read.",
            ),
            M::Future => w(
                "La date de la mesure ne peut pas être dans le futur.",
                "The measurement's date cannot be in the future.",
            ),
            M::Before1900 => w(
                "La date de la mesure est trop ancienne.",
                "The measurement's date is too old.",
            ),
        },
    }
}

/// "(3 fois)", "(3 times)": how often a line of the history happened in a row.
pub fn times(n: usize) -> String {
    match locale() {
        Locale::Fr => format!("({n} fois)"),
        Locale::En => format!("({n} times)"),
    }
}

/// A number as the current locale writes it (`72,5` in French).
pub fn decimal(x: f64) -> String {
    let s = x.to_string();
    match locale() {
        Locale::Fr => s.replace('.', ","),
        Locale::En => s,
    }
}

fn fr_en_owned(fr: &str, en: &str) -> String {
    if locale() == Locale::En { en } else { fr }.to_string()
}

/// A measure's name in the current locale ("Poids", "Weight").
pub fn measure_label(m: &carnet_domain::profile::Measure) -> &'static str {
    fr_en(m.label_fr, m.label_en)
}

/// A measure's unit in words, in the current locale ("battements par minute").
pub fn measure_unit(m: &carnet_domain::profile::Measure) -> &'static str {
    fr_en(m.unit_words(), m.unit_words_en())
}

/// An amount in euros as the current locale writes it: `1 234,50 €`, `€1,234.50`.
pub fn amount(cents: i64) -> String {
    match locale() {
        Locale::Fr => carnet_domain::reimbursement::format_amount_fr(cents),
        Locale::En => {
            let plain = carnet_domain::reimbursement::format_amount(cents);
            let (int, dec) = plain.split_once('.').unwrap_or((&plain, "00"));
            let (sign, digits) = match int.strip_prefix('-') {
                Some(d) => ("-", d),
                None => ("", int),
            };
            format!("{sign}€{}.{dec}", group(digits, ','))
        }
    }
}

/// Digits in groups of three (`1 234`, `1,234`).
pub fn group(digits: &str, sep: char) -> String {
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(ch);
    }
    out
}

/// A profile section's name in the current locale.
pub fn section_label(s: Section) -> &'static str {
    match locale() {
        Locale::Fr => s.label_fr(),
        Locale::En => match s {
            Section::Conditions => "Conditions and health topics",
            Section::Treatments => "Treatments",
            Section::Allergies => "Allergies",
            Section::Hospitalisations => "Hospital stays and operations",
            Section::FamilyHistory => "Family history",
            Section::Disabilities => "Disabilities",
            Section::Vaccinations => "Vaccinations",
            Section::BloodGroup => "Blood group",
            Section::AdvanceDirectives => "Advance directives",
            Section::TrustedPeople => "Trusted person and people to notify",
            Section::OrganDonation => "Organ donation",
            Section::Lifestyle => "Lifestyle",
            Section::Questionnaire => "Health questionnaire",
        },
    }
}

/// A page title (static, never data) in the current locale.
pub fn title(fr: &'static str) -> &'static str {
    if locale() == Locale::Fr {
        return fr;
    }
    match fr {
        "Accueil" => "Home",
        "Connexion" => "Log in",
        "Code de connexion" => "Login code",
        "Document" => "Document",
        "Documents" => "Documents",
        "Profil médical" => "Medical profile",
        "Remboursements" => "Reimbursements",
        "Catalogue de services" => "Service catalogue",
        "Autoriser une application" => "Authorise an application",
        "Historique des accès" => "Access history",
        "Autorisations" => "Authorisations",
        "Notifications" => "Notifications",
        "Changer d'espace" => "Switch space",
        "Espace professionnel" => "Professional space",
        "Dossier patient" => "Patient record",
        "Mon espace" => "My space",
        "Messagerie" => "Messages",
        "Conversation" => "Conversation",
        "Agenda" => "Health agenda",
        "Espace opérateur" => "Operators",
        "Activer mon espace" => "Activate my space",
        "Erreur" => "Error",
        "Vos aidants" => "Your carers",
        "M'opposer à la création de mon espace" => "Object to the creation of my space",
        "Aider un proche" => "Help someone close",
        "Vaccinations" => "Vaccinations",
        other => other,
    }
}

/// Every key with its French and English words.
fn words(key: &str) -> Option<(&'static str, &'static str)> {
    Some(match key {
        // Layout.
        "layout.skip" => ("Aller au contenu", "Skip to content"),
        "layout.footer" => (
            "Carnet, espace numérique de santé. Chaque accès à votre espace est tracé et vous en êtes informé.",
            "Carnet, personal health space. Every access to your space is traced and you are told about it.",
        ),
        "layout.logout" => ("Se déconnecter", "Log out"),
        "layout.menu" => ("Menu principal", "Main menu"),
        "layout.menu_button" => ("Menu", "Menu"),
        "layout.pro_menu" => ("Menu professionnel", "Professional menu"),
        "layout.space_of" => ("Espace de", "Space of"),
        "layout.acting_as" => (
            "vous agissez comme représentant·e :",
            "you are acting as a representative:",
        ),
        "layout.pro_space" => ("Espace professionnel :", "Professional space:"),
        "layout.language" => ("Langue", "Language"),
        "nav.home" => ("Accueil", "Home"),
        "nav.documents" => ("Documents", "Documents"),
        "nav.profile" => ("Profil médical", "Medical profile"),
        "nav.messages" => ("Messagerie", "Messages"),
        "login.first_visit" => ("Première visite ?", "First visit?"),
        "login.activate" => (
            "Activer mon espace avec le courrier reçu",
            "Activate my space with the letter I received",
        ),
        "home.messages_none" => ("Aucun message non lu.", "No unread message."),
        "home.messages_one" => ("1 message non lu.", "1 unread message."),
        "home.messages_many" => ("messages non lus.", "unread messages."),
        "home.see_messages" => ("Ouvrir la messagerie", "Open your messages"),
        "home.next_events" => ("Prochains rendez-vous", "Coming up"),
        "home.agenda_none" => (
            "Rien de prévu dans les deux mois qui viennent.",
            "Nothing planned in the next two months.",
        ),
        "home.see_agenda" => ("Voir l'agenda", "See the agenda"),
        "nav.agenda" => ("Agenda", "Agenda"),
        "nav.reimbursements" => ("Remboursements", "Reimbursements"),
        "nav.catalogue" => ("Services", "Services"),
        "nav.history" => ("Historique des accès", "Access history"),
        "nav.access" => ("Autorisations", "Authorisations"),
        "nav.notifications" => ("Notifications", "Notifications"),
        "nav.space" => ("Mon espace", "My space"),
        "nav.switch" => ("Changer d'espace", "Switch space"),
        "carer.title" => (
            "Vous consultez cet espace en tant qu'aidant",
            "You read this space as a carer",
        ),
        "carer.given" => (
            "Cette personne vous permet de consulter :",
            "This person lets you read:",
        ),
        "carer.not_shown" => (
            "Les autres documents, et ceux qu'elle a masqués, ne vous sont pas montrés. Vous ne pouvez rien ajouter, \
             modifier ni supprimer ; chacun de vos accès lui est signalé",
            "Other documents, and those they hid, are not shown to you. You cannot add, change or delete anything; \
             each of your accesses is shown to them",
        ),
        "layout.carer_as" => ("consulté par son aidant", "read by their carer"),
        "nav.pro_search" => ("Rechercher un patient", "Find a patient"),
        "error.title" => ("Impossible d'afficher cette page", "This page cannot be shown"),
        "error.back" => ("Retour à l'accueil", "Back to the home page"),
        // Home.
        "home.hello" => ("Bonjour", "Hello"),
        "home.news" => ("Quoi de neuf ?", "What's new?"),
        "home.nothing" => (
            "Rien de nouveau : aucun professionnel n'a accédé à cet espace.",
            "Nothing new: no professional has accessed this space.",
        ),
        "home.all_history" => ("Tout l'historique des accès", "The whole access history"),
        "home.docs_none" => ("Aucun document dans cet espace.", "No document in this space."),
        "home.docs_one" => ("1 document dans cet espace.", "1 document in this space."),
        "home.docs_many" => ("documents dans cet espace.", "documents in this space."),
        "home.see_docs" => ("Voir les documents", "See the documents"),
        "home.your_space" => ("Votre espace", "Your space"),
        "home.this_space" => ("Cet espace", "This space"),
        "nav.this_space" => ("Gérer cet espace", "Manage this space"),
        "home.profile_line" => (
            "maladies, traitements, allergies, mesures",
            "conditions, treatments, allergies, measurements",
        ),
        "home.reimbursements_line" => (
            "soins remboursés par l'Assurance Maladie, totaux, export",
            "care reimbursed by the health insurance, totals, export",
        ),
        "home.access_line" => ("qui peut consulter cet espace", "who may read this space"),
        "home.notif_line" => ("comment vous êtes prévenu·e", "how you are told"),
        "home.space_line" => (
            "exporter vos données, fermer votre espace",
            "export your data, close your space",
        ),
        "landing.title" => (
            "Carnet, votre espace numérique de santé",
            "Carnet, your personal health space",
        ),
        "landing.demo" => (
            "Instance de démonstration : les données sont fictives et recréées à chaque démarrage.",
            "Demonstration instance: the data is fictitious and recreated at every start.",
        ),
        "landing.intro" => (
            "Vos documents, votre profil médical, vos messages et vos rendez-vous, partagés avec les \
             professionnels que vous choisissez. Chaque accès est tracé et vous en êtes informé.",
            "Your documents, medical profile, messages and appointments, shared with the \
             professionals you choose. Every access is traced and you are told about it.",
        ),
        "landing.login" => ("Se connecter", "Log in"),
        "landing.pro" => ("Espace professionnel", "Professional space"),
        // Login.
        "login.title" => ("Connexion à votre espace santé", "Log in to your health space"),
        "login.code_title" => ("Code de connexion", "Login code"),
        "login.id" => ("Identifiant (adresse e-mail)", "Login (e-mail address)"),
        "login.password" => ("Mot de passe", "Password"),
        "login.continue" => ("Continuer", "Continue"),
        "login.pro" => (
            "Vous êtes un professionnel de santé ?",
            "Are you a health professional?",
        ),
        "login.sent_sms" => (
            "Un code à 6 chiffres vient de vous être envoyé par SMS.",
            "A 6-digit code has just been sent to you by text message.",
        ),
        "login.sent_email" => (
            "Un code à 6 chiffres vient de vous être envoyé par e-mail.",
            "A 6-digit code has just been sent to you by e-mail.",
        ),
        "login.totp" => (
            "Saisissez le code à 6 chiffres affiché par votre application d'authentification.",
            "Type the 6-digit code shown by your authenticator app.",
        ),
        "login.valid" => (
            "Il est valable quelques minutes.",
            "It is valid for a few minutes.",
        ),
        "login.code" => ("Code reçu", "Code received"),
        "login.restart" => ("Recommencer la connexion", "Start the login again"),
        "login.logged_out" => ("Vous êtes déconnecté·e.", "You are logged out."),
        "login.closed" => (
            "L'espace a été fermé. Ses données sont conservées 10 ans, pendant lesquels il peut être rouvert.",
            "The space was closed. Its data is kept 10 years, during which it can be reopened.",
        ),
        // Documents, history, authorisations, notifications.
        "docs.add" => ("Ajouter un document", "Add a document"),
        "docs.all" => ("← Tous les documents", "← All documents"),
        "docs.masking" => ("Masquage", "Masking"),
        "history.title" => ("Historique des accès", "Access history"),
        "history.intro" => (
            "Chaque consultation ou modification de cet espace par quelqu'un d'autre que vous est \
             enregistrée ici, refus compris, du plus récent au plus ancien.",
            "Every reading or change of this space by someone other than you is recorded here, \
             refusals included, newest first.",
        ),
        "access.title" => ("Autorisations", "Authorisations"),
        "access.mt" => ("Médecin traitant", "Regular doctor (médecin traitant)"),
        "access.granted" => ("Professionnels autorisés", "Authorised professionals"),
        "access.blocked" => ("Professionnels bloqués", "Blocked professionals"),
        "access.regulation" => ("Régulation des urgences (SAMU)", "Emergency regulation (SAMU)"),
        "access.hide_all" => ("Masquer tout le dossier", "Hide the whole record"),
        "notif.title" => ("Notifications", "Notifications"),
        "notif.recent" => ("Dernières notifications", "Latest notifications"),
        // Profile.
        "profile.title" => ("Profil médical", "Medical profile"),
        "profile.by_section" => ("Par rubrique", "By section"),
        "profile.add" => ("Ajouter une information", "Add an entry"),
        "profile.measures" => ("Mesures", "Measurements"),
        "profile.none" => ("Aucune information.", "Nothing recorded."),
        "profile.vaccinations" => ("Carnet de vaccination", "Vaccination record"),
        "profile.blood" => ("Groupe sanguin", "Blood group"),
        "profile.organ" => ("Don d'organes", "Organ donation"),
        "profile.people" => (
            "Personne de confiance, personnes à prévenir",
            "Trusted person, people to notify",
        ),
        "profile.questionnaire" => ("Questionnaire de santé", "Health questionnaire"),
        "profile.sections_forms" => (
            "Groupe sanguin, don d'organes, proches, questionnaire",
            "Blood group, organ donation, relatives, questionnaire",
        ),
        "profile.save" => ("Enregistrer", "Save"),
        // Reimbursements (RB-1, RB-2).
        "rb.title" => ("Remboursements", "Reimbursements"),
        "rb.intro" => (
            "Vos soins remboursés par l'Assurance Maladie ces 24 derniers mois : date des soins, acte, \
             professionnel, montant payé et montant remboursé. Filtrez par période, professionnel ou type de soins, \
             et exportez-les.",
            "Your care reimbursed by the national health insurance over the last 24 months: date of care, act, \
             professional, amount paid and amount reimbursed. Filter by period, professional or type of care, \
             and export them.",
        ),
        "rb.from" => ("Période du", "Period from"),
        "rb.to" => ("au", "to"),
        "rb.professional" => (
            "Professionnel (nom ou numéro RPPS)",
            "Professional (name or RPPS number)",
        ),
        "rb.type" => ("Type de soins", "Type of care"),
        "rb.all_types" => ("Tous les types", "All types"),
        "rb.filter" => ("Filtrer", "Filter"),
        "rb.export_selection" => ("Exporter la sélection (CSV)", "Export the selection (CSV)"),
        "rb.export_all" => ("Exporter (CSV)", "Export (CSV)"),
        "rb.totals" => ("Totaux", "Totals"),
        "rb.paid" => ("Payé", "Paid"),
        "rb.reimbursed" => ("Remboursé", "Reimbursed"),
        "rb.remaining" => ("Reste à charge", "Left to pay"),
        "rb.by_month" => ("Par mois", "By month"),
        "rb.chart" => (
            "Montants payés et remboursés par mois",
            "Amounts paid and reimbursed by month",
        ),
        "rb.chart.from" => ("De", "From"),
        "rb.chart.to" => ("à", "to"),
        "rb.detail" => ("Détail", "Details"),
        "rb.table" => (
            "Remboursements, du plus récent au plus ancien",
            "Reimbursements, newest first",
        ),
        "rb.col.date" => ("Date des soins", "Date of care"),
        "rb.col.type" => ("Type de soins", "Type of care"),
        "rb.col.act" => ("Acte", "Act"),
        "rb.col.pro" => ("Professionnel", "Professional"),
        "rb.none" => (
            "Aucun remboursement sur la période.",
            "No reimbursement in this period.",
        ),
        "rb.one" => ("1 remboursement.", "1 reimbursement."),
        "rb.many" => ("remboursements.", "reimbursements."),
        // Space management.
        "space.title" => ("Mon espace", "My space"),
        "space.export" => ("Exporter mes données", "Export my data"),
        "space.close" => ("Fermer mon espace", "Close my space"),
        "space.title_other" => ("Gérer cet espace", "Manage this space"),
        "space.export_other" => ("Exporter les données de cet espace", "Export this space's data"),
        "space.close_other" => ("Fermer cet espace", "Close this space"),
        // Professionals.
        "pro.back" => ("← Rechercher un autre patient", "← Find another patient"),
        "pro.record.title" => ("Dossier du patient", "Patient record"),
        "pro.record.intro" => (
            "Les documents que vous pouvez consulter, selon les autorisations du patient et votre profession.",
            "The documents you may read, according to the patient's authorisations and your profession.",
        ),
        "pro.profile.none" => (
            "Aucune information dans la partie du profil médical qui vous est ouverte.",
            "No entry in the part of the medical profile open to you.",
        ),
        "pro.emergency.title" => (
            "Accès en urgence (bris de glace)",
            "Emergency access (break the glass)",
        ),
        "pro.emergency.intro" => (
            "En cas d'urgence, vous pouvez ouvrir ce dossier pour 4 heures. Le motif est obligatoire ; \
             l'accès est tracé comme urgence et le patient et son médecin traitant en sont informés aussitôt.",
            "In an emergency you may open this record for 4 hours. The reason is required; the access \
             is traced as an emergency and the patient and their regular doctor are told at once.",
        ),
        "pro.emergency.reason" => ("Motif de l'urgence", "Reason of the emergency"),
        "pro.emergency.submit" => (
            "Déclarer l'urgence et ouvrir le dossier",
            "Declare the emergency and open the record",
        ),
        "pro.emergency.required" => (
            "Indiquez le motif de l'urgence : il est obligatoire et sera communiqué au patient.",
            "Give the reason of the emergency: it is required and will be shown to the patient.",
        ),
        "pro.emergency.long" => (
            "Le motif est trop long (500 caractères au plus).",
            "The reason is too long (500 characters at most).",
        ),
        "pro.emergency.already" => (
            "Vous avez déjà accès à ce dossier : aucun accès d'urgence n'a été ouvert.",
            "You already have access to this record: no emergency access was opened.",
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(v: &str) -> Locale {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::ACCEPT_LANGUAGE,
            HeaderValue::from_str(v).unwrap(),
        );
        choose(&h)
    }

    #[test]
    fn accept_language_and_cookie() {
        assert_eq!(choose(&HeaderMap::new()), Locale::Fr);
        assert_eq!(accept("en-GB,en;q=0.9"), Locale::En);
        assert_eq!(accept("de-DE, fr;q=0.5, en;q=0.8"), Locale::En);
        assert_eq!(accept("fr-FR,en;q=0.9"), Locale::Fr);
        assert_eq!(accept("de, it"), Locale::Fr);
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("en"),
        );
        h.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_static("__Host-carnet_lang=fr"),
        );
        assert_eq!(choose(&h), Locale::Fr);
    }

    /// Amounts as each language writes them (issue 32: `1 234,50 €` in French, `€1,234.50`
    /// in English, never the other way round).
    #[tokio::test]
    async fn amounts_in_each_language() {
        assert_eq!(amount(123_450), "1\u{202f}234,50\u{a0}€");
        assert_eq!(amount(-5), "-0,05\u{a0}€");
        let en = with_locale(Locale::En, async {
            (amount(123_450), amount(-5), amount(100_000_000))
        })
        .await;
        assert_eq!(en, ("€1,234.50".into(), "-€0.05".into(), "€1,000,000.00".into()));
    }

    #[tokio::test]
    async fn words_follow_the_locale() {
        assert_eq!(t("nav.home"), "Accueil");
        assert_eq!(with_locale(Locale::En, async { t("nav.home") }).await, "Home");
    }

    /// PR-1..4: a refused entry or measurement reads as a sentence in the page's language,
    /// never as the API's message with its field names; French numbers use a comma.
    #[tokio::test]
    async fn profile_refusals_are_worded() {
        use carnet_domain::profile::{
            CodeSystem, EntryError, EntryInput, MeasurementError, MeasurementInput, Section, measure,
        };
        let weight = measure("29463-7").unwrap();
        let refused = [
            ProfileError::Entry(EntryError::TextTooLong),
            ProfileError::Entry(EntryError::Code {
                code: "E1".into(),
                system: CodeSystem::Icd10,
            }),
            ProfileError::Entry(EntryError::VaccineNotJ07),
            ProfileError::Entry(EntryError::ContactRole),
            ProfileError::Entry(EntryError::Date {
                field: "date",
                value: "2020-13".into(),
            }),
            ProfileError::Measurement(MeasurementError::Implausible {
                value: 720.0,
                unit: "kg".into(),
                measure: weight,
            }),
            ProfileError::Measurement(MeasurementError::Future),
        ];
        for e in &refused {
            let fr = profile_error(e);
            let en = with_locale(Locale::En, async { profile_error(e) }).await;
            assert_ne!(fr, e.to_string(), "{e}");
            assert!(fr.ends_with('.') && en.ends_with('.'), "{fr} / {en}");
            assert_ne!(fr, en);
        }
        let fr = profile_error(&refused[5]);
        assert!(fr.contains(&format!("{} kg", decimal(weight.max))), "{fr}");
        // What the domain refuses is what is worded: a vaccine coded outside J07.
        let mut e = EntryInput {
            section: Section::Vaccinations,
            text: "Grippe".into(),
            code: Some(carnet_domain::profile::Coding {
                system: CodeSystem::Atc,
                code: "A10BA02".into(),
                display: None,
            }),
            ..entry_defaults()
        };
        let err = ProfileError::from(e.clone().validate().unwrap_err());
        assert_eq!(
            profile_error(&err),
            "Le code ATC d'un vaccin commence par J07 : vérifiez-le."
        );
        e.code = None;
        assert!(e.validate().is_ok());
        let m = MeasurementInput {
            code: "29463-7".into(),
            value: 72.5,
            unit: "kg".into(),
            at: "2999-01-01T00:00:00Z".into(),
        };
        let err = ProfileError::from(
            m.validate(carnet_domain::Timestamp::from_unix_seconds(0))
                .unwrap_err(),
        );
        assert_eq!(
            profile_error(&err),
            "La date de la mesure ne peut pas être dans le futur."
        );
    }

    fn entry_defaults() -> carnet_domain::profile::EntryInput {
        serde_json::from_value(serde_json::json!({"section": "conditions", "text": ""})).unwrap()
    }
}

/// Who reads an item, for naming its author ([`author_words`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader<'a> {
    Holder,
    Representative,
    /// A professional, by RPPS.
    Professional(&'a str),
    /// An establishment, an app, an operator.
    Other,
}

impl<'a> Reader<'a> {
    pub fn of(actor: &'a carnet_domain::access::Actor) -> Self {
        use carnet_domain::access::Actor;
        match actor {
            Actor::Holder { .. } => Reader::Holder,
            // A carer names the holder as a representative does ("le titulaire de l'espace").
            Actor::Representative { .. } | Actor::Carer { .. } => Reader::Representative,
            Actor::Professional { id, .. } => Reader::Professional(&id.0),
            _ => Reader::Other,
        }
    }
}

/// The author of a document or an entry named as who they are, for this reader (issue 33,
/// PR-3, S-6): "vous-même" only to the holder about what they wrote; to a professional the
/// holder is "le patient"; a legal representative is named as one; a professional by name
/// ("Dr Claire LEROY"), with "(vous)" to themselves. `name` is the display name recorded with
/// the item: empty when the holder wrote it, a representative's name when one wrote it in the
/// represented person's space.
pub fn author_words(author: &carnet_domain::access::Author, name: &str, reader: Reader<'_>) -> String {
    use carnet_domain::access::Author;
    let en = locale() == Locale::En;
    match author {
        // "holder": how profile entries record the holder's own writing.
        Author::Holder if name.is_empty() || name == "holder" => match reader {
            Reader::Holder => fr_en("vous-même", "yourself").to_string(),
            Reader::Representative => {
                fr_en("le titulaire de l'espace", "the holder of the space").to_string()
            }
            Reader::Professional(_) | Reader::Other => fr_en("le patient", "the patient").to_string(),
        },
        Author::Holder => {
            if en {
                format!("{name}, legal representative")
            } else {
                format!("{name}, représentant légal")
            }
        }
        Author::Professional { id } => {
            let name = if name.is_empty() {
                fr_en("un professionnel de santé", "a health professional")
            } else {
                name
            };
            if reader == Reader::Professional(&id.0) {
                format!("{name} ({})", fr_en("vous", "you"))
            } else {
                name.to_string()
            }
        }
        Author::Establishment { .. } if name.is_empty() => {
            fr_en("un établissement", "an establishment").into()
        }
        Author::App { .. } if name.is_empty() => fr_en("une application", "an app").into(),
        Author::Establishment { .. } | Author::App { .. } => name.to_string(),
    }
}
