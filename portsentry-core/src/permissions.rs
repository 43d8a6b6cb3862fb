//! StrictModes for the files that decide what portsentry does as root.
//!
//! `KILL_ROUTE`, `KILL_HOSTS_DENY` and `KILL_RUN_CMD` run as root with text taken from the
//! configuration file, and the same file names the files root writes (`BLOCKED_FILE`,
//! `HISTORY_FILE`, hosts.deny) and the nftables set root edits; the ignore file decides who is
//! exempt. If anyone but root can change those files, or replace them or any link or directory
//! on the way to them, they can make the daemon act for them. Like OpenSSH's `StrictModes`, this
//! module finds such paths, over the whole chain:
//!
//! * every component of the path, and of every symbolic link's target, must be owned by root
//!   and not writable by its group or by others; a directory holding a link counts as a
//!   component of the path it leads to;
//! * a sticky directory writable by others (like `/tmp`) is accepted only because the entry
//!   inside it must itself be owned by root (others cannot rename or delete root's entries);
//! * [`read_checked`] opens the file once, reads that descriptor (at most a given number of
//!   bytes) and checks that the path still leads to the very file that was read, so a link
//!   swapped between the check and the read cannot go unnoticed.
//!
//! The CLI warns in `check-config`; the daemon takes no root action the file controls while a
//! finding exists ([`disarm`]):
//!
//! ```no_run
//! use std::path::Path;
//! use portsentry_core::permissions::{read_checked, MAX_INPUT_BYTES};
//! let file = read_checked(Path::new("/etc/portsentry/portsentry.conf"), MAX_INPUT_BYTES)?;
//! let trusted = file.findings.is_empty();
//! # Ok::<(), portsentry_core::permissions::ReadError>(())
//! ```

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::config::{BlockMode, Config};

/// The largest configuration or ignore file read: 1 MiB (a stock `portsentry.conf` is about
/// 10 KiB; a larger file is refused with [`ReadError::TooLarge`] before it can fill memory).
pub const MAX_INPUT_BYTES: u64 = 1 << 20;

/// How many symbolic links a path may go through (Linux's own limit, `ELOOP`).
const MAX_LINKS: usize = 40;

/// Who, besides root, can write a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WritableBy {
    /// The owner is not root (the owner can always change the mode and write).
    pub owner: bool,
    /// The group write bit is set.
    pub group: bool,
    /// The other write bit is set.
    pub others: bool,
}

impl WritableBy {
    /// True when anyone but root can write.
    pub const fn any(self) -> bool {
        self.owner || self.group || self.others
    }
}

impl fmt::Display for WritableBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who: Vec<&str> = [
            (self.owner, "its owner"),
            (self.group, "its group"),
            (self.others, "all users"),
        ]
        .iter()
        .filter_map(|&(set, name)| set.then_some(name))
        .collect();
        f.write_str(&who.join(" and "))
    }
}

/// What is wrong with one path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PermissionProblem {
    /// The path can be written (or, for a directory, entries replaced) by someone not root.
    Writable {
        /// Permission bits (`st_mode & 0o7777`).
        mode: u32,
        /// Owner uid.
        owner: u32,
        /// Who can write besides root.
        by: WritableBy,
    },
    /// The path's owner and mode could not be read (so they cannot be trusted).
    Unverifiable {
        /// The error, as text.
        error: String,
    },
    /// The path no longer leads to the file that was opened and read: it was replaced
    /// meanwhile (someone swapped a link or a file).
    Replaced,
}

/// A file whose safety cannot be trusted: the file the user named, the path at fault (the
/// file itself, a link on the way, a link's target or a directory) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionFinding {
    /// The file as named in the configuration or on the command line.
    pub file: PathBuf,
    /// The path whose permissions are at fault: `file` itself, a symbolic link's target or
    /// a directory on the way.
    pub culprit: PathBuf,
    /// What is wrong.
    pub problem: PermissionProblem,
}

impl fmt::Display for PermissionFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CONSEQUENCE: &str = "blocking commands will not run, nor any other root action \
                                   it controls (file writes, nftables)";
        write!(f, "{}: ", self.file.display())?;
        if self.culprit != self.file {
            write!(f, "{} ", self.culprit.display())?;
        }
        match &self.problem {
            PermissionProblem::Writable { mode, owner, by } => write!(
                f,
                "is writable by {by} (mode {mode:04o}, owner uid {owner}); \
                 {CONSEQUENCE} until only root can write it"
            ),
            PermissionProblem::Unverifiable { error } => {
                write!(f, "cannot be checked ({error}); {CONSEQUENCE}")
            }
            PermissionProblem::Replaced => write!(
                f,
                "was replaced while it was read (a link or file changed under it); {CONSEQUENCE}"
            ),
        }
    }
}

impl std::error::Error for PermissionFinding {}

/// Why a file could not be read by [`read_checked`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file as named.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file holds more than the limit (a device like `/dev/zero`, or a runaway file).
    #[error("{} is larger than {limit} bytes: refused (a configuration or ignore file is far smaller)", path.display())]
    TooLarge {
        /// The file as named.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
}

impl ReadError {
    /// The kind of I/O error this is ([`io::ErrorKind::FileTooLarge`] for
    /// [`ReadError::TooLarge`]).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Self::Io { source, .. } => source.kind(),
            Self::TooLarge { .. } => io::ErrorKind::FileTooLarge,
        }
    }
}

/// A file read once from one descriptor, with the permission findings of the path that led
/// to it.
#[derive(Debug, Clone)]
pub struct CheckedFile {
    /// The content (at most the limit given to [`read_checked`]).
    pub bytes: Vec<u8>,
    /// Everything that lets someone other than root control the content; empty when only
    /// root does.
    pub findings: Vec<PermissionFinding>,
}

/// Opens `path` once, reads at most `limit` bytes from that descriptor and checks the whole
/// path chain against the opened file (see the [module documentation](self)).
///
/// The open (`O_NONBLOCK`) does not wait on a FIFO nor take a terminal, and the read stops at
/// `limit + 1` bytes, so
/// `/dev/zero` or a multi-gigabyte file cost at most `limit` bytes of memory.
///
/// # Errors
///
/// [`ReadError::Io`] when the file cannot be opened or read, [`ReadError::TooLarge`] when it
/// holds more than `limit` bytes.
pub fn read_checked(path: &Path, limit: u64) -> Result<CheckedFile, ReadError> {
    let io_error = |source: io::Error| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let file = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map(File::from)
    .map_err(|e| io_error(e.into()))?;
    let opened = file.metadata().map_err(io_error)?;
    let bytes = read_at_most(&file, limit)
        .map_err(io_error)?
        .ok_or_else(|| ReadError::TooLarge {
            path: path.to_owned(),
            limit,
        })?;
    let findings = check_opened(path, &opened);
    Ok(CheckedFile { bytes, findings })
}

/// Reads `file` to its end, or `None` when it holds more than `limit` bytes.
fn read_at_most(file: &File, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    let read = file.take(limit.saturating_add(1)).read_to_end(&mut bytes);
    match read {
        Ok(_) if bytes.len() as u64 > limit => Ok(None),
        Ok(_) => Ok(Some(bytes)),
        // A FIFO without a writer: nothing to read.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Some(bytes)),
        Err(e) => Err(e),
    }
}

/// Who can write `metadata`'s path besides root. A sticky directory owned by root is safe
/// for the root-owned entries it holds (others cannot rename or delete them), and every
/// entry of a chain must be owned by root, so it is not counted here.
fn writable_by(metadata: &Metadata) -> WritableBy {
    let mode = metadata.mode();
    let sticky_root_dir = metadata.is_dir() && mode & 0o1000 != 0 && metadata.uid() == 0;
    WritableBy {
        owner: metadata.uid() != 0,
        group: mode & 0o020 != 0 && !sticky_root_dir,
        others: mode & 0o002 != 0 && !sticky_root_dir,
    }
}

/// True for a directory others may create entries in (group or other write bit set).
fn shared_directory(metadata: &Metadata) -> bool {
    metadata.is_dir() && metadata.mode() & 0o022 != 0
}

/// The walk of one path: every component, link and link target, with what was found.
struct Walk<'a> {
    file: &'a Path,
    findings: Vec<PermissionFinding>,
    checked: Vec<PathBuf>,
}

impl Walk<'_> {
    fn report(&mut self, culprit: &Path, problem: PermissionProblem) {
        self.findings.push(PermissionFinding {
            file: self.file.to_owned(),
            culprit: culprit.to_owned(),
            problem,
        });
    }

    /// Checks one existing path (a directory or the final file, never a link) once.
    fn check(&mut self, path: &Path, metadata: &Metadata) {
        if self.checked.iter().any(|p| p == path) {
            return;
        }
        self.checked.push(path.to_owned());
        let by = writable_by(metadata);
        if by.any() {
            self.report(
                path,
                PermissionProblem::Writable {
                    mode: metadata.mode() & 0o7777,
                    owner: metadata.uid(),
                    by,
                },
            );
        }
    }

    /// Resolves `path` component by component (links followed, at most [`MAX_LINKS`]),
    /// checking each directory, each directory holding a link, and the final file. Returns
    /// the final file's metadata.
    fn resolve(&mut self, path: &Path) -> io::Result<Metadata> {
        let absolute = std::path::absolute(path)?;
        let mut pending: Vec<OsString> = Vec::new();
        push_components(&mut pending, &absolute);
        let mut current = PathBuf::from("/");
        let mut metadata = std::fs::symlink_metadata(&current)?;
        self.check(&current, &metadata);
        let mut links = 0;
        while let Some(name) = pending.pop() {
            if name == ".." {
                current.pop();
                metadata = std::fs::symlink_metadata(&current)?;
                continue;
            }
            let parent_shared = shared_directory(&metadata);
            let next = current.join(&name);
            let entry = std::fs::symlink_metadata(&next)?;
            if entry.file_type().is_symlink() {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other("too many levels of symbolic links"));
                }
                // A link in a shared sticky directory can be replaced by its owner.
                if parent_shared && entry.uid() != 0 {
                    self.report(
                        &next,
                        PermissionProblem::Writable {
                            mode: entry.mode() & 0o7777,
                            owner: entry.uid(),
                            by: WritableBy {
                                owner: true,
                                ..WritableBy::default()
                            },
                        },
                    );
                }
                let target = std::fs::read_link(&next)?;
                if target.is_absolute() {
                    current = PathBuf::from("/");
                    metadata = std::fs::symlink_metadata(&current)?;
                }
                push_components(&mut pending, &target);
                continue;
            }
            self.check(&next, &entry);
            current = next;
            metadata = entry;
        }
        Ok(metadata)
    }
}

/// Pushes the normal and `..` components of `path` onto `stack` so that they pop in order.
fn push_components(stack: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

/// Checks `file` along its whole chain: every directory, every link's directory and every
/// link's target, down to the file itself (see the [module documentation](self)).
///
/// # Errors
///
/// The I/O error when `file` or a component does not exist or cannot be read.
pub fn check_file(file: &Path) -> io::Result<Vec<PermissionFinding>> {
    let mut walk = Walk {
        file,
        findings: Vec::new(),
        checked: Vec::new(),
    };
    walk.resolve(file)?;
    Ok(walk.findings)
}

/// Checks the chain of `file` (as [`check_file`]) and that it still leads to `opened`, the
/// metadata of the descriptor that was read. A path that cannot be resolved any more, or
/// leads elsewhere, is a finding.
pub fn check_opened(file: &Path, opened: &Metadata) -> Vec<PermissionFinding> {
    let mut walk = Walk {
        file,
        findings: Vec::new(),
        checked: Vec::new(),
    };
    match walk.resolve(file) {
        Ok(resolved) if (resolved.dev(), resolved.ino()) == (opened.dev(), opened.ino()) => {
            // The chain was clean and still leads to what was read; the opened file's own
            // owner and mode were checked as the last component.
        }
        Ok(_) => walk.report(file, PermissionProblem::Replaced),
        Err(error) => walk.report(
            file,
            PermissionProblem::Unverifiable {
                error: error.to_string(),
            },
        ),
    }
    walk.findings
}

/// Checks every file in `files`. A file that does not exist gives no finding (its absence is
/// reported where it is used); any other failure to check gives an
/// [`Unverifiable`](PermissionProblem::Unverifiable) finding.
pub fn check_files<'a>(files: impl IntoIterator<Item = &'a Path>) -> Vec<PermissionFinding> {
    let mut findings = Vec::new();
    for file in files {
        match check_file(file) {
            Ok(found) => findings.extend(found),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => findings.push(PermissionFinding {
                file: file.to_owned(),
                culprit: file.to_owned(),
                problem: PermissionProblem::Unverifiable {
                    error: error.to_string(),
                },
            }),
        }
    }
    findings
}

/// Checks the configuration file (when one was loaded) and the ignore file it names. An empty
/// result means root alone controls what the blocking commands do; otherwise the daemon must
/// not run them (see [`disarm`]).
pub fn check_config_files(config_file: Option<&Path>, config: &Config) -> Vec<PermissionFinding> {
    check_files(config_file.into_iter().chain(config.ignore_file.as_deref()))
}

/// The files root writes for `config`: `BLOCKED_FILE`, `HISTORY_FILE` and, when
/// `KILL_HOSTS_DENY` is set, the hosts.deny file.
pub fn written_files(config: &Config) -> Vec<&Path> {
    let hosts_deny = config
        .kill_hosts_deny
        .as_ref()
        .map(|_| config.hosts_deny_file.as_path());
    [
        config.blocked_file.as_deref(),
        config.history_file.as_deref(),
        hosts_deny,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Checks a file root writes (or creates): the file's chain when it exists, else the chain
/// of the nearest directory above it that exists. Meant for a process running as root.
pub fn check_written_file(file: &Path) -> Vec<PermissionFinding> {
    let mut existing = Some(file);
    while let Some(path) = existing {
        match check_file(path) {
            Ok(mut findings) => {
                for finding in &mut findings {
                    file.clone_into(&mut finding.file);
                }
                return findings;
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => existing = path.parent(),
            Err(error) => {
                return vec![PermissionFinding {
                    file: file.to_owned(),
                    culprit: path.to_owned(),
                    problem: PermissionProblem::Unverifiable {
                        error: error.to_string(),
                    },
                }];
            }
        }
    }
    Vec::new()
}

/// Turns `config` into one that takes no root action: log only (`BLOCK_TCP`/`BLOCK_UDP` 0),
/// no `KILL_*` or `UNBLOCK_CMD` command, no nftables set, no `BLOCKED_FILE` and no
/// `HISTORY_FILE` written. Detection and log lines go on. Used when a finding means someone
/// other than root controls the configuration.
///
/// # Examples
///
/// ```
/// let mut config: portsentry_core::Config =
///     "BLOCK_TCP=\"1\"\nKILL_ROUTE=\"/sbin/route add $TARGET$ reject\"\n".parse().unwrap();
/// portsentry_core::permissions::disarm(&mut config);
/// assert_eq!(config.kill_route, None);
/// assert_eq!(config.block_tcp, portsentry_core::BlockMode::LogOnly);
/// ```
pub fn disarm(config: &mut Config) {
    config.block_tcp = BlockMode::LogOnly;
    config.block_udp = BlockMode::LogOnly;
    config.kill_route = None;
    config.kill_hosts_deny = None;
    config.kill_run_cmd = None;
    config.unblock_cmd = None;
    config.nft_set = None;
    config.crowdsec_credentials = None;
    config.blocked_file = None;
    config.history_file = None;
}

#[cfg(test)]
mod tests;
