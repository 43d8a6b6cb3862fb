//! Runs the real `portsentry` binary on configuration files in both dialects.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../portsentry-core/tests/data")
        .join(name)
}

fn portsentry(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portsentry"));
    cmd.args(args).env_remove("PORTSENTRY_CONFIG");
    cmd
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The longest one command of these tests may take. A command that should stop at once but
/// runs on (a detector that started when it should have refused) is killed by its PID and
/// fails the test instead of blocking the suite.
const LIMIT: Duration = Duration::from_secs(60);

fn run(cmd: &mut Command) -> Run {
    let mut stdout = tempfile::tempfile().unwrap();
    let mut stderr = tempfile::tempfile().unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().unwrap())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still ran after {LIMIT:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |file: &mut std::fs::File| {
        let mut text = String::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_string(&mut text).unwrap();
        text
    };
    Run {
        code: status.code(),
        stdout: read(&mut stdout),
        stderr: read(&mut stderr),
    }
}

fn check(file: &Path) -> Run {
    run(portsentry(&["check-config", "-c"]).arg(file))
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ps-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    portsentry_core::config::running_as_root()
}

#[test]
fn classic_file_succeeds_and_prints_ports() {
    let r = check(&data("classic-1.2.conf"));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains(
        "tcp                    26 ports: 1,11,15,79,111,119,143,540,635,1080,1524,2000,5742,6667,12345-12346,"
    ), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("udp                    21 ports: 1,7,9,69,161-162,")
    );
    assert!(
        r.stdout
            .contains("atcp                   ports 0-1023 except 113,139 (1022 ports)")
    );
    assert!(
        r.stdout
            .contains("audp                   ports 0-1023 except 67,137-138,520 (1020 ports)")
    );
    assert!(
        r.stdout
            .contains(r#"KILL_HOSTS_DENY        "ALL: $TARGET$ : DENY \%c \%h""#)
    );
    assert!(r.stdout.contains("BLOCK_TCP              1 (block)"));
    assert!(r.stdout.contains("configuration OK"));
}

#[test]
fn v2_file_succeeds_and_prints_ranges() {
    let r = check(&data("v2.conf"));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("28 ports: 1,7,9,11,13,15,17,19-21,70,79,111,113,119,389,512-515,540,543-544,873,989-990,992,1080"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("udp                    9 ports: 7,9,13,19,111,389,513,517-518")
    );
    assert!(
        r.stdout
            .contains("BLOCK_TCP              2 (run KILL_RUN_CMD only)")
    );
    assert!(
        r.stdout.contains(
            "SCAN_TRIGGER           3 (alarms when one source has probed 3 distinct ports)"
        )
    );
    assert!(
        r.stderr.is_empty() || !r.stderr.contains("error"),
        "{}",
        r.stderr
    );
}

#[test]
fn new_keys_are_shown() {
    let r = check(&data("new-keys.conf"));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for want in [
        "NFT_SET                \"inet portsentry blocked\"",
        "BLOCK_TIMEOUT          3600 s",
        "SCAN_WINDOW            120 s",
        "MAX_TRACKED_SOURCES    1000",
        "DETECT_ACK_SCANS       1 (counted)",
        "NEVER_BLOCK_GATEWAYS   0 (gateways and resolvers may be blocked)",
        "(format json)",
    ] {
        assert!(r.stdout.contains(want), "missing {want}:\n{}", r.stdout);
    }
    let hosts_deny = data("hosts.deny");
    assert!(
        r.stdout
            .contains(&format!("HOSTS_DENY_FILE        {}", hosts_deny.display()))
    );
}

#[test]
fn each_broken_file_fails_with_its_line_number() {
    let mut seen = 0;
    for entry in std::fs::read_dir(data("broken")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let r = check(&path);
        assert_eq!(r.code, Some(1), "{}: {}", path.display(), r.stdout);
        for want in text.lines().filter_map(|l| l.strip_prefix("# expect: ")) {
            let mut parts = want.splitn(3, ": ");
            let (line, key, words) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            let at = format!("error: {}:{line}: {key}: ", path.display());
            let shown = r
                .stderr
                .lines()
                .find(|l| l.starts_with(&at))
                .unwrap_or_else(|| panic!("no `{at}` in:\n{}", r.stderr));
            assert!(shown.contains(words), "{shown} lacks {words}");
        }
        assert!(r.stderr.contains("portsentry: configuration rejected:"));
        assert!(!r.stdout.contains("configuration OK"));
        seen += 1;
    }
    assert!(seen >= 20);
}

#[test]
fn all_errors_and_warnings_of_a_file_in_one_run() {
    let r = check(&data("broken/all-at-once.conf"));
    assert_eq!(r.code, Some(1));
    assert_eq!(
        r.stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .count(),
        3
    );
    assert!(
        r.stderr
            .contains("all-at-once.conf:8: FOO: unknown key, line ignored")
    );
    assert!(r.stderr.contains("configuration rejected: 3 error(s)"));
}

#[test]
fn default_config_prints_the_embedded_text_which_checks_clean() {
    let r = run(&mut portsentry(&["default-config"]));
    assert_eq!(r.code, Some(0));
    assert_eq!(r.stdout, portsentry_core::config::DEFAULT_CONF);
    let scratch = Scratch::new("default");
    let path = scratch.write("portsentry.conf", &r.stdout, 0o644);
    let r = check(&path);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    if is_root() {
        assert_eq!(
            r.stderr, "",
            "a root-owned 0644 copy of the default has no warning"
        );
        assert!(r.stdout.contains("configuration OK (0 warning(s))"));
    }
    assert!(r.stdout.contains("portsentry.history (format classic)"));
    assert!(r.stdout.contains("BLOCK_TCP              0 (log only)"));
}

#[test]
fn without_c_the_system_file_or_the_built_in_default_is_named() {
    let r = run(&mut portsentry(&["check-config"]));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let system = Path::new("/etc/portsentry/portsentry.conf");
    if system.exists() {
        assert!(
            r.stdout
                .starts_with("configuration: /etc/portsentry/portsentry.conf (no -c given)")
        );
    } else {
        assert!(
            r.stdout
                .starts_with("configuration: <built-in default> (no -c given and")
        );
    }
}

#[test]
fn config_from_environment_and_option_wins() {
    let r = run(portsentry(&["check-config"]).env("PORTSENTRY_CONFIG", data("v2.conf")));
    assert!(r.stdout.contains("517-518"), "{}", r.stdout);
    let r = run(portsentry(&["check-config", "-c"])
        .arg(data("classic-1.2.conf"))
        .env("PORTSENTRY_CONFIG", data("v2.conf")));
    assert!(!r.stdout.contains("517-518"));
    assert!(r.stdout.contains("classic-1.2.conf"));
}

#[test]
fn permission_findings_are_warnings() {
    let scratch = Scratch::new("perm");
    let path = scratch.write("portsentry.conf", "TCP_PORTS=\"1\"\n", 0o666);
    let r = check(&path);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let expected = format!(
        "warning: {}: is writable by {}",
        path.display(),
        if is_root() {
            "its group and all users"
        } else {
            "its owner and its group and all users"
        }
    );
    assert!(r.stderr.contains(&expected), "{}", r.stderr);
    assert!(r.stderr.contains("(mode 0666, owner uid"));
    assert!(r.stderr.contains("blocking commands will not run"));
}

/// A configuration others can write must not make root read (and echo in its errors) a file
/// it names: the ignore file is not read at all then.
#[test]
fn an_untrusted_configuration_names_no_file_root_reads() {
    let scratch = Scratch::new("untrusted");
    let secret = scratch.write("secret", "root:$6$not-for-you\n", 0o600);
    let conf = scratch.write(
        "portsentry.conf",
        &format!("TCP_PORTS=\"1\"\nIGNORE_FILE=\"{}\"\n", secret.display()),
        0o666,
    );
    let r = check(&conf);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "IGNORE_FILE {} is not read while the configuration is not root's alone",
            secret.display()
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("not-for-you") && !r.stdout.contains("not-for-you"));
}

/// A state directory others can write (the issue: under `/tmp`) let them plant links and
/// sockets where root writes: the daemon now refuses to start, naming it, before it opens
/// anything.
#[test]
fn a_state_directory_others_can_write_stops_the_daemon() {
    if !is_root() {
        eprintln!("skipped: needs root (the check is for root's files)");
        return;
    }
    let scratch = Scratch::new("state");
    let conf = scratch.write("portsentry.conf", "TCP_PORTS=\"1\"\n", 0o644);
    let state = scratch.0.join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r =
        run(portsentry(&["-c", conf.to_str().unwrap(), "--mode", "tcp"])
            .env("STATE_DIRECTORY", &state));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "the state directory {} is not safe for root's files",
            state.display()
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("mode 0777"), "{}", r.stderr);
    assert!(!state.join("portsentry.sock").exists());
}

#[test]
fn ignore_file_is_loaded_and_its_errors_are_fatal() {
    let scratch = Scratch::new("ignore");
    scratch.write(
        "good.ignore",
        "127.0.0.1/32\n# lab\n192.0.2.77/30 # trailing\r\n::1",
        0o644,
    );
    scratch.write("bad.ignore", "127.0.0.1\n\nlocalhost\n10.0.0.0/40\n", 0o644);
    let good = scratch.write(
        "good.conf",
        "TCP_PORTS=\"1\"\nIGNORE_FILE=\"good.ignore\"\n",
        0o644,
    );
    let r = check(&good);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("good.ignore (3 entries)"), "{}", r.stdout);
    let bad = scratch.write(
        "bad.conf",
        "TCP_PORTS=\"1\"\nIGNORE_FILE=\"bad.ignore\"\n",
        0o644,
    );
    let r = check(&bad);
    assert_eq!(r.code, Some(1));
    let ignore = scratch.0.join("bad.ignore");
    assert!(
        r.stderr.contains(&format!(
            "error: {}:3: `localhost` is not an IP address",
            ignore.display()
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&format!(
        "error: {}:4: `10.0.0.0/40` has an invalid prefix length",
        ignore.display()
    )));
}

#[test]
fn missing_file_is_an_error() {
    let r = check(Path::new("/nonexistent/portsentry.conf"));
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr
            .contains("cannot read /nonexistent/portsentry.conf"),
        "{}",
        r.stderr
    );
}

#[test]
fn no_subcommand_refuses_a_broken_configuration_or_mode() {
    let r = run(portsentry(&["-c"]).arg(data("broken/port-zero.conf")));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("port-zero.conf:"), "{}", r.stderr);
    let r = run(&mut portsentry(&["--mode", "nope"]));
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("unknown mode"), "{}", r.stderr);
}

/// Without root (run as `nobody` through setpriv), the stealth modes say exactly what is
/// missing and exit 77; nothing is left behind.
#[test]
fn without_cap_net_raw_the_detector_says_what_is_missing() {
    if !Path::new("/usr/bin/setpriv").exists() || !is_root() {
        eprintln!("skipped: needs root and setpriv to run as an unprivileged user");
        return;
    }
    let scratch = Scratch::new("noperm");
    std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = run(Command::new("/usr/bin/setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_portsentry"))
        .args(["-stcp", "-sudp"])
        .env_remove("PORTSENTRY_CONFIG")
        .env("XDG_STATE_HOME", &scratch.0));
    assert_eq!(r.code, Some(77), "{}", r.stderr);
    assert!(r.stderr.contains("stcp, sudp"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("needs root or the CAP_NET_RAW capability"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("setcap cap_net_raw"), "{}", r.stderr);
}

#[test]
fn help_and_version() {
    let r = run(&mut portsentry(&["--version"]));
    assert_eq!(r.code, Some(0));
    assert_eq!(
        r.stdout,
        format!("portsentry {}\n", env!("CARGO_PKG_VERSION"))
    );
    let r = run(&mut portsentry(&["--help"]));
    assert_eq!(r.code, Some(0));
    for section in [
        "Usage: portsentry",
        "check-config",
        "default-config",
        "EXAMPLES:",
        "EXIT STATUS:",
        "FILES:",
        "-c, --config <FILE>",
    ] {
        assert!(r.stdout.contains(section), "--help lacks {section}");
    }
    let r = run(&mut portsentry(&["check-config", "--help"]));
    assert!(r.stdout.contains("EXIT STATUS:"));
    let r = run(&mut portsentry(&["no-such-command"]));
    assert_eq!(r.code, Some(2));
}

#[test]
fn mode_flags_after_a_subcommand_are_named_as_typed() {
    for (args, word, usage) in [
        (
            &["check-config", "-atcp"][..],
            "-atcp",
            "Usage: portsentry check-config",
        ),
        (
            &["status", "--stealth"][..],
            "--stealth",
            "Usage: portsentry status",
        ),
    ] {
        let r = run(&mut portsentry(args));
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("unexpected argument '{word}' found")),
            "{args:?}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("--mode"), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(usage), "{args:?}: {}", r.stderr);
    }
    // `replay` has `--mode`, so the words still work there.
    let r = run(&mut portsentry(&["replay", "-atcp", "/nonexistent/x.pcap"]));
    assert!(!r.stderr.contains("unexpected argument"), "{}", r.stderr);
    assert!(r.stderr.contains("/nonexistent/x.pcap"), "{}", r.stderr);
}

#[test]
fn debian_file_when_installed() {
    let path = Path::new("/etc/portsentry/portsentry.conf");
    if !path.exists() {
        eprintln!(
            "skipped: {} is not installed (apt-get install portsentry)",
            path.display()
        );
        return;
    }
    let r = check(path);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("ports:"));
    assert!(!r.stderr.contains("unknown key"), "{}", r.stderr);
}

/// Runs `portsentry args...` under python3 and returns its exit code, stderr and peak
/// resident memory in KiB (`getrusage(RUSAGE_CHILDREN)` of the python process, whose only
/// child is portsentry); `None` without python3.
fn peak_memory(args: &[&str]) -> Option<(i32, String, u64)> {
    let script = "import resource, subprocess, sys\n\
                  r = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)\n\
                  sys.stderr.write(r.stderr.decode(errors='replace'))\n\
                  print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n";
    let out = Command::new("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_portsentry")])
        .args(args)
        .env_remove("PORTSENTRY_CONFIG")
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut words = stdout.split_whitespace();
    let code = words.next()?.parse().ok()?;
    let kib = words.next()?.parse().ok()?;
    Some((code, String::from_utf8_lossy(&out.stderr).into_owned(), kib))
}

/// The issue's reproduction: `check-config -c /dev/zero` (or `IGNORE_FILE="/dev/zero"`) grew
/// to 2.1 GB before failing. Now the read stops past 1 MiB, with a clear message and a peak
/// resident size under 64 MiB.
#[test]
fn endless_files_are_refused_without_filling_memory() {
    let Some((code, stderr, kib)) = peak_memory(&["check-config", "-c", "/dev/zero"]) else {
        eprintln!("skipped: needs python3 to measure the peak memory of the child");
        return;
    };
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("/dev/zero is larger than 1048576 bytes: refused"),
        "{stderr}"
    );
    assert!(kib < 64 * 1024, "peak RSS {kib} KiB");
    eprintln!("check-config -c /dev/zero: peak RSS {kib} KiB");

    let dir = Scratch::new("zero");
    let conf = dir.write(
        "p.conf",
        "TCP_PORTS=\"1\"\nIGNORE_FILE=\"/dev/zero\"\n",
        0o644,
    );
    let (code, stderr, kib) = peak_memory(&["check-config", "-c", conf.to_str().unwrap()]).unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("ignore file /dev/zero is larger than 1048576 bytes"),
        "{stderr}"
    );
    assert!(kib < 64 * 1024, "peak RSS {kib} KiB");
    // Just below the limit still loads (comments only).
    let big = dir.write(
        "big.conf",
        &format!("TCP_PORTS=\"1\"\n{}\n", "#".repeat(1_000_000)),
        0o644,
    );
    assert_eq!(check(&big).code, Some(0));
}

#[path = "cli/replay.rs"]
mod replay;

#[test]
fn check_config_refuses_a_crowdsec_credentials_file_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("crowdsec.yaml");
    std::fs::write(
        &credentials,
        "url: http://127.0.0.1:8080\nlogin: web1\npassword: secret\n",
    )
    .unwrap();
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = dir.path().join("portsentry.conf");
    std::fs::write(
        &config,
        format!(
            "TCP_PORTS=\"1\"\nBLOCK_TCP=\"1\"\nCROWDSEC_CREDENTIALS=\"{}\"\nPROBE_EVENTS=\"20\"\n",
            credentials.display()
        ),
    )
    .unwrap();
    let out = check(&config);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, Some(1), "{all}");
    assert!(
        out.stderr.contains("holds a password but its mode is 0644"),
        "{all}"
    );
    assert!(out.stdout.contains("PROBE_EVENTS"), "{all}");
    assert!(!all.contains("secret"), "the password is never printed");
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = check(&config);
    if portsentry_core::config::running_as_root() {
        assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    }
}

#[path = "cli/replay_flood.rs"]
mod replay_flood;
