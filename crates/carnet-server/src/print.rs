//! The print batch (LC-2): letters for people without an e-mail address, or whose e-mail
//! failed for good, leave the outbox as PDF files in a batch an operator hands to a print
//! service (`carnet admin print-letters --out DIR`, run daily).
//!
//! A batch is a directory `courrier-YYYY-MM-DD-HHMMSS` (France's time) holding one PDF per
//! letter (`0001.pdf`, …) and `manifest.csv`: file, reference (the outbox message's id),
//! kind, pages, recipient and address lines, the PDF's SHA-256. Every file is flushed to disk
//! before the letters are marked sent, so a crash between the two yields the same letters
//! again in the next batch (at least once, as every delivery of the outbox): the print
//! service drops a reference it has already printed. A letter without a postal address stays
//! in the outbox, counted in the summary, until the insurer's roster gives one.

use std::io::Write;
use std::path::{Path, PathBuf};

use carnet_store::Store;
use carnet_store::outbox::Channel;

/// What one export did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// The batch's directory; `None` when no letter was waiting.
    pub dir: Option<PathBuf>,
    pub letters: usize,
    /// Letters left in the outbox for want of a postal address.
    pub without_address: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    #[error("outbox: {0}")]
    Store(#[from] carnet_store::StoreError),
    #[error("writing the batch: {0}")]
    Io(#[from] std::io::Error),
}

/// Claims every letter waiting for the post, writes them as one batch under `out`, then marks
/// them sent.
pub async fn export_batch(store: &Store, out: &Path) -> Result<BatchSummary, PrintError> {
    let mut summary = BatchSummary::default();
    let mut done = Vec::new();
    let mut manifest = String::from("file,reference,kind,pages,recipient,sha256\n");
    let mut skipped = Vec::new();
    loop {
        let batch = store.claim_messages_on(100, &[Channel::Post]).await?;
        if batch.is_empty() {
            break;
        }
        for msg in batch {
            let letter = match crate::mail::letter(store, &msg).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(kind = %msg.kind, error = %e, "letter not printable; kept in the outbox");
                    skipped.push(msg);
                    continue;
                }
            };
            let dir = match &summary.dir {
                Some(d) => d.clone(),
                None => {
                    let d = out.join(batch_name(store));
                    std::fs::create_dir_all(&d)?;
                    summary.dir = Some(d.clone());
                    d
                }
            };
            let bytes = crate::letter::pdf(&letter);
            let file = format!("{:04}.pdf", done.len() + 1);
            write_synced(&dir.join(&file), &bytes)?;
            let pages = crate::letter::page_count(&letter);
            manifest.push_str(&format!(
                "{file},{},{},{pages},{},{}\n",
                msg.id,
                msg.kind,
                csv_field(&letter.recipient.join(" / ")),
                carnet_store::crypto::sha256_hex(&bytes)
            ));
            done.push(msg.id);
        }
    }
    if let Some(dir) = &summary.dir {
        write_synced(&dir.join("manifest.csv"), manifest.as_bytes())?;
        std::fs::File::open(dir)?.sync_all()?;
    }
    for id in &done {
        store.mark_sent(*id).await?;
    }
    for msg in &skipped {
        store.mark_failed(msg.id, msg.attempts).await?;
    }
    summary.letters = done.len();
    summary.without_address = skipped.len();
    Ok(summary)
}

/// `courrier-2027-01-17-093000`, in France's time.
fn batch_name(store: &Store) -> String {
    let now = store.now();
    crate::web::paris(now).map_or_else(
        || format!("courrier-{}", now.unix_seconds()),
        |t| {
            format!(
                "courrier-{:04}-{:02}-{:02}-{:02}{:02}{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        },
    )
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A CSV field (RFC 4180): quoted, inner quotes doubled.
fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted() {
        assert_eq!(
            csv_field("Léa \"Lou\" MARTIN / 1 rue, Paris"),
            "\"Léa \"\"Lou\"\" MARTIN / 1 rue, Paris\""
        );
    }
}
