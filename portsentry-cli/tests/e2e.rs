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
    fn spawn(lab: &Lab, mut cmd: Command) -> Self {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let out = lab.path(&format!("out-{}", RUNS.fetch_add(1, Ordering::Relaxed)));
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
    assert!(
        lab.read("hosts.deny")
            .contains(&format!("ALL: {source} : DENY")),
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
