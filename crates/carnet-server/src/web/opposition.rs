//! Objecting to the creation of one's space online (LC-2, LC-3): the letter's code and the INS,
//! then a confirmation that says what objecting means, then a proof of refusal — its reference
//! on the page, a PDF to keep, and the same proof sent by e-mail or post. The same checks and
//! limits as the API's (`/api/v1/opposition`); a wrong code and an unknown INS read alike (AC-8).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carnet_domain::{Event, Ins, Timestamp};
use carnet_store::StoreError;
use carnet_store::outbox::{Channel, OutboxMessage};

use super::auth::{anonymous_form_page, with_status};
use super::i18n::fr_en as tr;
use super::{
    Form, Nav, WebError, alert, check_pre_session, csrf_field, csrf_token, esc, french, notice, page,
};
use crate::api::auth::{limit, opposition_binding, opposition_limit};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/opposition", get(opposition_page).post(request))
        .route("/opposition/confirmer", post(confirm))
        .route("/opposition/preuve", post(proof))
}

const TITLE: &str = "M'opposer à la création de mon espace";

fn heading() -> &'static str {
    tr(TITLE, "Object to the creation of my space")
}

fn opposition_form(csrf: &str, ins: &str, message: &str) -> String {
    format!(
        "<h1>{}</h1>{}<p>{}</p>\
         <form method=\"post\" action=\"/opposition\" class=\"card\">{}\
         <p><label for=\"ins\">{}</label>\
         <input id=\"ins\" name=\"ins\" type=\"text\" inputmode=\"numeric\" autocomplete=\"off\" required value=\"{}\"></p>\
         <p><label for=\"code\">{}</label>\
         <input id=\"code\" name=\"code\" type=\"text\" autocomplete=\"one-time-code\" required></p>\
         <p><button type=\"submit\">{}</button></p></form>\
         <p><a href=\"/activation\">{}</a></p>",
        heading(),
        alert(message),
        tr(
            "Un espace numérique de santé est créé pour chaque assuré. Vous pouvez vous y opposer dans les six \
             semaines qui suivent le courrier ou l'e-mail qui vous l'a annoncé : indiquez votre numéro de \
             sécurité sociale et le code provisoire qu'il contient. Pour un enfant mineur, c'est son \
             représentant légal qui s'y oppose, avec le numéro et le code de l'enfant.",
            "A digital health space is created for every insured person. You may object within six weeks of \
             the letter or e-mail that announced it: give your social security number and the provisional \
             code it bears. For a minor, their legal representative objects with the child's number and code.",
        ),
        csrf_field(csrf),
        tr(
            "Numéro de sécurité sociale (15 chiffres, INS)",
            "Social security number (15 digits, INS)"
        ),
        esc(ins),
        tr("Code provisoire du courrier", "Provisional code from the letter"),
        tr("Continuer", "Continue"),
        tr(
            "Je souhaite plutôt activer mon espace",
            "I would rather activate my space"
        ),
    )
}

async fn opposition_page(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    anonymous_form_page(&s, &headers, TITLE, |csrf| opposition_form(csrf, "", "")).await
}

/// The person's INS and code as typed, checked: the INS parsed, the limits applied, the code
/// matched and the space still open to an opposition. The error is the page's message.
async fn checked(
    s: &AppState,
    peer: std::net::SocketAddr,
    typed_ins: &str,
    code: &str,
) -> Result<Ins, (StatusCode, String)> {
    let words = |e: ApiError| (e.status, french(&e));
    limit(s, &format!("opposition:ip:{}", peer.ip()), 900, 20)
        .await
        .map_err(words)?;
    let compact: String = typed_ins.chars().filter(|c| !c.is_whitespace()).collect();
    let Ok(ins) = Ins::parse(&compact) else {
        return Err((
            StatusCode::BAD_REQUEST,
            tr(
                "Ce numéro n'est pas valide : il compte 15 chiffres, clé comprise, comme sur votre carte Vitale.",
                "This number is not valid: it has 15 digits, key included, as on your Carte Vitale.",
            )
            .into(),
        ));
    };
    opposition_limit(s, &ins).await.map_err(words)?;
    let mismatch = || {
        (
            StatusCode::BAD_REQUEST,
            tr(
                "Ce numéro et ce code ne correspondent pas. Vérifiez-les sur le courrier ou l'e-mail reçu ; \
                 si le code a expiré, demandez-en un nouveau depuis la page « Activer mon espace ».",
                "This number and this code do not match. Check them on the letter or e-mail you received; if \
                 the code expired, ask for a new one from the \"Activate my space\" page.",
            )
            .to_string(),
        )
    };
    let store = &s.store;
    let id = match store.find_by_ins(&ins).await {
        Ok(Some(id)) => id,
        Ok(None) => return Err(mismatch()),
        Err(e) => return Err(words(e.into())),
    };
    match store.check_activation_code(id, code).await {
        Ok(true) => {}
        Ok(false) => return Err(mismatch()),
        Err(e) => return Err(words(e.into())),
    }
    let lifecycle = store.lifecycle(id).await.map_err(|e| words(e.into()))?;
    if lifecycle.apply(Event::Oppose, store.now()).is_err() {
        return Err((
            StatusCode::CONFLICT,
            tr(
                "Le délai de six semaines pour s'opposer est passé, ou l'opposition est déjà enregistrée. Si \
                 votre espace est ouvert, vous pouvez le fermer à tout moment depuis « Mon espace », et \
                 demander la suppression de ses données.",
                "The six-week period to object has ended, or the objection is already recorded. If your space \
                 is open, you may close it at any time from \"My space\" and ask for its data to be erased.",
            )
            .into(),
        ));
    }
    Ok(ins)
}

/// What both steps check first: the form's token, then the INS and the code
/// ([`checked`]). The page to show again when they fail.
async fn opened(
    s: &AppState,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Result<(String, Ins), Response>, WebError> {
    let secret = check_pre_session(s, headers, form).await?;
    let csrf = csrf_token(s, &secret).await?;
    let typed_ins = form.get("ins");
    Ok(match checked(s, peer, typed_ins, form.get("code").trim()).await {
        Ok(ins) => Ok((csrf, ins)),
        Err((status, message)) => Err(with_status(
            status,
            page(
                TITLE,
                &Nav::Anonymous,
                &opposition_form(&csrf, typed_ins, &message),
            ),
        )),
    })
}

async fn request(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    let (csrf, ins) = match opened(&s, peer, &headers, &form).await? {
        Ok(opened) => opened,
        Err(page) => return Ok(page),
    };
    let code = form.get("code").trim();
    let binding = opposition_binding(&s, &ins, code).await?;
    let confirmation = s
        .store
        .issue_confirmation("oppose", &binding)
        .await
        .map_err(ApiError::from)?;
    Ok(page(
        TITLE,
        &Nav::Anonymous,
        &format!(
            "<h1>{}</h1><div class=\"card\"><p>{}</p><ul><li>{}</li><li>{}</li><li>{}</li></ul></div>\
             <form method=\"post\" action=\"/opposition/confirmer\">{}\
             <input type=\"hidden\" name=\"ins\" value=\"{}\">\
             <input type=\"hidden\" name=\"code\" value=\"{}\">\
             <input type=\"hidden\" name=\"confirmation\" value=\"{}\">\
             <p><button type=\"submit\">{}</button> <a class=\"button secondary\" href=\"/\">{}</a></p></form>",
            tr("Confirmer votre opposition", "Confirm your objection"),
            tr(
                "En vous opposant à la création de votre espace numérique de santé :",
                "If you object to the creation of your digital health space:",
            ),
            tr(
                "aucun espace ne sera ouvert pour vous ; les professionnels de santé ne pourront pas y \
                 déposer vos documents (comptes rendus, résultats, ordonnances) ni les y consulter ;",
                "no space will be opened for you; health professionals will not be able to file your \
                 documents there (reports, results, prescriptions) nor read them there;",
            ),
            tr(
                "une preuve de votre refus vous est remise sur la page suivante et envoyée par e-mail, ou \
                 par courrier si nous n'avons pas d'adresse e-mail ;",
                "a proof of your refusal is given on the next page and sent by e-mail, or by post if we \
                 have no e-mail address;",
            ),
            tr(
                "vous pourrez changer d'avis et demander un espace plus tard, depuis la page « Activer mon \
                 espace » (« Recevoir un nouveau code »).",
                "you may change your mind and ask for a space later, from the \"Activate my space\" page \
                 (\"Get a new code\").",
            ),
            csrf_field(&csrf),
            esc(ins.as_str()),
            esc(code),
            esc(&confirmation),
            tr("Confirmer mon opposition", "Confirm my objection"),
            tr("Annuler", "Cancel"),
        ),
    )
    .into_response())
}

async fn confirm(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    let (csrf, ins) = match opened(&s, peer, &headers, &form).await? {
        Ok(opened) => opened,
        Err(page) => return Ok(page),
    };
    let (typed_ins, code) = (form.get("ins"), form.get("code").trim());
    let binding = opposition_binding(&s, &ins, code).await?;
    let valid = s
        .store
        .check_confirmation("oppose", &binding, form.get("confirmation"))
        .await
        .map_err(ApiError::from)?;
    if !valid {
        return Ok(with_status(
            StatusCode::BAD_REQUEST,
            page(
                TITLE,
                &Nav::Anonymous,
                &opposition_form(
                    &csrf,
                    typed_ins,
                    tr(
                        "La confirmation a expiré (elle vaut dix minutes) : rien n'a été enregistré. \
                         Recommencez, s'il vous plaît.",
                        "The confirmation expired (it lasts ten minutes): nothing was recorded. Please start again.",
                    ),
                ),
            ),
        ));
    }
    let (_, reference, at) = s
        .store
        .oppose_with_code(&ins, code)
        .await
        .map_err(ApiError::from)?;
    s.wake.notify_one();
    let binding = proof_binding(&ins, &reference, at);
    let tag = s
        .store
        .issue_confirmation("opposition-proof", &binding)
        .await
        .map_err(ApiError::from)?;
    Ok(page(
        TITLE,
        &Nav::Anonymous,
        &format!(
            "<h1>{}</h1>{}<p>{}</p>\
             <form method=\"post\" action=\"/opposition/preuve\">{}\
             <input type=\"hidden\" name=\"ins\" value=\"{}\">\
             <input type=\"hidden\" name=\"reference\" value=\"{}\">\
             <input type=\"hidden\" name=\"at\" value=\"{}\">\
             <input type=\"hidden\" name=\"tag\" value=\"{}\">\
             <p><button type=\"submit\">{}</button></p></form>",
            tr("Votre opposition est enregistrée", "Your objection is recorded"),
            notice(&format!(
                "{} {} ({} {}).",
                tr(
                    "Aucun espace numérique de santé ne sera ouvert pour vous. Opposition enregistrée le",
                    "No digital health space will be opened for you. Objection recorded on",
                ),
                esc(&crate::mail::long_date(&at.to_rfc3339())),
                tr("référence", "reference"),
                esc(&reference),
            )),
            tr(
                "Gardez cette preuve : téléchargez-la maintenant (PDF, à imprimer ou à conserver). Elle vous \
                 est aussi envoyée par e-mail, ou par courrier si nous n'avons pas d'adresse e-mail.",
                "Keep this proof: download it now (PDF, to print or keep). It is also sent to you by e-mail, \
                 or by post if we have no e-mail address.",
            ),
            csrf_field(&csrf),
            esc(ins.as_str()),
            esc(&reference),
            at.as_micros(),
            esc(&tag),
            tr(
                "Télécharger la preuve de mon opposition (PDF)",
                "Download the proof of my objection (PDF)"
            ),
        ),
    )
    .into_response())
}

/// What the proof's download is bound to: this person, this reference, this instant.
fn proof_binding(ins: &Ins, reference: &str, at: Timestamp) -> String {
    format!("{}:{reference}:{}", ins.as_str(), at.as_micros())
}

/// The proof of refusal as a PDF letter, for ten to twenty minutes after the opposition.
async fn proof(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    check_pre_session(&s, &headers, &form).await?;
    let gone = || WebError::from(ApiError::from(StoreError::NotFound));
    let ins = Ins::parse(form.get("ins")).map_err(|_| gone())?;
    let reference = form.get("reference");
    let at = Timestamp::from_micros(form.get("at").parse::<i64>().map_err(|_| gone())?);
    let valid = s
        .store
        .check_confirmation(
            "opposition-proof",
            &proof_binding(&ins, reference, at),
            form.get("tag"),
        )
        .await
        .map_err(ApiError::from)?;
    let holder = s.store.find_by_ins(&ins).await.map_err(ApiError::from)?;
    let (true, Some(holder)) = (valid, holder) else {
        return Err(gone());
    };
    let payload = serde_json::json!({ "reference": reference, "recorded_at": at.to_rfc3339() });
    let msg = OutboxMessage::new(
        holder,
        "opposition_proof",
        Channel::Post,
        payload.to_string().into_bytes(),
    );
    let mut letter = match crate::mail::letter(&s.store, &msg).await {
        Ok(l) => l,
        // No postal address on file: the proof is addressed to the person by name only.
        Err(_) => crate::letter::Letter {
            recipient: Vec::new(),
            date: String::new(),
            subject: crate::mail::words(&msg).subject,
            body: crate::mail::words(&msg).french,
            reference: String::new(),
        },
    };
    letter.date = crate::mail::long_date(&at.to_rfc3339());
    letter.reference = reference.to_string();
    let mut r = crate::letter::pdf(&letter).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"preuve-opposition-{}.pdf\"",
        reference
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}
