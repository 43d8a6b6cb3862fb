//! `portsentry replay` on the shared real captures (`../shared/captures` of the project).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Scratch, portsentry, run};

/// The shared captures: `$PORTSENTRY_CAPTURES`, else the first `shared/captures` beside the
/// workspace or one of its ancestors. Missing captures fail the test: they are part of the
/// project's checkout.
fn captures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PORTSENTRY_CAPTURES") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(2)
        .map(|dir| dir.join("shared").join("captures"))
        .find(|dir| dir.join("manifest.json").is_file())
        .expect("shared captures not found: set PORTSENTRY_CAPTURES to the directory holding manifest.json")
}

fn capture(name: &str) -> String {
    captures_dir().join(name).display().to_string()
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(captures_dir().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A configuration with the manifest's port lists, in a scratch directory.
fn manifest_config(scratch: &Scratch) -> PathBuf {
    let m = manifest();
    let text = format!(
        "TCP_PORTS=\"{}\"\nUDP_PORTS=\"{}\"\n",
        m["tcp_ports_probed"].as_str().unwrap(),
        m["udp_ports_probed"].as_str().unwrap()
    );
    scratch.write("replay.conf", &text, 0o644)
}

/// `--listening tcp:P` for each of the victim's listening ports, and its addresses.
fn victim_args() -> Vec<String> {
    let m = manifest();
    let mut args = Vec::new();
    for port in m["victim_listening_tcp"].as_array().unwrap() {
        args.push("--listening".to_owned());
        args.push(format!("tcp:{port}"));
    }
    for address in m["victim"].as_array().unwrap() {
        args.push("--own-address".to_owned());
        args.push(address.as_str().unwrap().to_owned());
    }
    args
}

#[test]
fn the_syn_scan_from_the_issue_is_shown() {
    // Exactly the command of the issue, run from a directory where `../shared/captures`
    // is the shared captures directory.
    let shared = captures_dir().parent().unwrap().to_path_buf();
    let r = run(portsentry(&["replay", "../shared/captures/nmap-syn.pcap"]).current_dir(&shared));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.contains(
            "attackalert: TCP SYN/Normal scan from host: 203.0.113.1/203.0.113.1 to TCP port: "
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("frames read        62"), "{}", r.stdout);
    assert!(
        r.stdout.contains("probes             27 (syn 27)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("skipped frames     35 ("), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("    203.0.113.1: 1 alert(s), first stcp tcp syn port "),
        "{}",
        r.stdout
    );
}

#[test]
fn manifest_ports_and_the_victims_setup_give_the_expected_counts() {
    let scratch = Scratch::new("replay-counts");
    let conf = manifest_config(&scratch);
    let mut cmd = portsentry(&["replay", "-c"]);
    cmd.arg(&conf)
        .args(victim_args())
        .arg(capture("nmap-syn.pcap"));
    let r = run(&mut cmd);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // SCAN_TRIGGER 0: the scan's first probe (nmap shuffles the ports) alarms.
    let alerts: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains("scan from host"))
        .collect();
    assert_eq!(alerts.len(), 1, "{}", r.stdout);
    let port = alerts[0].rsplit(' ').next().unwrap();
    let probed = manifest()["tcp_ports_probed"].as_str().unwrap().to_owned();
    assert!(probed.split(',').any(|p| p == port), "{port}");
    assert!(
        r.stdout.contains("; 27 distinct port(s) probed tcp:1,11,"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(", 26 counted"),
        "8080 has a listener: {}",
        r.stdout
    );

    // Benign web traffic to the listening port: nothing.
    let mut cmd = portsentry(&["replay", "-c"]);
    cmd.arg(&conf)
        .args(victim_args())
        .arg(capture("benign-http.pcap"));
    let r = run(&mut cmd);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stdout.contains("attackalert"), "{}", r.stdout);
    assert!(
        r.stdout.contains("alerts             0 from 0 source(s)"),
        "{}",
        r.stdout
    );
}

#[test]
fn json_output_is_one_object_per_line_with_a_summary() {
    let scratch = Scratch::new("replay-json");
    let conf = manifest_config(&scratch);
    let mut cmd = portsentry(&["replay", "--json", "--trigger", "3", "-m", "sudp", "-c"]);
    cmd.arg(&conf)
        .args(victim_args())
        .arg(capture("nmap-udp.pcap"));
    let r = run(&mut cmd);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    let alert = &lines[0];
    assert_eq!(alert["event"], "alert");
    assert_eq!(alert["src_ip"], "203.0.113.1");
    assert_eq!(alert["scan_type"], "udp");
    assert_eq!(alert["mode"], "sudp");
    assert_eq!(alert["distinct_ports"], 3);
    assert_eq!(alert["response"], "log_only");
    let summary = &lines[1];
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["complete"], true);
    assert_eq!(summary["modes"], serde_json::json!(["sudp"]));
    assert_eq!(summary["alerts"], 1);
    let source = &summary["sources"][0];
    assert_eq!(source["src_ip"], "203.0.113.1");
    assert_eq!(source["ports_probed"]["udp"].as_array().unwrap().len(), 21);
    assert_eq!(
        summary["frames"].as_u64().unwrap(),
        summary["probes"].as_u64().unwrap()
            + summary["skips"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum::<u64>()
            + summary["not_to_host"].as_u64().unwrap()
    );
}

#[test]
fn the_v2_format_and_repeated_runs_are_identical() {
    let args = ["replay", "--log-format", "v2", "-c", "/dev/null"];
    let first = run(portsentry(&args).arg(capture("nmap-xmas.pcap")));
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    // An empty configuration watches no port: nothing alarms.
    assert!(
        first
            .stdout
            .contains("alerts             0 from 0 source(s)"),
        "{}",
        first.stdout
    );
    let second = run(portsentry(&args).arg(capture("nmap-xmas.pcap")));
    assert_eq!(first.stdout, second.stdout);

    let scratch = Scratch::new("replay-v2");
    let conf = manifest_config(&scratch);
    let r = run(portsentry(&["replay", "--log-format", "v2", "-c"])
        .arg(&conf)
        .arg(capture("nmap-xmas.pcap")));
    assert!(
        r.stdout
            .contains("Scan from: [203.0.113.1] (203.0.113.1) protocol: [TCP] port: [")
            && r.stdout.contains(
                "type: [TCP XMAS scan] IP opts: [not set] ignored: [false] triggered: [true]"
            ),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_capture_files_fail_with_a_clear_message() {
    let scratch = Scratch::new("replay-bad");
    let text = scratch.write("text.pcap", "not a capture\n", 0o644);
    let r = run(portsentry(&["replay", "-c", "/dev/null"]).arg(&text));
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("is not a pcap or pcapng capture"),
        "{}",
        r.stderr
    );

    let r = run(&mut portsentry(&[
        "replay",
        "-c",
        "/dev/null",
        "/nonexistent/x.pcap",
    ]));
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("cannot open capture /nonexistent/x.pcap"),
        "{}",
        r.stderr
    );

    // A capture cut inside a record: what came before is printed, then the error.
    let bytes = std::fs::read(capture("nmap-syn.pcap")).unwrap();
    let cut = scratch.0.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let conf = manifest_config(&scratch);
    let r = run(portsentry(&["replay", "-c"]).arg(&conf).arg(&cut));
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("is cut short"), "{}", r.stderr);
    assert!(
        r.stdout.contains("attackalert: TCP SYN/Normal scan"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("(stopped at a bad record)"),
        "{}",
        r.stdout
    );

    for bad in [
        &["replay", "--mode", "xyz", "a.pcap"][..],
        &["replay", "--listening", "8080", "a.pcap"],
        &["replay", "--own-address", "203.0.113", "a.pcap"],
        &["replay", "--trigger", "65", "a.pcap"],
        &["replay"],
    ] {
        let r = run(&mut portsentry(bad));
        assert_eq!(r.code, Some(2), "{bad:?}: {}", r.stderr);
    }
}

#[test]
fn help_has_examples_and_exit_status() {
    let r = run(&mut portsentry(&["replay", "--help"]));
    assert_eq!(r.code, Some(0));
    for section in [
        "Usage: portsentry replay [OPTIONS] <FILE>",
        "--listening <PROTO:PORTS>",
        "--own-address <ADDR>",
        "HOW A REPLAY RUNS:",
        "EXAMPLES:",
        "EXIT STATUS:",
        "log only",
    ] {
        assert!(r.stdout.contains(section), "replay --help lacks {section}");
    }
    let r = run(&mut portsentry(&["--help"]));
    assert!(r.stdout.contains("replay"), "{}", r.stdout);
}
