//! Opening and replacing state files without following links and without taking another
//! user's ownership or mode.
//!
//! portsentry writes its state files as root (`BLOCKED_FILE`, the status file, hosts.deny,
//! the pid file) and appends to `HISTORY_FILE`. Each is reached through its directory: the
//! directory is opened once, and the file is opened or created relative to that descriptor
//! with `O_NOFOLLOW`, so a symbolic link planted as the file's name is refused, never
//! followed to a file of someone else's choosing.
//!
//! * [`write_atomic`] writes a temporary file in the same directory (`O_CREAT | O_EXCL |
//!   O_NOFOLLOW`), syncs it, renames it over the target and syncs the directory, so a crash
//!   leaves either the old or the new content, never a mix. The new file keeps the old one's
//!   mode and group only when the old file is a regular file owned by this process's user,
//!   and never with group or other write permission; anything else (another user's file, a
//!   link) is replaced by a file of our own with mode 0644.
//! * [`open_append`] opens a file for appending, creating it with mode 0644 (less the umask) when missing, and
//!   refuses a link or anything but a regular file.
//! * [`read_if_exists`] reads a file that is not a link; `None` when it does not exist.
//!
//! Whether the directory itself is safe (owned by root, not writable by others, along its
//! whole chain) is [`permissions`](crate::permissions)' business; the CLI refuses to start
//! when the state directory is not.
//!
//! # Examples
//!
//! ```
//! use portsentry_core::state_file::{read_if_exists, write_atomic};
//! let dir = std::env::temp_dir().join(format!("ps-state-doc-{}", std::process::id()));
//! let path = dir.join("portsentry.status");
//! write_atomic(&path, b"{}\n")?;
//! assert_eq!(read_if_exists(&path)?.as_deref(), Some(&b"{}\n"[..]));
//! std::os::unix::fs::symlink("/etc/passwd", dir.join("planted"))?;
//! assert!(read_if_exists(&dir.join("planted")).is_err()); // a link is never followed
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// Permission bits of a state file created by [`write_atomic`] from scratch.
pub const NEW_FILE_MODE: u32 = 0o644;
/// Permission bits of a file created by [`open_append`] (as PortSentry's history file, which
/// log readers and fail2ban read), before the umask.
pub const NEW_APPEND_MODE: u32 = 0o644;

/// The directory of `path` and the file's name in it. Parent directories are created when
/// `create` is set.
fn split(path: &Path, create: bool) -> io::Result<(OwnedFd, &OsStr)> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if create {
        std::fs::create_dir_all(dir)?;
    }
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok((fd, name))
}

/// The mode and group the replacement of the existing entry `name` gets: the old file's
/// (group and other write removed) when it is a regular file owned by this process's user;
/// otherwise [`NEW_FILE_MODE`] and no group change.
fn inherited(dir: &OwnedFd, name: &OsStr) -> io::Result<(u32, Option<u32>)> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat)
            if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
                && stat.st_uid == rustix::process::geteuid().as_raw() =>
        {
            Ok((stat.st_mode & 0o755, Some(stat.st_gid)))
        }
        Ok(_) => Ok((NEW_FILE_MODE, None)),
        Err(rustix::io::Errno::NOENT) => Ok((NEW_FILE_MODE, None)),
        Err(e) => Err(e.into()),
    }
}

fn temp_name(name: &OsStr) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{}.tmp.{}.{n}", name.to_string_lossy(), std::process::id())
}

/// Replaces `path` with `contents` atomically; see the [module documentation](self).
/// Parent directories are created.
///
/// # Errors
///
/// Any I/O error; the original file is then untouched and the temporary file removed.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let (dir, name) = split(path, true)?;
    let (mode, group) = inherited(&dir, name)?;
    let temp = temp_name(name);
    let result = write_temp(&dir, &temp, contents, mode, group)
        .and_then(|()| rustix::fs::renameat(&dir, temp.as_str(), &dir, name).map_err(Into::into));
    if let Err(e) = result {
        let _ = rustix::fs::unlinkat(&dir, temp.as_str(), AtFlags::empty());
        return Err(e);
    }
    // Make the rename itself durable.
    rustix::fs::fsync(&dir)?;
    Ok(())
}

fn write_temp(
    dir: &OwnedFd,
    temp: &str,
    contents: &[u8],
    mode: u32,
    group: Option<u32>,
) -> io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        temp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode & 0o777),
    )?;
    let mut file = File::from(fd);
    file.write_all(contents)?;
    // The umask may have narrowed the mode at creation; set it exactly.
    rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?;
    if let Some(gid) = group
        && gid != rustix::process::getegid().as_raw()
    {
        // The group of our own file that is replaced (an administrator's choice).
        rustix::fs::fchown(&file, None, Some(rustix::fs::Gid::from_raw(gid)))?;
    }
    file.sync_all()
}

/// Opens `path` for appending without following a link, creating it (mode
/// [`NEW_APPEND_MODE`]) and its parent directories when missing.
///
/// # Errors
///
/// `ELOOP` (shown as "too many levels of symbolic links") when `path` is a symbolic link,
/// [`io::ErrorKind::InvalidInput`] when it is not a regular file, any other I/O error.
pub fn open_append(path: &Path) -> io::Result<File> {
    let (dir, name) = split(path, true)?;
    let fd = rustix::fs::openat(
        &dir,
        name,
        OFlags::WRONLY
            | OFlags::APPEND
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::NOCTTY
            | OFlags::CLOEXEC,
        Mode::from_raw_mode(NEW_APPEND_MODE),
    )
    .map_err(|e| refused_link(path, e))?;
    regular(path, File::from(fd))
}

/// Reads `path` when it exists, without following a link; `None` when it does not exist.
///
/// # Errors
///
/// `ELOOP` when `path` is a symbolic link, [`io::ErrorKind::InvalidInput`] when it is not a
/// regular file, any other I/O error.
pub fn read_if_exists(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let (dir, name) = match split(path, false) {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let fd = match rustix::fs::openat(
        &dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(refused_link(path, e)),
    };
    let mut bytes = Vec::new();
    regular(path, File::from(fd))?.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// `ELOOP` from an `O_NOFOLLOW` open, said in words.
fn refused_link(path: &Path, errno: rustix::io::Errno) -> io::Error {
    if errno == rustix::io::Errno::LOOP {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a symbolic link: refused (state files are never followed through links)",
                path.display()
            ),
        )
    } else {
        errno.into()
    }
}

fn regular(path: &Path, file: File) -> io::Result<File> {
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file: refused", path.display()),
        ))
    }
}

#[cfg(test)]
mod tests;
