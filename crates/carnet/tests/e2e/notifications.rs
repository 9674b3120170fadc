//! End-to-end: the holder is told of accesses at once (SPEC AC-6, AC-5, DM-7) — live in the
//! space through server-sent events (resumable with `Last-Event-ID`), in a paged list, and by
//! e-mail and/or SMS as the holder chose, with no health content; denials are traced but not
//! notified; a stream ends with its session.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

async fn list_documents_as(c: &reqwest::Client, base: &str, token: &str, patient: &str) -> u16 {
    get(
        c,
        &format!("{base}/api/v1/pro/patients/{patient}/documents"),
        As::Bearer(token),
    )
    .await
    .status()
    .as_u16()
}

/// Reads a server-sent-event stream until `done` holds for the text so far.
async fn read_until(r: &mut reqwest::Response, buf: &mut String, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done(buf) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "stream never showed what was expected; got:\n{buf}"
        );
        match tokio::time::timeout(left, r.chunk()).await {
            Ok(Ok(Some(bytes))) => buf.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) => panic!("stream ended; got:\n{buf}"),
            Ok(Err(e)) => panic!("stream failed: {e}"),
            Err(_) => {}
        }
    }
}

fn access_notices(msgs: &[Value], channel: &str, to: &str) -> usize {
    msgs.iter()
        .filter(|m| {
            m["channel"] == channel && m["to"] == to && m["subject"].as_str().unwrap_or("").contains("accès")
        })
        .count()
}

async fn wait_outbox(
    c: &reqwest::Client,
    base: &str,
    what: &str,
    ok: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let msgs = outbox(c, base).await;
        if ok(&msgs) {
            return msgs;
        }
        assert!(Instant::now() < deadline, "{what}: {msgs:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accesses_are_notified_live_and_by_the_chosen_channels_ac6() {
    let w = World::start().await;
    let (c, base, holder) = (&w.c, &w.base, &w.camille);

    // The live stream, from now on.
    let mut live = get(c, &format!("{base}/api/v1/me/notifications/stream"), w.holder()).await;
    assert_eq!(live.status(), 200);
    assert!(
        live.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // No session, no stream.
    let r = get(
        c,
        &format!("{base}/api/v1/me/notifications/stream"),
        As::Anonymous,
    )
    .await;
    assert_eq!(r.status(), 401);

    let leroy = w.pro("10000000001").await;
    let camille = w.camille_for(&leroy).await;

    // A nurse without a grant is refused: traced, not notified.
    let moreau = w.pro("10000000003").await;
    assert_eq!(list_documents_as(c, base, &moreau, &camille).await, 200);
    // The médecin traitant reads the record: the holder sees it at once, with who it was
    // (after the lookup by INS, told too: issue 33).
    assert_eq!(list_documents_as(c, base, &leroy, &camille).await, 200);
    let mut buf = String::new();
    read_until(&mut live, &mut buf, |b| {
        b.matches("event: access").count() >= 2 && b.contains("LEROY")
    })
    .await;
    assert!(!buf.contains("10000000003"), "a denial is not a notice: {buf}");
    let id: i64 = buf
        .lines()
        .filter_map(|l| l.strip_prefix("id: ").or_else(|| l.strip_prefix("id:")))
        .next_back()
        .expect("an event id")
        .trim()
        .parse()
        .unwrap();

    // A browser that lost the connection resumes after the last event it saw.
    let mut again = c
        .get(format!("{base}/api/v1/me/notifications/stream"))
        .header("cookie", holder.as_str())
        .header("last-event-id", (id - 1).to_string())
        .send()
        .await
        .unwrap();
    let mut buf2 = String::new();
    read_until(&mut again, &mut buf2, |b| {
        b.contains(&format!("id: {id}")) || b.contains(&format!("id:{id}"))
    })
    .await;
    drop(again);

    // The list: newest first, allowed accesses by professionals only.
    let list: Value = get_json(c, &format!("{base}/api/v1/me/notifications"), w.holder()).await;
    let items = list["notifications"].as_array().unwrap();
    assert_eq!(items[0]["seq"], id);
    assert_eq!(items[0]["who"]["family_name"], "LEROY");
    assert!(items.iter().all(|n| n["actor"]["id"] != "10000000003"), "{list}");

    // AC-6: the holder filters the whole history by who and when; the denial is there.
    let traces = |q: &'static str| {
        let (c, holder, base) = (c.clone(), holder.clone(), base.clone());
        async move {
            let r = get(&c, &format!("{base}/api/v1/me/traces?{q}"), As::Cookie(&holder)).await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, v) = traces("who=10000000003").await;
    assert_eq!(status, 200);
    let t = v["traces"].as_array().unwrap();
    assert!(
        !t.is_empty()
            && t.iter()
                .all(|e| e["actor"]["id"] == "10000000003" && e["allowed"] == false),
        "{v}"
    );
    let (_, v) = traces("from=2000-01-01T00:00:00Z&who=10000000001").await;
    assert!(!v["traces"].as_array().unwrap().is_empty());
    let (_, v) = traces("from=2999-01-01T00:00:00Z").await;
    assert!(v["traces"].as_array().unwrap().is_empty());
    let (_, v) = traces("to=2000-01-01T00:00:00Z").await;
    assert!(v["traces"].as_array().unwrap().is_empty());
    let (status, v) = traces("from=yesterday").await;
    assert_eq!(status, 400);
    assert!(v["message"].as_str().unwrap().contains("RFC 3339"), "{v}");

    // By default the holder is told by e-mail (collapsed while one waits to be sent).
    let prefs: Value = get_json(
        c,
        &format!("{base}/api/v1/me/notifications/preferences"),
        w.holder(),
    )
    .await;
    assert_eq!(prefs, json!({"email": true, "sms": false, "language": "fr"}));
    wait_outbox(c, base, "an access e-mail", |m| {
        access_notices(m, "email", CAMILLE) >= 1
    })
    .await;
    // Let the outbox drain (delivery runs at least every 3 s): every notice queued before the
    // change of preferences is sent by e-mail.
    let mut emails = access_notices(&outbox(c, base).await, "email", CAMILLE);
    loop {
        tokio::time::sleep(Duration::from_secs(4)).await;
        let now = access_notices(&outbox(c, base).await, "email", CAMILLE);
        if now == emails {
            break;
        }
        emails = now;
    }

    // Malformed preferences are refused and change nothing.
    for bad in [
        json!({"email": "yes", "sms": true}),
        json!({"email": true}),
        json!({"email": true, "sms": false, "pigeon": true}),
    ] {
        let r = put(
            c,
            &format!("{base}/api/v1/me/notifications/preferences"),
            w.holder(),
            &bad,
        )
        .await;
        assert!(r.status().is_client_error(), "{bad}: {}", r.status());
    }
    // SMS only, from the next notice on.
    let r = put(
        c,
        &format!("{base}/api/v1/me/notifications/preferences"),
        w.holder(),
        &json!({"email": false, "sms": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let petit = w.pro("10000000002").await;
    assert_eq!(list_documents_as(c, base, &petit, &camille).await, 200);
    read_until(&mut live, &mut buf, |b| b.contains("PETIT")).await;
    let msgs = wait_outbox(c, base, "an access SMS", |m| {
        m.iter()
            .any(|m| m["channel"] == "sms" && m["to"] == "+33639980000")
    })
    .await;
    assert_eq!(access_notices(&msgs, "email", CAMILLE), emails, "no more e-mail");
    // No health content in what leaves the space: no title, no professional, no specialty.
    for m in msgs
        .iter()
        .filter(|m| m["to"] == "+33639980000" || m["to"] == CAMILLE)
    {
        let text = format!("{} {}", m["subject"], m["body"]);
        for word in ["Ordonnance", "Échographie", "LEROY", "PETIT", "radiolog"] {
            assert!(!text.contains(word), "{word} in {text}");
        }
    }

    // Logging out ends the stream.
    let r = c
        .post(format!("{base}/api/v1/auth/logout"))
        .header("cookie", holder.as_str())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout(Duration::from_secs(1), live.chunk()).await {
            Ok(Ok(None)) | Ok(Err(_)) => break,
            _ => assert!(Instant::now() < deadline, "the stream outlived its session"),
        }
    }
}
