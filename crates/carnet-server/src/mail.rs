//! Delivery of the outbox: e-mail over real SMTP (`lettre`), SMS through a pluggable sender,
//! and in demo mode a local mailbox shown at `/demo/outbox` so a person can read the codes
//! without a mail server. Messages never carry health data (MS-4, SE-3): only codes, dates
//! and an invitation to log in.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carnet_store::Store;
use carnet_store::outbox::{Channel, OutboxMessage};
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

/// Where messages go.
#[derive(Clone)]
pub enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Demo(DemoMailbox),
    /// Nothing configured: messages wait in the outbox.
    None,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Smtp { .. } => "Transport::Smtp",
            Transport::Demo(_) => "Transport::Demo",
            Transport::None => "Transport::None",
        })
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
}

impl Transport {
    /// `smtp://host:port` (plain, for a relay on the same host), `smtp://host:port?tls=required`
    /// (STARTTLS) or `smtps://host:port` (implicit TLS), with `user:password@` if needed.
    pub fn smtp(url: &str, from: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Config(e.to_string()))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailError::Config(format!("mail_from: {e}")))?;
        Ok(Transport::Smtp { transport, from })
    }

    fn channels(&self) -> &'static [Channel] {
        match self {
            // Post letters wait in the outbox for the print service (not built yet); SMS needs a
            // provider: without one, login codes go by e-mail.
            Transport::Smtp { .. } => &[Channel::Email],
            Transport::Demo(_) => &[Channel::Email, Channel::Sms, Channel::Post],
            Transport::None => &[],
        }
    }
}

/// Subject and body of a message, French first, English second.
pub fn render(msg: &OutboxMessage) -> (String, String) {
    let p: Value = serde_json::from_slice(&msg.payload).unwrap_or(Value::Null);
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match msg.kind.as_str() {
        "login_code" => (
            "Votre code de connexion Carnet".into(),
            format!(
                "Votre code de connexion : {}\nIl est valable 10 minutes et ne sert qu'une fois. \
                 Si vous n'avez pas demandé à vous connecter, ignorez ce message.\n\n\
                 Your Carnet login code: {} (valid 10 minutes, single use).",
                s("code"),
                s("code")
            ),
        ),
        "information" => (
            "Votre espace numérique de santé Carnet".into(),
            format!(
                "Bonjour,\n\nUn espace numérique de santé a été créé pour vous. Il vous permet de conserver \
                 et de partager vos documents de santé avec les professionnels que vous choisissez ; chaque \
                 accès est tracé et vous en êtes informé.\n\n\
                 Votre code provisoire d'activation : {}\n\n\
                 Sans opposition de votre part avant le {}, votre espace sera ouvert automatiquement. \
                 Pour vous y opposer, rendez-vous sur le site avec ce code ou appelez le service d'assistance. \
                 Vous pourrez aussi fermer votre espace à tout moment.\n\n\
                 A personal health space was created for you. Activation code: {}. Without objection before \
                 {}, it opens automatically.",
                s("activation_code"),
                s("opposition_deadline"),
                s("activation_code"),
                s("opposition_deadline")
            ),
        ),
        "new_device" => (
            "Nouvelle connexion à votre espace Carnet".into(),
            "Une connexion à votre espace a eu lieu depuis un appareil que nous ne connaissions pas. \
             Si ce n'était pas vous, changez votre mot de passe et déconnectez tous les appareils.\n\n\
             Your space was accessed from a new device. If it was not you, change your password."
                .into(),
        ),
        "space_opened" => (
            "Votre espace Carnet est ouvert".into(),
            "Votre espace numérique de santé est désormais ouvert. Activez-le avec votre code provisoire \
             pour le consulter. Vous pouvez le fermer à tout moment.\n\nYour health space is now open."
                .into(),
        ),
        "majority" => (
            "Vous avez 18 ans : votre espace Carnet est à vous".into(),
            "Vous êtes majeur : vos représentants légaux n'ont plus accès à votre espace. Votre espace \
             reste ouvert sauf si vous le fermez. Choisissez vos propres identifiants pour vous connecter.\n\n\
             You are 18: your representatives no longer have access. Set your own credentials."
                .into(),
        ),
        other => (format!("Carnet : {other}"), "Connectez-vous à votre espace pour en savoir plus.".into()),
    }
}

/// Delivers one message; the address comes from the holder's administrative data.
async fn deliver(store: &Store, transport: &Transport, msg: &OutboxMessage) -> Result<(), MailError> {
    let admin: Value = match store.holder(msg.holder).await {
        Ok(h) => serde_json::from_slice(&h.administrative).unwrap_or(Value::Null),
        Err(_) => return Err(MailError::NoAddress),
    };
    let field = |k: &str| admin.get(k).and_then(Value::as_str).map(str::to_string);
    let to = match msg.channel {
        Channel::Email => field("email"),
        Channel::Sms => field("phone"),
        Channel::Post => field("address").or_else(|| Some("(adresse postale)".into())),
    }
    .ok_or(MailError::NoAddress)?;
    let (subject, body) = render(msg);
    match transport {
        Transport::Smtp { transport, from } => {
            let to: Mailbox = to.parse().map_err(|_| MailError::NoAddress)?;
            let email = Message::builder()
                .from(from.clone())
                .to(to)
                .subject(subject)
                .header(ContentType::TEXT_PLAIN)
                .body(body)
                .map_err(|e| MailError::Send(e.to_string()))?;
            transport
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string()))
        }
        Transport::Demo(mailbox) => {
            mailbox.push(Delivered {
                at: store.now().to_rfc3339(),
                channel: msg.channel.tag(),
                to,
                subject,
                body,
            });
            Ok(())
        }
        Transport::None => Err(MailError::Send("no transport".into())),
    }
}

/// One pass: claims what is due and delivers it. Returns how many were delivered.
pub async fn deliver_due(store: &Store, transport: &Transport) -> u64 {
    let mut delivered = 0;
    loop {
        let batch = match store.claim_messages_on(50, transport.channels()).await {
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
        if matches!(transport, Transport::None) {
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
