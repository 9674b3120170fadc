//! Delivery of the outbox: e-mail over real SMTP (`lettre`), SMS through a pluggable sender,
//! and in demo mode a local mailbox shown at `/demo/outbox` so a person can read the codes
//! without a mail server. Messages never carry health data (MS-4, SE-3): only codes, dates
//! and an invitation to log in.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carnet_store::Store;
use carnet_store::outbox::{Channel, MessageLanguage, OutboxMessage};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use tokio::sync::Notify;

/// A message as delivered (demo mailbox).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Delivered {
    pub at: String,
    pub channel: &'static str,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// The last messages "sent" in demo mode, newest first.
#[derive(Clone, Debug, Default)]
pub struct DemoMailbox(Arc<Mutex<VecDeque<Delivered>>>);

impl DemoMailbox {
    pub fn push(&self, d: Delivered) {
        if let Ok(mut q) = self.0.lock() {
            q.push_front(d);
            q.truncate(200);
        }
    }

    pub fn list(&self) -> Vec<Delivered> {
        self.0
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// An SMS gateway reached over HTTPS: `POST {url}` with JSON `{"to": "+33…", "text": "…"}`
/// and an optional bearer token. Most SMS providers offer such an API (or a small adapter does).
#[derive(Clone, Debug)]
pub struct SmsGateway {
    pub url: String,
    pub token: Option<String>,
    http: reqwest::Client,
}

impl SmsGateway {
    pub fn new(url: &str, token: Option<String>) -> Result<Self, MailError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| MailError::Config(e.to_string()))?;
        Ok(Self {
            url: url.to_string(),
            token,
            http,
        })
    }

    async fn send(&self, to: &str, text: &str) -> Result<(), MailError> {
        let mut rb = self
            .http
            .post(&self.url)
            .json(&serde_json::json!({ "to": to, "text": text }));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.map_err(|e| MailError::Send(e.to_string()))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(MailError::Send(format!("SMS gateway answered {}", r.status())))
        }
    }
}

/// Where messages go: e-mail over SMTP, SMS through a gateway, or (demo) a local mailbox.
#[derive(Clone, Default)]
pub struct Transport {
    pub smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
    pub sms: Option<SmsGateway>,
    pub demo: Option<DemoMailbox>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("smtp", &self.smtp.is_some())
            .field("sms", &self.sms.is_some())
            .field("demo", &self.demo.is_some())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("SMTP configuration: {0}")]
    Config(String),
    #[error("no address to send to")]
    NoAddress,
    #[error("sending failed: {0}")]
    Send(String),
    /// The receiving server refused the message for good (SMTP 5xx): retrying cannot help.
    #[error("refused for good: {0}")]
    Rejected(String),
}

/// E-mail attempts (about four hours of retries) after which a letter goes by post (LC-2).
pub const EMAIL_ATTEMPTS_BEFORE_POST: i64 = 8;

impl Transport {
    pub fn demo(mailbox: DemoMailbox) -> Self {
        Self {
            demo: Some(mailbox),
            ..Self::default()
        }
    }

    /// `smtp://host:port` (plain, for a relay on the same host), `smtp://host:port?tls=required`
    /// (STARTTLS) or `smtps://host:port` (implicit TLS), with `user:password@` if needed.
    pub fn with_smtp(mut self, url: &str, from: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Config(e.to_string()))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailError::Config(format!("mail_from: {e}")))?;
        self.smtp = Some((transport, from));
        Ok(self)
    }

    pub fn with_sms(mut self, gateway: SmsGateway) -> Self {
        self.sms = Some(gateway);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.smtp.is_none() && self.sms.is_none() && self.demo.is_none()
    }

    /// The channels this transport delivers. Post letters wait in the outbox for a print
    /// service (not built yet) except in demo mode, where everything shows in the mailbox.
    fn channels(&self) -> Vec<Channel> {
        if self.demo.is_some() {
            return vec![Channel::Email, Channel::Sms, Channel::Post];
        }
        let mut c = Vec::new();
        if self.smtp.is_some() {
            c.push(Channel::Email);
        }
        if self.sms.is_some() {
            c.push(Channel::Sms);
        }
        c
    }
}

/// "17 January 2027" (France's legal time), for mails in English.
pub fn long_date_en(rfc3339: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    in_words(rfc3339, &MONTHS)
}

/// "17 janvier 2027" (France's legal time) from an RFC 3339 instant: letters and mails never
/// show an ISO timestamp (issue 32).
pub fn long_date(rfc3339: &str) -> String {
    const MONTHS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    in_words(rfc3339, &MONTHS)
}

/// The day of an RFC 3339 instant in France, with the month's name from `months`; the text
/// as it is when it is not an instant.
fn in_words(rfc3339: &str, months: &[&str; 12]) -> String {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| crate::web::paris(carnet_domain::Timestamp::from_offset_date_time(t)))
        .map_or_else(
            || rfc3339.to_string(),
            |d| {
                format!(
                    "{} {} {}",
                    d.day(),
                    months[usize::from(u8::from(d.month())) - 1],
                    d.year()
                )
            },
        )
}

/// A message's words: its subject and its body in French and in English, apart, so that a
/// letter (French, by post) and a mail can each take what they need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    pub subject: String,
    pub subject_english: String,
    pub french: String,
    pub english: String,
}

impl Text {
    fn new((subject, subject_english): (&str, &str), french: String, english: String) -> Self {
        Self {
            subject: subject.into(),
            subject_english: subject_english.into(),
            french,
            english,
        }
    }

    /// Subject and body in the holder's language (issue 32: one language, not both).
    pub fn in_language(&self, language: MessageLanguage) -> (String, String) {
        match language {
            MessageLanguage::En if !self.english.is_empty() => {
                (self.subject_english.clone(), self.english.clone())
            }
            _ => (self.subject.clone(), self.french.clone()),
        }
    }
}

/// The words of a message of any kind, from its payload.
pub fn words(msg: &OutboxMessage) -> Text {
    let p: Value = serde_json::from_slice(&msg.payload).unwrap_or(Value::Null);
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    // Instants in words ("17 janvier 2027", "17 January 2027").
    let d = |k: &str| long_date(&s(k));
    let e = |k: &str| long_date_en(&s(k));
    match msg.kind.as_str() {
        "login_code" => Text::new(
            ("Votre code de connexion Carnet", "Your Carnet login code"),
            format!(
                "Votre code de connexion : {}\nIl est valable 10 minutes et ne sert qu'une fois. \
                 Si vous n'avez pas demandé à vous connecter, ignorez ce message.",
                s("code")
            ),
            format!("Your Carnet login code: {} (valid 10 minutes, single use).", s("code")),
        ),
        "password_code" => Text::new(
            ("Votre code pour choisir un nouveau mot de passe Carnet", "Your code to choose a new Carnet password"),
            format!(
                "Votre code : {}\nIl est valable 10 minutes et ne sert qu'une fois. Saisissez-le sur la page \
                 « Mot de passe oublié » avec votre nouveau mot de passe. Si vous n'avez rien demandé, \
                 ignorez ce message : votre mot de passe ne change pas.",
                s("code")
            ),
            format!(
                "Your code to choose a new Carnet password: {} (valid 10 minutes, single use).",
                s("code")
            ),
        ),
        "password_changed" => Text::new(
            ("Le mot de passe de votre espace Carnet a été changé", "The password of your Carnet space was changed"),
            "Le mot de passe de votre espace vient d'être changé, et vos autres appareils ont été \
             déconnectés. Si vous n'êtes pas à l'origine de ce changement, utilisez « Mot de passe oublié » \
             sur la page de connexion pour en choisir un nouveau, puis prévenez le service d'assistance."
                .into(),
            "The password of your Carnet space was just changed; your other devices were logged out.".into(),
        ),
        "information" => Text::new(
            ("Votre espace numérique de santé Carnet", "Your Carnet digital health space"),
            format!(
                "Bonjour,\n\nUn espace numérique de santé a été créé pour vous. Il vous permet de conserver \
                 et de partager vos documents de santé avec les professionnels que vous choisissez ; chaque \
                 accès est tracé et vous en êtes informé.\n\n\
                 Votre code provisoire d'activation : {}\n\n\
                 Sans opposition de votre part avant le {}, votre espace sera ouvert automatiquement. \
                 Pour vous y opposer, rendez-vous sur le site, page « M'opposer à la création de mon espace », \
                 avec ce code et votre numéro de sécurité sociale, ou appelez le service d'assistance : une \
                 preuve de votre refus vous sera remise. Vous pourrez aussi fermer votre espace à tout moment.",
                s("activation_code"),
                d("opposition_deadline")
            ),
            format!(
                "A personal health space was created for you. Activation code: {}. Without objection before \
                 {}, it opens automatically.",
                s("activation_code"),
                e("opposition_deadline")
            ),
        ),
        "new_device" => Text::new(
            ("Nouvelle connexion à votre espace Carnet", "New login to your Carnet space"),
            "Une connexion à votre espace a eu lieu depuis un appareil que nous ne connaissions pas. \
             Si ce n'était pas vous, changez votre mot de passe et déconnectez tous les appareils."
                .into(),
            "Your space was accessed from a new device. If it was not you, change your password.".into(),
        ),
        "space_opened" => Text::new(
            ("Votre espace Carnet est ouvert", "Your Carnet space is open"),
            "Votre espace numérique de santé est désormais ouvert. Pour le consulter, activez-le sur la page \
             « Activer mon espace » du site. Votre code provisoire était valable six semaines : s'il a expiré, \
             demandez-en un nouveau sur cette même page (« Recevoir un nouveau code ») avec votre numéro de \
             sécurité sociale et votre date de naissance ; il vous sera envoyé ici. Vous pouvez fermer votre \
             espace à tout moment."
                .into(),
            "Your health space is now open. Activate it on the site; if your code expired, ask for a new \
             one on the activation page."
                .into(),
        ),
        "contact_code" => Text::new(
            ("Votre code pour confirmer vos coordonnées Carnet", "Your code to confirm your Carnet contact details"),
            format!(
                "Votre code : {}\nIl est valable 10 minutes et ne sert qu'une fois. Saisissez-le dans \
                 « Mon espace » pour que cette adresse remplace la précédente. Si vous n'avez rien demandé, \
                 ignorez ce message : rien ne change.",
                s("code")
            ),
            format!(
                "Your code to confirm your Carnet contact details: {} (valid 10 minutes).",
                s("code")
            ),
        ),
        "contact_changed" => Text::new(
            ("Vos coordonnées Carnet ont été changées", "Your Carnet contact details were changed"),
            "Les messages de votre espace numérique de santé (codes de connexion, avis d'accès) iront \
             désormais à une nouvelle adresse, confirmée avec un code. Si vous n'êtes pas à l'origine de \
             ce changement, prévenez le service d'assistance et changez votre mot de passe."
                .into(),
            "The contact details of your Carnet space were changed.".into(),
        ),
        "erasure_requested" => Text::new(
            ("Votre demande de suppression de votre espace Carnet", "Your request to delete your Carnet space"),
            format!(
                "Bonjour,\n\nVotre demande de suppression définitive est enregistrée. Votre espace est fermé : \
                 les professionnels n'y ont plus accès. Toutes vos données (documents, profil médical, \
                 messages, agenda, historique des accès) seront supprimées le {}, sans retour possible.\n\n\
                 D'ici là, vous pouvez changer d'avis : connectez-vous et rouvrez votre espace, la demande \
                 sera annulée. Vous recevrez un dernier message quand la suppression sera faite.",
                d("erased_on")
            ),
            format!(
                "Your request to delete your Carnet space is recorded: everything will be erased on {}. \
                 Reopen your space before then to cancel it.",
                e("erased_on")
            ),
        ),
        "space_suspended" => Text::new(
            ("Votre espace Carnet est suspendu", "Your Carnet space is suspended"),
            format!(
                "Bonjour,\n\nLe service a suspendu votre espace numérique de santé le {}, pour la raison \
                 suivante : « {} ». Pendant la suspension, personne n'y a accès, ni les professionnels ni \
                 vous-même ; son contenu est conservé.\n\n\
                 Sans opposition de votre part avant le {}, votre espace sera fermé (vous pourrez ensuite \
                 le rouvrir pendant 10 ans). Pour vous opposer à la fermeture, connectez-vous sur le site \
                 avec votre identifiant et votre mot de passe, ou appelez le service d'assistance.",
                d("suspended_on"),
                s("reason"),
                d("closes_on")
            ),
            format!(
                "Your Carnet space was suspended (reason: \u{201c}{}\u{201d}). Without objection before {}, \
                 it will be closed; log in to object.",
                s("reason"),
                e("closes_on")
            ),
        ),
        "suspension_contested" => Text::new(
            ("Votre opposition à la fermeture de votre espace Carnet", "Your objection to the closure of your Carnet space"),
            format!(
                "Bonjour,\n\nVotre opposition à la fermeture de votre espace a été enregistrée le {}. \
                 Votre espace ne sera pas fermé : il reste suspendu, son contenu conservé, jusqu'à la \
                 décision du service, qui vous l'écrira.",
                d("recorded_at")
            ),
            format!(
                "Your objection to the closure of your space was recorded on {}. It stays suspended until \
                 the service decides.",
                e("recorded_at")
            ),
        ),
        "suspension_lifted" => Text::new(
            ("Votre espace Carnet est rétabli", "Your Carnet space is restored"),
            "Bonjour,\n\nLa suspension de votre espace numérique de santé est levée : vous pouvez de nouveau \
             vous y connecter, et les professionnels que vous avez autorisés y ont de nouveau accès. Tout \
             son contenu est conservé."
                .into(),
            "The suspension of your Carnet space is lifted: you may log in again.".into(),
        ),
        "suspension_closed" => Text::new(
            ("Votre espace Carnet est fermé", "Your Carnet space is closed"),
            "Bonjour,\n\nVotre espace numérique de santé, suspendu depuis six semaines sans opposition de \
             votre part, est désormais fermé : les professionnels n'y ont plus accès. Son contenu est \
             conservé 10 ans : pendant ce temps, vous pouvez le rouvrir en vous connectant sur le site \
             (case « Rouvrir mon espace »)."
                .into(),
            "Your Carnet space, suspended for six weeks without objection, is now closed. You may reopen \
             it within 10 years by logging in."
                .into(),
        ),
        "erasure_done" => Text::new(
            ("Votre espace Carnet a été supprimé", "Your Carnet space was deleted"),
            "Bonjour,\n\nComme vous l'avez demandé, votre espace numérique de santé et toutes ses données \
             ont été supprimés définitivement ; cette adresse elle-même est effacée après l'envoi de ce \
             message. Vous pourrez demander un nouvel espace, vide, si vous changez d'avis."
                .into(),
            "As you asked, your health space and all its data were erased for good.".into(),
        ),
        "activation_code" => Text::new(
            ("Votre nouveau code d'activation Carnet", "Your new Carnet activation code"),
            format!(
                "Bonjour,\n\nVous avez demandé un nouveau code provisoire pour activer votre espace numérique \
                 de santé. Votre code : {}\nIl est valable jusqu'au {} et remplace le précédent. Saisissez-le \
                 sur la page « Activer mon espace » avec votre numéro de sécurité sociale. Si vous n'avez rien \
                 demandé, ignorez ce message.",
                s("activation_code"),
                d("valid_until")
            ),
            format!(
                "Your new Carnet activation code: {} (valid until {}).",
                s("activation_code"),
                e("valid_until")
            ),
        ),
        "majority" => Text::new(
            ("Vous avez 18 ans : votre espace Carnet est à vous", "You are 18: your Carnet space is yours"),
            format!(
                "Vous êtes majeur : vos représentants légaux n'ont plus accès à votre espace. Votre espace \
                 reste ouvert sauf si vous le fermez. Choisissez vos propres identifiants avec ce code \
                 provisoire d'activation : {} (valable jusqu'au {}).",
                s("activation_code"),
                d("valid_until")
            ),
            format!(
                "You are 18: your representatives no longer have access. Set your own credentials with the \
                 activation code {}.",
                s("activation_code")
            ),
        ),
        "opposition_proof" => Text::new(
            ("Preuve de votre opposition à la création de votre espace Carnet", "Proof of your objection to the creation of your Carnet space"),
            format!(
                "Votre opposition a bien été enregistrée le {} (référence {}). Aucun espace ne sera ouvert \
                 pour vous. Vous pourrez en demander un plus tard si vous changez d'avis.",
                d("recorded_at"),
                s("reference")
            ),
            format!(
                "Your objection was recorded on {} (reference {}). No space will be opened.",
                e("recorded_at"),
                s("reference")
            ),
        ),
        "access" => Text::new(
            ("Nouvel accès à votre espace Carnet", "New access to your Carnet space"),
            "Un professionnel, un établissement ou l'un de vos aidants vient d'accéder à votre espace. Connectez-vous pour voir \
             qui, quand et à quoi, dans l'historique des accès ; vous pouvez modifier les autorisations à tout moment."
                .into(),
            "Someone accessed your space. Log in to see who, when and what.".into(),
        ),
        "carer_accepted" => Text::new(
            ("Votre aidant a accepté votre invitation", "Your carer accepted your invitation"),
            format!(
                "{} a accepté votre invitation : cette personne peut désormais consulter les documents que vous \
                 avez choisis, sans pouvoir les modifier. Chacun de ses accès figure dans votre historique. Vous \
                 pouvez retirer cet accès à tout moment, page « Vos aidants » des autorisations.",
                s("name")
            ),
            format!(
                "{} accepted your invitation and may now read the documents you chose. You may remove this access at any time.",
                s("name")
            ),
        ),
        "carer_ended" => Text::new(
            ("Fin de votre accès d'aidant", "Your carer's access ended"),
            format!(
                "{} a retiré votre accès d'aidant : vous ne pouvez plus consulter ses documents.",
                s("name")
            ),
            format!("{} removed your carer's access: you can no longer read their documents.", s("name")),
        ),
        "carer_withdrew" => Text::new(
            ("Un aidant a mis fin à son accès", "A carer ended their access"),
            format!(
                "{} ne souhaite plus être votre aidant : cette personne ne peut plus consulter vos documents.",
                s("name")
            ),
            format!("{} is no longer your carer and can no longer read your documents.", s("name")),
        ),
        "emergency_access" => Text::new(
            ("Accès en urgence à votre espace Carnet", "Emergency access to your Carnet space"),
            "Un professionnel a consulté votre espace en urgence (accès « bris de glace »). Le motif déclaré \
             figure dans l'historique des accès."
                .into(),
            "A professional accessed your space in an emergency; the stated reason is in your access history."
                .into(),
        ),
        "new_document" => Text::new(
            ("Nouveau document dans votre espace Carnet", "New document in your Carnet space"),
            "Un document a été ajouté à votre dossier médical. Connectez-vous pour le consulter ; vous \
             pouvez le masquer aux professionnels si vous le souhaitez."
                .into(),
            "A document was added to your record. Log in to read it.".into(),
        ),
        "document_waiting" => Text::new(
            ("Un document vous attend dans votre espace Carnet", "A document is waiting for you in your Carnet space"),
            "Un professionnel a déposé un document qu'il souhaite vous présenter lors d'une consultation. \
             Il vous sera visible au plus tard un mois après son dépôt."
                .into(),
            "A professional filed a document they wish to discuss with you first; it becomes visible \
             within a month of its deposit."
                .into(),
        ),
        "deletion_refused" => Text::new(
            ("Réponse à votre demande de suppression", "Answer to your deletion request"),
            "L'auteur d'un document a répondu à votre demande de suppression. Connectez-vous pour voir sa \
             réponse ; vous pouvez toujours masquer ce document."
                .into(),
            "The author answered your deletion request. Log in to see the answer.".into(),
        ),
        "new_message" => Text::new(
            ("Nouveau message dans votre espace Carnet", "New message in your Carnet space"),
            "Un professionnel de santé vous a écrit dans votre messagerie sécurisée. Connectez-vous à \
             votre espace pour lire son message."
                .into(),
            "A health professional wrote to you in your secure messaging. Log in to read it.".into(),
        ),
        "agenda_reminder" => {
            // AG-3: when, never what (no health content in a notification, MS-4).
            let when = p
                .get("at")
                .and_then(Value::as_i64)
                .and_then(|t| carnet_domain::agenda::to_paris(carnet_domain::Timestamp::from_micros(t)))
                .map(|l| {
                    format!(
                        "{:02}/{:02}/{} à {:02}:{:02}",
                        l.day(),
                        u8::from(l.month()),
                        l.year(),
                        l.hour(),
                        l.minute()
                    )
                })
                .unwrap_or_default();
            Text::new(
                ("Rappel de votre agenda santé Carnet", "Reminder from your Carnet health agenda"),
                format!(
                    "Un événement de votre agenda santé a lieu le {when}. Connectez-vous à votre \
                     espace pour le voir."
                ),
                format!("Reminder: an event of your health agenda takes place on {when} (Paris time)."),
            )
        }
        other => Text {
            subject: format!("Carnet : {other}"),
            subject_english: format!("Carnet: {other}"),
            french: "Connectez-vous à votre espace pour en savoir plus.".into(),
            english: String::new(),
        },
    }
}

/// The short text of an SMS, in the holder's language: the code when there is one, else the
/// subject.
fn sms_text(msg: &OutboxMessage, subject: &str, language: MessageLanguage) -> String {
    let p: Value = serde_json::from_slice(&msg.payload).unwrap_or(Value::Null);
    let english = language == MessageLanguage::En;
    match (msg.kind.as_str(), p.get("code").and_then(Value::as_str), english) {
        ("login_code", Some(code), false) => format!(
            "Carnet : votre code de connexion est {code} (valable 10 min). Ne le communiquez à personne."
        ),
        ("login_code", Some(code), true) => {
            format!("Carnet: your login code is {code} (valid 10 min). Never share it.")
        }
        ("contact_code", Some(code), false) => format!(
            "Carnet : votre code pour confirmer ce numéro est {code} (valable 10 min). Ne le communiquez à personne."
        ),
        ("contact_code", Some(code), true) => {
            format!("Carnet: your code to confirm this number is {code} (valid 10 min). Never share it.")
        }
        ("password_code", Some(code), false) => format!(
            "Carnet : votre code pour choisir un nouveau mot de passe est {code} (valable 10 min). \
             Ne le communiquez à personne."
        ),
        ("password_code", Some(code), true) => {
            format!("Carnet: your code to choose a new password is {code} (valid 10 min). Never share it.")
        }
        (_, _, false) => format!("Carnet : {subject}. Connectez-vous à votre espace pour en savoir plus."),
        (_, _, true) => format!("Carnet: {subject}. Log in to your space to know more."),
    }
}

/// Delivers one message; the address comes from the holder's administrative data.
async fn deliver(store: &Store, transport: &Transport, msg: &OutboxMessage) -> Result<(), MailError> {
    // The notice of an erasure carries its own address: the holder's data is gone (LC-5).
    let contact = if msg.kind == carnet_store::outbox::ERASURE_DONE {
        let p: Value = serde_json::from_slice(&msg.payload).unwrap_or(Value::Null);
        let field = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
        carnet_store::Contact {
            email: field("email"),
            phone: None,
            address: field("address"),
        }
    } else {
        let Ok(contact) = store.contact(msg.holder).await else {
            return Err(MailError::NoAddress);
        };
        contact
    };
    // A message about an address goes to that address (ID-2: a code to the new one, a
    // notice to the former one), not to the one on file.
    let addressed = serde_json::from_slice::<Value>(&msg.payload)
        .ok()
        .and_then(|p| p.get("to").and_then(Value::as_str).map(str::to_string));
    let to = match (addressed, msg.channel) {
        (Some(to), _) => Some(to),
        (None, Channel::Email) => contact.email,
        (None, Channel::Sms) => contact.phone,
        (None, Channel::Post) => contact.address.or_else(|| Some("(adresse postale)".into())),
    }
    .ok_or(MailError::NoAddress)?;
    // In the holder's language; the notice of an erasure has no holder left to ask.
    let language = if msg.kind == carnet_store::outbox::ERASURE_DONE {
        MessageLanguage::Fr
    } else {
        store.message_language(msg.holder).await.unwrap_or_default()
    };
    let (subject, body) = words(msg).in_language(language);
    if let Some(mailbox) = &transport.demo {
        let body = if msg.channel == Channel::Sms {
            sms_text(msg, &subject, language)
        } else {
            body
        };
        mailbox.push(Delivered {
            at: store.now().to_rfc3339(),
            channel: msg.channel.tag(),
            to,
            subject,
            body,
        });
        return Ok(());
    }
    match (msg.channel, &transport.smtp, &transport.sms) {
        (Channel::Email, Some((smtp, from)), _) => {
            let to: Mailbox = to.parse().map_err(|_| MailError::NoAddress)?;
            // A retry after a crash between the SMTP server's acceptance and our record of it
            // (at-least-once delivery) carries the same Message-ID: receivers see a duplicate
            // of one message, never two messages (RFC 5322 3.6.4).
            let email = Message::builder()
                .message_id(Some(format!("<{}@carnet.outbox>", msg.id)))
                .from(from.clone())
                .to(to)
                .subject(subject)
                .header(ContentType::TEXT_PLAIN)
                .body(body)
                .map_err(|e| MailError::Send(e.to_string()))?;
            smtp.send(email).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    MailError::Rejected(e.to_string())
                } else {
                    MailError::Send(e.to_string())
                }
            })
        }
        (Channel::Sms, _, Some(gateway)) => gateway.send(&to, &sms_text(msg, &subject, language)).await,
        _ => Err(MailError::Send("no transport for this channel".into())),
    }
}

/// Whether an e-mail has failed for good: refused by the receiving server, no address on
/// file, or still failing after [`EMAIL_ATTEMPTS_BEFORE_POST`] attempts.
fn gives_up_on_email(e: &MailError, attempts: i64) -> bool {
    matches!(e, MailError::Rejected(_) | MailError::NoAddress) || attempts >= EMAIL_ATTEMPTS_BEFORE_POST
}

/// LC-1, LC-2: the information letter of a child's space, written to the legal
/// representatives (the child's code and the child's INS, the objection in the child's name).
fn information_for_representatives(msg: &OutboxMessage, name: &str) -> String {
    let p: Value = serde_json::from_slice(&msg.payload).unwrap_or(Value::Null);
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    format!(
        "Madame, Monsieur,\n\nUn espace numérique de santé a été créé pour {name}, dont vous êtes le \
         représentant légal : c'est vous qui le gérez jusqu'à ses 18 ans. Il permet de conserver et de \
         partager ses documents de santé avec les professionnels que vous choisissez ; chaque accès est \
         tracé et vous en êtes informé.\n\n\
         Code provisoire d'activation de son espace : {}\n\n\
         Sans opposition de votre part avant le {}, l'espace sera ouvert automatiquement. Pour vous y \
         opposer en son nom, rendez-vous sur le site, page « M'opposer à la création de mon espace », \
         avec ce code et le numéro de sécurité sociale de l'enfant, ou appelez le service d'assistance : \
         une preuve du refus vous sera remise. Vous pourrez aussi fermer cet espace à tout moment.",
        s("activation_code"),
        long_date(&s("opposition_deadline"))
    )
}

/// A message as a letter by post (LC-2), in French: to the holder at their postal address,
/// or to a minor's legal representatives; the notice of an erasure to the address it carries.
/// [`MailError::NoAddress`] when there is no postal address to print.
pub async fn letter(store: &Store, msg: &OutboxMessage) -> Result<crate::letter::Letter, MailError> {
    let text = words(msg);
    let mut subject = None;
    let (recipient, address, intro) = if msg.kind == carnet_store::outbox::ERASURE_DONE {
        let p: Value = serde_json::from_slice(&msg.payload).unwrap_or(Value::Null);
        let address = p.get("address").and_then(Value::as_str).map(str::to_string);
        (Vec::new(), address, None)
    } else {
        let r = store
            .postal_recipient(msg.holder)
            .await
            .map_err(|_| MailError::NoAddress)?;
        let name = format!("{} {}", r.name.given, r.name.family).trim().to_string();
        if r.minor && msg.kind == "information" {
            // The information letter speaks to the parents about the child's space.
            subject = Some(format!("L'espace numérique de santé {}", crate::web::de(&name)));
            (
                vec!["Aux représentants légaux de".to_string(), name.clone()],
                r.address,
                Some(information_for_representatives(msg, &name)),
            )
        } else if r.minor {
            (
                vec!["Aux représentants légaux de".to_string(), name.clone()],
                r.address,
                Some(format!(
                    "Madame, Monsieur,\n\nCe courrier concerne l'espace numérique de santé {}, \
                     dont vous êtes le représentant légal : c'est vous qui le gérez jusqu'à ses 18 ans.",
                    crate::web::de(&name)
                )),
            )
        } else {
            (vec![name], r.address, None)
        }
    };
    let address = address
        .filter(|a| !a.trim().is_empty())
        .ok_or(MailError::NoAddress)?;
    let mut lines = recipient;
    lines.extend(
        address
            .split([',', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string),
    );
    let body = match intro {
        Some(whole) if msg.kind == "information" => whole,
        Some(intro) => format!("{intro}\n\n{}", text.french.trim_start_matches("Bonjour,\n\n")),
        None => text.french,
    };
    Ok(crate::letter::Letter {
        recipient: lines,
        date: long_date(&store.now().to_rfc3339()),
        subject: subject.unwrap_or(text.subject),
        body,
        reference: msg.id.to_string(),
    })
}

/// One pass: claims what is due and delivers it. Returns how many were delivered.
pub async fn deliver_due(store: &Store, transport: &Transport) -> u64 {
    let mut delivered = 0;
    loop {
        let batch = match store.claim_messages_on(50, &transport.channels()).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox");
                return delivered;
            }
        };
        if batch.is_empty() {
            return delivered;
        }
        for m in batch {
            let r = deliver(store, transport, &m).await;
            let marked = match &r {
                Ok(()) => store.mark_sent(m.id).await,
                Err(e) if m.channel == Channel::Email && gives_up_on_email(e, m.attempts) => {
                    match store.send_by_post_instead(m.id).await {
                        Ok(true) => {
                            tracing::warn!(kind = %m.kind, error = %e, "e-mail failed for good; the letter goes by post");
                            Ok(())
                        }
                        Ok(false) => store.mark_failed(m.id, m.attempts).await,
                        Err(e) => Err(e),
                    }
                }
                Err(e) => {
                    tracing::warn!(kind = %m.kind, channel = m.channel.tag(), error = %e, "delivery failed; will retry");
                    store.mark_failed(m.id, m.attempts).await
                }
            };
            if let Err(e) = marked {
                tracing::warn!(error = %e, "cannot record delivery");
            }
            if r.is_ok() {
                delivered += 1;
            }
        }
    }
}

/// The delivery loop: wakes when a handler queued something (login codes must arrive in
/// seconds) and every few seconds anyway (messages queued by other servers or jobs).
pub fn spawn_delivery(store: Store, transport: Transport, wake: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if transport.is_empty() {
            return;
        }
        loop {
            deliver_due(&store, &transport).await;
            tokio::select! {
                () = wake.notified() => {},
                () = tokio::time::sleep(Duration::from_secs(3)) => {},
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_words_in_france_s_legal_time() {
        assert_eq!(long_date("2027-01-17T10:00:00Z"), "17 janvier 2027");
        // 23:30 UTC on 31 July is already 1 August in Paris (summer time).
        assert_eq!(long_date("2026-07-31T23:30:00Z"), "1 août 2026");
        assert_eq!(long_date("not a date"), "not a date");
        let msg = OutboxMessage::new(
            carnet_domain::HolderId::from_uuid(uuid::Uuid::nil()),
            "activation_code",
            carnet_store::outbox::Channel::Email,
            br#"{"activation_code":"ABCDEFGHJKLM","valid_until":"2027-01-17T10:00:00Z"}"#.to_vec(),
        );
        let (subject, body) = words(&msg).in_language(MessageLanguage::Fr);
        assert!(body.contains("Votre code : ABCDEFGHJKLM") && body.contains("jusqu'au 17 janvier 2027"));
        assert!(
            !body.contains("2027-01-17") && !body.contains("Your"),
            "French only: {body}"
        );
        assert_eq!(subject, "Votre nouveau code d'activation Carnet");
        let (subject, body) = words(&msg).in_language(MessageLanguage::En);
        assert_eq!(subject, "Your new Carnet activation code");
        assert!(
            body.contains("ABCDEFGHJKLM") && !body.contains("Votre"),
            "English only: {body}"
        );
    }
}
