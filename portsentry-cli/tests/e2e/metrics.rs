//! Prometheus metrics of a live daemon: scraped, checked by promtool, read by node_exporter.

use super::*;

/// `GET http://127.0.0.1:PORT/metrics` inside `netns`, or the empty string.
fn scrape(netns: &str, port: u16) -> String {
    let out = Lab::in_netns(netns, "curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of the sample line starting with `series` (name and labels), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// `promtool check metrics` on `text`: what it said (empty when the text is clean).
fn promtool_check(text: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut said = String::from_utf8_lossy(&out.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() && said.is_empty() {
        said = format!("promtool failed: {}", out.status);
    }
    said
}

#[test]
fn metrics_are_scraped_checked_by_promtool_and_move_with_scans() {
    const TEST: &str = "metrics_are_scraped_checked_by_promtool_and_move_with_scans";
    for tool in ["curl", "promtool", "prometheus-node-exporter"] {
        if is_root() && !have(tool) {
            eprintln!("skipping {TEST}: {tool} is not installed (scripts/install-test-deps)");
            return;
        }
    }
    let Some(lab) = Lab::create(TEST) else {
        return;
    };
    const PORT: u16 = 9610;
    let textfiles = lab.path("textfile");
    std::fs::create_dir(&textfiles).unwrap();
    let textfile = textfiles.join("portsentry.prom");
    let config = lab.write_config(&lab.config_text("1,79,111", "7,9", "BLOCK_TIMEOUT=\"3\"\n"));
    let listen = format!("127.0.0.1:{PORT}");
    let textfile_arg = textfile.display().to_string();
    let mut daemon = Daemon::start(
        &lab,
        &config,
        &[
            "-stcp",
            "-sudp",
            "--metrics-listen",
            &listen,
            "--metrics-textfile",
            &textfile_arg,
        ],
    );
    let mut before = String::new();
    assert!(
        wait_until(WAIT, || {
            before = scrape(&lab.victim, PORT);
            before.contains("portsentry_build_info")
        }),
        "no metrics served:\n{before}\n{}",
        daemon.output()
    );
    assert_eq!(promtool_check(&before), "", "promtool on:\n{before}");
    let syn = "portsentry_probes_total{kind=\"syn\",mode=\"stcp\"}";
    let udp = "portsentry_probes_total{kind=\"udp\",mode=\"sudp\"}";
    assert_eq!(sample(&before, syn), Some(0.0), "{before}");
    assert_eq!(sample(&before, "portsentry_alerts_total"), Some(0.0));

    lab.nmap("-sS", "1,79", VICTIM4);
    lab.nmap("-sU", "7,9", VICTIM4);
    daemon.expect(&format!("Host {ATTACKER4} has been blocked via wrappers"));
    let mut after = String::new();
    let moved = wait_until(WAIT, || {
        after = scrape(&lab.victim, PORT);
        sample(&after, syn).is_some_and(|n| n >= 1.0)
            && sample(&after, udp).is_some_and(|n| n >= 1.0)
            && sample(&after, "portsentry_blocks_total").is_some_and(|n| n >= 1.0)
    });
    assert!(moved, "the counters did not move:\n{after}");
    assert!(sample(&after, "portsentry_alerts_total").is_some_and(|n| n >= 1.0));
    // The reconciliation at start counts.
    assert!(sample(&after, "portsentry_reconcile_runs_total").is_some_and(|n| n >= 1.0));
    assert_eq!(promtool_check(&after), "", "promtool on:\n{after}");

    // The textfile, read by Debian's node_exporter through its textfile collector.
    let file = std::fs::read_to_string(&textfile).unwrap();
    assert_eq!(
        promtool_check(&file),
        "",
        "promtool on the textfile:\n{file}"
    );
    let exporter = Lab::in_netns(&lab.victim, "prometheus-node-exporter")
        .arg("--web.listen-address=127.0.0.1:9611")
        .arg("--collector.disable-defaults")
        .arg("--collector.textfile")
        .arg(format!(
            "--collector.textfile.directory={}",
            textfiles.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _exporter = Service(exporter);
    let mut node = String::new();
    let read = wait_until(WAIT, || {
        node = scrape(&lab.victim, 9611);
        node.contains("portsentry_alerts_total")
    });
    assert!(read, "node_exporter did not expose the textfile:\n{node}");
    assert_eq!(
        sample(&node, "node_textfile_scrape_error"),
        Some(0.0),
        "{node}"
    );
    assert!(
        sample(&node, syn).is_some_and(|n| n >= 1.0),
        "node_exporter lost the probe counter:\n{node}"
    );
    assert!(daemon.stop().success(), "{}", daemon.output());
}
