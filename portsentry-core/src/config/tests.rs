//! Unit tests of configuration validation: every key, every error, both dialects.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn ok(text: &str) -> Loaded {
    match Config::parse_str(text, "t.conf") {
        Ok(loaded) => loaded,
        Err(err) => panic!("{text:?} failed: {err:?}"),
    }
}

/// Every problem as `line: KEY: message`.
fn problems(text: &str) -> Vec<String> {
    match Config::parse_str(text, "t.conf") {
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        other => panic!("{text:?} should fail, got {other:?}"),
    }
}

fn one_problem(text: &str) -> ProblemKind {
    match Config::parse_str(text, "t.conf") {
        Err(ConfigError::Invalid { mut problems, .. }) if problems.len() == 1 => {
            problems.remove(0).kind
        }
        other => panic!("{text:?} should fail once, got {other:?}"),
    }
}

fn ports(list: &str) -> PortSet {
    PortSet::parse(list).unwrap()
}

#[test]
fn embedded_default_parses_without_warnings_and_is_the_default() {
    let loaded = Config::parse_str(DEFAULT_CONF, DEFAULT_ORIGIN).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config, Config::default());
    let c = Config::default();
    assert_eq!(c.tcp_ports, ports(CLASSIC_TCP_PORTS));
    assert_eq!(c.udp_ports, ports(CLASSIC_UDP_PORTS));
    assert_eq!(c.block_tcp, BlockMode::LogOnly);
    assert_eq!(c.block_udp, BlockMode::LogOnly);
    assert_eq!(c.kill_route, None);
    assert_eq!(c.kill_hosts_deny, None);
    assert_eq!(c.kill_run_cmd, None);
    assert_eq!(c.nft_set, None);
    assert_eq!(
        c.history_file.as_deref(),
        Some(Path::new("portsentry.history"))
    );
    assert_eq!(
        c.blocked_file.as_deref(),
        Some(Path::new("portsentry.blocked"))
    );
    assert_eq!(c.advanced_exclude_tcp, ports("113,139"));
    assert_eq!(c.advanced_exclude_udp, ports("67,137,138,520"));
    // The new keys have the same values as when absent: the default documents them only.
    let absent = Config::absent();
    assert_eq!(c.scan_window, absent.scan_window);
    assert_eq!(c.max_tracked_sources, absent.max_tracked_sources);
    assert_eq!(c.block_timeout, absent.block_timeout);
    assert_eq!(
        c.never_block_infrastructure,
        absent.never_block_infrastructure
    );
    assert_eq!(c.hosts_deny_file, absent.hosts_deny_file);
}

#[test]
fn classic_dialect_file_loads_unchanged() {
    let loaded = Config::load(data("classic-1.2.conf")).unwrap();
    // Blocking on with SCAN_TRIGGER 0 and no BLOCK_TIMEOUT: both are forgeable (issue 9).
    let kinds: Vec<_> = loaded.warnings.iter().map(|w| w.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            WarningKind::BlocksNeverExpire,
            WarningKind::ForgeableTrigger
        ],
        "{:?}",
        loaded.warnings
    );
    let c = loaded.config;
    assert_eq!(c.tcp_ports, ports(CLASSIC_TCP_PORTS));
    assert_eq!(c.udp_ports, ports(CLASSIC_UDP_PORTS));
    assert_eq!((c.advanced_ports_tcp, c.advanced_ports_udp), (1024, 1024));
    assert_eq!(c.advanced_exclude_tcp, ports("113,139"));
    assert_eq!(c.advanced_exclude_udp, ports("520,138,137,67"));
    assert_eq!(
        c.ignore_file.as_deref(),
        Some(Path::new("/etc/portsentry/portsentry.ignore"))
    );
    assert_eq!(
        c.history_file.as_deref(),
        Some(Path::new("/var/lib/portsentry/portsentry.history"))
    );
    assert!(!c.resolve_host);
    assert_eq!(
        (c.block_tcp, c.block_udp),
        (BlockMode::Block, BlockMode::Block)
    );
    assert_eq!(
        c.kill_route.as_deref(),
        Some("/sbin/iptables -I INPUT -s $TARGET$ -j DROP")
    );
    assert_eq!(
        c.kill_hosts_deny.as_deref(),
        Some(r"ALL: $TARGET$ : DENY \%c \%h")
    );
    assert!(!c.kill_run_cmd_first);
    assert_eq!(c.scan_trigger, 0);
    assert_eq!(c.port_banner, None);
}

#[test]
fn v2_dialect_file_loads_unchanged() {
    let loaded = Config::load(data("v2.conf")).unwrap();
    let kinds: Vec<_> = loaded.warnings.iter().map(|w| w.kind.clone()).collect();
    assert_eq!(
        kinds,
        [WarningKind::BlocksNeverExpire],
        "{:?}",
        loaded.warnings
    );
    let c = loaded.config;
    assert!(c.tcp_ports.contains(513) && c.tcp_ports.contains(544));
    assert!(!c.tcp_ports.contains(516));
    assert_eq!(c.tcp_ports.len(), 28);
    assert_eq!(c.udp_ports.to_string(), "7,9,13,19,111,389,513,517-518");
    assert_eq!(c.block_tcp, BlockMode::RunCommandOnly);
    assert!(c.kill_run_cmd_first);
    assert_eq!(c.scan_trigger, 3);
    assert_eq!(c.port_banner.as_deref(), Some("go away"));
    assert_eq!(c.ignore_file, None);
}

#[test]
fn new_keys_file_loads_and_relative_paths_follow_the_file() {
    let loaded = Config::load(data("new-keys.conf")).unwrap();
    let kinds: Vec<_> = loaded.warnings.iter().map(|w| w.kind.clone()).collect();
    assert_eq!(
        kinds,
        [WarningKind::ForgeableTrigger],
        "{:?}",
        loaded.warnings
    );
    assert_eq!(
        loaded.warnings[0].to_string(),
        format!(
            "{}:6: SCAN_TRIGGER: is below 2 while blocking is on: one packet with a forged \
             source blocks that source; use 2 or more",
            data("new-keys.conf").display()
        )
    );
    let mut c = loaded.config;
    assert_eq!(c.history_format, HistoryFormat::Json);
    assert_eq!(c.nft_set.as_deref(), Some("inet portsentry blocked"));
    assert_eq!(c.hosts_deny_file, data("hosts.deny"));
    assert_eq!(
        c.unblock_cmd.as_deref(),
        Some("/sbin/ip route del blackhole $TARGET$")
    );
    assert_eq!(c.scan_window, Duration::from_secs(120));
    assert_eq!(c.max_tracked_sources, 1000);
    assert_eq!(c.block_timeout, Some(Duration::from_secs(3600)));
    assert!(c.detect_ack_scans);
    assert!(!c.never_block_infrastructure);
    c.resolve_state_paths(Path::new("/srv/state"));
    assert_eq!(
        c.history_file.as_deref(),
        Some(Path::new("/srv/state/state/history.jsonl"))
    );
    assert_eq!(c.blocked_file, None);
}

#[test]
fn debian_file_loads_when_installed() {
    let path = Path::new("/etc/portsentry/portsentry.conf");
    if !path.exists() {
        eprintln!(
            "skipped: {} is not installed (apt-get install portsentry)",
            path.display()
        );
        return;
    }
    let loaded = Config::load(path).unwrap();
    assert!(!loaded.config.tcp_ports.is_empty());
}

#[test]
fn broken_files_fail_with_their_line() {
    let dir = data("broken");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no expectation",
            path.display()
        );
        let Err(ConfigError::Invalid { problems, .. }) = Config::load(&path) else {
            panic!("{} should fail", path.display());
        };
        assert_eq!(
            problems.len(),
            expected.len(),
            "{}: {problems:?}",
            path.display()
        );
        for (problem, want) in problems.iter().zip(&expected) {
            let shown = problem.to_string();
            let prefix = format!("{}:", path.display());
            let rest = shown.strip_prefix(&prefix).unwrap();
            let mut parts = want.splitn(3, ": ");
            let (line, key, words) = (parts.next(), parts.next(), parts.next());
            let at = format!("{}: {}: ", line.unwrap(), key.unwrap());
            assert!(rest.starts_with(&at), "{shown} is not at {at}");
            assert!(rest.contains(words.unwrap()), "{shown} does not say {want}");
        }
        seen += 1;
    }
    assert!(seen >= 20);
}

#[test]
fn every_key_is_understood() {
    let text = "TCP_PORTS=\"1\"\nUDP_PORTS=\"2\"\nADVANCED_PORTS_TCP=\"100\"\nADVANCED_PORTS_UDP=\"200\"\n\
        ADVANCED_EXCLUDE_TCP=\"3\"\nADVANCED_EXCLUDE_UDP=\"\"\nIGNORE_FILE=\"/i\"\nHISTORY_FILE=\"/h\"\n\
        BLOCKED_FILE=\"/b\"\nRESOLVE_HOST=\"1\"\nBLOCK_TCP=\"1\"\nBLOCK_UDP=\"2\"\n\
        KILL_ROUTE=\"r $TARGET$\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$\"\nKILL_RUN_CMD=\"c\"\n\
        KILL_RUN_CMD_FIRST=\"1\"\nSCAN_TRIGGER=\"64\"\nPORT_BANNER=\"hi\"\nHISTORY_FORMAT=\"v2\"\n\
        UNBLOCK_CMD=\"u\"\nHOSTS_DENY_FILE=\"/d\"\nSCAN_WINDOW=\"604800\"\nMAX_TRACKED_SOURCES=\"16777216\"\n\
        BLOCK_TIMEOUT=\"315360000\"\nDETECT_ACK_SCANS=\"1\"\nNEVER_BLOCK_GATEWAYS=\"0\"\n\
        NFT_SET=\"ip6 my_table set-1\"\nCROWDSEC_CREDENTIALS=\"/c\"\nPROBE_EVENTS=\"50\"\n\
        MAX_BLOCKS=\"1048576\"\nBLOCK_RATE=\"0\"\n\
        RECONCILE_INTERVAL=\"0\"\nSTOP_TIMEOUT=\"3600\"\nCONTROL_GROUP=\"adm\"\n";
    assert_eq!(text.lines().count(), keys::KEYS.len());
    for info in keys::KEYS {
        assert!(text.contains(&format!("{}=", info.name)), "{}", info.name);
    }
    let loaded = ok(text);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    let expected = Config {
        tcp_ports: ports("1"),
        udp_ports: ports("2"),
        advanced_ports_tcp: 100,
        advanced_ports_udp: 200,
        advanced_exclude_tcp: ports("3"),
        advanced_exclude_udp: PortSet::new(),
        ignore_file: Some("/i".into()),
        history_file: Some("/h".into()),
        history_format: HistoryFormat::V2,
        blocked_file: Some("/b".into()),
        resolve_host: true,
        block_tcp: BlockMode::Block,
        block_udp: BlockMode::RunCommandOnly,
        kill_route: Some("r $TARGET$".into()),
        kill_hosts_deny: Some("ALL: $TARGET$".into()),
        kill_run_cmd: Some("c".into()),
        kill_run_cmd_first: true,
        unblock_cmd: Some("u".into()),
        hosts_deny_file: "/d".into(),
        scan_trigger: 64,
        scan_window: Duration::from_secs(604_800),
        max_tracked_sources: 16_777_216,
        block_timeout: Some(Duration::from_secs(315_360_000)),
        detect_ack_scans: true,
        never_block_infrastructure: false,
        nft_set: Some("ip6 my_table set-1".into()),
        port_banner: Some("hi".into()),
        crowdsec_credentials: Some("/c".into()),
        probe_events_per_second: 50,
        max_blocks: 1_048_576,
        block_rate: 0,
        reconcile_interval: None,
        stop_timeout: Duration::from_secs(3600),
        control_group: Some("adm".into()),
    };
    assert_eq!(c, expected);
}

#[test]
fn empty_file_is_valid_with_absent_values_and_a_warning() {
    let loaded = ok("# nothing\n");
    assert_eq!(loaded.config, Config::absent());
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].kind, WarningKind::NoPortLists);
    assert_eq!(
        loaded.warnings[0].to_string(),
        "t.conf: neither TCP_PORTS nor UDP_PORTS is set: only the advanced modes (atcp, audp) watch any port"
    );
}

#[test]
fn empty_values_mean_none_where_documented() {
    let c = ok(
        "TCP_PORTS=\"1\"\nIGNORE_FILE=\"\"\nHISTORY_FILE=\"\"\nBLOCKED_FILE=\"\"\n\
        KILL_ROUTE=\"\"\nKILL_HOSTS_DENY=\"\"\nKILL_RUN_CMD=\"\"\nPORT_BANNER=\"\"\n\
        UNBLOCK_CMD=\"\"\nNFT_SET=\"\"\nADVANCED_EXCLUDE_TCP=\"\"\n",
    )
    .config;
    assert_eq!(c.ignore_file, None);
    assert_eq!(c.history_file, None);
    assert_eq!(c.blocked_file, None);
    assert_eq!(c.kill_route, None);
    assert_eq!(c.nft_set, None);
    assert!(c.advanced_exclude_tcp.is_empty());
}

#[test]
fn empty_values_are_errors_where_a_value_is_required() {
    for key in [
        "TCP_PORTS",
        "UDP_PORTS",
        "ADVANCED_PORTS_TCP",
        "ADVANCED_PORTS_UDP",
        "RESOLVE_HOST",
        "BLOCK_TCP",
        "BLOCK_UDP",
        "KILL_RUN_CMD_FIRST",
        "SCAN_TRIGGER",
        "HISTORY_FORMAT",
        "HOSTS_DENY_FILE",
        "SCAN_WINDOW",
        "MAX_TRACKED_SOURCES",
        "BLOCK_TIMEOUT",
        "DETECT_ACK_SCANS",
        "NEVER_BLOCK_GATEWAYS",
    ] {
        let kind = one_problem(&format!("TCP_PORTS=\"1\"\n{key}=\"\"\n"));
        assert!(
            matches!(kind, ProblemKind::EmptyValue { .. }),
            "{key}: {kind:?}"
        );
    }
}

#[test]
fn numbers_never_wrap_around() {
    let cases: &[(&str, &str, bool)] = &[
        ("SCAN_TRIGGER", "-1", false),
        ("SCAN_TRIGGER", "70000", false),
        ("SCAN_TRIGGER", "65", false),
        ("SCAN_TRIGGER", "64", true),
        ("SCAN_TRIGGER", "4294967296", false),
        ("SCAN_TRIGGER", "+3", false),
        ("SCAN_TRIGGER", "3.5", false),
        ("SCAN_TRIGGER", " 7 ", true),
        ("ADVANCED_PORTS_TCP", "0", false),
        ("ADVANCED_PORTS_TCP", "65536", false),
        ("ADVANCED_PORTS_UDP", "65535", true),
        ("SCAN_WINDOW", "0", false),
        ("SCAN_WINDOW", "604801", false),
        ("MAX_TRACKED_SOURCES", "0", false),
        ("MAX_TRACKED_SOURCES", "16777217", false),
        ("BLOCK_TIMEOUT", "0", true),
        ("BLOCK_TIMEOUT", "315360001", false),
        ("BLOCK_TIMEOUT", "-5", false),
    ];
    for &(key, value, valid) in cases {
        let text = format!("TCP_PORTS=\"1\"\n{key}=\"{value}\"\n");
        let result = Config::parse_str(&text, "t.conf");
        assert_eq!(result.is_ok(), valid, "{key}={value}: {result:?}");
    }
    assert!(matches!(
        one_problem("TCP_PORTS=\"1\"\nSCAN_TRIGGER=\"-1\"\n"),
        ProblemKind::OutOfRange { .. }
    ));
    assert!(matches!(
        one_problem("TCP_PORTS=\"1\"\nSCAN_TRIGGER=\"abc\"\n"),
        ProblemKind::NotANumber { .. }
    ));
    assert_eq!(
        ok("TCP_PORTS=\"1\"\nBLOCK_TIMEOUT=\"0\"\n")
            .config
            .block_timeout,
        None
    );
}

#[test]
fn switches_block_modes_and_formats_are_strict() {
    for key in [
        "RESOLVE_HOST",
        "KILL_RUN_CMD_FIRST",
        "DETECT_ACK_SCANS",
        "NEVER_BLOCK_GATEWAYS",
    ] {
        let kind = one_problem(&format!("TCP_PORTS=\"1\"\n{key}=\"2\"\n"));
        assert_eq!(kind, ProblemKind::NotASwitch { value: "2".into() }, "{key}");
    }
    assert_eq!(
        one_problem("TCP_PORTS=\"1\"\nBLOCK_TCP=\"-1\"\n"),
        ProblemKind::NotABlockMode { value: "-1".into() }
    );
    assert_eq!(
        one_problem("TCP_PORTS=\"1\"\nHISTORY_FORMAT=\"JSON\"\n"),
        ProblemKind::NotAHistoryFormat {
            value: "JSON".into()
        }
    );
    assert_eq!(
        ok("TCP_PORTS=\"1\"\nHISTORY_FORMAT=\"classic\"\n")
            .config
            .history_format,
        HistoryFormat::Classic
    );
}

#[test]
fn nft_set_shape() {
    for bad in [
        "inet portsentry",
        "inet a b c",
        "bridge t s",
        "inet t;rm s",
        "inet t s$",
    ] {
        let kind = one_problem(&format!("TCP_PORTS=\"1\"\nNFT_SET=\"{bad}\"\n"));
        assert!(matches!(kind, ProblemKind::NotAnNftSet { .. }), "{bad}");
    }
    let c = ok("TCP_PORTS=\"1\"\nNFT_SET=\"  ip   filter_4  block-list \"\n").config;
    assert_eq!(c.nft_set.as_deref(), Some("ip filter_4 block-list"));
}

#[test]
fn control_group_shape() {
    for bad in ["-adm", "a b", "adm;id", &"g".repeat(33)] {
        let kind = one_problem(&format!("TCP_PORTS=\"1\"\nCONTROL_GROUP=\"{bad}\"\n"));
        assert!(matches!(kind, ProblemKind::NotAGroup { .. }), "{bad}");
    }
    for (good, want) in [
        ("adm", Some("adm")),
        ("4", Some("4")),
        ("", None),
        ("s.u-1_x", Some("s.u-1_x")),
    ] {
        let c = ok(&format!("TCP_PORTS=\"1\"\nCONTROL_GROUP=\"{good}\"\n")).config;
        assert_eq!(c.control_group.as_deref(), want);
    }
}

#[test]
fn targets_are_required_where_portsentry_requires_them() {
    assert_eq!(
        one_problem("TCP_PORTS=\"1\"\nKILL_ROUTE=\"route add reject\"\n"),
        ProblemKind::MissingTarget
    );
    assert_eq!(
        one_problem("TCP_PORTS=\"1\"\nKILL_HOSTS_DENY=\"ALL: $target$\"\n"),
        ProblemKind::MissingTarget
    );
    // KILL_RUN_CMD and UNBLOCK_CMD may do without.
    ok(
        "TCP_PORTS=\"1\"\nKILL_RUN_CMD=\"logger scan\"\nUNBLOCK_CMD=\"true\"\nBLOCK_TIMEOUT=\"9\"\n",
    );
}

#[test]
fn block_modes_need_their_actions() {
    let base = "TCP_PORTS=\"1\"\n";
    assert_eq!(
        one_problem(&format!("{base}BLOCK_TCP=\"1\"\n")),
        ProblemKind::BlockWithoutAction
    );
    assert_eq!(
        one_problem(&format!(
            "{base}BLOCK_UDP=\"2\"\nKILL_ROUTE=\"r $TARGET$\"\n"
        )),
        ProblemKind::RunWithoutCommand
    );
    // An action set to "" does not count.
    assert_eq!(
        one_problem(&format!("{base}BLOCK_TCP=\"1\"\nKILL_ROUTE=\"\"\n")),
        ProblemKind::BlockWithoutAction
    );
    for action in [
        "KILL_ROUTE=\"r $TARGET$\"",
        "KILL_HOSTS_DENY=\"ALL: $TARGET$\"",
        "NFT_SET=\"inet t s\"",
        "KILL_RUN_CMD=\"c\"",
    ] {
        ok(&format!("{base}BLOCK_TCP=\"1\"\n{action}\n"));
    }
    ok(&format!("{base}BLOCK_TCP=\"2\"\nKILL_RUN_CMD=\"c\"\n"));
    // An invalid action is reported once, not also as a missing one.
    assert_eq!(
        problems(&format!("{base}BLOCK_TCP=\"1\"\nKILL_ROUTE=\"r\"\n")),
        [
            "t.conf:3: KILL_ROUTE: must contain $TARGET$ (replaced by the scanner's address), or it would block nobody"
        ]
    );
    // Only the last BLOCK line counts.
    ok(&format!("{base}BLOCK_TCP=\"1\"\nBLOCK_TCP=\"0\"\n"));
}

#[test]
fn duplicates_last_wins_with_warning_naming_both_lines() {
    let loaded = ok("TCP_PORTS=\"1\"\n\nTCP_PORTS=\"2\"\nTCP_PORTS=\"3\"\n");
    assert_eq!(loaded.config.tcp_ports, ports("3"));
    let shown: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "t.conf:3: TCP_PORTS: set again: this line overrides line 1 (the last one wins)",
            "t.conf:4: TCP_PORTS: set again: this line overrides line 3 (the last one wins)",
        ]
    );
}

#[test]
fn unknown_keys_warn_with_line_and_are_never_prefix_matched() {
    let loaded = ok("TCP_PORTS=\"1\"\nBLOCK=\"1\"\ntcp_ports=\"9\"\nTCP_MODE=\"stcp\"\n");
    assert_eq!(loaded.config.block_tcp, BlockMode::LogOnly);
    assert_eq!(loaded.config.tcp_ports, ports("1"));
    let shown: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "t.conf:2: BLOCK: unknown key, line ignored",
            "t.conf:3: tcp_ports: unknown key, line ignored (did you mean TCP_PORTS?)",
            "t.conf:4: TCP_MODE: unknown key, line ignored",
        ]
    );
}

#[test]
fn settings_without_effect_warn() {
    let loaded = ok("TCP_PORTS=\"1\"\nKILL_RUN_CMD_FIRST=\"1\"\nUNBLOCK_CMD=\"u $TARGET$\"\n");
    let kinds: Vec<_> = loaded.warnings.iter().map(|w| (w.line, &w.kind)).collect();
    assert!(matches!(
        kinds[..],
        [
            (Some(2), WarningKind::NoEffect { .. }),
            (Some(3), WarningKind::NoEffect { .. })
        ]
    ));
}

#[test]
fn every_error_of_a_file_is_reported_in_line_order() {
    let text = "TCP_PORTS=\"0\"\nUDP_PORTS=\"x\"\nBLOCK_TCP=1\nSCAN_TRIGGER=\"-2\"\nKILL_ROUTE=\"r\"\n\
        BLOCK_UDP=\"2\"\nNFT_SET=\"x\"\nHISTORY_FILE=\"/a\u{1}b\"\nHISTORY_FORMAT=\"xml\"\n";
    let shown = problems(text);
    let lines: Vec<&str> = shown.iter().map(|s| s.split(':').nth(1).unwrap()).collect();
    assert_eq!(lines, ["1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    assert!(shown[7].ends_with("HISTORY_FILE: the path contains a control character"));
}

#[test]
fn from_str_and_read_errors() {
    let c: Config = "UDP_PORTS=\"53\"".parse().unwrap();
    assert!(c.udp_ports.contains(53));
    let err = Config::load("/nonexistent/portsentry.conf").unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with("cannot read /nonexistent/portsentry.conf: ")
    );
}

#[test]
fn latin1_comments_load_but_latin1_values_are_errors() {
    let dir = std::env::temp_dir().join(format!("ps-latin1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("portsentry.conf");
    std::fs::write(
        &path,
        b"# Konfiguration f\xfcr den Server\nTCP_PORTS=\"1\"\n",
    )
    .unwrap();
    let loaded = Config::load(&path).unwrap();
    assert!(loaded.config.tcp_ports.contains(1));
    std::fs::write(
        &path,
        b"TCP_PORTS=\"1\"\nPORT_BANNER=\"Zugriff verboten f\xfcr alle\"\nBLOCK_TCP=\"9\"\n",
    )
    .unwrap();
    let Err(ConfigError::Invalid { problems, .. }) = Config::load(&path) else {
        panic!("a value with Latin-1 bytes must be refused");
    };
    let kinds: Vec<_> = problems.iter().map(|p| (p.line, p.kind.clone())).collect();
    assert_eq!(kinds[0], (Some(2), ProblemKind::NotUtf8));
    assert_eq!(kinds.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_error_summary_names_the_first_problem() {
    let err = Config::parse_str("BLOCK_TCP=\"5\"\nTCP_PORTS=\"0\"", "x.conf").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("x.conf: 2 error(s) in the configuration; first: x.conf:1: BLOCK_TCP:"),
        "{text}"
    );
}

proptest! {
    #[test]
    fn parse_never_panics(text in "[ -~\t\n\r]{0,300}") {
        let _ = Config::parse_str(&text, "fuzz");
    }

    #[test]
    fn known_key_lines_never_panic(
        lines in proptest::collection::vec((0..keys::KEYS.len(), "[ -!#-~]{0,12}"), 0..30)
    ) {
        let text: String = lines
            .iter()
            .map(|(k, v)| format!("{}=\"{v}\"\n", keys::KEYS[*k].name))
            .collect();
        match Config::parse_str(&text, "p") {
            Ok(_) => {}
            Err(ConfigError::Invalid { problems, .. }) => {
                prop_assert!(!problems.is_empty());
                for p in &problems {
                    let line = p.line.unwrap();
                    prop_assert!(line >= 1 && line <= lines.len());
                    prop_assert!(p.key.is_some());
                }
            }
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn port_lists_in_config_round_trip(set in proptest::collection::btree_set(1u16.., 1..50)) {
        let set: PortSet = set.into_iter().collect();
        let text = format!("TCP_PORTS=\"{set}\"\nUDP_PORTS = \"{set}\"\n");
        let c = Config::parse_str(&text, "p").unwrap().config;
        prop_assert_eq!(&c.tcp_ports, &set);
        prop_assert_eq!(&c.udp_ports, &set);
    }
}
