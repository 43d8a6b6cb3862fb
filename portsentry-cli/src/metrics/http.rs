//! A minimal HTTP/1.x server for `GET /metrics` (`--metrics-listen`).
//!
//! One thread, one connection at a time, one request per connection: a scraper asks every
//! few seconds, nothing more is needed. Whoever can reach the port may be hostile, so every
//! connection is bounded: the request head is at most [`MAX_HEAD`] bytes and must arrive
//! within [`IO_TIMEOUT`], and the answer is written within the same time. The page served is
//! the last one the main loop published (see [`Page`]); a request never touches the engine.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;

use super::render::CONTENT_TYPE;

/// How long a client may take to send its request and to read the answer.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(3);
/// The pause after a failed `accept`.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// The longest request head read (request line and headers).
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// The exposition text served, replaced by the main loop.
#[derive(Debug, Default)]
pub(crate) struct Page {
    text: Mutex<String>,
}

impl Page {
    /// Replaces the text served.
    pub(crate) fn publish(&self, text: String) {
        *self.text.lock().unwrap_or_else(PoisonError::into_inner) = text;
    }

    fn current(&self) -> String {
        self.text
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The bound listener, before its thread starts (bound before daemonising so that a port in
/// use is said on the terminal).
#[derive(Debug)]
pub(crate) struct Bound {
    listener: TcpListener,
}

/// Binds `address`.
///
/// # Errors
///
/// When the address cannot be bound (in use, not local, no privilege).
pub(crate) fn bind(address: SocketAddr) -> anyhow::Result<Bound> {
    let listener = TcpListener::bind(address)
        .with_context(|| format!("cannot listen for metrics on {address}"))?;
    Ok(Bound { listener })
}

impl Bound {
    /// The address bound (the port chosen when 0 was asked).
    #[cfg(test)]
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Starts the serving thread; it runs until the process ends.
    ///
    /// # Errors
    ///
    /// When the thread cannot be started.
    pub(crate) fn start(self, page: Arc<Page>) -> io::Result<()> {
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                loop {
                    match self.listener.accept() {
                        Ok((stream, _)) => {
                            let _ = serve(stream, &page);
                        }
                        // A failed accept (a reset connection, no descriptor left) loses that
                        // one request; the pause keeps a lasting failure from spinning.
                        Err(_) => std::thread::sleep(ACCEPT_PAUSE),
                    }
                }
            })
            .map(drop)
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head_only: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

fn serve(mut stream: TcpStream, page: &Page) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let (status, body, head_only) = match route(&head) {
        Route::Metrics { head_only } => ("200 OK", page.current(), head_only),
        Route::NotFound => ("404 Not Found", "only /metrics is served\n".into(), false),
        Route::MethodNotAllowed => ("405 Method Not Allowed", "use GET\n".into(), false),
        Route::BadRequest => ("400 Bad Request", "bad request\n".into(), false),
    };
    let content_type = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        answer.push_str(&body);
    }
    stream.write_all(answer.as_bytes())?;
    stream.flush()
}

/// Reads up to the blank line ending the head, at most [`MAX_HEAD`] bytes.
fn read_head(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_HEAD {
            break;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n.min(MAX_HEAD - head.len())]);
    }
    Ok(head)
}

fn route(head: &[u8]) -> Route {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Route::BadRequest;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or(target);
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { head_only: false },
        ("HEAD", "/metrics") => Route::Metrics { head_only: true },
        ("GET" | "HEAD", _) => Route::NotFound,
        _ => Route::MethodNotAllowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    #[test]
    fn routes() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            route(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET /metrics SPDY/3\r\n\r\n"), Route::BadRequest);
        assert_eq!(
            route(b"\xff\xfe /metrics HTTP/1.1\r\n\r\n"),
            Route::BadRequest
        );
        assert_eq!(route(b""), Route::BadRequest);
    }

    #[test]
    fn head_is_bounded() {
        let endless = io::repeat(b'a');
        let head = read_head(&mut endless.take(1 << 20)).unwrap();
        assert_eq!(head.len(), MAX_HEAD);
    }

    fn get(address: SocketAddr, request: &[u8]) -> (String, String) {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT * 2)).unwrap();
        stream.write_all(request).unwrap();
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        (status, rest)
    }

    #[test]
    fn serves_the_published_page_over_a_real_socket() {
        let bound = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = bound.local_addr().unwrap();
        let page = Arc::new(Page::default());
        page.publish("portsentry_alerts_total 3\n".into());
        bound.start(Arc::clone(&page)).unwrap();

        // A client that connects and says nothing holds the server for IO_TIMEOUT at most.
        let silent = TcpStream::connect(address).unwrap();
        let (status, rest) = get(address, b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK\r\n");
        assert!(
            rest.contains("Content-Type: text/plain; version=0.0.4"),
            "{rest}"
        );
        assert!(
            rest.ends_with("\r\n\r\nportsentry_alerts_total 3\n"),
            "{rest}"
        );
        drop(silent);

        page.publish("portsentry_alerts_total 4\n".into());
        let (_, rest) = get(address, b"GET /metrics HTTP/1.0\r\n\r\n");
        assert!(rest.ends_with("portsentry_alerts_total 4\n"), "{rest}");
        let (status, _) = get(address, b"GET /other HTTP/1.1\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 404 Not Found\r\n");
        let (status, rest) = get(address, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK\r\n");
        assert!(rest.ends_with("\r\n\r\n"), "HEAD has no body: {rest}");
    }
}
