use super::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::config::running_as_root;

const NOBODY: u32 = 65_534;

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn missing_file_reads_as_none_then_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/portsentry.blocked");
    assert_eq!(read_if_exists(&path).unwrap(), None);
    write_atomic(&path, b"one\n").unwrap();
    assert_eq!(
        read_if_exists(&path).unwrap().as_deref(),
        Some(&b"one\n"[..])
    );
    write_atomic(&path, b"two\n").unwrap();
    assert_eq!(
        read_if_exists(&path).unwrap().as_deref(),
        Some(&b"two\n"[..])
    );
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
    assert_eq!(names(path.parent().unwrap()), ["portsentry.blocked"]);
}

#[test]
fn own_files_keep_their_mode_without_write_for_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    fs::write(&path, "old").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let inode_before = fs::metadata(&path).unwrap().ino();
    write_atomic(&path, b"new").unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_ne!(meta.ino(), inode_before, "replaced, not rewritten");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    write_atomic(&path, b"newer").unwrap();
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
    assert_eq!(fs::read_to_string(&path).unwrap(), "newer");
}

/// The reproduction: a `nobody`-owned 0666 file where root writes its state became
/// root's content in `nobody`'s file (owner and mode copied).
#[test]
fn another_users_file_is_replaced_by_our_own() {
    if !running_as_root() {
        eprintln!("skipped: needs root (to own a file as another user)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portsentry.blocked");
    fs::write(&path, "planted").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
    write_atomic(&path, b"203.0.113.7 1\n").unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (0, 0, 0o644)
    );
}

#[test]
fn a_planted_link_is_replaced_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "keep").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.path().join("portsentry.status");
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    assert!(
        read_if_exists(&path)
            .unwrap_err()
            .to_string()
            .contains("symbolic link")
    );
    assert!(
        open_append(&path)
            .unwrap_err()
            .to_string()
            .contains("symbolic link")
    );
    write_atomic(&path, b"{}").unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
    assert_eq!(fs::metadata(&victim).unwrap().mode() & 0o777, 0o600);
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.mode() & 0o777, 0o644);
}

#[test]
fn appends_create_files_and_refuse_what_is_not_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/portsentry.history");
    open_append(&path).unwrap().write_all(b"one\n").unwrap();
    open_append(&path).unwrap().write_all(b"two\n").unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "one\ntwo\n");
    assert_eq!(
        fs::metadata(&path).unwrap().mode() & 0o022,
        0,
        "no write for others"
    );
    assert!(open_append(dir.path()).is_err(), "a directory is refused");
    let err = read_if_exists(&dir.path().join("new")).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn failure_leaves_the_original_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // The target is a directory: rename over it fails.
    let path = dir.path().join("taken");
    fs::create_dir(&path).unwrap();
    fs::write(path.join("inside"), "keep").unwrap();
    assert!(write_atomic(&path, b"x").is_err());
    assert_eq!(fs::read_to_string(path.join("inside")).unwrap(), "keep");
    assert_eq!(names(dir.path()), ["taken"], "temporary file removed");
}
