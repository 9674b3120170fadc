//! Secure messaging (SPEC MS-1..4), pure: who may start, read, answer or end a conversation,
//! what a message may hold, and the holder's address.
//!
//! Rules (MS-2): professionals and establishments start conversations; the holder (or their
//! legal representative) answers, and starts a new thread only with a professional or an
//! establishment that already wrote to them, or with a pharmacy (to send a prescription). A
//! professional can end a conversation: the holder cannot answer until the professional writes
//! again. There are no messages between holders (a counterpart is never a holder: the type says
//! so). A professional cannot write in a closed space, nor to a holder who blocked them (AC-4).
//! Messages are health data: every decision here is traced by the gate like any other (AC-6).

use serde::{Deserialize, Serialize};

use crate::access::{Actor, Decision, OrganisationId, ProfessionalId, Reason, SpaceFacts};
use crate::ins::Ins;
use crate::lifecycle::Lifecycle;

/// The other side of a conversation: a professional (RPPS) or an establishment (FINESS).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Counterpart {
    Professional { id: ProfessionalId },
    Establishment { id: OrganisationId },
}

impl Counterpart {
    /// A stable key (`rpps:…`, `finess:…`), stored to find a counterpart's conversations.
    pub fn key(&self) -> String {
        match self {
            Counterpart::Professional { id } => format!("rpps:{}", id.0),
            Counterpart::Establishment { id } => format!("finess:{}", id.0),
        }
    }

    pub fn parse_key(s: &str) -> Option<Counterpart> {
        let (kind, id) = s.split_once(':')?;
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        match kind {
            "rpps" => Some(Counterpart::Professional {
                id: ProfessionalId(id.to_string()),
            }),
            "finess" => Some(Counterpart::Establishment {
                id: OrganisationId(id.to_string()),
            }),
            _ => None,
        }
    }

    /// The counterpart an actor is, if it is one.
    pub fn of(actor: &Actor) -> Option<Counterpart> {
        match actor {
            Actor::Professional { id, .. } => Some(Counterpart::Professional { id: id.clone() }),
            Actor::Establishment { id } => Some(Counterpart::Establishment { id: id.clone() }),
            _ => None,
        }
    }
}

/// What is asked of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageAction {
    /// Start a new conversation.
    Start,
    /// Read a conversation (marks the other side's messages read).
    Read,
    /// Write in an existing conversation.
    Reply,
    /// End a conversation (professionals and establishments only).
    End,
}

impl MessageAction {
    /// The access action it is traced as.
    pub const fn access_action(self) -> crate::access::Action {
        match self {
            MessageAction::Start | MessageAction::Reply => crate::access::Action::Create,
            MessageAction::Read => crate::access::Action::Read,
            MessageAction::End => crate::access::Action::Update,
        }
    }
}

/// What the messaging rule needs to know besides the space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationFacts {
    /// The conversation's counterpart (for a start: the one written to).
    pub counterpart: Counterpart,
    /// The counterpart ended it and has not written since (MS-2).
    pub ended: bool,
    /// The counterpart already wrote to this holder (in any conversation).
    pub counterpart_wrote_before: bool,
    /// The counterpart is a pharmacy (the holder may send it a prescription first, MS-2).
    pub counterpart_is_pharmacy: bool,
}

const fn allow(reason: Reason) -> Decision {
    Decision {
        allowed: true,
        reason,
        emergency: false,
    }
}

const fn deny(reason: Reason) -> Decision {
    Decision {
        allowed: false,
        reason,
        emergency: false,
    }
}

/// Decides a messaging request (MS-2, AC-4, LC-5, LC-6).
pub fn decide_message(
    actor: &Actor,
    action: MessageAction,
    conv: &ConversationFacts,
    space: &SpaceFacts,
) -> Decision {
    match space.lifecycle {
        Lifecycle::Informed { .. } | Lifecycle::Opposed { .. } | Lifecycle::Erased { .. } => {
            return deny(Reason::NoSpace);
        }
        // LC-5b: nobody writes to or reads a suspended space.
        Lifecycle::Suspended { .. } | Lifecycle::SuspensionContested { .. } => {
            return deny(Reason::SpaceSuspended);
        }
        Lifecycle::Open { .. }
        | Lifecycle::Activated { .. }
        | Lifecycle::Closed { .. }
        | Lifecycle::Deceased { .. } => {}
    }
    match actor {
        Actor::Operator { .. } => deny(Reason::OperatorsSeeNoHealthData),
        // MI-5: a carer reads documents; the holder's conversations stay theirs.
        Actor::App { .. } | Actor::Carer { .. } => deny(Reason::NotAParticipant),
        Actor::Holder { .. } | Actor::Representative { .. } => {
            let is_rep = matches!(actor, Actor::Representative { .. });
            match space.lifecycle {
                Lifecycle::Closed { .. } => return deny(Reason::SpaceClosed),
                // LC-6: after death, representatives keep reading; nobody writes.
                Lifecycle::Deceased { .. } if !is_rep || action != MessageAction::Read => {
                    return deny(Reason::SpaceClosed);
                }
                _ => {}
            }
            let ok = if is_rep {
                Reason::Representative
            } else {
                Reason::Holder
            };
            match action {
                MessageAction::Read => allow(ok),
                MessageAction::Start if conv.counterpart_wrote_before || conv.counterpart_is_pharmacy => {
                    allow(ok)
                }
                MessageAction::Start => deny(Reason::NoPriorExchange),
                MessageAction::Reply if conv.ended => deny(Reason::ConversationEnded),
                MessageAction::Reply => allow(ok),
                MessageAction::End => deny(Reason::NotAParticipant),
            }
        }
        Actor::Professional { .. } | Actor::Establishment { .. } => {
            if matches!(
                space.lifecycle,
                Lifecycle::Closed { .. } | Lifecycle::Deceased { .. }
            ) {
                return deny(Reason::SpaceClosed);
            }
            if let Actor::Professional { id, .. } = actor
                && space.blocked.contains(id)
            {
                return deny(Reason::Blocked);
            }
            if Counterpart::of(actor).as_ref() != Some(&conv.counterpart) {
                return deny(Reason::NotAParticipant);
            }
            // Any MSSanté mailbox may write to a holder (MS-2); writing again reopens an
            // ended conversation.
            allow(Reason::Author)
        }
    }
}

/// Why a message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("le message est vide / the message is empty")]
    Empty,
    #[error("message trop long (au plus {MAX_BODY_CHARS} caractères) / message too long")]
    TooLong,
    #[error("objet trop long (au plus {MAX_SUBJECT_CHARS} caractères) / subject too long")]
    SubjectTooLong,
    #[error("trop de pièces jointes (au plus {MAX_ATTACHMENTS}) / too many attachments")]
    TooManyAttachments,
    #[error("nom de pièce jointe invalide / invalid attachment name")]
    BadFilename,
}

pub const MAX_BODY_CHARS: usize = 20_000;
pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_ATTACHMENTS: usize = 10;

/// Checks a message's text, subject (for a new conversation) and attachment names; returns
/// the trimmed text. A message with attachments only may have an empty text.
pub fn check_message(
    subject: Option<&str>,
    body: &str,
    attachment_names: &[&str],
) -> Result<String, MessageError> {
    let body = body.trim();
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(MessageError::TooLong);
    }
    if subject.is_some_and(|s| s.trim().chars().count() > MAX_SUBJECT_CHARS) {
        return Err(MessageError::SubjectTooLong);
    }
    if attachment_names.len() > MAX_ATTACHMENTS {
        return Err(MessageError::TooManyAttachments);
    }
    for n in attachment_names {
        if n.is_empty() || n.len() > 200 || n.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
            return Err(MessageError::BadFilename);
        }
    }
    if body.is_empty() && attachment_names.is_empty() {
        return Err(MessageError::Empty);
    }
    Ok(body.to_string())
}

/// The holder's secure-messaging address, derived from their INS (MS-1), e.g.
/// `185027512345625@patient.carnet.localhost` (MSSanté uses the same shape, under its own domain).
pub fn holder_address(ins: &Ins, domain: &str) -> String {
    format!("{}@{}", ins.as_str(), domain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::access::PracticeRole;
    use crate::id::HolderId;
    use proptest::prelude::*;

    fn space(lifecycle: Lifecycle, blocked: Vec<ProfessionalId>) -> SpaceFacts {
        SpaceFacts {
            lifecycle,
            medecin_traitant: None,
            blocked,
            grants: vec![],
            regulation_consent: false,
            hide_all: false,
            care_team_objection: false,
        }
    }

    fn activated() -> Lifecycle {
        Lifecycle::Activated {
            since: Timestamp::from_micros(0),
        }
    }

    fn pro(id: &str) -> Actor {
        Actor::Professional {
            id: ProfessionalId(id.into()),
            profession: "10".into(),
            role: PracticeRole::Care,
        }
    }

    fn conv(pro: &str, ended: bool, wrote: bool) -> ConversationFacts {
        ConversationFacts {
            counterpart: Counterpart::Professional {
                id: ProfessionalId(pro.into()),
            },
            ended,
            counterpart_wrote_before: wrote,
            counterpart_is_pharmacy: false,
        }
    }

    fn holder() -> Actor {
        Actor::Holder {
            id: HolderId::from_uuid(uuid::Uuid::nil()),
        }
    }

    #[test]
    fn ms2_professionals_start_holders_answer() {
        let s = space(activated(), vec![]);
        assert!(decide_message(&pro("1"), MessageAction::Start, &conv("1", false, false), &s).allowed);
        let d = decide_message(&holder(), MessageAction::Start, &conv("1", false, false), &s);
        assert_eq!(d.reason, Reason::NoPriorExchange);
        assert!(decide_message(&holder(), MessageAction::Start, &conv("1", false, true), &s).allowed);
        assert!(decide_message(&holder(), MessageAction::Reply, &conv("1", false, true), &s).allowed);
    }

    #[test]
    fn ms2_pharmacy_may_receive_a_first_message() {
        let s = space(activated(), vec![]);
        let mut c = conv("1", false, false);
        c.counterpart = Counterpart::Establishment {
            id: OrganisationId("750000001".into()),
        };
        c.counterpart_is_pharmacy = true;
        assert!(decide_message(&holder(), MessageAction::Start, &c, &s).allowed);
    }

    #[test]
    fn ms2_an_ended_conversation_takes_no_answer_until_the_professional_writes() {
        let s = space(activated(), vec![]);
        let d = decide_message(&holder(), MessageAction::Reply, &conv("1", true, true), &s);
        assert_eq!(d.reason, Reason::ConversationEnded);
        assert!(decide_message(&pro("1"), MessageAction::Reply, &conv("1", true, true), &s).allowed);
        assert!(!decide_message(&holder(), MessageAction::End, &conv("1", false, true), &s).allowed);
        assert!(decide_message(&pro("1"), MessageAction::End, &conv("1", false, true), &s).allowed);
    }

    #[test]
    fn another_professional_sees_nothing_of_a_conversation() {
        let s = space(activated(), vec![]);
        for a in [MessageAction::Read, MessageAction::Reply, MessageAction::End] {
            let d = decide_message(&pro("2"), a, &conv("1", false, true), &s);
            assert_eq!(d.reason, Reason::NotAParticipant);
        }
    }

    #[test]
    fn address_is_derived_from_the_ins() {
        let ins = Ins::parse("185027512345625").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            holder_address(&ins, "patient.carnet.localhost"),
            "185027512345625@patient.carnet.localhost"
        );
    }

    #[test]
    fn message_checks() {
        assert_eq!(check_message(None, "  ", &[]), Err(MessageError::Empty));
        assert_eq!(check_message(None, "", &["ordonnance.pdf"]), Ok(String::new()));
        assert_eq!(check_message(None, " bonjour ", &[]), Ok("bonjour".into()));
        assert_eq!(
            check_message(None, "x", &["../etc/passwd"]),
            Err(MessageError::BadFilename)
        );
        let long = "é".repeat(MAX_BODY_CHARS + 1);
        assert_eq!(check_message(None, &long, &[]), Err(MessageError::TooLong));
    }

    fn lifecycle_strategy() -> impl Strategy<Value = Lifecycle> {
        let t = Timestamp::from_micros(0);
        prop_oneof![
            Just(Lifecycle::Informed { informed_at: t }),
            Just(Lifecycle::Activated { since: t }),
            Just(Lifecycle::Closed { at: t }),
            Just(Lifecycle::Erased { at: t }),
        ]
    }

    proptest! {
        /// MS-2, AC-4, LC-5: whatever the facts, a holder never starts a conversation with
        /// someone who never wrote (pharmacies aside), a blocked professional never gets
        /// anything, and nothing is written in a closed space.
        #[test]
        fn messaging_invariants(
            lc in lifecycle_strategy(),
            blocked in any::<bool>(),
            ended in any::<bool>(),
            wrote in any::<bool>(),
            pharmacy in any::<bool>(),
            who in 0u8..3,
            action in prop_oneof![Just(MessageAction::Start), Just(MessageAction::Read), Just(MessageAction::Reply), Just(MessageAction::End)],
        ) {
            let s = space(lc, if blocked { vec![ProfessionalId("1".into())] } else { vec![] });
            let mut c = conv("1", ended, wrote);
            c.counterpart_is_pharmacy = pharmacy;
            let actor = match who { 0 => holder(), 1 => pro("1"), _ => pro("2") };
            let d = decide_message(&actor, action, &c, &s);
            if matches!(actor, Actor::Holder { .. }) && action == MessageAction::Start && !wrote && !pharmacy {
                prop_assert!(!d.allowed);
            }
            if matches!(actor, Actor::Professional { .. }) && blocked && who == 1 {
                prop_assert!(!d.allowed);
            }
            if matches!(lc, Lifecycle::Closed { .. }) && action != MessageAction::Read {
                prop_assert!(!d.allowed);
            }
            if who == 2 {
                prop_assert!(!d.allowed);
            }
        }
    }
}
