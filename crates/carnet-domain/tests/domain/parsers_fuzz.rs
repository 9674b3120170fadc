//! Fuzzing of the domain's parsers of outside input with proptest (issue 10, item 5): whatever
//! the bytes, each parser answers `Ok` or a readable `Err` — it never panics, never loops, and
//! what it accepts satisfies its own rules. Generators mix raw noise with inputs shaped like the
//! real thing (XML with CDA elements, CSV with the expected headers, scopes, URIs), so the runs
//! reach deep paths, not only the first check.
//!
//! CI runs the default 256 cases per target; by hand, `PROPTEST_CASES=100000 cargo test -p
//! carnet-domain --test domain parsers_fuzz --release` (RELIABILITY.md records runs and findings).

use carnet_domain::Timestamp;
use carnet_domain::catalogue::{parse_criteria, parse_scopes, redirect_uri_ok, rights_on};
use carnet_domain::document::{Format, check_content, parse_iso_date, parse_xds_time, read_cda_header};
use carnet_domain::reimbursement::{parse_amount, parse_csv_feed, parse_date};
use carnet_domain::roster::RawRosterLine;
use proptest::prelude::*;

const NOW: Timestamp = Timestamp::from_unix_seconds(1_795_000_000);

/// Text made of the pieces a format is built from, plus noise.
fn shaped(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::sample::select(pieces).prop_map(str::to_string),
            1 => "\\PC{0,12}",
            1 => "[ \\t\\r\\n,;\"<>/=&#%]{0,3}",
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

const CDA: &[&str] = &[
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    "<!DOCTYPE x [<!ENTITY e \"aaaa\">]>",
    "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">",
    "</ClinicalDocument>",
    "<title>",
    "</title>",
    "<code code=\"11488-4\" codeSystem=\"2.16.840.1.113883.6.1\"/>",
    "<effectiveTime value=\"20260312101500+0100\"/>",
    "<confidentialityCode code=\"N\"/>",
    "<author><assignedAuthor><id root=\"1.2.250.1.71.4.2.1\" extension=\"810000000001\"/>",
    "</assignedAuthor></author>",
    "<recordTarget><patientRole><id extension=\"284039900000145\" root=\"1.2.250.1.213.1.4.8\"/>",
    "</patientRole></recordTarget>",
    "&e;",
    "&amp;",
    "<![CDATA[",
    "]]>",
    "<!-- ",
    " -->",
    "Compte rendu",
];

const CSV_FEED: &[&str] = &[
    "ins,line_id,date_of_care,type_of_care,act_code,act_label,professional_name,professional_id,amount_paid,amount_reimbursed\n",
    "ins;line_id;date_of_care;type_of_care;amount_paid;amount_reimbursed\n",
    "284039900000145",
    "1840399000001",
    ",",
    ";",
    "\n",
    "\"",
    "L-1",
    "2026-03-12",
    "2099-01-01",
    "pharmacie",
    "consultation",
    "25,00",
    "30.5",
    "-1",
    "999999999999999999999",
    "10000000001",
];

const ROSTER: &[&str] = &[
    "ins,birth_name,given_names,sex,birth_date,email,phone,representative_ins,representative_kind,card_serial\n",
    "284039900000145",
    "MARTIN",
    "Camille",
    "F",
    "M",
    "1984-03-12",
    "2025-02-30",
    "camille@example.org",
    "+33612345678",
    "parent",
    "guardian",
    ",",
    "\n",
    "\"",
];

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// CDA headers (DM-2): no DTD, bounded depth, UTF-8 — any bytes give Ok or a reason.
    #[test]
    fn cda_headers_never_panic(text in shaped(CDA), noise in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = read_cda_header(text.as_bytes());
        let _ = read_cda_header(&noise);
        let _ = check_content(Format::Cda, text.as_bytes());
        if let Ok(h) = read_cda_header(text.as_bytes()) {
            prop_assert!(h.title.as_deref().is_none_or(|t| t.chars().count() <= 10_000));
        }
    }

    /// Every accepted format's content check on arbitrary bytes.
    #[test]
    fn content_checks_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for f in [Format::Pdf, Format::Cda, Format::Jpeg, Format::Png, Format::Text] {
            let _ = check_content(f, &bytes);
        }
    }

    /// The insurer's CSV feed (RB-1): lines numbered, each Ok or a reason; accepted lines
    /// validate or not, but never panic.
    #[test]
    fn reimbursement_feed_never_panics(text in shaped(CSV_FEED)) {
        if let Ok(lines) = parse_csv_feed(text.as_bytes()) {
            for (n, line) in lines {
                prop_assert!(n >= 1);
                if let Ok(raw) = line {
                    let _ = raw.validate(NOW);
                }
            }
        }
    }

    /// The insurer's roster (LC-1), read like `carnet import roster` reads it.
    #[test]
    fn roster_lines_never_panic(text in shaped(ROSTER)) {
        let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
        for line in r.deserialize::<RawRosterLine>().flatten() {
            if let Ok(rec) = line.validate(NOW) {
                prop_assert!(!rec.admin.ins.as_str().is_empty());
            }
        }
    }

    /// Dates, instants and amounts typed by people or sent by systems.
    #[test]
    fn small_parsers_never_panic(s in "\\PC{0,40}", shaped in "[0-9+\\-:TZ., ]{0,30}") {
        for x in [&s, &shaped] {
            let _ = parse_iso_date(x);
            let _ = parse_xds_time(x);
            let _ = parse_date(x);
            // Signs are the feed's validation's business (RB-1: "not negative"), not the parser's.
            if let Ok(cents) = parse_amount(x) {
                prop_assert!(x.contains(|c: char| c.is_ascii_digit()), "{} from {:?}", cents, x);
            }
            let _ = carnet_domain::Ins::parse(x);
        }
    }

    /// OAuth requests (CA-3): scopes and redirect URIs from any client.
    #[test]
    fn oauth_inputs_never_panic(
        scope in shaped(&["patient/", "user/", "*", ".", "rs", "cruds", "read", "write", "Observation",
                          "DocumentReference", " ", "launch/patient", "openid", "?category=x"]),
        uri in shaped(&["https://", "http://", "127.0.0.1", "localhost", "[::1]", ":8080", "/cb", "?x=1",
                        "#f", "@", "*", "app.example", "javascript:"]),
    ) {
        let scopes = parse_scopes(&scope);
        for t in ["Observation", "DocumentReference", "AuditEvent", "*"] {
            let _ = rights_on(&scopes, t);
        }
        if redirect_uri_ok(&uri) {
            prop_assert!(uri.starts_with("https://") || uri.starts_with("http://"));
            prop_assert!(!uri.contains('#') && !uri.contains('*'));
        }
        let _ = parse_criteria(&scope);
    }
}
