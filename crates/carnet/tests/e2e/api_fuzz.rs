//! API fuzzing (issue 10, item 6): schemathesis (PyPI) reads the OpenAPI description of the
//! non-FHIR JSON API (`docs/openapi.yaml`), generates requests — valid, invalid, and
//! sequences — and sends them to the real server (`carnet demo`) as a logged-in holder; the
//! check is that no request gets a 5xx. Skipped with a message when schemathesis is missing
//! (`scripts/test-tools` installs it). `CARNET_API_FUZZ_EXAMPLES` raises the examples per
//! operation for a longer run by hand (RELIABILITY.md).

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_api_never_answers_5xx_to_schemathesis() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let st = root.join("target/test-tools/st-venv/bin/st");
    if !st.exists() {
        eprintln!("schemathesis not installed (scripts/test-tools): API fuzzing skipped");
        return;
    }
    let (_t, data) = fresh_dir();
    let demo = start_demo(&data);
    let c = client();
    let session = demo_login(&c, &demo.base, "camille.martin@demo.carnet.invalid").await;
    let examples = std::env::var("CARNET_API_FUZZ_EXAMPLES").unwrap_or_else(|_| "10".into());
    let out = std::process::Command::new(&st)
        .arg("run")
        .arg(root.join("docs/openapi.yaml"))
        .args(["--url", &demo.base])
        .args(["-H", &format!("Cookie: {session}")])
        .args(["--checks", "not_a_server_error", "--max-examples", &examples])
        .args(["--exclude-path-regex", "logout|close", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: String = stdout
        .lines()
        .filter(|l| l.contains("generated") || l.contains("Tested:") || l.contains("failed"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Tested: 49"),
        "every operation of the description was tried: {summary}"
    );
    eprintln!("API fuzzing: {summary}");
}
