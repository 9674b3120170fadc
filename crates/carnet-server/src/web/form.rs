//! Submitted forms: url-encoded and multipart bodies (RFC 7578), parsed with bounds.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode, header};

use crate::AppState;

use super::*;

/// A submitted form (`application/x-www-form-urlencoded`, or the text fields of a multipart one).
#[derive(Default, Debug)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Form(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The trimmed value of `name`, `None` when empty.
    pub fn opt(&self, name: &str) -> Option<&str> {
        Some(self.get(name).trim()).filter(|v| !v.is_empty())
    }

    /// Every value of `name` (checkboxes), in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every (name, value) pair, in order.
    pub fn pairs(&self) -> impl Iterator<Item = &(String, String)> {
        self.0.iter()
    }

    pub fn push(&mut self, name: String, value: String) {
        self.0.push((name, value));
    }
}

/// One part of a `multipart/form-data` body.
#[derive(Debug)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| hay[i..].starts_with(needle))
}

/// `key="value"` parameters of a header value, quotes respected (`a; name="x;y"`).
fn header_params(v: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut parts = Vec::new();
    let (mut cur, mut quoted) = (String::new(), false);
    for c in v.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    for p in parts {
        if let Some((k, v)) = p.trim().split_once('=') {
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            out.insert(k.trim().to_ascii_lowercase(), v.to_string());
        }
    }
    out
}

/// Reads a multipart form (bounded by the document size limit): its text fields, and the parts
/// named `file_field` (the files). A truncated or malformed body is a readable 400.
pub async fn read_multipart(
    s: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
    file_field: &str,
) -> Result<(Form, Vec<Part>), WebError> {
    let limit = s.settings.document_limit_bytes;
    let bytes = crate::api::documents::read_limited(headers, body, limit + 64 * 1024).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parts = parse_multipart(content_type, &bytes).ok_or_else(|| {
        WebError::new(
            StatusCode::BAD_REQUEST,
            "Le formulaire n'a pas été reçu en entier : rien n'a été enregistré. Recommencez.",
        )
    })?;
    let mut form = Form::default();
    let mut files = Vec::new();
    for p in parts {
        if p.name == file_field {
            files.push(p);
        } else {
            form.push(p.name, String::from_utf8_lossy(&p.data).into_owned());
        }
    }
    Ok((form, files))
}

/// Parses a `multipart/form-data` body (RFC 7578); `None` when it is not one.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let (mime, _) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = header_params(content_type).remove("boundary")?;
    if boundary.is_empty() || boundary.len() > 200 {
        return None;
    }
    let delimiter = format!("--{boundary}").into_bytes();
    let next_delimiter = format!("\r\n--{boundary}").into_bytes();
    let mut pos = find(body, &delimiter, 0)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Some(parts);
        }
        pos += body[pos..].starts_with(b"\r\n").then_some(2)?;
        let head_end = find(body, b"\r\n\r\n", pos)?;
        let head = std::str::from_utf8(&body[pos..head_end]).ok()?;
        let end = find(body, &next_delimiter, head_end + 4)?;
        let (mut name, mut filename, mut ctype) = (None, None, None);
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':')?;
            match k.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    let mut p = header_params(v);
                    name = p.remove("name");
                    filename = p.remove("filename");
                }
                "content-type" => ctype = Some(v.trim().to_string()),
                _ => {}
            }
        }
        parts.push(Part {
            name: name?,
            filename,
            content_type: ctype,
            data: body[head_end + 4..end].to_vec(),
        });
        pos = end + next_delimiter.len();
    }
}
