//! The demo world most scenarios start from (a fresh `carnet demo`, Camille MARTIN logged
//! in), and short ways to call the API as someone: a request is one line that says who sends
//! what, so a scenario reads as its steps.

use std::path::PathBuf;

use reqwest::{Client, Method, Response};
use serde_json::{Value, json};

use super::{Demo, camille_ins, client, demo_login, fresh_dir, pro_token, start_demo};

/// Camille MARTIN's demo login (the holder of most scenarios).
pub const CAMILLE: &str = "camille.martin@demo.carnet.invalid";

/// Who a request is sent as.
#[derive(Clone, Copy, Debug)]
pub enum As<'a> {
    /// A holder's (or representative's) session cookie.
    Cookie(&'a str),
    /// A professional's, system's or app's bearer token.
    Bearer(&'a str),
    Anonymous,
}

/// Sends `method url` as `who`, with `body` as JSON when given: the response, whatever its
/// status (the scenario asserts it).
pub async fn call(c: &Client, method: Method, url: &str, who: As<'_>, body: Option<&Value>) -> Response {
    let mut rq = c.request(method, url);
    rq = match who {
        As::Cookie(cookie) => rq.header("cookie", cookie),
        As::Bearer(token) => rq.bearer_auth(token),
        As::Anonymous => rq,
    };
    if let Some(b) = body {
        rq = rq.json(b);
    }
    rq.send().await.unwrap()
}

pub async fn get(c: &Client, url: &str, who: As<'_>) -> Response {
    call(c, Method::GET, url, who, None).await
}

pub async fn post<T: serde::Serialize + ?Sized>(c: &Client, url: &str, who: As<'_>, body: &T) -> Response {
    call(
        c,
        Method::POST,
        url,
        who,
        Some(&serde_json::to_value(body).unwrap()),
    )
    .await
}

pub async fn put<T: serde::Serialize + ?Sized>(c: &Client, url: &str, who: As<'_>, body: &T) -> Response {
    call(
        c,
        Method::PUT,
        url,
        who,
        Some(&serde_json::to_value(body).unwrap()),
    )
    .await
}

pub async fn delete(c: &Client, url: &str, who: As<'_>) -> Response {
    call(c, Method::DELETE, url, who, None).await
}

/// The JSON answer of a GET that must succeed.
pub async fn get_json(c: &Client, url: &str, who: As<'_>) -> Value {
    let r = get(c, url, who).await;
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().await.unwrap()
}

/// The id of the patient a professional finds by INS (`POST /api/v1/pro/patients/lookup`,
/// traced like any lookup).
pub async fn lookup(c: &Client, base: &str, token: &str, ins: &str) -> String {
    let r = post(
        c,
        &format!("{base}/api/v1/pro/patients/lookup"),
        As::Bearer(token),
        &json!({ "ins": ins }),
    )
    .await;
    assert_eq!(r.status(), 200, "lookup of {ins}");
    r.json::<Value>().await.unwrap()["patient"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A fresh `carnet demo` with Camille logged in; stopped and removed when dropped.
pub struct World {
    pub demo: Demo,
    pub base: String,
    pub c: Client,
    /// Camille's session cookie.
    pub camille: String,
    pub data: PathBuf,
    _dir: tempfile::TempDir,
}

impl World {
    pub async fn start() -> World {
        let (dir, data) = fresh_dir();
        let demo = start_demo(&data);
        let base = demo.base.clone();
        let c = client();
        let camille = demo_login(&c, &base, CAMILLE).await;
        World {
            demo,
            base,
            c,
            camille,
            data,
            _dir: dir,
        }
    }

    /// Camille, as the sender of a request.
    pub fn holder(&self) -> As<'_> {
        As::Cookie(&self.camille)
    }

    /// A URL of Camille's side of the API: `me("/agenda")`.
    pub fn me(&self, path: &str) -> String {
        format!("{}/api/v1/me{path}", self.base)
    }

    /// A demo professional's bearer token.
    pub async fn pro(&self, rpps: &str) -> String {
        pro_token(&self.c, &self.base, rpps).await
    }

    /// Camille's patient id as the professional with `token` finds her by INS.
    pub async fn camille_for(&self, token: &str) -> String {
        lookup(&self.c, &self.base, token, &camille_ins()).await
    }

    /// A URL of a patient's record on the professional side: `pro_url(&id, "/agenda")`.
    pub fn pro_url(&self, patient: &str, path: &str) -> String {
        format!("{}/api/v1/pro/patients/{patient}{path}", self.base)
    }
}
