//! `carnet bench populate` (issue 10, item 1) on a fresh data directory: the spaces and records
//! it reports are there, re-running with a larger N adds only the difference, and the traces its
//! records left verify.

use crate::common::*;

#[test]
fn populate_creates_spaces_and_records_idempotently() {
    let (_t, data) = fresh_dir();
    let d = data.to_str().unwrap();
    assert!(run(&["init", "--data-dir", d], &[]).status.success());
    let populate = |n: &str| {
        let out = run(
            &[
                "bench",
                "populate",
                "--holders",
                n,
                "--every",
                "100",
                "--documents",
                "3",
                "--data-dir",
                d,
            ],
            &[],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let first = populate("250");
    assert!(first.contains("250 spaces created, 0 already there"), "{first}");
    assert!(
        first.contains("3 spaces activated with 9 documents, 9 profile entries, 72 measurements"),
        "{first}"
    );
    let second = populate("400");
    assert!(
        second.contains("150 spaces created, 250 already there"),
        "{second}"
    );
    assert!(
        second.contains("1 spaces activated with 3 documents"),
        "only the new ones get records: {second}"
    );
    let out = run(&["verify-traces", "--data-dir", d], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // A space with records is a real one: its holder can get a session.
    let out = run(&["token", "holder", &carnet_bench_ins(0), "--data-dir", d], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The INS `carnet bench populate` gives to its n-th synthetic holder (see `bench.rs`).
fn carnet_bench_ins(n: u64) -> String {
    let nir = format!("1{:02}0699{:06}", 30 + (n / 1_000_000) % 70, n % 1_000_000);
    let key = 97 - nir.parse::<u64>().unwrap() % 97;
    format!("{nir}{key:02}")
}
