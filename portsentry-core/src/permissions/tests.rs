use super::*;
use std::os::unix::fs::PermissionsExt;

use crate::config::running_as_root;

/// A directory for one test, owned by whoever runs the tests, mode 0755, removed at the end.
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

    fn dir(&self, name: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir(&path).unwrap();
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
            _ => None,
        })
        .collect()
}

const NOBODY: u32 = 65_534;

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
             blocking commands will not run, nor any other root action it controls \
             (file writes, nftables) until only root can write it",
            world.display()
        )
    );
    let owned = dir.file("owned.conf", 0o600);
    std::os::unix::fs::chown(&owned, Some(NOBODY), None).unwrap();
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
    // In a sticky shared directory, an entry owned by someone else is theirs to replace.
    std::os::unix::fs::chown(&file, Some(NOBODY), None).unwrap();
    assert_eq!(writable(&check_file(&file).unwrap())[0].0, file);
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

/// The chain: `etc/portsentry.conf → opt/link.conf → srv/real.conf`, with `opt`
/// owned by `nobody`. The final file and both spellings' directories are root's; only the
/// directory holding the middle link is not. The old check looked at the final target and
/// the given path's directories only, and missed it.
#[test]
fn a_link_in_a_directory_of_another_user_is_found() {
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = TempDir::new("chain");
    let etc = dir.dir("etc", 0o755);
    let opt = dir.dir("opt", 0o755);
    let srv = dir.dir("srv", 0o755);
    std::os::unix::fs::chown(&opt, Some(NOBODY), None).unwrap();
    let real = srv.join("real.conf");
    std::fs::write(&real, "TCP_PORTS=\"1\"\n").unwrap();
    std::os::unix::fs::symlink(&real, opt.join("link.conf")).unwrap();
    // A relative link, to walk `..` too.
    std::os::unix::fs::symlink("../opt/link.conf", etc.join("portsentry.conf")).unwrap();
    let conf = etc.join("portsentry.conf");
    let findings = check_file(&conf).unwrap();
    assert_eq!(
        writable(&findings),
        [(
            opt.clone(),
            0o755,
            WritableBy {
                owner: true,
                group: false,
                others: false
            }
        )],
        "{findings:?}"
    );
    // The same through `read_checked`, on the opened descriptor.
    let read = read_checked(&conf, MAX_INPUT_BYTES).unwrap();
    assert_eq!(read.bytes, b"TCP_PORTS=\"1\"\n");
    assert_eq!(read.findings, findings);
    // Once `opt` is root's again, nothing is found.
    std::os::unix::fs::chown(&opt, Some(0), None).unwrap();
    assert!(
        read_checked(&conf, MAX_INPUT_BYTES)
            .unwrap()
            .findings
            .is_empty()
    );
}

#[test]
fn a_file_swapped_after_the_read_is_found() {
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = TempDir::new("swap");
    let conf = dir.file("p.conf", 0o644);
    let file = File::open(&conf).unwrap();
    let opened = file.metadata().unwrap();
    assert!(check_opened(&conf, &opened).is_empty());
    // Replace the file (new inode) after it was opened: the path leads elsewhere now.
    std::fs::remove_file(&conf).unwrap();
    std::fs::write(&conf, "x").unwrap();
    let findings = check_opened(&conf, &opened);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].problem, PermissionProblem::Replaced);
    assert!(
        findings[0]
            .to_string()
            .contains("was replaced while it was read")
    );
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

#[test]
fn written_files_are_checked_up_to_the_nearest_existing_directory() {
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = TempDir::new("written");
    let shared = dir.dir("shared", 0o777);
    let history = shared.join("not/yet/portsentry.history");
    let findings = check_written_file(&history);
    assert_eq!(writable(&findings)[0].0, shared);
    assert_eq!(findings[0].file, history);
    let private = dir.dir("private", 0o755);
    assert!(check_written_file(&private.join("portsentry.blocked")).is_empty());
    let config: Config =
        "BLOCKED_FILE=\"/b\"\nHISTORY_FILE=\"/h\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$\"\n"
            .parse()
            .unwrap();
    assert_eq!(
        written_files(&config),
        [
            Path::new("/b"),
            Path::new("/h"),
            Path::new("/etc/hosts.deny")
        ]
    );
}

#[test]
fn reads_are_capped() {
    // /dev/zero never ends: the read stops one byte past the limit.
    let err = read_checked(Path::new("/dev/zero"), 4096).unwrap_err();
    assert!(
        matches!(err, ReadError::TooLarge { limit: 4096, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "/dev/zero is larger than 4096 bytes: refused (a configuration or ignore file is far smaller)"
    );
    let dir = TempDir::new("cap");
    let exact = dir.0.join("exact");
    std::fs::write(&exact, vec![b'#'; 4096]).unwrap();
    assert_eq!(read_checked(&exact, 4096).unwrap().bytes.len(), 4096);
    std::fs::write(&exact, vec![b'#'; 4097]).unwrap();
    assert!(read_checked(&exact, 4096).is_err());
    // A FIFO without a writer neither blocks the open nor the read.
    let fifo = dir.0.join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert_eq!(read_checked(&fifo, 4096).unwrap().bytes, b"");
    assert!(matches!(
        read_checked(&dir.0.join("missing"), 1),
        Err(ReadError::Io { .. })
    ));
}

#[test]
fn disarmed_configs_take_no_root_action() {
    let mut config: Config = "BLOCK_TCP=\"1\"\nBLOCK_UDP=\"2\"\nKILL_RUN_CMD=\"id\"\n\
        NFT_SET=\"inet portsentry blocked\"\nBLOCKED_FILE=\"/b\"\nHISTORY_FILE=\"/h\"\n"
        .parse()
        .unwrap();
    disarm(&mut config);
    assert_eq!(
        (config.block_tcp, config.block_udp),
        (BlockMode::LogOnly, BlockMode::LogOnly)
    );
    assert_eq!(written_files(&config), Vec::<&Path>::new());
    assert_eq!((config.kill_run_cmd, config.nft_set), (None, None));
}
