//! The home page. The full web interface arrives with issue 7; until then this page says what
//! the instance is, in French first.

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(home))
}

async fn home(State(s): State<AppState>) -> Html<String> {
    let demo = if s.settings.demo {
        "<p><strong>Instance de démonstration</strong> : les données sont fictives et recréées à chaque démarrage.</p>"
    } else {
        ""
    };
    Html(format!(
        r#"<!doctype html>
<html lang="fr">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Carnet — espace numérique de santé</title></head>
<body>
<main>
<h1>Carnet</h1>
<p>Votre espace numérique de santé : vos documents, votre profil médical, vos messages et vos rendez-vous, partagés avec les professionnels que vous choisissez. Chaque accès est tracé et vous en êtes informé.</p>
{demo}
<p lang="en">Carnet is a personal health space. Every access is traced and the holder is told at once.</p>
<ul>
<li><a href="/healthz">/healthz</a> — état du processus</li>
<li><a href="/readyz">/readyz</a> — disponibilité du stockage</li>
</ul>
</main>
</body>
</html>"#
    ))
}
