//! `BLOCKED_FILE` and other state files: atomic replace and tolerant load.
//!
//! The block table's text form (what goes in the file) belongs to the block table itself;
//! this module only moves text to and from disk safely:
//!
//! * [`write_atomic`] writes a temporary file in the same directory, syncs it, renames it
//!   over the target and syncs the directory, so a crash leaves either the old or the new
//!   content, never a mix. An existing file's permission bits and owner are kept.
//! * [`read_if_exists`] returns `None` for a missing file (first start), the text otherwise.
//!
//! # Examples
//!
//! ```
//! use portsentry_core::respond::blocked_file::{read_if_exists, write_atomic};
//! let dir = std::env::temp_dir().join(format!("ps-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("portsentry.blocked");
//! assert_eq!(read_if_exists(&path).unwrap(), None);
//! write_atomic(&path, "203.0.113.7 1700000000\n").unwrap();
//! assert_eq!(read_if_exists(&path).unwrap().as_deref(), Some("203.0.113.7 1700000000\n"));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::ResponderError;

/// Permission bits of a state file created from scratch.
const NEW_FILE_MODE: u32 = 0o644;

fn io_error(path: &Path, source: io::Error) -> ResponderError {
    ResponderError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads a text file, or `None` if it does not exist.
///
/// # Errors
///
/// [`ResponderError::Io`] when the file exists but cannot be read or is not UTF-8.
pub fn read_if_exists(path: &Path) -> Result<Option<String>, ResponderError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Replaces `path` with `contents` atomically (temp file in the same directory, fsync,
/// rename, directory fsync). Parent directories are created. If `path` exists, its
/// permission bits and owner are copied to the new file; otherwise it gets mode 0644.
///
/// # Errors
///
/// [`ResponderError::Io`] for any failure; the original file is then untouched and the
/// temporary file removed.
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), ResponderError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
    let existing = match fs::metadata(path) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error(path, e)),
    };
    let temp = temp_path(path, &dir);
    let result = write_temp(&temp, contents, existing.as_ref())
        .and_then(|()| fs::rename(&temp, path))
        .map_err(|e| io_error(path, e));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
        return result;
    }
    // Make the rename itself durable.
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(&dir, e))
}

fn temp_path(path: &Path, dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_owned());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

fn write_temp(temp: &Path, contents: &str, existing: Option<&fs::Metadata>) -> io::Result<()> {
    let mode = existing.map_or(NEW_FILE_MODE, |m| m.mode() & 0o7777);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(temp)?;
    file.write_all(contents.as_bytes())?;
    if let Some(meta) = existing {
        // The umask may have narrowed the mode at creation; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        if meta.uid() != rustix_uid() || meta.gid() != rustix_gid() {
            std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))?;
        }
    }
    file.sync_all()
}

fn rustix_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn rustix_gid() -> u32 {
    rustix::process::getegid().as_raw()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn missing_file_reads_as_none_then_roundtrips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/portsentry.blocked");
        assert_eq!(read_if_exists(&path).unwrap(), None);
        write_atomic(&path, "one\n").unwrap();
        assert_eq!(read_if_exists(&path).unwrap().as_deref(), Some("one\n"));
        write_atomic(&path, "two\n").unwrap();
        assert_eq!(read_if_exists(&path).unwrap().as_deref(), Some("two\n"));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["portsentry.blocked"]);
    }

    #[test]
    fn keeps_mode_and_owner_of_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        if rustix_uid() == 0 {
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        }
        let inode_before = fs::metadata(&path).unwrap().ino();
        write_atomic(&path, "new").unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o640);
        assert_ne!(
            meta.ino(),
            inode_before,
            "the file must be replaced, not rewritten"
        );
        if rustix_uid() == 0 {
            assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
    }

    #[test]
    fn failure_leaves_original_untouched() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a directory: rename over it fails.
        let path = dir.path().join("taken");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), "keep").unwrap();
        let err = write_atomic(&path, "x").unwrap_err();
        assert!(matches!(err, ResponderError::Io { .. }), "{err:?}");
        assert_eq!(fs::read_to_string(path.join("inside")).unwrap(), "keep");
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "temporary file must be removed");
    }

    #[test]
    fn unreadable_non_utf8_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(read_if_exists(&path).is_err());
    }
}
