//! A small HTTP/1.1 client for the load benches: one keep-alive connection per simulated
//! client, a request written in one `write`, the response's head parsed by `httparse` and its
//! body read whole (`Content-Length` or chunked). Like `wrk`, it spends little CPU per request,
//! so that on a 2-core machine the server, not the load generator, is what is measured (a
//! general client such as reqwest took ~25 µs of CPU per request, a quarter of the machine at
//! 16,000 requests/s). Not for anything but loopback benches: no TLS, no redirects, no proxies.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response: status, headers (names lower-cased) and the whole body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection to a server (opened on first use, again after the server closed it).
pub struct Conn {
    addr: SocketAddr,
    host: String,
    stream: Option<TcpStream>,
    /// Bytes read past the previous response (none with a well-behaved server).
    buf: Vec<u8>,
    req: Vec<u8>,
}

fn bad(m: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m.into())
}

impl Conn {
    /// A connection to the server of `base` (`http://host:port[/...]`).
    pub fn new(base: &str) -> Self {
        let authority = base
            .strip_prefix("http://")
            .unwrap_or(base)
            .split('/')
            .next()
            .unwrap_or("");
        let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
            .ok()
            .and_then(|mut a| a.next())
            .expect("a loopback address host:port");
        Self {
            addr,
            host: authority.to_string(),
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
            req: Vec::with_capacity(4096),
        }
    }

    /// Sends `method path` with `headers` and `body`, and reads the whole response. A request
    /// on a reused connection the server closed meanwhile is sent once more on a new one.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<Response> {
        self.req.clear();
        let r = &mut self.req;
        r.extend_from_slice(method.as_bytes());
        r.push(b' ');
        r.extend_from_slice(path.as_bytes());
        r.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        r.extend_from_slice(self.host.as_bytes());
        r.extend_from_slice(b"\r\n");
        for (k, v) in headers {
            r.extend_from_slice(k.as_bytes());
            r.extend_from_slice(b": ");
            r.extend_from_slice(v.as_bytes());
            r.extend_from_slice(b"\r\n");
        }
        if let Some(b) = body {
            r.extend_from_slice(format!("content-length: {}\r\n\r\n", b.len()).as_bytes());
            r.extend_from_slice(b);
        } else {
            r.extend_from_slice(b"\r\n");
        }
        let reused = self.stream.is_some();
        match self.exchange().await {
            Ok(resp) => Ok(resp),
            Err(_) if reused => {
                self.stream = None;
                self.exchange().await
            }
            Err(e) => Err(e),
        }
    }

    async fn exchange(&mut self) -> io::Result<Response> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        let res = self.round_trip().await;
        if res.is_err() {
            self.stream = None;
        }
        res
    }

    async fn round_trip(&mut self) -> io::Result<Response> {
        let Some(s) = self.stream.as_mut() else {
            return Err(bad("not connected"));
        };
        s.write_all(&self.req).await?;
        // The head.
        let (status, headers, head_len, close) = loop {
            let mut h = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut h);
            match resp.parse(&self.buf).map_err(|e| bad(e.to_string()))? {
                httparse::Status::Complete(n) => {
                    let headers: Vec<(String, String)> = resp
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect();
                    let close = headers
                        .iter()
                        .any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close"));
                    break (resp.code.unwrap_or(0), headers, n, close);
                }
                httparse::Status::Partial => fill(s, &mut self.buf).await?,
            }
        };
        self.buf.drain(..head_len);
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.trim().parse::<usize>().map_err(|_| bad("content-length")))
            .transpose()?;
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            read_chunked(s, &mut self.buf).await?
        } else if let Some(n) = length {
            while self.buf.len() < n {
                fill(s, &mut self.buf).await?;
            }
            self.buf.drain(..n).collect()
        } else if status == 204 || status == 304 || (100..200).contains(&status) {
            Vec::new()
        } else {
            // No length: the body runs to the end of the connection.
            loop {
                match fill(s, &mut self.buf).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            self.stream = None;
            std::mem::take(&mut self.buf)
        };
        if close {
            self.stream = None;
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// Reads more bytes into `buf`; end of stream is an error (a response was expected).
async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.reserve(16 * 1024);
    if s.read_buf(buf).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// A chunked body (RFC 9112 §7.1): sizes in hex, extensions and trailers skipped.
async fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            fill(s, buf).await?;
        };
        let line = std::str::from_utf8(&buf[..line_end]).map_err(|_| bad("chunk size"))?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("chunk size"))?;
        buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers, up to an empty line.
            loop {
                let end = loop {
                    if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    fill(s, buf).await?;
                };
                buf.drain(..end + 2);
                if end == 0 {
                    return Ok(body);
                }
            }
        }
        while buf.len() < size + 2 {
            fill(s, buf).await?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}
