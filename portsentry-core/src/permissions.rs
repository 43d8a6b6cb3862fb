//! StrictModes for the files that decide which commands run as root.
//!
//! `KILL_ROUTE`, `KILL_HOSTS_DENY` and `KILL_RUN_CMD` run as root with text taken from the
//! configuration file, and the ignore file decides who is exempt. If anyone but root can
//! change those files (or replace them, through a writable directory), they can make the
//! daemon run anything. Like sshd's `StrictModes`, this module finds such files: the CLI
//! warns in `check-config`, and the daemon refuses to run commands while a finding exists:
//!
//! ```no_run
//! # use std::path::Path;
//! # let config = portsentry_core::Config::default();
//! let run_commands =
//!     portsentry_core::permissions::check_config_files(Some(Path::new("/etc/portsentry/portsentry.conf")), &config)
//!         .is_empty();
//! ```

use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::Config;

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
}

/// A file whose safety cannot be trusted: the file the user named, the path at fault (the
/// file itself or one of its directories) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionFinding {
    /// The file as named in the configuration or on the command line.
    pub file: PathBuf,
    /// The path whose permissions are at fault: `file` itself, its resolved target or an
    /// ancestor directory.
    pub culprit: PathBuf,
    /// What is wrong.
    pub problem: PermissionProblem,
}

impl fmt::Display for PermissionFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        if self.culprit != self.file {
            write!(f, "{} ", self.culprit.display())?;
        }
        match &self.problem {
            PermissionProblem::Writable { mode, owner, by } => write!(
                f,
                "is writable by {by} (mode {mode:04o}, owner uid {owner}); \
                 blocking commands will not run until only root can write it"
            ),
            PermissionProblem::Unverifiable { error } => write!(
                f,
                "cannot be checked ({error}); blocking commands will not run"
            ),
        }
    }
}

impl std::error::Error for PermissionFinding {}

/// Who can write `metadata`'s path besides root. Directories with the sticky bit owned by
/// root are safe against other users (they cannot rename or delete root's files).
fn writable_by(metadata: &std::fs::Metadata) -> WritableBy {
    let mode = metadata.mode();
    let sticky_root_dir = metadata.is_dir() && mode & 0o1000 != 0 && metadata.uid() == 0;
    WritableBy {
        owner: metadata.uid() != 0,
        group: mode & 0o020 != 0 && !sticky_root_dir,
        others: mode & 0o002 != 0 && !sticky_root_dir,
    }
}

/// Checks `file` and every directory above it (for the path as given and, if it goes
/// through symbolic links, for its resolved target).
///
/// # Errors
///
/// The I/O error when `file` does not exist or cannot be resolved.
pub fn check_file(file: &Path) -> io::Result<Vec<PermissionFinding>> {
    let resolved = std::fs::canonicalize(file)?;
    let absolute = if file.is_absolute() {
        file.to_owned()
    } else {
        std::env::current_dir()?.join(file)
    };
    let mut checked: Vec<&Path> = Vec::new();
    let mut findings = Vec::new();
    // The file itself (through the link), then the directories of both spellings.
    let candidates = std::iter::once(resolved.as_path())
        .chain(resolved.ancestors().skip(1))
        .chain(absolute.ancestors().skip(1));
    for path in candidates {
        if checked.contains(&path) {
            continue;
        }
        checked.push(path);
        let problem = match std::fs::metadata(path) {
            Ok(metadata) => {
                let by = writable_by(&metadata);
                if !by.any() {
                    continue;
                }
                PermissionProblem::Writable {
                    mode: metadata.mode() & 0o7777,
                    owner: metadata.uid(),
                    by,
                }
            }
            Err(error) => PermissionProblem::Unverifiable {
                error: error.to_string(),
            },
        };
        findings.push(PermissionFinding {
            file: file.to_owned(),
            culprit: path.to_owned(),
            problem,
        });
    }
    Ok(findings)
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
/// not run them.
pub fn check_config_files(config_file: Option<&Path>, config: &Config) -> Vec<PermissionFinding> {
    check_files(config_file.into_iter().chain(config.ignore_file.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    use crate::config::running_as_root;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("ps-perm-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            Self(dir)
        }

        fn file(&self, name: &str, mode: u32) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, "TCP_PORTS=\"1\"\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn writable(findings: &[PermissionFinding]) -> Vec<(PathBuf, u32, WritableBy)> {
        findings
            .iter()
            .filter_map(|f| match f.problem {
                PermissionProblem::Writable { mode, by, .. } => Some((f.culprit.clone(), mode, by)),
                PermissionProblem::Unverifiable { .. } => None,
            })
            .collect()
    }

    #[test]
    fn root_owned_files_and_modes() {
        if !running_as_root() {
            eprintln!("skipped: needs root (files must be owned by root to be safe)");
            return;
        }
        let dir = TempDir::new("modes");
        let safe = dir.file("safe.conf", 0o644);
        assert_eq!(check_file(&safe).unwrap(), []);
        let group = dir.file("group.conf", 0o664);
        assert_eq!(
            writable(&check_file(&group).unwrap()),
            [(
                group.clone(),
                0o664,
                WritableBy {
                    owner: false,
                    group: true,
                    others: false
                }
            )]
        );
        let world = dir.file("world.conf", 0o666);
        let findings = check_file(&world).unwrap();
        assert_eq!(
            findings[0].to_string(),
            format!(
                "{}: is writable by its group and all users (mode 0666, owner uid 0); \
                 blocking commands will not run until only root can write it",
                world.display()
            )
        );
        let owned = dir.file("owned.conf", 0o600);
        std::os::unix::fs::chown(&owned, Some(65534), None).unwrap();
        assert_eq!(
            writable(&check_file(&owned).unwrap()),
            [(
                owned.clone(),
                0o600,
                WritableBy {
                    owner: true,
                    group: false,
                    others: false
                }
            )]
        );
    }

    #[test]
    fn writable_directories_are_found_sticky_ones_are_not() {
        if !running_as_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = TempDir::new("dirs");
        let file = dir.file("p.conf", 0o600);
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777)).unwrap();
        let findings = check_file(&file).unwrap();
        assert_eq!(
            writable(&findings),
            [(
                dir.0.clone(),
                0o777,
                WritableBy {
                    owner: false,
                    group: true,
                    others: true
                }
            )]
        );
        assert!(findings[0].to_string().starts_with(&format!(
            "{}: {} is writable by",
            file.display(),
            dir.0.display()
        )));
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(check_file(&file).unwrap(), []);
    }

    #[test]
    fn symlinks_are_checked_through() {
        if !running_as_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = TempDir::new("link");
        let target = dir.file("target.conf", 0o666);
        let link = dir.0.join("link.conf");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let findings = check_file(&link).unwrap();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].culprit, target);
        assert_eq!(findings[0].file, link);
    }

    #[test]
    fn files_owned_by_a_user_are_findings_when_not_root() {
        if running_as_root() {
            eprintln!("skipped: runs as root");
            return;
        }
        let dir = TempDir::new("user");
        let file = dir.file("p.conf", 0o600);
        assert!(check_file(&file).unwrap().iter().any(|f| f.culprit == file));
    }

    #[test]
    fn missing_files_are_skipped_and_config_files_checked() {
        assert_eq!(
            check_files([Path::new("/nonexistent/portsentry.ignore")]),
            []
        );
        assert!(check_file(Path::new("/nonexistent/x")).is_err());
        if !running_as_root() {
            return;
        }
        let dir = TempDir::new("cfg");
        let conf = dir.file("portsentry.conf", 0o644);
        let ignore = dir.file("portsentry.ignore", 0o646);
        let config = Config {
            ignore_file: Some(ignore.clone()),
            ..Config::default()
        };
        let findings = check_config_files(Some(&conf), &config);
        assert_eq!(writable(&findings).len(), 1);
        assert_eq!(findings[0].file, ignore);
        assert!(check_config_files(None, &Config::default()).is_empty());
    }
}
