//! End-to-end: the health agenda through the real binary. Events by the holder and by a
//! professional with a grant (AG-1, AG-2), who may change what (AC-1..3, AC-8), recurrence,
//! vaccine reminders proposed from the vaccination record and the national schedule, the
//! `.ics` export and a private, revocable feed a calendar application reads (AG-3), and
//! reminders sent by e-mail over real SMTP exactly once across a `kill -9` of the server.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

fn rfc3339(unix: i64) -> String {
    carnet_domain::Timestamp::from_unix_seconds(unix).to_rfc3339()
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recurrence_vaccines_and_icalendar_ag1_ag3() {
    let w = World::start().await;
    let (c, base, holder) = (&w.c, &w.base, &w.camille);
    let me = |path: &str| w.me(path);
    let petit = w.pro("10000000002").await; // granted
    let moreau = w.pro("10000000003").await; // no grant
    let camille = w.camille_for(&petit).await;
    let pro = |path: &str| w.pro_url(&camille, path);

    // AG-1: the holder adds a weekly treatment reminder, Paris time, reminded an hour before.
    let r = post(
        c,
        &me("/agenda"),
        w.holder(),
        &json!({"kind": "treatment", "title": "Injection, semaine", "start": "2030-03-18T09:00",
                      "recurrence": {"frequency": "weekly", "count": 4}, "reminders": [60]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let weekly: Value = r.json().await.unwrap();
    // 18 March 2030 is winter time (UTC+1); 1 April 2030 is summer time (UTC+2): same 9:00.
    let upcoming: Vec<&str> = weekly["upcoming"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        upcoming.is_empty(),
        "more than a year ahead: nothing upcoming yet"
    );
    assert_eq!(weekly["start"], "2030-03-18T08:00:00Z");
    assert_eq!(weekly["next_reminder_at"], "2030-03-18T07:00:00Z");

    // Bad input is refused with the field named, and nothing is written.
    for (bad, why) in [
        (
            json!({"kind": "party", "title": "x", "start": "2030-01-01T10:00"}),
            "kind",
        ),
        (
            json!({"kind": "appointment", "title": " ", "start": "2030-01-01T10:00"}),
            "titre",
        ),
        (
            json!({"kind": "appointment", "title": "x", "start": "demain"}),
            "start",
        ),
        (
            json!({"kind": "appointment", "title": "x", "start": "2030-01-01T10:00", "end": "2030-01-01T09:00"}),
            "fin",
        ),
        (
            json!({"kind": "appointment", "title": "x", "start": "2030-01-01T10:00", "reminders": [999999]}),
            "rappels",
        ),
    ] {
        let r = post(c, &me("/agenda"), w.holder(), &bad).await;
        assert_eq!(r.status(), 422, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().contains(why), "{v}");
    }

    // AG-2: a professional with a grant adds an appointment; one without a grant cannot.
    let soon = now_unix() + 3 * 86_400;
    let r = post(
        c,
        &pro("/agenda"),
        As::Bearer(&petit),
        &json!({"kind": "appointment", "title": "Échographie de contrôle", "start": rfc3339(soon),
                      "location": "Hôpital de la Démo, salle 3", "reminders": [1440]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let appt: Value = r.json().await.unwrap();
    let appt_id = appt["id"].as_str().unwrap().to_string();
    let r = post(
        c,
        &pro("/agenda"),
        As::Bearer(&moreau),
        &json!({"kind": "appointment", "title": "Soins", "start": rfc3339(soon)}),
    )
    .await;
    assert_eq!(r.status(), 404);
    // The holder sees both; cannot change the professional's event (only its author can).
    let list: Value = get_json(c, &me("/agenda"), w.holder()).await;
    let titles: Vec<&str> = list["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.contains(&"Injection, semaine") && titles.contains(&"Échographie de contrôle"),
        "{titles:?}"
    );
    let r = delete(c, &me(&format!("/agenda/events/{appt_id}")), w.holder()).await;
    assert_eq!(r.status(), 404);
    let r = put(c, &pro(&format!("/agenda/events/{appt_id}")), As::Bearer(&petit), &json!({"kind": "appointment", "title": "Échographie de contrôle (salle 4)", "start": rfc3339(soon), "reminders": [1440]})).await;
    assert_eq!(r.status(), 200);

    // AG-1: vaccine reminders proposed from the vaccination record and the national schedule.
    let p: Value = get_json(c, &me("/agenda/vaccine-proposals"), w.holder()).await;
    let proposals = p["proposals"].as_array().unwrap();
    assert!(
        !proposals.is_empty(),
        "Camille (born 1984) is due a dTP booster: {p}"
    );
    let first = proposals
        .iter()
        .find(|p| p["vaccine"] == "dtp")
        .unwrap_or_else(|| panic!("the missed tetanus booster is proposed: {p}"));
    let r = post(
        c,
        &me("/agenda/vaccine-proposals"),
        w.holder(),
        &json!({"vaccine": first["vaccine"], "dose": first["dose"]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["kind"], "vaccine");
    // Once the dose is in the vaccination record, it is no longer proposed.
    let r = post(c, &me("/profile"), w.holder(), &json!({"section": "vaccinations", "text": first["label_fr"], "code": {"system": "atc", "code": "J07CA01"}, "date": "2025-01"})).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let p2: Value = get_json(c, &me("/agenda/vaccine-proposals"), w.holder()).await;
    assert!(
        p2["proposals"].as_array().unwrap().len() < proposals.len(),
        "{p2}"
    );

    // AG-3: `.ics` export, parsed by an independent iCalendar library when available.
    let r = get(c, &me("/agenda.ics"), w.holder()).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let ics = r.text().await.unwrap();
    assert!(ics.contains("RRULE:FREQ=WEEKLY;INTERVAL=1;COUNT=4\r\n"), "{ics}");
    assert!(ics.contains("DTSTART;TZID=Europe/Paris:20300318T090000\r\n"));
    assert!(ics.contains("LOCATION:Hôpital de la Démo\\, salle 3") || ics.contains("salle 4"));
    parse_with_python_icalendar(&ics, 6);

    // A private feed: created, read without a session (as a calendar app does), revoked.
    let r = c
        .post(me("/agenda/feeds"))
        .header("cookie", holder.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let feed: Value = r.json().await.unwrap();
    let url = feed["url"].as_str().unwrap().to_string();
    assert!(feed["webcal"].as_str().unwrap().starts_with("webcal://"));
    let path = url.split_once("/ical/").unwrap().1;
    let r = get(c, &format!("{base}/ical/{path}"), As::Anonymous).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap().matches("BEGIN:VEVENT").count(), 6);
    let feeds: Value = get_json(c, &me("/agenda/feeds"), w.holder()).await;
    assert!(feeds["feeds"][0]["last_used_at"].is_string());
    let r = delete(
        c,
        &me(&format!("/agenda/feeds/{}", feed["id"].as_str().unwrap())),
        w.holder(),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        get(c, &format!("{base}/ical/{path}"), As::Anonymous)
            .await
            .status(),
        404
    );
    assert_eq!(
        get(c, &format!("{base}/ical/not-a-token.ics"), As::Anonymous)
            .await
            .status(),
        404
    );

    // The holder deletes their own event.
    let id = weekly["id"].as_str().unwrap();
    let r = delete(c, &me(&format!("/agenda/events/{id}")), w.holder()).await;
    assert_eq!(r.status(), 204);
    // AC-6: the professional's accesses are in the history.
    let h: Value = get_json(c, &me("/traces"), w.holder()).await;
    assert!(h.to_string().contains("agenda/"), "{h}");
}

/// Parses the calendar with the Python `icalendar` package (a real client library), if the
/// test tools are installed, and checks the number of events it finds.
fn parse_with_python_icalendar(ics: &str, events: usize) {
    let Ok(python) = std::env::var("CARNET_TEST_PYTHON") else {
        eprintln!("CARNET_TEST_PYTHON not set: iCalendar parse by an independent library skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agenda.ics");
    std::fs::write(&file, ics).unwrap();
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, icalendar\n\
             cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())\n\
             evs = [c for c in cal.walk('VEVENT')]\n\
             for e in evs:\n\
             \x20   assert e.decoded('DTSTART').tzinfo is not None, e\n\
             \x20   str(e['SUMMARY'])\n\
             print(len(evs))",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "icalendar refused the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), events.to_string());
}

/// The reminder e-mails received for `to`: (how many, how many distinct Message-IDs).
fn reminder_mails(smtp: &Smtp, to: &str) -> (usize, usize) {
    let Ok(rd) = std::fs::read_dir(smtp.maildir.join("new")) else {
        return (0, 0);
    };
    let mut ids = std::collections::HashSet::new();
    let mut n = 0;
    for f in rd.flatten() {
        let raw = std::fs::read_to_string(f.path()).unwrap_or_default();
        if raw.contains(to) && decode_body(&raw).contains("agenda santé a lieu") {
            n += 1;
            let id = raw
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .map(str::to_string);
            ids.insert(id.expect("a Message-ID"));
        }
    }
    (n, ids.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_are_sent_once_and_never_lost_across_kill_9_ag3() {
    let t = tempfile::tempdir().unwrap();
    let Some(smtp) = start_smtp(t.path()) else {
        eprintln!("CARNET_TEST_PYTHON not set (no aiosmtpd): reminder delivery case skipped");
        return;
    };
    let data = t.path().join("data");
    // Seed with the demo (no job runs during the seeding: its interval is an hour).
    let mut demo = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .env("CARNET_JOB_INTERVAL_SECONDS", "3600")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let base = wait_listening(&mut demo);
    let c = client();
    let holder = demo_login(&c, &base, CAMILLE).await;
    // 24 events whose reminders (1 minute before) fall due one every 300 ms from 8 s on.
    const N: usize = 24;
    let t0 = now_unix() + 8;
    for i in 0..N {
        let start_ms = (t0 + 60) * 1000 + i as i64 * 300;
        let start = carnet_domain::Timestamp::from_micros(start_ms * 1000).to_rfc3339();
        let r = post(&c, &format!("{base}/api/v1/me/agenda"), As::Cookie(&holder), &json!({"kind": "appointment", "title": format!("Rendez-vous {i}"), "start": start, "reminders": [1]})).await;
        assert_eq!(r.status(), 201);
    }
    demo.kill().unwrap();
    demo.wait().unwrap();

    // The real server delivers by SMTP, running its jobs every second.
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let env = [
        ("CARNET_SMTP_URL", smtp_url.as_str()),
        ("CARNET_JOB_INTERVAL_SECONDS", "1"),
        // A message claimed by the killed server is sent again once its claim runs out.
        ("CARNET_OUTBOX_LEASE_SECONDS", "5"),
    ];
    let server = Server::start(&data, &[], &env);
    let deadline = Instant::now() + Duration::from_secs(60);
    while reminder_mails(&smtp, CAMILLE).1 < N / 3 {
        assert!(Instant::now() < deadline, "reminders did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Crash in the middle of the run.
    server.kill9();
    let sent_before = reminder_mails(&smtp, CAMILLE).1;
    assert!(
        sent_before < N,
        "the crash should come mid-way ({sent_before} of {N})"
    );
    let server = Server::start(&data, &[], &env);
    let deadline = Instant::now() + Duration::from_secs(60);
    while reminder_mails(&smtp, CAMILLE).1 < N {
        assert!(
            Instant::now() < deadline,
            "reminders lost: {:?} of {N}",
            reminder_mails(&smtp, CAMILLE)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let a few more job passes run: no reminder is queued twice. SMTP cannot be exactly once:
    // the one message in flight at the kill may be delivered again, with the same Message-ID
    // (receivers see one message); never a second reminder.
    std::thread::sleep(Duration::from_secs(4));
    let (mails, distinct) = reminder_mails(&smtp, CAMILLE);
    assert_eq!(distinct, N, "a reminder was queued twice or lost");
    assert!(
        mails <= N + 1,
        "more than the in-flight message was resent: {mails}"
    );
    drop(server);
}
