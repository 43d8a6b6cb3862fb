use super::*;

use portsentry_core::config::running_as_root;

const NOBODY: u32 = 65_534;

fn next_request(control: &Control) -> Request {
    for _ in 0..500 {
        if let Some(r) = control.try_recv() {
            return r;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no request arrived within 5 s");
}

#[test]
fn a_request_round_trips_and_a_second_detector_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portsentry.sock");
    let control = bind(&path, Access::default()).unwrap().start().unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        bind(&path, Access::default())
            .unwrap_err()
            .to_string()
            .contains("another portsentry")
    );
    let client = {
        let path = path.clone();
        std::thread::spawn(move || request_unblock(&path, "203.0.113.7".parse().unwrap()))
    };
    let request = next_request(&control);
    assert_eq!(request.address, "203.0.113.7".parse::<IpAddr>().unwrap());
    request.answer("released 203.0.113.7".to_owned());
    assert_eq!(client.join().unwrap().unwrap(), "released 203.0.113.7");
    drop(control);
    assert!(!path.exists(), "the socket file is removed at exit");
    // Nothing listens any more: the client says so (and `unblock` then works offline).
    assert!(matches!(
        request_unblock(&path, "203.0.113.7".parse().unwrap()),
        Err(ClientError::NoDetector(_))
    ));
}

#[test]
fn a_control_group_opens_the_socket_to_its_members() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portsentry.sock");
    // Our own primary group: changing to it needs no privilege.
    let gid = rustix::process::getegid().as_raw();
    let _bound = bind(&path, Access { group: Some(gid) }).unwrap();
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, gid));
}

#[test]
fn our_own_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portsentry.sock");
    drop(UnixListener::bind(&path).unwrap()); // a crashed detector's socket
    let bound = bind(&path, Access::default()).unwrap();
    assert_eq!(bound.replaced, None);
}

#[test]
fn peers_are_admitted_by_uid_or_group() {
    let own = rustix::process::geteuid().as_raw();
    let peer = |uid, gid| Peer { pid: 1, uid, gid };
    let no_groups = |_| Vec::new();
    let root_only = Access::default();
    assert_eq!(root_only.admits(peer(0, 0), no_groups), Ok(()));
    assert_eq!(root_only.admits(peer(own, own), no_groups), Ok(()));
    let other = if own == NOBODY { NOBODY - 1 } else { NOBODY };
    assert_eq!(
        root_only.admits(peer(other, 100), no_groups),
        Err(format!("permission denied: uid {other} is not root"))
    );
    let group = Access { group: Some(4) };
    assert_eq!(group.admits(peer(other, 4), no_groups), Ok(()));
    assert_eq!(group.admits(peer(other, 100), |_| vec![27, 4]), Ok(()));
    assert!(
        group
            .admits(peer(other, 100), |_| vec![27])
            .unwrap_err()
            .contains("not in CONTROL_GROUP (gid 4)")
    );
    // This process's own groups, read from /proc.
    let pid = i32::try_from(std::process::id()).unwrap();
    let mine = supplementary_groups(pid);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert_eq!(line.split_whitespace().count() - 1, mine.len());
    assert_eq!(supplementary_groups(i32::MAX), Vec::<u32>::new());
}

#[test]
fn groups_resolve_by_name_or_number() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("group");
    std::fs::write(&file, "root:x:0:\nadm:x:4:syslog,alice\nstaff:x:50:\n").unwrap();
    assert_eq!(resolve_group("adm", &file).unwrap(), 4);
    assert_eq!(resolve_group("staff", &file).unwrap(), 50);
    assert_eq!(resolve_group("1234", &file).unwrap(), 1234);
    let err = resolve_group("wheel", &file).unwrap_err().to_string();
    assert!(err.contains("no group \"wheel\""), "{err}");
}

/// The reproduction: `nobody` planted a socket where the daemon puts its own; the
/// daemon refused to start ("another portsentry is running") and `portsentry unblock`
/// got nobody's answer. Now the daemon replaces it without talking to it, and the client
/// talks to root's sockets only.
#[test]
fn a_planted_socket_neither_blocks_the_start_nor_answers() {
    if !running_as_root() {
        eprintln!("skipped: needs root (to plant a socket as another user)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portsentry.sock");
    let planted = UnixListener::bind(&path).unwrap();
    std::os::unix::fs::lchown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
    // The client refuses nobody's socket, even though something accepts on it.
    let refused = request_unblock(&path, "203.0.113.7".parse().unwrap()).unwrap_err();
    assert!(matches!(refused, ClientError::Untrusted(_)), "{refused}");
    assert!(
        refused.to_string().contains("owned by uid 65534"),
        "{refused}"
    );
    let bound = bind(&path, Access::default()).unwrap();
    assert!(
        bound
            .replaced
            .as_deref()
            .unwrap()
            .contains("owned by uid 65534"),
        "{:?}",
        bound.replaced
    );
    let control = bound.start().unwrap();
    planted.set_nonblocking(true).unwrap();
    let client =
        { std::thread::spawn(move || request_unblock(&path, "203.0.113.7".parse().unwrap())) };
    next_request(&control).answer("not-blocked 203.0.113.7".to_owned());
    assert_eq!(client.join().unwrap().unwrap(), "not-blocked 203.0.113.7");
    assert!(
        planted.accept().is_err(),
        "the planted socket got no connection"
    );
}

/// A peer that is neither root nor in `CONTROL_GROUP` is refused by `SO_PEERCRED`, even when
/// the socket's mode lets it connect.
#[test]
fn a_peer_of_another_user_is_refused() {
    if !running_as_root() {
        eprintln!("skipped: needs root (setpriv to nobody)");
        return;
    }
    // The system's Python, which every user may run (not a per-user one).
    let python = Path::new("/usr/bin/python3");
    if !python.exists() {
        eprintln!("skipped: needs /usr/bin/python3 as a client running as nobody");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("portsentry.sock");
    let control = bind(&path, Access::default()).unwrap().start().unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let script = "import socket,sys\n\
        s=socket.socket(socket.AF_UNIX)\n\
        s.connect(sys.argv[1])\n\
        try: s.sendall(b'unblock 203.0.113.7\\n')\n\
        except BrokenPipeError: pass\n\
        print(s.makefile().readline().strip())\n";
    let out = std::process::Command::new("setpriv")
        .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .arg(python)
        .args(["-c", script])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.starts_with("error permission denied: uid 65534 is not root"),
        "{answer} / {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        control.try_recv().is_none(),
        "the request never reached the detector"
    );
}
