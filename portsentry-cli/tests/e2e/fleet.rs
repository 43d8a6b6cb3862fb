//! The fleet: CrowdSec's Local API from Debian's `crowdsec` package and three portsentry
//! hosts, each in its own network namespace.
//!
//! The package is never installed (a plain install registers with CrowdSec's central API):
//! `scripts/install-test-deps` unpacks it (`apt-get download`, `dpkg-deb -x`) into
//! `/var/cache/portsentry-tests/crowdsec` (or `$PORTSENTRY_TEST_CROWDSEC_ROOT`), and each test
//! writes its own `config.yaml` there: no `online_client` section, the database and
//! configuration in a temporary directory, the Local API bound inside the test's own
//! namespaces. Parsers and scenarios are copied in by hand (hub commands need the network).
//!
//! Topology of the live test: a hub namespace holds a bridge (192.0.2.254, the Local API)
//! and the veth ends of three hosts (192.0.2.1-3) and a scanner (192.0.2.100). Each host
//! runs portsentry with `CROWDSEC_CREDENTIALS` and reads the bouncer stream with its own
//! bouncer key, as its `crowdsec-firewall-bouncer` would.

use std::collections::HashSet;

use serde_json::Value;

use super::*;

const HUB: &str = "192.0.2.254";
const HOSTS: [&str; 3] = ["192.0.2.1", "192.0.2.2", "192.0.2.3"];
const SCANNER: &str = "192.0.2.100";
const LAPI_PORT: u16 = 8080;

/// The unpacked package, or `None` (with the reason printed).
fn crowdsec_root(test: &str) -> Option<PathBuf> {
    let root = std::env::var_os("PORTSENTRY_TEST_CROWDSEC_ROOT").map_or_else(
        || PathBuf::from("/var/cache/portsentry-tests/crowdsec"),
        PathBuf::from,
    );
    if !is_root() {
        eprintln!("skipping {test}: needs root to create network namespaces");
        return None;
    }
    if !root.join("usr/bin/crowdsec").exists() {
        eprintln!(
            "skipping {test}: Debian's crowdsec is not unpacked in {} (scripts/install-test-deps)",
            root.display()
        );
        return None;
    }
    for tool in ["nmap", "curl", "python3"] {
        if !have(tool) {
            eprintln!("skipping {test}: {tool} is not installed (scripts/install-test-deps)");
            return None;
        }
    }
    Some(root)
}

/// Network namespaces deleted on drop (also when the test fails).
#[derive(Default)]
struct Namespaces(Vec<String>);

impl Namespaces {
    fn add(&mut self, role: &str) -> String {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("psfleet-{role}-{}-{n}", std::process::id());
        ip(&["netns", "add", &name]);
        self.0.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        name
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for netns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", netns]).status();
        }
    }
}

/// A CrowdSec configuration of its own, run from the unpacked package.
struct Crowdsec {
    root: PathBuf,
    dir: tempfile::TempDir,
}

impl Crowdsec {
    /// Writes the configuration: Local API on `listen`, no central API, the shipped parser
    /// and scenarios plus the package's syslog and date parsers.
    fn prepare(root: &Path, listen: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ps-crowdsec-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let hub = root.join("usr/share/crowdsec/hub");
        for sub in [
            "cfg/parsers/s00-raw",
            "cfg/parsers/s01-parse",
            "cfg/parsers/s02-enrich",
            "cfg/scenarios",
            "data",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let copy = |from: &Path, to: &str| {
            let name = from.file_name().unwrap();
            std::fs::copy(from, d.join(to).join(name))
                .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        };
        copy(
            &hub.join("parsers/s00-raw/crowdsecurity/syslog-logs.yaml"),
            "cfg/parsers/s00-raw",
        );
        copy(
            &hub.join("parsers/s02-enrich/crowdsecurity/dateparse-enrich.yaml"),
            "cfg/parsers/s02-enrich",
        );
        let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/crowdsec");
        copy(
            &contrib.join("parsers/portsentry-logs.yaml"),
            "cfg/parsers/s01-parse",
        );
        for scenario in ["portsentry-scan.yaml", "portsentry-horizontal-scan.yaml"] {
            copy(&contrib.join("scenarios").join(scenario), "cfg/scenarios");
        }
        let etc = root.join("etc/crowdsec");
        copy(&etc.join("profiles.yaml"), "cfg");
        copy(&etc.join("simulation.yaml"), "cfg");
        let status = Command::new("cp")
            .arg("-r")
            .arg(etc.join("patterns"))
            .arg(d.join("cfg"))
            .status()
            .unwrap();
        assert!(status.success(), "copying the grok patterns failed");
        std::fs::write(
            d.join("cfg/acquis.yaml"),
            format!(
                "filenames: [{}]\nlabels:\n  type: syslog\n",
                d.join("none.log").display()
            ),
        )
        .unwrap();
        let config = format!(
            "common:\n  daemonize: false\n  log_media: stdout\n  log_level: info\n  working_dir: .\n\
             config_paths:\n  config_dir: {d}/cfg/\n  data_dir: {d}/data/\n  \
             simulation_path: {d}/cfg/simulation.yaml\n  hub_dir: {hub}/\n  \
             index_path: {hub}/.index.json\n  notification_dir: {d}/cfg/notifications/\n  \
             plugin_dir: {d}/plugins/\n\
             crowdsec_service:\n  acquisition_path: {d}/cfg/acquis.yaml\n  parser_routines: 1\n\
             cscli:\n  output: human\n\
             db_config:\n  log_level: info\n  type: sqlite\n  db_path: {d}/data/crowdsec.db\n  \
             use_wal: false\n\
             plugin_config:\n  user: nobody\n  group: nogroup\n\
             api:\n  client:\n    insecure_skip_verify: false\n    \
             credentials_path: {d}/cfg/local_api_credentials.yaml\n  server:\n    \
             log_level: info\n    listen_uri: {listen}\n    \
             profiles_path: {d}/cfg/profiles.yaml\n    trusted_ips:\n      - 127.0.0.1\n\
             prometheus:\n  enabled: false\n",
            d = d.display(),
            hub = hub.display(),
        );
        std::fs::write(d.join("cfg/config.yaml"), config).unwrap();
        let crowdsec = Self {
            root: root.to_owned(),
            dir,
        };
        // The machine of cscli itself and of a log-reading agent (`api.client`).
        let own = crowdsec.dir.path().join("cfg/local_api_credentials.yaml");
        crowdsec.cscli(&[
            "machines",
            "add",
            "local",
            "--auto",
            "-f",
            own.to_str().unwrap(),
        ]);
        crowdsec
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("cfg/config.yaml")
    }

    /// `cscli ARGS` on this configuration; its standard output.
    fn cscli(&self, args: &[&str]) -> String {
        self.cscli_in(None, args)
    }

    /// `cscli ARGS`, inside `netns` when given (commands that talk to the Local API).
    fn cscli_in(&self, netns: Option<&str>, args: &[&str]) -> String {
        let program = self.root.join("usr/bin/cscli");
        let out = match netns {
            Some(netns) => Lab::in_netns(netns, program.to_str().unwrap()),
            None => Command::new(program),
        }
        .arg("-c")
        .arg(self.config())
        .args(args)
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "cscli {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A machine and its credentials file, as an administrator makes it (mode 0600).
    fn add_machine(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.yaml"));
        let password = format!("pw-{name}-{}", std::process::id());
        self.cscli(
            &["machines", "add", name, "--password", &password, "-f"]
                .into_iter()
                .chain([path.to_str().unwrap()])
                .collect::<Vec<_>>(),
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// A bouncer's API key.
    fn add_bouncer(&self, name: &str) -> String {
        self.cscli(&["bouncers", "add", name, "-o", "raw"])
            .trim()
            .to_owned()
    }

    /// Starts the Local API alone (`-no-cs`) in `netns`; waits until `stream_from` can read
    /// the bouncer stream with `key`.
    fn start_lapi(&self, netns: &str, url: &str, key: &str) -> Service {
        let log = File::create(self.dir.path().join("lapi.log")).unwrap();
        let child = Lab::in_netns(netns, self.root.join("usr/bin/crowdsec").to_str().unwrap())
            .arg("-c")
            .arg(self.config())
            .arg("-no-cs")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let service = Service(child);
        let up = wait_until(WAIT, || stream(netns, url, key, true).is_some());
        assert!(up, "the Local API did not come up:\n{}", self.lapi_log());
        service
    }

    fn lapi_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("lapi.log")).unwrap_or_default()
    }
}

/// Debian's `crowdsec-firewall-bouncer`, unpacked, or `None` (with the reason printed).
fn bouncer_program(test: &str) -> Option<PathBuf> {
    let root = std::env::var_os("PORTSENTRY_TEST_BOUNCER_ROOT").map_or_else(
        || PathBuf::from("/var/cache/portsentry-tests/crowdsec-firewall-bouncer"),
        PathBuf::from,
    );
    let program = root.join("usr/bin/crowdsec-firewall-bouncer");
    if program.exists() && have("nft") {
        Some(program)
    } else {
        eprintln!(
            "{test}: no crowdsec-firewall-bouncer in {} (scripts/install-test-deps) or no nft: \
             the bans are read from the bouncer stream only",
            root.display()
        );
        None
    }
}

/// Runs the firewall bouncer in `netns` (nftables mode, polling every second) with `key`.
fn start_bouncer(program: &Path, dir: &Path, netns: &str, url: &str, key: &str) -> Service {
    let config = dir.join(format!("bouncer-{netns}.yaml"));
    std::fs::write(
        &config,
        format!(
            "mode: nftables\npid_dir: {d}\nupdate_frequency: 1s\ndaemonize: false\n\
             log_mode: file\nlog_dir: {d}\nlog_level: info\napi_url: {url}/\napi_key: {key}\n\
             insecure_skip_verify: false\ndisable_ipv6: false\ndeny_action: DROP\n\
             deny_log: false\nsupported_decisions_types:\n  - ban\n\
             blacklists_ipv4: crowdsec-blacklists\nblacklists_ipv6: crowdsec6-blacklists\n\
             nftables:\n  ipv4:\n    enabled: true\n    set-only: false\n    table: crowdsec\n    \
             chain: crowdsec-chain\n  ipv6:\n    enabled: true\n    set-only: false\n    \
             table: crowdsec6\n    chain: crowdsec6-chain\nprometheus:\n  enabled: false\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let child = Lab::in_netns(netns, program.to_str().unwrap())
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Service(child)
}

/// The elements of the bouncer's nftables set in `netns`.
fn bouncer_set(netns: &str) -> String {
    let out = Lab::in_netns(netns, "nft")
        .args(["list", "set", "ip", "crowdsec", "crowdsec-blacklists"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One read of the bouncer stream from `netns` (`startup`: every active decision).
fn stream(netns: &str, url: &str, key: &str, startup: bool) -> Option<Value> {
    let out = Lab::in_netns(netns, "curl")
        .args(["-sS", "--fail", "--max-time", "5", "-H"])
        .arg(format!("X-Api-Key: {key}"))
        .arg(format!("{url}/v1/decisions/stream?startup={startup}"))
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The active ban decisions' (value, scenario, origin) a bouncer with `key` gets now; `None`
/// when the stream cannot be read (so that "no ban" is never concluded from a failed read).
fn active_bans(netns: &str, url: &str, key: &str) -> Option<HashSet<(String, String, String)>> {
    let answer = stream(netns, url, key, true)?;
    let bans = answer["new"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["type"] == "ban")
        .map(|d| {
            let text = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
            (text("value"), text("scenario"), text("origin"))
        })
        .collect();
    Some(bans)
}

/// Puts `netns` on the hub's bridge through a veth pair, with `address`/24.
fn attach(hub: &str, netns: &str, index: usize, address: &str) {
    let inside = format!("psf{index}");
    let outside = format!("psfb{index}");
    ip(&[
        "link", "add", &inside, "netns", netns, "type", "veth", "peer", "name", &outside, "netns",
        hub,
    ]);
    ip(&["-n", hub, "link", "set", &outside, "master", "psfbr0", "up"]);
    ip(&[
        "-n",
        netns,
        "addr",
        "add",
        &format!("{address}/24"),
        "dev",
        &inside,
    ]);
    ip(&["-n", netns, "link", "set", &inside, "up"]);
}

#[test]
fn a_scan_of_one_host_is_banned_on_every_host_through_crowdsec() {
    const TEST: &str = "a_scan_of_one_host_is_banned_on_every_host_through_crowdsec";
    let Some(root) = crowdsec_root(TEST) else {
        return;
    };
    let mut namespaces = Namespaces::default();
    let hub = namespaces.add("hub");
    ip(&["-n", &hub, "link", "add", "psfbr0", "type", "bridge"]);
    ip(&[
        "-n",
        &hub,
        "addr",
        "add",
        &format!("{HUB}/24"),
        "dev",
        "psfbr0",
    ]);
    ip(&["-n", &hub, "link", "set", "psfbr0", "up"]);
    let hosts: Vec<String> = (0..3).map(|i| namespaces.add(&format!("h{i}"))).collect();
    for (i, (netns, address)) in hosts.iter().zip(HOSTS).enumerate() {
        attach(&hub, netns, i, address);
    }
    let scanner = namespaces.add("scan");
    attach(&hub, &scanner, 3, SCANNER);

    let url = format!("http://{HUB}:{LAPI_PORT}");
    let crowdsec = Crowdsec::prepare(&root, &format!("{HUB}:{LAPI_PORT}"));
    let keys: Vec<String> = (0..3)
        .map(|i| crowdsec.add_bouncer(&format!("bouncer-h{i}")))
        .collect();
    let lapi = crowdsec.start_lapi(&hub, &url, &keys[0]);
    // Each host's real firewall bouncer (when unpacked) uses a key of its own.
    let bouncer = bouncer_program(TEST);
    let _bouncers: Vec<Service> = bouncer
        .iter()
        .flat_map(|program| {
            hosts.iter().enumerate().map(|(i, netns)| {
                let key = crowdsec.add_bouncer(&format!("firewall-h{i}"));
                start_bouncer(program, crowdsec.dir.path(), netns, &url, &key)
            })
        })
        .collect();

    // Host 0's blocks expire after 4 s; host 1's last until `portsentry unblock`.
    let mut daemons = Vec::new();
    let mut states = Vec::new();
    for (i, netns) in hosts.iter().enumerate() {
        let credentials = crowdsec.add_machine(&format!("h{i}"));
        let state = tempfile::Builder::new()
            .prefix("ps-fleet-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let timeout = if i == 0 { 4 } else { 600 };
        let config = state.path().join("portsentry.conf");
        std::fs::write(
            &config,
            format!(
                "TCP_PORTS=\"1,79,111\"\nUDP_PORTS=\"7,9\"\nBLOCK_TCP=\"1\"\nBLOCK_UDP=\"1\"\n\
                 BLOCK_TIMEOUT=\"{timeout}\"\nCROWDSEC_CREDENTIALS=\"{}\"\n\
                 HISTORY_FILE=\"history\"\nBLOCKED_FILE=\"blocked\"\nRECONCILE_INTERVAL=\"1\"\n",
                credentials.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut cmd = Lab::in_netns(netns, env!("CARGO_BIN_EXE_portsentry"));
        cmd.arg("-c")
            .arg(&config)
            .args(["-stcp", "-i", &format!("psf{i}")])
            .env("STATE_DIRECTORY", state.path())
            .env_remove("PORTSENTRY_CONFIG");
        daemons.push(Daemon::spawn_to(state.path().join("out"), cmd));
        states.push(state);
    }

    // One host is scanned; every host's bouncer gets the ban.
    let ban = (
        SCANNER.to_owned(),
        "portsentry/stcp".to_owned(),
        "portsentry".to_owned(),
    );
    let scan = |target: &str| {
        let out = Lab::in_netns(&scanner, "timeout")
            .args(["60", "nmap", "-sS", "-Pn", "-n", "--max-retries", "0"])
            .args(["--host-timeout", "30s", "-p", "1,79", target])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nmap: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Every host answers the scanner before the scans (the bridge ports forward, ARP is
    // resolved): nmap with no retries must not lose its first packets.
    for host in HOSTS {
        // A connection to an unmonitored closed port: refused means the host answered.
        let probe = format!(
            "import socket, sys\ntry:\n    socket.create_connection(('{host}', 9), timeout=1)\n\
             except ConnectionRefusedError:\n    sys.exit(0)\nexcept OSError:\n    sys.exit(1)\n"
        );
        let reached = wait_until(WAIT, || {
            Lab::in_netns(&scanner, "python3")
                .args(["-c", &probe])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(reached, "the scanner cannot reach {host}");
    }
    scan(HOSTS[0]);
    daemons[0].expect(&format!("Action crowdsec done for host: {SCANNER}"));
    for (netns, key) in hosts.iter().zip(&keys) {
        let mut seen = None;
        let banned = wait_until(WAIT, || {
            seen = active_bans(netns, &url, key);
            seen.as_ref().is_some_and(|bans| bans.contains(&ban))
        });
        assert!(
            banned,
            "{netns}'s bouncer does not get the ban: {seen:?}\n{}",
            crowdsec.lapi_log()
        );
    }

    // Each host's firewall bouncer puts the scanner into its nftables set.
    if bouncer.is_some() {
        for netns in &hosts {
            assert!(
                wait_until(WAIT, || bouncer_set(netns).contains(SCANNER)),
                "{netns}'s firewall bouncer did not block {SCANNER}: {}",
                bouncer_set(netns)
            );
        }
    }

    // Expiry on host 0 deletes the decision (DELETE /v1/decisions, seen in the API's log).
    daemons[0].expect(&format!("Action crowdsec_remove done for host: {SCANNER}"));
    assert!(
        crowdsec
            .lapi_log()
            .contains(&format!("DELETE /v1/decisions?ip={SCANNER} HTTP/1.1 200")),
        "{}",
        crowdsec.lapi_log()
    );
    for (netns, key) in hosts.iter().zip(&keys) {
        assert!(
            wait_until(WAIT, || {
                active_bans(netns, &url, key).is_some_and(|bans| !bans.contains(&ban))
            }),
            "{netns} still gets the ban after expiry"
        );
        if bouncer.is_some() {
            assert!(
                wait_until(WAIT, || !bouncer_set(netns).contains(SCANNER)),
                "{netns}'s firewall bouncer still blocks {SCANNER} after expiry"
            );
        }
    }

    // Host 1 blocks for ten minutes; `portsentry unblock` lifts it everywhere.
    scan(HOSTS[1]);
    daemons[1].expect(&format!("Action crowdsec done for host: {SCANNER}"));
    for (netns, key) in hosts.iter().zip(&keys) {
        assert!(
            wait_until(WAIT, || {
                active_bans(netns, &url, key).is_some_and(|bans| bans.contains(&ban))
            }),
            "{netns}'s bouncer does not get host 1's ban"
        );
    }
    // Reconciliation (every second here) leaves a ban the Local API holds alone: no second
    // push, no delete, so the bouncers never see it flap.
    let pushes = || {
        crowdsec
            .lapi_log()
            .matches("\"POST /v1/alerts HTTP/1.1 201")
            .count()
    };
    let deletes = || crowdsec.lapi_log().matches("DELETE /v1/decisions").count();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!((pushes(), deletes()), (2, 1), "{}", crowdsec.lapi_log());
    // A ban deleted behind portsentry's back (by hand, a reset database) is pushed again.
    crowdsec.cscli_in(Some(&hub), &["decisions", "delete", "--ip", SCANNER]);
    assert!(
        wait_until(WAIT, || pushes() == 3),
        "the deleted ban was not pushed again:\n{}",
        crowdsec.lapi_log()
    );
    for (netns, key) in hosts.iter().zip(&keys) {
        assert!(
            wait_until(WAIT, || {
                active_bans(netns, &url, key).is_some_and(|bans| bans.contains(&ban))
            }),
            "{netns}'s bouncer does not get the ban back"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_portsentry"))
        .args(["unblock", SCANNER])
        .env("STATE_DIRECTORY", states[1].path())
        .env_remove("PORTSENTRY_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "unblock: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    daemons[1].expect(&format!("Action crowdsec_remove done for host: {SCANNER}"));
    for (netns, key) in hosts.iter().zip(&keys) {
        assert!(
            wait_until(WAIT, || {
                active_bans(netns, &url, key).is_some_and(|bans| !bans.contains(&ban))
            }),
            "{netns} still gets the ban after unblock"
        );
    }

    // The Local API is gone: host 2's block fails, is said so, and is not recorded.
    drop(lapi);
    scan(HOSTS[2]);
    daemons[2].expect(&format!(
        "ERROR: action crowdsec failed for host: {SCANNER}"
    ));
    // The status file is rewritten every 2 seconds: after that, no block is in force.
    std::thread::sleep(Duration::from_millis(2500));
    let out = Command::new(env!("CARGO_BIN_EXE_portsentry"))
        .args(["status", "--json"])
        .env("STATE_DIRECTORY", states[2].path())
        .env_remove("PORTSENTRY_CONFIG")
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(
        status["blocks"],
        serde_json::json!([]),
        "a failed push was recorded"
    );
    for daemon in &mut daemons {
        assert!(daemon.stop().success(), "{}", daemon.output());
    }
}

/// The lines `portsentry replay` prints for `capture` with `config_text`, in `format`.
fn replay_lines(dir: &Path, capture: &str, format: &str, config_text: &str) -> Vec<String> {
    let config = dir.join(format!("replay-{format}.conf"));
    std::fs::write(&config, config_text).unwrap();
    let captures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/captures");
    let out = Command::new(env!("CARGO_BIN_EXE_portsentry"))
        .args(["replay", "-m", "stcp,sudp", "--log-format", format, "-c"])
        .arg(&config)
        .arg(captures.join(capture))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay {capture}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.contains("attackalert: ")
                || l.contains("Scan from: ")
                || l.contains("probe: ")
                || l.starts_with('{')
        })
        .map(str::to_owned)
        .collect()
}

/// `lines` as host `host`'s syslog would carry them (RFC 3339 time of now, program
/// `portsentry`); the replay's own time stamps are dropped (CrowdSec dates decisions from
/// the events, and the captures are older than a ban lasts).
fn as_syslog(host: &str, lines: &[String]) -> String {
    let now = jiff::Timestamp::now();
    lines
        .iter()
        .map(|line| {
            let message = if line.starts_with('{') {
                line.as_str()
            } else {
                line.split_once(' ').map_or(line.as_str(), |(_, rest)| rest)
            };
            format!("{now} {host} portsentry[4242]: {message}\n")
        })
        .collect()
}

#[test]
fn crowdsec_replays_the_three_formats_and_a_horizontal_scan_into_decisions() {
    const TEST: &str = "crowdsec_replays_the_three_formats_and_a_horizontal_scan_into_decisions";
    let Some(root) = crowdsec_root(TEST) else {
        return;
    };
    let captures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/captures");
    if !captures.join("manifest.json").exists() {
        eprintln!(
            "skipping {TEST}: no shared captures at {}",
            captures.display()
        );
        return;
    }
    let mut namespaces = Namespaces::default();
    let netns = namespaces.add("replay");
    let url = format!("http://127.0.0.1:{LAPI_PORT}");
    let crowdsec = Crowdsec::prepare(&root, &format!("127.0.0.1:{LAPI_PORT}"));
    let key = crowdsec.add_bouncer("bouncer");
    let _lapi = crowdsec.start_lapi(&netns, &url, &key);
    let dir = crowdsec.dir.path().to_owned();

    // Every decision the bouncer gets now: (value, scenario).
    let decisions = || -> Vec<(String, String)> {
        let answer = stream(&netns, &url, &key, true).expect("the bouncer stream answers");
        answer["new"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                let text = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
                (text("value"), text("scenario"))
            })
            .collect()
    };
    let replay = |name: &str, log: &str| {
        let path = dir.join(format!("{name}.log"));
        std::fs::write(&path, log).unwrap();
        let out = Lab::in_netns(&netns, root.join("usr/bin/crowdsec").to_str().unwrap())
            .arg("-c")
            .arg(crowdsec.config())
            .arg("-dsn")
            .arg(format!("file://{}", path.display()))
            .args(["-type", "syslog", "-no-api"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "crowdsec -dsn {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let scan_conf = "TCP_PORTS=\"1-1024\"\nUDP_PORTS=\"7,9,53,69,111,123,137,161\"\n\
                     HISTORY_FILE=\"\"\nBLOCKED_FILE=\"\"\n";

    // Each format on its own: the alert becomes a ban of its source.
    for (format, capture, source) in [
        ("classic", "nmap-null.pcap", "203.0.113.1"),
        ("v2", "nmap-syn6.pcap", "2001:db8:113::1"),
        ("json", "nmap-udp.pcap", "203.0.113.1"),
    ] {
        let lines = replay_lines(&dir, capture, format, scan_conf);
        assert!(!lines.is_empty(), "{format}: no lines");
        replay(format, &as_syslog("web1", &lines));
        let want = (source.to_owned(), "portsentry/portsentry-scan".to_owned());
        let mut seen = Vec::new();
        let found = wait_until(WAIT, || {
            seen = decisions();
            seen.contains(&want)
        });
        assert!(found, "{format}: no ban of {source}: {seen:?}\n{lines:?}");
        crowdsec.cscli_in(Some(&netns), &["decisions", "delete", "--all"]);
        assert!(wait_until(WAIT, || decisions().is_empty()));
    }

    // A horizontal scan: three hosts each see one source's first port only (SCAN_TRIGGER 64,
    // far above what any of them saw) and forward it (PROBE_EVENTS), in all three formats.
    let probe_conf = format!("{scan_conf}SCAN_TRIGGER=\"64\"\nPROBE_EVENTS=\"5\"\n");
    let mut log = String::new();
    for (host, format) in [("web1", "classic"), ("web2", "v2"), ("web3", "json")] {
        let lines = replay_lines(&dir, "nmap-syn.pcap", format, &probe_conf);
        assert_eq!(
            lines.len(),
            1,
            "{format}: one probe line, no alert: {lines:?}"
        );
        log.push_str(&as_syslog(host, &lines));
    }
    // One host reporting another source three times is no horizontal scan.
    let lonely = replay_lines(&dir, "nmap-syn6.pcap", "classic", &probe_conf);
    for _ in 0..3 {
        log.push_str(&as_syslog("web1", &lonely));
    }
    replay("horizontal", &log);
    let horizontal = (
        "203.0.113.1".to_owned(),
        "portsentry/portsentry-horizontal-scan".to_owned(),
    );
    let mut seen = Vec::new();
    let found = wait_until(WAIT, || {
        seen = decisions();
        seen.contains(&horizontal)
    });
    assert!(found, "no horizontal-scan ban: {seen:?}\n{log}");
    assert_eq!(
        seen.iter()
            .filter(|(value, _)| value == "203.0.113.1")
            .count(),
        1,
        "a horizontal scan is one decision: {seen:?}"
    );
    assert!(
        !seen.iter().any(|(value, _)| value == "2001:db8:113::1"),
        "one host's repeated reports banned: {seen:?}"
    );
}

#[test]
fn a_single_probe_below_the_trigger_is_forwarded_as_a_probe_line() {
    let Some(lab) = Lab::create("a_single_probe_below_the_trigger_is_forwarded_as_a_probe_line")
    else {
        return;
    };
    let config = lab.write_config(&lab.config_text(
        "1,79,111",
        "7,9",
        "SCAN_TRIGGER=\"3\"\nPROBE_EVENTS=\"5\"\n",
    ));
    let mut daemon = Daemon::start(&lab, &config, &["-stcp"]);
    lab.nmap("-sS", "79", VICTIM4);
    daemon.expect(&format!(
        "probe: TCP syn from host: {ATTACKER4} to TCP port: 79"
    ));
    // A second port of the same source is no new report, and two ports stay below 3.
    lab.nmap("-sS", "111", VICTIM4);
    let counted = wait_until(WAIT, || {
        let (_, status) = lab.cli(&["status", "--json"]);
        serde_json::from_str::<Value>(&status)
            .ok()
            .and_then(|s| s["counters"]["below_trigger"].as_u64())
            .is_some_and(|n| n >= 2)
    });
    assert!(counted, "the second probe was not counted");
    let out = daemon.output();
    assert_eq!(out.matches("probe: ").count(), 1, "{out}");
    assert!(
        !out.contains("scan from host"),
        "no alert below the trigger: {out}"
    );
    assert!(daemon.stop().success(), "{}", daemon.output());
}
