//! `carnet demo`: a fresh demo data set at every start, in a directory that is marked as a
//! demo so that the demo never wipes a real installation.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use carnet_store::Store;

use crate::config::Config;

const DEMO_MARKER: &str = "DEMO";

/// Makes the data directory ready for a fresh demo: creates it, or empties a previous demo.
/// A directory that holds anything else is refused.
pub fn prepare(cfg: &Config) -> Result<()> {
    let dir = &cfg.store.data_dir;
    if cfg.store.database_url.is_some() || cfg.store.keys_url.is_some() {
        anyhow::bail!("the demo runs on the embedded SQLite default; do not set database_url or keys_url");
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

/// Fictitious holders (no real person: names are invented, INS use a test range).
const DEMO_HOLDERS: &[&str] = &[
    r#"{"family_name":"MARTIN","given":["Camille"],"birth_date":"1984-03-12","sex":"female","email":"camille.martin@demo.carnet.invalid"}"#,
    r#"{"family_name":"BERNARD","given":["Lucas"],"birth_date":"1957-09-30","sex":"male","email":"lucas.bernard@demo.carnet.invalid"}"#,
    r#"{"family_name":"PETIT","given":["Inès"],"birth_date":"2015-06-02","sex":"female","representatives":["Camille MARTIN"]}"#,
];

pub async fn seed(store: &Store, dir: &Path) -> Result<()> {
    for h in DEMO_HOLDERS {
        store.create_holder("informed", h.as_bytes()).await?;
    }
    std::fs::write(
        dir.join(DEMO_MARKER),
        b"demo data directory: wiped at every `carnet demo`\n",
    )
    .with_context(|| format!("marking {} as a demo directory", dir.display()))?;
    Ok(())
}

pub fn print_welcome(addr: SocketAddr, operator_token: &str) {
    println!();
    println!("  Carnet demo is running: http://{addr}/");
    println!("  Operator API token: {operator_token}");
    println!(
        "  Try: curl -H 'Authorization: Bearer {operator_token}' -H 'Content-Type: application/json' \\"
    );
    println!(
        "         -d '{{\"administrative\":{{\"family_name\":\"DURAND\"}}}}' http://{addr}/api/v1/operator/holders"
    );
    println!("  (Holder and professional logins arrive with the lifecycle and gate modules.)");
    println!("  Stop with Ctrl-C.");
    println!();
}
