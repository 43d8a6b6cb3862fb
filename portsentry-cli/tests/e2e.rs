//! End-to-end: the real `portsentry` binary in a network namespace, scanned by nmap from
//! another namespace over a veth pair (203.0.113.0/24 and 2001:db8::/64).
//!
//! Each test builds its own pair of namespaces (names carry the PID and a counter; deleted on
//! drop, also when the test fails), writes a configuration into a temporary directory
//! (history, block table, hosts.deny, status and control socket all there), loads an
//! nftables table inside the victim namespace, runs the daemon there with `ip netns exec`, and
//! checks what it printed and wrote. Every process is ended by its own PID. Without root, or
//! without nmap, nft or python3 (installed by `scripts/install-test-deps`), the tests print
//! why and pass without checking anything.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const VICTIM4: &str = "203.0.113.2";
const ATTACKER4: &str = "203.0.113.1";
const VICTIM6: &str = "2001:db8::2";
const ATTACKER6: &str = "2001:db8::1";
/// How long one wait for the daemon's reaction may take before the test fails.
const WAIT: Duration = Duration::from_secs(15);

fn is_root() -> bool {
    portsentry_core::config::running_as_root()
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?} failed");
}

/// Polls `check` every 50 ms until it is true or `timeout` passes.
fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two namespaces joined by a veth pair, a scratch directory, and an nftables table in the
/// victim namespace. Everything is removed on drop.
struct Lab {
    victim: String,
    attacker: String,
    dir: tempfile::TempDir,
}

impl Lab {
    /// Builds the lab, or `None` (with the reason printed) when the test cannot run here.
    fn create(test: &str) -> Option<Self> {
        if !is_root() {
            eprintln!("skipping {test}: needs root to create network namespaces");
            return None;
        }
        for tool in ["nmap", "nft", "python3", "unshare"] {
            if !have(tool) {
                eprintln!("skipping {test}: {tool} is not installed (scripts/install-test-deps)");
                return None;
            }
        }
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&format!("ps-e2e-{n}-"))
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let lab = Self {
            victim: format!("pse2e-v-{id}"),
            attacker: format!("pse2e-a-{id}"),
            dir,
        };
        ip(&["netns", "add", &lab.victim]);
        ip(&["netns", "add", &lab.attacker]);
        ip(&[
            "link",
            "add",
            "psev0",
            "netns",
            &lab.victim,
            "type",
            "veth",
            "peer",
            "name",
            "psea0",
            "netns",
            &lab.attacker,
        ]);
        for (netns, dev, v4, v6) in [
            (&lab.victim, "psev0", VICTIM4, VICTIM6),
            (&lab.attacker, "psea0", ATTACKER4, ATTACKER6),
        ] {
            ip(&["-n", netns, "addr", "add", &format!("{v4}/24"), "dev", dev]);
            ip(&[
                "-n",
                netns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                dev,
                "nodad",
            ]);
            ip(&["-n", netns, "link", "set", dev, "up"]);
            ip(&["-n", netns, "link", "set", "lo", "up"]);
        }
        let table = "table inet pse2e {\n set blocked4 { type ipv4_addr; flags timeout; }\n \
                     set blocked6 { type ipv6_addr; flags timeout; }\n}\n";
        let path = lab.path("table.nft");
        std::fs::write(&path, table).unwrap();
        let status = lab.victim_cmd("nft").arg("-f").arg(&path).status().unwrap();
        assert!(status.success(), "loading the nft table failed");
        Some(lab)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn in_netns(netns: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns, program]);
        cmd
    }

    fn victim_cmd(&self, program: &str) -> Command {
        Self::in_netns(&self.victim, program)
    }

    fn attacker_cmd(&self, program: &str) -> Command {
        Self::in_netns(&self.attacker, program)
    }

    /// Writes the configuration (mode 0644: root-only writable, so commands may run).
    fn write_config(&self, text: &str) -> PathBuf {
        let path = self.path("portsentry.conf");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    /// A configuration with every state file in the scratch directory and blocking through
    /// hosts.deny and the nftables set.
    fn config_text(&self, tcp: &str, udp: &str, extra: &str) -> String {
        format!(
            "TCP_PORTS=\"{tcp}\"\nUDP_PORTS=\"{udp}\"\nHISTORY_FILE=\"{}\"\nBLOCKED_FILE=\"{}\"\n\
             HOSTS_DENY_FILE=\"{}\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$ : DENY\"\n\
             NFT_SET=\"inet pse2e blocked\"\nBLOCK_TCP=\"1\"\nBLOCK_UDP=\"1\"\n{extra}",
            self.path("history").display(),
            self.path("blocked").display(),
            self.path("hosts.deny").display(),
        )
    }

    /// Runs nmap from the attacker namespace, bounded in retries and time.
    fn nmap(&self, scan: &str, ports: &str, target: &str) {
        let mut cmd = self.attacker_cmd("timeout");
        cmd.args(["60", "nmap", scan, "-Pn", "-n", "--max-retries", "0"]);
        cmd.args(["--host-timeout", "30s", "-p", ports]);
        if target.contains(':') {
            cmd.arg("-6");
        }
        cmd.arg(target);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "nmap {scan} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// The elements of the nftables set for `address`'s family.
    fn nft_set(&self, address: &str) -> String {
        let set = if address.contains(':') {
            "blocked6"
        } else {
            "blocked4"
        };
        let out = self
            .victim_cmd("nft")
            .args(["list", "set", "inet", "pse2e", set])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `portsentry SUBCOMMAND...` in the host namespace, with the lab's state directory.
    fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_portsentry"))
            .args(args)
            .env("STATE_DIRECTORY", self.dir.path())
            .env_remove("PORTSENTRY_CONFIG")
            .output()
            .unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.code(), text)
    }

    /// A real service in a namespace: python's HTTP server on `port`, all addresses.
    fn service(&self, in_victim: bool, port: u16) -> Service {
        let netns = if in_victim {
            &self.victim
        } else {
            &self.attacker
        };
        let child = Self::in_netns(netns, "python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", "::"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let service = Service(child);
        let probe = format!(
            "import socket; socket.create_connection(('{}', {port}), timeout=1).close()",
            if in_victim { VICTIM4 } else { ATTACKER4 }
        );
        let up = wait_until(WAIT, || {
            Self::in_netns(netns, "python3")
                .args(["-c", &probe])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(up, "the service on port {port} did not come up");
        service
    }

    /// An HTTP request from one namespace to a service in the other.
    fn http_get(&self, from_victim: bool, address: &str, port: u16) {
        let netns = if from_victim {
            &self.victim
        } else {
            &self.attacker
        };
        let host = if address.contains(':') {
            format!("[{address}]")
        } else {
            address.to_owned()
        };
        let script = format!(
            "import urllib.request; urllib.request.urlopen('http://{host}:{port}/', timeout=5).read()"
        );
        let status = Self::in_netns(netns, "python3")
            .args(["-c", &script])
            .status()
            .unwrap();
        assert!(status.success(), "GET {host}:{port} failed");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for netns in [&self.victim, &self.attacker] {
            let _ = Command::new("ip").args(["netns", "del", netns]).status();
        }
    }
}

/// A process ended by its own PID on drop.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The daemon, run in the victim namespace, its standard output in a file.
struct Daemon {
    child: Child,
    out: PathBuf,
}

impl Daemon {
    /// Runs the daemon in the victim namespace with `-c config` and `modes`, every state
    /// file in the lab's directory.
    fn start(lab: &Lab, config: &Path, modes: &[&str]) -> Self {
        let mut cmd = lab.victim_cmd(env!("CARGO_BIN_EXE_portsentry"));
        cmd.arg("-c")
            .arg(config)
            .args(modes)
            .env("STATE_DIRECTORY", lab.dir.path())
            .env_remove("PORTSENTRY_CONFIG");
        Self::spawn(lab, cmd)
    }

    /// Runs the daemon in the victim namespace with no argument at all, as on a fresh
    /// machine: a private mount namespace hides this machine's `/etc/portsentry` (a fresh
    /// machine has none, so the built-in default is used) and puts a scratch tmpfs over
    /// `/var/lib` (root's state directory, so nothing is written to the host's). Every `exec`
    /// keeps the PID, so the child is the daemon itself.
    fn start_without_arguments(lab: &Lab) -> Self {
        let hide = "set -e\n\
                    if [ -d /etc/portsentry ]; then mount -t tmpfs ps-e2e /etc/portsentry; fi\n\
                    mount -t tmpfs ps-e2e /var/lib\n\
                    exec \"$0\"";
        let mut cmd = lab.victim_cmd("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", hide])
            .arg(env!("CARGO_BIN_EXE_portsentry"))
            .env_remove("PORTSENTRY_CONFIG")
            .env_remove("STATE_DIRECTORY");
        Self::spawn(lab, cmd)
    }

    /// Starts `cmd` with its output in a file of the lab and waits until it is listening.
    fn spawn(lab: &Lab, cmd: Command) -> Self {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let out = lab.path(&format!("out-{}", RUNS.fetch_add(1, Ordering::Relaxed)));
        Self::spawn_to(out, cmd)
    }

    /// Starts `cmd` with its output in the file `out` and waits until it is listening.
    fn spawn_to(out: PathBuf, mut cmd: Command) -> Self {
        let file = File::create(&out).unwrap();
        let child = cmd
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let mut daemon = Self { child, out };
        daemon.expect("PortSentry is now active and listening.");
        daemon
    }

    fn output(&self) -> String {
        let mut text = String::new();
        File::open(&self.out)
            .and_then(|mut f| f.read_to_string(&mut text))
            .unwrap();
        text
    }

    /// Waits until the output contains `text`; fails with the whole output otherwise.
    fn expect(&mut self, text: &str) {
        self.expect_since(0, text);
    }

    /// Waits until the output after its first `since` bytes contains `text` (so that a line
    /// of an earlier, identical event does not count); fails with the whole output otherwise.
    fn expect_since(&mut self, since: usize, text: &str) {
        let found = wait_until(WAIT, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the daemon exited ({status}) before printing {text:?}:\n{}",
                    self.output()
                );
            }
            self.output()
                .get(since..)
                .is_some_and(|new| new.contains(text))
        });
        assert!(
            found,
            "no {text:?} in the daemon's output after byte {since}:\n{}",
            self.output()
        );
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then waits for the exit.
    fn stop(&mut self) -> ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the daemon ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Checks one detection, from the daemon's output after its first `since` bytes (the same
/// source may have been blocked and released before): the alert line with source and kind,
/// the history line, the hosts.deny line, the nft element, the block table; then the expiry
/// of all of them.
fn assert_blocked_then_released(
    lab: &Lab,
    daemon: &mut Daemon,
    since: usize,
    alert: &str,
    source: &str,
    proto: &str,
) {
    daemon.expect_since(since, alert);
    daemon.expect_since(
        since,
        &format!("Host {source} has been blocked via wrappers"),
    );
    let history = lab.read("history");
    assert!(
        history.contains(&format!("Host: {source}/{source} Port: ")) && history.contains(proto),
        "history lacks {source} {proto}:\n{history}"
    );
    // tcp_wrappers' own syntax: an IPv6 address in brackets.
    let pattern = if source.contains(':') {
        format!("[{source}]")
    } else {
        source.to_owned()
    };
    assert!(
        lab.read("hosts.deny")
            .contains(&format!("ALL: {pattern} : DENY")),
        "{}",
        lab.read("hosts.deny")
    );
    assert!(
        wait_until(WAIT, || lab.nft_set(source).contains(source)),
        "{source} is not in the nft set: {}",
        lab.nft_set(source)
    );
    assert!(wait_until(WAIT, || lab.read("blocked").contains(source)));
    // BLOCK_TIMEOUT is 3 s: the release removes everything again.
    daemon.expect_since(
        since,
        &format!("Host: {source}/{source} block expired after"),
    );
    assert!(
        wait_until(WAIT, || !lab.read("hosts.deny").contains(source)),
        "hosts.deny still blocks {source}"
    );
    assert!(wait_until(WAIT, || !lab.nft_set(source).contains(source)));
    assert!(wait_until(WAIT, || !lab.read("blocked").contains(source)));
}

#[test]
fn stealth_modes_detect_nmap_scans_block_and_expire() {
    let Some(lab) = Lab::create("stealth_modes_detect_nmap_scans_block_and_expire") else {
        return;
    };
    // A real service on 8080 (listed in TCP_PORTS: stealth mode must leave it alone) and
    // one in the attacker namespace for the victim's own outbound connections.
    let _service = lab.service(true, 8080);
    let _outside = lab.service(false, 8081);
    let config =
        lab.write_config(&lab.config_text("1,79,111,8080", "7,9,69", "BLOCK_TIMEOUT=\"3\"\n"));
    let mut daemon = Daemon::start(&lab, &config, &["-stcp", "-sudp"]);
    let start = daemon.output();
    assert!(
        start.contains("stealth listen mode (stcp) on TCP port(s): 1,79,111\n"),
        "{start}"
    );
    assert!(start.contains("(sudp) on UDP port(s): 7,9,69"), "{start}");

    // Benign traffic: a client of the real service, and the victim's own connections out.
    lab.http_get(false, VICTIM4, 8080);
    lab.http_get(false, VICTIM6, 8080);
    lab.http_get(true, ATTACKER4, 8081);
    lab.http_get(true, ATTACKER6, 8081);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !daemon.output().contains("attackalert"),
        "{}",
        daemon.output()
    );

    let scans = [
        ("-sS", ATTACKER4, VICTIM4, "TCP SYN/Normal scan", "TCP"),
        ("-sF", ATTACKER6, VICTIM6, "TCP FIN scan", "TCP"),
        ("-sN", ATTACKER4, VICTIM4, " TCP NULL scan", "TCP"),
        ("-sX", ATTACKER6, VICTIM6, "TCP XMAS scan", "TCP"),
        ("-sT", ATTACKER4, VICTIM4, "TCP SYN/Normal scan", "TCP"),
        ("-sU", ATTACKER4, VICTIM4, "UDP scan", "UDP"),
        ("-sU", ATTACKER6, VICTIM6, "UDP scan", "UDP"),
    ];
    for (scan, source, target, kind, proto) in scans {
        let before = daemon.output().len();
        let ports = if proto == "UDP" { "7,9" } else { "1,79" };
        lab.nmap(scan, ports, target);
        let alert = format!("attackalert: {kind} from host: {source}/{source} to {proto} port: ");
        assert_blocked_then_released(&lab, &mut daemon, before, &alert, source, proto);
    }

    let (code, status) = lab.cli(&["status"]);
    assert_eq!(code, Some(0), "{status}");
    assert!(status.contains("running, pid"), "{status}");
    assert!(!status.contains("alerts 0,"), "{status}");
    assert!(status.contains(" 0 dropped by the kernel"), "{status}");
    assert!(daemon.stop().success(), "{}", daemon.output());
    assert!(daemon.output().contains("PortSentry is shutting down"));
    let (code, status) = lab.cli(&["status"]);
    assert_eq!(code, Some(3), "{status}");
    assert!(status.contains("NOT running (stopped cleanly)"), "{status}");
}

#[test]
fn connect_modes_send_the_banner_only_to_new_scanners_and_skip_busy_ports() {
    let Some(lab) = Lab::create("connect_modes_send_the_banner_only_to_new_scanners") else {
        return;
    };
    // Port 5556 is taken by a real service: it is reported and skipped.
    let _busy = lab.service(true, 5556);
    let config = lab.write_config(&lab.config_text(
        "1,79,5555,5556",
        "7,69",
        "BLOCK_TIMEOUT=\"3\"\nPORT_BANNER=\"go away\"\n",
    ));
    let mut daemon = Daemon::start(&lab, &config, &["-tcp", "-udp"]);
    let start = daemon.output();
    assert!(start.contains("cannot bind TCP port 5556"), "{start}");
    assert!(
        start.contains("listen mode (connect) (tcp) on TCP port(s): 1,79,5555\n"),
        "{start}"
    );

    // A first connection reaches the trigger (0): it gets the banner and is blocked.
    let read_banner = format!(
        "import socket; s = socket.create_connection(('{VICTIM4}', 5555), timeout=5); \
         print(s.recv(100).decode(), end='')"
    );
    let first = lab
        .attacker_cmd("python3")
        .args(["-c", &read_banner])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&first.stdout), "go away\n");
    daemon.expect(&format!(
        "attackalert: Connect from host: {ATTACKER4}/{ATTACKER4} to TCP port: 5555"
    ));
    daemon.expect(&format!("Host {ATTACKER4} has been blocked via wrappers"));
    // Already blocked: the connection is closed without a banner.
    let second = lab
        .attacker_cmd("python3")
        .args(["-c", &read_banner])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        "",
        "a blocked host got the banner"
    );
    daemon.expect(&format!(
        "attackalert: Host: {ATTACKER4} is already blocked. Ignoring"
    ));
    assert!(wait_until(WAIT, || lab
        .nft_set(ATTACKER4)
        .contains(ATTACKER4)));

    // The administrator lifts the block through the running daemon.
    let (code, text) = lab.cli(&["unblock", ATTACKER4]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("released by the running detector"), "{text}");
    assert!(wait_until(WAIT, || !lab
        .read("hosts.deny")
        .contains(ATTACKER4)));
    assert!(wait_until(WAIT, || !lab
        .nft_set(ATTACKER4)
        .contains(ATTACKER4)));
    let (code, _) = lab.cli(&["unblock", ATTACKER4]);
    assert_eq!(code, Some(1), "a second unblock finds nothing");

    // nmap connect scan over IPv6, then UDP over IPv4.
    let before = daemon.output().len();
    lab.nmap("-sT", "1,79", VICTIM6);
    assert_blocked_then_released(
        &lab,
        &mut daemon,
        before,
        &format!("attackalert: Connect from host: {ATTACKER6}/{ATTACKER6} to TCP port: "),
        ATTACKER6,
        "TCP",
    );
    let before = daemon.output().len();
    lab.nmap("-sU", "7,69", VICTIM4);
    assert_blocked_then_released(
        &lab,
        &mut daemon,
        before,
        &format!("attackalert: Connect from host: {ATTACKER4}/{ATTACKER4} to UDP port: "),
        ATTACKER4,
        "UDP",
    );
    assert!(daemon.stop().success(), "{}", daemon.output());
}

#[test]
fn advanced_modes_reload_on_sighup_and_blocks_survive_a_restart() {
    let Some(lab) = Lab::create("advanced_modes_reload_on_sighup_and_blocks_survive_a_restart")
    else {
        return;
    };
    let _service = lab.service(true, 80);
    let advanced = |bound: u16| {
        lab.config_text(
            "1",
            "1",
            &format!(
                "ADVANCED_PORTS_TCP=\"{bound}\"\nADVANCED_PORTS_UDP=\"1024\"\n\
                 ADVANCED_EXCLUDE_TCP=\"113\"\nADVANCED_EXCLUDE_UDP=\"\"\nBLOCK_TIMEOUT=\"600\"\n"
            ),
        )
    };
    let config = lab.write_config(&advanced(1024));
    let mut daemon = Daemon::start(&lab, &config, &["-atcp", "-audp"]);

    // Not alarming: the listening service (80), the excluded port (113), a port at or above
    // ADVANCED_PORTS_TCP (2000).
    lab.nmap("-sS", "80,113,2000", VICTIM4);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !daemon.output().contains("attackalert"),
        "{}",
        daemon.output()
    );

    // SIGHUP with ADVANCED_PORTS_TCP=3000: port 2000 alarms now.
    lab.write_config(&advanced(3000));
    daemon.signal("-HUP");
    daemon.expect("configuration reloaded");
    lab.nmap("-sS", "2000", VICTIM6);
    daemon.expect(&format!(
        "attackalert: TCP SYN/Normal scan from host: {ATTACKER6}/{ATTACKER6} to TCP port: 2000"
    ));
    daemon.expect(&format!("Host {ATTACKER6} has been blocked via wrappers"));

    // A broken file on SIGHUP: reported with file:line, the old configuration stays.
    lab.write_config(&format!("{}SCAN_TRIGGER=\"-1\"\n", advanced(3000)));
    daemon.signal("-HUP");
    daemon.expect("portsentry.conf:");
    daemon.expect("keeping the previous one");
    let lines = daemon.output();
    let error = lines
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("SCAN_TRIGGER"))
        .unwrap_or_else(|| panic!("no SCAN_TRIGGER error line:\n{lines}"));
    assert!(error.contains("portsentry.conf:"), "{error}");
    lab.nmap("-sU", "53", VICTIM4);
    daemon.expect(&format!(
        "attackalert: UDP scan from host: {ATTACKER4}/{ATTACKER4} to UDP port: 53"
    ));
    assert!(wait_until(WAIT, || lab.read("blocked").contains(ATTACKER4)));

    // Stop and start again (with a valid file): the blocks come back from the block table.
    assert!(daemon.stop().success(), "{}", daemon.output());
    lab.write_config(&advanced(3000));
    let (code, status) = lab.cli(&["status"]);
    assert_eq!(code, Some(3), "{status}");
    assert!(
        status.contains(ATTACKER4) && status.contains(ATTACKER6),
        "{status}"
    );
    let mut daemon = Daemon::start(&lab, &config, &["-atcp", "-audp"]);
    assert!(
        daemon.output().contains("restored 2 block(s)"),
        "{}",
        daemon.output()
    );
    let mut status = String::new();
    let running = wait_until(WAIT, || {
        let (code, text) = lab.cli(&["status"]);
        status = text;
        code == Some(0)
    });
    assert!(running, "{status}");
    assert!(status.contains("blocked hosts: 2"), "{status}");
    lab.nmap("-sS", "443", VICTIM6);
    daemon.expect(&format!(
        "attackalert: Host: {ATTACKER6}/{ATTACKER6} is already blocked Ignoring"
    ));
    assert!(
        !daemon.output().contains("scan from host"),
        "{}",
        daemon.output()
    );
    assert!(daemon.stop().success());
}

/// Issue 5's promise: `portsentry` with no argument on a fresh machine runs the built-in
/// default (stealth TCP and UDP, log only) and prints an alert when scanned.
#[test]
fn no_arguments_run_the_built_in_default_and_print_alerts() {
    let Some(lab) = Lab::create("no_arguments_run_the_built_in_default_and_print_alerts") else {
        return;
    };
    let mut daemon = Daemon::start_without_arguments(&lab);
    let start = daemon.output();
    assert!(
        start.contains("stealth listen mode (stcp) on TCP port(s): 1,11,15,79,111,"),
        "{start}"
    );
    assert!(
        start.contains("stealth listen mode (sudp) on UDP port(s): 1,7,9,69,"),
        "{start}"
    );
    assert!(!start.contains("WARNING"), "{start}");

    lab.nmap("-sS", "1,11,79,111", VICTIM4);
    daemon.expect(&format!(
        "attackalert: TCP SYN/Normal scan from host: {ATTACKER4}/{ATTACKER4} to TCP port: "
    ));
    daemon.expect("attackalert: Ignoring TCP response per configuration file setting.");
    lab.nmap("-sU", "7,9", VICTIM6);
    daemon.expect(&format!(
        "attackalert: UDP scan from host: {ATTACKER6}/{ATTACKER6} to UDP port: "
    ));
    daemon.expect("attackalert: Ignoring UDP response per configuration file setting.");
    assert!(
        !daemon.output().contains("has been blocked"),
        "the default only logs:\n{}",
        daemon.output()
    );
    assert!(daemon.stop().success(), "{}", daemon.output());
    assert!(daemon.output().contains("PortSentry is shutting down"));
}

impl Lab {
    /// Runs `script` with python3 in the victim (`true`) or attacker namespace; fails the
    /// test when it fails. Bounded: the scripts themselves time out within seconds.
    fn python(&self, in_victim: bool, script: &str) {
        let netns = if in_victim {
            &self.victim
        } else {
            &self.attacker
        };
        let out = Self::in_netns(netns, "timeout")
            .args(["20", "python3", "-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python3 failed: {script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A UDP echo server on `port` of the attacker namespace (IPv4 and IPv6).
    fn udp_echo(&self, port: u16) -> Service {
        let script = format!(
            "import socket\n\
             s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
             s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n\
             s.bind(('::', {port}))\n\
             while True:\n    d, a = s.recvfrom(2048)\n    s.sendto(d, a)\n"
        );
        let child = Self::in_netns(&self.attacker, "python3")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Service(child)
    }

    /// Runs `body` in the victim namespace after binding a socket `s` of `kind` (`DGRAM`,
    /// `STREAM`) to `local`:`local_port`, in the address family of `server`.
    fn victim_socket(&self, kind: &str, local: &str, local_port: u16, server: &str, body: &str) {
        let family = if server.contains(':') {
            "AF_INET6"
        } else {
            "AF_INET"
        };
        self.python(
            true,
            &format!(
                "import socket\n\
                 s = socket.socket(socket.{family}, socket.SOCK_{kind})\n\
                 s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                 s.bind(('{local}', {local_port}))\n{body}"
            ),
        );
    }

    /// The victim's own UDP query from `local_port` to `server`:`port`, retried until the
    /// answer comes (5 s at most).
    fn victim_udp_query(&self, local: &str, local_port: u16, server: &str, port: u16) {
        let body = format!(
            "s.settimeout(0.5)\n\
             for _ in range(10):\n    s.sendto(b'query', ('{server}', {port}))\n    \
             try:\n        s.recvfrom(100)\n        break\n    \
             except socket.timeout:\n        pass\n\
             else:\n    raise SystemExit('no answer')\n"
        );
        self.victim_socket("DGRAM", local, local_port, server, &body);
    }

    /// The victim's own HTTP request from `local_port` to `server`:`port`, read to the end.
    fn victim_tcp_request(&self, local: &str, local_port: u16, server: &str, port: u16) {
        let body = format!(
            "s.settimeout(5)\n\
             s.connect(('{server}', {port}))\n\
             s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n\
             got = b''\n\
             while True:\n    b = s.recv(4096)\n    if not b:\n        break\n    got += b\n\
             assert got.startswith(b'HTTP/1.0 200'), got[:40]\n"
        );
        self.victim_socket("STREAM", local, local_port, server, &body);
    }

    fn victim_nft(&self, command: &str) {
        let status = self.victim_cmd("nft").arg(command).status().unwrap();
        assert!(status.success(), "nft {command} failed");
    }
}

/// Waits for the JSON alert printed after byte `since` of the daemon's output, checks that it
/// is the only one and is about `port`, and returns it.
fn the_alert_since(daemon: &mut Daemon, since: usize, port: &str) -> serde_json::Value {
    daemon.expect_since(since, "\"event\":\"alert\"");
    let alerts = json_alerts(&daemon.output(), since);
    assert_eq!(alerts.len(), 1, "port {port}: {alerts:?}");
    assert_eq!(alerts[0]["dst_port"], port.parse::<u64>().unwrap());
    alerts[0].clone()
}

/// The JSON alert lines of `output` after its first `since` bytes.
fn json_alerts(output: &str, since: usize) -> Vec<serde_json::Value> {
    output
        .get(since..)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v["event"] == "alert")
        .collect()
}

#[test]
fn the_hosts_own_answers_raise_no_alarm_and_scans_after_them_are_still_caught() {
    let Some(lab) = Lab::create("the_hosts_own_answers_raise_no_alarm") else {
        return;
    };
    // Servers in the attacker namespace answer the victim's own traffic.
    let _http = lab.service(false, 8081);
    let _echo = lab.udp_echo(7);
    let runs: [(&[&str], &str); 2] = [
        (&["-stcp", "-sudp"], ""),
        (
            &["-atcp", "-audp"],
            "ADVANCED_PORTS_TCP=\"40000\"\nADVANCED_PORTS_UDP=\"40000\"\n",
        ),
    ];
    for (modes, extra) in runs {
        // Debian's lists overlap Linux's ephemeral range (32770-32774); DETECT_ACK_SCANS makes
        // every ACK of the server's answer a probe of a monitored port on the old code.
        let config = lab.write_config(&lab.config_text(
            "1,79,32771",
            "9,69,32772",
            &format!(
                "BLOCK_TCP=\"0\"\nBLOCK_UDP=\"0\"\nDETECT_ACK_SCANS=\"1\"\nSCAN_TRIGGER=\"0\"\n{extra}"
            ),
        ));
        let mut args = vec!["--log-format", "json"];
        args.extend_from_slice(modes);
        let mut daemon = Daemon::start(&lab, &config, &args);
        let before = daemon.output().len();
        for (victim, server) in [(VICTIM4, ATTACKER4), (VICTIM6, ATTACKER6)] {
            lab.victim_udp_query(victim, 32772, server, 7);
            lab.victim_tcp_request(victim, 32771, server, 8081);
        }
        // Whatever the daemon would say about the answers, it says within a moment.
        std::thread::sleep(Duration::from_millis(1500));
        let output = daemon.output();
        assert_eq!(
            json_alerts(&output, before),
            Vec::<serde_json::Value>::new(),
            "{modes:?}: the answers to the victim's own traffic were alerted:\n{output}"
        );
        let status = status_after(&lab, unix_now());
        let replies = status["counters"]["skipped"]["reply"].as_u64().unwrap_or(0);
        assert!(
            replies >= 4,
            "{modes:?}: replies skipped {replies}: {status}"
        );

        // The same peer scanning right after is still caught, on both protocols.
        for (scan, port, target) in [("-sU", "9", VICTIM4), ("-sS", "79", VICTIM6)] {
            let since = daemon.output().len();
            lab.nmap(scan, port, target);
            let source = if target.contains(':') {
                ATTACKER6
            } else {
                ATTACKER4
            };
            let alert = the_alert_since(&mut daemon, since, port);
            assert_eq!(alert["src_ip"], source, "{modes:?} {scan}");
        }
        assert!(daemon.stop().success(), "{}", daemon.output());
    }
}

#[test]
fn alerts_carry_the_port_state_the_scanner_saw() {
    let Some(lab) = Lab::create("alerts_carry_the_port_state_the_scanner_saw") else {
        return;
    };
    // Port 79 is monitored and has no listener, but the victim forwards it to a real
    // service on 8080: the scanner finds it open. Port 111 is dropped by the victim's own
    // firewall; port 1 is closed.
    let _service = lab.service(true, 8080);
    lab.victim_nft("add table ip pse2enat");
    lab.victim_nft("add chain ip pse2enat pre { type nat hook prerouting priority -100; }");
    lab.victim_nft("add rule ip pse2enat pre tcp dport 79 redirect to :8080");
    lab.victim_nft("add chain inet pse2e input { type filter hook input priority 0; }");
    lab.victim_nft("add rule inet pse2e input tcp dport 111 drop");
    let config = lab.write_config(&lab.config_text(
        "1,79,111",
        "9,69",
        "BLOCK_TCP=\"0\"\nBLOCK_UDP=\"0\"\nSCAN_TRIGGER=\"0\"\nSCAN_WINDOW=\"1\"\n",
    ));
    let mut daemon = Daemon::start(&lab, &config, &["--log-format", "json", "-stcp", "-sudp"]);
    let cases = [
        ("-sS", "79", VICTIM4, "open"),
        ("-sS", "1", VICTIM4, "closed"),
        ("-sS", "1", VICTIM6, "closed"),
        ("-sS", "111", VICTIM4, "filtered"),
        ("-sS", "111", VICTIM6, "filtered"),
        ("-sU", "9", VICTIM4, "unreachable"),
    ];
    for (scan, port, target, state) in cases {
        // SCAN_WINDOW is 1 s: the same source alerts again after it.
        std::thread::sleep(Duration::from_millis(1200));
        let since = daemon.output().len();
        lab.nmap(scan, port, target);
        let alert = the_alert_since(&mut daemon, since, port);
        assert_eq!(
            alert["port_state"], state,
            "{scan} {port} {target}: {alert}"
        );
        assert_eq!(alert["reached_open_port"], state == "open");
    }
    let status = status_after(&lab, unix_now());
    let counters = &status["counters"];
    assert_eq!(counters["alerts_reaching_open_ports"], 1, "{status}");
    assert_eq!(counters["alerts_by_port_state"]["closed"], 2, "{status}");
    assert_eq!(counters["alerts_by_port_state"]["filtered"], 2, "{status}");
    assert!(daemon.stop().success(), "{}", daemon.output());
}

#[test]
fn trw_trigger_catches_a_live_scan_after_its_failed_first_contacts() {
    let Some(lab) = Lab::create("trw_trigger_catches_a_live_scan") else {
        return;
    };
    let _service = lab.service(true, 8080);
    let ports = "1,7,9,11,15,79,111,119,143,8080";
    for (settings, range) in [
        ("SCAN_TRIGGER_MODE=\"trw\"\n", 4..=6u64),
        ("SCAN_TRIGGER_MODE=\"count\"\nSCAN_TRIGGER=\"3\"\n", 3..=3),
    ] {
        let config = lab.write_config(&lab.config_text(
            ports,
            "9",
            &format!("BLOCK_TCP=\"0\"\nBLOCK_UDP=\"0\"\n{settings}"),
        ));
        let mut daemon = Daemon::start(&lab, &config, &["--log-format", "json", "-stcp"]);
        // A client of the real service is no scanner.
        for _ in 0..3 {
            lab.http_get(false, VICTIM4, 8080);
        }
        let since = daemon.output().len();
        lab.nmap("-sS", ports, VICTIM4);
        daemon.expect_since(since, "\"event\":\"alert\"");
        let alerts = json_alerts(&daemon.output(), 0);
        assert_eq!(alerts.len(), 1, "{settings}: {alerts:?}");
        let distinct = alerts[0]["distinct_ports"].as_u64().unwrap();
        // The walk: four failed first contacts, one more for each open port met before.
        assert!(range.contains(&distinct), "{settings}: {}", alerts[0]);
        assert_eq!(alerts[0]["port_state"], "closed");
        eprintln!("{settings:?}: alert after {distinct} distinct ports");
        assert!(daemon.stop().success(), "{}", daemon.output());
    }
}

/// The daemon's status document, once it was written after `after` (it is rewritten every
/// 2 s).
fn status_after(lab: &Lab, after: u64) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let fresh = wait_until(WAIT, || {
        let (_, text) = lab.cli(&["status", "--json"]);
        last = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        last["updated_at"].as_u64().is_some_and(|t| t > after)
    });
    assert!(fresh, "no fresh status: {last}");
    last
}

/// Issue 11: a flood from a source that is already blocked costs a counter, not a line per
/// packet; `status` reports the exact count and the tracker's memory.
#[test]
fn a_blocked_source_flooding_costs_counters_not_lines() {
    let Some(lab) = Lab::create("a_blocked_source_flooding_costs_counters") else {
        return;
    };
    let config = lab.write_config(&lab.config_text("1,79", "7", ""));
    let mut daemon = Daemon::start(&lab, &config, &["-stcp"]);
    lab.nmap("-sS", "1", VICTIM4);
    daemon.expect(&format!(
        "scan from host: {ATTACKER4}/{ATTACKER4} to TCP port: 1"
    ));
    assert!(wait_until(WAIT, || lab.read("blocked").contains(ATTACKER4)));
    // 3,000 SYNs to a monitored port from the blocked source (bounded in count and time).
    let sent = lab
        .attacker_cmd("timeout")
        .args([
            "30", "hping3", "-q", "-S", "-p", "79", "-c", "3000", "-i", "u200", VICTIM4,
        ])
        .output()
        .unwrap();
    assert!(
        sent.status.code().is_some(),
        "hping3: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let mut status = String::new();
    let counted = wait_until(WAIT, || {
        let (_, text) = lab.cli(&["status"]);
        status = text;
        status
            .lines()
            .find(|l| l.contains("repeats of known sources:"))
            .and_then(|l| l.split_whitespace().nth(4))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= 2_900)
    });
    assert!(counted, "{status}");
    // The exact count: every repeat is either noticed or counted, and they add up to the
    // detector's already-blocked count.
    let line = status
        .lines()
        .find(|l| l.contains("repeats of known sources:"))
        .unwrap();
    assert!(line.contains(" noticed, "), "{line}");
    assert!(status.contains("tracker: "), "{status}");
    let mib: u64 = status
        .lines()
        .find(|l| l.contains("tracker: "))
        .and_then(|l| l.rsplit(", ").next())
        .and_then(|l| l.trim_end_matches(" MiB").parse().ok())
        .unwrap_or_else(|| panic!("no tracker memory in {status}"));
    assert!(mib <= 32, "{status}");
    let out = daemon.output();
    let repeats = out.matches("is already blocked").count();
    assert!(
        repeats <= 1,
        "one notice per minute at most, not one per packet:\n{out}"
    );
    assert!(daemon.stop().success(), "{}", daemon.output());
}

// ---------------------------------------------------------------------------------------
// Issue 9: blocks you can trust.

/// The addresses of the victim's blackhole routes, sorted.
fn blackholes(lab: &Lab) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-n", &lab.victim, "route", "show", "type", "blackhole"])
        .output()
        .unwrap();
    let mut found: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    found.sort();
    found
}

/// The journal's lines as (address, expires_at seconds or None, state).
fn journal(lab: &Lab) -> Vec<(String, Option<u64>, String)> {
    lab.read("blocked")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_owned(),
                f[2].parse().ok(),
                f.get(5).copied().unwrap_or("blocked").to_owned(),
            )
        })
        .collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn the_kernel_filter_follows_the_monitored_ports() {
    let Some(lab) = Lab::create("the_kernel_filter_follows_the_monitored_ports") else {
        return;
    };
    let text = |tcp: &str| {
        lab.config_text(
            tcp,
            "9",
            "BLOCK_TCP=\"0\"\nBLOCK_UDP=\"0\"\nSCAN_TRIGGER=\"0\"\nSCAN_WINDOW=\"1\"\n",
        )
    };
    let config = lab.write_config(&text("1,79"));
    let mut daemon = Daemon::start(&lab, &config, &["--log-format", "json", "-stcp", "-sudp"]);
    let received = |lab: &Lab| {
        let status = status_after(lab, unix_now());
        status["counters"]["capture"]["received"].as_u64().unwrap()
    };
    let before = received(&lab);
    // Unmonitored ports: neither the SYNs nor the victim's resets leave the kernel.
    lab.nmap("-sS", "80-90", VICTIM4);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(received(&lab), before, "{}", daemon.output());
    // Nor the datagrams; only the victim's ICMP port unreachables do (kept whatever they
    // quote, and rate-limited by the kernel): at most one per port.
    lab.nmap("-sU", "10-20", VICTIM4);
    std::thread::sleep(Duration::from_millis(500));
    let after_udp = received(&lab);
    assert!(after_udp - before <= 11, "{after_udp} {before}");
    assert_eq!(
        json_alerts(&daemon.output(), 0),
        Vec::<serde_json::Value>::new()
    );
    let before = after_udp;

    // A reload that adds port 85 recompiles the filter.
    lab.write_config(&text("1,79,85"));
    let since = daemon.output().len();
    daemon.signal("-HUP");
    daemon.expect_since(since, "(stcp) on TCP port(s): 1,79,85");
    std::thread::sleep(Duration::from_millis(1200));
    let since = daemon.output().len();
    lab.nmap("-sS", "85", VICTIM4);
    daemon.expect_since(since, "\"dst_port\":85");
    assert!(
        received(&lab) >= before + 2,
        "the SYN and the victim's reset"
    );

    // A service that starts listening on 79 takes it out of the filter at the next refresh
    // (every 10 s).
    let _service = lab.service(true, 79);
    std::thread::sleep(Duration::from_secs(11));
    let settled = received(&lab);
    lab.nmap("-sS", "79", VICTIM4);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(received(&lab), settled, "{}", daemon.output());
    assert!(daemon.stop().success(), "{}", daemon.output());
}

/// True when the journal holds only blocks in force, and exactly those that have not
/// expired have a blackhole route (no orphan route, no block without its route).
fn routes_match_journal(lab: &Lab) -> bool {
    let entries = journal(lab);
    if entries.iter().any(|(_, _, state)| state != "blocked") {
        return false;
    }
    let now = unix_now();
    let mut live: Vec<String> = entries
        .iter()
        .filter(|(_, end, _)| end.is_none_or(|e| e > now + 1))
        .map(|(a, _, _)| a.clone())
        .collect();
    live.sort();
    let routes = blackholes(lab);
    // Blocks about to expire may or may not have been released yet.
    let expiring: Vec<&String> = entries
        .iter()
        .filter(|(_, end, _)| end.is_some_and(|e| e <= now + 1))
        .map(|(a, _, _)| a)
        .collect();
    let routes: Vec<String> = routes
        .into_iter()
        .filter(|r| !expiring.contains(&r))
        .collect();
    routes == live
}

/// A shell loop in the attacker namespace sending one SYN from each forged `sources` address
/// to a port of the victim while the file `gate` exists; bounded by `limit` seconds.
fn forged_scanner(lab: &Lab, sources: &[String], gate: &Path, limit: u32) -> Service {
    let script = format!(
        "end=$(( $(date +%s) + {limit} )); while [ $(date +%s) -lt $end ]; do \
         if [ -e {gate} ]; then for s in {sources}; do \
         hping3 -q -a $s -S -p $(( (RANDOM % 5) + 1 )) -c 1 -i u1000 {VICTIM4} >/dev/null 2>&1 & \
         done; wait; else sleep 0.05; fi; done",
        gate = gate.display(),
        sources = sources.join(" "),
    );
    let child = lab
        .attacker_cmd("bash")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Service(child)
}

fn have_hping3(test: &str) -> bool {
    if have("hping3") {
        return true;
    }
    eprintln!("skipping {test}: hping3 is not installed (scripts/install-test-deps)");
    false
}

/// Issue 9, "Done when" 1: SIGKILL at 50 random instants while several forged sources scan;
/// after every restart the blackhole routes equal the unexpired block table within one
/// reconcile interval.
#[test]
fn crash_injection_leaves_no_orphan_route_and_no_unenforced_block() {
    let test = "crash_injection_leaves_no_orphan_route_and_no_unenforced_block";
    let Some(lab) = Lab::create(test) else {
        return;
    };
    if !have_hping3(test) {
        return;
    }
    let config = lab.write_config(&format!(
        "TCP_PORTS=\"1,2,3,4,5\"\nUDP_PORTS=\"7\"\nHISTORY_FILE=\"{}\"\nBLOCKED_FILE=\"{}\"\n\
         BLOCK_TCP=\"1\"\nBLOCK_UDP=\"0\"\nSCAN_TRIGGER=\"0\"\nBLOCK_TIMEOUT=\"2\"\n\
         RECONCILE_INTERVAL=\"3\"\nKILL_ROUTE=\"ip route add blackhole $TARGET$\"\n\
         UNBLOCK_CMD=\"ip route del blackhole $TARGET$\"\n",
        lab.path("history").display(),
        lab.path("blocked").display(),
    ));
    let sources: Vec<String> = (10..26).map(|i| format!("203.0.113.{i}")).collect();
    let gate = lab.path("scan");
    let _scanner = forged_scanner(&lab, &sources, &gate, 170);
    let began = Instant::now();
    let mut seed = u64::from(std::process::id());
    let mut kills = 0;
    let mut checked_with_blocks = 0;
    let mut previous = String::new();
    while kills < 50 {
        assert!(began.elapsed() < Duration::from_secs(170), "too slow");
        let journal_before = lab.read("blocked");
        let mut daemon = Daemon::start(&lab, &config, &["-stcp"]);
        // Every restart converges: routes = unexpired table, within one interval (3 s; plus
        // 3 s of slack for a loaded 2-core machine: re-applying a command block runs its
        // release then its block command, so a route is briefly missing while that runs).
        let ok = wait_until(Duration::from_secs(3 + 3), || routes_match_journal(&lab));
        assert!(
            ok,
            "after restart {kills}: routes {:?} vs journal {:?}\n{}\nJOURNAL BEFORE:\n{journal_before}\nPREVIOUS:\n{previous}",
            blackholes(&lab),
            journal(&lab),
            daemon.output()
        );
        if !journal(&lab).is_empty() {
            checked_with_blocks += 1;
        }
        std::fs::write(&gate, "").unwrap();
        // xorshift: a random instant of 0-700 ms of scanning, blocking and releasing.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 700));
        daemon.signal("-KILL");
        let _ = daemon.child.wait();
        previous = daemon.output();
        std::fs::remove_file(&gate).unwrap();
        kills += 1;
    }
    assert!(
        checked_with_blocks >= 10,
        "only {checked_with_blocks} restarts found blocks to restore"
    );
    eprintln!(
        "crash injection: {kills} SIGKILLs in {:?}, {checked_with_blocks} restarts restored blocks",
        began.elapsed()
    );
    let mut daemon = Daemon::start(&lab, &config, &["-stcp"]);
    assert!(wait_until(Duration::from_secs(6), || routes_match_journal(
        &lab
    )));
    assert!(daemon.stop().success(), "{}", daemon.output());
}

/// Issue 9, "Done when" 2: routes, the nftables set and hosts.deny emptied while the daemon
/// is stopped (a reboot); after start every unexpired block is back and every expired one
/// is gone.
#[test]
fn after_a_reboot_unexpired_blocks_are_back_and_expired_ones_gone() {
    let test = "after_a_reboot_unexpired_blocks_are_back_and_expired_ones_gone";
    let Some(lab) = Lab::create(test) else {
        return;
    };
    if !have_hping3(test) {
        return;
    }
    let config = lab.write_config(&lab.config_text(
        "1,2,3",
        "7",
        "SCAN_TRIGGER=\"0\"\nBLOCK_TIMEOUT=\"9\"\nKILL_ROUTE=\"ip route add blackhole $TARGET$\"\n\
         UNBLOCK_CMD=\"ip route del blackhole $TARGET$\"\n",
    ));
    let mut daemon = Daemon::start(&lab, &config, &["-stcp"]);
    let forge = |source: &str| {
        let status = lab
            .attacker_cmd("timeout")
            .args([
                "10", "hping3", "-q", "-a", source, "-S", "-p", "1", "-c", "1",
            ])
            .arg(VICTIM4)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.code().is_some());
    };
    let early = "203.0.113.30";
    let late = "203.0.113.31";
    forge(early);
    daemon.expect(&format!("Host {early} has been blocked"));
    std::thread::sleep(Duration::from_secs(5));
    forge(late);
    daemon.expect(&format!("Host {late} has been blocked"));
    assert!(daemon.stop().success(), "{}", daemon.output());
    // The "reboot": every firewall effect is gone.
    let _ = Command::new("ip")
        .args(["-n", &lab.victim, "route", "flush", "type", "blackhole"])
        .status();
    let flush = lab
        .victim_cmd("nft")
        .args(["flush", "set", "inet", "pse2e", "blocked4"])
        .status()
        .unwrap();
    assert!(flush.success());
    // Entries the table does not know (portsentry's own set, lines of its template, plus a
    // line it did not write): the first two go, the hand-written line stays.
    let stray = "203.0.113.99";
    std::fs::write(
        lab.path("hosts.deny"),
        format!("ALL: {stray} : DENY\nsshd: 198.51.100.0/24\n"),
    )
    .unwrap();
    let add = lab
        .victim_cmd("nft")
        .args(["add", "element", "inet", "pse2e", "blocked4"])
        .arg(format!("{{ {stray} }}"))
        .status()
        .unwrap();
    assert!(add.success());
    assert!(blackholes(&lab).is_empty());
    // Wait until the early block has expired (9 s) while the late one has not.
    std::thread::sleep(Duration::from_secs(4));
    let mut daemon = Daemon::start(&lab, &config, &["-stcp"]);
    assert!(
        wait_until(WAIT, || blackholes(&lab) == [late.to_owned()]),
        "routes {:?}\n{}",
        blackholes(&lab),
        daemon.output()
    );
    assert!(wait_until(WAIT, || lab.nft_set(late).contains(late)));
    assert!(!lab.nft_set(early).contains(early));
    assert!(wait_until(WAIT, || lab
        .read("hosts.deny")
        .contains(&format!("ALL: {late} : DENY"))));
    assert!(!lab.read("hosts.deny").contains(early));
    assert!(wait_until(WAIT, || !lab.nft_set(stray).contains(stray)));
    assert!(wait_until(WAIT, || !lab.read("hosts.deny").contains(stray)));
    assert!(lab.read("hosts.deny").contains("sshd: 198.51.100.0/24"));
    daemon.expect("reconciliation removed 2 entr(y/ies) the block table does not know");
    assert!(
        wait_until(WAIT, || !lab.read("blocked").contains(early)),
        "{}",
        lab.read("blocked")
    );
    assert!(lab.read("blocked").contains(late));
    // Each block is recorded once: the restart wrote no second history line.
    let history = lab.read("history");
    assert_eq!(
        history.lines().filter(|l| l.contains(late)).count(),
        1,
        "{history}"
    );
    // And the late one expires in its time, everything removed again.
    assert!(wait_until(WAIT, || blackholes(&lab).is_empty()));
    assert!(wait_until(WAIT, || !lab.nft_set(late).contains(late)));
    assert!(daemon.stop().success(), "{}", daemon.output());
}

/// Issue 9, "Done when" 4: SIGTERM with five queued `sleep 20` jobs exits within
/// STOP_TIMEOUT, the next start completes those blocks; a second SIGTERM exits at once.
#[test]
fn sigterm_with_queued_jobs_stops_within_stop_timeout_and_the_next_start_completes_them() {
    let test = "sigterm_with_queued_jobs_stops_within_stop_timeout";
    let Some(lab) = Lab::create(test) else {
        return;
    };
    if !have_hping3(test) {
        return;
    }
    let done = lab.path("done");
    let conf = |command: &str, stop: u32| {
        lab.write_config(&format!(
            "TCP_PORTS=\"1\"\nUDP_PORTS=\"7\"\nHISTORY_FILE=\"{}\"\nBLOCKED_FILE=\"{}\"\n\
             BLOCK_TCP=\"2\"\nSCAN_TRIGGER=\"0\"\nBLOCK_TIMEOUT=\"600\"\nKILL_RUN_CMD=\"{command}\"\n\
             STOP_TIMEOUT=\"{stop}\"\n",
            lab.path("history").display(),
            lab.path("blocked").display(),
        ))
    };
    // Each command first checks that the journal already lists its block as pending: the
    // journal is written before the actions run.
    let seen = lab.path("seen");
    let blocked = lab.path("blocked");
    let pending_first = |then: &str, log: &Path| {
        format!(
            "grep -q '^$TARGET$ .* pending$' {} && echo $TARGET$ >> {}; {then}",
            blocked.display(),
            log.display()
        )
    };
    let config = conf(&pending_first("sleep 20", &seen), 3);
    let mut daemon = Daemon::start(&lab, &config, &["-stcp"]);
    let sources: Vec<String> = (40..45).map(|i| format!("203.0.113.{i}")).collect();
    let script = sources
        .iter()
        .map(|s| format!("hping3 -q -a {s} -S -p 1 -c 1 {VICTIM4} >/dev/null 2>&1 &"))
        .collect::<String>()
        + " wait";
    let status = lab
        .attacker_cmd("timeout")
        .args(["20", "bash", "-c", &script])
        .status()
        .unwrap();
    assert!(status.code().is_some());
    assert!(
        wait_until(WAIT, || journal(&lab)
            .iter()
            .filter(|e| e.2 == "pending")
            .count()
            == 5),
        "{:?}",
        journal(&lab)
    );
    assert!(
        wait_until(WAIT, || !lab.read("seen").is_empty()),
        "the first command did not find its pending entry: {}",
        lab.read("blocked")
    );
    let stopping = Instant::now();
    let code = daemon.stop();
    let took = stopping.elapsed();
    assert!(code.success(), "{code}\n{}", daemon.output());
    assert!(took < Duration::from_secs(3 + 2), "stop took {took:?}");
    eprintln!("SIGTERM with 5 queued `sleep 20` jobs and STOP_TIMEOUT 3: exited after {took:?}");
    assert!(
        daemon.output().contains("STOP_TIMEOUT (3 s) reached"),
        "{}",
        daemon.output()
    );
    assert!(
        journal(&lab).iter().all(|e| e.2 == "pending"),
        "{:?}",
        journal(&lab)
    );

    // A second start re-runs the slow jobs; a second SIGTERM stops it at once.
    let config = conf("sleep 20", 60);
    let mut daemon = Daemon::start(&lab, &config, &["-stcp"]);
    daemon.signal("-TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        matches!(daemon.child.try_wait(), Ok(None)),
        "{}",
        daemon.output()
    );
    let second = Instant::now();
    daemon.signal("-TERM");
    let exited = wait_until(Duration::from_secs(2), || {
        matches!(daemon.child.try_wait(), Ok(Some(_)))
    });
    assert!(exited, "a second SIGTERM did not stop it at once");
    assert!(second.elapsed() < Duration::from_secs(2));
    eprintln!("second SIGTERM: exited after {:?}", second.elapsed());

    // The next start completes the five blocks.
    let config = conf(&pending_first("true", &done), 10);
    let mut daemon = Daemon::start(&lab, &config, &["-stcp"]);
    assert!(
        daemon
            .output()
            .contains("5 block(s) left pending by the last run will be completed"),
        "{}",
        daemon.output()
    );
    assert!(
        wait_until(WAIT, || lab.read("done").lines().count() >= 5),
        "{}",
        lab.read("done")
    );
    for s in &sources {
        assert!(
            lab.read("done").contains(s.as_str()),
            "{}",
            lab.read("done")
        );
    }
    assert!(wait_until(WAIT, || journal(&lab).len() == 5
        && journal(&lab).iter().all(|e| e.2 == "blocked")));
    assert!(daemon.stop().success(), "{}", daemon.output());
}

/// Issue 9, "Done when" 3: 20,000 random-source SYNs with blocking on and default limits
/// make at most MAX_BLOCKS blocks, block no reserved address, `portsentry status` answers
/// throughout; an nmap scan from a real source inside the same flood is detected.
#[test]
fn a_forged_flood_is_bounded_and_a_real_scan_inside_it_is_detected() {
    let test = "a_forged_flood_is_bounded_and_a_real_scan_inside_it_is_detected";
    let Some(lab) = Lab::create(test) else {
        return;
    };
    if !have_hping3(test) {
        return;
    }
    let text = |trigger: u32| {
        lab.config_text(
            "1,11,15,79,111",
            "7",
            &format!("SCAN_TRIGGER=\"{trigger}\"\nBLOCK_TIMEOUT=\"3600\"\n"),
        )
    };
    let config = lab.write_config(&text(0));
    let mut daemon = Daemon::start(&lab, &config, &["-stcp"]);
    let flood = |count: u32| {
        lab.attacker_cmd("timeout")
            .args(["60", "hping3", "-q", "--rand-source", "-S", "-p", "11"])
            .args(["-c", &count.to_string(), "-i", "u100", VICTIM4])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut flooding = Service(flood(20_000));
    // Reserved sources, forged on purpose: never blocked. (hping3 cannot forge 0.0.0.0: the
    // kernel puts the real address there; the unit tests cover it.)
    for reserved in ["255.255.255.255", "224.0.0.1", "240.0.0.1"] {
        let _ = lab
            .attacker_cmd("timeout")
            .args([
                "5", "hping3", "-q", "-a", reserved, "-S", "-p", "1", "-c", "1",
            ])
            .arg(VICTIM4)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let mut answers = 0;
    while matches!(flooding.0.try_wait(), Ok(None)) {
        let started = Instant::now();
        let (code, status) = lab.cli(&["status"]);
        assert_eq!(code, Some(0), "{status}");
        assert!(started.elapsed() < Duration::from_secs(5));
        answers += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(answers >= 1);
    std::thread::sleep(Duration::from_secs(1));
    let entries = journal(&lab);
    assert!(!entries.is_empty());
    assert!(entries.len() <= 512, "{} blocks", entries.len());
    for (address, _, _) in &entries {
        let ip: std::net::IpAddr = address.parse().unwrap();
        assert!(
            !portsentry_core::never_block::is_reserved(ip),
            "reserved {ip} blocked"
        );
    }
    let denied = lab.read("hosts.deny").lines().count();
    assert!(denied <= 512, "{denied} hosts.deny lines");
    let out = daemon.output();
    assert!(
        out.contains("not blocked: BLOCK_RATE reached (60 new blocks a minute)"),
        "{out}"
    );
    // Every refusal is counted (the status file is rewritten every 2 s).
    let mut status = String::new();
    let counted = wait_until(WAIT, || {
        status = lab.cli(&["status"]).1;
        status
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("alerts not blocked because of MAX_BLOCKS/BLOCK_RATE ")
            })
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 1000)
    });
    assert!(counted, "{status}");

    // Same flood, SCAN_TRIGGER 3: the real scanner inside it is detected.
    lab.write_config(&text(3));
    daemon.signal("-HUP");
    daemon.expect("configuration reloaded");
    let before = daemon.output().len();
    let _flooding = Service(flood(20_000));
    lab.nmap("-sS", "1,15,79,111", VICTIM4);
    daemon.expect_since(
        before,
        &format!("attackalert: TCP SYN/Normal scan from host: {ATTACKER4}/{ATTACKER4}"),
    );
    assert!(daemon.stop().success(), "{}", daemon.output());
    eprintln!(
        "forged flood: {} blocks, {denied} hosts.deny lines, status answered {answers} times",
        entries.len()
    );
}

/// Issue 9, "Done when" 5: the daemon's clock stepped back an hour (libfaketime, for this
/// process only: a real step of the system clock would disturb the whole machine; network
/// namespaces do not have their own wall clock). A new scan is still reported, and a block
/// ends after its timeout, not after the step plus the timeout.
#[test]
fn a_backward_clock_step_neither_silences_a_scan_nor_prolongs_a_block() {
    let test = "a_backward_clock_step_neither_silences_a_scan_nor_prolongs_a_block";
    let Some(lab) = Lab::create(test) else {
        return;
    };
    let faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    if !Path::new(faketime).exists() {
        eprintln!("skipping {test}: libfaketime is not installed (scripts/install-test-deps)");
        return;
    }
    let config = lab.write_config(&lab.config_text(
        "1,11,15,79,111,119,143",
        "7",
        "SCAN_TRIGGER=\"3\"\nBLOCK_TIMEOUT=\"4\"\n",
    ));
    let step = lab.path("faketime");
    std::fs::write(&step, "+0\n").unwrap();
    let mut cmd = lab.victim_cmd(env!("CARGO_BIN_EXE_portsentry"));
    cmd.arg("-c")
        .arg(&config)
        .arg("-stcp")
        .env("STATE_DIRECTORY", lab.dir.path())
        .env_remove("PORTSENTRY_CONFIG")
        .env("LD_PRELOAD", faketime)
        .env("FAKETIME_TIMESTAMP_FILE", &step)
        .env("FAKETIME_NO_CACHE", "1")
        .env("DONT_FAKE_MONOTONIC", "1");
    let mut daemon = Daemon::spawn(&lab, cmd);
    lab.nmap("-sS", "1,11,15", VICTIM4);
    daemon.expect(&format!("Host {ATTACKER4} has been blocked"));
    let blocked = Instant::now();
    // The clock goes back one hour.
    std::fs::write(&step, "-3600\n").unwrap();
    daemon.expect(&format!(
        "Host: {ATTACKER4}/{ATTACKER4} block expired after"
    ));
    let lasted = blocked.elapsed();
    assert!(
        lasted < Duration::from_secs(4 + 3),
        "the block lasted {lasted:?}"
    );
    eprintln!("clock stepped back 1 h: a 4 s block lasted {lasted:?}");
    assert!(wait_until(WAIT, || !lab
        .nft_set(ATTACKER4)
        .contains(ATTACKER4)));
    // A new scan of four new ports right after the step is reported.
    let before = daemon.output().len();
    lab.nmap("-sS", "79,111,119,143", VICTIM4);
    daemon.expect_since(
        before,
        &format!("attackalert: TCP SYN/Normal scan from host: {ATTACKER4}/{ATTACKER4}"),
    );
    // The journal keeps wall-clock times: the step shows there (the daemon's wall clock is
    // an hour behind this test's).
    let mut stamp = 0;
    let written = wait_until(WAIT, || {
        stamp = lab
            .read("blocked")
            .lines()
            .find(|l| l.starts_with(ATTACKER4))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        stamp > 0
    });
    assert!(written, "{}", lab.read("blocked"));
    assert!(stamp + 1800 < unix_now(), "{}", lab.read("blocked"));
    assert!(daemon.stop().success(), "{}", daemon.output());
}

/// Issue 9: an address that becomes the host's own after it was blocked (a DHCP renew, an
/// address added by hand) is released at the next refresh of the host's addresses, not kept
/// blocked while being reported "protected".
#[test]
fn a_block_of_an_address_that_becomes_the_hosts_own_is_released() {
    let test = "a_block_of_an_address_that_becomes_the_hosts_own_is_released";
    let Some(lab) = Lab::create(test) else {
        return;
    };
    if !have_hping3(test) {
        return;
    }
    let config = lab.write_config(&lab.config_text(
        "1",
        "7",
        "SCAN_TRIGGER=\"0\"\nBLOCK_TIMEOUT=\"3600\"\n",
    ));
    let mut daemon = Daemon::start(&lab, &config, &["-stcp"]);
    let renewed = "203.0.113.77";
    let status = lab
        .attacker_cmd("timeout")
        .args([
            "10", "hping3", "-q", "-a", renewed, "-S", "-p", "1", "-c", "1",
        ])
        .arg(VICTIM4)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.code().is_some());
    daemon.expect(&format!("Host {renewed} has been blocked"));
    assert!(wait_until(WAIT, || lab.nft_set(renewed).contains(renewed)));
    ip(&[
        "-n",
        &lab.victim,
        "addr",
        "add",
        &format!("{renewed}/32"),
        "dev",
        "psev0",
    ]);
    daemon.expect(&format!("{renewed} is protected now: releasing its block"));
    assert!(wait_until(WAIT, || !lab.nft_set(renewed).contains(renewed)));
    assert!(wait_until(WAIT, || !lab
        .read("hosts.deny")
        .contains(renewed)));
    assert!(wait_until(WAIT, || !lab.read("blocked").contains(renewed)));
    assert!(daemon.stop().success(), "{}", daemon.output());
}

// Hardening (issue 10): each test below is a reproduction from the issue, run on the real
// daemon.

const NOBODY: u32 = 65_534;

/// A directory in the lab, mode 0755, owned by `owner`.
fn lab_dir(lab: &Lab, name: &str, owner: u32) -> PathBuf {
    let dir = lab.path(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&dir, Some(owner), None).unwrap();
    dir
}

/// The number of entries of `/proc/PID/<what>` (`task`: threads, `fd`: open files).
fn proc_count(pid: u32, what: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/{what}")).map_or(0, Iterator::count)
}

/// `/etc/portsentry/portsentry.conf → /opt/link.conf → /srv/real.conf` with `/opt` owned by
/// `nobody`, who can swap `link.conf` at will: the old check looked at the final file and the
/// given path's directories only, and let `KILL_RUN_CMD` run as root. Now the daemon detects
/// and logs, but runs no command and writes no file (no hosts.deny, nft, history, block table).
#[test]
fn a_config_through_a_link_in_nobodys_directory_takes_no_root_action() {
    let Some(lab) = Lab::create("a_config_through_a_link_in_nobodys_directory") else {
        return;
    };
    let etc = lab_dir(&lab, "etc", 0);
    let opt = lab_dir(&lab, "opt", NOBODY);
    let srv = lab_dir(&lab, "srv", 0);
    let marker = lab.path("pwned");
    let real = srv.join("real.conf");
    let text = lab.config_text(
        "1,79",
        "7",
        &format!("KILL_RUN_CMD=\"id > {}\"\n", marker.display()),
    );
    std::fs::write(&real, text).unwrap();
    std::os::unix::fs::symlink(&real, opt.join("link.conf")).unwrap();
    std::os::unix::fs::symlink(opt.join("link.conf"), etc.join("portsentry.conf")).unwrap();
    let mut daemon = Daemon::start(&lab, &etc.join("portsentry.conf"), &["-stcp"]);
    daemon.expect(&format!(
        "{} is writable by its owner (mode 0755, owner uid {NOBODY})",
        opt.display()
    ));
    daemon.expect("log only: no command, file write or nftables change is made");
    lab.nmap("-sS", "1,79", VICTIM4);
    daemon.expect(&format!(
        "attackalert: TCP SYN/Normal scan from host: {ATTACKER4}/{ATTACKER4} to TCP port: "
    ));
    // The responders run right after the alert; give a command time to show itself.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!marker.exists(), "KILL_RUN_CMD ran as root");
    for file in ["hosts.deny", "history", "blocked"] {
        assert!(!lab.path(file).exists(), "{file} was written");
    }
    assert!(!lab.nft_set(ATTACKER4).contains(ATTACKER4));
    // Wait for a status file written after the start (every 2 s).
    assert!(wait_until(WAIT, || lab
        .cli(&["status"])
        .1
        .contains("blocking commands: DISABLED, log only")));
    assert!(daemon.stop().success(), "{}", daemon.output());
}

/// `nobody` planted a socket where the daemon puts its own: the daemon refused to start and
/// `portsentry unblock` got nobody's answer. Now the daemon replaces it without talking to
/// it, and `setpriv --reuid nobody ... portsentry unblock` is refused by the running daemon.
#[test]
fn unblock_by_nobody_is_refused_and_a_planted_socket_neither_blocks_nor_answers() {
    let Some(lab) = Lab::create("unblock_by_nobody_is_refused") else {
        return;
    };
    if !have("setpriv") {
        eprintln!("skipping: setpriv is not installed (scripts/install-test-deps)");
        return;
    }
    let socket = lab.path("portsentry.sock");
    let planted = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    planted.set_nonblocking(true).unwrap();
    std::os::unix::fs::lchown(&socket, Some(NOBODY), Some(NOBODY)).unwrap();
    let config = lab.write_config(&lab.config_text("1,79", "7", ""));
    let mut daemon = Daemon::start(&lab, &config, &["-stcp"]);
    daemon.expect("owned by uid 65534 (mode ");
    daemon.expect("not our socket: replaced, never connected to");
    lab.nmap("-sS", "1,79", VICTIM4);
    assert!(wait_until(WAIT, || lab
        .nft_set(ATTACKER4)
        .contains(ATTACKER4)));

    let out = Command::new("setpriv")
        .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_portsentry"))
        .args(["unblock", ATTACKER4])
        .env("STATE_DIRECTORY", lab.dir.path())
        .env_remove("PORTSENTRY_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("Permission denied"), "{said}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        lab.nft_set(ATTACKER4).contains(ATTACKER4),
        "nobody lifted a block"
    );
    assert!(lab.read("blocked").contains(ATTACKER4));
    assert!(
        planted.accept().is_err(),
        "the planted socket was connected to"
    );

    // Root is served by the daemon.
    let (code, text) = lab.cli(&["unblock", ATTACKER4]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("released by the running detector"), "{text}");
    assert!(daemon.stop().success(), "{}", daemon.output());
}

/// In `-udp` mode with a 1,000-byte `PORT_BANNER`, 50 forged 29-byte datagrams made 50 replies
/// of 1,001 bytes to the forged address, also for sources already alerted. Five "forged"
/// sources (extra addresses of the attacker namespace, so that replies can be seen on the
/// wire) send 50 datagrams each; tcpdump counts the replies: at most one per source.
#[test]
fn forged_udp_datagrams_get_at_most_one_banner_per_source() {
    let Some(lab) = Lab::create("forged_udp_datagrams_get_at_most_one_banner") else {
        return;
    };
    if !have("tcpdump") {
        eprintln!("skipping: tcpdump is not installed (scripts/install-test-deps)");
        return;
    }
    let sources: Vec<String> = (50..55).map(|n| format!("203.0.113.{n}")).collect();
    for source in &sources {
        ip(&[
            "-n",
            &lab.attacker,
            "addr",
            "add",
            &format!("{source}/24"),
            "dev",
            "psea0",
        ]);
    }
    let banner = "A".repeat(1000);
    let config = lab.write_config(&format!(
        "UDP_PORTS=\"7\"\nBLOCK_UDP=\"0\"\nPORT_BANNER=\"{banner}\"\n"
    ));
    let mut daemon = Daemon::start(&lab, &config, &["-udp"]);
    let pcap = lab.path("replies.pcap");
    let log = lab.path("tcpdump.log");
    let mut tcpdump = Service(
        lab.attacker_cmd("tcpdump")
            .args(["-i", "psea0", "-n", "-U", "-w"])
            .arg(&pcap)
            .args(["udp and src host", VICTIM4, "and src port 7"])
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(WAIT, || std::fs::read_to_string(&log)
            .is_ok_and(|t| t.contains("listening on"))),
        "tcpdump did not start"
    );
    let send = format!(
        "import socket\n\
         for src in {sources:?}:\n\
         \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         \x20   s.bind((src, 40000))\n\
         \x20   for _ in range(50):\n\
         \x20       s.sendto(b'x', ('{VICTIM4}', 7))\n"
    );
    let status = lab
        .attacker_cmd("python3")
        .args(["-c", &send])
        .status()
        .unwrap();
    assert!(status.success());
    for source in &sources {
        daemon.expect(&format!("from host: {source}/{source} to UDP port: 7"));
    }
    std::thread::sleep(Duration::from_secs(1));
    let _ = Command::new("kill")
        .args(["-INT", &tcpdump.0.id().to_string()])
        .status();
    let _ = tcpdump.0.wait();
    let read = lab
        .victim_cmd("tcpdump")
        .args(["-n", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&read.stdout).into_owned();
    let replies: Vec<&str> = lines.lines().filter(|l| l.contains("UDP")).collect();
    for source in &sources {
        let to_source = replies
            .iter()
            .filter(|l| l.contains(&format!("> {source}.40000:")))
            .count();
        assert_eq!(to_source, 1, "replies to {source}:\n{lines}");
    }
    assert!(replies.iter().all(|l| l.contains("length 1001")), "{lines}");
    assert_eq!(replies.len(), sources.len(), "{lines}");
    assert!(daemon.stop().success(), "{}", daemon.output());
}

/// 100 SIGHUPs during a slow command grew the daemon to 98 threads and 103 fds (a responder
/// thread per reload, each waiting for the one before). Now reloads coalesce: one at a time,
/// at most one pending, held while the previous reload's responders finish.
#[test]
fn sighups_during_a_slow_command_coalesce() {
    let Some(lab) = Lab::create("sighups_during_a_slow_command_coalesce") else {
        return;
    };
    let started = lab.path("command-started");
    let config = lab.write_config(&format!(
        "TCP_PORTS=\"1,79\"\nHISTORY_FILE=\"{}\"\nBLOCK_TCP=\"2\"\n\
         KILL_RUN_CMD=\"touch {}; sleep 4\"\n",
        lab.path("history").display(),
        started.display()
    ));
    let mut daemon = Daemon::start(&lab, &config, &["-stcp"]);
    let pid = daemon.child.id();
    let (threads, fds) = (proc_count(pid, "task"), proc_count(pid, "fd"));
    // The command runs for 4 s (the alert is printed once it is done): the signals go out
    // as soon as it has started.
    lab.nmap("-sS", "1", VICTIM4);
    assert!(
        wait_until(WAIT, || started.exists()),
        "the command did not start"
    );
    let (mut most_threads, mut most_fds) = (threads, fds);
    for _ in 0..100 {
        daemon.signal("-HUP");
        std::thread::sleep(Duration::from_millis(10));
        most_threads = most_threads.max(proc_count(pid, "task"));
        most_fds = most_fds.max(proc_count(pid, "fd"));
    }
    daemon.expect(&format!("from host: {ATTACKER4}/{ATTACKER4}"));
    // The command has ended; the pending reload runs once.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        most_threads = most_threads.max(proc_count(pid, "task"));
        most_fds = most_fds.max(proc_count(pid, "fd"));
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("threads {threads} -> at most {most_threads}; fds {fds} -> at most {most_fds}");
    assert!(
        most_threads <= threads + 3,
        "threads {threads} -> {most_threads}"
    );
    assert!(most_fds <= fds + 8, "fds {fds} -> {most_fds}");
    let reloads = daemon.output().matches("configuration reloaded").count();
    assert!(
        (1..=3).contains(&reloads),
        "{reloads} reloads:\n{}",
        daemon.output()
    );
    assert!(daemon.stop().success(), "{}", daemon.output());
}

#[path = "e2e/fleet.rs"]
mod fleet;
#[path = "e2e/metrics.rs"]
mod metrics;
