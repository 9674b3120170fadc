//! End-to-end: secure messaging through the real binary (`carnet demo`): professionals start
//! conversations and the holder answers (MS-2), attachments checked like documents and filed
//! in the record in one step (MS-3), notices without content (MS-4), read receipts, ended
//! conversations, blocked professionals (AC-4), other professionals see nothing (AC-8), every
//! access traced (AC-6), nothing in clear in the database.

use crate::common::*;
use base64::Engine;
use serde_json::{Value, json};

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_between_professionals_and_the_holder_ms1_ms4() {
    let w = World::start().await;
    let (c, base, holder) = (&w.c, &w.base, &w.camille);
    let me = |path: &str| w.me(path);
    let moreau = w.pro("10000000003").await; // nurse, no grant
    let leroy = w.pro("10000000001").await; // médecin traitant
    let camille = w.camille_for(&leroy).await;
    let pro = |path: &str| w.pro_url(&camille, path);

    // The demo's own conversation (Dr LEROY wrote to Camille) and its notice are there.
    let demo_notices = outbox(c, base)
        .await
        .iter()
        .filter(|m| m["subject"].as_str().unwrap_or("").contains("Nouveau message"))
        .count();
    assert_eq!(demo_notices, 1);

    // MS-2: the holder cannot open a thread with someone who never wrote to them.
    let r = post(
        c,
        &me("/conversations"),
        w.holder(),
        &json!({"to": "rpps:10000000003", "subject": "Question", "text": "Bonjour"}),
    )
    .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("déjà écrit"), "{v}");
    // ... except a pharmacist, to whom she may send a prescription first (MS-2; the
    // directory spells the profession `pharmacien`): tried at the end of this test.

    // An attachment that is not what it says is refused, and nothing is written.
    let r = post(c, &pro("/conversations"), As::Bearer(&moreau), &json!({"subject": "Ordonnance", "text": "Voici", "attachments": [
            {"filename": "ordonnance.pdf", "content_type": "application/pdf", "content_base64": b64(b"not a pdf")}
        ]})).await;
    assert_eq!(r.status(), 422);

    // MS-2: any professional may write to a holder (no grant needed to send a message).
    let r = post(c, &pro("/conversations"), As::Bearer(&moreau), &json!({"subject": "Pansements", "text": "Bonjour, je passe jeudi à 9 h pour les soins.", "attachments": [
            {"filename": "ordonnance.pdf", "content_type": "application/pdf", "content_base64": b64(PDF)}
        ]})).await;
    assert_eq!(r.status(), 201);
    let t: Value = r.json().await.unwrap();
    let conv = t["id"].as_str().unwrap().to_string();
    let attachment = t["messages"][0]["attachments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(t["messages"][0]["sender"]["id"], "rpps:10000000003");

    // MS-4: the holder is told, without any content.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let notice = loop {
        let msgs = outbox(c, base).await;
        let news: Vec<&Value> = msgs
            .iter()
            .filter(|m| m["subject"].as_str().unwrap_or("").contains("Nouveau message"))
            .collect();
        if news.len() > demo_notices {
            break news[0].clone(); // newest first
        }
        assert!(std::time::Instant::now() < deadline, "no new-message notice");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let text = notice.to_string();
    assert!(!text.contains("Pansements") && !text.contains("jeudi"), "{text}");

    // The holder sees the conversation, unread; opening it sends a read receipt.
    let list: Value = get_json(c, &me("/conversations"), w.holder()).await;
    assert_eq!(list["conversations"].as_array().unwrap().len(), 2);
    // Most recent first; the demo's conversation with Dr LEROY is the other one.
    assert_eq!(list["conversations"][0]["unread"], 1);
    assert_eq!(list["conversations"][0]["counterpart_name"], "Sophie MOREAU");
    assert_eq!(list["conversations"][1]["counterpart_name"], "Dr Claire LEROY");
    let t: Value = get_json(c, &me(&format!("/conversations/{conv}")), w.holder()).await;
    assert_eq!(
        t["messages"][0]["text"],
        "Bonjour, je passe jeudi à 9 h pour les soins."
    );
    let seen: Value = get_json(c, &pro(&format!("/conversations/{conv}")), As::Bearer(&moreau)).await;
    assert!(seen["messages"][0]["read_at"].is_string(), "read receipt: {seen}");

    // The holder answers; the professional's inbox shows it unread, with ids only.
    let r = post(
        c,
        &me(&format!("/conversations/{conv}/messages")),
        w.holder(),
        &json!({"text": "Merci, je serai là."}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let inbox: Value = get_json(c, &format!("{base}/api/v1/pro/inbox"), As::Bearer(&moreau)).await;
    assert_eq!(inbox["conversations"][0]["patient"], camille.as_str());
    assert_eq!(inbox["conversations"][0]["unread"], 1);
    assert!(inbox.to_string().find("Merci").is_none());
    let notices: Value = get_json(c, &format!("{base}/api/v1/pro/me"), As::Bearer(&moreau)).await;
    assert!(notices.to_string().contains("new_message"), "{notices}");

    // AC-8: another professional, even the médecin traitant, sees nothing of it.
    let r = get(c, &pro(&format!("/conversations/{conv}")), As::Bearer(&leroy)).await;
    assert_eq!(r.status(), 404);
    let r = get(c, &pro("/conversations"), As::Bearer(&leroy)).await;
    let theirs: Value = r.json().await.unwrap();
    assert_eq!(
        theirs["conversations"].as_array().unwrap().len(),
        1,
        "only Dr LEROY's own: {theirs}"
    );
    assert_ne!(theirs["conversations"][0]["id"], conv.as_str());
    let r = get(
        c,
        &pro(&format!("/conversations/{conv}/attachments/{attachment}")),
        As::Bearer(&leroy),
    )
    .await;
    assert_eq!(r.status(), 404);

    // MS-3: the holder files the attachment in the record in one step.
    let r = c
        .post(me(&format!(
            "/conversations/{conv}/attachments/{attachment}/save"
        )))
        .header("cookie", holder.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let doc = r.json::<Value>().await.unwrap()["document"]
        .as_str()
        .unwrap()
        .to_string();
    let r = get(c, &me(&format!("/documents/{doc}/content")), w.holder()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), PDF);

    // MS-2: the professional ends the conversation; the holder cannot answer until they write.
    let r = c
        .post(pro(&format!("/conversations/{conv}/end")))
        .bearer_auth(&moreau)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = post(
        c,
        &me(&format!("/conversations/{conv}/messages")),
        w.holder(),
        &json!({"text": "Encore une question"}),
    )
    .await;
    assert_eq!(r.status(), 422);
    // ... but, having been written to, may start a new thread with them.
    let r = post(
        c,
        &me("/conversations"),
        w.holder(),
        &json!({"to": "rpps:10000000003", "subject": "Autre question", "text": "Bonjour"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    // The holder cannot end a conversation.
    let r = c
        .post(me(&format!("/conversations/{conv}/end")))
        .header("cookie", holder.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Writing again reopens it.
    let r = post(
        c,
        &pro(&format!("/conversations/{conv}/messages")),
        As::Bearer(&moreau),
        &json!({"text": "Je reprends contact."}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let r = post(
        c,
        &me(&format!("/conversations/{conv}/messages")),
        w.holder(),
        &json!({"text": "Très bien"}),
    )
    .await;
    assert_eq!(r.status(), 201);

    // AC-4: once blocked, the professional can neither write nor read.
    let r = post(
        c,
        &me("/access/blocked"),
        w.holder(),
        &json!({"professional": "10000000003"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let r = post(
        c,
        &pro("/conversations"),
        As::Bearer(&moreau),
        &json!({"subject": "Encore", "text": "Bonjour"}),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = get(c, &pro(&format!("/conversations/{conv}")), As::Bearer(&moreau)).await;
    assert_eq!(r.status(), 404);

    // AC-6: the accesses are in the holder's history, the refusals included.
    let h: Value = get_json(c, &me("/traces"), w.holder()).await;
    let text = h.to_string();
    assert!(text.contains("conversation/"), "{text}");
    assert!(text.contains("\"blocked\""), "{text}");

    // MS-2: the holder may write first to a pharmacist (a prescription), whom the directory
    // lists as `pharmacien`.
    let r = post(
        c,
        &me("/conversations"),
        w.holder(),
        &json!({"to": "rpps:10000000004", "subject": "Ordonnance", "text": "Bonjour, voici mon ordonnance."}),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // Nothing of the messages is in clear in the database files.
    drop(w.demo);
    for f in std::fs::read_dir(&w.data).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            for needle in ["Pansements", "jeudi", "Je reprends contact"] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} in clear in {}",
                    p.display()
                );
            }
        }
    }
}
