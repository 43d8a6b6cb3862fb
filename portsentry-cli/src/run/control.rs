//! The running detector's control socket: `portsentry unblock` talks to it.
//!
//! A Unix stream socket `portsentry.sock` in the state directory, mode 0600 (root only when
//! the detector runs as root). One request per connection, one line each way:
//!
//! ```text
//! → unblock 203.0.113.7
//! ← released 203.0.113.7        (the release actions were queued, the block table rewritten)
//! ← not-blocked 203.0.113.7
//! ← error <message>
//! ```
//!
//! A thread accepts connections and hands each request to the main loop over a channel; the
//! main loop (which owns the detector) answers between two turns, so no lock is shared with
//! the capture path. A socket file left by a crashed detector is replaced; one that still
//! answers means another detector is running, and this one refuses to start.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

/// How long a client may take to send its request, and the main loop to answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request line read.
const MAX_REQUEST: u64 = 256;

/// One request from a client, with the way to answer it.
#[derive(Debug)]
pub(crate) struct Request {
    /// The address to release.
    pub(crate) address: IpAddr,
    reply: mpsc::Sender<String>,
}

impl Request {
    /// Sends the answer line (the client may be gone: nothing to do then).
    pub(crate) fn answer(self, line: String) {
        let _ = self.reply.send(line);
    }
}

/// The bound socket, before the accepting thread starts (bound before daemonising so that
/// "already running" is said on the terminal).
#[derive(Debug)]
pub(crate) struct Bound {
    listener: UnixListener,
    path: PathBuf,
}

/// Binds the control socket at `path`.
///
/// # Errors
///
/// When another detector answers on it, or the socket cannot be created.
pub(crate) fn bind(path: &Path) -> anyhow::Result<Bound> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            bail!(
                "another portsentry is running: its control socket {} answers (stop it first)",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot create the control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    Ok(Bound {
        listener,
        path: path.to_owned(),
    })
}

/// The accepting thread's channel; removes the socket file when dropped.
#[derive(Debug)]
pub(crate) struct Control {
    requests: mpsc::Receiver<Request>,
    path: PathBuf,
}

impl Bound {
    /// Starts the accepting thread.
    pub(crate) fn start(self) -> io::Result<Control> {
        let (tx, requests) = mpsc::channel();
        let listener = self.listener;
        std::thread::Builder::new()
            .name("portsentry-control".to_owned())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    serve(stream, &tx);
                }
            })?;
        Ok(Control {
            requests,
            path: self.path,
        })
    }
}

impl Control {
    /// The next request, if one is waiting. Never blocks.
    pub(crate) fn try_recv(&self) -> Option<Request> {
        self.requests.try_recv().ok()
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(stream: UnixStream, tx: &mpsc::Sender<Request>) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut line = String::new();
    let read = BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line);
    let answer = match read.map(|_| parse_request(&line)) {
        Err(e) => format!("error cannot read the request: {e}"),
        Ok(Err(message)) => format!("error {message}"),
        Ok(Ok(address)) => {
            let (reply, answered) = mpsc::channel();
            if tx.send(Request { address, reply }).is_err() {
                "error the detector is stopping".to_owned()
            } else {
                answered
                    .recv_timeout(IO_TIMEOUT)
                    .unwrap_or_else(|_| "error the detector did not answer in time".to_owned())
            }
        }
    };
    let _ = writeln!(&stream, "{answer}");
}

/// `unblock ADDRESS` → the address.
fn parse_request(line: &str) -> Result<IpAddr, String> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("unblock"), Some(address), None) => address
            .parse::<IpAddr>()
            .map_err(|_| format!("not an IP address: {address:?}")),
        _ => Err(format!(
            "unknown request {:?} (expected: unblock ADDRESS)",
            line.trim()
        )),
    }
}

/// Sends `unblock ADDRESS` to the detector at `path` and returns its answer line.
///
/// # Errors
///
/// The connection error when no detector listens there (the caller then works offline).
pub(crate) fn request_unblock(path: &Path, address: IpAddr) -> io::Result<String> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(IO_TIMEOUT * 2))?;
    writeln!(stream, "unblock {address}")?;
    let mut answer = String::new();
    BufReader::new(stream.take(MAX_REQUEST)).read_line(&mut answer)?;
    Ok(answer.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_strictly() {
        assert_eq!(
            parse_request("unblock 203.0.113.7\n"),
            Ok("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            parse_request("unblock 2001:db8::1"),
            Ok("2001:db8::1".parse().unwrap())
        );
        assert!(parse_request("unblock nobody").is_err());
        assert!(parse_request("block 203.0.113.7").is_err());
        assert!(parse_request("unblock 203.0.113.7 extra").is_err());
    }

    #[test]
    fn a_request_round_trips_and_a_second_detector_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portsentry.sock");
        let control = bind(&path).unwrap().start().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            bind(&path)
                .unwrap_err()
                .to_string()
                .contains("another portsentry")
        );
        let client = {
            let path = path.clone();
            std::thread::spawn(move || request_unblock(&path, "203.0.113.7".parse().unwrap()))
        };
        let request = loop {
            if let Some(r) = control.try_recv() {
                break r;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(request.address, "203.0.113.7".parse::<IpAddr>().unwrap());
        request.answer("released 203.0.113.7".to_owned());
        assert_eq!(client.join().unwrap().unwrap(), "released 203.0.113.7");
        drop(control);
        assert!(!path.exists(), "the socket file is removed at exit");
    }
}
