//! The running detector's control socket: `portsentry unblock` talks to it.
//!
//! A Unix stream socket `portsentry.sock` in the state directory, one request per connection,
//! one line each way ([`portsentry_core::control`] says what the lines mean).
//!
//! Who may talk, and to whom:
//!
//! * The daemon checks every peer with `SO_PEERCRED`: root, the daemon's own user, or (with
//!   `CONTROL_GROUP`) a process whose primary or supplementary group is that group. Anyone
//!   else gets `error permission denied` and nothing is read from them. The socket's mode
//!   (0600, or 0660 with the group) keeps others out before that.
//! * A socket file found at start is removed only when it is our own (a socket owned by this
//!   process's user that no longer answers: a crashed detector); one that answers means
//!   another detector runs, and this one refuses to start. A file owned by anyone else is
//!   never connected to: the new socket is bound aside and renamed over it, so a planted
//!   socket neither blocks the start nor keeps answering.
//! * The client ([`request_unblock`]) talks only to a socket owned by root (or by its own
//!   user) and checks the answering process with `SO_PEERCRED` too.
//!
//! A thread accepts connections and hands each request to the main loop over a channel; the
//! main loop (which owns the detector) answers between two turns, so no lock is shared with
//! the capture path.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};
use portsentry_core::control::{self, Answer, Request as Line};

/// Where `CONTROL_GROUP` names are looked up.
pub(crate) const GROUP_FILE: &str = "/etc/group";
/// How long a client may take to send its request, and the main loop to answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Who may use the socket besides root and the daemon's own user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Access {
    /// `CONTROL_GROUP`, resolved to its gid.
    pub(crate) group: Option<u32>,
}

/// The peer of one connection, as the kernel says (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Peer {
    pid: i32,
    uid: u32,
    gid: u32,
}

impl Access {
    /// Whether `peer` may send requests; `Err` says why not.
    fn admits(self, peer: Peer, groups_of: impl Fn(i32) -> Vec<u32>) -> Result<(), String> {
        let own = rustix::process::geteuid().as_raw();
        if peer.uid == 0 || peer.uid == own {
            return Ok(());
        }
        if let Some(group) = self.group
            && (peer.gid == group || groups_of(peer.pid).contains(&group))
        {
            return Ok(());
        }
        Err(format!(
            "permission denied: uid {} is not root{}",
            peer.uid,
            self.group
                .map(|g| format!(" and not in CONTROL_GROUP (gid {g})"))
                .unwrap_or_default()
        ))
    }
}

/// The supplementary groups of process `pid` (`Groups:` of `/proc/PID/status`); empty when
/// the process is gone.
fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("Groups:").map(|g| {
                    g.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
            })
        })
        .unwrap_or_default()
}

/// The gid of `CONTROL_GROUP`: a number as it is, a name looked up in `group_file`
/// (`/etc/group`).
///
/// # Errors
///
/// When the name is not in the file, or the file cannot be read.
pub(crate) fn resolve_group(name: &str, group_file: &Path) -> anyhow::Result<u32> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let text = std::fs::read_to_string(group_file)
        .with_context(|| format!("CONTROL_GROUP: cannot read {}", group_file.display()))?;
    text.lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            (fields.next() == Some(name))
                .then(|| fields.nth(1).and_then(|gid| gid.parse().ok()))
                .flatten()
        })
        .with_context(|| {
            format!(
                "CONTROL_GROUP: no group {name:?} in {}",
                group_file.display()
            )
        })
}

fn peer_of(stream: &UnixStream) -> io::Result<Peer> {
    let cred = rustix::net::sockopt::socket_peercred(stream)?;
    Ok(Peer {
        pid: cred.pid.as_raw_nonzero().get(),
        uid: cred.uid.as_raw(),
        gid: cred.gid.as_raw(),
    })
}

/// The bound socket, before the accepting thread starts (bound before daemonising so that
/// "already running" is said on the terminal).
#[derive(Debug)]
pub(crate) struct Bound {
    listener: UnixListener,
    path: PathBuf,
    access: Access,
    /// What was found at the path and replaced (a socket or file of another user).
    pub(crate) replaced: Option<String>,
}

/// Binds the control socket at `path` (see the [module documentation](self)).
///
/// # Errors
///
/// When another detector answers on it, or the socket cannot be created.
pub(crate) fn bind(path: &Path, access: Access) -> anyhow::Result<Bound> {
    let own = rustix::process::geteuid().as_raw();
    let mut replaced = None;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() && meta.uid() == own => {
            if UnixStream::connect(path).is_ok() {
                bail!(
                    "another portsentry is running: its control socket {} answers (stop it first)",
                    path.display()
                );
            }
            // Our own socket, left by a detector that stopped without removing it.
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
        }
        Ok(meta) => {
            replaced = Some(format!(
                "{} was a {} owned by uid {} (mode {:04o}), not our socket: replaced, never \
                 connected to",
                path.display(),
                kind_of(&meta),
                meta.uid(),
                meta.mode() & 0o7777
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot check {}", path.display())),
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
    let aside = dir.join(format!(".portsentry.sock.{}", std::process::id()));
    let _ = std::fs::remove_file(&aside);
    let listener = UnixListener::bind(&aside)
        .with_context(|| format!("cannot create the control socket {}", aside.display()))?;
    let restrict = || -> io::Result<()> {
        let mode = if access.group.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(mode))?;
        if let Some(gid) = access.group {
            std::os::unix::fs::lchown(&aside, None, Some(gid))?;
        }
        std::fs::rename(&aside, path)
    };
    if let Err(e) = restrict() {
        let _ = std::fs::remove_file(&aside);
        return Err(e)
            .with_context(|| format!("cannot set up the control socket {}", path.display()));
    }
    Ok(Bound {
        listener,
        path: path.to_owned(),
        access,
        replaced,
    })
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_socket() {
        "socket"
    } else if t.is_symlink() {
        "symbolic link"
    } else if t.is_dir() {
        "directory"
    } else {
        "file"
    }
}

/// The accepting thread's channel; removes the socket file when dropped (if it is still
/// ours).
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
        let access = self.access;
        std::thread::Builder::new()
            .name("portsentry-control".to_owned())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    serve(&stream, &tx, access);
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
        let own = rustix::process::geteuid().as_raw();
        if std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && m.uid() == own)
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn serve(stream: &UnixStream, tx: &mpsc::Sender<Request>, access: Access) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let answer = match peer_of(stream)
        .map_err(|e| format!("cannot identify the peer: {e}"))
        .and_then(|peer| access.admits(peer, supplementary_groups))
    {
        Err(refusal) => Answer::Error(refusal).to_string(),
        Ok(()) => handle(stream, tx),
    };
    let mut stream = stream;
    let _ = writeln!(stream, "{answer}");
}

fn handle(stream: &UnixStream, tx: &mpsc::Sender<Request>) -> String {
    let mut line = Vec::new();
    let limit = u64::try_from(control::MAX_LINE + 1).unwrap_or(u64::MAX);
    if let Err(e) = BufReader::new(stream.take(limit)).read_until(b'\n', &mut line) {
        return Answer::Error(format!("cannot read the request: {e}")).to_string();
    }
    match control::parse_request(&line) {
        Err(refusal) => Answer::Error(refusal.to_string()).to_string(),
        Ok(Line::Unblock(address)) => {
            let (reply, answered) = mpsc::channel();
            if tx.send(Request { address, reply }).is_err() {
                Answer::Error("the detector is stopping".to_owned()).to_string()
            } else {
                answered.recv_timeout(IO_TIMEOUT).unwrap_or_else(|_| {
                    Answer::Error("the detector did not answer in time".to_owned()).to_string()
                })
            }
        }
        Ok(other) => Answer::Error(format!("request not served: {other}")).to_string(),
    }
}

/// Why [`request_unblock`] did not get an answer.
#[derive(Debug)]
pub(crate) enum ClientError {
    /// Nothing listens there (no socket file, or nobody accepts).
    NoDetector(PathBuf),
    /// Something is there, but not a socket of root's (or ours): never talked to.
    Untrusted(String),
    /// Any other failure talking to the detector (a refusal to connect: permission denied).
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoDetector(path) => write!(f, "no detector listens on {}", path.display()),
            Self::Untrusted(what) => write!(f, "{what}: not trusted, not used"),
            Self::Io(path, e) => {
                write!(f, "cannot talk to the detector at {}: {e}", path.display())
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// Sends `unblock ADDRESS` to the detector at `path` and returns its answer line, after
/// checking that the socket file and the answering process belong to root (or to this
/// process's user).
///
/// # Errors
///
/// [`ClientError::NoDetector`] when no detector listens there (the caller then works
/// offline), [`ClientError::Untrusted`] for a socket of another user, [`ClientError::Io`]
/// otherwise (a refusal to connect: permission denied).
pub(crate) fn request_unblock(path: &Path, address: IpAddr) -> Result<String, ClientError> {
    let own = rustix::process::geteuid().as_raw();
    let trusted = |uid: u32| uid == 0 || uid == own;
    let io_error = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            ClientError::NoDetector(path.to_owned())
        }
        _ => ClientError::Io(path.to_owned(), source),
    };
    let meta = std::fs::symlink_metadata(path).map_err(io_error)?;
    if !meta.file_type().is_socket() || !trusted(meta.uid()) {
        return Err(ClientError::Untrusted(format!(
            "{} is a {} owned by uid {}",
            path.display(),
            kind_of(&meta),
            meta.uid()
        )));
    }
    let mut stream = UnixStream::connect(path).map_err(io_error)?;
    let server = peer_of(&stream).map_err(io_error)?;
    if !trusted(server.uid) {
        return Err(ClientError::Untrusted(format!(
            "{}: the answering process runs as uid {}",
            path.display(),
            server.uid
        )));
    }
    stream
        .set_read_timeout(Some(IO_TIMEOUT * 2))
        .map_err(io_error)?;
    writeln!(stream, "{}", Line::Unblock(address)).map_err(io_error)?;
    let mut answer = String::new();
    let limit = u64::try_from(control::MAX_LINE).unwrap_or(u64::MAX);
    BufReader::new(stream.take(limit))
        .read_line(&mut answer)
        .map_err(io_error)?;
    Ok(answer.trim_end().to_owned())
}

#[cfg(test)]
mod tests;
