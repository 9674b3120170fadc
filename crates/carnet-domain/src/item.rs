//! Kinds of holder data. The kind is bound into the associated data of every ciphertext, so a
//! sealed value of one kind can never be replayed as another (e.g. an attachment as an
//! administrative record) even by someone who can write to the database.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// Administrative data of the holder (SPEC ID-1).
    Administrative,
    /// Metadata of an attachment (content type, size, plaintext hash).
    AttachmentMeta,
    /// The bytes of an attachment.
    AttachmentContent,
    /// The payload of a message waiting in the outbox.
    OutboxPayload,
    /// The holder's TOTP secret.
    TotpSecret,
    /// The holder's authorisation directory.
    AccessPolicy,
    /// An access trace entry.
    Trace,
    /// The metadata of a document of the shared medical record.
    DocumentMeta,
    /// The stated reason of an emergency access (AC-5).
    EmergencyReason,
    /// An entry of the medical profile (PR-1).
    ProfileEntry,
    /// A measurement (PR-1, PR-4).
    Measurement,
    /// The subject and parties of a conversation (MS-1).
    Conversation,
    /// A message of a conversation (MS-1).
    Message,
    /// An event of the health agenda (AG-1).
    AgendaEvent,
    /// A line of the insurer's reimbursement feed (RB-1).
    Reimbursement,
    /// What a professional's notice is about (S-7, AC-5: who opened the record, and why).
    ProNotice,
    /// What a holder's invitation to a carer offers (MI-5).
    CarerInvitation,
}

impl ItemKind {
    /// Stable tag, stored and bound into ciphertexts: never change an existing value.
    pub const fn tag(self) -> &'static str {
        match self {
            ItemKind::Administrative => "administrative",
            ItemKind::AttachmentMeta => "attachment_meta",
            ItemKind::AttachmentContent => "attachment_content",
            ItemKind::OutboxPayload => "outbox_payload",
            ItemKind::TotpSecret => "totp_secret",
            ItemKind::AccessPolicy => "access_policy",
            ItemKind::Trace => "trace",
            ItemKind::DocumentMeta => "document_meta",
            ItemKind::EmergencyReason => "emergency_reason",
            ItemKind::ProfileEntry => "profile_entry",
            ItemKind::Measurement => "measurement",
            ItemKind::Conversation => "conversation",
            ItemKind::Message => "message",
            ItemKind::AgendaEvent => "agenda_event",
            ItemKind::Reimbursement => "reimbursement",
            ItemKind::ProNotice => "pro_notice",
            ItemKind::CarerInvitation => "carer_invitation",
        }
    }
}
