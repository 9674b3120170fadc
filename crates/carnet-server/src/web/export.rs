//! The readable copy of a space (ID-3): everything it holds, in French a person reads without
//! help — no field names, no state codes, no ISO dates — as a page of the site to print or
//! save (`/mon-espace/export`), and as `lisez-moi.html` in the export archive
//! (`api::export`). The same words as the space's own pages: documents' rows, profile
//! entries, reimbursements' table, the history's sentences.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::access::Grantee;
use serde_json::Value;

use super::access::{Whose, basis_words, describe, events_list, pro_label};
use super::i18n::{Reader, author_words, decimal, section_label};
use super::{Holder, Nav, WebError, class_label, day, esc, iso_day, page, when};
use crate::api::export::{SpaceCopy, collect};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/mon-espace/export", get(show))
}

async fn show(State(s): State<AppState>, h: Holder) -> Result<Response, WebError> {
    let side = h.holder_side(&s).await?;
    let copy = collect(&s, h.space(), &h.actor(), &side).await?;
    let body = readable_body(&s, &copy, h.own_space(), &h.space_name).await?;
    let links = format!(
        "<div class=\"card no-print\"><p>{}</p><ul>\
         <li><a href=\"/api/v1/me/export.zip\" download>{}</a></li>\
         <li><a href=\"/api/v1/me/export\" download>{}</a></li></ul>\
         <p class=\"muted\">{}</p></div>",
        "Cette page est la copie lisible de l'espace : imprimez-la ou enregistrez-la en PDF depuis votre \
         navigateur (menu Imprimer). Pour garder aussi les fichiers :",
        "Archive complète (ZIP) : cette page, les documents et les pièces jointes en fichiers, et les données \
         au format JSON",
        "Données seules au format JSON (documents inclus, pour un autre service ou une application)",
        "Ces fichiers contiennent des données de santé : gardez-les en lieu sûr.",
    );
    Ok(page(
        "Copie de l'espace",
        &Nav::Holder {
            h: &h,
            current: "/mon-espace",
        },
        &match body.find("</p>") {
            // The title and the date first, then what to do with the copy.
            Some(i) => format!("{}{links}{}", &body[..i + 4], &body[i + 4..]),
            None => format!("{links}{body}"),
        },
    )
    .into_response())
}

/// The archive's `lisez-moi.html`: the readable copy as a page of its own.
pub async fn readable_document(
    s: &AppState,
    copy: &SpaceCopy,
    own: bool,
    space_name: &str,
) -> Result<String, ApiError> {
    let body = readable_body(s, copy, own, space_name)
        .await
        .map_err(|e| ApiError::new(e.status, "export", e.message))?;
    Ok(format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">\
         <title>Copie de l'espace Carnet</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:.25rem .5rem;text-align:left}}\
         .num{{text-align:right}}.muted{{color:#555}}</style></head><body><main>{body}\
         <p class=\"muted\">Les fichiers des documents sont dans le dossier <code>documents</code> de cette archive, \
         les pièces jointes des messages dans <code>messages</code>, et toutes les données au format JSON dans \
         <code>carnet-export.json</code>.</p></main></body></html>"
    ))
}

fn section(id: &str, title: &str, count: Option<usize>, inner: &str) -> String {
    let count = count.map(|n| format!(" ({n})")).unwrap_or_default();
    format!("<section aria-labelledby=\"{id}\"><h2 id=\"{id}\">{title}{count}</h2>{inner}</section>")
}

fn none(text: &str) -> String {
    format!("<p class=\"muted\">{text}</p>")
}

/// The copy's sections, under its title.
pub async fn readable_body(
    s: &AppState,
    c: &SpaceCopy,
    own: bool,
    space_name: &str,
) -> Result<String, WebError> {
    let reader = if own {
        Reader::Holder
    } else {
        Reader::Representative
    };
    let whose = Whose::new(own, space_name);
    let title = if own {
        "Copie de votre espace".to_string()
    } else {
        format!("Copie de l'espace {}", super::de(space_name))
    };
    let mut out = format!(
        "<h1>{}</h1><p>Faite {}. {}</p>",
        esc(&title),
        esc(&when(c.exported_at)),
        esc(&lifecycle_words(&c.record.lifecycle)),
    );
    out.push_str(
        "<nav aria-label=\"Sommaire\"><ul class=\"inline\">\
         <li><a href=\"#identite\">Identité</a></li><li><a href=\"#documents\">Documents</a></li>\
         <li><a href=\"#profil\">Profil médical</a></li><li><a href=\"#mesures\">Mesures</a></li>\
         <li><a href=\"#messages\">Messages</a></li><li><a href=\"#agenda\">Agenda</a></li>\
         <li><a href=\"#remboursements\">Remboursements</a></li>\
         <li><a href=\"#autorisations\">Autorisations</a></li><li><a href=\"#historique\">Historique des accès</a></li>\
         </ul></nav>",
    );
    out.push_str(&section(
        "identite",
        "Identité",
        None,
        &identity(&c.record.administrative),
    ));

    let docs = if c.documents.is_empty() {
        none("Aucun document.")
    } else {
        let rows: String = c
            .documents
            .iter()
            .map(|d| {
                let m = &d.meta;
                let date = m.event_date.as_deref().map(iso_day).unwrap_or_default();
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                    esc(&m.title),
                    esc(class_label(m.class)),
                    esc(&date),
                    esc(&author_words(&m.author, &m.author_name, reader)),
                    esc(&day(m.uploaded_at)),
                    esc(&size_words(m.size)),
                )
            })
            .collect();
        format!(
            "<div class=\"table\"><table><thead><tr><th scope=\"col\">Titre</th><th scope=\"col\">Catégorie</th>\
             <th scope=\"col\">Date de l'acte</th><th scope=\"col\">Auteur</th><th scope=\"col\">Déposé le</th>\
             <th scope=\"col\" class=\"num\">Taille</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
    };
    out.push_str(&section("documents", "Documents", Some(c.documents.len()), &docs));

    let profile = if c.profile.is_empty() {
        none("Aucune information dans le profil médical.")
    } else {
        let mut by_section: Vec<(&'static str, Vec<String>)> = Vec::new();
        for e in &c.profile {
            let label = section_label(e.entry.section);
            let line = super::profile::entry_label(e, reader);
            match by_section.iter_mut().find(|(l, _)| *l == label) {
                Some((_, v)) => v.push(line),
                None => by_section.push((label, vec![line])),
            }
        }
        by_section
            .iter()
            .map(|(label, lines)| {
                format!(
                    "<h3>{}</h3><ul>{}</ul>",
                    esc(label),
                    lines
                        .iter()
                        .map(|l| format!("<li>{}</li>", esc(l)))
                        .collect::<String>()
                )
            })
            .collect()
    };
    out.push_str(&section("profil", "Profil médical", None, &profile));

    let measures = if c.measurements.is_empty() {
        none("Aucune mesure.")
    } else {
        let rows: String = c
            .measurements
            .iter()
            .map(|(m, p)| {
                format!(
                    "<tr><td>{}</td><td class=\"num\">{} {}</td><td>{}</td><td>{}</td></tr>",
                    esc(m.label_fr),
                    esc(&decimal(p.measurement.value)),
                    esc(m.unit_words()),
                    esc(when(p.measurement.at).trim_start_matches("le ")),
                    esc(&author_words(&p.author, "", reader)),
                )
            })
            .collect();
        format!(
            "<div class=\"table\"><table><thead><tr><th scope=\"col\">Mesure</th><th scope=\"col\" class=\"num\">Valeur</th>\
             <th scope=\"col\">Date</th><th scope=\"col\">Notée par</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
    };
    out.push_str(&section(
        "mesures",
        "Mesures",
        Some(c.measurements.len()),
        &measures,
    ));

    let messages = if c.conversations.is_empty() {
        none("Aucune conversation.")
    } else {
        c.conversations
            .iter()
            .map(|t| {
                let msgs: String = t
                    .messages
                    .iter()
                    .map(|m| {
                        let files = if m.attachments.is_empty() {
                            String::new()
                        } else {
                            format!(
                                "<p class=\"muted\">Pièces jointes : {}</p>",
                                m.attachments
                                    .iter()
                                    .map(|a| esc(&a.filename))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        };
                        format!(
                            "<li><p><strong>{}</strong>, {}</p><p>{}</p>{files}</li>",
                            esc(&m.sender_name),
                            esc(&when(m.sent_at)),
                            esc(&m.text).replace('\n', "<br>"),
                        )
                    })
                    .collect();
                format!(
                    "<h3>{} <span class=\"muted\">— avec {}</span></h3><ol class=\"events\">{msgs}</ol>",
                    esc(&t.conversation.subject),
                    esc(&t.conversation.counterpart_name),
                )
            })
            .collect()
    };
    out.push_str(&section(
        "messages",
        "Messages",
        Some(c.conversations.len()),
        &messages,
    ));

    let agenda = if c.agenda.is_empty() {
        none("Aucun événement.")
    } else {
        format!(
            "<ul>{}</ul>",
            c.agenda
                .iter()
                .map(|e| format!(
                    "<li>{} : {} — {}{}</li>",
                    esc(super::agenda::kind_label(e.event.kind)),
                    esc(&e.event.title),
                    esc(&when(e.event.start)),
                    e.event
                        .location
                        .as_deref()
                        .map(|l| format!(", {}", esc(l)))
                        .unwrap_or_default()
                ))
                .collect::<String>()
        )
    };
    out.push_str(&section("agenda", "Agenda", Some(c.agenda.len()), &agenda));

    let reimbursements = if c.reimbursements.is_empty() {
        none("Aucun remboursement.")
    } else {
        format!(
            "<div class=\"table\"><table><thead><tr><th scope=\"col\">Date des soins</th><th scope=\"col\">Type</th>\
             <th scope=\"col\">Acte</th><th scope=\"col\">Professionnel</th><th scope=\"col\" class=\"num\">Payé</th>\
             <th scope=\"col\" class=\"num\">Remboursé</th><th scope=\"col\" class=\"num\">Reste à charge</th>\
             </tr></thead><tbody>{}</tbody></table></div>",
            c.reimbursements
                .iter()
                .map(super::reimbursements::row)
                .collect::<String>()
        )
    };
    out.push_str(&section(
        "remboursements",
        "Remboursements",
        Some(c.reimbursements.len()),
        &reimbursements,
    ));

    out.push_str(&section(
        "autorisations",
        "Autorisations",
        None,
        &authorisations(s, c).await?,
    ));

    let lines = describe(s, &c.history, &whose).await?;
    let history = events_list("ol", &lines, &none("Aucun accès enregistré."));
    out.push_str(&section(
        "historique",
        "Historique des accès",
        Some(lines.len()),
        &history,
    ));
    Ok(out)
}

async fn authorisations(s: &AppState, c: &SpaceCopy) -> Result<String, WebError> {
    let p = &c.policy;
    let mut items = Vec::new();
    match &p.medecin_traitant {
        Some(id) => items.push(format!("Médecin traitant : {}", pro_label(s, id).await?)),
        None => items.push("Aucun médecin traitant déclaré.".into()),
    }
    for g in &p.grants {
        let who = match &g.grantee {
            Grantee::Professional { id } => pro_label(s, id).await?,
            Grantee::Establishment { id } => match s.store.organisation_name(&id.0).await {
                Ok(Some(name)) => format!("{name} (FINESS {})", id.0),
                _ => format!("Établissement FINESS {}", id.0),
            },
            Grantee::App { id } => format!("Application {}", id.0),
            Grantee::Carer { id } => match super::display_name(s, *id).await {
                Ok(name) => format!("{name} (aidant)"),
                Err(_) => "Un aidant dont l'espace a été supprimé".into(),
            },
        };
        let what = match &g.categories {
            None => "tout le dossier".to_string(),
            Some(cats) => cats
                .iter()
                .map(|c| class_label(*c))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let until = g
            .until
            .map(|t| format!(", jusqu'au {}", day(t)))
            .unwrap_or_default();
        items.push(format!(
            "{who} : {what}{until}{}",
            basis_words(s, &g.basis).await?
        ));
    }
    for b in &p.blocked {
        items.push(format!("Bloqué : {}", pro_label(s, b).await?));
    }
    let settings = [
        (p.hide_all, "Tout le dossier est masqué aux professionnels."),
        (
            p.care_team_objection,
            "Vous vous opposez à l'accès présumé des équipes de soins.",
        ),
        (
            p.regulation_consent,
            "Les médecins régulateurs du SAMU peuvent consulter l'espace en cas d'appel.",
        ),
    ];
    items.extend(settings.iter().filter(|(on, _)| *on).map(|(_, t)| t.to_string()));
    Ok(format!(
        "<ul>{}</ul>",
        items
            .iter()
            .map(|i| format!("<li>{}</li>", esc(i)))
            .collect::<String>()
    ))
}

/// "Espace ouvert depuis le 3 mars 2026." — the lifecycle in words.
fn lifecycle_words(l: &carnet_domain::Lifecycle) -> String {
    use carnet_domain::Lifecycle as L;
    let since = crate::mail::long_date(&l.since().to_rfc3339());
    match l {
        L::Informed { .. } => format!("Espace annoncé le {since}, pas encore ouvert."),
        L::Open { .. } => format!("Espace ouvert depuis le {since}, pas encore activé."),
        L::Activated { .. } => format!("Espace ouvert et activé depuis le {since}."),
        L::Closed { .. } => format!("Espace fermé depuis le {since}."),
        _ => format!("Dernier changement d'état le {since}."),
    }
}

/// "1,2 Mo", "350 Ko".
fn size_words(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{} Mo", decimal((bytes as f64 / 100_000.0).round() / 10.0))
    } else {
        format!("{} Ko", (bytes as f64 / 1000.0).ceil() as u64)
    }
}

/// The administrative data with French labels, in a set order.
fn identity(admin: &[u8]) -> String {
    let v: Value = serde_json::from_slice(admin).unwrap_or_default();
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let rows = [
        ("Nom de naissance", text("birth_name")),
        ("Nom d'usage", text("used_name")),
        (
            "Prénoms",
            v.get("given_names")
                .and_then(Value::as_array)
                .map(|g| g.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")),
        ),
        (
            "Sexe",
            text("sex").map(|s| {
                match s.as_str() {
                    "F" | "female" => "féminin",
                    "M" | "male" => "masculin",
                    _ => "non précisé",
                }
                .to_string()
            }),
        ),
        ("Date de naissance", text("birth_date").map(|d| iso_day(&d))),
        ("Lieu de naissance", text("birth_place")),
        ("Identifiant national de santé (INS)", text("ins")),
        ("Adresse postale", text("address")),
        ("Adresse e-mail", text("email")),
        ("Téléphone", text("phone")),
    ];
    format!(
        "<dl class=\"meta\">{}</dl>",
        rows.iter()
            .filter_map(|(label, value)| value.as_ref().map(|v| format!(
                "<dt>{}</dt><dd>{}</dd>",
                esc(label),
                esc(v)
            )))
            .collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_identity_read_as_words() {
        assert_eq!(size_words(350_000), "350 Ko");
        assert_eq!(size_words(1_234_567), "1,2 Mo");
        let html = identity(br#"{"birth_name":"MARTIN","given_names":["Camille","Marie"],"sex":"F","birth_date":"1984-03-12"}"#);
        assert!(html.contains("<dt>Prénoms</dt><dd>Camille, Marie</dd>"), "{html}");
        assert!(
            html.contains("<dd>féminin</dd>") && html.contains("<dd>12/03/1984</dd>"),
            "{html}"
        );
        assert!(
            !html.contains("birth_name") && !html.contains("Nom d&#39;usage"),
            "{html}"
        );
    }
}
