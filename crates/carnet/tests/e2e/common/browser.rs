//! A browser without JavaScript for the end-to-end tests: cookies kept by hand (the server's
//! cookies are `Secure`, which reqwest's store would not send over plain HTTP), redirects not
//! followed, forms posted with their anti-CSRF token; the demo holder's login through the forms.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::{As, find_after, get_json};

pub const LOGIN: &str = "camille.martin@demo.carnet.invalid";

/// A cookie-keeping client that does not follow redirects and runs no script: what a browser
/// without JavaScript does.
pub struct Browser {
    pub c: reqwest::Client,
    pub base: String,
    pub jar: BTreeMap<String, String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub html: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    pub fn csrf(&self) -> String {
        self.field("csrf")
    }
    /// The value of the form field `name` (the first one), e.g. a hidden field.
    pub fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let i = self
            .html
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} field in {}", self.html))
            + marker.len();
        self.html[i..].split('"').next().unwrap().to_string()
    }
    pub fn title(&self) -> String {
        let i = self.html.find("<title>").expect("a title") + 7;
        self.html[i..].split("</title>").next().unwrap().to_string()
    }
}

pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut u = reqwest::Url::parse("http://x/").unwrap();
    u.query_pairs_mut().extend_pairs(pairs);
    u.query().unwrap_or("").to_string()
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Browser {
            c: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
            jar: BTreeMap::new(),
        }
    }
    pub fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
    pub fn absorb(&mut self, h: &HeaderMap) {
        for v in h.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let first = v.split(';').next().unwrap();
            let (k, val) = first.split_once('=').unwrap();
            if val.is_empty() || v.contains("Max-Age=0") {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_string(), val.to_string());
            }
        }
    }
    pub async fn send(&mut self, rb: reqwest::RequestBuilder) -> Page {
        let r = rb.header("cookie", self.cookie_header()).send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        self.absorb(&headers);
        Page {
            status,
            headers,
            html: r.text().await.unwrap(),
        }
    }
    /// GET `path` with the browser's cookies and parse the JSON answer (the JSON API as the
    /// logged-in person).
    pub async fn json(&self, path: &str) -> Value {
        self.c
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
    pub async fn get(&mut self, path: &str) -> Page {
        let rb = self.c.get(format!("{}{path}", self.base));
        self.send(rb).await
    }
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let rb = self
            .c
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form));
        self.send(rb).await
    }
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &str, &[u8]),
    ) -> Page {
        self.post_files(path, fields, "fichier", file).await
    }
    pub async fn post_files(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file_field: &str,
        file: (&str, &str, &[u8]),
    ) -> Page {
        let b = "----carnet-test-boundary-7d1f";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                file.0, file.1
            )
            .as_bytes(),
        );
        body.extend_from_slice(file.2);
        body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
        let rb = self
            .c
            .post(format!("{}{path}", self.base))
            .header("content-type", format!("multipart/form-data; boundary={b}"))
            .body(body);
        self.send(rb).await
    }

    /// Logs Camille in through the forms: password, then the code from the demo outbox.
    /// Returns where the login sends the browser (`/`, or back to a pending app authorisation).
    pub async fn login(&mut self) -> String {
        self.login_as(LOGIN).await
    }

    /// [`Browser::login`] for another demo holder (same demo password).
    pub async fn login_as(&mut self, login: &str) -> String {
        let before = codes_to(&self.c, &self.base, login).await.len();
        let p = self.get("/connexion").await;
        assert_eq!(p.status, 200);
        let p = self
            .post(
                "/connexion",
                &[
                    ("csrf", &p.csrf()),
                    ("login", login),
                    ("password", "demo-carnet-2026"),
                ],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.html);
        let challenge = {
            let i = p.html.find("name=\"challenge\" value=\"").unwrap() + 24;
            p.html[i..].split('"').next().unwrap().to_string()
        };
        let code = loop {
            let c = codes_to(&self.c, &self.base, login).await;
            if c.len() > before {
                break find_after(&c[0], "Votre code de connexion : ", 6);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let p = self
            .post(
                "/connexion/code",
                &[
                    ("csrf", &p.csrf()),
                    ("challenge", &challenge),
                    ("channel", "email"),
                    ("code", &code),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.html);
        assert!(self.jar.contains_key("__Host-carnet_session"));
        p.location().to_string()
    }
}

/// The newest message (the demo outbox lists newest first) to `to` whose subject is `subject`, waiting for it.
pub async fn mail_to(b: &Browser, to: &str, subject: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let all: Value = get_json(&b.c, &format!("{}/demo/outbox.json", b.base), As::Anonymous).await;
        if let Some(m) = all
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["to"] == to && m["subject"] == subject)
        {
            return m["body"].as_str().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no '{subject}' to {to}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Bodies of the login-code messages to `to`, newest first.
pub async fn codes_to(c: &reqwest::Client, base: &str, to: &str) -> Vec<String> {
    super::outbox(c, base)
        .await
        .iter()
        .filter(|m| m["to"] == to && m["subject"].as_str().unwrap().contains("code de connexion"))
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

/// A PKCE verifier and its S256 challenge (RFC 7636).
pub fn pkce(seed: &str) -> (String, String) {
    use base64::Engine;
    let verifier = format!("{seed}-{}", "v".repeat(50));
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    (verifier, challenge)
}

/// The query of a redirect's location.
pub fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    let u = reqwest::Url::parse(location).unwrap();
    u.query_pairs().into_owned().collect()
}

/// The consent screen at `path` answered "authorise" with the categories `ticked`; the query
/// of the redirect to `redirect`.
pub async fn consent_to(
    b: &mut Browser,
    path: &str,
    ticked: &[&str],
    redirect: &str,
) -> std::collections::HashMap<String, String> {
    let p = b.get(path).await;
    assert_eq!(p.status, 200, "{}", p.html);
    let mut form: Vec<(String, String)> = Vec::new();
    for field in p.html.split("<input type=\"hidden\" name=\"").skip(1) {
        let name = field.split('"').next().unwrap().to_string();
        let value = field.split("value=\"").nth(1).unwrap().split('"').next().unwrap();
        form.push((
            name,
            value
                .replace("&amp;", "&")
                .replace("&quot;", "\"")
                .replace("&#39;", "'"),
        ));
    }
    for t in ticked {
        form.push(("categorie".into(), t.to_string()));
    }
    form.push(("decision".into(), "autoriser".into()));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = b.post("/oauth/authorize", &pairs).await;
    assert_eq!(r.status, 303, "{}", r.html);
    assert!(r.location().starts_with(redirect), "{}", r.location());
    query_of(r.location())
}

/// An app's token (SMART on FHIR, authorisation code + PKCE), consented to in the space the
/// session `cookie` acts for, with the categories `ticked`: the token response.
pub async fn app_token(
    base: &str,
    cookie: &str,
    client_id: &str,
    redirect: &str,
    scope: &str,
    ticked: &[&str],
) -> Value {
    let mut b = Browser::new(base);
    let (name, value) = cookie.split_once('=').unwrap();
    b.jar.insert(name.to_string(), value.to_string());
    let (verifier, challenge) = pkce(client_id);
    let aud = format!("{base}/fhir");
    let path = format!(
        "/oauth/authorize?{}",
        encode(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect),
            ("scope", scope),
            ("state", "etat"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("aud", &aud),
        ])
    );
    let q = consent_to(&mut b, &path, ticked, redirect).await;
    let r =
        b.c.post(format!("{base}/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&[
                ("grant_type", "authorization_code"),
                ("code", &q["code"]),
                ("redirect_uri", redirect),
                ("client_id", client_id),
                ("code_verifier", &verifier),
            ]))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}
