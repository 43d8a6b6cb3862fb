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
        let (code, status) = lab.cli(&["status", "--json"]);
        assert_eq!(code, Some(0), "{status}");
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
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
            daemon.expect_since(since, &format!("\"src_ip\":\"{source}\""));
            let alerts = json_alerts(&daemon.output(), since);
            assert_eq!(alerts.len(), 1, "{modes:?} {scan}: {alerts:?}");
            assert_eq!(alerts[0]["dst_port"], port.parse::<u64>().unwrap());
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
        daemon.expect_since(since, "\"event\":\"alert\"");
        let alerts = json_alerts(&daemon.output(), since);
        assert_eq!(alerts.len(), 1, "{scan} {port} {target}: {alerts:?}");
        assert_eq!(alerts[0]["dst_port"], port.parse::<u64>().unwrap());
        assert_eq!(
            alerts[0]["port_state"], state,
            "{scan} {port} {target}: {}",
            alerts[0]
        );
        assert_eq!(alerts[0]["reached_open_port"], state == "open");
    }
    let (code, status) = lab.cli(&["status", "--json"]);
    assert_eq!(code, Some(0), "{status}");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
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
