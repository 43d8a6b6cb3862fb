//! `BLOCKED_FILE` and other state files: atomic replace and tolerant load.
//!
//! The block table's text form (what goes in the file) belongs to the block table itself;
//! this module only moves text to and from disk safely:
//!
//! * [`write_atomic`] writes a temporary file in the same directory, syncs it, renames it
//!   over the target and syncs the directory, so a crash leaves either the old or the new
//!   content, never a mix. An existing file's mode is kept only when it is our own regular
//!   file (never with write for others); links are replaced, never followed.
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

use std::io;
use std::path::Path;

use super::ResponderError;
use crate::state_file;

fn io_error(path: &Path, source: io::Error) -> ResponderError {
    ResponderError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads a text file, or `None` if it does not exist. A symbolic link is refused, never
/// followed ([`state_file::read_if_exists`]).
///
/// # Errors
///
/// [`ResponderError::Io`] when the file exists but cannot be read, is a link or is not UTF-8.
pub fn read_if_exists(path: &Path) -> Result<Option<String>, ResponderError> {
    match state_file::read_if_exists(path) {
        Ok(None) => Ok(None),
        Ok(Some(bytes)) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|e| io_error(path, io::Error::new(io::ErrorKind::InvalidData, e))),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Replaces `path` with `contents` atomically (temp file in the same directory, fsync,
/// rename, directory fsync), never through a link and never taking another user's owner or
/// mode: see [`state_file::write_atomic`]. Parent directories are created.
///
/// # Errors
///
/// [`ResponderError::Io`] for any failure; the original file is then untouched and the
/// temporary file removed.
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), ResponderError> {
    state_file::write_atomic(path, contents.as_bytes()).map_err(|e| io_error(path, e))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // How files are opened and replaced is tested in `state_file`; these test the text layer.

    #[test]
    fn missing_file_reads_as_none_then_roundtrips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/portsentry.blocked");
        assert_eq!(read_if_exists(&path).unwrap(), None);
        write_atomic(&path, "one\n").unwrap();
        assert_eq!(read_if_exists(&path).unwrap().as_deref(), Some("one\n"));
        write_atomic(&path, "two\n").unwrap();
        assert_eq!(read_if_exists(&path).unwrap().as_deref(), Some("two\n"));
    }

    #[test]
    fn unreadable_non_utf8_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(read_if_exists(&path).is_err());
    }
}
